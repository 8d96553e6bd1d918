//! Certificates, public keys and private keys: the one certificate loader of Sealgate.
//!
//! Every private-key operation (RSA PKCS#1 v1.5 and PSS signing, RSA PKCS#1 v1.5 and OAEP
//! decryption, ECDSA, ECDH, ML-KEM decapsulation, ML-DSA signing) is done by [aws-lc-rs](https://docs.rs/aws-lc-rs), whose RSA is
//! constant-time and blinded. The `rsa` crate is deliberately not used for private keys while
//! RUSTSEC-2023-0071 (the Marvin timing attack) applies to it.

use std::time::SystemTime;

use aws_lc_rs::{agreement, rsa as lc_rsa, signature as lc_sig};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::{Decode, Encode, Reader};
use x509_cert::ext::pkix::{SubjectAltName, name::GeneralName};
use zeroize::Zeroizing;

use crate::alg::DigestAlgorithm;
use crate::enveloped::MlKem;
use crate::error::{Error, Result};
use crate::pem;
use sealgate_mime::Limits;

/// `emailAddress` attribute of a distinguished name (PKCS#9).
pub(crate) const EMAIL_ADDRESS: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.1");

/// An X.509 certificate: the parsed structure and its exact DER encoding.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    cert: x509_cert::Certificate,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject())
            .field("serial", &self.serial_hex())
            .field("sha256", &self.fingerprint_sha256())
            .finish()
    }
}

impl Certificate {
    /// Parse one DER-encoded certificate.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| Error::malformed("certificate", e))?;
        Ok(Self {
            der: der.to_vec(),
            cert,
        })
    }

    /// Parse a PEM or DER file holding one or more certificates (PEM `CERTIFICATE` blocks;
    /// other blocks such as keys are skipped). Errors if none is found.
    pub fn load_all(data: &[u8], limits: &Limits) -> Result<Vec<Self>> {
        if pem::is_pem(data) {
            let certs = pem::parse_unencrypted(data, limits.max_certificates.saturating_mul(2))?
                .into_iter()
                .filter(|b| b.label == "CERTIFICATE" || b.label == "X509 CERTIFICATE")
                .map(|b| Self::from_der(&b.der))
                .collect::<Result<Vec<_>>>()?;
            if certs.is_empty() {
                return Err(Error::malformed(
                    "certificate",
                    "no CERTIFICATE block in PEM",
                ));
            }
            if certs.len() > limits.max_certificates {
                return Err(Error::LimitExceeded {
                    what: "certificates",
                    limit: limits.max_certificates as u64,
                });
            }
            Ok(certs)
        } else {
            Ok(vec![Self::from_der(data)?])
        }
    }

    /// Parse a PEM or DER file that must hold exactly one certificate (the first is taken if
    /// the PEM holds a chain: that is the leaf by convention).
    pub fn load(data: &[u8], limits: &Limits) -> Result<Self> {
        Self::load_all(data, limits)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::malformed("certificate", "empty file"))
    }

    /// The exact DER encoding this certificate was parsed from.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The parsed certificate (RustCrypto `x509-cert` type).
    pub fn x509(&self) -> &x509_cert::Certificate {
        &self.cert
    }

    /// The subject as an RFC 4514 string.
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate().subject().to_string()
    }

    /// The issuer as an RFC 4514 string.
    pub fn issuer(&self) -> String {
        self.cert.tbs_certificate().issuer().to_string()
    }

    /// The serial number in upper-case hex.
    pub fn serial_hex(&self) -> String {
        hex_upper(self.cert.tbs_certificate().serial_number().as_bytes())
    }

    /// SHA-256 over the DER encoding, upper-case hex (as `openssl x509 -fingerprint -sha256`
    /// prints it, without colons).
    pub fn fingerprint_sha256(&self) -> String {
        hex_upper(&DigestAlgorithm::Sha256.digest(&self.der))
    }

    /// notBefore and notAfter.
    pub fn validity(&self) -> (SystemTime, SystemTime) {
        let v = self.cert.tbs_certificate().validity();
        (v.not_before.to_system_time(), v.not_after.to_system_time())
    }

    /// True if `at` lies within the validity period.
    pub fn is_valid_at(&self, at: SystemTime) -> bool {
        let (nb, na) = self.validity();
        nb <= at && at <= na
    }

    /// The mail addresses the certificate is for: SAN rfc822Name entries, then subject
    /// `emailAddress` attributes, as written in the certificate.
    pub fn email_addresses(&self) -> Vec<String> {
        let mut out = Vec::new();
        let tbs = self.cert.tbs_certificate();
        if let Ok(Some((_, san))) = tbs.get_extension::<SubjectAltName>() {
            for name in san.0 {
                if let GeneralName::Rfc822Name(s) = name {
                    out.push(s.to_string());
                }
            }
        }
        for atv in tbs.subject().iter() {
            if atv.oid == EMAIL_ADDRESS {
                if let Ok(s) = atv.value.decode_as::<der::asn1::Ia5StringRef<'_>>() {
                    out.push(s.to_string());
                } else if let Ok(s) = atv.value.decode_as::<der::asn1::Utf8StringRef<'_>>() {
                    out.push(s.to_string());
                }
            }
        }
        out
    }

    /// True if the certificate names `address`: local part exact, domain case-insensitive.
    pub fn has_email(&self, address: &str) -> bool {
        self.email_addresses()
            .iter()
            .any(|a| addresses_equal(a, address))
    }

    /// The subject public key.
    pub fn public_key(&self) -> Result<PublicKey> {
        PublicKey::from_spki(self.cert.tbs_certificate().subject_public_key_info())
    }

    /// The subjectKeyIdentifier extension value, if present.
    pub fn subject_key_identifier(&self) -> Option<Vec<u8>> {
        self.cert
            .tbs_certificate()
            .get_extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
            .ok()
            .flatten()
            .map(|(_, ski)| ski.0.as_bytes().to_vec())
    }

    /// Whether this is a CA certificate that may issue others: basicConstraints cA set
    /// (RFC 5280 §4.2.1.9) and, when keyUsage is present, keyCertSign in it (§4.2.1.3).
    pub fn is_ca(&self) -> bool {
        let tbs = self.cert.tbs_certificate();
        let ca = matches!(
            tbs.get_extension::<x509_cert::ext::pkix::BasicConstraints>(),
            Ok(Some((_, bc))) if bc.ca
        );
        let may_sign = match tbs.get_extension::<x509_cert::ext::pkix::KeyUsage>() {
            Ok(Some((_, ku))) => ku.key_cert_sign(),
            Ok(None) => true,
            Err(_) => false,
        };
        ca && may_sign
    }

    /// IssuerAndSerialNumber for a RecipientInfo or SignerInfo (RFC 5652 §10.2.4).
    pub fn issuer_and_serial(&self) -> cms::cert::IssuerAndSerialNumber {
        let tbs = self.cert.tbs_certificate();
        cms::cert::IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        }
    }

    /// True if this certificate is identified by `id` (issuer+serial or subject key id).
    pub fn matches_identifier(&self, id: &cms::signed_data::SignerIdentifier) -> bool {
        match id {
            cms::signed_data::SignerIdentifier::IssuerAndSerialNumber(ias) => {
                let tbs = self.cert.tbs_certificate();
                tbs.issuer() == &ias.issuer && tbs.serial_number() == &ias.serial_number
            }
            cms::signed_data::SignerIdentifier::SubjectKeyIdentifier(ski) => {
                self.subject_key_identifier().as_deref() == Some(ski.0.as_bytes())
            }
        }
    }
}

/// Compare two mail addresses: local part exact, domain ASCII case-insensitive.
pub fn addresses_equal(a: &str, b: &str) -> bool {
    match (a.rsplit_once('@'), b.rsplit_once('@')) {
        (Some((la, da)), Some((lb, db))) => la == lb && da.eq_ignore_ascii_case(db),
        _ => false,
    }
}

/// An elliptic curve supported for ECDSA and ECDH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Curve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
}

impl Curve {
    /// The namedCurve object identifier.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Curve::P256 => rfc5912::SECP_256_R_1,
            Curve::P384 => rfc5912::SECP_384_R_1,
        }
    }

    /// The curve for a namedCurve object identifier.
    pub fn from_oid(oid: &ObjectIdentifier) -> Result<Self> {
        match *oid {
            rfc5912::SECP_256_R_1 => Ok(Curve::P256),
            rfc5912::SECP_384_R_1 => Ok(Curve::P384),
            _ => Err(Error::UnsupportedAlgorithm {
                what: "elliptic curve",
                oid: oid.to_string(),
            }),
        }
    }

    /// The digest ECDSA uses with this curve (SHA-256 for P-256, SHA-384 for P-384).
    pub fn digest(self) -> DigestAlgorithm {
        match self {
            Curve::P256 => DigestAlgorithm::Sha256,
            Curve::P384 => DigestAlgorithm::Sha384,
        }
    }

    /// Length of one field element (and of a private scalar) in bytes.
    pub fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }

    pub(crate) fn ecdh(self) -> &'static agreement::Algorithm {
        match self {
            Curve::P256 => &agreement::ECDH_P256,
            Curve::P384 => &agreement::ECDH_P384,
        }
    }

    fn ecdsa_signing(self) -> &'static lc_sig::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &lc_sig::ECDSA_P256_SHA256_ASN1_SIGNING,
            Curve::P384 => &lc_sig::ECDSA_P384_SHA384_ASN1_SIGNING,
        }
    }
}

