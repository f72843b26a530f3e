import { defineConfig } from "vite";

// The server serves dist/ at `/` with a strict Content-Security-Policy (scripts and styles
// from its own origin only), so nothing is inlined.
export default defineConfig({
  build: {
    outDir: "dist",
    target: "es2022",
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
});
