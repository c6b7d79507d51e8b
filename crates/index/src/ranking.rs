//! [`Ranking`]: the in-memory state of one index file — its entries (ID, value, scores) and
//! one [`OrderTree`] per tier — and every query and update of the spec on it.
//!
//! Entries live in a slab (`Vec<Option<Entry>>` with a free list); an ID finds its slot
//! through a `hashbrown::HashTable<u32>` that hashes the entry's own ID bytes, so the ID is
//! stored once. Each tier's trees hold `(score, seq) → slot`; `seq` is a per-file insertion
//! counter that makes ties "newest first" and keys unique.
//!
//! Memory per ID is what the service's footprint is made of, so the common case is compact:
//! an entry keeps its ID and value in one allocation and a single score inline, and a tier
//! keeps integer scores in a tree of 24-byte items ([`IntKey`]) apart from string scores
//! (every integer ranks above every string, so the string tree simply follows).

use crate::error::{IndexError, Result};
use crate::frozen::{Frozen, FrozenHead};
use crate::score::{IntKey, Score, SortKey, Tier, TierSel};
use crate::tree::{Item, OrderTree};
use hashbrown::{DefaultHashBuilder, HashTable};
use parking_lot::Mutex;
use std::hash::BuildHasher;

/// Most scores one ID may hold in one tier (`apply_set` matches them in a 64-bit mask).
pub const MAX_SCORES_PER_TIER: usize = 64;
const _: () = assert!(MAX_SCORES_PER_TIER <= 64);

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

/// Insertion sequences stay below this bound ([`Placed`] keeps the tier in two bits).
pub(crate) const MAX_SEQ: u64 = 1 << 62;

/// One score of an entry, placed in a tier: the score, and its sequence and tier in one word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Placed {
    pub(crate) score: Score,
    seq_tier: u64,
}

impl Placed {
    /// `score` in `tier` with insertion sequence `seq` (below [`MAX_SEQ`]).
    pub(crate) fn new(tier: Tier, score: Score, seq: u64) -> Placed {
        debug_assert!(seq < MAX_SEQ);
        Placed {
            score,
            seq_tier: (seq << 2) | tier.slot() as u64,
        }
    }

    /// The tier.
    pub(crate) fn tier(&self) -> Tier {
        Tier::from_slot((self.seq_tier & 3) as usize)
    }

    /// The insertion sequence.
    pub(crate) fn seq(&self) -> u64 {
        self.seq_tier >> 2
    }
}

/// The scores of an entry: the usual single score inline, others in a boxed list.
#[derive(Clone, Debug)]
enum Scores {
    One(Placed),
    Many(Box<[Placed]>),
}

impl Scores {
    fn none() -> Scores {
        Scores::Many(Box::new([]))
    }

    /// The scores of `list`, which is left empty.
    fn take_from(list: &mut Vec<Placed>) -> Scores {
        if list.len() == 1 {
            if let Some(p) = list.pop() {
                return Scores::One(p);
            }
        }
        Scores::Many(list.drain(..).collect())
    }

    /// Moves the scores to the end of `out`.
    fn drain_into(self, out: &mut Vec<Placed>) {
        match self {
            Scores::One(p) => out.push(p),
            Scores::Many(list) => out.extend(list.into_vec()),
        }
    }

    fn from_vec(mut list: Vec<Placed>) -> Scores {
        match (list.pop(), list.is_empty()) {
            (Some(p), true) => Scores::One(p),
            (Some(p), false) => {
                list.push(p);
                Scores::Many(list.into_boxed_slice())
            }
            (None, _) => Scores::Many(Box::new([])),
        }
    }

    fn as_slice(&self) -> &[Placed] {
        match self {
            Scores::One(p) => std::slice::from_ref(p),
            Scores::Many(list) => list,
        }
    }

    fn into_vec(self) -> Vec<Placed> {
        match self {
            Scores::One(p) => vec![p],
            Scores::Many(list) => list.into_vec(),
        }
    }
}

/// One ID with its value and scores; the ID and the value share one allocation.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// The ID's bytes followed by the value's.
    bytes: Box<[u8]>,
    /// The length of the ID (IDs come from checked updates or length-prefixed records).
    id_len: u32,
    has_value: bool,
    scores: Scores,
}

