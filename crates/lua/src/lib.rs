//! The Lua host of stage: Lua states, the stage thread, scripts and the script API tables.

pub mod convert;
