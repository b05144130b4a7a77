#!/usr/bin/env bash
# Builds the reauth-client npm package into OUT_DIR: `wasm-pack build` (size-optimised profile),
# then scripts/package-client.mjs adds the entry module, the adapters, the licenses and the
# `exports` map. Every script that needs the package (tests, demo, size) builds it through here.
# Usage: bash scripts/package-client.sh web|bundler OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
target=${1:?usage: package-client.sh web|bundler OUT_DIR}
out=${2:?usage: package-client.sh web|bundler OUT_DIR}
case "$out" in /*) ;; *) out=$PWD/$out ;; esac
wasm-pack build client-wasm --target "$target" --profile wasm-release --out-dir "$out" >&2
node scripts/package-client.mjs "$out" "$target"
