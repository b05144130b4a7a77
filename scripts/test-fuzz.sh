#!/usr/bin/env bash
# The fuzz targets of server/fuzz (cargo-fuzz: libFuzzer on nightly), each for a bounded time, starting from the checked-in seeds in server/fuzz/corpus/<target>. A crash, a
# panic, an allocation over the limit, a timeout or a run over the memory limit fails the run; the
# input is saved under server/fuzz/artifacts/<target>/ and the command to replay it is printed.
#
# Usage: scripts/test-fuzz.sh [--long] [TARGET...]
#   (default)  every target for REAUTH_FUZZ_SECONDS (25) seconds, no sanitizer: what `npm test` runs
#   --long     every target for REAUTH_FUZZ_SECONDS (default here 600) seconds under AddressSanitizer:
#              `npm run fuzz`
# REAUTH_FUZZ_SANITIZER (none, address) overrides the sanitizer. Why each: docs/TESTING.md.
# Inputs that reach new code are kept between runs in $CARGO_TARGET_DIR/fuzz-corpus/<target>
# (outside the checkout); the checked-in seeds stay as they are (docs/TESTING.md says how to add one).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

log() { printf '[fuzz] %s\n' "$*" >&2; }

SECONDS_PER_TARGET=${REAUTH_FUZZ_SECONDS:-25}
SANITIZER=${REAUTH_FUZZ_SANITIZER:-none}
if [ "${1:-}" = "--long" ]; then
  shift
  SECONDS_PER_TARGET=${REAUTH_FUZZ_SECONDS:-600}
  SANITIZER=${REAUTH_FUZZ_SANITIZER:-address}
fi
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(access_token refresh_token cookie_header http_request)

# The bounds every run holds the code to: no single allocation over MALLOC_LIMIT_MB (enforced under a
# sanitizer only: libFuzzer needs its malloc hooks), no process over RSS_LIMIT_MB, no input slower
# than TIMEOUT_SECS.
MALLOC_LIMIT_MB=64
RSS_LIMIT_MB=1024
TIMEOUT_SECS=10

if ! bash scripts/setup.sh fuzz; then
  printf '\n%s\n%s\n\n' \
    "!!! SKIPPED: the nightly toolchain or cargo-fuzz could not be installed: the fuzz targets" \
    "!!! did NOT run on this machine." >&2
  exit 0
fi

FUZZ_DIR=server/fuzz
# One build directory per sanitizer, so that switching does not rebuild everything each time.
BUILD_DIR="$CARGO_TARGET_DIR/fuzz-$SANITIZER"
log "building the targets (nightly, sanitizer: $SANITIZER)"
(cd "$FUZZ_DIR" && cargo +nightly fuzz build --sanitizer "$SANITIZER" --target-dir "$BUILD_DIR") \
  || { log "build failed"; exit 1; }
HOST=$(rustc +nightly -vV | sed -n 's/^host: //p')
BIN_DIR="$BUILD_DIR/$HOST/release"

failed=()
for target in "${TARGETS[@]}"; do
  corpus="$CARGO_TARGET_DIR/fuzz-corpus/$target"
  artifacts="$FUZZ_DIR/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  dict=()
  [ -f "$FUZZ_DIR/$target.dict" ] && dict=("-dict=$FUZZ_DIR/$target.dict")
  run_log=$(mktemp "${TMPDIR:-/tmp}/reauth-fuzz-$target.XXXXXX")
  log "$target: ${SECONDS_PER_TARGET}s"
  # The first corpus directory receives new inputs; the checked-in seeds are only read.
  if "$BIN_DIR/$target" "$corpus" "$FUZZ_DIR/corpus/$target" "${dict[@]}" \
    -max_total_time="$SECONDS_PER_TARGET" -malloc_limit_mb="$MALLOC_LIMIT_MB" -rss_limit_mb="$RSS_LIMIT_MB" \
    -timeout="$TIMEOUT_SECS" -artifact_prefix="$artifacts/" -print_final_stats=1 >"$run_log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run_log")
    coverage=$(grep -o 'cov: [0-9]*' "$run_log" | tail -n 1)
    log "$target: ok, $runs inputs, $coverage, $(find "$corpus" -type f | wc -l) in the corpus"
  else
    tail -n 60 "$run_log" >&2
    log "$target: FAILED. Replay: $BIN_DIR/$target $artifacts/<crash file>"
    failed+=("$target")
  fi
  rm -f "$run_log"
done

if [ ${#failed[@]} -gt 0 ]; then
  log "failed: ${failed[*]}"
  exit 1
fi
