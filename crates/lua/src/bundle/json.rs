//! `bundle.json(p [, selector])`: JSON text or file → Lua value, Lua table → JSON text.
//!
//! Numbers follow decisions 10 and 34: a token without `.`, `e` or `E` that fits in an i64 becomes
//! a Lua integer, every other number a float; floats are written with a fraction or an exponent
//! (Rust's shortest round-trip form, e.g. `20.0`, `1e300`), NaN and infinities as `null`.
//!
//! The text written for a table is laid out as the reference's JsonCpp `StyledWriter` does:
//! 3-space indentation, `"key" : value`, members sorted by key (byte order), arrays of scalars
//! on one line (`[ 1, 2, 3 ]`) while they stay short (fewer than 25 elements and under 74
//! characters), and a trailing newline. Strings keep non-ASCII characters as UTF-8 (bytes that
//! are not UTF-8 become U+FFFD) and escape `"`, `\` and control characters.
//!
//! Tables: with only integer keys they are arrays, elements in ascending key order (holes are
//! closed up, the keys themselves are not kept); with no keys `{}`; otherwise objects whose
//! integer and other non-string keys are stringified (`1`, `1.5`, `true`).

use super::{bad_argument, error, first_result};
use crate::errors::type_name;
use mlua::{Lua, MultiValue, Value};
use serde_json::{Map, Number, Value as Json};
use std::collections::HashSet;

/// How deep tables may nest in `bundle.json(table)`.
const MAX_DEPTH: usize = 128;

/// The Lua function `bundle.json`.
pub fn json(lua: &Lua, args: MultiValue) -> mlua::Result<Value> {
    let mut args = args.into_iter();
    let p = args.next().unwrap_or(Value::Nil);
    match p {
        Value::Function(f) => {
            let result = first_result(&f, args.collect())?;
            match result {
                Value::String(_) | Value::Table(_) => convert(lua, result, Value::Nil),
                other => Err(error(
                    "json",
                    format!(
                        "the function returned {}, not a string or table",
                        type_name(&other)
                    ),
                )),
            }
        }
        other => convert(lua, other, args.next().unwrap_or(Value::Nil)),
    }
}

fn convert(lua: &Lua, p: Value, selector: Value) -> mlua::Result<Value> {
    match &p {
        Value::String(s) => {
            let bytes = s.as_bytes();
            let parsed = if matches!(bytes.first(), Some(b'{' | b'[')) {
                parse_json(&s.to_str()?)?
            } else {
                let name = String::from_utf8_lossy(&bytes)
                    .trim_start_matches(' ')
                    .to_string();
                let text = std::fs::read_to_string(&name)
                    .map_err(|e| error("json", format!("cannot read '{name}': {e}")))?;
                serde_json::from_str(&text).map_err(|e| error("json", format!("{name}: {e}")))?
            };
            select(lua, &parsed, &selector)
        }
        Value::Table(_) => {
            let tree = to_json(&p, 0, &mut HashSet::new())?;
            Ok(Value::String(lua.create_string(styled(&tree))?))
        }
        other => Err(bad_argument("json", 1, "string, table or function", other)),
    }
}

/// Parses JSON text (errors name the line and column).
pub fn parse_json(text: &str) -> mlua::Result<Json> {
    serde_json::from_str(text).map_err(|e| error("json", e))
}

