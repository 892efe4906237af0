#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer (cargo fuzz), seeded from tests/fixtures.
#
#   scripts/fuzz.sh TARGET SECONDS     fuzz one target for SECONDS (corpus kept in fuzz/corpus/TARGET)
#   scripts/fuzz.sh --smoke [RUNS]     every target for at least RUNS executions (default 10000)
#   scripts/fuzz.sh --list             the targets
#
# Stable Rust: RUSTC_BOOTSTRAP=1 lets cargo fuzz pass its nightly flags. No sanitizer
# (safe Rust; the C in OpenSSL is not fuzzed here), so that a build takes minutes, not tens.
# A crash or timeout leaves its input in fuzz/artifacts/TARGET/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_build_deps
ensure_fuzz_deps

TARGETS=(parse_mail tokens auth_results pgp_open route_explain render)
export RUSTC_BOOTSTRAP=1
FUZZ=(cargo fuzz run --sanitizer none --release --debug-assertions)

# A new corpus starts from every fixture mail (routing, OpenPGP and fuzz-found ones).
seed() {
  local dir=fuzz/corpus/$1
  if [ -z "$(ls -A "$dir" 2>/dev/null)" ]; then
    mkdir -p "$dir"
    find tests/fixtures -name '*.eml' -exec cp {} "$dir/" \;
    find tests/fixtures/fuzz -type f -name "$1-*" -exec cp {} "$dir/" \; 2>/dev/null || true
  fi
}

run() { # TARGET libFuzzer-options...
  local target=$1; shift
  seed "$target"
  mkdir -p "fuzz/artifacts/$target"
  "${FUZZ[@]}" "$target" "fuzz/corpus/$target" -- \
    -artifact_prefix="fuzz/artifacts/$target/" -timeout=10 -rss_limit_mb=2048 \
    -max_len=262144 -print_final_stats=1 "$@"
}

case "${1:-}" in
  --list) printf '%s\n' "${TARGETS[@]}" ;;
  --smoke)
    runs=${2:-10000}
    (cd fuzz && cargo fuzz build --sanitizer none --release --debug-assertions)
    for t in "${TARGETS[@]}"; do
      echo "fuzz smoke: $t ($runs executions)" >&2
      run "$t" -runs="$runs" 2>&1 | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY)' >&2
    done ;;
  ""|-h|--help) sed -n '2,11p' "$0" ;;
  *)
    [ $# -eq 2 ] || { echo "usage: scripts/fuzz.sh TARGET SECONDS" >&2; exit 2; }
    run "$1" -max_total_time="$2" ;;
esac
