//! The one error type of `sealgate-smime`.

/// Everything that can go wrong in S/MIME processing.
///
/// Decryption failures are deliberately coarse: a wrong key, bad padding and a bad
/// authentication tag all give [`Error::DecryptionFailed`], so that no caller can be turned into
/// a padding or tag oracle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not well-formed (bad PEM, DER, BER or MIME structure).
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// What was being parsed (`"certificate"`, `"CMS ContentInfo"`, ...).
        what: &'static str,
        /// A short description of the defect (never secret material).
        detail: String,
    },
    /// An error from the MIME toolkit.
    #[error(transparent)]
    Mime(#[from] sealgate_mime::Error),
    /// An algorithm identifier that Sealgate does not implement.
    #[error("unsupported {what}: {oid}")]
    UnsupportedAlgorithm {
        /// The role of the algorithm (`"content encryption"`, `"signature"`, ...).
        what: &'static str,
        /// The object identifier, dotted.
        oid: String,
    },
    /// A resource limit from [`sealgate_mime::Limits`] was hit.
    #[error("limit exceeded: {what} (limit {limit})")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// Its configured value.
        limit: u64,
    },
    /// A key file could not be opened with the given password (PKCS#12 MAC or PKCS#8
    /// decryption failed), or a password was needed and none was given.
    #[error("wrong password or corrupt key file")]
    BadPassword,
    /// The private key is unusable (unsupported type, size out of bounds, inconsistent).
    #[error("unusable private key: {reason}")]
    InvalidKey {
        /// Why.
        reason: String,
    },
    /// The private key does not belong to the certificate it was paired with.
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    /// The certificate cannot be used for the requested operation.
    #[error("unusable certificate: {reason}")]
    UnusableCertificate {
        /// Why (subject and the failed check).
        reason: String,
    },
    /// The message is not of the S/MIME kind the operation expects.
    #[error("not an S/MIME {expected} message (found {found})")]
    WrongMessageType {
        /// What the operation needs (`"signed"`, `"encrypted"`).
        expected: &'static str,
        /// What the message is (its content type).
        found: String,
    },
    /// None of the RecipientInfos is for the given certificate.
    #[error("the message is not encrypted to this certificate")]
    NotARecipient,
    /// The message has several RSA recipients and no certificate was given to pick ours
    /// (trying each in turn would be a padding oracle).
    #[error("several RSA recipients: give the recipient certificate to pick ours")]
    CertificateNeeded,
    /// Decryption failed. Deliberately says nothing more (no padding or tag oracle).
    #[error("could not decrypt the message")]
    DecryptionFailed,
    /// A message that is valid but cannot be processed as a stream; the one-shot function
    /// named in `what` reads it in memory (within `Limits::max_cms_bytes`).
    #[error("cannot stream {what}")]
    NotStreamable {
        /// What the message has and which one-shot function to use instead.
        what: &'static str,
    },
    /// The cryptographic library refused an operation (signing, encryption, key generation).
    #[error("cryptographic operation failed: {what}")]
    Crypto {
        /// Which operation.
        what: &'static str,
    },
    /// Reading input or writing output failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    pub(crate) fn malformed(what: &'static str, detail: impl std::fmt::Display) -> Self {
        Error::Malformed {
            what,
            detail: detail.to_string(),
        }
    }
}

impl From<der::Error> for Error {
    fn from(e: der::Error) -> Self {
        Error::malformed("DER", e)
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
