//! Starting and stopping a node in one process: every `#startup` entry becomes a virtual process
//! (decision 23) whose Lua stages each get a stage thread; SIGINT, SIGTERM or `stage.exit()`
//! stop it gracefully within 2 s.

use crossbeam_channel::bounded;
use stage_config::{ConfigError, ModuleKind, NodeConfig, ProcessConfig};
use stage_core::io::Io;
use stage_core::metrics::Metrics;
use stage_core::router::Router;
use stage_core::service::{Placement, ServiceHandle};
use stage_core::ReplyAddress;
use stage_lua::{Node, ProcessContext, ProcessSettings, StageHandle, StageSpec};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long stages get to finish their current invocation at shutdown.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}: no stage.json or conf/stage.json there, and no -c file given")]
    NoConfig(PathBuf),
    #[error("#startup entry {process}: module '{module}': {reason}")]
    Service {
        process: u32,
        module: String,
        reason: String,
    },
    #[error("cannot enter {0}: {1}")]
    Chdir(PathBuf, std::io::Error),
    #[error("cannot start a thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Reads the configuration for `stage run`/`stage check`: the `-c` files, then PATH's
/// `stage.json` (or `conf/stage.json`); a `.lua` PATH is the quick start (decision 27).
pub fn load_config(extra: &[PathBuf], path: &Path) -> Result<NodeConfig, NodeError> {
    if path.extension().is_some_and(|e| e == "lua") && path.is_file() {
        return Ok(NodeConfig::quick_start(path)?);
    }
    let mut files = extra.to_vec();
    let found = [
        path.join("stage.json"),
        path.join("conf").join("stage.json"),
    ]
    .into_iter()
    .find(|p| p.is_file());
    match found {
        Some(f) => files.push(f),
        None if files.is_empty() => return Err(NodeError::NoConfig(path.to_path_buf())),
        None => {}
    }
    let mut config = NodeConfig::load(&files)?;
    if path.is_dir() {
        // Scripts and relative paths belong to the application directory, even with conf/stage.json.
        config.base_dir = path.to_path_buf();
    }
    Ok(config)
}

/// Runs the node until it is told to stop.
pub fn run(
    config: NodeConfig,
    program: String,
    args: Vec<String>,
    suspend_file: Option<PathBuf>,
) -> Result<(), NodeError> {
    if let Some(file) = suspend_file.filter(|f| f.exists()) {
        // The drain switch is read by the cluster heartbeats; a stale one must not drain a new node.
        std::fs::remove_file(&file).map_err(|e| NodeError::Chdir(file, e))?;
    }
    let mut config = config;
    config.base_dir = std::fs::canonicalize(&config.base_dir)
        .map_err(|e| NodeError::Chdir(config.base_dir.clone(), e))?;
    // Scripts open files relative to their application's directory.
    std::env::set_current_dir(&config.base_dir)
        .map_err(|e| NodeError::Chdir(config.base_dir.clone(), e))?;
    let (stop_tx, stop_rx) = bounded::<()>(1);
    let shutdown_tx = stop_tx.clone();
    let node = Arc::new(Node {
        router: Arc::new(Router::new()),
        metrics: Metrics::new(),
        io: Io::new(),
        shutdown: Box::new(move || {
            let _ = shutdown_tx.try_send(());
        }),
    });
    watch_signals(stop_tx)?;
    let running = start(&config, &node, &program, &args)?;
    tracing::info!(
        "node started: {} stage(s), {} service(s)",
        running.stages.len(),
        running.services.len()
    );
    let _ = stop_rx.recv();
    tracing::info!("stopping");
    stop(running);
    Ok(())
}

fn watch_signals(stop: crossbeam_channel::Sender<()>) -> Result<(), NodeError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(NodeError::Signals)?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for _ in signals.forever() {
                let _ = stop.try_send(());
            }
        })?;
    Ok(())
}

/// What a started node runs.
struct Running {
    processes: Vec<Arc<ProcessContext>>,
    stages: Vec<StageHandle>,
    services: Vec<ServiceHandle>,
}

/// Starts every process of the configuration in order, honouring `#startup` delays. Services
/// start first, and every Lua stage is registered before any boots, so that no message sent at
/// boot misses its target.
fn start(
    config: &NodeConfig,
    node: &Arc<Node>,
    program: &str,
    args: &[String],
) -> Result<Running, NodeError> {
    let mut services = Vec::new();
    let mut processes = Vec::new();
    let mut prepared = Vec::new();
    let mut tag = 0;
    for process in &config.processes {
        let context = ProcessContext::new(settings(config, process, program, args), node.clone())?;
        processes.push(context.clone());
        let mut stages = Vec::new();
        for module in &process.modules {
            tag += 1;
            if module.kind == ModuleKind::Lua {
                let spec = StageSpec {
                    id: module.id.clone(),
                    main_script: config.main_script(process, module),
                };
                stages.push(stage_lua::prepare(spec, context.clone(), tag));
                continue;
            }
            let id = module
                .id
                .clone()
                .unwrap_or_else(|| module.kind.name().to_string());
            let placement = Placement {
                id,
                address: ReplyAddress::local(process.number, tag),
                capacity: context.limits.mailbox_capacity(),
                router: node.router.clone(),
                io: node.io.clone(),
            };
            let service = crate::services::start(config, module, placement).map_err(|e| {
                NodeError::Service {
                    process: process.number,
                    module: module.text.clone(),
                    reason: e.to_string(),
                }
            })?;
            services.push(service);
        }
        prepared.push((process.delay_ms, stages));
    }
    let mut stages = Vec::new();
    for (delay_ms, group) in prepared {
        std::thread::sleep(Duration::from_millis(delay_ms));
        for stage in group {
            stages.push(stage.start()?);
        }
    }
    Ok(Running {
        processes,
        stages,
        services,
    })
}

fn settings(
    config: &NodeConfig,
    process: &ProcessConfig,
    program: &str,
    args: &[String],
) -> ProcessSettings {
    ProcessSettings {
        number: process.number,
        title: format!("{program}: {} - {}", process.number, process.entry),
        program: program.to_string(),
        args: args.to_vec(),
        base_dir: config.base_dir.clone(),
        lua_config: process.lua_config.clone(),
        limits: config.limits,
        threads: config.threads,
    }
}

/// Stops every stage, then every service, and waits for them, at most [`STOP_GRACE`].
fn stop(running: Running) {
    for stage in &running.stages {
        stage.stop();
    }
    for process in &running.processes {
        process.stop_workers();
    }
    let (done_tx, done_rx) = bounded::<()>(1);
    let joiner = std::thread::spawn(move || {
        for stage in running.stages {
            stage.join();
        }
        for service in &running.services {
            service.stop();
        }
        for service in running.services {
            service.join();
        }
        let _ = done_tx.send(());
    });
    if done_rx.recv_timeout(STOP_GRACE).is_err() {
        tracing::warn!("the node did not stop within {STOP_GRACE:?}; exiting anyway");
        return;
    }
    let _ = joiner.join();
}
