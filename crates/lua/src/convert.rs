//! Copying values out of one Lua state and into another (`sandbox.md` §11).
//!
//! Out of Lua: tables are copied deeply with their keys reduced to integers and strings, type
//! hints (`key@i`, `key@b`, …) applied, cycles and over-deep nesting refused, functions dumped
//! as unstripped bytecode, C functions refused, other userdata and coroutines turned into their
//! `tostring` text. Into Lua: every materialisation builds fresh tables and loads functions anew,
//! with the upvalue named `_ENV` bound to the destination's environment and every other upvalue
//! nil (decision 8).

use mlua::{Lua, Value as LuaValue};
use stage_core::{Key, Table, Value};
use std::collections::HashSet;
use std::ffi::CStr;
use std::sync::Arc;

/// How deep tables may nest before a copy is refused.
pub const MAX_DEPTH: usize = 128;

/// Why a Lua value could not leave its state.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConvertError {
    #[error("a table refers to itself: cyclic tables cannot be copied")]
    Cycle,
    #[error("tables nested deeper than {MAX_DEPTH} levels cannot be copied")]
    TooDeep,
    #[error("Includes non-serialable data: a C function cannot be copied")]
    CFunction,
}

impl From<ConvertError> for mlua::Error {
    fn from(e: ConvertError) -> mlua::Error {
        mlua::Error::runtime(e.to_string())
    }
}

/// Copies a Lua value out of its state.
pub fn to_value(lua: &Lua, value: &LuaValue) -> mlua::Result<Value> {
    Copier::new(lua).value(value, 0)
}

/// Copies every value of a list (arguments of a call or a message).
pub fn to_args<'a>(
    lua: &Lua,
    values: impl IntoIterator<Item = &'a LuaValue>,
) -> mlua::Result<stage_core::Args> {
    let mut copier = Copier::new(lua);
    values.into_iter().map(|v| copier.value(v, 0)).collect()
}

struct Copier<'l> {
    lua: &'l Lua,
    /// Tables on the path from the root to the table being copied.
    path: HashSet<usize>,
}