impl Entry {
    /// An entry holding `id`, `value` and `scores`.
    pub(crate) fn new(id: &[u8], value: Option<&[u8]>, scores: Vec<Placed>) -> Entry {
        let mut bytes = Vec::with_capacity(id.len() + value.map_or(0, <[u8]>::len));
        bytes.extend_from_slice(id);
        bytes.extend_from_slice(value.unwrap_or_default());
        Entry {
            bytes: bytes.into_boxed_slice(),
            id_len: id.len() as u32,
            has_value: value.is_some(),
            scores: Scores::from_vec(scores),
        }
    }

    /// The ID.
    pub(crate) fn id(&self) -> &[u8] {
        &self.bytes[..self.id_len as usize]
    }

    /// The stored value, if one was ever set.
    pub(crate) fn value(&self) -> Option<&[u8]> {
        self.has_value.then(|| &self.bytes[self.id_len as usize..])
    }

    /// The scores, in stored order.
    pub(crate) fn scores(&self) -> &[Placed] {
        self.scores.as_slice()
    }

    fn set_value(&mut self, value: &[u8]) {
        let mut bytes = Vec::with_capacity(self.id_len as usize + value.len());
        bytes.extend_from_slice(self.id());
        bytes.extend_from_slice(value);
        self.bytes = bytes.into_boxed_slice();
        self.has_value = true;
    }
}

/// One tier: integer scores and string scores in two trees. Every integer ranks above every
/// string, so positions in the string tree follow those of the integer tree.
#[derive(Debug)]
struct TierTrees {
    ints: OrderTree<IntKey>,
    strs: OrderTree<SortKey>,
}

impl TierTrees {
    fn new() -> TierTrees {
        TierTrees {
            ints: OrderTree::new(),
            strs: OrderTree::new(),
        }
    }

    fn len(&self) -> usize {
        self.ints.len() + self.strs.len()
    }

    fn insert(&mut self, score: &Score, seq: u64, slot: u32) {
        match score {
            Score::Int(i) => self.ints.insert(IntKey::new(*i, seq), slot),
            Score::Str(_) => self.strs.insert(
                SortKey {
                    score: score.clone(),
                    seq,
                },
                slot,
            ),
        };
    }

    fn remove(&mut self, placed: &Placed) {
        let seq = placed.seq();
        match &placed.score {
            Score::Int(i) => self.ints.remove(&IntKey::new(*i, seq)),
            score => self.strs.remove(&SortKey {
                score: score.clone(),
                seq,
            }),
        };
    }

    /// The number of entries with a bigger score than `score`.
    fn above(&self, score: &Score) -> usize {
        match score {
            Score::Int(i) => self.ints.position(&IntKey::head_of(*i)),
            Score::Str(_) => self.ints.len() + self.strs.position(&SortKey::head_of(score)),
        }
    }

    /// The (slot, sequence) of the entries from 0-based position `pos` on, in rank order.
    fn iter_from(&self, pos: usize) -> impl Iterator<Item = (u32, u64)> + '_ {
        let ints = self.ints.iter_from(pos).map(|it| (it.id, it.key.seq()));
        let strs = self
            .strs
            .iter_from(pos.saturating_sub(self.ints.len()))
            .map(|it| (it.id, it.key.seq));
        ints.chain(strs)
    }
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
    tiers: [TierTrees; Tier::COUNT],
    next_seq: u64,
    limits: Limits,
    /// A buffer for `apply_set`, empty between calls.
    scratch: Vec<Placed>,
    /// While a snapshot is copied out ([`Ranking::freeze`]): the entries it still needs as
    /// they were. (Locked only by the copy, which sees the ranking shared; updates own it.)
    frozen: Option<Mutex<Frozen>>,
}

