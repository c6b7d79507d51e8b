//! Delivering: how a stage takes the messages of its mailbox and of its local queue, finds
//! their handlers (`messaging.md` §3), invokes them with `_WAITFOR` and the message's
//! invocation globals, and sends the automatic reply; synchronous `:msg` calls.

use super::fast::{Counts, LocalSender, Mail, WaitFor};
use crate::convert;
use crate::stage::{registration_args, report_error, Stage};
use mlua::{Lua, MultiValue, Value as LuaValue};
use stage_core::matching;
use stage_core::{Message, PayloadKey, Sender, Value};

impl Stage {
    /// Queues a message to this very instance, handled after the current invocation.
    pub fn post_local(&self, lua: &Lua, message: Message) -> mlua::Result<()> {
        let Some(msg) = self.message_id(&message) else {
            return Ok(());
        };
        let sender = match &message.sender {
            Some(Sender { stage: Some(_), .. }) => LocalSender::Stage,
            Some(Sender { stage: None, .. }) => LocalSender::AutoReply,
            None => LocalSender::Nobody,
        };
        self.fast()?
            .post(lua, msg, sender, message.deadline_ms, &message.values)
    }

    /// Handles a batch of messages from the mailbox in order, and empties it: each run of
    /// messages for plain handlers is dispatched by the fast path, every other message by
    /// `Stage::deliver` (outside any invocation, where its strings are cheaper to make).
    pub fn deliver_mail(&self, lua: &Lua, batch: &mut Vec<Message>) {
        self.counters.messages_in.inc_by(batch.len() as u64);
        let mut at = 0;
        while at < batch.len() {
            let run = self.plain_run(&batch[at..]);
            if run.is_empty() {
                self.deliver(lua, &batch[at], stage_core::clock::wall_ms);
                at += 1;
                continue;
            }
            let (len, written) = (run.len(), self.fast().and_then(|f| f.write_mail(lua, &run)));
            drop(run);
            match written {
                Ok(written) => self.drain_mail(lua, batch, at, written),
                Err(e) => {
                    report_error(lua, &e);
                    for message in &batch[at..at + len] {
                        self.deliver(lua, message, stage_core::clock::wall_ms);
                    }
                }
            }
            at += len;
        }
        batch.clear();
        self.retire_finished(lua);
    }

    /// Sets the callbacks of the jobs that ended apart from the handlers in use (see
    /// [`crate::handlers::Handlers::retire`]), and off the fast path. A job's end is taken from the mailbox
    /// without waiting for the batch before it to be handled (see [`Stage::take_command`]);
    /// its callback is set apart only after that batch, which holds the job's last values.
    pub fn retire_finished(&self, lua: &Lua) {
        let count = self.finished.replace(0);
        if count == 0 {
            return;
        }
        let expiring = self.expiring.borrow();
        let mut handlers = self.handlers.borrow_mut();
        let plain: Vec<&str> = expiring
            .range(expiring.len().saturating_sub(count)..)
            .map(|(_, name)| name.as_str())
            .filter(|name| handlers.retire(name))
            .collect();
        drop(handlers);
        if plain.is_empty() {
            return;
        }
        if let Err(e) = self.fast().and_then(|f| f.drop_plain(lua, &plain)) {
            report_error(lua, &e);
        }
    }

