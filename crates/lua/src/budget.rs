//! Runaway code is stopped (decisions 11 and 26): an invocation that runs past its wall-clock
//! budget is aborted with a Lua error naming the budget, and the state's memory is capped.
//!
//! Lua runs with no hook installed: a count hook makes the VM call out on every instruction,
//! which costs script code half its speed. Instead each state publishes an *epoch* that moves
//! whenever an invocation starts or ends (odd while one runs; the fast path moves it for each
//! message it dispatches), and one watchdog thread per process looks at the epochs every few
//! milliseconds. When an epoch stays odd and unchanged for longer than the budget, the watchdog
//! sends the state's thread a signal (`SIGURG`, ignored by default); its handler installs a
//! count hook on the state and on the coroutines it is running — the way the standalone `lua`
//! interpreter stops a script on Ctrl-C, what `lua_sethook` is made for (it may be called from
//! a signal handler). The hook raises the budget error for as long as the same invocation runs,
//! so `pcall`, `xpcall` and `coroutine.resume` hand it on instead of catching it, and removes
//! itself once the epoch has moved. An invocation is stopped between its budget and its budget
//! plus a tenth of it (the watchdog's tick is a twentieth of the smallest budget, 1–50 ms).
//!
//! The memory cap holds while an invocation runs, that is whenever script code can allocate.
//! Between invocations the runtime builds the next handler's arguments with the cap lifted:
//! `mlua` runs every API call inside a protected call while a cap is set, which made that
//! work several times dearer, and what it builds is bounded by `#limits.message_bytes`.

use mlua::ffi::{self, lua_Debug, lua_State};
use mlua::Lua;
use parking_lot::{Condvar, Mutex};
use std::cell::Cell;
use std::ffi::c_int;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How many VM instructions run between two calls of the hook once it is installed.
const HOOK_EVERY: c_int = 1000;

/// How many nested running coroutines get the hook; deeper ones are stopped through their
/// resumers.
const MAX_RUNNING: usize = 32;

/// The signal the watchdog sends; ignored by default, so a stray one does no harm.
const WAKE_SIGNAL: c_int = libc::SIGURG;

/// The start of every budget error message; scripts cannot catch an error that starts so.
pub const BUDGET_ERROR: &str = "budget exceeded:";

/// What a state's invocations may use.
pub struct Budget {
    /// How long one invocation may run (zero = no limit).
    pub time: Duration,
    /// The config key that sets it, named in the error (e.g. "#limits.stage_budget_ms").
    pub what: &'static str,
    /// The state's memory cap in bytes (0 = no cap).
    pub memory_bytes: usize,
}

/// What the watchdog, the signal handler and the hook know of one state.
struct Watched {
    /// Odd while an invocation runs; moves at every start and end.
    epoch: AtomicU64,
    /// The epoch the watchdog found over budget.
    armed: AtomicU64,
    /// The budget error text.
    message: OnceLock<String>,
    /// The state's main thread, null once the state is no longer watched.
    main: AtomicPtr<lua_State>,
    /// The coroutines being resumed, outermost first (`running_len` may exceed the array).
    running: [AtomicPtr<lua_State>; MAX_RUNNING],
    running_len: AtomicUsize,
}

thread_local! {
    /// The watched state of this thread (each stage thread and worker runs one state).
    static CURRENT: Cell<*const Watched> = const { Cell::new(ptr::null()) };
}

/// The invocations of one state as the watchdog sees them; owned by the state's thread.
pub struct Progress {
    watched: Arc<Watched>,
    /// The memory cap in bytes that holds during invocations (0 = none).
    memory_cap: Cell<usize>,
    /// Nesting of [`Progress::begin`]: only the outermost invocation moves the epoch.
    depth: Cell<u32>,
}

/// A running invocation; it ends when this is dropped.
#[must_use = "the invocation ends when this is dropped"]
pub struct Invocation<'a> {
    progress: &'a Progress,
    lua: &'a Lua,
}

impl Default for Progress {
    fn default() -> Progress {
        Progress {
            watched: Arc::new(Watched {
                epoch: AtomicU64::new(0),
                armed: AtomicU64::new(u64::MAX),
                message: OnceLock::new(),
                main: AtomicPtr::new(ptr::null_mut()),
                running: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
                running_len: AtomicUsize::new(0),
            }),
            memory_cap: Cell::new(0),
            depth: Cell::new(0),
        }
    }
}

