#!/usr/bin/env bash
# The whole test suite. Installs what the tests need when it is missing (Debian packages,
# non-interactively), then runs every test on SQLite, every integration test a second time
# on a throwaway PostgreSQL cluster (each test in a database of its own), and a fuzz smoke
# run. Extra arguments go to both `cargo test` runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_build_deps
ensure_test_deps
ensure_postgres
cargo test --locked "$@"
trap stop_test_postgres EXIT
start_test_postgres
# The integration tests that touch storage (audience_props and rendered do not).
pg_tests=()
for t in tests/*.rs; do
  t="$(basename "$t" .rs)"
  case "$t" in audience_props|rendered) ;; *) pg_tests+=(--test "$t") ;; esac
done
cargo test --locked "${pg_tests[@]}" "$@"
stop_test_postgres
# A short run of every fuzz target (at least 10,000 executions each, docs/fuzzing.md).
scripts/fuzz.sh --smoke 10000
