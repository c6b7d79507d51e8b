//! The stage thread (`runtime.md` §6): one OS thread and one Lua state per Lua stage. It boots
//! the main script, then runs due timers and the idle function, and handles messages — its own
//! first-come local queue and its mailbox — strictly one invocation at a time.

use crate::api;
use crate::budget::{self, Budget, Watching};
use crate::command::StageCommand;
use crate::handlers::Shipped;
use crate::messaging::fast::{FastPath, MAIL_BATCH};
use crate::origin::Origin;
use crate::process::ProcessContext;
use crate::scripts::{split_name, Stamp};
use crate::stage::{report_error, Stage};
use crate::state;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use mlua::{Lua, Value as LuaValue};
use stage_core::mailbox::{Inbound, MailboxThread};
use stage_core::{Message, ReplyAddress};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest stretch of messages handled before due timers get their turn.
const BATCH: Duration = Duration::from_millis(100);
/// How many messages to itself a stage handles between two looks at the clock.
const LOCAL_SLICE: usize = 256;
/// How often a main script that failed to load is looked at again.
const BOOT_RETRY: Duration = Duration::from_secs(1);

/// What starts one Lua stage.
#[derive(Clone, Debug)]
pub struct StageSpec {
    /// The stage id (`None` for a module spec without `+id`).
    pub id: Option<String>,
    /// The main script name (`FILE[+FIELD]`), if any.
    pub main_script: Option<String>,
}

/// A stage whose mailbox is registered but whose thread has not started: registering every
/// stage of the node before any starts means no message sent at boot finds its target missing.
pub struct PreparedStage {
    spec: StageSpec,
    process: Arc<ProcessContext>,
    origin: Origin,
    tag: u64,
    rx: Receiver<Inbound<StageCommand>>,
}

/// A running stage thread.
pub type StageHandle = MailboxThread;

/// Registers the mailbox of `spec` in `process`; `tag` is unique among the node's stages.
pub fn prepare(spec: StageSpec, process: Arc<ProcessContext>, tag: u64) -> PreparedStage {
    let name = spec.id.clone().unwrap_or_default();
    let (mailbox, rx) = stage_core::mailbox::channel(&name, process.limits.mailbox_capacity());
    let address = ReplyAddress::local(process.number, tag);
    process
        .node
        .router
        .register(spec.id.as_deref(), address.clone(), mailbox.clone());
    let origin = Origin {
        id: spec.id.as_deref().map(Arc::from),
        address,
        mailbox,
    };
    PreparedStage {
        spec,
        process,
        origin,
        tag,
        rx,
    }
}

impl PreparedStage {
    /// Starts the stage thread: preload, main script, then its loop.
    pub fn start(self) -> std::io::Result<StageHandle> {
        let name = format!("stage {}", self.spec.id.as_deref().unwrap_or(""));
        let mailbox = self.origin.mailbox.clone();
        MailboxThread::spawn(name, mailbox, move |stop| {
            let (process, address) = (self.process.clone(), self.origin.address.clone());
            run(self, stop);
            process.node.router.unregister(&address);
        })
    }
}

/// Registers and starts one stage.
pub fn spawn(
    spec: StageSpec,
    process: Arc<ProcessContext>,
    tag: u64,
) -> std::io::Result<StageHandle> {
    prepare(spec, process, tag).start()
}

