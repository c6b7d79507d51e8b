//! The stage thread's fast path: `fast.lua` runs the two hottest cases without leaving Lua —
//! synchronous `:msg` calls to plain handlers, and the queue of messages a stage sends to itself.
//!
//! A *plain* handler has no registration arguments, no captured upvalues and no `=` in its name;
//! its call needs nothing the Lua side cannot do. Every other case goes through the Rust paths
//! (`Stage::deliver_values`, `stage.signal`'s Rust implementation) with identical results.
//! Every message a stage sends to itself — from Lua or from the runtime (a reply to itself) —
//! goes through the one Lua queue, so they keep their order. Values that are not plain data are
//! copied at the send (as a message copies them), and the copy waits in the queue.
//!
//! Mailbox messages are handed over in batches ([`FastPath::write_mail`]): runs of messages for
//! plain handlers whose values and globals are plain data (nil, booleans, numbers, strings) are
//! dispatched in Lua, every other message by the runtime (`Stage::deliver`), in the batch's
//! order.

use crate::convert;
use crate::stage::{report_text, Stage};
use mlua::{Function, Lua, MultiValue, Table, Value as LuaValue};
use stage_core::address::{self, Target};
use stage_core::{Message, Value};
use std::rc::Rc;

const SOURCE: &str = include_str!("fast.lua");

/// How many mailbox messages one batch holds at most.
pub const MAIL_BATCH: usize = 64;
/// How many slots of the Lua side's buffer one message may take to be dispatched there: with
/// at most [`MAIL_BATCH`] messages a batch always fits.
const SLOTS_PER_MESSAGE: usize = 32;
/// The size of the Lua side's buffer of mailbox messages.
const MAIL_SLOTS: usize = MAIL_BATCH * SLOTS_PER_MESSAGE;

/// A mailbox message for a plain handler, as [`FastPath::write_mail`] hands it to Lua.
pub struct Mail<'m> {
    /// The message id.
    msg: &'m str,
    /// The name of its handler.
    name: &'m str,
    message: &'m Message,
}

impl<'m> Mail<'m> {
    /// `message`, whose id is `msg`, for the plain handler `name`, as the fast path takes it:
    /// when its values and globals are plain data and it has no deadline.
    pub fn of(msg: &'m str, name: &'m str, message: &'m Message) -> Option<Mail<'m>> {
        let scalar = |v: &Value| !matches!(v, Value::Table(_) | Value::Function(_));
        let slots = 6 + 2 * message.globals.len() + message.values.len();
        (message.deadline_ms.is_none()
            && slots <= SLOTS_PER_MESSAGE
            && message.values.iter().all(scalar)
            && message.globals.iter().all(|(_, v)| scalar(v)))
        .then_some(Mail { msg, name, message })
    }
}

/// Who sent a queued message, as the Lua queue records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalSender {
    /// This stage, expecting a reply (`_WAITFOR[1]` and `[2]` set).
    Stage = 0,
    /// This stage's automatic reply (`_WAITFOR[1]` only).
    AutoReply = 1,
    /// Nobody to answer (an explicit reply).
    Nobody = 2,
}

/// The Lua side of the fast path of one stage.
pub struct FastPath {
    /// The state (weak: the fast path lives in the state's own app data).
    lua: mlua::WeakLua,
    env: Table,
    plain: Table,
    drain: Function,
    post: Function,
    invoke: Function,
    /// The buffer mailbox batches are written into, and the function that runs a batch.
    mail: Table,
    drain_mail: Function,
}

/// The message a handler is invoked for: what `_WAITFOR` holds while it runs. Its strings
/// are made before the invocation starts: inside it the memory cap holds, and `mlua` then
/// protects every string it creates with a call of its own.
pub struct WaitFor {
    /// The message id (`_WAITFOR[0]`).
    pub msg: mlua::LuaString,
    /// The handler's name (`_WAITFOR[-1]`).
    pub name: mlua::LuaString,
    /// The sender's reply address and stage id (`_WAITFOR[1]`, `[2]`).
    pub address: Option<mlua::LuaString>,
    pub stage: Option<mlua::LuaString>,
}

impl WaitFor {
    /// The strings of a message's `_WAITFOR`.
    pub fn new(
        lua: &Lua,
        msg: &str,
        name: &str,
        address: Option<&str>,
        stage: Option<&str>,
    ) -> mlua::Result<WaitFor> {
        let msg_string = lua.create_string(msg)?;
        // Most messages name their handler exactly: one string serves both.
        let name = if name == msg {
            msg_string.clone()
        } else {
            lua.create_string(name)?
        };
        Ok(WaitFor {
            msg: msg_string,
            name,
            address: address.map(|a| lua.create_string(a)).transpose()?,
            stage: stage.map(|s| lua.create_string(s)).transpose()?,
        })
    }
}

