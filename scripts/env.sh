# Sourced by every script: one cargo target dir shared by CI runs and sessions (a 2-core build is
# slow), and the project's own tools (npm's wasm-opt, cargo-installed CLIs) first on PATH.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reauth/target}"
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
