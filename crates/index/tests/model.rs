//! Property tests: every operation of [`Ranking`] against a naive model (sorted vectors).

use proptest::prelude::*;
use stage_index::{Limits, Ranking, Score, SetRank, Tier, TierSel, Update};

/// One model entry: ID, value, scores as (tier, score, seq).
type ModelEntry = (Vec<u8>, Option<Vec<u8>>, Vec<(u8, Score, u64)>);

#[derive(Clone, Debug, Default)]
struct Model {
    /// (id, value, scores as (tier, score, seq)) in creation order.
    entries: Vec<ModelEntry>,
    seq: u64,
}

impl Model {
    /// The tier's order: (score, seq, id) biggest score first, newest first among ties.
    fn tier(&self, t: u8) -> Vec<(Score, u64, Vec<u8>)> {
        let mut v: Vec<_> = self
            .entries
            .iter()
            .flat_map(|(id, _, s)| {
                s.iter()
                    .filter(|x| x.0 == t)
                    .map(move |x| (x.1.clone(), x.2, id.clone()))
            })
            .collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        v
    }
    fn head_rank(&self, t: u8, s: &Score) -> u64 {
        self.tier(t).iter().filter(|x| x.0 > *s).count() as u64 + 1
    }
    fn set(&mut self, id: &[u8], u: &Update, report: TierSel) -> SetRank {
        let idx = match self.entries.iter().position(|e| e.0 == id) {
            Some(i) => i,
            None => {
                self.entries.push((id.to_vec(), None, Vec::new()));
                self.entries.len() - 1
            }
        };
        if let Some(v) = &u.value {
            self.entries[idx].1 = Some(v.clone());
        }
        let mut result = SetRank::Untouched;
        for (i, (tier, new)) in u.scores.iter().enumerate() {
            if u.scores[i + 1..].iter().any(|(t, _)| t == tier) {
                continue;
            }
            let t = tier.number();
            let mut unmatched: Vec<Option<Score>> = new.iter().cloned().map(Some).collect();
            let old = std::mem::take(&mut self.entries[idx].2);
            let mut kept = Vec::new();
            for p in old {
                if p.0 != t {
                    kept.push(p);
                } else if let Some(u) = unmatched.iter_mut().find(|u| u.as_ref() == Some(&p.1)) {
                    *u = None;
                    kept.push(p);
                }
            }
            let mut last = None;
            for s in unmatched.into_iter().flatten() {
                kept.push((t, s.clone(), self.seq));
                self.seq += 1;
                last = Some(s);
            }
            self.entries[idx].2 = kept;
            if report == TierSel::One(*tier) {
                result = match last {
                    Some(s) => SetRank::Ranked(self.head_rank(t, &s)),
                    None => SetRank::Unchanged,
                };
            }
        }
        result
    }
    fn del(&mut self, id: &[u8], sel: TierSel) -> bool {
        let Some(i) = self.entries.iter().position(|e| e.0 == id) else {
            return false;
        };
        match sel {
            TierSel::All => {
                self.entries.remove(i);
                true
            }
            TierSel::One(t) => {
                let before = self.entries[i].2.len();
                self.entries[i].2.retain(|p| p.0 != t.number());
                before != self.entries[i].2.len()
            }
        }
    }
    /// Rows (rank, id, score) from 0-based `pos`, `count` (at least 1) of them.
    fn rows(&self, t: u8, pos: usize, count: usize) -> Vec<(u64, Vec<u8>, Score)> {
        self.tier(t)
            .into_iter()
            .enumerate()
            .skip(pos)
            .take(count.max(1))
            .map(|(i, (s, _, id))| (i as u64 + 1, id, s))
            .collect()
    }
}

fn rows_of(rows: Vec<stage_index::Row<'_>>) -> Vec<(u64, Vec<u8>, Score)> {
    rows.into_iter()
        .map(|r| (r.rank, r.id.to_vec(), r.score.clone()))
        .collect()
}

#[derive(Clone, Debug)]
enum Op {
    Set(u8, Option<u8>, Vec<(u8, Vec<Score>)>, u8),
    Del(u8, u8),
}

fn score() -> impl Strategy<Value = Score> {
    prop_oneof![
        4 => (-20i64..20).prop_map(Score::Int),
        1 => "[a-c]{0,2}".prop_map(Score::str),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            0u8..24,
            prop::option::of(any::<u8>()),
            prop::collection::vec((1u8..=4, prop::collection::vec(score(), 0..3)), 0..3),
            0u8..=4
        )
            .prop_map(|(id, v, s, r)| Op::Set(id, v, s, r)),
        1 => (0u8..24, 0u8..=4).prop_map(|(id, t)| Op::Del(id, t)),
    ]
}

fn sel(n: u8) -> TierSel {
    match Tier::new(i64::from(n)) {
        Ok(t) => TierSel::One(t),
        Err(_) => TierSel::All,
    }
}

