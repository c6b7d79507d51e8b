//! `bundle.proxy(t, spec)`: a userdata over table (or userdata) `t` that runs callbacks before
//! fields are assigned (`runtime.md` §9.11).
//!
//! Design: the Rust side of a proxy holds only its index id and the set of entries whose
//! callbacks are running; the Lua values (`t`, the index function, the callback entries) are
//! kept in the userdata's user value, so a callback that captures its own proxy forms a cycle
//! the Lua collector can still free.
//!
//! Keys: a table/userdata key goes through the proxy's index function `f(key, id, t)` (nil =
//! ignore the access); whatever is then neither string nor number goes through
//! `stage.index(key, id, t)` when the global `stage` holds a function `index` at that moment
//! (`sandbox.md` §10: string/number = the key, nil = skip, other = its `tostring`), otherwise
//! through `tostring`. Reading a field whose value is a table returns it wrapped in a proxy with
//! the same index id and no callbacks.
//!
//! Threshold lists compare numbers as Lua does (integers exactly, otherwise as floats); an old
//! value that is not a number counts as nil, so every threshold `≤ new` is crossed.
//! `pairs(proxy)` iterates over a snapshot of `t`'s entries taken when `pairs` is called.

use super::{bad_argument, error};
use crate::errors::type_name;
use mlua::{
    AnyUserData, Function, Lua, MetaMethod, MultiValue, ObjectLike, Table, UserData,
    UserDataMethods, Value,
};
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::rc::Rc;

/// The index id of a proxy whose spec names none.
const DEFAULT_ID: &str = "proxy";

/// The Rust half of a proxy (see the module docs for the Lua half).
struct Proxy {
    /// The index id: passed to the index function and to `stage.index` as `where`.
    id: String,
    /// Entries whose callback is running: their assignments are stored without a callback.
    running: RefCell<HashSet<Vec<u8>>>,
}

/// The Lua values of a proxy, read from its user value.
struct Parts {
    target: Value,
    index_fn: Option<Function>,
    entries: Table,
}

const TARGET: &str = "t";
const INDEX_FN: &str = "f";
const ENTRIES: &str = "e";

/// Creates the Lua function `bundle.proxy`.
pub fn create(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|lua, (target, spec): (Value, Value)| {
        if !matches!(target, Value::Table(_) | Value::UserData(_)) {
            return Err(bad_argument("proxy", 1, "table or userdata", &target));
        }
        let mut settings = Settings {
            id: None,
            index_fn: None,
            entries: lua.create_table()?,
        };
        settings.read_spec(lua, spec)?;
        let id = settings.id.unwrap_or_else(|| DEFAULT_ID.to_string());
        new_proxy(lua, target, id, settings.index_fn, settings.entries)
    })
}

fn new_proxy(
    lua: &Lua,
    target: Value,
    id: String,
    index_fn: Option<Function>,
    entries: Table,
) -> mlua::Result<AnyUserData> {
    let ud = lua.create_userdata(Proxy {
        id,
        running: RefCell::default(),
    })?;
    let parts = lua.create_table()?;
    parts.raw_set(TARGET, target)?;
    parts.raw_set(INDEX_FN, index_fn)?;
    parts.raw_set(ENTRIES, entries)?;
    ud.set_user_value(parts)?;
    Ok(ud)
}

fn parts(ud: &AnyUserData) -> mlua::Result<Parts> {
    let parts: Table = ud.user_value()?;
    Ok(Parts {
        target: parts.raw_get(TARGET)?,
        index_fn: parts.raw_get(INDEX_FN)?,
        entries: parts.raw_get(ENTRIES)?,
    })
}

fn id_of(ud: &AnyUserData) -> mlua::Result<String> {
    Ok(ud.borrow::<Proxy>()?.id.clone())
}

/// What a spec declares.
struct Settings {
    id: Option<String>,
    index_fn: Option<Function>,
    /// Entry name → callback function or threshold list.
    entries: Table,
}

