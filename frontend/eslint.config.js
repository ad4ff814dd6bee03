// ESLint flat config: @eslint/js and typescript-eslint recommended for all sources, the React
// hooks rules for the app and its tests, and Node globals for the scripts run by Node.
import js from "@eslint/js";
import reactHooks from "eslint-plugin-react-hooks";
import { defineConfig, globalIgnores } from "eslint/config";
import globals from "globals";
import tseslint from "typescript-eslint";

export default defineConfig([
  globalIgnores(["dist/", "node_modules/", "src/api/schema.d.ts", "e2e-artifacts/"]),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ["src/**/*.{ts,tsx}", "tests/**/*.{ts,tsx}"],
    extends: [reactHooks.configs.flat.recommended],
    languageOptions: { globals: globals.browser },
  },
  {
    files: [
      "tests/**/*.{ts,tsx}",
      "vite.config.ts",
      "eslint.config.js",
      "e2e/**/*.mjs",
      "scripts/**/*.mjs",
    ],
    languageOptions: { globals: globals.node },
  },
  {
    // the e2e scripts pass functions to page.evaluate: they run in the browser
    files: ["e2e/**/*.mjs"],
    languageOptions: { globals: globals.browser },
  },
]);