/// id-ml-dsa-44 (RFC 9881 §2, NIST CSOR sigAlgs 17).
const ML_DSA_44_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.17");
/// id-ml-dsa-65 (sigAlgs 18).
const ML_DSA_65_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.18");
/// id-ml-dsa-87 (sigAlgs 19).
const ML_DSA_87_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.19");

/// An ML-DSA (FIPS 204) parameter set, for post-quantum signatures on messages (RFC 9882) and
/// certificates (RFC 9881). Pure ML-DSA with the empty context string; HashML-DSA is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MlDsa {
    /// ML-DSA-44 (NIST category 2).
    MlDsa44,
    /// ML-DSA-65 (NIST category 3).
    MlDsa65,
    /// ML-DSA-87 (NIST category 5).
    MlDsa87,
}

impl MlDsa {
    /// The parameter set for an AlgorithmIdentifier OID (`id-ml-dsa-*`), if it is one.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        match *oid {
            ML_DSA_44_OID => Some(Self::MlDsa44),
            ML_DSA_65_OID => Some(Self::MlDsa65),
            ML_DSA_87_OID => Some(Self::MlDsa87),
            _ => None,
        }
    }

    /// The OID that names both the public key and the signature algorithm (RFC 9881 §2).
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::MlDsa44 => ML_DSA_44_OID,
            Self::MlDsa65 => ML_DSA_65_OID,
            Self::MlDsa87 => ML_DSA_87_OID,
        }
    }

    /// FIPS 204 public key size in bytes.
    pub fn public_key_len(self) -> usize {
        match self {
            Self::MlDsa44 => 1312,
            Self::MlDsa65 => 1952,
            Self::MlDsa87 => 2592,
        }
    }

    /// FIPS 204 expanded private key size in bytes (the `expandedKey` of RFC 9881 §6).
    pub fn expanded_key_len(self) -> usize {
        match self {
            Self::MlDsa44 => 2560,
            Self::MlDsa65 => 4032,
            Self::MlDsa87 => 4896,
        }
    }

    /// FIPS 204 signature size in bytes.
    pub fn signature_len(self) -> usize {
        match self {
            Self::MlDsa44 => 2420,
            Self::MlDsa65 => 3309,
            Self::MlDsa87 => 4627,
        }
    }

    /// Size of the key generation seed ξ in bytes (32 for every parameter set).
    pub const SEED_LEN: usize = 32;

    fn verification(self) -> &'static lc_sig::PqdsaVerificationAlgorithm {
        match self {
            Self::MlDsa44 => &lc_sig::ML_DSA_44,
            Self::MlDsa65 => &lc_sig::ML_DSA_65,
            Self::MlDsa87 => &lc_sig::ML_DSA_87,
        }
    }

    fn signing(self) -> &'static lc_sig::PqdsaSigningAlgorithm {
        match self {
            Self::MlDsa44 => &lc_sig::ML_DSA_44_SIGNING,
            Self::MlDsa65 => &lc_sig::ML_DSA_65_SIGNING,
            Self::MlDsa87 => &lc_sig::ML_DSA_87_SIGNING,
        }
    }
}

/// A public key from a certificate's SubjectPublicKeyInfo.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA: the `RSAPublicKey` DER (PKCS#1) and the whole SPKI DER.
    Rsa {
        /// SubjectPublicKeyInfo DER.
        spki: Vec<u8>,
        /// RSAPublicKey DER (the BIT STRING contents).
        pkcs1: Vec<u8>,
        /// Modulus size in bits.
        bits: usize,
    },
    /// EC: the curve and the uncompressed point.
    Ec {
        /// The curve.
        curve: Curve,
        /// SEC1 encoded point (the BIT STRING contents).
        point: Vec<u8>,
    },
    /// ML-KEM (RFC 9935): the parameter set and the raw FIPS 203 encapsulation key.
    MlKem {
        /// ML-KEM-768 or ML-KEM-1024.
        kem: MlKem,
        /// Encapsulation key (the BIT STRING contents).
        key: Vec<u8>,
    },
    /// ML-DSA (RFC 9881 §4): the parameter set and the raw FIPS 204 public key.
    MlDsa {
        /// ML-DSA-44, -65 or -87.
        dsa: MlDsa,
        /// The public key (the BIT STRING contents), exactly [`MlDsa::public_key_len`] bytes.
        key: Vec<u8>,
    },
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublicKey::Rsa { bits, .. } => write!(f, "PublicKey::Rsa({bits} bits)"),
            PublicKey::Ec { curve, .. } => write!(f, "PublicKey::Ec({curve:?})"),
            PublicKey::MlKem { kem, .. } => write!(f, "PublicKey::MlKem({kem:?})"),
            PublicKey::MlDsa { dsa, .. } => write!(f, "PublicKey::MlDsa({dsa:?})"),
        }
    }
}

