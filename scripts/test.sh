#!/usr/bin/env bash
# `npm test`: every test of the project, each suite against real parts (SQLite files, a real browser,
# HTTP on loopback). Installs what is missing first (scripts/setup.sh, idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

bash scripts/setup.sh server client browser stores

step() { printf '\n=== %s ===\n' "$*"; }

step "server: unit, store conformance and HTTP integration tests"
cargo test -p reauth-server

for suite in scripts/test-stores.sh scripts/test-client.sh scripts/test-e2e.sh scripts/test-publish.sh scripts/test-fuzz.sh; do
  if [ -f "$suite" ]; then
    step "$suite"
    bash "$suite"
  fi
done
