#!/usr/bin/env bash
# The index service next to Redis, same machine, same run:
#   stage: bench.lua through the release binary (1,000,000 IDs set through stage.signal in
#          messages of 500, then rank lookups and top-100 queries, 16 messages in flight);
#   Redis: Debian's redis-server on 127.0.0.1 (free port, no persistence), the same 1,000,000
#          members loaded with ZADDs of 500 (redis-cli --pipe), then redis-benchmark with 16
#          clients pipelining 500 commands each for ZADD, ZREVRANK and ZREVRANGE 0 99, the
#          last also WITHSCORES: a forEach entry carries its score (and rank), so that is the
#          Redis reply with the same content.
# Memory: the node's RSS growth while loading vs Redis's used_memory growth for the same data.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CLIENTS=16
PIPELINE=500

cargo build --release -p stage --manifest-path "$ROOT/Cargo.toml"
BIN=$TARGET/release/stage

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  apt-get install -y redis-server redis-tools ||
    { apt-get update && apt-get install -y redis-server redis-tools; }
fi

WORK=$(mktemp -d)
STAGE_PID=""
REDIS_PID=""
cleanup() {
  [ -n "$STAGE_PID" ] && kill "$STAGE_PID" 2>/dev/null || true
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
wait_for() { # file, text: waits (up to 5 min) for a line
  for _ in $(seq 1 6000); do
    grep -q "$2" "$1" && return 0
    kill -0 "$STAGE_PID" 2>/dev/null || { cat "$WORK/stage.err" >&2; return 1; }
    sleep 0.05
  done
  return 1
}

# ---- stage ----
cp "$HERE/stage.json" "$HERE/bench.lua" "$WORK/"
(cd "$WORK" && exec "$BIN" run . >stage.out 2>stage.err) &
STAGE_PID=$!
wait_for "$WORK/stage.out" "MARK start"
RSS_START=$(rss_kb "$STAGE_PID")
wait_for "$WORK/stage.out" "MARK loaded"
RSS_LOADED=$(rss_kb "$STAGE_PID")
wait_for "$WORK/stage.out" "MARK done"
wait "$STAGE_PID" || { cat "$WORK/stage.err" >&2; exit 1; }
STAGE_PID=""
grep "^RESULT" "$WORK/stage.out" | sed 's/^RESULT/stage/'
grep -E "WARN|ERROR" "$WORK/stage.err" || true
stage_rate() { awk -v w="$1" '$1 == "RESULT" && $2 == w { print $3 }' "$WORK/stage.out"; }

# ---- Redis ----
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no --dir "$WORK" \
  --logfile "$WORK/redis.log" &
REDIS_PID=$!
for _ in $(seq 1 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
used_memory() { redis-cli -p "$PORT" info memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r'; }
MEM_START=$(used_memory)
python3 "$HERE/gen_redis.py" | redis-cli -p "$PORT" --pipe >/dev/null
MEM_LOADED=$(used_memory)
RSS_REDIS=$(rss_kb "$REDIS_PID")
[ "$(redis-cli -p "$PORT" zcard bench | tr -d '\r')" = 1000000 ] || { echo "Redis load failed" >&2; exit 1; }
bench() { # requests, command...: prints requests per second
  redis-benchmark -p "$PORT" -c "$CLIENTS" -P "$PIPELINE" -r 1000000 -n "$1" --csv "${@:2}" |
    awk -F'","' 'NR == 2 { print $2 }'
}
R_ZADD=$(bench 1000000 zadd bench __rand_int__ user__rand_int__)
R_RANK=$(bench 1000000 zrevrank bench user__rand_int__)
R_TOP=$(bench 100000 zrevrange bench 0 99)
R_TOP_SCORES=$(bench 100000 zrevrange bench 0 99 withscores)

# ---- side by side ----
row() { # label, stage rate, Redis rate: prints both and stage / Redis
  awk -v l="$1" -v s="$2" -v r="$3" 'BEGIN { printf "%-30s %16.0f %16.0f %9.2fx\n", l, s, r, s / r }'
}
printf '\n%-30s %16s %16s %10s\n' "1,000,000 IDs" "stage" \
  "Redis $(redis-server --version | awk '{ print $3 }' | cut -d= -f2)" "stage/Redis"
row "set / ZADD  (ops/s)" "$(stage_rate set)" "$R_ZADD"
row "rank / ZREVRANK  (ops/s)" "$(stage_rate rank)" "$R_RANK"
row "top-100 / ZREVRANGE 0 99 (/s)" "$(stage_rate top100)" "$R_TOP"
row "  ... WITHSCORES (/s)" "$(stage_rate top100)" "$R_TOP_SCORES"
awk -v s="$(((RSS_LOADED - RSS_START) * 1024))" -v r="$((MEM_LOADED - MEM_START))" 'BEGIN {
  printf "%-30s %13.1f MB %13.1f MB %9.2fx   (stage: RSS growth; Redis: used_memory growth)\n",
    "memory for the 1 M IDs", s / 1e6, r / 1e6, s / r }'
printf '%-30s %13.1f MB %13.1f MB   (whole process RSS)\n' "RSS after loading" \
  "$((RSS_LOADED * 1024))e-6" "$((RSS_REDIS * 1024))e-6"
echo "stage: messages of 500 IDs for set/rank, one forEach {1,100} per message; 16 messages in flight"
echo "Redis: redis-benchmark -c $CLIENTS -P $PIPELINE (one command per member)"
