//! `stage-index`: the real-time ranking engine behind the `index` service (`spec/index.md`).
//!
//! * [`Ranking`] — one index file in memory: IDs with a value and scores in up to four tiers,
//!   each tier an order-statistic B+tree (the `tree` module doc): O(log n) insert,
//!   delete, rank, select and range. Ties rank newest first.
//! * [`IndexFile`] / [`Index`] — persistence: an append-only, checksummed log per file plus
//!   snapshots, loaded at start, with a configurable fsync policy ([`Durability`]).
//! * [`command`] — the spec's message forms (`s?rank/2=cb`, batch tables) on [`stage_core::Value`]s.
//! * [`service`] — [`IndexService`], the node's `index` service: messages, replies to the
//!   sender's stage, periodic fsync and compaction.
//!
//! Pure Rust: no Lua, no sockets; the engine takes time from the caller (`sync_if_due(now)`).

pub mod command;
mod error;
mod frame;
mod frozen;
mod log;
mod ranking;
mod score;
pub mod service;
mod snapshot;
mod store;
mod tree;

pub use error::{IndexError, Result};
pub use ranking::{Hit, HitAll, Limits, Ranking, Row, SetRank, Update, MAX_SCORES_PER_TIER};
pub use score::{Score, Tier, TierSel};
pub use service::{BsonCodec, IndexService};
pub use store::{
    check_name, CompactReport, Config, Durability, FileWriter, Index, IndexFile, LoadReport,
    GROUP_BYTES,
};
