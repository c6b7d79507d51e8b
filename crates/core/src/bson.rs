//! [`Value`] ⇄ BSON bytes, with the mapping of `sandbox.md` §11.2–11.3.
//!
//! The codec is written by hand rather than with the `bson` crate: the mapping needs binary
//! subtypes 0x73 (gzip bytecode), 0x7E (gzip string) and 0x7D (in-process handle), `#n` keys,
//! 1-based argument arrays and byte strings that are not UTF-8, none of which the crate models
//! without a detour through its own document type. The format itself is small.
//!
//! Encoding ([`encode_document`], [`encode_args`]):
//!
//! | [`Value`] | element |
//! |---|---|
//! | `Nil` | null (0x0A) |
//! | `Bool` | boolean (0x08) |
//! | `Int` | int64 (0x12) |
//! | `Float` | double (0x01) |
//! | `Str` | string (0x02), binary-safe: the length prefix counts embedded NULs |
//! | `Table` | document (0x03); [`Key::Int`] `n` → key `"#n"`, [`Key::Str`] as it is |
//! | `Function` | binary (0x05) subtype 0x73: the gzip-compressed bytecode |
//!
//! BSON keys are C strings: a string key holding a NUL byte is cut at the first NUL.
//!
//! Decoding ([`decode_document`], [`decode_args`]) follows §11.3: int32/int64 → `Int`, double →
//! `Float`, UTC datetime → `Int` seconds (milliseconds divided by 1000, rounded down), string and
//! symbol → `Str`, null → `Nil` (kept in the table so that a copy round-trips; Lua drops it),
//! document keys `"#n"` (canonical decimal `n` only) → `Key::Int(n)`, array keys parsed as
//! integers (an array key that is neither an integer nor `#n` stays a string key), binary 0x73 →
//! gunzip → `Function`, 0x01 → `Function`, 0x7E → gunzip → `Str`, any other subtype → `Str` of
//! the raw bytes, except 0x7D: an in-process handle cannot be a [`Value`], so that element is
//! skipped like the unsupported types (ObjectId, regex, code, timestamp, decimal128, …).
//!
//! **Argument lists** ([`encode_args`], [`decode_args`]): a bare value is not a BSON document,
//! so an argument list travels as a document with one element under the key `"v"`: the single
//! value's element, or for two or more values an array (0x04) keyed `"1"`, `"2"`, …, or for no
//! value an empty array. At the receiver an array is spread into positional arguments in element
//! order; an element whose key starts with `.` (e.g. `".name"`) is a named global instead, and
//! keys that are neither numeric nor `#n` are dropped.

use crate::value::{Args, Key, Table, Value};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::borrow::Borrow;
use std::io::{Read, Write};
use std::sync::Arc;

/// How deep documents may nest before decoding is refused (a guard for the decoder's stack).
pub const MAX_DEPTH: usize = 256;

/// The most bytes a gzip-compressed element may inflate to.
pub const MAX_INFLATED: u64 = 256 << 20;

/// The key under which [`encode_args`] stores an argument list.
pub const ARGS_KEY: &str = "v";

/// Why bytes could not be read as BSON.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BsonError {
    /// The leading int32 length is not the length of the input.
    #[error("This is not BSON data.")]
    NotBson,
    /// The bytes end before an element is complete.
    #[error("malformed BSON: truncated at byte {0}")]
    Truncated(usize),
    /// A length, terminator or string inside the document is inconsistent.
    #[error("malformed BSON at byte {offset}: {what}")]
    Malformed {
        /// Where the problem was found.
        offset: usize,
        /// What is wrong there.
        what: &'static str,
    },
    /// An element type this decoder cannot even skip.
    #[error("malformed BSON at byte {offset}: unknown element type 0x{kind:02x}")]
    UnknownType {
        /// Where the element starts.
        offset: usize,
        /// The type byte.
        kind: u8,
    },
    /// Documents nest deeper than [`MAX_DEPTH`].
    #[error("BSON documents nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A gzip-compressed element does not inflate.
    #[error("a compressed BSON element is damaged: {0}")]
    Gzip(String),
    /// A gzip-compressed element inflates past [`MAX_INFLATED`] bytes.
    #[error("a compressed BSON element inflates past {MAX_INFLATED} bytes")]
    Inflated,
    /// An argument list document has no element under [`ARGS_KEY`].
    #[error("the BSON argument list has no element \"v\"")]
    NoArgs,
}

