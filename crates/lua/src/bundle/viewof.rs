//! `bundle.viewof(format [, start] [, rows] [, fn])`: typed record views over files.
//!
//! Design: a root view maps its file region **privately** (`MAP_PRIVATE`, copy-on-write) with
//! `memmap2`, so writes stay in this process until `commit` writes the region back to the file
//! (`pwrite`, plus `fdatasync` for `"sync"`; `"async"`, the default, leaves the flush to the
//! kernel). `rollback` re-reads the region from the file over the private pages, discarding
//! uncommitted writes. Sub-views share the root's mapping (one `Rc`), so they see and make the
//! same changes; they have `scope` but no `commit`/`rollback`. `scope` takes a whole-file
//! `flock` (exclusive `"rw"`, shared `"ro"`) on the root's file around `fn`.
//!
//! A mapping of a file that another process truncates below the mapped region faults on access
//! (SIGBUS), as any mapping does; the lock of `scope` is advisory. Views are limited to
//! [`MAX_VIEW_BYTES`]. Rows are 1-based; a view made with a layout **table**
//! (`{ file, { "c8 i" } }`) or whose rows have several fields returns row objects (Lua indexing
//! yields one value, so several fields cannot come back as values); a view of one-field rows
//! made without a layout table returns the field's value, and `view[i] = v` writes that field. `L` (uint64) values above `math.maxinteger` read as negative
//! integers (the same 64 bits). Writing a non-number to a numeric field, or a non-string (or
//! number) to a `c`/`s` field, is an error.

use super::{bad_argument, error, type_name};
use memmap2::{MmapMut, MmapOptions};
use mlua::{AnyUserData, Lua, MetaMethod, MultiValue, UserData, UserDataMethods, Value};
use rustix::fs::{flock, FlockOperation};
use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::rc::Rc;

/// The largest view (rows × row size) that may be mapped.
pub const MAX_VIEW_BYTES: usize = 1 << 30;

/// Field codes of a layout string.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Code {
    Chars,
    CString,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

impl Code {
    fn parse(c: char) -> Option<Code> {
        Some(match c {
            'c' => Code::Chars,
            's' => Code::CString,
            'b' => Code::I8,
            'B' => Code::U8,
            'h' => Code::I16,
            'H' => Code::U16,
            'i' => Code::I32,
            'I' => Code::U32,
            'l' => Code::I64,
            'L' => Code::U64,
            'f' => Code::F32,
            'd' => Code::F64,
            _ => return None,
        })
    }

    fn width(self) -> usize {
        match self {
            Code::Chars | Code::CString | Code::I8 | Code::U8 => 1,
            Code::I16 | Code::U16 => 2,
            Code::I32 | Code::U32 | Code::F32 => 4,
            Code::I64 | Code::U64 | Code::F64 => 8,
        }
    }
}

/// One field of a row.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Field {
    code: Code,
    count: usize,
    offset: usize,
}

impl Field {
    fn len(&self) -> usize {
        self.code.width() * self.count
    }
}

/// The fields of a row and how rows are handed to Lua.
#[derive(Debug, PartialEq)]
struct Layout {
    fields: Vec<Field>,
    size: usize,
    /// Made with a layout table, or rows of several fields: `view[i]` is a row object.
    row_objects: bool,
}

impl Layout {
    fn default_bytes() -> Layout {
        Layout {
            fields: vec![Field {
                code: Code::U8,
                count: 1,
                offset: 0,
            }],
            size: 1,
            row_objects: false,
        }
    }

    fn push(&mut self, code: Code, count: usize) -> mlua::Result<()> {
        if count == 0 {
            return Err(error("viewof", "a field needs a count of at least 1"));
        }
        let len = count
            .checked_mul(code.width())
            .filter(|&l| l <= MAX_VIEW_BYTES)
            .ok_or_else(|| error("viewof", "a field is larger than a view may be"))?;
        self.fields.push(Field {
            code,
            count,
            offset: self.size,
        });
        self.size += len;
        if self.size > MAX_VIEW_BYTES {
            return Err(error("viewof", "a row is larger than a view may be"));
        }
        Ok(())
    }

