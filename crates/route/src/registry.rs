//! Registrations: who subscribed to what, paused until when, last seen when.

use crate::error::RouteError;
use crate::key::{check_subscription, parent};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::Arc;

/// One entry of a registration table (`stage.signal("route:@", { id = value })`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A string: subscribe with this callback id, enabled at once. Subscribing again replaces
    /// the callback and keeps the pause state (`route.md` D8).
    Subscribe(String),
    /// `true`: enable (ready now).
    Enable,
    /// `false`: disable until enabled again.
    Disable,
    /// An integer: pause for this many milliseconds (`<= 0` enables now).
    Pause(i64),
    /// A wire null or the empty string `""`: remove the subscription (`route.md` D3).
    Remove,
}

impl Entry {
    /// The entry for a string value: `""` removes, anything else subscribes.
    pub fn callback(callback: impl Into<String>) -> Entry {
        let callback = callback.into();
        if callback.is_empty() {
            Entry::Remove
        } else {
            Entry::Subscribe(callback)
        }
    }
}

/// The engine's private handle of a registrant.
pub(crate) type RegistrantId = u64;

/// When a subscription may be probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ready {
    Disabled,
    From(u64),
}

struct Subscription {
    callback: Arc<str>,
    ready: Ready,
}

/// A subscribing stage.
struct Registrant<R> {
    who: R,
    last_seen: u64,
    paused_until: u64,
    subscriptions: BTreeMap<Arc<str>, Subscription>,
}

/// One eligible registrant of a publication and the callbacks it matched.
pub(crate) struct Match<R> {
    pub id: RegistrantId,
    pub who: R,
    pub callbacks: Vec<Arc<str>>,
}

/// All registrants, indexed by subscription id and by keep-alive expiry.
pub(crate) struct Registry<R> {
    keep_alive_ms: u64,
    last_id: RegistrantId,
    ids: HashMap<R, RegistrantId>,
    registrants: HashMap<RegistrantId, Registrant<R>>,
    /// Subscription id → registrants in registration order.
    index: HashMap<Arc<str>, Vec<RegistrantId>>,
    expiries: BTreeSet<(u64, RegistrantId)>,
}

impl<R: Clone + Eq + Hash> Registry<R> {
    pub fn new(keep_alive_ms: u64) -> Self {
        Registry {
            keep_alive_ms,
            last_id: 0,
            ids: HashMap::new(),
            registrants: HashMap::new(),
            index: HashMap::new(),
            expiries: BTreeSet::new(),
        }
    }

    /// Applies a registration table in order, creating the registrant if needed; a registrant
    /// left without subscriptions is removed.
    pub fn apply(
        &mut self,
        now: u64,
        who: R,
        entries: Vec<(Arc<str>, Entry)>,
    ) -> Result<(), RouteError> {
        for (id, _) in &entries {
            check_subscription(id)?;
        }
        let registrant = match self.touch(now, &who) {
            Some(registrant) => registrant,
            None => self.create(now, who),
        };
        for (subscription, entry) in entries {
            self.apply_entry(now, registrant, subscription, entry);
        }
        if self
            .registrants
            .get(&registrant)
            .is_some_and(|r| r.subscriptions.is_empty())
        {
            self.remove(registrant);
        }
        Ok(())
    }

    /// Refreshes a known registrant's keep-alive; returns its handle.
    pub fn touch(&mut self, now: u64, who: &R) -> Option<RegistrantId> {
        let id = *self.ids.get(who)?;
        let registrant = self.registrants.get_mut(&id)?;
        let old = std::mem::replace(&mut registrant.last_seen, now);
        self.expiries.remove(&(self.expiry(old), id));
        self.expiries.insert((self.expiry(now), id));
        Some(id)
    }

    /// Pauses a whole registrant for `ms` (`<= 0` resumes it) and refreshes its keep-alive.
    pub fn pause(&mut self, now: u64, who: &R, ms: i64) -> Result<(), RouteError> {
        let id = self.touch(now, who).ok_or(RouteError::UnknownRegistrant)?;
        if let Some(registrant) = self.registrants.get_mut(&id) {
            registrant.paused_until = now.saturating_add_signed(ms.max(0));
        }
        Ok(())
    }

    /// Removes a registrant and all its subscriptions.
    pub fn unregister(&mut self, who: &R) -> Result<(), RouteError> {
        let id = *self.ids.get(who).ok_or(RouteError::UnknownRegistrant)?;
        self.remove(id);
        Ok(())
    }

