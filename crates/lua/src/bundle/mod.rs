//! The `bundle` library (`runtime.md` §9.11): `json`, `bson`, `random`, `proxy`, `viewof`.
//!
//! [`install`] builds the table; the caller publishes it as the global `bundle` (and copies its
//! functions into `stage`). Every function checks its arguments and reports misuse as a Lua
//! error whose message starts with `bundle.<name>:`.

mod bson;
pub mod json;
mod proxy;
mod random;
mod viewof;

use crate::errors::type_name;
use mlua::{Function, Lua, MultiValue, Table, Value};

/// Creates the `bundle` table with its five functions.
pub fn install(lua: &Lua) -> mlua::Result<Table> {
    let bundle = lua.create_table()?;
    bundle.set("json", lua.create_function(json::json)?)?;
    bundle.set("bson", lua.create_function(bson::bson)?)?;
    bundle.set("random", random::create(lua)?)?;
    bundle.set("proxy", proxy::create(lua)?)?;
    bundle.set("viewof", lua.create_function(viewof::viewof)?)?;
    Ok(bundle)
}

/// A Lua error `bundle.<name>: <message>`.
fn error(name: &str, message: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::runtime(format!("bundle.{name}: {message}"))
}

/// The error for an argument of the wrong type.
fn bad_argument(name: &str, position: usize, expected: &str, got: &Value) -> mlua::Error {
    error(
        name,
        format!(
            "bad argument #{position} ({expected} expected, got {})",
            type_name(got)
        ),
    )
}

/// Calls `f` with `args` and keeps its first result (nil when it returned nothing): the
/// `bundle.json(f, ...)` / `bundle.bson(f, ...)` forms.
fn first_result(f: &Function, args: MultiValue) -> mlua::Result<Value> {
    let results: MultiValue = f.call(args)?;
    Ok(results.into_iter().next().unwrap_or(Value::Nil))
}

#[cfg(test)]
pub(crate) mod testing {
    //! A Lua state with `bundle` installed and `print` captured.

    use mlua::Lua;

    /// A fresh state: global `bundle`, and `print` appending tab-joined lines to `OUT`.
    pub fn lua() -> Lua {
        let lua = Lua::new();
        let bundle = super::install(&lua).unwrap();
        lua.globals().set("bundle", bundle).unwrap();
        lua.load(
            r#"
            OUT = {}
            print = function (...)
              local parts = table.pack(...)
              for i = 1, parts.n do parts[i] = tostring(parts[i]) end
              OUT[#OUT + 1] = table.concat(parts, "\t", 1, parts.n)
            end
            "#,
        )
        .exec()
        .unwrap();
        lua
    }

    /// Runs `code` and returns what it printed, one string per line (a printed text holding
    /// newlines shows them as they are).
    pub fn printed(lua: &Lua, code: &str) -> String {
        lua.load("OUT = {}").exec().unwrap();
        lua.load(code).exec().unwrap();
        let out: Vec<String> = lua
            .globals()
            .get::<mlua::Table>("OUT")
            .unwrap()
            .sequence_values()
            .map(|s| s.unwrap())
            .collect();
        out.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Runs `code` and returns its error message.
    pub fn error_of(lua: &Lua, code: &str) -> String {
        match lua.load(code).exec() {
            Ok(()) => panic!("no error from {code}"),
            Err(e) => e.to_string(),
        }
    }
}
