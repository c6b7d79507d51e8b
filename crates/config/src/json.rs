//! Reading JSON files strictly: syntax errors carry line and column, and an object that repeats
//! a key is an error instead of the last value silently winning.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::ConfigError;

/// Reads and parses the JSON file `path`.
pub(crate) fn read_file(path: &Path) -> Result<Value, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: file.clone(),
        source,
    })?;
    parse(&text, &file)
}

/// Parses `text`, naming `file` in errors.
pub(crate) fn parse(text: &str, file: &str) -> Result<Value, ConfigError> {
    serde_json::from_str::<Strict>(text)
        .map(|strict| strict.0)
        .map_err(|error| {
            let suffix = format!(" at line {} column {}", error.line(), error.column());
            let full = error.to_string();
            ConfigError::Syntax {
                file: file.to_owned(),
                line: error.line(),
                column: error.column(),
                message: full.strip_suffix(&suffix).unwrap_or(&full).to_owned(),
            }
        })
}

/// A JSON value whose objects have no repeated keys.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        let mut seen = HashSet::new();
        while let Some(key) = access.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let Strict(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_plain_json_keeping_key_order_and_integers() {
        let value = parse(r#"{"b": 1, "a": [2.5, "x", null, true]}"#, "f").ok();
        assert_eq!(value, Some(json!({"b": 1, "a": [2.5, "x", null, true]})));
        let keys: Vec<String> = value
            .and_then(|v| v.as_object().map(|m| m.keys().cloned().collect()))
            .unwrap_or_default();
        assert_eq!(keys, ["b", "a"]);
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let error = parse("{\n  \"a\": 1,\n  \"b\" 2\n}", "conf/stage.json").err();
        match error {
            Some(ConfigError::Syntax {
                file, line, column, ..
            }) => {
                assert_eq!(file, "conf/stage.json");
                assert_eq!((line, column), (3, 7));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn repeated_keys_are_syntax_errors() {
        let error = parse("{\"a\": 1,\n \"a\": 2}", "f").err();
        let text = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.starts_with("f:2:"), "{text}");
        assert!(text.contains("duplicate key \"a\""), "{text}");
        assert!(parse(r#"{"x": {"a": 1}, "y": {"a": 2}}"#, "f").is_ok());
    }

    #[test]
    fn missing_files_are_read_errors() {
        let error = read_file(Path::new("/nonexistent/stage.json")).err();
        let text = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.starts_with("/nonexistent/stage.json: cannot read"),
            "{text}"
        );
    }
}