    /// Drops every registrant not heard from for the keep-alive period by `now`.
    pub fn expire(&mut self, now: u64) {
        while let Some(&(at, id)) = self.expiries.first() {
            if at > now {
                break;
            }
            self.remove(id);
        }
    }

    /// When the next registrant expires.
    pub fn next_expiry(&self) -> Option<u64> {
        self.expiries.first().map(|&(at, _)| at)
    }

    /// How many registrants exist.
    pub fn len(&self) -> usize {
        self.registrants.len()
    }

    /// The eligible registrants of the listed ids, pooled in order of first match, each with
    /// its matching callbacks; an id without eligible subscribers falls back to its groups.
    pub fn eligible(&self, now: u64, ids: &[&str]) -> Vec<Match<R>> {
        let mut pool: Vec<Match<R>> = Vec::new();
        for &id in ids {
            let mut name = Some(id);
            while let Some(current) = name {
                if self.collect(now, current, &mut pool) {
                    break;
                }
                name = parent(current);
            }
        }
        pool
    }

    /// Adds the eligible subscribers of one subscription id to the pool; returns whether any.
    fn collect(&self, now: u64, id: &str, pool: &mut Vec<Match<R>>) -> bool {
        let Some(list) = self.index.get(id) else {
            return false;
        };
        let mut found = false;
        for registrant_id in list {
            let Some(registrant) = self.registrants.get(registrant_id) else {
                continue;
            };
            let Some(subscription) = registrant.subscriptions.get(id) else {
                continue;
            };
            let ready = matches!(subscription.ready, Ready::From(at) if at <= now);
            if !ready || registrant.paused_until > now {
                continue;
            }
            found = true;
            let callback = &subscription.callback;
            match pool.iter_mut().find(|m| m.id == *registrant_id) {
                Some(entry) if entry.callbacks.contains(callback) => {}
                Some(entry) => entry.callbacks.push(callback.clone()),
                None => pool.push(Match {
                    id: *registrant_id,
                    who: registrant.who.clone(),
                    callbacks: vec![callback.clone()],
                }),
            }
        }
        found
    }

    fn expiry(&self, last_seen: u64) -> u64 {
        last_seen.saturating_add(self.keep_alive_ms)
    }

    fn create(&mut self, now: u64, who: R) -> RegistrantId {
        self.last_id += 1;
        let id = self.last_id;
        self.ids.insert(who.clone(), id);
        self.registrants.insert(
            id,
            Registrant {
                who,
                last_seen: now,
                paused_until: 0,
                subscriptions: BTreeMap::new(),
            },
        );
        self.expiries.insert((self.expiry(now), id));
        id
    }

    fn apply_entry(&mut self, now: u64, id: RegistrantId, subscription: Arc<str>, entry: Entry) {
        let Some(registrant) = self.registrants.get_mut(&id) else {
            return;
        };
        let ready = match entry {
            Entry::Subscribe(callback) => {
                let callback: Arc<str> = callback.into();
                match registrant.subscriptions.get_mut(&subscription) {
                    Some(existing) => existing.callback = callback,
                    None => {
                        registrant.subscriptions.insert(
                            subscription.clone(),
                            Subscription {
                                callback,
                                ready: Ready::From(now),
                            },
                        );
                        self.index.entry(subscription).or_default().push(id);
                    }
                }
                return;
            }
            Entry::Remove => {
                if registrant.subscriptions.remove(&subscription).is_some() {
                    self.unindex(&subscription, id);
                }
                return;
            }
            Entry::Enable => Ready::From(now),
            Entry::Disable => Ready::Disabled,
            Entry::Pause(ms) => Ready::From(now.saturating_add_signed(ms.max(0))),
        };
        if let Some(existing) = registrant.subscriptions.get_mut(&subscription) {
            existing.ready = ready;
        }
    }

    fn remove(&mut self, id: RegistrantId) {
        let Some(registrant) = self.registrants.remove(&id) else {
            return;
        };
        self.ids.remove(&registrant.who);
        self.expiries
            .remove(&(self.expiry(registrant.last_seen), id));
        for subscription in registrant.subscriptions.keys() {
            self.unindex(subscription, id);
        }
    }

    fn unindex(&mut self, subscription: &str, id: RegistrantId) {
        if let Some(list) = self.index.get_mut(subscription) {
            list.retain(|&other| other != id);
            if list.is_empty() {
                self.index.remove(subscription);
            }
        }
    }
}
