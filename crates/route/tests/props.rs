//! Property tests: random registrations, pauses, keep-alives, publications, answers and clock
//! advances, checked against a simple model of eligibility.

use proptest::prelude::*;
use stage_route::{Entry, Event, Published, Route, RouteConfig, Token};
use std::collections::{BTreeMap, BTreeSet, HashMap};

const SUBS: [&str; 3] = ["a", "b", "c"];

#[derive(Debug, Clone)]
enum Op {
    Register { stage: u8, sub: usize, entry: Entry },
    PauseAll { stage: u8, ms: i64 },
    KeepAlive { stage: u8 },
    Unregister { stage: u8 },
    Publish { subs: Vec<usize>, broadcast: bool },
    Accept { pick: usize, candidate: usize },
    ProbeFail { pick: usize, candidate: usize },
    Advance { ms: u64 },
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        4 => (0..3u8).prop_map(|n| Entry::callback(format!("cb{n}"))),
        1 => Just(Entry::callback("")),
        1 => Just(Entry::Remove),
        1 => Just(Entry::Enable),
        1 => Just(Entry::Disable),
        1 => (-100..5000i64).prop_map(Entry::Pause),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..4u8, 0..3usize, entry()).prop_map(|(stage, sub, entry)| Op::Register { stage, sub, entry }),
        1 => (0..4u8, -100..5000i64).prop_map(|(stage, ms)| Op::PauseAll { stage, ms }),
        2 => (0..4u8).prop_map(|stage| Op::KeepAlive { stage }),
        1 => (0..4u8).prop_map(|stage| Op::Unregister { stage }),
        5 => (proptest::collection::vec(0..3usize, 1..3), proptest::bool::weighted(0.2))
            .prop_map(|(subs, broadcast)| Op::Publish { subs, broadcast }),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(pick, candidate)| Op::Accept { pick, candidate }),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(pick, candidate)| Op::ProbeFail { pick, candidate }),
        3 => prop_oneof![0..400u64, 0..40_000u64].prop_map(|ms| Op::Advance { ms }),
    ]
}

/// The model of one registrant: subscription → (callback, ready time or disabled).
struct Stage {
    last_seen: u64,
    paused_until: u64,
    subs: BTreeMap<&'static str, (String, Option<u64>)>,
}

struct Model {
    route: Route<u8, u32>,
    now: u64,
    stages: HashMap<u8, Stage>,
    /// Open unicast publications: number → probed tokens by registrant.
    open: BTreeMap<u32, Vec<(u8, Token)>>,
    /// How many ends (delivery or failure) each unicast publication had.
    ends: HashMap<u32, u32>,
    unicast: Vec<u32>,
    last: u32,
}

impl Model {
    fn new() -> Self {
        Model {
            route: Route::new(RouteConfig::default()),
            now: 0,
            stages: HashMap::new(),
            open: BTreeMap::new(),
            ends: HashMap::new(),
            unicast: Vec::new(),
            last: 0,
        }
    }

    fn expire(&mut self) {
        let now = self.now;
        self.stages.retain(|_, s| s.last_seen + 30_000 > now);
    }

    fn eligible(&self, subs: &[usize]) -> BTreeSet<u8> {
        self.stages
            .iter()
            .filter(|(_, s)| s.paused_until <= self.now)
            .filter(|(_, s)| {
                subs.iter()
                    .any(|&i| matches!(s.subs.get(SUBS[i]), Some((_, Some(at))) if *at <= self.now))
            })
            .map(|(&n, _)| n)
            .collect()
    }

