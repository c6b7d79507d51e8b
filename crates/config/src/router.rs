//! `#router`: `[W]` or `[W, H]` — the routing sync window and the heartbeat interval
//! (`runtime.md` §4.2).

use serde_json::Value;

use crate::at::At;
use crate::ConfigError;

/// Registration timing of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterConfig {
    /// W: a registration stays valid for `floor(1.9 × W)` ms after its last heartbeat.
    pub window_ms: u64,
    /// H: interval of the registration heartbeats of every stage process, also the overload
    /// detection window.
    pub heartbeat_ms: u64,
}

impl Default for RouterConfig {
    /// No `#router`: W = 500 ms, H = 300 ms.
    fn default() -> Self {
        RouterConfig {
            window_ms: 500,
            heartbeat_ms: 300,
        }
    }
}

impl RouterConfig {
    /// How long a registration stays valid after its last heartbeat: `floor(1.9 × W)` ms.
    pub fn expiry_ms(&self) -> u64 {
        self.window_ms.saturating_mul(19) / 10
    }

    /// Parses `[W]` (H = W) or `[W, H]`; both positive integers.
    pub(crate) fn parse(value: &Value, at: &At) -> Result<RouterConfig, ConfigError> {
        let items = value
            .as_array()
            .ok_or_else(|| at.expected("[W] or [W, H] (milliseconds)", value))?;
        match items.as_slice() {
            [window] => {
                let window_ms = at.index(0).positive(window)?;
                Ok(RouterConfig {
                    window_ms,
                    heartbeat_ms: window_ms,
                })
            }
            [window, heartbeat] => Ok(RouterConfig {
                window_ms: at.index(0).positive(window)?,
                heartbeat_ms: at.index(1).positive(heartbeat)?,
            }),
            _ => Err(at.error(format!(
                "expected [W] or [W, H] (milliseconds), found {} elements",
                items.len()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<RouterConfig, String> {
        RouterConfig::parse(&value, &At::file("f").key("#router")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_without_router() {
        let router = RouterConfig::default();
        assert_eq!((router.window_ms, router.heartbeat_ms), (500, 300));
        assert_eq!(router.expiry_ms(), 950);
    }

    #[test]
    fn one_element_sets_both() {
        let router = parse(json!([1500])).ok();
        assert_eq!(
            router,
            Some(RouterConfig {
                window_ms: 1500,
                heartbeat_ms: 1500
            })
        );
        assert_eq!(router.map(|r| r.expiry_ms()), Some(2850));
    }

    #[test]
    fn two_elements_set_window_and_heartbeat() {
        let router = parse(json!([1500, 900])).ok();
        assert_eq!(
            router,
            Some(RouterConfig {
                window_ms: 1500,
                heartbeat_ms: 900
            })
        );
        assert_eq!(router.map(|r| r.expiry_ms()), Some(2850));
    }

    #[test]
    fn bad_forms_are_errors() {
        assert!(parse(json!(1500)).is_err());
        assert!(parse(json!([])).is_err());
        assert!(parse(json!([1, 2, 3])).is_err());
        assert_eq!(
            parse(json!([1500, "x"])).err().as_deref(),
            Some("f: #router[1]: expected an integer greater than 0, found \"x\"")
        );
        assert!(parse(json!([0])).is_err());
    }
}
