//! The handlers a stage registered with `stage.waitfor` (`messaging.md` §2).

use crate::convert;
use mlua::Lua;
use rustc_hash::FxHashMap;
use stage_core::Value;
use std::collections::hash_map::Entry;
use std::ffi::c_void;
use std::rc::Rc;
use std::sync::Arc;

/// A registered function: its bytecode (upvalues do not travel) loaded once into the stage's
/// state, plus whether it has upvalues other than `_ENV` that must be nil at every call.
#[derive(Clone)]
pub struct Shipped {
    pub code: Arc<[u8]>,
    /// Shared by every registration of the function (a copy would hold a slot of `mlua`'s
    /// reference table of its own).
    pub func: Rc<mlua::Function>,
    pub has_upvalues: bool,
}

impl Shipped {
    /// Copies `f` as a shipped function of this state: dumped, loaded anew with `_ENV` bound to
    /// `env`; a WARN names the captured locals that are lost, once per function prototype.
    pub fn ship(lua: &Lua, f: &mlua::Function, env: &mlua::Table) -> mlua::Result<Shipped> {
        let code = shipped_code(lua, f)?;
        Shipped::load(lua, code, env)
    }

    /// Shipped bytecode as a function of this state. The same bytecode (the same `Arc`) is
    /// loaded once: every registration of it shares the function, called as a fresh copy.
    pub fn load(lua: &Lua, code: Arc<[u8]>, env: &mlua::Table) -> mlua::Result<Shipped> {
        if let Some(shipped) = ShipCache::loaded(lua, &code, env) {
            return Ok(shipped);
        }
        let key = load_key(&code, env);
        let shipped = Shipped::load_uncached(lua, code.clone(), env)?;
        if let Some(mut cache) = lua.app_data_mut::<ShipCache>() {
            if cache.loads.len() >= CACHED {
                cache.loads.clear();
            }
            cache.loads.insert(key, (code, shipped.clone()));
        }
        Ok(shipped)
    }

    fn load_uncached(lua: &Lua, code: Arc<[u8]>, env: &mlua::Table) -> mlua::Result<Shipped> {
        let func = convert::load_function(lua, &code, env)?;
        let has_upvalues =
            convert::upvalue_count(lua, &func)? > usize::from(func.environment().is_some());
        Ok(Shipped {
            code,
            func: Rc::new(func),
            has_upvalues,
        })
    }

    /// The function, ready to be called as a fresh copy would be.
    pub fn fresh(&self, lua: &Lua) -> mlua::Result<mlua::Function> {
        if self.has_upvalues {
            convert::clear_upvalues(lua, &self.func)?;
        }
        Ok((*self.func).clone())
    }
}

/// How many functions and bytecodes a state's [`ShipCache`] keeps before starting afresh.
const CACHED: usize = 4096;

/// The functions a state shipped and the bytecode it loaded, so that submitting the same
/// function again and again dumps and loads it once. Entries hold what their key points to,
/// so a key can never stand for another, newer object.
#[derive(Default)]
pub struct ShipCache {
    dumps: FxHashMap<usize, (mlua::Function, Arc<[u8]>)>,
    loads: FxHashMap<LoadKey, (Arc<[u8]>, Shipped)>,
}

/// The addresses of a bytecode and of the environment it was loaded with.
type LoadKey = (usize, usize);

fn load_key(code: &Arc<[u8]>, env: &mlua::Table) -> LoadKey {
    (
        Arc::as_ptr(code) as *const u8 as usize,
        env.to_pointer() as usize,
    )
}

impl ShipCache {
    /// The bytecode the function at `address` was shipped as, if this state shipped it.
    pub fn code(lua: &Lua, address: *const c_void) -> Option<Arc<[u8]>> {
        let cache = lua.app_data_ref::<ShipCache>()?;
        cache
            .dumps
            .get(&(address as usize))
            .map(|(_, code)| code.clone())
    }

    /// The function at `address`, which this state shipped, and its bytecode.
    pub fn dump_of(lua: &Lua, address: *const c_void) -> Option<(mlua::Function, Arc<[u8]>)> {
        let cache = lua.app_data_ref::<ShipCache>()?;
        cache.dumps.get(&(address as usize)).cloned()
    }

    /// The function at `address`, which this state shipped, and its copy loaded with `_ENV`
    /// bound to `env`, if this state loaded it.
    pub fn copy_of(
        lua: &Lua,
        address: *const c_void,
        env: &mlua::Table,
    ) -> Option<(mlua::Function, Shipped)> {
        let (f, code) = ShipCache::dump_of(lua, address)?;
        Some((f, ShipCache::loaded(lua, &code, env)?))
    }

    /// `code` as loaded with `_ENV` bound to `env`, if this state loaded it.
    pub fn loaded(lua: &Lua, code: &Arc<[u8]>, env: &mlua::Table) -> Option<Shipped> {
        let cache = lua.app_data_ref::<ShipCache>()?;
        cache
            .loads
            .get(&load_key(code, env))
            .map(|(_, s)| s.clone())
    }
}

