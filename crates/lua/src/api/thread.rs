//! The `thread` object (`runtime.md` §9.8): `thread.id`, `thread.tick`, and `thread.new` jobs
//! whose `thread.signal` values and return values reach a callback on the stage thread.
//!
//! A handle's callback is a handler of the stage under a random id (as `stage.waitfor(fn)`
//! makes), so it is listed by `stage.waitfor()`; a job's values are posted straight to the
//! stage's mailbox, never through the router (decision Q16). The callback is removed
//! [`crate::stage::THREAD_CALLBACK_LINGER_MS`] after the job ended.

use super::stage::{copy_all, fresh_name, job_function};
use super::Actor;
use crate::budget;
use crate::convert;
use crate::worker::{Job, JobScope};
use mlua::{Lua, LuaString, MultiValue, Table, Value as LuaValue};
use std::rc::Rc;
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

/// `thread.new` and its handles, in Lua: a handle is a table whose `waitfor` is a closure over
/// the callback id, far cheaper than a userdata building a Rust closure at every access.
const HANDLES: &str = r#"
local start, waitfor, thread = ...
local ids = setmetatable({}, { __mode = "k" })
local meta = {
  __index = function (_, k) if k ~= "signal" then return thread[k] end end,
  __tostring = function (h) return "thread: " .. ids[h] end,
  __metatable = false,
}
return function (f, ...)
  local id = start(f, ...)
  local h = setmetatable({ waitfor = function (...) waitfor(id, ...) return id end }, meta)
  ids[h] = id
  return h
end
"#;

/// Creates the `thread` object.
pub fn install(lua: &Lua) -> mlua::Result<Table> {
    let thread = lua.create_table()?;
    let native = lua.create_table()?;
    native.raw_set(
        "waitfor",
        lua.create_function(|lua, (id, args): (String, MultiValue)| {
            handle_waitfor(lua, &id, args)
        })?,
    )?;
    crate::errors::wrap_tables(lua, &[&native])?;
    let new: mlua::Function = lua.load(HANDLES).set_name("=thread").call((
        lua.create_function(start)?,
        native.raw_get::<mlua::Function>("waitfor")?,
        thread.clone(),
    ))?;
    thread.raw_set("new", new)?;
    thread.raw_set("signal", lua.create_function(signal)?)?;
    let meta = lua.create_table()?;
    meta.set(
        "__index",
        lua.create_function(|lua, (_, key): (LuaValue, String)| read(lua, &key))?,
    )?;
    thread.set_metatable(Some(meta))?;
    Ok(thread)
}

fn read(lua: &Lua, key: &str) -> mlua::Result<LuaValue> {
    Ok(match key {
        "id" => LuaValue::Integer(thread_id() as i64),
        "tick" => LuaValue::Number(tick()),
        "new" => match lua.globals().raw_get::<LuaValue>("thread")? {
            LuaValue::Table(t) => t.raw_get("new")?,
            _ => LuaValue::Nil,
        },
        _ => LuaValue::Nil,
    })
}

/// `thread.new(fn, ...)`: submits the job and returns its callback id.
fn start(lua: &Lua, (f, args): (LuaValue, MultiValue)) -> mlua::Result<LuaString> {
    let actor = Actor::current(lua)?;
    let LuaValue::Function(f) = f else {
        return Err(mlua::Error::runtime(format!(
            "thread.new(fn, ...): fn must be a function, not a {}",
            f.type_name()
        )));
    };
    let callback = fresh_name(16, |n| actor.has_handler(n));
    let args: Vec<LuaValue> = args.into_iter().collect();
    let job = Job {
        key: 0,
        func: job_function(lua, &f)?,
        args: convert::to_transferable_args(lua, &args)?,
        origin: actor.origin().clone(),
        thread: Some(callback.clone()),
    };
    actor.process().submit(job)?;
    callback_id(lua, &callback)
}

/// A callback id for the script, made outside the memory cap (see [`budget::uncapped`]).
fn callback_id(lua: &Lua, id: &str) -> mlua::Result<LuaString> {
    budget::uncapped(lua, || lua.create_string(id))
}

/// `thread.signal(v...)` inside a `thread.new` job.
fn signal(lua: &Lua, values: MultiValue) -> mlua::Result<()> {
    let job = lua.app_data_ref::<Rc<JobScope>>().map(|j| j.clone());
    let Some((job, callback)) = job.and_then(|j| j.thread.clone().map(|cb| (j, cb))) else {
        return Err(mlua::Error::runtime("Thread is not in use"));
    };
    if values.is_empty() {
        return Ok(());
    }
    job.origin
        .deliver(&callback, convert::to_args(lua, values.iter())?)
}

/// `h.waitfor(cb, args...)`, `h.waitfor(nil)`, `h.waitfor(value, ...)` (the Lua side returns the
/// callback id, which it already holds).
fn handle_waitfor(lua: &Lua, callback: &str, args: MultiValue) -> mlua::Result<()> {
    let actor = Actor::current(lua)?;
    let mut args = args.into_iter();
    match args.next().unwrap_or(LuaValue::Nil) {
        LuaValue::Function(f) => {
            let rest: Vec<LuaValue> = args.collect();
            actor.register_callback(lua, callback.to_string(), &f, copy_all(lua, &rest)?)?;
        }
        LuaValue::Nil => actor.unregister(callback)?,
        value => {
            let mut all = vec![value];
            all.extend(args);
            actor.set_args(callback, copy_all(lua, &all)?)?;
        }
    }
    Ok(())
}
