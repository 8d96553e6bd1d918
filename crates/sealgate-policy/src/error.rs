//! The one error type of `sealgate-policy`: everything that can be wrong with a rule file.
//! Deciding never fails.

use std::path::PathBuf;

/// What went wrong loading a policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TOML is malformed or does not fit the rule format; line and column are 1-based.
    #[error("policy line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the offending value.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A rule is well-formed TOML but invalid (bad regex, unknown list, ...).
    #[error("policy rule \"{rule}\": {message}")]
    Rule {
        /// The rule's name.
        rule: String,
        /// What is wrong.
        message: String,
    },
    /// The rule file is larger than [`crate::MAX_POLICY_BYTES`] (parsed TOML takes some 30
    /// times its size in memory: a rule file is no place for megabytes of data).
    #[error("policy is {bytes} bytes, larger than the limit of {limit} bytes")]
    TooLarge {
        /// The size given.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// An address list file could not be read.
    #[error("policy list file {}: {message}", path.display())]
    ListFile {
        /// The file.
        path: PathBuf,
        /// Why (I/O error or too large).
        message: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
