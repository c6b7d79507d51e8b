//! The `thread` object: `thread.id` and `thread.tick` (`runtime.md` §9.8).

use mlua::{Lua, Table, Value as LuaValue};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_THREAD_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static THREAD_ID: u64 = NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed);
}

/// This OS thread's id: an integer unique within the process while the thread lives.
pub fn thread_id() -> u64 {
    THREAD_ID.with(|id| *id)
}

/// Wall-clock seconds as a float with millisecond precision.
pub fn tick() -> f64 {
    super::wall_ms() as f64 / 1000.0
}

/// Creates the `thread` object.
pub fn install(lua: &Lua) -> mlua::Result<Table> {
    let thread = lua.create_table()?;
    let meta = lua.create_table()?;
    meta.set(
        "__index",
        lua.create_function(|_, (_, key): (Table, String)| {
            Ok(match key.as_str() {
                "id" => LuaValue::Integer(thread_id() as i64),
                "tick" => LuaValue::Number(tick()),
                _ => LuaValue::Nil,
            })
        })?,
    )?;
    thread.set_metatable(Some(meta))?;
    Ok(thread)
}
