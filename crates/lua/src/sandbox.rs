//! The sandbox of one Lua state (`sandbox.md` §3–10): the environment object that every chunk
//! and shipped function has as `_ENV`, private globals per context (the state's own, one per
//! coroutine, a fresh one per worker run), `_SANDBOX[""]` declarations, the `__` accessor, the
//! write-back snapshots of stored values, `stage.index` key conversion and `stage.call`
//! isolation. The rules are Lua (`sandbox.lua`, so that private globals stay plain table reads);
//! this file hands it the process store.
//!
//! Decisions beyond the spec, documented here:
//! - A name that is in the store and also in a private table or in B is read from those first;
//!   a declaration removes the declaring context's private value, so the conflict only arises
//!   for private values in other contexts assigned before the declaration.
//! - `stage.call` runs its function on the caller's coroutine and restores the caller's private
//!   table afterwards (same visible effect as a snapshot coroutine, no coroutine to create).
//! - Stored values refuse coroutines and userdata (decision Q7), with "Includes non-serialable
//!   data" ([`convert::to_transferable`]).

use crate::convert;
use crate::store::{Declaration, ProcessStore};
use mlua::{Function, Lua, MultiValue, Table, Value as LuaValue};
use stage_core::Value;
use std::sync::Arc;

/// The environment of one state and the two operations the runtime needs from it.
pub struct Sandbox {
    /// The environment object (`_SANDBOX`), `_ENV` of everything the runtime loads.
    pub env: Table,
    reset: Function,
    isolated: Function,
}

impl Sandbox {
    /// Installs the sandbox in a new state, before the runtime wraps `pcall` and the
    /// coroutine functions.
    pub fn install(lua: &Lua, store: Arc<ProcessStore>) -> mlua::Result<Sandbox> {
        let env = lua.create_table()?;
        let native = natives(lua, store, &env)?;
        let (reset, isolated): (Function, Function) = lua
            .load(include_str!("sandbox.lua"))
            .set_name("=sandbox")
            .call((env.clone(), lua.globals(), native))?;
        Ok(Sandbox {
            env,
            reset,
            isolated,
        })
    }

    /// Starts a fresh private table for the next run (worker jobs, `sandbox.md` §4.2).
    pub fn reset(&self) -> mlua::Result<()> {
        self.reset.call(())
    }

    /// Calls `f` with the caller's globals visible and its own global writes discarded after.
    pub fn call_isolated(&self, f: Function, args: MultiValue) -> mlua::Result<MultiValue> {
        let mut all = MultiValue::from_iter([LuaValue::Function(f)]);
        all.extend(args);
        self.isolated.call(all)
    }
}

/// The message of an unstorable value.
const NOT_STORABLE: &str = "Includes non-serialable data";

