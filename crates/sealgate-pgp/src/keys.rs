//! Certificates (public keys) and secret keys.

use std::time::SystemTime;

use openpgp::cert::Preferences;
use openpgp::cert::prelude::*;
use openpgp::crypto::Password;
use openpgp::packet::{Key, key};
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::SerializeInto;
use openpgp::types::{KeyFlags, RevocationStatus};
use sealgate_mime::Limits;
use secrecy::{ExposeSecret, SecretString};
use sequoia_openpgp as openpgp;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

pub(crate) static POLICY: StandardPolicy<'static> = StandardPolicy::new();

/// A public OpenPGP certificate (RFC 9580 §10.1: a transferable public key).
#[derive(Clone)]
pub struct Cert {
    pub(crate) inner: openpgp::Cert,
}

impl std::fmt::Debug for Cert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cert")
            .field("fingerprint", &self.fingerprint())
            .field("addresses", &self.addresses())
            .finish()
    }
}

impl Cert {
    /// Wraps a sequoia certificate, dropping any secret key material it carries.
    pub(crate) fn from_sequoia(cert: openpgp::Cert) -> Cert {
        Cert {
            inner: cert.strip_secret_key_material(),
        }
    }

    /// Reads every certificate from `data` (ASCII armor or binary; one certificate or a keyring).
    /// Secret key material in the input is dropped. At most `limits.max_certificates`
    /// certificates and `limits.max_message_bytes` bytes are accepted.
    pub fn load_all(data: &[u8], limits: &Limits) -> Result<Vec<Cert>> {
        check_input_size(data, limits)?;
        crate::decrypt::guard("certificate", || Cert::load_all_inner(data, limits))
    }

    fn load_all_inner(data: &[u8], limits: &Limits) -> Result<Vec<Cert>> {
        let parser = CertParser::from_bytes(data).map_err(|e| malformed("certificate", &e))?;
        let mut out = Vec::new();
        for cert in parser {
            let cert = cert.map_err(|e| malformed("certificate", &e))?;
            if out.len() >= limits.max_certificates {
                return Err(Error::LimitExceeded {
                    what: "certificates in one key file",
                    limit: limits.max_certificates as u64,
                });
            }
            out.push(Cert::from_sequoia(cert));
        }
        if out.is_empty() {
            return Err(Error::Malformed {
                what: "certificate",
                detail: "no certificate found".into(),
            });
        }
        Ok(out)
    }

    /// The primary key fingerprint, upper-case hex without spaces.
    pub fn fingerprint(&self) -> String {
        self.inner.fingerprint().to_hex()
    }

    /// The mail addresses of the User IDs (as written, in certificate order; unchecked).
    pub fn addresses(&self) -> Vec<String> {
        self.inner
            .userids()
            .filter_map(|ua| ua.userid().email().ok().flatten().map(str::to_owned))
            .collect()
    }

    /// The mail addresses of the User IDs that are valid now under the standard policy and not
    /// revoked: the ones that may vouch for a sender address.
    pub(crate) fn valid_addresses(&self) -> Vec<String> {
        let Ok(vc) = self.inner.with_policy(&POLICY, None) else {
            return Vec::new();
        };
        vc.userids()
            .filter(|ua| !matches!(ua.revocation_status(), RevocationStatus::Revoked(_)))
            .filter_map(|ua| ua.userid().email().ok().flatten().map(str::to_owned))
            .collect()
    }

    /// Whether a User ID carries `addr`: the local part compared exactly, the domain without
    /// regard to ASCII case (RFC 5321 §2.4). Does not check validity; see
    /// [`Cert::encryption_keys_for`].
    pub fn has_address(&self, addr: &str) -> bool {
        self.addresses().iter().any(|a| same_address(a, addr))
    }

