//! Where a value sits in the configuration (file and key path), and the typed readers that
//! report a wrong value at that place.

use serde_json::{Map, Value};

use crate::ConfigError;

/// A position in the configuration: the file a value comes from and its key path.
#[derive(Clone, Debug)]
pub(crate) struct At {
    file: String,
    path: String,
}

impl At {
    /// The top level of `file`.
    pub(crate) fn file(file: impl Into<String>) -> At {
        At {
            file: file.into(),
            path: String::new(),
        }
    }

    /// The value at `key` of the object here.
    pub(crate) fn key(&self, key: &str) -> At {
        let path = if self.path.is_empty() {
            key.to_owned()
        } else if key.is_empty() || key.contains(['.', '[', ']', ' ']) {
            format!("{}[{}]", self.path, quote(key))
        } else {
            format!("{}.{}", self.path, key)
        };
        At {
            file: self.file.clone(),
            path,
        }
    }

    /// The element `index` of the array here.
    pub(crate) fn index(&self, index: usize) -> At {
        At {
            file: self.file.clone(),
            path: format!("{}[{index}]", self.path),
        }
    }

    /// An error about the value here.
    pub(crate) fn error(&self, message: impl Into<String>) -> ConfigError {
        if self.path.is_empty() {
            ConfigError::File {
                file: self.file.clone(),
                message: message.into(),
            }
        } else {
            ConfigError::Invalid {
                file: self.file.clone(),
                key: self.path.clone(),
                message: message.into(),
            }
        }
    }

    /// "expected WHAT, found VALUE".
    pub(crate) fn expected(&self, what: &str, found: &Value) -> ConfigError {
        self.error(format!("expected {what}, found {}", describe(found)))
    }

    /// An integer (a JSON number without fraction or exponent that fits in i64).
    pub(crate) fn integer(&self, value: &Value) -> Result<i64, ConfigError> {
        value
            .as_i64()
            .ok_or_else(|| self.expected("an integer", value))
    }

    /// An integer greater than zero.
    pub(crate) fn positive(&self, value: &Value) -> Result<u64, ConfigError> {
        match value.as_i64() {
            Some(n) if n > 0 => Ok(n.unsigned_abs()),
            _ => Err(self.expected("an integer greater than 0", value)),
        }
    }

    /// An integer greater than zero, as a size or count (beyond `usize::MAX` it saturates).
    pub(crate) fn positive_size(&self, value: &Value) -> Result<usize, ConfigError> {
        self.positive(value).map(saturating_usize)
    }

    /// An integer that is zero or more.
    pub(crate) fn non_negative(&self, value: &Value) -> Result<u64, ConfigError> {
        match value.as_i64() {
            Some(n) if n >= 0 => Ok(n.unsigned_abs()),
            _ => Err(self.expected("an integer of 0 or more", value)),
        }
    }

    /// A string.
    pub(crate) fn string<'v>(&self, value: &'v Value) -> Result<&'v str, ConfigError> {
        value
            .as_str()
            .ok_or_else(|| self.expected("a string", value))
    }

    /// A boolean.
    pub(crate) fn boolean(&self, value: &Value) -> Result<bool, ConfigError> {
        value
            .as_bool()
            .ok_or_else(|| self.expected("true or false", value))
    }

    /// An object whose keys are all in `known`; an unknown key is reported at its own path.
    pub(crate) fn closed_object<'v>(
        &self,
        value: &'v Value,
        known: &[&str],
    ) -> Result<&'v Map<String, Value>, ConfigError> {
        let map = value
            .as_object()
            .ok_or_else(|| self.expected("an object", value))?;
        match map.keys().find(|key| !known.contains(&key.as_str())) {
            Some(key) => Err(self
                .key(key)
                .error(format!("unknown key (known keys: {})", known.join(", ")))),
            None => Ok(map),
        }
    }
}

/// `n` as a `usize`, `usize::MAX` when it does not fit.
pub(crate) fn saturating_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// A short description of a value for error messages: scalars as JSON, containers by kind.
pub(crate) fn describe(value: &Value) -> String {
    const LONGEST: usize = 60;
    match value {
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
        Value::String(text) if text.chars().count() > LONGEST => {
            let cut: String = text.chars().take(LONGEST).collect();
            format!("{}…", quote(&cut))
        }
        Value::String(text) => quote(text),
        other => other.to_string(),
    }
}

/// A string in JSON quotes.
fn quote(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_paths_read_like_the_config() {
        let at = At::file("stage.json").key("#limits").key("mailbox");
        let message = at.expected("an integer", &json!("x")).to_string();
        assert_eq!(
            message,
            r#"stage.json: #limits.mailbox: expected an integer, found "x""#
        );
        let at = At::file("f").key("lua.so").key("%package").index(2);
        assert_eq!(at.error("bad").to_string(), "f: lua.so.%package[2]: bad");
        let at = At::file("f").key("a").key("x.y");
        assert_eq!(at.error("bad").to_string(), r#"f: a["x.y"]: bad"#);
    }

    #[test]
    fn root_errors_name_only_the_file() {
        let error = At::file("stage.json").error("empty");
        assert!(matches!(error, ConfigError::File { .. }));
        assert_eq!(error.to_string(), "stage.json: empty");
    }

    #[test]
    fn readers_check_types_and_ranges() {
        let at = At::file("f").key("k");
        assert_eq!(at.integer(&json!(-3)).ok(), Some(-3));
        assert!(at.integer(&json!(1.5)).is_err());
        assert_eq!(at.positive(&json!(7)).ok(), Some(7));
        assert!(at.positive(&json!(0)).is_err());
        assert_eq!(at.non_negative(&json!(0)).ok(), Some(0));
        assert!(at.non_negative(&json!(-1)).is_err());
        assert_eq!(at.string(&json!("s")).ok(), Some("s"));
        assert!(at.string(&json!(1)).is_err());
        assert_eq!(at.boolean(&json!(false)).ok(), Some(false));
        assert!(at.boolean(&json!(0)).is_err());
    }

    #[test]
    fn closed_objects_reject_unknown_keys() {
        let at = At::file("f").key("#x");
        assert!(at.closed_object(&json!({"a": 1}), &["a", "b"]).is_ok());
        let message = at
            .closed_object(&json!({"a": 1, "c": 2}), &["a", "b"])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            message.as_deref(),
            Some("f: #x.c: unknown key (known keys: a, b)")
        );
        assert!(at.closed_object(&json!([1]), &["a"]).is_err());
    }

    #[test]
    fn long_strings_are_cut_in_messages() {
        let long = "x".repeat(100);
        let text = describe(&json!(long));
        assert!(text.len() < 80, "{text}");
        assert_eq!(describe(&json!([1])), "an array");
        assert_eq!(describe(&json!(null)), "null");
    }
}
