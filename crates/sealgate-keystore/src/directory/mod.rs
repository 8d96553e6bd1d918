//! External key directories: where keys are looked up when the store has none.

use crate::KeyKind;

/// Where keys are looked up when the store has none (LDAP, WKD, HKP...). Synchronous on
/// purpose: callers on async runtimes wrap it in spawn_blocking.
pub trait KeyDirectory: Send + Sync {
    /// A short name for provenance and audit ("ldap://ldap.example.com", "wkd", "hkp://...").
    fn name(&self) -> String;
    /// Raw key material found for `address` (DER certificates for Smime, OpenPGP
    /// certificates, armored or binary, for Pgp); empty when the directory has none.
    fn fetch(&self, address: &str, kind: KeyKind) -> Result<Vec<Vec<u8>>, crate::Error>;
}
