//! The section of a `=route` module. The reference has no options; `route.md` D1 recommends a
//! configurable probe timeout: `"=route+NAME": { "probe_timeout_ms": 300 }`.

use serde_json::Value;
use stage_route::RouteConfig;

use crate::at::At;
use crate::ConfigError;

/// Parses the section of the route service `service` (its stage id, the prefix of the request
/// keys it delivers) into the engine's settings (`None` or `null` = its defaults); the
/// keep-alive is not configurable and keeps its default.
pub(crate) fn parse(
    value: Option<&Value>,
    at: &At,
    service: &str,
) -> Result<RouteConfig, ConfigError> {
    let mut config = RouteConfig {
        service: service.to_owned(),
        ..RouteConfig::default()
    };
    if let Some(value) = value.filter(|value| !value.is_null()) {
        let map = at.closed_object(value, &["probe_timeout_ms"])?;
        if let Some(ms) = map.get("probe_timeout_ms") {
            config.probe_timeout_ms = at.key("probe_timeout_ms").positive(ms)?;
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Option<Value>) -> Result<RouteConfig, String> {
        super::parse(value.as_ref(), &At::file("f").key("=route"), "route")
            .map_err(|e| e.to_string())
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
    fn the_service_is_named_by_its_id() {
        let config = super::parse(None, &At::file("f"), "rooms").ok();
        assert_eq!(config.map(|c| c.service), Some("rooms".to_owned()));
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
