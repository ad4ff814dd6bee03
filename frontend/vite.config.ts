/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";

// The dev server proxies every API route to the Serve ingress so the app always talks to its own
// origin, exactly as in production where the ingress serves frontend/dist at "/".
const API = process.env.RAYAPP_API ?? "http://127.0.0.1:8000";
const apiRoutes = [
  "/health",
  "/ready",
  "/predict",
  "/predictions",
  "/explain",
  "/model",
  "/report",
  "/metrics",
  "/track-record",
  "/prices",
  "/freshness",
  "/openapi.json",
  "/admin",
];

export default defineConfig({
  plugins: [react(), tailwindcss()],
  server: {
    proxy: {
      ...Object.fromEntries(apiRoutes.map((r) => [r, { target: API, changeOrigin: true }])),
      "/ws": { target: API.replace(/^http/, "ws"), ws: true },
    },
  },
  build: {
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./tests/setup.ts"],
    include: ["tests/**/*.test.{ts,tsx}"],
    testTimeout: 15000,
  },
});
