//! [`Value`]: the data a message, a job argument or a shared variable carries between Lua
//! states, processes and machines.
//!
//! The shape follows the BSON mapping of `sandbox.md` §11: table keys are already reduced to
//! integers and strings (any other Lua key becomes its `tostring` text when the value is built),
//! so a value read back in another state looks exactly as if it had crossed the wire as BSON.

use smallvec::SmallVec;
use std::sync::Arc;

/// A Lua-compatible value that can leave its Lua state.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A Lua string: bytes, not necessarily UTF-8.
    Str(Bytes),
    Table(Table),
    /// A Lua function as unstripped bytecode (its upvalues do not travel).
    Function(Arc<[u8]>),
}

/// A table key after conversion: Lua integers stay integers, everything else is a string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Int(i64),
    Str(Bytes),
}

/// A table's entries in the order they were read from Lua.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table(pub Vec<(Key, Value)>);

/// The values of one message, job or call: most carry few, so they stay inline.
pub type Args = SmallVec<[Value; 3]>;

/// The bytes of a string value or key. Most are short (field names, ids, commands) and are
/// stored inline, without an allocation of their own: a reply of many small tables would
/// otherwise allocate, and free on another thread, a buffer per field name.
pub type Bytes = SmallVec<[u8; 16]>;

impl Value {
    /// A string value from text.
    pub fn str(s: impl AsRef<[u8]>) -> Value {
        Value::Str(Bytes::from_slice(s.as_ref()))
    }

    /// The Lua type name of this value (`"nil"`, `"number"`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Table(_) => "table",
            Value::Function(_) => "function",
        }
    }

    /// About how many bytes this value takes on the wire (its BSON element, less the key).
    pub fn approx_size(&self) -> usize {
        match self {
            Value::Nil => 1,
            Value::Bool(_) => 2,
            Value::Int(_) | Value::Float(_) => 9,
            Value::Str(s) => s.len() + 6,
            Value::Function(code) => code.len() + 10,
            Value::Table(t) => {
                5 + t
                    .0
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Key::Int(_) => 22,
                            Key::Str(s) => s.len() + 1,
                        };
                        key + v.approx_size()
                    })
                    .sum::<usize>()
            }
        }
    }

    /// The bytes of a string value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer a number value holds exactly, as Lua's `math.tointeger` would give it.
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::Float(f) if f.fract() == 0.0 && f >= -(2f64.powi(63)) && f < 2f64.powi(63) => {
                Some(f as i64)
            }
            _ => None,
        }
    }

    /// The number a numeric value holds.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }
}

impl Table {
    /// The value stored under `key`, if any.
    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value stored under a string key.
    pub fn get_str(&self, key: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, _)| matches!(k, Key::Str(s) if s[..] == *key.as_bytes()))
            .map(|(_, v)| v)
    }

    /// Appends an entry (the caller keeps keys unique, as a Lua table does).
    pub fn push(&mut self, key: Key, value: Value) {
        self.0.push((key, value));
    }
}

impl Key {
    /// A string key from text or bytes.
    pub fn str(s: impl AsRef<[u8]>) -> Key {
        Key::Str(Bytes::from_slice(s.as_ref()))
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key::str(s)
    }
}

impl From<i64> for Key {
    fn from(i: i64) -> Key {
        Key::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::str(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::str(s)
    }
}

impl From<Table> for Value {
    fn from(t: Table) -> Value {
        Value::Table(t)
    }
}