impl Settings {
    fn read_spec(&mut self, lua: &Lua, spec: Value) -> mlua::Result<()> {
        match spec {
            Value::Nil => Ok(()),
            Value::Function(f) => self.entries.raw_set("", f),
            Value::String(s) => {
                self.id = Some(s.to_str()?.to_string());
                Ok(())
            }
            Value::Table(spec) => {
                for pair in spec.pairs::<Value, Value>() {
                    let (k, v) = pair?;
                    match k {
                        Value::Integer(_) | Value::Number(_) => self.setting(v)?,
                        Value::String(name) if name.as_bytes().is_empty() => match v {
                            Value::Table(settings) => self.read_settings(&settings)?,
                            Value::Function(f) => self.entries.raw_set("", f)?,
                            other => self.setting(other)?,
                        },
                        Value::String(name) => {
                            let entry = match v {
                                Value::Function(f) => Value::Function(f),
                                Value::Table(list) => Value::Table(threshold_list(lua, &name.to_str()?, &list)?),
                                other => {
                                    return Err(error(
                                        "proxy",
                                        format!(
                                            "spec entry '{}' must be a function or a threshold list, got {}",
                                            name.to_string_lossy(),
                                            type_name(&other)
                                        ),
                                    ))
                                }
                            };
                            self.entries.raw_set(name, entry)?;
                        }
                        other => {
                            return Err(error(
                                "proxy",
                                format!(
                                    "spec keys must be strings or integers, got {}",
                                    type_name(&other)
                                ),
                            ))
                        }
                    }
                }
                Ok(())
            }
            other => Err(bad_argument(
                "proxy",
                2,
                "table, function or string",
                &other,
            )),
        }
    }

    /// A value at an integer key of the spec or of its settings: a string is the index id, a
    /// function the index function; anything else is refused.
    fn setting(&mut self, v: Value) -> mlua::Result<()> {
        match v {
            Value::String(s) => self.id = Some(s.to_str()?.to_string()),
            Value::Function(f) => {
                self.index_fn.get_or_insert(f);
            }
            other => {
                return Err(error(
                    "proxy",
                    format!(
                        "a spec setting must be an index id or an index function, got {}",
                        type_name(&other)
                    ),
                ))
            }
        }
        Ok(())
    }

    /// The settings table `[""] = { "id", indexfn, ["*"] = f, name = f }`.
    fn read_settings(&mut self, settings: &Table) -> mlua::Result<()> {
        for pair in settings.pairs::<Value, Value>() {
            match pair? {
                (Value::Integer(_) | Value::Number(_), v) => self.setting(v)?,
                (Value::String(name), Value::Function(f)) => self.entries.raw_set(name, f)?,
                (k, v) => {
                    return Err(error(
                        "proxy",
                        format!(
                            "settings entry {} must name a callback function, got {}",
                            k.to_string()?,
                            type_name(&v)
                        ),
                    ))
                }
            }
        }
        Ok(())
    }
}

/// A private copy of a threshold list `{ v1, v2, f1, w1, f2 }`.
fn threshold_list(lua: &Lua, name: &str, list: &Table) -> mlua::Result<Table> {
    let copy = lua.create_table()?;
    for v in list.sequence_values::<Value>() {
        match v? {
            v @ (Value::Integer(_) | Value::Number(_) | Value::String(_) | Value::Boolean(_) | Value::Function(_)) => {
                copy.raw_push(v)?
            }
            other => {
                return Err(error(
                    "proxy",
                    format!(
                        "threshold list '{name}' holds numbers, strings, booleans and functions, not {}",
                        type_name(&other)
                    ),
                ))
            }
        }
    }
    Ok(copy)
}

