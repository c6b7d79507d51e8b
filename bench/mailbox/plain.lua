-- A mailbox written in plain Lua 5.4 doing the work of stage's queue of self-messages
-- (bench/mailbox/run.sh runs it; mailbox.lua has the stage side):
--   mailbox.signal(name, ...) appends the message to a FIFO: its name, its value count and its
--     values, in parallel arrays as stage's own queue (messaging/fast.lua) kept them before it
--     became a ring: a one-value message's value in an array of its own, so it allocates
--     nothing; more values in a table;
--   the dispatch loop takes the oldest message, clears its value slot, looks its handler up by
--     name in a table and calls it with the values, until the queue is empty.
-- The handlers are the bodies of mailbox.lua's, word for word except `mailbox.signal` for
-- `stage.signal`: `step` counts the call in COUNT, keeps its chain's remaining steps in STEPS
-- and sends the chain's next message; the last chain to end sends `ended`, which reads the
-- clock. Nothing more: no budget, no `_WAITFOR`, no automatic reply, no error handling.
-- Everything the handlers share is global, as it has to be in stage, where handlers lose their
-- upvalues.
--
-- `clear` is what a dequeued message's value slot is set to. nil is what stage's queue does, and
-- what a Lua FIFO usually does; with N messages in flight it leaves N live keys in a table whose
-- keys keep moving up, so the table lives in its hash part; when N is a power of two (64
-- chains!) a rehash sizes that part to exactly the N live keys, so the next insertion finds it
-- full and rehashes again: a rehash per message. false keeps every key, so the table stays an
-- array (it grows to one entry per message sent, as the name and count arrays do in both
-- mailboxes). run.sh measures both.
--
-- In stage, `stage.load("plain")` returns `run`. `lua5.4 plain.lua [TOTAL [CHAINS [nil|false]]]`
-- runs it and prints "RESULT <name> <messages> <seconds>", seconds of os.clock (the CPU time
-- of the single-threaded interpreter).
local select, unpack = select, table.unpack

local function run(total, chains, clock, clear)
  local QN, QC, Q1, QA = {}, {}, {}, {}  -- per message: name, value count, value, values
  local head, tail = 1, 1
  local HANDLERS = {}

  mailbox = {}
  function mailbox.signal(name, ...)
    local t = tail
    local n = select("#", ...)
    QN[t], QC[t] = name, n
    if n == 1 then Q1[t] = ... elseif n > 1 then QA[t] = { ... } end
    tail = t + 1
  end

  HANDLERS.step = function (chain)
    COUNT = COUNT + 1
    local left = STEPS[chain] - 1
    STEPS[chain] = left
    if left > 0 then
      mailbox.signal("step", chain)
    else
      ENDED = ENDED + 1
      if ENDED == CHAINS then mailbox.signal("ended") end
    end
  end
  HANDLERS.ended = function () FINISHED = CLOCK() end

  COUNT, ENDED, CHAINS, STEPS, CLOCK, FINISHED = 0, 0, chains, {}, clock, nil
  for chain = 1, chains do  -- the chains' lengths add up to total
    STEPS[chain] = total // chains + (chain <= total % chains and 1 or 0)
  end
  local started = clock()
  for chain = 1, chains do mailbox.signal("step", chain) end
  while head < tail do
    local t = head
    local name, n = QN[t], QC[t]
    head = t + 1
    local h = HANDLERS[name]
    if n == 1 then
      local v = Q1[t]
      Q1[t] = clear
      h(v)
    elseif n == 0 then
      h()
    else
      local all = QA[t]
      QA[t] = clear
      h(unpack(all, 1, n))
    end
  end
  assert(COUNT == total, "plain: " .. COUNT .. " handler calls, not " .. total)
  for chain = 1, chains do assert(STEPS[chain] == 0, "plain: a chain fell short") end
  assert(FINISHED, "plain: the end was not signalled")
  mailbox = nil
  return FINISHED - started, COUNT
end

if stage == nil then  -- the standalone interpreter
  local clear = nil
  if arg[3] == "false" then clear = false end
  local seconds, count = run(math.tointeger(tonumber(arg[1] or 1000000)),
    math.tointeger(tonumber(arg[2] or 64)), os.clock, clear)
  print(string.format("RESULT %s %d %.6f", clear == nil and "plain-nil" or "plain-false", count,
    seconds))
end
return run
