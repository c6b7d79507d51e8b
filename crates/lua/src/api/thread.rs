//! The `thread` object (`runtime.md` §9.8): `thread.id`, `thread.tick`, and `thread.new` jobs
//! whose `thread.signal` values and return values reach a callback on the stage thread.
//!
//! A handle's callback is a handler of the stage under a generated id of 16 letters and digits
//! (like the ids `stage.waitfor(fn)` makes; on a stage thread from a sequence, see
//! [`crate::stage::Stage::fresh_callback_id`]), so it is listed by `stage.waitfor()`; a job's
//! values are posted straight to the stage's mailbox, never through the router (decision Q16).
//! The callback is removed [`crate::command::THREAD_CALLBACK_LINGER_MS`] after the job ended.

use super::stage::{copy_all, job_function};
use super::Actor;
use crate::budget;
use crate::convert;
use crate::errors;
use crate::worker::{Job, JobFn, JobScope};
use mlua::{Lua, LuaString, MultiValue, Table, Value as LuaValue};
use stage_core::Args;
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
    stage_core::clock::wall_ms() as f64 / 1000.0
}

/// `thread.new` and its handles, in Lua: a handle is a table whose `waitfor` is a closure over
/// the callback id, far cheaper than a userdata building a Rust closure at every access. On a
/// stage thread the C functions of [`crate::api::thread_jobs`] start jobs and register plain
/// callbacks first; what they leave (and everything in a worker) goes to [`start`] and
/// [`handle_waitfor`]. The functions raise their errors at the caller's line themselves, so
/// they are not wrapped like the other API functions.
const HANDLES: &str = r##"
local check, slow_new, slow_watch, thread, new_job, watch, plain, failure = ...
local select, type, setmetatable = select, type, setmetatable
-- h.waitfor(ASK_ID) returns the id and does nothing else (for tostring).
local ASK_ID = {}
local meta = {
  __index = function (_, k) if k ~= "signal" then return thread[k] end end,
  __tostring = function (h) return "thread: " .. h.waitfor(ASK_ID) end,
  __metatable = false,
}
-- The copies plain callbacks were registered as, by the function the script passed: the C
-- function registers them again without a call into the runtime's ordinary path.
local copies = setmetatable({}, { __mode = "k" })
local function handle(id)
  return setmetatable({ waitfor = function (cb, ...)
    if cb == ASK_ID then return id end
    local copy = copies[cb]
    if copy and watch(id, cb, copy, ...) then
      plain[id] = copy
      return id
    end
    local ok, a, b = slow_watch(id, cb, ...)
    if ok and plain and type(cb) == "function" and select("#", ...) == 0 then
      copies[cb] = plain[id]
    end
    return check(ok, a, b)
  end }, meta)
end
local function started(ok, ...)
  if ok then return handle((...)) end
  return check(ok, ...)
end
return function (f, ...)
  if new_job then
    local id = new_job(f, ...)
    if id then return handle(id) end
    if id == false then return check(failure()) end
  end
  return started(slow_new(f, ...))
end
"##;

/// The C functions and the table of plain handlers of a stage thread's fast path, which
/// `thread.new` tries first.
pub struct FastThreads<'a> {
    pub new_job: &'a mlua::Function,
    pub watch: &'a mlua::Function,
    pub plain: &'a Table,
    pub failure: &'a mlua::Function,
}

/// Creates the `thread` object (its `new` comes with [`install_new`], after the API functions
/// are wrapped).
pub fn install(lua: &Lua) -> mlua::Result<Table> {
    let thread = lua.create_table()?;
    thread.raw_set("signal", lua.create_function(signal)?)?;
    let meta = lua.create_table()?;
    meta.set(
        "__index",
        lua.create_function(|lua, (_, key): (LuaValue, String)| read(lua, &key))?,
    )?;
    thread.set_metatable(Some(meta))?;
    Ok(thread)
}

/// Sets `thread.new`, trying the fast path's functions first when given.
pub fn install_new(lua: &Lua, thread: &Table, fast: Option<FastThreads>) -> mlua::Result<()> {
    let slow_new = lua.create_function(|lua, args| {
        crate::errors::outcome(lua, start(lua, args).map(|id| MultiValue::from_iter([id])))
    })?;
    let slow_watch = lua.create_function(|lua, (id, args): (LuaString, MultiValue)| {
        let watched = handle_waitfor(lua, &id.to_str()?, args);
        crate::errors::outcome(
            lua,
            watched.map(|()| MultiValue::from_iter([LuaValue::String(id)])),
        )
    })?;
    let new: mlua::Function = lua.load(HANDLES).set_name("=thread").call((
        crate::errors::check(lua)?,
        slow_new,
        slow_watch,
        thread.clone(),
        fast.as_ref().map(|f| f.new_job),
        fast.as_ref().map(|f| f.watch),
        fast.as_ref().map(|f| f.plain),
        fast.as_ref().map(|f| f.failure),
    ))?;
    thread.raw_set("new", new)
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
fn start(lua: &Lua, (f, args): (LuaValue, MultiValue)) -> mlua::Result<LuaValue> {
    let actor = Actor::current(lua)?;
    let LuaValue::Function(f) = f else {
        return Err(mlua::Error::runtime(format!(
            "thread.new(fn, ...): fn must be a function, not a {}",
            errors::type_name(&f)
        )));
    };
    let args: Vec<LuaValue> = args.into_iter().collect();
    let func = job_function(lua, &f)?;
    let args = convert::to_transferable_args(lua, &args)?;
    let callback = submit(&actor, func, args)?;
    // Made outside the memory cap (see [`budget::uncapped`]).
    budget::uncapped(lua, || lua.create_string(callback.as_bytes())).map(LuaValue::String)
}

/// Submits the `thread.new` job `func(args...)` of `actor`; returns its callback id.
pub(crate) fn submit(actor: &Actor, func: JobFn, args: Args) -> mlua::Result<CallbackId> {
    let callback = match actor {
        Actor::Stage(stage) => stage.fresh_callback_id(),
        Actor::Job(_) => crate::ids::fresh_random(CallbackId::LEN, |_| false),
    };
    let id = CallbackId::of(&callback);
    let job = Job {
        key: 0,
        func,
        args,
        origin: actor.origin().clone(),
        thread: Some(callback),
    };
    actor.process().submit(job)?;
    Ok(id)
}

/// A callback id as a value on the stack (ids are 16 letters and digits).
#[derive(Clone, Copy)]
pub(crate) struct CallbackId {
    bytes: [u8; CallbackId::LEN],
    len: usize,
}

impl CallbackId {
    /// How long the ids made for callbacks are.
    pub const LEN: usize = crate::ids::CALLBACK_ID_LEN;

    fn of(id: &str) -> CallbackId {
        let mut bytes = [0; CallbackId::LEN];
        let len = id.len().min(CallbackId::LEN);
        bytes[..len].copy_from_slice(&id.as_bytes()[..len]);
        CallbackId { bytes, len }
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
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
            actor.register(lua, callback.to_string(), &f, Some(copy_all(lua, &rest)?))?;
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
