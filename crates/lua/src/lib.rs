//! The Lua host of stage: Lua states, the stage thread, scripts and the script API tables.

pub mod api;
pub mod budget;
pub mod bundle;
pub mod command;
pub mod convert;
pub mod errors;
pub mod handlers;
mod ids;
pub mod messaging;
pub mod origin;
pub mod process;
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
