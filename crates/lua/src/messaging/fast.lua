-- The stage thread's fast path (see fast.rs): synchronous `:msg` calls to plain handlers,
-- and the queue of messages a stage sends to itself, dispatched without leaving Lua.
-- Its parts come in one table, by name (fast.rs, FastPath::install).
local P = ...
local B, ID, ADDR = P.globals, P.id, P.address
local raw_signal, raw_reply, classify, copy_args = P.signal, P.reply, P.classify, P.copy_args
local slow_deliver, report, wall_ms, mark = P.deliver, P.report, P.wall_ms, P.mark
local error_text, limit, max_bytes, too_large_error = P.error_text, P.mailbox, P.max_bytes, P.too_large
local xpcall, select, type, error, rawget = xpcall, select, type, error, rawget
local tostring, unpack, traceback = tostring, table.unpack, debug.traceback

-- How a target is sent: SYNC_CALL `:msg`, TO_SELF a message to this very instance,
-- OTHER_STAGE a message to another stage, 0 anything else.
local SYNC_CALL <const>, TO_SELF <const>, OTHER_STAGE <const> = 1, 2, 3
-- A message to another stage and a reply when all values are plain data (plain.rs): they
-- return true when done, false when they failed (failure() tells why), nothing when
-- raw_signal or raw_reply is to do the work.
local send_plain, reply_plain, failure = P.send_plain, P.reply_plain, P.failure

-- The results of raw_signal, raw_reply and failure, which return `true` and their results, or
-- `false`, an error message and whether it is to be located at the calling line (errors.rs).
-- Called in tail position from signal, so that level 2 is the line that called stage.signal.
local check = P.check
-- Plain handlers by name: no registration arguments, no captured upvalues, no '=' in the name.
local H = {}
-- Parsed targets: kind and message id, cleared when it grows large.
local KIND, MSG, cached = {}, {}, 0
local calls, errors, sent, handled = 0, 0, 0, 0

