//! `stage.waitfor` and `stage.signal` through the real binary (`messaging.md` §2–7).

mod common;
use common::App;

fn run(script: &str) -> common::Output {
    App::script(script).run(&[])
}

#[test]
fn waitfor_spec_example_generated_names_lookup_and_unregister() {
    let out = run(r#"
local id = stage.waitfor(function (ctx, reply) print("reply for", ctx.user, reply) end, {user = "kim"})
print(#id, id:match("^[0-9A-Za-z]+$") ~= nil)
local f, a = stage.waitfor(id)
print(type(f), a.user)
stage.waitfor(id, nil)
print(stage.waitfor(id))
print(#stage.waitfor(2, function () end), #stage.waitfor(9, function () end))
stage.exit()
"#);
    assert_eq!(
        out.lines(),
        ["16\ttrue", "function\tkim", "", "4\t9"],
        "{}",
        out.stderr
    );
}

#[test]
fn waitfor_registration_arguments_replace_and_list() {
    let out = run(r#"
print(stage.waitfor("h", function (...) print("h", ...) end, "A", {k = 1}))
stage.signal("h", 2)
stage.waitfor("h", function (...) print("h2", ...) end)      -- keeps the arguments
print(stage.waitfor("h", "B"))                                -- replaces only the arguments
print(stage.waitfor("absent", "B"))
local _, args = stage.waitfor("h")
print(args)
stage.waitfor("plain", function () end)
local list = stage.waitfor()
print(list.h, list.plain)
stage.waitfor("multi", function () end, 1, 2)
local _, many = stage.waitfor("multi")
print(#many, many[1], many[2])
stage.waitfor("end", function () stage.exit() end)
stage.signal("h", 3)
stage.signal("end")
"#);
    let lines = out.lines();
    assert_eq!(lines[0], "h");
    assert_eq!(lines[1], "h");
    assert_eq!(lines[2], "nil");
    assert_eq!(lines[3], "B");
    assert_eq!(lines[4], "B\ttrue");
    assert_eq!(lines[5], "2\t1\t2");
    // Queued messages meet the handler as it is when they are delivered.
    assert_eq!(lines[6..], ["h2\tB\t2", "h2\tB\t3"], "{}", out.stderr);
}

#[test]
fn a_single_table_registration_argument_arrives_whole_and_fresh() {
    let out = run(r#"
stage.waitfor("t", function (ctx, n) ctx.count = (ctx.count or 0) + n print(ctx.name, ctx.count) end, { name = "x" })
stage.signal("t", 5)
stage.signal("t", 7)
stage.waitfor("end", function () stage.exit() end)
stage.signal("end")
"#);
    assert_eq!(out.lines(), ["x\t5", "x\t7"], "{}", out.stderr);
}

#[test]
fn self_messages_arrive_after_the_current_invocation_with_every_value_spread() {
    let out = run(r##"
stage.waitfor("greet", function (a, b, c) print("greet", a, b, c, _WAITFOR[0], _WAITFOR[-1]) end)
stage.signal("greet", "x", "y", "z")
print("sent")
stage.waitfor("count", function (...) print("count", select("#", ...)) end)
stage.signal("count")
stage.signal("stage:count", 1, nil, 3)
stage.waitfor("late", function () print("late handler registered after signal") stage.exit() end)
stage.signal("late")
"##);
    assert_eq!(
        out.lines(),
        [
            "sent",
            "greet\tx\ty\tz\tgreet\tgreet",
            "count\t0",
            "count\t3",
            "late handler registered after signal"
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn matching_order_spec_example_and_separators() {
    let out = run(r#"
stage.waitfor("order.", function (n) print("family", _WAITFOR[-1], _WAITFOR[0], n) end)
stage.waitfor("@", function (n) print("catch-all", _WAITFOR[0], n) end)
stage.signal("order.created", 1)
stage.signal("unknown.thing", 2)
stage.waitfor("cmd?", function (n) print("query", _WAITFOR[-1], _WAITFOR[0], n) end)
stage.signal("cmd?x", 3)
stage.waitfor("a:b.", function (n) print("group", _WAITFOR[-1], _WAITFOR[0], n) end)
stage.signal("stage:a:b.c.d", 4)
stage.waitfor("order.placed", function (n) print("exact", _WAITFOR[-1], n) end)
stage.signal("order.placed=whatever", 5)
stage.waitfor("end", function () stage.exit() end)
stage.signal("end")
"#);
    assert_eq!(
        out.lines(),
        [
            "family\torder.\torder.created\t1",
            "catch-all\tunknown.thing\t2",
            "query\tcmd?\tcmd?x\t3",
            "group\ta:b.\ta:b.c.d\t4",
            "exact\torder.placed\t5"
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn unmatched_messages_are_ignored_without_catch_all() {
    let out = run(r#"
stage.signal("nobody", 1)
stage.waitfor("end", function () print("still running") stage.exit() end)
stage.signal("end")
"#);
    assert_eq!(out.lines(), ["still running"], "{}", out.stderr);
}

#[test]
fn waitfor_context_is_nil_outside_handlers_and_restored_around_sync_calls() {
    let out = run(r#"
print("main", _WAITFOR)
stage.waitfor("inner", function () print("inner", _WAITFOR[0], _WAITFOR[1], _WAITFOR[2]) return "r" end)
stage.waitfor("outer", function ()
  print("outer before", _WAITFOR[0], _WAITFOR[2])
  print("sync result", stage.signal(":inner"))
  print("outer after", _WAITFOR[0], _WAITFOR[2])
end)
stage.signal("outer")
stage.addtask(20, function () print("timer", _WAITFOR) stage.exit() return 0 end)
"#);
    assert_eq!(
        out.lines(),
        [
            "main\tnil",
            "outer before\touter\tstage",
            "inner\tinner\tnil\tnil",
            "sync result\tr",
            "outer after\touter\tstage",
            "timer\tnil"
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn synchronous_calls_spec_example_results_and_errors() {
    let out = run(r##"
stage.waitfor("step", function (t) print("inside", t.n) end)
print("before")
stage.signal(":step", { n = 2 })
print("after")
stage.waitfor("add", function (a, b) return a + b, "sum" end)
print(stage.signal(":add", 2, 3))
print(select("#", stage.signal(":missing", 1)))
stage.waitfor("fail", function () error("handler failed") end)
print(pcall(stage.signal, ":fail"))
local t = {}
stage.waitfor("same", function (x) return x end)
print(stage.signal(":same", t) == t)
stage.exit()
"##);
    assert_eq!(
        out.lines(),
        [
            "before",
            "inside\t2",
            "after",
            "5\tsum",
            "0",
            "false\tmain.lua:9: handler failed",
            "true"
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn automatic_replies_go_to_the_reply_id_or_the_same_name() {
    let app = App::new();
    app.file("stage.json", r##"{ "#startup": ["lua+calc", "lua+client"], "lua": { "calc": "calc", "client": "client" } }"##);
    app.file(
        "calc.lua",
        r#"
stage.waitfor("add", function (a, b) print("calc sees", _WAITFOR[0], _WAITFOR[2], _WAITFOR[1] ~= nil) return a + b end)
stage.waitfor("echo", function (v)
  stage.signal(nil, "first:" .. v)
  return "second:" .. v
end)
"#,
    );
    app.file(
        "client.lua",
        r#"
stage.waitfor("sum", function (v) print("sum", v, _WAITFOR[2], _WAITFOR[1] ~= nil) end)
stage.waitfor("add", function (v) print("add reply", v) end)
stage.waitfor("got", function (v) print("got", v) if v == "second:x" then stage.exit() end end)
stage.signal("calc:add=sum", 2, 3)
stage.addtask(30, function () stage.signal("calc:add", 4, 5) return 0 end)
stage.addtask(60, function () stage.signal("calc:echo=got", "x") return 0 end)
"#,
    );
    let out = app.run_args(&["run", "."]);
    assert_eq!(
        out.lines(),
        [
            "calc sees\tadd=sum\tclient\ttrue",
            "sum\t5\tnil\ttrue",
            "calc sees\tadd\tclient\ttrue",
            "add reply\t9",
            "got\tfirst:x",
            "got\tsecond:x"
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn reply_outside_a_handler_is_an_error_and_hand_made_contexts_work() {
    let out = run(r#"
print(pcall(stage.signal, nil, 1))
stage.waitfor("target", function (v) print("target got", v, _WAITFOR[1] ~= nil) end)
stage.signal({ [0] = "x=target", [1] = _WAITFOR, [2] = "stage" }, "ignored address form")
local saved
stage.waitfor("capture", function () SAVED = _WAITFOR[1] end)
stage.signal("capture")
stage.addtask(20, function ()
  stage.signal({ [0] = "x=target", [1] = SAVED, [2] = "stage" }, "hand-made")
  stage.signal({ "stage:target", SAVED, 5000 }, "direct with deadline")
  return 0
end)
stage.addtask(60, function () stage.exit() return 0 end)
"#);
    let lines = out.lines();
    assert!(
        lines[0].starts_with("false\t") && lines[0].contains("not a callback function"),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"target got\thand-made\tfalse"),
        "{lines:?}\n{}",
        out.stderr
    );
    assert!(
        lines.contains(&"target got\tdirect with deadline\ttrue"),
        "{lines:?}"
    );
}

#[test]
fn sender_id_forms_and_stage_to_stage_routing() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": [["lua+inventory"], ["lua+auction"], ["lua+shop"]], "lua": { "inventory": "inventory", "auction": "seller", "shop": "seller" } }"##,
    );
    app.file(
        "inventory.lua",
        r#"
stage.waitfor("shop:restock", function (v) print("from shop", v.item, _WAITFOR[2]) end)
stage.waitfor("auction:restock", function (v) print("from auction", v.item, _WAITFOR[2]) end)
stage.waitfor("plain", function (v) print("plain", v) DONE = (DONE or 0) + 1 if DONE == 2 then stage.exit() end end)
"#,
    );
    app.file(
        "seller.lua",
        r#"
stage.addtask(20 * process.stage, function ()
  local me = process.stage == 2 and "auction" or "shop"
  stage.signal("inventory+restock", { item = me == "auction" and "sword" or "shield" })
  stage.signal("inventory:plain", me)
  return 0
end)
"#,
    );
    let out = app.run_args(&["run", "."]);
    assert_eq!(
        out.lines(),
        [
            "from auction\tsword\tauction",
            "plain\tauction",
            "from shop\tshield\tshop",
            "plain\tshop"
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn round_robin_broadcast_and_any_own_instance() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": [["lua+worker"], ["lua+worker"], ["lua+boss"]], "lua": { "worker": "worker", "boss": "boss" } }"##,
    );
    app.file(
        "worker.lua",
        r#"
stage.waitfor("job", function (n) stage.signal("boss:done", process.stage, n) end)
stage.waitfor("all", function () stage.signal("boss:all", process.stage) end)
"#,
    );
    app.file(
        "boss.lua",
        r#"
SEEN = {}
stage.waitfor("done", function (who, n) SEEN[#SEEN + 1] = who .. ":" .. n end)
stage.waitfor("all", function (who) ALL = (ALL or 0) + 1 end)
stage.addtask(50, function ()
  for n = 1, 4 do stage.signal("worker:job", n) end
  stage.signal("*worker:all")
  return 0
end)
stage.addtask(300, function ()
  table.sort(SEEN)
  print(table.concat(SEEN, " "), ALL)
  stage.exit()
  return 0
end)
"#,
    );
    let out = app.run_args(&["run", "."]);
    assert_eq!(out.lines(), ["1:1 1:3 2:2 2:4\t2"], "{}", out.stderr);
}

#[test]
fn multi_message_tables_deadlines_and_bad_targets() {
    let out = run(r#"
stage.waitfor("a", function (v) print("a", v) end)
stage.waitfor("b", function (v) print("b", v[1]) end)
stage.signal("stage:", { ["stage:a"] = 1, [5] = "ignored" })
stage.signal("stage:", { ["stage:b"] = { 2 } })
stage.waitfor("late", function () print("never: deadline passed") end)
stage.signal({ "late", 1 })
local t0 = os.clock() while os.clock() - t0 < 0.01 do end
print(pcall(stage.signal, 42))
print(pcall(stage.signal, {}))
print(pcall(stage.signal, "svc:", 1))
stage.addtask(30, function () stage.exit() return 0 end)
"#);
    let lines = out.lines();
    assert!(lines[0].starts_with("false\tInvalid argument"), "{lines:?}");
    assert!(lines[1].starts_with("false\tFormat error"), "{lines:?}");
    assert!(
        lines[2].starts_with("false\t") && lines[2].contains("table of payload keys"),
        "{lines:?}"
    );
    assert_eq!(lines[3..], ["a\t1", "b\t2"], "{}", out.stderr);
}

#[test]
fn oversize_messages_raise_at_the_sender() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": ["lua+s"], "#limits": { "message_bytes": 1000 }, "lua": { "s": "main" } }"##,
    );
    app.file(
        "main.lua",
        r#"
stage.waitfor("m", function (s) print("got", #s) stage.exit() end)
local ok, err = pcall(stage.signal, "m", string.rep("x", 2000))
print(ok, err:match("too large") ~= nil)
stage.signal("m", string.rep("x", 500))
"#,
    );
    let out = app.run_args(&["run", "."]);
    assert_eq!(out.lines(), ["false\ttrue", "got\t500"], "{}", out.stderr);
}

#[test]
fn functions_travel_as_values_and_lose_captured_locals() {
    let out = run(r#"
local captured = "captured"
stage.waitfor("run", function (f, x) print(f(x)) stage.exit() end)
GLOBAL = "global"
stage.signal("run", function (x) return x * 2, GLOBAL, captured end, 21)
"#);
    assert_eq!(out.lines(), ["42\tglobal\tnil"], "{}", out.stderr);
    assert!(out.stderr.contains("captured"), "{}", out.stderr);
}

#[test]
fn self_messages_copy_tables_at_the_send_and_refuse_what_cannot_travel() {
    let out = run(r#"
stage.waitfor("t", function (t) print("got", t.n, t.list[2]) end)
local t = { n = 1, list = { "a", "b" } }
stage.signal("t", t)
t.n = 2                                   -- after the send: the queued copy keeps 1
local cyclic = {} cyclic.me = cyclic
local ok, err = pcall(function () stage.signal("t", cyclic) end)
print(ok, err)
ok, err = pcall(function () stage.signal("t", print) end)
print(ok, err)
stage.waitfor("end", function () stage.exit() end)
stage.signal("end")
"#);
    let lines = out.lines();
    assert_eq!(
        lines[0], "false\tmain.lua:7: a table refers to itself: cyclic tables cannot be copied",
        "{}",
        out.stderr
    );
    assert_eq!(
        lines[1],
        "false\tmain.lua:9: Includes non-serialable data: a C function cannot be copied"
    );
    assert_eq!(lines[2], "got\t1\tb");
}

#[test]
fn a_full_mailbox_raises_at_the_sender() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": ["lua+s"], "#limits": { "mailbox": 3 }, "lua": { "s": "main" } }"##,
    );
    app.file(
        "main.lua",
        r#"
stage.waitfor("m", function (i) print("m", i) end)
for i = 1, 3 do stage.signal("m", i) end
local ok, err = pcall(function () stage.signal("m", 4) end)
print(ok, err)
stage.addtask(20, function () stage.exit() return 0 end)
"#,
    );
    let out = app.run_args(&["run", "."]);
    assert_eq!(
        out.lines(),
        [
            "false\tmain.lua:4: the mailbox of 's' is full (3 messages waiting)",
            "m\t1",
            "m\t2",
            "m\t3"
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn the_globals_metatable_is_reserved() {
    let out = run(r#"
print(getmetatable(_G), pcall(setmetatable, _G, {}))
stage.exit()
"#);
    assert_eq!(
        out.lines(),
        ["false\tfalse\tcannot change a protected metatable"],
        "{}",
        out.stderr
    );
}

/// Inside a synchronous call the return values are the reply: `stage.signal(nil, ...)` does
/// nothing. In a stage without an id a reply to `quiet` would otherwise call `quiet` again.
#[test]
fn a_reply_inside_a_synchronous_call_does_nothing() {
    let app = App::new();
    app.file("stage.json", r##"{ "#startup": ["lua"], "lua": "main" }"##);
    app.file(
        "main.lua",
        r#"
CALLS = 0
stage.waitfor("quiet", function () CALLS = CALLS + 1 stage.signal(nil, "ignored") return "q" end)
print("quiet", stage.signal(":quiet"), CALLS)
stage.exit()
"#,
    );
    let out = app.run_args(&["run", "."]);
    assert_eq!(out.lines(), ["quiet\tq\t1"], "{}", out.stderr);
}

#[test]
fn a_failing_synchronous_call_restores_the_callers_waitfor_and_depth() {
    let out = run(r##"
stage.waitfor("bad", function () error("boom") end)
stage.waitfor("good", function (x) return _WAITFOR[0] .. "/" .. _WAITFOR[-1], x * 2 end)
stage.waitfor("nest", function () return pcall(stage.signal, ":bad") end)
stage.waitfor("outer", function ()
  print(pcall(stage.signal, ":bad"))
  print("after an error", _WAITFOR[0], stage.signal(":good", 21))
  print("nested", stage.signal(":nest"))
  print("still", _WAITFOR[0], stage.signal(":good", 1))
  stage.signal(nil, "reply")   -- not inside a synchronous call any more: a real reply
end)
stage.waitfor("done", function (v) print("replied", v) stage.exit() end)
stage.signal("outer=done")
"##);
    assert_eq!(
        out.lines(),
        [
            "false\tmain.lua:2: boom",
            "after an error\touter=done\tgood/good\t42",
            "nested\tfalse\tmain.lua:2: boom",
            "still\touter=done\tgood/good\t2",
            "replied\treply"
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn the_local_queue_keeps_order_and_values_while_it_grows_and_never_runs_empty() {
    // 64 chains keep 64 self-messages queued at every moment (the queue never empties) while
    // a burst of 3,000 messages of every value shape grows it past its first sizes.
    let out = run(r#"
GOT, WANT = {}, {}
stage.waitfor("burst", function (i, s, t, d)
  GOT[#GOT + 1] = i .. ":" .. tostring(s) .. ":" .. tostring(t and t.k) .. ":" .. tostring(d)
end)
STEPS = 0
stage.waitfor("step", function (chain, left)
  STEPS = STEPS + 1
  if left > 0 then stage.signal("step", chain, left - 1) end
end)
for c = 1, 64 do stage.signal("step", c, 99) end
for i = 1, 3000 do
  local s, t, d = nil, nil, nil
  if i % 3 == 0 then s = "s" .. i end
  if i % 5 == 0 then t = { k = i } end
  if i % 7 == 0 then d = i % 2 == 0 end
  WANT[#WANT + 1] = i .. ":" .. tostring(s) .. ":" .. tostring(t and t.k) .. ":" .. tostring(d)
  if d ~= nil then stage.signal("burst", i, s, t, d)
  elseif t ~= nil then stage.signal("burst", i, s, t)
  elseif s ~= nil then stage.signal("burst", i, s)
  else stage.signal("burst", i) end
end
stage.addtask(10, function ()
  if STEPS < 6400 or #GOT < 3000 then return 10 end
  local same = #GOT == #WANT
  for i = 1, #WANT do same = same and GOT[i] == WANT[i] end
  print("steps", STEPS, "burst", #GOT, "in order", same)
  stage.exit()
  return 0
end)
"#);
    assert_eq!(
        out.lines(),
        ["steps\t6400\tburst\t3000\tin order\ttrue"],
        "{}",
        out.stderr
    );
}
