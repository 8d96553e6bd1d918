#![doc = include_str!("../README.md")]

pub use sealgate_mime as mime;
pub use sealgate_mime::Limits;
pub use sealgate_pgp as pgp;
pub use sealgate_policy as policy;
pub use sealgate_smime as smime;

/// The facade's error: wraps the error of each crate underneath.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From the S/MIME engine.
    #[error(transparent)]
    Smime(#[from] sealgate_smime::Error),
    /// From the OpenPGP engine.
    #[error(transparent)]
    Pgp(#[from] sealgate_pgp::Error),
    /// From the policy (loading a rule file).
    #[error(transparent)]
    Policy(#[from] sealgate_policy::Error),
    /// From the MIME toolkit.
    #[error(transparent)]
    Mime(#[from] sealgate_mime::Error),
    /// Reading or writing a file or stream.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `Result` with the facade's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
