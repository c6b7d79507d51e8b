//! The keys of a Lua configuration that the runtime interprets (`runtime.md` §4.6, §5.2, §8.2,
//! §8.3): `%preload`, `%package`, `%reflush` and `%odbc`. Everything else in a Lua configuration
//! belongs to the scripts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::at::At;
use crate::ConfigError;

/// Default `%reflush`: position-0 scripts are re-checked at most every 30 s.
const DEFAULT_REFLUSH_MS: i64 = 30_000;

/// One directory of the script search path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageEntry {
    /// The directory as written, relative to [`crate::NodeConfig::base_dir`] unless absolute;
    /// empty = the base directory itself. A directory part containing `:` names a zip archive
    /// (`"bundle.zip:"`).
    pub dir: PathBuf,
    /// 0 = primary copy (re-checked every `%reflush`), > 0 = fail-over copy.
    pub position: u32,
}

impl PackageEntry {
    /// The directory joined to `base_dir` (the directory the node runs in).
    pub fn resolve(&self, base_dir: &Path) -> PathBuf {
        base_dir.join(&self.dir)
    }
}

/// One named database connection of `%odbc`.
#[derive(Debug, Clone, PartialEq)]
pub enum OdbcConnection {
    /// A connection string (`"DRIVER=...;SERVER=...;"` or a URL).
    Text(String),
    /// Key/value pairs; keys starting with `.` or `:` are options, the rest go to the driver.
    Fields(Map<String, Value>),
}

/// The runtime's view of a process's Lua configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct LuaSettings {
    /// `%preload`: files or directories run in every new Lua state, in order.
    pub preload: Vec<PathBuf>,
    /// `%package`: the script search path, in search order.
    pub package: Vec<PackageEntry>,
    /// `%reflush`: re-check interval of position-0 scripts in ms; 0 = never, negative = on
    /// every load.
    pub reflush_ms: i64,
    /// `%odbc`: named database connections.
    pub odbc: BTreeMap<String, OdbcConnection>,
}

impl Default for LuaSettings {
    /// An empty Lua configuration: no preload, the working directory at position 0, 30 s.
    fn default() -> Self {
        LuaSettings {
            preload: Vec::new(),
            package: vec![PackageEntry {
                dir: PathBuf::new(),
                position: 0,
            }],
            reflush_ms: DEFAULT_REFLUSH_MS,
            odbc: BTreeMap::new(),
        }
    }
}

impl LuaSettings {
    /// Reads the `%` keys of a Lua configuration, e.g. one that scripts changed at run time
    /// through `process["$…"]`.
    ///
    /// # Errors
    /// A `%` key of the wrong type or an unparsable `%package` entry; the message names the key
    /// inside the Lua configuration (`Lua configuration: %package[1]: …`).
    pub fn from_map(map: &Map<String, Value>) -> Result<LuaSettings, ConfigError> {
        LuaSettings::parse(map, &At::file("Lua configuration"))
    }

    /// Reads the `%` keys of `map`, reporting problems below `at`.
    pub(crate) fn parse(map: &Map<String, Value>, at: &At) -> Result<LuaSettings, ConfigError> {
        let mut settings = LuaSettings::default();
        if let Some(value) = map.get("%preload") {
            let at = at.key("%preload");
            settings.preload = match value {
                Value::String(path) => vec![PathBuf::from(path)],
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| at.index(index).string(item).map(PathBuf::from))
                    .collect::<Result<_, _>>()?,
                other => return Err(at.expected("a path or an array of paths", other)),
            };
        }
        if let Some(value) = map.get("%package") {
            settings.package = package(value, &at.key("%package"))?;
        }
        if let Some(value) = map.get("%reflush") {
            settings.reflush_ms = at.key("%reflush").integer(value)?;
        }
        if let Some(value) = map.get("%odbc") {
            settings.odbc = odbc(value, &at.key("%odbc"))?;
        }
        Ok(settings)
    }
}

/// `%package`: one entry (position 0 unless it says otherwise) or a list of entries.
fn package(value: &Value, at: &At) -> Result<Vec<PackageEntry>, ConfigError> {
    match value {
        Value::String(text) => Ok(vec![package_entry(text, 0, at)?]),
        Value::Array(items) if items.is_empty() => {
            Err(at.error("an empty search path finds no scripts"))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let at = at.index(index);
                let position =
                    u32::try_from(index).map_err(|_| at.error("too many search path entries"))?;
                package_entry(at.string(item)?, position, &at)
            })
            .collect(),
        other => Err(at.expected("a directory or an array of directories", other)),
    }
}

/// `[N]dir`, `#N:dir` (position N; any run of `]` and `:` after N is skipped) or `dir`
/// (position `index`).
fn package_entry(text: &str, index: u32, at: &At) -> Result<PackageEntry, ConfigError> {
    let Some(forced) = text.strip_prefix(['[', '#']) else {
        return Ok(PackageEntry {
            dir: PathBuf::from(text),
            position: index,
        });
    };
    let digits_end = forced
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(forced.len());
    let position = forced[..digits_end].parse().map_err(|_| {
        at.error(format!(
            "{text:?}: expected a position number after '{}'",
            &text[..1]
        ))
    })?;
    let dir = forced[digits_end..].trim_start_matches([']', ':']);
    Ok(PackageEntry {
        dir: PathBuf::from(dir),
        position,
    })
}

