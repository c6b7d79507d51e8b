//! Helpers shared by the integration tests: a value codec and table builders.

#![allow(dead_code)]

use stage_core::{Key, Table, Value};
use stage_index::command::ValueCodec;

/// A small self-describing encoding of values (the service uses BSON instead).
pub struct TestCodec;

fn enc(v: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    let bytes = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    };
    match v {
        Value::Nil => out.push(0),
        Value::Bool(b) => out.extend_from_slice(&[1, u8::from(*b)]),
        Value::Int(i) => {
            out.push(2);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(3);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::Str(s) => {
            out.push(4);
            bytes(out, s);
        }
        Value::Function(f) => {
            out.push(5);
            bytes(out, f);
        }
        Value::Table(t) => {
            out.push(6);
            out.extend_from_slice(&(t.0.len() as u32).to_le_bytes());
            for (k, v) in &t.0 {
                match k {
                    Key::Int(i) => {
                        out.push(0);
                        out.extend_from_slice(&i.to_le_bytes());
                    }
                    Key::Str(s) => {
                        out.push(1);
                        bytes(out, s);
                    }
                }
                enc(v, out)?;
            }
        }
    }
    Ok(())
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if b.len() < n {
        return Err("short".into());
    }
    let (h, t) = b.split_at(n);
    *b = t;
    Ok(h)
}

fn u32_of(b: &mut &[u8]) -> Result<usize, String> {
    let h = take(b, 4)?;
    Ok(u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize)
}

fn i64_of(b: &mut &[u8]) -> Result<i64, String> {
    let h = take(b, 8)?;
    let mut a = [0; 8];
    a.copy_from_slice(h);
    Ok(i64::from_le_bytes(a))
}

fn dec(b: &mut &[u8]) -> Result<Value, String> {
    Ok(match take(b, 1)?[0] {
        0 => Value::Nil,
        1 => Value::Bool(take(b, 1)?[0] != 0),
        2 => Value::Int(i64_of(b)?),
        3 => Value::Float(f64::from_bits(i64_of(b)? as u64)),
        4 => {
            let n = u32_of(b)?;
            Value::str(take(b, n)?)
        }
        5 => {
            let n = u32_of(b)?;
            Value::Function(take(b, n)?.into())
        }
        6 => {
            let n = u32_of(b)?;
            let mut t = Table::default();
            for _ in 0..n {
                let k = match take(b, 1)?[0] {
                    0 => Key::Int(i64_of(b)?),
                    _ => {
                        let n = u32_of(b)?;
                        Key::str(take(b, n)?)
                    }
                };
                t.push(k, dec(b)?);
            }
            Value::Table(t)
        }
        _ => return Err("bad tag".into()),
    })
}

impl ValueCodec for TestCodec {
    fn encode(&self, value: &Value) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        enc(value, &mut out)?;
        Ok(out)
    }
    fn decode(&self, mut bytes: &[u8]) -> Result<Value, String> {
        dec(&mut bytes)
    }
}

/// Builds a table value: `tbl![("A", 1), ...]` with keys `&str` or `i64`.
#[macro_export]
macro_rules! tbl {
    ($(($k:expr, $v:expr)),* $(,)?) => {
        stage_core::Value::Table(stage_core::Table(vec![$((stage_core::Key::from($k), stage_core::Value::from($v))),*]))
    };
}

/// A list value `{ a, b, ... }`.
pub fn list(items: Vec<Value>) -> Value {
    Value::Table(Table(
        items
            .into_iter()
            .zip(1..)
            .map(|(v, i)| (Key::Int(i), v))
            .collect(),
    ))
}

/// A string value.
pub fn st(s: &str) -> Value {
    Value::from(s)
}
