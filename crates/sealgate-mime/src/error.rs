//! The one error type of `sealgate-mime`.

/// Everything that can go wrong while parsing or building MIME.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not a well-formed message or entity.
    #[error("malformed message: {detail}")]
    Malformed {
        /// What is wrong (never message content).
        detail: String,
    },
    /// A resource limit was hit.
    #[error("limit exceeded: {what} (limit {limit})")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// Its configured value.
        limit: u64,
    },
    /// Reading or writing a stream failed (the streaming readers and writers).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
