#!/usr/bin/env bash
# The whole test suite. Installs what the tests need when it is missing (Debian packages,
# non-interactively), then runs every test and a fuzz smoke run. Extra arguments go to
# `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_build_deps
ensure_test_deps
cargo test --locked "$@"
# A short run of every fuzz target (at least 10,000 executions each, docs/fuzzing.md).
scripts/fuzz.sh --smoke 10000
