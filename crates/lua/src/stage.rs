//! [`Stage`]: one Lua stage on its stage thread — its handlers, timers, idle function and queue
//! of messages to itself, and how each of them is invoked (`runtime.md` §6–7, `messaging.md` §3).
//!
//! Every invocation (main script, handler, timer, idle call) runs protected: an error is passed
//! to `_TRACEBACK` (which logs it) and the stage goes on. `_WAITFOR` is set for handlers only and
//! restored afterwards, so nested synchronous calls do not clobber it.

use crate::budget::Progress;
use crate::convert;
use crate::fastpath::{Counts, FastPath, LocalSender, Mail, WaitFor};
use crate::handlers::{Handler, Handlers, Shipped};
use crate::process::ProcessContext;
use crate::timers::Timers;
use crate::worker::Origin;
use mlua::{Lua, MultiValue, Value as LuaValue};
use prometheus_client::metrics::counter::Counter;
use stage_core::address::reply_id;
use stage_core::matching;
use stage_core::{Message, Sender, Value};
use std::any::Any;
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// What a stage counts (in the node's metrics registry).
pub struct StageCounters {
    pub messages_in: Counter,
    pub messages_out: Counter,
    pub handler_calls: Counter,
    pub handler_errors: Counter,
    pub timer_runs: Counter,
}

impl StageCounters {
    fn new(process: &ProcessContext, id: &str) -> StageCounters {
        let metrics = &process.node.metrics;
        let labels = [("stage", id)];
        StageCounters {
            messages_in: metrics.counter(
                "stage_messages_in",
                "Messages taken from the mailbox",
                &labels,
            ),
            messages_out: metrics.counter("stage_messages_out", "Messages sent", &labels),
            handler_calls: metrics.counter("stage_handler_calls", "Handler invocations", &labels),
            handler_errors: metrics.counter(
                "stage_handler_errors",
                "Invocations that raised an error",
                &labels,
            ),
            timer_runs: metrics.counter("stage_timer_runs", "addtask callbacks run", &labels),
        }
    }
}

/// One Lua stage, owned by its stage thread (stored in its Lua state's app data).
pub struct Stage {
    /// The stage id, this instance's reply address (`_WAITFOR[1]` at receivers) and its
    /// mailbox: what its jobs act for.
    pub origin: Origin,
    pub process: Arc<ProcessContext>,
    /// The stage thread's private globals, alive as long as the stage (decision 7).
    pub env: mlua::Table,
    pub handlers: RefCell<Handlers>,
    pub timers: RefCell<Timers>,
    /// The Lua side of the fast path, which also queues the messages this instance sends to
    /// itself (installed right after the stage is created).
    pub fast: OnceCell<FastPath>,
    /// When the idle function is next due (monotonic ms), if it is scheduled.
    pub idle_due: Cell<Option<u64>>,
    /// True while a synchronous `:msg` handler runs: `stage.signal(nil, …)` then sends nothing.
    pub in_sync_call: Cell<bool>,
    pub counters: StageCounters,
    /// Counts the invocations the runtime starts (see [`crate::budget`]).
    pub progress: Progress,
    /// `thread.new` callbacks whose job has ended, with when they are removed (monotonic ms).
    expiring: RefCell<VecDeque<(u64, String)>>,
    /// How many of the last entries of `expiring` are callbacks of jobs that ended since the
    /// last batch was handled: set apart after it (see [`Stage::retire_finished`]).
    finished: Cell<usize>,
    /// The mailbox batch being handled, and where the run the fast path handles starts: a
    /// message whose handler an earlier one changed is taken from here (see
    /// [`Stage::deliver_from_batch`]).
    mail: RefCell<Vec<Message>>,
    mail_at: Cell<usize>,
    /// The next `thread.new` callback id, in sequence (see [`Stage::fresh_callback_id`]).
    next_callback: Cell<u64>,
    started: Instant,
}

/// What a job asks of the stage it acts for (in order with the messages it sends).
pub enum StageCommand {
    /// `stage.waitfor(name, fn, ...)` in a job: registers shipped bytecode; `args` `None` keeps
    /// earlier registration arguments.
    Register {
        name: String,
        code: Arc<[u8]>,
        args: Option<Vec<Value>>,
    },
    /// `stage.waitfor(name, nil)` in a job.
    Unregister(String),
    /// `stage.waitfor(name, v, ...)` in a job.
    SetArgs { name: String, args: Vec<Value> },
}

/// A `thread.new` job ended, with the message of its return values to its callback when it
/// returned normally (one mailbox entry for both): the callback goes
/// [`THREAD_CALLBACK_LINGER_MS`] later.
pub struct ThreadDone {
    pub callback: String,
    pub last: Option<Message>,
}

