//! [`RouteConfig`]: the settings of one route service.

/// The settings of one route service (`route.md` §2, §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// The service name (`route` for `=route+route`): the prefix of delivered request keys.
    pub service: String,
    /// How long a publication waits for a probe answer before it fails, in milliseconds.
    pub probe_timeout_ms: u64,
    /// How long a registration lives without any `route:@` message, in milliseconds.
    pub keep_alive_ms: u64,
}

impl Default for RouteConfig {
    /// Service `route`, probes answered within 300 ms, keep-alive every 30 s.
    fn default() -> Self {
        RouteConfig {
            service: "route".to_owned(),
            probe_timeout_ms: 300,
            keep_alive_ms: 30_000,
        }
    }
}
