//! Sending: `stage.signal(target, ...)` for every target form (`messaging.md` §6), the one
//! place where an outgoing message is built and its size checked against
//! `#limits.message_bytes` (decision 28), and where it is handed to the router.

use super::reply::reply;
use crate::api::Actor;
use crate::convert;
use mlua::{Lua, MultiValue, Value as LuaValue};
use stage_core::address::{self, Scope, Target};
use stage_core::clock::wall_ms;
use stage_core::{Args, Message, PayloadKey, Value};

pub(crate) fn signal(
    lua: &Lua,
    (target, values): (LuaValue, MultiValue),
) -> mlua::Result<MultiValue> {
    let stage = Actor::current(lua)?;
    match target {
        LuaValue::String(t) => {
            let t = t.to_str()?;
            send(lua, &stage, &t, values, None, None)
        }
        LuaValue::Nil => {
            if stage.in_sync_call() {
                return Ok(MultiValue::new());
            }
            match lua.globals().raw_get::<LuaValue>("_WAITFOR")? {
                LuaValue::Table(ctx) => reply(lua, &stage, &ctx, values),
                _ => Err(mlua::Error::runtime(
                    "not a callback function: stage.signal(nil, ...) replies only inside a handler",
                )),
            }
        }
        LuaValue::Table(options) => {
            if let LuaValue::String(_) = options.raw_get::<LuaValue>(0)? {
                return reply(lua, &stage, &options, values);
            }
            let LuaValue::String(t) = options.raw_get::<LuaValue>(1)? else {
                return Err(mlua::Error::runtime(
                    "Format error: the target table needs a target string at [1]",
                ));
            };
            let (mut deadline, mut address) = (None, None);
            for i in 2..=3 {
                match options.raw_get::<LuaValue>(i)? {
                    LuaValue::Integer(ms) if ms > 0 => deadline = Some(wall_ms() + ms as u64),
                    LuaValue::Number(ms) if ms > 0.0 => deadline = Some(wall_ms() + ms as u64),
                    LuaValue::String(a) => address = Some(a.to_str()?.to_string()),
                    _ => {}
                }
            }
            let t = t.to_str()?;
            send(lua, &stage, &t, values, deadline, address)
        }
        _ => Err(mlua::Error::runtime(
            "Invalid argument: stage.signal expects a target string, a table or nil",
        )),
    }
}

/// Sends values to a parsed target (`messaging.md` §6).
fn send(
    lua: &Lua,
    stage: &Actor,
    target: &str,
    values: MultiValue,
    deadline_ms: Option<u64>,
    address: Option<String>,
) -> mlua::Result<MultiValue> {
    let own = stage.id();
    let parsed = address::parse(target, own).map_err(mlua::Error::external)?;
    let (key, scope, route_to) = match parsed {
        Target::Sync { msg } => return stage.call_sync(lua, msg, values),
        Target::Stage {
            stage: None,
            msg,
            this_instance,
            scope,
            ..
        } => {
            if own.is_none() {
                // A stage without id offers the key to its own process, synchronously (§6.7).
                return stage.call_sync(lua, msg, values);
            }
            let key = stage.origin().own_key(msg);
            if this_instance && address.is_none() {
                let message = message(lua, stage, key, &values, deadline_ms)?;
                stage.post_self(lua, message)?;
                return Ok(MultiValue::new());
            }
            (key, scope, own.unwrap_or_default().to_string())
        }
        Target::Stage {
            stage: Some(svc),
            msg,
            include_sender,
            scope,
            ..
        } => (
            other_stage_key(svc, own, msg, include_sender),
            scope,
            svc.to_string(),
        ),
        Target::AnyOwn { msg } => (
            stage.origin().own_key(msg),
            Scope::One,
            own.unwrap_or_default().to_string(),
        ),
        Target::Multi { stage: svc } => {
            let Some(LuaValue::Table(batch)) = values.front() else {
                return Err(mlua::Error::runtime(
                    "stage.signal(\"svc:\", t): the value must be a table of payload keys",
                ));
            };
            let to = svc.or(own).unwrap_or_default().to_string();
            for pair in batch.pairs::<LuaValue, LuaValue>() {
                let (k, v) = pair?;
                let LuaValue::String(k) = k else { continue };
                let m = message(
                    lua,
                    stage,
                    PayloadKey::verbatim(k.to_str()?.to_string()),
                    std::slice::from_ref(&v),
                    deadline_ms,
                )?;
                route(lua, stage, address.as_deref(), &to, Scope::One, m)?;
            }
            return Ok(MultiValue::new());
        }
        Target::Lock { .. } => {
            return Err(mlua::Error::runtime(format!(
                "stage.signal('{target}'): ordered locks are not available in this version"
            )))
        }
    };
    let m = message(lua, stage, key, &values, deadline_ms)?;
    route(lua, stage, address.as_deref(), &route_to, scope, m)?;
    Ok(MultiValue::new())
}

