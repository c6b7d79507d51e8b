#!/usr/bin/env bash
# Chains of self-messages through stage next to a mailbox written in plain Lua, same machine,
# same run (mailbox.lua and plain.lua say exactly what each side does):
#   stage        64 chains of stage.signal("step", chain) to the stage itself, 1,000,000
#                messages in all, state in globals, the count checked;
#   plain-nil    plain.lua's FIFO + dispatch loop with the same handler bodies, inside the same
#                node (one invocation of the stage thread, same Lua build), the dequeued value
#                slot set to nil as stage's own queue does;
#   plain-false  the same with the slot set to false (no rehash of the value array, plain.lua);
#   lua5.4-nil   plain.lua's two variants under Debian's standalone lua5.4 (installed if
#   lua5.4-false missing; skipped if it cannot be installed).
# Each repeat runs one node (the stage and in-node plain runs, their order alternating from
# repeat to repeat) and then lua5.4 (its two variants alternating too); the summary gives the
# median over the repeats and the spread (min-max). Times: wall clock inside the node (the node
# also prints its CPU time), os.clock (CPU time) under lua5.4. Ratios are time ratios taken
# within each repeat: stage / plain-* in the same node from wall times and from CPU times (on a
# shared machine CPU times vary less), stage / lua5.4 from CPU times (os.clock on both sides).
#   STAGE_BIN  the binary to run (default: builds this repo's release binary and uses it)
#   REPEATS    how many repeats (default 3)
#   MAILBOX_TOTAL, MAILBOX_CHAINS  messages and chains (default 1000000 and 64)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
REPEATS=${REPEATS:-3}
export MAILBOX_TOTAL=${MAILBOX_TOTAL:-1000000} MAILBOX_CHAINS=${MAILBOX_CHAINS:-64}

if [ -n "${STAGE_BIN:-}" ]; then
  BIN=$(realpath "$STAGE_BIN")  # the script changes directory
else
  cargo build --release -p stage --manifest-path "$ROOT/Cargo.toml"
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/stage
fi
LUA=""
if command -v lua5.4 >/dev/null || apt-get install -y lua5.4 >/dev/null 2>&1 ||
  { apt-get update >/dev/null 2>&1 && apt-get install -y lua5.4 >/dev/null 2>&1; }; then
  LUA=$(command -v lua5.4)
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
RESULTS=$WORK/results  # repeat, what, messages, wall s, cpu s
echo "binary: $BIN ($("$BIN" --version))"
echo "$MAILBOX_TOTAL messages, $MAILBOX_CHAINS chains, $REPEATS repeats"
[ -n "$LUA" ] && echo "standalone: $("$LUA" -v 2>&1)" || echo "standalone: lua5.4 not available (apt-get install -y lua5.4 failed): skipped"

for r in $(seq 1 "$REPEATS"); do
  if [ $((r % 2)) = 1 ]; then order=stage-first; else order=plain-first; fi
  (cd "$WORK" && MAILBOX_ORDER=$order timeout 300 "$BIN" run "$HERE" >node.out 2>node.err) ||
    { echo "the node failed (repeat $r):" >&2; cat "$WORK/node.out" "$WORK/node.err" >&2; exit 1; }
  grep -E "WARN|ERROR" "$WORK/node.err" >&2 || true
  [ "$(grep -c '^RESULT' "$WORK/node.out")" = 3 ] ||
    { echo "the node did not print its 3 results (repeat $r):" >&2; cat "$WORK/node.out" >&2; exit 1; }
  awk -v r="$r" '$1 == "RESULT" { print r, $2, $3, $4, $5 }' "$WORK/node.out" >>"$RESULTS"
  if [ -n "$LUA" ]; then
    if [ $((r % 2)) = 1 ]; then variants="nil false"; else variants="false nil"; fi
    for v in $variants; do
      (cd "$HERE" && "$LUA" plain.lua "$MAILBOX_TOTAL" "$MAILBOX_CHAINS" "$v") |
        awk -v r="$r" '$1 == "RESULT" { sub(/^plain-/, "lua5.4-", $2); print r, $2, $3, "-", $4 }' >>"$RESULTS"
    done
  fi
  echo "repeat $r ($order) done"
done

awk -v repeats="$REPEATS" '
  function median(a, n,   i, j, t, b) {  # sorts a copy
    for (i = 1; i <= n; i++) b[i] = a[i]
    for (i = 2; i <= n; i++) for (j = i; j > 1 && b[j - 1] > b[j]; j--) { t = b[j]; b[j] = b[j - 1]; b[j - 1] = t }
    return n % 2 ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
  }
  function lo(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] < m) m = a[i]; return m }
  function hi(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] > m) m = a[i]; return m }
  {
    r = $1; w = $2; msgs[w] = $3; wall[w, r] = $4; cpu[w, r] = $5
    if (!(w in seen)) { seen[w] = 1; order[++kinds] = w }
    if ($3 != ENVIRON["MAILBOX_TOTAL"]) { print "wrong count for " w ": " $3 > "/dev/stderr"; bad = 1 }
  }
  END {
    if (bad) exit 1
    # what each row is timed by: wall clock in the node, os.clock under lua5.4
    printf "\n%-13s %-6s", "run", "clock"
    for (r = 1; r <= repeats; r++) printf " %12s", "repeat " r
    printf "\n"
    for (k = 1; k <= kinds; k++) {
      w = order[k]
      standalone = (w ~ /^lua5.4/)
      printf "%-13s %-6s", w, standalone ? "cpu" : "wall"
      for (r = 1; r <= repeats; r++) printf " %10.3f s", standalone ? cpu[w, r] : wall[w, r]
      printf "\n"
      if (!standalone) {
        printf "%-13s %-6s", "", "cpu"
        for (r = 1; r <= repeats; r++) printf " %10.3f s", cpu[w, r]
        printf "\n"
      }
    }
    printf "\n%-13s %14s %24s %10s %22s\n", "median", "messages/s", "(min - max)", "seconds", "(min - max)"
    for (k = 1; k <= kinds; k++) {
      w = order[k]
      for (r = 1; r <= repeats; r++) { s[r] = (w ~ /^lua5.4/) ? cpu[w, r] : wall[w, r]; rate[r] = msgs[w] / s[r] }
      printf "%-13s %14.0f %11.0f - %-11.0f %8.3f s %9.3f - %.3f s\n", w, median(rate, repeats),
        lo(rate, repeats), hi(rate, repeats), median(s, repeats), lo(s, repeats), hi(s, repeats)
    }
    printf "\n%-34s %8s %20s\n", "time ratio, per repeat", "median", "(min - max)"
    n = split("plain-nil wall plain-false wall plain-nil cpu plain-false cpu lua5.4-nil cpu lua5.4-false cpu", against, " ")
    for (k = 1; k < n; k += 2) {
      w = against[k]; clock = against[k + 1]
      if (!(w in seen)) continue
      for (r = 1; r <= repeats; r++)
        q[r] = clock == "cpu" ? cpu["stage", r] / cpu[w, r] : wall["stage", r] / wall[w, r]
      printf "%-34s %7.2fx %11.2fx - %.2fx\n", "stage / " w " (" clock ")",
        median(q, repeats), lo(q, repeats), hi(q, repeats)
    }
  }' "$RESULTS"
