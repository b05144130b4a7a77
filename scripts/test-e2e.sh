#!/usr/bin/env bash
# End-to-end tests: the demo page in Debian's Chromium (playwright-core) against real reauth-server
# processes on loopback. Usage: bash scripts/test-e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh client browser npm
source scripts/env.sh

cargo build -p reauth-server --quiet
bash scripts/build-www.sh

SCRATCH=$PWD/.tmp/e2e-tmp
rm -rf "$SCRATCH" && mkdir -p "$SCRATCH"
trap 'rm -rf "$SCRATCH"' EXIT
# Chromium leaves a profile per launch in $TMPDIR.
TMPDIR=$SCRATCH REAUTH_SERVER_BIN=$CARGO_TARGET_DIR/debug/reauth-server node --test --test-concurrency=1 tests/e2e/
