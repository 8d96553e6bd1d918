//! PKCS#12 export (RFC 7292): a private key with its certificate and chain in one
//! password-protected file, for backup and for moving an identity to a mail client.
//!
//! Two layouts, both as OpenSSL 3 writes them (an AuthenticatedSafe of an encryptedData with
//! the certificates and a data with one pkcs8ShroudedKeyBag, then a password MAC):
//! - [`Pkcs12Format::Aes256`]: OpenSSL 3's default. Key and certificates under PBES2 with
//!   PBKDF2-HMAC-SHA256 and AES-256-CBC; HMAC-SHA256 MAC. Read by OpenSSL 3, Windows 10 (1709)
//!   and later, macOS, Thunderbird and our own reader.
//! - [`Pkcs12Format::Legacy3Des`]: pbeWithSHAAnd3-KeyTripleDES-CBC for the key and the
//!   certificates; HMAC-SHA1 MAC. For gpgsm (which refuses the AES layout), Java 8 and old
//!   Windows. OpenSSL's `-legacy` puts the certificates under 40-bit RC2; 3DES is used for both
//!   here because it is stronger and does not need OpenSSL's legacy provider to be read.
//!
//! The key and its certificate carry a localKeyId attribute (SHA-1 of the certificate), as
//! OpenSSL writes it, so that readers that pair by attribute find them.

use std::num::NonZeroU32;

use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Encode, Sequence};
use rand_core::CryptoRngCore;
use secrecy::{ExposeSecret, SecretString};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;

use super::{CERT_BAG, ID_DATA, ID_ENCRYPTED_DATA, SHROUDED_KEY_BAG, X509_CERTIFICATE};
use crate::alg::DigestAlgorithm;
use crate::error::{Error, Result};
use crate::keyfile::Identity;
use crate::pbe::{self, Password, WriteScheme};

/// PKCS#9 localKeyId (RFC 2985 §5.5.2).
const LOCAL_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.21");

/// OpenSSL's default iteration count for PKCS#12 encryption and MAC (`PKCS12_DEFAULT_ITER`).
pub const DEFAULT_ITERATIONS: u32 = 2048;

/// Which PKCS#12 layout to write (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pkcs12Format {
    /// PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC, HMAC-SHA256 MAC (OpenSSL 3 default).
    Aes256,
    /// pbeWithSHAAnd3-KeyTripleDES-CBC, HMAC-SHA1 MAC (gpgsm, Java 8, old Windows).
    Legacy3Des,
}

#[derive(Sequence)]
struct PfxOut {
    version: u8,
    auth_safe: ContentInfoOut,
    mac_data: MacDataOut,
}

#[derive(Sequence)]
struct ContentInfoOut {
    content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    content: Any,
}

#[derive(Sequence)]
struct MacDataOut {
    mac: DigestInfoOut,
    mac_salt: OctetString,
    iterations: u32,
}

#[derive(Sequence)]
struct DigestInfoOut {
    algorithm: AlgorithmIdentifierOwned,
    digest: OctetString,
}

/// SafeBag (RFC 7292 §4.2).
#[derive(Sequence)]
struct SafeBagOut {
    bag_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    bag_value: Any,
    bag_attributes: Option<SetOfVec<Attribute>>,
}

/// CertBag (RFC 7292 §4.2.3).
#[derive(Sequence)]
struct CertBagOut {
    cert_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    cert_value: OctetString,
}

/// EncryptedPrivateKeyInfo (RFC 5958 §3).
#[derive(Sequence)]
struct EncryptedPrivateKeyInfoOut {
    encryption_algorithm: AlgorithmIdentifierOwned,
    encrypted_data: OctetString,
}

/// EncryptedData (RFC 5652 §8) with its EncryptedContentInfo.
#[derive(Sequence)]
struct EncryptedDataOut {
    version: u8,
    encrypted_content_info: EncryptedContentInfoOut,
}

#[derive(Sequence)]
struct EncryptedContentInfoOut {
    content_type: ObjectIdentifier,
    content_encryption_algorithm: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    encrypted_content: OctetString,
}

