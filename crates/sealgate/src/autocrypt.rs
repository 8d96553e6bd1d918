//! Autocrypt at the gateway (Autocrypt Level 1, <https://autocrypt.org/level1.html>): what
//! the gateway harvests from inbound mail, whether it encrypts to what it learnt, and for
//! which internal senders it announces a key in an `Autocrypt:` header.
//!
//! Keys learnt from `Autocrypt:` and `Autocrypt-Gossip:` headers are stored with
//! [`Trust::Autocrypt`](crate::keystore::Trust::Autocrypt), the lowest trust: a key the
//! administrator imported, or one from a verified signature, is always preferred and never
//! downgraded.

use crate::keystore::autocrypt::PreferEncrypt;
use crate::pgp::Cert;

/// The `[autocrypt]` settings of the gateway.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AutocryptOptions {
    /// Learn keys from the `Autocrypt:` header of inbound mail (for its sender) and from
    /// `Autocrypt-Gossip:` headers inside mail the gateway decrypted (for its recipients).
    /// Default `true`.
    pub harvest: bool,
    /// Encrypt outbound OpenPGP to keys learnt only from Autocrypt (where the policy allows
    /// OpenPGP for the recipient). Default `false`: such keys are stored but not used.
    pub use_for_encryption: bool,
    /// Internal senders whose outbound mail carries an `Autocrypt:` header: addresses
    /// (`alice@example.com`) or whole domains (`*@example.com`). Default: none.
    pub emit_for: Vec<String>,
    /// The `prefer-encrypt` attribute of the headers emitted.
    pub prefer_encrypt: PreferEncrypt,
    /// The key announced (the organisation's key). `None`: the sender's own OpenPGP key
    /// from the store (one whose secret key the store holds); no header when there is none.
    pub key: Option<Cert>,
    /// Key gossip (Level 1 §2.3): an OpenPGP-encrypted copy for more than one To/Cc
    /// recipient carries, inside the encryption, an `Autocrypt-Gossip:` header for each of
    /// them with the key it was encrypted to, so that replies to all can be encrypted too.
    /// Never for Bcc recipients (only addresses in To and Cc are gossiped about, which keeps
    /// a Bcc recipient unknown to the others) nor for the sender. Default `false`.
    pub gossip: bool,
}

impl Default for AutocryptOptions {
    fn default() -> Self {
        Self {
            harvest: true,
            use_for_encryption: false,
            emit_for: Vec::new(),
            prefer_encrypt: PreferEncrypt::NoPreference,
            key: None,
            gossip: false,
        }
    }
}

impl AutocryptOptions {
    /// Whether `sender`'s outbound mail gets an `Autocrypt:` header.
    pub fn emits_for(&self, sender: &str) -> bool {
        self.emit_for.iter().any(|p| match p.strip_prefix("*@") {
            Some(domain) => sender
                .rsplit_once('@')
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain)),
            None => p.eq_ignore_ascii_case(sender),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_for_matches_addresses_and_domains() {
        let o = AutocryptOptions {
            emit_for: vec!["alice@example.com".into(), "*@sales.example.com".into()],
            ..AutocryptOptions::default()
        };
        assert!(o.emits_for("Alice@Example.com"));
        assert!(o.emits_for("bob@SALES.example.com"));
        assert!(!o.emits_for("bob@example.com"));
        assert!(!o.emits_for("bob@evilsales.example.com"));
        assert!(!AutocryptOptions::default().emits_for("alice@example.com"));
    }
}