    /// Adds the fields of a layout string such as `"c8 i H4"`.
    fn push_codes(&mut self, codes: &str) -> mlua::Result<()> {
        let mut chars = codes.chars().peekable();
        while let Some(c) = chars.next() {
            if c == ' ' {
                continue;
            }
            let code = Code::parse(c).ok_or_else(|| {
                error(
                    "viewof",
                    format!("unknown field code '{c}' in layout \"{codes}\""),
                )
            })?;
            let mut digits = String::new();
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                digits.push(d);
            }
            let count = if digits.is_empty() {
                1
            } else {
                digits
                    .parse()
                    .map_err(|_| error("viewof", format!("field count {digits} is too large")))?
            };
            self.push(code, count)?;
        }
        Ok(())
    }

    /// Adds one layout item: a byte count or a string of codes.
    fn push_item(&mut self, item: Value) -> mlua::Result<()> {
        match item {
            Value::Integer(n) => self.push(Code::U8, usize::try_from(n).unwrap_or(0)),
            Value::Number(n) if n.fract() == 0.0 && n >= 0.0 && n <= MAX_VIEW_BYTES as f64 => {
                self.push(Code::U8, n as usize)
            }
            Value::String(s) => self.push_codes(&s.to_str()?),
            other => Err(error(
                "viewof",
                format!(
                    "a layout item must be a byte count or a string of field codes, got {}",
                    other.to_string()?
                ),
            )),
        }
    }
}

/// The memory of a root view: its file and the private mapping of its region.
struct Segment {
    file: File,
    start: u64,
    map: MmapMut,
}

/// A view (root or sub-view) as Lua sees it.
struct View {
    memory: Rc<RefCell<Segment>>,
    /// Where the view's first row starts in the mapping.
    base: usize,
    layout: Rc<Layout>,
    count: usize,
    root: bool,
}

/// A row object of a view made with a layout table.
struct Row {
    memory: Rc<RefCell<Segment>>,
    at: usize,
    layout: Rc<Layout>,
}

/// The Lua function `bundle.viewof`.
pub fn viewof(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let mut args: Vec<Value> = args.into_iter().collect();
    let callback = match args.last() {
        Some(Value::Function(f)) => {
            let f = f.clone();
            args.pop();
            Some(f)
        }
        _ => None,
    };
    let format = if args.is_empty() {
        Value::Nil
    } else {
        args.remove(0)
    };
    let count_arg = |v: &Value, position: usize, what: &str| -> mlua::Result<usize> {
        let n = match *v {
            Value::Integer(i) => Some(i),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 2f64.powi(63) => Some(n as i64),
            _ => None,
        };
        match n {
            Some(n) => usize::try_from(n)
                .map_err(|_| error("viewof", format!("{what} must not be negative, got {n}"))),
            None => Err(bad_argument("viewof", position, "integer", v)),
        }
    };
    let (start, rows) = match args.as_slice() {
        [] => (0, None),
        [rows] => (0, Some(count_arg(rows, 2, "rows")?)),
        [start, rows] => (
            count_arg(start, 2, "start")?,
            Some(count_arg(rows, 3, "rows")?),
        ),
        [_, _, extra, ..] => return Err(bad_argument("viewof", 4, "function or nothing", extra)),
    };
    let view = open(format, start, rows)?;
    let view = lua.create_userdata(view)?;
    match callback {
        Some(f) => f.call(view),
        None => Ok(MultiValue::from_iter([Value::UserData(view)])),
    }
}

/// Where a view's memory comes from.
enum Source {
    File(String),
    Parent(AnyUserData),
}

