#!/usr/bin/env bash
# The whole test suite. Installs what the tests need when it is missing (Debian packages,
# non-interactively), then runs every test. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_build_deps
ensure_test_deps
cargo test --locked "$@"
