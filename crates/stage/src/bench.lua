-- `stage bench`: messages, synchronous calls and timers on one stage thread.
-- Handlers lose their upvalues when registered, so everything they share is global.
N = math.tointeger(tonumber(arg[1]))
COUNT = 0

local function report(what, count, seconds)
  print(string.format("%-28s %12.0f /s   %8.1f ns each", what, count / seconds, seconds / count * 1e9))
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
  FIRED = 0
  for i = 1, 2000 do
    stage.addtask(1, function () FIRED = FIRED + 1 return 1 end)
  end
  T0 = thread.tick
  stage.addtask(2000, function ()
    local fired, seconds = FIRED, thread.tick - T0
    REPORT("timers fired (2000 × 1 ms)", fired, seconds)
    stage.exit()
    return 0
  end)
end)

REPORT = report
-- Whatever happens, the bench ends.
stage.addtask(300000, function () print("stage bench: did not finish within 300 s") stage.exit() return 0 end)
print(string.format("stage bench: %d messages, one stage thread, %s", N, _VERSION))
START = os.clock()
stage.signal("drive", N)
