//! The command line: `stage run`, `stage check`, `--version`, signals, configuration errors and
//! the bundled example.

mod common;
use common::{example, App, Running};
use std::time::{Duration, Instant};

#[test]
fn version_prints_the_package_version() {
    let out = App::new().run_args(&["--version"]);
    assert_eq!(
        out.stdout.trim(),
        format!("stage {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(out.code, Some(0));
}

#[test]
fn quick_start_runs_a_single_file_with_arguments() {
    let out = App::script(
        r#"print("quick", process.stage, arg[1], arg[2], process.args[0] ~= nil) stage.exit()"#,
    )
    .run(&["one", "two"]);
    assert_eq!(out.lines(), ["quick\t1\tone\ttwo\ttrue"], "{}", out.stderr);
    assert_eq!(out.code, Some(0));
}

#[test]
fn a_directory_with_conf_stage_json_runs_from_the_application_directory() {
    let app = App::new();
    app.file(
        "conf/stage.json",
        r##"{ "#startup": ["lua+app"], "lua": { "%package": "src", "app": "main" } }"##,
    );
    app.file(
        "src/main.lua",
        r#"local f = assert(io.open("data.txt")) print(f:read("a")) f:close() stage.exit()"#,
    );
    app.file("data.txt", "read relative to the application");
    let out = app.run_args(&["run", "."]);
    assert_eq!(
        out.lines(),
        ["read relative to the application"],
        "{}",
        out.stderr
    );
}

#[test]
fn extra_config_files_come_first_and_win_per_top_level_key() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": ["lua+app"], "lua": { "app": "main" } }"##,
    );
    app.file("override.json", r#"{ "lua": { "app": "other" } }"#);
    app.file("main.lua", r#"print("main") stage.exit()"#);
    app.file("other.lua", r#"print("other") stage.exit()"#);
    let out = app.run_args(&["run", "-c", "override.json", "."]);
    assert_eq!(out.lines(), ["other"], "{}", out.stderr);
}

#[test]
fn configuration_errors_name_the_file_and_the_key() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": ["lua+app"], "#limits": { "mailbox": "lots" } }"##,
    );
    let out = app.run_args(&["run", "."]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("stage.json") && out.stderr.contains("#limits.mailbox"),
        "{}",
        out.stderr
    );

    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": ["lua+app"], "#threds": 4 }"##,
    );
    let out = app.run_args(&["run", "."]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("#threds"), "{}", out.stderr);

    let app = App::new();
    app.file("stage.json", "{ \"#startup\": [\n  \"lua+app\",, ] }");
    let out = app.run_args(&["run", "."]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("stage.json:2:"), "{}", out.stderr);

    let out = App::new().run_args(&["run", "-c", "missing.json", "."]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("missing.json"), "{}", out.stderr);

    let out = App::new().run_args(&["run", "."]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("no stage.json"), "{}", out.stderr);
}

#[test]
fn services_not_yet_available_are_refused_by_name() {
    let app = App::new();
    app.file("stage.json", r##"{ "#startup": ["lua+app", "curl+web"] }"##);
    let out = app.run_args(&["run", "."]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("curl+web"), "{}", out.stderr);
}

#[test]
fn check_reports_each_problem_with_file_and_line() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": ["lua+app", "lua+gone"], "lua": { "%package": ["pkg", "lib"], "%preload": "pre", "app": "main", "gone": "missing" } }"##,
    );
    app.file("pkg/main.lua", "print('fine')");
    app.file("pkg/sub/broken.lua", "local x = = 1");
    app.file("lib/also.lua", "return function (\n\n");
    app.file("pre/p.lua", "if then end");
    let out = app.run_args(&["check", "."]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stdout.contains("pkg/sub/broken.lua:1:"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("lib/also.lua:3:"), "{}", out.stdout);
    assert!(out.stdout.contains("pre/p.lua:1:"), "{}", out.stdout);
    assert!(
        out.stdout.contains("main script 'missing'"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("pkg/main.lua"), "{}", out.stdout);

    let good = App::new();
    good.file(
        "stage.json",
        r##"{ "#startup": ["lua+app"], "lua": { "app": "main" } }"##,
    );
    good.file("main.lua", "print('fine')");
    let out = good.run_args(&["check", "."]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
}

fn stops_gracefully_on(signal: &str) {
    let app = App::script(r#"print("up") return function () return 1000 end"#);
    let mut running: Running = app.start(&["run", "main.lua"]);
    running.wait_stdout(Duration::from_secs(10), |l| l == "up");
    let asked = Instant::now();
    running.signal(signal);
    let out = running.wait_exit(Duration::from_secs(5));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "stopped in {:?}",
        asked.elapsed()
    );
}

#[test]
fn sigint_stops_the_node_within_two_seconds() {
    stops_gracefully_on("INT");
}

#[test]
fn sigterm_stops_the_node_within_two_seconds() {
    stops_gracefully_on("TERM");
}

#[test]
fn the_bundled_chat_example_serves_until_stopped() {
    let app = App::new();
    let mut running = app.start(&["run", example("chat").to_str().expect("utf-8 path")]);
    running.wait_stdout(Duration::from_secs(10), |l| l == "room: open");
    running.wait_stdout(Duration::from_secs(10), |l| {
        l == "[bob hears] alice: hi bob!"
    });
    running.wait_stdout(Duration::from_secs(10), |l| {
        l == "[alice hears] room: bob left"
    });
    running.wait_stdout(Duration::from_secs(10), |l| {
        l == "lines said in the room: 3"
    });
    running.signal("INT");
    assert_eq!(running.wait_exit(Duration::from_secs(5)).code, Some(0));
}

#[test]
fn bench_measures_messages_calls_timers_jobs_and_snapshots() {
    let out = App::new().run_args(&["bench", "--messages", "20000"]);
    let lines = out.lines();
    let measures = [
        "self-messages",
        "synchronous :msg calls",
        "timers fired",
        "stage.submit no-op jobs",
        "thread.new round trips",
        "snapshot reads",
    ];
    assert_eq!(
        lines.len(),
        1 + measures.len(),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        lines[0].starts_with("stage bench: 20000 messages") && lines[0].ends_with(" ns here"),
        "{}",
        lines[0]
    );
    for (line, what) in lines[1..].iter().zip(measures) {
        assert!(
            line.starts_with(what)
                && line.contains(" ns each ")
                && line.ends_with(" /s at a 20 ns host call"),
            "{line}"
        );
    }
    assert_eq!(out.code, Some(0));
}
