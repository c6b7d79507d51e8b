//! Copying values out of one Lua state and into another (`sandbox.md` §11).
//!
//! Out of Lua: tables are copied deeply with their keys reduced to integers and strings, type
//! hints (`key@i`, `key@b`, …) applied, cycles and over-deep nesting refused, functions dumped
//! as unstripped bytecode, C functions refused, other userdata and coroutines turned into their
//! `tostring` text (refused instead by [`to_transferable`], for copies that stay in the
//! process). Into Lua: every materialisation builds fresh tables and loads functions anew, with
//! the upvalue named `_ENV` bound to the destination's environment and every other upvalue nil
//! (decision 8).

use crate::recent_strings::{self, RecentStrings};
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
    #[error("Includes non-serialable data: a {0} cannot be stored or copied to another thread")]
    Handle(&'static str),
}

impl From<ConvertError> for mlua::Error {
    fn from(e: ConvertError) -> mlua::Error {
        mlua::Error::runtime(e.to_string())
    }
}

/// Copies a Lua value out of its state.
pub fn to_value(lua: &Lua, value: &LuaValue) -> mlua::Result<Value> {
    Copier::new(lua, false).top(value)
}

/// Copies a value for another Lua state of this process (a job's arguments, the process
/// store): as [`to_value`], but coroutines and userdata are refused (decision Q7) instead of
/// becoming text that means nothing there.
pub fn to_transferable(lua: &Lua, value: &LuaValue) -> mlua::Result<Value> {
    Copier::new(lua, true).top(value)
}

/// The one-pass copy of a table of plain data (integer and string keys without type hints;
/// nil, booleans, numbers, strings and such tables as values), read straight from the Lua
/// stack in one call; `None` when the table holds anything else (the [`Copier`] handles it,
/// including the errors of cycles and over-deep nesting).
fn raw_copy(lua: &Lua, table: &mlua::Table) -> mlua::Result<Option<Table>> {
    let mut out = None;
    // SAFETY: the table is at stack index 1. `RawReader` only calls API functions that raise
    // no Lua error on the values it reads (`lua_next` on keys it got from `lua_next`,
    // `lua_tolstring` on strings only, `lua_checkstack`, which reports failure), so no error
    // unwinds through the Rust frames that own the copy; it leaves the stack as it found it.
    unsafe {
        lua.exec_raw::<()>(table, |state| {
            let mut reader = RawReader {
                state,
                path: Vec::new(),
            };
            out = reader.table(1, 0);
            mlua::ffi::lua_settop(state, 1);
        })?;
    }
    Ok(out)
}

/// The values at stack indices `from` to the top of `state`, when all are plain data (nil,
/// booleans, numbers, strings, tables of plain data as [`raw_copy`] reads them): the same
/// copies [`to_args`] makes of them.
///
/// # Safety
/// `state` must be a valid Lua state with at least `from - 1` values on its stack. No Lua
/// error is raised (see [`raw_copy`]), and the stack is left as it was.
pub(crate) unsafe fn read_plain_args(
    state: *mut mlua::ffi::lua_State,
    from: i32,
) -> Option<stage_core::Args> {
    let mut reader = RawReader {
        state,
        path: Vec::new(),
    };
    (from..=mlua::ffi::lua_gettop(state))
        .map(|idx| reader.value(idx, 0))
        .collect()
}

/// The bytes of the string at stack index `idx`, when it is a string.
///
/// # Safety
/// `state` must be a valid Lua state and `idx` a valid index; the bytes live as long as the
/// string stays on the stack.
pub(crate) unsafe fn read_string<'s>(
    state: *mut mlua::ffi::lua_State,
    idx: i32,
) -> Option<&'s [u8]> {
    (mlua::ffi::lua_type(state, idx) == mlua::ffi::LUA_TSTRING)
        .then(|| RawReader::bytes(state, idx))
}

/// Reads plain-data tables from the Lua stack (see [`raw_copy`]).
struct RawReader {
    state: *mut mlua::ffi::lua_State,
    /// Tables on the path from the root to the table being read.
    path: Vec<*const std::ffi::c_void>,
}

