//! The process store `S` (`sandbox.md` §6–7): named values shared by every Lua state of one
//! (virtual) process, kept as copies outside any state, each behind its own lock; numbered
//! namespaces (`__[n]`) beside the globals' namespace 0; and the process-wide declarations of
//! `*NAME` globals.
//!
//! A slot is never removed from the map once created (a deleted value leaves an empty slot):
//! a thread holding a slot's lock for an atomic update can then never write into a slot that
//! another thread has already replaced.

use parking_lot::{Mutex, MutexGuard, RwLock};
use stage_core::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// Why the store refused an access.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StoreError {
    #[error("'{0}' is being updated by __(\"{0}\", fn) on this thread: the updater must use its argument, not the stored name")]
    Reentered(String),
    #[error("read only")]
    ReadOnly,
}

/// How a `*NAME` global was declared.
#[derive(Clone, Debug, PartialEq)]
pub struct Declaration {
    /// Declared with a value (`["*NAME"] = v`): later writes are refused.
    pub read_only: bool,
    /// The `where` argument `stage.index` receives for keys of this value (default `sandbox`).
    pub index: String,
}

type Slot = Arc<Mutex<Option<Arc<Value>>>>;

/// The store of one process.
#[derive(Default)]
pub struct ProcessStore {
    /// Namespace → name → slot.
    slots: Mutex<HashMap<u32, HashMap<String, Slot>>>,
    declared: RwLock<HashMap<String, Declaration>>,
}

thread_local! {
    /// The slots this thread holds for an atomic update.
    static HELD: RefCell<Vec<(u32, String)>> = const { RefCell::new(Vec::new()) };
}

/// A slot locked for an atomic update; reads and writes of the same name on this thread fail
/// instead of deadlocking while it lives.
pub struct Held<'a> {
    guard: MutexGuard<'a, Option<Arc<Value>>>,
}

impl Held<'_> {
    /// The value now stored, if any.
    pub fn value(&self) -> Option<Arc<Value>> {
        self.guard.clone()
    }

    /// Replaces (or with `None`, deletes) the value.
    pub fn replace(&mut self, value: Option<Value>) {
        *self.guard = value.map(Arc::new);
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        HELD.with(|held| {
            held.borrow_mut().pop();
        });
    }
}

impl ProcessStore {
    fn slot(&self, ns: u32, name: &str) -> Option<Slot> {
        self.slots.lock().get(&ns)?.get(name).cloned()
    }

    fn slot_or_new(&self, ns: u32, name: &str) -> Slot {
        let mut slots = self.slots.lock();
        let names = slots.entry(ns).or_default();
        match names.get(name) {
            Some(slot) => slot.clone(),
            None => names.entry(name.to_string()).or_default().clone(),
        }
    }

    fn check_not_held(ns: u32, name: &str) -> Result<(), StoreError> {
        let held = HELD.with(|held| {
            held.borrow()
                .iter()
                .any(|(n, held)| *n == ns && held == name)
        });
        if held {
            return Err(StoreError::Reentered(name.to_string()));
        }
        Ok(())
    }

    /// The value stored under `name` in namespace `ns`.
    pub fn get(&self, ns: u32, name: &str) -> Result<Option<Arc<Value>>, StoreError> {
        Self::check_not_held(ns, name)?;
        Ok(self.slot(ns, name).and_then(|slot| slot.lock().clone()))
    }

    /// Whether a value is stored under `name`.
    pub fn contains(&self, ns: u32, name: &str) -> Result<bool, StoreError> {
        Ok(self.get(ns, name)?.is_some())
    }

    /// Stores `value` under `name` (`None` deletes).
    pub fn set(&self, ns: u32, name: &str, value: Option<Value>) -> Result<(), StoreError> {
        Self::check_not_held(ns, name)?;
        let slot = match value {
            Some(_) => self.slot_or_new(ns, name),
            None => match self.slot(ns, name) {
                Some(slot) => slot,
                None => return Ok(()),
            },
        };
        *slot.lock() = value.map(Arc::new);
        Ok(())
    }

