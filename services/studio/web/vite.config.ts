/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The build goes straight into the Python package, so the quick start needs no Node.
// Content-hashed names, no source maps and no build time stamps: the same lockfile and
// sources always give the same bytes (CI rebuilds and compares).
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "../src/drift_studio/static",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    chunkSizeWarningLimit: 2000,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8300" },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
  },
});
