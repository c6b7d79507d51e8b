-- The index service under load, end to end through stage.signal (bench/index/run.sh runs it):
--   1. set N IDs ("user%012d", one integer score, no value) in messages of BATCH IDs,
--   2. rank lookups: `get` messages of BATCH random IDs (each ID's rank = Redis ZREVRANK),
--   3. top-100: one `forEach {1, 100}` per message (= Redis ZREVRANGE 0 99).
-- WINDOW messages are kept in flight. Lines starting with "RESULT" / "MARK" are read by run.sh.
-- Handlers lose their upvalues when registered: everything they share is global.
N = 1000000
BATCH = 500
WINDOW = 16
GETS = 500000
TOPS = 50000

function id(n) return string.format("user%012d", n) end
function score(n) return (n * 2654435761) % 10000000 end

function result(what, count, seconds)
  print(string.format("RESULT %s %.0f %d %.3f", what, count / seconds, count, seconds))
end

-- One phase: `make(k)` builds the k-th message (target, value); `check(reply)` validates a
-- reply; `done(seconds)` runs after the last reply.
function phase(messages, make, check, done)
  PHASE = { messages = messages, make = make, check = check, done = done, sent = 0, got = 0,
            started = process.tick }
  for _ = 1, math.min(WINDOW, messages) do send() end
end

function send()
  PHASE.sent = PHASE.sent + 1
  local target, value = PHASE.make(PHASE.sent)
  stage.signal(target, value)
end

stage.waitfor("reply", function (r)
  PHASE.check(r)
  PHASE.got = PHASE.got + 1
  if PHASE.sent < PHASE.messages then return send() end
  if PHASE.got == PHASE.messages then PHASE.done(process.tick - PHASE.started) end
end)

function random_id() SEED = (SEED * 1103515245 + 12345) % 2147483648 return id(SEED % N) end
SEED = 42

function sets()
  phase(N // BATCH, function (k)
    local t = {}
    for n = (k - 1) * BATCH, k * BATCH - 1 do t[id(n)] = { i = score(n) } end
    return "rank:s?bench=reply", t
  end, function (r) assert(r[id(0)] or next(r), "empty set reply") end, function (s)
    result("set", N, s)
    print("MARK loaded")
    stage.addtask(1500, function () gets() return 0 end)
  end)
end

function gets()
  phase(GETS // BATCH, function ()
    local ids = {}
    for j = 1, BATCH do ids[j] = random_id() end
    return "rank:g?bench=reply", ids
  end, function (r)
    local _, hit = next(r)
    assert(hit and hit.I and hit.I[1].d >= 1, "get without a rank")
  end, function (s)
    result("rank", GETS, s)
    tops()
  end)
end

function tops()
  phase(TOPS, function () return "rank:f?bench=reply", { 1, 100 } end, function (r)
    assert(r[1] and r[100] and not r[101], "top-100 is not 100 entries")
  end, function (s)
    result("top100", TOPS, s)
    print("MARK done")
    stage.exit()
  end)
end

print("MARK start")
stage.addtask(1000, function () sets() return 0 end)