impl RawReader {
    /// The table at stack index `idx` (absolute), or `None` when it is no plain data.
    unsafe fn table(&mut self, idx: i32, depth: usize) -> Option<Table> {
        use mlua::ffi;
        let state = self.state;
        let id = ffi::lua_topointer(state, idx);
        if depth >= MAX_DEPTH || self.path.contains(&id) || ffi::lua_checkstack(state, 3) == 0 {
            return None;
        }
        self.path.push(id);
        let mut out = Vec::new();
        ffi::lua_pushnil(state);
        while ffi::lua_next(state, idx) != 0 {
            let key = match ffi::lua_type(state, -2) {
                ffi::LUA_TNUMBER if ffi::lua_isinteger(state, -2) != 0 => {
                    Key::Int(ffi::lua_tointegerx(state, -2, std::ptr::null_mut()))
                }
                ffi::LUA_TSTRING => {
                    let bytes = Self::bytes(state, -2);
                    if type_hint(bytes).is_some() {
                        return None;
                    }
                    Key::str(bytes)
                }
                _ => return None,
            };
            let value = self.value(ffi::lua_gettop(state), depth)?;
            out.push((key, value));
            ffi::lua_pop(state, 1);
        }
        self.path.pop();
        Some(Table(out))
    }

    unsafe fn value(&mut self, idx: i32, depth: usize) -> Option<Value> {
        use mlua::ffi;
        let state = self.state;
        Some(match ffi::lua_type(state, idx) {
            ffi::LUA_TNIL => Value::Nil,
            ffi::LUA_TBOOLEAN => Value::Bool(ffi::lua_toboolean(state, idx) != 0),
            ffi::LUA_TNUMBER if ffi::lua_isinteger(state, idx) != 0 => {
                Value::Int(ffi::lua_tointegerx(state, idx, std::ptr::null_mut()))
            }
            ffi::LUA_TNUMBER => Value::Float(ffi::lua_tonumberx(state, idx, std::ptr::null_mut())),
            ffi::LUA_TSTRING => Value::str(Self::bytes(state, idx)),
            ffi::LUA_TTABLE => Value::Table(self.table(idx, depth + 1)?),
            _ => return None,
        })
    }

    /// The bytes of the string at `idx` (which must be a string: no conversion, no error).
    unsafe fn bytes<'s>(state: *mut mlua::ffi::lua_State, idx: i32) -> &'s [u8] {
        let mut len = 0usize;
        let ptr = mlua::ffi::lua_tolstring(state, idx, &mut len);
        if ptr.is_null() {
            return &[];
        }
        std::slice::from_raw_parts(ptr.cast::<u8>(), len)
    }
}

/// Copies every value of a list (arguments of a call or a message).
pub fn to_args<'a>(
    lua: &Lua,
    values: impl IntoIterator<Item = &'a LuaValue>,
) -> mlua::Result<stage_core::Args> {
    copy_list(lua, values, false)
}

/// Copies every value of a list with the refusals of [`to_transferable`].
pub fn to_transferable_args<'a>(
    lua: &Lua,
    values: impl IntoIterator<Item = &'a LuaValue>,
) -> mlua::Result<stage_core::Args> {
    copy_list(lua, values, true)
}

fn copy_list<'a>(
    lua: &Lua,
    values: impl IntoIterator<Item = &'a LuaValue>,
    transferable: bool,
) -> mlua::Result<stage_core::Args> {
    let mut copier = Copier::new(lua, transferable);
    values.into_iter().map(|v| copier.top(v)).collect()
}

struct Copier<'l> {
    lua: &'l Lua,
    /// Tables on the path from the root to the table being copied.
    path: HashSet<usize>,
    /// Refuse coroutines and userdata (see [`to_transferable`]).
    refuse_handles: bool,
}