fn id(n: u8) -> Vec<u8> {
    format!("id{n}").into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn ranking_matches_the_model(ops in prop::collection::vec(op(), 1..120), probe in score(),
                                 start in -1i64..40, count in 0usize..8, delta in -3i64..6) {
        let mut r = Ranking::new(Limits::default());
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Set(n, v, scores, rep) => {
                    let u = Update {
                        value: v.map(|b| vec![b]),
                        scores: scores
                            .into_iter()
                            .filter_map(|(t, s)| Some((Tier::new(i64::from(t)).ok()?, s)))
                            .collect(),
                    };
                    let got = r.set(&id(n), &u, sel(rep));
                    prop_assert_eq!(got.ok(), Some(m.set(&id(n), &u, sel(rep))));
                }
                Op::Del(n, t) => prop_assert_eq!(r.del(&id(n), sel(t)), m.del(&id(n), sel(t))),
            }
        }
        prop_assert_eq!(r.total(TierSel::All), m.entries.len() as u64);
        for tier in Tier::all() {
            let t = tier.number();
            let order = m.tier(t);
            prop_assert_eq!(r.total(TierSel::One(tier)), order.len() as u64);
            // forEach over everything, and from `start`.
            prop_assert_eq!(rows_of(r.for_each(tier, 1, order.len().max(1))), m.rows(t, 0, order.len()));
            let want = if start < 1 || start as usize > order.len() { Vec::new() } else { m.rows(t, start as usize - 1, count) };
            prop_assert_eq!(rows_of(r.for_each(tier, start, count)), want);
            // range by score: from the first entry not above `probe`.
            let pos = order.iter().position(|x| x.0 <= probe).unwrap_or(order.len());
            prop_assert_eq!(rows_of(r.range_by_score(tier, &probe, count)), m.rows(t, pos, count));
            for (eid, value, scores) in &m.entries {
                // get: scores in stored order with their tie-group head rank.
                let hit = r.get(eid, tier);
                prop_assert!(hit.is_some());
                if let Some(hit) = hit {
                    prop_assert_eq!(hit.value, value.as_deref());
                    let want: Vec<(Score, u64)> = scores.iter().filter(|p| p.0 == t)
                        .map(|p| (p.1.clone(), m.head_rank(t, &p.1))).collect();
                    let got: Vec<(Score, u64)> = hit.scores.iter().map(|(s, d)| ((*s).clone(), *d)).collect();
                    prop_assert_eq!(got, want);
                }
                // range around the ID's first score in the tier.
                let want = match scores.iter().find(|p| p.0 == t) {
                    None => Vec::new(),
                    Some(p) => {
                        let s = (m.head_rank(t, &p.1) as i64 - delta).max(1) as usize;
                        if s > order.len() { Vec::new() } else { m.rows(t, s - 1, count) }
                    }
                };
                prop_assert_eq!(rows_of(r.range_around(tier, eid, delta, count)), want);
            }
        }
        for (eid, _, scores) in &m.entries {
            let all = r.get_all(eid);
            prop_assert!(all.is_some());
            if let Some(all) = all {
                for tier in Tier::all() {
                    let want: Vec<&Score> = scores.iter().filter(|p| p.0 == tier.number()).map(|p| &p.1).collect();
                    prop_assert_eq!(&all.tiers[usize::from(tier.number() - 1)], &want);
                }
            }
        }
        prop_assert!(r.get(b"absent", Tier::new(1).map_err(|e| TestCaseError::fail(e.to_string()))?).is_none());
    }
}

#[test]
fn limits_are_typed_errors() {
    let mut r = Ranking::new(Limits {
        max_id_bytes: 4,
        max_value_bytes: 2,
    });
    let t1 = Tier::new(1).expect("tier");
    let e = |u: Update, id: &[u8]| r.check_update(id, &u).err().map(|e| e.to_string());
    assert!(e(Update::default(), b"12345").is_some_and(|m| m.contains("max_id_bytes")));
    assert!(e(Update::default(), b"").is_some());
    assert!(e(Update::default(), b"a\0").is_some());
    assert!(e(
        Update {
            value: Some(vec![0; 3]),
            scores: vec![]
        },
        b"a"
    )
    .is_some_and(|m| m.contains("exceeds")));
    assert!(e(
        Update {
            value: None,
            scores: vec![(t1, vec![Score::str("abcde")])]
        },
        b"a"
    )
    .is_some());
    assert!(e(
        Update {
            value: None,
            scores: vec![(t1, vec![Score::Int(1); 65])]
        },
        b"a"
    )
    .is_some());
    assert!(r.set(b"12345", &Update::default(), TierSel::All).is_err());
    assert_eq!(r.total(TierSel::All), 0, "a refused set creates no ID");
    assert!(Tier::new(5).is_err_and(|e| e.to_string().contains("no such tier")));
}
