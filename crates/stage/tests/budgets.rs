//! Runaway code on the stage thread is stopped, memory is capped, and service goes on
//! (decisions 11 and 26).

mod common;
use common::App;

/// A stage with a 200 ms budget per invocation and a 16 MiB memory cap.
fn app(main: &str) -> App {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": ["lua+s"], "#limits": { "stage_budget_ms": 200, "lua_memory_mib": 16 }, "lua": { "s": "main" } }"##,
    );
    app.file("main.lua", main);
    app
}

#[test]
fn a_runaway_handler_is_stopped_and_the_next_message_is_served() {
    let out = app(r#"
stage.waitfor("spin", function () while true do end end)
stage.waitfor("next", function (n) print("served", n) if n == 2 then stage.exit() end end)
stage.signal("spin")
stage.signal("next", 1)
stage.waitfor("spin2", function (x) local t = 0 while true do t = t + x end end, 1)
stage.signal("spin2")
stage.signal("next", 2)
"#)
    .run_args(&["run", "."]);
    assert_eq!(out.lines(), ["served\t1", "served\t2"], "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("budget exceeded").count(),
        2,
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("#limits.stage_budget_ms"),
        "{}",
        out.stderr
    );
}

#[test]
fn pcall_cannot_swallow_the_budget() {
    let out = app(r#"
stage.waitfor("sneaky", function ()
  while true do
    pcall(function () while true do end end)
    xpcall(function () while true do end end, function (e) return e end)
    coroutine.resume(coroutine.create(function () while true do end end))
  end
end)
stage.waitfor("after", function () print("after the runaway") stage.exit() end)
stage.signal("sneaky")
stage.signal("after")
"#)
    .run_args(&["run", "."]);
    assert_eq!(out.lines(), ["after the runaway"], "{}", out.stderr);
    assert!(out.stderr.contains("budget exceeded"), "{}", out.stderr);
}

#[test]
fn runaway_timers_sync_calls_and_main_scripts_are_stopped() {
    let out = app(r#"
stage.waitfor("loop", function () while true do end end)
stage.addtask(10, function () while true do end end)
stage.addtask(50, function ()
  print("caught?", pcall(function () stage.signal(":loop") end))   -- the budget is not caught
  return 0
end)
stage.addtask(100, function () print("timers still run") stage.exit() return 0 end)
while true do end
"#)
    .run_args(&["run", "."]);
    assert_eq!(out.lines(), ["timers still run"], "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("budget exceeded").count(),
        3,
        "main, timer, sync call: {}",
        out.stderr
    );
}

#[test]
fn memory_bombs_and_deep_recursion_in_handlers_and_timers_end_in_errors() {
    let out = app(
        r#"
stage.waitfor("bomb", function () local t = {} for i = 1, 100 do t[i] = string.rep("x", 1 << 20) .. i end end)
stage.waitfor("rep", function () return #string.rep("x", 1 << 26) end)
stage.waitfor("deep", function () local function f(n) return f(n + 1) + 1 end return f(1) end)
stage.waitfor("ok", function () print("still serving", collectgarbage("count") < 16 * 1024) stage.exit() end)
stage.signal("bomb")
stage.signal("rep")
stage.signal("deep")
stage.addtask(5, function () local t = {} for i = 1, 100 do t[i] = string.rep("x", 1 << 20) .. i end end)
stage.addtask(6, function () local function f(n) return f(n + 1) + 1 end return f(1) end)
stage.addtask(50, function () stage.signal("ok") return 0 end)
print("the main script is capped too", not pcall(string.rep, "x", 1 << 26))
-- The runtime's own bookkeeping lifts the cap for a moment (a handler name, a callback id).
stage.waitfor("late", function () end)
thread.new(function () end).waitfor(function () end)
print("and stays capped after registrations", not pcall(string.rep, "x", 1 << 26))
"#,
    )
    .run_args(&["run", "."]);
    assert_eq!(
        out.lines(),
        [
            "the main script is capped too\ttrue",
            "and stays capped after registrations\ttrue",
            "still serving\ttrue"
        ],
        "{}",
        out.stderr
    );
    // The recursion ends in a stack overflow or, under this small cap, in the memory limit.
    let errors = out.stderr.matches("not enough memory").count()
        + out.stderr.matches("stack overflow").count();
    assert_eq!(errors, 5, "3 handlers, 2 timers: {}", out.stderr);
}

#[test]
fn runaway_coroutines_and_endless_sync_calls_are_stopped() {
    let out = app(r#"
stage.waitfor("wrapped", function () coroutine.wrap(function () while true do end end)() end)
stage.waitfor("nested", function ()
  coroutine.resume(coroutine.create(function ()
    coroutine.wrap(function () local x = 0 while true do x = x + 1 end end)()
  end))
end)
-- Registration arguments keep "echo" off the fast path: each call goes through the runtime.
stage.waitfor("echo", function (a, b) return b end, 1)
stage.waitfor("calls", function () while true do stage.signal(":echo", 2) end end)
stage.waitfor("next", function (n) print("served", n) if n == 3 then stage.exit() end end)
stage.signal("wrapped")
stage.signal("next", 1)
stage.signal("nested")
stage.signal("next", 2)
stage.signal("calls")
stage.signal("next", 3)
"#)
    .run_args(&["run", "."]);
    assert_eq!(
        out.lines(),
        ["served\t1", "served\t2", "served\t3"],
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches("budget exceeded").count(),
        3,
        "{}",
        out.stderr
    );
}

#[test]
fn the_budget_is_per_invocation_and_counts_neither_idle_time_nor_a_whole_batch() {
    let out = app(r#"
function BUSY(ms) local t = os.clock() + ms / 1000 while os.clock() < t do end end
DONE = 0
-- 100 messages of 5 ms each: 500 ms in one batch of the stage thread, 5 ms per invocation.
stage.waitfor("work", function () BUSY(5) DONE = DONE + 1 end)
stage.waitfor("counted", function ()
  print("batch", DONE)
  -- 300 ms idle, longer than the budget, then a timer that works 120 ms of its 200.
  stage.addtask(300, function () BUSY(120) print("slow but within the budget")
    stage.signal("spin")
    stage.signal("after")
    return 0
  end)
end)
stage.waitfor("spin", function () T0 = thread.tick while true do end end)
stage.waitfor("after", function ()
  local ms = (thread.tick - T0) * 1000
  print("stopped after at least the budget", ms >= 195, ms)
  stage.exit()
end)
for i = 1, 100 do stage.signal("work") end
stage.signal("counted")
"#)
    .run_args(&["run", "."]);
    let lines = out.lines();
    assert_eq!(lines.len(), 3, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(lines[0], "batch\t100", "{}", out.stderr);
    assert_eq!(lines[1], "slow but within the budget", "{}", out.stderr);
    assert!(
        lines[2].starts_with("stopped after at least the budget\ttrue"),
        "{}\n{}",
        lines[2],
        out.stderr
    );
    let ms: f64 = lines[2]
        .rsplit('\t')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::MAX);
    assert!(
        ms < 2000.0,
        "stopped {ms} ms after it began: {}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches("budget exceeded").count(),
        1,
        "{}",
        out.stderr
    );
}