/// Applies a selector to parsed JSON and builds the Lua result.
fn select(lua: &Lua, root: &Json, selector: &Value) -> mlua::Result<Value> {
    match selector {
        Value::Nil => json_to_lua(lua, root),
        Value::Integer(_) | Value::Number(_) => {
            let picked = index_of(selector).and_then(|i| root.as_array()?.get(i));
            picked.map_or(Ok(Value::Nil), |v| json_to_lua(lua, v))
        }
        Value::String(k) => {
            let key = k.to_str()?;
            root.get(&*key)
                .map_or(Ok(Value::Nil), |v| json_to_lua(lua, v))
        }
        Value::Table(paths) => {
            let mut appended = Vec::new();
            let mut named = Vec::new();
            for pair in paths.pairs::<Value, Value>() {
                let (alias, path) = pair?;
                let Value::String(path) = path else {
                    return Err(error("json", "selector paths must be strings"));
                };
                let found = walk(root, &path.to_str()?);
                match alias {
                    Value::Integer(i) => appended.push((i, found)),
                    Value::String(name) => named.push((name, found)),
                    other => {
                        return Err(error(
                            "json",
                            format!(
                                "selector keys must be strings or integers, got {}",
                                type_name(&other)
                            ),
                        ))
                    }
                }
            }
            appended.sort_by_key(|(i, _)| *i);
            let result = lua.create_table()?;
            for (_, found) in appended {
                if let Some(v) = found {
                    result.raw_push(json_to_lua(lua, v)?)?;
                }
            }
            for (name, found) in named {
                if let Some(v) = found {
                    result.raw_set(name, json_to_lua(lua, v)?)?;
                }
            }
            Ok(Value::Table(result))
        }
        other => Err(bad_argument("json", 2, "number, string or table", other)),
    }
}

/// A 0-based index from a Lua number (integral floats accepted).
fn index_of(v: &Value) -> Option<usize> {
    match *v {
        Value::Integer(i) => usize::try_from(i).ok(),
        Value::Number(n) if n.fract() == 0.0 && n >= 0.0 && n < usize::MAX as f64 => {
            Some(n as usize)
        }
        _ => None,
    }
}

/// Follows a path `a.b.#2` (`#n` = 0-based array index, other parts = member names; an empty
/// path is the root).
fn walk<'a>(root: &'a Json, path: &str) -> Option<&'a Json> {
    if path.is_empty() {
        return Some(root);
    }
    path.split('.')
        .try_fold(root, |node, part| match part.strip_prefix('#') {
            Some(n) if node.is_array() => node.as_array()?.get(n.parse::<usize>().ok()?),
            _ => node.as_object()?.get(part),
        })
}

