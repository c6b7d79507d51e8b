//! Replies: `stage.signal(nil, ...)` inside a handler and hand-made reply contexts
//! (`messaging.md` §7), sent straight to the requester's reply address.

use crate::api::Actor;
use crate::convert;
use crate::stage::Stage;
use mlua::{Lua, MultiValue, Table};
use stage_core::{Args, Message, PayloadKey};

/// `stage.signal(nil, ...)` or a hand-made reply context (`messaging.md` §7.2).
pub(crate) fn reply(
    lua: &Lua,
    stage: &Actor,
    ctx: &Table,
    values: MultiValue,
) -> mlua::Result<MultiValue> {
    let id: Option<String> = ctx.raw_get(0)?;
    let address: Option<String> = ctx.raw_get(1)?;
    let to_stage: Option<String> = ctx.raw_get(2)?;
    reply_to(lua, stage, id, address, to_stage, values)
}

/// `stage.signal(nil, ...)` from the stage thread's fast path, which passes the fields of the
/// running handler's `_WAITFOR`: message id, reply address, sender's stage id.
pub(crate) fn reply_from_fields(
    lua: &Lua,
    (id, address, to_stage, values): (Option<String>, Option<String>, Option<String>, MultiValue),
) -> mlua::Result<MultiValue> {
    let stage = Actor::current(lua)?;
    if stage.in_sync_call() {
        return Ok(MultiValue::new());
    }
    reply_to(lua, &stage, id, address, to_stage, values)
}

/// A reply to message `id` with values copied already, from a stage thread's fast path
/// (`plain.rs`): `Ok(false)` when nothing was sent because the reply goes to this very
/// stage instance or nowhere (the ordinary path handles those).
pub(crate) fn reply_elsewhere(
    stage: &Stage,
    id: &str,
    address: &str,
    to_stage: Option<&str>,
    values: Args,
) -> mlua::Result<bool> {
    if stage.in_sync_call.get() {
        return Ok(true);
    }
    if address == &*stage.origin.address {
        return Ok(false);
    }
    let key = PayloadKey::reply(to_stage, id);
    if key.is_empty() {
        return Ok(true);
    }
    stage.send_elsewhere(address, Message::new(key, values))?;
    Ok(true)
}

fn reply_to(
    lua: &Lua,
    stage: &Actor,
    id: Option<String>,
    address: Option<String>,
    to_stage: Option<String>,
    values: MultiValue,
) -> mlua::Result<MultiValue> {
    let key = PayloadKey::reply(to_stage.as_deref(), id.as_deref().unwrap_or(""));
    if key.is_empty() {
        return Ok(MultiValue::new());
    }
    match address {
        Some(address) => {
            let message = Message::new(key, convert::to_args(lua, values.iter())?);
            stage.send_to(lua, &address, message)?;
        }
        None => {
            let Some(msg) = key.msg_for(stage.id()) else {
                return Ok(MultiValue::new());
            };
            stage.call_sync(lua, msg, values)?;
        }
    }
    Ok(MultiValue::new())
}