/// Write `identity` (key, certificate, chain) as a PKCS#12 file protected by `password`, with
/// OpenSSL's default iteration count ([`DEFAULT_ITERATIONS`]).
pub fn export(
    identity: &Identity,
    password: &SecretString,
    format: Pkcs12Format,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>> {
    export_with_iterations(identity, password, format, DEFAULT_ITERATIONS, rng)
}

/// [`export`] with a chosen iteration count for the key derivations (encryption and MAC).
/// Readers bound what they accept (ours: [`crate::Limits::max_kdf_iterations`]).
pub fn export_with_iterations(
    identity: &Identity,
    password: &SecretString,
    format: Pkcs12Format,
    iterations: u32,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>> {
    let iterations = NonZeroU32::new(iterations).ok_or_else(|| Error::InvalidKey {
        reason: "PKCS#12 iteration count must be at least 1".into(),
    })?;
    let (scheme, mac_digest) = match format {
        Pkcs12Format::Aes256 => (WriteScheme::Pbes2Aes256, DigestAlgorithm::Sha256),
        Pkcs12Format::Legacy3Des => (WriteScheme::Pkcs12TripleDes, DigestAlgorithm::Sha1),
    };
    let pw = Password::new(password.expose_secret());
    let key_id = DigestAlgorithm::Sha1.digest(identity.cert.der());
    let key_id_attr = || -> Result<SetOfVec<Attribute>> {
        let attr = Attribute {
            oid: LOCAL_KEY_ID,
            values: SetOfVec::try_from(vec![Any::encode_from(&OctetString::new(
                key_id.clone(),
            )?)?])?,
        };
        Ok(SetOfVec::try_from(vec![attr])?)
    };

    // Certificates: the identity's first (with localKeyId), then its chain.
    let mut cert_bags = Vec::with_capacity(1 + identity.chain.len());
    for (i, cert) in std::iter::once(&identity.cert)
        .chain(identity.chain.iter())
        .enumerate()
    {
        let bag = CertBagOut {
            cert_id: X509_CERTIFICATE,
            cert_value: OctetString::new(cert.der())?,
        };
        cert_bags.push(SafeBagOut {
            bag_id: CERT_BAG,
            bag_value: Any::encode_from(&bag)?,
            bag_attributes: if i == 0 { Some(key_id_attr()?) } else { None },
        });
    }
    let cert_contents = cert_bags.to_der()?;
    let (cert_alg, cert_ciphertext) = pbe::encrypt(scheme, &cert_contents, pw, iterations, rng)?;
    let encrypted_certs = EncryptedDataOut {
        version: 0,
        encrypted_content_info: EncryptedContentInfoOut {
            content_type: ID_DATA,
            content_encryption_algorithm: cert_alg,
            encrypted_content: OctetString::new(cert_ciphertext)?,
        },
    };

    // The key: encrypted PKCS#8; the clear PKCS#8 lives only in a Zeroizing buffer.
    let pkcs8 = identity.key.to_pkcs8_der()?;
    let (key_alg, key_ciphertext) = pbe::encrypt(scheme, &pkcs8, pw, iterations, rng)?;
    drop(pkcs8);
    let shrouded = EncryptedPrivateKeyInfoOut {
        encryption_algorithm: key_alg,
        encrypted_data: OctetString::new(key_ciphertext)?,
    };
    let key_contents = vec![SafeBagOut {
        bag_id: SHROUDED_KEY_BAG,
        bag_value: Any::encode_from(&shrouded)?,
        bag_attributes: Some(key_id_attr()?),
    }]
    .to_der()?;

    // AuthenticatedSafe ::= SEQUENCE OF ContentInfo (RFC 7292 §4.1).
    let auth_safe = vec![
        ContentInfoOut {
            content_type: ID_ENCRYPTED_DATA,
            content: Any::encode_from(&encrypted_certs)?,
        },
        ContentInfoOut {
            content_type: ID_DATA,
            content: Any::encode_from(&OctetString::new(key_contents)?)?,
        },
    ]
    .to_der()?;

    // RFC 7292 §5.1 and Appendix B.4: HMAC over the authSafe content, keyed by the PKCS#12 KDF
    // (ID 3) with the MAC digest.
    let mut mac_salt = [0u8; 8];
    rng.fill_bytes(&mut mac_salt);
    let mac_key = pbe::pkcs12_kdf(
        mac_digest,
        &pw.bmp(),
        &mac_salt,
        3,
        iterations,
        mac_digest.output_len(),
    );
    let mac_key = aws_lc_rs::hmac::Key::new(pbe::hmac_for_digest(mac_digest), &mac_key);
    let mac = aws_lc_rs::hmac::sign(&mac_key, &auth_safe);

    PfxOut {
        version: 3,
        auth_safe: ContentInfoOut {
            content_type: ID_DATA,
            content: Any::encode_from(&OctetString::new(auth_safe)?)?,
        },
        mac_data: MacDataOut {
            mac: DigestInfoOut {
                algorithm: AlgorithmIdentifierOwned {
                    oid: mac_digest.oid(),
                    parameters: Some(Any::null()),
                },
                digest: OctetString::new(mac.as_ref())?,
            },
            mac_salt: OctetString::new(mac_salt)?,
            iterations: iterations.get(),
        },
    }
    .to_der()
    .map_err(Error::from)
}

impl Identity {
    /// Write this identity as PKCS#12: see [`export`].
    pub fn to_pkcs12(
        &self,
        password: &SecretString,
        format: Pkcs12Format,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>> {
        export(self, password, format, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CertificateParams, Curve, KeyKind, Limits, PrivateKey, issue};

    fn identity(kind: KeyKind) -> Identity {
        let mut rng = rand_core::OsRng;
        let ca_key = PrivateKey::generate(KeyKind::Ec(Curve::P256)).unwrap();
        let ca =
            issue::self_signed(&ca_key, &CertificateParams::ca("Export CA"), &mut rng).unwrap();
        let key = PrivateKey::generate(kind).unwrap();
        let cert = issue::issue(
            key.public_key(),
            &CertificateParams::user("Exp", "exp@example.com"),
            &ca,
            &ca_key,
            &mut rng,
        )
        .unwrap();
        Identity::new(key, cert, vec![ca]).unwrap()
    }

    #[test]
    fn round_trips_through_our_reader() {
        let pw = SecretString::from("s3cret pässword");
        for kind in [KeyKind::Ec(Curve::P256), KeyKind::Rsa(2048)] {
            let id = identity(kind);
            for format in [Pkcs12Format::Aes256, Pkcs12Format::Legacy3Des] {
                let p12 = export(&id, &pw, format, &mut rand_core::OsRng).unwrap();
                let back = Identity::from_pkcs12(&p12, &pw, &Limits::default()).unwrap();
                assert_eq!(back.cert, id.cert, "{format:?}");
                assert_eq!(back.chain, id.chain, "{format:?}");
                assert!(back.key.matches(&id.cert));
                assert_eq!(
                    &back.key.to_pkcs8_der().unwrap()[..],
                    &id.key.to_pkcs8_der().unwrap()[..]
                );
                assert!(matches!(
                    Identity::from_pkcs12(&p12, &SecretString::from("wrong"), &Limits::default()),
                    Err(Error::BadPassword)
                ));
            }
        }
    }

    #[test]
    fn key_is_not_in_clear_and_output_differs_each_time() {
        let id = identity(KeyKind::Ec(Curve::P256));
        let pkcs8 = id.key.to_pkcs8_der().unwrap();
        let pw = SecretString::from("pw");
        let a = export(&id, &pw, Pkcs12Format::Aes256, &mut rand_core::OsRng).unwrap();
        let b = export(&id, &pw, Pkcs12Format::Aes256, &mut rand_core::OsRng).unwrap();
        assert_ne!(a, b, "fresh salts and IVs");
        // no 16-byte window of the clear key appears in the file
        for file in [&a, &b] {
            for w in pkcs8.windows(16) {
                assert!(!file.windows(16).any(|f| f == w));
            }
        }
        // the certificate is encrypted too
        assert!(!a.windows(id.cert.der().len()).any(|w| w == id.cert.der()));
    }

    #[test]
    fn iteration_count_is_written_and_bounded_by_the_reader() {
        let id = identity(KeyKind::Ec(Curve::P256));
        let pw = SecretString::from("pw");
        let p12 =
            export_with_iterations(&id, &pw, Pkcs12Format::Aes256, 5000, &mut rand_core::OsRng)
                .unwrap();
        let mut limits = Limits::default();
        assert!(Identity::from_pkcs12(&p12, &pw, &limits).is_ok());
        limits.max_kdf_iterations = 4999;
        assert!(matches!(
            Identity::from_pkcs12(&p12, &pw, &limits),
            Err(Error::LimitExceeded { .. })
        ));
        assert!(
            export_with_iterations(&id, &pw, Pkcs12Format::Aes256, 0, &mut rand_core::OsRng)
                .is_err()
        );
    }
}
