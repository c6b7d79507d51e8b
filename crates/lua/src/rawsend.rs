//! The stage thread's two hottest sends as C functions that the fast path (`fastpath.lua`)
//! calls before the ordinary ones: a message to another stage (`stage.signal("svc:msg", ...)`)
//! and a reply (`stage.signal(nil, ...)`), when every value is plain data. They skip `mlua`'s
//! callback machinery and the round trip of the values through `mlua` values: the values are
//! copied straight from the Lua stack.
//!
//! Each returns `true` when it sent (or had nothing to send), and nothing when the ordinary
//! path is to do the work: a value that is not plain data, a target of another form, a reply
//! to this very instance, or any error — the ordinary path then fails the same way and raises
//! the error at the caller. Nothing is sent before an error can happen, so nothing is sent
//! twice.

use crate::api::stage::{reply_elsewhere, signal_other_stage};
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
}

/// The functions for the fast path of `stage`, on its own thread: `(send, reply)`.
pub fn functions(lua: &Lua, stage: &Rc<Stage>) -> mlua::Result<(mlua::Function, mlua::Function)> {
    STAGE.with(|s| *s.borrow_mut() = Rc::downgrade(stage));
    // SAFETY: both functions only read their arguments and push one boolean (see below).
    unsafe { Ok((lua.create_c_function(send)?, lua.create_c_function(reply)?)) }
}

fn current() -> Option<Rc<Stage>> {
    STAGE.with(|s| s.borrow().upgrade())
}

/// Pushes `true` when `done`; returns how many results were pushed.
unsafe fn done(state: *mut lua_State, done: bool) -> c_int {
    if done {
        ffi::lua_pushboolean(state, 1);
    }
    c_int::from(done)
}

/// `send(target, ...)`: `stage.signal(target, ...)` for a target naming another stage.
///
/// Everything it calls on the state only reads values and raises no Lua error, and every
/// Rust value it makes is dropped before the result is pushed (which raises none either).
unsafe extern "C-unwind" fn send(state: *mut lua_State) -> c_int {
    let sent = || -> Option<bool> {
        let target = std::str::from_utf8(read_string(state, 1)?).ok()?;
        let values = read_plain_args(state, 2)?;
        let stage = Actor::Stage(current()?);
        signal_other_stage(&stage, target, values).ok()
    };
    let sent = sent() == Some(true);
    done(state, sent)
}

/// `reply(id, address, stage, ...)`: `stage.signal(nil, ...)` with the running handler's
/// `_WAITFOR` fields, for a sender at another address (as [`send`]).
unsafe extern "C-unwind" fn reply(state: *mut lua_State) -> c_int {
    let replied = || -> Option<bool> {
        let id = std::str::from_utf8(read_string(state, 1)?).ok()?;
        let address = std::str::from_utf8(read_string(state, 2)?).ok()?;
        let to_stage = match ffi::lua_type(state, 3) {
            ffi::LUA_TNIL => None,
            _ => Some(std::str::from_utf8(read_string(state, 3)?).ok()?),
        };
        let values = read_plain_args(state, 4)?;
        reply_elsewhere(&*current()?, id, address, to_stage, values).ok()
    };
    let replied = replied() == Some(true);
    done(state, replied)
}
