//! Key files: private keys in every PEM and DER form OpenSSL writes, and identities (key +
//! certificate + chain) from separate files or from PKCS#12.
//!
//! PKCS#12 is read by a small reader of our own on `der` rather than the `pkcs12` crate, whose
//! pre-release pins a `cms` version that cannot coexist with the one Sealgate uses; a
//! `[patch.crates-io]` would work here but not for crates.io users of Sealgate, and a second
//! `der` major for `pkcs12` 0.1 would double the ASN.1 stack. Password-based encryption
//! (PBES2 with PBKDF2, the PKCS#12 PBE schemes) is done with aws-lc-rs, and with the RustCrypto
//! `des` and `rc2` crates for the legacy ciphers only.

use der::asn1::OctetStringRef;
use der::{Decode, Reader, SliceReader, Tag};
use secrecy::{ExposeSecret, SecretString};
use spki::AlgorithmIdentifierRef;
use zeroize::Zeroizing;

use crate::ber;
use crate::error::{Error, Result};
use crate::keys::{Certificate, PrivateKey};
use crate::pbe::{self, Password};
use crate::pem;
use crate::pkcs12;
use sealgate_mime::Limits;

/// PEM labels of private keys we read, in RFC 7468 / OpenSSL spelling.
const LABEL_PKCS8: &str = "PRIVATE KEY";
const LABEL_ENCRYPTED_PKCS8: &str = "ENCRYPTED PRIVATE KEY";
const LABEL_PKCS1: &str = "RSA PRIVATE KEY";
const LABEL_SEC1: &str = "EC PRIVATE KEY";

/// Load a private key from PEM or DER.
///
/// PEM labels `PRIVATE KEY` (PKCS#8), `ENCRYPTED PRIVATE KEY` (PKCS#8 EncryptedPrivateKeyInfo,
/// RFC 5958 §3), `RSA PRIVATE KEY` (PKCS#1) and `EC PRIVATE KEY` (SEC1, RFC 5915) are read; the
/// first such block counts, and other blocks (`EC PARAMETERS`, certificates) are skipped. DER
/// of any of these, encrypted PKCS#8 included, is recognised by its shape. PKCS#8 holds RSA,
/// EC, ML-KEM (RFC 9935) or ML-DSA (RFC 9881) keys, the post-quantum ones in seed, expanded or
/// both form ([`PrivateKey::from_pkcs8_der`]).
///
/// Encrypted keys need `password`: [`Error::BadPassword`] if it is wrong or missing. Iteration
/// counts above [`Limits::max_kdf_iterations`] give [`Error::LimitExceeded`] before any work.
pub fn load_private_key(
    data: &[u8],
    password: Option<&SecretString>,
    limits: &Limits,
) -> Result<PrivateKey> {
    if !pem::is_pem(data) {
        let der = to_der_secret(data, limits)?;
        return match outer_first_tag(&der)? {
            // EncryptedPrivateKeyInfo starts with an AlgorithmIdentifier ...
            Tag::Sequence => decrypt_pkcs8(&der, password_of(password)?, limits),
            // ... PrivateKeyInfo, RSAPrivateKey and ECPrivateKey with a version INTEGER.
            Tag::Integer => PrivateKey::from_der(&der, limits),
            t => Err(Error::malformed("private key", format!("unexpected {t}"))),
        };
    }
    let blocks = pem::parse_all(data, limits.max_certificates.saturating_add(4))?;
    let block = blocks
        .iter()
        .find(|b| {
            [LABEL_PKCS8, LABEL_ENCRYPTED_PKCS8, LABEL_PKCS1, LABEL_SEC1]
                .contains(&b.label.as_str())
        })
        .ok_or_else(|| Error::malformed("private key", "no private key block in PEM"))?;
    let der = to_der_secret(&block.der, limits)?;
    match block.label.as_str() {
        LABEL_PKCS8 => PrivateKey::from_pkcs8_der(&der, limits),
        LABEL_ENCRYPTED_PKCS8 => decrypt_pkcs8(&der, password_of(password)?, limits),
        LABEL_PKCS1 => PrivateKey::from_pkcs1_der(&der, limits),
        // OpenSSL writes the curve inside ECPrivateKey as well as in the EC PARAMETERS block.
        _ => PrivateKey::from_sec1_der(&der),
    }
}

