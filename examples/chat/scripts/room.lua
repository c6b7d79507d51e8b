-- A chat room: members join and leave, and every line said goes to every member.
-- The room's state lives in globals of its stage thread, which persist between handlers.
MEMBERS = {}       -- name -> stage id that receives the member's lines
SAID = 0

-- A global function: handlers lose captured locals when they are registered, globals stay.
function broadcast(from, text)
  for name, owner in pairs(MEMBERS) do
    stage.signal(owner .. ":heard", name, from, text)
  end
end

print("room: open")

return {
  -- "room:join=cb" → replies to the sender's `cb` with the new member count.
  join = function (name)
    MEMBERS[name] = _WAITFOR[2]
    broadcast("room", name .. " joined")
    local count = 0
    for _ in pairs(MEMBERS) do count = count + 1 end
    return count
  end,

  say = function (name, text)
    if not MEMBERS[name] then return false, "not a member: " .. name end
    SAID = SAID + 1
    broadcast(name, text)
  end,

  leave = function (name)
    MEMBERS[name] = nil
    broadcast("room", name .. " left")
  end,

  -- "room:stats" → the number of lines said so far.
  stats = function () return SAID end,
}
