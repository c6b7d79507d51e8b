//! [`Frozen`]: the entries of a ranking as they were when a snapshot began, while the snapshot
//! copies them out in batches and updates go on between the batches.
//!
//! Copy-on-write per entry: before an update changes a slot that the copy has not reached yet,
//! the slot's entry as it was is saved (once); the copy takes the saved entry instead of the
//! live one. Slots added past the end the snapshot began with are not part of it. Only the
//! entries changed while a snapshot is copied are held twice.

use crate::ranking::Entry;
use hashbrown::HashMap;

/// The part of a ranking that a snapshot still has to copy.
#[derive(Debug)]
pub(crate) struct Frozen {
    /// The next slot to copy; the copy ends before `end`.
    next: u32,
    end: u32,
    /// What the slots still to copy held when the snapshot began, for those changed since.
    before: HashMap<u32, Option<Entry>>,
}

/// What a snapshot records besides its entries, as it was when the snapshot began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrozenHead {
    /// The sequence number the next inserted score gets.
    pub(crate) next_seq: u64,
    /// How many IDs (entries) the snapshot holds.
    pub(crate) ids: u64,
}

impl Frozen {
    /// A snapshot of slots `0..end`.
    pub(crate) fn new(end: u32) -> Frozen {
        Frozen {
            next: 0,
            end,
            before: HashMap::new(),
        }
    }

    /// Called before `slot`, which holds `current`, changes: keeps `current` if the copy still
    /// needs it.
    pub(crate) fn before_change(&mut self, slot: u32, current: &Option<Entry>) {
        if (self.next..self.end).contains(&slot) {
            self.before.entry(slot).or_insert_with(|| current.clone());
        }
    }

    /// Gives `f` the entries of the next `count` slots, each the saved one or else the one in
    /// `live` (the ranking's slots now). Returns whether slots remain to copy.
    pub(crate) fn copy(
        &mut self,
        count: u32,
        live: &[Option<Entry>],
        mut f: impl FnMut(&Entry),
    ) -> bool {
        let stop = self.end.min(self.next.saturating_add(count));
        for slot in self.next..stop {
            // Most slots were not changed: no hashing for them while nothing was.
            let saved = if self.before.is_empty() {
                None
            } else {
                self.before.remove(&slot)
            };
            let entry = match &saved {
                Some(was) => was.as_ref(),
                None => live.get(slot as usize).and_then(Option::as_ref),
            };
            if let Some(e) = entry {
                f(e);
            }
        }
        self.next = stop;
        self.next < self.end
    }
}
