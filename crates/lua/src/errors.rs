//! Errors as scripts see them: plain strings, as from any Lua library.
//!
//! `mlua` raises a Rust callback's error as a userdata; scripts expect a string they can
//! `match` and print. Every API function is therefore wrapped in a small Lua function that calls
//! it protected and re-raises a string: the runtime's own errors located at the calling line (like
//! `luaL_error`), errors of Lua code the runtime called (a synchronous handler, a script) with
//! their original text.

use mlua::{Lua, MultiValue, Table, Value as LuaValue};

/// What `mlua` appends to the text of a Lua error caught by a protected call.
const TRACEBACK: &str = "\nstack traceback:";

/// The message of an error, and whether it still needs the position of the calling line.
fn describe(error: &mlua::Error) -> (String, bool) {
    match error {
        mlua::Error::CallbackError { cause, .. } => describe(cause),
        mlua::Error::WithContext { cause, .. } => describe(cause),
        mlua::Error::RuntimeError(text) => match text.split_once(TRACEBACK) {
            // Raised by Lua code: it already says where.
            Some((message, _)) => (message.to_string(), false),
            None => (text.clone(), true),
        },
        mlua::Error::SyntaxError { message, .. } => (message.clone(), false),
        mlua::Error::MemoryError(_) => ("not enough memory".to_string(), false),
        other => (other.to_string(), true),
    }
}

/// The type name of a value as Lua's `type` gives it: integers and floats are both `number`
/// (`mlua` says `integer` for the former).
pub fn type_name(v: &LuaValue) -> &'static str {
    match v {
        LuaValue::Integer(_) | LuaValue::Number(_) => "number",
        other => other.type_name(),
    }
}

/// The message of an error as a script sees it (no traceback).
pub fn message(error: &mlua::Error) -> String {
    describe(error).0
}

/// The text of an error for logs: the innermost message with its traceback.
pub fn log_text(error: &mlua::Error) -> String {
    match error {
        mlua::Error::CallbackError { cause, traceback } => {
            let inner = log_text(cause);
            if inner.contains(TRACEBACK) {
                inner
            } else {
                format!("{inner}\n{traceback}")
            }
        }
        mlua::Error::WithContext { cause, .. } => log_text(cause),
        mlua::Error::RuntimeError(text) => text.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// An API function's result for Lua code that raises its errors itself (the stage thread's
/// fast path): `true` and the results, or `false`, the message and whether the message still
/// needs the position of the calling line.
pub fn outcome(lua: &Lua, result: mlua::Result<MultiValue>) -> mlua::Result<(bool, MultiValue)> {
    Ok(match result {
        Ok(values) => (true, values),
        Err(e) => {
            let (message, locate) = describe(&e);
            let message = LuaValue::String(lua.create_string(message)?);
            (
                false,
                MultiValue::from_iter([message, LuaValue::Boolean(locate)]),
            )
        }
    })
}

/// See [`check`].
const CHECK: &str = r#"
local error = error
return function (ok, ...)
  if ok then return ... end
  local message, locate = ...
  error(message, locate and 2 or 0)
end
"#;

/// The Lua function that takes an [`outcome`] and returns its results, or raises its error: at
/// the line that called the API function when the outcome says so, for Lua code that calls it
/// in tail position (the fast path, `thread.new` handles).
pub fn check(lua: &Lua) -> mlua::Result<mlua::Function> {
    lua.load(CHECK).set_name("=stage").call(())
}

const WRAPPER: &str = r#"
local describe, pcall, error = ...
local function check(ok, ...)
  if ok then return ... end
  local message, locate = describe((...))
  error(message, locate and 2 or 0)
end
return function (f)
  return function (...) return check(pcall(f, ...)) end
end
"#;

/// Builds the function that wraps API functions (see the module doc).
fn wrapper(lua: &Lua) -> mlua::Result<mlua::Function> {
    let describe = lua.create_function(|_, e: LuaValue| {
        Ok(match e {
            LuaValue::Error(e) => describe(&e),
            LuaValue::String(s) => (s.to_str()?.to_string(), false),
            other => (other.to_string()?, false),
        })
    })?;
    let globals = lua.globals();
    let pcall: mlua::Function = globals.get("pcall")?;
    let error: mlua::Function = globals.get("error")?;
    lua.load(WRAPPER)
        .set_name("=stage")
        .call((describe, pcall, error))
}

/// Wraps every function of each table (and of its metatable's `__index`, `__newindex`) so
/// that it raises string errors.
pub fn wrap_tables(lua: &Lua, tables: &[&Table]) -> mlua::Result<()> {
    let wrap = wrapper(lua)?;
    for table in tables {
        wrap_table(&wrap, table)?;
    }
    Ok(())
}

fn wrap_table(wrap: &mlua::Function, table: &Table) -> mlua::Result<()> {
    let functions: Vec<(LuaValue, mlua::Function)> = table
        .pairs::<LuaValue, LuaValue>()
        .filter_map(|p| match p {
            Ok((k, LuaValue::Function(f))) => Some(Ok((k, f))),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<mlua::Result<_>>()?;
    for (k, f) in functions {
        table.raw_set(k, wrap.call::<mlua::Function>(f)?)?;
    }
    if let Some(meta) = table.metatable() {
        for key in ["__index", "__newindex"] {
            if let LuaValue::Function(f) = meta.raw_get(key)? {
                meta.raw_set(key, wrap.call::<mlua::Function>(f)?)?;
            }
        }
    }
    Ok(())
}
