//! Bad scripts never stop the node: syntax errors, errors in handlers and timers, unmatched
//! messages, and wrong arguments to every binding.

mod common;
use common::App;
use std::time::Duration;

#[test]
fn a_syntax_error_in_the_main_script_is_logged_and_retried_when_the_file_changes() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": ["lua+app"], "lua": { "app": "main" } }"##,
    );
    app.file("main.lua", "print('start'\nlocal = 1\n");
    let mut running = app.start(&["run", "."]);
    let warning = running.wait_stderr(Duration::from_secs(10), |l| l.contains("main.lua:2:"));
    assert!(warning.contains("WARN"), "{warning}");
    running.wait_stderr(Duration::from_secs(10), |l| {
        l.contains("retries when the file changes")
    });
    app.file("main.lua", "print('fixed and running')\nstage.exit()\n");
    running.wait_stdout(Duration::from_secs(10), |l| l == "fixed and running");
    assert_eq!(running.wait_exit(Duration::from_secs(5)).code, Some(0));
}

#[test]
fn errors_in_handlers_and_timers_are_logged_with_a_traceback_and_service_goes_on() {
    let out = App::script(
        r#"
stage.waitfor("bad", function (n) local t = nil return t.field end)
stage.waitfor("good", function (n) print("good", n) end)
stage.signal("bad", 1)
stage.signal("good", 2)
stage.addtask(10, function () error("timer exploded") end)
stage.addtask(40, function () print("timers still run") stage.signal("bad", 3) stage.signal("good", 4) return 0 end)
stage.addtask(80, function () stage.exit() return 0 end)
"#,
    )
    .run(&[]);
    assert_eq!(
        out.lines(),
        ["good\t2", "timers still run", "good\t4"],
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("attempt to index a nil value"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("stack traceback"), "{}", out.stderr);
    assert!(out.stderr.contains("timer exploded"), "{}", out.stderr);
}

#[test]
fn a_runtime_error_in_the_main_script_keeps_earlier_registrations() {
    let out = App::script(
        r#"
stage.waitfor("alive", function () print("alive") stage.exit() end)
stage.signal("alive")
error("main failed halfway")
"#,
    )
    .run(&[]);
    assert_eq!(out.lines(), ["alive"], "{}", out.stderr);
    assert!(
        out.stderr.contains("main.lua:4: main failed halfway"),
        "{}",
        out.stderr
    );
}

#[test]
fn traceback_handler_can_be_replaced_by_scripts() {
    let out = App::script(
        r#"
_TRACEBACK = function (text) print("custom", text:match("^[^\n]*")) end
stage.waitfor("bad", function () error("oops") end)
stage.signal("bad")
stage.addtask(20, function () stage.exit() return 0 end)
"#,
    )
    .run(&[]);
    assert_eq!(out.lines(), ["custom\tmain.lua:3: oops"], "{}", out.stderr);
}

#[test]
fn wrong_argument_types_to_every_binding_raise_lua_errors_only() {
    let out = App::script(
        r#"
local values = { nil, true, false, 0, -1, 7, 1.5, math.huge, 0/0, math.mininteger, "", "x", "a:b",
  "task: 1[1]", ":x", "*", ">", "@", {}, {1, 2}, { [0] = "k" }, function () end, print,
  coroutine.create(function () end), io.stdout }
local n = #values + 1  -- values[1] is nil
local targets = {
  stage.waitfor, stage.signal, stage.addtask, stage.once, stage.load, stage.require, stage.call,
  logger.info, logger.warn, log4cxx.error,
  bundle.json, bundle.bson, bundle.random, bundle.proxy, bundle.viewof,
  function (k, v) return process[k] end, function (k, v) process[k] = v end,
  function (k) return thread[k] end,
}
local seed, calls, failures = 12345, 0, 0
local function pick()
  seed = (seed * 1103515245 + 12345) % 2147483648
  return values[seed % n + 1]
end
for _, f in ipairs(targets) do
  for _ = 1, 400 do
    local ok = pcall(f, pick(), pick(), pick())
    calls = calls + 1
    if not ok then failures = failures + 1 end
  end
end
print("survived", calls, failures > 0)
stage.addtask(50, function () print("still serving") stage.exit() return 0 end)
"#,
    )
    .run(&[]);
    let lines = out.lines();
    assert!(
        lines.contains(&"survived\t7200\ttrue"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(lines.last(), Some(&"still serving"), "{}", out.stderr);
    assert_eq!(out.code, Some(0));
}
