//! Each stage counts its messages, handler calls, handler errors and timer runs in the node's
//! registry.

use stage_config::{Limits, ThreadsConfig};
use stage_core::metrics::Metrics;
use stage_core::router::Router;
use stage_lua::{Node, ProcessContext, ProcessSettings, StageSpec};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn a_stage_counts_what_it_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("main.lua"),
        r#"
stage.waitfor("m", function (n) if n == 2 then error("second fails") end end)
for i = 1, 3 do stage.signal("m", i) end
stage.addtask(5, function () RUNS = (RUNS or 0) + 1 if RUNS < 2 then return 5 end stage.exit() return 0 end)
"#,
    )
    .expect("write");
    let (tx, rx) = crossbeam_channel::bounded(1);
    let node = Arc::new(Node {
        router: Arc::new(Router::new()),
        metrics: Metrics::new(),
        io: stage_core::io::Io::new(),
        shutdown: Box::new(move || {
            let _ = tx.try_send(());
        }),
    });
    let settings = ProcessSettings {
        number: 1,
        title: "test".into(),
        program: "test".into(),
        args: vec![],
        base_dir: dir.path().to_path_buf(),
        lua_config: serde_json::Map::new(),
        limits: Limits::default(),
        threads: ThreadsConfig::default(),
    };
    let process = ProcessContext::new(settings, node.clone()).expect("process");
    let spec = StageSpec {
        id: Some("counted".into()),
        main_script: Some("main".into()),
    };
    let handle = stage_lua::spawn(spec, process, 1).expect("spawn");
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the script calls stage.exit()");
    handle.stop();
    handle.join();
    let text = node.metrics.encode();
    for expected in [
        r#"stage_messages_in_total{stage="counted"} 3"#,
        r#"stage_messages_out_total{stage="counted"} 3"#,
        r#"stage_handler_calls_total{stage="counted"} 3"#,
        r#"stage_handler_errors_total{stage="counted"} 1"#,
        r#"stage_timer_runs_total{stage="counted"} 2"#,
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
}