/// [`ber::to_der`] for bytes that hold key material: the result is wiped when dropped, whether
/// the normaliser had to rewrite the input or not.
pub(crate) fn to_der_secret(data: &[u8], limits: &Limits) -> Result<Zeroizing<Vec<u8>>> {
    Ok(Zeroizing::new(ber::to_der(data, limits)?.into_owned()))
}

fn password_of(password: Option<&SecretString>) -> Result<Password<'_>> {
    password
        .map(|p| Password::new(p.expose_secret()))
        .ok_or(Error::BadPassword)
}

/// The tag of the first element inside the outer SEQUENCE; the whole input must be one TLV.
fn outer_first_tag(der: &[u8]) -> Result<Tag> {
    let mut reader = SliceReader::new(der).map_err(|e| Error::malformed("private key", e))?;
    let tag = reader
        .sequence(|r| {
            let tag = Tag::peek(r)?;
            while !r.is_finished() {
                let _ = der::AnyRef::decode(r)?;
            }
            Ok::<_, der::Error>(tag)
        })
        .and_then(|t| reader.finish().map(|_| t))
        .map_err(|e| Error::malformed("private key", e))?;
    Ok(tag)
}

/// Decrypt a PKCS#8 EncryptedPrivateKeyInfo (RFC 5958 §3) and load the key inside.
pub(crate) fn decrypt_pkcs8(
    der: &[u8],
    password: Password<'_>,
    limits: &Limits,
) -> Result<PrivateKey> {
    // EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm, encryptedData OCTET STRING }
    let mut reader = SliceReader::new(der)?;
    let (alg, data) = reader
        .sequence(|r| {
            let alg = AlgorithmIdentifierRef::decode(r)?;
            let data = <&OctetStringRef>::decode(r)?;
            Ok::<_, der::Error>((alg, data))
        })
        .map_err(|e| Error::malformed("encrypted private key", e))?;
    reader
        .finish()
        .map_err(|e| Error::malformed("encrypted private key", e))?;
    let plain = pbe::decrypt(&alg, data.as_bytes(), password, limits)?;
    // Under a wrong password the padding comes out right about once in 256 tries; what is then
    // "decrypted" is noise. Anything that is not shaped like a PrivateKeyInfo (not even BER)
    // is therefore a wrong password, while a well-formed key of an unsupported kind keeps its
    // own error.
    let Ok(plain) = to_der_secret(&plain, limits) else {
        return Err(Error::BadPassword);
    };
    if !looks_like_private_key_info(&plain) {
        return Err(Error::BadPassword);
    }
    PrivateKey::from_pkcs8_der(&plain, limits)
}

/// PBKDF2-HMAC-SHA256 iterations for [`encrypt_private_key`] (OWASP's 2023 figure for it; well
/// inside [`Limits::max_kdf_iterations`], OpenSSL reads any count).
pub const PKCS8_ITERATIONS: u32 = 600_000;

/// EncryptedPrivateKeyInfo (RFC 5958 §3) as written.
#[derive(der::Sequence)]
struct EncryptedPrivateKeyInfoOut {
    encryption_algorithm: spki::AlgorithmIdentifierOwned,
    encrypted_data: der::asn1::OctetString,
}

