//! [`Ranking`]: the in-memory state of one index file — its entries (ID, value, scores) and
//! one [`OrderTree`] per tier — and every query and update of the spec on it.
//!
//! Entries live in a slab (`Vec<Option<Entry>>` with a free list); an ID finds its slot
//! through a `hashbrown::HashTable<u32>` that hashes the entry's own ID bytes, so the ID is
//! stored once. Each tier's tree holds `(score, seq) → slot`; `seq` is a per-file insertion
//! counter that makes ties "newest first" and keys unique.

use crate::error::{IndexError, Result};
use crate::score::{Score, SortKey, Tier, TierSel};
use crate::tree::{Item, OrderTree};
use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

/// Most scores one ID may hold in one tier.
pub const MAX_SCORES_PER_TIER: usize = 64;

/// The size limits of entries (decision 41).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest ID in bytes (also the longest string score).
    pub max_id_bytes: usize,
    /// Longest stored value in bytes.
    pub max_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_id_bytes: 64,
            max_value_bytes: 4096,
        }
    }
}

/// What a `set` changes for one ID.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// The new stored value; `None` keeps the old one.
    pub value: Option<Vec<u8>>,
    /// Per tier, the full new list of scores (an empty list clears the tier). Tiers not
    /// listed keep their scores; a tier listed twice takes the later list.
    pub scores: Vec<(Tier, Vec<Score>)>,
}

/// The "distance" a `set` reports for the request's tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetRank {
    /// The 1-based rank (tie-group head) of the last newly inserted score.
    Ranked(u64),
    /// The tier was set but nothing was inserted (unchanged or cleared): reply `0`.
    Unchanged,
    /// The request did not touch the tier: reply `-1`.
    Untouched,
}

impl SetRank {
    /// The number the spec replies: the rank, `0` or `-1`.
    pub fn as_i64(self) -> i64 {
        match self {
            SetRank::Ranked(r) => r as i64,
            SetRank::Unchanged => 0,
            SetRank::Untouched => -1,
        }
    }
}

/// One score of an entry, placed in a tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Placed {
    pub(crate) tier: Tier,
    pub(crate) score: Score,
    pub(crate) seq: u64,
}

/// One ID with its value and scores.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) id: Box<[u8]>,
    pub(crate) value: Option<Box<[u8]>>,
    pub(crate) scores: Box<[Placed]>,
}

/// The result of `get` on one tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit<'a> {
    /// The stored value, if one was ever set.
    pub value: Option<&'a [u8]>,
    /// The ID's scores in the tier, in stored order, each with the 1-based rank of its tie
    /// group's head (competition ranking).
    pub scores: Vec<(&'a Score, u64)>,
}

/// The result of `get` on all tiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HitAll<'a> {
    /// The stored value, if one was ever set.
    pub value: Option<&'a [u8]>,
    /// Per tier (index 0 = tier 1) the ID's scores in stored order.
    pub tiers: [Vec<&'a Score>; Tier::COUNT],
}

/// One entry of a `forEach` or `range` answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row<'a> {
    /// The 1-based position in the tier (ties get distinct positions).
    pub rank: u64,
    /// The ID.
    pub id: &'a [u8],
    /// The stored value, if any.
    pub value: Option<&'a [u8]>,
    /// The score at this position.
    pub score: &'a Score,
}

/// The in-memory state of one index file.
#[derive(Debug)]
pub struct Ranking {
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    ids: HashTable<u32>,
    hasher: DefaultHashBuilder,
    tiers: [OrderTree; Tier::COUNT],
    next_seq: u64,
    limits: Limits,
}

impl Ranking {
    /// An empty ranking checking entries against `limits`.
    pub fn new(limits: Limits) -> Ranking {
        Ranking {
            slots: Vec::new(),
            free: Vec::new(),
            ids: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            tiers: std::array::from_fn(|_| OrderTree::new()),
            next_seq: 0,
            limits,
        }
    }

    /// The limits this ranking checks.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The number of IDs.
    pub fn id_count(&self) -> u64 {
        self.ids.len() as u64
    }

    /// The number of scores ranked in `tier`.
    pub fn tier_len(&self, tier: Tier) -> u64 {
        self.tiers[tier.slot()].len() as u64
    }