/// Strings up to this size may stay in the Lua side's mail buffer after their batch (until a
/// later batch overwrites them): clearing every slot after every batch costs more than the
/// batch's own bookkeeping, and what stays is bounded by the buffer's size.
const KEPT_BYTES: usize = 256;

/// What [`FastPath::write_mail`] wrote: how many slots, and up to which slot they are to be
/// cleared after the batch (the last one holding a string longer than `KEPT_BYTES`).
#[derive(Clone, Copy, Debug)]
pub struct Written {
    pub slots: usize,
    pub clear: usize,
}

/// What the handlers of one [`FastPath::drain`] or [`FastPath::drain_mail`] call did.
pub struct Counts {
    pub calls: u64,
    pub errors: u64,
    pub sent: u64,
}

/// What one [`FastPath::drain`] call did.
pub struct Drained {
    pub left: usize,
    pub handled: u64,
    pub counts: Counts,
}

impl LocalSender {
    /// The sender a queue entry records (an unknown code means nobody).
    fn from_code(code: u8) -> LocalSender {
        match code {
            0 => LocalSender::Stage,
            1 => LocalSender::AutoReply,
            _ => LocalSender::Nobody,
        }
    }
}

impl FastPath {
    /// Loads the fast path into the stage's state and makes it `stage.signal`.
    pub fn install(lua: &Lua, stage: &Rc<Stage>) -> mlua::Result<FastPath> {
        let globals = lua.globals();
        let stage_table: Table = globals.get("stage")?;
        let raw_signal = lua.create_function(|lua, args| {
            crate::errors::outcome(lua, super::send::signal(lua, args))
        })?;
        let own = stage.origin.id.clone();
        let classify = lua.create_function(move |_, target: mlua::LuaString| {
            let target = target.to_str()?;
            Ok(match address::parse(&target, own.as_deref()) {
                Ok(Target::Sync { msg }) => (1u8, msg.to_string()),
                Ok(Target::Stage {
                    stage: None,
                    msg,
                    this_instance: true,
                    ..
                }) if own.is_some() => (2, msg.to_string()),
                Ok(Target::Stage { stage: Some(_), .. }) => (3, String::new()),
                _ => (0, String::new()),
            })
        })?;
        let env = stage.env.clone();
        let max_bytes = stage.process.limits.max_message_bytes();
        // Returns `true` and the copies, or `false` and the error text (raised by the Lua side
        // at the caller's line).
        let copy_args =
            lua.create_function(move |lua, (msg, values): (mlua::LuaString, MultiValue)| {
                let copy = || -> mlua::Result<MultiValue> {
                    let copied = convert::to_args(lua, values.iter())?;
                    super::send::check_size(msg.as_bytes().as_ref(), &copied, max_bytes)?;
                    convert::from_args(lua, &copied, &env)
                };
                let mut out = MultiValue::new();
                match copy() {
                    Ok(values) => {
                        out.push_back(LuaValue::Boolean(true));
                        out.extend(values);
                    }
                    Err(e) => {
                        out.push_back(LuaValue::Boolean(false));
                        out.push_back(LuaValue::String(
                            lua.create_string(crate::errors::message(&e))?,
                        ));
                    }
                }
                Ok(out)
            })?;
        let weak = Rc::downgrade(stage);
        let slow_deliver =
            lua.create_function(move |lua, (msg, sender, args): (String, u8, MultiValue)| {
                if let Some(stage) = weak.upgrade() {
                    stage.deliver_local(lua, &msg, LocalSender::from_code(sender), args);
                }
                Ok(())
            })?;
        let report = lua.create_function(|lua, text: String| {
            report_text(lua, text);
            Ok(())
        })?;
        let wall_ms = lua.create_function(|_, ()| Ok(stage_core::clock::wall_ms()))?;
        let id = stage.origin.id.as_deref().unwrap_or("").to_string();
        let error_text = lua.create_function(|_, e: LuaValue| {
            Ok(match e {
                LuaValue::Error(e) => crate::errors::message(&e),
                other => other.to_string()?,
            })
        })?;
        // Replies with the running handler's `_WAITFOR` fields, read on the Lua side.
        let raw_reply = lua.create_function(|lua, args| {
            crate::errors::outcome(lua, super::reply::reply_from_fields(lua, args))
        })?;
        let weak = Rc::downgrade(stage);
        let slow_mail = lua.create_function(move |lua, index: usize| {
            if let Some(stage) = weak.upgrade() {
                stage.deliver_from_batch(lua, index);
            }
            Ok(())
        })?;
        let weak = Rc::downgrade(stage);
        let mail_reply = lua.create_function(
            move |lua,
                  (msg, address, to, values): (
                mlua::LuaString,
                mlua::LuaString,
                mlua::LuaString,
                MultiValue,
            )| {
                if let Some(stage) = weak.upgrade() {
                    stage.auto_reply(
                        lua,
                        &msg.to_str()?,
                        &address.to_str()?,
                        &to.to_str()?,
                        values,
                    );
                }
                Ok(())
            },
        )?;
        let senders = super::plain::PlainSenders::new(lua, stage)?;
        let too_large = lua.create_function(move |_, (key, size): (String, usize)| {
            Ok(crate::errors::message(&super::send::too_large(
                &key, size, max_bytes,
            )))
        })?;
        let parts = lua.create_table()?;
        parts.raw_set("globals", globals.clone())?;
        parts.raw_set("id", id)?;
        parts.raw_set("address", stage.origin.address.as_str())?;
        parts.raw_set("signal", raw_signal)?;
        parts.raw_set("reply", raw_reply)?;
        parts.raw_set("classify", classify)?;
        parts.raw_set("copy_args", copy_args)?;
        parts.raw_set("deliver", slow_deliver)?;
        parts.raw_set("report", report)?;
        parts.raw_set("wall_ms", wall_ms)?;
        parts.raw_set("mark", crate::budget::invocation_marker(lua)?)?;
        parts.raw_set("error_text", error_text)?;
        parts.raw_set("mailbox", stage.process.limits.mailbox_capacity())?;
        parts.raw_set("max_bytes", max_bytes)?;
        parts.raw_set("too_large", too_large)?;
        parts.raw_set("mail_slots", MAIL_SLOTS)?;
        parts.raw_set("deliver_mail", slow_mail)?;
        parts.raw_set("mail_reply", mail_reply)?;
        parts.raw_set("send_plain", senders.send)?;
        parts.raw_set("reply_plain", senders.reply)?;
        parts.raw_set("failure", &senders.failure)?;
        parts.raw_set("check", crate::errors::check(lua)?)?;
        type Parts = (
            Table,
            Function,
            Function,
            Function,
            Function,
            Table,
            Function,
        );
        let (plain, signal, drain, post, invoke, mail, drain_mail): Parts =
            lua.load(SOURCE).set_name("=stage").call(parts)?;
        stage_table.set("signal", signal)?;
        let threads = crate::api::thread_jobs::JobStarters::new(lua)?;
        let fast = crate::api::thread::FastThreads {
            new_job: &threads.new_job,
            watch: &threads.watch,
            plain: &plain,
            failure: &senders.failure,
        };
        crate::api::thread::install_new(lua, &globals.get("thread")?, Some(fast))?;
        Ok(FastPath {
            lua: lua.weak(),
            env: stage.env.clone(),
            plain,
            drain,
            post,
            invoke,
            mail,
            drain_mail,
        })
    }