/// An argument list read back by [`decode_args`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecodedArgs {
    /// The positional arguments, in element order.
    pub args: Args,
    /// Elements whose key started with `.`: global name (without the dot) and value.
    pub globals: Vec<(Vec<u8>, Value)>,
}

const T_DOUBLE: u8 = 0x01;
const T_STRING: u8 = 0x02;
const T_DOCUMENT: u8 = 0x03;
const T_ARRAY: u8 = 0x04;
const T_BINARY: u8 = 0x05;
const T_BOOL: u8 = 0x08;
const T_DATETIME: u8 = 0x09;
const T_NULL: u8 = 0x0A;
const T_SYMBOL: u8 = 0x0E;
const T_INT32: u8 = 0x10;
const T_INT64: u8 = 0x12;

/// Binary subtype: gzip-compressed Lua bytecode.
pub const SUBTYPE_GZIP_FUNCTION: u8 = 0x73;
/// Binary subtype: raw Lua bytecode.
pub const SUBTYPE_FUNCTION: u8 = 0x01;
/// Binary subtype: gzip-compressed string.
pub const SUBTYPE_GZIP_STRING: u8 = 0x7E;
/// Binary subtype: in-process handle (never decoded into a [`Value`]).
pub const SUBTYPE_HANDLE: u8 = 0x7D;

/// Encodes a table as one BSON document.
pub fn encode_document(table: &Table) -> Vec<u8> {
    let mut out = Vec::new();
    write_table(&mut out, table);
    out
}

/// Encodes an argument list as a document `{ "v": element }` (see the module docs).
pub fn encode_args(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    let start = begin_document(&mut out);
    match values {
        [one] => write_element(&mut out, ARGS_KEY.as_bytes(), one),
        many => {
            out.push(T_ARRAY);
            write_cstring(&mut out, ARGS_KEY.as_bytes());
            let inner = begin_document(&mut out);
            for (i, v) in many.iter().enumerate() {
                write_element(&mut out, (i + 1).to_string().as_bytes(), v);
            }
            end_document(&mut out, inner);
        }
    }
    end_document(&mut out, start);
    out
}

/// Writes one BSON document an element at a time from borrowed values: for documents whose
/// fields are not one [`Table`] (a message envelope, `crate::wire`), without copying the values
/// into one first.
pub struct DocumentWriter {
    out: Vec<u8>,
    start: usize,
}

impl Default for DocumentWriter {
    fn default() -> Self {
        let mut out = Vec::new();
        let start = begin_document(&mut out);
        DocumentWriter { out, start }
    }
}

impl DocumentWriter {
    /// Adds `value` under `key`.
    pub fn element(&mut self, key: &str, value: &Value) {
        write_element(&mut self.out, key.as_bytes(), value);
    }

    /// Adds a document of `entries` under `key`, each keyed as a table's would be
    /// ([`Key::Int`] `n` as `"#n"`).
    pub fn document<'v, K: Borrow<Key>>(
        &mut self,
        key: &str,
        entries: impl IntoIterator<Item = (K, &'v Value)>,
    ) {
        self.out.push(T_DOCUMENT);
        write_cstring(&mut self.out, key.as_bytes());
        write_entries(&mut self.out, entries);
    }

    /// The document's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        end_document(&mut self.out, self.start);
        self.out
    }
}

/// Decodes one complete BSON document into a table.
pub fn decode_document(bytes: &[u8]) -> Result<Table, BsonError> {
    check_length(bytes)?;
    Reader { bytes }.document(0, 0, DocKind::Document)
}