    fn apply(&mut self, op: &Op) {
        self.expire();
        let now = self.now;
        match op {
            Op::Register { stage, sub, entry } => {
                let id = SUBS[*sub];
                assert!(self
                    .route
                    .register(now, *stage, [(id, entry.clone())])
                    .is_ok());
                let model = self.stages.entry(*stage).or_insert(Stage {
                    last_seen: now,
                    paused_until: 0,
                    subs: BTreeMap::new(),
                });
                model.last_seen = now;
                match entry {
                    Entry::Subscribe(callback) => {
                        let slot = model.subs.entry(id).or_insert((String::new(), Some(now)));
                        slot.0 = callback.clone();
                    }
                    Entry::Remove => {
                        model.subs.remove(id);
                    }
                    other => {
                        let ready = match other {
                            Entry::Disable => None,
                            Entry::Pause(ms) => Some(now + (*ms).max(0) as u64),
                            _ => Some(now),
                        };
                        if let Some(slot) = model.subs.get_mut(id) {
                            slot.1 = ready;
                        }
                    }
                }
                if model.subs.is_empty() {
                    self.stages.remove(stage);
                }
            }
            Op::PauseAll { stage, ms } => {
                let result = self.route.pause(now, stage, *ms);
                assert_eq!(result.is_ok(), self.stages.contains_key(stage));
                if let Some(model) = self.stages.get_mut(stage) {
                    model.last_seen = now;
                    model.paused_until = now + (*ms).max(0) as u64;
                }
            }
            Op::KeepAlive { stage } => {
                let result = self.route.keep_alive(now, stage);
                assert_eq!(result.is_ok(), self.stages.contains_key(stage));
                if let Some(model) = self.stages.get_mut(stage) {
                    model.last_seen = now;
                }
            }
            Op::Unregister { stage } => {
                let result = self.route.unregister(now, stage);
                assert_eq!(result.is_ok(), self.stages.remove(stage).is_some());
            }
            Op::Publish { subs, broadcast } => {
                let ids: Vec<&str> = subs.iter().map(|&i| SUBS[i]).collect();
                let key = format!("{}{}!f", if *broadcast { "*" } else { "" }, ids.join(","));
                self.last += 1;
                let number = self.last;
                let expected = self.eligible(subs);
                let published = self.route.publish(now, 9, &key, number);
                // Timeouts found by the publish's own clock step come first.
                let (events, earlier): (Vec<_>, Vec<_>) =
                    self.route.drain_events().partition(|e| match e {
                        Event::Deliver { payload, .. } | Event::Failed { payload, .. } => {
                            *payload == number
                        }
                        Event::Probe { .. } => true,
                    });
                self.count_ends(earlier);
                if !*broadcast {
                    self.unicast.push(number);
                }
                match published {
                    Ok(Published::Delivered(n)) => {
                        assert!(*broadcast);
                        let to: BTreeSet<u8> = events
                            .iter()
                            .filter_map(|e| match e {
                                Event::Deliver { to, payload, .. } if *payload == number => {
                                    Some(*to)
                                }
                                _ => None,
                            })
                            .collect();
                        assert_eq!(to, expected, "broadcast reaches exactly the eligible");
                        assert_eq!(n, expected.len());
                    }
                    Ok(Published::Failed) => {
                        assert!(!*broadcast && expected.is_empty());
                        self.count_ends(events);
                    }
                    Ok(Published::Probing(n)) => {
                        assert!(!*broadcast);
                        let probes: Vec<(u8, Token)> = events
                            .iter()
                            .flat_map(|e| match e {
                                Event::Probe { probes, .. } => probes.clone(),
                                _ => Vec::new(),
                            })
                            .collect();
                        let probed: BTreeSet<u8> = probes.iter().map(|p| p.0).collect();
                        assert_eq!(probed, expected, "probes go to exactly the eligible");
                        assert_eq!(n, probes.len());
                        self.open.insert(number, probes);
                    }
                    Err(e) => panic!("valid key refused: {e}"),
                }
            }
            Op::Accept { pick, candidate } => {
                if let Some(token) = self.pick(*pick, *candidate) {
                    let open = self.open.len();
                    let accepted = self.route.accept(now, &token.to_string()).is_ok();
                    self.observe();
                    if accepted {
                        assert_eq!(self.open.len(), open - 1, "an acceptance delivers");
                    }
                }
            }
            Op::ProbeFail { pick, candidate } => {
                if let Some(token) = self.pick(*pick, *candidate) {
                    let _ = self.route.probe_failed(now, token);
                    self.observe();
                }
            }
            Op::Advance { ms } => {
                self.now += ms;
                self.route.advance(self.now);
                self.expire();
                self.observe();
            }
        }
        assert_eq!(self.route.registrants(), self.stages.len());
        assert_eq!(self.route.open_probes(), self.open.len());
    }

    fn pick(&self, pick: usize, candidate: usize) -> Option<Token> {
        let (_, probes) = self.open.iter().nth(pick % self.open.len().max(1))?;
        probes.get(candidate % probes.len().max(1)).map(|p| p.1)
    }

    fn observe(&mut self) {
        let events: Vec<_> = self.route.drain_events().collect();
        self.count_ends(events);
    }

    fn count_ends(&mut self, events: Vec<Event<u8, u32>>) {
        for event in events {
            match event {
                Event::Deliver { payload, .. } | Event::Failed { payload, .. } => {
                    *self.ends.entry(payload).or_default() += 1;
                    self.open.remove(&payload);
                }
                Event::Probe { .. } => panic!("a probe outside a publish"),
            }
        }
    }

    fn finish(&mut self) {
        self.now += 1_000;
        self.route.advance(self.now);
        self.observe();
        assert!(self.open.is_empty());
        assert_eq!(self.route.open_probes(), 0);
        assert!(
            self.ends.values().all(|&n| n == 1),
            "a publication ended twice"
        );
        assert_eq!(
            self.ends.len(),
            self.unicast.len(),
            "a publication never ended"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_publication_ends_once_and_only_eligible_stages_are_probed(
        ops in proptest::collection::vec(op(), 1..150)
    ) {
        let mut model = Model::new();
        for op in &ops {
            model.apply(op);
        }
        model.finish();
    }
}
