//! Scripts, the main script, the idle function, timers and the `stage` functions that are not
//! messaging, through the real binary (`runtime.md` §7–9).

mod common;
use common::App;
use std::time::Duration;

#[test]
fn main_script_idle_function_and_once_spec_example() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": ["lua+other", "lua+game"],
             "lua": { "%package": ["package"], "game": "start", "other": "idle" } }"##,
    );
    app.file("package/idle.lua", "return 0");
    app.file(
        "package/start.lua",
        r#"
print("boot", process.stage, arg[1])
stage.once("listener", function () print("init once") end)
local ticks = 0
return function ()
  TICKS = (TICKS or 0) + 1
  if TICKS <= 2 then print("idle", TICKS, ticks) end
  if TICKS == 2 then stage.exit() end
  return 50
end
"#,
    );
    let out = app.run_args(&["run", ".", "--", "prod"]);
    assert_eq!(
        out.lines(),
        ["boot\t2\tprod", "init once", "idle\t1\tnil", "idle\t2\tnil"],
        "{}",
        out.stderr
    );
    assert_eq!(out.code, Some(0));
}

#[test]
fn idle_function_stops_without_a_positive_number() {
    let out = App::script(
        r#"
stage.addtask(300, function () print("calls", CALLS) stage.exit() return 0 end)
return function () CALLS = (CALLS or 0) + 1 return 0 end
"#,
    )
    .run(&[]);
    assert_eq!(out.lines(), ["calls\t1"], "{}", out.stderr);
    assert!(
        out.stderr
            .contains("idle function returned no positive number"),
        "{}",
        out.stderr
    );
}

#[test]
fn main_script_returning_a_table_registers_handlers() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": ["lua+svc"], "lua": { "svc": "svc" } }"##,
    );
    app.file(
        "svc.lua",
        r#"
stage.addtask(10, function () stage.signal("hello", "world") return 0 end)
return { hello = function (w) print("hello", w) stage.exit() end, [7] = function () end, note = "ignored" }
"#,
    );
    let out = app.run_args(&["run", "."]);
    assert_eq!(out.lines(), ["hello\tworld"], "{}", out.stderr);
}

#[test]
fn main_script_field_selection() {
    let app = App::new();
    app.file("stage.json", r##"{ "#startup": ["lua+lobby"], "lua": { "%package": "pkg", "lobby": "lobby.main+boot" } }"##);
    app.file(
        "pkg/lobby/main.lua",
        r#"print("module top") return { boot = function () print("idle boot") stage.exit() end }"#,
    );
    let out = app.run_args(&["run", "."]);
    assert_eq!(out.lines(), ["module top", "idle boot"], "{}", out.stderr);
}

#[test]
fn once_runs_once_per_key_until_forgotten() {
    let out = App::script(
        r#"
for i = 1, 3 do stage.once("setup", function () print("setup ran") end) end
stage.once("setup", nil)
stage.once("setup", function () print("setup ran again") end)
stage.once(42, function () print("non-string key is ''") end)
stage.once("", function () print("not again") end)
stage.once("boom", function () error("inside once") end)
stage.once("boom", function () print("boom is recorded") end)
stage.exit()
"#,
    )
    .run(&[]);
    assert_eq!(
        out.lines(),
        ["setup ran", "setup ran again", "non-string key is ''"],
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("inside once"), "{}", out.stderr);
}

#[test]
fn load_runs_the_chunk_every_call_and_reports_failover_and_not_found() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": ["lua+s"], "lua": { "%package": ["package", "rollback"], "s": "main" } }"##,
    );
    app.file(
        "package/greeter.lua",
        r#"print("loading greeter") return { hello = function (who) return "hello " .. who end }"#,
    );
    app.file("package/broken.lua", "return {{{");
    app.file("rollback/broken.lua", r#"return "rollback copy""#);
    app.file(
        "package/main.lua",
        r##"
print(stage.load("greeter+hello")("ann"))
print(stage.load("greeter+hello", function (f, i)
  if i[1] > 0 then print("FAIL-OVER", i[2]) end
  return f("bob")
end))
print(stage.load("nosuch+x", function (f, i) return f, i[1], i[2] end))
print(select("#", stage.load("nosuch")))
print(stage.load("broken", function (v, i) return v, i[1], i[2], math.type(i[3]) end))
stage.exit()
"##,
    );
    let out = app.run_args(&["run", "."]);
    assert_eq!(
        out.lines(),
        [
            "loading greeter",
            "hello ann",
            "loading greeter",
            "hello bob",
            "nil\tnosuch\tx",
            "0",
            "rollback copy\t1\trollback/broken.lua\tinteger"
        ],
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("package/broken.lua:1:"),
        "compile error logged with file:line: {}",
        out.stderr
    );
}