impl PublicKey {
    /// Interpret a SubjectPublicKeyInfo.
    pub fn from_spki(spki: &spki::SubjectPublicKeyInfoOwned) -> Result<Self> {
        let key = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| Error::malformed("public key", "unused bits in key BIT STRING"))?;
        match spki.algorithm.oid {
            rfc5912::RSA_ENCRYPTION => {
                let bits = rsa_modulus_bits(key)?;
                Ok(PublicKey::Rsa {
                    spki: spki.to_der()?,
                    pkcs1: key.to_vec(),
                    bits,
                })
            }
            rfc5912::ID_EC_PUBLIC_KEY => {
                let params = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .ok_or_else(|| Error::malformed("public key", "EC key without curve"))?;
                let curve_oid: ObjectIdentifier = params.decode_as()?;
                let curve = Curve::from_oid(&curve_oid)?;
                if key.len() != 1 + 2 * curve.field_len() || key[0] != 4 {
                    return Err(Error::malformed(
                        "public key",
                        "EC point is not uncompressed",
                    ));
                }
                Ok(PublicKey::Ec {
                    curve,
                    point: key.to_vec(),
                })
            }
            oid if MlKem::from_oid(&oid).is_some() || MlDsa::from_oid(&oid).is_some() => {
                // RFC 9935 §4 (ML-KEM) and RFC 9881 §2/§4 (ML-DSA): parameters absent; the key
                // is exactly the FIPS 203 / FIPS 204 size of its parameter set.
                let params = spki.algorithm.parameters.is_some();
                let exact = |what: &str, len: usize| {
                    if params {
                        return Err(Error::malformed(
                            "public key",
                            format!("{what} parameters present"),
                        ));
                    }
                    if key.len() != len {
                        return Err(Error::malformed("public key", format!("{what} key length")));
                    }
                    Ok(key.to_vec())
                };
                match (MlKem::from_oid(&oid), MlDsa::from_oid(&oid)) {
                    (Some(kem), _) => Ok(PublicKey::MlKem {
                        kem,
                        key: exact("ML-KEM", kem.public_key_len())?,
                    }),
                    (None, Some(dsa)) => Ok(PublicKey::MlDsa {
                        dsa,
                        key: exact("ML-DSA", dsa.public_key_len())?,
                    }),
                    (None, None) => Err(Error::UnsupportedAlgorithm {
                        what: "public key",
                        oid: oid.to_string(),
                    }),
                }
            }
            other => Err(Error::UnsupportedAlgorithm {
                what: "public key",
                oid: other.to_string(),
            }),
        }
    }

    /// Verify a signature over `message`. `alg` says how.
    pub fn verify(&self, alg: SignatureScheme, message: &[u8], signature: &[u8]) -> Result<bool> {
        use lc_sig::{UnparsedPublicKey, VerificationAlgorithm};
        let (valg, key): (&'static dyn VerificationAlgorithm, &[u8]) = match (self, alg) {
            (PublicKey::Rsa { pkcs1, .. }, SignatureScheme::RsaPkcs1(d)) => (
                match d {
                    DigestAlgorithm::Sha1 => &lc_sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                    DigestAlgorithm::Sha256 => &lc_sig::RSA_PKCS1_2048_8192_SHA256,
                    DigestAlgorithm::Sha384 => &lc_sig::RSA_PKCS1_2048_8192_SHA384,
                    DigestAlgorithm::Sha512 => &lc_sig::RSA_PKCS1_2048_8192_SHA512,
                },
                pkcs1,
            ),
            (PublicKey::Rsa { pkcs1, .. }, SignatureScheme::RsaPss(d)) => (
                match d {
                    DigestAlgorithm::Sha256 => &lc_sig::RSA_PSS_2048_8192_SHA256,
                    DigestAlgorithm::Sha384 => &lc_sig::RSA_PSS_2048_8192_SHA384,
                    DigestAlgorithm::Sha512 => &lc_sig::RSA_PSS_2048_8192_SHA512,
                    DigestAlgorithm::Sha1 => {
                        return Err(Error::UnsupportedAlgorithm {
                            what: "signature",
                            oid: "RSASSA-PSS with SHA-1".into(),
                        });
                    }
                },
                pkcs1,
            ),
            (PublicKey::Ec { curve, point }, SignatureScheme::Ecdsa(d)) => (
                match (curve, d) {
                    (Curve::P256, DigestAlgorithm::Sha1) => &lc_sig::ECDSA_P256_SHA1_ASN1,
                    (Curve::P256, DigestAlgorithm::Sha256) => &lc_sig::ECDSA_P256_SHA256_ASN1,
                    (Curve::P256, DigestAlgorithm::Sha384) => &lc_sig::ECDSA_P256_SHA384_ASN1,
                    (Curve::P256, DigestAlgorithm::Sha512) => &lc_sig::ECDSA_P256_SHA512_ASN1,
                    (Curve::P384, DigestAlgorithm::Sha256) => &lc_sig::ECDSA_P384_SHA256_ASN1,
                    (Curve::P384, DigestAlgorithm::Sha384) => &lc_sig::ECDSA_P384_SHA384_ASN1,
                    (Curve::P384, DigestAlgorithm::Sha512) => &lc_sig::ECDSA_P384_SHA512_ASN1,
                    (Curve::P384, DigestAlgorithm::Sha1) => {
                        return Err(Error::UnsupportedAlgorithm {
                            what: "signature",
                            oid: "ECDSA P-384 with SHA-1".into(),
                        });
                    }
                },
                point,
            ),
            // Pure ML-DSA over the whole message, empty context (RFC 9881 §3, RFC 9882 §3.2).
            (PublicKey::MlDsa { dsa, key }, SignatureScheme::MlDsa(want)) if *dsa == want => {
                if signature.len() != dsa.signature_len() {
                    return Ok(false);
                }
                (dsa.verification(), key)
            }
            _ => return Ok(false),
        };
        Ok(UnparsedPublicKey::new(valg, key)
            .verify(message, signature)
            .is_ok())
    }

    /// Verify an RSASSA-PSS signature (RFC 8017 §8.1) with MGF1 over the same digest and the
    /// given salt length. aws-lc-rs verifies a fixed salt length only; the two lengths used in
    /// practice are supported: the digest length (RFC 8702, OpenSSL 3.1+, Sealgate) and the
    /// maximum (OpenSSL 3.0's default). Others are `UnsupportedAlgorithm`.
    pub fn verify_rsa_pss(
        &self,
        digest: DigestAlgorithm,
        salt_len: usize,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool> {
        use lc_sig::{RsaParameters, RsaPssSaltLength::Max, UnparsedPublicKey};
        static MAX_SHA256: RsaParameters =
            lc_sig::RSA_PSS_2048_8192_SHA256.with_pss_salt_length(Max);
        static MAX_SHA384: RsaParameters =
            lc_sig::RSA_PSS_2048_8192_SHA384.with_pss_salt_length(Max);
        static MAX_SHA512: RsaParameters =
            lc_sig::RSA_PSS_2048_8192_SHA512.with_pss_salt_length(Max);
        let PublicKey::Rsa { pkcs1, bits, .. } = self else {
            return Ok(false);
        };
        let h = digest.output_len();
        // RFC 8017 §9.1: emLen = ceil((modBits - 1) / 8); the largest salt is emLen - hLen - 2.
        let max_salt = (bits.saturating_sub(1)).div_ceil(8).saturating_sub(h + 2);
        let alg: &'static RsaParameters = match (digest, salt_len == h, salt_len == max_salt) {
            (DigestAlgorithm::Sha256, true, _) => &lc_sig::RSA_PSS_2048_8192_SHA256,
            (DigestAlgorithm::Sha384, true, _) => &lc_sig::RSA_PSS_2048_8192_SHA384,
            (DigestAlgorithm::Sha512, true, _) => &lc_sig::RSA_PSS_2048_8192_SHA512,
            (DigestAlgorithm::Sha256, false, true) => &MAX_SHA256,
            (DigestAlgorithm::Sha384, false, true) => &MAX_SHA384,
            (DigestAlgorithm::Sha512, false, true) => &MAX_SHA512,
            _ => {
                return Err(Error::UnsupportedAlgorithm {
                    what: "RSASSA-PSS parameters",
                    oid: format!("{digest:?} with salt length {salt_len}"),
                });
            }
        };
        Ok(UnparsedPublicKey::new(alg, pkcs1)
            .verify(message, signature)
            .is_ok())
    }

    /// RSA key transport: encrypt a content-encryption key (RFC 8017 PKCS#1 v1.5 or OAEP).
    pub fn rsa_encrypt(&self, padding: RsaPadding, plaintext: &[u8]) -> Result<Vec<u8>> {
        let PublicKey::Rsa { spki, .. } = self else {
            return Err(Error::UnusableCertificate {
                reason: "not an RSA key".into(),
            });
        };
        let pk = lc_rsa::PublicEncryptingKey::from_der(spki).map_err(|_| Error::Crypto {
            what: "RSA public key",
        })?;
        let fail = |_| Error::Crypto {
            what: "RSA encryption",
        };
        match padding {
            RsaPadding::Pkcs1v15 => {
                let k = lc_rsa::Pkcs1PublicEncryptingKey::new(pk).map_err(fail)?;
                let mut out = vec![0u8; k.ciphertext_size()];
                let n = k.encrypt(plaintext, &mut out).map_err(fail)?.len();
                out.truncate(n);
                Ok(out)
            }
            RsaPadding::Oaep(d) => {
                let k = lc_rsa::OaepPublicEncryptingKey::new(pk).map_err(fail)?;
                let mut out = vec![0u8; k.ciphertext_size()];
                let n = k
                    .encrypt(oaep_alg(d)?, plaintext, &mut out, None)
                    .map_err(fail)?
                    .len();
                out.truncate(n);
                Ok(out)
            }
        }
    }
}

fn oaep_alg(d: DigestAlgorithm) -> Result<&'static lc_rsa::OaepAlgorithm> {
    Ok(match d {
        DigestAlgorithm::Sha1 => &lc_rsa::OAEP_SHA1_MGF1SHA1,
        DigestAlgorithm::Sha256 => &lc_rsa::OAEP_SHA256_MGF1SHA256,
        DigestAlgorithm::Sha384 => &lc_rsa::OAEP_SHA384_MGF1SHA384,
        DigestAlgorithm::Sha512 => &lc_rsa::OAEP_SHA512_MGF1SHA512,
    })
}

/// Bits of the modulus of an RSAPublicKey DER.
fn rsa_modulus_bits(pkcs1: &[u8]) -> Result<usize> {
    #[derive(der::Sequence)]
    struct RsaPublicKey<'a> {
        modulus: der::asn1::UintRef<'a>,
        #[allow(dead_code)]
        public_exponent: der::asn1::UintRef<'a>,
    }
    let k = RsaPublicKey::from_der(pkcs1).map_err(|e| Error::malformed("RSA public key", e))?;
    let m = k.modulus.as_bytes();
    let lead = m.first().copied().unwrap_or(0);
    Ok(m.len() * 8 - lead.leading_zeros() as usize)
}

/// How a signature is made or checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureScheme {
    /// RSASSA-PKCS1-v1_5 with the digest.
    RsaPkcs1(DigestAlgorithm),
    /// RSASSA-PSS with the digest, MGF1 with the same digest, salt length = digest length.
    RsaPss(DigestAlgorithm),
    /// ECDSA with the digest, DER `Ecdsa-Sig-Value`.
    Ecdsa(DigestAlgorithm),
    /// Pure ML-DSA (FIPS 204 ML-DSA.Sign over the whole message, empty context): no separate
    /// digest; in CMS the signed attributes are what is signed (RFC 9882 §3.2).
    MlDsa(MlDsa),
}

/// RSA encryption padding for key transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RsaPadding {
    /// RSAES-PKCS1-v1_5 (`rsaEncryption`), what most clients send.
    Pkcs1v15,
    /// RSAES-OAEP with the digest for both the hash and MGF1, empty label.
    Oaep(DigestAlgorithm),
}

enum KeyInner {
    /// ML-KEM decapsulation key (FIPS 203 expanded form; aws-lc-rs zeroizes it on drop).
    MlKem {
        kem: MlKem,
        dk: aws_lc_rs::kem::DecapsulationKey,
    },
    Rsa {
        sign: lc_sig::RsaKeyPair,
        decrypt: lc_rsa::PrivateDecryptingKey,
    },
    Ec {
        curve: Curve,
        sign: lc_sig::EcdsaKeyPair,
        agree: agreement::PrivateKey,
    },
    /// ML-DSA key pair (aws-lc-rs keeps the seed when the key came from one, and wipes the key
    /// when freed).
    MlDsa {
        dsa: MlDsa,
        pair: lc_sig::PqdsaKeyPair,
    },
}

/// A private key (RSA 2048-8192, ECDSA/ECDH P-256 or P-384, ML-KEM, ML-DSA).
///
/// The key lives inside aws-lc-rs, which wipes it when freed; the DER it was read from is
/// wiped by [`Zeroizing`] as soon as it is parsed. `Debug` prints no key material.
pub struct PrivateKey {
    inner: KeyInner,
    public: PublicKey,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({:?}, [redacted])", self.public)
    }
}

fn rejected(what: &str) -> impl Fn(aws_lc_rs::error::KeyRejected) -> Error + '_ {
    move |e| Error::InvalidKey {
        reason: format!("{what}: {e}"),
    }
}

