#!/usr/bin/env bash
# Builds the shipped npm package (web target, `--profile wasm-release`, wasm-bindgen + wasm-opt -Oz)
# and prints the sizes of what a page downloads: the `_bg.wasm` and the JS glue, raw and gzip -9.
# Usage: bash scripts/size-wasm.sh [web|bundler]   (default: web)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh client >&2
source scripts/env.sh

target=${1:-web}
out=$PWD/.tmp/size-$target
rm -rf "$out"
wasm-pack --quiet build client-wasm --target "$target" --profile wasm-release --out-dir "$out" >&2

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
printf '| %-24s | %9s | %9s |\n' total "$total_raw" "$total_gz"