fn open(format: Value, start: usize, rows: Option<usize>) -> mlua::Result<View> {
    let mut layout = Layout {
        fields: Vec::new(),
        size: 0,
        row_objects: false,
    };
    let source = match format {
        Value::String(s) => Source::File(s.to_str()?.to_string()),
        Value::UserData(ud) => Source::Parent(ud),
        Value::Table(t) => {
            let source = match t.raw_get::<Value>(1)? {
                Value::String(s) => Source::File(s.to_str()?.to_string()),
                Value::UserData(ud) => Source::Parent(ud),
                other => {
                    return Err(bad_argument(
                        "viewof",
                        1,
                        "a file name or a view at format[1]",
                        &other,
                    ))
                }
            };
            for item in t.sequence_values::<Value>().skip(1) {
                match item? {
                    Value::Table(items) => {
                        layout.row_objects = true;
                        for item in items.sequence_values::<Value>() {
                            layout.push_item(item?)?;
                        }
                    }
                    item => layout.push_item(item)?,
                }
            }
            source
        }
        other => return Err(bad_argument("viewof", 1, "string, table or view", &other)),
    };
    if layout.fields.is_empty() {
        layout = Layout {
            row_objects: layout.row_objects,
            ..Layout::default_bytes()
        };
    }
    layout.row_objects |= layout.fields.len() > 1;
    let size = layout.size;
    let bytes_for = |rows: usize| {
        rows.checked_mul(size)
            .filter(|&b| b <= MAX_VIEW_BYTES)
            .ok_or_else(|| {
                error(
                    "viewof",
                    format!(
                        "{rows} rows of {size} bytes exceed the {MAX_VIEW_BYTES}-byte view limit"
                    ),
                )
            })
    };
    match source {
        Source::Parent(ud) => {
            let parent = ud
                .borrow::<View>()
                .map_err(|_| error("viewof", "the source is not a view"))?;
            let available = parent.count * parent.layout.size;
            let (offset, count) = match rows {
                Some(rows) => {
                    let len = bytes_for(rows)?;
                    if start.checked_add(len).is_none_or(|end| end > available) {
                        return Err(error(
                            "viewof",
                            format!("No buffers available. ({start} + {len} > {available})"),
                        ));
                    }
                    (start, rows)
                }
                None => (0, available / size),
            };
            Ok(View {
                memory: Rc::clone(&parent.memory),
                base: parent.base + offset,
                layout: Rc::new(layout),
                count,
                root: false,
            })
        }
        Source::File(name) => {
            let name = name.trim_start_matches(' ').to_string();
            let fail =
                |what: &str, e: std::io::Error| error("viewof", format!("{what} '{name}': {e}"));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(rows.is_some())
                .truncate(false)
                .open(&name)
                .map_err(|e| fail("cannot open", e))?;
            let meta = file.metadata().map_err(|e| fail("cannot stat", e))?;
            if !meta.is_file() {
                return Err(error("viewof", format!("'{name}' is not a regular file")));
            }
            let (len, count) = match rows {
                Some(rows) => {
                    let len = bytes_for(rows)?;
                    let end = (start as u64).saturating_add(len as u64);
                    if meta.len() < end {
                        file.set_len(end).map_err(|e| fail("cannot extend", e))?;
                    }
                    (len, rows)
                }
                None => {
                    let count = usize::try_from(meta.len() / size as u64).unwrap_or(usize::MAX);
                    (bytes_for(count)?, count)
                }
            };
            if len == 0 {
                return Err(error(
                    "viewof",
                    format!("nothing to map: '{name}' holds no whole row"),
                ));
            }
            // SAFETY: the mapping is private (copy-on-write), so nothing else writes its pages
            // once touched; like every file mapping it relies on the file not being truncated
            // below the region while mapped (module docs).
            let map = unsafe {
                MmapOptions::new()
                    .offset(start as u64)
                    .len(len)
                    .map_copy(&file)
            }
            .map_err(|e| fail("cannot map", e))?;
            Ok(View {
                memory: Rc::new(RefCell::new(Segment {
                    file,
                    start: start as u64,
                    map,
                })),
                base: 0,
                layout: Rc::new(layout),
                count,
                root: true,
            })
        }
    }
}

/// Copies `len` bytes at `at` out of the mapping.
fn read_bytes(memory: &RefCell<Segment>, at: usize, len: usize) -> mlua::Result<Vec<u8>> {
    memory
        .borrow()
        .map
        .get(at..at + len)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| error("viewof", "a row lies outside the mapped region"))
}

fn write_bytes(memory: &RefCell<Segment>, at: usize, bytes: &[u8]) {
    if let Some(target) = memory.borrow_mut().map.get_mut(at..at + bytes.len()) {
        target.copy_from_slice(bytes);
    }
}

/// The Lua value of one field of the row starting at `row`.
fn read_field(
    lua: &Lua,
    memory: &RefCell<Segment>,
    row: usize,
    field: &Field,
) -> mlua::Result<Value> {
    let bytes = read_bytes(memory, row + field.offset, field.len())?;
    let text = |b: &[u8]| lua.create_string(b).map(Value::String);
    match field.code {
        Code::Chars => text(&bytes),
        Code::CString => {
            let limit = &bytes[..field.count.saturating_sub(1).min(bytes.len())];
            let end = limit.iter().position(|&b| b == 0).unwrap_or(limit.len());
            text(&limit[..end])
        }
        code => {
            let values: Vec<Value> = bytes
                .chunks_exact(code.width())
                .map(|b| number(code, b))
                .collect();
            if field.count == 1 {
                Ok(values.into_iter().next().unwrap_or(Value::Nil))
            } else {
                Ok(Value::Table(lua.create_sequence_from(values)?))
            }
        }
    }
}