    /// `total`: the number of IDs (`TierSel::All`) or of score entries in one tier.
    pub fn total(&self, sel: TierSel) -> u64 {
        match sel {
            TierSel::All => self.id_count(),
            TierSel::One(t) => self.tier_len(t),
        }
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn slot_of(&self, id: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        let slots = &self.slots;
        self.ids
            .find(hash, |&s| {
                slots[s as usize].as_ref().is_some_and(|e| &*e.id == id)
            })
            .copied()
    }

    fn entry(&self, slot: u32) -> Option<&Entry> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    /// Checks an ID against the limits: non-empty, no NUL, at most `max_id_bytes`.
    pub fn check_id(&self, id: &[u8]) -> Result<()> {
        let reason = if id.is_empty() {
            "empty"
        } else if id.len() > self.limits.max_id_bytes {
            "longer than max_id_bytes"
        } else if id.contains(&0) {
            "holds a NUL byte"
        } else {
            return Ok(());
        };
        Err(IndexError::InvalidId {
            len: id.len(),
            reason,
        })
    }

    /// Checks a whole `set` against the limits without changing anything.
    pub fn check_update(&self, id: &[u8], update: &Update) -> Result<()> {
        self.check_id(id)?;
        if let Some(v) = &update.value {
            if v.len() > self.limits.max_value_bytes {
                return Err(IndexError::ValueTooLong {
                    len: v.len(),
                    max: self.limits.max_value_bytes,
                });
            }
        }
        for (_, scores) in &update.scores {
            if scores.len() > MAX_SCORES_PER_TIER {
                return Err(IndexError::TooManyScores {
                    count: scores.len(),
                    max: MAX_SCORES_PER_TIER,
                });
            }
            for s in scores {
                if let Score::Str(b) = s {
                    if b.len() > self.limits.max_id_bytes {
                        return Err(IndexError::ScoreTooLong {
                            len: b.len(),
                            max: self.limits.max_id_bytes,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// `set` without persistence: checks the limits, then applies the update and reports the
    /// rank in `report` (`TierSel::All` → [`SetRank::Untouched`]).
    pub fn set(&mut self, id: &[u8], update: &Update, report: TierSel) -> Result<SetRank> {
        self.check_update(id, update)?;
        Ok(self.apply_set(id, update, report))
    }

    /// Applies an already checked update (also used when replaying the log).
    pub(crate) fn apply_set(&mut self, id: &[u8], update: &Update, report: TierSel) -> SetRank {
        let slot = match self.slot_of(id) {
            Some(s) => s,
            None => self.create(id),
        };
        let Some(entry) = self.slots[slot as usize].as_mut() else {
            return SetRank::Untouched;
        };
        if let Some(v) = &update.value {
            entry.value = Some(v.as_slice().into());
        }
        let mut scores: Vec<Placed> = std::mem::take(&mut entry.scores).into_vec();
        let mut result = SetRank::Untouched;
        for (i, (tier, new)) in update.scores.iter().enumerate() {
            if update.scores[i + 1..].iter().any(|(t, _)| t == tier) {
                continue;
            }
            let tree = &mut self.tiers[tier.slot()];
            // Multiset match: an old score equal to a new one stays in place.
            let mut unmatched: Vec<Option<&Score>> = new.iter().map(Some).collect();
            let mut kept = Vec::with_capacity(scores.len());
            for p in scores.drain(..) {
                if p.tier != *tier {
                    kept.push(p);
                    continue;
                }
                match unmatched.iter_mut().find(|u| **u == Some(&p.score)) {
                    Some(u) => {
                        *u = None;
                        kept.push(p);
                    }
                    None => {
                        tree.remove(&SortKey {
                            score: p.score,
                            seq: p.seq,
                        });
                    }
                }
            }
            let mut last_new = None;
            for score in unmatched.into_iter().flatten() {
                let seq = self.next_seq;
                self.next_seq += 1;
                tree.insert(
                    SortKey {
                        score: score.clone(),
                        seq,
                    },
                    slot,
                );
                kept.push(Placed {
                    tier: *tier,
                    score: score.clone(),
                    seq,
                });
                last_new = Some(score);
            }
            scores = kept;
            if report == TierSel::One(*tier) {
                result = match last_new {
                    Some(s) => SetRank::Ranked(Self::head_rank(tree, s)),
                    None => SetRank::Unchanged,
                };
            }
        }
        if let Some(entry) = self.slots[slot as usize].as_mut() {
            entry.scores = scores.into_boxed_slice();
        }
        result
    }

    fn head_rank(tree: &OrderTree, score: &Score) -> u64 {
        tree.position(&SortKey::head_of(score)) as u64 + 1
    }

    fn create(&mut self, id: &[u8]) -> u32 {
        let entry = Entry {
            id: id.into(),
            value: None,
            scores: Box::new([]),
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(entry);
                s
            }
            None => {
                self.slots.push(Some(entry));
                (self.slots.len() - 1) as u32
            }
        };
        let hash = self.hasher.hash_one(id);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.ids.insert_unique(hash, slot, |&s| {
            hasher.hash_one(slots[s as usize].as_ref().map_or(&[][..], |e| &e.id[..]))
        });
        slot
    }

    /// `del`: with one tier removes the ID's scores there (false if it had none); with
    /// `TierSel::All` removes the ID entirely (false if it did not exist).
    pub fn del(&mut self, id: &[u8], sel: TierSel) -> bool {
        let Some(slot) = self.slot_of(id) else {
            return false;
        };
        let Some(entry) = self.slots[slot as usize].as_mut() else {
            return false;
        };
        let scores = std::mem::take(&mut entry.scores).into_vec();
        let (gone, kept): (Vec<Placed>, Vec<Placed>) = scores
            .into_iter()
            .partition(|p| sel == TierSel::All || sel == TierSel::One(p.tier));
        let removed_any = !gone.is_empty();
        for p in gone {
            self.tiers[p.tier.slot()].remove(&SortKey {
                score: p.score,
                seq: p.seq,
            });
        }
        entry.scores = kept.into_boxed_slice();
        if sel != TierSel::All {
            return removed_any;
        }
        let hash = self.hasher.hash_one(id);
        if let Ok(found) = self.ids.find_entry(hash, |&s| s == slot) {
            found.remove();
        }
        self.slots[slot as usize] = None;
        self.free.push(slot);
        true
    }

    /// `get` on one tier; `None` for an unknown ID.
    pub fn get(&self, id: &[u8], tier: Tier) -> Option<Hit<'_>> {
        let entry = self.entry(self.slot_of(id)?)?;
        let tree = &self.tiers[tier.slot()];
        let scores = entry
            .scores
            .iter()
            .filter(|p| p.tier == tier)
            .map(|p| (&p.score, Self::head_rank(tree, &p.score)))
            .collect();
        Some(Hit {
            value: entry.value.as_deref(),
            scores,
        })
    }

    /// `get` on all tiers; `None` for an unknown ID.
    pub fn get_all(&self, id: &[u8]) -> Option<HitAll<'_>> {
        let entry = self.entry(self.slot_of(id)?)?;
        let mut tiers: [Vec<&Score>; Tier::COUNT] = Default::default();
        for p in entry.scores.iter() {
            tiers[p.tier.slot()].push(&p.score);
        }
        Some(HitAll {
            value: entry.value.as_deref(),
            tiers,
        })
    }

    fn rows(&self, tier: Tier, pos: usize, count: usize) -> Vec<Row<'_>> {
        self.tiers[tier.slot()]
            .iter_from(pos)
            .take(count.max(1))
            .enumerate()
            .filter_map(|(i, item)| {
                let e = self.entry(item.id)?;
                Some(Row {
                    rank: (pos + i + 1) as u64,
                    id: &e.id,
                    value: e.value.as_deref(),
                    score: &item.key.score,
                })
            })
            .collect()
    }

    /// `forEach`: up to `count` (at least 1) entries from 1-based rank `start` on; empty when
    /// `start` is below 1 or past the end.
    pub fn for_each(&self, tier: Tier, start: i64, count: usize) -> Vec<Row<'_>> {
        if start < 1 || start as u64 > self.tier_len(tier) {
            return Vec::new();
        }
        self.rows(tier, (start - 1) as usize, count)
    }

    /// `range` by score: up to `count` (at least 1) entries from the first whose score is not
    /// above `max`.
    pub fn range_by_score(&self, tier: Tier, max: &Score, count: usize) -> Vec<Row<'_>> {
        let pos = self.tiers[tier.slot()].position(&SortKey::head_of(max));
        self.rows(tier, pos, count)
    }

    /// `range` around an ID: from rank `max(1, head rank of the ID's first score − delta)`,
    /// up to `count` (at least 1) entries; empty if the ID has no score in the tier.
    pub fn range_around(&self, tier: Tier, id: &[u8], delta: i64, count: usize) -> Vec<Row<'_>> {
        let Some(entry) = self.slot_of(id).and_then(|s| self.entry(s)) else {
            return Vec::new();
        };
        let Some(first) = entry.scores.iter().find(|p| p.tier == tier) else {
            return Vec::new();
        };
        let head = Self::head_rank(&self.tiers[tier.slot()], &first.score) as i64;
        let start = head.saturating_sub(delta).max(1);
        self.for_each(tier, start, count)
    }

    /// Every entry with its slot-independent contents (for snapshots), in slot order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().flatten()
    }