fn run(prepared: PreparedStage, stop: &AtomicBool) {
    let PreparedStage {
        spec,
        process,
        origin,
        tag,
        rx,
    } = prepared;
    let id = spec.id.as_deref().unwrap_or("");
    let setup = || -> mlua::Result<(Lua, Rc<Stage>, Watching)> {
        let (lua, sandbox) = state::new_state(&process)?;
        let stage = Rc::new(Stage::new(
            origin,
            process.clone(),
            sandbox.env.clone(),
            tag,
        ));
        lua.set_app_data(stage.clone());
        let fast = FastPath::install(&lua, &stage)?;
        if stage.fast.set(fast).is_err() {
            return Err(mlua::Error::runtime("the fast path was installed twice"));
        }
        let limits = &process.limits;
        let budget = Budget {
            time: Duration::from_millis(limits.stage_budget_ms),
            what: "#limits.stage_budget_ms",
            memory_bytes: limits.lua_memory_bytes(),
        };
        let watching = budget::enforce(&lua, &budget, &stage.progress)?;
        Ok((lua, stage, watching))
    };
    // The state is watched until `_watching` drops, before `lua`.
    let (lua, stage, _watching) = match setup() {
        Ok(s) => s,
        Err(e) => return tracing::error!("stage '{id}': cannot create its Lua state: {e}"),
    };
    {
        let _running = stage.progress.begin(&lua);
        state::preload(&lua, &process);
    }
    let mut boot = Boot::new(spec.main_script);
    boot.attempt(&lua, &stage);
    let mut last_retry = Instant::now();
    let mut mail = Vec::with_capacity(MAIL_BATCH);
    while !stop.load(Ordering::Relaxed) {
        stage.run_due(&lua);
        let batch_end = Instant::now() + BATCH;
        let local_left = drain_local(&lua, &stage, batch_end);
        let mut handled = 0u32;
        while let Ok(inbound) = rx.try_recv() {
            handled += 1;
            take(&lua, &stage, inbound, &mut mail);
            if mail.len() == MAIL_BATCH {
                stage.deliver_mail(&lua, &mut mail);
            }
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if handled.is_multiple_of(MAIL_BATCH as u32)
                && (Instant::now() >= batch_end
                    || stage.next_due().is_some_and(|d| d <= stage.now()))
            {
                break;
            }
        }
        if !mail.is_empty() {
            stage.deliver_mail(&lua, &mut mail);
        }
        if local_left > 0 || handled > 0 {
            continue;
        }
        if boot.pending() && last_retry.elapsed() >= BOOT_RETRY {
            last_retry = Instant::now();
            boot.retry_if_changed(&lua, &stage);
        }
        let mut wait = match stage.next_due() {
            Some(due) => Duration::from_millis(due.saturating_sub(stage.now())),
            None => Duration::from_secs(3600),
        };
        if boot.pending() {
            wait = wait.min(BOOT_RETRY);
        }
        if wait.is_zero() {
            continue;
        }
        match rx.recv_timeout(wait) {
            Ok(inbound) => {
                take(&lua, &stage, inbound, &mut mail);
                if !mail.is_empty() {
                    stage.deliver_mail(&lua, &mut mail);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
}

/// Adds a message from the mailbox to the batch `mail`, or takes a command (see
/// [`Stage::take_command`]).
fn take(lua: &Lua, stage: &Stage, inbound: Inbound<StageCommand>, mail: &mut Vec<Message>) {
    match inbound {
        Inbound::Message(m) => mail.push(m),
        Inbound::Command(command) => stage.take_command(lua, command, mail),
        Inbound::Wake => {}
    }
}

/// Handles the messages the stage sent itself until none are left, the batch time is up, or a
/// timer is due; returns how many are left.
fn drain_local(lua: &Lua, stage: &Stage, batch_end: Instant) -> usize {
    let Some(fast) = stage.fast.get() else {
        return 0;
    };
    loop {
        let running = stage.progress.begin(lua);
        let drained = fast.drain(LOCAL_SLICE);
        drop(running);
        let drained = match drained {
            Ok(d) => d,
            Err(e) => {
                report_error(lua, &e);
                return 0;
            }
        };
        stage.counters.messages_in.inc_by(drained.handled);
        stage.count(&drained.counts);
        if drained.left == 0
            || Instant::now() >= batch_end
            || stage.next_due().is_some_and(|d| d <= stage.now())
        {
            return drained.left;
        }
    }
}

/// The main script's boot (`runtime.md` §7.1), retried when its files change after a failure
/// to find or compile it (decision Q13).
struct Boot {
    name: Option<String>,
    /// Set while the script could not be loaded: the candidate files as they were then.
    failed: Option<Vec<(PathBuf, Stamp)>>,
}

impl Boot {
    fn new(name: Option<String>) -> Boot {
        Boot { name, failed: None }
    }

    fn pending(&self) -> bool {
        self.failed.is_some()
    }

    fn retry_if_changed(&mut self, lua: &Lua, stage: &Stage) {
        let Some(name) = &self.name else { return };
        let (file, _) = split_name(name);
        let now = stage
            .process
            .scripts
            .fingerprint(&file, &stage.process.search_path());
        if self.failed.as_ref() != Some(&now) {
            self.attempt(lua, stage);
        }
    }

    fn attempt(&mut self, lua: &Lua, stage: &Stage) {
        let Some(name) = self.name.clone() else {
            return;
        };
        let (file, field) = split_name(&name);
        // Taken before loading: a fix written while this attempt fails still counts as a change.
        let before = stage
            .process
            .scripts
            .fingerprint(&file, &stage.process.search_path());
        let setup = || -> mlua::Result<()> {
            let arg = lua.create_sequence_from(stage.process.args.iter().map(String::as_str))?;
            lua.globals().raw_set("arg", arg)
        };
        if let Err(e) = setup() {
            return report_error(lua, &e);
        }
        let _running = stage.progress.begin(lua);
        let Some((_, result)) = api::stage::run_script(lua, &stage.process, &stage.env, &file)
        else {
            tracing::warn!(
                target: "lua",
                "stage '{}': main script '{name}' ({file}) is not found or does not compile; the stage idles and retries when the file changes",
                stage.origin.id.as_deref().unwrap_or("")
            );
            self.failed = Some(before);
            return;
        };
        self.failed = None;
        let value = match result.and_then(|v| api::stage::select_field(lua, v, field)) {
            Ok(v) => v,
            Err(e) => return report_error(lua, &e),
        };
        if let Err(e) = register_returned(lua, stage, value) {
            report_error(lua, &e);
        }
    }
}

/// A main script's value: a table registers its functions as handlers, a function becomes the
/// idle function.
fn register_returned(lua: &Lua, stage: &Stage, value: LuaValue) -> mlua::Result<()> {
    match value {
        LuaValue::Table(t) => {
            for pair in t.pairs::<LuaValue, LuaValue>() {
                let (k, v) = pair?;
                if let LuaValue::Function(f) = v {
                    let name = k.to_string()?;
                    stage.register(name, Shipped::ship(lua, &f, &stage.env)?, None)?;
                }
            }
        }
        LuaValue::Function(f) => {
            stage.register(String::new(), Shipped::ship(lua, &f, &stage.env)?, None)?
        }
        _ => {}
    }
    Ok(())
}