impl Progress {
    /// Marks the start of an invocation on `lua`, the state this progress belongs to (a
    /// handler, a timer, a job, a main script); one started inside another is part of it.
    pub fn begin<'a>(&'a self, lua: &'a Lua) -> Invocation<'a> {
        let depth = self.depth.get();
        if depth == 0 {
            let epoch = &self.watched.epoch;
            epoch.store(epoch.load(Relaxed) | 1, Relaxed);
            set_memory_cap(lua, self.memory_cap.get());
        }
        self.depth.set(depth + 1);
        Invocation {
            progress: self,
            lua,
        }
    }
}

impl Drop for Invocation<'_> {
    fn drop(&mut self) {
        let progress = self.progress;
        let depth = progress.depth.get() - 1;
        progress.depth.set(depth);
        if depth == 0 {
            let watched = &progress.watched;
            watched.running_len.store(0, Relaxed);
            watched
                .epoch
                .store(watched.epoch.load(Relaxed) + 1, Relaxed);
            set_memory_cap(self.lua, 0);
        }
    }
}

/// Runs `f` with the state's memory cap lifted. While a cap is set, `mlua` protects every value
/// it creates with a call of its own; the runtime's bookkeeping inside an invocation (a handler
/// name into the fast path's table, a callback id returned to the script) runs here instead.
/// `f` must not run script code nor allocate in proportion to what a script controls.
pub fn uncapped<R>(lua: &Lua, f: impl FnOnce() -> R) -> R {
    struct Restore<'a>(&'a Lua, usize);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            set_memory_cap(self.0, self.1);
        }
    }
    match lua.set_memory_limit(0) {
        Ok(0) | Err(_) => f(),
        Ok(cap) => {
            let _restore = Restore(lua, cap);
            f()
        }
    }
}

/// Sets the state's memory cap in bytes (0 = none).
fn set_memory_cap(lua: &Lua, bytes: usize) {
    if let Err(e) = lua.set_memory_limit(bytes) {
        tracing::error!("cannot set a Lua state's memory cap: {e}");
    }
}

/// Keeps a state under the watchdog; the state must outlive it (declare it after the `Lua`).
#[must_use = "the state is watched until this is dropped"]
pub struct Watching {
    watched: Arc<Watched>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        if let Some(dog) = WATCHDOG.get() {
            dog.entries
                .lock()
                .retain(|e| !Arc::ptr_eq(&e.watched, &self.watched));
        }
        self.watched.main.store(ptr::null_mut(), Relaxed);
        CURRENT.with(|c| {
            if ptr::eq(c.get(), Arc::as_ptr(&self.watched)) {
                c.set(ptr::null());
            }
        });
    }
}

/// Puts the state owned by this thread under `budget`: budget errors that `pcall` and friends
/// hand on, the watchdog, and the memory cap for invocations. Called once per state, after the
/// sandbox; script code must run inside [`Progress::begin`] from then on.
pub fn enforce(lua: &Lua, budget: &Budget, progress: &Progress) -> mlua::Result<Watching> {
    let watched = progress.watched.clone();
    uncatchable(lua)?;
    progress.memory_cap.set(budget.memory_bytes);
    let message = format!(
        "{BUDGET_ERROR} this invocation ran longer than {} ms ({}) and was stopped",
        budget.time.as_millis(),
        budget.what
    );
    // Set once per state: a second enforce keeps the first text.
    let _ = watched.message.set(message);
    // SAFETY: reads the main thread from the registry of a live state.
    let main = unsafe {
        lua.exec_raw::<()>((), |state| {
            ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, ffi::LUA_RIDX_MAINTHREAD);
            watched.main.store(ffi::lua_tothread(state, -1), Relaxed);
            ffi::lua_pop(state, 1);
        })
    };
    main?;
    CURRENT.with(|c| c.set(Arc::as_ptr(&watched)));
    if !budget.time.is_zero() {
        let dog = watchdog();
        dog.entries.lock().push(Entry {
            watched: watched.clone(),
            budget: budget.time,
            // SAFETY: pthread_self has no preconditions.
            thread: unsafe { libc::pthread_self() },
            seen_epoch: u64::MAX,
            seen_at: Instant::now(),
            signaled: false,
        });
        dog.changed.notify_one();
    }
    Ok(Watching { watched })
}

