//! `#nats` (decision 25): how the node joins other machines. No `url` = the node runs alone.

use std::path::PathBuf;

use serde_json::Value;

use crate::at::At;
use crate::ConfigError;

/// The NATS connection of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// Server URL (`nats://host:4222`); `None` = the node runs alone.
    pub url: Option<String>,
    /// Cluster name: the subject prefix shared by the nodes of one cluster (default `stage`).
    pub cluster: String,
    /// Credentials file, relative to [`crate::NodeConfig::base_dir`] unless absolute.
    pub credentials: Option<PathBuf>,
    /// Whether functions (bytecode) from other machines are accepted (default true).
    pub allow_remote_functions: bool,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: None,
            cluster: "stage".to_owned(),
            credentials: None,
            allow_remote_functions: true,
        }
    }
}

impl NatsConfig {
    /// Parses the `#nats` object.
    pub(crate) fn parse(value: &Value, at: &At) -> Result<NatsConfig, ConfigError> {
        let map = at.closed_object(
            value,
            &["url", "cluster", "credentials", "allow_remote_functions"],
        )?;
        let mut nats = NatsConfig::default();
        if let Some(url) = map.get("url") {
            nats.url = optional_text(url, &at.key("url"))?;
        }
        if let Some(cluster) = map.get("cluster") {
            let at = at.key("cluster");
            let cluster = at.string(cluster)?;
            if cluster.is_empty() || cluster.contains(['.', '*', '>', ' ']) {
                return Err(at.error(format!(
                    "{cluster:?} cannot be a subject prefix (no '.', '*', '>' or spaces)"
                )));
            }
            nats.cluster = cluster.to_owned();
        }
        if let Some(credentials) = map.get("credentials") {
            nats.credentials =
                optional_text(credentials, &at.key("credentials"))?.map(PathBuf::from);
        }
        if let Some(allow) = map.get("allow_remote_functions") {
            nats.allow_remote_functions = at.key("allow_remote_functions").boolean(allow)?;
        }
        Ok(nats)
    }
}

/// `null` or a non-empty string.
fn optional_text(value: &Value, at: &At) -> Result<Option<String>, ConfigError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) if !text.is_empty() => Ok(Some(text.clone())),
        other => Err(at.expected("null or a non-empty string", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<NatsConfig, String> {
        NatsConfig::parse(&value, &At::file("f").key("#nats")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let nats = parse(json!({})).unwrap_or_default();
        assert_eq!(nats, NatsConfig::default());
        assert_eq!(nats.url, None);
        assert_eq!(nats.cluster, "stage");
        assert_eq!(nats.credentials, None);
        assert!(nats.allow_remote_functions);
        assert_eq!(
            parse(json!({"url": null})).ok(),
            Some(NatsConfig::default())
        );
    }

    #[test]
    fn every_key_can_be_set() {
        let nats = parse(json!({
            "url": "nats://10.0.0.1:4222", "cluster": "prod", "credentials": "nats.creds",
            "allow_remote_functions": false
        }))
        .unwrap_or_default();
        assert_eq!(nats.url.as_deref(), Some("nats://10.0.0.1:4222"));
        assert_eq!(nats.cluster, "prod");
        assert_eq!(nats.credentials, Some(PathBuf::from("nats.creds")));
        assert!(!nats.allow_remote_functions);
    }

    #[test]
    fn errors() {
        assert!(parse(json!({"url": 4222})).is_err());
        assert!(parse(json!({"url": ""})).is_err());
        assert!(parse(json!({"cluster": "a.b"})).is_err());
        assert!(parse(json!({"allow_remote_functions": "yes"})).is_err());
        let error = parse(json!({"servers": []})).err().unwrap_or_default();
        assert!(
            error.starts_with("f: #nats.servers: unknown key"),
            "{error}"
        );
        assert!(parse(json!("nats://x")).is_err());
    }
}