-- `_WAITFOR` tables are reused, one per nesting depth: valid while the handler runs (scripts
-- read it, they do not write it). WS serves synchronous calls, whose tables never hold a reply
-- address, so only their message id changes: storing nil into a missing key is Lua's slow path.
-- B (the state's globals) sends reads of missing names to its `__index` function: reads of
-- B._WAITFOR where it is usually nil (outside handlers) are rawget.
local W, WS, depth = {}, {}, 0

-- The queue: parallel arrays, so a one-value message allocates nothing. QR is who sent it:
-- 0 this stage (a reply is expected), 1 this stage's automatic reply, 2 nobody (explicit reply).
-- The arrays are a ring of SIZE slots (a power of two), doubled when it is full: the message at
-- position p (head <= p < tail) is in slot (p & MASK) + 1. Every slot is set from the start, so
-- the arrays stay in Lua's array part: clearing a slot never makes a table rehash, and a stream
-- of messages that never lets the queue run empty reuses the same slots.
local SIZE, MASK = 256, 255
local function ring(size)
  local t = {}
  for i = 1, size do t[i] = false end
  return t
end
local QM, QN, Q1, QA, QR, QD = ring(SIZE), ring(SIZE), ring(SIZE), ring(SIZE), ring(SIZE), ring(SIZE)
local head, tail = 0, 0

-- Doubles the ring, moving the queued messages to their slots in the larger one.
local function grow()
  local size = SIZE * 2
  local mask = size - 1
  local m, n, one, all, r, d = ring(size), ring(size), ring(size), ring(size), ring(size), ring(size)
  for p = head, tail - 1 do
    local o, s = (p & MASK) + 1, (p & mask) + 1
    m[s], n[s], one[s], all[s], r[s], d[s] = QM[o], QN[o], Q1[o], QA[o], QR[o], QD[o]
  end
  QM, QN, Q1, QA, QR, QD, SIZE, MASK = m, n, one, all, r, d, size, mask
end
-- How many queued messages have a deadline: while none has, QD is not read (reading a missing
-- key costs a call into Lua's slow path).
local timed = 0

local function full()
  error("the mailbox of '" .. ID .. "' is full (" .. (tail - head) .. " messages waiting)", 3)
end

local function push(msg, sender, deadline, n, ...)
  if tail - head >= limit then full() end
  if tail - head == SIZE then grow() end
  local t = tail
  local s = (t & MASK) + 1
  QM[s], QN[s], QR[s] = msg, n, sender
  if deadline then QD[s] = deadline timed = timed + 1 end
  if n == 1 then Q1[s] = ... elseif n > 1 then QA[s] = { ... } end
  tail = t + 1
  sent = sent + 1
end

-- The copies made by copy_args, or its error raised at the line that sent the message.
local function copied(ok, ...)
  if ok then return ... end
  error((...), 3)
end

local function too_large(msg, size)
  error(too_large_error(ID .. ":" .. msg, size), 3)
end

local function enqueue(msg, ...)
  local n = select("#", ...)
  local size = #msg + #ID + 1
  for i = 1, n do
    local v = (select(i, ...))
    local kind = type(v)
    if kind == "string" then
      size = size + #v + 6
    elseif kind ~= "number" and kind ~= "boolean" and kind ~= "nil" then
      return push(msg, 0, nil, n, copied(copy_args(msg, ...)))
    else
      size = size + 9
    end
  end
  if size > max_bytes then too_large(msg, size) end
  return push(msg, 0, nil, n, ...)
end

-- What a synchronous call replaced, by depth; restored when the call ends, also by an error
-- (a to-be-closed value: cheaper than a pcall, and the error keeps its traceback). Entries are
-- overwritten, not cleared: storing into a key that holds nil is Lua's slow path.
local SAVED = {}
local SYNC_END = setmetatable({}, { __close = function ()
  local d = depth
  B._WAITFOR = SAVED[d]
  depth = d - 1
end })
-- The `_WAITFOR` tables of synchronous calls: while one is current, `stage.signal(nil, ...)`
-- does nothing (the handler's return values are the reply).
local SYNC_W = {}

local function signal(target, ...)
  local kind = KIND[target]
  if kind == nil then
    if type(target) ~= "string" then
      if target == nil then
        local w = rawget(B, "_WAITFOR")
        if SYNC_W[w] then return end
        if type(w) == "table" then
          local sent = reply_plain(w[0], w[1], w[2], ...)
          if sent then return elseif sent == false then return check(failure()) end
          return check(raw_reply(w[0], w[1], w[2], ...))
        end
      end
      return check(raw_signal(target, ...))
    end
    local msg
    kind, msg = classify(target)
    if cached > 4096 then KIND, MSG, cached = {}, {}, 0 end
    KIND[target], MSG[target], cached = kind, msg, cached + 1
  end
  if kind == OTHER_STAGE then
    local sent = send_plain(target, ...)
    if sent then return elseif sent == false then return check(failure()) end
  elseif kind == TO_SELF then
    local msg = MSG[target]
    if select("#", ...) == 1 then
      local v = ...
      local tv = type(v)
      if tv == "number" or tv == "boolean" then
        local t = tail
        if t - head >= limit then full() end
        if t - head == SIZE then grow() end
        local s = (t & MASK) + 1
        QM[s], QN[s], QR[s], Q1[s] = msg, 1, 0, v
        tail = t + 1
        sent = sent + 1
        return
      end
    end
    return enqueue(msg, ...)
  elseif kind == SYNC_CALL then
    local msg = MSG[target]
    local h = H[msg]
    if h then
      local d = depth + 1
      local w = WS[d]
      if w == nil then w = {} WS[d] = w SYNC_W[w] = true end
      if w[0] ~= msg then w[0], w[-1] = msg, msg end
      SAVED[d] = B._WAITFOR
      depth = d
      B._WAITFOR = w
      calls = calls + 1
      local _ <close> = SYNC_END
      return h(...)
    end
  end
  return check(raw_signal(target, ...))
end

local function reply_id(msg)
  local at = msg:find("=", 1, true)
  return at and msg:sub(at + 1) or msg
end

-- Sends a handler's results back to this very stage (the sender of a self message).
local function auto_reply(msg, ...)
  local n = select("#", ...)
  if n == 0 then return end
  for i = 1, n do
    local kind = type((select(i, ...)))
    if kind ~= "number" and kind ~= "string" and kind ~= "boolean" and kind ~= "nil" then
      return push(reply_id(msg), 1, nil, n, copied(copy_args(msg, ...)))
    end
  end
  return push(reply_id(msg), 1, nil, n, ...)
end

-- Counts a handler call of message `msg` and makes the `_WAITFOR` of the next depth current
-- for it (the caller lowers the depth when the handler returns).
-- Storing nil into a key that holds nil is Lua's slow path: the sender's fields are stored
-- only when they change (most runs have none, or the same).
local function enter(msg, name, address, stage)
  calls = calls + 1
  local d = depth + 1
  local w = W[d]
  if w == nil then w = {} W[d] = w end
  depth = d
  B._WAITFOR = w
  w[0], w[-1] = msg, name
  if w[1] ~= address then w[1] = address end
  if w[2] ~= stage then w[2] = stage end
end

-- Runs queued messages until `budget` are handled; an error ends the run (see drain).
local function run(budget)
  while head < tail and handled < budget do
    local t = head
    local s = (t & MASK) + 1
    local msg, n, sender, one = QM[s], QN[s], QR[s], Q1[s]
    local all, deadline
    if n > 1 then all = QA[s] QA[s] = false end
    if timed > 0 then
      deadline = QD[s]
      if deadline then QD[s] = false timed = timed - 1 end
    end
    Q1[s] = false
    head = t + 1
    handled = handled + 1
    mark()  -- each message is an invocation of its own for the budget
    if not deadline or wall_ms() < deadline then
      local h = H[msg]
      if h == nil then
        if n == 0 then slow_deliver(msg, sender)
        elseif n == 1 then slow_deliver(msg, sender, one)
        else slow_deliver(msg, sender, unpack(all, 1, n)) end
      else
        if sender == 0 then
          enter(msg, msg, ADDR, ID)
          if n == 0 then auto_reply(msg, h())
          elseif n == 1 then auto_reply(msg, h(one))
          else auto_reply(msg, h(unpack(all, 1, n))) end
        else
          enter(msg, msg, sender == 1 and ADDR or nil, nil)
          if n == 0 then h()
          elseif n == 1 then h(one)
          else h(unpack(all, 1, n)) end
        end
        depth = depth - 1
      end
    end
  end
  -- Cleared once per run, not per message: storing into a key that holds nil is Lua's slow
  -- path, and no script runs between two messages of a run.
  B._WAITFOR = nil
end

local function on_error(e)
  if type(e) == "userdata" then e = error_text(e) end
  return traceback(tostring(e), 2)
end

-- Handles at most `budget` queued messages; returns how many are left and the counts since the
-- last call (handled, handler calls, handler errors, messages sent). A handler's error is
-- reported and the next message is served.
-- The counts since the last call: handler calls, handler errors, messages sent.
local function counts()
  local c, e, s = calls, errors, sent
  calls, errors, sent = 0, 0, 0
  return c, e, s
end

local function drain(budget)
  handled = 0
  while true do
    local ok, e = xpcall(run, on_error, budget)
    if ok then break end
    errors = errors + 1
    depth = 0
    B._WAITFOR = nil
    report(e)
  end
  return tail - head, handled, counts()
end

-- Queues an already copied message (from the runtime's own paths, e.g. a reply to this stage).
local function post(msg, sender, deadline, ...)
  return push(msg, sender, deadline, select("#", ...), ...)
end

-- Calls a handler, timer or idle function for the runtime: `true` and its results, or `false`
-- and the error with its traceback. With a message id, `_WAITFOR` is the message's while it
-- runs.
local function finish(previous, ok, ...)
  B._WAITFOR = previous
  if ok then return true, ... end
  return false, (...)
end
local function invoke(f, msg, name, address, stage, ...)
  if msg == nil then return xpcall(f, on_error, ...) end
  local previous = rawget(B, "_WAITFOR")
  B._WAITFOR = { [0] = msg, [-1] = name, address, stage }
  return finish(previous, xpcall(f, on_error, ...))
end

-- Runs of mailbox messages for plain handlers, written into MB by the runtime
-- (FastPath::write_mail). Per message: its id, the name of its handler (`true`: the id), the
-- sender's address and stage id (`false`: none), its globals as a count and name-value pairs,
-- and its values as a count and the values. MB is filled with `false` up to
-- its size once, so the runtime's writes always land in its array part.
local mail_slots, slow_mail, mail_reply = P.mail_slots, P.deliver_mail, P.mail_reply
local MB = {}
for i = 1, mail_slots do MB[i] = false end
local mnext, mlast, mcount = 1, 0, 0
-- The globals the running batch message replaced: name, previous value, ...
local GS, gsaved = {}, 0

local function restore_globals()
  for i = gsaved - 1, 1, -2 do B[GS[i]] = GS[i + 1] end
  gsaved = 0
end

-- Sends a handler's results back to the sender of a mailbox message.
local function reply_mail(msg, addr, stg, ...)
  if select("#", ...) > 0 then return mail_reply(msg, addr, stg, ...) end
end

-- Runs the batch's messages from `mnext` on; an error ends the run (see drain_mail).
local function run_mail()
  while mnext <= mlast do
    local p = mnext
    local msg = MB[p]
    mcount = mcount + 1
    mark()  -- each message is an invocation of its own for the budget
    local at = p + 5 + 2 * MB[p + 4]
    local n = MB[at]
    mnext = at + 1 + n
    local name = MB[p + 1]
    if name == true then name = msg end
    -- Looked up again: an earlier message of the run may have changed the handlers.
    local h = H[name]
    if h == nil then
      slow_mail(mcount)
    else
      local addr, stg = MB[p + 2], MB[p + 3]
      for i = p + 5, at - 1, 2 do
        local name = MB[i]
        GS[gsaved + 1], GS[gsaved + 2] = name, rawget(B, name)
        gsaved = gsaved + 2
        B[name] = MB[i + 1]  -- B has no __newindex
      end
      enter(msg, name, addr or nil, stg or nil)
      if stg then
        if n == 1 then reply_mail(msg, addr, stg, h(MB[at + 1]))
        else reply_mail(msg, addr, stg, h(unpack(MB, at + 1, at + n))) end
      elseif n == 1 then h(MB[at + 1])
      else h(unpack(MB, at + 1, at + n)) end
      depth = depth - 1
      if gsaved > 0 then restore_globals() end
    end
  end
  B._WAITFOR = nil
end

-- Handles the run of `last` slots the runtime wrote, then clears slots 1 to `clear` (where
-- long strings were: shorter ones may stay until overwritten); returns the counts since the
-- last call (handler calls, handler errors, messages sent). A handler's error is reported and
-- the next message is served.
local function drain_mail(last, clear)
  mnext, mlast, mcount = 1, last, 0
  while true do
    local ok, e = xpcall(run_mail, on_error)
    if ok then break end
    errors = errors + 1
    depth = 0
    if gsaved > 0 then restore_globals() end
    B._WAITFOR = nil
    report(e)
  end
  for i = 1, clear do MB[i] = false end
  return counts()
end

return H, signal, drain, post, invoke, MB, drain_mail
