//! Building a Lua state: the safe standard libraries, the API tables, `print`, a `debug` table
//! holding only `traceback`, text-only `load` (decision 32), and `%preload` (`runtime.md` §5).

use crate::api;
use crate::errors;
use crate::handlers::{ShipCache, WarnedPrototypes};
use crate::process::ProcessContext;
use crate::recent_strings::RecentStrings;
use crate::sandbox::Sandbox;
use mlua::prelude::{LuaGcGenParams, LuaGcMode};
use mlua::{Lua, LuaOptions, StdLib};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

/// A new Lua state with the standard libraries, the API tables and the sandbox of `process`,
/// before `%preload`; the process and the sandbox are in its app data.
pub fn new_state(process: &Arc<ProcessContext>) -> mlua::Result<(Lua, Rc<Sandbox>)> {
    let lua = Lua::new_with(StdLib::ALL_SAFE, LuaOptions::new())?;
    // Handlers mostly make short-lived tables (messages, replies): the generational collector
    // frees them in minor collections without traversing the state's long-lived data.
    lua.gc_set_mode(LuaGcMode::Generational(LuaGcGenParams::default()));
    let store = process.store.clone();
    lua.set_app_data(WarnedPrototypes::default());
    lua.set_app_data(ShipCache::default());
    lua.set_app_data(RecentStrings::new(&lua)?);
    lua.set_app_data(process.clone());
    let globals = lua.globals();
    globals.set("print", lua.create_function(api::logger::print)?)?;
    let debug = lua.create_table()?;
    debug.set(
        "traceback",
        lua.create_function(
            |lua, (msg, level): (Option<mlua::Value>, Option<usize>)| match msg {
                Some(mlua::Value::String(s)) => Ok(mlua::Value::String(
                    lua.traceback(Some(&s.to_str()?), level.unwrap_or(1))?,
                )),
                None | Some(mlua::Value::Nil) => Ok(mlua::Value::String(
                    lua.traceback(None, level.unwrap_or(1))?,
                )),
                Some(other) => Ok(other),
            },
        )?,
    )?;
    globals.set("debug", debug)?;
    lua.load(TEXT_ONLY_LOADERS).set_name("=stage").exec()?;

    let stage = api::stage::install(&lua)?;
    let bundle = crate::bundle::install(&lua)?;
    let process = api::process::install(&lua)?;
    let thread = api::thread::install(&lua)?;
    let logger = api::logger::install(&lua)?;
    errors::wrap_tables(&lua, &[&stage, &bundle, &process, &thread, &logger])?;
    api::thread::install_new(&lua, &thread, None)?;
    // The sample distribution's aliases (runtime.md §5.2): stage.json is bundle.json, …
    for pair in bundle.pairs::<mlua::Value, mlua::Value>() {
        let (k, v) = pair?;
        stage.set(k, v)?;
    }
    globals.set("stage", stage)?;
    globals.set("bundle", bundle)?;
    globals.set("process", process)?;
    globals.set("thread", thread)?;
    globals.set("log4cxx", logger.clone())?;
    globals.set("logger", logger)?;
    globals.set(
        "_TRACEBACK",
        lua.create_function(|_, text: String| {
            tracing::warn!(target: "lua", "{text}");
            Ok(())
        })?,
    )?;
    // Last: it wraps the coroutine functions and protects `_G`'s metatable.
    let sandbox = Rc::new(Sandbox::install(&lua, store)?);
    lua.set_app_data(sandbox.clone());
    Ok((lua, sandbox))
}

/// `load`, `loadfile` and `dofile` restricted to text chunks: bytecode enters a state only
/// through function shipping.
const TEXT_ONLY_LOADERS: &str = r#"
local load, loadfile = load, loadfile
_G.load = function (chunk, name, mode, ...)
  return load(chunk, name, "t", ...)
end
_G.loadfile = function (name, mode, ...)
  return loadfile(name, "t", ...)
end
_G.dofile = function (name)
  local f = assert(loadfile(name, "t"))
  return f()
end
"#;

/// Runs `%preload` in the state's base environment (`runtime.md` §5.2): directories in byte-wise
/// name order, `.lua` files executed, `.json` files listing more paths. Errors are logged.
pub fn preload(lua: &Lua, process: &ProcessContext) {
    for path in process.preload() {
        preload_path(lua, process, &process.base_dir.join(path), 0);
    }
}

fn preload_path(lua: &Lua, process: &ProcessContext, path: &Path, depth: usize) {
    if depth > 16 {
        tracing::warn!(target: "lua", "%preload: {} is nested too deeply (a loop of .json files?)", path.display());
        return;
    }
    let shown = path
        .strip_prefix(&process.base_dir)
        .unwrap_or(path)
        .display()
        .to_string();
    if path.is_dir() {
        let mut names: Vec<_> = match std::fs::read_dir(path) {
            Ok(dir) => dir.filter_map(Result::ok).map(|e| e.file_name()).collect(),
            Err(e) => return tracing::warn!(target: "lua", "%preload: cannot read {shown}: {e}"),
        };
        names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
        for name in names
            .into_iter()
            .filter(|n| !n.as_encoded_bytes().starts_with(b"."))
        {
            preload_path(lua, process, &path.join(name), depth + 1);
        }
        return;
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("lua") => {
            let result = std::fs::read(path)
                .map_err(mlua::Error::external)
                .and_then(|source| {
                    lua.load(&source)
                        .set_name(format!("@{shown}"))
                        .set_mode(mlua::chunk::ChunkMode::Text)
                        .exec()
                });
            if let Err(e) = result {
                tracing::warn!(target: "lua", "%preload {shown}: {e}");
            }
        }
        Some("json") => {
            let listed = std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|text| {
                    serde_json::from_slice::<serde_json::Value>(&text).map_err(|e| e.to_string())
                });
            let dir = path.parent().unwrap_or(Path::new(""));
            match listed {
                Ok(serde_json::Value::String(p)) => {
                    preload_path(lua, process, &dir.join(p), depth + 1)
                }
                Ok(serde_json::Value::Array(items)) => {
                    for p in items.iter().filter_map(|v| v.as_str()) {
                        preload_path(lua, process, &dir.join(p), depth + 1);
                    }
                }
                Ok(serde_json::Value::Object(items)) => {
                    for p in items.values().filter_map(|v| v.as_str()) {
                        preload_path(lua, process, &dir.join(p), depth + 1);
                    }
                }
                Ok(_) => {
                    tracing::warn!(target: "lua", "%preload {shown}: expected a path or a list of paths")
                }
                Err(e) => tracing::warn!(target: "lua", "%preload {shown}: {e}"),
            }
        }
        _ => {}
    }
}
