//! The one error type of `sealgate-keystore`.

/// Everything that can go wrong in the key store.
///
/// No variant carries secret material: passphrases, private keys and decrypted bytes never
/// appear in an error. Decryption of a stored private key fails with the coarse
/// [`Error::Locked`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An external key directory (LDAP, WKD, HKP) failed.
    #[error("key directory {directory}: {reason}")]
    Directory {
        /// The directory's [`name`](crate::directory::KeyDirectory::name).
        directory: String,
        /// What went wrong (never secret material).
        reason: String,
    },
    /// A file given to import could not be read or understood. Nothing of that import call
    /// was stored.
    #[error("{file}: {reason}")]
    Import {
        /// The file (or source name) that failed.
        file: String,
        /// Why.
        reason: String,
    },
    /// The stored private keys cannot be decrypted: wrong store passphrase or key, or a
    /// corrupt entry. Deliberately says nothing more.
    #[error("wrong store passphrase or corrupt key entry")]
    Locked,
    /// An `Autocrypt:` or `Autocrypt-Gossip:` header does not follow Autocrypt Level 1 and
    /// is ignored (§2.1: a header with an unknown critical attribute, a missing `addr` or
    /// `keydata`, or keydata that is not one OpenPGP certificate).
    #[error("Autocrypt header ignored: {reason}")]
    Autocrypt {
        /// Why the header was ignored.
        reason: String,
    },
    /// The store backend failed (database error, I/O, schema from a newer version).
    #[error("key store backend: {0}")]
    Backend(String),
    /// Reading input or writing output failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
