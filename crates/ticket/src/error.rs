//! [`TicketError`]: bad input the engine refuses without changing its state.

use crate::id::RequestId;

/// Why a command was refused. A refused command changes no state (it may still report a
/// feedback `false`, see [`crate::Ticket::request`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TicketError {
    /// The category does not exist or is closed.
    #[error("unknown or closed ticket category `{0}`")]
    UnknownCategory(String),
    /// A category name is empty or contains `=` or `?`.
    #[error("invalid ticket category name `{0}` (must be non-empty, without `=` or `?`)")]
    InvalidCategory(String),
    /// A callback or feedback id is empty or contains `=` or `?`.
    #[error("invalid ticket callback id `{0}` (must be non-empty, without `=` or `?`)")]
    InvalidCallback(String),
    /// No live request has this id (it was released, expired, cancelled or never existed).
    #[error("unknown ticket request {0}")]
    UnknownRequest(RequestId),
    /// The text is not of the `@hex` shape.
    #[error("malformed ticket request id `{0}`")]
    MalformedRequestId(String),
    /// A message key of the ticket service that fits none of its forms.
    #[error("malformed ticket key `{key}`: {reason}")]
    MalformedKey {
        /// The key as received (after `ticket:`).
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A millisecond value that is not an integral number.
    #[error("`{0}` is not an integral number of milliseconds")]
    NotInteger(f64),
}
