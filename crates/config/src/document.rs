//! The merged top level of the configuration files: per top-level key the value and the file
//! it came from (first file wins, no deep merge — `runtime.md` §2, decision 0), and the lookup of
//! module sections by spec (§3.4, with `.so` stripped — decision 33).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::at::At;
use crate::json;
use crate::module_spec::{strip_so, ModuleSpec};
use crate::ConfigError;

/// One top-level key of the merged configuration.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The key as written.
    pub(crate) key: String,
    /// Its value.
    pub(crate) value: Value,
    /// The file that defined it.
    pub(crate) file: PathBuf,
}

impl Entry {
    /// The position of this entry's value, for error messages.
    pub(crate) fn at(&self) -> At {
        At::file(self.file.display().to_string()).key(&self.key)
    }

    /// The directory of the file that defined this entry (relative includes start there).
    pub(crate) fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new(""))
    }
}

/// The merged top-level object.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    entries: Vec<Entry>,
    /// Module sections (keys without a leading `#`) by their `.so`-stripped key.
    sections: HashMap<String, usize>,
}

impl Document {
    /// Reads `files` in order and merges them per top-level key, the first file winning.
    pub(crate) fn load(files: &[PathBuf]) -> Result<Document, ConfigError> {
        let mut entries: Vec<Entry> = Vec::new();
        for file in files {
            let map = top_level(json::read_file(file)?, file)?;
            for (key, value) in map {
                if !entries.iter().any(|entry| entry.key == key) {
                    entries.push(Entry {
                        key,
                        value,
                        file: file.clone(),
                    });
                }
            }
        }
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        Document::new(entries, &names.join(", "))
    }

    /// One already-parsed configuration object that came from `origin`.
    pub(crate) fn from_value(value: Value, origin: &Path) -> Result<Document, ConfigError> {
        let entries = top_level(value, origin)?
            .into_iter()
            .map(|(key, value)| Entry {
                key,
                value,
                file: origin.to_owned(),
            })
            .collect();
        Document::new(entries, &origin.display().to_string())
    }

    /// Indexes the module sections; rejects an empty configuration and keys that collide once
    /// `.so` is removed.
    fn new(entries: Vec<Entry>, files: &str) -> Result<Document, ConfigError> {
        if entries.is_empty() {
            return Err(ConfigError::File {
                file: files.to_owned(),
                message: "the configuration is empty".to_owned(),
            });
        }
        let mut sections: HashMap<String, usize> = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            if entry.key.starts_with('#') {
                continue;
            }
            if let Some(&first) = sections.get(&strip_so(&entry.key)) {
                let first = &entries[first];
                return Err(entry.at().error(format!(
                    "collides with the key {:?} of {} once \".so\" is removed",
                    first.key,
                    first.file.display()
                )));
            }
            sections.insert(strip_so(&entry.key), index);
        }
        Ok(Document { entries, sections })
    }

    /// Every top-level key, in file order.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The top-level key `key` (exact).
    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|entry| entry.key == key)
    }

    /// The section of `module`: the key equal to the whole spec, else the key equal to the part
    /// before the first `+`, both compared without `.so`; a `null` value counts as absent.
    pub(crate) fn section(&self, module: &ModuleSpec) -> Option<&Entry> {
        module.section_keys().iter().find_map(|key| {
            let entry = &self.entries[*self.sections.get(key)?];
            (!entry.value.is_null()).then_some(entry)
        })
    }
}

/// The top level of a configuration file must be an object.
fn top_level(value: Value, file: &Path) -> Result<Map<String, Value>, ConfigError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(At::file(file.display().to_string()).expected("a JSON object", &other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document(value: Value) -> Result<Document, String> {
        Document::from_value(value, Path::new("stage.json")).map_err(|e| e.to_string())
    }

    fn spec(text: &str) -> ModuleSpec {
        match ModuleSpec::parse(text, &At::file("t")) {
            Ok(spec) => spec,
            Err(error) => panic!("{error}"),
        }
    }

    fn section_key(document: &Document, text: &str) -> Option<String> {
        document.section(&spec(text)).map(|entry| entry.key.clone())
    }

    #[test]
    fn sections_by_whole_spec_then_prefix_without_so() {
        let doc = document(json!({"lua.so": {}, "lua+game": "x", "index.so+rank": []}));
        let doc = match doc {
            Ok(doc) => doc,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(
            section_key(&doc, "lua.so+game").as_deref(),
            Some("lua+game")
        );
        assert_eq!(section_key(&doc, "lua+lobby").as_deref(), Some("lua.so"));
        assert_eq!(section_key(&doc, "lua.so").as_deref(), Some("lua.so"));
        assert_eq!(
            section_key(&doc, "index+rank").as_deref(),
            Some("index.so+rank")
        );
        assert_eq!(section_key(&doc, "index+other"), None);
        assert_eq!(section_key(&doc, "luajit+game"), None);
    }

    #[test]
    fn null_sections_count_as_absent() {
        let doc = document(json!({"lua+game": null, "lua": {"a": 1}}));
        let key = doc.ok().and_then(|doc| section_key(&doc, "lua+game"));
        assert_eq!(key.as_deref(), Some("lua"));
    }

    #[test]
    fn colliding_so_keys_are_errors() {
        let error = document(json!({"lua.so+game": {}, "lua+game": {}}))
            .err()
            .unwrap_or_default();
        assert_eq!(
            error,
            "stage.json: lua+game: collides with the key \"lua.so+game\" of stage.json once \".so\" is removed"
        );
        assert!(document(json!({"index.so": [], "index": []})).is_err());
        assert!(document(json!({"lua.so": {}, "luajit.so": {}})).is_ok());
    }

    #[test]
    fn empty_and_non_object_configurations_are_errors() {
        assert_eq!(
            document(json!({})).err().as_deref(),
            Some("stage.json: the configuration is empty")
        );
        assert_eq!(
            document(json!([1])).err().as_deref(),
            Some("stage.json: expected a JSON object, found an array")
        );
    }
}