/// `%odbc`: `{ name: "connection string" | { KEY: scalar, … }, … }`.
fn odbc(value: &Value, at: &At) -> Result<BTreeMap<String, OdbcConnection>, ConfigError> {
    let map = value
        .as_object()
        .ok_or_else(|| at.expected("an object of named connections", value))?;
    map.iter()
        .map(|(name, entry)| {
            let at = at.key(name);
            let connection = match entry {
                Value::String(text) => OdbcConnection::Text(text.clone()),
                Value::Object(fields) => {
                    for (key, field) in fields {
                        if !matches!(field, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                            return Err(at
                                .key(key)
                                .expected("a string, a number or a boolean", field));
                        }
                    }
                    OdbcConnection::Fields(fields.clone())
                }
                other => {
                    return Err(at.expected("a connection string or an object of settings", other))
                }
            };
            Ok((name.clone(), connection))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(value: Value) -> Result<LuaSettings, String> {
        let map = value.as_object().cloned().unwrap_or_default();
        LuaSettings::from_map(&map).map_err(|e| e.to_string())
    }

    fn entry(dir: &str, position: u32) -> PackageEntry {
        PackageEntry {
            dir: PathBuf::from(dir),
            position,
        }
    }

    #[test]
    fn empty_configuration_defaults() {
        let settings = settings(json!({})).unwrap_or_default();
        assert!(settings.preload.is_empty());
        assert_eq!(settings.package, [entry("", 0)]);
        assert_eq!(settings.reflush_ms, 30_000);
        assert!(settings.odbc.is_empty());
    }

    #[test]
    fn package_positions_of_the_sample_layout() {
        let settings = settings(json!({"%package": ["package", "rollback", "[0]lib", "[0]"]}))
            .unwrap_or_default();
        assert_eq!(
            settings.package,
            [
                entry("package", 0),
                entry("rollback", 1),
                entry("lib", 0),
                entry("", 0)
            ]
        );
    }

    #[test]
    fn package_entry_syntax() {
        let settings =
            settings(json!({"%package": ["a", "b", "#5:c", "[2]]::d", "#7", "bundle.zip:"]}))
                .unwrap_or_default();
        assert_eq!(
            settings.package,
            [
                entry("a", 0),
                entry("b", 1),
                entry("c", 5),
                entry("d", 2),
                entry("", 7),
                entry("bundle.zip:", 5)
            ]
        );
    }

    #[test]
    fn a_string_package_is_one_entry_at_position_0() {
        let settings = settings(json!({"%package": "scripts"})).unwrap_or_default();
        assert_eq!(settings.package, [entry("scripts", 0)]);
        let settings = settings_or_panic(json!({"%package": "[3]scripts"}));
        assert_eq!(settings.package, [entry("scripts", 3)]);
    }

    fn settings_or_panic(value: Value) -> LuaSettings {
        match settings(value) {
            Ok(settings) => settings,
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn package_entries_resolve_against_the_base_directory() {
        let base = Path::new("/srv/app");
        assert_eq!(entry("lib", 0).resolve(base), PathBuf::from("/srv/app/lib"));
        assert_eq!(entry("", 0).resolve(base), PathBuf::from("/srv/app/"));
        assert_eq!(entry("/abs", 0).resolve(base), PathBuf::from("/abs"));
    }

    #[test]
    fn preload_reflush_and_odbc() {
        let settings = settings_or_panic(json!({
            "%preload": ["preload", "more.json"],
            "%reflush": -1,
            "%odbc": {
                "main": "DRIVER=sqlite;DATABASE=x",
                "DF": {"SERVER": "localhost", ".executeTimeout": 1000, ".ssl": true}
            },
            "%cluster": [1, "anything"],
            "mine": {"free": "form"}
        }));
        assert_eq!(
            settings.preload,
            [PathBuf::from("preload"), PathBuf::from("more.json")]
        );
        assert_eq!(settings.reflush_ms, -1);
        assert_eq!(
            settings.odbc.get("main"),
            Some(&OdbcConnection::Text("DRIVER=sqlite;DATABASE=x".to_owned()))
        );
        match settings.odbc.get("DF") {
            Some(OdbcConnection::Fields(fields)) => {
                assert_eq!(fields.get(".executeTimeout"), Some(&json!(1000)))
            }
            other => panic!("unexpected {other:?}"),
        }
        let single = settings_or_panic(json!({"%preload": "lib/preload"}));
        assert_eq!(single.preload, [PathBuf::from("lib/preload")]);
    }

    #[test]
    fn interpreted_keys_are_type_checked() {
        assert_eq!(
            settings(json!({"%reflush": "10"})).err().as_deref(),
            Some("Lua configuration: %reflush: expected an integer, found \"10\"")
        );
        assert_eq!(
            settings(json!({"%package": ["a", 1]})).err().as_deref(),
            Some("Lua configuration: %package[1]: expected a string, found 1")
        );
        assert!(settings(json!({"%package": []})).is_err());
        assert!(settings(json!({"%package": {"a": 1}})).is_err());
        assert!(settings(json!({"%package": ["[x]lib"]})).is_err());
        assert!(settings(json!({"%package": ["[99999999999]lib"]})).is_err());
        assert!(settings(json!({"%preload": 1})).is_err());
        assert!(settings(json!({"%preload": ["a", null]})).is_err());
        assert!(settings(json!({"%reflush": 1.5})).is_err());
        assert!(settings(json!({"%odbc": "x"})).is_err());
        assert!(settings(json!({"%odbc": {"a": 1}})).is_err());
        assert_eq!(
            settings(json!({"%odbc": {"a": {"PWD": null}}})).err().as_deref(),
            Some("Lua configuration: %odbc.a.PWD: expected a string, a number or a boolean, found null")
        );
    }
}