    /// The encryption-capable keys usable at `at` for mail to `address` (or for the
    /// certificate as a whole with `None`), as key fingerprints.
    ///
    /// Errors say why there are none: [`Error::Revoked`], [`Error::Expired`],
    /// [`Error::NoMatchingUserId`] (no valid, unrevoked User ID with that address) or
    /// [`Error::NoEncryptionKey`] (a sign-only certificate).
    pub fn encryption_keys_for(
        &self,
        address: Option<&str>,
        at: SystemTime,
    ) -> Result<Vec<String>> {
        let fingerprint = self.fingerprint();
        if let RevocationStatus::Revoked(_) = self.inner.revocation_status(&POLICY, at) {
            return Err(Error::Revoked { fingerprint });
        }
        let vc = self
            .inner
            .with_policy(&POLICY, at)
            .map_err(|e| classify_validity(&e, &fingerprint))?;
        if vc.alive().is_err() {
            return Err(Error::Expired { fingerprint });
        }
        if let Some(address) = address {
            let found = vc.userids().any(|ua| {
                !matches!(ua.revocation_status(), RevocationStatus::Revoked(_))
                    && ua
                        .userid()
                        .email()
                        .ok()
                        .flatten()
                        .is_some_and(|a| same_address(a, address))
            });
            if !found {
                return Err(Error::NoMatchingUserId {
                    address: address.to_owned(),
                });
            }
        }
        let capable: Vec<_> = vc.keys().supported().for_transport_encryption().collect();
        if capable.is_empty() {
            return Err(Error::NoEncryptionKey { fingerprint });
        }
        let usable: Vec<String> = capable
            .iter()
            .filter(|ka| ka.alive().is_ok())
            .filter(|ka| !matches!(ka.revocation_status(), RevocationStatus::Revoked(_)))
            .map(|ka| ka.key().fingerprint().to_hex())
            .collect();
        if !usable.is_empty() {
            return Ok(usable);
        }
        if capable
            .iter()
            .all(|ka| matches!(ka.revocation_status(), RevocationStatus::Revoked(_)))
        {
            Err(Error::Revoked { fingerprint })
        } else {
            Err(Error::Expired { fingerprint })
        }
    }

    /// Whether the certificate advertises SEIPD v2 (RFC 9580 §5.2.3.32, Features bit 3), so that
    /// messages to it may use AEAD.
    pub fn supports_seipdv2(&self) -> bool {
        self.inner
            .with_policy(&POLICY, None)
            .ok()
            .and_then(|vc| vc.features())
            .is_some_and(|f| f.supports_seipdv2())
    }

    /// The certificate in `encoding` (no secret key material either way).
    pub fn export(&self, encoding: Encoding) -> Result<Vec<u8>> {
        match encoding {
            Encoding::Armored => self.to_armored(),
            Encoding::Binary => self.inner.to_vec().map_err(|e| op("serialize", &e)),
        }
    }

    /// The certificate as ASCII armor.
    pub fn to_armored(&self) -> Result<Vec<u8>> {
        self.inner
            .armored()
            .to_vec()
            .map_err(|e| op("serialize", &e))
    }

    /// The sequoia certificate inside, for callers that need more.
    pub fn as_sequoia(&self) -> &openpgp::Cert {
        &self.inner
    }
}

/// How a key file is written: ASCII armor (RFC 9580 §6) or binary packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// ASCII armor (`-----BEGIN PGP ... BLOCK-----`).
    #[default]
    Armored,
    /// Binary OpenPGP packets.
    Binary,
}

/// The kind of key [`SecretKey::generate`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// v4: Ed25519 signing, Curve25519 ECDH encryption (what GnuPG 2.2 makes by default).
    Cv25519,
    /// v4: RSA 3072 bits.
    Rsa3072,
    /// v4: NIST P-256.
    P256,
    /// v4: NIST P-384.
    P384,
    /// RFC 9580 v6: Ed25519 and X25519.
    V6Cv25519,
    /// RFC 9580 v6 with the post-quantum composites of draft-ietf-openpgp-pqc: ML-DSA-65+Ed25519
    /// primary and signing subkey, ML-KEM-768+X25519 encryption subkey. Messages to it are
    /// always SEIPD v2. Needs OpenSSL >= 3.5 under Sequoia (the workspace links a vendored one).
    V6MlDsa65Ed25519,
    /// v4: Ed25519 signing (as [`KeyKind::Cv25519`]) with an ML-KEM-768+X25519 encryption
    /// subkey, the one post-quantum algorithm draft-ietf-openpgp-pqc allows on v4 keys.
    Ed25519MlKem768,
}

