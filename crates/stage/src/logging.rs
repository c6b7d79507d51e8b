//! Logging to standard error through `tracing` (decision 5, clarification 27).

use tracing_subscriber::EnvFilter;

/// Installs the log subscriber for `filter` (tracing directives) and the script loggers' levels.
pub fn init(filter: &str) {
    stage_lua::api::logger::configure(filter);
    // Script loggers are filtered by their own names in `stage_lua::api::logger`; let all of
    // their records through here.
    let env_filter = EnvFilter::try_new(format!("{filter},script=trace"))
        .unwrap_or_else(|_| EnvFilter::new("info,script=trace"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
