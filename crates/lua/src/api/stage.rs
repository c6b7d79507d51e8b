//! The `stage` table: `waitfor`, `signal`, `addtask`, `once`, `load`, `require`, `call`, `exit`
//! (`runtime.md` §9, `messaging.md` §2–7).

use super::{current_process, current_sandbox, current_stage, wall_ms, Actor};
use crate::convert;
use crate::errors;
use crate::handlers::Shipped;
use crate::process::ProcessContext;
use crate::scripts::{split_name, Script};
use crate::stage::Stage;
use crate::worker::{Job, JobFn};
use mlua::{Function, Lua, MultiValue, Table, Value as LuaValue};
use stage_core::address::{self, reply_id, Scope, Target};
use stage_core::{Args, Message, Value};

/// Creates the `stage` table.
pub fn install(lua: &Lua) -> mlua::Result<Table> {
    let stage = lua.create_table()?;
    stage.set("waitfor", lua.create_function(waitfor)?)?;
    stage.set("signal", lua.create_function(signal)?)?;
    stage.set("addtask", lua.create_function(addtask)?)?;
    stage.set("once", lua.create_function(once)?)?;
    stage.set(
        "load",
        lua.create_function(|lua, (name, f): (String, Option<Function>)| load(lua, &name, f))?,
    )?;
    stage.set(
        "require",
        lua.create_function(|lua, (name, f): (String, Option<Function>)| require(lua, &name, f))?,
    )?;
    stage.set("call", lua.create_function(call)?)?;
    stage.set("submit", lua.create_function(submit)?)?;
    stage.set(
        "exit",
        lua.create_function(|lua, ()| {
            (current_process(lua)?.node.shutdown)();
            Ok(())
        })?,
    )?;
    Ok(stage)
}

// ---------------------------------------------------------------- waitfor

fn waitfor(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let actor = Actor::current(lua)?;
    let mut args = args.into_iter();
    let first = args.next();
    let Some(first) = first else {
        return list_handlers(lua, actor.stage_thread("stage.waitfor()")?);
    };
    match first {
        LuaValue::Function(f) => register_fresh(lua, &actor, 16, f, args.collect()),
        LuaValue::Integer(_) | LuaValue::Number(_) => {
            let len = lua
                .coerce_integer(first.clone())?
                .unwrap_or(16)
                .clamp(4, 256) as usize;
            match args.next() {
                Some(LuaValue::Function(f)) => register_fresh(lua, &actor, len, f, args.collect()),
                _ => Err(mlua::Error::runtime(
                    "stage.waitfor(n, fn): a function must follow the length",
                )),
            }
        }
        LuaValue::String(name) => {
            let name = name.to_str()?.to_string();
            match args.next() {
                None => lookup(lua, actor.stage_thread("stage.waitfor(name)")?, &name),
                Some(LuaValue::Nil) => {
                    actor.unregister(&name)?;
                    Ok(MultiValue::new())
                }
                Some(LuaValue::Function(f)) => {
                    let rest: Vec<LuaValue> = args.collect();
                    let reg = if rest.is_empty() {
                        None
                    } else {
                        Some(copy_all(lua, &rest)?)
                    };
                    actor.register(lua, name.clone(), &f, reg)?;
                    name_result(lua, &name)
                }
                Some(value) => {
                    let mut all = vec![value];
                    all.extend(args);
                    if actor.set_args(&name, copy_all(lua, &all)?)? {
                        name_result(lua, &name)
                    } else {
                        Ok(MultiValue::from_iter([LuaValue::Nil]))
                    }
                }
            }
        }
        other => Err(mlua::Error::runtime(format!(
            "stage.waitfor: expected a name, a function or a length, got a {}",
            errors::type_name(&other)
        ))),
    }
}

fn name_result(lua: &Lua, name: &str) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_iter([LuaValue::String(
        lua.create_string(name)?,
    )]))
}

/// A random handler name of `len` letters and digits that `taken` does not know.
pub(crate) fn fresh_name(len: usize, taken: impl Fn(&str) -> bool) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    loop {
        let candidate: String = (0..len)
            .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
            .collect();
        if !taken(&candidate) {
            return candidate;
        }
    }
}

