//! The wall clock of message deadlines (`stage.signal({target, ms}, ...)`): milliseconds since
//! the Unix epoch, the same on every thread, process and machine of a cluster.

/// Wall-clock time in milliseconds since the epoch (0 for a clock set before 1970).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
