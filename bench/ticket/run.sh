#!/bin/sh
# Ticket end-to-end benchmark: builds the release binary, then runs bench.lua once.
# TICKET_BENCH_TOTAL sets the number of cycles (default 1,000,000).
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cargo build --release -p stage --manifest-path "$root/Cargo.toml"
"${CARGO_TARGET_DIR:-$root/target}/release/stage" run "$here"