/// The bytecode `f` travels as (its captured locals are lost, with one WARN per prototype).
pub fn shipped_code(lua: &Lua, f: &mlua::Function) -> mlua::Result<Arc<[u8]>> {
    let key = f.to_pointer() as usize;
    if let Some(code) = ShipCache::code(lua, f.to_pointer()) {
        return Ok(code);
    }
    warn_lost_upvalues(lua, f)?;
    let code = convert::dump(f)?;
    if let Some(mut cache) = lua.app_data_mut::<ShipCache>() {
        if cache.dumps.len() >= CACHED {
            cache.dumps.clear();
        }
        cache.dumps.insert(key, (f.clone(), code.clone()));
    }
    Ok(code)
}

/// Logs one WARN per function prototype whose captured locals will arrive as nil (decision 8).
pub fn warn_lost_upvalues(lua: &Lua, f: &mlua::Function) -> mlua::Result<()> {
    if f.info().what == "C" {
        // Refused when copied; C upvalues are no captured locals.
        return Ok(());
    }
    let lost = convert::captured_upvalues(lua, f)?;
    if lost.is_empty() {
        return Ok(());
    }
    let info = f.info();
    let prototype = format!(
        "{}:{}",
        info.short_src.as_deref().unwrap_or("?"),
        info.line_defined.unwrap_or(0)
    );
    let first_time = match lua.app_data_mut::<WarnedPrototypes>() {
        Some(mut warned) => warned.0.insert(prototype.clone()),
        None => true,
    };
    if first_time {
        tracing::warn!(
            target: "lua",
            "function at {prototype} captures local(s) {}: they arrive as nil where the function runs; pass them as arguments or declare them in _SANDBOX",
            lost.join(", ")
        );
    }
    Ok(())
}

/// The prototypes already warned about in one Lua state.
#[derive(Default)]
pub struct WarnedPrototypes(pub std::collections::HashSet<String>);

/// One registration: the function and the registration arguments given before the message's.
#[derive(Clone)]
pub struct Handler {
    pub shipped: Shipped,
    pub args: Vec<Value>,
    /// Whether the fast path's table of plain handlers holds it.
    pub fast: bool,
}

/// The handlers of one stage, by name (`""` is the idle function, `"@"` the catch-all).
#[derive(Default)]
pub struct Handlers {
    by_name: FxHashMap<String, Handler>,
    /// `thread.new` callbacks whose job ended, until they are removed a second later
    /// (`runtime.md` §9.8). Kept apart, so that the handlers in use stay a small table however
    /// many jobs end every second: the callbacks of a second's jobs are touched twice here,
    /// when their job ends and when they go.
    ended: FxHashMap<String, Handler>,
}

impl Handlers {
    /// The handler registered under `name`.
    pub fn get(&self, name: &str) -> Option<&Handler> {
        self.by_name.get(name).or_else(|| self.ended.get(name))
    }

    /// The handler registered under `name`, with the name as stored.
    pub fn entry(&self, name: &str) -> Option<(&str, &Handler)> {
        self.by_name
            .get_key_value(name)
            .or_else(|| self.ended.get_key_value(name))
            .map(|(k, h)| (k.as_str(), h))
    }

    /// Registers or replaces; `args` of `None` keeps the arguments of an earlier registration.
    pub fn register(
        &mut self,
        name: String,
        shipped: Shipped,
        args: Option<Vec<Value>>,
    ) -> &mut Handler {
        let ended = &mut self.ended;
        let h = match self.by_name.entry(name) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => match ended.remove(entry.key()) {
                Some(h) => entry.insert(h),
                None => {
                    return entry.insert(Handler {
                        shipped,
                        args: args.unwrap_or_default(),
                        fast: false,
                    })
                }
            },
        };
        h.shipped = shipped;
        if let Some(args) = args {
            h.args = args;
        }
        h
    }

    /// Sets `name`, a `thread.new` callback whose job ended, apart until it is removed; whether
    /// it was a plain handler (the fast path's table must drop it).
    pub fn retire(&mut self, name: &str) -> bool {
        let Some((name, mut h)) = self.by_name.remove_entry(name) else {
            return false;
        };
        let fast = std::mem::replace(&mut h.fast, false);
        self.ended.insert(name, h);
        fast
    }

    /// The handler registered under `name`, to change.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Handler> {
        match self.by_name.get_mut(name) {
            Some(h) => Some(h),
            None => self.ended.get_mut(name),
        }
    }

    /// Replaces the registration arguments of an existing handler; false when absent.
    pub fn set_args(&mut self, name: &str, args: Vec<Value>) -> bool {
        match self.get_mut(name) {
            Some(h) => {
                h.args = args;
                true
            }
            None => false,
        }
    }

    /// Removes a handler.
    pub fn remove(&mut self, name: &str) -> Option<Handler> {
        self.by_name
            .remove(name)
            .or_else(|| self.ended.remove(name))
    }

    /// Whether `name` is taken.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name) || self.ended.contains_key(name)
    }

    /// Whether `name` is taken by a handler in use (not by a callback of an ended job).
    pub fn in_use(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Every registration: name and arguments.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Handler)> {
        self.by_name.iter().chain(self.ended.iter())
    }
}