    /// Makes `name` a plain handler calling `f`, or takes it off the fast path.
    pub fn set_plain(&self, name: &str, f: Option<&Function>) -> mlua::Result<()> {
        match self.lua.try_upgrade() {
            // Registrations happen inside invocations (`thread.new(...).waitfor(f)` for every
            // job): the name's string is made outside the memory cap.
            Some(lua) => crate::budget::uncapped(&lua, || self.plain.raw_set(name, f)),
            None => Ok(()),
        }
    }

    /// Takes the handlers `names` off the fast path.
    pub fn drop_plain(&self, lua: &Lua, names: &[&str]) -> mlua::Result<()> {
        // SAFETY: the table is at stack index 1; a memory error raised while pushing a name
        // unwinds only this closure's frames, which own nothing (`names` is borrowed), and is
        // returned by `exec_raw`.
        unsafe {
            lua.exec_raw::<()>(&self.plain, |state| {
                mlua::ffi::luaL_checkstack(state, 2, std::ptr::null());
                for name in names {
                    mlua::ffi::lua_pushlstring(state, name.as_ptr().cast(), name.len());
                    mlua::ffi::lua_pushnil(state);
                    mlua::ffi::lua_rawset(state, 1);
                }
            })
        }
    }

    /// Handles at most `budget` queued messages.
    pub fn drain(&self, budget: usize) -> mlua::Result<Drained> {
        let (left, handled, calls, errors, sent) = self.drain.call(budget)?;
        Ok(Drained {
            left,
            handled,
            counts: Counts {
                calls,
                errors,
                sent,
            },
        })
    }

    /// Writes a batch of at most [`MAIL_BATCH`] mailbox messages into the Lua side's buffer.
    pub fn write_mail(&self, lua: &Lua, batch: &[Mail]) -> mlua::Result<Written> {
        let mut written = Written { slots: 0, clear: 0 };
        // SAFETY: the buffer is at stack index 1 and already holds `MAIL_SLOTS` entries, so
        // `lua_rawseti` only replaces values; pushing a string can raise an out-of-memory
        // error, which unwinds only this closure's frames (they own nothing: the batch is
        // borrowed) and is returned by `exec_raw`.
        unsafe {
            lua.exec_raw::<()>(&self.mail, |state| {
                written = MailWriter {
                    state,
                    at: 0,
                    large_until: 0,
                }
                .write(batch);
            })?;
        }
        Ok(written)
    }

