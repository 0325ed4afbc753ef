/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The hub `reef hub` / `reef local` listens here by default; `npm run dev` proxies the API
// and the WebSocket to it so the dashboard runs same-origin, as it does when the hub
// serves web/dist/.
const HUB = process.env.REEF_HUB_URL ?? "http://127.0.0.1:8899";

export default defineConfig({
  plugins: [react()],
  // Absolute asset URLs: the hub answers unknown paths with index.html, so a page at
  // /some/deep/link must still load /assets/… from the root.
  base: "/",
  server: {
    proxy: {
      "/api": { target: HUB, changeOrigin: true },
      "/ws": { target: HUB.replace(/^http/, "ws"), ws: true, changeOrigin: true },
    },
  },
  build: {
    outDir: "dist",
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  test: {
    environment: "jsdom",
    globals: true,
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test/setup.ts"],
    restoreMocks: true,
  },
});