impl UserData for Proxy {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_function(MetaMethod::Index, |lua, (ud, key): (AnyUserData, Value)| {
            let parts = parts(&ud)?;
            let id = id_of(&ud)?;
            let Some(key) = convert_key(lua, &parts, &id, key)? else {
                return Ok(Value::Nil);
            };
            match get(&parts.target, key)? {
                Value::Table(t) => {
                    let wrapped = new_proxy(lua, Value::Table(t), id, None, lua.create_table()?)?;
                    Ok(Value::UserData(wrapped))
                }
                other => Ok(other),
            }
        });
        methods.add_meta_function(
            MetaMethod::NewIndex,
            |lua, (ud, key, value): (AnyUserData, Value, Value)| assign(lua, &ud, key, value),
        );
        methods.add_meta_function(MetaMethod::Len, |_, ud: AnyUserData| {
            match parts(&ud)?.target {
                Value::Table(t) => Ok(Value::Integer(t.len()?)),
                other => call_meta(&other, "__len", MultiValue::from_iter([other.clone()]))
                    .map(|r| r.into_iter().next().unwrap_or(Value::Nil)),
            }
        });
        methods.add_meta_function(MetaMethod::Pairs, |lua, ud: AnyUserData| {
            match parts(&ud)?.target {
                Value::Table(t) => {
                    let snapshot: Vec<(Value, Value)> =
                        t.pairs::<Value, Value>().collect::<mlua::Result<_>>()?;
                    let items = Rc::new(RefCell::new(snapshot.into_iter()));
                    let next = lua.create_function(move |_, _: MultiValue| {
                        Ok(items
                            .borrow_mut()
                            .next()
                            .map_or((Value::Nil, Value::Nil), |(k, v)| (k, v)))
                    })?;
                    Ok(MultiValue::from_iter([
                        Value::Function(next),
                        Value::Nil,
                        Value::Nil,
                    ]))
                }
                other => call_meta(&other, "__pairs", MultiValue::from_iter([other.clone()])),
            }
        });
        methods.add_meta_function(MetaMethod::ToString, |_, ud: AnyUserData| {
            let id = id_of(&ud)?;
            let shown = id.split(':').next().unwrap_or_default().to_string();
            Ok(format!("{shown}:[{}]", parts(&ud)?.target.to_string()?))
        });
        methods.add_meta_function(MetaMethod::Call, |_, (ud, arg): (AnyUserData, Value)| {
            let target = parts(&ud)?.target;
            match arg {
                Value::Nil => {}
                Value::Function(f) => f.call::<()>(ud)?,
                other => return Err(bad_argument("proxy", 1, "function or nothing", &other)),
            }
            Ok(target)
        });
    }
}

/// Calls metamethod `name` of a userdata target.
fn call_meta(target: &Value, name: &str, args: MultiValue) -> mlua::Result<MultiValue> {
    let method = match target {
        Value::UserData(ud) => ud.metatable().and_then(|m| m.get::<Function>(name)).ok(),
        _ => None,
    };
    match method {
        Some(f) => f.call(args),
        None => Err(error(
            "proxy",
            format!("the proxied {} has no {name}", type_name(target)),
        )),
    }
}

fn get(target: &Value, key: Value) -> mlua::Result<Value> {
    match target {
        Value::Table(t) => t.get(key),
        Value::UserData(ud) => ud.get(key),
        other => Err(error(
            "proxy",
            format!("cannot index a {}", type_name(other)),
        )),
    }
}

fn set(target: &Value, key: Value, value: Value) -> mlua::Result<()> {
    match target {
        Value::Table(t) => t.set(key, value),
        Value::UserData(ud) => ud.set(key, value),
        other => Err(error(
            "proxy",
            format!("cannot index a {}", type_name(other)),
        )),
    }
}

/// The key an access uses after conversion; `None` skips the access.
fn convert_key(lua: &Lua, parts: &Parts, id: &str, key: Value) -> mlua::Result<Option<Value>> {
    let key = match (&key, &parts.index_fn) {
        (Value::Table(_) | Value::UserData(_), Some(f)) => {
            match f.call::<Value>((key, id, parts.target.clone()))? {
                Value::Nil => return Ok(None),
                converted => converted,
            }
        }
        _ => key,
    };
    match key {
        Value::Nil => Ok(None),
        Value::String(_) | Value::Integer(_) | Value::Number(_) => Ok(Some(key)),
        other => stage_index(lua, other, id, &parts.target),
    }
}

