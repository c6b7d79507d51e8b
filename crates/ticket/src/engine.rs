//! [`Ticket`]: the engine that owns categories, requests, holds and waiting rooms.

use crate::category::{Category, CategoryId, CategoryStats};
use crate::config::TicketConfig;
use crate::error::TicketError;
use crate::event::{CancelReason, Cancellation, Event, Feedback, Outcome, Rejection, Renewal};
use crate::hash::IdMap;
use crate::id::RequestId;
use crate::key::{check_callback, check_category};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

/// One tracked request: a holder when `deadline` is set, a waiter otherwise.
struct Request<R, P> {
    requester: R,
    callback: Arc<str>,
    category: CategoryId,
    deadline: Option<u64>,
    /// The values to forward, until the grant takes them.
    payload: Option<P>,
}

/// The admission-control engine of one ticket service.
///
/// `R` identifies a requester (the host's return address: process and stage), `P` is the opaque
/// payload a request or broadcast carries. Every command takes the host's clock as `now` in
/// milliseconds, first applies everything due by then (see [`Ticket::advance`]), and leaves the
/// messages to send in the event queue ([`Ticket::drain_events`]).
pub struct Ticket<R, P> {
    capacity: usize,
    hold_ms: u64,
    last_request: u64,
    last_category: CategoryId,
    names: HashMap<Arc<str>, CategoryId>,
    categories: IdMap<CategoryId, Category>,
    requests: IdMap<RequestId, Request<R, P>>,
    holds: BTreeSet<(u64, RequestId)>,
    closes: BTreeSet<(u64, CategoryId)>,
    events: Vec<Event<R, P>>,
    cancelled: Vec<(R, Cancellation)>,
}

impl<R: Clone + Eq + Hash, P> Ticket<R, P> {
    /// An engine with the configured capacity, hold time and never-closing categories.
    pub fn new(config: TicketConfig) -> Result<Self, TicketError> {
        let mut ticket = Ticket {
            capacity: config.capacity,
            hold_ms: config.hold_ms,
            last_request: 0,
            last_category: 0,
            names: HashMap::new(),
            categories: IdMap::default(),
            requests: IdMap::default(),
            holds: BTreeSet::new(),
            closes: BTreeSet::new(),
            events: Vec::new(),
            cancelled: Vec::new(),
        };
        for (name, limit) in &config.categories {
            check_category(name)?;
            ticket.set_category(name, *limit, None);
        }
        Ok(ticket)
    }

    /// Applies everything due by `now`: expired holds are cancelled (with notice) and their
    /// tickets handed to the oldest waiters, categories whose close time came are closed.
    pub fn advance(&mut self, now: u64) {
        loop {
            let hold = self.holds.first().copied().filter(|&(at, _)| at <= now);
            let close = self.closes.first().copied().filter(|&(at, _)| at <= now);
            match (hold, close) {
                (None, None) => break,
                (Some((held, id)), Some((closing, _))) if held < closing => self.expire(now, id),
                (Some((_, id)), None) => self.expire(now, id),
                (_, Some((_, category))) => self.close(category),
            }
        }
        self.flush_cancelled();
    }

    /// The earliest time at which [`Ticket::advance`] has something to do, if any.
    pub fn next_due(&self) -> Option<u64> {
        let hold = self.holds.first().map(|&(at, _)| at);
        let close = self.closes.first().map(|&(at, _)| at);
        hold.into_iter().chain(close).min()
    }

    /// Asks for one ticket of `category` (`ticket:cat=cb[?fb]`). `callback` is the qualified
    /// callback id (an `Arc<str>` the host keeps is shared, not copied), `payload` the
    /// request's values. Emits [`Event::Granted`] when a ticket is
    /// free and [`Event::Feedback`] when `feedback` is given — also for an unknown or closed
    /// category, which is refused with [`TicketError::UnknownCategory`].
    pub fn request(
        &mut self,
        now: u64,
        requester: R,
        category: &str,
        callback: impl Into<Arc<str>>,
        payload: P,
        feedback: Option<Feedback>,
    ) -> Result<Outcome, TicketError> {
        let callback = callback.into();
        check_callback(&callback)?;
        self.check_feedback(&feedback)?;
        self.advance(now);
        // The feedback's copy of the requester, taken only when there is feedback.
        let feedback = feedback.map(|feedback| (requester.clone(), feedback));
        let result = match self.open_category(category) {
            Some(id) => Ok(self.admit(now, requester, id, callback, payload)),
            None => Err(TicketError::UnknownCategory(category.to_owned())),
        };
        if let Some((requester, feedback)) = feedback {
            let outcome = result
                .clone()
                .unwrap_or(Outcome::Rejected(Rejection::UnknownCategory));
            self.events.push(Event::Feedback {
                requester,
                feedback,
                outcome,
            });
        }
        result
    }

