/// <reference types="vitest/config" />
import { defineConfig, type Plugin } from "vite";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";
import openapi from "./src/api/openapi.json" with { type: "json" };
import pages from "./src/pages.json" with { type: "json" };
import { proxyRoutes } from "./src/lib/proxyRoutes.ts";

// The dev server proxies every API route to the Serve ingress so the app always talks to its own
// origin, exactly as in production where the ingress serves frontend/dist at "/". The routes come
// from the OpenAPI document (src/lib/proxyRoutes.ts), so `npm run gen:api` keeps them current.
const API = process.env.RAYAPP_API ?? "http://127.0.0.1:8000";
const routes = proxyRoutes(openapi);

// dist/pages.json: the router's pages, read by the ingress to answer index.html for a deep link
// or a reload of any page (rayapp/serving/spa.py) while the API keeps its own paths.
const pagesFile: Plugin = {
  name: "rayapp-pages-json",
  generateBundle() {
    this.emitFile({ type: "asset", fileName: "pages.json", source: JSON.stringify(pages) });
  },
};

export default defineConfig({
  plugins: [react(), tailwindcss(), pagesFile],
  server: {
    proxy: {
      ...Object.fromEntries(routes.http.map((r) => [r, { target: API, changeOrigin: true }])),
      ...Object.fromEntries(
        routes.ws.map((r) => [r, { target: API.replace(/^http/, "ws"), ws: true }]),
      ),
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
