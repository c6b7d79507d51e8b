#!/bin/sh
# Route end-to-end benchmark: builds the release binary, then runs front.lua with 4 workers once.
# ROUTE_BENCH_TOTAL sets the number of publications (default 200,000).
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cargo build --release -p stage --manifest-path "$root/Cargo.toml"
"${CARGO_TARGET_DIR:-$root/target}/release/stage" run "$here"
