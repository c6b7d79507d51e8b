//! `stage bench`: runs a bench script on a real node (one stage thread, two workers) and prints
//! messages, synchronous calls, timers, worker jobs, `thread.new` round trips and process-store
//! snapshot reads per second. The script is part of the binary.

use crate::node::{self, NodeError};
use stage_config::NodeConfig;

const SCRIPT: &str = include_str!("bench.lua");

/// Runs the benchmark with `messages` messages per measurement.
pub fn run(messages: u64) -> Result<(), NodeError> {
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("bench.lua");
    std::fs::write(&script, SCRIPT)?;
    let mut config = NodeConfig::quick_start(&script)?;
    // The figures are for two workers.
    config.threads.workers = 2;
    node::run(
        config,
        "stage bench".into(),
        vec![messages.to_string()],
        None,
    )
}
