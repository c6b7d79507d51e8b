//! Property tests: random command sequences on a controlled clock, checked against the
//! invariants of the waiting room.

use proptest::prelude::*;
use stage_ticket::{CancelReason, Event, Outcome, Renewal, RequestId, Ticket, TicketConfig};
use std::collections::{HashMap, HashSet};

const CATEGORIES: [&str; 3] = ["a", "b", "c"];

#[derive(Debug, Clone)]
enum Op {
    Request {
        category: usize,
        requester: u8,
    },
    Release {
        pick: usize,
    },
    Renew {
        pick: usize,
        ms: i64,
    },
    Advance {
        ms: u64,
    },
    Configure {
        category: usize,
        limit: i64,
        close: Option<i64>,
    },
    Cancel {
        pick: usize,
    },
    Forget {
        requester: u8,
    },
    Broadcast {
        category: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize, 0..4u8).prop_map(|(category, requester)| Op::Request { category, requester }),
        3 => any::<usize>().prop_map(|pick| Op::Release { pick }),
        2 => (any::<usize>(), -50..3000i64).prop_map(|(pick, ms)| Op::Renew { pick, ms }),
        3 => (0..1500u64).prop_map(|ms| Op::Advance { ms }),
        1 => (0..3usize, -3..5i64, proptest::option::weighted(0.3, -100..3000i64))
            .prop_map(|(category, limit, close)| Op::Configure { category, limit, close }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        1 => (0..4u8).prop_map(|requester| Op::Forget { requester }),
        1 => (0..3usize).prop_map(|category| Op::Broadcast { category }),
    ]
}

/// What the test knows about one live request.
struct Live {
    category: &'static str,
    /// Which life of the category name: a closed category is gone, holders and all, and a
    /// category configured later under the same name is another one.
    generation: u32,
    requester: u8,
    granted: bool,
    payload: u32,
}

/// The observer: replays the engine's events and checks them.
struct Model {
    engine: Ticket<u8, u32>,
    now: u64,
    live: HashMap<RequestId, Live>,
    ever_granted: HashMap<RequestId, u32>,
    /// Payloads of rejected requests: none may ever be granted.
    rejected: HashSet<u32>,
    last_payload: u32,
    /// Categories that granted a ticket during the current command.
    granting: HashSet<&'static str>,
    last_grant: HashMap<&'static str, RequestId>,
    /// When each category is due to close, and how many times each name has closed.
    close_at: HashMap<&'static str, u64>,
    generation: HashMap<&'static str, u32>,
}

impl Model {
    fn new() -> Self {
        let config = TicketConfig {
            capacity: 40,
            categories: vec![("a".into(), 2), ("b".into(), -2)],
            ..TicketConfig::default()
        };
        Model {
            engine: Ticket::new(config).unwrap_or_else(|e| panic!("{e}")),
            now: 0,
            live: HashMap::new(),
            ever_granted: HashMap::new(),
            rejected: HashSet::new(),
            last_payload: 0,
            granting: HashSet::new(),
            last_grant: HashMap::new(),
            close_at: HashMap::new(),
            generation: HashMap::new(),
        }
    }

    /// Closes, as the engine does before any command, the categories whose time has come.
    fn close_due(&mut self) {
        let now = self.now;
        let due: Vec<_> = self
            .close_at
            .iter()
            .filter(|(_, &at)| at <= now)
            .map(|(&name, _)| name)
            .collect();
        for name in due {
            self.close_at.remove(name);
            *self.generation.entry(name).or_default() += 1;
        }
    }

    fn generation(&self, name: &str) -> u32 {
        self.generation.get(name).copied().unwrap_or(0)
    }

    fn pick(&self, pick: usize) -> Option<RequestId> {
        let mut ids: Vec<_> = self.live.keys().copied().collect();
        ids.sort();
        (!ids.is_empty()).then(|| ids[pick % ids.len()])
    }

    fn apply(&mut self, op: &Op) {
        let now = self.now;
        self.close_due();
        match *op {
            Op::Request {
                category,
                requester,
            } => {
                let name = CATEGORIES[category];
                self.last_payload += 1;
                let payload = self.last_payload;
                let result = self
                    .engine
                    .request(now, requester, name, "s:cb", payload, None);
                match result {
                    Ok(Outcome::Granted(id)) | Ok(Outcome::Waiting(id)) => {
                        let live = Live {
                            category: name,
                            generation: self.generation(name),
                            requester,
                            granted: false,
                            payload,
                        };
                        self.live.insert(id, live);
                    }
                    Ok(Outcome::Rejected(_)) | Err(_) => {
                        self.rejected.insert(payload);
                    }
                }
                if let Ok(Outcome::Granted(id)) = result {
                    self.expect_granted_now(id);
                }
            }
            Op::Release { pick } => self.renew(pick, 0),
            Op::Renew { pick, ms } => self.renew(pick, ms),
            Op::Advance { ms } => {
                self.now += ms;
                self.engine.advance(self.now);
            }
            Op::Configure {
                category,
                limit,
                close,
            } => {
                let name = CATEGORIES[category];
                let result = self.engine.configure(now, name, limit, close);
                prop_assert_ok(result.is_ok());
                self.close_at.remove(name);
                if let Some(ms) = close {
                    self.close_at.insert(name, now.saturating_add_signed(ms));
                    self.close_due();
                }
            }
            Op::Cancel { pick } => {
                if let Some(id) = self.pick(pick) {
                    prop_assert_ok(self.engine.cancel(now, id).is_ok());
                }
            }
            Op::Forget { requester } => {
                // Events of the internal advance come first; count after them.
                self.engine.advance(now);
                self.observe();
                let expected = self
                    .live
                    .values()
                    .filter(|l| l.requester == requester)
                    .count();
                assert_eq!(self.engine.forget(now, &requester), expected);
                self.live.retain(|_, l| l.requester != requester);
            }
            Op::Broadcast { category } => {
                let name = CATEGORIES[category];
                self.engine.advance(now);
                self.observe();
                let generation = self.generation(name);
                let mut members: Vec<u8> = self
                    .live
                    .values()
                    .filter(|l| l.category == name && l.generation == generation)
                    .map(|l| l.requester)
                    .collect();
                members.sort();
                members.dedup();
                if let Ok(count) = self.engine.broadcast(now, name, 0) {
                    assert_eq!(count, members.len());
                }
            }
        }
        self.observe();
        self.check_limits();
    }