impl<'l> Copier<'l> {
    fn new(lua: &'l Lua) -> Copier<'l> {
        Copier {
            lua,
            path: HashSet::new(),
        }
    }

    fn value(&mut self, value: &LuaValue, depth: usize) -> mlua::Result<Value> {
        Ok(match value {
            LuaValue::Nil => Value::Nil,
            LuaValue::Boolean(b) => Value::Bool(*b),
            LuaValue::Integer(i) => Value::Int(*i),
            LuaValue::Number(n) => Value::Float(*n),
            LuaValue::String(s) => Value::Str(s.as_bytes().to_vec()),
            LuaValue::Table(t) => Value::Table(self.table(t, depth)?),
            LuaValue::Function(f) => {
                crate::handlers::warn_lost_upvalues(self.lua, f)?;
                Value::Function(dump(f)?)
            }
            other => Value::Str(other.to_string()?.into_bytes()),
        })
    }

    fn table(&mut self, table: &mlua::Table, depth: usize) -> mlua::Result<Table> {
        if depth >= MAX_DEPTH {
            return Err(ConvertError::TooDeep.into());
        }
        let id = table.to_pointer() as usize;
        if !self.path.insert(id) {
            return Err(ConvertError::Cycle.into());
        }
        let mut out = Table::default();
        for pair in table.pairs::<LuaValue, LuaValue>() {
            let (k, v) = pair?;
            let entry = match k {
                LuaValue::Integer(i) => (Key::Int(i), self.value(&v, depth + 1)?),
                LuaValue::String(s) => {
                    let bytes = s.as_bytes();
                    match type_hint(&bytes) {
                        Some((name, hint)) => match self.hinted(hint, &v, depth)? {
                            Some(value) => (Key::Str(name.to_vec()), value),
                            None => continue,
                        },
                        None => (Key::Str(bytes.to_vec()), self.value(&v, depth + 1)?),
                    }
                }
                other => (
                    Key::Str(other.to_string()?.into_bytes()),
                    self.value(&v, depth + 1)?,
                ),
            };
            out.push(entry.0, entry.1);
        }
        self.path.remove(&id);
        Ok(out)
    }

    /// The value a type-hinted entry has after a trip through BSON; `None` drops the entry
    /// (a BSON code element is skipped when read back).
    fn hinted(&mut self, hint: u8, value: &LuaValue, depth: usize) -> mlua::Result<Option<Value>> {
        let number = match value {
            LuaValue::Integer(i) => Some(*i as f64),
            LuaValue::Number(n) => Some(*n),
            _ => None,
        };
        Ok(Some(match (hint, number) {
            (b'i', Some(n)) => Value::Int(n as i64 as i32 as i64),
            (b'l', Some(n)) => Value::Int(n as i64),
            (b'b', Some(n)) => Value::Bool(n > 0.0),
            (b'D', Some(n)) => Value::Int(((n * 1000.0) as i64).div_euclid(1000)),
            (b'f' | b'd', Some(n)) => Value::Float(n),
            (b'C', None) if matches!(value, LuaValue::String(_)) => return Ok(None),
            _ => self.value(value, depth + 1)?,
        }))
    }
}

/// Splits `name@x` into `name` and the hint letter when `x` is a known hint.
fn type_hint(key: &[u8]) -> Option<(&[u8], u8)> {
    match key {
        [name @ .., b'@', hint] if b"ilbDfdSCBAO".contains(hint) => Some((name, *hint)),
        _ => None,
    }
}

/// Dumps a Lua function as unstripped bytecode (C functions are refused).
pub fn dump(f: &mlua::Function) -> mlua::Result<Arc<[u8]>> {
    if f.info().what == "C" {
        return Err(ConvertError::CFunction.into());
    }
    Ok(f.dump(false).into())
}

/// The names of a Lua function's upvalues that hold something other than nil, `_ENV` aside:
/// the captured locals that a copy of the function will lose.
pub fn captured_upvalues(lua: &Lua, f: &mlua::Function) -> mlua::Result<Vec<String>> {
    let mut names = Vec::new();
    // SAFETY: the closure only reads upvalues of the function at stack index 1 and pops what it
    // pushes; `exec_raw` checks the stack and restores it afterwards.
    unsafe {
        lua.exec_raw::<()>(f, |state| {
            for i in 1..=255 {
                let name = mlua::ffi::lua_getupvalue(state, 1, i);
                if name.is_null() {
                    break;
                }
                let is_nil = mlua::ffi::lua_type(state, -1) == mlua::ffi::LUA_TNIL;
                mlua::ffi::lua_pop(state, 1);
                let name = CStr::from_ptr(name).to_string_lossy();
                if !is_nil && name != "_ENV" {
                    names.push(name.into_owned());
                }
            }
        })?;
    }
    Ok(names)
}

/// Loads bytecode as a function of this state: `_ENV` is bound to `env`, other upvalues are nil.
pub fn load_function(
    lua: &Lua,
    bytecode: &[u8],
    env: &mlua::Table,
) -> mlua::Result<mlua::Function> {
    let f = lua
        .load(bytecode)
        .set_mode(mlua::chunk::ChunkMode::Binary)
        .into_function()?;
    rebind_upvalues(lua, &f, Some(env))?;
    Ok(f)
}

/// Sets every upvalue of `f` except `_ENV` back to nil, as in a freshly loaded copy.
pub fn clear_upvalues(lua: &Lua, f: &mlua::Function) -> mlua::Result<()> {
    rebind_upvalues(lua, f, None)
}

/// How many upvalues `f` has, `_ENV` included.
pub fn upvalue_count(lua: &Lua, f: &mlua::Function) -> mlua::Result<usize> {
    let mut count = 0;
    // SAFETY: reads the upvalue names of the function at stack index 1, popping each value.
    unsafe {
        lua.exec_raw::<()>(f, |state| {
            while !mlua::ffi::lua_getupvalue(state, 1, count as i32 + 1).is_null() {
                mlua::ffi::lua_pop(state, 1);
                count += 1;
            }
        })?;
    }
    Ok(count)
}

/// Binds the upvalue named `_ENV` to `env` (when given) and sets every other one to nil.
fn rebind_upvalues(lua: &Lua, f: &mlua::Function, env: Option<&mlua::Table>) -> mlua::Result<()> {
    // SAFETY: index 1 is the Lua function and index 2 the environment table or nil; each
    // iteration leaves the stack as it found it.
    unsafe {
        lua.exec_raw::<()>((f, env), |state| {
            for i in 1..=255 {
                let name = mlua::ffi::lua_getupvalue(state, 1, i);
                if name.is_null() {
                    break;
                }
                mlua::ffi::lua_pop(state, 1);
                if CStr::from_ptr(name) == c"_ENV" {
                    if env.is_none() {
                        continue;
                    }
                    mlua::ffi::lua_pushvalue(state, 2);
                } else {
                    mlua::ffi::lua_pushnil(state);
                }
                mlua::ffi::lua_setupvalue(state, 1, i);
            }
        })
    }
}

/// Builds a Lua value from a copied value; functions are loaded with `env` as their globals.
pub fn from_value(lua: &Lua, value: &Value, env: &mlua::Table) -> mlua::Result<LuaValue> {
    Ok(match value {
        Value::Nil => LuaValue::Nil,
        Value::Bool(b) => LuaValue::Boolean(*b),
        Value::Int(i) => LuaValue::Integer(*i),
        Value::Float(f) => LuaValue::Number(*f),
        Value::Str(s) => LuaValue::String(lua.create_string(s)?),
        Value::Table(t) => {
            let table = lua.create_table_with_capacity(0, t.0.len())?;
            for (k, v) in &t.0 {
                let v = from_value(lua, v, env)?;
                match k {
                    Key::Int(i) => table.raw_set(*i, v)?,
                    Key::Str(s) => table.raw_set(lua.create_string(s)?, v)?,
                }
            }
            LuaValue::Table(table)
        }
        Value::Function(code) => LuaValue::Function(load_function(lua, code, env)?),
    })
}

/// Builds the Lua values of an argument list.
pub fn from_args(lua: &Lua, values: &[Value], env: &mlua::Table) -> mlua::Result<mlua::MultiValue> {
    values.iter().map(|v| from_value(lua, v, env)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        Lua::new()
    }

    #[test]
    fn tables_copy_with_converted_keys_and_hints() {
        let lua = lua();
        let v: LuaValue = lua
            .load(r#"return { 1, nil, 3, name = "x", [true] = 1, [1.5] = 2, ["n@i"] = 2^40 + 5, ["f@b"] = 0 }"#)
            .eval()
            .unwrap();
        let Value::Table(t) = to_value(&lua, &v).unwrap() else {
            panic!("not a table")
        };
        assert_eq!(t.get(&Key::Int(1)), Some(&Value::Int(1)));
        assert_eq!(t.get(&Key::Int(2)), None);
        assert_eq!(t.get(&Key::Int(3)), Some(&Value::Int(3)));
        assert_eq!(t.get_str("name"), Some(&Value::str("x")));
        assert_eq!(t.get_str("true"), Some(&Value::Int(1)));
        assert_eq!(t.get_str("1.5"), Some(&Value::Int(2)));
        assert_eq!(t.get_str("n"), Some(&Value::Int(5)));
        assert_eq!(t.get_str("f"), Some(&Value::Bool(false)));
    }

    #[test]
    fn cycles_and_depth_are_refused() {
        let lua = lua();
        let cyclic: LuaValue = lua.load("local t = {} t.me = t return t").eval().unwrap();
        assert!(to_value(&lua, &cyclic)
            .unwrap_err()
            .to_string()
            .contains("cyclic"));
        let deep: LuaValue = lua
            .load("local t = {} for i = 1, 200 do t = { t } end return t")
            .eval()
            .unwrap();
        assert!(to_value(&lua, &deep)
            .unwrap_err()
            .to_string()
            .contains("deeper"));
        let shared: LuaValue = lua.load("local s = {1} return { s, s }").eval().unwrap();
        assert!(
            to_value(&lua, &shared).is_ok(),
            "a table seen twice but not inside itself is no cycle"
        );
    }

    #[test]
    fn c_functions_are_refused_and_userdata_become_text() {
        let lua = lua();
        let print: LuaValue = lua.globals().get("print").unwrap();
        assert!(to_value(&lua, &print)
            .unwrap_err()
            .to_string()
            .contains("non-serialable"));
        let co: LuaValue = lua
            .load("return coroutine.create(function () end)")
            .eval()
            .unwrap();
        let Value::Str(s) = to_value(&lua, &co).unwrap() else {
            panic!("not text")
        };
        assert!(s.starts_with(b"thread: "));
    }

    #[test]
    fn functions_travel_with_env_bound_and_captured_locals_nil() {
        let from = lua();
        let f: mlua::Function = from
            .load("local factor = 2 return function (x) return x, factor, G end")
            .eval()
            .unwrap();
        assert_eq!(
            captured_upvalues(&from, &f).unwrap(),
            vec!["factor".to_string()]
        );
        let code = to_value(&from, &LuaValue::Function(f)).unwrap();
        let to = lua();
        let env = to.create_table().unwrap();
        env.set("G", "global").unwrap();
        let LuaValue::Function(g) = from_value(&to, &code, &env).unwrap() else {
            panic!()
        };
        let (x, factor, global): (i64, Option<i64>, String) = g.call(21).unwrap();
        assert_eq!((x, factor, global.as_str()), (21, None, "global"));
    }

    #[test]
    fn values_round_trip_between_states() {
        let from = lua();
        let v: LuaValue = from
            .load(
                r#"return { list = { 1, 2.5, "three", false }, nested = { deep = { x = "y" } } }"#,
            )
            .eval()
            .unwrap();
        let copied = to_value(&from, &v).unwrap();
        let to = lua();
        let back = from_value(&to, &copied, &to.globals()).unwrap();
        to.globals().set("t", back).unwrap();
        let ok: bool = to
            .load(r#"return t.list[2] == 2.5 and math.type(t.list[1]) == "integer" and t.nested.deep.x == "y""#)
            .eval()
            .unwrap();
        assert!(ok);
    }
}
