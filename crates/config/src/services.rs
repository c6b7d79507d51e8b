//! `#services`: listening sockets bound before the processes start and shared by all of them
//! (`runtime.md` §4.1).

use serde_json::Value;

use crate::address::HostPort;
use crate::at::At;
use crate::ConfigError;

/// The shared listening addresses of `#services`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Services {
    /// TCP addresses, in the order written.
    pub tcp: Vec<HostPort>,
    /// UDP addresses, in the order written.
    pub udp: Vec<HostPort>,
}

impl Services {
    /// Parses the `#services` value: `{ "tcp": ADDR | [ADDR…], "udp": ADDR | [ADDR…] }`.
    pub(crate) fn parse(value: &Value, at: &At) -> Result<Services, ConfigError> {
        let map = at.closed_object(value, &["tcp", "udp"])?;
        let list = |key: &str| match map.get(key) {
            None => Ok(Vec::new()),
            Some(value) => addresses(value, &at.key(key)),
        };
        Ok(Services {
            tcp: list("tcp")?,
            udp: list("udp")?,
        })
    }
}

/// One address or an array of addresses.
fn addresses(value: &Value, at: &At) -> Result<Vec<HostPort>, ConfigError> {
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| HostPort::parse_listen(item, &at.index(index)))
            .collect(),
        single => Ok(vec![HostPort::parse_listen(single, at)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Services, String> {
        Services::parse(&value, &At::file("stage.json").key("#services")).map_err(|e| e.to_string())
    }

    fn texts(list: &[HostPort]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn single_and_list_forms() {
        let services = parse(json!({"tcp": ["0.0.0.0:8801", 8802], "udp": 9000})).ok();
        let services = services.unwrap_or_default();
        assert_eq!(texts(&services.tcp), ["0.0.0.0:8801", "0.0.0.0:8802"]);
        assert_eq!(texts(&services.udp), ["0.0.0.0:9000"]);
        let only_tcp = parse(json!({"tcp": "[::]:80"})).unwrap_or_default();
        assert_eq!(texts(&only_tcp.tcp), ["[::]:80"]);
        assert!(only_tcp.udp.is_empty());
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(
            parse(json!({"sctp": 1})).err().as_deref(),
            Some("stage.json: #services.sctp: unknown key (known keys: tcp, udp)")
        );
        let error = parse(json!({"tcp": ["0.0.0.0:1", "nope"]}))
            .err()
            .unwrap_or_default();
        assert!(
            error.starts_with("stage.json: #services.tcp[1]: "),
            "{error}"
        );
        assert!(parse(json!(["tcp"])).is_err());
        assert!(parse(json!({"tcp": null})).is_err());
    }
}
