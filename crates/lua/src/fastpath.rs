//! The stage thread's fast path: `fastpath.lua` runs the two hottest cases without leaving Lua —
//! synchronous `:msg` calls to plain handlers, and the queue of messages a stage sends to itself.
//!
//! A *plain* handler has no registration arguments, no captured upvalues and no `=` in its name;
//! its call needs nothing the Lua side cannot do. Every other case goes through the Rust paths
//! (`Stage::deliver_values`, `stage.signal`'s Rust implementation) with identical results.
//! Every message a stage sends to itself — from Lua or from the runtime (a reply to itself) —
//! goes through the one Lua queue, so they keep their order. Values that are not plain data are
//! copied at the send (as a message copies them), and the copy waits in the queue.

use crate::convert;
use crate::stage::{report_text, Stage};
use mlua::{Function, Lua, MultiValue, Table, Value as LuaValue};
use stage_core::address::{self, Target};
use stage_core::Value;
use std::rc::Rc;

const SOURCE: &str = include_str!("fastpath.lua");

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

/// What one [`FastPath::drain`] call did.
pub struct Drained {
    pub left: usize,
    pub handled: u64,
    pub calls: u64,
    pub errors: u64,
    pub sent: u64,
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
        let raw_signal: Function = stage_table.get("signal")?;
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
                _ => (0, String::new()),
            })
        })?;
        let env = stage.env.clone();
        let max_bytes = stage.process.limits.message_bytes;
        // Returns `true` and the copies, or `false` and the error text (raised by the Lua side
        // at the caller's line).
        let copy_args = lua.create_function(move |lua, (msg, values): (mlua::LuaString, MultiValue)| {
            let copy = || -> mlua::Result<MultiValue> {
                let copied = convert::to_args(lua, values.iter())?;
                let size = msg.as_bytes().len() + copied.iter().map(Value::approx_size).sum::<usize>();
                if size > max_bytes {
                    return Err(mlua::Error::runtime(format!(
                        "message '{}' is too large: about {size} bytes, the limit is {max_bytes} (#limits.message_bytes)",
                        msg.to_string_lossy()
                    )));
                }
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
                    out.push_back(LuaValue::String(lua.create_string(crate::errors::message(&e))?));
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
        let wall_ms = lua.create_function(|_, ()| Ok(crate::api::wall_ms()))?;
        let id = stage.origin.id.as_deref().unwrap_or("").to_string();
        let error_text = lua.create_function(|_, e: LuaValue| {
            Ok(match e {
                LuaValue::Error(e) => crate::errors::message(&e),
                other => other.to_string()?,
            })
        })?;
        // Replies with the running handler's `_WAITFOR` fields, read on the Lua side.
        let replies = lua.create_table()?;
        replies.raw_set(
            "reply",
            lua.create_function(crate::api::stage::reply_from_fields)?,
        )?;
        crate::errors::wrap_tables(lua, &[&replies])?;
        let raw_reply: Function = replies.raw_get("reply")?;
        let (plain, signal, drain, post, invoke): (Table, Function, Function, Function, Function) =
            lua.load(SOURCE).set_name("=stage").call((
                globals,
                id,
                &*stage.origin.address,
                raw_signal,
                raw_reply,
                classify,
                copy_args,
                slow_deliver,
                report,
                wall_ms,
                crate::budget::invocation_marker(lua)?,
                error_text,
                stage.process.limits.mailbox,
                stage.process.limits.message_bytes,
            ))?;
        stage_table.set("signal", signal)?;
        Ok(FastPath {
            lua: lua.weak(),
            env: stage.env.clone(),
            plain,
            drain,
            post,
            invoke,
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

    /// Handles at most `budget` queued messages.
    pub fn drain(&self, budget: usize) -> mlua::Result<Drained> {
        let (left, handled, calls, errors, sent): (usize, u64, u64, u64, u64) =
            self.drain.call(budget)?;
        Ok(Drained {
            left,
            handled,
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
