//! [`NodeConfig`]: the whole validated configuration of a node.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::address::HostPort;
use crate::at::At;
use crate::cluster::ClusterConfig;
use crate::document::{Document, Entry};
use crate::limits::Limits;
use crate::lua_config::main_script_in;
use crate::module_spec::{ModuleKind, ModuleSpec};
use crate::nats::NatsConfig;
use crate::router::RouterConfig;
use crate::sections::{curl::CurlConfig, index, route, ticket};
use crate::services::Services;
use crate::startup::{processes, ProcessConfig};
use crate::threads::ThreadsConfig;
use crate::ConfigError;

/// The `#` keys of the schema. `#license` is accepted and ignored.
const KNOWN_KEYS: [&str; 9] = [
    "#services",
    "#router",
    "#cluster",
    "#threads",
    "#startup",
    "#limits",
    "#nats",
    "#admin",
    "#license",
];

/// The validated configuration of a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The directory the node runs in: relative paths of the configuration (`%package`,
    /// `%preload`, index directories, credentials) start here. It is the directory of the last
    /// file given to [`NodeConfig::load`] (the `PATH/stage.json` that follows the `-c` files).
    pub base_dir: PathBuf,
    /// `#services`: listening sockets shared by all processes.
    pub services: Services,
    /// `#router`: heartbeat and routing-expiry timing.
    pub router: RouterConfig,
    /// `#cluster`: cluster port, advertised address, peers and backups.
    pub cluster: ClusterConfig,
    /// `#threads`: worker pool size and job-queue capacity of each process.
    pub threads: ThreadsConfig,
    /// `#limits`: budgets, memory caps and queue bounds.
    pub limits: Limits,
    /// `#nats`: connection to other machines.
    pub nats: NatsConfig,
    /// `#admin`: address of the admin HTTP endpoint; `None` = no endpoint.
    pub admin: Option<HostPort>,
    /// The processes of `#startup`, in order.
    pub processes: Vec<ProcessConfig>,
    document: Document,
    index: BTreeMap<String, stage_index::Config>,
    curl: BTreeMap<String, CurlConfig>,
    ticket: BTreeMap<String, stage_ticket::TicketConfig>,
    route: BTreeMap<String, stage_route::RouteConfig>,
}

impl NodeConfig {
    /// Loads `files` in order (the `-c` files, then `PATH/stage.json`), merged per top-level key
    /// with the first file winning.
    ///
    /// # Errors
    /// A file that does not exist or does not parse (with its line and column), an empty
    /// configuration, a missing `#startup`, and any key the schema rejects.
    pub fn load(files: &[PathBuf]) -> Result<NodeConfig, ConfigError> {
        let Some(last) = files.last() else {
            return Err(ConfigError::File {
                file: "(none)".to_owned(),
                message: "no configuration file given".to_owned(),
            });
        };
        let document = Document::load(files)?;
        NodeConfig::build(document, base_dir_of(last))
    }

    /// Validates an already-parsed configuration object; `origin` is the file it stands for
    /// (named in errors; its directory becomes [`NodeConfig::base_dir`] and the start of
    /// relative includes).
    ///
    /// # Errors
    /// As [`NodeConfig::load`], for the keys of `value`.
    pub fn from_json(value: Value, origin: &Path) -> Result<NodeConfig, ConfigError> {
        let document = Document::from_value(value, origin)?;
        NodeConfig::build(document, base_dir_of(origin))
    }

    /// The quick start `stage run app.lua` (decision 27): one Lua stage with id `stage` as
    /// process 1, whose main script is the file's stem and whose search path is the file's
    /// directory at position 0; everything else has its defaults.
    ///
    /// # Errors
    /// A file that does not end in `.lua`, or whose stem cannot be a script name (empty, or
    /// containing `.`, `:` or `+`, which script names give other meanings).
    pub fn quick_start(script: &Path) -> Result<NodeConfig, ConfigError> {
        let file = script.display().to_string();
        let error = |message: String| ConfigError::File {
            file: file.clone(),
            message,
        };
        if script.extension().and_then(|e| e.to_str()) != Some("lua") {
            return Err(error("a quick-start script must end in .lua".to_owned()));
        }
        let stem = script.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if stem.is_empty() || stem.contains(['.', ':', '+']) {
            return Err(error(format!(
                "{stem:?} cannot be a script name (it must not be empty or contain '.', ':' or '+')"
            )));
        }
        let absolute = std::path::absolute(script)
            .map_err(|e| error(format!("cannot make the path absolute: {e}")))?;
        let dir = absolute.parent().unwrap_or(Path::new("/")).to_owned();
        let dir_text = dir
            .to_str()
            .ok_or_else(|| error("the directory name is not valid UTF-8".to_owned()))?;
        let value = json!({
            "#startup": ["lua+stage"],
            "lua+stage": { "%package": dir_text, "stage": stem },
        });
        let document = Document::from_value(value, script)?;
        NodeConfig::build(document, dir)
    }

    /// The main script name of the Lua module `module` of `process` (§4.6): the module's
    /// section itself when it is a string, else the string at the module's spec, else at its
    /// id, in the process's Lua configuration. `None` = no main script.
    pub fn main_script(&self, process: &ProcessConfig, module: &ModuleSpec) -> Option<String> {
        if module.kind != ModuleKind::Lua {
            return None;
        }
        match self.document.section(module).map(|entry| &entry.value) {
            Some(Value::String(name)) => Some(name.clone()),
            _ => main_script_in(&process.lua_config, module),
        }
    }