    fn renew(&mut self, pick: usize, ms: i64) {
        let Some(id) = self.pick(pick) else { return };
        self.engine.advance(self.now);
        self.observe();
        let Some(live) = self.live.get(&id) else {
            return;
        };
        let was_granted = live.granted;
        let result = self.engine.renew(self.now, id, ms);
        let expected = match (was_granted, ms > 0) {
            (true, true) => Renewal::Renewed,
            (true, false) => Renewal::Released,
            (false, false) => Renewal::Withdrawn,
            (false, true) => Renewal::Ignored,
        };
        assert_eq!(result, Ok(expected));
        if ms <= 0 {
            self.live.remove(&id);
        }
    }

    fn expect_granted_now(&mut self, id: RequestId) {
        let events: Vec<_> = self.engine.drain_events().collect();
        assert!(events
            .iter()
            .any(|e| matches!(e, Event::Granted { request, .. } if *request == id)));
        self.check(events);
    }

    fn observe(&mut self) {
        let events: Vec<_> = self.engine.drain_events().collect();
        self.check(events);
    }

    fn check(&mut self, events: Vec<Event<u8, u32>>) {
        for event in events {
            match event {
                Event::Granted {
                    request,
                    category,
                    requester,
                    payload,
                    ..
                } => {
                    let live = self.live.get_mut(&request);
                    let live =
                        live.unwrap_or_else(|| panic!("grant of an unknown request {request}"));
                    assert!(!live.granted, "doubled grant of {request}");
                    assert_eq!(live.requester, requester);
                    assert_eq!(&*category, live.category);
                    live.granted = true;
                    self.granting.insert(live.category);
                    *self.ever_granted.entry(request).or_default() += 1;
                    let last = self.last_grant.insert(live.category, request);
                    assert!(last < Some(request), "grants out of FIFO order");
                    assert_eq!(live.payload, payload);
                    assert!(
                        !self.rejected.contains(&payload),
                        "a rejected request was granted"
                    );
                }
                Event::Cancelled {
                    requester,
                    requests,
                } => {
                    for cancellation in requests {
                        let live = self.live.remove(&cancellation.request);
                        let live = live.unwrap_or_else(|| panic!("cancel of an unknown request"));
                        assert_eq!(live.requester, requester);
                        match cancellation.reason {
                            CancelReason::Expired => assert!(live.granted),
                            CancelReason::Closed | CancelReason::NoWaitingRoom => {
                                assert!(!live.granted)
                            }
                            CancelReason::Undeliverable => {}
                        }
                    }
                }
                Event::Feedback { .. } | Event::FeedbackTable { .. } | Event::Broadcast { .. } => {}
            }
        }
    }

    /// A category's holders only exceed its limit after the limit was lowered; the waiting room
    /// is empty whenever a ticket is free.
    fn check_limits(&mut self) {
        for name in CATEGORIES {
            if let Some(stats) = self.engine.stats(name) {
                if self.granting.contains(name) {
                    assert!(
                        stats.holders as u64 <= stats.limit.unsigned_abs(),
                        "over the limit"
                    );
                }
                if stats.waiters > 0 {
                    assert!(stats.holders as u64 >= stats.limit.unsigned_abs());
                    assert!(stats.limit > 0);
                }
                let held = self
                    .live
                    .values()
                    .filter(|l| l.category == name && l.granted)
                    .count();
                assert!(held >= stats.holders);
            }
        }
        assert_eq!(self.engine.outstanding(), self.live.len());
        self.granting.clear();
    }

    /// Runs the clock until nothing is due: every hold must end and every waiter be served or
    /// cancelled.
    fn drain(&mut self) {
        while let Some(due) = self.engine.next_due() {
            self.now = self.now.max(due);
            self.engine.advance(self.now);
            self.observe();
            self.check_limits();
        }
        assert!(self.live.is_empty(), "requests left: {}", self.live.len());
        assert_eq!(self.engine.outstanding(), 0);
        assert!(self.ever_granted.values().all(|&n| n == 1));
    }
}

fn prop_assert_ok(ok: bool) {
    assert!(ok, "a valid command was refused");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn waiting_room_invariants(ops in proptest::collection::vec(op(), 1..120)) {
        let mut model = Model::new();
        for op in &ops {
            model.apply(op);
        }
        model.drain();
    }

    /// Without limit changes the number of holders never exceeds the limit.
    #[test]
    fn holders_never_exceed_a_fixed_limit(
        ops in proptest::collection::vec(op().prop_filter("fixed limits", |op| !matches!(op, Op::Configure { .. })), 1..120)
    ) {
        let mut model = Model::new();
        for op in &ops {
            model.apply(op);
            if let Some(stats) = model.engine.stats("a") {
                prop_assert!(stats.holders <= 2);
            }
            if let Some(stats) = model.engine.stats("b") {
                prop_assert!(stats.holders <= 2 && stats.waiters == 0);
            }
        }
        model.drain();
    }
}