/// `stage.index(key, where, t)` when the current state defines it, else `tostring(key)`.
fn stage_index(lua: &Lua, key: Value, id: &str, target: &Value) -> mlua::Result<Option<Value>> {
    let hook = match lua.globals().get::<Value>("stage")? {
        Value::Table(stage) => stage.get::<Option<Function>>("index").ok().flatten(),
        _ => None,
    };
    let Some(hook) = hook else {
        return Ok(Some(Value::String(lua.create_string(key.to_string()?)?)));
    };
    Ok(match hook.call::<Value>((key, id, target.clone()))? {
        Value::Nil => None,
        k @ (Value::String(_) | Value::Integer(_) | Value::Number(_)) => Some(k),
        other => Some(Value::String(lua.create_string(other.to_string()?)?)),
    })
}

/// Removes an entry from the running set when its callback ends, however it ends.
struct Running<'a> {
    ud: &'a AnyUserData,
    entry: Vec<u8>,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(proxy) = self.ud.borrow::<Proxy>() {
            proxy.running.borrow_mut().remove(&self.entry);
        }
    }
}

/// `proxy[key] = value`: convert the key, run the selected entry, store unless vetoed.
fn assign(lua: &Lua, ud: &AnyUserData, key: Value, value: Value) -> mlua::Result<()> {
    let parts = parts(ud)?;
    let id = id_of(ud)?;
    let Some(key) = convert_key(lua, &parts, &id, key)? else {
        return Ok(());
    };
    let has = |name: &[u8]| -> mlua::Result<bool> {
        Ok(!parts
            .entries
            .raw_get::<Value>(lua.create_string(name)?)?
            .is_nil())
    };
    let selected: Option<Vec<u8>> = match &key {
        Value::String(s) if has(&s.as_bytes())? => Some(s.as_bytes().to_vec()),
        Value::String(_) if has(b"*")? => Some(b"*".to_vec()),
        Value::Integer(_) | Value::Number(_) if has(b"#")? => Some(b"#".to_vec()),
        _ if has(b"")? => Some(Vec::new()),
        _ => None,
    };
    if let Some(entry) = selected {
        let fresh = ud
            .borrow::<Proxy>()?
            .running
            .borrow_mut()
            .insert(entry.clone());
        if fresh {
            let callback: Value = parts.entries.raw_get(lua.create_string(&entry)?)?;
            let _running = Running { ud, entry };
            let old = get(&parts.target, key.clone())?;
            if vetoed(lua, ud, &callback, old, &key, &value)? {
                return Ok(());
            }
        }
    }
    set(&parts.target, key, value)
}