#[test]
fn load_picks_up_changed_files_hot_reload() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": ["lua+s"], "lua": { "%package": [""], "%reflush": -1, "s": "main" } }"##,
    );
    app.file("mod.lua", r#"return "v1""#);
    app.file(
        "main.lua",
        r#"
print(stage.load("mod"))
return function ()
  local f = io.open("trigger")
  if f then f:close() print(stage.load("mod")) stage.exit() return 0 end
  return 20
end
"#,
    );
    let mut running = app.start(&["run", "."]);
    running.wait_stdout(Duration::from_secs(10), |l| l == "v1");
    app.file("mod.lua", r#"return "version 2""#);
    app.file("trigger", "");
    running.wait_stdout(Duration::from_secs(10), |l| l == "version 2");
    assert_eq!(running.wait_exit(Duration::from_secs(5)).code, Some(0));
}

#[test]
fn require_caches_per_state_and_stores_true_for_nothing() {
    let app = App::script(
        r#"
local a = stage.require("lib.counter")
local b = stage.require("lib.counter")
print(a == b, a.n)
print(stage.require("lib.counter+n"))
print(stage.require("lib.counter", function (v, i) return type(v), i end))
print(stage.require("lib.nothing"), package.loaded["lib.nothing"])
print(stage.require("nope.x+y", function (v, i) return v, i[1], i[2] end))
stage.exit()
"#,
    );
    app.file(
        "lib/counter.lua",
        r#"print("counter loaded") return { n = 5 }"#,
    );
    app.file("lib/nothing.lua", "local x = 1");
    let out = app.run(&[]);
    assert_eq!(
        out.lines(),
        [
            "counter loaded",
            "true\t5",
            "5",
            "table\tnil",
            "true\ttrue",
            "nil\tnope/x\ty"
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn call_spreads_tables_and_returns_results() {
    let out = App::script(
        r##"
local function show(...) print(select("#", ...), ...) end
stage.call(show, {1, 2, 3, {"X"}}, "end")
stage.call({show, "a"}, "b")
print(stage.call(function (x) return x * 2, "done" end, 21))
print(pcall(stage.call, function () error("kept message") end))
print(select("#", stage.call(42)))
stage.exit()
"##,
    )
    .run(&[]);
    let lines = out.lines();
    assert!(lines[0].starts_with("5\t1\t2\t3\ttable: "), "{lines:?}");
    assert!(lines[0].ends_with("\tend"), "{lines:?}");
    assert_eq!(
        lines[1..4],
        ["2\ta\tb", "42\tdone", "false\tmain.lua:6: kept message"],
        "{}",
        out.stderr
    );
    assert_eq!(lines[4], "0");
}

#[test]
fn addtask_spec_example_and_handle_operations() {
    let out = App::script(
        r#"
local h = stage.addtask(100, function (label, t)
  COUNT = (COUNT or 0) + 1
  print(label, COUNT, t.n)
  if COUNT < 3 then return 50 end
  return 0
end, "tick", {n = 7})
print(type(h))
local gone = stage.addtask(50, function () print("never") return 0 end)
print("cancel", stage.addtask(gone, nil), stage.addtask(gone, nil))
local r = stage.addtask(5000, function () print("replaced never runs") return 0 end)
print("replace", stage.addtask(r, function () print("replacement ran") return 0 end))
print("reschedule", stage.addtask(r, 400))
stage.addtask(-20, function () print("one-shot") end)
stage.addtask(600, function () stage.exit() return 0 end)
print(pcall(stage.addtask, "not a handle", nil))
"#,
    )
    .run(&[]);
    assert_eq!(
        out.lines(),
        [
            "string",
            "cancel\ttrue\tfalse",
            "replace\ttrue",
            "reschedule\ttrue",
            "false\tNot a task object",
            "one-shot",
            "tick\t1\t7",
            "tick\t2\t7",
            "tick\t3\t7",
            "replacement ran"
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn addtask_arguments_are_fresh_copies_and_timers_run_in_creation_order() {
    let out = App::script(
        r#"
local shared = { n = 0 }
for i = 1, 3 do
  stage.addtask(30, function (t, i) t.n = t.n + 1 print(i, t.n) return 0 end, shared, i)
end
stage.addtask(30, function () stage.exit() return 0 end)
"#,
    )
    .run(&[]);
    assert_eq!(out.lines(), ["1\t1", "2\t1", "3\t1"], "{}", out.stderr);
}

#[test]
fn addtask_capacity_is_an_error() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": ["lua+s"], "#limits": { "timers_per_stage": 3 }, "lua": { "s": "main" } }"##,
    );
    app.file(
        "main.lua",
        r#"
for i = 1, 3 do stage.addtask(10000, function () end) end
local ok, err = pcall(stage.addtask, 10000, function () end)
print(ok, err)
stage.exit()
"#,
    );
    let out = app.run_args(&["run", "."]);
    assert_eq!(out.lines().len(), 1);
    assert!(
        out.lines()[0].starts_with("false\t") && out.stdout.contains("timers_per_stage"),
        "{}",
        out.stdout
    );
}

#[test]
fn preload_runs_in_sorted_order_in_every_state_and_is_global() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": [["lua+a", "lua+b"]], "lua": { "%preload": ["pre"], "a": "a", "b": "b" } }"##,
    );
    app.file("pre/20-second.lua", r#"ORDER = ORDER .. ",second""#);
    app.file(
        "pre/10-first.lua",
        r#"ORDER = "first" function helper(x) return x + 1 end"#,
    );
    app.file("pre/.hidden.lua", r#"ORDER = "hidden ran""#);
    app.file("pre/list.json", r#"["../more/third.lua"]"#);
    app.file("more/third.lua", r#"ORDER = ORDER .. ",third""#);
    app.file(
        "a.lua",
        r#"print("a", ORDER, helper(1)) stage.signal("b:go")"#,
    );
    app.file(
        "b.lua",
        r#"stage.waitfor("go", function () print("b", ORDER, helper(2)) stage.exit() end)"#,
    );
    let out = app.run_args(&["run", "."]);
    assert_eq!(
        out.lines(),
        ["a\tfirst,second,third\t2", "b\tfirst,second,third\t3"],
        "{}",
        out.stderr
    );
}

#[test]
fn globals_of_the_main_script_persist_for_later_handlers() {
    let out = App::script(
        r#"
RESULT = "MAIN"
local hidden = "local"
stage.waitfor("show", function () print(RESULT, hidden, _G.RESULT) RESULT = "HANDLER" stage.signal("again") end)
stage.waitfor("again", function () print(RESULT) stage.exit() end)
stage.signal("show")
"#,
    )
    .run(&[]);
    assert_eq!(out.lines(), ["MAIN\tnil\tnil", "HANDLER"], "{}", out.stderr);
    assert!(
        out.stderr.contains("hidden"),
        "a WARN names the lost upvalue: {}",
        out.stderr
    );
}

#[test]
fn several_lua_stages_in_one_process_have_their_own_state_and_thread() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": [["lua+a", "lua+b"]], "lua": { "a": "a", "b": "b" } }"##,
    );
    app.file("a.lua", r#"WHO = "a" stage.signal("b:ask", thread.id)"#);
    app.file(
        "b.lua",
        r#"stage.waitfor("ask", function (tid) print(WHO, tid ~= thread.id, process.stage) stage.exit() end)"#,
    );
    let out = app.run_args(&["run", "."]);
    assert_eq!(out.lines(), ["nil\ttrue\t1"], "{}", out.stderr);
}
