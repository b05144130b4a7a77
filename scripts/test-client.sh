#!/usr/bin/env bash
# Tests the Wasm client end to end and checks its npm package:
#   1. starts a real reauth-server on loopback (3 s access tokens) and a fault proxy in front of it;
#   2. runs the browser tests: `wasm-pack test --headless --chrome client-wasm` in Debian's Chromium;
#   3. builds the npm package for the `web` and `bundler` targets (scripts/package-client.sh),
#      `npm pack`s both and lints each tarball (publint; @arethetypeswrong/cli, ESM-only profile);
#   4. type-checks tests/spa/src/types.ts against the web tarball (tsc), builds the Vite test pages in
#      tests/spa against it and runs them in Chromium, served
#      by reauth-server itself: the README's example, the error contract, the axios/ky adapters
#      (through the fault proxy, which can refuse a token), the React binding, a page under a strict
#      CSP, and pages where WebAssembly is blocked or missing. Each must report "ok".
# Exits non-zero on any failure. Usage: bash scripts/test-client.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh client browser
source scripts/env.sh

ROOT=$PWD
SCRATCH=$ROOT/.tmp/client-test
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH/tmp"
# Each Chromium run leaves ~13 MB of profile in $TMPDIR: keep it in scratch space removed below.
export TMPDIR=$SCRATCH/tmp

pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$SCRATCH/tmp"
  exit "$status"
}
trap cleanup EXIT

log() { printf '[test-client] %s\n' "$*" >&2; }

# Starts "$@" in the background, logging to $1.log, and sets STARTED_URL from its "listening on"
# line. (Not called as $(...): a subshell would lose the pid that cleanup needs.)
STARTED_URL=
start_and_wait_for_url() {
  local name=$1; shift
  "$@" >"$SCRATCH/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    STARTED_URL=$(grep -o 'listening on http://[0-9.:]*' "$SCRATCH/$name.log" | head -n1 | sed 's/listening on //' || true)
    if [ -n "$STARTED_URL" ]; then return 0; fi
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  log "$name did not start:"; cat "$SCRATCH/$name.log" >&2
  return 1
}

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

log "building reauth-server"
cargo build -p reauth-server --quiet
SERVER_BIN=$CARGO_TARGET_DIR/debug/reauth-server

# The test runner serves its page from this address; the server's CORS allowlist must name it.
# The browser tests register a user each (about 45, all from 127.0.0.1): above the per-address limit.
PAGE_ADDRESS=127.0.0.1:$(free_port)
REAUTH_BIND=127.0.0.1:0 REAUTH_STORE=memory:// \
  JWT_ACCESS_EXPIRES_IN=3s JWT_REFRESH_EXPIRES_IN=1h REAUTH_REUSE_INTERVAL=10s \
  REAUTH_REGISTRATIONS_PER_ADDRESS=1000 \
  REAUTH_COOKIE_SECURE=false REAUTH_ALLOWED_ORIGINS=http://$PAGE_ADDRESS RUST_LOG=warn \
  start_and_wait_for_url server "$SERVER_BIN" serve
SERVER_URL=$STARTED_URL
start_and_wait_for_url proxy node scripts/client-fault-proxy.mjs "$SERVER_URL"
PROXY_URL=$STARTED_URL
log "server $SERVER_URL, fault proxy $PROXY_URL, test page http://$PAGE_ADDRESS"

log "browser tests (wasm-pack test --headless --chrome)"
WASM_BINDGEN_TEST_ADDRESS=$PAGE_ADDRESS \
WASM_BINDGEN_TEST_TIMEOUT=600 \
WASM_BINDGEN_TEST_NO_ORIGIN_ISOLATION=1 \
REAUTH_TEST_SERVER=$SERVER_URL \
REAUTH_TEST_PROXY=$PROXY_URL \
  wasm-pack test --headless --chrome --chromedriver "$(command -v chromedriver)" client-wasm

for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done

log "npm package: web and bundler targets, packed, linted, imported by Vite test pages"
for target in web bundler; do
  pkg=$SCRATCH/pkg-$target
  bash scripts/package-client.sh "$target" "$pkg"
  mkdir -p "$SCRATCH/packs/$target"
  tarball=$(cd "$pkg" && npm pack --silent --pack-destination "$SCRATCH/packs/$target")
  publint run "$SCRATCH/packs/$target/$tarball" --strict
  # ESM only (the Wasm glue is an ES module): CommonJS `require` and node10 resolution do not apply.
  attw "$SCRATCH/packs/$target/$tarball" --profile esm-only
  spa=$SCRATCH/spa-$target
  cp -r tests/spa "$spa"
  cp "$SCRATCH/packs/$target/$tarball" "$spa/reauth-client.tgz"
  (cd "$spa" && npm install --no-audit --no-fund --loglevel=error)
  # The .d.ts files of the entry and the adapters against the real axios, ky and React types
  # (types.ts calls init(), which only the web target, the published one, has).
  if [ "$target" = web ]; then (cd "$spa" && ./node_modules/.bin/tsc -p tsconfig.json); fi
  (cd "$spa" && SPA_TARGET=$target "$ROOT/node_modules/.bin/vite" build --logLevel warn)
  ls "$spa"/dist/assets/*.wasm >/dev/null
  log "$target: $tarball installed, vite build ok ($(du -sh "$spa/dist" | cut -f1))"

  # The pages are served through the fault proxy (same origin as far as the browser can tell), so
  # the adapter checks can make it refuse a token; the server must accept the proxy's origin.
  site_proxy=http://127.0.0.1:$(free_port)
  REAUTH_BIND=127.0.0.1:0 REAUTH_STORE=memory:// REAUTH_COOKIE_SECURE=false RUST_LOG=warn \
    REAUTH_ALLOWED_ORIGINS=$site_proxy REAUTH_WWW_DIR="$spa/dist" \
    start_and_wait_for_url "site-$target" "$SERVER_BIN" serve
  start_and_wait_for_url "site-proxy-$target" node scripts/client-fault-proxy.mjs "$STARTED_URL" "${site_proxy##*:}"
  if [ "$target" = web ]; then
    # Pages that import only "reauth-client" must not download any adapter's code.
    node tests/spa/check-in-browser.mjs --never-downloads=reauthRetried --never-downloads=REAUTH_TOKEN_RENEWED \
      --never-downloads=useSyncExternalStore "$site_proxy"/{index,csp,csp-without-wasm,no-wasm}.html
    node tests/spa/check-in-browser.mjs "$site_proxy/adapters.html"
    node tests/spa/check-react.mjs "$site_proxy/react.html"
  else
    node tests/spa/check-in-browser.mjs "$site_proxy/bundler.html"
  fi
  kill "${pids[-1]}" "${pids[-2]}" 2>/dev/null || true
done
log "all client checks passed"
