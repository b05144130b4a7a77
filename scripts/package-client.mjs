// Turns wasm-pack's output into the published reauth-client package, reproducibly (run by
// scripts/package-client.sh after `wasm-pack build`; a second run on the same directory is a no-op).
// Adds: the entry module (index.js: the glue plus ReauthError, a failing-not-hanging init() and the
// after-free guard), the adapters (axios, ky, react) as separate files, the license texts, and a
// package.json with an `exports` map whose every entry has its types.
// Usage: node scripts/package-client.mjs OUT_DIR web|bundler
import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { minifySync } from "rolldown/utils";
import { renameInGlue, shortenImportNames } from "./shorten-imports.mjs";

const [outDir, target] = process.argv.slice(2);
if (!outDir || !["web", "bundler"].includes(target)) {
  console.error("usage: node scripts/package-client.mjs OUT_DIR web|bundler");
  process.exit(2);
}
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const sources = join(root, "client-wasm/js");
const adapters = ["axios", "ky", "react"];

// wasm-bindgen copies js/error.js (the snippet that defines ReauthError) to
// snippets/<crate>-<hash>/js/error.js; the entry module re-exports the class from that very file.
const snippetDirs = readdirSync(join(outDir, "snippets")).filter((dir) => existsSync(join(outDir, "snippets", dir, "js/error.js")));
if (snippetDirs.length !== 1) throw new Error(`expected one snippets/*/js/error.js in ${outDir}, found ${snippetDirs.length}`);
const errorModule = `./snippets/${snippetDirs[0]}/js/error.js`;
copyFileSync(join(sources, "error.d.ts"), join(outDir, "snippets", snippetDirs[0], "js/error.d.ts"));

for (const ext of ["js", "d.ts"]) {
  const entry = readFileSync(join(sources, `index.${target}.${ext}`), "utf8").replaceAll("./__ERROR_MODULE__", errorModule);
  writeFileSync(join(outDir, `index.${ext}`), entry);
  for (const adapter of adapters) copyFileSync(join(sources, `${adapter}.${ext}`), join(outDir, `${adapter}.${ext}`));
}
// The glue wasm-bindgen writes carries every doc comment of the Rust API and readable names; a page
// downloads it with the .wasm, so it counts against the core's size budget (docs/BENCHMARKS.md).
// Minified with oxc (rolldown's, already here through Vite); the docs stay in reauth_client.d.ts.
// The `@ts-self-types` pragma is kept: Deno finds the types through it.
// Before minifying, so the minifier sees the short names (bundler glue exports them).
const wasmPath = join(outDir, "reauth_client_bg.wasm");
const { wasm, renames } = shortenImportNames(readFileSync(wasmPath));
writeFileSync(wasmPath, wasm);
const unrenamed = new Set(renames.keys());
for (const glue of ["reauth_client.js", "reauth_client_bg.js"]) {
  const path = join(outDir, glue);
  if (!existsSync(path)) continue;
  const original = readFileSync(path, "utf8");
  for (const name of renames.keys()) if (original.includes(name)) unrenamed.delete(name);
  const code = renameInGlue(original, renames);
  const minified = minifySync(glue, code, { module: true });
  if (minified.errors?.length) throw new Error(`minifying ${glue}: ${minified.errors.map((error) => error.message).join("; ")}`);
  const pragma = code.match(/^\/\* @ts-self-types=.*\*\/\n/)?.[0] ?? "";
  writeFileSync(path, pragma + minified.code);
}
if (unrenamed.size) throw new Error(`imports renamed in the .wasm but not found in the glue: ${[...unrenamed].join(", ")}`);
for (const license of ["LICENSE-MIT", "LICENSE-APACHE"]) copyFileSync(join(root, license), join(outDir, license));

const manifestPath = join(outDir, "package.json");
const generated = JSON.parse(readFileSync(manifestPath, "utf8"));
const entry = (name) => ({ types: `./${name}.d.ts`, default: `./${name}.js` });
const manifest = {
  name: generated.name,
  version: generated.version,
  description: generated.description,
  license: generated.license,
  // From the workspace Cargo.toml's `repository`, in the form npm normalises it to.
  repository: {
    type: "git",
    url: `git+${generated.repository.url.replace(/^git\+/, "").replace(/\.git$/, "")}.git`,
    directory: "client-wasm",
  },
  keywords: generated.keywords,
  type: "module",
  main: "./index.js",
  types: "./index.d.ts",
  exports: {
    ".": entry("index"),
    ...Object.fromEntries(adapters.map((adapter) => [`./${adapter}`, entry(adapter)])),
    // For bundlers that want the file's URL, e.g. `init({ module_or_path: url })`.
    "./reauth_client_bg.wasm": { types: "./reauth_client_bg.wasm.d.ts", default: "./reauth_client_bg.wasm" },
    "./package.json": "./package.json",
  },
  files: [
    ...new Set([
      ...generated.files,
      "index.js",
      "index.d.ts",
      "reauth_client_bg.wasm.d.ts",
      ...adapters.flatMap((adapter) => [`${adapter}.js`, `${adapter}.d.ts`]),
      "snippets",
      "LICENSE-MIT",
      "LICENSE-APACHE",
    ]),
  ],
  // The entry patches AuthClient's prototype (the after-free guard) when it is evaluated.
  sideEffects: [...new Set([...(generated.sideEffects ?? []), "./index.js"])],
  // Each adapter imports its library; an app that does not import the adapter needs neither.
  peerDependencies: { ky: ">=2", react: ">=18" },
  peerDependenciesMeta: { ky: { optional: true }, react: { optional: true } },
};
writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
console.error(`[package-client] ${outDir}: ${target} package with exports ${Object.keys(manifest.exports).join(", ")}`);