    /// A ranking rebuilt from snapshot entries and the sequence counter: each tier's tree is
    /// built bottom-up from its sorted items.
    pub(crate) fn from_entries(limits: Limits, entries: Vec<Entry>, next_seq: u64) -> Ranking {
        let mut r = Ranking::new(limits);
        r.next_seq = next_seq;
        r.ids.reserve(entries.len(), |_| 0);
        let mut items: [Vec<Item>; Tier::COUNT] = Default::default();
        r.slots.reserve_exact(entries.len());
        for entry in entries {
            let slot = r.slots.len() as u32;
            for p in entry.scores.iter() {
                items[p.tier.slot()].push(Item {
                    key: SortKey {
                        score: p.score.clone(),
                        seq: p.seq,
                    },
                    id: slot,
                });
            }
            let hash = r.hasher.hash_one(&entry.id[..]);
            r.slots.push(Some(entry));
            let (slots, hasher) = (&r.slots, &r.hasher);
            r.ids.insert_unique(hash, slot, |&s| {
                hasher.hash_one(slots[s as usize].as_ref().map_or(&[][..], |e| &e.id[..]))
            });
        }
        for (tier, mut list) in items.into_iter().enumerate() {
            list.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            r.tiers[tier] = OrderTree::from_sorted(list);
        }
        r
    }