/// `key` as a PKCS#8 EncryptedPrivateKeyInfo (RFC 5958 §3) DER under `password`: PBES2 with
/// PBKDF2-HMAC-SHA256 ([`PKCS8_ITERATIONS`]) and AES-256-CBC (RFC 8018), what `openssl pkcs8
/// -topk8 -v2 aes-256-cbc` writes; PEM label `ENCRYPTED PRIVATE KEY`. [`load_private_key`] and
/// OpenSSL read it back. Salt and IV come from `rng`; the clear PKCS#8 is wiped after use.
pub fn encrypt_private_key(
    key: &PrivateKey,
    password: &SecretString,
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<Vec<u8>> {
    use der::Encode;
    let iterations = std::num::NonZeroU32::new(PKCS8_ITERATIONS).ok_or(Error::Crypto {
        what: "private key encryption",
    })?;
    let pkcs8 = key.to_pkcs8_der()?;
    let (alg, ciphertext) = pbe::encrypt(
        pbe::WriteScheme::Pbes2Aes256,
        &pkcs8,
        Password::new(password.expose_secret()),
        iterations,
        rng,
    )?;
    Ok(EncryptedPrivateKeyInfoOut {
        encryption_algorithm: alg,
        encrypted_data: der::asn1::OctetString::new(ciphertext)?,
    }
    .to_der()?)
}

/// PrivateKeyInfo / OneAsymmetricKey (RFC 5958 §2): SEQUENCE { INTEGER, AlgorithmIdentifier,
/// OCTET STRING, ... }, the whole input.
fn looks_like_private_key_info(der: &[u8]) -> bool {
    let Ok(mut reader) = SliceReader::new(der) else {
        return false;
    };
    let shape = reader.sequence(|r| {
        let _version = der::asn1::UintRef::decode(r)?;
        let _alg = AlgorithmIdentifierRef::decode(r)?;
        let _key = <&OctetStringRef>::decode(r)?;
        while !r.is_finished() {
            let _ = der::AnyRef::decode(r)?;
        }
        Ok::<_, der::Error>(())
    });
    shape.is_ok() && reader.finish().is_ok()
}

/// A private key with its certificate and the chain (intermediates) to send along.
#[derive(Debug)]
pub struct Identity {
    /// The private key.
    pub key: PrivateKey,
    /// The certificate of `key`.
    pub cert: Certificate,
    /// Other certificates to send with signatures (intermediate CAs), in file order.
    pub chain: Vec<Certificate>,
}

impl Identity {
    /// An identity from a key and certificate already loaded; checks that they belong together.
    pub fn new(key: PrivateKey, cert: Certificate, chain: Vec<Certificate>) -> Result<Self> {
        if !key.matches(&cert) {
            return Err(Error::KeyMismatch);
        }
        Ok(Self { key, cert, chain })
    }

    /// Build an identity from a key file, a certificate file and an optional chain file (PEM
    /// or DER each; see [`load_private_key`]).
    ///
    /// The certificate is the one in `cert` whose public key is the key's (so a "full chain"
    /// PEM works whatever its order); the other certificates of `cert`, then those of `chain`,
    /// form the chain. [`Error::KeyMismatch`] if no certificate in `cert` belongs to the key.
    pub fn from_files(
        key: &[u8],
        cert: &[u8],
        chain: Option<&[u8]>,
        password: Option<&SecretString>,
        limits: &Limits,
    ) -> Result<Self> {
        let key = load_private_key(key, password, limits)?;
        let mut certs = Certificate::load_all(cert, limits)?;
        let pos = certs
            .iter()
            .position(|c| key.matches(c))
            .ok_or(Error::KeyMismatch)?;
        let cert = certs.remove(pos);
        if let Some(chain) = chain {
            certs.extend(Certificate::load_all(chain, limits)?);
        }
        if certs.len() >= limits.max_certificates {
            return Err(Error::LimitExceeded {
                what: "certificates",
                limit: limits.max_certificates as u64,
            });
        }
        Ok(Self {
            key,
            cert,
            chain: certs,
        })
    }

    /// Read a PKCS#12 (`.p12`/`.pfx`) file: OpenSSL 3's default (PBES2, AES-256-CBC, SHA-256
    /// MAC), OpenSSL `-legacy` and older Windows/Java files (3DES and RC2, SHA-1 MAC), and
    /// unencrypted bags.
    ///
    /// The MAC is verified first ([`Error::BadPassword`] if it fails). The certificate is the
    /// one whose public key is the key's, wherever it is in the file; the other certificates
    /// form the chain in file order. An empty password is tried both ways OpenSSL writes it.
    pub fn from_pkcs12(data: &[u8], password: &SecretString, limits: &Limits) -> Result<Self> {
        let contents = pkcs12::parse(data, password, limits)?;
        Self::pair(contents.keys, contents.certs)
    }

    /// Pick the first key that has a certificate; the remaining certificates are the chain.
    fn pair(keys: Vec<PrivateKey>, mut certs: Vec<Certificate>) -> Result<Self> {
        if keys.is_empty() {
            return Err(Error::InvalidKey {
                reason: "the PKCS#12 file holds no private key".into(),
            });
        }
        for key in keys {
            if let Some(pos) = certs.iter().position(|c| key.matches(c)) {
                let cert = certs.remove(pos);
                return Ok(Self {
                    key,
                    cert,
                    chain: certs,
                });
            }
        }
        Err(Error::KeyMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alg::DigestAlgorithm;

    fn data(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../tests/data/keys/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn pw() -> SecretString {
        SecretString::from("sealgate-test")
    }

    fn cert(name: &str) -> Certificate {
        Certificate::load(&data(name), &Limits::default()).unwrap()
    }

    #[test]
    fn encrypted_pkcs8_round_trips_for_every_kind() {
        use crate::enveloped::MlKem;
        use crate::keys::{Curve, KeyKind};
        let limits = Limits::default();
        for kind in [
            KeyKind::Ec(Curve::P256),
            KeyKind::Rsa(2048),
            KeyKind::MlKem(MlKem::MlKem768),
        ] {
            let key = PrivateKey::generate(kind).unwrap();
            let der = encrypt_private_key(&key, &pw(), &mut rand_core::OsRng).unwrap();
            let clear = key.to_pkcs8_der().unwrap();
            assert!(pem::find(&der, &clear[clear.len() - 16..]).is_none());
            let pem = pem::encode(LABEL_ENCRYPTED_PKCS8, &der);
            for file in [&der[..], pem.as_bytes()] {
                let back = load_private_key(file, Some(&pw()), &limits).unwrap();
                assert_eq!(back.public_key(), key.public_key(), "{kind:?}");
                assert!(matches!(
                    load_private_key(file, Some(&SecretString::from("wrong")), &limits),
                    Err(Error::BadPassword)
                ));
                assert!(matches!(
                    load_private_key(file, None, &limits),
                    Err(Error::BadPassword)
                ));
            }
        }
    }

    /// The key is right: it matches the certificate, and a signature made with it verifies
    /// under the certificate's public key.
    fn assert_key_is(key: &PrivateKey, cert_file: &str) {
        let cert = cert(cert_file);
        assert!(key.matches(&cert), "key does not match {cert_file}");
        let msg = b"sealgate key check";
        let scheme = key.signature_scheme(DigestAlgorithm::Sha256);
        let sig = key.sign(scheme, msg).unwrap();
        let public = cert.public_key().unwrap();
        assert!(public.verify(scheme, msg, &sig).unwrap());
        assert!(!public.verify(scheme, b"other message", &sig).unwrap());
    }

    fn load(name: &str, password: Option<&SecretString>) -> Result<PrivateKey> {
        load_private_key(&data(name), password, &Limits::default())
    }

    /// Regression: the RSA size bound was checked after aws-lc-rs had loaded (and checked the
    /// consistency of) the key, and any failure was reported as "not a key": a 16384-bit key
    /// (numbers of the right sizes, tests/hostile/make.py) is now refused by size first.
    #[test]
    fn rsa_key_over_the_size_bound_is_refused_before_loading() {
        let p = format!(
            "{}/../../tests/hostile/rsa-16384.pk8.der",
            env!("CARGO_MANIFEST_DIR")
        );
        let der = std::fs::read(p).unwrap();
        let r = PrivateKey::from_der(&der, &Limits::default());
        assert!(
            matches!(r, Err(Error::LimitExceeded { limit: 8192, .. })),
            "{:?}",
            r.map(|_| ())
        );
    }

    #[test]
    fn loads_every_plain_encoding() {
        for name in ["rsa.pk8.pem", "rsa.pk8.der", "rsa.pk1.pem", "rsa.pk1.der"] {
            assert_key_is(&load(name, None).unwrap(), "rsa.pem");
        }
        for name in ["ec.pk8.pem", "ec.pk8.der", "ec.sec1.pem", "ec.sec1.der"] {
            assert_key_is(&load(name, None).unwrap(), "ec.pem");
        }
    }

    #[test]
    fn loads_encrypted_pkcs8() {
        for name in [
            "rsa.enc-aes256.pem",
            "rsa.enc-aes256.der",
            "rsa.enc-pbe-sha1-3des.pem",
        ] {
            assert_key_is(&load(name, Some(&pw())).unwrap(), "rsa.pem");
        }
        for name in [
            "ec.enc-aes256.pem",
            "ec.enc-des3-sha1.pem",
            "ec.enc-aes128-sha512.pem",
            "ec.enc-aes192-sha384.pem",
            "ec.enc-pbe-sha1-rc2-128.pem",
            "ec.enc-pbe-sha1-rc2-40.pem",
            "ec.enc-pbe-sha1-2des.pem",
        ] {
            let key = load(name, Some(&pw())).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_key_is(&key, "ec.pem");
        }
    }

    #[test]
    fn pbes1_is_unsupported() {
        let r = load("ec.enc-pbes1-md5-des.pem", Some(&pw()));
        assert!(
            matches!(&r, Err(Error::UnsupportedAlgorithm { oid, .. }) if oid == "1.2.840.113549.1.5.3"),
            "{r:?}"
        );
    }

    #[test]
    fn wrong_or_missing_password_is_bad_password() {
        let wrong = SecretString::from("not-the-password");
        for name in [
            "rsa.enc-aes256.pem",
            "rsa.enc-aes256.der",
            "rsa.enc-pbe-sha1-3des.pem",
            "ec.enc-des3-sha1.pem",
            "ec.enc-pbe-sha1-rc2-40.pem",
        ] {
            assert!(
                matches!(load(name, Some(&wrong)), Err(Error::BadPassword)),
                "{name}"
            );
            assert!(
                matches!(load(name, None), Err(Error::BadPassword)),
                "{name}"
            );
        }
    }

    #[test]
    fn iteration_count_above_limit_is_refused() {
        // The fixtures use OpenSSL's default of 2048 iterations.
        let mut limits = Limits::default();
        limits.max_kdf_iterations = 2047;
        for name in ["rsa.enc-aes256.pem", "rsa.enc-pbe-sha1-3des.pem"] {
            let r = load_private_key(&data(name), Some(&pw()), &limits);
            assert!(
                matches!(r, Err(Error::LimitExceeded { limit: 2047, .. })),
                "{name}: {r:?}"
            );
        }
        let mut limits = Limits::default();
        limits.max_kdf_iterations = 2048;
        assert_key_is(
            &load_private_key(&data("rsa.enc-aes256.pem"), Some(&pw()), &limits).unwrap(),
            "rsa.pem",
        );
    }

    #[test]
    fn truncated_or_garbage_is_malformed() {
        let limits = Limits::default();
        for name in ["rsa.pk8.der", "rsa.enc-aes256.der", "ec.sec1.der"] {
            let d = data(name);
            let r = load_private_key(&d[..d.len() - 7], Some(&pw()), &limits);
            assert!(matches!(r, Err(Error::Malformed { .. })), "{name}: {r:?}");
        }
        let pem = data("rsa.pk8.pem");
        let r = load_private_key(&pem[..pem.len() / 2], None, &limits);
        assert!(matches!(r, Err(Error::Malformed { .. })), "{r:?}");
        for garbage in [&b""[..], b"hello world", &[0x30, 0x80, 0, 0], &[0xff; 64]] {
            let r = load_private_key(garbage, None, &limits);
            assert!(matches!(r, Err(Error::Malformed { .. })), "{r:?}");
        }
        let r = load_private_key(&data("rsa.pem"), None, &limits);
        assert!(matches!(r, Err(Error::Malformed { .. })), "{r:?}");
    }

    #[test]
    fn legacy_pem_encryption_is_refused_with_a_hint() {
        let r = load("rsa.pk1-legacy-enc.pem", Some(&pw()));
        assert!(
            matches!(&r, Err(Error::InvalidKey { reason }) if reason.contains("pkcs8 -topk8")),
            "{r:?}"
        );
    }

    #[test]
    fn debug_output_has_no_key_material() {
        let id = p12("rsa.p12", "sealgate-test").unwrap();
        let s = format!("{id:?}");
        assert!(s.contains("[redacted]"), "{s}");
        assert!(s.contains("Alice RSA"), "{s}");
        assert!(!s.contains("sealgate-test"), "{s}");
    }

    #[test]
    fn identity_from_files() {
        let limits = Limits::default();
        let id = Identity::from_files(
            &data("rsa.enc-aes256.pem"),
            &data("rsa.pem"),
            Some(&data("chain.pem")),
            Some(&pw()),
            &limits,
        )
        .unwrap();
        assert_key_is(&id.key, "rsa.pem");
        assert_eq!(id.cert, cert("rsa.pem"));
        let subjects: Vec<String> = id.chain.iter().map(Certificate::subject).collect();
        assert_eq!(
            subjects,
            [
                "CN=Sealgate Test Intermediate CA",
                "CN=Sealgate Test Root CA"
            ]
        );

        // A full-chain PEM in any order: the certificate is found by its key.
        let mut full = data("chain.pem");
        full.extend(data("ec.pem"));
        let id = Identity::from_files(&data("ec.sec1.pem"), &full, None, None, &limits).unwrap();
        assert_eq!(id.cert, cert("ec.pem"));
        assert_eq!(id.chain.len(), 2);
        assert_eq!(id.chain[0], cert("int.pem"));

        let r = Identity::from_files(&data("ec.pk8.pem"), &data("rsa.pem"), None, None, &limits);
        assert!(matches!(r, Err(Error::KeyMismatch)), "{r:?}");
    }

    fn p12(name: &str, password: &str) -> Result<Identity> {
        Identity::from_pkcs12(
            &data(name),
            &SecretString::from(password),
            &Limits::default(),
        )
    }

    fn assert_chain(id: &Identity) {
        let subjects: Vec<String> = id.chain.iter().map(Certificate::subject).collect();
        assert_eq!(
            subjects,
            [
                "CN=Sealgate Test Intermediate CA",
                "CN=Sealgate Test Root CA"
            ]
        );
    }

    #[test]
    fn pkcs12_openssl3_default() {
        let id = p12("rsa.p12", "sealgate-test").unwrap();
        assert_key_is(&id.key, "rsa.pem");
        assert_eq!(id.cert, cert("rsa.pem"));
        assert_chain(&id);
        let id = p12("ec.p12", "sealgate-test").unwrap();
        assert_key_is(&id.key, "ec.pem");
        assert_eq!(id.cert, cert("ec.pem"));
        assert_chain(&id);
    }

    #[test]
    fn pkcs12_legacy() {
        for (name, cert_file) in [("rsa.legacy.p12", "rsa.pem"), ("ec.legacy.p12", "ec.pem")] {
            let id = p12(name, "sealgate-test").unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_key_is(&id.key, cert_file);
            assert_eq!(id.cert, cert(cert_file));
            assert_chain(&id);
        }
    }

    #[test]
    fn pkcs12_other_variants() {
        for name in ["ec.nopbe.p12", "ec.sha512mac.p12"] {
            let id = p12(name, "sealgate-test").unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_key_is(&id.key, "ec.pem");
            assert_chain(&id);
        }
        for name in ["ec.emptypw.p12", "ec.emptypw.legacy.p12"] {
            let id = p12(name, "").unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_key_is(&id.key, "ec.pem");
            assert_chain(&id);
        }
    }

    #[test]
    fn pkcs12_pbmac1() {
        // RFC 9579 MAC (PBKDF2-HMAC-SHA256 + HMAC-SHA256), made by p12rewrite.py.
        let id = p12("ec.pbmac1.p12", "sealgate-test").unwrap();
        assert_key_is(&id.key, "ec.pem");
        assert_chain(&id);
        assert!(matches!(
            p12("ec.pbmac1.p12", "wrong"),
            Err(Error::BadPassword)
        ));
        let mut limits = Limits::default();
        limits.max_kdf_iterations = 2047;
        let r = Identity::from_pkcs12(&data("ec.pbmac1.p12"), &pw(), &limits);
        assert!(matches!(r, Err(Error::LimitExceeded { .. })), "{r:?}");
    }

    #[test]
    fn pkcs12_constructed_encrypted_content() {
        // encryptedContent [0] IMPLICIT in the constructed form, as Windows writes it.
        let id = p12("ec.legacy.segmented.p12", "sealgate-test").unwrap();
        assert_key_is(&id.key, "ec.pem");
        assert_eq!(id.cert, cert("ec.pem"));
        assert_chain(&id);
    }

    #[test]
    fn pkcs12_ber_indefinite_lengths() {
        for (name, cert_file) in [("ec.legacy.ber.p12", "ec.pem"), ("rsa.ber.p12", "rsa.pem")] {
            let id = p12(name, "sealgate-test").unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_key_is(&id.key, cert_file);
            assert_eq!(id.cert, cert(cert_file));
            assert_chain(&id);
        }
    }

    #[test]
    fn pkcs12_without_mac_or_encryption() {
        // No integrity and no privacy: any password opens it (as with OpenSSL).
        for password in ["sealgate-test", "", "anything"] {
            let id = p12("ec.nomac.p12", password).unwrap();
            assert_key_is(&id.key, "ec.pem");
            assert_chain(&id);
        }
    }

    /// Every truncation and a sweep of byte flips must give an error or a correct result,
    /// never a panic (the files without MAC or encryption expose the inner parsers).
    #[test]
    fn mutated_inputs_do_not_panic() {
        let limits = Limits::default();
        let password = pw();
        for name in ["ec.nomac.p12", "ec.p12", "ec.legacy.segmented.p12"] {
            let original = data(name);
            for len in (0..original.len()).step_by(13) {
                let _ = Identity::from_pkcs12(&original[..len], &password, &limits);
            }
            for i in (0..original.len()).step_by(5) {
                let mut d = original.clone();
                d[i] ^= 0x5a;
                if let Ok(id) = Identity::from_pkcs12(&d, &password, &limits) {
                    assert!(id.key.matches(&id.cert), "{name} flip at {i}");
                }
            }
        }
        for name in [
            "ec.pk8.der",
            "ec.sec1.der",
            "rsa.enc-aes256.der",
            "ec.enc-aes256.pem",
        ] {
            let original = data(name);
            for len in 0..original.len() {
                let _ = load_private_key(&original[..len], Some(&password), &limits);
            }
            for i in 0..original.len() {
                let mut d = original.clone();
                d[i] ^= 0x81;
                let _ = load_private_key(&d, Some(&password), &limits);
            }
        }
    }

    #[test]
    fn pkcs12_non_ascii_password() {
        let password = "pässwörd-€";
        for (name, cert_file) in [
            ("rsa.utf8pw.p12", "rsa.pem"),
            ("ec.utf8pw.legacy.p12", "ec.pem"),
            // MAC keyed the way OpenSSL before 1.1.0 encoded non-ASCII passwords.
            ("rsa.oldpw.p12", "rsa.pem"),
        ] {
            let id = p12(name, password).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_key_is(&id.key, cert_file);
            assert_chain(&id);
            assert!(
                matches!(p12(name, "passwoerd-€"), Err(Error::BadPassword)),
                "{name}"
            );
        }
    }

    #[test]
    fn pkcs12_wrong_password() {
        for name in ["rsa.p12", "ec.legacy.p12", "ec.nopbe.p12"] {
            assert!(
                matches!(p12(name, "wrong"), Err(Error::BadPassword)),
                "{name}"
            );
            assert!(matches!(p12(name, ""), Err(Error::BadPassword)), "{name}");
        }
        assert!(matches!(
            p12("ec.emptypw.p12", "x"),
            Err(Error::BadPassword)
        ));
    }

    #[test]
    fn pkcs12_limits_and_garbage() {
        let mut limits = Limits::default();
        limits.max_kdf_iterations = 1000;
        let r = Identity::from_pkcs12(&data("ec.p12"), &pw(), &limits);
        assert!(matches!(r, Err(Error::LimitExceeded { .. })), "{r:?}");
        let mut limits = Limits::default();
        limits.max_certificates = 2;
        let r = Identity::from_pkcs12(&data("ec.p12"), &pw(), &limits);
        assert!(matches!(r, Err(Error::LimitExceeded { .. })), "{r:?}");

        let d = data("ec.p12");
        for bad in [&d[..d.len() - 1], &d[..100], b"garbage", &[]] {
            let r = Identity::from_pkcs12(bad, &pw(), &Limits::default());
            assert!(matches!(r, Err(Error::Malformed { .. })), "{r:?}");
        }
        // No key in the file.
        let r = p12("nokey.p12", "sealgate-test");
        assert!(matches!(r, Err(Error::InvalidKey { .. })), "{r:?}");
    }

    #[test]
    fn pairing_is_by_public_key_not_order() {
        let limits = Limits::default();
        let key = load_private_key(&data("ec.pk8.pem"), None, &limits).unwrap();
        let mut certs = Certificate::load_all(&data("chain.pem"), &limits).unwrap();
        certs.insert(1, cert("ec.pem"));
        certs.push(cert("rsa.pem"));
        let id = Identity::pair(vec![key], certs).unwrap();
        assert_eq!(id.cert, cert("ec.pem"));
        let subjects: Vec<String> = id.chain.iter().map(Certificate::subject).collect();
        assert_eq!(
            subjects,
            [
                "CN=Sealgate Test Intermediate CA",
                "CN=Sealgate Test Root CA",
                "EMAIL=alice@example.com,CN=Alice RSA"
            ]
        );
        let key = load_private_key(&data("ec.pk8.pem"), None, &limits).unwrap();
        let r = Identity::pair(vec![key], vec![cert("rsa.pem")]);
        assert!(matches!(r, Err(Error::KeyMismatch)), "{r:?}");
    }
}
