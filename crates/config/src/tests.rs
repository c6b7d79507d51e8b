//! Tests of the whole configuration: loading and merging files, the example of `runtime.md`
//! §4.6, `#startup` rules, service sections and the quick start.

use std::error::Error;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::*;

type TestResult = Result<(), Box<dyn Error>>;

fn from_json(value: Value) -> Result<NodeConfig, String> {
    NodeConfig::from_json(value, Path::new("conf/stage.json")).map_err(|e| e.to_string())
}

fn error_of(value: Value) -> String {
    match from_json(value) {
        Ok(_) => panic!("the configuration was accepted"),
        Err(error) => error,
    }
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf, std::io::Error> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The example configuration of `runtime.md` §4.6.
fn example() -> Value {
    json!({
      "#services": { "tcp": ["0.0.0.0:8801"] },
      "#router":   [1500, 900],
      "#cluster":  [9801, ":eth0", "10.0.0.7:9801", "=10.0.0.9:9801"],
      "#threads":  [8, 50000],
      "#startup":  [
        ["=route+route"],
        ["lua.so+game", "index.so+rank"],
        500,
        ["lua.so+game"],
        ["lua.so+lobby"]
      ],
      "lua.so": {
        "%preload": "preload",
        "%package": ["package", "rollback", "[0]lib", "[0]"],
        "%reflush": 10000,
        "lua.so+game": "game_main",
        "lobby": "lobby.main+boot"
      }
    })
}

fn texts(modules: &[ModuleSpec]) -> Vec<&str> {
    modules.iter().map(|m| m.text.as_str()).collect()
}

#[test]
fn example_processes_numbers_and_delays() -> TestResult {
    let config = NodeConfig::from_json(example(), Path::new("conf/stage.json"))?;
    let processes = &config.processes;
    assert_eq!(processes.len(), 4);
    let numbers: Vec<u32> = processes.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    let delays: Vec<u64> = processes.iter().map(|p| p.delay_ms).collect();
    assert_eq!(delays, [0, 0, 500, 0]);
    assert_eq!(texts(&processes[0].modules), ["=route+route"]);
    assert_eq!(
        texts(&processes[1].modules),
        ["lua.so+game", "index.so+rank"]
    );
    assert_eq!(texts(&processes[2].modules), ["lua.so+game"]);
    assert_eq!(texts(&processes[3].modules), ["lua.so+lobby"]);
    assert_eq!(processes[1].entry, json!(["lua.so+game", "index.so+rank"]));
    let route = &processes[0].modules[0];
    assert_eq!((route.kind, route.builtin), (ModuleKind::Route, true));
    let rank = &processes[1].modules[1];
    assert_eq!(rank.kind, ModuleKind::Index);
    assert_eq!(rank.id.as_deref(), Some("rank"));
    Ok(())
}

#[test]
fn example_main_scripts() -> TestResult {
    let config = NodeConfig::from_json(example(), Path::new("conf/stage.json"))?;
    let main = |process: usize, module: usize| {
        let process = &config.processes[process];
        config.main_script(process, &process.modules[module])
    };
    assert_eq!(main(1, 0).as_deref(), Some("game_main"));
    assert_eq!(main(2, 0).as_deref(), Some("game_main"));
    assert_eq!(main(3, 0).as_deref(), Some("lobby.main+boot"));
    assert_eq!(main(0, 0), None, "a route module has no main script");
    assert_eq!(main(1, 1), None, "an index module has no main script");
    Ok(())
}

#[test]
fn example_lua_configuration_and_settings() -> TestResult {
    let config = NodeConfig::from_json(example(), Path::new("conf/stage.json"))?;
    assert!(config.processes[0].lua_config.is_empty());
    assert_eq!(config.processes[0].lua_settings, LuaSettings::default());
    let lobby = &config.processes[3];
    assert_eq!(lobby.lua_config.get("%reflush"), Some(&json!(10000)));
    let settings = &lobby.lua_settings;
    assert_eq!(settings.preload, [PathBuf::from("preload")]);
    assert_eq!(settings.reflush_ms, 10000);
    let package: Vec<(&Path, u32)> = settings
        .package
        .iter()
        .map(|entry| (entry.dir.as_path(), entry.position))
        .collect();
    assert_eq!(
        package,
        [
            (Path::new("package"), 0),
            (Path::new("rollback"), 1),
            (Path::new("lib"), 0),
            (Path::new(""), 0)
        ]
    );
    assert_eq!(
        LuaSettings::from_map(&lobby.lua_config)?,
        lobby.lua_settings
    );
    assert_eq!(config.base_dir, PathBuf::from("conf"));
    Ok(())
}

#[test]
fn example_node_keys() -> TestResult {
    let config = NodeConfig::from_json(example(), Path::new("conf/stage.json"))?;
    assert_eq!(config.services.tcp.len(), 1);
    assert_eq!(config.services.tcp[0].to_string(), "0.0.0.0:8801");
    assert_eq!(
        (config.router.window_ms, config.router.heartbeat_ms),
        (1500, 900)
    );
    assert_eq!(config.cluster.port, Some(9801));
    assert_eq!(
        config.cluster.advertised,
        Some(Advertised::InterfacePrefix("eth0".to_owned()))
    );
    assert_eq!(config.cluster.peers.len(), 1);
    assert_eq!(config.cluster.backups.len(), 1);
    assert_eq!((config.threads.workers, config.threads.queue), (8, 50000));
    assert_eq!(config.limits, Limits::default());
    assert_eq!(config.nats, NatsConfig::default());
    assert_eq!(config.admin, None);
    assert_eq!(
        config.index_section("rank"),
        Some(&stage_index::Config::default())
    );
    assert_eq!(
        config.route_section("route"),
        Some(&stage_route::RouteConfig::default())
    );
    assert_eq!(config.index_section("route"), None);
    assert_eq!(config.ticket_section("ticket"), None);
    Ok(())
}

#[test]
fn minimal_configuration_has_defaults() -> TestResult {
    let config = NodeConfig::from_json(json!({"#startup": ["lua+a"]}), Path::new("stage.json"))?;
    assert_eq!(config.base_dir, PathBuf::from("."));
    assert_eq!(config.services, Services::default());
    assert_eq!(config.router, RouterConfig::default());
    assert_eq!(config.cluster, ClusterConfig::default());
    assert_eq!(config.threads, ThreadsConfig::default());
    assert_eq!(config.processes.len(), 1);
    let process = &config.processes[0];
    assert_eq!((process.number, process.delay_ms), (1, 0));
    assert!(process.lua_config.is_empty());
    assert_eq!(config.main_script(process, &process.modules[0]), None);
    Ok(())
}

#[test]
fn load_merges_files_per_top_level_key_first_wins() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("app"))?;
    let first = write(
        dir.path(),
        "first.json",
        r##"{"#limits": {"mailbox": 5}, "lua": {"%reflush": 1}}"##,
    )?;
    let last = write(
        &dir.path().join("app"),
        "stage.json",
        r##"{"#limits": {"watchdog_ms": 9}, "#startup": ["lua+a"], "lua": {"x": 2}, "#threads": 3}"##,
    )?;
    let config = NodeConfig::load(&[first, last])?;
    assert_eq!(config.limits.mailbox, 5);
    assert_eq!(
        config.limits.watchdog_ms, 3100,
        "no deep merge of top-level keys"
    );
    assert_eq!(config.threads.workers, 3);
    assert_eq!(
        Value::Object(config.processes[0].lua_config.clone()),
        json!({"%reflush": 1})
    );
    assert_eq!(config.base_dir, dir.path().join("app"));
    Ok(())
}

