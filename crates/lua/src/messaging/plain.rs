//! The stage thread's two hottest sends as C functions that the fast path (`fast.lua`)
//! calls before the ordinary ones: a message to another stage (`stage.signal("svc:msg", ...)`)
//! and a reply (`stage.signal(nil, ...)`), when every value is plain data. They skip `mlua`'s
//! callback machinery and the round trip of the values through `mlua` values: the values are
//! copied straight from the Lua stack.
//!
//! Each returns `true` when it sent (or had nothing to send); `false` when the send failed,
//! the error waiting in [`PlainSenders::failure`] for the fast path to raise at the caller's line; and
//! nothing when the ordinary path is to do the work: a value that is not plain data, a target
//! of another form or a broadcast, a reply to this very instance.

use super::reply::reply_elsewhere;
use super::send::signal_other_stage;
use crate::api::Actor;
use crate::convert::{read_plain_args, read_string};
use crate::stage::Stage;
use mlua::ffi::{self, lua_State};
use mlua::Lua;
use std::cell::RefCell;
use std::ffi::c_int;
use std::rc::{Rc, Weak};

thread_local! {
    /// The stage of this stage thread.
    static STAGE: RefCell<Weak<Stage>> = const { RefCell::new(Weak::new()) };
    /// The error of the last send that failed, until [`PlainSenders::failure`] takes it.
    static FAILED: RefCell<Option<mlua::Error>> = const { RefCell::new(None) };
}

/// The fast path's functions for `stage`, on its own thread.
pub struct PlainSenders {
    /// `send(target, ...)`.
    pub send: mlua::Function,
    /// `reply(id, address, stage, ...)`.
    pub reply: mlua::Function,
    /// `failure()`: `false`, the message of the last failed send and whether it is to be
    /// located at the calling line (as [`crate::errors::outcome`]).
    pub failure: mlua::Function,
}

impl PlainSenders {
    /// Makes the functions for `stage`, whose thread this is.
    pub fn new(lua: &Lua, stage: &Rc<Stage>) -> mlua::Result<PlainSenders> {
        STAGE.with(|s| *s.borrow_mut() = Rc::downgrade(stage));
        let failure = lua.create_function(|lua, ()| {
            let error = FAILED.with(|f| f.borrow_mut().take());
            let error = error.unwrap_or_else(|| mlua::Error::runtime("no send failed"));
            crate::errors::outcome(lua, Err(error))
        })?;
        // SAFETY: both functions only read their arguments and push one boolean (see below).
        unsafe {
            Ok(PlainSenders {
                send: lua.create_c_function(send)?,
                reply: lua.create_c_function(reply)?,
                failure,
            })
        }
    }
}

/// The stage of this stage thread, while it lives.
pub(crate) fn current() -> Option<Rc<Stage>> {
    STAGE.with(|s| s.borrow().upgrade())
}

/// Keeps `error` for `failure()` and pushes `false`; returns how many results were pushed.
///
/// # Safety
/// `state` must be a valid Lua state with room for one more value.
pub(crate) unsafe fn failed(state: *mut lua_State, error: mlua::Error) -> c_int {
    FAILED.with(|f| *f.borrow_mut() = Some(error));
    ffi::lua_pushboolean(state, 0);
    1
}

/// Pushes the outcome of a send (see the module doc); returns how many results were pushed.
/// `None`: the send was not for this path.
unsafe fn outcome(state: *mut lua_State, sent: Option<mlua::Result<bool>>) -> c_int {
    match sent {
        Some(Ok(true)) => {
            ffi::lua_pushboolean(state, 1);
            1
        }
        Some(Ok(false)) | None => 0,
        Some(Err(e)) => failed(state, e),
    }
}

/// `send(target, ...)`: `stage.signal(target, ...)` for a target naming another stage.
///
/// Everything it calls on the state only reads values and raises no Lua error, and every
/// Rust value it makes is dropped or stored before the result is pushed (which raises none
/// either).
unsafe extern "C-unwind" fn send(state: *mut lua_State) -> c_int {
    let sent = || -> Option<mlua::Result<bool>> {
        let target = std::str::from_utf8(read_string(state, 1)?).ok()?;
        let values = read_plain_args(state, 2)?;
        let stage = Actor::Stage(current()?);
        Some(signal_other_stage(&stage, target, values))
    };
    let sent = sent();
    outcome(state, sent)
}

/// `reply(id, address, stage, ...)`: `stage.signal(nil, ...)` with the running handler's
/// `_WAITFOR` fields, for a sender at another address (as [`send`]).
unsafe extern "C-unwind" fn reply(state: *mut lua_State) -> c_int {
    let replied = || -> Option<mlua::Result<bool>> {
        let id = std::str::from_utf8(read_string(state, 1)?).ok()?;
        let address = std::str::from_utf8(read_string(state, 2)?).ok()?;
        let to_stage = match ffi::lua_type(state, 3) {
            ffi::LUA_TNIL => None,
            _ => Some(std::str::from_utf8(read_string(state, 3)?).ok()?),
        };
        let values = read_plain_args(state, 4)?;
        Some(reply_elsewhere(&*current()?, id, address, to_stage, values))
    };
    let replied = replied();
    outcome(state, replied)
}