/// Decodes one element of a numeric field (native byte order).
fn number(code: Code, b: &[u8]) -> Value {
    let mut buf = [0u8; 8];
    buf[..b.len()].copy_from_slice(b);
    let [b0, b1, b2, b3, ..] = buf;
    match code {
        Code::I8 => Value::Integer(i64::from(b0 as i8)),
        Code::U8 => Value::Integer(i64::from(b0)),
        Code::I16 => Value::Integer(i64::from(i16::from_ne_bytes([b0, b1]))),
        Code::U16 => Value::Integer(i64::from(u16::from_ne_bytes([b0, b1]))),
        Code::I32 => Value::Integer(i64::from(i32::from_ne_bytes([b0, b1, b2, b3]))),
        Code::U32 => Value::Integer(i64::from(u32::from_ne_bytes([b0, b1, b2, b3]))),
        Code::I64 | Code::U64 => Value::Integer(i64::from_ne_bytes(buf)),
        Code::F32 => Value::Number(f64::from(f32::from_ne_bytes([b0, b1, b2, b3]))),
        Code::F64 => Value::Number(f64::from_ne_bytes(buf)),
        Code::Chars | Code::CString => Value::Nil,
    }
}

/// Encodes one element of a numeric field into `out` (native byte order).
fn encode_number(code: Code, v: &Value, out: &mut [u8], position: usize) -> mlua::Result<()> {
    let (i, f) = match *v {
        Value::Integer(i) => (i, i as f64),
        Value::Number(n) => (n as i64, n),
        ref other => {
            return Err(error(
                "viewof",
                format!("field {position} holds numbers, not {}", type_name(other)),
            ))
        }
    };
    let bytes: Vec<u8> = match code {
        Code::I8 | Code::U8 => vec![i as u8],
        Code::I16 | Code::U16 => (i as u16).to_ne_bytes().to_vec(),
        Code::I32 | Code::U32 => (i as u32).to_ne_bytes().to_vec(),
        Code::I64 | Code::U64 => i.to_ne_bytes().to_vec(),
        Code::F32 => (f as f32).to_ne_bytes().to_vec(),
        Code::F64 => f.to_ne_bytes().to_vec(),
        Code::Chars | Code::CString => Vec::new(),
    };
    out.copy_from_slice(&bytes);
    Ok(())
}

/// Writes a Lua value into one field of the row starting at `row`; `position` names the field
/// in messages.
fn write_field(
    memory: &RefCell<Segment>,
    row: usize,
    field: &Field,
    v: &Value,
    position: usize,
) -> mlua::Result<()> {
    let at = row + field.offset;
    let mut bytes = read_bytes(memory, at, field.len())?;
    match field.code {
        Code::Chars | Code::CString => {
            let text = match v {
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Integer(_) | Value::Number(_) => v.to_string()?.into_bytes(),
                other => {
                    return Err(error(
                        "viewof",
                        format!("field {position} holds text, not {}", type_name(other)),
                    ))
                }
            };
            let room = if field.code == Code::CString {
                field.count - 1
            } else {
                field.count
            };
            let n = text.len().min(room);
            bytes[..n].copy_from_slice(&text[..n]);
            bytes[n..].fill(0);
        }
        code if field.count == 1 => encode_number(code, v, &mut bytes, position)?,
        code => {
            let Value::Table(items) = v else {
                return Err(error(
                    "viewof",
                    format!(
                        "field {position} is an array of {}: assign a table",
                        field.count
                    ),
                ));
            };
            for (i, chunk) in bytes.chunks_exact_mut(code.width()).enumerate() {
                let item: Value = items.raw_get(i + 1)?;
                if !item.is_nil() {
                    encode_number(code, &item, chunk, position)?;
                }
            }
        }
    }
    write_bytes(memory, at, &bytes);
    Ok(())
}