/// A Lua function that starts a new invocation within the running one: the fast path calls it
/// for each message it dispatches.
pub fn invocation_marker(lua: &Lua) -> mlua::Result<mlua::Function> {
    // SAFETY: `mark_invocation` follows the lua_CFunction protocol.
    unsafe { lua.create_c_function(mark_invocation) }
}

unsafe extern "C-unwind" fn mark_invocation(_: *mut lua_State) -> c_int {
    CURRENT.with(|c| {
        // SAFETY: CURRENT points to a live Watched while it is set (cleared by Watching::drop).
        if let Some(watched) = unsafe { c.get().as_ref() } {
            let epoch = watched.epoch.load(Relaxed);
            if epoch & 1 == 1 {
                watched.epoch.store(epoch + 2, Relaxed);
            }
        }
    });
    0
}

/// Records the coroutine in argument 1 as running (until `resume_left`).
unsafe extern "C-unwind" fn resume_entered(state: *mut lua_State) -> c_int {
    let co = ffi::lua_tothread(state, 1);
    CURRENT.with(|c| {
        // SAFETY: as in mark_invocation.
        if let Some(watched) = unsafe { c.get().as_ref() } {
            let n = watched.running_len.load(Relaxed);
            if let Some(slot) = watched.running.get(n) {
                slot.store(co, Relaxed);
            }
            // Published after the slot: the signal handler reads `running_len` first.
            std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
            watched.running_len.store(n + 1, Relaxed);
        }
    });
    0
}

/// The `__close` of a resume: the innermost running coroutine is no longer running.
unsafe extern "C-unwind" fn resume_left(_: *mut lua_State) -> c_int {
    CURRENT.with(|c| {
        // SAFETY: as in mark_invocation.
        if let Some(watched) = unsafe { c.get().as_ref() } {
            let n = watched.running_len.load(Relaxed);
            if n > 0 {
                watched.running_len.store(n - 1, Relaxed);
                std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
                if let Some(slot) = watched.running.get(n - 1) {
                    slot.store(ptr::null_mut(), Relaxed);
                }
            }
        }
    });
    0
}

/// The signal handler: installs the hook on the watched state of this thread and on the
/// coroutines it runs, if the invocation the watchdog found over budget still runs.
extern "C" fn on_wake_signal(_: c_int) {
    CURRENT.with(|c| {
        // SAFETY: as in mark_invocation; the thread is interrupted, so nothing changes under us.
        let Some(watched) = (unsafe { c.get().as_ref() }) else {
            return;
        };
        if watched.epoch.load(Relaxed) != watched.armed.load(Relaxed) {
            return;
        }
        let main = watched.main.load(Relaxed);
        if main.is_null() {
            return;
        }
        let running = watched.running_len.load(Relaxed).min(MAX_RUNNING);
        let coroutines = watched.running[..running].iter().map(|s| s.load(Relaxed));
        for state in std::iter::once(main).chain(coroutines) {
            if !state.is_null() {
                // SAFETY: lua_sethook may be called from a signal handler; the states are alive
                // (the main one until Watching drops, coroutines while they are listed).
                unsafe { ffi::lua_sethook(state, Some(on_hook), ffi::LUA_MASKCOUNT, HOOK_EVERY) };
            }
        }
    });
}

/// The hook: raises the budget error while the invocation found over budget runs, and removes
/// itself afterwards.
unsafe extern "C-unwind" fn on_hook(state: *mut lua_State, _: *mut lua_Debug) {
    let message = CURRENT.with(|c| {
        // SAFETY: as in mark_invocation.
        let watched = unsafe { c.get().as_ref() }?;
        let epoch = watched.epoch.load(Relaxed);
        (epoch & 1 == 1 && epoch == watched.armed.load(Relaxed))
            .then(|| watched.message.get().map(|m| (m.as_ptr(), m.len())))
            .flatten()
    });
    match message {
        // The text lives as long as the Watched, which outlives the state's invocations.
        Some((text, len)) => {
            ffi::lua_pushlstring(state, text.cast(), len);
            ffi::lua_error(state);
        }
        None => ffi::lua_sethook(state, None, 0, 0),
    }
}

/// One watched state, as the watchdog tracks it.
struct Entry {
    watched: Arc<Watched>,
    budget: Duration,
    thread: libc::pthread_t,
    seen_epoch: u64,
    seen_at: Instant,
    signaled: bool,
}

