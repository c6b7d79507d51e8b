//! The ticket engine: admission control with waiting rooms (`spec/ticket.md`, decisions 17 and
//! 35 of `spec/README.md`).
//!
//! A [`Ticket`] owns categories, each a counting semaphore with a limit: `> 0` tickets out at
//! once with a strict FIFO waiting room behind them, `< 0` the same number without a waiting
//! room, `0` none. A granted request holds its ticket for the configured hold time (1 s) unless
//! renewed, and gives it back by release or expiry; a returned ticket goes at once to the
//! oldest waiter. The engine is pure: commands go in ([`Ticket::request`],
//! [`Ticket::renew`], [`Ticket::configure`], [`Ticket::broadcast`], [`Ticket::advance`], …),
//! [`Event`]s come out ([`Ticket::drain_events`]) for the host to turn into Lua messages, and
//! [`Ticket::next_due`] tells the host when to call [`Ticket::advance`] next — there is no
//! polling.
//!
//! [`TicketService`] runs the engine as the `=ticket` service of a node (module [`service`]).
//!
//! Message keys are split by [`key::parse`]; the shape of the values (one integer, several
//! values, a table) completes the choice as [`key::Key`] documents.
//!
//! # Seam: cluster-wide categories
//! A category may be declared cluster-wide later, so the engine does not assume it owns all
//! holders' clocks: it never reads a clock (time is only the `now` in milliseconds passed to
//! every call, and deadlines are absolute values on that clock), and all per-requester state is
//! keyed by the host's opaque requester ids `R` and request ids, never by anything local to
//! this process. A cluster-wide host can therefore feed commands from several nodes, replay
//! them, or hand a category's state to another node without the engine noticing.

pub mod category;
pub mod config;
pub mod engine;
pub mod error;
pub mod event;
mod hash;
pub mod id;
pub mod key;
pub mod millis;
pub mod service;

pub use category::CategoryStats;
pub use config::TicketConfig;
pub use engine::Ticket;
pub use error::TicketError;
pub use event::{CancelReason, Cancellation, Event, Feedback, Outcome, Rejection, Renewal};
pub use id::RequestId;
pub use service::TicketService;