    /// Asks for one ticket per entry (`ticket:cat[?fb]` with a table), in the given order; each
    /// entry is `(qualified callback id, payload)`. `echo` is the table's `""` entry. Emits
    /// [`Event::FeedbackTable`] when `feedback` is given — for an unknown or closed category with
    /// no results and no echo, and the command is refused.
    pub fn request_many<C: Into<Arc<str>>>(
        &mut self,
        now: u64,
        requester: R,
        category: &str,
        entries: impl IntoIterator<Item = (C, P)>,
        echo: Option<P>,
        feedback: Option<Feedback>,
    ) -> Result<Vec<(Arc<str>, Outcome)>, TicketError> {
        let entries: Vec<(Arc<str>, P)> = entries
            .into_iter()
            .map(|(callback, payload)| (callback.into(), payload))
            .collect();
        for (callback, _) in &entries {
            check_callback(callback)?;
        }
        self.check_feedback(&feedback)?;
        self.advance(now);
        let (result, echo) = match self.open_category(category) {
            Some(id) => {
                let results = entries
                    .into_iter()
                    .map(|(callback, payload)| {
                        let outcome =
                            self.admit(now, requester.clone(), id, callback.clone(), payload);
                        (callback, outcome)
                    })
                    .collect();
                (Ok(results), echo)
            }
            None => (Err(TicketError::UnknownCategory(category.to_owned())), None),
        };
        if let Some(feedback) = feedback {
            self.events.push(Event::FeedbackTable {
                requester,
                feedback,
                results: result.clone().unwrap_or_default(),
                echo,
            });
        }
        result
    }

    /// Renews (`ms > 0`) or releases (`ms <= 0`) a request (`ticket:@id ms`, or
    /// `stage.signal(nil, ms)` in the grant callback). A released ticket goes at once to the
    /// oldest waiter. Renewing a waiter is ignored; releasing it withdraws it. No notice is sent.
    pub fn renew(&mut self, now: u64, request: RequestId, ms: i64) -> Result<Renewal, TicketError> {
        self.advance(now);
        let entry = self
            .requests
            .get_mut(&request)
            .ok_or(TicketError::UnknownRequest(request))?;
        Ok(match (entry.deadline, ms > 0) {
            (Some(old), true) => {
                let deadline = now.saturating_add(ms.unsigned_abs());
                entry.deadline = Some(deadline);
                self.holds.remove(&(old, request));
                self.holds.insert((deadline, request));
                Renewal::Renewed
            }
            (Some(_), false) => {
                self.finish_and_hand_off(now, request);
                Renewal::Released
            }
            (None, false) => {
                self.finish(request);
                Renewal::Withdrawn
            }
            (None, true) => Renewal::Ignored,
        })
    }

    /// Takes a request away on the host's behalf — its grant could not be delivered — with a
    /// cancel notice; a held ticket goes to the oldest waiter.
    pub fn cancel(&mut self, now: u64, request: RequestId) -> Result<(), TicketError> {
        self.advance(now);
        let finished = self
            .finish_and_hand_off(now, request)
            .ok_or(TicketError::UnknownRequest(request))?;
        self.notify(finished, CancelReason::Undeliverable);
        self.flush_cancelled();
        Ok(())
    }