/// The modulus size of an RSA PKCS#8 `PrivateKeyInfo` (RFC 5208 §5), read from the DER: the
/// second INTEGER of the `RSAPrivateKey` (RFC 8017 §A.1.2) in the privateKey OCTET STRING.
fn pkcs8_rsa_modulus_bits(pkcs8: &[u8]) -> Result<usize> {
    use crate::tlv;
    const WHAT: &str = "RSA private key";
    let info = tlv::single(pkcs8, tlv::SEQUENCE, WHAT)?;
    let mut r = tlv::Reader::new(info.value, WHAT);
    r.expect(tlv::INTEGER)?;
    r.expect(tlv::SEQUENCE)?;
    let key = r.expect(tlv::OCTET_STRING)?;
    let rsa = tlv::single(key.value, tlv::SEQUENCE, WHAT)?;
    let mut r = tlv::Reader::new(rsa.value, WHAT);
    r.expect(tlv::INTEGER)?;
    let n = r.expect(tlv::INTEGER)?;
    let n = match n.value {
        [0, rest @ ..] => rest,
        all => all,
    };
    Ok(n.first()
        .map_or(0, |f| n.len() * 8 - f.leading_zeros() as usize))
}

impl PrivateKey {
    /// Load an unencrypted PKCS#8 `PrivateKeyInfo` / `OneAsymmetricKey` (RSA, EC, ML-KEM in
    /// RFC 9935 form, ML-DSA in RFC 9881 form).
    pub fn from_pkcs8_der(der: &[u8], limits: &Limits) -> Result<Self> {
        #[derive(der::Sequence)]
        struct PrivateKeyInfoHead<'a> {
            #[allow(dead_code)]
            version: u8,
            algorithm: spki::AlgorithmIdentifierRef<'a>,
        }
        // Read version + algorithm only; the rest is parsed by aws-lc-rs.
        let mut reader = der::SliceReader::new(der)?;
        let head = reader.sequence(|r| {
            let version = u8::decode(r)?;
            let algorithm = spki::AlgorithmIdentifierRef::decode(r)?;
            // skip the remaining fields
            while !r.is_finished() {
                let _ = der::asn1::AnyRef::decode(r)?;
            }
            Ok::<_, der::Error>(PrivateKeyInfoHead { version, algorithm })
        })?;
        match head.algorithm.oid {
            rfc5912::RSA_ENCRYPTION => Self::rsa_from_pkcs8(der, limits),
            rfc5912::ID_EC_PUBLIC_KEY => {
                let curve_oid: ObjectIdentifier = head
                    .algorithm
                    .parameters
                    .ok_or_else(|| Error::malformed("private key", "EC key without curve"))?
                    .decode_as()?;
                let curve = Curve::from_oid(&curve_oid)?;
                let sign = lc_sig::EcdsaKeyPair::from_pkcs8(curve.ecdsa_signing(), der)
                    .map_err(rejected("EC private key"))?;
                let agree = agreement::PrivateKey::from_private_key_der(curve.ecdh(), der)
                    .map_err(rejected("EC private key"))?;
                Self::ec(curve, sign, agree)
            }
            oid if MlKem::from_oid(&oid).is_some() => {
                let kem = MlKem::from_oid(&oid).ok_or(Error::InvalidKey {
                    reason: "ML-KEM".into(),
                })?;
                Self::ml_kem_from_pkcs8(kem, der)
            }
            oid if MlDsa::from_oid(&oid).is_some() => {
                let dsa = MlDsa::from_oid(&oid).ok_or(Error::InvalidKey {
                    reason: "ML-DSA".into(),
                })?;
                if head.algorithm.parameters.is_some() {
                    return Err(Error::InvalidKey {
                        reason: "ML-DSA private key: algorithm parameters present".into(),
                    });
                }
                Self::ml_dsa_from_pkcs8(dsa, der)
            }
            other => Err(Error::UnsupportedAlgorithm {
                what: "private key",
                oid: other.to_string(),
            }),
        }
    }

    /// ML-KEM `OneAsymmetricKey` (RFC 9935 §6): privateKey holds the CHOICE seed [0] (64
    /// bytes d || z) / expandedKey OCTET STRING / both SEQUENCE { seed, expandedKey }.
    /// aws-lc-rs 1.19 imports only the expanded key, so a seed is expanded by RustCrypto
    /// `ml-kem` (FIPS 203 ML-KEM.KeyGen_internal) first; in the `both` form the seed must give
    /// the expanded key that travels with it (RFC 9935 §8: a mismatch is refused).
    fn ml_kem_from_pkcs8(kem: MlKem, der: &[u8]) -> Result<Self> {
        let mut reader = der::SliceReader::new(der)?;
        let private: Zeroizing<Vec<u8>> = reader.sequence(|r| {
            let _version = u8::decode(r)?;
            let _alg = spki::AlgorithmIdentifierRef::decode(r)?;
            let pk = <&der::asn1::OctetStringRef>::decode(r)?;
            while !r.is_finished() {
                let _ = der::asn1::AnyRef::decode(r)?;
            }
            Ok::<_, der::Error>(Zeroizing::new(pk.as_bytes().to_vec()))
        })?;
        let bad = |d: &str| Error::InvalidKey {
            reason: format!("ML-KEM private key: {d}"),
        };
        let expanded: Zeroizing<Vec<u8>> = match private.first() {
            Some(0x80) => {
                // [0] IMPLICIT OCTET STRING (SIZE (64)): DER gives exactly 0x80 0x40 || seed.
                let seed = match private.get(1..) {
                    Some([0x40, seed @ ..]) => seed,
                    _ => return Err(bad("seed is not 64 bytes")),
                };
                ml_kem_expand_seed(kem, seed).ok_or_else(|| bad("seed is not 64 bytes"))?
            }
            Some(0x04) => Zeroizing::new(
                <&der::asn1::OctetStringRef>::from_der(&private)?
                    .as_bytes()
                    .to_vec(),
            ),
            Some(0x30) => {
                let mut r = der::SliceReader::new(&private)?;
                let (seed, expanded) = r.sequence(|r| {
                    let seed = <&der::asn1::OctetStringRef>::decode(r)?;
                    let e = <&der::asn1::OctetStringRef>::decode(r)?;
                    Ok::<_, der::Error>((
                        Zeroizing::new(seed.as_bytes().to_vec()),
                        Zeroizing::new(e.as_bytes().to_vec()),
                    ))
                })?;
                let from_seed =
                    ml_kem_expand_seed(kem, &seed).ok_or_else(|| bad("seed is not 64 bytes"))?;
                if aws_lc_rs::constant_time::verify_slices_are_equal(&from_seed, &expanded).is_err()
                {
                    return Err(bad("the seed does not give the expanded key beside it"));
                }
                expanded
            }
            _ => return Err(bad("unknown private key form")),
        };
        // FIPS 203: dk = dk_pke (384k) || ek (384k + 32) || H(ek) (32) || z (32).
        let k = kem.public_key_len().saturating_sub(32) / 384;
        let ek_range = 384 * k..384 * k + kem.public_key_len();
        if expanded.len() != 768 * k + 96 {
            return Err(bad("expanded key length"));
        }
        let key = expanded
            .get(ek_range.clone())
            .ok_or_else(|| bad("expanded key length"))?
            .to_vec();
        // aws-lc-rs checks only the length: the embedded H(ek) must match the embedded ek
        // (FIPS 203 §7.3 input check), or decapsulation would use a key that is not the one
        // the certificate names.
        let h = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA3_256, &key);
        if expanded.get(ek_range.end..ek_range.end + 32) != Some(h.as_ref()) {
            return Err(bad("H(ek) in the expanded key does not match its ek"));
        }
        let dk = aws_lc_rs::kem::DecapsulationKey::new(kem.lc_alg(), &expanded)
            .map_err(rejected("ML-KEM private key"))?;
        Ok(PrivateKey {
            inner: KeyInner::MlKem { kem, dk },
            public: PublicKey::MlKem { kem, key },
        })
    }

    /// The ML-KEM decapsulation key, if this is an ML-KEM key.
    pub(crate) fn ml_kem(&self) -> Option<(MlKem, &aws_lc_rs::kem::DecapsulationKey)> {
        match &self.inner {
            KeyInner::MlKem { kem, dk } => Some((*kem, dk)),
            _ => None,
        }
    }

    /// ML-DSA `OneAsymmetricKey` (RFC 9881 §6): privateKey holds the CHOICE seed [0] (32
    /// bytes ξ) / expandedKey OCTET STRING / both SEQUENCE { seed, expandedKey }, told apart by
    /// the tag as §6 asks. aws-lc-rs derives the key pair from a seed (FIPS 204
    /// ML-DSA.KeyGen_internal) and imports an expanded key; in the `both` form the expanded
    /// key the seed gives must equal the one beside it (RFC 9881 §8.2: else malformed). An
    /// expanded key alone has its public key recomputed by aws-lc-rs, which refuses a `tr` or
    /// `t0` that does not fit it (the inconsistent keys of RFC 9881 Appendix C.4); we also make
    /// one signature with it that must verify under that public key, so that a key which
    /// cannot sign for its certificate is refused at load and not at the first message. A
    /// publicKey field, when present, must be the key's public key.
    fn ml_dsa_from_pkcs8(dsa: MlDsa, der: &[u8]) -> Result<Self> {
        let bad = |d: &str| Error::InvalidKey {
            reason: format!("ML-DSA private key: {d}"),
        };
        let mut reader = der::SliceReader::new(der)?;
        let (private, public): (Zeroizing<Vec<u8>>, Option<Vec<u8>>) = reader.sequence(|r| {
            let _version = u8::decode(r)?;
            let _alg = spki::AlgorithmIdentifierRef::decode(r)?;
            let pk = <&der::asn1::OctetStringRef>::decode(r)?;
            let private = Zeroizing::new(pk.as_bytes().to_vec());
            // RFC 5958: attributes [0] IMPLICIT, publicKey [1] IMPLICIT BIT STRING.
            let mut public = None;
            while !r.is_finished() {
                let any = der::asn1::AnyRef::decode(r)?;
                let public_key_tag = der::Tag::ContextSpecific {
                    constructed: false,
                    number: der::TagNumber(1),
                };
                if der::Tagged::tag(&any) == public_key_tag {
                    public = Some(any.value().to_vec());
                }
            }
            Ok::<_, der::Error>((private, public))
        })?;
        reader.finish()?;
        let seed_pair = |seed: &[u8]| {
            if seed.len() != MlDsa::SEED_LEN {
                return Err(bad("seed is not 32 bytes"));
            }
            lc_sig::PqdsaKeyPair::from_seed(dsa.signing(), seed).map_err(rejected("ML-DSA seed"))
        };
        let expanded_of = |pair: &lc_sig::PqdsaKeyPair| {
            use aws_lc_rs::encoding::AsRawBytes;
            pair.private_key()
                .as_raw_bytes()
                .map(|raw| Zeroizing::new(raw.as_ref().to_vec()))
                .map_err(|_| bad("cannot export the expanded key"))
        };
        let pair = match private.first() {
            Some(0x80) => {
                // [0] IMPLICIT OCTET STRING (SIZE (32)): DER gives exactly 0x80 0x20 || seed.
                match private.get(1..) {
                    Some([0x20, seed @ ..]) => seed_pair(seed)?,
                    _ => return Err(bad("seed is not 32 bytes")),
                }
            }
            Some(0x04) => {
                let expanded = <&der::asn1::OctetStringRef>::from_der(&private)?.as_bytes();
                if expanded.len() != dsa.expanded_key_len() {
                    return Err(bad("expanded key length"));
                }
                let pair = lc_sig::PqdsaKeyPair::from_raw_private_key(dsa.signing(), expanded)
                    .map_err(rejected("ML-DSA private key"))?;
                // Pairwise consistency (FIPS 140-3 IG 10.3.A style): the key must make
                // signatures its own public key verifies.
                let probe = b"sealgate ML-DSA key consistency check";
                let mut sig = vec![0u8; dsa.signature_len()];
                let n = pair
                    .sign(probe, &mut sig)
                    .map_err(|_| bad("the expanded key cannot sign"))?;
                let public = lc_sig::KeyPair::public_key(&pair).as_ref();
                lc_sig::UnparsedPublicKey::new(dsa.verification(), public)
                    .verify(probe, sig.get(..n).unwrap_or_default())
                    .map_err(|_| bad("the expanded key is inconsistent (tr or t0)"))?;
                pair
            }
            Some(0x30) => {
                let mut r = der::SliceReader::new(&private)?;
                let (seed, expanded) = r.sequence(|r| {
                    let seed = <&der::asn1::OctetStringRef>::decode(r)?;
                    let e = <&der::asn1::OctetStringRef>::decode(r)?;
                    Ok::<_, der::Error>((
                        Zeroizing::new(seed.as_bytes().to_vec()),
                        Zeroizing::new(e.as_bytes().to_vec()),
                    ))
                })?;
                r.finish()?;
                if expanded.len() != dsa.expanded_key_len() {
                    return Err(bad("expanded key length"));
                }
                let pair = seed_pair(&seed)?;
                let from_seed = expanded_of(&pair)?;
                if aws_lc_rs::constant_time::verify_slices_are_equal(&from_seed, &expanded).is_err()
                {
                    return Err(bad("the seed does not give the expanded key beside it"));
                }
                pair
            }
            _ => return Err(bad("unknown private key form")),
        };
        let key = lc_sig::KeyPair::public_key(&pair).as_ref().to_vec();
        if key.len() != dsa.public_key_len() {
            return Err(bad("public key length"));
        }
        if let Some(p) = public {
            // BIT STRING contents: the unused-bits octet 0, then the key.
            if p.first() != Some(&0) || p.get(1..) != Some(&key[..]) {
                return Err(bad("the publicKey field is not the key's public key"));
            }
        }
        Ok(PrivateKey {
            inner: KeyInner::MlDsa { dsa, pair },
            public: PublicKey::MlDsa { dsa, key },
        })
    }

    /// The ML-DSA parameter set, for ML-DSA keys.
    pub fn ml_dsa(&self) -> Option<MlDsa> {
        match &self.inner {
            KeyInner::MlDsa { dsa, .. } => Some(*dsa),
            _ => None,
        }
    }

    /// True for RSA keys (the only ones that do key transport and RSASSA-PSS).
    pub fn is_rsa(&self) -> bool {
        matches!(self.inner, KeyInner::Rsa { .. })
    }

    /// The digest a CMS signature with this key uses when `requested` is asked for: ECDSA keys
    /// use their curve's digest (P-256: SHA-256, P-384: SHA-384, RFC 5753 §2.1.1); ML-DSA keys
    /// SHA-512, which RFC 9882 §3.3 makes mandatory to support and which suits every parameter
    /// set; RSA keys what is asked.
    pub fn signing_digest(&self, requested: DigestAlgorithm) -> DigestAlgorithm {
        match &self.inner {
            KeyInner::Ec { curve, .. } => curve.digest(),
            KeyInner::MlDsa { .. } => DigestAlgorithm::Sha512,
            KeyInner::Rsa { .. } | KeyInner::MlKem { .. } => requested,
        }
    }

    /// Load an RSA `RSAPrivateKey` (PKCS#1) DER.
    pub fn from_pkcs1_der(der: &[u8], limits: &Limits) -> Result<Self> {
        // Wrap in PKCS#8 so that one code path (and aws-lc-rs's PKCS#8 parser) does the work.
        let pkcs8 = wrap_pkcs8(rfc5912::RSA_ENCRYPTION, None, der)?;
        Self::rsa_from_pkcs8(&pkcs8, limits)
    }

    /// Load an EC `ECPrivateKey` (SEC1, RFC 5915) DER; the curve must be named inside.
    pub fn from_sec1_der(der: &[u8]) -> Result<Self> {
        for curve in [Curve::P256, Curve::P384] {
            if let (Ok(sign), Ok(agree)) = (
                lc_sig::EcdsaKeyPair::from_private_key_der(curve.ecdsa_signing(), der),
                agreement::PrivateKey::from_private_key_der(curve.ecdh(), der),
            ) {
                return Self::ec(curve, sign, agree);
            }
        }
        Err(Error::InvalidKey {
            reason: "not a P-256 or P-384 EC private key".into(),
        })
    }

    /// Load an unencrypted private key from DER of any supported kind (PKCS#8, PKCS#1, SEC1).
    pub fn from_der(der: &[u8], limits: &Limits) -> Result<Self> {
        Self::from_pkcs8_der(der, limits)
            .or_else(|e| match e {
                // An RSA key outside the size bounds is that, not "not a key".
                Error::LimitExceeded { .. } => Err(e),
                _ => Self::from_pkcs1_der(der, limits),
            })
            .or_else(|e| match e {
                Error::LimitExceeded { .. } => Err(e),
                _ => Self::from_sec1_der(der),
            })
            .map_err(|e| match e {
                Error::LimitExceeded { .. } => e,
                _ => Error::InvalidKey {
                    reason: "not an unencrypted PKCS#8, PKCS#1 or SEC1 private key".into(),
                },
            })
    }

    fn rsa_from_pkcs8(der: &[u8], limits: &Limits) -> Result<Self> {
        // The size bound before aws-lc-rs sees the key: it checks a key's consistency when
        // it loads it, work that grows with the modulus (a 16384-bit key from outside).
        let bits = pkcs8_rsa_modulus_bits(der)?;
        if bits > limits.max_rsa_bits {
            return Err(Error::LimitExceeded {
                what: "RSA key size (bits)",
                limit: limits.max_rsa_bits as u64,
            });
        }
        if bits < limits.min_rsa_bits {
            // too weak is a refusal of the key, as before, not a resource limit
            return Err(Error::InvalidKey {
                reason: format!(
                    "RSA key of {bits} bits is below the minimum of {}",
                    limits.min_rsa_bits
                ),
            });
        }
        let sign = lc_sig::RsaKeyPair::from_pkcs8(der).map_err(rejected("RSA private key"))?;
        let decrypt =
            lc_rsa::PrivateDecryptingKey::from_pkcs8(der).map_err(rejected("RSA private key"))?;
        let bits = decrypt.key_size_bits();
        if bits < limits.min_rsa_bits || bits > limits.max_rsa_bits {
            return Err(Error::InvalidKey {
                reason: format!(
                    "RSA key of {bits} bits is outside {}..={}",
                    limits.min_rsa_bits, limits.max_rsa_bits
                ),
            });
        }
        let pub_der = lc_sig::KeyPair::public_key(&sign).as_ref().to_vec();
        let spki = wrap_spki(rfc5912::RSA_ENCRYPTION, None, &pub_der)?;
        Ok(Self {
            inner: KeyInner::Rsa { sign, decrypt },
            public: PublicKey::Rsa {
                spki,
                pkcs1: pub_der,
                bits,
            },
        })
    }

    fn ec(curve: Curve, sign: lc_sig::EcdsaKeyPair, agree: agreement::PrivateKey) -> Result<Self> {
        let point = lc_sig::KeyPair::public_key(&sign).as_ref().to_vec();
        Ok(Self {
            inner: KeyInner::Ec { curve, sign, agree },
            public: PublicKey::Ec { curve, point },
        })
    }

    /// Generate a fresh key (for tests and examples; production keys come from a CA).
    pub fn generate(kind: KeyKind) -> Result<Self> {
        let limits = Limits::default();
        let fail = |_| Error::Crypto {
            what: "key generation",
        };
        match kind {
            KeyKind::Rsa(bits) => {
                let size = match bits {
                    2048 => lc_rsa::KeySize::Rsa2048,
                    3072 => lc_rsa::KeySize::Rsa3072,
                    4096 => lc_rsa::KeySize::Rsa4096,
                    8192 => lc_rsa::KeySize::Rsa8192,
                    _ => {
                        return Err(Error::InvalidKey {
                            reason: format!("cannot generate RSA-{bits}"),
                        });
                    }
                };
                let k = lc_rsa::PrivateDecryptingKey::generate(size).map_err(fail)?;
                let pkcs8 = Zeroizing::new(
                    aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'_>>::as_der(&k)
                        .map_err(fail)?
                        .as_ref()
                        .to_vec(),
                );
                Self::from_pkcs8_der(&pkcs8, &limits)
            }
            KeyKind::Ec(curve) => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let pkcs8 = lc_sig::EcdsaKeyPair::generate_pkcs8(curve.ecdsa_signing(), &rng)
                    .map_err(fail)?;
                let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
                Self::from_pkcs8_der(&pkcs8, &limits)
            }
            KeyKind::MlKem(kem) => {
                let dk = aws_lc_rs::kem::DecapsulationKey::generate(kem.lc_alg()).map_err(fail)?;
                let key = dk
                    .encapsulation_key()
                    .and_then(|ek| ek.key_bytes())
                    .map_err(fail)?
                    .as_ref()
                    .to_vec();
                Ok(PrivateKey {
                    inner: KeyInner::MlKem { kem, dk },
                    public: PublicKey::MlKem { kem, key },
                })
            }
            KeyKind::MlDsa(dsa) => {
                let pair = lc_sig::PqdsaKeyPair::generate(dsa.signing()).map_err(fail)?;
                let key = lc_sig::KeyPair::public_key(&pair).as_ref().to_vec();
                Ok(PrivateKey {
                    inner: KeyInner::MlDsa { dsa, pair },
                    public: PublicKey::MlDsa { dsa, key },
                })
            }
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// True if this key is the private half of `cert`'s public key.
    pub fn matches(&self, cert: &Certificate) -> bool {
        match (cert.public_key(), &self.public) {
            (Ok(PublicKey::Rsa { pkcs1: a, .. }), PublicKey::Rsa { pkcs1: b, .. }) => {
                // compare modulus and exponent, not encodings
                rsa_public_parts(&a) == rsa_public_parts(b) && rsa_public_parts(b).is_some()
            }
            (Ok(PublicKey::MlKem { kem: k1, key: a }), PublicKey::MlKem { kem: k2, key: b }) => {
                k1 == *k2 && a == *b
            }
            (Ok(PublicKey::MlDsa { dsa: d1, key: a }), PublicKey::MlDsa { dsa: d2, key: b }) => {
                d1 == *d2 && a == *b
            }
            (
                Ok(PublicKey::Ec {
                    curve: c1,
                    point: p1,
                }),
                PublicKey::Ec {
                    curve: c2,
                    point: p2,
                },
            ) => c1 == *c2 && p1 == *p2,
            _ => false,
        }
    }

    /// The signature scheme this key makes by default with `digest` (ECDSA keys use the
    /// curve's own digest whatever is asked: P-256 with SHA-256, P-384 with SHA-384; ML-DSA
    /// keys sign the message itself, pure ML-DSA).
    pub fn signature_scheme(&self, digest: DigestAlgorithm) -> SignatureScheme {
        match &self.inner {
            // An ML-KEM key cannot sign: `sign` refuses whatever scheme is named here.
            KeyInner::Rsa { .. } | KeyInner::MlKem { .. } => SignatureScheme::RsaPkcs1(digest),
            KeyInner::Ec { curve, .. } => SignatureScheme::Ecdsa(curve.digest()),
            KeyInner::MlDsa { dsa, .. } => SignatureScheme::MlDsa(*dsa),
        }
    }

    /// Sign `message` (hashing it with the scheme's digest).
    pub fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let fail = |_| Error::Crypto { what: "signing" };
        match (&self.inner, scheme) {
            (
                KeyInner::Rsa { sign, .. },
                SignatureScheme::RsaPkcs1(d) | SignatureScheme::RsaPss(d),
            ) => {
                let pss = matches!(scheme, SignatureScheme::RsaPss(_));
                let enc: &'static dyn lc_sig::RsaEncoding = match (pss, d) {
                    (false, DigestAlgorithm::Sha256) => &lc_sig::RSA_PKCS1_SHA256,
                    (false, DigestAlgorithm::Sha384) => &lc_sig::RSA_PKCS1_SHA384,
                    (false, DigestAlgorithm::Sha512) => &lc_sig::RSA_PKCS1_SHA512,
                    (true, DigestAlgorithm::Sha256) => &lc_sig::RSA_PSS_SHA256,
                    (true, DigestAlgorithm::Sha384) => &lc_sig::RSA_PSS_SHA384,
                    (true, DigestAlgorithm::Sha512) => &lc_sig::RSA_PSS_SHA512,
                    (_, DigestAlgorithm::Sha1) => {
                        return Err(Error::UnsupportedAlgorithm {
                            what: "signature digest (SHA-1 is never produced)",
                            oid: DigestAlgorithm::Sha1.oid().to_string(),
                        });
                    }
                };
                let mut sig = vec![0u8; sign.public_modulus_len()];
                sign.sign(enc, &rng, message, &mut sig).map_err(fail)?;
                Ok(sig)
            }
            (KeyInner::Ec { curve, sign, .. }, SignatureScheme::Ecdsa(d))
                if d == curve.digest() =>
            {
                Ok(sign.sign(&rng, message).map_err(fail)?.as_ref().to_vec())
            }
            (KeyInner::MlDsa { dsa, pair }, SignatureScheme::MlDsa(want)) if *dsa == want => {
                // aws-lc-rs: hedged ML-DSA.Sign (fresh randomness), empty context.
                let mut sig = vec![0u8; dsa.signature_len()];
                let n = pair.sign(message, &mut sig).map_err(fail)?;
                sig.truncate(n);
                Ok(sig)
            }
            _ => Err(Error::InvalidKey {
                reason: format!("this key cannot make {scheme:?} signatures"),
            }),
        }
    }

    /// RSA key transport decryption. Returns `None` on any failure (wrong key, bad padding):
    /// callers substitute a random key and fail later, uniformly (RFC 3218 §2.3.2).
    pub fn rsa_decrypt(
        &self,
        padding: RsaPadding,
        ciphertext: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let KeyInner::Rsa { decrypt, .. } = &self.inner else {
            return None;
        };
        let mut out = Zeroizing::new(vec![0u8; decrypt.key_size_bytes()]);
        let n = match padding {
            RsaPadding::Pkcs1v15 => {
                let k = lc_rsa::Pkcs1PrivateDecryptingKey::new(decrypt.clone()).ok()?;
                k.decrypt(ciphertext, &mut out).ok()?.len()
            }
            RsaPadding::Oaep(d) => {
                let k = lc_rsa::OaepPrivateDecryptingKey::new(decrypt.clone()).ok()?;
                k.decrypt(oaep_alg(d).ok()?, ciphertext, &mut out, None)
                    .ok()?
                    .len()
            }
        };
        out.truncate(n);
        Some(out)
    }

    /// ECDH with a peer's uncompressed point: the shared secret Z (the x coordinate).
    pub fn ecdh(&self, peer_point: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let KeyInner::Ec { curve, agree, .. } = &self.inner else {
            return Err(Error::DecryptionFailed);
        };
        let peer = agreement::UnparsedPublicKey::new(curve.ecdh(), peer_point);
        agreement::agree(agree, peer, Error::DecryptionFailed, |z| {
            Ok(Zeroizing::new(z.to_vec()))
        })
    }

    /// The curve, for EC keys.
    pub fn curve(&self) -> Option<Curve> {
        match &self.inner {
            KeyInner::Ec { curve, .. } => Some(*curve),
            KeyInner::Rsa { .. } | KeyInner::MlKem { .. } | KeyInner::MlDsa { .. } => None,
        }
    }
}

