//! Runaway code is stopped (decisions 11 and 26): an instruction hook aborts an invocation that
//! runs past its wall-clock budget, and the state's memory is capped.
//!
//! The hook runs every [`CHECK_EVERY`] instructions and compares a progress count with the one
//! it saw before: the count moves whenever a new invocation starts (the runtime bumps it for
//! each handler, timer, idle call and main script; the Lua fast path for each message it
//! dispatches). While it stands still, the same invocation is running; once that has lasted
//! longer than the budget, every hook call raises the budget error until the invocation ends,
//! and `pcall`, `xpcall` and `coroutine.resume` hand it on instead of catching it.

use mlua::{HookTriggers, Lua, VmState};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How many VM instructions run between two looks at the clock.
pub const CHECK_EVERY: u32 = 10_000;

/// The start of every budget error message; scripts cannot catch an error that starts so.
pub const BUDGET_ERROR: &str = "budget exceeded:";

/// The count of invocations started on this state by the runtime.
#[derive(Clone, Default)]
pub struct Progress(Rc<Cell<u64>>);

impl Progress {
    /// Marks the start of a new invocation.
    pub fn bump(&self) {
        self.0.set(self.0.get().wrapping_add(1));
    }
}

/// What a state's invocations may use.
pub struct Budget {
    /// How long one invocation may run (zero = no limit).
    pub time: Duration,
    /// The config key that sets it, named in the error (e.g. "#limits.stage_budget_ms").
    pub what: &'static str,
    /// The state's memory cap in bytes (0 = no cap).
    pub memory_bytes: usize,
}

/// Puts a state under `budget`: the time hook (see [`install`]), budget errors that `pcall`
/// and friends hand on, and the memory cap. Called once per state, after the sandbox.
pub fn enforce(
    lua: &Lua,
    budget: &Budget,
    progress: Progress,
    lua_progress: Option<mlua::Function>,
) -> mlua::Result<()> {
    uncatchable(lua)?;
    install(lua, budget.time, budget.what, progress, lua_progress)?;
    cap_memory(lua, budget.memory_bytes)
}

/// Caps the state's memory at `memory_bytes` (0 = no cap).
fn cap_memory(lua: &Lua, memory_bytes: usize) -> mlua::Result<()> {
    if memory_bytes > 0 {
        lua.set_memory_limit(memory_bytes)?;
    }
    Ok(())
}

/// Installs the hook: an invocation may run `budget` (zero = no budget); `what` names the budget
/// in the error (e.g. "#limits.stage_budget_ms"); `lua_progress`, when given, is a Lua function
/// returning a second progress count (the fast path's).
fn install(
    lua: &Lua,
    budget: Duration,
    what: &'static str,
    progress: Progress,
    lua_progress: Option<mlua::Function>,
) -> mlua::Result<()> {
    if budget.is_zero() {
        return Ok(());
    }
    let seen = Cell::new((u64::MAX, 0u64));
    let since = Cell::new(Instant::now());
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(CHECK_EVERY),
        move |_, _| {
            let from_lua = match &lua_progress {
                Some(f) => f.call::<u64>(())?,
                None => 0,
            };
            let now = (progress.0.get(), from_lua);
            if now != seen.get() {
                seen.set(now);
                since.set(Instant::now());
                return Ok(VmState::Continue);
            }
            if since.get().elapsed() > budget {
                return Err(mlua::Error::runtime(format!(
                    "{BUDGET_ERROR} this invocation ran longer than {} ms ({what}) and was stopped",
                    budget.as_millis()
                )));
            }
            Ok(VmState::Continue)
        },
    )
}

/// Replaces `pcall`, `xpcall` and `coroutine.resume` with versions that hand budget errors on
/// (`is_budget` tells them apart). Called once per state, after the runtime took the originals.
fn uncatchable(lua: &Lua) -> mlua::Result<()> {
    const WRAP: &str = r#"
local is_budget, pcall, xpcall, resume, error = ...
local function pass(ok, ...)
  if not ok and is_budget((...)) then error((...), 0) end
  return ok, ...
end
_G.pcall = function (f, ...) return pass(pcall(f, ...)) end
_G.xpcall = function (f, handler, ...)
  local caught
  local function keep(e)
    if is_budget(e) then caught = e return e end
    return handler(e)
  end
  local function check(ok, ...)
    if caught ~= nil then error(caught, 0) end
    return ok, ...
  end
  return check(xpcall(f, keep, ...))
end
coroutine.resume = function (co, ...) return pass(resume(co, ...)) end
"#;
    let is_budget = lua.create_function(|_, e: mlua::Value| {
        Ok(match e {
            mlua::Value::Error(e) => crate::errors::message(&e).starts_with(BUDGET_ERROR),
            mlua::Value::String(s) => s.to_str().is_ok_and(|s| s.contains(BUDGET_ERROR)),
            _ => false,
        })
    })?;
    let globals = lua.globals();
    let coroutine: mlua::Table = globals.get("coroutine")?;
    lua.load(WRAP).set_name("=stage").call::<()>((
        is_budget,
        globals.get::<mlua::Function>("pcall")?,
        globals.get::<mlua::Function>("xpcall")?,
        coroutine.get::<mlua::Function>("resume")?,
        globals.get::<mlua::Function>("error")?,
    ))
}
