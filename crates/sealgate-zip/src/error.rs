//! The one error type of `sealgate-zip`.

/// Everything that can go wrong making or reading a password ZIP, or packaging a message.
///
/// Decryption failures are deliberately coarse: a wrong password, a bad WinZip AES
/// authentication code, a CRC mismatch or a deflate error inside an encrypted entry all give
/// [`Error::WrongPassword`], so that no caller can be turned into an oracle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The archive is not a well-formed ZIP (or uses a feature we do not read).
    #[error("malformed ZIP archive: {detail}")]
    Malformed {
        /// What is wrong (never entry content).
        detail: String,
    },
    /// The password is wrong, or the encrypted entry was altered. Deliberately says nothing more.
    #[error("could not decrypt: wrong password or damaged archive")]
    WrongPassword,
    /// An entry is encrypted and no password was given.
    #[error("the archive is encrypted and no password was given")]
    PasswordRequired,
    /// An entry name would leave the extraction directory (`..`, an absolute path, a drive
    /// letter) or holds control characters.
    #[error("unsafe entry name {name:?}: {reason}")]
    UnsafePath {
        /// The name, with control characters escaped.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Two entries share bytes of the archive (a zip bomb technique) or an entry runs into the
    /// central directory.
    #[error("overlapping entries in the ZIP archive")]
    OverlappingEntries,
    /// An entry expands past the compression-ratio limit: a zip bomb.
    #[error("zip bomb: entry {name:?} expands more than {limit}:1")]
    CompressionRatio {
        /// The entry.
        name: String,
        /// The configured ratio.
        limit: u64,
    },
    /// A resource limit from [`sealgate_mime::Limits`] was hit.
    #[error("limit exceeded: {what} (limit {limit})")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// Its configured value.
        limit: u64,
    },
    /// An entry uses a compression method or encryption we do not read (only stored and
    /// deflate; ZipCrypto and WinZip AES).
    #[error("unsupported ZIP feature: {what}")]
    Unsupported {
        /// Which feature.
        what: String,
    },
    /// An unencrypted entry's data does not match its CRC-32.
    #[error("entry {name:?} is damaged (CRC mismatch)")]
    CrcMismatch {
        /// The entry.
        name: String,
    },
    /// A reader gave more or fewer bytes than the size announced for it.
    #[error("entry {name:?}: the data was {actual} bytes, {announced} were announced")]
    SizeMismatch {
        /// The entry.
        name: String,
        /// The announced size.
        announced: u64,
        /// What the reader gave.
        actual: u64,
    },
    /// Two entries of one archive got the same name.
    #[error("duplicate entry name {name:?}")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// The message to package has no attachment (zip the whole message instead).
    #[error("the message has no attachments to package")]
    NoAttachments,
    /// The password policy cannot be met (empty alphabet, zero length, non-ASCII alphabet).
    #[error("invalid password policy: {detail}")]
    PasswordPolicy {
        /// What is wrong.
        detail: &'static str,
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

pub(crate) fn malformed(detail: impl Into<String>) -> Error {
    Error::Malformed {
        detail: detail.into(),
    }
}
