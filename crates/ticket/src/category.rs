//! [`Category`]: one limit with its holders and its FIFO waiting room.

use crate::id::RequestId;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The engine's private handle of a category; a category re-created under the same name after
/// closing gets a new one, so late releases of the old one never touch the new one.
pub(crate) type CategoryId = u64;

/// A category's state. Request ids grow with arrival, so id order is arrival order and the
/// first waiter is the oldest.
pub(crate) struct Category {
    pub name: Arc<str>,
    /// `> 0` queues, `< 0` rejects when full, `0` rejects always; `|limit|` tickets at most.
    pub limit: i64,
    /// When the category closes (milliseconds on the host's clock); `None` = never.
    pub close_at: Option<u64>,
    /// Closed categories only linger until their last holder is gone.
    pub closed: bool,
    pub holders: BTreeSet<RequestId>,
    pub waiters: BTreeSet<RequestId>,
}

impl Category {
    pub fn new(name: Arc<str>, limit: i64, close_at: Option<u64>) -> Self {
        Category {
            name,
            limit,
            close_at,
            closed: false,
            holders: BTreeSet::new(),
            waiters: BTreeSet::new(),
        }
    }

    /// Whether a ticket can be handed out now: tickets in circulation are counted, so a lowered
    /// limit takes effect as holders leave (ticket.md R12).
    pub fn has_free(&self) -> bool {
        !self.closed && (self.holders.len() as u64) < self.limit.unsigned_abs()
    }

    /// Whether requests that find no free ticket wait rather than being rejected.
    pub fn queues(&self) -> bool {
        self.limit > 0
    }

    /// Whether nothing refers to this category any more once it is closed.
    pub fn is_empty(&self) -> bool {
        self.holders.is_empty() && self.waiters.is_empty()
    }
}

/// A snapshot of one open category, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CategoryStats {
    /// The current limit.
    pub limit: i64,
    /// Tickets in circulation.
    pub holders: usize,
    /// Requests in the waiting room.
    pub waiters: usize,
    /// When the category closes, if ever.
    pub close_at: Option<u64>,
}

impl From<&Category> for CategoryStats {
    fn from(category: &Category) -> Self {
        CategoryStats {
            limit: category.limit,
            holders: category.holders.len(),
            waiters: category.waiters.len(),
            close_at: category.close_at,
        }
    }
}