/// How long a `thread.new` callback stays registered after its job ended (`runtime.md` §9.8).
pub const THREAD_CALLBACK_LINGER_MS: u64 = 1000;

impl Stage {
    /// A stage with no handlers yet; `env` is its private global table.
    pub fn new(origin: Origin, process: Arc<ProcessContext>, env: mlua::Table, tag: u64) -> Stage {
        let counters = StageCounters::new(&process, origin.id.as_deref().unwrap_or(""));
        let timers = Timers::new(tag, process.limits.max_timers_per_stage());
        Stage {
            origin,
            process,
            env,
            handlers: RefCell::new(Handlers::default()),
            timers: RefCell::new(timers),
            fast: OnceCell::new(),
            idle_due: Cell::new(None),
            in_sync_call: Cell::new(false),
            counters,
            progress: Progress::default(),
            expiring: RefCell::new(VecDeque::new()),
            finished: Cell::new(0),
            mail: RefCell::new(Vec::new()),
            mail_at: Cell::new(0),
            next_callback: Cell::new(fastrand::u64(..)),
            started: Instant::now(),
        }
    }

    /// Monotonic milliseconds since the stage started.
    pub fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The return address this stage's messages carry.
    pub fn sender(&self) -> Sender {
        self.origin.sender()
    }

    /// Carries out a command from a job acting for this stage, taken from the mailbox while
    /// `mail` was being gathered: a registration change after the messages before it are
    /// handled (they keep their order); a job's end ([`ThreadDone`]) adds its last message to
    /// `mail` and only schedules its callback's removal a second later, so a stream of
    /// `thread.new` results is still handled in batches.
    pub fn take_command(&self, lua: &Lua, command: Box<dyn Any + Send>, mail: &mut Vec<Message>) {
        let command = match command.downcast::<ThreadDone>() {
            Ok(done) => {
                let ThreadDone { callback, last } = *done;
                mail.extend(last);
                let at = self.now() + THREAD_CALLBACK_LINGER_MS;
                self.expiring.borrow_mut().push_back((at, callback));
                self.finished.set(self.finished.get() + 1);
                return;
            }
            Err(other) => other,
        };
        let Ok(command) = command.downcast::<StageCommand>() else {
            return tracing::error!(
                "stage '{}': a command of an unknown kind was dropped",
                self.origin.id.as_deref().unwrap_or("")
            );
        };
        if !mail.is_empty() {
            self.deliver_mail(lua, mail);
        }
        let done = match *command {
            StageCommand::Register { name, code, args } => {
                Shipped::load(lua, code, &self.env).and_then(|f| self.register(name, f, args))
            }
            StageCommand::Unregister(name) => self.unregister(&name).map(|_| ()),
            StageCommand::SetArgs { name, args } => self.set_args(&name, args).map(|_| ()),
        };
        if let Err(e) = done {
            report_error(lua, &e);
        }
    }

    /// The payload key of message `msg` addressed to this stage.
    pub fn own_key(&self, msg: &str) -> String {
        self.origin.own_key(msg)
    }

    /// The fast path, once installed.
    fn fast(&self) -> mlua::Result<&FastPath> {
        self.fast
            .get()
            .ok_or_else(|| mlua::Error::runtime("the stage is not started yet"))
    }

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

    /// Registers a handler (the idle function when `name` is empty).
    pub fn register(
        &self,
        name: String,
        shipped: Shipped,
        args: Option<Vec<Value>>,
    ) -> mlua::Result<()> {
        if name.is_empty() {
            self.idle_due.set(Some(self.now()));
        }
        self.handlers
            .borrow_mut()
            .register(name.clone(), shipped, args);
        self.sync_plain(&name)
    }

    /// Registers `shipped`, a function without upvalues, as the plain handler `name` with no
    /// registration arguments, which the fast path's Lua side puts in its table itself (a
    /// `thread.new` callback, see `rawthread.rs`); false when `name` cannot be plain.
    pub fn register_plain(&self, name: &str, shipped: Shipped) -> bool {
        if shipped.has_upvalues || !plain_name(name) {
            return false;
        }
        let mut handlers = self.handlers.borrow_mut();
        handlers
            .register(name.to_string(), shipped, Some(Vec::new()))
            .fast = true;
        true
    }

