//! Building a process's Lua configuration from the sections of its Lua modules
//! (`runtime.md` §4.6), and finding a Lua module's main script name in it.

use serde_json::{Map, Value};

use crate::document::Entry;
use crate::json;
use crate::lua_settings::LuaSettings;
use crate::module_spec::{strip_so, ModuleSpec};
use crate::ConfigError;

/// What a Lua module's section contributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SectionEffect {
    /// The section was a string: the main script name; nothing was merged.
    MainScript(String),
    /// The section (object or array) was merged into the Lua configuration.
    Merged,
}

/// Applies one Lua section to `config`: a string names the main script, an object is merged,
/// an array merges its objects and the JSON files it names (relative to the section's file).
/// The `%` keys of every merged piece are type-checked.
pub(crate) fn apply_section(
    config: &mut Map<String, Value>,
    section: &Entry,
) -> Result<SectionEffect, ConfigError> {
    let at = section.at();
    match &section.value {
        Value::String(name) if name.is_empty() => Err(at.error("the main script name is empty")),
        Value::String(name) => Ok(SectionEffect::MainScript(name.clone())),
        Value::Object(map) => {
            LuaSettings::parse(map, &at)?;
            merge(config, map);
            Ok(SectionEffect::Merged)
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let at = at.index(index);
                match item {
                    Value::Object(map) => {
                        LuaSettings::parse(map, &at)?;
                        merge(config, map);
                    }
                    Value::String(path) => {
                        let file = section.dir().join(path);
                        let file_at = crate::at::At::file(file.display().to_string());
                        match json::read_file(&file)? {
                            Value::Object(map) => {
                                LuaSettings::parse(&map, &file_at)?;
                                merge(config, &map);
                            }
                            other => return Err(file_at.expected("a JSON object", &other)),
                        }
                    }
                    other => return Err(at.expected("an object or the path of a JSON file", other)),
                }
            }
            Ok(SectionEffect::Merged)
        }
        other => Err(at.expected(
            "a main script name, an object or an array (Lua section)",
            other,
        )),
    }
}

/// The deep merge of §4.6, per key of `incoming`: an existing object absorbs an incoming object
/// recursively and ignores any other incoming value (the reference quirk); anything else is
/// replaced.
pub(crate) fn merge(config: &mut Map<String, Value>, incoming: &Map<String, Value>) {
    for (key, value) in incoming {
        match (config.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => merge(existing, incoming),
            (Some(Value::Object(_)), _) => {}
            _ => {
                config.insert(key.clone(), value.clone());
            }
        }
    }
}

/// The main script name of `module` in a merged Lua configuration: the string at the key equal
/// to the module's spec once `.so` is removed from both, else the string at its id.
pub(crate) fn main_script_in(config: &Map<String, Value>, module: &ModuleSpec) -> Option<String> {
    let normalized = module.normalized();
    let by_spec = config
        .iter()
        .find(|(key, _)| strip_so(key) == normalized)
        .map(|(_, value)| value);
    let by_id = || module.id.as_ref().and_then(|id| config.get(id));
    by_spec
        .and_then(Value::as_str)
        .or_else(|| by_id().and_then(Value::as_str))
        .map(str::to_owned)
}

