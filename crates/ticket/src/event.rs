//! What the engine asks the host to send: [`Event`] and the values it carries.

use crate::id::RequestId;
use std::sync::Arc;

/// The immediate result of one request, as reported to a feedback callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A ticket was free and is now held (feedback value `true`).
    Granted(RequestId),
    /// The request waits in the category's waiting room (feedback value: the id's text).
    Waiting(RequestId),
    /// The request was refused and is forgotten (feedback value `false`).
    Rejected(Rejection),
}

/// Why a request was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The category is unknown or closed.
    UnknownCategory,
    /// No ticket is free and the category has no waiting room (limit `<= 0`).
    NoTicket,
    /// The request table is full (capacity reached; the host should log a warning).
    Capacity,
}

/// Where a feedback message goes: the requester's feedback callback, and the original key that
/// is its first argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// The (qualified) feedback callback id, the `fb` of `?fb`.
    pub callback: String,
    /// The full original key, e.g. `ticket:odbc=login?fb`.
    pub key: String,
}

/// Why the engine took a ticket away or gave up on a waiter on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// A holder's hold deadline passed.
    Expired,
    /// The category closed while the request waited.
    Closed,
    /// The category's limit became zero or negative while the request waited.
    NoWaitingRoom,
    /// The host reported the request undeliverable ([`crate::Ticket::cancel`]).
    Undeliverable,
}

/// One request in a cancel notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    /// The request taken away.
    pub request: RequestId,
    /// Its qualified callback id (the value of the notice's entry).
    pub callback: Arc<str>,
    /// Why.
    pub reason: CancelReason,
}

/// A message the host must send. `R` is the host's requester address, `P` the opaque values a
/// request or broadcast carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<R, P> {
    /// A request got its ticket: invoke `callback` at `requester` with `payload`, `_TICKET` =
    /// `request`, `_WAITFOR[0]` = `"<callback>=ticket:<request>"`.
    Granted {
        /// The request granted.
        request: RequestId,
        /// Who asked.
        requester: R,
        /// The qualified callback id to invoke.
        callback: Arc<str>,
        /// The category the ticket belongs to.
        category: Arc<str>,
        /// The request's values, forwarded unchanged (all of them, decision 17).
        payload: P,
    },
    /// Send `(feedback.key, outcome)` to `feedback.callback` at `requester`, the outcome as
    /// `true`, `false` or the request id's text.
    Feedback {
        /// Who asked.
        requester: R,
        /// Where the feedback goes.
        feedback: Feedback,
        /// The result.
        outcome: Outcome,
    },
    /// Send `(feedback.key, table)` to `feedback.callback` at `requester`, where the table maps
    /// each callback id to its outcome (`true`, `false`, id text) and `""` to `echo` when given.
    /// For an unknown or closed category `results` is empty and `echo` is `None`.
    FeedbackTable {
        /// Who asked.
        requester: R,
        /// Where the feedback goes.
        feedback: Feedback,
        /// One outcome per requested callback, in request order.
        results: Vec<(Arc<str>, Outcome)>,
        /// The table's `""` entry, echoed back.
        echo: Option<P>,
    },
    /// Send `("cancel", { [id text] = callback, ... })` to `requester`'s `ticket:@` handler: one
    /// notice per requester per command.
    Cancelled {
        /// Who loses the requests.
        requester: R,
        /// The requests taken away.
        requests: Vec<Cancellation>,
    },
    /// Deliver `payload` to each target's `ticket:<category>` handler.
    Broadcast {
        /// The category broadcast to.
        category: Arc<str>,
        /// Every distinct requester holding or waiting for a ticket of the category.
        targets: Vec<R>,
        /// The values to deliver.
        payload: P,
    },
}

/// What a renewal message (`ticket:@id ms`) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// A holder's deadline was set to now + ms.
    Renewed,
    /// A holder gave its ticket back (ms <= 0); a waiter may have been granted.
    Released,
    /// A waiter left the waiting room (ms <= 0).
    Withdrawn,
    /// A waiter was renewed with ms > 0: nothing to do (decision 35).
    Ignored,
}
