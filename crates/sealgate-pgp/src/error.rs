//! The one error type of `sealgate-pgp`.

/// Everything that can go wrong in OpenPGP processing.
///
/// Decryption failures are deliberately coarse: a wrong key, a bad session key and a bad
/// MDC or AEAD tag all give [`Error::DecryptionFailed`], so that no caller can be turned into an
/// oracle. The detail never leaves the crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not well-formed OpenPGP (bad armor, packets or message grammar).
    #[error("malformed OpenPGP {what}: {detail}")]
    Malformed {
        /// What was being parsed (`"certificate"`, `"message"`, `"signature"`).
        what: &'static str,
        /// A short description of the defect (never secret material).
        detail: String,
    },
    /// The certificate (or every key of it that could serve) has expired.
    #[error("certificate {fingerprint} has expired")]
    Expired {
        /// Primary key fingerprint, upper-case hex.
        fingerprint: String,
    },
    /// The certificate (or every key of it that could serve) is revoked.
    #[error("certificate {fingerprint} is revoked")]
    Revoked {
        /// Primary key fingerprint, upper-case hex.
        fingerprint: String,
    },
    /// The certificate has no encryption-capable key (a sign-only certificate).
    #[error("certificate {fingerprint} has no encryption-capable key")]
    NoEncryptionKey {
        /// Primary key fingerprint, upper-case hex.
        fingerprint: String,
    },
    /// The recipients cannot share one message: a v6 post-quantum (ML-KEM) recipient needs
    /// PKESK v6 and SEIPD v2 (draft-ietf-openpgp-pqc), and this certificate advertises SEIPD v1
    /// only (as GnuPG 2.2 keys do). Send it a message of its own.
    #[error(
        "certificate {fingerprint} reads SEIPD v1 only; a post-quantum recipient of the same message needs SEIPD v2"
    )]
    SeipdV1OnlyWithPostQuantum {
        /// Primary key fingerprint of the SEIPD v1 recipient, upper-case hex.
        fingerprint: String,
    },
    /// The secret key has no usable (valid, unlocked) signing key.
    #[error("no usable signing key")]
    NoSigningKey,
    /// The certificate has no valid User ID with this mail address.
    #[error("no valid User ID for {address}")]
    NoMatchingUserId {
        /// The address asked for.
        address: String,
    },
    /// The secret key is locked and the passphrase is wrong or missing.
    #[error("wrong or missing passphrase")]
    BadPassphrase,
    /// The input is not an encrypted OpenPGP message.
    #[error("not an encrypted OpenPGP message")]
    NotEncrypted,
    /// The message has no integrity protection (legacy Symmetrically Encrypted Data packet, or
    /// SEIPD v1 without MDC): its plaintext is withheld (EFAIL, RFC 9580 §5.7).
    #[error("message without integrity protection refused")]
    MissingIntegrityProtection,
    /// Decryption failed. Deliberately says nothing more.
    #[error("could not decrypt the message")]
    DecryptionFailed,
    /// The message is not encrypted to any of the given keys.
    #[error("the message is not encrypted to any of our keys")]
    NoMatchingKey,
    /// A resource limit from [`sealgate_mime::Limits`] was hit.
    #[error("limit exceeded: {what} (limit {limit})")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// Its configured value.
        limit: u64,
    },
    /// The OpenPGP library refused an operation (key generation, signing, encryption).
    #[error("OpenPGP operation failed: {what}: {detail}")]
    Operation {
        /// Which operation.
        what: &'static str,
        /// Why (never secret material).
        detail: String,
    },
    /// The message is not of the OpenPGP kind the operation expects.
    #[error("not a {expected} message (found {found})")]
    WrongMessageType {
        /// What the operation needs (`"PGP/MIME signed"`, `"PGP encrypted"`).
        expected: &'static str,
        /// What the message is (its content type).
        found: String,
    },
    /// A message that is valid but cannot be processed as a stream (for the streaming signer:
    /// content that is not 7-bit, which RFC 3156 §5 wants signed and [`crate::sign_message`]
    /// re-encodes in memory); `what` says what it has. Nothing written so far may be used.
    #[error("cannot stream {what}: use the in-memory function")]
    NotStreamable {
        /// What the message has.
        what: &'static str,
    },
    /// An error from the MIME toolkit.
    #[error(transparent)]
    Mime(#[from] sealgate_mime::Error),
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