/// Runs an entry; true when a callback returned `false`.
fn vetoed(
    lua: &Lua,
    ud: &AnyUserData,
    entry: &Value,
    old: Value,
    key: &Value,
    new: &Value,
) -> mlua::Result<bool> {
    let is_false =
        |results: MultiValue| matches!(results.into_iter().next(), Some(Value::Boolean(false)));
    match entry {
        Value::Function(f) => Ok(is_false(f.call((
            ud.clone(),
            old,
            key.clone(),
            new.clone(),
        ))?)),
        Value::Table(list) => {
            let mut crossed = Vec::new();
            for item in list.sequence_values::<Value>() {
                match item? {
                    Value::Function(f) => {
                        if !crossed.is_empty() {
                            let values = lua.create_sequence_from(crossed.drain(..))?;
                            if is_false(f.call((ud.clone(), values, key.clone(), new.clone()))?) {
                                return Ok(true);
                            }
                        }
                    }
                    threshold => {
                        if crosses(&threshold, &old, new) {
                            crossed.push(threshold);
                        }
                    }
                }
            }
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// Whether an assignment `old → new` crosses `threshold` (see the spec: numbers upward, other
/// values by equality with the new value).
fn crosses(threshold: &Value, old: &Value, new: &Value) -> bool {
    match threshold {
        Value::Integer(_) | Value::Number(_) => {
            let reached = matches!(
                compare(threshold, new),
                Some(Ordering::Less | Ordering::Equal)
            );
            let was_below = match old {
                Value::Integer(_) | Value::Number(_) => {
                    compare(old, threshold) == Some(Ordering::Less)
                }
                _ => true,
            };
            reached && was_below
        }
        Value::String(t) => matches!(new, Value::String(n) if n.as_bytes() == t.as_bytes()),
        Value::Boolean(t) => matches!(new, Value::Boolean(n) if n == t),
        _ => false,
    }
}

/// Lua's numeric comparison (None for non-numbers and NaN).
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Integer(x), Value::Integer(y)) => Some(x.cmp(y)),
        (Value::Integer(x), Value::Number(y)) => (*x as f64).partial_cmp(y),
        (Value::Number(x), Value::Integer(y)) => x.partial_cmp(&(*y as f64)),
        (Value::Number(x), Value::Number(y)) => x.partial_cmp(y),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::bundle::testing::{error_of, lua, printed};

    #[test]
    fn spec_example() {
        let lua = lua();
        let out = printed(
            &lua,
            r#"
            local T = { score = 5 }
            local p = bundle.proxy(T, {
              score = { 10, 20, 30, function (px, crossed, k, v)
                print("crossed", k, v, table.concat(crossed, ","))
              end },
              name = function (px, old, k, v)
                if v == "" then return false end      -- veto empty names
                print("rename", old, v)
              end,
            })
            p.score = 25
            p.score = 12          -- going down: no call
            p.score = 35
            p.name = "ann"
            p.name = ""
            print(T.score, T.name)
            "#,
        );
        assert_eq!(
            out,
            "crossed\tscore\t25\t10,20\ncrossed\tscore\t35\t20,30\nrename\tnil\tann\n35\tann\n"
        );
    }

    #[test]
    fn threshold_groups() {
        let lua = lua();
        let out = printed(
            &lua,
            r#"
            local T = {}
            local p = bundle.proxy(T, {
              level = { 1, 5, function (px, c, k, v) print("low", table.concat(c, ",")) end,
                        10, 2.5, function (px, c, k, v) print("high", table.concat(c, ",")) end },
              mode = { "on", true, function (px, c, k, v) print("mode", tostring(c[1])) end },
            })
            p.level = 3            -- from nil: 1 and 2.5
            p.level = 12           -- 5 and 10
            p.level = 12           -- nothing crossed
            p.level = 0            -- down
            p.level = 1            -- 1 again
            p.mode = "on"
            p.mode = true
            p.mode = "off"
            print(T.level, T.mode)
            "#,
        );
        assert_eq!(
            out,
            "low\t1\nhigh\t2.5\nlow\t5\nhigh\t10\nlow\t1\nmode\ton\nmode\ttrue\n1\toff\n"
        );
    }

    #[test]
    fn entry_selection_no_recursion_and_veto() {
        let lua = lua();
        let out = printed(
            &lua,
            r##"
            local T = {}
            local p = bundle.proxy(T, {
              [""] = function (px, old, k, v) print("any", k, v) end,
              ["*"] = function (px, old, k, v)
                print("star", k, v)
                px[k] = v .. "!"        -- same entry: stored directly
                px[1] = "from star"     -- other entry: runs its callback
                return false            -- veto the outer assignment
              end,
              ["#"] = function (px, old, k, v) print("num", k, v) end,
              exact = function (px, old, k, v) print("exact", old, v) end,
            })
            p.word = "hi"
            p.exact = 1
            p[2] = "two"
            p[true] = "yes"
            print(T.word, T.exact, T[1], T[2], T["true"])
            "##,
        );
        assert_eq!(
            out,
            "star\tword\thi\nnum\t1\tfrom star\nexact\tnil\t1\nnum\t2\ttwo\nstar\ttrue\tyes\nnum\t1\tfrom star\n\
             hi!\t1\tfrom star\ttwo\tyes!\n"
        );
        // the "" entry catches keys no other entry selects
        let out = printed(
            &lua,
            r#"
            local T = {}
            local p = bundle.proxy(T, function (px, old, k, v) print("all", k, v, old) end)
            p.a = 1 p[5] = 2 p.a = 3
            print(T.a, T[5])
            "#,
        );
        assert_eq!(out, "all\ta\t1\tnil\nall\t5\t2\tnil\nall\ta\t3\t1\n3\t2\n");
    }

    #[test]
    fn settings_index_function_and_stage_index() {
        let lua = lua();
        let out = printed(
            &lua,
            r#"
            local T = {}
            local p = bundle.proxy(T, { [""] = { "grid:extra", function (key, id, t)
                if key.skip then return nil end
                return key[1] .. "x" .. key[2]
              end, pos = function (px, old, k, v) print("pos", v) end } })
            p[{ 3, 4 }] = "ship"
            p[{ skip = true }] = "lost"
            print(T["3x4"], p[{ 3, 4 }], p[{ skip = true }], tostring(p):match("^grid:%[table: "))
            local q = bundle.proxy({}, "where")
            q[true] = 1
            stage = { index = function (key, where, t) print("index", where, type(t)) return "K" end }
            q[false] = 2
            q[{}] = 3
            print(q()["true"], q().K)
            stage.index = function () return nil end
            q[{}] = 4
            stage.index = function () return {} end
            q[{}] = 5
            local n = 0 for k in pairs(q()) do n = n + 1 end
            print(n)
            "#,
        );
        assert_eq!(
            out,
            "ship\tship\tnil\tgrid:[table: \nindex\twhere\ttable\nindex\twhere\ttable\n1\t3\n3\n"
        );
    }

    #[test]
    fn reading_pairs_len_call_and_tostring() {
        let lua = lua();
        let out = printed(
            &lua,
            r#"
            local T = { 10, 20, 30, sub = { x = 1 } }
            local p = bundle.proxy(T)
            print(#p, p[2], p.missing, type(p.sub), p.sub.x, tostring(p.sub):sub(1, 7))
            p.sub.y = 2
            print(T.sub.y)
            local n, sum = 0, 0
            for k, v in pairs(p) do n = n + 1 if type(v) == "number" then sum = sum + v end end
            local isum = 0
            for i, v in ipairs(p) do isum = isum + v end
            print(n, sum, isum)
            print(p() == T, p(function (px) px[4] = 40 end) == T, T[4])
            print(tostring(p) == "proxy:[" .. tostring(T) .. "]")
            "#,
        );
        assert_eq!(
            out,
            "3\t20\tnil\tuserdata\t1\tproxy:[\n2\n4\t60\t60\ntrue\ttrue\t40\ntrue\n"
        );
    }

    #[test]
    fn errors() {
        let lua = lua();
        for (code, needle) in [
            (
                "bundle.proxy()",
                "bad argument #1 (table or userdata expected, got nil)",
            ),
            ("bundle.proxy(5)", "got number"),
            ("bundle.proxy({}, 5)", "bad argument #2"),
            ("bundle.proxy({}, true)", "bad argument #2"),
            (
                "bundle.proxy({}, { x = 5 })",
                "spec entry 'x' must be a function",
            ),
            ("bundle.proxy({}, { x = { 1, {} } })", "threshold list 'x'"),
            ("bundle.proxy({}, { [true] = print })", "spec keys"),
            ("bundle.proxy({}, { 5 })", "spec setting"),
            ("bundle.proxy({}, { [''] = { x = 1 } })", "settings entry"),
            (
                "bundle.proxy({})(5)",
                "bad argument #1 (function or nothing expected",
            ),
            (
                "local p = bundle.proxy({}, { a = function () error('cb failed') end }) p.a = 1",
                "cb failed",
            ),
            (
                "local p = bundle.proxy({}, { function () error('idx failed') end }) p[{}] = 1",
                "idx failed",
            ),
            ("local p = bundle.proxy({}) p[0/0] = 1", "NaN"),
        ] {
            let e = error_of(&lua, code);
            assert!(e.contains(needle), "{code}: {e}");
        }
        // a callback that failed does not leave its entry marked as running
        let out = printed(
            &lua,
            r#"
            local fail = true
            local p = bundle.proxy({}, { a = function (px, o, k, v) if fail then error("x") end print("ran", v) end })
            pcall(function () p.a = 1 end)
            fail = false
            p.a = 2
            "#,
        );
        assert_eq!(out, "ran\t2\n");
    }
}