/// The keys of `config` that stand for `module`'s spec once `.so` is removed; more than one is
/// ambiguous.
pub(crate) fn spec_keys<'c>(config: &'c Map<String, Value>, module: &ModuleSpec) -> Vec<&'c str> {
    let normalized = module.normalized();
    config
        .keys()
        .filter(|key| strip_so(key) == normalized)
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::at::At;
    use serde_json::json;
    use std::path::PathBuf;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn entry(key: &str, value: Value, file: PathBuf) -> Entry {
        Entry {
            key: key.to_owned(),
            value,
            file,
        }
    }

    fn spec(text: &str) -> ModuleSpec {
        match ModuleSpec::parse(text, &At::file("t")) {
            Ok(spec) => spec,
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn merge_is_deep_and_replaces_scalars() {
        let mut config = map(json!({"a": {"x": 1, "y": 2}, "b": 1, "c": [1]}));
        merge(
            &mut config,
            &map(json!({"a": {"y": 3, "z": 4}, "b": {"n": 1}, "c": "s", "d": null})),
        );
        assert_eq!(
            Value::Object(config),
            json!({"a": {"x": 1, "y": 3, "z": 4}, "b": {"n": 1}, "c": "s", "d": null})
        );
    }

    #[test]
    fn merge_quirk_an_object_ignores_a_non_object() {
        let mut config = map(json!({"%odbc": {"a": "x"}, "deep": {"o": {"k": 1}}}));
        merge(
            &mut config,
            &map(json!({"%odbc": "DRIVER=x", "deep": {"o": 5}})),
        );
        assert_eq!(
            Value::Object(config),
            json!({"%odbc": {"a": "x"}, "deep": {"o": {"k": 1}}})
        );
    }

    #[test]
    fn string_section_is_the_main_script() {
        let mut config = Map::new();
        let effect = apply_section(
            &mut config,
            &entry("lua", json!("start"), PathBuf::from("s")),
        );
        assert_eq!(
            effect.ok(),
            Some(SectionEffect::MainScript("start".to_owned()))
        );
        assert!(config.is_empty());
        assert!(apply_section(&mut config, &entry("lua", json!(""), PathBuf::from("s"))).is_err());
        assert!(apply_section(&mut config, &entry("lua", json!(5), PathBuf::from("s"))).is_err());
    }

    #[test]
    fn array_sections_merge_objects_and_files_in_order() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("conf"))?;
        std::fs::write(
            dir.path().join("conf/extra.json"),
            r#"{"%reflush": 5, "k": {"b": 2}}"#,
        )?;
        let section = entry(
            "lua",
            json!([{"k": {"a": 1}, "%reflush": 1}, "conf/extra.json", {"k": {"a": 9}}]),
            dir.path().join("stage.json"),
        );
        let mut config = Map::new();
        assert_eq!(apply_section(&mut config, &section)?, SectionEffect::Merged);
        assert_eq!(
            Value::Object(config),
            json!({"k": {"a": 9, "b": 2}, "%reflush": 5})
        );
        Ok(())
    }

    #[test]
    fn included_files_must_exist_parse_and_be_valid() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("stage.json");
        let mut config = Map::new();
        let missing = apply_section(
            &mut config,
            &entry("lua", json!(["nope.json"]), file.clone()),
        );
        let text = missing.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("nope.json: cannot read the file"), "{text}");
        std::fs::write(dir.path().join("bad.json"), "{\n\"a\": }")?;
        let bad = apply_section(
            &mut config,
            &entry("lua", json!(["bad.json"]), file.clone()),
        );
        assert!(
            matches!(bad, Err(ConfigError::Syntax { line: 2, .. })),
            "{bad:?}"
        );
        std::fs::write(dir.path().join("typed.json"), r#"{"%package": 3}"#)?;
        let typed = apply_section(
            &mut config,
            &entry("lua", json!(["typed.json"]), file.clone()),
        );
        let text = typed.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.ends_with(
                "typed.json: %package: expected a directory or an array of directories, found 3"
            ),
            "{text}"
        );
        std::fs::write(dir.path().join("list.json"), "[1]")?;
        assert!(apply_section(
            &mut config,
            &entry("lua", json!(["list.json"]), file.clone())
        )
        .is_err());
        let odd = apply_section(&mut config, &entry("lua", json!([{}, 3]), file));
        let text = odd.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("lua[1]: expected an object or the path"),
            "{text}"
        );
        Ok(())
    }

    #[test]
    fn interpreted_keys_of_a_section_are_checked_where_written() {
        let mut config = Map::new();
        let section = entry(
            "lua.so",
            json!({"%reflush": "x"}),
            PathBuf::from("stage.json"),
        );
        assert_eq!(
            apply_section(&mut config, &section)
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("stage.json: lua.so.%reflush: expected an integer, found \"x\"")
        );
    }

    #[test]
    fn main_script_by_spec_then_id() {
        let config = map(json!({"lua.so+game": "game_main", "lobby": "lobby.main+boot", "x": 1}));
        assert_eq!(
            main_script_in(&config, &spec("lua.so+game")).as_deref(),
            Some("game_main")
        );
        assert_eq!(
            main_script_in(&config, &spec("lua+game")).as_deref(),
            Some("game_main")
        );
        assert_eq!(
            main_script_in(&config, &spec("lua.so+lobby")).as_deref(),
            Some("lobby.main+boot")
        );
        assert_eq!(main_script_in(&config, &spec("lua+x")), None);
        assert_eq!(main_script_in(&config, &spec("lua+none")), None);
        assert_eq!(main_script_in(&config, &spec("lua")), None);
        let config = map(json!({"lua+game": {"not": "a string"}, "game": "by_id"}));
        assert_eq!(
            main_script_in(&config, &spec("lua+game")).as_deref(),
            Some("by_id")
        );
    }

    #[test]
    fn spec_keys_find_so_variants() {
        let config = map(json!({"lua.so+game": "a", "lua+game": "b", "game": "c"}));
        assert_eq!(
            spec_keys(&config, &spec("lua+game")),
            ["lua.so+game", "lua+game"]
        );
    }
}