impl<'l> Copier<'l> {
    fn new(lua: &'l Lua, refuse_handles: bool) -> Copier<'l> {
        Copier {
            lua,
            path: HashSet::new(),
            refuse_handles,
        }
    }

    /// The text a coroutine or userdata becomes, or the refusal.
    fn handle_text(&self, value: &LuaValue) -> mlua::Result<String> {
        if self.refuse_handles {
            return Err(ConvertError::Handle(value.type_name()).into());
        }
        value.to_string()
    }

    /// Copies a value given to [`to_value`] / [`to_args`]: a table of plain data in one pass
    /// ([`raw_copy`]), anything else value by value.
    fn top(&mut self, value: &LuaValue) -> mlua::Result<Value> {
        if let LuaValue::Table(t) = value {
            if let Some(copied) = raw_copy(self.lua, t)? {
                return Ok(Value::Table(copied));
            }
        }
        self.value(value, 0)
    }

    fn value(&mut self, value: &LuaValue, depth: usize) -> mlua::Result<Value> {
        Ok(match value {
            LuaValue::Nil => Value::Nil,
            LuaValue::Boolean(b) => Value::Bool(*b),
            LuaValue::Integer(i) => Value::Int(*i),
            LuaValue::Number(n) => Value::Float(*n),
            LuaValue::String(s) => Value::str(s.as_bytes()),
            LuaValue::Table(t) => Value::Table(self.table(t, depth)?),
            LuaValue::Function(f) => {
                crate::handlers::warn_lost_upvalues(self.lua, f)?;
                Value::Function(dump(f)?)
            }
            other => Value::str(self.handle_text(other)?),
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
                            Some(value) => (Key::str(name), value),
                            None => continue,
                        },
                        None => (Key::str(&bytes), self.value(&v, depth + 1)?),
                    }
                }
                other @ (LuaValue::Thread(_)
                | LuaValue::UserData(_)
                | LuaValue::LightUserData(_)) => (
                    Key::str(self.handle_text(&other)?),
                    self.value(&v, depth + 1)?,
                ),
                other => (
                    Key::str(other.to_string()?.as_bytes()),
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
        Value::Table(t) => match push_plain_table(lua, t)? {
            Some(table) => table,
            None => LuaValue::Table(table_with_functions(lua, t, env)?),
        },
        Value::Nil => LuaValue::Nil,
        Value::Bool(b) => LuaValue::Boolean(*b),
        Value::Int(i) => LuaValue::Integer(*i),
        Value::Float(f) => LuaValue::Number(*f),
        Value::Str(s) => LuaValue::String(lua.create_string(s)?),
        Value::Function(code) => LuaValue::Function(load_function(lua, code, env)?),
    })
}

/// Builds a table that holds functions somewhere: they must be loaded with `env`, so this
/// level is built field by field.
fn table_with_functions(lua: &Lua, t: &Table, env: &mlua::Table) -> mlua::Result<mlua::Table> {
    let table = lua.create_table_with_capacity(0, t.0.len())?;
    for (k, v) in &t.0 {
        let v = from_value(lua, v, env)?;
        match k {
            Key::Int(i) => table.raw_set(*i, v)?,
            Key::Str(s) => table.raw_set(lua.create_string(s)?, v)?,
        }
    }
    Ok(table)
}

/// Builds `t` in one call into Lua; `None` when a function turns up in it (see
/// [`table_with_functions`]), which is rare, so the table is not searched beforehand.
fn push_plain_table(lua: &Lua, t: &Table) -> mlua::Result<Option<LuaValue>> {
    let mut plain = true;
    // A finalizer run by the collector while the table is built may build a table itself: that
    // one does without the recent strings.
    let mut recent = lua.try_app_data_mut::<RecentStrings>().ok().flatten();
    // SAFETY: `TableBuilder` only pushes values, sets fields of tables it created and reads and
    // sets entries of the recent strings' table; a Lua error there (out of memory, stack overflow)
    // unwinds only frames that own nothing (the builder holds no heap data), and is returned by
    // `exec_raw` as an error. It leaves exactly one value on the stack.
    let built = unsafe {
        lua.exec_raw::<LuaValue>((), |state| {
            plain = TableBuilder::new(state, recent.as_deref_mut()).build(t);
        })?
    };
    Ok(plain.then_some(built))
}

/// How many distinct field names a [`TableBuilder`] caches.
const CACHED_NAMES: usize = 16;

