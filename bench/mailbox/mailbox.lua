-- Chains of self-messages through stage next to a mailbox written in plain Lua, in one node
-- (bench/mailbox/run.sh runs it, alternating the order from run to run):
--   stage: the handler `step` sends its chain's next message to its own stage with
--          stage.signal("step", chain), the form for "this stage, after the current invocation"
--          (messaging.md §6.2); CHAINS chains (64) run at once, TOTAL messages (1,000,000) in
--          all. Each message goes through stage's queue of self-messages (messaging/fast.lua): the
--          send checks the target and the value, the stage thread dispatches the queue in
--          batches of 256 under one xpcall, per message setting `_WAITFOR`, moving the
--          budget's epoch and sending any return values back as a reply, and goes back to the
--          runtime between batches (mailbox, timers). The last chain to end sends `ended`.
--   plain: plain.lua, the same handler bodies (with `mailbox.signal` for `stage.signal`) on a
--          FIFO of parallel arrays and a dispatch loop, run here as one invocation of this
--          stage thread (same Lua build, same globals table), twice: the dequeued value slot
--          set to nil, as stage's queue did before it became a ring, and set to false (see plain.lua: with 64
--          messages in flight, nil makes Lua rehash the value array at every message).
-- Both sides keep the chains' state in globals (COUNT, STEPS, ENDED) and check that exactly
-- TOTAL step handler calls happened and every chain ran to its end. Times are wall-clock
-- (process.tick, ms resolution) from before the first message to the `ended` handler; CPU
-- time (os.clock, the whole process) is printed next to them.
-- Lines "RESULT <what> <messages> <wall s> <cpu s>" are read by run.sh.
TOTAL = math.tointeger(tonumber(process["%MAILBOX_TOTAL"] or 1000000))
CHAINS = math.tointeger(tonumber(process["%MAILBOX_CHAINS"] or 64))
STAGE_FIRST = process["%MAILBOX_ORDER"] ~= "plain-first"

-- A failed check ends the node (run.sh then finds a result missing and shows the output).
function fail(problem)
  print("FAILED " .. problem)
  stage.exit()
end

stage.waitfor("step", function (chain)
  COUNT = COUNT + 1
  local left = STEPS[chain] - 1
  STEPS[chain] = left
  if left > 0 then
    stage.signal("step", chain)
  else
    ENDED = ENDED + 1
    if ENDED == CHAINS then stage.signal("ended") end
  end
end)

stage.waitfor("ended", function ()
  local wall, cpu = process.tick - STARTED, os.clock() - STARTED_CPU
  if COUNT ~= TOTAL then return fail("stage: " .. COUNT .. " handler calls, not " .. TOTAL) end
  for chain = 1, CHAINS do
    if STEPS[chain] ~= 0 then return fail("stage: chain " .. chain .. " fell short") end
  end
  print(string.format("RESULT stage %d %.3f %.3f", COUNT, wall, cpu))
  if STAGE_FIRST then stage.signal("plain") else stage.exit() end
end)

function chains()
  COUNT, ENDED, STEPS = 0, 0, {}
  for chain = 1, CHAINS do  -- the chains' lengths add up to TOTAL
    STEPS[chain] = TOTAL // CHAINS + (chain <= TOTAL % CHAINS and 1 or 0)
  end
  STARTED, STARTED_CPU = process.tick, os.clock()
  for chain = 1, CHAINS do stage.signal("step", chain) end
end

-- Both plain runs in one invocation: #limits.stage_budget_ms is raised in stage.json for it.
stage.waitfor("plain", function ()
  local run = stage.load("plain")
  for _, clear in ipairs({ { "nil", nil }, { "false", false } }) do
    local cpu = os.clock()
    local ok, wall, count = pcall(run, TOTAL, CHAINS, function () return process.tick end,
      clear[2])
    if not ok then return fail(wall) end
    cpu = os.clock() - cpu
    print(string.format("RESULT plain-%s %d %.3f %.3f", clear[1], count, wall, cpu))
  end
  if STAGE_FIRST then stage.exit() else chains() end
end)

print(string.format("MARK %s %d messages, %d chains", _VERSION, TOTAL, CHAINS))
if STAGE_FIRST then chains() else stage.signal("plain") end