impl KeyKind {
    /// Whether the kind has a post-quantum (draft-ietf-openpgp-pqc) key in it.
    pub fn is_post_quantum(self) -> bool {
        matches!(self, KeyKind::V6MlDsa65Ed25519 | KeyKind::Ed25519MlKem768)
    }
}

/// A transferable secret key (RFC 9580 §10.2) whose signing and decryption keys are unlocked.
///
/// Debug shows the fingerprint only; the unlocked key material stays in sequoia's protected,
/// zeroized memory.
pub struct SecretKey {
    cert: Cert,
    /// The secret (sub)keys, decrypted.
    keys: Vec<Key<key::SecretParts, key::UnspecifiedRole>>,
    /// The TSK as loaded (secret key material possibly still locked), for export.
    tsk: openpgp::Cert,
    /// Per entry of `keys`: its RSA form on aws-lc with CRT parameters, made at first use
    /// (`None` inside: not RSA, or refused; Sequoia's key pair is then used).
    rsa: Vec<std::sync::OnceLock<Option<std::sync::Arc<crate::rsa::RsaCrt>>>>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("fingerprint", &self.cert.fingerprint())
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl SecretKey {
    /// Reads the first transferable secret key in `data` (armored or binary) and unlocks its
    /// secret keys with `passphrase`. A locked key with a wrong or no passphrase gives
    /// [`Error::BadPassphrase`]; keys GnuPG exports as stubs (no secret) are skipped.
    pub fn load(
        data: &[u8],
        passphrase: Option<&SecretString>,
        limits: &Limits,
    ) -> Result<SecretKey> {
        check_input_size(data, limits)?;
        crate::decrypt::guard("secret key", || SecretKey::load_inner(data, passphrase))
    }

    fn load_inner(data: &[u8], passphrase: Option<&SecretString>) -> Result<SecretKey> {
        let mut parser = CertParser::from_bytes(data).map_err(|e| malformed("secret key", &e))?;
        let tsk = loop {
            match parser.next() {
                Some(Ok(c)) if c.is_tsk() => break c,
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(malformed("secret key", &e)),
                None => {
                    return Err(Error::Malformed {
                        what: "secret key",
                        detail: "no secret key found".into(),
                    });
                }
            }
        };
        let password = passphrase.map(|p| Password::from(p.expose_secret()));
        let mut keys = Vec::new();
        for ka in tsk.keys().secret() {
            // Not `role_into_unspecified` before decrypting: RFC 9580 §5.5.3 binds an AEAD-locked
            // (v6) secret to its packet type, which Sequoia takes from the key's role.
            let k = ka.key().clone();
            // GnuPG's stubs (`--export-secret-subkeys`: gnu-dummy S2K 101, or a key on a
            // card) carry no secret here: skip them, they are not a passphrase problem.
            if let openpgp::packet::key::SecretKeyMaterial::Encrypted(e) = k.secret()
                && !e.s2k().is_supported()
            {
                continue;
            }
            if k.secret().is_encrypted() {
                let Some(pw) = &password else {
                    return Err(Error::BadPassphrase);
                };
                match k.decrypt_secret(pw) {
                    Ok(k) => keys.push(k.role_into_unspecified()),
                    Err(_) => return Err(Error::BadPassphrase),
                }
            } else {
                keys.push(k.role_into_unspecified());
            }
        }
        Ok(SecretKey::from_parts(
            Cert::from_sequoia(tsk.clone()),
            keys,
            tsk,
        ))
    }

    /// The public certificate.
    pub fn cert(&self) -> &Cert {
        &self.cert
    }

    /// Like [`SecretKey::generate`], but the key advertises only SEIPD v1 (with MDC) in its
    /// Features, as keys made by GnuPG 2.2 do: senders that follow the features (the gateway
    /// does) then encrypt to it in a form GnuPG 2.2 reads, never SEIPD v2 / PKESK v6. For
    /// demos and tests whose recipients check the mail with `gpg`. (v4 keys without
    /// post-quantum algorithms only.)
    pub fn generate_for_gnupg(user_id: &str, kind: KeyKind) -> Result<SecretKey> {
        if kind == KeyKind::V6Cv25519 || kind.is_post_quantum() {
            return Err(Error::Malformed {
                what: "key generation",
                detail: "GnuPG 2.2 reads classical v4 keys only".into(),
            });
        }
        Self::generate_with(
            user_id,
            kind,
            Some(openpgp::types::Features::empty().set_seipdv1()),
        )
    }

    /// Generates a new key with one User ID (`"Name <addr@example.org>"`), a signing and an
    /// encryption subkey, no expiry, no passphrase. For tests and examples.
    pub fn generate(user_id: &str, kind: KeyKind) -> Result<SecretKey> {
        Self::generate_with(user_id, kind, None)
    }

    fn generate_with(
        user_id: &str,
        kind: KeyKind,
        features: Option<openpgp::types::Features>,
    ) -> Result<SecretKey> {
        let (suite, v6) = match kind {
            KeyKind::Cv25519 | KeyKind::Ed25519MlKem768 => (CipherSuite::Cv25519, false),
            KeyKind::Rsa3072 => (CipherSuite::RSA3k, false),
            KeyKind::P256 => (CipherSuite::P256, false),
            KeyKind::P384 => (CipherSuite::P384, false),
            KeyKind::V6Cv25519 => (CipherSuite::Cv25519, true),
            KeyKind::V6MlDsa65Ed25519 => (CipherSuite::MLDSA65_Ed25519, true),
        };
        if suite.is_supported().is_err()
            || (kind == KeyKind::Ed25519MlKem768
                && !openpgp::types::PublicKeyAlgorithm::MLKEM768_X25519.is_supported())
        {
            return Err(Error::Operation {
                what: "key generation",
                detail: format!("{kind:?} is not supported by the linked OpenSSL"),
            });
        }
        let mut builder = if kind == KeyKind::Ed25519MlKem768 {
            // Sequoia's builder makes ML-KEM keys only in its v6 suites: the encryption subkey
            // is added below. Same primary, signing subkey and validity as `general_purpose`.
            CertBuilder::new()
                .set_primary_key_flags(KeyFlags::empty().set_certification())
                .set_validity_period(GENERAL_PURPOSE_VALIDITY)
                .add_signing_subkey()
                .add_userid(user_id)
        } else {
            CertBuilder::general_purpose(Some(user_id))
        }
        .set_cipher_suite(suite);
        if v6 {
            builder = builder
                .set_profile(openpgp::Profile::RFC9580)
                .map_err(|e| op("key generation", &e))?;
        }
        if let Some(f) = features {
            builder = builder
                .set_features(f)
                .map_err(|e| op("key generation", &e))?;
        }
        let (mut tsk, _revocation) = builder.generate().map_err(|e| op("key generation", &e))?;
        if kind == KeyKind::Ed25519MlKem768 {
            tsk = add_mlkem768_subkey(tsk).map_err(|e| op("key generation", &e))?;
        }
        let keys = tsk
            .keys()
            .secret()
            .map(|ka| ka.key().clone().role_into_unspecified())
            .collect();
        Ok(SecretKey::from_parts(
            Cert::from_sequoia(tsk.clone()),
            keys,
            tsk,
        ))
    }

    /// The transferable secret key as ASCII armor (locked keys stay locked as loaded).
    pub fn to_armored_secret(&self) -> Result<Vec<u8>> {
        self.tsk
            .as_tsk()
            .armored()
            .to_vec()
            .map_err(|e| op("serialize", &e))
    }

    /// The public certificate as ASCII armor.
    pub fn to_armored_public(&self) -> Result<Vec<u8>> {
        self.cert.to_armored()
    }

    /// The transferable secret key for a key file: every secret (sub)key locked under
    /// `passphrase` when one is given (RFC 9580 §3.7: iterated and salted S2K with AES-256 for
    /// v4 keys, as GnuPG reads them; AEAD (OCB) for v6), else as loaded; ASCII armor or binary.
    /// Keys this value holds no secret for (GnuPG's stubs) are written as they were read. The
    /// result may hold unlocked key material: it is wiped when dropped.
    pub fn export_secret(
        &self,
        passphrase: Option<&SecretString>,
        encoding: Encoding,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let tsk = match passphrase {
            None => self.tsk.clone(),
            Some(p) => self.locked(p).map_err(|e| op("key protection", &e))?,
        };
        let tsk = tsk.as_tsk();
        let bytes = match encoding {
            Encoding::Armored => tsk.armored().to_vec(),
            Encoding::Binary => tsk.to_vec(),
        }
        .map_err(|e| op("serialize", &e))?;
        Ok(Zeroizing::new(bytes))
    }

    /// The TSK with every secret key we hold unlocked replaced by a copy locked under
    /// `passphrase`.
    fn locked(&self, passphrase: &SecretString) -> openpgp::Result<openpgp::Cert> {
        let password = Password::from(passphrase.expose_secret());
        let unlocked = |fpr: &openpgp::Fingerprint| {
            self.keys
                .iter()
                .find(|k| k.fingerprint() == *fpr && !k.secret().is_encrypted())
                .cloned()
        };
        let mut packets = Vec::new();
        for p in self.tsk.clone().into_tsk().into_packets() {
            packets.push(match p {
                openpgp::Packet::SecretKey(k) => match unlocked(&k.fingerprint()) {
                    Some(u) => u.role_into_primary().encrypt_secret(&password)?.into(),
                    None => openpgp::Packet::SecretKey(k),
                },
                openpgp::Packet::SecretSubkey(k) => match unlocked(&k.fingerprint()) {
                    Some(u) => u.role_into_subordinate().encrypt_secret(&password)?.into(),
                    None => openpgp::Packet::SecretSubkey(k),
                },
                p => p,
            });
        }
        openpgp::Cert::from_packets(packets.into_iter())
    }

    /// The unlocked secret key with this fingerprint or key ID, if we hold one.
    pub(crate) fn secret_for(
        &self,
        handle: &openpgp::KeyHandle,
    ) -> Option<&Key<key::SecretParts, key::UnspecifiedRole>> {
        self.keys.iter().find(|k| handle.aliases(k.key_handle()))
    }

    /// Every unlocked secret key that can decrypt (for wildcard recipients, RFC 9580 §5.1).
    pub(crate) fn decryption_keys(
        &self,
    ) -> impl Iterator<Item = &Key<key::SecretParts, key::UnspecifiedRole>> {
        self.keys.iter().filter(|k| k.pk_algo().for_encryption())
    }

    fn from_parts(
        cert: Cert,
        keys: Vec<Key<key::SecretParts, key::UnspecifiedRole>>,
        tsk: openpgp::Cert,
    ) -> SecretKey {
        let rsa = keys.iter().map(|_| std::sync::OnceLock::new()).collect();
        SecretKey {
            cert,
            keys,
            tsk,
            rsa,
        }
    }

    /// The fastest key pair for `key` (one of ours, from [`SecretKey::secret_for`] or
    /// [`SecretKey::decryption_keys`]): RSA with CRT on aws-lc (see `crate::rsa`), else
    /// Sequoia's. `None` when Sequoia cannot make a key pair of it either.
    pub(crate) fn keypair(
        &self,
        key: &Key<key::SecretParts, key::UnspecifiedRole>,
    ) -> Option<crate::rsa::AnyKeyPair> {
        let fast = self
            .keys
            .iter()
            .position(|k| k.fingerprint() == key.fingerprint())
            .and_then(|i| self.rsa.get(i))
            .and_then(|slot| {
                slot.get_or_init(|| crate::rsa::RsaCrt::from_key(key).map(std::sync::Arc::new))
                    .clone()
            });
        match fast {
            Some(crt) => Some(crate::rsa::AnyKeyPair::Rsa(crate::rsa::RsaKeyPair::new(
                key.clone().take_secret().0,
                crt,
            ))),
            None => key
                .clone()
                .into_keypair()
                .ok()
                .map(crate::rsa::AnyKeyPair::Sequoia),
        }
    }

    /// A key pair for signing now: the first valid, alive, unrevoked signing-capable key.
    pub(crate) fn signing_keypair(&self) -> Result<crate::rsa::AnyKeyPair> {
        let vc = self
            .cert
            .inner
            .with_policy(&POLICY, None)
            .map_err(|_| Error::NoSigningKey)?;
        for ka in vc.keys().for_signing().alive().revoked(false).supported() {
            if let Some(k) = self.secret_for(&ka.key().key_handle()) {
                return self.keypair(k).ok_or(Error::NoSigningKey);
            }
        }
        Err(Error::NoSigningKey)
    }
}

/// The validity period Sequoia's `CertBuilder::general_purpose` gives (three years).
const GENERAL_PURPOSE_VALIDITY: std::time::Duration =
    std::time::Duration::from_secs(3 * 52 * 7 * 24 * 60 * 60);

/// Binds a new v4 ML-KEM-768+X25519 encryption subkey (draft-ietf-openpgp-pqc) to `tsk`'s
/// primary key.
fn add_mlkem768_subkey(tsk: openpgp::Cert) -> openpgp::Result<openpgp::Cert> {
    use openpgp::packet::key::Key4;
    use openpgp::packet::signature::SignatureBuilder;
    use openpgp::types::{KeyFlags, SignatureType};
    let subkey: Key<key::SecretParts, key::SubordinateRole> =
        Key4::generate_mlkem768_x25519()?.into();
    let mut primary = tsk
        .primary_key()
        .key()
        .clone()
        .parts_into_secret()?
        .into_keypair()?;
    let binding = subkey.bind(
        &mut primary,
        &tsk,
        SignatureBuilder::new(SignatureType::SubkeyBinding).set_key_flags(
            KeyFlags::empty()
                .set_transport_encryption()
                .set_storage_encryption(),
        )?,
    )?;
    Ok(tsk
        .insert_packets(vec![openpgp::Packet::from(subkey), binding.into()])?
        .0)
}

/// RFC 5321 §2.4: the local part is case-sensitive, the domain is not.
pub(crate) fn same_address(a: &str, b: &str) -> bool {
    match (a.rsplit_once('@'), b.rsplit_once('@')) {
        (Some((la, da)), Some((lb, db))) => la == lb && da.eq_ignore_ascii_case(db),
        _ => false,
    }
}

fn classify_validity(e: &openpgp::anyhow::Error, fingerprint: &str) -> Error {
    match e.downcast_ref::<openpgp::Error>() {
        Some(openpgp::Error::Expired(_)) => Error::Expired {
            fingerprint: fingerprint.to_owned(),
        },
        _ => Error::Malformed {
            what: "certificate",
            detail: format!("not valid under the standard policy: {e}"),
        },
    }
}

pub(crate) fn check_input_size(data: &[u8], limits: &Limits) -> Result<()> {
    if data.len() > limits.max_message_bytes {
        return Err(Error::LimitExceeded {
            what: "input size",
            limit: limits.max_message_bytes as u64,
        });
    }
    Ok(())
}

pub(crate) fn malformed(what: &'static str, e: &openpgp::anyhow::Error) -> Error {
    Error::Malformed {
        what,
        detail: e.to_string(),
    }
}

pub(crate) fn op(what: &'static str, e: &openpgp::anyhow::Error) -> Error {
    Error::Operation {
        what,
        detail: e.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn generated_for_gnupg_advertises_seipd_v1_only() {
        let k = SecretKey::generate_for_gnupg("G <g@example.org>", KeyKind::Cv25519).unwrap();
        assert!(!k.cert().supports_seipdv2());
        assert!(k.cert().has_address("g@example.org"));
        assert!(SecretKey::generate_for_gnupg("G <g@example.org>", KeyKind::V6Cv25519).is_err());
        // the plain generator keeps sequoia's defaults, which include SEIPD v2
        let k = SecretKey::generate("H <h@example.org>", KeyKind::Cv25519).unwrap();
        assert!(k.cert().supports_seipdv2());
    }

    pub(crate) fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/../../tests/data/pgp/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    pub(crate) fn cert(name: &str) -> Cert {
        let mut v =
            Cert::load_all(&fixture(&format!("{name}.pub.asc")), &Limits::default()).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    pub(crate) fn secret(name: &str) -> SecretKey {
        SecretKey::load(
            &fixture(&format!("{name}.sec.asc")),
            None,
            &Limits::default(),
        )
        .unwrap()
    }

    pub(crate) const RSA_FPR: &str = "B30C7C5DB58423E72D1A2BBCCF668EC2FB64F3FF";
    pub(crate) const ED_FPR: &str = "8DCCF9544E62A1EF41B9C822A78BDD08095FAA71";

    #[test]
    fn loads_armored_binary_and_keyrings() {
        let limits = Limits::default();
        let rsa = cert("rsa");
        assert_eq!(rsa.fingerprint(), RSA_FPR);
        assert_eq!(rsa.addresses(), vec!["rsa@example.org".to_owned()]);
        let bin = Cert::load_all(&fixture("rsa.pub.pgp"), &limits).unwrap();
        assert_eq!(bin.len(), 1);
        assert_eq!(bin[0].fingerprint(), RSA_FPR);
        let ring = Cert::load_all(&fixture("keyring.pub.asc"), &limits).unwrap();
        let fprs: Vec<_> = ring.iter().map(Cert::fingerprint).collect();
        assert_eq!(fprs, vec![RSA_FPR.to_owned(), ED_FPR.to_owned()]);
        let mut small = Limits::default();
        small.max_certificates = 1;
        assert!(matches!(
            Cert::load_all(&fixture("keyring.pub.asc"), &small),
            Err(Error::LimitExceeded { limit: 1, .. })
        ));
        // A secret key file loads as its public certificate, without the secrets.
        let from_sec = Cert::load_all(&fixture("ed.sec.asc"), &limits).unwrap();
        assert_eq!(from_sec[0].fingerprint(), ED_FPR);
        assert!(!from_sec[0].as_sequoia().is_tsk());
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in [
            &b""[..],
            b"hello",
            b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n",
        ] {
            assert!(
                matches!(
                    Cert::load_all(bad, &Limits::default()),
                    Err(Error::Malformed { .. })
                ),
                "{bad:?}"
            );
        }
        let mut tiny = Limits::default();
        tiny.max_message_bytes = 10;
        assert!(matches!(
            Cert::load_all(&fixture("rsa.pub.asc"), &tiny),
            Err(Error::LimitExceeded { .. })
        ));
    }

    #[test]
    fn address_match_is_exact_local_part_case_insensitive_domain() {
        let rsa = cert("rsa");
        assert!(rsa.has_address("rsa@example.org"));
        assert!(rsa.has_address("rsa@EXAMPLE.Org"));
        assert!(!rsa.has_address("RSA@example.org"));
        assert!(!rsa.has_address("rs@example.org"));
        assert!(!rsa.has_address("rsa@example.org.evil"));
    }

    #[test]
    fn encryption_keys_and_typed_errors() {
        let now = SystemTime::now();
        let keys = cert("rsa")
            .encryption_keys_for(Some("rsa@example.org"), now)
            .unwrap();
        assert_eq!(keys.len(), 1);
        assert_ne!(
            keys[0], RSA_FPR,
            "the encryption subkey, not the signing primary"
        );
        assert!(matches!(
            cert("rsa").encryption_keys_for(Some("other@example.org"), now),
            Err(Error::NoMatchingUserId { address }) if address == "other@example.org"
        ));
        let e = cert("expired").encryption_keys_for(None, now);
        assert!(
            matches!(&e, Err(Error::Expired { fingerprint }) if fingerprint == "92BD94175B1C8BBD60833500765AFF406F7184C6"),
            "{e:?}"
        );
        let e = cert("revoked").encryption_keys_for(Some("revoked@example.org"), now);
        assert!(
            matches!(&e, Err(Error::Revoked { fingerprint }) if fingerprint == "9B07486056AAD8C69CC56DA14E598014B8BE54A6"),
            "{e:?}"
        );
        let e = cert("signonly").encryption_keys_for(None, now);
        assert!(
            matches!(&e, Err(Error::NoEncryptionKey { fingerprint }) if fingerprint == "1DAD353950689EEAED5329F919945AD92DD6DB1E"),
            "{e:?}"
        );
    }

    #[test]
    fn passphrase() {
        let limits = Limits::default();
        let data = fixture("locked.sec.asc");
        assert!(matches!(
            SecretKey::load(&data, None, &limits),
            Err(Error::BadPassphrase)
        ));
        let wrong = SecretString::from("wrong horse");
        assert!(matches!(
            SecretKey::load(&data, Some(&wrong), &limits),
            Err(Error::BadPassphrase)
        ));
        let right = SecretString::from("correct horse");
        let k = SecretKey::load(&data, Some(&right), &limits).unwrap();
        assert_eq!(
            k.cert().fingerprint(),
            "D315FD4ABF732BF514924BD9F72977F6D8023FAC"
        );
        let dbg = format!("{k:?}");
        assert!(
            dbg.contains("[redacted]") && !dbg.contains("horse"),
            "{dbg}"
        );
        // A public certificate is not a secret key.
        assert!(matches!(
            SecretKey::load(&fixture("rsa.pub.asc"), None, &limits),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn generated_keys_export_and_reload() {
        for kind in [KeyKind::Cv25519, KeyKind::P256, KeyKind::V6Cv25519] {
            let k = SecretKey::generate("Gen <gen@example.org>", kind).unwrap();
            let sec = k.to_armored_secret().unwrap();
            assert!(sec.starts_with(b"-----BEGIN PGP PRIVATE KEY BLOCK-----"));
            let again = SecretKey::load(&sec, None, &Limits::default()).unwrap();
            assert_eq!(again.cert().fingerprint(), k.cert().fingerprint());
            let public =
                Cert::load_all(&k.to_armored_public().unwrap(), &Limits::default()).unwrap();
            assert_eq!(public[0].fingerprint(), k.cert().fingerprint());
            assert!(!public[0].as_sequoia().is_tsk());
            assert_eq!(public[0].addresses(), vec!["gen@example.org".to_owned()]);
            if kind == KeyKind::V6Cv25519 {
                assert_eq!(k.cert().as_sequoia().primary_key().key().version(), 6);
                assert_eq!(k.cert().fingerprint().len(), 64);
            }
        }
    }

    #[test]
    fn exported_secret_is_locked_under_the_passphrase() {
        let limits = Limits::default();
        let pass = SecretString::from("correct horse");
        for kind in [KeyKind::Cv25519, KeyKind::V6Cv25519] {
            let k = SecretKey::generate("Lock <lock@example.org>", kind).unwrap();
            for encoding in [Encoding::Armored, Encoding::Binary] {
                let locked = k.export_secret(Some(&pass), encoding).unwrap();
                assert_eq!(
                    locked.starts_with(b"-----BEGIN PGP PRIVATE KEY BLOCK-----"),
                    encoding == Encoding::Armored
                );
                assert!(matches!(
                    SecretKey::load(&locked, None, &limits),
                    Err(Error::BadPassphrase)
                ));
                assert!(matches!(
                    SecretKey::load(&locked, Some(&SecretString::from("wrong")), &limits),
                    Err(Error::BadPassphrase)
                ));
                let again = SecretKey::load(&locked, Some(&pass), &limits).unwrap();
                assert_eq!(again.cert().fingerprint(), k.cert().fingerprint());
                // every secret (sub)key, primary included, is locked
                let tsk = openpgp::Cert::from_bytes(&locked[..]).unwrap();
                assert_eq!(tsk.keys().secret().count(), 3);
                assert!(
                    tsk.keys()
                        .secret()
                        .all(|ka| ka.key().secret().is_encrypted())
                );
                // and a locked key that was loaded can be locked again under a new passphrase
                let new = SecretString::from("new horse");
                let relocked = again.export_secret(Some(&new), encoding).unwrap();
                assert!(SecretKey::load(&relocked, Some(&new), &limits).is_ok());
                let clear = k.export_secret(None, encoding).unwrap();
                assert!(SecretKey::load(&clear, None, &limits).is_ok());
                let public = k.cert().export(encoding).unwrap();
                let c = Cert::load_all(&public, &limits).unwrap();
                assert_eq!(c[0].fingerprint(), k.cert().fingerprint());
                assert!(!openpgp::Cert::from_bytes(&public).unwrap().is_tsk());
            }
        }
    }

    #[test]
    fn seipdv2_feature() {
        // GnuPG 2.2 does not advertise SEIPD v2; a sequoia v6 key does.
        assert!(!cert("rsa").supports_seipdv2());
        let v6 = SecretKey::generate("V6 <v6@example.org>", KeyKind::V6Cv25519).unwrap();
        assert!(v6.cert().supports_seipdv2());
    }
}