/// Builds Lua tables from [`Table`]s of plain values. Field names repeat across the rows of
/// a reply (`k`, `i`, `d` in every entry of an index range), so each distinct short name is
/// interned once per build and kept in stack slots below the tables being built, instead of
/// being hashed and looked up in the state's string table for every row. Short string values
/// come from the state's [`RecentStrings`].
struct TableBuilder<'t, 'r> {
    state: *mut mlua::ffi::lua_State,
    /// Stack index of the first value the builder pushed: where the built table ends up.
    base: i32,
    /// Stack index of the slot of names[0]; names[i] is at names_slot + i, for i < cached.
    names_slot: i32,
    names: [&'t [u8]; CACHED_NAMES],
    cached: usize,
    /// The recent strings and the stack index of their table.
    recent: Option<(&'r mut RecentStrings, i32)>,
}

impl<'t, 'r> TableBuilder<'t, 'r> {
    /// How long a cached name may be.
    const NAME_BYTES: usize = 24;

    unsafe fn new(
        state: *mut mlua::ffi::lua_State,
        recent: Option<&'r mut RecentStrings>,
    ) -> TableBuilder<'t, 'r> {
        use mlua::ffi;
        ffi::luaL_checkstack(state, CACHED_NAMES as i32 + 2, std::ptr::null());
        let base = ffi::lua_gettop(state) + 1;
        let recent = recent.map(|r| {
            r.push_table(state);
            (r, ffi::lua_gettop(state))
        });
        let names_slot = ffi::lua_gettop(state) + 1;
        ffi::lua_settop(state, names_slot + CACHED_NAMES as i32 - 1);
        TableBuilder {
            state,
            base,
            names_slot,
            names: [&[]; CACHED_NAMES],
            cached: 0,
            recent,
        }
    }

    /// Leaves the table built from `t` in place of the values the builder pushed; on a
    /// function, nil and `false`.
    unsafe fn build(mut self, t: &'t Table) -> bool {
        use mlua::ffi;
        let plain = self.push_table(t);
        if !plain {
            ffi::lua_settop(self.state, self.names_slot + CACHED_NAMES as i32 - 1);
            ffi::lua_pushnil(self.state);
        }
        ffi::lua_replace(self.state, self.base);
        ffi::lua_settop(self.state, self.base);
        plain
    }

    /// Pushes a new table built from `t`; `false` (with the stack left as it is) on a function.
    unsafe fn push_table(&mut self, t: &'t Table) -> bool {
        use mlua::ffi;
        let state = self.state;
        ffi::luaL_checkstack(state, 4, std::ptr::null());
        let len = t.0.len();
        let seq =
            t.0.iter()
                .filter(|(k, _)| matches!(k, Key::Int(i) if (1..=len as i64).contains(i)))
                .count();
        let narr = i32::try_from(seq).unwrap_or(i32::MAX);
        let nrec = i32::try_from(len - seq).unwrap_or(i32::MAX);
        ffi::lua_createtable(state, narr, nrec);
        for (k, v) in &t.0 {
            match k {
                Key::Int(i) => {
                    if !self.push(v) {
                        return false;
                    }
                    ffi::lua_rawseti(state, -2, *i);
                }
                Key::Str(s) => {
                    self.push_name(s);
                    if !self.push(v) {
                        return false;
                    }
                    ffi::lua_rawset(state, -3);
                }
            }
        }
        true
    }

    unsafe fn push(&mut self, v: &'t Value) -> bool {
        use mlua::ffi;
        let state = self.state;
        match v {
            Value::Function(_) => return false,
            Value::Nil => ffi::lua_pushnil(state),
            Value::Bool(b) => ffi::lua_pushboolean(state, i32::from(*b)),
            Value::Int(i) => ffi::lua_pushinteger(state, *i),
            Value::Float(f) => ffi::lua_pushnumber(state, *f),
            Value::Str(s) => match &mut self.recent {
                Some((recent, table)) if s.len() <= recent_strings::MAX_LEN => {
                    recent.push(state, *table, s)
                }
                _ => {
                    ffi::lua_pushlstring(state, s.as_ptr().cast(), s.len());
                }
            },
            Value::Table(t) => return self.push_table(t),
        }
        true
    }

    /// Pushes a field name, from the cache when it was seen before.
    unsafe fn push_name(&mut self, name: &'t [u8]) {
        use mlua::ffi;
        let state = self.state;
        if let Some(at) = self.names[..self.cached]
            .iter()
            .position(|n| same_short(n, name))
        {
            ffi::lua_pushvalue(state, self.names_slot + at as i32);
            return;
        }
        ffi::lua_pushlstring(state, name.as_ptr().cast(), name.len());
        if name.len() <= Self::NAME_BYTES && self.cached < CACHED_NAMES {
            self.names[self.cached] = name;
            ffi::lua_copy(state, -1, self.names_slot + self.cached as i32);
            self.cached += 1;
        }
    }
}

/// Whether two field names are equal. A byte loop: names are a few bytes long, and `memcmp` (what
/// slice equality calls) was the largest single symbol in a profile of a stage receiving index
/// replies. The last bytes are compared first: keys that are IDs share their lengths and
/// prefixes, and comparing each against every cached name from the front cost a `get` reply
/// about 900 instructions per ID.
fn same_short(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.last() == b.last() && a.iter().zip(b).all(|(x, y)| x == y)
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
    fn transferable_copies_refuse_coroutines_and_userdata_anywhere() {
        let lua = lua();
        let (value, key, plain): (LuaValue, LuaValue, LuaValue) = lua
            .load(
                r#"local co = coroutine.create(print)
                return { deep = { co } }, { [co] = 1 }, { 1, { x = "y" } }"#,
            )
            .eval()
            .unwrap();
        for refused in [&value, &key] {
            assert!(to_transferable(&lua, refused)
                .unwrap_err()
                .to_string()
                .ends_with("a thread cannot be stored or copied to another thread"));
            assert!(to_value(&lua, refused).is_ok(), "messages keep the text");
        }
        assert_eq!(
            to_transferable(&lua, &plain).unwrap(),
            to_value(&lua, &plain).unwrap()
        );
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
    fn the_one_pass_copy_agrees_with_the_general_one() {
        let lua = lua();
        let v: LuaValue = lua
            .load(r#"return { 1, 2.5, "x\0y", false, k = { [7] = { deep = true } }, [-3] = "n" }"#)
            .eval()
            .unwrap();
        let LuaValue::Table(t) = &v else { panic!() };
        let raw = raw_copy(&lua, t).unwrap().expect("plain data");
        assert_eq!(
            Value::Table(raw),
            Copier::new(&lua, false).value(&v, 0).unwrap()
        );
        for other in [
            "return { f = print }",
            "return { [true] = 1 }",
            r#"return { ["n@i"] = 1 }"#,
        ] {
            let LuaValue::Table(t) = lua.load(other).eval().unwrap() else {
                panic!()
            };
            assert_eq!(raw_copy(&lua, &t).unwrap(), None, "{other}");
        }
    }

    #[test]
    fn tables_round_trip_with_repeated_names_and_functions_deep_inside() {
        let from = lua();
        let source = r#"return {
            rows = { { k = "a", i = 1, d = 1 }, { k = "b", i = 2, d = 2 }, { k = "c", i = 3 } },
            later = { x = 1, nested = { y = 2, f = function () return Y end } },
            [3] = "three" }"#;
        let v: LuaValue = from.load(source).eval().unwrap();
        let copied = to_value(&from, &v).unwrap();
        let to = lua();
        let env = to.create_table().unwrap();
        env.set("Y", "from env").unwrap();
        let back = from_value(&to, &copied, &env).unwrap();
        let check: mlua::Function = to
            .load(
                r#"local t = ...
                assert(t.rows[1].k == "a" and t.rows[2].i == 2 and t.rows[3].d == nil)
                assert(t.rows[3].k == "c" and t[3] == "three" and t.later.x == 1)
                assert(t.later.nested.y == 2 and t.later.nested.f() == "from env")
                local n = 0 for _ in pairs(t.rows[1]) do n = n + 1 end
                return n"#,
            )
            .into_function()
            .unwrap();
        assert_eq!(check.call::<i64>(back).unwrap(), 3);
    }

    #[test]
    fn keys_that_share_their_length_and_ends_keep_their_own_values() {
        // IDs alike but for one middle digit: the first 16 fill the builder's name cache, and
        // every later one has the length and last byte of a cached one.
        let id = |n: usize| format!("user{:06}{}1", n % 40, n / 40);
        let t = Table(
            (0..80)
                .map(|n| (Key::str(id(n)), Value::Int(n as i64)))
                .collect(),
        );
        let lua = lua();
        let LuaValue::Table(back) = from_value(&lua, &Value::Table(t), &lua.globals()).unwrap()
        else {
            panic!()
        };
        for n in 0..80 {
            assert_eq!(back.raw_get::<i64>(id(n)).unwrap(), n as i64, "{}", id(n));
        }
        assert_eq!(back.pairs::<String, i64>().count(), 80);
    }

    #[test]
    fn building_tables_fails_cleanly_at_the_memory_cap() {
        let lua = lua();
        let row = |n: i64| {
            (
                Key::Int(n),
                Value::Table(Table(vec![
                    (Key::str(b"k"), Value::str(format!("id{n}"))),
                    (Key::str(b"d"), Value::Int(n)),
                ])),
            )
        };
        let big = Value::Table(Table((1..=20_000).map(row).collect()));
        lua.set_memory_limit(lua.used_memory() + 256 * 1024)
            .unwrap();
        assert!(from_value(&lua, &big, &lua.globals()).is_err());
        lua.set_memory_limit(0).unwrap();
        let LuaValue::Table(t) = from_value(&lua, &big, &lua.globals()).unwrap() else {
            panic!()
        };
        assert_eq!(t.raw_len(), 20_000);
        let last: mlua::Table = t.raw_get(20_000).unwrap();
        assert_eq!(last.raw_get::<String>("k").unwrap(), "id20000");
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
