//! The section of a `=route` module. The reference has no options; `route.md` D1 recommends a
//! configurable probe timeout: `"=route+NAME": { "probe_timeout_ms": 300 }`.

use serde_json::Value;

use crate::at::At;
use crate::ConfigError;

/// Settings of one route service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteConfig {
    /// How long a unicast delivery waits for a subscriber to answer its probe (default 300 ms).
    pub probe_timeout_ms: u64,
}

impl Default for RouteConfig {
    fn default() -> Self {
        RouteConfig {
            probe_timeout_ms: 300,
        }
    }
}

impl RouteConfig {
    /// Parses a section (`None` or `null` = defaults).
    pub(crate) fn parse(value: Option<&Value>, at: &At) -> Result<RouteConfig, ConfigError> {
        let mut config = RouteConfig::default();
        match value {
            None | Some(Value::Null) => {}
            Some(value) => {
                let map = at.closed_object(value, &["probe_timeout_ms"])?;
                if let Some(ms) = map.get("probe_timeout_ms") {
                    config.probe_timeout_ms = at.key("probe_timeout_ms").positive(ms)?;
                }
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Option<Value>) -> Result<RouteConfig, String> {
        RouteConfig::parse(value.as_ref(), &At::file("f").key("=route")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_probe_timeout() {
        assert_eq!(parse(None).ok().map(|c| c.probe_timeout_ms), Some(300));
        assert_eq!(
            parse(Some(json!(null))).ok().map(|c| c.probe_timeout_ms),
            Some(300)
        );
        assert_eq!(
            parse(Some(json!({}))).ok().map(|c| c.probe_timeout_ms),
            Some(300)
        );
        let config = parse(Some(json!({"probe_timeout_ms": 50}))).ok();
        assert_eq!(config.map(|c| c.probe_timeout_ms), Some(50));
    }

    #[test]
    fn errors() {
        let error = parse(Some(json!({"timeout": 1}))).err().unwrap_or_default();
        assert!(
            error.starts_with("f: =route.timeout: unknown key"),
            "{error}"
        );
        assert!(parse(Some(json!({"probe_timeout_ms": 0}))).is_err());
        assert!(parse(Some(json!([300]))).is_err());
        assert!(parse(Some(json!("x"))).is_err());
    }
}
