//! The script API tables: `stage`, `process`, `thread`, `logger`.

pub mod logger;
pub mod process;
pub mod stage;
pub mod thread;

use crate::stage::Stage;
use mlua::Lua;
use std::rc::Rc;

/// The stage whose thread runs this Lua state.
pub fn current_stage(lua: &Lua) -> mlua::Result<Rc<Stage>> {
    lua.app_data_ref::<Rc<Stage>>()
        .map(|s| s.clone())
        .ok_or_else(|| mlua::Error::runtime("this function is only available on a stage thread"))
}

/// Wall-clock time in milliseconds since the epoch.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