    /// Checks the trees and the ID table against the entries (test helper).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let mut per_tier = [0usize; Tier::COUNT];
        for e in self.entries() {
            assert!(self.slot_of(&e.id).is_some());
            for p in e.scores.iter() {
                per_tier[p.tier.slot()] += 1;
            }
        }
        for (t, tree) in self.tiers.iter().enumerate() {
            assert_eq!(tree.check(), per_tier[t]);
        }
        assert_eq!(self.ids.len(), self.entries().count());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churn_keeps_trees_and_ids_consistent_and_rebuilds_equal() {
        let mut r = Ranking::new(Limits::default());
        let t = |n| Tier::new(n).expect("tier");
        let mut x: u64 = 88172645463325252;
        for n in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = format!("k{}", x % 3000);
            if n % 5 == 0 {
                let sel = if n % 10 == 0 {
                    TierSel::All
                } else {
                    TierSel::One(t(2))
                };
                r.del(id.as_bytes(), sel);
            } else {
                let u = Update {
                    value: Some(vec![n as u8]),
                    scores: vec![(t(1 + (x % 4) as i64), vec![Score::Int((x % 100) as i64)])],
                };
                r.set(id.as_bytes(), &u, TierSel::One(t(1))).expect("set");
            }
        }
        r.check();
        let rebuilt =
            Ranking::from_entries(r.limits(), r.entries().cloned().collect(), r.next_seq());
        rebuilt.check();
        for tier in Tier::all() {
            let n = r.tier_len(tier) as usize;
            assert_eq!(r.for_each(tier, 1, n), rebuilt.for_each(tier, 1, n));
        }
    }
}