    /// Forgets every request of a requester that went away (its stage or process is gone):
    /// its tickets go to the oldest waiters at once, its waiters leave, no notice is sent.
    /// Returns how many requests were forgotten.
    pub fn forget(&mut self, now: u64, requester: &R) -> usize {
        self.advance(now);
        let mut gone: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, entry)| entry.requester == *requester)
            .map(|(&id, _)| id)
            .collect();
        gone.sort_unstable();
        let mut freed = Vec::new();
        for &id in &gone {
            if let Some((category, true, _)) = self.finish(id) {
                freed.push(category);
            }
        }
        freed.sort_unstable();
        freed.dedup();
        for category in freed {
            self.hand_off(now, category);
        }
        gone.len()
    }

    /// Creates or reconfigures a category (`ticket:@cat limit [close_ms]`). `close_ms` counts
    /// from `now`; `None` means never, `<= 0` closes at once. A raised limit grants waiters at
    /// once in FIFO order; a limit `<= 0` cancels the waiters left over; closing cancels all
    /// waiters at once while holders keep their tickets until release or expiry.
    pub fn configure(
        &mut self,
        now: u64,
        category: &str,
        limit: i64,
        close_ms: Option<i64>,
    ) -> Result<(), TicketError> {
        check_category(category)?;
        self.advance(now);
        let close_at = close_ms.map(|ms| now.saturating_add_signed(ms));
        let id = self.set_category(category, limit, close_at);
        match close_at {
            Some(at) if at <= now => self.close(id),
            _ => {
                self.hand_off(now, id);
                if limit <= 0 {
                    self.cancel_waiters(id, CancelReason::NoWaitingRoom);
                }
            }
        }
        self.flush_cancelled();
        Ok(())
    }

    /// Broadcasts `payload` to every distinct requester holding or waiting for a ticket of an
    /// open category (`ticket:=cat`), emitting [`Event::Broadcast`]; returns how many.
    pub fn broadcast(
        &mut self,
        now: u64,
        category: &str,
        payload: P,
    ) -> Result<usize, TicketError> {
        self.advance(now);
        let id = self
            .open_category(category)
            .ok_or_else(|| TicketError::UnknownCategory(category.to_owned()))?;
        let Some(entry) = self.categories.get(&id) else {
            return Err(TicketError::UnknownCategory(category.to_owned()));
        };
        let mut seen = HashSet::new();
        let targets: Vec<R> = entry
            .holders
            .iter()
            .chain(&entry.waiters)
            .filter_map(|request| self.requests.get(request))
            .filter(|request| seen.insert(&request.requester))
            .map(|request| request.requester.clone())
            .collect();
        let count = targets.len();
        self.events.push(Event::Broadcast {
            category: entry.name.clone(),
            targets,
            payload,
        });
        Ok(count)
    }

    /// Takes the events emitted so far, oldest first.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, Event<R, P>> {
        self.events.drain(..)
    }

    /// The state of an open category.
    pub fn stats(&self, category: &str) -> Option<CategoryStats> {
        let id = self.open_category(category)?;
        self.categories.get(&id).map(CategoryStats::from)
    }

    /// How many requests are tracked (holders and waiters of every category).
    pub fn outstanding(&self) -> usize {
        self.requests.len()
    }

    fn check_feedback(&self, feedback: &Option<Feedback>) -> Result<(), TicketError> {
        feedback
            .as_ref()
            .map_or(Ok(()), |feedback| check_callback(&feedback.callback))
    }

    fn open_category(&self, name: &str) -> Option<CategoryId> {
        self.names.get(name).copied()
    }

    /// Creates the category or replaces its limit and close time; returns its id.
    fn set_category(&mut self, name: &str, limit: i64, close_at: Option<u64>) -> CategoryId {
        let id = match self.names.get(name) {
            Some(&id) => id,
            None => {
                self.last_category += 1;
                let id = self.last_category;
                let name: Arc<str> = name.into();
                self.names.insert(name.clone(), id);
                self.categories
                    .insert(id, Category::new(name, limit, close_at));
                id
            }
        };
        if let Some(category) = self.categories.get_mut(&id) {
            if let Some(old) = category.close_at {
                self.closes.remove(&(old, id));
            }
            category.limit = limit;
            category.close_at = close_at;
            if let Some(at) = close_at {
                self.closes.insert((at, id));
            }
        }
        id
    }

    /// Registers a request in an open category: granted when a ticket is free, queued when the
    /// category has a waiting room, rejected otherwise or when the request table is full.
    fn admit(
        &mut self,
        now: u64,
        requester: R,
        category: CategoryId,
        callback: Arc<str>,
        payload: P,
    ) -> Outcome {
        if self.requests.len() >= self.capacity {
            return Outcome::Rejected(Rejection::Capacity);
        }
        let Some(entry) = self.categories.get_mut(&category) else {
            return Outcome::Rejected(Rejection::UnknownCategory);
        };
        let free = entry.has_free();
        if !free && !entry.queues() {
            return Outcome::Rejected(Rejection::NoTicket);
        }
        self.last_request += 1;
        let id = RequestId(self.last_request);
        self.requests.insert(
            id,
            Request {
                requester,
                callback,
                category,
                deadline: None,
                payload: Some(payload),
            },
        );
        if free {
            self.grant(now, id);
            Outcome::Granted(id)
        } else {
            entry.waiters.insert(id);
            Outcome::Waiting(id)
        }
    }

    /// Makes a registered request a holder until now + hold time and emits its grant.
    fn grant(&mut self, now: u64, id: RequestId) {
        let Some(request) = self.requests.get_mut(&id) else {
            return;
        };
        let deadline = now.saturating_add(self.hold_ms);
        request.deadline = Some(deadline);
        self.holds.insert((deadline, id));
        let Some(category) = self.categories.get_mut(&request.category) else {
            return;
        };
        category.holders.insert(id);
        if let Some(payload) = request.payload.take() {
            self.events.push(Event::Granted {
                request: id,
                requester: request.requester.clone(),
                callback: request.callback.clone(),
                category: category.name.clone(),
                payload,
            });
        }
    }

    /// Grants free tickets of a category to its oldest waiters.
    fn hand_off(&mut self, now: u64, category: CategoryId) {
        while let Some(entry) = self.categories.get_mut(&category) {
            if !entry.has_free() {
                break;
            }
            let Some(id) = entry.waiters.pop_first() else {
                break;
            };
            self.grant(now, id);
        }
    }

    /// Forgets a request; returns its category, whether it held a ticket, and the request.
    /// A closed category is dropped with its last request.
    fn finish(&mut self, id: RequestId) -> Option<(CategoryId, bool, Request<R, P>)> {
        let request = self.requests.remove(&id)?;
        if let Some(deadline) = request.deadline {
            self.holds.remove(&(deadline, id));
        }
        let category = request.category;
        if let Some(entry) = self.categories.get_mut(&category) {
            entry.holders.remove(&id);
            entry.waiters.remove(&id);
            if entry.closed && entry.is_empty() {
                self.categories.remove(&category);
            }
        }
        Some((category, request.deadline.is_some(), request))
    }

    /// Forgets a request and hands a ticket it held to the oldest waiter.
    fn finish_and_hand_off(
        &mut self,
        now: u64,
        id: RequestId,
    ) -> Option<(RequestId, Request<R, P>)> {
        let (category, held, request) = self.finish(id)?;
        if held {
            self.hand_off(now, category);
        }
        Some((id, request))
    }

    fn expire(&mut self, now: u64, id: RequestId) {
        if let Some(finished) = self.finish_and_hand_off(now, id) {
            self.notify(finished, CancelReason::Expired);
        }
    }

    /// Closes a category: it leaves the name table (new requests and broadcasts fail), its
    /// waiters are cancelled, its holders keep their tickets until release or expiry.
    fn close(&mut self, category: CategoryId) {
        let Some(entry) = self.categories.get_mut(&category) else {
            return;
        };
        entry.closed = true;
        if let Some(at) = entry.close_at.take() {
            self.closes.remove(&(at, category));
        }
        if self.names.get(&entry.name) == Some(&category) {
            self.names.remove(&entry.name);
        }
        self.cancel_waiters(category, CancelReason::Closed);
        if self
            .categories
            .get(&category)
            .is_some_and(Category::is_empty)
        {
            self.categories.remove(&category);
        }
    }

    fn cancel_waiters(&mut self, category: CategoryId, reason: CancelReason) {
        let waiters = match self.categories.get_mut(&category) {
            Some(entry) => std::mem::take(&mut entry.waiters),
            None => return,
        };
        for id in waiters {
            if let Some(request) = self.requests.remove(&id) {
                self.notify((id, request), reason);
            }
        }
    }

    fn notify(&mut self, (request, entry): (RequestId, Request<R, P>), reason: CancelReason) {
        self.cancelled.push((
            entry.requester,
            Cancellation {
                request,
                callback: entry.callback,
                reason,
            },
        ));
    }

    /// Turns the cancellations of this command into one notice per requester.
    fn flush_cancelled(&mut self) {
        if self.cancelled.is_empty() {
            return;
        }
        let mut groups: Vec<(R, Vec<Cancellation>)> = Vec::new();
        let mut index: HashMap<R, usize> = HashMap::new();
        for (requester, cancellation) in self.cancelled.drain(..) {
            match index.get(&requester).and_then(|&at| groups.get_mut(at)) {
                Some((_, requests)) => requests.push(cancellation),
                None => {
                    index.insert(requester.clone(), groups.len());
                    groups.push((requester, vec![cancellation]));
                }
            }
        }
        self.events.extend(
            groups
                .into_iter()
                .map(|(requester, requests)| Event::Cancelled {
                    requester,
                    requests,
                }),
        );
    }
}
