//! The one error type of the crate: every message names the file and, where it applies, the
//! position or the key path.

use std::io;

/// Why a configuration could not be loaded or a configuration value was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A configuration file (or a JSON file it includes) could not be read.
    #[error("{file}: cannot read the file: {source}")]
    Read {
        /// The file as it was named.
        file: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A file is not valid JSON (or repeats a key inside one object).
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file as it was named.
        file: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// A key has a value the schema does not accept (or the key is not part of the schema).
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The file the key comes from.
        file: String,
        /// The key path, e.g. `#limits.mailbox` or `#startup[2][0]`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A problem with a file as a whole (empty configuration, top level not an object, …).
    #[error("{file}: {message}")]
    File {
        /// The file (or the list of files) concerned.
        file: String,
        /// What is wrong with it.
        message: String,
    },
}