    /// The settings of the index service with stage id `id`, if one is started; its `dir` is
    /// as written, relative to [`NodeConfig::base_dir`] unless absolute.
    pub fn index_section(&self, id: &str) -> Option<&stage_index::Config> {
        self.index.get(id)
    }

    /// The settings of the curl service with stage id `id`, if one is started.
    pub fn curl_section(&self, id: &str) -> Option<&CurlConfig> {
        self.curl.get(id)
    }

    /// The settings of the ticket service with stage id `id`, if one is started.
    pub fn ticket_section(&self, id: &str) -> Option<&stage_ticket::TicketConfig> {
        self.ticket.get(id)
    }

    /// The settings of the route service with stage id `id`, if one is started.
    pub fn route_section(&self, id: &str) -> Option<&stage_route::RouteConfig> {
        self.route.get(id)
    }

    /// Validates every key of `document`.
    fn build(document: Document, base_dir: PathBuf) -> Result<NodeConfig, ConfigError> {
        if let Some(unknown) = document
            .entries()
            .iter()
            .find(|entry| entry.key.starts_with('#') && !KNOWN_KEYS.contains(&entry.key.as_str()))
        {
            return Err(unknown.at().error(format!(
                "unknown key (known keys: {})",
                KNOWN_KEYS.join(", ")
            )));
        }
        let startup = document
            .get("#startup")
            .ok_or_else(|| {
                let file = document
                    .entries()
                    .first()
                    .map(|entry| entry.file.display().to_string())
                    .unwrap_or_default();
                At::file(file)
                    .key("#startup")
                    .error("missing: the list of processes to start is required")
            })?
            .clone();
        let processes = processes(&startup, &document)?;
        let mut config = NodeConfig {
            base_dir,
            services: parse_key(&document, "#services", Services::parse)?.unwrap_or_default(),
            router: parse_key(&document, "#router", RouterConfig::parse)?.unwrap_or_default(),
            cluster: parse_key(&document, "#cluster", ClusterConfig::parse)?.unwrap_or_default(),
            threads: parse_key(&document, "#threads", ThreadsConfig::parse)?.unwrap_or_default(),
            limits: parse_key(&document, "#limits", Limits::parse)?.unwrap_or_default(),
            nats: parse_key(&document, "#nats", NatsConfig::parse)?.unwrap_or_default(),
            admin: parse_key(&document, "#admin", admin)?.flatten(),
            processes,
            document,
            index: BTreeMap::new(),
            curl: BTreeMap::new(),
            ticket: BTreeMap::new(),
            route: BTreeMap::new(),
        };
        config.read_service_sections(&startup)?;
        Ok(config)
    }

    /// Reads the section of every service module started by some process.
    fn read_service_sections(&mut self, startup: &Entry) -> Result<(), ConfigError> {
        let modules: Vec<ModuleSpec> = self
            .processes
            .iter()
            .flat_map(|process| process.modules.iter())
            .filter(|module| module.kind.is_service())
            .cloned()
            .collect();
        for module in &modules {
            let section = self.document.section(module);
            let at = section.map_or_else(|| startup.at(), Entry::at);
            let value = section.map(|entry| &entry.value);
            let id = module
                .id
                .clone()
                .unwrap_or_else(|| module.kind.name().to_owned());
            match module.kind {
                ModuleKind::Index => {
                    insert(&mut self.index, id, index::parse(value, &at)?, module, &at)?
                }
                ModuleKind::Curl => insert(
                    &mut self.curl,
                    id,
                    CurlConfig::parse(value, &at)?,
                    module,
                    &at,
                )?,
                ModuleKind::Ticket => insert(
                    &mut self.ticket,
                    id,
                    ticket::parse(value, &at)?,
                    module,
                    &at,
                )?,
                ModuleKind::Route => insert(
                    &mut self.route,
                    id.clone(),
                    route::parse(value, &at, &id)?,
                    module,
                    &at,
                )?,
                ModuleKind::Lua => {}
            }
        }
        Ok(())
    }
}

/// Parses the top-level key `key` with `parse` when it is present.
fn parse_key<T>(
    document: &Document,
    key: &str,
    parse: impl FnOnce(&Value, &At) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    document
        .get(key)
        .map(|entry| parse(&entry.value, &entry.at()))
        .transpose()
}

/// `#admin`: `null` or `"host:port"`.
fn admin(value: &Value, at: &At) -> Result<Option<HostPort>, ConfigError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => HostPort::parse(text, at).map(Some),
        other => Err(at.expected("null or a \"host:port\" address", other)),
    }
}

/// Records the settings of service `id`; instances of one id must agree on them.
fn insert<T: PartialEq>(
    sections: &mut BTreeMap<String, T>,
    id: String,
    config: T,
    module: &ModuleSpec,
    at: &At,
) -> Result<(), ConfigError> {
    match sections.get(&id) {
        Some(existing) if *existing != config => Err(at.error(format!(
            "{:?}: another {} service with the id {id:?} has different settings",
            module.text, module.kind
        ))),
        Some(_) => Ok(()),
        None => {
            sections.insert(id, config);
            Ok(())
        }
    }
}

/// The directory of a configuration file (`.` for a bare file name).
fn base_dir_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}