/// Builds the Lua value of parsed JSON (`null` → nil, absent from tables; numbers per decision 34).
pub fn json_to_lua(lua: &Lua, v: &Json) -> mlua::Result<Value> {
    Ok(match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(lua.create_string(s)?),
        Json::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, json_to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        Json::Object(members) => {
            let t = lua.create_table_with_capacity(0, members.len())?;
            for (k, item) in members {
                t.raw_set(k.as_str(), json_to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
    })
}

fn number(f: f64) -> Json {
    Number::from_f64(f).map_or(Json::Null, Json::Number)
}

/// Converts a Lua value to JSON (cycles and over-deep nesting refused).
fn to_json(v: &Value, depth: usize, path: &mut HashSet<usize>) -> mlua::Result<Json> {
    Ok(match v {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => Json::Number((*i).into()),
        Value::Number(f) => number(*f),
        Value::String(s) => Json::String(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
        Value::Table(t) => {
            if depth >= MAX_DEPTH {
                return Err(error(
                    "json",
                    format!("tables nested deeper than {MAX_DEPTH} levels"),
                ));
            }
            let id = t.to_pointer() as usize;
            if !path.insert(id) {
                return Err(error("json", "a table refers to itself"));
            }
            let mut items: Vec<(i64, Json)> = Vec::new();
            let mut members: Vec<(String, Json)> = Vec::new();
            for pair in t.pairs::<Value, Value>() {
                let (k, item) = pair?;
                match k {
                    Value::Integer(i) => items.push((i, to_json(&item, depth + 1, path)?)),
                    Value::String(s) => {
                        let key = String::from_utf8_lossy(&s.as_bytes()).into_owned();
                        members.push(hinted(key, &item, depth, path)?);
                    }
                    other => members.push((other.to_string()?, to_json(&item, depth + 1, path)?)),
                }
            }
            path.remove(&id);
            items.sort_by_key(|(i, _)| *i);
            if members.is_empty() && !items.is_empty() {
                Json::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                let mut map = Map::new();
                for (i, v) in items {
                    map.insert(i.to_string(), v);
                }
                map.extend(members);
                Json::Object(map)
            }
        }
        other => Json::String(other.to_string()?),
    })
}

/// A member whose key may carry a type hint (`@i @l @b @f @d`): the hint is removed and a
/// number value converted.
fn hinted(
    key: String,
    item: &Value,
    depth: usize,
    path: &mut HashSet<usize>,
) -> mlua::Result<(String, Json)> {
    let hint = match key.as_bytes() {
        [.., b'@', h @ (b'i' | b'l' | b'b' | b'f' | b'd')] => *h,
        _ => return Ok((key, to_json(item, depth + 1, path)?)),
    };
    let name = key[..key.len() - 2].to_string();
    let n = match *item {
        Value::Integer(i) => i as f64,
        Value::Number(f) => f,
        _ => return Ok((name, to_json(item, depth + 1, path)?)),
    };
    let value = match (hint, item) {
        (b'i', Value::Integer(i)) => Json::Number((*i as i32).into()),
        (b'l', Value::Integer(i)) => Json::Number((*i).into()),
        (b'i', _) => Json::Number((n as i64 as i32).into()),
        (b'l', _) => Json::Number((n as i64).into()),
        (b'b', _) => Json::Bool(n > 0.0),
        _ => number(n),
    };
    Ok((name, value))
}

/// JSON text laid out as JsonCpp's `StyledWriter` does (see the module docs).
fn styled(v: &Json) -> String {
    let mut w = Styled::default();
    w.value(v);
    w.doc.push('\n');
    w.doc
}

/// Arrays with this many elements or lines this long are written one element per line.
const RIGHT_MARGIN: usize = 74;

#[derive(Default)]
struct Styled {
    doc: String,
    indent: String,
    /// Collected one-line texts of an array's elements while deciding its layout.
    children: Option<Vec<String>>,
}

impl Styled {
    fn push(&mut self, text: &str) {
        match &mut self.children {
            Some(children) => children.push(text.to_string()),
            None => self.doc.push_str(text),
        }
    }

    fn write_indent(&mut self) {
        match self.doc.chars().last() {
            Some(' ') => return,
            Some('\n') | None => {}
            Some(_) => self.doc.push('\n'),
        }
        self.doc.push_str(&self.indent);
    }

    fn with_indent(&mut self, text: &str) {
        self.write_indent();
        self.doc.push_str(text);
    }

    fn value(&mut self, v: &Json) {
        match v {
            Json::Null => self.push("null"),
            Json::Bool(b) => self.push(if *b { "true" } else { "false" }),
            Json::Number(n) => match n.as_f64() {
                Some(f) if !n.is_i64() && !n.is_u64() => self.push(&format!("{f:?}")),
                _ => self.push(&n.to_string()),
            },
            Json::String(s) => self.push(&quote(s)),
            Json::Array(items) => self.array(items),
            Json::Object(members) if members.is_empty() => self.push("{}"),
            Json::Object(members) => {
                let mut keys: Vec<&String> = members.keys().collect();
                keys.sort();
                self.with_indent("{");
                self.indent.push_str("   ");
                for (n, key) in keys.iter().enumerate() {
                    self.with_indent(&quote(key));
                    self.doc.push_str(" : ");
                    if let Some(member) = members.get(*key) {
                        self.value(member);
                    }
                    if n + 1 < keys.len() {
                        self.doc.push(',');
                    }
                }
                self.indent.truncate(self.indent.len() - 3);
                self.with_indent("}");
            }
        }
    }

    fn array(&mut self, items: &[Json]) {
        if items.is_empty() {
            return self.push("[]");
        }
        match self.one_line(items) {
            Some(children) => {
                self.doc.push_str("[ ");
                self.doc.push_str(&children.join(", "));
                self.doc.push_str(" ]");
            }
            None => {
                self.with_indent("[");
                self.indent.push_str("   ");
                for (n, item) in items.iter().enumerate() {
                    self.write_indent();
                    self.value(item);
                    if n + 1 < items.len() {
                        self.doc.push(',');
                    }
                }
                self.indent.truncate(self.indent.len() - 3);
                self.with_indent("]");
            }
        }
    }

    /// The elements' texts when the array fits on one line.
    fn one_line(&mut self, items: &[Json]) -> Option<Vec<String>> {
        let nested = items.iter().any(|v| match v {
            Json::Array(a) => !a.is_empty(),
            Json::Object(o) => !o.is_empty(),
            _ => false,
        });
        if items.len() * 3 >= RIGHT_MARGIN || nested {
            return None;
        }
        let outer = self.children.replace(Vec::new());
        for item in items {
            self.value(item);
        }
        let children = std::mem::replace(&mut self.children, outer).unwrap_or_default();
        let length = 4 + (items.len() - 1) * 2 + children.iter().map(String::len).sum::<usize>();
        (length < RIGHT_MARGIN).then_some(children)
    }
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
            local t = bundle.json('{"a": {"b": [10, 20, 30]}, "name": "x"}')
            print(t.name, #t.a.b)
            local s = bundle.json('{"a": {"b": [10, 20, 30]}}', { second = "a.b.#1" })
            print(s.second)
            print(bundle.json({ n = 1 }))
            "#,
        );
        assert_eq!(out, "x\t3\n20\n{\n   \"n\" : 1\n}\n\n");
    }

    #[test]
    fn numbers_follow_decision_34() {
        let lua = lua();
        let out = printed(
            &lua,
            r#"
            local t = bundle.json('[20, 20.0, 1e2, -7, 9223372036854775807, 9223372036854775808, 2.5E-1]')
            for i = 1, #t do print(math.type(t[i]), t[i]) end
            print(bundle.json({ 1, 2.0, 0/0, 1/0, 1e300, 0.1, -0.0 }))
            "#,
        );
        assert_eq!(
            out,
            "integer\t20\nfloat\t20.0\nfloat\t100.0\ninteger\t-7\ninteger\t9223372036854775807\n\
             float\t9.2233720368548e+18\nfloat\t0.25\n\
             [ 1, 2.0, null, null, 1e300, 0.1, -0.0 ]\n\n"
        );
    }

    #[test]
    fn tables_encode_styled_and_sorted() {
        let lua = lua();
        let out: String = lua
            .load(
                r#"return bundle.json({ b = { x = true, list = { 1, "two", {} } }, a = {}, [1] = "one",
                    ["n@i"] = 2^32 + 7, ["f@d"] = 3, ["y@b"] = 0, ["q@l"] = 5.9, s = 'q"\n' })"#,
            )
            .eval()
            .unwrap();
        assert_eq!(
            out,
            "{\n   \"1\" : \"one\",\n   \"a\" : {},\n   \"b\" : {\n      \"list\" : [ 1, \"two\", {} ],\n      \
             \"x\" : true\n   },\n   \"f\" : 3.0,\n   \"n\" : 7,\n   \"q\" : 5,\n   \"s\" : \"q\\\"\\n\",\n   \
             \"y\" : false\n}\n"
        );
        let nested: String = lua
            .load(r#"return bundle.json({ { a = 1 }, { 2 } })"#)
            .eval()
            .unwrap();
        assert_eq!(nested, "[\n   {\n      \"a\" : 1\n   },\n   [ 2 ]\n]\n");
        let long: String = lua
            .load(r#"local t = {} for i = 1, 30 do t[i] = i end return bundle.json(t)"#)
            .eval()
            .unwrap();
        assert!(long.starts_with("[\n   1,\n   2,\n"), "{long}");
        let odd: String = lua
            .load("return bundle.json({ [true] = print, [1.5] = 2 })")
            .eval()
            .unwrap();
        assert!(
            odd.contains("\"1.5\" : 2") && odd.contains("\"true\" : \"function: "),
            "{odd}"
        );
    }

    #[test]
    fn round_trip_keeps_integers_and_floats() {
        let lua = lua();
        let ok: bool = lua
            .load(
                r#"local t = bundle.json(bundle.json({ i = 20, f = 20.0, s = "x", l = { 1, 2 } }))
                   return math.type(t.i) == "integer" and math.type(t.f) == "float" and t.s == "x"
                      and t.l[2] == 2"#,
            )
            .eval()
            .unwrap();
        assert!(ok);
    }

    #[test]
    fn selectors() {
        let lua = lua();
        let out = printed(
            &lua,
            r#"
            local doc = '{"a": {"b": [10, 20, {"c": "deep"}]}, "n": null, "list": [5, 6]}'
            print(bundle.json('[1, 2, 3]', 0), bundle.json('[1, 2, 3]', 2), bundle.json('[1]', 5))
            print(bundle.json(doc, "n"), bundle.json(doc, "missing"), bundle.json(doc, "a").b[1])
            local s = bundle.json(doc, { "list.#1", "a.b.#2.c", deep = "a.b.#2.c", gone = "a.x.y", bad = "list.#9" })
            print(s[1], s[2], s.deep, s.gone, s.bad)
            print(bundle.json(doc, { whole = "" }).whole.list[1])
            "#,
        );
        assert_eq!(out, "1\t3\tnil\nnil\tnil\t10\n6\tdeep\tdeep\tnil\tnil\n5\n");
    }

    #[test]
    fn files_and_functions() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("conf.json");
        std::fs::write(&file, r#"{"port": 8080}"#).unwrap();
        let lua = lua();
        lua.globals()
            .set("FILE", format!("  {}", file.display()))
            .unwrap();
        let out = printed(
            &lua,
            r#"
            print(bundle.json(FILE).port, bundle.json(FILE, "port"))
            print(bundle.json(function (a, b) return { a, b } end, 1, 2))
            print(bundle.json(function () return '{"x": 5}' end).x)
            "#,
        );
        assert_eq!(out, "8080\t8080\n[ 1, 2 ]\n\n5\n");
    }

    #[test]
    fn errors() {
        let lua = lua();
        for (code, needle) in [
            (
                "bundle.json()",
                "bad argument #1 (string, table or function expected, got nil)",
            ),
            ("bundle.json(5)", "got number"),
            ("bundle.json(true)", "got boolean"),
            ("bundle.json('{bad')", "bundle.json:"),
            (
                "bundle.json('no/such/file.json')",
                "cannot read 'no/such/file.json'",
            ),
            ("bundle.json('[1]', true)", "bad argument #2"),
            (
                "bundle.json('[1]', { x = 5 })",
                "selector paths must be strings",
            ),
            ("bundle.json('[1]', { [true] = 'a' })", "selector keys"),
            ("local t = {} t.t = t bundle.json(t)", "refers to itself"),
            (
                "local t = {} for i = 1, 300 do t = { t } end bundle.json(t)",
                "deeper",
            ),
            ("bundle.json(function () return 1 end)", "returned number"),
            ("bundle.json(function () error('boom') end)", "boom"),
        ] {
            let e = error_of(&lua, code);
            assert!(e.contains(needle), "{code}: {e}");
        }
        // the same table twice is no cycle; huge selector indexes are nil
        let ok: bool = lua
            .load("local s = {1} return bundle.json({ s, s }) ~= nil and bundle.json('[1]', 2^62) == nil and bundle.json('[1]', -1) == nil")
            .eval()
            .unwrap();
        assert!(ok);
    }
}
