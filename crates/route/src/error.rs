//! [`RouteError`]: bad input the engine refuses without changing its state.

/// Why a command was refused. A refused command changes no state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// A subscription id is empty or contains `?`, `!`, `=` or `,`.
    #[error("invalid subscription id `{0}` (must be non-empty, without `?`, `!`, `=` or `,`)")]
    InvalidSubscription(String),
    /// A publish key that fits no form of `target[?argument][!fail][=return]`.
    #[error("malformed route key `{key}`: {reason}")]
    MalformedKey {
        /// The key as received (after `route:`).
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A keep-alive, pause or removal from a stage that has no registration.
    #[error("no route registration for this stage")]
    UnknownRegistrant,
    /// A probe answer that is not of the token shape.
    #[error("malformed route probe answer `{0}`")]
    MalformedToken(String),
    /// A probe answer for a publication already answered, failed or timed out.
    #[error("route probe `{0}` is no longer open")]
    UnknownToken(String),
    /// A probe answer whose `?cb,...` filter names none of the candidate's callbacks.
    #[error("route probe answer `{0}` selects none of the subscriber's callbacks")]
    NoMatchingCallback(String),
}
