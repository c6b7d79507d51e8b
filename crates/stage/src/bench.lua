-- `stage bench`: messages, synchronous calls and timers on one stage thread.
-- Handlers lose their upvalues when registered, so everything they share is global.
N = math.tointeger(tonumber(arg[1]))
COUNT = 0

-- ns per call of a C function from a Lua loop, the best of 5 rounds of 1,000,000.
local function host_call_ns()
  local abs, best = math.abs, math.huge
  for _ = 1, 5 do
    local t = os.clock()
    for i = 1, 1000000 do abs(i) end
    best = math.min(best, os.clock() - t)
  end
  return best / 1000000 * 1e9
end

-- Each figure is also scaled to the machine the targets were set on, where a call from Lua
-- into a C function costs about 20 ns: the speed of shared machines drifts, so the cost of
-- such a call is measured before and after each measurement and the ratio kept (the best of
-- several rounds, which errs on the low side for the scaled figure).
local function report(what, count, seconds)
  local after = host_call_ns()
  local host = (HOST_NS + after) / 2
  print(string.format("%-32s %10.0f /s   %8.1f ns each   %10.0f /s at a 20 ns host call", what,
    count / seconds, seconds / count * 1e9, count / seconds * host / 20))
  HOST_NS = host_call_ns()
end

stage.waitfor("m", function (i) COUNT = COUNT + 1 end)
stage.waitfor("s", function (i) return i end)

stage.waitfor("drive", function (left)
  local n = left < 10000 and left or 10000
  for i = 1, n do stage.signal("m", i) end
  if left > n then stage.signal("drive", left - n) else stage.signal("measured") end
end)

stage.waitfor("measured", function ()
  local seconds = os.clock() - START
  assert(COUNT == N, "lost messages: " .. COUNT .. " of " .. N)
  REPORT("self-messages (signal→handler)", N, seconds)

  SYNC_LEFT, SYNC_TIME = N, 0
  stage.signal("sync")
end)

-- Synchronous calls in slices of 100,000, each slice one invocation (under the stage budget).
stage.waitfor("sync", function ()
  local n = SYNC_LEFT < 100000 and SYNC_LEFT or 100000
  local start = os.clock()
  for i = 1, n do stage.signal(":s", i) end
  SYNC_TIME = SYNC_TIME + (os.clock() - start)
  SYNC_LEFT = SYNC_LEFT - n
  if SYNC_LEFT > 0 then stage.signal("sync") return end
  REPORT("synchronous :msg calls", N, SYNC_TIME)
  stage.signal("timers")
end)

stage.waitfor("timers", function ()
  FIRED, TIMING = 0, true
  for i = 1, 2000 do
    stage.addtask(1, function () FIRED = FIRED + 1 return TIMING and 1 or 0 end)
  end
  T0 = thread.tick
  stage.addtask(2000, function ()
    local fired, seconds = FIRED, thread.tick - T0
    TIMING = false
    REPORT("timers fired (2000 × 1 ms)", fired, seconds)
    stage.signal("jobs")
    return 0
  end)
end)

-- No-op jobs on the worker pool, submitted in slices; two marker jobs submitted last tell
-- when the queue has drained. Worker threads run in parallel: wall-clock time.
JOBS = N // 4
stage.waitfor("jobs", function ()
  JOBS_LEFT, MARKERS, J0 = JOBS, 0, thread.tick
  stage.signal("submit")
end)
stage.waitfor("submit", function ()
  local n = JOBS_LEFT < 20000 and JOBS_LEFT or 20000
  for i = 1, n do stage.submit(0, NOOP, i) end
  JOBS_LEFT = JOBS_LEFT - n
  if JOBS_LEFT > 0 then stage.signal("submit") return end
  for i = 1, 2 do stage.submit(0, function () stage.signal("marker") end) end
end)
stage.waitfor("marker", function ()
  MARKERS = MARKERS + 1
  if MARKERS < 2 then return end
  REPORT("stage.submit no-op jobs", JOBS, thread.tick - J0)
  stage.signal("threads")
end)

-- thread.new round trips: a job returns its argument to the handle's callback; 64 in flight.
TRIPS = N // 20
stage.waitfor("threads", function ()
  STARTED, RETURNED, T1 = 0, 0, thread.tick
  for i = 1, 64 do LAUNCH() end
end)
function LAUNCH()
  STARTED = STARTED + 1
  thread.new(ECHO, STARTED).waitfor(BACK)
end
function BACK(i)
  RETURNED = RETURNED + 1
  if STARTED < TRIPS then LAUNCH() end
  if RETURNED == TRIPS then
    REPORT("thread.new round trips", TRIPS, thread.tick - T1)
    stage.signal("snapshots")
  end
end

-- Reads of a `*`-declared table of 100 fields: each read is a fresh copy.
_SANDBOX[""] = { "*BIG" }
-- In slices of 5,000 reads, each slice one invocation (under the stage budget).
stage.waitfor("snapshots", function ()
  local big = {}
  for i = 1, 100 do big["field" .. i] = i end
  BIG = big
  READS, READ_LEFT, READ_TIME = N // 20, N // 20, 0
  stage.signal("read")
end)
stage.waitfor("read", function ()
  local n = READ_LEFT < 5000 and READ_LEFT or 5000
  local sum, start = 0, os.clock()
  for i = 1, n do sum = sum + BIG.field100 end
  READ_TIME = READ_TIME + (os.clock() - start)
  assert(sum == n * 100)
  READ_LEFT = READ_LEFT - n
  if READ_LEFT > 0 then stage.signal("read") return end
  REPORT("snapshot reads (100 fields)", READS, READ_TIME)
  stage.exit()
end)

REPORT = report
NOOP = function (i) end
ECHO = function (i) return i end
-- Whatever happens, the bench ends.
stage.addtask(300000, function () print("stage bench: did not finish within 300 s") stage.exit() return 0 end)
HOST_NS = host_call_ns()
print(string.format("stage bench: %d messages, one stage thread, %s; a host call (math.abs) costs %.1f ns here",
  N, _VERSION, HOST_NS))
START = os.clock()
stage.signal("drive", N)
