//! The `process` object (`runtime.md` §9.9): ids, time, arguments, environment variables and
//! the Lua configuration, readable and writable.
//!
//! `process.title` is kept per (virtual) process and shown in logs; changing the OS-visible title
//! is left to the multi-process supervisor. Environment variables are process-wide.

use super::current_process;
use crate::bundle::json::{json_to_lua, parse_json};
use crate::errors;
use mlua::{Lua, Table, Value as LuaValue};

/// Creates the `process` object.
pub fn install(lua: &Lua) -> mlua::Result<Table> {
    let process = lua.create_table()?;
    let meta = lua.create_table()?;
    meta.set(
        "__index",
        lua.create_function(|lua, (_, key): (Table, String)| read(lua, &key))?,
    )?;
    meta.set(
        "__newindex",
        lua.create_function(|lua, (_, key, value): (Table, String, LuaValue)| {
            write(lua, &key, value)
        })?,
    )?;
    meta.set(
        "__tostring",
        lua.create_function(|_, _: Table| {
            Ok(format!("process: {:p} [{}]", &NOT_NULL, std::process::id()))
        })?,
    )?;
    process.set_metatable(Some(meta))?;
    Ok(process)
}

/// A static whose address stands for the process object in `tostring(process)`.
static NOT_NULL: u8 = 0;

fn read(lua: &Lua, key: &str) -> mlua::Result<LuaValue> {
    let process = current_process(lua)?;
    Ok(match key {
        "id" => LuaValue::Integer(i64::from(std::process::id())),
        "tick" => LuaValue::Number(super::thread::tick()),
        "stage" => LuaValue::Integer(i64::from(process.number)),
        "title" => LuaValue::String(lua.create_string(&*process.title.lock())?),
        "args" => {
            let args = lua.create_table()?;
            args.raw_set(0, process.program.as_str())?;
            for (i, a) in process.args.iter().enumerate() {
                args.raw_set(i + 1, a.as_str())?;
            }
            LuaValue::Table(args)
        }
        "$" => json_to_lua(lua, &serde_json::Value::Object(process.lua_config()))?,
        _ => {
            if let Some(name) = key.strip_prefix('%') {
                match std::env::var_os(name) {
                    Some(v) => LuaValue::String(lua.create_string(v.as_encoded_bytes())?),
                    None => LuaValue::Nil,
                }
            } else if let Some(name) = key.strip_prefix('$') {
                match process.lua_config_key(name) {
                    Some(v) => json_to_lua(lua, &v)?,
                    None => LuaValue::Nil,
                }
            } else {
                LuaValue::Nil
            }
        }
    })
}

fn write(lua: &Lua, key: &str, value: LuaValue) -> mlua::Result<()> {
    let process = current_process(lua)?;
    if key == "title" {
        *process.title.lock() = value.to_string()?;
        return Ok(());
    }
    if let Some(name) = key.strip_prefix('%') {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(mlua::Error::runtime(format!(
                "process['%{name}']: not a valid environment variable name"
            )));
        }
        match value {
            LuaValue::Nil => std::env::remove_var(name),
            v => std::env::set_var(name, v.to_string()?),
        }
        return Ok(());
    }
    if let Some(name) = key.strip_prefix('$') {
        let json = match &value {
            LuaValue::Nil => None,
            LuaValue::String(text) => Some(parse_json(&text.to_str()?)?),
            other => {
                return Err(mlua::Error::runtime(format!(
                    "process['${name}'] = v: v must be JSON text, got a {}",
                    errors::type_name(other)
                )))
            }
        };
        let key = (!name.is_empty()).then_some(name);
        return process
            .update_lua_config(key, json)
            .map_err(|e| mlua::Error::runtime(e.to_string()));
    }
    Err(mlua::Error::runtime(format!("process.{key} cannot be set")))
}