pub(crate) fn copy_all(lua: &Lua, values: &[LuaValue]) -> mlua::Result<Vec<Value>> {
    values.iter().map(|v| convert::to_value(lua, v)).collect()
}

fn register_fresh(
    lua: &Lua,
    actor: &Actor,
    len: usize,
    f: Function,
    rest: Vec<LuaValue>,
) -> mlua::Result<MultiValue> {
    let name = fresh_name(len, |n| actor.has_handler(n));
    tracing::info!(target: "lua", "stage.waitfor: registered '{name}'");
    actor.register(lua, name.clone(), &f, Some(copy_all(lua, &rest)?))?;
    name_result(lua, &name)
}

/// `stage.waitfor(name)`: a new copy of the function, then the registration arguments.
fn lookup(lua: &Lua, stage: &Stage, name: &str) -> mlua::Result<MultiValue> {
    let handlers = stage.handlers.borrow();
    let Some(handler) = handlers.get(name) else {
        return Ok(MultiValue::new());
    };
    let copy = convert::load_function(lua, &handler.shipped.code, &stage.env)?;
    let mut out = MultiValue::from_iter([LuaValue::Function(copy)]);
    match handler.args.as_slice() {
        [] => {}
        [one] => out.push_back(convert::from_value(lua, one, &stage.env)?),
        many => {
            let t = lua.create_sequence_from(
                many.iter()
                    .map(|v| convert::from_value(lua, v, &stage.env))
                    .collect::<mlua::Result<Vec<_>>>()?,
            )?;
            out.push_back(LuaValue::Table(t));
        }
    }
    Ok(out)
}

/// `stage.waitfor()`: name → registration arguments (`true` when there are none).
fn list_handlers(lua: &Lua, stage: &Stage) -> mlua::Result<MultiValue> {
    let out = lua.create_table()?;
    for (name, handler) in stage.handlers.borrow().iter() {
        let value = match handler.args.as_slice() {
            [] => LuaValue::Boolean(true),
            [one] => convert::from_value(lua, one, &stage.env)?,
            many => LuaValue::Table(
                lua.create_sequence_from(
                    many.iter()
                        .map(|v| convert::from_value(lua, v, &stage.env))
                        .collect::<mlua::Result<Vec<_>>>()?,
                )?,
            ),
        };
        out.raw_set(name.as_str(), value)?;
    }
    Ok(MultiValue::from_iter([LuaValue::Table(out)]))
}

// ---------------------------------------------------------------- signal

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
                    k.to_str()?.to_string(),
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
/// (the stage thread's fast path: `rawsend.rs`). `Ok(false)` when nothing was sent: the
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
fn other_stage_key(svc: &str, own: Option<&str>, msg: &str, include_sender: bool) -> String {
    match (include_sender, own) {
        (true, Some(me)) => [svc, me, msg].join(":"),
        _ => [svc, msg].join(":"),
    }
}

/// Builds an outgoing message, refusing values over `#limits.message_bytes` (decision 28).
fn message<'a>(
    lua: &Lua,
    stage: &Actor,
    key: String,
    values: impl IntoIterator<Item = &'a LuaValue>,
    deadline_ms: Option<u64>,
) -> mlua::Result<Message> {
    outgoing(stage, key, convert::to_args(lua, values)?, deadline_ms)
}