#[test]
fn load_errors_name_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let good = write(dir.path(), "good.json", r##"{"#startup": ["lua+a"]}"##)?;
    let missing = dir.path().join("missing.json");
    let error = NodeConfig::load(&[missing.clone(), good.clone()]).err();
    let text = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.starts_with(&format!("{}: cannot read the file", missing.display())),
        "{text}"
    );
    let broken = write(
        dir.path(),
        "broken.json",
        "{\n  \"#startup\": [\"lua+a\",]\n}",
    )?;
    match NodeConfig::load(&[broken.clone(), good]) {
        Err(ConfigError::Syntax {
            file, line, column, ..
        }) => {
            assert_eq!(file, broken.display().to_string());
            assert_eq!((line, column), (2, 24));
        }
        other => panic!("unexpected {other:?}"),
    }
    let empty = write(dir.path(), "empty.json", "{}")?;
    let text = NodeConfig::load(&[empty])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        text.ends_with("empty.json: the configuration is empty"),
        "{text}"
    );
    assert!(NodeConfig::load(&[]).is_err());
    let no_startup = write(dir.path(), "nostartup.json", r##"{"lua": {}}"##)?;
    let text = NodeConfig::load(&[no_startup])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        text.ends_with(
            "nostartup.json: #startup: missing: the list of processes to start is required"
        ),
        "{text}"
    );
    Ok(())
}

