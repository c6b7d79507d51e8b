//! `bundle.bson(p)`: Lua table → BSON document string, BSON string → table (`sandbox.md` §11).
//!
//! Tables are copied with [`crate::convert::to_value`] (key reduction, type hints, cycle and
//! depth checks, functions as bytecode) and encoded with [`stage_core::bson`]; decoded functions
//! are loaded with the state's globals as their environment.

use super::{bad_argument, error, first_result};
use crate::convert::{from_value, to_value};
use crate::errors::type_name;
use mlua::{Lua, MultiValue, Value};
use stage_core::bson::{decode_document, encode_document};

/// The Lua function `bundle.bson`.
pub fn bson(lua: &Lua, args: MultiValue) -> mlua::Result<Value> {
    let mut args = args.into_iter();
    match args.next().unwrap_or(Value::Nil) {
        Value::Function(f) => match first_result(&f, args.collect())? {
            p @ (Value::String(_) | Value::Table(_)) => convert(lua, &p),
            other => Err(error(
                "bson",
                format!(
                    "the function returned {}, not a string or table",
                    type_name(&other)
                ),
            )),
        },
        p => convert(lua, &p),
    }
}

fn convert(lua: &Lua, p: &Value) -> mlua::Result<Value> {
    match p {
        Value::Table(_) => {
            let stage_core::Value::Table(table) = to_value(lua, p)? else {
                return Err(error("bson", "a table did not copy as a table"));
            };
            Ok(Value::String(lua.create_string(encode_document(&table))?))
        }
        Value::String(s) => {
            let table = decode_document(&s.as_bytes()).map_err(|e| error("bson", e))?;
            from_value(lua, &stage_core::Value::Table(table), &lua.globals())
        }
        other => Err(bad_argument("bson", 1, "table, string or function", other)),
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
            local b = bundle.bson({ name = "HELLO", list = { 1, 2 } })
            local t = bundle.bson(b)
            print(type(b), t.name, t.list[2])
            "#,
        );
        assert_eq!(out, "string\tHELLO\t2\n");
    }

    #[test]
    fn values_round_trip() {
        let lua = lua();
        let out = printed(
            &lua,
            r#"
            G = 40
            local t = bundle.bson(bundle.bson({
              i = 7, f = 2.5, s = "a\0b", yes = true, [3] = "three", [-1] = "neg",
              nested = { deep = { 1, nil, 3 } }, fn = function (x) return x + G end,
              ["h@i"] = 2^32 + 9, ["d@D"] = 1.5,
            }))
            print(math.type(t.i), t.f, #t.s, t.yes, t[3], t[-1], t.nested.deep[3], t.nested.deep[2])
            print(t.fn(2), t.h, t.d, t["h@i"])
            print(bundle.bson(function (x) return { x = x } end, 5) ~= nil)
            print(bundle.bson(function () return bundle.bson({ k = "v" }) end).k)
            "#,
        );
        assert_eq!(
            out,
            "integer\t2.5\t3\ttrue\tthree\tneg\t3\tnil\n42\t9\t1\tnil\ntrue\nv\n"
        );
    }

    #[test]
    fn errors() {
        let lua = lua();
        for (code, needle) in [
            ("bundle.bson('hello')", "This is not BSON data."),
            ("bundle.bson('')", "This is not BSON data."),
            (
                "bundle.bson(bundle.bson({ a = 1 }) .. 'x')",
                "This is not BSON data.",
            ),
            (
                "bundle.bson(string.char(8, 0, 0, 0, 66, 97, 0, 0))",
                "unknown element type",
            ),
            (
                "bundle.bson()",
                "bad argument #1 (table, string or function expected, got nil)",
            ),
            ("bundle.bson(12)", "got number"),
            ("bundle.bson(false)", "got boolean"),
            ("bundle.bson({ string.len })", "non-serialable"),
            ("local t = {} t[1] = t bundle.bson(t)", "cyclic"),
            ("bundle.bson(function () end)", "returned nil"),
        ] {
            let e = error_of(&lua, code);
            assert!(e.contains(needle), "{code}: {e}");
        }
    }
}
