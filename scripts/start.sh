#!/usr/bin/env bash
# `npm start`: the server with the demo page on the embedded SQLite store, at http://127.0.0.1:8080.
# Plain http on loopback, so cookies are not marked Secure here (REAUTH_COOKIE_SECURE=false); in
# production leave the default (true) and serve over https.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

bash scripts/setup.sh server client
if [ -f scripts/build-www.sh ]; then bash scripts/build-www.sh; fi

mkdir -p data
export REAUTH_STORE="${REAUTH_STORE:-sqlite://data/reauth.db}"
export REAUTH_COOKIE_SECURE="${REAUTH_COOKIE_SECURE:-false}"
export REAUTH_WWW_DIR="${REAUTH_WWW_DIR:-www}"
# Two-minute access tokens so a visitor sees renewals happen; production keeps the 15-minute default.
export JWT_ACCESS_EXPIRES_IN="${JWT_ACCESS_EXPIRES_IN:-2m}"
# The server-rendered /account page: access token in an HttpOnly cookie, silent refresh on reload.
export REAUTH_ACCESS_COOKIE="${REAUTH_ACCESS_COOKIE:-true}"
cargo build -p reauth-server
exec "$CARGO_TARGET_DIR/debug/reauth-server" serve "$@"