#[test]
fn keys_from_a_later_file_are_reported_against_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let first = write(dir.path(), "a.json", r##"{"#startup": ["lua+a"]}"##)?;
    let second = write(dir.path(), "b.json", r##"{"#limits": {"mailbox": "x"}}"##)?;
    let text = NodeConfig::load(&[first, second.clone()])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        text,
        format!(
            "{}: #limits.mailbox: expected an integer greater than 0, found \"x\"",
            second.display()
        )
    );
    Ok(())
}

#[test]
fn so_keys_colliding_across_files_are_errors() -> TestResult {
    let dir = tempfile::tempdir()?;
    let first = write(dir.path(), "a.json", r##"{"lua.so": {}}"##)?;
    let second = write(
        dir.path(),
        "b.json",
        r##"{"lua": {}, "#startup": ["lua+a"]}"##,
    )?;
    let text = NodeConfig::load(&[first, second])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        text.contains("b.json: lua: collides with the key \"lua.so\""),
        "{text}"
    );
    Ok(())
}

#[test]
fn included_json_files_are_relative_to_the_defining_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("extra/inc"))?;
    std::fs::create_dir(dir.path().join("app"))?;
    write(
        &dir.path().join("extra/inc"),
        "lua.json",
        r##"{"%package": "scripts", "a": "main"}"##,
    )?;
    let extra = write(
        &dir.path().join("extra"),
        "extra.json",
        r##"{"lua": ["inc/lua.json", {"%reflush": 0}]}"##,
    )?;
    let stage = write(
        &dir.path().join("app"),
        "stage.json",
        r##"{"#startup": ["lua+a"]}"##,
    )?;
    let config = NodeConfig::load(&[extra, stage])?;
    let process = &config.processes[0];
    assert_eq!(
        config.main_script(process, &process.modules[0]).as_deref(),
        Some("main")
    );
    assert_eq!(process.lua_settings.reflush_ms, 0);
    assert_eq!(
        process.lua_settings.package[0].dir,
        PathBuf::from("scripts")
    );
    let missing = write(
        &dir.path().join("app"),
        "missing.json",
        r##"{"#startup": ["lua+a"], "lua+a": ["nope.json"]}"##,
    )?;
    let text = NodeConfig::load(&[missing])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        text.contains("app/nope.json: cannot read the file"),
        "{text}"
    );
    Ok(())
}

#[test]
fn unknown_and_ignored_top_level_keys() {
    assert_eq!(
        error_of(json!({"#startup": ["lua+a"], "#thread": 4}))
            .split(" (")
            .next(),
        Some("conf/stage.json: #thread: unknown key")
    );
    assert!(from_json(json!({"#startup": ["lua+a"], "#license": {"any": ["thing"]}})).is_ok());
    assert!(from_json(json!({"#startup": ["lua+a"], "unused-section": 1})).is_ok());
}