    /// A new id for a `thread.new` callback: 16 letters and digits like the ids
    /// `stage.waitfor(fn)` makes, from a sequence that starts at a random point (it does not
    /// repeat within 2^64 ids), skipping the names of handlers in use. Cheaper than random ids:
    /// one is made for every job. The callbacks of ended jobs are not looked at: they have ids
    /// of the same sequence, or random ones, which 62^16 possible ids make as good as unique.
    pub fn fresh_callback_id(&self) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        loop {
            let mut n = self.next_callback.get();
            self.next_callback.set(n.wrapping_add(1));
            let mut id = [b'0'; crate::api::thread::CallbackId::LEN];
            for c in id.iter_mut().rev() {
                *c = ALPHABET[(n % 62) as usize];
                n /= 62;
            }
            // Letters and digits only: always UTF-8.
            let id = std::str::from_utf8(&id).unwrap_or_default().to_owned();
            if !self.handlers.borrow().in_use(&id) {
                return id;
            }
        }
    }

    /// Removes a handler; false when there was none.
    pub fn unregister(&self, name: &str) -> mlua::Result<bool> {
        let removed = self.handlers.borrow_mut().remove(name);
        if name.is_empty() {
            self.idle_due.set(None);
        }
        match (&removed, self.fast.get()) {
            (Some(h), Some(fast)) if h.fast => fast.set_plain(name, None)?,
            _ => {}
        }
        Ok(removed.is_some())
    }

    /// Replaces a handler's registration arguments; false when there is no such handler.
    pub fn set_args(&self, name: &str, args: Vec<Value>) -> mlua::Result<bool> {
        let found = self.handlers.borrow_mut().set_args(name, args);
        self.sync_plain(name)?;
        Ok(found)
    }

    /// Puts `name` on the fast path when its handler is plain (see [`FastPath`]), or takes it off.
    fn sync_plain(&self, name: &str) -> mlua::Result<()> {
        let Some(fast) = self.fast.get() else {
            return Ok(());
        };
        let mut handlers = self.handlers.borrow_mut();
        let Some(h) = handlers.get_mut(name) else {
            return Ok(());
        };
        let plain = h.args.is_empty() && !h.shipped.has_upvalues && plain_name(name);
        if !plain && !h.fast {
            return Ok(());
        }
        h.fast = plain;
        let f = plain.then(|| h.shipped.func.clone());
        drop(handlers);
        fast.set_plain(name, f.as_deref())
    }

    /// Runs `f` protected with `_WAITFOR` set for `waitfor`; errors go to `_TRACEBACK`.
    pub fn invoke(
        &self,
        lua: &Lua,
        f: &mlua::Function,
        args: MultiValue,
        waitfor: Option<WaitFor>,
    ) -> Option<MultiValue> {
        let _running = self.progress.begin(lua);
        let outcome = match self.fast.get() {
            Some(fast) => fast.invoke(f, waitfor, args),
            None => Err(mlua::Error::runtime(
                "the stage's fast path is not installed",
            )),
        };
        let text = match outcome {
            Ok(Ok(values)) => return Some(values),
            Ok(Err(text)) => text,
            Err(e) => crate::errors::log_text(&e),
        };
        self.counters.handler_errors.inc();
        report_text(lua, text);
        None
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
                self.deliver(lua, &batch[at], crate::api::wall_ms);
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
                        self.deliver(lua, message, crate::api::wall_ms);
                    }
                }
            }
            at += len;
        }
        batch.clear();
        self.retire_finished(lua);
    }

    /// Sets the callbacks of the jobs that ended apart from the handlers in use (see
    /// [`Handlers::retire`]), and off the fast path. A job's end is taken from the mailbox
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
        written: crate::fastpath::Written,
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
            self.deliver(lua, &message, crate::api::wall_ms);
        }
    }

    /// Sends the results of the handler of mailbox message `msg` to its sender, stage `to` at
    /// `address` (for the fast path; errors are reported).
    pub fn auto_reply(&self, lua: &Lua, msg: &str, address: &str, to: &str, results: MultiValue) {
        let key = [to, reply_id(msg)].join(":");
        if let Err(e) = self.reply(lua, address, key, results.iter()) {
            report_error(lua, &e);
        }
    }

    /// The id of a mailbox message at this stage; `None` when it is not for this stage.
    fn message_id<'m>(&self, message: &'m Message) -> Option<&'m str> {
        match &self.origin.id {
            Some(id) => message.id_for(id),
            None => Some(message.key.as_str()),
        }
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
            LocalSender::AutoReply => Some(Sender {
                address: self.origin.address.clone(),
                stage: None,
            }),
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
        key: String,
        values: impl IntoIterator<Item = &'a LuaValue>,
    ) -> mlua::Result<()> {
        let message = Message {
            key,
            values: convert::to_args(lua, values)?,
            sender: Some(Sender {
                address: self.origin.address.clone(),
                stage: None,
            }),
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

    /// Runs the due timers and the idle function: while the idle function is not due every due
    /// timer runs; when it is due, at most one timer runs before it.
    pub fn run_due(&self, lua: &Lua) {
        self.retire_finished(lua);
        let now = self.now();
        let idle_due = self.idle_due.get().is_some_and(|d| d <= now);
        loop {
            // Only what was due when this round began: timers that keep rescheduling
            // themselves sooner than they run must not starve the mailbox.
            let Some((id, task)) = self.timers.borrow_mut().take_due(now) else {
                break;
            };
            let delay = self.run_task(lua, &task);
            self.timers.borrow_mut().finish(self.now(), id, task, delay);
            if idle_due {
                break;
            }
        }
        if idle_due {
            self.run_idle(lua);
        }
        loop {
            let due = self
                .expiring
                .borrow()
                .front()
                .is_some_and(|(at, _)| *at <= now);
            if !due {
                break;
            }
            let gone = self.expiring.borrow_mut().pop_front();
            if let Some((_, name)) = gone {
                if let Err(e) = self.unregister(&name) {
                    report_error(lua, &e);
                }
            }
        }
    }

    fn run_task(&self, lua: &Lua, task: &crate::timers::Task) -> Option<i64> {
        self.counters.timer_runs.inc();
        let call = || -> mlua::Result<(mlua::Function, MultiValue)> {
            Ok((
                task.shipped.fresh(lua)?,
                convert::from_args(lua, &task.args, &self.env)?,
            ))
        };
        let (f, args) = match call() {
            Ok(c) => c,
            Err(e) => {
                report_error(lua, &e);
                return None;
            }
        };
        let results = self.invoke(lua, &f, args, None)?;
        reschedule_delay(results.front(), "addtask callback")
    }

    fn run_idle(&self, lua: &Lua) {
        let started = self.now();
        self.idle_due.set(None);
        let f = {
            let handlers = self.handlers.borrow();
            match handlers.get("").map(|h| h.shipped.fresh(lua)) {
                Some(Ok(f)) => f,
                Some(Err(e)) => return report_error(lua, &e),
                None => return,
            }
        };
        let results = self.invoke(lua, &f, MultiValue::new(), None);
        match results.and_then(|r| reschedule_delay(r.front(), "idle function")) {
            Some(ms) => self.idle_due.set(Some(started + ms as u64)),
            None => {
                if self.handlers.borrow().contains("") && self.idle_due.get().is_none() {
                    tracing::info!(target: "lua", "stage '{}': the idle function returned no positive number and stops", self.origin.id.as_deref().unwrap_or(""));
                    if let Err(e) = self.unregister("") {
                        report_error(lua, &e);
                    }
                }
            }
        }
    }

    /// The next monotonic time something is due (timer or idle function).
    pub fn next_due(&self) -> Option<u64> {
        let timer = self.timers.borrow_mut().next_due();
        let expiry = self.expiring.borrow().front().map(|(at, _)| *at);
        [timer, self.idle_due.get(), expiry]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Whether a handler of this name can be plain: not the idle function, no `=` in it.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('=')
}

/// The registration arguments of a handler as fresh Lua values.
fn registration_args(lua: &Lua, handler: &Handler, env: &mlua::Table) -> mlua::Result<MultiValue> {
    handler
        .args
        .iter()
        .map(|v| convert::from_value(lua, v, env))
        .collect()
}

/// `n > 0` reschedules after `n` ms; anything else stops (decisions 6); a non-number warns.
pub fn reschedule_delay(result: Option<&LuaValue>, what: &str) -> Option<i64> {
    match result {
        Some(LuaValue::Integer(n)) if *n > 0 => Some(*n),
        Some(LuaValue::Number(n)) if *n >= 1.0 => Some(*n as i64),
        None | Some(LuaValue::Nil | LuaValue::Integer(_) | LuaValue::Number(_)) => None,
        Some(other) => {
            tracing::warn!(target: "lua", "{what} returned a {} instead of a number of ms: it stops", other.type_name());
            None
        }
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

/// Passes an error caught by the runtime to `_TRACEBACK` (which logs it at WARN by default).
pub fn report_error(lua: &Lua, error: &mlua::Error) {
    report_text(lua, crate::errors::log_text(error));
}

/// Passes an error text to `_TRACEBACK`, or logs it when that fails.
pub fn report_text(lua: &Lua, text: String) {
    let handler: Option<mlua::Function> = lua.globals().raw_get("_TRACEBACK").ok();
    // A script replaces `_TRACEBACK` by assigning it, which lands in the base globals.
    let handled = handler.is_some_and(|h| h.call::<()>(text.as_str()).is_ok());
    if !handled {
        tracing::warn!(target: "lua", "{text}");
    }
}
