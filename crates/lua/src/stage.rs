//! [`Stage`]: one Lua stage on its stage thread — its handlers, timers, idle function and queue
//! of messages to itself, and how each of them is invoked (`runtime.md` §6–7, `messaging.md` §3).
//!
//! Every invocation (main script, handler, timer, idle call) runs protected: an error is passed
//! to `_TRACEBACK` (which logs it) and the stage goes on. `_WAITFOR` is set for handlers only and
//! restored afterwards, so nested synchronous calls do not clobber it.

use crate::budget::Progress;
use crate::command::{StageCommand, THREAD_CALLBACK_LINGER_MS};
use crate::convert;
use crate::handlers::{Handler, Handlers, Shipped};
use crate::messaging::fast::{FastPath, WaitFor};
use crate::origin::Origin;
use crate::process::ProcessContext;
use crate::timers::Timers;
use mlua::{Lua, MultiValue, Value as LuaValue};
use prometheus_client::metrics::counter::Counter;
use stage_core::{Message, Sender, Value};
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
    pub(crate) expiring: RefCell<VecDeque<(u64, String)>>,
    /// How many of the last entries of `expiring` are callbacks of jobs that ended since the
    /// last batch was handled: set apart after it (see [`Stage::retire_finished`]).
    pub(crate) finished: Cell<usize>,
    /// The mailbox batch being handled, and where the run the fast path handles starts: a
    /// message whose handler an earlier one changed is taken from here (see
    /// [`Stage::deliver_from_batch`]).
    pub(crate) mail: RefCell<Vec<Message>>,
    pub(crate) mail_at: Cell<usize>,
    /// The next `thread.new` callback id, in sequence (see [`Stage::fresh_callback_id`]).
    next_callback: Cell<u64>,
    started: Instant,
}

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
    /// handled (they keep their order); a job's end ([`StageCommand::ThreadDone`]) adds its last message to
    /// `mail` and only schedules its callback's removal a second later, so a stream of
    /// `thread.new` results is still handled in batches.
    pub fn take_command(&self, lua: &Lua, command: StageCommand, mail: &mut Vec<Message>) {
        if let StageCommand::ThreadDone { callback, last } = command {
            mail.extend(last);
            let at = self.now() + THREAD_CALLBACK_LINGER_MS;
            self.expiring.borrow_mut().push_back((at, callback));
            self.finished.set(self.finished.get() + 1);
            return;
        }
        if !mail.is_empty() {
            self.deliver_mail(lua, mail);
        }
        let done = match command {
            StageCommand::Register { name, code, args } => {
                Shipped::load(lua, code, &self.env).and_then(|f| self.register(name, f, args))
            }
            StageCommand::Unregister(name) => self.unregister(&name).map(|_| ()),
            StageCommand::SetArgs { name, args } => self.set_args(&name, args).map(|_| ()),
            StageCommand::ThreadDone { .. } => Ok(()),
        };
        if let Err(e) = done {
            report_error(lua, &e);
        }
    }

    /// The fast path, once installed.
    pub(crate) fn fast(&self) -> mlua::Result<&FastPath> {
        self.fast
            .get()
            .ok_or_else(|| mlua::Error::runtime("the stage is not started yet"))
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
    /// `thread.new` callback, see `api/thread_jobs.rs`); false when `name` cannot be plain.
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
        loop {
            let n = self.next_callback.get();
            self.next_callback.set(n.wrapping_add(1));
            let id = crate::ids::of_sequence(n);
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
pub(crate) fn registration_args(
    lua: &Lua,
    handler: &Handler,
    env: &mlua::Table,
) -> mlua::Result<MultiValue> {
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
