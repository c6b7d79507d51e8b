-- The global environment of one Lua state (sandbox.md §3–10); see sandbox.rs.
--
-- E is the environment object every chunk and shipped function of the state has as _ENV, B the
-- state's real globals, native the process store's functions.
--
-- Until the state creates its first coroutine, E is itself the private table of the state's one
-- context: reads of private globals are plain table reads, misses fall through to B and then to
-- the store (B's __index). The first coroutine.create / coroutine.wrap empties E into P0 and
-- turns E into a proxy that finds the running coroutine's private table (a shallow copy of its
-- resumer's, taken at its first global access).
local E, B, native = ...
local rawget, rawset, next, type, setmetatable, tostring, error, pcall, select =
  rawget, rawset, next, type, setmetatable, tostring, error, pcall, select
local mtype, format = math.type, string.format
local create, resume, running = coroutine.create, coroutine.resume, coroutine.running

-- Names the runtime writes in B whatever context runs (clarification 31).
local runtime = { _TRACEBACK = true, _WAITFOR = true, arg = true }
-- State-shared declarations: name -> { ro = bool, idx = string }.
local declared = {}
local dispatching = false
local P0 = E
local contexts = setmetatable({}, { __mode = "k" })
local resumer = setmetatable({}, { __mode = "k" })
-- Every proxy made here -> the real table behind it.
local real_of = setmetatable({}, { __mode = "k" })

-- stage.index (§10): keys that are neither strings nor numbers become strings or numbers.
local function convert_key(key, where, t)
  local kind = type(key)
  if kind == "string" or kind == "number" then return key end
  local stage = rawget(B, "stage")
  local hook = type(stage) == "table" and rawget(stage, "index")
  if type(hook) ~= "function" then return tostring(key) end
  local k = hook(key, where, t)
  kind = type(k)
  if k == nil or kind == "string" or kind == "number" then return k end
  return tostring(k)
end

-- A table reached through a declared state-shared name: its odd keys go through stage.index.
local keyed_cache = setmetatable({}, { __mode = "k" })
local function keyed(t, where)
  local by_where = keyed_cache[t]
  if by_where == nil then
    by_where = {}
    keyed_cache[t] = by_where
  end
  local proxy = by_where[where]
  if proxy then return proxy end
  proxy = setmetatable({}, {
    __index = function (_, k)
      k = convert_key(k, where, t)
      if k == nil then return nil end
      return t[k]
    end,
    __newindex = function (_, k, v)
      k = convert_key(k, where, t)
      if k ~= nil then t[k] = real_of[v] or v end
    end,
    __pairs = function () return next, t, nil end,
    __len = function () return #t end,
    __tostring = function () return tostring(t) end,
  })
  real_of[proxy] = t
  by_where[where] = proxy
  return proxy
end

-- A snapshot of a stored value whose writes, at any depth, store the whole root again (§6).
local function write_back(ns, name, root, t, where)
  local proxy
  proxy = setmetatable({}, {
    __index = function (_, k)
      k = convert_key(k, where, t)
      if k == nil then return nil end
      local v = t[k]
      if type(v) == "table" then return write_back(ns, name, root, v, where) end
      return v
    end,
    __newindex = function (_, k, v)
      k = convert_key(k, where, t)
      if k == nil then return end
      t[k] = real_of[v] or v
      local err = native.set(ns, name, root)
      if err then error(err, 2) end
    end,
    __pairs = function ()
      return function (_, k)
        local nk, v = next(t, k)
        if type(v) == "table" then v = write_back(ns, name, root, v, where) end
        return nk, v
      end, proxy, nil
    end,
    __len = function () return #t end,
  })
  real_of[proxy] = t
  return proxy
end

-- A fresh write-back snapshot of a stored value, nil when absent.
local function snapshot(ns, name)
  local v, where = native.get(ns, name)
  if type(v) == "table" then return write_back(ns, name, v, v, where) end
  return v
end

-- Reads that miss the private table and B look in the store (read step 2); the names the
-- runtime sets in B are never the store's (the runtime reads `_WAITFOR` for every message).
setmetatable(B, {
  __metatable = false,
  __index = function (_, k)
    if type(k) == "string" and not runtime[k] then return snapshot(0, k) end
  end,
})

-- Reads of B once state-shared names are declared (read step 5).
local function read_declared(_, k)
  local v = B[k]
  if type(v) == "table" then
    local d = declared[k]
    if d then return keyed(v, d.idx) end
  end
  return v
end

-- The metatable of E, changed in place when the state starts dispatching.
local PM = { __metatable = false, __index = B }
-- The metatable of every private table while dispatching.
local CM = { __index = B }

local function copy_context(from)
  local p = {}
  for k, v in next, from do
    local kind = type(v)
    if kind ~= "thread" and kind ~= "userdata" then p[k] = v end
  end
  return setmetatable(p, CM)
end

-- The private table of the running context.
local function current()
  if not dispatching then return E end
  local co, main = running()
  if main then return P0 end
  local p = contexts[co]
  if p == nil then
    p = copy_context(resumer[co] or P0)
    contexts[co] = p
  end
  return p
end

local write

local function declare_one(spec, ro, value, level)
  local first = spec:sub(1, 1)
  local process = first == "*"
  if process or first == "@" then spec = spec:sub(2) end
  local name, idx = spec:match("^([^:]+):(.+)$")
  name = name or spec
  if name == "" then error("_SANDBOX[\"\"]: an empty name cannot be declared", level) end
  if process then
    local err = native.declare(name, ro, idx or "sandbox", value)
    if err then error(err, level) end
  else
    declared[name] = { ro = ro, idx = idx or "thread" }
    if ro then rawset(B, name, value) end
    PM.__index = read_declared
    CM.__index = read_declared
  end
  -- Reads of a declared name no longer find an earlier private value (decision Q6).
  rawset(current(), name, nil)
end

local function declare(items, level)
  if type(items) ~= "table" then
    error("_SANDBOX[\"\"] = v: v must be a table of declarations", level)
  end
  for k, v in next, items do
    if mtype(k) == "integer" then
      if type(v) ~= "string" then
        error(format("_SANDBOX[\"\"]: item %d must be a name, got a %s", k, type(v)), level)
      end
      declare_one(v, false, nil, level + 1)
    elseif type(k) == "string" then
      declare_one(k, true, v, level + 1)
    end
  end
end

-- A write of a name absent from private table p (write steps 1–6); `level` locates errors at
-- the assignment.
write = function (p, k, v, level)
  if k == "" then
    declare(v, level + 1)
    return
  end
  if runtime[k] then return rawset(B, k, v) end
  if k == "__" then error("'__' is the process store accessor and cannot be assigned", level) end
  local d = declared[k]
  if d then
    if d.ro then error("read only", level) end
    return rawset(B, k, v)
  end
  if type(k) == "string" then
    local taken = native.write(k, v)
    if taken == true then return end
    if taken then error(taken, level) end
  end
  rawset(p, k, v)
end

-- pairs(_SANDBOX): the private globals, then every stored name with its snapshot (§9).
local function pairs_sandbox()
  local p, names, i = current(), nil, 0
  return function (_, k)
    if names == nil then
      local nk, v = next(p, k)
      if nk ~= nil then return nk, v end
      names = native.names(0)
    end
    while true do
      i = i + 1
      local name = names[i]
      if name == nil then return nil end
      local v = snapshot(0, name)
      if v ~= nil then return name, v end
    end
  end, E, nil
end

local shown = format("sandbox: %p", E)
PM.__newindex = function (t, k, v) write(t, k, v, 3) end
PM.__pairs = pairs_sandbox
PM.__tostring = function () return shown end
setmetatable(E, PM)

local function dispatch()
  if dispatching then return end
  P0 = {}
  for k, v in next, E do P0[k] = v end
  for k in next, P0 do rawset(E, k, nil) end
  CM.__index = PM.__index
  setmetatable(P0, CM)
  dispatching = true
  PM.__index = function (_, k) return current()[k] end
  PM.__newindex = function (_, k, v)
    local p = current()
    if rawget(p, k) ~= nil then rawset(p, k, v) else write(p, k, v, 3) end
  end
  PM.__len = function () return #current() end
end

coroutine.create = function (f)
  dispatch()
  return create(f)
end
coroutine.resume = function (co, ...)
  if dispatching and contexts[co] == nil then resumer[co] = current() end
  return resume(co, ...)
end
coroutine.wrap = function (f)
  local co = coroutine.create(f)
  local function finish(ok, ...)
    if ok then return ... end
    local e = ...
    if type(e) == "string" then error(e, 2) end
    error(e, 0)
  end
  return function (...) return finish(coroutine.resume(co, ...)) end
end

-- The process store accessor `__` and its numbered namespaces (§7).
local accessors = {}
local function accessor(ns)
  local made = accessors[ns]
  if made then return made end
  local function name_of(k)
    k = convert_key(k, "sandbox", {})
    if k ~= nil and type(k) ~= "string" then k = tostring(k) end
    return k
  end
  local shown_ns = format("sandbox: %p [%d]", E, ns)
  made = setmetatable({}, {
    __metatable = false,
    __index = function (_, k)
      if mtype(k) == "integer" then
        if ns ~= 0 or k < 1 then error("The access index is incorrectly specified.", 2) end
        return accessor(k)
      end
      k = name_of(k)
      if k == nil then return nil end
      return (native.get(ns, k))
    end,
    __newindex = function (_, k, v)
      if mtype(k) == "integer" and ns == 0 then
        if v ~= nil then error("__[n] = v: a namespace can only be cleared, with nil", 2) end
        return native.clear(k)
      end
      k = name_of(k)
      if k == nil then return end
      local err = native.set(ns, k, v)
      if err then error(err, 2) end
    end,
    __call = function (_, name, ...)
      if type(name) ~= "string" then name = name_of(name) end
      if name == nil then return nil end
      if select("#", ...) == 0 then return snapshot(ns, name) end
      local v = ...
      if type(v) == "function" then return native.update(ns, name, v) end
      local err = native.set(ns, name, v)
      if err then error(err, 2) end
      if v ~= nil then return v end
    end,
    __pairs = function (self)
      local names, i = native.names(ns), 0
      return function ()
        while true do
          i = i + 1
          local name = names[i]
          if name == nil then return nil end
          local v = snapshot(ns, name)
          if v ~= nil then return name, v end
        end
      end, self, nil
    end,
    __tostring = function () return shown_ns end,
  })
  accessors[ns] = made
  return made
end

rawset(B, "__", accessor(0))
rawset(B, "_SANDBOX", E)

-- Fresh private globals (a worker's next run).
local function reset()
  if dispatching then
    P0 = setmetatable({}, CM)
  else
    for k in next, E do rawset(E, k, nil) end
  end
end

-- stage.call: f sees the caller's globals; what it assigns is gone when it returns (§4.4).
local function isolated(f, ...)
  local p = current()
  local saved = {}
  for k, v in next, p do saved[k] = v end
  local function restore(ok, ...)
    for k in next, p do
      if saved[k] == nil then rawset(p, k, nil) end
    end
    for k, v in next, saved do rawset(p, k, v) end
    if not ok then error((...), 0) end
    return ...
  end
  return restore(pcall(f, ...))
end

return reset, isolated