    /// The messages for plain handlers at the start of `batch`, as the handlers are now.
    fn plain_run<'m>(&self, batch: &'m [Message]) -> Vec<Mail<'m>> {
        let handlers = self.handlers.borrow();
        batch
            .iter()
            .map_while(|message| {
                let msg = self.message_id(message)?;
                // The handler `matching::find` would try first.
                let name = msg.split_once('=').map_or(msg, |(base, _)| base);
                handlers.get(name).filter(|h| h.fast)?;
                Mail::of(msg, name, message)
            })
            .collect()
    }

    /// Runs the messages of `batch` from `at` that [`FastPath::write_mail`] wrote.
    fn drain_mail(
        &self,
        lua: &Lua,
        batch: &mut Vec<Message>,
        at: usize,
        written: super::fast::Written,
    ) {
        std::mem::swap(&mut *self.mail.borrow_mut(), batch);
        self.mail_at.set(at);
        let drained = {
            let _running = self.progress.begin(lua);
            self.fast().and_then(|f| f.drain_mail(written))
        };
        std::mem::swap(&mut *self.mail.borrow_mut(), batch);
        match drained {
            Ok(counts) => self.count(&counts),
            Err(e) => report_error(lua, &e),
        }
    }

    /// Adds what the fast path's handlers did to the stage's counters.
    pub fn count(&self, counts: &Counts) {
        let counters = &self.counters;
        counters.handler_calls.inc_by(counts.calls);
        counters.handler_errors.inc_by(counts.errors);
        counters.messages_out.inc_by(counts.sent);
    }

    /// Delivers message `index` (from 1) of the run the fast path is handling, whose handler
    /// an earlier message of the run changed (a copy: the batch stays borrowed only here).
    pub fn deliver_from_batch(&self, lua: &Lua, index: usize) {
        let at = self.mail_at.get() + index;
        let message = at
            .checked_sub(1)
            .and_then(|i| self.mail.borrow().get(i).cloned());
        if let Some(message) = message {
            self.deliver(lua, &message, stage_core::clock::wall_ms);
        }
    }

    /// Sends the results of the handler of mailbox message `msg` to its sender, stage `to` at
    /// `address` (for the fast path; errors are reported).
    pub fn auto_reply(&self, lua: &Lua, msg: &str, address: &str, to: &str, results: MultiValue) {
        let key = PayloadKey::reply(Some(to), msg);
        if let Err(e) = self.reply(lua, address, key, results.iter()) {
            report_error(lua, &e);
        }
    }

    /// The id of a mailbox message at this stage; `None` when it is not for this stage.
    fn message_id<'m>(&self, message: &'m Message) -> Option<&'m str> {
        message.key.msg_for(self.origin.id.as_deref())
    }

    /// Handles one message from the mailbox: matches a handler, calls it, sends the automatic
    /// reply.
    fn deliver(&self, lua: &Lua, message: &Message, now_wall_ms: impl Fn() -> u64) {
        if message.deadline_ms.is_some_and(|d| now_wall_ms() >= d) {
            return;
        }
        let Some(msg_id) = self.message_id(message) else {
            return;
        };
        let values = match convert::from_args(lua, &message.values, &self.env) {
            Ok(v) => v,
            Err(e) => return report_error(lua, &e),
        };
        self.deliver_values(
            lua,
            msg_id,
            message.sender.as_ref(),
            values,
            &message.globals,
        );
    }

    /// Handles a message this stage sent itself that the fast path could not (a handler that is
    /// not plain, or no exact match).
    pub fn deliver_local(&self, lua: &Lua, msg_id: &str, sender: LocalSender, values: MultiValue) {
        let sender = match sender {
            LocalSender::Stage => Some(self.sender()),
            LocalSender::AutoReply => Some(self.origin.reply_sender()),
            LocalSender::Nobody => None,
        };
        self.deliver_values(lua, msg_id, sender.as_ref(), values, &[]);
    }

    fn deliver_values(
        &self,
        lua: &Lua,
        msg_id: &str,
        sender: Option<&Sender>,
        values: MultiValue,
        globals: &[(String, Value)],
    ) {
        let (name, f, mut args) = match self.prepare(lua, msg_id) {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => return report_error(lua, &e),
        };
        args.extend(values);
        let waitfor = WaitFor::new(
            lua,
            msg_id,
            &name,
            sender.map(|s| &*s.address),
            sender.and_then(|s| s.stage.as_deref()),
        );
        let waitfor = match waitfor {
            Ok(waitfor) => waitfor,
            Err(e) => return report_error(lua, &e),
        };
        self.counters.handler_calls.inc();
        let base = (!globals.is_empty()).then(|| lua.globals());
        let saved = match &base {
            Some(base) => match set_globals(lua, base, globals, &self.env) {
                Ok(saved) => saved,
                Err(e) => return report_error(lua, &e),
            },
            None => Vec::new(),
        };
        let results = self.invoke(lua, &f, args, Some(waitfor));
        if let Some(base) = &base {
            if let Err(e) = restore_globals(base, globals, saved) {
                report_error(lua, &e);
            }
        }
        let Some(results) = results.filter(|r| !r.is_empty()) else {
            return;
        };
        if let Some(Sender {
            address,
            stage: Some(stage),
        }) = sender
        {
            self.auto_reply(lua, msg_id, address, stage, results);
        }
    }

    /// The matching handler's name, fresh function and registration arguments, or `None` when
    /// no handler matches.
    fn prepare(
        &self,
        lua: &Lua,
        msg_id: &str,
    ) -> mlua::Result<Option<(String, mlua::Function, MultiValue)>> {
        let handlers = self.handlers.borrow();
        let Some((name, handler)) = matching::find(msg_id, |n| handlers.entry(n)) else {
            return Ok(None);
        };
        let args = registration_args(lua, handler, &self.env)?;
        Ok(Some((name.to_string(), handler.shipped.fresh(lua)?, args)))
    }

    /// Runs the own handler for `msg_id` now, in this state, with the caller's values; returns
    /// its results (decision 14); its errors propagate to the caller (decision 30).
    pub fn call_sync(
        &self,
        lua: &Lua,
        msg_id: &str,
        values: MultiValue,
    ) -> mlua::Result<MultiValue> {
        let Some((name, f, mut args)) = self.prepare(lua, msg_id)? else {
            return Ok(MultiValue::new());
        };
        args.extend(values);
        let waitfor = waitfor_table(lua, msg_id, &name, None)?;
        self.counters.handler_calls.inc();
        let was_sync = self.in_sync_call.replace(true);
        let result = with_waitfor(lua, Some(waitfor), || f.call::<MultiValue>(args));
        self.in_sync_call.set(was_sync);
        result
    }

    /// Sends reply values straight to a reply address (no sender stage: replies get no reply).
    pub fn reply<'a>(
        &self,
        lua: &Lua,
        address: &str,
        key: PayloadKey,
        values: impl IntoIterator<Item = &'a LuaValue>,
    ) -> mlua::Result<()> {
        let message = Message {
            key,
            values: convert::to_args(lua, values)?,
            sender: Some(self.origin.reply_sender()),
            deadline_ms: None,
            globals: Vec::new(),
        };
        self.send_to(lua, address, message)
    }

    /// Sends a message to a reply address (this instance's own address stays local).
    pub fn send_to(&self, lua: &Lua, address: &str, message: Message) -> mlua::Result<()> {
        if address == &*self.origin.address {
            return self.post_local(lua, message);
        }
        self.send_elsewhere(address, message)
    }

    /// Sends a message to the reply address of another instance.
    pub fn send_elsewhere(&self, address: &str, message: Message) -> mlua::Result<()> {
        self.counters.messages_out.inc();
        self.process
            .node
            .router
            .send_to(address, message)
            .map(|_| ())
            .map_err(mlua::Error::external)
    }
}

