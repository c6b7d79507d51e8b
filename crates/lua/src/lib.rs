//! The Lua host of stage: Lua states, the stage thread, scripts and the script API tables.

pub mod api;
pub mod budget;
pub mod bundle;
pub mod convert;
pub mod errors;
pub mod fastpath;
pub mod handlers;
pub mod process;
mod rawsend;
mod rawthread;
mod recent_strings;
pub mod sandbox;
pub mod scripts;
pub mod stage;
pub mod stage_thread;
pub mod state;
pub mod store;
pub mod timers;
pub mod worker;

pub use process::{Node, ProcessContext, ProcessSettings};
pub use stage_thread::{prepare, spawn, PreparedStage, StageHandle, StageSpec};