impl Ranking {
    /// An empty ranking checking entries against `limits`.
    pub fn new(limits: Limits) -> Ranking {
        Ranking {
            slots: Vec::new(),
            free: Vec::new(),
            ids: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            tiers: std::array::from_fn(|_| TierTrees::new()),
            next_seq: 0,
            limits,
            scratch: Vec::new(),
            frozen: None,
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

    #[cfg(test)]
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn slot_of(&self, id: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        let slots = &self.slots;
        self.ids
            .find(hash, |&s| {
                slots[s as usize].as_ref().is_some_and(|e| e.id() == id)
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
            Some(s) => {
                self.before_change(s);
                s
            }
            None => self.create(id),
        };
        let Some(entry) = self.slots[slot as usize].as_mut() else {
            return SetRank::Untouched;
        };
        if let Some(v) = &update.value {
            entry.set_value(v);
        }
        // The entry's scores are worked on in a buffer kept between calls: no allocation.
        let mut scores = std::mem::take(&mut self.scratch);
        std::mem::replace(&mut entry.scores, Scores::none()).drain_into(&mut scores);
        let mut result = SetRank::Untouched;
        for (i, (tier, new)) in update.scores.iter().enumerate() {
            if update.scores[i + 1..].iter().any(|(t, _)| t == tier) {
                continue;
            }
            let tree = &mut self.tiers[tier.slot()];
            // Multiset match: an old score equal to a new one stays in place. Bit j of
            // `matched`: new[j] has its old twin (checked lists hold at most 64 scores; past
            // that, in unchecked input, a new score is simply inserted).
            let matchable = new.len().min(64);
            let mut matched = 0u64;
            scores.retain(|p| {
                if p.tier() != *tier {
                    return true;
                }
                let twin = (0..matchable).find(|&j| matched & (1 << j) == 0 && new[j] == p.score);
                match twin {
                    Some(j) => matched |= 1 << j,
                    None => tree.remove(p),
                }
                twin.is_some()
            });
            let mut last_new = None;
            for (j, score) in new.iter().enumerate() {
                if j < matchable && matched & (1 << j) != 0 {
                    continue;
                }
                let seq = self.next_seq;
                self.next_seq += 1;
                tree.insert(score, seq, slot);
                scores.push(Placed::new(*tier, score.clone(), seq));
                last_new = Some(score);
            }
            if report == TierSel::One(*tier) {
                result = match last_new {
                    Some(s) => SetRank::Ranked(Self::head_rank(tree, s)),
                    None => SetRank::Unchanged,
                };
            }
        }
        if let Some(entry) = self.slots[slot as usize].as_mut() {
            entry.scores = Scores::take_from(&mut scores);
        }
        scores.clear();
        self.scratch = scores;
        result
    }

    /// Lets a snapshot being copied keep what `slot` holds before it changes.
    fn before_change(&mut self, slot: u32) {
        if let Some(frozen) = &mut self.frozen {
            frozen
                .get_mut()
                .before_change(slot, &self.slots[slot as usize]);
        }
    }

    /// Begins a snapshot of the entries as they are now, to be copied out by
    /// [`Ranking::copy_frozen`] while updates go on, and ended by [`Ranking::thaw`].
    pub(crate) fn freeze(&mut self) -> FrozenHead {
        self.frozen = Some(Mutex::new(Frozen::new(self.slots.len() as u32)));
        FrozenHead {
            next_seq: self.next_seq,
            ids: self.id_count(),
        }
    }

    /// Gives `f` the entries, as they were at [`Ranking::freeze`], of the next `count` slots;
    /// returns whether slots remain (false when no snapshot is being taken).
    pub(crate) fn copy_frozen(&self, count: u32, f: impl FnMut(&Entry)) -> bool {
        self.frozen
            .as_ref()
            .is_some_and(|frozen| frozen.lock().copy(count, &self.slots, f))
    }

    /// Ends the snapshot begun by [`Ranking::freeze`].
    pub(crate) fn thaw(&mut self) {
        self.frozen = None;
    }

    fn head_rank(tree: &TierTrees, score: &Score) -> u64 {
        tree.above(score) as u64 + 1
    }

    fn create(&mut self, id: &[u8]) -> u32 {
        let entry = Entry::new(id, None, Vec::new());
        let slot = match self.free.pop() {
            Some(s) => {
                self.before_change(s);
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
            hasher.hash_one(slots[s as usize].as_ref().map_or(&[][..], Entry::id))
        });
        slot
    }

    /// `del`: with one tier removes the ID's scores there (false if it had none); with
    /// `TierSel::All` removes the ID entirely (false if it did not exist).
    pub fn del(&mut self, id: &[u8], sel: TierSel) -> bool {
        let Some(slot) = self.slot_of(id) else {
            return false;
        };
        self.before_change(slot);
        let Some(entry) = self.slots[slot as usize].as_mut() else {
            return false;
        };
        let scores = std::mem::replace(&mut entry.scores, Scores::none()).into_vec();
        let (gone, kept): (Vec<Placed>, Vec<Placed>) = scores
            .into_iter()
            .partition(|p| sel == TierSel::All || sel == TierSel::One(p.tier()));
        let removed_any = !gone.is_empty();
        for p in gone {
            self.tiers[p.tier().slot()].remove(&p);
        }
        entry.scores = Scores::from_vec(kept);
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
            .scores()
            .iter()
            .filter(|p| p.tier() == tier)
            .map(|p| (&p.score, Self::head_rank(tree, &p.score)))
            .collect();
        Some(Hit {
            value: entry.value(),
            scores,
        })
    }

    /// `get` on all tiers; `None` for an unknown ID.
    pub fn get_all(&self, id: &[u8]) -> Option<HitAll<'_>> {
        let entry = self.entry(self.slot_of(id)?)?;
        let mut tiers: [Vec<&Score>; Tier::COUNT] = Default::default();
        for p in entry.scores() {
            tiers[p.tier().slot()].push(&p.score);
        }
        Some(HitAll {
            value: entry.value(),
            tiers,
        })
    }

    fn rows(&self, tier: Tier, pos: usize, count: usize) -> Vec<Row<'_>> {
        let trees = &self.tiers[tier.slot()];
        let count = count.max(1).min(trees.len().saturating_sub(pos));
        // Allocated once at its final size: growing it would copy large blocks.
        let mut rows = Vec::with_capacity(count);
        for (i, (slot, seq)) in trees.iter_from(pos).take(count).enumerate() {
            let Some(e) = self.entry(slot) else { continue };
            // Sequences are unique per file: this is the ranked score.
            let Some(placed) = e.scores().iter().find(|p| p.seq() == seq) else {
                continue;
            };
            rows.push(Row {
                rank: (pos + i + 1) as u64,
                id: e.id(),
                value: e.value(),
                score: &placed.score,
            });
        }
        rows
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
        let pos = self.tiers[tier.slot()].above(max);
        self.rows(tier, pos, count)
    }

    /// `range` around an ID: from rank `max(1, head rank of the ID's first score − delta)`,
    /// up to `count` (at least 1) entries; empty if the ID has no score in the tier.
    pub fn range_around(&self, tier: Tier, id: &[u8], delta: i64, count: usize) -> Vec<Row<'_>> {
        let Some(entry) = self.slot_of(id).and_then(|s| self.entry(s)) else {
            return Vec::new();
        };
        let Some(first) = entry.scores().iter().find(|p| p.tier() == tier) else {
            return Vec::new();
        };
        let head = Self::head_rank(&self.tiers[tier.slot()], &first.score) as i64;
        let start = head.saturating_sub(delta).max(1);
        self.for_each(tier, start, count)
    }