    /// Locks `name` for an atomic read-modify-write and runs `update` with it held.
    pub fn update<R>(
        &self,
        ns: u32,
        name: &str,
        update: impl FnOnce(&mut Held<'_>) -> R,
    ) -> Result<R, StoreError> {
        Self::check_not_held(ns, name)?;
        let slot = self.slot_or_new(ns, name);
        let guard = slot.lock();
        HELD.with(|held| held.borrow_mut().push((ns, name.to_string())));
        let mut held = Held { guard };
        Ok(update(&mut held))
    }

    /// The names that hold a value in namespace `ns`, sorted.
    pub fn names(&self, ns: u32) -> Vec<String> {
        let slots: Vec<(String, Slot)> = match self.slots.lock().get(&ns) {
            Some(names) => names
                .iter()
                .map(|(name, slot)| (name.clone(), slot.clone()))
                .collect(),
            None => return Vec::new(),
        };
        let mut names: Vec<String> = slots
            .into_iter()
            .filter(|(name, slot)| Self::check_not_held(ns, name).is_err() || slot.lock().is_some())
            .map(|(name, _)| name)
            .collect();
        names.sort();
        names
    }

    /// Deletes every value of namespace `ns`.
    pub fn clear(&self, ns: u32) -> Result<(), StoreError> {
        for name in self.names(ns) {
            self.set(ns, &name, None)?;
        }
        Ok(())
    }

    /// Declares `*NAME`; a read-only declaration also stores its value.
    pub fn declare(
        &self,
        name: &str,
        declaration: Declaration,
        value: Option<Value>,
    ) -> Result<(), StoreError> {
        if declaration.read_only {
            self.set(0, name, value)?;
        }
        self.declared.write().insert(name.to_string(), declaration);
        Ok(())
    }

    /// How `*NAME` was declared, if it was.
    pub fn declaration(&self, name: &str) -> Option<Declaration> {
        self.declared.read().get(name).cloned()
    }

    /// Whether a global write `NAME = v` goes to the store (`sandbox.md` §3, write steps 2–4):
    /// true when `NAME` is stored or `*`-declared, an error when it is declared read-only.
    pub fn takes_global(&self, name: &str) -> Result<bool, StoreError> {
        match self.declaration(name) {
            Some(d) if d.read_only => Err(StoreError::ReadOnly),
            Some(_) => Ok(true),
            None => self.contains(0, name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(n: i64) -> Option<Value> {
        Some(Value::Int(n))
    }

    #[test]
    fn values_are_stored_per_namespace_and_deleted_with_none() {
        let store = ProcessStore::default();
        store.set(0, "a", int(1)).unwrap();
        store.set(7, "a", int(2)).unwrap();
        assert_eq!(store.get(0, "a").unwrap().as_deref(), Some(&Value::Int(1)));
        assert_eq!(store.get(7, "a").unwrap().as_deref(), Some(&Value::Int(2)));
        store.set(0, "a", None).unwrap();
        assert_eq!(store.get(0, "a").unwrap(), None);
        assert_eq!(store.names(0), Vec::<String>::new());
        assert_eq!(store.names(7), ["a"]);
        store.clear(7).unwrap();
        assert_eq!(store.names(7), Vec::<String>::new());
    }

    #[test]
    fn an_update_holds_the_name_and_refuses_reentry_on_its_thread() {
        let store = ProcessStore::default();
        store.set(0, "n", int(1)).unwrap();
        let inner = store
            .update(0, "n", |held| {
                let seen = held.value();
                held.replace(int(2));
                (seen, store.get(0, "n"), store.get(0, "other"))
            })
            .unwrap();
        assert_eq!(inner.0.as_deref(), Some(&Value::Int(1)));
        assert_eq!(inner.1, Err(StoreError::Reentered("n".into())));
        assert_eq!(inner.2, Ok(None));
        assert_eq!(store.get(0, "n").unwrap().as_deref(), Some(&Value::Int(2)));
    }

    #[test]
    fn updates_from_many_threads_lose_nothing() {
        let store = Arc::new(ProcessStore::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        store
                            .update(0, "hits", |held| {
                                let n = match held.value().as_deref() {
                                    Some(Value::Int(n)) => *n,
                                    _ => 0,
                                };
                                held.replace(int(n + 1));
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            store.get(0, "hits").unwrap().as_deref(),
            Some(&Value::Int(4000))
        );
    }

    #[test]
    fn global_writes_follow_the_declarations() {
        let store = ProcessStore::default();
        assert_eq!(store.takes_global("x"), Ok(false));
        let rw = Declaration {
            read_only: false,
            index: "sandbox".into(),
        };
        store.declare("x", rw, None).unwrap();
        assert_eq!(store.takes_global("x"), Ok(true));
        let ro = Declaration {
            read_only: true,
            index: "sandbox".into(),
        };
        store.declare("k", ro, int(10)).unwrap();
        assert_eq!(store.takes_global("k"), Err(StoreError::ReadOnly));
        assert_eq!(store.get(0, "k").unwrap().as_deref(), Some(&Value::Int(10)));
        // A name put in the store through `__` is shared without a declaration.
        store.set(0, "y", int(5)).unwrap();
        assert_eq!(store.takes_global("y"), Ok(true));
        // While this thread updates a name, even asking about it is refused.
        let inner = store.update(0, "y", |_| store.takes_global("y")).unwrap();
        assert_eq!(inner, Err(StoreError::Reentered("y".into())));
    }
}
