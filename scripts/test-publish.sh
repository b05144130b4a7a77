#!/usr/bin/env bash
# Checks that both crates are ready for crates.io: `cargo publish --dry-run` packages each one
# (license texts, README, manifest) and builds the packaged sources as crates.io would, against
# the registry (reachable here). The npm package is checked by scripts/test-client.sh (publint,
# @arethetypeswrong/cli on the packed tarball). --allow-dirty: a local run with uncommitted
# changes checks what is on disk; CI's checkout is clean anyway.
# Usage: bash scripts/test-publish.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh client >&2

log() { printf '[test-publish] %s\n' "$*" >&2; }

check_packaged_files() {
  local crate=$1 files
  files=$(cargo package --list --allow-dirty -p "$crate")
  for required in LICENSE-MIT LICENSE-APACHE Cargo.toml; do
    grep -qx "$required" <<<"$files" || { log "$crate: $required is not in the package"; exit 1; }
  done
}

log "reauth-server: cargo publish --dry-run"
check_packaged_files reauth-server
cargo publish --dry-run --allow-dirty -p reauth-server

log "reauth-client: cargo publish --dry-run (built for wasm32, its only target)"
check_packaged_files reauth-client
# The verify build of a cdylib writes `libreauth_client.rlib` with no hash in its name, without the
# `std` feature: in the shared target dir it would overwrite the browser tests' std build, which cargo
# then takes as fresh (E0152, duplicate panic_impl). Its own target dir keeps the two apart.
CARGO_TARGET_DIR=$CARGO_TARGET_DIR/publish-client \
  cargo publish --dry-run --allow-dirty -p reauth-client --target wasm32-unknown-unknown
log "both crates package and build as published"