/// The `_WAITFOR` table of one handler call (`messaging.md` §3.3).
fn waitfor_table(
    lua: &Lua,
    msg_id: &str,
    name: &str,
    sender: Option<&Sender>,
) -> mlua::Result<mlua::Table> {
    let t = lua.create_table_with_capacity(2, 2)?;
    t.raw_set(0, msg_id)?;
    t.raw_set(-1, name)?;
    if let Some(sender) = sender {
        t.raw_set(1, &*sender.address)?;
        if let Some(stage) = &sender.stage {
            t.raw_set(2, &**stage)?;
        }
    }
    Ok(t)
}

/// Sets the invocation globals a message carries in `base`, the state's globals; returns what
/// they replaced, in order.
fn set_globals(
    lua: &Lua,
    base: &mlua::Table,
    globals: &[(String, Value)],
    env: &mlua::Table,
) -> mlua::Result<Vec<LuaValue>> {
    globals
        .iter()
        .map(|(name, value)| {
            let previous = base.raw_get(name.as_str())?;
            base.raw_set(name.as_str(), convert::from_value(lua, value, env)?)?;
            Ok(previous)
        })
        .collect()
}

/// Puts back what [`set_globals`] replaced.
fn restore_globals(
    base: &mlua::Table,
    globals: &[(String, Value)],
    saved: Vec<LuaValue>,
) -> mlua::Result<()> {
    for ((name, _), previous) in globals.iter().zip(saved) {
        base.raw_set(name.as_str(), previous)?;
    }
    Ok(())
}

/// Runs `f` with the global `_WAITFOR` set to `waitfor`, restoring the previous value after.
fn with_waitfor<R>(
    lua: &Lua,
    waitfor: Option<mlua::Table>,
    f: impl FnOnce() -> mlua::Result<R>,
) -> mlua::Result<R> {
    let globals = lua.globals();
    let previous: LuaValue = globals.raw_get("_WAITFOR")?;
    globals.raw_set("_WAITFOR", waitfor)?;
    let result = f();
    globals.raw_set("_WAITFOR", previous)?;
    result
}
