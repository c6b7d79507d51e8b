//! `#cluster`: the router's cluster port, the advertised reply address, peer routers and backup
//! routers (`runtime.md` §4.3).

use std::net::Ipv4Addr;

use serde_json::Value;

use crate::address::HostPort;
use crate::at::At;
use crate::ConfigError;

/// The address a node advertises as its network reply address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advertised {
    /// `":10.0.0.5"`: this IPv4 address, literally.
    Ip(Ipv4Addr),
    /// `":eth0"`: the first non-loopback, up IPv4 interface whose name starts with this text.
    InterfacePrefix(String),
}

/// The parsed `#cluster` value; the default (no `#cluster`) is a node on its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The router's UDP cluster port (an integer entry, or the whole value when it is one).
    pub port: Option<u16>,
    /// The advertised reply address (`":…"` entry); `None` = detected from the interfaces.
    pub advertised: Option<Advertised>,
    /// Peer routers this node's instances announce themselves to (`"host:port"` entries).
    pub peers: Vec<HostPort>,
    /// Backup routers that receive what this router cannot deliver (`"=host:port"` entries).
    pub backups: Vec<HostPort>,
    /// Whether stage processes open a UDP reply socket and advertise a network reply address:
    /// true when `#cluster` is an array, false when it is a plain port number or absent.
    pub reply_socket: bool,
}

impl ClusterConfig {
    /// Parses a port number or an array of entries.
    pub(crate) fn parse(value: &Value, at: &At) -> Result<ClusterConfig, ConfigError> {
        match value {
            Value::Number(_) => Ok(ClusterConfig {
                port: Some(port(value, at)?),
                ..ClusterConfig::default()
            }),
            Value::Array(entries) => {
                let mut cluster = ClusterConfig {
                    reply_socket: true,
                    ..ClusterConfig::default()
                };
                for (index, entry) in entries.iter().enumerate() {
                    cluster.add_entry(entry, &at.index(index))?;
                }
                Ok(cluster)
            }
            other => Err(at.expected("a port number or an array", other)),
        }
    }

    /// One element of the array form.
    fn add_entry(&mut self, entry: &Value, at: &At) -> Result<(), ConfigError> {
        match entry {
            Value::Number(_) => {
                let port = port(entry, at)?;
                if self.port.replace(port).is_some() {
                    return Err(at.error("the cluster port is given twice"));
                }
            }
            Value::String(text) => {
                if let Some(interface) = text.strip_prefix(':') {
                    let advertised = advertised(interface, at)?;
                    if self.advertised.replace(advertised).is_some() {
                        return Err(at.error("the advertised address is given twice"));
                    }
                } else if let Some(backup) = text.strip_prefix('=') {
                    self.backups.push(HostPort::parse(backup, at)?);
                } else if text.contains(':') {
                    self.peers.push(HostPort::parse(text, at)?);
                } else {
                    return Err(at.error(format!(
                        "{text:?} is none of \":interface\", \":ip\", \"host:port\", \"=host:port\""
                    )));
                }
            }
            other => Err(at.expected("a port number or a string", other))?,
        }
        Ok(())
    }
}

/// A UDP port 1..=65535.
fn port(value: &Value, at: &At) -> Result<u16, ConfigError> {
    match value.as_i64().map(u16::try_from) {
        Some(Ok(port)) if port > 0 => Ok(port),
        _ => Err(at.expected("a port number (1-65535)", value)),
    }
}

/// The text after `:` of an advertised-address entry.
fn advertised(text: &str, at: &At) -> Result<Advertised, ConfigError> {
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        text.parse()
            .map(Advertised::Ip)
            .map_err(|_| at.error(format!("{text:?} is not an IPv4 address")))
    } else if text.is_empty() || text.contains(char::is_whitespace) {
        Err(at.error(format!("{text:?} is not an interface name")))
    } else {
        Ok(Advertised::InterfacePrefix(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<ClusterConfig, String> {
        ClusterConfig::parse(&value, &At::file("f").key("#cluster")).map_err(|e| e.to_string())
    }

    fn host(text: &str) -> HostPort {
        let (host, port) = text.rsplit_once(':').unwrap_or_default();
        HostPort {
            host: host.to_owned(),
            port: port.parse().unwrap_or_default(),
        }
    }

    #[test]
    fn absent_means_alone() {
        let cluster = ClusterConfig::default();
        assert_eq!(cluster.port, None);
        assert!(!cluster.reply_socket);
        assert!(cluster.peers.is_empty() && cluster.backups.is_empty());
    }

    #[test]
    fn integer_form_is_only_the_port() {
        let cluster = parse(json!(9801)).unwrap_or_default();
        assert_eq!(cluster.port, Some(9801));
        assert!(!cluster.reply_socket);
        assert_eq!(cluster.advertised, None);
    }

    #[test]
    fn array_form_sorts_entries() {
        let cluster = parse(json!([
            9801,
            ":eth0",
            "10.0.0.7:9801",
            "=10.0.0.9:9801",
            "b:1"
        ]))
        .unwrap_or_default();
        assert_eq!(cluster.port, Some(9801));
        assert!(cluster.reply_socket);
        assert_eq!(
            cluster.advertised,
            Some(Advertised::InterfacePrefix("eth0".to_owned()))
        );
        assert_eq!(cluster.peers, [host("10.0.0.7:9801"), host("b:1")]);
        assert_eq!(cluster.backups, [host("10.0.0.9:9801")]);
        let cluster = parse(json!([":10.0.0.5"])).unwrap_or_default();
        assert_eq!(
            cluster.advertised,
            Some(Advertised::Ip(Ipv4Addr::new(10, 0, 0, 5)))
        );
        assert_eq!(cluster.port, None);
        assert!(cluster.reply_socket);
    }

    #[test]
    fn bad_entries_are_errors() {
        let error = parse(json!([9801, "eth0"])).err().unwrap_or_default();
        assert!(
            error.starts_with("f: #cluster[1]: \"eth0\" is none of"),
            "{error}"
        );
        assert!(parse(json!([":10.0.0"])).is_err());
        assert!(parse(json!([":"])).is_err());
        assert!(parse(json!(["=nohost"])).is_err());
        assert!(parse(json!(["h:notaport"])).is_err());
        assert!(parse(json!([1, 2])).is_err());
        assert!(parse(json!([":eth0", ":eth1"])).is_err());
        assert!(parse(json!([true])).is_err());
        assert!(parse(json!(0)).is_err());
        assert!(parse(json!(70000)).is_err());
        assert!(parse(json!("9801")).is_err());
    }
}
