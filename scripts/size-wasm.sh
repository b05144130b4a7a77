#!/usr/bin/env bash
# Builds the shipped npm package (web target, `--profile wasm-release`, wasm-bindgen + wasm-opt -Oz,
# through scripts/package-client.sh) and prints the sizes of what a page downloads for
# `import ... from "reauth-client"`, raw and gzip -9: the core (`_bg.wasm` and the JS glue), then the
# entry module and the ReauthError snippet; the adapters, downloaded only by apps that import them, last.
# Usage: bash scripts/size-wasm.sh [web|bundler]   (default: web)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh client >&2
source scripts/env.sh

target=${1:-web}
out=$PWD/.tmp/size-$target
rm -rf "$out"
bash scripts/package-client.sh "$target" "$out" >&2

size_row() {
  local file=$1 raw gz
  raw=$(wc -c <"$file")
  gz=$(gzip -9c "$file" | wc -c)
  printf '| %-24s | %9s | %9s |\n' "$(basename "$file")" "$raw" "$gz"
  total_raw=$((total_raw + raw)); total_gz=$((total_gz + gz))
}

total_raw=0 total_gz=0
echo "reauth-client, target $target, profile wasm-release, $(wasm-opt --version 2>/dev/null || echo 'no wasm-opt')"
printf '| %-24s | %9s | %9s |\n' file "raw bytes" "gzip -9"
printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..26})" "$(printf -- '-%.0s' {1..11})" "$(printf -- '-%.0s' {1..11})"
size_row "$out/reauth_client_bg.wasm"
# The bundler target splits the glue in two files; the web target has one.
for glue in "$out"/reauth_client.js "$out"/reauth_client_bg.js; do
  [ -f "$glue" ] && size_row "$glue"
done
printf '| %-24s | %9s | %9s |\n' "core (wasm + glue)" "$total_raw" "$total_gz"
size_row "$out/index.js"
size_row "$(ls "$out"/snippets/*/js/error.js)"
printf '| %-24s | %9s | %9s |\n' "total for the import" "$total_raw" "$total_gz"
for adapter in axios ky react; do size_row "$out/$adapter.js"; done
