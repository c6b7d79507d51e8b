//! The `process`, `thread` and `logger` tables and `print` (`runtime.md` §9.8–9.10).

mod common;
use common::App;

#[test]
fn process_fields_environment_and_configuration() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": [500, "lua+s"], "lua": { "s": "main", "myconf": { "n": 1, "f": 1.5, "list": [1, 2] } } }"##,
    );
    app.file(
        "main.lua",
        r#"
print(process.stage, type(process.id), process.id > 0, process["%HOME"] ~= nil, process.nosuch)
print(math.type(process.tick), process.tick > 1.6e9, math.type(thread.tick), type(thread.id))
print(process["$myconf"].n, math.type(process["$myconf"].n), process["$myconf"].f, process["$myconf"].list[2])
process["$myflag"] = '{"on": true, "level": 3}'
print(process["$myflag"].on, math.type(process["$myflag"].level), process["$"].myflag.level)
print(pcall(function () process["$bad"] = "{not json" end))
print(pcall(function () process["$%reflush"] = '"soon"' end))
print(process["$%reflush"])
process["%STAGE_TEST_VAR"] = 42
print(process["%STAGE_TEST_VAR"], os.getenv("STAGE_TEST_VAR"))
process["%STAGE_TEST_VAR"] = nil
print(process["%STAGE_TEST_VAR"])
process.title = "renamed"
print(process.title, tostring(process):match("^process: .+ %[%d+%]$") ~= nil)
process["$"] = '{"only": 1}'
print(process["$myflag"], process["$only"])
print(pcall(function () process.id = 5 end))
stage.exit()
"#,
    );
    let out = app.run_args(&["run", "."]);
    let lines = out.lines();
    assert_eq!(lines[0], "1\tnumber\ttrue\ttrue\tnil", "{}", out.stderr);
    assert_eq!(lines[1], "float\ttrue\tfloat\tnumber");
    assert_eq!(lines[2], "1\tinteger\t1.5\t2");
    assert_eq!(lines[3], "true\tinteger\t3");
    assert!(lines[4].starts_with("false\t"), "{lines:?}");
    assert!(
        lines[5].starts_with("false\t") && lines[5].contains("%reflush"),
        "{lines:?}"
    );
    assert_eq!(lines[6], "nil");
    assert_eq!(lines[7], "42\t42");
    assert_eq!(lines[8], "nil");
    assert_eq!(lines[9], "renamed\ttrue");
    assert_eq!(lines[10], "nil\t1");
    assert!(lines[11].starts_with("false\t"), "{lines:?}");
}

#[test]
fn process_args_hold_the_program_and_its_arguments() {
    let out = App::script(
        r#"print(#process.args, process.args[1], process.args[2], arg[0]) stage.exit()"#,
    )
    .run(&["a", "b"]);
    assert_eq!(out.lines(), ["2\ta\tb\tnil"], "{}", out.stderr);
}

#[test]
fn logger_levels_names_and_escapes() {
    let app = App::script(
        r#"
logger.out("user=%{STAGE_LOG_USER} at %l", "%{=audit:warn}")
logger.info("plain", 1, nil, true)
log4cxx.warn("alias works")
logger.trace("hidden at info")
logger.info("%{=audit:trace}audit trace shown")
logger.error("width [%3{STAGE_LOG_USER}]")
stage.exit()
"#,
    );
    let mut cmd = app.command(&["--log", "info,audit=trace", "run", "main.lua"]);
    cmd.env("STAGE_LOG_USER", "alice");
    let out = cmd.output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = |needle: &str| {
        stderr
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no '{needle}' in:\n{stderr}"))
            .to_string()
    };
    let first = line("user=alice");
    assert!(
        first.contains("WARN") && first.contains("logger=\"audit\"")
            || first.contains("logger=audit"),
        "{first}"
    );
    assert!(
        first.contains("user=alice at main.lua[main:2]\t"),
        "{first}"
    );
    assert!(line("plain\t1\tnil\ttrue").contains("INFO"));
    assert!(line("alias works").contains("WARN"));
    assert!(!stderr.contains("hidden at info"), "{stderr}");
    assert!(line("audit trace shown").contains("TRACE"));
    assert!(line("width [ali]").contains("ERROR"));
}

#[test]
fn print_writes_whole_lines_in_order_from_several_stages() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": [["lua+a", "lua+b"]], "lua": { "a": "p", "b": "p" } }"##,
    );
    app.file(
        "p.lua",
        r#"
local me = thread.id
for i = 1, 2000 do print("line", me, i, string.rep("x", 50)) end
stage.signal("a:done")
stage.waitfor("done", function () N = (N or 0) + 1 if N == 2 then stage.exit() end end)
"#,
    );
    let out = app.run_args(&["run", "."]);
    let mut last: std::collections::HashMap<String, i64> = Default::default();
    let mut count = 0;
    for line in out.stdout.lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        assert_eq!(parts.len(), 4, "torn line: {line:?}");
        assert_eq!(parts[3].len(), 50, "torn line: {line:?}");
        let i: i64 = parts[2].parse().expect("number");
        let prev = last.insert(parts[1].to_string(), i).unwrap_or(0);
        assert_eq!(i, prev + 1, "out of order for thread {}", parts[1]);
        count += 1;
    }
    assert_eq!(count, 4000, "{}", out.stderr);
}

#[test]
fn debug_holds_only_traceback_and_load_takes_text_only() {
    let out = App::script(
        r#"
local names = {}
for k in pairs(debug) do names[#names + 1] = k end
print(table.concat(names, ","), debug.traceback("msg"):match("^msg\nstack traceback:") ~= nil)
print(load("return 1 + 1")())
local code = string.dump(function () return 1 end)
print(load(code))
print(pcall(load, code, "x", "b"))
stage.exit()
"#,
    )
    .run(&[]);
    let lines = out.lines();
    assert_eq!(lines[0], "traceback\ttrue");
    assert_eq!(lines[1], "2");
    assert!(
        lines[2].starts_with("nil\t") && lines[2].contains("binary"),
        "{lines:?}"
    );
    assert!(
        lines[3].starts_with("true\tnil\t") && lines[3].contains("binary"),
        "{lines:?}"
    );
}