/// [`message`] with values copied already.
fn outgoing(
    stage: &Actor,
    key: String,
    values: Args,
    deadline_ms: Option<u64>,
) -> mlua::Result<Message> {
    let limit = stage.process().limits.max_message_bytes();
    let size = key.len() + values.iter().map(Value::approx_size).sum::<usize>();
    if size > limit {
        return Err(mlua::Error::runtime(format!(
            "message '{key}' is too large: about {size} bytes, the limit is {limit} (#limits.message_bytes)"
        )));
    }
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

/// `stage.signal(nil, ...)` or a hand-made reply context (`messaging.md` §7.2).
fn reply(lua: &Lua, stage: &Actor, ctx: &Table, values: MultiValue) -> mlua::Result<MultiValue> {
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
/// (`rawsend.rs`): `Ok(false)` when nothing was sent because the reply goes to this very
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
    let key = reply_key(id, to_stage);
    if key.is_empty() {
        return Ok(true);
    }
    let message = Message {
        key,
        values,
        sender: None,
        deadline_ms: None,
        globals: Vec::new(),
    };
    stage.send_elsewhere(address, message)?;
    Ok(true)
}

/// The payload key of a reply to message `id` from stage `to_stage` (empty: nothing to reply
/// to).
fn reply_key(id: &str, to_stage: Option<&str>) -> String {
    let reply = reply_id(id);
    match to_stage {
        Some(s) => [s, reply].join(":"),
        None => reply.to_string(),
    }
}

fn reply_to(
    lua: &Lua,
    stage: &Actor,
    id: Option<String>,
    address: Option<String>,
    to_stage: Option<String>,
    values: MultiValue,
) -> mlua::Result<MultiValue> {
    let key = reply_key(id.as_deref().unwrap_or(""), to_stage.as_deref());
    if key.is_empty() {
        return Ok(MultiValue::new());
    }
    match address {
        Some(address) => {
            let message = Message {
                key,
                values: convert::to_args(lua, values.iter())?,
                sender: None,
                deadline_ms: None,
                globals: Vec::new(),
            };
            stage.send_to(lua, &address, message)?;
        }
        None => {
            let msg = match stage.id() {
                Some(own) => match key.strip_prefix(own).and_then(|k| k.strip_prefix(':')) {
                    Some(m) => m.to_string(),
                    None => return Ok(MultiValue::new()),
                },
                None => key,
            };
            stage.call_sync(lua, &msg, values)?;
        }
    }
    Ok(MultiValue::new())
}

// ---------------------------------------------------------------- addtask

fn addtask(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let stage = current_stage(lua)?;
    let count = args.len();
    let mut args = args.into_iter();
    let first = args.next().unwrap_or(LuaValue::Nil);
    let (delay, f) = match first {
        LuaValue::String(handle) => {
            return change_task(lua, &stage, &handle.to_str()?, count, args.collect())
        }
        LuaValue::Function(f) => (0, f),
        LuaValue::Integer(_) | LuaValue::Number(_) => match args.next() {
            Some(LuaValue::Function(f)) => (lua.coerce_integer(first)?.unwrap_or(0), f),
            _ => {
                return Err(mlua::Error::runtime(
                    "stage.addtask(delay, fn, ...): a function must follow the delay",
                ))
            }
        },
        other => {
            return Err(mlua::Error::runtime(format!(
                "stage.addtask: expected a delay, a function or a task handle, got a {}",
                errors::type_name(&other)
            )))
        }
    };
    let rest: Vec<LuaValue> = args.collect();
    let shipped = Shipped::ship(lua, &f, &stage.env)?;
    let now = stage.now();
    let handle = stage
        .timers
        .borrow_mut()
        .add(now, delay, shipped, copy_all(lua, &rest)?)
        .map_err(mlua::Error::external)?;
    Ok(MultiValue::from_iter([LuaValue::String(
        lua.create_string(&handle)?,
    )]))
}

/// `addtask(handle, nil)`, `addtask(handle, n [, fn])`, `addtask(handle, fn)`.
fn change_task(
    lua: &Lua,
    stage: &Stage,
    handle: &str,
    count: usize,
    rest: Vec<LuaValue>,
) -> mlua::Result<MultiValue> {
    let id = stage
        .timers
        .borrow()
        .parse_handle(handle)
        .map_err(mlua::Error::external)?;
    let now = stage.now();
    let found = match rest.as_slice() {
        [LuaValue::Nil] | [] if count >= 2 => stage.timers.borrow_mut().cancel(id),
        [LuaValue::Function(f)] => {
            let shipped = Shipped::ship(lua, f, &stage.env)?;
            stage
                .timers
                .borrow_mut()
                .reschedule(now, id, None, Some(shipped))
        }
        [n @ (LuaValue::Integer(_) | LuaValue::Number(_)), more @ ..] => {
            let interval = lua.coerce_integer(n.clone())?.unwrap_or(0);
            let shipped = match more.first() {
                Some(LuaValue::Function(f)) => Some(Shipped::ship(lua, f, &stage.env)?),
                _ => None,
            };
            stage
                .timers
                .borrow_mut()
                .reschedule(now, id, Some(interval), shipped)
        }
        _ => {
            return Err(mlua::Error::runtime(
                "stage.addtask(handle, ...): expected nil, a delay or a function",
            ))
        }
    };
    Ok(MultiValue::from_iter([LuaValue::Boolean(found)]))
}

// ---------------------------------------------------------------- once, call

fn once(lua: &Lua, (key, f): (LuaValue, LuaValue)) -> mlua::Result<()> {
    let process = current_process(lua)?;
    let key = match key {
        LuaValue::String(s) => s.to_str()?.to_string(),
        _ => String::new(),
    };
    match f {
        LuaValue::Function(f) => {
            if !process.once.lock().insert(key) {
                return Ok(());
            }
            if let Err(e) = f.call::<()>(()) {
                crate::stage::report_error(lua, &e);
            }
            Ok(())
        }
        LuaValue::Nil => {
            process.once.lock().remove(&key);
            Ok(())
        }
        other => Err(mlua::Error::runtime(format!(
            "stage.once(key, fn): expected a function or nil, got a {}",
            errors::type_name(&other)
        ))),
    }
}

/// `stage.call(f, ...)`: runs `f` now in this thread; table arguments are spread into their
/// values (wrap a table in a table to pass it whole).
fn call(lua: &Lua, (f, args): (LuaValue, MultiValue)) -> mlua::Result<MultiValue> {
    let mut spread = MultiValue::new();
    let f = match f {
        LuaValue::Function(f) => f,
        LuaValue::Table(t) => {
            let mut values = t.pairs::<LuaValue, LuaValue>().map(|p| p.map(|(_, v)| v));
            let Some(LuaValue::Function(f)) = values.next().transpose()? else {
                return Ok(MultiValue::new());
            };
            for v in values {
                spread.push_back(v?);
            }
            f
        }
        LuaValue::String(name) => match load(lua, &name.to_str()?, None)?.into_iter().next() {
            Some(LuaValue::Function(f)) => f,
            _ => return Ok(MultiValue::new()),
        },
        _ => return Ok(MultiValue::new()),
    };
    for arg in args {
        match arg {
            LuaValue::Table(t) => {
                for pair in t.pairs::<LuaValue, LuaValue>() {
                    spread.push_back(pair?.1);
                }
            }
            other => spread.push_back(other),
        }
    }
    current_sandbox(lua)?.call_isolated(f, spread)
}

// ---------------------------------------------------------------- load, require

/// Compiles and runs a script by name in this state; `None` when no copy is found.
pub(crate) fn run_script(
    lua: &Lua,
    process: &ProcessContext,
    env: &Table,
    file: &str,
) -> Option<(Script, mlua::Result<LuaValue>)> {
    let search = process.search_path();
    let (script, chunk) = process.scripts.load(file, &search, |script| {
        lua.load(&*script.source)
            .set_name(script.chunk_name())
            .set_mode(mlua::chunk::ChunkMode::Text)
            .set_environment(env.clone())
            .into_function()
            .map_err(|e| e.to_string())
    })?;
    Some((script, chunk.call::<LuaValue>(())))
}

pub(crate) fn select_field(
    lua: &Lua,
    value: LuaValue,
    field: Option<&str>,
) -> mlua::Result<LuaValue> {
    match (field, value) {
        (Some(field), LuaValue::Table(t)) => t.raw_get(lua.create_string(field)?),
        (_, v) => Ok(v),
    }
}

fn not_found_info(lua: &Lua, name: &str) -> mlua::Result<Table> {
    let (file, field) = match name.split_once('+') {
        Some((f, field)) => (f, Some(field)),
        None => (name, None),
    };
    let info = lua.create_table()?;
    info.raw_set(1, file.replace('.', "/"))?;
    if let Some(field) = field {
        info.raw_set(2, field)?;
    }
    Ok(info)
}

fn found_info(lua: &Lua, script: &Script) -> mlua::Result<Table> {
    let info = lua.create_table()?;
    info.raw_set(1, script.position)?;
    info.raw_set(2, script.shown.as_str())?;
    info.raw_set(3, script.mtime_secs)?;
    Ok(info)
}

/// Hands a found script's value to `fn(v, info)`, or returns it.
fn answer(
    lua: &Lua,
    f: Option<Function>,
    value: LuaValue,
    info: Option<&Script>,
) -> mlua::Result<MultiValue> {
    match f {
        Some(f) => {
            let info = match info {
                Some(script) => LuaValue::Table(found_info(lua, script)?),
                None => LuaValue::Nil,
            };
            f.call((value, info))
        }
        None => Ok(MultiValue::from_iter([value])),
    }
}

/// What a load that found nothing answers: `fn(nil, {FILE, FIELD})`, or nothing.
fn not_found(lua: &Lua, f: Option<Function>, name: &str) -> mlua::Result<MultiValue> {
    match f {
        Some(f) => f.call((LuaValue::Nil, not_found_info(lua, name)?)),
        None => Ok(MultiValue::new()),
    }
}

/// `stage.load(name [, fn])` (`runtime.md` §8.4).
pub fn load(lua: &Lua, name: &str, f: Option<Function>) -> mlua::Result<MultiValue> {
    let (file, field) = split_name(name);
    let env = current_sandbox(lua)?.env.clone();
    let Some((script, result)) = run_script(lua, &*current_process(lua)?, &env, &file) else {
        return not_found(lua, f, name);
    };
    let value = match result {
        Ok(v) => select_field(lua, v, field)?,
        Err(e) => {
            crate::stage::report_error(lua, &e);
            LuaValue::Nil
        }
    };
    answer(lua, f, value, Some(&script))
}

/// `stage.require(name [, fn])` (`runtime.md` §8.5): once per state, kept in `package.loaded`.
pub fn require(lua: &Lua, name: &str, f: Option<Function>) -> mlua::Result<MultiValue> {
    let (module, field) = match name.split_once('+') {
        Some((m, field)) => (m, Some(field)),
        None => (name, None),
    };
    let loaded: Table = lua.globals().get::<Table>("package")?.get("loaded")?;
    let cached: LuaValue = loaded.raw_get(module)?;
    if !cached.is_nil() {
        return answer(lua, f, select_field(lua, cached, field)?, None);
    }
    let (file, _) = split_name(name);
    let env = current_sandbox(lua)?.env.clone();
    let Some((script, result)) = run_script(lua, &*current_process(lua)?, &env, &file) else {
        return not_found(lua, f, name);
    };
    let value = match result? {
        LuaValue::Nil | LuaValue::Boolean(false) => LuaValue::Boolean(true),
        v => v,
    };
    loaded.raw_set(module, value.clone())?;
    answer(lua, f, select_field(lua, value, field)?, Some(&script))
}

// ---------------------------------------------------------------- submit

/// `stage.submit([key,] fn, ...)` (`runtime.md` §9.5): runs `fn(...)` on the worker pool,
/// acting for the calling stage.
fn submit(lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    let actor = Actor::current(lua)?;
    let mut args = args.into_iter().peekable();
    let key = match args.peek() {
        Some(n @ (LuaValue::Integer(_) | LuaValue::Number(_))) => {
            let key = lua.coerce_integer(n.clone())?.unwrap_or(0);
            args.next();
            key
        }
        _ => 0,
    };
    let func = match args.next() {
        Some(LuaValue::Function(f)) => job_function(lua, &f)?,
        Some(LuaValue::String(name)) => JobFn::Script(name.to_str()?.to_string()),
        other => {
            return Err(mlua::Error::runtime(format!(
                "Unsupported data types: stage.submit runs a function or a script name, got {}",
                other.map_or("nil", |v| errors::type_name(&v))
            )))
        }
    };
    let rest: Vec<LuaValue> = args.collect();
    let job = Job {
        key,
        func,
        args: convert::to_transferable_args(lua, &rest)?,
        origin: actor.origin().clone(),
        thread: None,
    };
    actor.process().submit(job)
}

/// A function as a job runs it: bytecode, its captured locals lost (with a WARN).
pub(crate) fn job_function(lua: &Lua, f: &Function) -> mlua::Result<JobFn> {
    Ok(JobFn::Code(crate::handlers::shipped_code(lua, f)?))
}
