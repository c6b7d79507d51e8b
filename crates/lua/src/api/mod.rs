//! The script API tables: `stage`, `process`, `thread`, `logger`.

pub mod logger;
pub mod process;
pub mod stage;
pub mod thread;

use crate::process::ProcessContext;
use crate::sandbox::Sandbox;
use crate::stage::Stage;
use crate::worker::{JobScope, Origin};
use mlua::{Lua, MultiValue};
use stage_core::router::Mailbox;
use stage_core::{Message, Sender};
use std::rc::Rc;
use std::sync::Arc;

/// The stage whose thread runs this Lua state.
pub fn current_stage(lua: &Lua) -> mlua::Result<Rc<Stage>> {
    lua.app_data_ref::<Rc<Stage>>()
        .map(|s| s.clone())
        .ok_or_else(|| {
            mlua::Error::runtime(
                "this function is only available on a stage thread, not in a worker job",
            )
        })
}

/// The process this Lua state belongs to.
pub fn current_process(lua: &Lua) -> mlua::Result<Arc<ProcessContext>> {
    lua.app_data_ref::<Arc<ProcessContext>>()
        .map(|p| p.clone())
        .ok_or_else(|| mlua::Error::runtime("this Lua state belongs to no process"))
}

/// The sandbox of this Lua state.
pub fn current_sandbox(lua: &Lua) -> mlua::Result<Rc<Sandbox>> {
    lua.app_data_ref::<Rc<Sandbox>>()
        .map(|s| s.clone())
        .ok_or_else(|| mlua::Error::runtime("this Lua state has no sandbox"))
}

/// Whom the running code acts for: the stage on its own thread, or a worker job acting for the
/// stage that submitted it (`runtime.md` §9.5).
pub enum Actor {
    Stage(Rc<Stage>),
    Job(Rc<JobScope>),
}

/// Why a job cannot make a synchronous call.
const NO_SYNC_IN_JOBS: &str = "a worker job cannot call its stage's handlers synchronously (':msg' or a reply to its own stage): send an asynchronous message instead";

impl Actor {
    /// The running code's actor; an error outside a stage thread or a job.
    pub fn current(lua: &Lua) -> mlua::Result<Actor> {
        if let Some(stage) = lua.app_data_ref::<Rc<Stage>>() {
            return Ok(Actor::Stage(stage.clone()));
        }
        match lua.app_data_ref::<Rc<JobScope>>() {
            Some(job) => Ok(Actor::Job(job.clone())),
            None => Err(mlua::Error::runtime(
                "this function is only available in a stage or a job it started",
            )),
        }
    }

    /// The stage id acted for.
    pub fn id(&self) -> Option<&str> {
        match self {
            Actor::Stage(s) => s.id.as_deref(),
            Actor::Job(j) => j.origin.id.as_deref(),
        }
    }

    /// Where jobs started now act for.
    pub fn origin(&self) -> Origin {
        match self {
            Actor::Stage(s) => s.origin(),
            Actor::Job(j) => j.origin.clone(),
        }
    }

    /// The payload key of message `msg` addressed to the stage acted for.
    pub fn own_key(&self, msg: &str) -> String {
        match self {
            Actor::Stage(s) => s.own_key(msg),
            Actor::Job(j) => j.origin.own_key(msg),
        }
    }

    /// The return address messages carry.
    pub fn sender(&self) -> Sender {
        match self {
            Actor::Stage(s) => s.sender(),
            Actor::Job(j) => Sender {
                address: j.origin.address.clone(),
                stage: j.origin.id.clone(),
            },
        }
    }

    /// True while a synchronous `:msg` handler runs (its replies go nowhere).
    pub fn in_sync_call(&self) -> bool {
        match self {
            Actor::Stage(s) => s.in_sync_call.get(),
            Actor::Job(_) => false,
        }
    }

    /// Sends a message to the very stage instance acted for.
    pub fn post_self(&self, lua: &Lua, message: Message) -> mlua::Result<()> {
        match self {
            Actor::Stage(s) => s.post_local(lua, message),
            Actor::Job(j) => j
                .origin
                .mailbox
                .post(message)
                .map_err(mlua::Error::external),
        }
    }

    /// Runs the own handler for `msg` now and returns its results (stage threads only).
    pub fn call_sync(&self, lua: &Lua, msg: &str, values: MultiValue) -> mlua::Result<MultiValue> {
        match self {
            Actor::Stage(s) => s.call_sync(lua, msg, values),
            Actor::Job(_) => Err(mlua::Error::runtime(NO_SYNC_IN_JOBS)),
        }
    }

    /// Sends a message to a reply address.
    pub fn send_to(&self, lua: &Lua, address: &str, message: Message) -> mlua::Result<()> {
        match self {
            Actor::Stage(s) => s.send_to(lua, address, message),
            Actor::Job(j) if address == &*j.origin.address => self.post_self(lua, message),
            Actor::Job(_) => self
                .process()
                .node
                .router
                .send_to(address, message)
                .map(|_| ())
                .map_err(mlua::Error::external),
        }
    }

    /// The process acted in.
    pub fn process(&self) -> &Arc<ProcessContext> {
        match self {
            Actor::Stage(s) => &s.process,
            Actor::Job(j) => &j.process,
        }
    }

    /// Counts a message sent (stage threads keep the count).
    pub fn count_out(&self) {
        if let Actor::Stage(s) = self {
            s.counters.messages_out.inc();
        }
    }
}

/// Wall-clock time in milliseconds since the epoch.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
