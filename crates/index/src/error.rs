//! The typed errors of the index engine and its persistence.

use std::path::PathBuf;
use thiserror::Error;

/// Everything an index operation or the loading of an index file can fail with.
#[derive(Debug, Error)]
pub enum IndexError {
    /// The ID is empty, longer than `max_id_bytes` or holds a NUL byte.
    #[error("invalid id ({len} bytes): {reason}")]
    InvalidId {
        /// The length of the rejected ID in bytes.
        len: usize,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The stored value is longer than `max_value_bytes`.
    #[error("value of {len} bytes exceeds the limit of {max} bytes")]
    ValueTooLong {
        /// The length of the rejected value.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A string score is longer than the limit (`max_id_bytes`).
    #[error("string score of {len} bytes exceeds the limit of {max} bytes")]
    ScoreTooLong {
        /// The length of the rejected score.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A tier's score list holds more scores than allowed.
    #[error("{count} scores for one tier exceed the limit of {max}")]
    TooManyScores {
        /// The number of scores given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A tier number outside 1–4 (or 0 / empty where a single tier is required).
    #[error("no such tier: {0}")]
    NoSuchTier(String),
    /// A score that is neither an integer, an integral float nor a string.
    #[error("invalid score: {0}")]
    InvalidScore(String),
    /// An index file name that cannot be used as a relative path.
    #[error("invalid index file name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A record or snapshot that fails its checksum or does not decode.
    #[error("{}: corrupt data at byte offset {offset}: {reason}", file.display())]
    Corrupt {
        /// The file holding the bad data.
        file: PathBuf,
        /// The byte offset of the bad record in that file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A failed log write left the file's memory state ahead of its log: it takes no more
    /// updates until it is loaded again.
    #[error("{}: a failed log write left this file to be reloaded", file.display())]
    Stale {
        /// The file (its base path, without suffix).
        file: PathBuf,
    },
    /// An I/O error on a named file.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file the operation was about.
        file: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl IndexError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(file: impl Into<PathBuf>, source: std::io::Error) -> IndexError {
        IndexError::Io {
            file: file.into(),
            source,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;
