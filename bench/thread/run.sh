#!/usr/bin/env bash
# `thread.new` round trips (`stage bench`) next to skynet's skynet.call round trips, same
# machine, runs alternated: skynet (cloudwu/skynet, built without jemalloc, 2 worker threads)
# with 64 calls in flight to an echo service (skynet.lua), stage with 64 jobs in flight.
#   SKYNET_DIR  a built skynet checkout (default: cloned from GitHub, which needs access to it,
#               and built in a temp dir)
#   ROUNDS      how many alternated rounds (default 5)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ROUNDS=${ROUNDS:-5}

cargo build --release -p stage --manifest-path "$ROOT/Cargo.toml"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
SKYNET=${SKYNET_DIR:-}
if [ -z "$SKYNET" ]; then
  SKYNET=$WORK/skynet
  git clone -q --depth 1 https://github.com/cloudwu/skynet "$SKYNET"
  make -C "$SKYNET" linux MALLOC_STATICLIB= SKYNET_DEFINES=-DNOUSE_JEMALLOC -j2 >/dev/null
fi
cp "$HERE/skynet.lua" "$WORK/"
cat >"$WORK/config" <<CONFIG
thread = 2
harbor = 0
start = "skynet"
bootstrap = "snlua bootstrap"
trips = 1000000
luaservice = "$SKYNET/service/?.lua;$WORK/?.lua"
lualoader = "$SKYNET/lualib/loader.lua"
lua_path = "$SKYNET/lualib/?.lua;$SKYNET/lualib/?/init.lua"
lua_cpath = "$SKYNET/luaclib/?.so"
cpath = "$SKYNET/cservice/?.so"
CONFIG
printf '%-8s %20s %24s %8s\n' round "skynet.call (/s)" "thread.new (/s)" ratio
for round in $(seq 1 "$ROUNDS"); do
  s=$(timeout 120 "$SKYNET/skynet" "$WORK/config" 2>&1 | awk '/round trips/ { print $5 }')
  t=$("$TARGET/release/stage" bench 2>&1 | awk '/thread.new round trips/ { print $4 }')
  awk -v r="$round" -v s="$s" -v t="$t" 'BEGIN { printf "%-8s %20s %24s %8.2f\n", r, s, t, t / s }'
done
