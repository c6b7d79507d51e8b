//! `thread.new(f, ...)` and `h.waitfor(cb)` on the stage thread as C functions, which the
//! handles' Lua side (`api/thread.rs`) calls before the ordinary ones. A round trip through a
//! worker makes one job and one callback registration: these skip `mlua`'s callback machinery,
//! the protected calls `mlua` makes for every value it creates under the memory cap, and the
//! round trip of the values through `mlua` values.
//!
//! `new_job` takes a function this state shipped before (its bytecode is cached) with plain
//! arguments; `watch` takes a callback whose plain copy was registered before (the Lua side
//! keeps the copy and puts it in the fast path's table). Anything else — a first use, other
//! values, registration arguments — is left to the ordinary path, with identical results.

use crate::api::thread::{submit, CallbackId};
use crate::convert::{read_plain_args, read_string};
use crate::handlers::{ShipCache, Shipped};
use crate::messaging::plain::{current, failed};
use crate::worker::JobFn;
use mlua::ffi::{self, lua_State};
use mlua::{Lua, WeakLua};
use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::sync::Arc;

thread_local! {
    /// The Lua state of this stage thread.
    static STATE: RefCell<Option<WeakLua>> = const { RefCell::new(None) };
    /// The job function started last and its bytecode, and the callback registered last and
    /// its copy: a stream of jobs uses the same ones, found here without the ship cache.
    /// Each holds its function, so that the function's address stands for no other.
    static LAST_JOB: RefCell<Option<Recent<Arc<[u8]>>>> = const { RefCell::new(None) };
    static LAST_CALLBACK: RefCell<Option<Recent<Shipped>>> = const { RefCell::new(None) };
}

/// The C functions for `thread.new` handles, on this stage thread.
pub struct JobStarters {
    /// `new_job(f, ...)`: the callback id of the job started, `false` when starting it failed
    /// (`failure()` tells why), nothing when the ordinary path is to start it.
    pub new_job: mlua::Function,
    /// `watch(id, cb, copy, ...)`: `true` when `copy`, the plain copy `cb` was registered as
    /// before, is now the callback of handle `id`; nothing when the ordinary path is to
    /// register it (also when registration arguments follow).
    pub watch: mlua::Function,
}

impl JobStarters {
    /// Makes the functions for the stage of this thread, whose state `lua` is.
    pub fn new(lua: &Lua) -> mlua::Result<JobStarters> {
        STATE.with(|s| *s.borrow_mut() = Some(lua.weak()));
        LAST_JOB.with(|j| j.borrow_mut().take());
        LAST_CALLBACK.with(|c| c.borrow_mut().take());
        // SAFETY: both functions only read their arguments and push one result (see below).
        unsafe {
            Ok(JobStarters {
                new_job: lua.create_c_function(new_job)?,
                watch: lua.create_c_function(watch)?,
            })
        }
    }
}

fn state() -> Option<Lua> {
    STATE.with(|s| s.borrow().as_ref().and_then(WeakLua::try_upgrade))
}

/// A function's address, the function (held, so that the address stands for no other) and
/// what was found for it.
struct Recent<T> {
    address: *const c_void,
    _function: mlua::Function,
    value: T,
}

/// What `cache` holds for the function at `address`, or what `find` finds (then kept).
fn recent<T: Clone>(
    cache: &'static std::thread::LocalKey<RefCell<Option<Recent<T>>>>,
    address: *const c_void,
    find: impl FnOnce() -> Option<(mlua::Function, T)>,
) -> Option<T> {
    cache.with(|c| {
        let mut c = c.borrow_mut();
        match &*c {
            Some(r) if r.address == address => Some(r.value.clone()),
            _ => {
                let (function, value) = find()?;
                *c = Some(Recent {
                    address,
                    _function: function,
                    value: value.clone(),
                });
                Some(value)
            }
        }
    })
}

/// `new_job(f, ...)` (see [`JobStarters::new_job`]).
///
/// Everything it calls on the state only reads values and raises no Lua error, and every Rust
/// value it makes is dropped or stored before the result is pushed (pushing the id can raise
/// a memory error, so the id is pushed from a copy on the stack, [`CallbackId`]).
unsafe extern "C-unwind" fn new_job(state: *mut lua_State) -> c_int {
    let started = || -> Option<mlua::Result<CallbackId>> {
        if ffi::lua_type(state, 1) != ffi::LUA_TFUNCTION {
            return None;
        }
        let address = ffi::lua_topointer(state, 1);
        let code = recent(&LAST_JOB, address, || {
            ShipCache::dump_of(&self::state()?, address)
        })?;
        let args = read_plain_args(state, 2)?;
        let stage = crate::api::Actor::Stage(current()?);
        Some(submit(&stage, JobFn::Code(code), args))
    };
    match started() {
        None => 0,
        Some(Ok(id)) => {
            let id = id.as_bytes();
            ffi::lua_pushlstring(state, id.as_ptr().cast(), id.len());
            1
        }
        Some(Err(e)) => failed(state, e),
    }
}

/// `watch(id, cb, copy, ...)` (see [`JobStarters::watch`]).
unsafe extern "C-unwind" fn watch(state: *mut lua_State) -> c_int {
    let watched = || -> Option<bool> {
        let id = std::str::from_utf8(read_string(state, 1)?).ok()?;
        if ffi::lua_gettop(state) != 3
            || ffi::lua_type(state, 2) != ffi::LUA_TFUNCTION
            || ffi::lua_type(state, 3) != ffi::LUA_TFUNCTION
        {
            return None;
        }
        let stage = current()?;
        let address = ffi::lua_topointer(state, 2);
        let shipped = recent(&LAST_CALLBACK, address, || {
            ShipCache::copy_of(&self::state()?, address, &stage.env)
        })?;
        (shipped.func.to_pointer() == ffi::lua_topointer(state, 3))
            .then(|| stage.register_plain(id, shipped))
    };
    match watched() {
        Some(true) => {
            ffi::lua_pushboolean(state, 1);
            1
        }
        _ => 0,
    }
}