impl PrivateKey {
    /// The key as unencrypted PKCS#8 `PrivateKeyInfo` DER, wiped when dropped: for callers
    /// that store it encrypted themselves (the key store seals it with AES-256-GCM) or wrap it
    /// in PKCS#12.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        let fail = |_| Error::Crypto {
            what: "private key export",
        };
        let doc = match &self.inner {
            KeyInner::Rsa { decrypt, .. } => Zeroizing::new(
                aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'_>>::as_der(decrypt)
                    .map_err(fail)?
                    .as_ref()
                    .to_vec(),
            ),
            KeyInner::Ec { sign, .. } => {
                Zeroizing::new(sign.to_pkcs8v1().map_err(fail)?.as_ref().to_vec())
            }
            // RFC 9935 §6: the expandedKey CHOICE arm (aws-lc-rs keeps no seed); §4: the
            // AlgorithmIdentifier parameters are absent (OpenSSL refuses a NULL there).
            KeyInner::MlKem { kem, dk } => {
                let bytes = dk.key_bytes().map_err(fail)?;
                let inner =
                    Zeroizing::new(der::asn1::OctetStringRef::new(bytes.as_ref())?.to_der()?);
                let alg = spki::AlgorithmIdentifierOwned {
                    oid: kem.oid(),
                    parameters: None,
                };
                pkcs8_with(&alg, &inner)?
            }
            // RFC 9881 §6: the seed form when aws-lc-rs has the seed (generated or seed-loaded
            // keys), else the expandedKey form. Parameters absent in both.
            KeyInner::MlDsa { dsa, pair } => match pair.to_pkcs8v1() {
                Ok(doc) => Zeroizing::new(doc.as_ref().to_vec()),
                Err(_) => {
                    use aws_lc_rs::encoding::AsRawBytes;
                    let raw = pair.private_key().as_raw_bytes().map_err(fail)?;
                    let inner =
                        Zeroizing::new(der::asn1::OctetStringRef::new(raw.as_ref())?.to_der()?);
                    let alg = spki::AlgorithmIdentifierOwned {
                        oid: dsa.oid(),
                        parameters: None,
                    };
                    pkcs8_with(&alg, &inner)?
                }
            },
        };
        Ok(doc)
    }
}