struct Watchdog {
    entries: Mutex<Vec<Entry>>,
    changed: Condvar,
}

static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();

/// The process's watchdog, started (with its signal handler) on first use.
fn watchdog() -> &'static Watchdog {
    WATCHDOG.get_or_init(|| {
        // SAFETY: installs a handler that only touches this thread's Watched and calls
        // lua_sethook, both async-signal-safe; SA_RESTART resumes interrupted system calls.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_wake_signal as extern "C" fn(c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(WAKE_SIGNAL, &action, ptr::null_mut());
        }
        let spawned = std::thread::Builder::new()
            .name("stage-watchdog".into())
            .spawn(watch);
        if let Err(e) = spawned {
            tracing::error!(
                "cannot start the budget watchdog: {e}; runaway code will not be stopped"
            );
        }
        Watchdog {
            entries: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        }
    })
}

/// The watchdog thread: signals each state whose invocation has run past its budget.
fn watch() {
    let dog = watchdog();
    let mut entries = dog.entries.lock();
    loop {
        let Some(smallest) = entries.iter().map(|e| e.budget).min() else {
            dog.changed.wait(&mut entries);
            continue;
        };
        let now = Instant::now();
        for entry in entries.iter_mut() {
            let epoch = entry.watched.epoch.load(Relaxed);
            if epoch != entry.seen_epoch {
                entry.seen_epoch = epoch;
                entry.seen_at = now;
                entry.signaled = false;
            } else if epoch & 1 == 1
                && !entry.signaled
                && now.duration_since(entry.seen_at) >= entry.budget
            {
                entry.signaled = true;
                entry.watched.armed.store(epoch, Relaxed);
                // SAFETY: the thread is alive: it unregisters (under this lock) before it ends.
                unsafe { libc::pthread_kill(entry.thread, WAKE_SIGNAL) };
            }
        }
        let tick = (smallest / 20).clamp(Duration::from_millis(1), Duration::from_millis(50));
        dog.changed.wait_for(&mut entries, tick);
    }
}

/// Replaces `pcall`, `xpcall` and `coroutine.resume` with versions that hand budget errors on
/// (`is_budget` tells them apart), and makes `coroutine.resume` tell the watchdog which
/// coroutines run. Called once per state, after the runtime took the originals.
fn uncatchable(lua: &Lua) -> mlua::Result<()> {
    const WRAP: &str = r#"
local is_budget, pcall, xpcall, resume, error, entered, left = ...
local type = type
local function pass(ok, ...)
  if not ok and is_budget((...)) then error((...), 0) end
  return ok, ...
end
_G.pcall = function (f, ...) return pass(pcall(f, ...)) end
_G.xpcall = function (f, handler, ...)
  local caught
  local function keep(e)
    if is_budget(e) then caught = e return e end
    return handler(e)
  end
  local function check(ok, ...)
    if caught ~= nil then error(caught, 0) end
    return ok, ...
  end
  return check(xpcall(f, keep, ...))
end
local LEAVE = setmetatable({}, { __close = left })
coroutine.resume = function (co, ...)
  if type(co) ~= "thread" then return pass(resume(co, ...)) end
  entered(co)
  local _ <close> = LEAVE
  return pass(resume(co, ...))
end
"#;
    let is_budget = lua.create_function(|_, e: mlua::Value| {
        Ok(match e {
            mlua::Value::Error(e) => crate::errors::message(&e).starts_with(BUDGET_ERROR),
            mlua::Value::String(s) => s.to_str().is_ok_and(|s| s.contains(BUDGET_ERROR)),
            _ => false,
        })
    })?;
    let globals = lua.globals();
    let coroutine: mlua::Table = globals.get("coroutine")?;
    // SAFETY: both follow the lua_CFunction protocol.
    let (entered, left) = unsafe {
        (
            lua.create_c_function(resume_entered)?,
            lua.create_c_function(resume_left)?,
        )
    };
    lua.load(WRAP).set_name("=stage").call::<()>((
        is_budget,
        globals.get::<mlua::Function>("pcall")?,
        globals.get::<mlua::Function>("xpcall")?,
        coroutine.get::<mlua::Function>("resume")?,
        globals.get::<mlua::Function>("error")?,
        entered,
        left,
    ))
}
