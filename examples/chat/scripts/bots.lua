-- Two chatty members of the room, driven by timers.
stage.waitfor("heard", function (member, from, text)
  print(string.format("[%s hears] %s: %s", member, from, text))
end)

stage.waitfor("joined", function (count)
  print("members in the room: " .. count)
end)

stage.waitfor("stats", function (said)
  print("lines said in the room: " .. said)
end)

stage.signal("room:join=joined", "alice")
stage.signal("room:join=joined", "bob")

local script = {
  { 100, "say",   "alice", "hi bob!" },
  { 200, "say",   "bob",   "hello alice" },
  { 300, "leave", "bob" },
  { 400, "say",   "alice", "anyone here?" },
  { 500, "stats" },
}
for _, step in ipairs(script) do
  -- Timer callbacks lose their upvalues, so each step travels as an argument.
  stage.addtask(step[1], function (s)
    stage.signal("room:" .. s[2], s[3], s[4])
    return 0
  end, step)
end
