"""Writes the Redis protocol for the same data as bench.lua's set phase: N members
"user%012d" with the same scores, ZADD commands of BATCH members (for `redis-cli --pipe`)."""
import sys

N = 1_000_000
BATCH = 500
out = sys.stdout.buffer


def bulk(s):
    b = s.encode()
    return b"$%d\r\n%s\r\n" % (len(b), b)


for start in range(0, N, BATCH):
    members = range(start, min(start + BATCH, N))
    parts = [bulk("ZADD"), bulk("bench")]
    for n in members:
        parts.append(bulk(str((n * 2654435761) % 10_000_000)))
        parts.append(bulk("user%012d" % n))
    out.write(b"*%d\r\n" % len(parts))
    out.write(b"".join(parts))
