//! [`ProcessContext`]: what the stages of one (virtual) process share — decision 23: the
//! `stage.once` record, the script cache, the Lua configuration, the title, the program
//! arguments — and their way out to the node (router, metrics, shutdown).

use crate::scripts::{ScriptCache, SearchPath};
use crate::store::ProcessStore;
use crate::worker::{Job, WorkerPool};
use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value as Json};
use stage_config::{ConfigError, Limits, LuaSettings, ThreadsConfig};
use stage_core::io::Io;
use stage_core::metrics::Metrics;
use stage_core::router::Router;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// What one process of the node is started with.
#[derive(Clone, Debug)]
pub struct ProcessSettings {
    /// The process number (`process.stage`).
    pub number: u32,
    /// The title shown as `process.title`.
    pub title: String,
    /// `process.args[0]`.
    pub program: String,
    /// `process.args[1..]` and the main script's `arg`.
    pub args: Vec<String>,
    /// The directory scripts and relative paths are resolved against.
    pub base_dir: PathBuf,
    /// The merged Lua configuration (`process["$"]`).
    pub lua_config: Map<String, Json>,
    /// `#limits`: what protects the process from its scripts.
    pub limits: Limits,
    /// `#threads`: the size of the worker pool and of its job queue.
    pub threads: ThreadsConfig,
}

/// The node-wide services a process reaches out to.
pub struct Node {
    pub router: Arc<Router>,
    pub metrics: Metrics,
    /// The process's I/O runtime (see [`stage_core::io`]).
    pub io: Io,
    /// Called by `stage.exit()`: stops the whole node.
    pub shutdown: Box<dyn Fn() + Send + Sync>,
}

/// State shared by every stage and thread of one process.
pub struct ProcessContext {
    pub number: u32,
    pub program: String,
    pub args: Vec<String>,
    pub base_dir: PathBuf,
    pub limits: Limits,
    /// The worker pool's size and queue capacity.
    threads: ThreadsConfig,
    pub title: Mutex<String>,
    /// The Lua configuration, which scripts may rewrite at run time.
    lua_config: RwLock<Map<String, Json>>,
    /// The search path read from the Lua configuration, kept in step with it.
    search: RwLock<SearchPath>,
    /// `%preload` as the Lua configuration says now.
    preload: RwLock<Vec<PathBuf>>,
    /// Keys recorded by `stage.once`.
    pub once: Mutex<HashSet<String>>,
    pub scripts: ScriptCache,
    /// The process store (`*NAME` globals and `__`).
    pub store: Arc<ProcessStore>,
    /// The worker pool, started by the first job.
    workers: OnceLock<Result<WorkerPool, String>>,
    pub node: Arc<Node>,
}

impl ProcessContext {
    /// A process context for `settings`, attached to `node`.
    /// Fails when the Lua configuration's `%` keys are ill-typed.
    pub fn new(
        settings: ProcessSettings,
        node: Arc<Node>,
    ) -> Result<Arc<ProcessContext>, ConfigError> {
        let lua = LuaSettings::from_map(&settings.lua_config)?;
        Ok(Arc::new(ProcessContext {
            number: settings.number,
            program: settings.program,
            args: settings.args,
            scripts: ScriptCache::new(settings.base_dir.clone()),
            base_dir: settings.base_dir,
            limits: settings.limits,
            threads: settings.threads,
            title: Mutex::new(settings.title),
            lua_config: RwLock::new(settings.lua_config),
            search: RwLock::new(SearchPath::from(&lua)),
            preload: RwLock::new(lua.preload),
            once: Mutex::new(HashSet::new()),
            store: Arc::default(),
            workers: OnceLock::new(),
            node,
        }))
    }

    /// Queues a job on the worker pool, starting the pool first if needed.
    pub fn submit(self: &Arc<Self>, job: Job) -> mlua::Result<()> {
        let pool = self.workers.get_or_init(|| {
            let threads = &self.threads;
            WorkerPool::start(self, threads.workers, threads.queue)
                .map_err(|e| format!("cannot start the worker threads: {e}"))
        });
        match pool {
            Ok(pool) => pool.submit(job).map_err(mlua::Error::external),
            Err(e) => Err(mlua::Error::runtime(e.clone())),
        }
    }

    /// Stops the worker pool, if it was started.
    pub fn stop_workers(&self) {
        if let Some(Ok(pool)) = self.workers.get() {
            pool.stop();
        }
    }

    /// The script search path as the Lua configuration says now.
    pub fn search_path(&self) -> SearchPath {
        self.search.read().clone()
    }

    /// The `%preload` paths as the Lua configuration says now.
    pub fn preload(&self) -> Vec<PathBuf> {
        self.preload.read().clone()
    }

    /// The Lua configuration (`process["$"]`).
    pub fn lua_config(&self) -> Map<String, Json> {
        self.lua_config.read().clone()
    }

    /// One key of the Lua configuration (`process["$NAME"]`).
    pub fn lua_config_key(&self, key: &str) -> Option<Json> {
        self.lua_config.read().get(key).cloned()
    }

    /// Changes the Lua configuration: `key` `None` replaces all of it, `value` `None` removes the
    /// key. Refused, with nothing changed, when the runtime's `%` keys would become ill-typed.
    pub fn update_lua_config(
        &self,
        key: Option<&str>,
        value: Option<Json>,
    ) -> Result<(), ConfigError> {
        let mut config = self.lua_config.write();
        let mut next = config.clone();
        match (key, value) {
            (None, Some(Json::Object(all))) => next = all,
            (None, _) => next.clear(),
            (Some(k), Some(v)) => {
                next.insert(k.to_string(), v);
            }
            (Some(k), None) => {
                next.remove(k);
            }
        }
        let settings = LuaSettings::from_map(&next)?;
        *self.search.write() = SearchPath::from(&settings);
        *self.preload.write() = settings.preload;
        *config = next;
        Ok(())
    }
}
