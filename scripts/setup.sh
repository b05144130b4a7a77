#!/usr/bin/env bash
# Installs every tool the project needs, idempotently: each step checks before it acts, so a second
# run costs seconds. Called by `npm start` and `npm test`; nothing is to be installed by hand.
# Usage: scripts/setup.sh [server|client|browser|stores|fuzz|coverage|all]...   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

WASM_BINDGEN_VERSION=0.2.130   # must equal the `wasm-bindgen = "=…"` pin in client-wasm/Cargo.toml
WASM_PACK_VERSION=0.15.1
CARGO_FUZZ_VERSION=0.13.2
CARGO_LLVM_COV_VERSION=0.9.1

log() { printf '[setup] %s\n' "$*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -o DPkg::Lock::Timeout=600 -qq
  $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}"
}

# cargo install builds in a temporary directory of its own: keep it out of the shared target dir,
# whose lock would otherwise serialise it with the project's builds.
cargo_install() {
  local crate=$1 version=$2 bin=$3; shift 3
  if command -v "$bin" >/dev/null 2>&1 && "$bin" --version 2>/dev/null | grep -q "$version"; then return 0; fi
  log "cargo install $crate $version (once per machine, a few minutes)"
  env -u CARGO_TARGET_DIR cargo install "$crate" --version "$version" "$@"
}

setup_server() {
  command -v cargo >/dev/null || { log "Rust is required: https://rustup.rs"; exit 1; }
}

setup_client() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
  # Without --locked: its lockfile pins a crate version the registry mirror lacks.
  cargo_install wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen
  cargo_install wasm-pack "$WASM_PACK_VERSION" wasm-pack --locked
}

setup_npm() {
  # By content, not mtime: a lockfile rewritten in the same second as node_modules must still count.
  if ! cmp -s package-lock.json node_modules/.reauth-installed-lock; then
    log "npm install"
    npm install --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.reauth-installed-lock
  fi
}

setup_browser() {
  apt_install chromium chromium-driver
}

setup_stores() {
  apt_install redis-server postgresql
}

# libFuzzer's sanitizer instrumentation needs nightly; the project itself builds on stable.
setup_fuzz() {
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  cargo_install cargo-fuzz "$CARGO_FUZZ_VERSION" cargo-fuzz --locked
}

# cargo llvm-cov uses the stable toolchain's llvm-profdata and llvm-cov.
setup_coverage() {
  rustup component list --installed | grep -q '^llvm-tools' || rustup component add llvm-tools-preview
  cargo_install cargo-llvm-cov "$CARGO_LLVM_COV_VERSION" cargo-llvm-cov --locked
}

targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(all)
for target in "${targets[@]}"; do
  case "$target" in
    server) setup_server ;;
    client) setup_server; setup_client; setup_npm ;;
    browser) setup_browser ;;
    stores) setup_stores ;;
    npm) setup_npm ;;
    fuzz) setup_server; setup_fuzz ;;
    coverage) setup_server; setup_coverage ;;
    all) setup_server; setup_client; setup_npm; setup_browser; setup_stores; setup_fuzz; setup_coverage ;;
    *) log "unknown target: $target"; exit 2 ;;
  esac
done