#[test]
fn every_hash_key_is_validated() {
    let startup = json!(["lua+a"]);
    for (key, bad) in [
        ("#services", json!({"tcp": "nope"})),
        ("#router", json!("500")),
        ("#cluster", json!(["eth0"])),
        ("#threads", json!({"n": 1})),
        ("#limits", json!({"mailbox": 0})),
        ("#nats", json!({"url": 1})),
        ("#admin", json!(9100)),
    ] {
        let mut value = json!({"#startup": startup});
        value[key] = bad;
        let error = error_of(value);
        assert!(
            error.starts_with(&format!("conf/stage.json: {key}")),
            "{error}"
        );
    }
}

#[test]
fn admin_and_nats_keys() -> TestResult {
    let config = NodeConfig::from_json(
        json!({"#startup": ["lua+a"], "#admin": "127.0.0.1:9100", "#nats": {"url": "nats://n:4222"}}),
        Path::new("stage.json"),
    )?;
    assert_eq!(
        config.admin.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:9100")
    );
    assert_eq!(config.nats.url.as_deref(), Some("nats://n:4222"));
    let config = NodeConfig::from_json(
        json!({"#startup": ["lua+a"], "#admin": null}),
        Path::new("s.json"),
    )?;
    assert_eq!(config.admin, None);
    Ok(())
}

#[test]
fn startup_entry_forms_and_delays() -> TestResult {
    let config = NodeConfig::from_json(
        json!({"#startup": [100, 200, "lua+a", ["lua+b", "curl+web"], 0, "=ticket"]}),
        Path::new("stage.json"),
    )?;
    let summary: Vec<(u32, u64, Vec<&str>)> = config
        .processes
        .iter()
        .map(|p| (p.number, p.delay_ms, texts(&p.modules)))
        .collect();
    assert_eq!(
        summary,
        [
            (1, 300, vec!["lua+a"]),
            (2, 0, vec!["lua+b", "curl+web"]),
            (3, 0, vec!["=ticket"])
        ]
    );
    assert_eq!(config.processes[0].entry, json!("lua+a"));
    assert_eq!(
        config.ticket_section("ticket"),
        Some(&stage_ticket::TicketConfig::default())
    );
    assert_eq!(config.curl_section("web"), Some(&CurlConfig::default()));
    Ok(())
}

#[test]
fn bad_startup_entries_are_errors() {
    let cases = [
        (
            json!("lua+a"),
            "#startup: expected an array of process entries",
        ),
        (
            json!(["lua+a", true]),
            "#startup[1]: expected a module spec",
        ),
        (
            json!(["lua+a", null]),
            "#startup[1]: expected a module spec",
        ),
        (
            json!(["lua+a", {"lua": 1}]),
            "#startup[1]: expected a module spec",
        ),
        (
            json!([[]]),
            "#startup[0]: a process entry needs at least one module",
        ),
        (
            json!([["lua+a", 5]]),
            "#startup[0][1]: expected a string, found 5",
        ),
        (
            json!([-5, "lua+a"]),
            "#startup[0]: expected an integer of 0 or more",
        ),
        (
            json!([1.5, "lua+a"]),
            "#startup[0]: expected an integer of 0 or more",
        ),
        (
            json!(["lua+a", 500]),
            "#startup[1]: a delay must be followed by a process entry",
        ),
        (json!([]), "#startup: no process entry"),
        (
            json!([["lua+a", "odbc.so+db"]]),
            "#startup[0][1]: \"odbc.so+db\": odbc is a library",
        ),
        (json!(["lua.so@main+a"]), "SDK modules are not supported"),
        (
            json!(["custom.so+a"]),
            "#startup[0]: \"custom.so+a\": unknown module",
        ),
    ];
    for (startup, expected) in cases {
        let error = error_of(json!({"#startup": startup}));
        assert!(
            error.contains(expected),
            "{error} does not contain {expected}"
        );
        assert!(error.starts_with("conf/stage.json: #startup"), "{error}");
    }
}

