//! External key directories: where keys are looked up when the store has none.
//!
//! - [`Ldap`] (feature `ldap`, on by default): S/MIME certificates, `userCertificate;binary`
//!   of the entries whose `mail` is the address.
//! - [`Wkd`]: OpenPGP certificates from the address's own domain (Web Key Directory, advanced
//!   and direct forms).
//! - [`Hkp`]: OpenPGP certificates from a key server.
//!
//! Each is a [`KeyDirectory`]; [`Keyring::lookup_or_fetch_smime`](crate::Keyring::lookup_or_fetch_smime)
//! and [`Keyring::lookup_or_fetch_pgp`](crate::Keyring::lookup_or_fetch_pgp) ask them when the
//! store has nothing usable and cache what they find ([`FetchReport`] says what happened).

use crate::KeyKind;

mod cache;
mod hkp;
mod http;
#[cfg(feature = "ldap")]
mod ldap;
mod wkd;

pub use cache::FetchReport;
pub use hkp::Hkp;
#[cfg(feature = "ldap")]
pub use ldap::Ldap;
pub use wkd::{Wkd, WkdMethod, wkd_hash, zbase32};

/// Where keys are looked up when the store has none (LDAP, WKD, HKP...). Synchronous on
/// purpose: callers on async runtimes wrap it in spawn_blocking.
pub trait KeyDirectory: Send + Sync {
    /// A short name for provenance and audit ("ldap://ldap.example.com", "wkd", "hkp://...").
    fn name(&self) -> String;
    /// Raw key material found for `address` (DER certificates for Smime, OpenPGP
    /// certificates, armored or binary, for Pgp); empty when the directory has none.
    fn fetch(&self, address: &str, kind: KeyKind) -> Result<Vec<Vec<u8>>, crate::Error>;
}