/// A 1-based index from a Lua key, if it is an integral number.
fn index_of(key: &Value) -> Option<i64> {
    match *key {
        Value::Integer(i) => Some(i),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 2f64.powi(63) => Some(n as i64),
        _ => None,
    }
}

impl View {
    /// The byte offset of row `i` (1-based) in the mapping, if the row exists.
    fn row_at(&self, i: i64) -> Option<usize> {
        let i = usize::try_from(i).ok()?.checked_sub(1)?;
        (i < self.count).then(|| self.base + i * self.layout.size)
    }

    fn get_row(&self, lua: &Lua, key: &Value) -> mlua::Result<Value> {
        let Some(at) = index_of(key).and_then(|i| self.row_at(i)) else {
            return Ok(Value::Nil);
        };
        if self.layout.row_objects {
            let row = Row {
                memory: Rc::clone(&self.memory),
                at,
                layout: Rc::clone(&self.layout),
            };
            return Ok(Value::UserData(lua.create_userdata(row)?));
        }
        read_field(lua, &self.memory, at, &self.layout.fields[0])
    }

    fn set_row(&self, key: &Value, value: &Value) -> mlua::Result<()> {
        let Some(i) = index_of(key) else {
            return Err(error(
                "viewof",
                format!("cannot assign to '{}' of a view", key.to_string()?),
            ));
        };
        let Some(at) = self.row_at(i) else {
            return Ok(());
        };
        match value {
            Value::Table(items) if self.layout.row_objects => {
                for (n, field) in self.layout.fields.iter().enumerate() {
                    let item: Value = items.raw_get(n + 1)?;
                    if !item.is_nil() {
                        write_field(&self.memory, at, field, &item, n + 1)?;
                    }
                }
                Ok(())
            }
            _ => write_field(&self.memory, at, &self.layout.fields[0], value, 1),
        }
    }

    /// The whole region of this view in the mapping (its pointer names the view in `tostring`).
    fn address(&self) -> usize {
        self.memory.borrow().map.as_ptr() as usize + self.base
    }
}

/// Drops a leading `self` so that `v.commit(...)` and `v:commit(...)` both work.
fn without_self(args: MultiValue) -> Vec<Value> {
    let mut args: Vec<Value> = args.into_iter().collect();
    if matches!(args.first(), Some(Value::UserData(ud)) if ud.is::<View>()) {
        args.remove(0);
    }
    args
}

fn option(args: &[Value], choices: &[&str]) -> mlua::Result<usize> {
    match args.first() {
        None | Some(Value::Nil) => Ok(0),
        Some(Value::String(s)) => {
            let s = s.to_str()?;
            choices.iter().position(|c| *c == &*s).ok_or_else(|| {
                error(
                    "viewof",
                    format!(
                        "invalid option '{}' (expected {})",
                        &*s,
                        choices.join(" or ")
                    ),
                )
            })
        }
        Some(other) => Err(bad_argument("viewof", 1, "string", other)),
    }
}

fn commit(memory: &RefCell<Segment>, args: MultiValue) -> mlua::Result<()> {
    let sync = option(&without_self(args), &["async", "sync"])? == 1;
    let segment = memory.borrow();
    let fail = |e: std::io::Error| error("viewof", format!("commit failed: {e}"));
    segment
        .file
        .write_all_at(&segment.map, segment.start)
        .map_err(fail)?;
    if sync {
        segment.file.sync_data().map_err(fail)?;
    }
    Ok(())
}

fn rollback(memory: &RefCell<Segment>) -> mlua::Result<()> {
    let mut segment = memory.borrow_mut();
    let Segment { file, start, map } = &mut *segment;
    file.read_exact_at(&mut map[..], *start)
        .map_err(|e| error("viewof", format!("rollback failed: {e}")))
}

fn scope(memory: &RefCell<Segment>, args: MultiValue) -> mlua::Result<MultiValue> {
    let mut args = without_self(args);
    let f = match args.pop() {
        Some(Value::Function(f)) => f,
        other => {
            return Err(bad_argument(
                "viewof",
                args.len() + 1,
                "function",
                &other.unwrap_or(Value::Nil),
            ))
        }
    };
    let shared = option(&args, &["rw", "ro"])? == 1;
    let file = memory
        .borrow()
        .file
        .try_clone()
        .map_err(|e| error("viewof", format!("cannot lock: {e}")))?;
    let mode = if shared {
        FlockOperation::LockShared
    } else {
        FlockOperation::LockExclusive
    };
    flock(&file, mode).map_err(|e| error("viewof", format!("cannot lock: {e}")))?;
    let result = f.call::<MultiValue>(());
    let unlocked = flock(&file, FlockOperation::Unlock);
    let results = result?;
    unlocked.map_err(|e| error("viewof", format!("cannot unlock: {e}")))?;
    Ok(results)
}