/// `stage.signal(target, ...)` for a target naming another stage, its values copied already
/// (the stage thread's fast path: `plain.rs`). `Ok(false)` when nothing was sent: the
/// target is of another form, or a broadcast (which the ordinary path sends, as it may fail
/// halfway).
pub(crate) fn signal_other_stage(stage: &Actor, target: &str, values: Args) -> mlua::Result<bool> {
    let own = stage.id();
    let Ok(Target::Stage {
        stage: Some(svc),
        msg,
        include_sender,
        scope,
        ..
    }) = address::parse(target, own)
    else {
        return Ok(false);
    };
    if scope == Scope::All {
        return Ok(false);
    }
    let key = other_stage_key(svc, own, msg, include_sender);
    route_to_stage(stage, svc, scope, outgoing(stage, key, values, None)?)?;
    Ok(true)
}

/// The payload key of message `msg` to stage `svc`, sent by stage `own`.
fn other_stage_key(svc: &str, own: Option<&str>, msg: &str, include_sender: bool) -> PayloadKey {
    match (include_sender, own) {
        (true, Some(me)) => PayloadKey::with_sender(svc, me, msg),
        _ => PayloadKey::new(Some(svc), msg),
    }
}

/// Builds an outgoing message, refusing values over `#limits.message_bytes` (decision 28).
fn message<'a>(
    lua: &Lua,
    stage: &Actor,
    key: PayloadKey,
    values: impl IntoIterator<Item = &'a LuaValue>,
    deadline_ms: Option<u64>,
) -> mlua::Result<Message> {
    outgoing(stage, key, convert::to_args(lua, values)?, deadline_ms)
}

/// [`message`] with values copied already.
fn outgoing(
    stage: &Actor,
    key: PayloadKey,
    values: Args,
    deadline_ms: Option<u64>,
) -> mlua::Result<Message> {
    check_size(
        key.as_str().as_bytes(),
        &values,
        stage.process().limits.max_message_bytes(),
    )?;
    Ok(Message {
        key,
        values,
        sender: Some(stage.origin().sender()),
        deadline_ms,
        globals: Vec::new(),
    })
}

fn route(
    lua: &Lua,
    stage: &Actor,
    address: Option<&str>,
    ids: &str,
    scope: Scope,
    message: Message,
) -> mlua::Result<()> {
    match address {
        Some(address) => stage.send_to(lua, address, message),
        None => route_to_stage(stage, ids, scope, message),
    }
}

/// Delivers to the instances of `ids` that `scope` selects.
fn route_to_stage(stage: &Actor, ids: &str, scope: Scope, message: Message) -> mlua::Result<()> {
    stage.count_out();
    let delivered = stage
        .process()
        .node
        .router
        .send(ids, scope, message)
        .map_err(mlua::Error::external)?;
    if delivered == 0 {
        tracing::debug!(target: "lua", "no instance of '{ids}' to deliver to: message dropped");
    }
    Ok(())
}

/// Refuses a message over `limit` bytes (decision 28), counting its key and its values: the
/// one check every send passes, whichever path it takes.
pub fn check_size(key: &[u8], values: &[Value], limit: usize) -> mlua::Result<()> {
    let size = key.len() + values.iter().map(Value::approx_size).sum::<usize>();
    if size > limit {
        return Err(too_large(&String::from_utf8_lossy(key), size, limit));
    }
    Ok(())
}

/// The error of a message of `size` bytes over `limit`.
pub fn too_large(key: &str, size: usize, limit: usize) -> mlua::Error {
    mlua::Error::runtime(format!(
        "message '{key}' is too large: about {size} bytes, the limit is {limit} (#limits.message_bytes)"
    ))
}
