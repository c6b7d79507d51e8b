//! The node configuration `stage.json` (`spec/runtime.md` §2–§4, decisions 0, 4, 23–25, 27, 29,
//! 33): loading and merging the files, validating every key against a closed schema, and the
//! typed structs the runtime consumes.
//!
//! ```no_run
//! use std::path::PathBuf;
//! use stage_config::NodeConfig;
//!
//! let config = NodeConfig::load(&[PathBuf::from("app/stage.json")])?;
//! for process in &config.processes {
//!     for module in process.lua_modules() {
//!         println!("{} {:?}", process.number, config.main_script(process, module));
//!     }
//! }
//! # Ok::<(), stage_config::ConfigError>(())
//! ```

#![warn(missing_docs)]

mod address;
mod at;
mod cluster;
mod document;
mod error;
mod json;
mod limits;
mod lua_config;
mod lua_settings;
mod module_spec;
mod nats;
mod node;
mod router;
mod sections;
mod services;
mod startup;
mod threads;

pub use address::HostPort;
pub use cluster::{Advertised, ClusterConfig};
pub use error::ConfigError;
pub use limits::Limits;
pub use lua_settings::{LuaSettings, OdbcConnection, PackageEntry};
pub use module_spec::{ModuleKind, ModuleSpec};
pub use nats::NatsConfig;
pub use node::NodeConfig;
pub use router::RouterConfig;
pub use sections::curl::CurlConfig;
pub use services::Services;
pub use startup::ProcessConfig;
pub use threads::ThreadsConfig;

#[cfg(test)]
mod tests;