#[test]
fn duplicate_ids_in_one_process_are_errors() {
    let error = error_of(json!({"#startup": [["lua+a", "index+a"]]}));
    assert_eq!(
        error,
        "conf/stage.json: #startup[0][1]: two modules of this process have the id \"a\""
    );
    assert!(from_json(json!({"#startup": [["=ticket", "=ticket+ticket"]]})).is_err());
    assert!(
        from_json(json!({"#startup": [["lua", "lua.so"]]})).is_ok(),
        "modules without id"
    );
    assert!(
        from_json(json!({"#startup": ["lua+a", "lua+a", ["lua+a", "lua+b"]]})).is_ok(),
        "one id in several processes is load balancing"
    );
}

#[test]
fn lua_sections_whole_spec_wins_over_prefix() -> TestResult {
    let config = NodeConfig::from_json(
        json!({
            "#startup": ["lua.so+a", "lua+b"],
            "lua.so": {"shared": 1, "b": "b_main"},
            "lua.so+a": {"only_a": true, "a": "a_main"}
        }),
        Path::new("stage.json"),
    )?;
    let [a, b] = [&config.processes[0], &config.processes[1]];
    assert_eq!(
        Value::Object(a.lua_config.clone()),
        json!({"only_a": true, "a": "a_main"})
    );
    assert_eq!(
        config.main_script(a, &a.modules[0]).as_deref(),
        Some("a_main")
    );
    assert_eq!(
        Value::Object(b.lua_config.clone()),
        json!({"shared": 1, "b": "b_main"})
    );
    assert_eq!(
        config.main_script(b, &b.modules[0]).as_deref(),
        Some("b_main")
    );
    Ok(())
}

#[test]
fn lua_modules_of_one_process_share_one_merged_configuration() -> TestResult {
    let config = NodeConfig::from_json(
        json!({
            "#startup": [["lua+a", "lua+b"]],
            "lua+a": {"%package": ["x"], "deep": {"k": 1, "o": {"n": 1}}, "a": "start_a"},
            "lua+b": [{"deep": {"j": 2, "o": "ignored"}}, {"%package": "y", "b": "start_b"}]
        }),
        Path::new("stage.json"),
    )?;
    let process = &config.processes[0];
    assert_eq!(
        Value::Object(process.lua_config.clone()),
        json!({
            "%package": "y",
            "deep": {"k": 1, "o": {"n": 1}, "j": 2},
            "a": "start_a",
            "b": "start_b"
        })
    );
    assert_eq!(process.lua_settings.package.len(), 1);
    assert_eq!(process.lua_settings.package[0].dir, PathBuf::from("y"));
    let names: Vec<Option<String>> = process
        .lua_modules()
        .map(|module| config.main_script(process, module))
        .collect();
    assert_eq!(
        names,
        [Some("start_a".to_owned()), Some("start_b".to_owned())]
    );
    Ok(())
}

#[test]
fn a_string_section_is_the_main_script_and_merges_nothing() -> TestResult {
    let config = NodeConfig::from_json(
        json!({"#startup": ["lua.so+game"], "lua.so+game": "start", "lua": {"x": 1}}),
        Path::new("stage.json"),
    )?;
    let process = &config.processes[0];
    assert!(process.lua_config.is_empty());
    assert_eq!(
        config.main_script(process, &process.modules[0]).as_deref(),
        Some("start")
    );
    Ok(())
}

#[test]
fn lua_section_errors_name_the_section() {
    assert_eq!(
        error_of(json!({"#startup": ["lua+a"], "lua": {"%package": 7}})),
        "conf/stage.json: lua.%package: expected a directory or an array of directories, found 7"
    );
    assert_eq!(
        error_of(json!({"#startup": ["lua+a"], "lua+a": true})),
        "conf/stage.json: lua+a: expected a main script name, an object or an array (Lua section), found true"
    );
    let error = error_of(json!({"#startup": ["lua+a"], "lua": {"lua.so+a": "x", "lua+a": "y"}}));
    assert!(error.contains("both name the main script"), "{error}");
    assert!(
        from_json(json!({"#startup": ["lua+b"], "lua+a": true})).is_ok(),
        "sections of modules that are not started are not interpreted"
    );
}