/// A Lua function bound to a view's memory.
fn bound<R: mlua::IntoLuaMulti + 'static>(
    lua: &Lua,
    memory: &Rc<RefCell<Segment>>,
    f: fn(&RefCell<Segment>, MultiValue) -> mlua::Result<R>,
) -> mlua::Result<Value> {
    let memory = Rc::clone(memory);
    Ok(Value::Function(lua.create_function(
        move |_, args: MultiValue| f(&memory, args),
    )?))
}

impl UserData for View {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, view, key: Value| {
            if let Value::String(s) = &key {
                let value = match &*s.to_str()? {
                    "size" => Value::Integer(view.layout.size as i64),
                    "count" => Value::Integer(view.count as i64),
                    "commit" if view.root => bound(lua, &view.memory, commit)?,
                    "rollback" if view.root => bound(lua, &view.memory, |m, _| rollback(m))?,
                    "scope" => bound(lua, &view.memory, scope)?,
                    _ => Value::Nil,
                };
                return Ok(value);
            }
            view.get_row(lua, &key)
        });
        methods.add_meta_method(
            MetaMethod::NewIndex,
            |_, view, (key, value): (Value, Value)| view.set_row(&key, &value),
        );
        methods.add_meta_method(MetaMethod::Len, |_, view, ()| Ok(view.count));
        methods.add_meta_method(MetaMethod::ToString, |_, view, ()| {
            Ok(format!(
                "viewof: 0x{:x} [{} size, {} count]",
                view.address(),
                view.layout.size,
                view.count
            ))
        });
    }
}