    /// Runs the messages that [`FastPath::write_mail`] wrote.
    pub fn drain_mail(&self, written: Written) -> mlua::Result<Counts> {
        let (calls, errors, sent) = self.drain_mail.call((written.slots, written.clear))?;
        Ok(Counts {
            calls,
            errors,
            sent,
        })
    }

    /// Calls `f` protected, with `_WAITFOR` set for `waitfor` if given: its results, or the
    /// error's text with a traceback.
    pub fn invoke(
        &self,
        f: &Function,
        waitfor: Option<WaitFor>,
        args: MultiValue,
    ) -> mlua::Result<Result<MultiValue, String>> {
        let (msg, name, address, stage) = match waitfor {
            Some(w) => (Some(w.msg), Some(w.name), w.address, w.stage),
            None => (None, None, None, None),
        };
        let mut results: MultiValue = self.invoke.call((f, msg, name, address, stage, args))?;
        match results.pop_front() {
            Some(LuaValue::Boolean(true)) => Ok(Ok(results)),
            _ => Ok(Err(match results.pop_front() {
                Some(LuaValue::String(text)) => text.to_string_lossy(),
                Some(other) => format!("{other:?}"),
                None => "an error without a message".to_string(),
            })),
        }
    }

    /// Queues a message for this stage from the runtime.
    pub fn post(
        &self,
        lua: &Lua,
        msg: &str,
        sender: LocalSender,
        deadline_ms: Option<u64>,
        values: &[Value],
    ) -> mlua::Result<()> {
        let mut args = MultiValue::new();
        args.push_back(LuaValue::String(lua.create_string(msg)?));
        args.push_back(LuaValue::Integer(sender as i64));
        args.push_back(deadline_ms.map_or(LuaValue::Nil, |d| LuaValue::Integer(d as i64)));
        for v in values {
            args.push_back(convert::from_value(lua, v, &self.env)?);
        }
        self.post.call(args)
    }
}

/// Writes mailbox messages into the Lua side's buffer at stack index 1 (see `fast.lua`).
struct MailWriter {
    state: *mut mlua::ffi::lua_State,
    /// The last slot written.
    at: i64,
    /// The last slot holding a string longer than [`KEPT_BYTES`].
    large_until: i64,
}

impl MailWriter {
    unsafe fn write(mut self, batch: &[Mail]) -> Written {
        mlua::ffi::luaL_checkstack(self.state, 2, std::ptr::null());
        for Mail { msg, name, message } in batch {
            self.string(msg.as_bytes());
            if name == msg {
                self.boolean(true);
            } else {
                self.string(name.as_bytes());
            }
            let sender = message.sender.as_ref();
            match sender {
                Some(sender) => self.string(sender.address.as_bytes()),
                None => self.boolean(false),
            }
            match sender.and_then(|s| s.stage.as_deref()) {
                Some(stage) => self.string(stage.as_bytes()),
                None => self.boolean(false),
            }
            self.integer(message.globals.len());
            for (name, value) in &message.globals {
                self.string(name.as_bytes());
                self.value(value);
            }
            self.integer(message.values.len());
            for value in &message.values {
                self.value(value);
            }
        }
        Written {
            slots: self.at as usize,
            clear: self.large_until as usize,
        }
    }

    /// Stores the pushed value in the next slot.
    unsafe fn set(&mut self) {
        self.at += 1;
        mlua::ffi::lua_rawseti(self.state, 1, self.at);
    }

    unsafe fn string(&mut self, bytes: &[u8]) {
        mlua::ffi::lua_pushlstring(self.state, bytes.as_ptr().cast(), bytes.len());
        self.set();
        if bytes.len() > KEPT_BYTES {
            self.large_until = self.at;
        }
    }

    unsafe fn boolean(&mut self, b: bool) {
        mlua::ffi::lua_pushboolean(self.state, i32::from(b));
        self.set();
    }

    unsafe fn integer(&mut self, n: usize) {
        mlua::ffi::lua_pushinteger(self.state, n as i64);
        self.set();
    }

    /// A plain value (see [`Mail::of`]); anything else arrives as nil.
    unsafe fn value(&mut self, value: &Value) {
        use mlua::ffi;
        match value {
            Value::Bool(b) => return self.boolean(*b),
            Value::Int(i) => ffi::lua_pushinteger(self.state, *i),
            Value::Float(f) => ffi::lua_pushnumber(self.state, *f),
            Value::Str(s) => return self.string(s),
            Value::Nil | Value::Table(_) | Value::Function(_) => ffi::lua_pushnil(self.state),
        }
        self.set();
    }
}
