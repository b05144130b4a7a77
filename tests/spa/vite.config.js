// The `web` target needs `await init()`; the `bundler` target initialises itself on import, so each
// gets its own pages. scripts/test-client.sh sets SPA_TARGET.
import { defineConfig } from "vite";

const pages =
  process.env.SPA_TARGET === "bundler"
    ? ["bundler.html"]
    : ["index.html", "adapters.html", "react.html", "csp.html", "csp-without-wasm.html", "no-wasm.html"];

export default defineConfig({
  build: { target: "es2022", rollupOptions: { input: pages } },
});
