//! The section of an `index` module (`index.md` §2, decision 25):
//! `"index+NAME": ["dir/", 128, 512]`, `"dir/"` or
//! `{ "dir": "index/", "max_id_bytes": 64, "max_value_bytes": 4096, "fsync_ms": 100 }`.

use std::path::PathBuf;

use serde_json::Value;
use stage_index::{Config, Durability};

use crate::at::At;
use crate::ConfigError;

/// Parses a section into the engine's settings (`None` or `null` = its defaults).
///
/// `dir` is kept as written — relative to [`crate::NodeConfig::base_dir`] unless absolute —
/// because the base directory may still change after parsing (`stage run PATH` sets and
/// canonicalizes it); the runtime joins the two when it starts the service.
pub(crate) fn parse(value: Option<&Value>, at: &At) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::String(dir)) => config.dir = PathBuf::from(dir),
        Some(Value::Array(items)) => config.dir = reference_array(items, at)?,
        Some(object @ Value::Object(_)) => {
            let map = at.closed_object(
                object,
                &["dir", "max_id_bytes", "max_value_bytes", "fsync_ms"],
            )?;
            if let Some(dir) = map.get("dir") {
                config.dir = PathBuf::from(at.key("dir").string(dir)?);
            }
            if let Some(bytes) = map.get("max_id_bytes") {
                config.limits.max_id_bytes = at.key("max_id_bytes").positive_size(bytes)?;
            }
            if let Some(bytes) = map.get("max_value_bytes") {
                config.limits.max_value_bytes = at.key("max_value_bytes").positive_size(bytes)?;
            }
            if let Some(ms) = map.get("fsync_ms") {
                config.durability = Durability::from_fsync_ms(at.key("fsync_ms").non_negative(ms)?);
            }
        }
        Some(other) => return Err(at.expected("a directory string, an array or an object", other)),
    }
    Ok(config)
}

/// The reference array: one optional directory string and up to two integers (entry budget and
/// growth chunk of the reference file format), which are accepted and ignored (decision 25).
fn reference_array(items: &[Value], at: &At) -> Result<PathBuf, ConfigError> {
    let mut dir = None;
    let mut numbers = 0;
    for (index, item) in items.iter().enumerate() {
        let at = at.index(index);
        match item {
            Value::String(text) if dir.is_none() => dir = Some(PathBuf::from(text)),
            Value::String(_) => return Err(at.error("the directory is given twice")),
            Value::Number(_) if numbers < 2 => {
                at.positive(item)?;
                numbers += 1;
            }
            Value::Number(_) => return Err(at.error("at most two numbers are accepted")),
            other => return Err(at.expected("a directory string or a number", other)),
        }
    }
    Ok(dir.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use stage_index::Limits;
    use std::path::Path;
    use std::time::Duration;

    fn parse(value: Value) -> Result<Config, String> {
        super::parse(Some(&value), &At::file("f").key("index+rank")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let config = super::parse(None, &At::file("f")).unwrap_or_default();
        assert_eq!(config.dir, Path::new(""));
        assert_eq!(
            (
                config.limits.max_id_bytes,
                config.limits.max_value_bytes,
                config.durability
            ),
            (64, 4096, Durability::Periodic(Duration::from_millis(100)))
        );
        assert_eq!(parse(json!(null)).ok(), Some(Config::default()));
    }

    #[test]
    fn reference_forms_set_only_the_directory() {
        let expected = Config {
            dir: PathBuf::from("index/"),
            ..Config::default()
        };
        assert_eq!(
            parse(json!(["index/", 128, 100000])).ok(),
            Some(expected.clone())
        );
        assert_eq!(parse(json!(["index/"])).ok(), Some(expected.clone()));
        assert_eq!(parse(json!("index/")).ok(), Some(expected));
        assert_eq!(parse(json!([128])).ok(), Some(Config::default()));
    }

    #[test]
    fn object_form() {
        let config = parse(
            json!({"dir": "data/", "max_id_bytes": 32, "max_value_bytes": 100, "fsync_ms": 0}),
        );
        assert_eq!(
            config.ok(),
            Some(Config {
                dir: PathBuf::from("data/"),
                limits: Limits {
                    max_id_bytes: 32,
                    max_value_bytes: 100
                },
                durability: Durability::Always,
                ..Config::default()
            })
        );
    }

    #[test]
    fn errors() {
        let error = parse(json!({"directory": "x"})).err().unwrap_or_default();
        assert!(
            error.starts_with("f: index+rank.directory: unknown key"),
            "{error}"
        );
        assert!(parse(json!({"max_id_bytes": 0})).is_err());
        assert!(parse(json!({"fsync_ms": -1})).is_err());
        assert!(parse(json!({"dir": 1})).is_err());
        assert!(parse(json!(["a/", "b/"])).is_err());
        assert!(parse(json!(["a/", 1, 2, 3])).is_err());
        assert!(parse(json!(["a/", true])).is_err());
        assert!(parse(json!(12)).is_err());
    }
}