impl UserData for Row {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, row, key: Value| {
            let field = index_of(&key)
                .and_then(|i| usize::try_from(i).ok()?.checked_sub(1))
                .and_then(|i| row.layout.fields.get(i));
            match field {
                Some(field) => read_field(lua, &row.memory, row.at, field),
                None => Ok(Value::Nil),
            }
        });
        methods.add_meta_method(
            MetaMethod::NewIndex,
            |_, row, (key, value): (Value, Value)| {
                let Some(i) = index_of(&key) else {
                    return Err(error(
                        "viewof",
                        format!("row fields are numbered from 1, not '{}'", key.to_string()?),
                    ));
                };
                let field = usize::try_from(i)
                    .ok()
                    .and_then(|i| Some((i, row.layout.fields.get(i.checked_sub(1)?)?)));
                match field {
                    Some((n, field)) => write_field(&row.memory, row.at, field, &value, n),
                    None => Ok(()),
                }
            },
        );
        methods.add_meta_method(MetaMethod::Len, |_, row, ()| Ok(row.layout.fields.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::testing::{error_of, lua, printed};

    /// A state whose `DIR` global is a fresh temporary directory (paths are built from it, so
    /// tests do not change the process's current directory).
    fn setup() -> (Lua, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let lua = lua();
        lua.globals()
            .set("DIR", dir.path().display().to_string())
            .unwrap();
        (lua, dir)
    }

    #[test]
    fn spec_example() {
        let (lua, dir) = setup();
        let out = printed(
            &lua,
            r#"
            local v = bundle.viewof({ DIR .. "/people.bin", { "c8 i" } }, 3)
            v[2] = { "ann", 41 }
            print(v.size, v.count, v[2][2])
            v.commit("sync")
            "#,
        );
        assert_eq!(out, "12\t3\t41\n");
        let bytes = std::fs::read(dir.path().join("people.bin")).unwrap();
        assert_eq!(bytes.len(), 36);
        assert_eq!(&bytes[12..20], b"ann\0\0\0\0\0");
        assert_eq!(&bytes[20..24], &41i32.to_ne_bytes());
    }

    #[test]
    fn commit_persists_and_rollback_discards() {
        let (lua, dir) = setup();
        let out = printed(
            &lua,
            r#"
            local v = bundle.viewof(DIR .. "/bytes.bin", 4)
            v[1] = 7
            v.commit()
            v[2] = 9
            print(v[1], v[2], #v)
            v.rollback()
            print(v[1], v[2])
            v:commit("sync")
            local again = bundle.viewof(DIR .. "/bytes.bin")
            print(again.count, again[1], again[2], again[5], again[0])
            "#,
        );
        assert_eq!(out, "7\t9\t4\n7\t0\n4\t7\t0\tnil\tnil\n");
        assert_eq!(
            std::fs::read(dir.path().join("bytes.bin")).unwrap(),
            vec![7, 0, 0, 0]
        );
    }

    #[test]
    fn field_codes_and_arrays() {
        let (lua, _dir) = setup();
        let out = printed(
            &lua,
            r#"
            local v = bundle.viewof({ DIR .. "/typed.bin", { "c3 s4 b B h H i I l L f d", "H2", 2 } }, 2)
            print(v.size)
            v[1] = { "abcdef", "abcdef", -1, 255 + 2, -2, 65535, -3, 4294967295, math.mininteger, -1, 0.5, 0.25, { 1, 2 }, { 3 } }
            local r = v[1]
            print(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9] == math.mininteger, r[10], r[11], r[12])
            print(r[13][1], r[13][2], r[14][1], r[14][2], r[15], #r)
            r[2] = "x"
            r[13] = { [2] = 9 }
            r[99] = 1
            print(r[2], r[13][1], r[13][2], v[2][1] == "\0\0\0", v[3])
            "#,
        );
        assert_eq!(
            out,
            "55\nabc\tabc\t-1\t1\t-2\t65535\t-3\t4294967295\ttrue\t-1\t0.5\t0.25\n1\t2\t3\t0\tnil\t14\nx\t1\t9\ttrue\tnil\n"
        );
    }

    #[test]
    fn sub_views_share_memory_and_scope_runs() {
        let (lua, _dir) = setup();
        let out = printed(
            &lua,
            r#"
            local root = bundle.viewof({ DIR .. "/shared.bin", { "i" } }, 4)
            local sub = bundle.viewof({ root, { "i" } }, 8, 2)
            sub[1] = { 33 }
            root[4] = { 44 }
            print(root[3][1], sub[2][1], sub.count, sub.commit, sub.rollback, type(sub.scope))
            local whole = bundle.viewof(root)
            print(whole.count, whole.size)
            print(root.scope(function () return "locked", root[3][1] end))
            print(sub.scope("ro", function () return sub[1][1] end))
            print(root:scope("rw", function () return 1 end))
            print(bundle.viewof(DIR .. "/shared.bin", 2, function (v) return v.count, v.size end))
            print(tostring(root):match("^viewof: 0x%x+ %[4 size, 4 count%]$") ~= nil)
            "#,
        );
        assert_eq!(
            out,
            "33\t44\t2\tnil\tnil\tfunction\n16\t1\nlocked\t33\n33\n1\n2\t1\ntrue\n"
        );
    }

    #[test]
    fn start_offsets_and_plain_rows() {
        let (lua, dir) = setup();
        std::fs::write(dir.path().join("pre.bin"), [1u8, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let out = printed(
            &lua,
            r#"
            local v = bundle.viewof({ DIR .. "/pre.bin", "B H" }, 5, 1)
            print(v.size, v.count, v[1][1], v[1][2])
            v[1] = 200
            v.commit()
            local w = bundle.viewof({ DIR .. "/pre.bin", 2 })
            print(w.count, w[3][1], w[3][2])
            "#,
        );
        let h = u16::from_ne_bytes([7, 8]);
        assert_eq!(out, format!("3\t1\t6\t{h}\n4\t5\t200\n"));
    }

    #[test]
    fn errors() {
        let (lua, _dir) = setup();
        std::fs::write(_dir.path().join("empty.bin"), b"").unwrap();
        for (code, needle) in [
            ("bundle.viewof()", "bad argument #1 (string, table or view expected, got nil)"),
            ("bundle.viewof(5)", "got number"),
            ("bundle.viewof(true, 1)", "got boolean"),
            ("bundle.viewof({ 5 })", "file name or a view"),
            ("bundle.viewof({ DIR .. '/x', 'q' }, 1)", "unknown field code 'q'"),
            ("bundle.viewof({ DIR .. '/x', 'c0' }, 1)", "at least 1"),
            ("bundle.viewof({ DIR .. '/x', 0 }, 1)", "at least 1"),
            ("bundle.viewof({ DIR .. '/x', -4 }, 1)", "at least 1"),
            ("bundle.viewof({ DIR .. '/x', 'c99999999999999999999999' }, 1)", "too large"),
            ("bundle.viewof({ DIR .. '/x', true }, 1)", "layout item"),
            ("bundle.viewof(DIR .. '/x', -1)", "must not be negative"),
            ("bundle.viewof(DIR .. '/x', 'ten')", "bad argument #2 (integer expected, got string)"),
            ("bundle.viewof(DIR .. '/x', 1.5)", "bad argument #2"),
            ("bundle.viewof(DIR .. '/x', 2^40)", "view limit"),
            ("bundle.viewof(DIR .. '/x', math.maxinteger)", "view limit"),
            ("bundle.viewof({ DIR .. '/x', 'd1000' }, 2^30)", "view limit"),
            ("bundle.viewof(DIR .. '/x', 0)", "nothing to map"),
            ("bundle.viewof(DIR .. '/missing.bin')", "cannot open"),
            ("bundle.viewof(DIR .. '/empty.bin')", "nothing to map"),
            ("bundle.viewof(DIR, 1)", "cannot open"),
            ("bundle.viewof(DIR .. '/x', 1, 2, 3)", "bad argument #4"),
            ("bundle.viewof({ bundle.viewof(DIR .. '/x', 4) }, 2, 3)", "No buffers available"),
            ("bundle.viewof({ io and io.stdout or newproxy and newproxy() or bundle.proxy({}) }, 1)", "not a view"),
            ("local v = bundle.viewof(DIR .. '/x', 4) v.name = 1", "cannot assign to 'name'"),
            ("local v = bundle.viewof(DIR .. '/x', 4) v[1] = 'text'", "holds numbers"),
            ("local v = bundle.viewof({ DIR .. '/x', { 'c4' } }, 4) v[1] = { {} }", "holds text"),
            ("local v = bundle.viewof({ DIR .. '/x', { 'i2' } }, 4) v[1] = { 5 }", "assign a table"),
            ("local v = bundle.viewof({ DIR .. '/x', { 'i' } }, 4) v[1].x = 5", "numbered from 1"),
            ("local v = bundle.viewof(DIR .. '/x', 4) v.commit('later')", "invalid option 'later'"),
            ("local v = bundle.viewof(DIR .. '/x', 4) v.commit(5)", "bad argument #1"),
            ("local v = bundle.viewof(DIR .. '/x', 4) v.scope()", "function expected"),
            ("local v = bundle.viewof(DIR .. '/x', 4) v.scope('xx', print)", "invalid option 'xx'"),
            ("local v = bundle.viewof(DIR .. '/x', 4) v.scope(function () error('in scope') end)", "in scope"),
            ("bundle.viewof(DIR .. '/x', 4, function () error('in fn') end)", "in fn"),
        ] {
            let e = error_of(&lua, code);
            assert!(e.contains(needle), "{code}: {e}");
        }
        // rows outside 1..count read as nil and ignore writes
        let ok: bool = lua
            .load("local v = bundle.viewof(DIR .. '/x', 4) v[0] = 1 v[5] = 1 v[-1] = 1 v[2^60] = 1 return v[0] == nil and v[5] == nil and v[1.5] == nil and v.other == nil")
            .eval()
            .unwrap();
        assert!(ok);
        // a failing scope released its lock: another scope can lock again
        let again: i64 = lua
            .load("local v = bundle.viewof(DIR .. '/x', 4) pcall(v.scope, function () error('x') end) return v.scope(function () return 5 end)")
            .eval()
            .unwrap();
        assert_eq!(again, 5);
    }

    #[test]
    fn layouts_parse() {
        let mut l = Layout {
            fields: Vec::new(),
            size: 0,
            row_objects: false,
        };
        l.push_codes(" c8 i  H2d").unwrap();
        let codes: Vec<(Code, usize, usize)> = l
            .fields
            .iter()
            .map(|f| (f.code, f.count, f.offset))
            .collect();
        assert_eq!(
            codes,
            vec![
                (Code::Chars, 8, 0),
                (Code::I32, 1, 8),
                (Code::U16, 2, 12),
                (Code::F64, 1, 16)
            ]
        );
        assert_eq!(l.size, 24);
    }
}