    /// Every entry, in slot order.
    #[cfg(test)]
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().flatten()
    }

    /// A ranking rebuilt from snapshot entries and the sequence counter: each tier's tree is
    /// built bottom-up from its sorted items.
    pub(crate) fn from_entries(limits: Limits, entries: Vec<Entry>, next_seq: u64) -> Ranking {
        let mut r = Ranking::new(limits);
        r.next_seq = next_seq;
        r.ids.reserve(entries.len(), |_| 0);
        let mut ints: [Vec<Item<IntKey>>; Tier::COUNT] = Default::default();
        let mut strs: [Vec<Item<SortKey>>; Tier::COUNT] = Default::default();
        r.slots.reserve_exact(entries.len());
        for entry in entries {
            let slot = r.slots.len() as u32;
            for p in entry.scores() {
                let tier = p.tier().slot();
                match &p.score {
                    Score::Int(i) => ints[tier].push(Item {
                        key: IntKey::new(*i, p.seq()),
                        id: slot,
                    }),
                    score => strs[tier].push(Item {
                        key: SortKey {
                            score: score.clone(),
                            seq: p.seq(),
                        },
                        id: slot,
                    }),
                }
            }
            let hash = r.hasher.hash_one(entry.id());
            r.slots.push(Some(entry));
            let (slots, hasher) = (&r.slots, &r.hasher);
            r.ids.insert_unique(hash, slot, |&s| {
                hasher.hash_one(slots[s as usize].as_ref().map_or(&[][..], Entry::id))
            });
        }
        for (tier, (mut ints, mut strs)) in ints.into_iter().zip(strs).enumerate() {
            ints.sort_unstable_by_key(|it| it.key);
            strs.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            r.tiers[tier] = TierTrees {
                ints: OrderTree::from_sorted(ints),
                strs: OrderTree::from_sorted(strs),
            };
        }
        r
    }

    /// Checks the trees and the ID table against the entries (test helper).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let mut per_tier = [0usize; Tier::COUNT];
        for e in self.entries() {
            assert!(self.slot_of(e.id()).is_some());
            for p in e.scores() {
                per_tier[p.tier().slot()] += 1;
            }
        }
        for (t, tree) in self.tiers.iter().enumerate() {
            assert_eq!(tree.ints.check() + tree.strs.check(), per_tier[t]);
        }
        assert_eq!(self.ids.len(), self.entries().count());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// What a snapshot holds of entries: by ID, the value and the scores with their tiers and
    /// sequence numbers.
    type Contents = BTreeMap<Vec<u8>, (Option<Vec<u8>>, Vec<(u8, u64, Score)>)>;

    fn add(contents: &mut Contents, e: &Entry) {
        let scores = e.scores().iter();
        let scores = scores.map(|p| (p.tier().number(), p.seq(), p.score.clone()));
        let fresh = contents.insert(
            e.id().to_vec(),
            (e.value().map(<[u8]>::to_vec), scores.collect()),
        );
        assert!(fresh.is_none(), "an ID copied twice");
    }

    /// An update: `set` of an ID (one score in a tier, maybe a value), or `del` of an ID in a
    /// tier or entirely (which frees its slot for the next new ID).
    #[derive(Clone, Debug)]
    enum Op {
        Set(u8, u8, i64, Option<u8>),
        Del(u8, Option<u8>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..40u8, 1..=4u8, 0..8i64, proptest::option::of(any::<u8>()))
                .prop_map(|(id, t, s, v)| Op::Set(id, t, s, v)),
            1 => (0..40u8, proptest::option::of(1..=4u8)).prop_map(|(id, t)| Op::Del(id, t)),
        ]
    }

    fn apply(r: &mut Ranking, op: &Op) {
        let tier = |t: u8| Tier::new(i64::from(t)).expect("tier");
        match *op {
            Op::Set(id, t, score, value) => {
                let u = Update {
                    value: value.map(|v| vec![v]),
                    scores: vec![(tier(t), vec![Score::Int(score)])],
                };
                r.set(format!("id{id}").as_bytes(), &u, TierSel::All)
                    .expect("set");
            }
            Op::Del(id, t) => {
                let sel = t.map_or(TierSel::All, |t| TierSel::One(tier(t)));
                r.del(format!("id{id}").as_bytes(), sel);
            }
        }
    }

    proptest! {
        /// A frozen state copied in batches, with updates between the batches, is the state as
        /// it was when it was frozen.
        #[test]
        fn a_frozen_copy_is_the_state_at_the_freeze(
            before in proptest::collection::vec(op(), 0..120),
            during in proptest::collection::vec((1..8u32, proptest::collection::vec(op(), 0..6)), 1..40),
        ) {
            let mut r = Ranking::new(Limits::default());
            before.iter().for_each(|op| apply(&mut r, op));
            let mut want = Contents::new();
            r.entries().for_each(|e| add(&mut want, e));
            let head = r.freeze();
            prop_assert_eq!(head, FrozenHead { next_seq: r.next_seq(), ids: want.len() as u64 });
            let mut got = Contents::new();
            let mut steps = during.iter().cycle();
            loop {
                let (batch, ops) = steps.next().expect("cycle");
                if !r.copy_frozen(*batch, |e| add(&mut got, e)) {
                    break;
                }
                ops.iter().for_each(|op| apply(&mut r, op));
            }
            r.thaw();
            prop_assert_eq!(got, want);
            r.check();
            prop_assert!(!r.copy_frozen(1, |_| ()));
        }
    }

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
