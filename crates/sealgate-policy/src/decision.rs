//! What the policy decided: per recipient, the actions in the order the gateway executes them,
//! and the reasons. Serialises to the stable JSON documented in the crate README.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Serialize, Serializer};

use crate::inspect::{Location, SensitiveMatch, Uninspectable};

/// Version of the JSON document; bumped only on incompatible changes.
pub const DECISION_FORMAT_VERSION: u32 = 1;

/// Encryption methods, tried in the order given (best effort).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// S/MIME to the recipient's certificate.
    Smime,
    /// OpenPGP (PGP/MIME) to the recipient's key.
    Pgp,
    /// A password-protected ZIP of the message.
    Zip,
}

/// Signature kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignMethod {
    /// S/MIME (`multipart/signed`).
    Smime,
    /// OpenPGP (PGP/MIME `multipart/signed`).
    Pgp,
}

/// ZIP encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ZipMethod {
    /// WinZip AES-256 (7-Zip, WinZip, macOS Archive Utility).
    Aes256,
    /// Legacy ZipCrypto, which Windows Explorer opens without extra software (weak).
    Zipcrypto,
}

/// Characters of a generated password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Alphabet {
    /// `A-Z a-z 0-9`.
    Alphanumeric,
    /// `A-Z a-z 0-9` and ASCII punctuation.
    AlphanumericSymbols,
    /// `0-9`.
    Digits,
}

/// Where the ZIP password comes from.
#[derive(Clone)]
pub enum ZipPassword {
    /// Generate one per message ([`ZipSettings::length`], [`ZipSettings::alphabet`]).
    Generate,
    /// A fixed password from the rule file (never printed, never serialised).
    Fixed(SecretString),
}

impl fmt::Debug for ZipPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Generate => f.write_str("Generate"),
            Self::Fixed(_) => f.write_str("Fixed([redacted])"),
        }
    }
}

impl PartialEq for ZipPassword {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Generate, Self::Generate) => true,
            (Self::Fixed(a), Self::Fixed(b)) => a.expose_secret() == b.expose_secret(),
            _ => false,
        }
    }
}

impl Eq for ZipPassword {}

impl Serialize for ZipPassword {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Self::Generate => "generate",
            Self::Fixed(_) => "fixed",
        })
    }
}

/// How to build the password ZIP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZipSettings {
    /// Generated or fixed.
    pub password: ZipPassword,
    /// Length of a generated password (8–128; default 16).
    pub length: usize,
    /// Characters of a generated password.
    pub alphabet: Alphabet,
    /// AES-256 (default) or ZipCrypto.
    pub method: ZipMethod,
}

impl Default for ZipSettings {
    fn default() -> Self {
        Self {
            password: ZipPassword::Generate,
            length: 16,
            alphabet: Alphabet::Alphanumeric,
            method: ZipMethod::Aes256,
        }
    }
}

/// What happens to a recipient for whom no method of a best-effort encryption is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Fallback {
    /// The message is not delivered to that recipient (bounce with a reason). Never clear text.
    Reject,
}

/// One thing to do to the message for one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Deliver as it is.
    None,
    /// The MTA must deliver this recipient over TLS only (a directive; no TLS, no delivery).
    RequireTls,
    /// Sign with the sender's identity.
    Sign {
        /// S/MIME or OpenPGP.
        method: SignMethod,
    },
    /// Encrypt, best effort: the first method in `methods` that can be applied to this
    /// recipient (a usable certificate, a usable key, or ZIP which always can) is used;
    /// if none can, `if_none_usable` applies. The message never goes out in clear text.
    Encrypt {
        /// In order of preference.
        methods: Vec<Method>,
        /// Settings for the ZIP method (used only if `zip` is among `methods`).
        zip: ZipSettings,
        /// Always [`Fallback::Reject`]: never clear text.
        if_none_usable: Fallback,
    },
    /// Package the message as a password-protected ZIP.
    Zip {
        /// How.
        zip: ZipSettings,
    },
    /// Refuse the message for this recipient with this text.
    Reject {
        /// The reply text.
        text: String,
    },
    /// Add a header field.
    AddHeader {
        /// Field name.
        name: String,
        /// Field value.
        value: String,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = |m: &Method| match m {
            Method::Smime => "smime",
            Method::Pgp => "pgp",
            Method::Zip => "zip",
        };
        match self {
            Action::None => f.write_str("none (deliver as is)"),
            Action::RequireTls => f.write_str("require TLS"),
            Action::Sign {
                method: SignMethod::Smime,
            } => f.write_str("sign with S/MIME"),
            Action::Sign {
                method: SignMethod::Pgp,
            } => f.write_str("sign with OpenPGP"),
            Action::Encrypt { methods, .. } => {
                let list: Vec<&str> = methods.iter().map(method).collect();
                write!(
                    f,
                    "encrypt, best effort in order [{}], never clear text",
                    list.join(", ")
                )
            }
            Action::Zip { zip } => write!(
                f,
                "password ZIP ({}, {} password)",
                match zip.method {
                    ZipMethod::Aes256 => "AES-256",
                    ZipMethod::Zipcrypto => "ZipCrypto",
                },
                match zip.password {
                    ZipPassword::Generate => "generated",
                    ZipPassword::Fixed(_) => "fixed",
                }
            ),
            Action::Reject { text } => write!(f, "reject: {text}"),
            Action::AddHeader { name, value } => write!(f, "add header {name}: {value}"),
        }
    }
}

/// Which way a message goes for one recipient, from the organisation's internal domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// External sender, internal recipient.
    Inbound,
    /// Internal sender, external recipient.
    Outbound,
    /// Internal sender and recipient.
    Internal,
    /// Neither is internal.
    Relay,
}

impl Direction {
    /// As in rule files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
            Self::Internal => "internal",
            Self::Relay => "relay",
        }
    }
}

/// One piece of evidence for a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trigger {
    /// The condition (`attachment_type`, `body_contains`, `sensitive`, ...).
    pub condition: String,
    /// What matched (a keyword as found, a type, a masked card number, ...).
    pub matched: String,
    /// Where it matched.
    #[serde(rename = "where")]
    pub location: Location,
}

/// Why a rule fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// The rule's name (`default` for the default rule).
    pub rule: String,
    /// The evidence.
    pub triggers: Vec<Trigger>,
}

/// The decision for one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipientDecision {
    /// The recipient address.
    pub recipient: String,
    /// The direction of the message for this recipient.
    pub direction: Direction,
    /// What to do, in execution order: header fields, then sign, then encrypt (or ZIP), then
    /// require TLS; or a single reject; or a single none.
    pub actions: Vec<Action>,
    /// The rules that fired for this recipient, in rule order, with their evidence.
    pub reasons: Vec<Reason>,
}

impl RecipientDecision {
    /// Whether the message is refused for this recipient.
    pub fn is_rejected(&self) -> bool {
        self.actions
            .iter()
            .any(|a| matches!(a, Action::Reject { .. }))
    }
}

/// The whole decision for a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// [`DECISION_FORMAT_VERSION`].
    pub version: u32,
    /// One entry per envelope recipient, in envelope order.
    pub recipients: Vec<RecipientDecision>,
    /// Every rule that fired for at least one recipient, in rule order.
    pub fired: Vec<String>,
    /// Validated sensitive values found (masked).
    pub sensitive: Vec<SensitiveMatch>,
    /// Content that could not be inspected.
    pub uninspectable: Vec<Uninspectable>,
}