/// What kind of key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// RSA with this modulus size (2048, 3072, 4096 or 8192).
    Rsa(usize),
    /// ECDSA/ECDH on this curve.
    Ec(Curve),
    /// ML-KEM (FIPS 203) for KEMRecipientInfo recipients: encryption only, never signing;
    /// its certificate is issued by an RSA, EC or ML-DSA CA ([`crate::issue::issue`]).
    MlKem(MlKem),
    /// ML-DSA (FIPS 204) for post-quantum signatures (RFC 9882) and certificates (RFC 9881).
    MlDsa(MlDsa),
}

/// Ephemeral-static ECDH for the sender side of key agreement: a fresh key pair from
/// `scalar` (which the caller draws from its RNG), returning (our public point, Z).
pub(crate) fn ecdh_ephemeral(
    curve: Curve,
    scalar: &[u8],
    peer_point: &[u8],
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    let fail = |_| Error::Crypto { what: "ECDH" };
    let eph = agreement::PrivateKey::from_private_key(curve.ecdh(), scalar)
        .map_err(|_| Error::Crypto { what: "ECDH" })?;
    let public = eph.compute_public_key().map_err(fail)?.as_ref().to_vec();
    let peer = agreement::UnparsedPublicKey::new(curve.ecdh(), peer_point);
    let z = agreement::agree(&eph, peer, Error::Crypto { what: "ECDH" }, |z| {
        Ok(Zeroizing::new(z.to_vec()))
    })?;
    Ok((public, z))
}

