//! The script API tables: `stage`, `process`, `thread`, `logger`.

pub mod logger;
pub mod process;
pub mod stage;
pub mod thread;
pub(crate) mod thread_jobs;

use crate::command::StageCommand;
use crate::handlers::{shipped_code, Shipped};
use crate::origin::Origin;
use crate::process::ProcessContext;
use crate::sandbox::Sandbox;
use crate::stage::Stage;
use crate::worker::JobScope;
use mlua::{Function, Lua, MultiValue};
use stage_core::mailbox::Mailbox;
use stage_core::Message;
use stage_core::Value;
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

    /// The stage acted for.
    pub fn origin(&self) -> &Origin {
        match self {
            Actor::Stage(s) => &s.origin,
            Actor::Job(j) => &j.origin,
        }
    }

    /// The stage id acted for.
    pub fn id(&self) -> Option<&str> {
        self.origin().id.as_deref()
    }

    /// The stage itself, for what only its own thread can do (`what` names it in the error).
    pub fn stage_thread(&self, what: &str) -> mlua::Result<&Rc<Stage>> {
        match self {
            Actor::Stage(s) => Ok(s),
            Actor::Job(_) => Err(mlua::Error::runtime(format!(
                "{what} reads the stage's handlers: call it on its stage thread, not in a worker job"
            ))),
        }
    }

    /// Whether the stage has a handler `name` (a job cannot tell: false).
    pub fn has_handler(&self, name: &str) -> bool {
        match self {
            Actor::Stage(s) => s.handlers.borrow().contains(name),
            Actor::Job(_) => false,
        }
    }

    /// Registers `f` as handler `name` of the stage; `args` `None` keeps earlier registration
    /// arguments. From a job the registration travels to the stage thread, in order with the
    /// job's messages (`sandbox.md` §8.4).
    pub fn register(
        &self,
        lua: &Lua,
        name: String,
        f: &Function,
        args: Option<Vec<Value>>,
    ) -> mlua::Result<()> {
        match self {
            Actor::Stage(s) => s.register(name, Shipped::ship(lua, f, &s.env)?, args),
            Actor::Job(j) => j.origin.command(StageCommand::Register {
                name,
                code: shipped_code(lua, f)?,
                args,
            }),
        }
    }

    /// Removes handler `name` of the stage.
    pub fn unregister(&self, name: &str) -> mlua::Result<()> {
        match self {
            Actor::Stage(s) => s.unregister(name).map(|_| ()),
            Actor::Job(j) => j.origin.command(StageCommand::Unregister(name.to_string())),
        }
    }

    /// Replaces the registration arguments of handler `name`; false when the stage has no
    /// such handler (a job cannot tell: true).
    pub fn set_args(&self, name: &str, args: Vec<Value>) -> mlua::Result<bool> {
        match self {
            Actor::Stage(s) => s.set_args(name, args),
            Actor::Job(j) => j
                .origin
                .command(StageCommand::SetArgs {
                    name: name.to_string(),
                    args,
                })
                .map(|_| true),
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
