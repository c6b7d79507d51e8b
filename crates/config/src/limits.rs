//! `#limits` (decision 25): budgets, memory caps and queue bounds that protect a node.

use serde_json::Value;

use crate::at::{saturating_usize, At};
use crate::ConfigError;

/// Protection limits, as written in `#limits` and as the runtime applies them (through the
/// methods that give the sizes in the runtime's units); every field has the default of
/// decision 25.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget of one invocation on a stage thread (default 2000 ms).
    pub stage_budget_ms: u64,
    /// Wall-clock budget of one worker job (default 30000 ms).
    pub job_budget_ms: u64,
    /// Memory cap of each Lua state in MiB (default 256).
    pub lua_memory_mib: u64,
    /// Largest message `stage.signal` accepts, in bytes (default 1048576).
    pub message_bytes: u64,
    /// Capacity of each stage mailbox (default 100000).
    pub mailbox: u64,
    /// Most `addtask` timers one stage may have (default 2048).
    pub timers_per_stage: u64,
    /// A stage thread blocked longer than this is stalled (default 3100 ms).
    pub watchdog_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            stage_budget_ms: 2000,
            job_budget_ms: 30_000,
            lua_memory_mib: 256,
            message_bytes: 1_048_576,
            mailbox: 100_000,
            timers_per_stage: 2048,
            watchdog_ms: 3100,
        }
    }
}

impl Limits {
    /// The largest message a stage may send, in bytes.
    pub fn max_message_bytes(&self) -> usize {
        saturating_usize(self.message_bytes)
    }

    /// Messages a stage's (or service's) mailbox holds before senders get an error; at least 1.
    pub fn mailbox_capacity(&self) -> usize {
        saturating_usize(self.mailbox).max(1)
    }

    /// Pending `stage.addtask` timers one stage may have.
    pub fn max_timers_per_stage(&self) -> usize {
        saturating_usize(self.timers_per_stage)
    }

    /// The memory cap of each Lua state, in bytes.
    pub fn lua_memory_bytes(&self) -> usize {
        saturating_usize(self.lua_memory_mib.saturating_mul(1 << 20))
    }

    /// Parses the `#limits` object; every key optional, every value a positive integer.
    pub(crate) fn parse(value: &Value, at: &At) -> Result<Limits, ConfigError> {
        const KEYS: [&str; 7] = [
            "stage_budget_ms",
            "job_budget_ms",
            "lua_memory_mib",
            "message_bytes",
            "mailbox",
            "timers_per_stage",
            "watchdog_ms",
        ];
        let map = at.closed_object(value, &KEYS)?;
        let mut limits = Limits::default();
        let fields = [
            &mut limits.stage_budget_ms,
            &mut limits.job_budget_ms,
            &mut limits.lua_memory_mib,
            &mut limits.message_bytes,
            &mut limits.mailbox,
            &mut limits.timers_per_stage,
            &mut limits.watchdog_ms,
        ];
        for (key, field) in KEYS.into_iter().zip(fields) {
            if let Some(value) = map.get(key) {
                *field = at.key(key).positive(value)?;
            }
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Limits, String> {
        Limits::parse(&value, &At::file("stage.json").key("#limits")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_of_decision_25() {
        let limits = parse(json!({})).unwrap_or_default();
        assert_eq!(limits, Limits::default());
        assert_eq!(limits.stage_budget_ms, 2000);
        assert_eq!(limits.job_budget_ms, 30000);
        assert_eq!(limits.lua_memory_mib, 256);
        assert_eq!(limits.message_bytes, 1048576);
        assert_eq!(limits.mailbox, 100000);
        assert_eq!(limits.timers_per_stage, 2048);
        assert_eq!(limits.watchdog_ms, 3100);
    }

    #[test]
    fn every_key_can_be_set() {
        let limits = parse(json!({
            "stage_budget_ms": 1, "job_budget_ms": 2, "lua_memory_mib": 3, "message_bytes": 4,
            "mailbox": 5, "timers_per_stage": 6, "watchdog_ms": 7
        }))
        .unwrap_or_default();
        assert_eq!(
            limits,
            Limits {
                stage_budget_ms: 1,
                job_budget_ms: 2,
                lua_memory_mib: 3,
                message_bytes: 4,
                mailbox: 5,
                timers_per_stage: 6,
                watchdog_ms: 7
            }
        );
    }

    #[test]
    fn runtime_sizes() {
        let limits = Limits::default();
        assert_eq!(limits.max_message_bytes(), 1 << 20);
        assert_eq!(limits.mailbox_capacity(), 100_000);
        assert_eq!(limits.max_timers_per_stage(), 2048);
        assert_eq!(limits.lua_memory_bytes(), 256 << 20);
        let extreme = Limits {
            mailbox: 0,
            lua_memory_mib: u64::MAX,
            ..Limits::default()
        };
        assert_eq!(extreme.mailbox_capacity(), 1);
        assert_eq!(extreme.lua_memory_bytes(), usize::MAX);
    }

    #[test]
    fn errors_name_file_and_key() {
        assert_eq!(
            parse(json!({"mailbox": "x"})).err().as_deref(),
            Some("stage.json: #limits.mailbox: expected an integer greater than 0, found \"x\"")
        );
        let error = parse(json!({"mailboxes": 1})).err().unwrap_or_default();
        assert!(
            error.starts_with("stage.json: #limits.mailboxes: unknown key"),
            "{error}"
        );
        assert!(parse(json!({"watchdog_ms": 0})).is_err());
        assert!(parse(json!([1])).is_err());
    }
}