fn rsa_public_parts(pkcs1: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    #[derive(der::Sequence)]
    struct RsaPublicKey<'a> {
        modulus: der::asn1::UintRef<'a>,
        public_exponent: der::asn1::UintRef<'a>,
    }
    let k = RsaPublicKey::from_der(pkcs1).ok()?;
    Some((
        k.modulus.as_bytes().to_vec(),
        k.public_exponent.as_bytes().to_vec(),
    ))
}

fn algorithm_identifier(
    oid: ObjectIdentifier,
    params: Option<ObjectIdentifier>,
) -> spki::AlgorithmIdentifierOwned {
    spki::AlgorithmIdentifierOwned {
        oid,
        parameters: Some(match params {
            Some(p) => der::Any::from(&p),
            None => der::Any::null(),
        }),
    }
}

fn wrap_spki(
    oid: ObjectIdentifier,
    params: Option<ObjectIdentifier>,
    key: &[u8],
) -> Result<Vec<u8>> {
    let spki = spki::SubjectPublicKeyInfoOwned {
        algorithm: algorithm_identifier(oid, params),
        subject_public_key: der::asn1::BitString::from_bytes(key)?,
    };
    Ok(spki.to_der()?)
}

fn wrap_pkcs8(
    oid: ObjectIdentifier,
    params: Option<ObjectIdentifier>,
    key: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    pkcs8_with(&algorithm_identifier(oid, params), key)
}

