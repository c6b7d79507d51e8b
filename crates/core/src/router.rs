//! The in-process router: stage ids to instances, with the delivery policy of `messaging.md` §10
//! for the instances of one node (rotation, all, same node) and reply addresses.

use crate::address::Scope;
use crate::mailbox::{Mailbox, PostError};
use crate::message::{Message, ReplyAddress};
use arc_swap::ArcSwap;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Clone)]
struct Instance {
    address: ReplyAddress,
    mailbox: Arc<dyn Mailbox>,
}

#[derive(Clone, Default)]
struct Group {
    instances: Vec<Instance>,
    /// The rotation of `Scope::One`, shared by every version of the table.
    next: Arc<AtomicUsize>,
}

/// One version of the routing table.
#[derive(Clone, Default)]
struct Table {
    groups: FxHashMap<String, Group>,
    addresses: FxHashMap<ReplyAddress, Arc<dyn Mailbox>>,
}

/// The routing table of this node. It is read for every message by every thread, and changes
/// only when an instance starts or stops: readers take the current version without a lock (no
/// write to memory another thread reads), a change stores a new version. Its maps hash with
/// the fast non-keyed Fx hash: the keys are the config's stage ids and the addresses the node
/// makes, never chosen by a sender.
#[derive(Default)]
pub struct Router {
    table: ArcSwap<Table>,
    /// Serialises changes, so that none is lost.
    changing: Mutex<()>,
}

impl Router {
    /// An empty routing table.
    pub fn new() -> Router {
        Router::default()
    }

    /// Applies `change` to a copy of the table and makes the copy current.
    fn change(&self, change: impl FnOnce(&mut Table)) {
        let _changing = self.changing.lock();
        let mut table = Table::clone(&self.table.load());
        change(&mut table);
        self.table.store(Arc::new(table));
    }

    /// Makes an instance reachable by its reply address and, when it has one, by its stage id.
    pub fn register(&self, id: Option<&str>, address: ReplyAddress, mailbox: Arc<dyn Mailbox>) {
        self.change(|table| {
            table.addresses.insert(address.clone(), mailbox.clone());
            if let Some(id) = id {
                table
                    .groups
                    .entry(id.to_string())
                    .or_default()
                    .instances
                    .push(Instance { address, mailbox });
            }
        });
    }

    /// Removes an instance (its address and its stage-id entry).
    pub fn unregister(&self, address: &str) {
        self.change(|table| {
            table.addresses.remove(address);
            for group in table.groups.values_mut() {
                group.instances.retain(|i| &*i.address != address);
            }
            table.groups.retain(|_, g| !g.instances.is_empty());
        });
    }

    /// Delivers to the instances of `ids` (a comma-separated list) that `scope` selects.
    /// Returns how many instances received the message; 0 means nobody was eligible.
    pub fn send(&self, ids: &str, scope: Scope, message: Message) -> Result<usize, PostError> {
        let table = self.table.load();
        let mut targets: SmallVec<[&Arc<dyn Mailbox>; 4]> = SmallVec::new();
        for id in ids.split(',') {
            let Some(group) = table.groups.get(id) else {
                continue;
            };
            match (scope, group.instances.as_slice()) {
                (Scope::All, instances) => targets.extend(instances.iter().map(|i| &i.mailbox)),
                // Every instance of this router is on this node; none came over the network.
                (Scope::Remote, _) => {}
                (Scope::One | Scope::Local, [only]) => targets.push(&only.mailbox),
                (Scope::One | Scope::Local, instances) => {
                    let n = group.next.fetch_add(1, Ordering::Relaxed);
                    targets.push(&instances[n % instances.len()].mailbox);
                }
            }
        }
        let count = targets.len();
        if let Some((last, rest)) = targets.split_last() {
            for mailbox in rest {
                mailbox.post(message.clone())?;
            }
            last.post(message)?;
        }
        Ok(count)
    }

    /// Delivers straight to the instance with this reply address; `Ok(false)` when unknown.
    pub fn send_to(&self, address: &str, message: Message) -> Result<bool, PostError> {
        match self.table.load().addresses.get(address) {
            Some(mailbox) => mailbox.post(message).map(|()| true),
            None => Ok(false),
        }
    }

    /// Whether some instance has this stage id.
    pub fn knows(&self, id: &str) -> bool {
        self.table.load().groups.contains_key(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Inbox(Mutex<Vec<String>>);

    impl Mailbox for Inbox {
        fn post(&self, message: Message) -> Result<(), PostError> {
            self.0.lock().push(message.key.to_string());
            Ok(())
        }
    }

    fn two_instances() -> (Router, Arc<Inbox>, Arc<Inbox>) {
        let router = Router::new();
        let (a, b) = (Arc::new(Inbox::default()), Arc::new(Inbox::default()));
        router.register(Some("svc"), "a".into(), a.clone());
        router.register(Some("svc"), "b".into(), b.clone());
        (router, a, b)
    }

    fn msg() -> Message {
        Message::new(crate::PayloadKey::new(Some("svc"), "m"), Default::default())
    }

    #[test]
    fn one_rotates_and_all_reaches_every_instance() {
        let (router, a, b) = two_instances();
        for _ in 0..4 {
            assert_eq!(router.send("svc", Scope::One, msg()), Ok(1));
        }
        assert_eq!((a.0.lock().len(), b.0.lock().len()), (2, 2));
        assert_eq!(router.send("svc", Scope::All, msg()), Ok(2));
        assert_eq!((a.0.lock().len(), b.0.lock().len()), (3, 3));
    }

    #[test]
    fn remote_scope_never_reaches_a_local_instance_and_unknown_ids_reach_nobody() {
        let (router, a, b) = two_instances();
        assert_eq!(router.send("svc", Scope::Remote, msg()), Ok(0));
        assert_eq!(router.send("nobody", Scope::One, msg()), Ok(0));
        assert_eq!(a.0.lock().len() + b.0.lock().len(), 0);
    }

    #[test]
    fn comma_lists_and_addresses() {
        let (router, a, b) = two_instances();
        let c = Arc::new(Inbox::default());
        router.register(Some("other"), "c".into(), c.clone());
        assert_eq!(router.send("svc,other", Scope::One, msg()), Ok(2));
        assert_eq!(c.0.lock().len(), 1);
        assert_eq!(router.send_to("b", msg()), Ok(true));
        assert_eq!(router.send_to("zz", msg()), Ok(false));
        router.unregister("a");
        for _ in 0..3 {
            router.send("svc", Scope::One, msg()).unwrap();
        }
        assert_eq!(
            a.0.lock().len(),
            1,
            "an unregistered instance gets nothing more"
        );
        assert!(b.0.lock().len() >= 4);
    }
}
