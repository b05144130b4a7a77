// The `web` target needs `await init()`; the `bundler` target initialises itself on import, so each
// gets its own entry page. scripts/test-client.sh sets SPA_TARGET.
import { defineConfig } from "vite";

const entry = process.env.SPA_TARGET === "bundler" ? "bundler.html" : "index.html";

export default defineConfig({
  build: { target: "es2022", rollupOptions: { input: entry } },
});