fn pkcs8_with(alg: &spki::AlgorithmIdentifierOwned, key: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    // RFC 5208: PrivateKeyInfo ::= SEQUENCE { version 0, algorithm, privateKey OCTET STRING }
    let alg = alg.to_der()?;
    let key_os = der::asn1::OctetStringRef::new(key)?;
    let mut body = Zeroizing::new(Vec::with_capacity(key.len() + alg.len() + 16));
    0u8.encode_to_vec(&mut body)?;
    body.extend_from_slice(&alg);
    key_os.encode_to_vec(&mut body)?;
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() + 8));
    der::Header::new(der::Tag::Sequence, der::Length::try_from(body.len())?)
        .encode_to_vec(&mut out)?;
    out.extend_from_slice(&body);
    Ok(out)
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// FIPS 203 ML-KEM.KeyGen_internal(d, z) from a 64-byte seed d || z: the expanded
/// decapsulation key (dk_pke || ek || H(ek) || z). `None` when the seed is not 64 bytes.
#[allow(deprecated)] // `to_expanded_bytes`: the only form aws-lc-rs 1.19 imports.
fn ml_kem_expand_seed(kem: MlKem, seed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    use ml_kem::ExpandedKeyEncoding;
    let seed = Zeroizing::new(ml_kem::Seed::try_from(seed).ok()?);
    let expanded = match kem {
        MlKem::MlKem512 => Zeroizing::new(
            ml_kem::DecapsulationKey512::from_seed(*seed)
                .to_expanded_bytes()
                .to_vec(),
        ),
        MlKem::MlKem768 => Zeroizing::new(
            ml_kem::DecapsulationKey768::from_seed(*seed)
                .to_expanded_bytes()
                .to_vec(),
        ),
        MlKem::MlKem1024 => Zeroizing::new(
            ml_kem::DecapsulationKey1024::from_seed(*seed)
                .to_expanded_bytes()
                .to_vec(),
        ),
    };
    Some(expanded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyfile::load_private_key;

    /// A file of the RFC 9881 Appendix C examples (tests/data/rfc9881, see NOTES.md there).
    fn rfc9881(name: &str) -> Vec<u8> {
        let p = format!(
            "{}/../../tests/data/rfc9881/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    const SETS: [(MlDsa, &str); 3] = [
        (MlDsa::MlDsa44, "ML-DSA-44"),
        (MlDsa::MlDsa65, "ML-DSA-65"),
        (MlDsa::MlDsa87, "ML-DSA-87"),
    ];

    fn pem_der(pem: &[u8]) -> Vec<u8> {
        crate::pem::parse_unencrypted(pem, 4)
            .unwrap()
            .remove(0)
            .der
            .to_vec()
    }

    /// The inner privateKey OCTET STRING contents of a PKCS#8 key, and the part before it.
    fn split_private(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut r = der::SliceReader::new(der).unwrap();
        r.sequence(|r| {
            let _ = u8::decode(r)?;
            let alg = spki::AlgorithmIdentifierOwned::decode(r)?;
            let pk = der::asn1::OctetString::decode(r)?;
            Ok::<_, der::Error>((alg.to_der()?, pk.as_bytes().to_vec()))
        })
        .unwrap()
    }

    /// PKCS#8 with `alg` (DER) and `private` as the privateKey contents.
    fn pkcs8(alg: &[u8], private: &[u8]) -> Vec<u8> {
        let mut body = vec![2, 1, 0];
        body.extend_from_slice(alg);
        body.extend_from_slice(
            &der::asn1::OctetStringRef::new(private)
                .unwrap()
                .to_der()
                .unwrap(),
        );
        let mut out = der::Header::new(
            der::Tag::Sequence,
            der::Length::try_from(body.len()).unwrap(),
        )
        .to_der()
        .unwrap();
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn rfc9881_keys_in_every_form_are_the_certificate_key() {
        let limits = Limits::default();
        for (dsa, name) in SETS {
            let cert = Certificate::load(&rfc9881(&format!("{name}.crt")), &limits).unwrap();
            let PublicKey::MlDsa { dsa: got, key } = cert.public_key().unwrap() else {
                panic!("{name}: not an ML-DSA certificate");
            };
            assert_eq!(got, dsa);
            assert_eq!(key.len(), dsa.public_key_len());
            // the .pub file is the same SubjectPublicKeyInfo
            let spki = spki::SubjectPublicKeyInfoOwned::from_der(&pem_der(&rfc9881(&format!(
                "{name}.pub"
            ))))
            .unwrap();
            assert_eq!(
                PublicKey::from_spki(&spki).unwrap(),
                cert.public_key().unwrap()
            );
            // self-signed with ML-DSA (RFC 9881 §3)
            assert!(crate::cert::verify_certificate_signature(&cert, &cert).unwrap());
            for form in ["seed", "expanded", "both"] {
                let file = rfc9881(&format!("{name}-{form}.priv"));
                let k = load_private_key(&file, None, &limits)
                    .unwrap_or_else(|e| panic!("{name}-{form}: {e}"));
                assert_eq!(k.ml_dsa(), Some(dsa));
                assert!(k.matches(&cert), "{name}-{form}");
                let scheme = k.signature_scheme(DigestAlgorithm::Sha256);
                assert_eq!(scheme, SignatureScheme::MlDsa(dsa));
                let sig = k.sign(scheme, b"sealgate").unwrap();
                assert_eq!(sig.len(), dsa.signature_len());
                let public = cert.public_key().unwrap();
                assert!(public.verify(scheme, b"sealgate", &sig).unwrap());
                assert!(!public.verify(scheme, b"sealgatf", &sig).unwrap());
                // export and reload: same key (seed form when the seed is known)
                let again =
                    PrivateKey::from_pkcs8_der(&k.to_pkcs8_der().unwrap(), &limits).unwrap();
                assert!(again.matches(&cert), "{name}-{form} export");
                let (_, private) = split_private(&k.to_pkcs8_der().unwrap());
                let want = if form == "expanded" { 0x04 } else { 0x80 };
                assert_eq!(private.first(), Some(&want), "{name}-{form} export form");
                assert!(format!("{k:?}").contains("[redacted]"));
            }
        }
    }

    #[test]
    fn rfc9881_inconsistent_keys_are_refused() {
        // Appendix C.4: both with a seed that does not give the expanded key; expanded keys
        // whose tr, and whose t0, do not fit the key.
        for n in 1..=3 {
            let r = load_private_key(
                &rfc9881(&format!("bad-ML-DSA-44-{n}.priv")),
                None,
                &Limits::default(),
            );
            assert!(
                matches!(&r, Err(Error::InvalidKey { .. })),
                "bad-ML-DSA-44-{n}: {:?}",
                r.map(|_| ())
            );
        }
    }

    #[test]
    fn ml_dsa_wrong_sizes_and_forms_are_typed_errors() {
        let limits = Limits::default();
        let der = pem_der(&rfc9881("ML-DSA-65-both.priv"));
        let (alg, private) = split_private(&der);
        let (_, seed_form) = split_private(&pem_der(&rfc9881("ML-DSA-65-seed.priv")));
        let (_, expanded_form) = split_private(&pem_der(&rfc9881("ML-DSA-65-expanded.priv")));
        let seed = &seed_form[2..];
        let expanded = der::asn1::OctetString::from_der(&expanded_form).unwrap();
        let expanded = expanded.as_bytes();
        let os = |b: &[u8]| der::asn1::OctetStringRef::new(b).unwrap().to_der().unwrap();
        let both = |s: &[u8], e: &[u8]| {
            let mut body = os(s);
            body.extend_from_slice(&os(e));
            let mut out = vec![0x30];
            out.extend_from_slice(&der::Length::try_from(body.len()).unwrap().to_der().unwrap());
            out.extend_from_slice(&body);
            out
        };
        assert_eq!(both(seed, expanded), private, "test helper");
        let mut seed31 = vec![0x80, 31];
        seed31.extend_from_slice(&seed[..31]);
        let mut seed33 = vec![0x80, 33];
        seed33.extend_from_slice(seed);
        seed33.push(0);
        let mut other_seed = seed.to_vec();
        other_seed[0] ^= 1;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("seed of 31 bytes", seed31),
            ("seed of 33 bytes", seed33),
            ("expanded one byte short", os(&expanded[1..])),
            ("expanded one byte long", os(&[expanded, &[0][..]].concat())),
            ("expanded of ML-DSA-44 size", os(&expanded[..2560])),
            ("both with short seed", both(&seed[1..], expanded)),
            ("both with short expanded", both(seed, &expanded[1..])),
            ("both, other seed", both(&other_seed, expanded)),
            ("unknown CHOICE tag", [&[0x81, 0x20][..], seed].concat()),
            ("empty", vec![]),
        ];
        for (what, private) in cases {
            let r = PrivateKey::from_pkcs8_der(&pkcs8(&alg, &private), &limits);
            assert!(
                matches!(&r, Err(Error::InvalidKey { .. } | Error::Malformed { .. })),
                "{what}: {:?}",
                r.map(|_| ())
            );
        }
        // a 65 key under the 44 or 87 OID
        for other in [MlDsa::MlDsa44, MlDsa::MlDsa87] {
            let alg = spki::AlgorithmIdentifierOwned {
                oid: other.oid(),
                parameters: None,
            }
            .to_der()
            .unwrap();
            let r = PrivateKey::from_pkcs8_der(&pkcs8(&alg, &expanded_form), &limits);
            assert!(matches!(&r, Err(Error::InvalidKey { .. })), "{other:?}");
        }
        // parameters present (NULL) are refused
        let alg = spki::AlgorithmIdentifierOwned {
            oid: MlDsa::MlDsa65.oid(),
            parameters: Some(der::Any::null()),
        }
        .to_der()
        .unwrap();
        let r = PrivateKey::from_pkcs8_der(&pkcs8(&alg, &seed_form), &limits);
        assert!(
            matches!(&r, Err(Error::InvalidKey { .. })),
            "NULL parameters"
        );
        // every truncation of a key file is an error, never a panic
        for cut in 0..der.len() {
            assert!(
                PrivateKey::from_der(&der[..cut], &limits).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn ml_dsa_public_key_of_wrong_size_or_with_parameters_is_malformed() {
        let cert = Certificate::load(&rfc9881("ML-DSA-44.crt"), &Limits::default()).unwrap();
        let spki = cert
            .x509()
            .tbs_certificate()
            .subject_public_key_info()
            .clone();
        let key = spki.subject_public_key.raw_bytes().to_vec();
        for bad in [&key[1..], &[&key[..], &[0][..]].concat()[..]] {
            let mut s = spki.clone();
            s.subject_public_key = der::asn1::BitString::from_bytes(bad).unwrap();
            assert!(matches!(
                PublicKey::from_spki(&s),
                Err(Error::Malformed { .. })
            ));
        }
        let mut s = spki.clone();
        s.algorithm.parameters = Some(der::Any::null());
        assert!(matches!(
            PublicKey::from_spki(&s),
            Err(Error::Malformed { .. })
        ));
        // a signature of the wrong length, or for another parameter set, does not verify
        let k = PrivateKey::generate(KeyKind::MlDsa(MlDsa::MlDsa44)).unwrap();
        let sig = k
            .sign(SignatureScheme::MlDsa(MlDsa::MlDsa44), b"m")
            .unwrap();
        let p = k.public_key();
        assert!(
            p.verify(SignatureScheme::MlDsa(MlDsa::MlDsa44), b"m", &sig)
                .unwrap()
        );
        assert!(
            !p.verify(SignatureScheme::MlDsa(MlDsa::MlDsa44), b"m", &sig[1..])
                .unwrap()
        );
        assert!(
            !p.verify(SignatureScheme::MlDsa(MlDsa::MlDsa65), b"m", &sig)
                .unwrap()
        );
        assert!(
            k.sign(SignatureScheme::MlDsa(MlDsa::MlDsa65), b"m")
                .is_err(),
            "an ML-DSA-44 key must not claim to make ML-DSA-65 signatures"
        );
    }

    /// Regression: ML-KEM keys were exported with NULL AlgorithmIdentifier parameters.
    #[test]
    fn ml_kem_export_has_absent_parameters() {
        let k = PrivateKey::generate(KeyKind::MlKem(MlKem::MlKem768)).unwrap();
        let der = k.to_pkcs8_der().unwrap();
        let (alg, private) = split_private(&der);
        assert_eq!(
            alg,
            spki::AlgorithmIdentifierOwned {
                oid: MlKem::MlKem768.oid(),
                parameters: None
            }
            .to_der()
            .unwrap()
        );
        assert_eq!(private.first(), Some(&0x04));
        let again = PrivateKey::from_pkcs8_der(&der, &Limits::default()).unwrap();
        assert_eq!(again.public_key(), k.public_key());
    }

    #[test]
    fn generated_ml_dsa_keys_round_trip_through_pkcs8() {
        for (dsa, _) in SETS {
            let k = PrivateKey::generate(KeyKind::MlDsa(dsa)).unwrap();
            let der = k.to_pkcs8_der().unwrap();
            let (alg, private) = split_private(&der);
            // RFC 9881 §6: seed form, parameters absent
            assert_eq!(
                alg,
                spki::AlgorithmIdentifierOwned {
                    oid: dsa.oid(),
                    parameters: None
                }
                .to_der()
                .unwrap()
            );
            assert_eq!(&private[..2], &[0x80, 0x20]);
            assert_eq!(private.len(), 34);
            let again = PrivateKey::from_pkcs8_der(&der, &Limits::default()).unwrap();
            assert_eq!(again.public_key(), k.public_key());
            assert_eq!(
                k.signing_digest(DigestAlgorithm::Sha256),
                DigestAlgorithm::Sha512
            );
        }
    }
}
