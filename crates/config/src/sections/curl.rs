//! The section of a `curl` module (`curl.md` §2, decision 25):
//! `{ "user-agent": "...", "timeout": 10000, "verbose": 0, "max_reply_bytes": 16777216,
//! "max_in_flight": 256 }` (keys case-insensitive), or a string that is only the user agent.

use serde_json::{Map, Value};

use crate::at::At;
use crate::ConfigError;

/// The keys of a curl section, lower case.
const KEYS: [&str; 5] = [
    "user-agent",
    "timeout",
    "verbose",
    "max_reply_bytes",
    "max_in_flight",
];

/// Settings of one curl service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurlConfig {
    /// `User-Agent` header of every request; `None` (or an empty string) = no header.
    pub user_agent: Option<String>,
    /// Default total time limit of a request in ms (default 10000).
    pub timeout_ms: u64,
    /// Log a trace of every request and response (default false).
    pub verbose: bool,
    /// Largest reply body delivered; a larger one answers `result = 63` (default 16 MiB).
    pub max_reply_bytes: u64,
    /// Most requests in flight at once; more wait in a queue (default 256).
    pub max_in_flight: u64,
}

impl Default for CurlConfig {
    fn default() -> Self {
        CurlConfig {
            user_agent: None,
            timeout_ms: 10_000,
            verbose: false,
            max_reply_bytes: 16_777_216,
            max_in_flight: 256,
        }
    }
}

impl CurlConfig {
    /// Parses a section (`None` or `null` = defaults).
    pub(crate) fn parse(value: Option<&Value>, at: &At) -> Result<CurlConfig, ConfigError> {
        let mut config = CurlConfig::default();
        match value {
            None | Some(Value::Null) => {}
            Some(Value::String(agent)) => config.user_agent = agent_of(agent),
            Some(Value::Object(map)) => {
                for (key, value) in map {
                    config.set(key, value, map, &at.key(key))?;
                }
            }
            Some(other) => return Err(at.expected("an object or a user-agent string", other)),
        }
        Ok(config)
    }

    /// One key of the object form.
    fn set(
        &mut self,
        key: &str,
        value: &Value,
        map: &Map<String, Value>,
        at: &At,
    ) -> Result<(), ConfigError> {
        let lower = key.to_ascii_lowercase();
        let twice = map
            .keys()
            .any(|other| other != key && other.eq_ignore_ascii_case(key));
        if twice {
            return Err(at.error("the key is given twice (keys are case-insensitive)"));
        }
        match lower.as_str() {
            "user-agent" => self.user_agent = agent_of(at.string(value)?),
            "timeout" => self.timeout_ms = at.positive(value)?,
            "verbose" => {
                self.verbose = match value {
                    Value::Bool(flag) => *flag,
                    other => at.integer(other)? != 0,
                }
            }
            "max_reply_bytes" => self.max_reply_bytes = at.positive(value)?,
            "max_in_flight" => self.max_in_flight = at.positive(value)?,
            _ => {
                return Err(at.error(format!(
                    "unknown key (known keys, case-insensitive: {})",
                    KEYS.join(", ")
                )))
            }
        }
        Ok(())
    }
}

/// An empty agent means "send no header" (`curl.md` D7).
fn agent_of(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<CurlConfig, String> {
        CurlConfig::parse(Some(&value), &At::file("f").key("curl.so+curl"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let config = CurlConfig::parse(None, &At::file("f")).unwrap_or_default();
        assert_eq!(config.user_agent, None);
        assert_eq!(config.timeout_ms, 10_000);
        assert!(!config.verbose);
        assert_eq!(config.max_reply_bytes, 16_777_216);
        assert_eq!(config.max_in_flight, 256);
    }

    #[test]
    fn reference_example_and_decision_25_keys() {
        let config = parse(json!({
            "user-agent": "STAGE:Platform WebAgent/1.0", "verbose": 1, "timeout": 5000,
            "max_reply_bytes": 1000, "max_in_flight": 4
        }))
        .unwrap_or_default();
        assert_eq!(
            config.user_agent.as_deref(),
            Some("STAGE:Platform WebAgent/1.0")
        );
        assert!(config.verbose);
        assert_eq!(config.timeout_ms, 5000);
        assert_eq!(config.max_reply_bytes, 1000);
        assert_eq!(config.max_in_flight, 4);
    }

    #[test]
    fn keys_are_case_insensitive() {
        let config =
            parse(json!({"User-Agent": "a", "TIMEOUT": 7, "Verbose": 0})).unwrap_or_default();
        assert_eq!(config.user_agent.as_deref(), Some("a"));
        assert_eq!(config.timeout_ms, 7);
        assert!(!config.verbose);
        assert!(parse(json!({"timeout": 1, "Timeout": 2})).is_err());
    }

    #[test]
    fn a_string_is_the_user_agent() {
        let config = parse(json!("bot/1")).unwrap_or_default();
        assert_eq!(config.user_agent.as_deref(), Some("bot/1"));
        assert_eq!(config.timeout_ms, 10_000);
        assert_eq!(parse(json!("")).ok().and_then(|c| c.user_agent), None);
    }

    #[test]
    fn errors() {
        let error = parse(json!({"agent": "x"})).err().unwrap_or_default();
        assert!(
            error.starts_with("f: curl.so+curl.agent: unknown key"),
            "{error}"
        );
        assert!(parse(json!({"timeout": "10"})).is_err());
        assert!(parse(json!({"timeout": 0})).is_err());
        assert!(parse(json!({"verbose": "yes"})).is_err());
        assert!(parse(json!({"max_in_flight": -1})).is_err());
        assert!(parse(json!([1])).is_err());
    }
}
