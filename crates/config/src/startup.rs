//! `#startup` (`runtime.md` §3.1, §4.5): the processes of the node, their modules, the delays
//! between them and the Lua configuration of each.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::at::At;
use crate::document::{Document, Entry};
use crate::lua_config::{apply_section, spec_keys};
use crate::lua_settings::LuaSettings;
use crate::module_spec::{ModuleKind, ModuleSpec};
use crate::ConfigError;

/// One stage process: a string or array entry of `#startup`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessConfig {
    /// The process number (`process.stage`): 1, 2, … counting only string/array entries.
    pub number: u32,
    /// How long the supervisor waits before starting this process, in ms: the sum of the
    /// integer entries just before it (0 when there are none).
    pub delay_ms: u64,
    /// The entry as written (the process title shows it as JSON).
    pub entry: Value,
    /// The modules of the process, in initialisation order.
    pub modules: Vec<ModuleSpec>,
    /// The process-wide Lua configuration merged from the sections of its Lua modules (empty
    /// when it has none); scripts read it as `process["$…"]`.
    pub lua_config: Map<String, Value>,
    /// The `%` keys of [`ProcessConfig::lua_config`] as read at startup.
    pub lua_settings: LuaSettings,
}

impl ProcessConfig {
    /// The Lua modules of the process, in order.
    pub fn lua_modules(&self) -> impl Iterator<Item = &ModuleSpec> {
        self.modules
            .iter()
            .filter(|module| module.kind == ModuleKind::Lua)
    }
}

/// Parses the `#startup` entry of the document into its processes.
pub(crate) fn processes(
    startup: &Entry,
    document: &Document,
) -> Result<Vec<ProcessConfig>, ConfigError> {
    let at = startup.at();
    let items = startup
        .value
        .as_array()
        .ok_or_else(|| at.expected("an array of process entries", &startup.value))?;
    let mut processes = Vec::new();
    let mut delay_ms: u64 = 0;
    let mut last_delay = None;
    for (index, item) in items.iter().enumerate() {
        let at = at.index(index);
        let specs: Vec<(&str, At)> = match item {
            Value::Number(_) => {
                delay_ms = delay_ms.saturating_add(at.non_negative(item)?);
                last_delay = Some(at);
                continue;
            }
            Value::String(text) => vec![(text.as_str(), at.clone())],
            Value::Array(specs) if specs.is_empty() => {
                return Err(at.error("a process entry needs at least one module"))
            }
            Value::Array(specs) => specs
                .iter()
                .enumerate()
                .map(|(position, spec)| {
                    let at = at.index(position);
                    at.string(spec).map(|text| (text, at))
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(at.expected(
                    "a module spec, an array of module specs or a delay in ms",
                    other,
                ))
            }
        };
        let number =
            u32::try_from(processes.len() + 1).map_err(|_| at.error("too many process entries"))?;
        processes.push(process(number, delay_ms, item, &specs, &at, document)?);
        delay_ms = 0;
        last_delay = None;
    }
    if let Some(at) = last_delay {
        return Err(at.error("a delay must be followed by a process entry"));
    }
    if processes.is_empty() {
        return Err(at.error("no process entry: nothing would run"));
    }
    Ok(processes)
}

/// One process entry.
fn process(
    number: u32,
    delay_ms: u64,
    entry: &Value,
    specs: &[(&str, At)],
    at: &At,
    document: &Document,
) -> Result<ProcessConfig, ConfigError> {
    let mut modules: Vec<ModuleSpec> = Vec::with_capacity(specs.len());
    let mut ids = HashSet::new();
    for (text, at) in specs {
        let module = ModuleSpec::parse(text, at)?;
        if let Some(id) = &module.id {
            if !ids.insert(id.clone()) {
                return Err(at.error(format!("two modules of this process have the id {id:?}")));
            }
        }
        modules.push(module);
    }
    let mut lua_config = Map::new();
    for module in modules.iter().filter(|m| m.kind == ModuleKind::Lua) {
        if let Some(section) = document.section(module) {
            apply_section(&mut lua_config, section)?;
        }
    }
    for module in modules.iter().filter(|m| m.kind == ModuleKind::Lua) {
        if let [first, second, ..] = spec_keys(&lua_config, module).as_slice() {
            return Err(at.error(format!(
                "the Lua configuration keys {first:?} and {second:?} both name the main script of \
                 {:?} once \".so\" is removed",
                module.text
            )));
        }
    }
    let lua_settings = LuaSettings::parse(
        &lua_config,
        &At::file(format!("Lua configuration of process {number}")),
    )?;
    Ok(ProcessConfig {
        number,
        delay_ms,
        entry: entry.clone(),
        modules,
        lua_config,
        lua_settings,
    })
}