/// The store's functions as `sandbox.lua` calls them; refusals come back as error texts so
/// that Lua raises them at the script's line.
fn natives(lua: &Lua, store: Arc<ProcessStore>, env: &Table) -> mlua::Result<Table> {
    let native = lua.create_table()?;
    let (s, e) = (store.clone(), env.clone());
    native.set(
        "get",
        lua.create_function(move |lua, (ns, name): (i64, String)| {
            let ns = namespace(ns)?;
            let value = match s.get(ns, &name).map_err(mlua::Error::external)? {
                Some(v) => convert::from_value(lua, &v, &e)?,
                None => LuaValue::Nil,
            };
            // Only tables convert keys: the declaration's index id matters for them alone.
            let index = match (&value, ns) {
                (LuaValue::Table(_), 0) => s.declaration(&name).map(|d| d.index),
                _ => None,
            };
            Ok((value, index.unwrap_or_else(|| "sandbox".to_string())))
        })?,
    )?;
    let s = store.clone();
    native.set(
        "set",
        lua.create_function(move |lua, (ns, name, value): (i64, String, LuaValue)| {
            let ns = namespace(ns)?;
            Ok(match storable(lua, &value) {
                Ok(v) => s.set(ns, &name, v).err().map(|e| e.to_string()),
                Err(text) => Some(text),
            })
        })?,
    )?;
    let s = store.clone();
    native.set(
        "write",
        lua.create_function(move |lua, (name, value): (String, LuaValue)| {
            let refused = match s.takes_global(&name) {
                Ok(false) => return Ok(LuaValue::Nil),
                Ok(true) => match storable(lua, &value) {
                    Ok(v) => s.set(0, &name, v).err().map(|e| e.to_string()),
                    Err(text) => Some(text),
                },
                Err(e) => Some(e.to_string()),
            };
            Ok(match refused {
                None => LuaValue::Boolean(true),
                Some(text) => LuaValue::String(lua.create_string(text)?),
            })
        })?,
    )?;
    let (s, e) = (store.clone(), env.clone());
    native.set(
        "update",
        lua.create_function(move |lua, (ns, name, f): (i64, String, Function)| {
            update(lua, &s, &e, namespace(ns)?, &name, f)
        })?,
    )?;
    let s = store.clone();
    native.set(
        "names",
        lua.create_function(move |lua, ns: i64| lua.create_sequence_from(s.names(namespace(ns)?)))?,
    )?;
    let s = store.clone();
    native.set(
        "clear",
        lua.create_function(move |_, ns: i64| {
            s.clear(namespace(ns)?).map_err(mlua::Error::external)
        })?,
    )?;
    native.set(
        "declare",
        lua.create_function(
            move |lua, (name, read_only, index, value): (String, bool, String, LuaValue)| {
                let value = match storable(lua, &value) {
                    Ok(v) => v,
                    Err(text) => return Ok(Some(text)),
                };
                let declaration = Declaration { read_only, index };
                Ok(store
                    .declare(&name, declaration, value)
                    .err()
                    .map(|e| e.to_string()))
            },
        )?,
    )?;
    Ok(native)
}

fn namespace(ns: i64) -> mlua::Result<u32> {
    u32::try_from(ns)
        .map_err(|_| mlua::Error::runtime("The access index is incorrectly specified."))
}

/// `__(name, fn)` (`sandbox.md` §7, decision 9): `fn(current)` runs with the name locked; no
/// result keeps the value, nil deletes it, a value replaces it; an error in `fn` is logged and
/// changes nothing (a budget error still stops the invocation).
fn update(
    lua: &Lua,
    store: &ProcessStore,
    env: &Table,
    ns: u32,
    name: &str,
    f: Function,
) -> mlua::Result<LuaValue> {
    let result = store.update(ns, name, |held| -> mlua::Result<LuaValue> {
        let current = match held.value() {
            Some(v) => convert::from_value(lua, &v, env)?,
            None => LuaValue::Nil,
        };
        match f.call::<MultiValue>(current.clone()) {
            Ok(results) => match results.into_iter().next() {
                None => Ok(current),
                Some(LuaValue::Nil) => {
                    held.replace(None);
                    Ok(LuaValue::Nil)
                }
                Some(v) => {
                    let stored = storable(lua, &v).map_err(mlua::Error::runtime)?;
                    held.replace(stored);
                    Ok(v)
                }
            },
            Err(e) if crate::errors::message(&e).contains(crate::budget::BUDGET_ERROR) => Err(e),
            Err(e) => {
                crate::stage::report_text(
                    lua,
                    format!(
                        "__(\"{name}\", fn): the updater failed, the value is unchanged: {}",
                        crate::errors::log_text(&e)
                    ),
                );
                Ok(LuaValue::Nil)
            }
        }
    });
    result.map_err(|e| mlua::Error::runtime(e.to_string()))?
}

/// The stored form of a value (`None` for nil), or the reason it cannot be stored.
fn storable(lua: &Lua, value: &LuaValue) -> Result<Option<Value>, String> {
    if value.is_nil() {
        return Ok(None);
    }
    convert::to_transferable(lua, value).map(Some).map_err(|e| {
        let message = crate::errors::message(&e);
        if message.starts_with(NOT_STORABLE) {
            message
        } else {
            format!("{NOT_STORABLE}: {message}")
        }
    })
}
