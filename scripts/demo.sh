#!/usr/bin/env bash
# The main job on embedded defaults: `casegate demo` (SQLite, file transport, no servers).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_build_deps
cargo run --locked --release --quiet -- demo "$@"