/// Decodes an argument list written by [`encode_args`] (or by a connector using the same form).
pub fn decode_args(bytes: &[u8]) -> Result<DecodedArgs, BsonError> {
    check_length(bytes)?;
    let reader = Reader { bytes };
    let top = reader.elements(0, 0)?;
    let (kind, _, pos) = top
        .into_iter()
        .find(|(_, key, _)| *key == ARGS_KEY.as_bytes())
        .ok_or(BsonError::NoArgs)?;
    let mut out = DecodedArgs::default();
    if kind != T_ARRAY {
        out.args.extend(reader.value(kind, pos, 1)?);
        return Ok(out);
    }
    for (kind, key, pos) in reader.elements(pos, 1)? {
        let Some(value) = reader.value(kind, pos, 2)? else {
            continue;
        };
        if let Some(name) = key.strip_prefix(b".") {
            out.globals.push((name.to_vec(), value));
        } else if matches!(decode_key(key, DocKind::Array), Key::Int(_)) {
            out.args.push(value);
        }
    }
    Ok(out)
}

fn check_length(bytes: &[u8]) -> Result<(), BsonError> {
    let declared = bytes
        .get(..4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(BsonError::NotBson)?;
    if usize::try_from(declared).ok() != Some(bytes.len()) || bytes.len() < 5 {
        return Err(BsonError::NotBson);
    }
    Ok(())
}

fn begin_document(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    start
}

fn end_document(out: &mut Vec<u8>, start: usize) {
    out.push(0);
    // A document over 2 GiB cannot be expressed in BSON; such values never fit a message.
    let len = i32::try_from(out.len() - start).unwrap_or(i32::MAX);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

fn write_table(out: &mut Vec<u8>, table: &Table) {
    write_entries(out, table.0.iter().map(|(k, v)| (k, v)));
}

fn write_entries<'v, K: Borrow<Key>>(
    out: &mut Vec<u8>,
    entries: impl IntoIterator<Item = (K, &'v Value)>,
) {
    let start = begin_document(out);
    for (k, v) in entries {
        match k.borrow() {
            Key::Int(i) => write_element(out, format!("#{i}").as_bytes(), v),
            Key::Str(s) => write_element(out, s, v),
        }
    }
    end_document(out, start);
}

fn write_cstring(out: &mut Vec<u8>, key: &[u8]) {
    let end = key.iter().position(|&b| b == 0).unwrap_or(key.len());
    out.extend_from_slice(&key[..end]);
    out.push(0);
}

fn write_element(out: &mut Vec<u8>, key: &[u8], value: &Value) {
    let kind = match value {
        Value::Nil => T_NULL,
        Value::Bool(_) => T_BOOL,
        Value::Int(_) => T_INT64,
        Value::Float(_) => T_DOUBLE,
        Value::Str(_) => T_STRING,
        Value::Table(_) => T_DOCUMENT,
        Value::Function(_) => T_BINARY,
    };
    out.push(kind);
    write_cstring(out, key);
    match value {
        Value::Nil => {}
        Value::Bool(b) => out.push(u8::from(*b)),
        Value::Int(i) => out.extend_from_slice(&i.to_le_bytes()),
        Value::Float(f) => out.extend_from_slice(&f.to_le_bytes()),
        Value::Str(s) => {
            out.extend_from_slice(&len32(s.len() + 1).to_le_bytes());
            out.extend_from_slice(s);
            out.push(0);
        }
        Value::Table(t) => write_table(out, t),
        Value::Function(code) => {
            let packed = gzip(code);
            out.extend_from_slice(&len32(packed.len()).to_le_bytes());
            out.push(SUBTYPE_GZIP_FUNCTION);
            out.extend_from_slice(&packed);
        }
    }
}

fn len32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, BsonError> {
    let mut out = Vec::new();
    GzDecoder::new(bytes)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut out)
        .map_err(|e| BsonError::Gzip(e.to_string()))?;
    if out.len() as u64 > MAX_INFLATED {
        return Err(BsonError::Inflated);
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq)]
enum DocKind {
    Document,
    Array,
}

/// One element of a document: type byte, key, and where its body starts.
type Element<'a> = (u8, &'a [u8], usize);

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&self, pos: usize, n: usize) -> Result<&[u8], BsonError> {
        pos.checked_add(n)
            .and_then(|end| self.bytes.get(pos..end))
            .ok_or(BsonError::Truncated(self.bytes.len()))
    }

    fn i32_at(&self, pos: usize) -> Result<i32, BsonError> {
        let b = self.take(pos, 4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64_at(&self, pos: usize) -> Result<[u8; 8], BsonError> {
        let b = self.take(pos, 8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(a)
    }

    fn cstring(&self, pos: usize) -> Result<&[u8], BsonError> {
        let rest = self.bytes.get(pos..).ok_or(BsonError::Truncated(pos))?;
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(BsonError::Truncated(self.bytes.len()))?;
        Ok(&rest[..len])
    }

    /// A length-prefixed string's bytes (prefix counts the trailing NUL).
    fn string(&self, pos: usize) -> Result<&[u8], BsonError> {
        let len = self.i32_at(pos)?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l >= 1)
            .ok_or(BsonError::Malformed {
                offset: pos,
                what: "bad string length",
            })?;
        let s = self.take(pos + 4, len)?;
        if s[len - 1] != 0 {
            return Err(BsonError::Malformed {
                offset: pos,
                what: "string without terminating NUL",
            });
        }
        Ok(&s[..len - 1])
    }

    /// The length and bounds of the embedded document at `pos`.
    fn doc_bounds(&self, pos: usize) -> Result<usize, BsonError> {
        let len = self.i32_at(pos)?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l >= 5)
            .ok_or(BsonError::Malformed {
                offset: pos,
                what: "bad document length",
            })?;
        let doc = self.take(pos, len)?;
        if doc[len - 1] != 0 {
            return Err(BsonError::Malformed {
                offset: pos,
                what: "document without terminating NUL",
            });
        }
        Ok(len)
    }

    /// How many bytes the body of an element of type `kind` at `pos` takes.
    fn element_len(&self, kind: u8, pos: usize) -> Result<usize, BsonError> {
        Ok(match kind {
            T_DOUBLE | T_DATETIME | T_INT64 | 0x11 => 8,
            T_STRING | 0x0D | T_SYMBOL => 4 + self.string(pos)?.len() + 1,
            T_DOCUMENT | T_ARRAY | 0x0F => self.doc_bounds(pos)?,
            T_BINARY => {
                let len = self.i32_at(pos)?;
                let len = usize::try_from(len).map_err(|_| BsonError::Malformed {
                    offset: pos,
                    what: "bad binary length",
                })?;
                self.take(pos + 5, len)?;
                5 + len
            }
            0x06 | T_NULL | 0x7F | 0xFF => 0,
            0x07 => 12,
            T_BOOL => 1,
            0x0B => {
                let a = self.cstring(pos)?.len() + 1;
                a + self.cstring(pos + a)?.len() + 1
            }
            0x0C => 4 + self.string(pos)?.len() + 1 + 12,
            T_INT32 => 4,
            0x13 => 16,
            other => {
                return Err(BsonError::UnknownType {
                    offset: pos,
                    kind: other,
                })
            }
        })
    }

    /// The elements of the document at `pos`: type byte, key and where the body starts.
    fn elements(&self, pos: usize, depth: usize) -> Result<Vec<Element<'_>>, BsonError> {
        if depth >= MAX_DEPTH {
            return Err(BsonError::TooDeep);
        }
        let end = pos + self.doc_bounds(pos)? - 1;
        let mut at = pos + 4;
        let mut out = Vec::new();
        while at < end {
            let kind = self.bytes[at];
            let key = self.cstring(at + 1)?;
            let body = at + 1 + key.len() + 1;
            let len = self.element_len(kind, body)?;
            if body + len > end {
                return Err(BsonError::Malformed {
                    offset: at,
                    what: "element runs past its document",
                });
            }
            out.push((kind, key, body));
            at = body + len;
        }
        if at != end {
            return Err(BsonError::Malformed {
                offset: at,
                what: "element runs past its document",
            });
        }
        Ok(out)
    }

    fn document(&self, pos: usize, depth: usize, kind: DocKind) -> Result<Table, BsonError> {
        let mut out = Table::default();
        for (element, key, body) in self.elements(pos, depth)? {
            if let Some(value) = self.value(element, body, depth)? {
                out.push(decode_key(key, kind), value);
            }
        }
        Ok(out)
    }

    /// The value of one element; `None` for the element types that are skipped.
    fn value(&self, kind: u8, pos: usize, depth: usize) -> Result<Option<Value>, BsonError> {
        Ok(Some(match kind {
            T_DOUBLE => Value::Float(f64::from_le_bytes(self.u64_at(pos)?)),
            T_STRING | T_SYMBOL => Value::str(self.string(pos)?),
            T_DOCUMENT => Value::Table(self.document(pos, depth + 1, DocKind::Document)?),
            T_ARRAY => Value::Table(self.document(pos, depth + 1, DocKind::Array)?),
            T_BINARY => {
                let len = self.element_len(T_BINARY, pos)? - 5;
                let data = self.take(pos + 5, len)?;
                match self.bytes[pos + 4] {
                    SUBTYPE_GZIP_FUNCTION => Value::Function(Arc::from(gunzip(data)?)),
                    SUBTYPE_FUNCTION => Value::Function(Arc::from(data)),
                    SUBTYPE_GZIP_STRING => Value::Str(gunzip(data)?.into()),
                    SUBTYPE_HANDLE => return Ok(None),
                    _ => Value::str(data),
                }
            }
            T_BOOL => Value::Bool(self.take(pos, 1)?[0] != 0),
            T_DATETIME => Value::Int(i64::from_le_bytes(self.u64_at(pos)?).div_euclid(1000)),
            T_NULL => Value::Nil,
            T_INT32 => Value::Int(i64::from(self.i32_at(pos)?)),
            T_INT64 => Value::Int(i64::from_le_bytes(self.u64_at(pos)?)),
            _ => return Ok(None),
        }))
    }
}

