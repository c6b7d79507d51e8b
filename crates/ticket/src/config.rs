//! [`TicketConfig`]: what the `"=ticket+NAME"` config entry sets up.

/// The settings of one ticket service. The config value `[capacity, {cat: limit}]` maps to
/// `capacity` and `categories`; reading and validating the JSON is the host's job.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketConfig {
    /// The most requests (holders and waiters together) tracked at once; more are rejected.
    pub capacity: usize,
    /// How long a grant holds its ticket unless renewed, in milliseconds.
    pub hold_ms: u64,
    /// Categories that exist from the start and never close: `(name, limit)`.
    pub categories: Vec<(String, i64)>,
}

impl Default for TicketConfig {
    /// Capacity 10 000, holds of 1 s, no categories (ticket.md §3, §4).
    fn default() -> Self {
        TicketConfig {
            capacity: 10_000,
            hold_ms: 1_000,
            categories: Vec::new(),
        }
    }
}
