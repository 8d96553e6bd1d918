#![doc = include_str!("../README.md")]

pub mod audit;
pub mod autocrypt;
pub mod config;
pub mod gateway;
pub mod mike;

pub use config::GatewayConfig;
pub use gateway::{Delivery, Gateway, GatewayBuilder, Options, Outcome, Refusal};
pub use sealgate_policy::Envelope;

pub use sealgate_keystore as keystore;
pub use sealgate_mime as mime;
pub use sealgate_mime::Limits;
pub use sealgate_pgp as pgp;
pub use sealgate_policy as policy;
pub use sealgate_smime as smime;
pub use sealgate_zip as zip;

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
    /// From the key store.
    #[error(transparent)]
    Keystore(#[from] sealgate_keystore::Error),
    /// From the password ZIP engine.
    #[error(transparent)]
    Zip(#[from] sealgate_zip::Error),
    /// From the policy (loading a rule file).
    #[error(transparent)]
    Policy(#[from] sealgate_policy::Error),
    /// From the MIME toolkit.
    #[error(transparent)]
    Mime(#[from] sealgate_mime::Error),
    /// Reading or writing a file or stream.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The gateway is not configured as it needs to be.
    #[error("gateway configuration: {reason}")]
    Config {
        /// What is missing or wrong.
        reason: String,
    },
    /// The policy says sign, and the store has no signing key for the sender.
    #[error("no {kind} signing identity for {sender} in the key store")]
    NoSigningIdentity {
        /// The sender address.
        sender: String,
        /// `S/MIME` or `OpenPGP`.
        kind: &'static str,
    },
    /// An audit file's hash chain is broken at `line` (1-based): a record was edited, removed
    /// or reordered, or the line is not an audit record.
    #[error("audit chain broken at line {line}: {reason}")]
    AuditChain {
        /// The first line that does not verify.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Another writer holds the audit file.
    #[error("audit file {} is in use by another writer", path.display())]
    AuditLocked {
        /// The audit file.
        path: std::path::PathBuf,
    },
}

/// `Result` with the facade's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
