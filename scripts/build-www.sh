#!/usr/bin/env bash
# Builds the reauth-client npm package (wasm-pack, `web` target, size-optimised profile) into www/pkg,
# where the demo page imports it exactly as an SPA imports the published package.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/package-client.sh web "$PWD/www/pkg" >&2