/// A document key: `"#n"` in canonical decimal → integer key; in arrays any integer text too.
fn decode_key(key: &[u8], kind: DocKind) -> Key {
    let as_int = |text: &[u8]| -> Option<i64> {
        let s = std::str::from_utf8(text).ok()?;
        let n: i64 = s.parse().ok()?;
        (n.to_string() == s).then_some(n)
    };
    if let Some(n) = key.strip_prefix(b"#").and_then(as_int) {
        return Key::Int(n);
    }
    if kind == DocKind::Array {
        if let Some(n) = std::str::from_utf8(key).ok().and_then(|s| s.parse().ok()) {
            return Key::Int(n);
        }
    }
    Key::str(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(entries: Vec<(Key, Value)>) -> Table {
        Table(entries)
    }

    #[test]
    fn scalar_elements_use_the_spec_types() {
        let t = table(vec![
            ("n".into(), Value::Nil),
            ("b".into(), Value::Bool(true)),
            ("i".into(), Value::Int(-7)),
            ("f".into(), Value::Float(2.5)),
            ("s".into(), Value::str("a\0b")),
            (Key::Int(3), Value::Int(1)),
        ]);
        let bytes = encode_document(&t);
        let kinds: Vec<u8> = {
            let mut v = Vec::new();
            let mut pos = 4;
            while bytes[pos] != 0 {
                v.push(bytes[pos]);
                let key_len = bytes[pos + 1..].iter().position(|&b| b == 0).unwrap();
                let body = pos + 2 + key_len;
                pos = body
                    + Reader { bytes: &bytes }
                        .element_len(bytes[pos], body)
                        .unwrap();
            }
            v
        };
        assert_eq!(kinds, vec![0x0A, 0x08, 0x12, 0x01, 0x02, 0x12]);
        assert!(
            bytes.windows(3).any(|w| w == b"#3\0"),
            "integer keys become #n"
        );
        assert_eq!(decode_document(&bytes).unwrap(), t);
    }

    #[test]
    fn wrong_length_prefix_is_not_bson() {
        let mut bytes = encode_document(&table(vec![("a".into(), Value::Int(1))]));
        bytes.push(0);
        assert_eq!(decode_document(&bytes), Err(BsonError::NotBson));
        assert_eq!(decode_document(b"abc"), Err(BsonError::NotBson));
        assert_eq!(decode_document(b""), Err(BsonError::NotBson));
        assert_eq!(BsonError::NotBson.to_string(), "This is not BSON data.");
    }

    #[test]
    fn malformed_inner_lengths_are_errors_not_panics() {
        // a string element whose length runs past the end
        let bytes = [15, 0, 0, 0, 2, b'a', 0, 100, 0, 0, 0, b'x', 0, 0, 0];
        assert!(decode_document(&bytes).is_err());
        // an unknown element type
        let bytes = [8, 0, 0, 0, 0x42, b'a', 0, 0];
        assert!(matches!(
            decode_document(&bytes),
            Err(BsonError::UnknownType { kind: 0x42, .. })
        ));
        // nested document length too large
        let bytes = [13, 0, 0, 0, 3, b'a', 0, 50, 0, 0, 0, 0, 0];
        assert!(decode_document(&bytes).is_err());
    }

    #[test]
    fn functions_travel_as_gzip_subtype_0x73() {
        let code: Arc<[u8]> = Arc::from(&b"\x1bLua bytecode bytes bytes bytes"[..]);
        let t = table(vec![("f".into(), Value::Function(code.clone()))]);
        let bytes = encode_document(&t);
        let pos = 4 + 1 + 2; // type, "f\0"
        assert_eq!(bytes[4], 0x05);
        assert_eq!(bytes[pos + 4], 0x73);
        assert_eq!(&bytes[pos + 5..pos + 7], &[0x1f, 0x8b], "gzip magic");
        assert_eq!(decode_document(&bytes).unwrap(), t);
    }

    fn binary_doc(subtype: u8, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let start = begin_document(&mut out);
        out.push(T_BINARY);
        write_cstring(&mut out, b"x");
        out.extend_from_slice(&(data.len() as i32).to_le_bytes());
        out.push(subtype);
        out.extend_from_slice(data);
        end_document(&mut out, start);
        out
    }

    #[test]
    fn binary_subtypes_decode_per_spec() {
        let raw = decode_document(&binary_doc(0x01, b"code")).unwrap();
        assert_eq!(
            raw.get_str("x"),
            Some(&Value::Function(Arc::from(&b"code"[..])))
        );
        let s = decode_document(&binary_doc(0x7E, &gzip(b"long text"))).unwrap();
        assert_eq!(s.get_str("x"), Some(&Value::str("long text")));
        let other = decode_document(&binary_doc(0x00, b"\x00\xff")).unwrap();
        assert_eq!(other.get_str("x"), Some(&Value::str([0u8, 0xff])));
        let handle = decode_document(&binary_doc(0x7D, &[1; 16])).unwrap();
        assert_eq!(handle, Table::default());
        assert!(matches!(
            decode_document(&binary_doc(0x73, b"not gzip")),
            Err(BsonError::Gzip(_))
        ));
    }

    #[test]
    fn foreign_types_map_or_are_skipped() {
        let mut out = Vec::new();
        let start = begin_document(&mut out);
        out.push(T_INT32);
        write_cstring(&mut out, b"i");
        out.extend_from_slice(&41i32.to_le_bytes());
        out.push(T_DATETIME);
        write_cstring(&mut out, b"d");
        out.extend_from_slice(&(-1500i64).to_le_bytes());
        out.push(0x07); // ObjectId: skipped
        write_cstring(&mut out, b"o");
        out.extend_from_slice(&[7; 12]);
        out.push(T_SYMBOL);
        write_cstring(&mut out, b"s");
        out.extend_from_slice(&3i32.to_le_bytes());
        out.extend_from_slice(b"ab\0");
        out.push(T_ARRAY);
        write_cstring(&mut out, b"a");
        let inner = begin_document(&mut out);
        out.push(T_INT64);
        write_cstring(&mut out, b"0");
        out.extend_from_slice(&5i64.to_le_bytes());
        out.push(T_INT64);
        write_cstring(&mut out, b"1");
        out.extend_from_slice(&6i64.to_le_bytes());
        end_document(&mut out, inner);
        end_document(&mut out, start);
        let t = decode_document(&out).unwrap();
        assert_eq!(t.get_str("i"), Some(&Value::Int(41)));
        assert_eq!(t.get_str("d"), Some(&Value::Int(-2)));
        assert_eq!(t.get_str("o"), None);
        assert_eq!(t.get_str("s"), Some(&Value::str("ab")));
        let Some(Value::Table(a)) = t.get_str("a") else {
            panic!("no array")
        };
        assert_eq!(
            a.0,
            vec![(Key::Int(0), Value::Int(5)), (Key::Int(1), Value::Int(6))]
        );
    }

    #[test]
    fn argument_lists() {
        let one = decode_args(&encode_args(&[Value::Int(1)])).unwrap();
        assert_eq!(one.args.to_vec(), vec![Value::Int(1)]);
        let none = decode_args(&encode_args(&[])).unwrap();
        assert!(none.args.is_empty());
        let many = vec![Value::Int(1), Value::Nil, Value::str("x")];
        let bytes = encode_args(&many);
        assert!(
            bytes.windows(3).any(|w| w == b"\x121\0"),
            "keys are 1-based"
        );
        assert_eq!(decode_args(&bytes).unwrap().args.to_vec(), many);
        // a single table stays one argument
        let t = Value::Table(table(vec![
            (Key::Int(1), Value::Int(1)),
            (Key::Int(2), Value::Int(2)),
        ]));
        assert_eq!(
            decode_args(&encode_args(std::slice::from_ref(&t)))
                .unwrap()
                .args
                .to_vec(),
            vec![t]
        );
        // a connector's array with a ".name" global and a dropped key
        let mut out = Vec::new();
        let start = begin_document(&mut out);
        out.push(T_ARRAY);
        write_cstring(&mut out, b"v");
        let inner = begin_document(&mut out);
        write_element(&mut out, b"0", &Value::Int(1));
        write_element(&mut out, b".who", &Value::str("ann"));
        write_element(&mut out, b"junk", &Value::Int(9));
        write_element(&mut out, b"#5", &Value::Int(2));
        end_document(&mut out, inner);
        end_document(&mut out, start);
        let d = decode_args(&out).unwrap();
        assert_eq!(d.args.to_vec(), vec![Value::Int(1), Value::Int(2)]);
        assert_eq!(d.globals, vec![(b"who".to_vec(), Value::str("ann"))]);
        assert_eq!(
            decode_args(&encode_document(&Table::default())),
            Err(BsonError::NoArgs)
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut v = Value::Int(1);
        for _ in 0..MAX_DEPTH + 5 {
            v = Value::Table(table(vec![(Key::Int(1), v)]));
        }
        let Value::Table(t) = v else { unreachable!() };
        assert_eq!(
            decode_document(&encode_document(&t)),
            Err(BsonError::TooDeep)
        );
    }

    fn key() -> impl Strategy<Value = Key> {
        prop_oneof![
            any::<i64>().prop_map(Key::Int),
            // string keys that cannot be read as "#n" and hold no NUL
            "[a-z][a-z0-9_#.]{0,8}".prop_map(Key::str),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<f64>()
                .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
                .prop_map(Value::Float),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(|b| Value::Str(b.into())),
            proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(|b| Value::Function(Arc::from(b))),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            proptest::collection::btree_map(key(), inner, 0..8)
                .prop_map(|m| Value::Table(Table(m.into_iter().collect())))
        })
    }

    proptest! {
        #[test]
        fn documents_round_trip(entries in proptest::collection::btree_map(key(), value(), 0..8)) {
            let t = Table(entries.into_iter().collect());
            prop_assert_eq!(decode_document(&encode_document(&t)).unwrap(), t);
        }

        #[test]
        fn argument_lists_round_trip(values in proptest::collection::vec(value(), 0..5)) {
            let back = decode_args(&encode_args(&values)).unwrap();
            prop_assert_eq!(back.args.to_vec(), values);
            prop_assert!(back.globals.is_empty());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_document(&bytes);
            let _ = decode_args(&bytes);
        }

        #[test]
        fn corrupted_documents_never_panic(
            entries in proptest::collection::btree_map(key(), value(), 1..6),
            at in any::<usize>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = encode_document(&Table(entries.into_iter().collect()));
            let i = 4 + at % (bytes.len() - 4);
            bytes[i] = byte;
            let _ = decode_document(&bytes);
            let _ = decode_args(&bytes);
        }
    }
}