#[test]
fn service_sections_by_spec_with_so_stripped() -> TestResult {
    let config = NodeConfig::from_json(
        json!({
            "#startup": [["index+rank", "curl.so+web", "=ticket"], "=route+r"],
            "index.so+rank": {"dir": "data/", "fsync_ms": 5},
            "curl.so": "agent/1",
            "=ticket": [100, {"login": 10}],
            "=route": {"probe_timeout_ms": 50}
        }),
        Path::new("stage.json"),
    )?;
    let index = config.index_section("rank").cloned().unwrap_or_default();
    assert_eq!(
        (index.dir.as_path(), index.durability),
        (
            Path::new("data/"),
            stage_index::Durability::from_fsync_ms(5)
        )
    );
    let curl = config.curl_section("web").cloned().unwrap_or_default();
    assert_eq!(curl.user_agent.as_deref(), Some("agent/1"));
    let ticket = config.ticket_section("ticket").cloned().unwrap_or_default();
    assert_eq!(ticket.capacity, 100);
    assert_eq!(ticket.categories, [("login".to_owned(), 10)]);
    assert_eq!(
        config.route_section("r").map(|r| r.probe_timeout_ms),
        Some(50)
    );
    Ok(())
}

#[test]
fn service_section_errors() {
    assert_eq!(
        error_of(json!({"#startup": ["index+rank"], "index": {"dirr": "x"}}))
            .split(" (")
            .next(),
        Some("conf/stage.json: index.dirr: unknown key")
    );
    assert!(
        error_of(json!({"#startup": ["=ticket+t"], "=ticket+t": [{"a": "1"}]}))
            .starts_with("conf/stage.json: =ticket+t[0].a: expected an integer")
    );
    let error = error_of(json!({
        "#startup": ["index+rank", "/opt/index.so+rank"],
        "index+rank": ["a/"],
        "/opt/index+rank": ["b/"]
    }));
    assert!(error.contains("has different settings"), "{error}");
    assert!(from_json(json!({"#startup": ["index+rank", "index.so+rank"], "index": "a/"})).is_ok());
}

#[test]
fn quick_start_runs_one_lua_stage() -> TestResult {
    let dir = tempfile::tempdir()?;
    let script = write(dir.path(), "app.lua", "print('hi')")?;
    let config = NodeConfig::quick_start(&script)?;
    assert_eq!(config.base_dir, dir.path());
    assert_eq!(config.processes.len(), 1);
    let process = &config.processes[0];
    assert_eq!((process.number, process.delay_ms), (1, 0));
    assert_eq!(process.modules.len(), 1);
    let module = &process.modules[0];
    assert_eq!(module.kind, ModuleKind::Lua);
    assert_eq!(module.id.as_deref(), Some("stage"));
    assert_eq!(config.main_script(process, module).as_deref(), Some("app"));
    assert_eq!(
        process.lua_settings.package,
        [PackageEntry {
            dir: dir.path().to_owned(),
            position: 0
        }]
    );
    assert_eq!(
        process.lua_settings.package[0].resolve(&config.base_dir),
        dir.path()
    );
    assert_eq!(config.threads, ThreadsConfig::default());
    assert_eq!(config.cluster, ClusterConfig::default());
    Ok(())
}

#[test]
fn quick_start_rejects_unusable_names() {
    assert!(NodeConfig::quick_start(Path::new("app.txt")).is_err());
    assert!(NodeConfig::quick_start(Path::new("my.app.lua")).is_err());
    assert!(NodeConfig::quick_start(Path::new("a+b.lua")).is_err());
    assert!(NodeConfig::quick_start(Path::new(".lua")).is_err());
    assert!(NodeConfig::quick_start(Path::new("relative/app.lua")).is_ok());
}
