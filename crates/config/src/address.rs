//! `host:port` addresses as written in the configuration. Host names are kept as text: they are
//! resolved (or interfaces bound) by the components that use them, not here.

use std::fmt;

use serde_json::Value;

use crate::at::At;
use crate::ConfigError;

/// A `host:port` address. `host` is kept as written (a name, an IPv4 address, or an IPv6
/// literal in brackets such as `[::]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// The host part as written (`0.0.0.0`, `[::1]`, `example.org`).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl HostPort {
    /// Parses `"host:port"`.
    pub(crate) fn parse(text: &str, at: &At) -> Result<HostPort, ConfigError> {
        let bad = || at.error(format!("{text:?} is not a \"host:port\" address"));
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let bracketed = host.starts_with('[') && host.ends_with(']') && host.len() > 2;
        let plain = !host.is_empty() && !host.contains([':', '[', ']', '/', ' ']);
        if !(bracketed || plain) {
            return Err(bad());
        }
        Ok(HostPort {
            host: host.to_owned(),
            port,
        })
    }

    /// Parses `"host:port"` or an integer port meaning `0.0.0.0:port` (the `#services` form).
    pub(crate) fn parse_listen(value: &Value, at: &At) -> Result<HostPort, ConfigError> {
        match value {
            Value::String(text) => HostPort::parse(text, at),
            Value::Number(_) => {
                let port = at.integer(value)?;
                let port = u16::try_from(port)
                    .map_err(|_| at.error(format!("{port} is not a port number")))?;
                Ok(HostPort {
                    host: "0.0.0.0".to_owned(),
                    port,
                })
            }
            other => Err(at.expected("a \"host:port\" string or a port number", other)),
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at() -> At {
        At::file("f").key("k")
    }

    #[test]
    fn parses_host_port_forms() {
        for (text, host, port) in [
            ("0.0.0.0:8801", "0.0.0.0", 8801),
            ("[::]:80", "[::]", 80),
            ("[::1]:9", "[::1]", 9),
            ("example.org:443", "example.org", 443),
        ] {
            let parsed = HostPort::parse(text, &at()).ok();
            assert_eq!(
                parsed,
                Some(HostPort {
                    host: host.to_owned(),
                    port
                }),
                "{text}"
            );
            assert_eq!(parsed.map(|p| p.to_string()).as_deref(), Some(text));
        }
    }

    #[test]
    fn rejects_bad_addresses() {
        for text in [
            "8801",
            ":80",
            "host:",
            "host:99999",
            "::1:80",
            "a b:1",
            "[]:1",
        ] {
            assert!(HostPort::parse(text, &at()).is_err(), "{text}");
        }
    }

    #[test]
    fn a_port_number_listens_on_all_interfaces() {
        let parsed = HostPort::parse_listen(&json!(8801), &at()).ok();
        assert_eq!(
            parsed.map(|p| p.to_string()).as_deref(),
            Some("0.0.0.0:8801")
        );
        assert!(HostPort::parse_listen(&json!(70000), &at()).is_err());
        assert!(HostPort::parse_listen(&json!(-1), &at()).is_err());
        assert!(HostPort::parse_listen(&json!(true), &at()).is_err());
    }
}
