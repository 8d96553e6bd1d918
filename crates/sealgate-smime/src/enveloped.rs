//! CMS EnvelopedData (RFC 5652 §6) and AuthEnvelopedData (RFC 5083) at the DER level:
//! encryption to X.509 certificates and decryption with a private key.
//!
//! - Key transport: RSA PKCS#1 v1.5 (`rsaEncryption`) and RSAES-OAEP (RFC 4055 §4.1).
//! - Key agreement: ephemeral-static ECDH on P-256 / P-384 with the X9.63 KDF and AES key wrap
//!   (RFC 5753 §3.1), as OpenSSL reads and writes it.
//! - Content: AES-CBC (RFC 3565) in EnvelopedData, AES-GCM (RFC 5084) in AuthEnvelopedData;
//!   DES-EDE3-CBC is read, never written.
//!
//! Decryption errors are coarse ([`Error::DecryptionFailed`]) and, per RFC 3218 §2.3.2, a
//! failed RSA decryption is not reported as such: a random content key is used instead and the
//! failure shows only at content decryption.
//!
//! ```
//! # fn main() -> sealgate_smime::Result<()> {
//! use sealgate_smime::enveloped::{self, ContentCipher, Recipient};
//! # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/smime/enveloped/");
//! # let cert = std::fs::read(format!("{dir}rsa1.crt.der")).unwrap();
//! # let key = std::fs::read(format!("{dir}rsa1.pk8.der")).unwrap();
//! let limits = sealgate_smime::Limits::default();
//! let cert = sealgate_smime::Certificate::from_der(&cert)?;
//! let key = sealgate_smime::PrivateKey::from_pkcs8_der(&key, &limits)?;
//! let der = enveloped::encrypt(b"hello", &[Recipient::new(cert.clone())],
//!     ContentCipher::Aes256Cbc, &mut rand_core::OsRng)?;
//! let plain = enveloped::decrypt(&der, &key, Some(&cert), &limits)?;
//! assert_eq!(&plain.content[..], b"hello");
//! # Ok(()) }
//! ```

mod kari;
#[doc(hidden)]
pub mod kat;
mod kem;
pub use kem::MlKem;

mod writer;

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    AES_128, AES_192, AES_256, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext,
    UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use cms::content_info::CmsVersion;
use cms::enveloped_data::{
    KeyAgreeRecipientIdentifier, KeyTransRecipientInfo, RecipientIdentifier, RecipientInfo,
};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::asn1::OctetString;
use der::{Any, Decode, Encode};
use rand_core::CryptoRngCore;
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use crate::alg::DigestAlgorithm;
use crate::error::{Error, Result};
use crate::keys::{Certificate, PrivateKey, PublicKey, RsaPadding};
use crate::tlv::{self, tag};
use sealgate_mime::Limits;

pub use writer::EnvelopedWriter;

/// Object identifiers of this module.
pub mod oid {
    use const_oid::ObjectIdentifier;

    /// id-data (RFC 5652 §4).
    pub const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
    /// id-envelopedData (RFC 5652 §6.1).
    pub const ENVELOPED_DATA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.3");
    /// id-ct-authEnvelopedData (RFC 5083 §2.1).
    pub const AUTH_ENVELOPED_DATA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.23");
    /// id-aes128-CBC (RFC 3565 §4.1).
    pub const AES128_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.2");
    /// id-aes192-CBC.
    pub const AES192_CBC: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.22");
    /// id-aes256-CBC.
    pub const AES256_CBC: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");
    /// id-aes128-GCM (RFC 5084 §3.2).
    pub const AES128_GCM: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.6");
    /// id-aes192-GCM.
    pub const AES192_GCM: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.26");
    /// id-aes256-GCM.
    pub const AES256_GCM: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.46");
    /// des-ede3-cbc (RFC 3370 §5.1).
    pub const DES_EDE3_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.3.7");
    /// id-RSAES-OAEP (RFC 4055 §4.1).
    pub const RSAES_OAEP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.7");
    /// id-mgf1 (RFC 4055 §2.2).
    pub const MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
    /// id-pSpecified (RFC 4055 §4.1).
    pub const P_SPECIFIED: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.9");
}

/// The content-encryption algorithms Sealgate produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ContentCipher {
    /// AES-128-CBC in EnvelopedData.
    Aes128Cbc,
    /// AES-256-CBC in EnvelopedData (the default: what every S/MIME client reads).
    #[default]
    Aes256Cbc,
    /// AES-128-GCM in AuthEnvelopedData (RFC 5083/5084).
    Aes128Gcm,
    /// AES-256-GCM in AuthEnvelopedData (RFC 5083/5084). gpgsm 2.2 cannot read it.
    Aes256Gcm,
}

impl ContentCipher {
    /// The algorithm as it appears in a message.
    pub fn algorithm(self) -> ContentAlgorithm {
        match self {
            Self::Aes128Cbc => ContentAlgorithm::Aes128Cbc,
            Self::Aes256Cbc => ContentAlgorithm::Aes256Cbc,
            Self::Aes128Gcm => ContentAlgorithm::Aes128Gcm,
            Self::Aes256Gcm => ContentAlgorithm::Aes256Gcm,
        }
    }
}

/// A content-encryption algorithm found in a message (including legacy ones that are only read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContentAlgorithm {
    /// AES-128-CBC.
    Aes128Cbc,
    /// AES-192-CBC.
    Aes192Cbc,
    /// AES-256-CBC.
    Aes256Cbc,
    /// DES-EDE3-CBC (read only: 3DES is legacy).
    DesEde3Cbc,
    /// AES-128-GCM (AuthEnvelopedData).
    Aes128Gcm,
    /// AES-192-GCM (AuthEnvelopedData).
    Aes192Gcm,
    /// AES-256-GCM (AuthEnvelopedData).
    Aes256Gcm,
}

impl ContentAlgorithm {
    /// The algorithm for an object identifier.
    pub fn from_oid(oid: &ObjectIdentifier) -> Result<Self> {
        Ok(match *oid {
            oid::AES128_CBC => Self::Aes128Cbc,
            oid::AES192_CBC => Self::Aes192Cbc,
            oid::AES256_CBC => Self::Aes256Cbc,
            oid::DES_EDE3_CBC => Self::DesEde3Cbc,
            oid::AES128_GCM => Self::Aes128Gcm,
            oid::AES192_GCM => Self::Aes192Gcm,
            oid::AES256_GCM => Self::Aes256Gcm,
            _ => {
                return Err(Error::UnsupportedAlgorithm {
                    what: "content encryption",
                    oid: oid.to_string(),
                });
            }
        })
    }

    /// The object identifier.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Aes128Cbc => oid::AES128_CBC,
            Self::Aes192Cbc => oid::AES192_CBC,
            Self::Aes256Cbc => oid::AES256_CBC,
            Self::DesEde3Cbc => oid::DES_EDE3_CBC,
            Self::Aes128Gcm => oid::AES128_GCM,
            Self::Aes192Gcm => oid::AES192_GCM,
            Self::Aes256Gcm => oid::AES256_GCM,
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::Aes128Cbc | Self::Aes128Gcm => 16,
            Self::Aes192Cbc | Self::Aes192Gcm | Self::DesEde3Cbc => 24,
            Self::Aes256Cbc | Self::Aes256Gcm => 32,
        }
    }

    /// True for the authenticated (AEAD) algorithms, which live in AuthEnvelopedData.
    pub fn is_aead(self) -> bool {
        matches!(self, Self::Aes128Gcm | Self::Aes192Gcm | Self::Aes256Gcm)
    }

    /// True for algorithms that are read for old mail but never produced.
    pub fn is_legacy(self) -> bool {
        matches!(self, Self::DesEde3Cbc)
    }

    pub(crate) fn aes(self) -> Option<&'static aws_lc_rs::cipher::Algorithm> {
        match self {
            Self::Aes128Cbc => Some(&AES_128),
            Self::Aes192Cbc => Some(&AES_192),
            Self::Aes256Cbc => Some(&AES_256),
            _ => None,
        }
    }

    /// The OpenSSL cipher of the streamed GCM paths (aws-lc-rs has no incremental GCM).
    pub(crate) fn openssl_gcm(self) -> Option<openssl::symm::Cipher> {
        use openssl::symm::Cipher;
        match self {
            Self::Aes128Gcm => Some(Cipher::aes_128_gcm()),
            Self::Aes192Gcm => Some(Cipher::aes_192_gcm()),
            Self::Aes256Gcm => Some(Cipher::aes_256_gcm()),
            _ => None,
        }
    }

    fn aead(self) -> Option<&'static aead::Algorithm> {
        match self {
            Self::Aes128Gcm => Some(&aead::AES_128_GCM),
            Self::Aes192Gcm => Some(&aead::AES_192_GCM),
            Self::Aes256Gcm => Some(&aead::AES_256_GCM),
            _ => None,
        }
    }
}

/// One recipient of an encrypted message.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// The recipient's certificate (RSA: key transport; P-256/P-384: key agreement).
    pub cert: Certificate,
    /// RSA key-transport padding (ignored for EC certificates).
    pub rsa_padding: RsaPadding,
}

impl Recipient {
    /// A recipient with the default RSA padding, PKCS#1 v1.5 (what every client reads).
    pub fn new(cert: Certificate) -> Self {
        Self {
            cert,
            rsa_padding: RsaPadding::Pkcs1v15,
        }
    }

    /// Use RSAES-OAEP with `digest` for the hash and MGF1 (RFC 4055 §4.1).
    pub fn with_oaep(self, digest: DigestAlgorithm) -> Self {
        Self {
            rsa_padding: RsaPadding::Oaep(digest),
            ..self
        }
    }
}

/// The result of [`decrypt`].
pub struct Decrypted {
    /// The decrypted content (the encapsulated MIME entity, for S/MIME).
    pub content: Zeroizing<Vec<u8>>,
    /// The content-encryption algorithm of the message.
    pub cipher: ContentAlgorithm,
    /// True for AuthEnvelopedData whose tag verified (the content is integrity-protected).
    pub authenticated: bool,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decrypted")
            .field("content", &format_args!("[{} bytes]", self.content.len()))
            .field("cipher", &self.cipher)
            .field("authenticated", &self.authenticated)
            .finish()
    }
}

/// Encrypt `content` to every recipient (RSA key transport; ECDH P-256/P-384 ephemeral-static
/// key agreement). Returns a DER ContentInfo: EnvelopedData for CBC, AuthEnvelopedData for GCM.
pub fn encrypt(
    content: &[u8],
    recipients: &[Recipient],
    cipher: ContentCipher,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>> {
    let alg = cipher.algorithm();
    let mut cek = Zeroizing::new(vec![0u8; alg.key_len()]);
    rng.fill_bytes(&mut cek);
    let (ris, ed_version) = recipient_infos(recipients, &cek, rng)?;
    let mut iv = [0u8; 16];
    let iv = if alg.is_aead() {
        &mut iv[..12]
    } else {
        &mut iv[..]
    };
    rng.fill_bytes(iv);
    let alg_id = content_alg_id(alg, iv);

    let ct_len = if alg.is_aead() {
        content.len()
    } else {
        (content.len() / 16 + 1) * 16
    };
    if u32::try_from(ct_len).is_err() {
        return Err(Error::LimitExceeded {
            what: "content size",
            limit: u64::from(u32::MAX),
        });
    }
    // RFC 5652 §6.1: version 0 when every RecipientInfo is version 0 (KTRI with issuer and
    // serial), else 2. RFC 5083 §2.1: AuthEnvelopedData version is always 0.
    let version: u8 = if alg.is_aead() { 0 } else { ed_version };
    let content_type = if alg.is_aead() {
        oid::AUTH_ENVELOPED_DATA
    } else {
        oid::ENVELOPED_DATA
    };
    let eci_body = tlv::oid_len(&oid::DATA) + alg_id.len() + tlv::tlv_len(ct_len);
    let mac_len = if alg.is_aead() { 2 + 16 } else { 0 };
    let ed_body = 3 + tlv::tlv_len(ris.len()) + tlv::tlv_len(eci_body) + mac_len;
    let explicit_body = tlv::tlv_len(ed_body);
    let ci_body = tlv::oid_len(&content_type) + tlv::tlv_len(explicit_body);
    let total = tlv::tlv_len(ci_body);

    let mut out = Vec::with_capacity(total);
    tlv::push_header(&mut out, tag::SEQUENCE, ci_body);
    tlv::push_oid(&mut out, &content_type);
    tlv::push_header(&mut out, tag::CTX0, explicit_body);
    tlv::push_header(&mut out, tag::SEQUENCE, ed_body);
    out.extend_from_slice(&[tag::INTEGER, 1, version]);
    tlv::push_tlv(&mut out, tag::SET, &ris);
    tlv::push_header(&mut out, tag::SEQUENCE, eci_body);
    tlv::push_oid(&mut out, &oid::DATA);
    out.extend_from_slice(&alg_id);
    tlv::push_header(&mut out, tag::CTX0_PRIM, ct_len);
    let start = out.len();
    // The one copy of the content: it is encrypted in place in the output buffer.
    out.extend_from_slice(content);
    if let Some(aead_alg) = alg.aead() {
        let key = LessSafeKey::new(
            UnboundKey::new(aead_alg, &cek).map_err(|_| Error::Crypto { what: "AES-GCM" })?,
        );
        let nonce =
            Nonce::try_assume_unique_for_key(iv).map_err(|_| Error::Crypto { what: "AES-GCM" })?;
        let body = out
            .get_mut(start..)
            .ok_or(Error::Crypto { what: "AES-GCM" })?;
        let tag_value = key
            .seal_in_place_separate_tag(nonce, Aad::empty(), body)
            .map_err(|_| Error::Crypto { what: "AES-GCM" })?;
        // RFC 5083 §2.1: mac holds the GCM tag (ICV), 16 bytes as GCMParameters say.
        tlv::push_tlv(&mut out, tag::OCTET_STRING, tag_value.as_ref());
    } else {
        // RFC 5652 §6.3: PKCS#7 padding, always 1..=16 bytes.
        let pad = ct_len - content.len();
        out.resize(out.len() + pad, pad as u8);
        let end = start + ct_len;
        cbc_encrypt(alg, &cek, iv, out.get_mut(start..end).unwrap_or_default())?;
    }
    debug_assert_eq!(out.len(), total);
    Ok(out)
}

/// AES-CBC encryption in place of an already padded buffer.
fn cbc_encrypt(alg: ContentAlgorithm, cek: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<()> {
    let fail = |_| Error::Crypto { what: "AES-CBC" };
    let aes = alg.aes().ok_or(Error::Crypto { what: "AES-CBC" })?;
    let key = EncryptingKey::cbc(UnboundCipherKey::new(aes, cek).map_err(fail)?).map_err(fail)?;
    let iv: &[u8; 16] = iv
        .try_into()
        .map_err(|_| Error::Crypto { what: "AES-CBC" })?;
    key.less_safe_encrypt(buf, EncryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(fail)?;
    Ok(())
}

/// The ContentEncryptionAlgorithmIdentifier DER: CBC with the IV as OCTET STRING (RFC 3565
/// §4.1), GCM with GCMParameters { aes-nonce (12), aes-ICVlen 16 } (RFC 5084 §3.2). The ICV
/// length is written explicitly, as OpenSSL does.
fn content_alg_id(alg: ContentAlgorithm, iv: &[u8]) -> Vec<u8> {
    let mut params = Vec::with_capacity(24);
    if alg.is_aead() {
        let mut inner = Vec::with_capacity(20);
        tlv::push_tlv(&mut inner, tag::OCTET_STRING, iv);
        inner.extend_from_slice(&[tag::INTEGER, 1, 16]);
        tlv::push_tlv(&mut params, tag::SEQUENCE, &inner);
    } else {
        tlv::push_tlv(&mut params, tag::OCTET_STRING, iv);
    }
    let mut body = Vec::with_capacity(params.len() + 12);
    tlv::push_oid(&mut body, &alg.oid());
    body.extend_from_slice(&params);
    let mut out = Vec::with_capacity(body.len() + 2);
    tlv::push_tlv(&mut out, tag::SEQUENCE, &body);
    out
}

/// The RecipientInfos SET contents (DER-sorted) and the EnvelopedData version they call for
/// (RFC 5652 §6.1: 3 with an OtherRecipientInfo, 2 with any other non-v0 one, else 0).
fn recipient_infos(
    recipients: &[Recipient],
    cek: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<(Vec<u8>, u8)> {
    if recipients.is_empty() {
        return Err(Error::UnusableCertificate {
            reason: "no recipient given".into(),
        });
    }
    let max = Limits::default().max_recipients;
    if recipients.len() > max {
        return Err(Error::LimitExceeded {
            what: "recipients",
            limit: max as u64,
        });
    }
    let mut version = 0u8;
    let mut encoded = Vec::with_capacity(recipients.len());
    for r in recipients {
        let ri = match r.cert.public_key()? {
            pk @ PublicKey::Rsa { .. } => {
                let enc = pk.rsa_encrypt(r.rsa_padding, cek)?;
                RecipientInfo::Ktri(KeyTransRecipientInfo {
                    version: CmsVersion::V0,
                    rid: RecipientIdentifier::IssuerAndSerialNumber(r.cert.issuer_and_serial()),
                    key_enc_alg: rsa_key_enc_alg(r.rsa_padding)?,
                    enc_key: OctetString::new(enc)?,
                })
            }
            PublicKey::Ec { curve, point } => {
                version = version.max(2);
                kari::wrap_for(&r.cert, curve, &point, cek, rng)?
            }
            PublicKey::MlKem { kem, key } => {
                version = 3;
                let rid = RecipientIdentifier::IssuerAndSerialNumber(r.cert.issuer_and_serial());
                kem::wrap_for(kem, &key, rid, cek)?
            }
            // RFC 9881 §5: an ML-DSA key signs; nothing can be encrypted to it.
            PublicKey::MlDsa { .. } => {
                return Err(Error::UnusableCertificate {
                    reason: format!(
                        "\"{}\" has an ML-DSA key, which can only sign",
                        r.cert.subject()
                    ),
                });
            }
        };
        encoded.push(ri.to_der()?);
    }
    // DER: SET OF elements in ascending order of their encodings (X.690 §11.6).
    encoded.sort();
    Ok((encoded.concat(), version))
}

/// keyEncryptionAlgorithm for RSA: `rsaEncryption` with NULL, or `id-RSAES-OAEP` with
/// RSAES-OAEP-params (RFC 4055 §4.1). Hash AlgorithmIdentifiers are written without
/// parameters, as OpenSSL does; SHA-1 (all defaults) is the empty SEQUENCE.
fn rsa_key_enc_alg(padding: RsaPadding) -> Result<AlgorithmIdentifierOwned> {
    match padding {
        RsaPadding::Pkcs1v15 => Ok(AlgorithmIdentifierOwned {
            oid: rfc5912::RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        }),
        RsaPadding::Oaep(d) => {
            let mut body = Vec::new();
            if d != DigestAlgorithm::Sha1 {
                let mut hash = Vec::new();
                tlv::push_oid(&mut hash, &d.oid());
                let mut hash_alg = Vec::new();
                tlv::push_tlv(&mut hash_alg, tag::SEQUENCE, &hash);
                tlv::push_tlv(&mut body, tag::CTX0, &hash_alg);
                let mut mgf = Vec::new();
                tlv::push_oid(&mut mgf, &oid::MGF1);
                mgf.extend_from_slice(&hash_alg);
                let mut mgf_alg = Vec::new();
                tlv::push_tlv(&mut mgf_alg, tag::SEQUENCE, &mgf);
                tlv::push_tlv(&mut body, tag::CTX1, &mgf_alg);
            }
            let mut params = Vec::new();
            tlv::push_tlv(&mut params, tag::SEQUENCE, &body);
            Ok(AlgorithmIdentifierOwned {
                oid: oid::RSAES_OAEP,
                parameters: Some(Any::from_der(&params)?),
            })
        }
    }
}

/// Parse RSAES-OAEP-params (RFC 4055 §4.1). Absent parameters and absent fields mean SHA-1;
/// MGF1 must use the same hash (all that aws-lc-rs offers), pSourceFunc must be empty.
fn oaep_digest(params: Option<&Any>) -> Result<DigestAlgorithm> {
    let unsupported = |what: &str| Error::UnsupportedAlgorithm {
        what: "RSAES-OAEP parameters",
        oid: what.to_string(),
    };
    let Some(params) = params else {
        return Ok(DigestAlgorithm::Sha1);
    };
    if params.is_null() {
        return Ok(DigestAlgorithm::Sha1);
    }
    let der = params.to_der()?;
    let seq = tlv::single(&der, tag::SEQUENCE, "RSAES-OAEP-params")?;
    let mut r = tlv::Reader::new(seq.value, "RSAES-OAEP-params");
    let mut hash = DigestAlgorithm::Sha1;
    if let Some(h) = r.optional(tag::CTX0)? {
        let alg = AlgorithmIdentifierOwned::from_der(h.value)?;
        hash = DigestAlgorithm::from_oid(&alg.oid)?;
    }
    let mut mgf_hash = DigestAlgorithm::Sha1;
    if let Some(m) = r.optional(tag::CTX1)? {
        let alg = AlgorithmIdentifierOwned::from_der(m.value)?;
        if alg.oid != oid::MGF1 {
            return Err(unsupported(&alg.oid.to_string()));
        }
        let inner: AlgorithmIdentifierOwned = alg
            .parameters
            .as_ref()
            .ok_or_else(|| Error::malformed("RSAES-OAEP-params", "MGF1 without hash"))?
            .decode_as()?;
        mgf_hash = DigestAlgorithm::from_oid(&inner.oid)?;
    }
    if let Some(p) = r.optional(tag::CTX2)? {
        let alg = AlgorithmIdentifierOwned::from_der(p.value)?;
        let empty = alg
            .parameters
            .as_ref()
            .and_then(|a| a.decode_as::<OctetString>().ok())
            .is_none_or(|l| l.as_bytes().is_empty());
        if alg.oid != oid::P_SPECIFIED || !empty {
            return Err(unsupported("OAEP label"));
        }
    }
    r.finish()?;
    if hash != mgf_hash {
        return Err(unsupported("OAEP with MGF1 hash different from the hash"));
    }
    Ok(hash)
}

/// What the parser found in an EnvelopedData or AuthEnvelopedData.
struct Parsed<'a> {
    auth: bool,
    recipients: Vec<RecipientInfo>,
    alg: ContentAlgorithm,
    /// CBC IV or GCM nonce.
    iv: &'a [u8],
    ciphertext: &'a [u8],
    /// authAttrs with the SET OF tag (RFC 5083 §2.2), or empty.
    aad: Vec<u8>,
    mac: &'a [u8],
}

/// Parse a ContentInfo holding EnvelopedData or AuthEnvelopedData. The ciphertext is borrowed
/// from `der`, not copied.
fn parse<'a>(der: &'a [u8], limits: &Limits) -> Result<Parsed<'a>> {
    const CI: &str = "CMS ContentInfo";
    const ED: &str = "EnvelopedData";
    let ci = tlv::single(der, tag::SEQUENCE, CI)?;
    let mut r = tlv::Reader::new(ci.value, CI);
    let content_type = r.oid()?;
    let auth = match content_type {
        oid::ENVELOPED_DATA => false,
        oid::AUTH_ENVELOPED_DATA => true,
        other => {
            return Err(Error::WrongMessageType {
                expected: "encrypted",
                found: other.to_string(),
            });
        }
    };
    let explicit = r.expect(tag::CTX0)?;
    r.finish()?;
    let ed = tlv::single(explicit.value, tag::SEQUENCE, ED)?;
    let mut r = tlv::Reader::new(ed.value, ED);
    r.expect(tag::INTEGER)?;
    // originatorInfo (certificates for the recipient's convenience) is not needed.
    r.optional(tag::CTX0)?;
    let set = r.expect(tag::SET)?;
    let mut recipients = Vec::new();
    // Every recipient costs a private-key operation when no certificate selects one: the
    // limit counts each RecipientEncryptedKey of a KeyAgreeRecipientInfo too.
    let mut count = 0usize;
    let mut rr = tlv::Reader::new(set.value, "RecipientInfos");
    while !rr.is_empty() {
        // Decoded one by one: BER input need not have the SET OF in DER order.
        let tlv = rr.next_tlv()?;
        let ri =
            RecipientInfo::from_der(tlv.raw).map_err(|e| Error::malformed("RecipientInfo", e))?;
        count += match &ri {
            RecipientInfo::Kari(k) => k.recipient_enc_keys.len().max(1),
            _ => 1,
        };
        if count > limits.max_recipients {
            return Err(Error::LimitExceeded {
                what: "recipients",
                limit: limits.max_recipients as u64,
            });
        }
        recipients.push(ri);
    }
    if recipients.is_empty() {
        return Err(Error::malformed(ED, "no RecipientInfo"));
    }

    let eci = r.expect(tag::SEQUENCE)?;
    let mut er = tlv::Reader::new(eci.value, "EncryptedContentInfo");
    er.oid()?;
    let alg_tlv = er.expect(tag::SEQUENCE)?;
    let ct = er
        .optional(tag::CTX0_PRIM)?
        .ok_or_else(|| Error::malformed("EncryptedContentInfo", "detached content"))?;
    er.finish()?;
    let (alg, iv, icv_len) = content_params(alg_tlv.value)?;
    if alg.is_aead() != auth {
        return Err(Error::malformed(
            ED,
            "AEAD cipher outside AuthEnvelopedData or CBC inside it",
        ));
    }

    let mut aad = Vec::new();
    let mut mac: &[u8] = &[];
    if auth {
        if let Some(attrs) = r.optional(tag::CTX1)? {
            // RFC 5083 §2.2: the AAD is the DER of authAttrs with the EXPLICIT SET OF tag
            // in place of the IMPLICIT [1].
            aad.reserve(attrs.raw.len());
            aad.push(tag::SET);
            aad.extend_from_slice(attrs.raw.get(1..).unwrap_or_default());
        }
        mac = r.expect(tag::OCTET_STRING)?.value;
        r.optional(tag::CTX2)?;
        if mac.len() != icv_len {
            return Err(Error::malformed(
                "AuthEnvelopedData",
                "mac length is not aes-ICVlen",
            ));
        }
    } else {
        r.optional(tag::CTX1)?;
    }
    r.finish()?;
    Ok(Parsed {
        auth,
        recipients,
        alg,
        iv,
        ciphertext: ct.value,
        aad,
        mac,
    })
}

/// Largest AES-GCM nonce read: OpenSSL's limit (128 bytes; RFC 5084 §3.2 recommends 12).
pub(crate) const MAX_GCM_NONCE: usize = 128;

/// The parameters of a ContentEncryptionAlgorithmIdentifier (the SEQUENCE's contents): the
/// algorithm, the CBC IV or GCM nonce, and the GCM ICV (tag) length (0 for CBC).
///
/// GCM: any nonce of 1..=[`MAX_GCM_NONCE`] bytes and an ICV of 12..=16 bytes are read here (the
/// streamed decryption takes them all); the one-shot path takes only what aws-lc-rs does, a
/// 12-byte nonce and a 16-byte tag (see [`Plan::check_one_shot`]).
pub(crate) fn content_params(alg_id: &[u8]) -> Result<(ContentAlgorithm, &[u8], usize)> {
    let mut ar = tlv::Reader::new(alg_id, "content-encryption algorithm");
    let alg = ContentAlgorithm::from_oid(&ar.oid()?)?;
    let (iv, icv_len) = if alg.is_aead() {
        // RFC 5084 §3.2: GCMParameters ::= SEQUENCE { aes-nonce OCTET STRING,
        // aes-ICVlen AES-GCM-ICVlen DEFAULT 12 }, AES-GCM-ICVlen ::= INTEGER (12 | 13 | 14 |
        // 15 | 16)
        let p = ar.expect(tag::SEQUENCE)?;
        let mut pr = tlv::Reader::new(p.value, "GCMParameters");
        let nonce = pr.expect(tag::OCTET_STRING)?.value;
        let icv = match pr.optional(tag::INTEGER)? {
            Some(i) => match i.value {
                [n] => usize::from(*n),
                _ => return Err(Error::malformed("GCMParameters", "bad aes-ICVlen")),
            },
            None => 12,
        };
        pr.finish()?;
        if nonce.is_empty() || nonce.len() > MAX_GCM_NONCE {
            return Err(Error::UnsupportedAlgorithm {
                what: "AES-GCM nonce length",
                oid: nonce.len().to_string(),
            });
        }
        if !(12..=16).contains(&icv) {
            return Err(Error::UnsupportedAlgorithm {
                what: "AES-GCM tag length",
                oid: icv.to_string(),
            });
        }
        (nonce, icv)
    } else {
        let iv = ar.expect(tag::OCTET_STRING)?.value;
        let block = if alg == ContentAlgorithm::DesEde3Cbc {
            8
        } else {
            16
        };
        if iv.len() != block {
            return Err(Error::malformed(
                "content-encryption algorithm",
                "bad IV length",
            ));
        }
        (iv, 0)
    };
    ar.finish()?;
    Ok((alg, iv, icv_len))
}

/// True if `cert` has this issuer and serial number.
fn cert_is(cert: &Certificate, ias: &cms::cert::IssuerAndSerialNumber) -> bool {
    let tbs = cert.x509().tbs_certificate();
    tbs.issuer() == &ias.issuer && tbs.serial_number() == &ias.serial_number
}

fn cert_has_ski(cert: &Certificate, ski: &[u8]) -> bool {
    cert.subject_key_identifier().as_deref() == Some(ski)
}

/// Decrypt an EnvelopedData or AuthEnvelopedData (BER or DER ContentInfo) with our key.
///
/// `cert` selects the RecipientInfo (by issuer and serial number or subject key identifier);
/// with `None`, every RecipientInfo that fits the key type is tried. Content ciphers:
/// AES-128/192/256-CBC, DES-EDE3-CBC (read only), AES-128/192/256-GCM (AuthEnvelopedData, with
/// authAttrs as AAD per RFC 5083 §2.2).
///
/// Errors: [`Error::NotARecipient`] if no RecipientInfo is for this certificate or key type,
/// [`Error::KeyMismatch`] if `key` is not `cert`'s key, [`Error::DecryptionFailed`] for a
/// wrong key, bad padding or bad tag alike.
pub fn decrypt(
    input: &[u8],
    key: &PrivateKey,
    cert: Option<&Certificate>,
    limits: &Limits,
) -> Result<Decrypted> {
    let der = crate::ber::to_der(input, limits)?;
    let plan = plan(&der, key, cert, limits)?;
    plan.check_one_shot()?;
    let ct = der.get(plan.ciphertext.clone()).unwrap_or_default();
    let mut buf = Zeroizing::new(ct.to_vec());
    match decrypt_in_place(&plan, &plan.cek, &mut buf) {
        Ok(n) if !plan.substituted => {
            buf.truncate(n);
            Ok(plan.decrypted(buf))
        }
        _ => Err(Error::DecryptionFailed),
    }
}

/// [`decrypt`] of an owned input: with one candidate key (the usual case) the content is
/// decrypted in the input's own buffer, so that no second copy of a large message is made.
pub(crate) fn decrypt_owned(
    input: Vec<u8>,
    key: &PrivateKey,
    cert: Option<&Certificate>,
    limits: &Limits,
) -> Result<Decrypted> {
    let mut der = Zeroizing::new(input);
    if let std::borrow::Cow::Owned(converted) = crate::ber::to_der(&der, limits)? {
        *der = converted;
    }
    let plan = plan(&der, key, cert, limits)?;
    plan.check_one_shot()?;
    let range = plan.ciphertext.clone();
    let start = range.start;
    let n = match der.get_mut(range) {
        Some(buf) => decrypt_in_place(&plan, &plan.cek, buf),
        None => Err(Error::DecryptionFailed),
    };
    let n = match n {
        Ok(n) if !plan.substituted => n,
        _ => return Err(Error::DecryptionFailed),
    };
    der.copy_within(start..start + n, 0);
    der.truncate(n);
    Ok(plan.decrypted(der))
}

/// What decryption needs once the RecipientInfos are done: the content algorithm and its
/// parameters, where the ciphertext lies in the DER, and the candidate content keys.
pub(crate) struct Plan {
    pub(crate) alg: ContentAlgorithm,
    pub(crate) auth: bool,
    pub(crate) iv: Vec<u8>,
    aad: Vec<u8>,
    mac: Vec<u8>,
    ciphertext: std::ops::Range<usize>,
    /// The one content key to try (the content is decrypted exactly once).
    pub(crate) cek: Zeroizing<Vec<u8>>,
    /// `cek` is a random key standing in for a failed or ambiguous RSA decryption.
    pub(crate) substituted: bool,
}

impl Plan {
    /// The length of the mac (the GCM tag, aes-ICVlen bytes); 0 for CBC.
    pub(crate) fn mac_len(&self) -> usize {
        self.mac.len()
    }

    /// aws-lc-rs opens AES-GCM with a 12-byte nonce and a 16-byte tag only (what OpenSSL and
    /// Sealgate write); other lengths RFC 5084 allows are read by the streamed decryption
    /// ([`crate::stream`], OpenSSL underneath). Public parameters: no oracle in saying so.
    fn check_one_shot(&self) -> Result<()> {
        if self.auth && (self.iv.len() != 12 || self.mac.len() != 16) {
            return Err(Error::UnsupportedAlgorithm {
                what: "AES-GCM nonce or tag length in memory (stream::decrypt_message reads it)",
                oid: format!("{}-byte nonce, {}-byte tag", self.iv.len(), self.mac.len()),
            });
        }
        Ok(())
    }

    fn decrypted(&self, content: Zeroizing<Vec<u8>>) -> Decrypted {
        Decrypted {
            content,
            cipher: self.alg,
            authenticated: self.auth,
        }
    }
}

/// Parse and find the candidate content keys for our key (see [`decrypt`]).
pub(crate) fn plan(
    der: &[u8],
    key: &PrivateKey,
    cert: Option<&Certificate>,
    limits: &Limits,
) -> Result<Plan> {
    let p = parse(der, limits)?;
    if let Some(c) = cert
        && !key.matches(c)
    {
        return Err(Error::KeyMismatch);
    }
    let key_len = p.alg.key_len();
    // The content is decrypted exactly once, whatever the RecipientInfos say, so that neither
    // the error nor the time taken tells which key transport step failed (RFC 3218 §2.3.2).
    // RSA key transport: every KTRI that fits our certificate is decrypted (a constant amount
    // of work) and they must all agree; one failure or disagreement means a random key.
    // Key agreement needs no such care: AES key unwrap is authenticated (RFC 3394 §2.2.3).
    let mut rsa_results: Vec<Option<Zeroizing<Vec<u8>>>> = Vec::new();
    let mut ec_key: Option<Zeroizing<Vec<u8>>> = None;
    let mut kem_key: Option<Zeroizing<Vec<u8>>> = None;
    let mut any_fit = false;
    let mut first_err = None;
    for ri in &p.recipients {
        match ri {
            RecipientInfo::Ktri(ktri) => {
                // Key transport is RSA only.
                if !key.is_rsa() {
                    continue;
                }
                let fits = cert.is_none_or(|c| match &ktri.rid {
                    RecipientIdentifier::IssuerAndSerialNumber(ias) => cert_is(c, ias),
                    RecipientIdentifier::SubjectKeyIdentifier(ski) => {
                        cert_has_ski(c, ski.0.as_bytes())
                    }
                });
                if !fits {
                    continue;
                }
                any_fit = true;
                let padding = match ktri.key_enc_alg.oid {
                    rfc5912::RSA_ENCRYPTION => Ok(RsaPadding::Pkcs1v15),
                    oid::RSAES_OAEP => {
                        oaep_digest(ktri.key_enc_alg.parameters.as_ref()).map(RsaPadding::Oaep)
                    }
                    other => Err(Error::UnsupportedAlgorithm {
                        what: "key transport",
                        oid: other.to_string(),
                    }),
                };
                // An algorithm we cannot use is reported only if no other RecipientInfo works.
                let padding = match padding {
                    Ok(p) => p,
                    Err(e) => {
                        first_err.get_or_insert(e);
                        continue;
                    }
                };
                rsa_results.push(
                    key.rsa_decrypt(padding, ktri.enc_key.as_bytes())
                        .filter(|k| k.len() == key_len),
                );
            }
            RecipientInfo::Kari(kari) => {
                let Some(curve) = key.curve() else { continue };
                if !kari::originator_fits(kari, curve) {
                    continue;
                }
                for rek in &kari.recipient_enc_keys {
                    let fits = match (cert, &rek.rid) {
                        (None, _) => true,
                        (Some(c), KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(ias)) => {
                            cert_is(c, ias)
                        }
                        (Some(c), KeyAgreeRecipientIdentifier::RKeyId(rki)) => {
                            cert_has_ski(c, rki.subject_key_identifier.0.as_bytes())
                        }
                    };
                    if !fits || ec_key.is_some() {
                        any_fit |= fits;
                        continue;
                    }
                    any_fit = true;
                    match kari::unwrap(kari, rek, key) {
                        Ok(k) if k.len() == key_len => ec_key = Some(k),
                        Ok(_) | Err(Error::DecryptionFailed) => {}
                        Err(e) => {
                            first_err.get_or_insert(e);
                        }
                    }
                }
            }
            RecipientInfo::Ori(ori) => {
                let Some((our_kem, dk)) = key.ml_kem() else {
                    continue;
                };
                let (kem_alg, kemri) = match kem::parse(ori) {
                    Ok(Some(x)) => x,
                    Ok(None) => continue,
                    Err(e) => {
                        // As for key transport: a KEMRecipientInfo addressed to us whose
                        // algorithms we do not read is that error, not "not a recipient".
                        any_fit |= kem::addressee(ori).is_some_and(|(k, rid)| {
                            k == our_kem
                                && cert.is_none_or(|c| match &rid {
                                    RecipientIdentifier::IssuerAndSerialNumber(ias) => {
                                        cert_is(c, ias)
                                    }
                                    RecipientIdentifier::SubjectKeyIdentifier(ski) => {
                                        cert_has_ski(c, ski.0.as_bytes())
                                    }
                                })
                        });
                        first_err.get_or_insert(e);
                        continue;
                    }
                };
                let fits = kem_alg == our_kem
                    && cert.is_none_or(|c| match &kemri.rid {
                        RecipientIdentifier::IssuerAndSerialNumber(ias) => cert_is(c, ias),
                        RecipientIdentifier::SubjectKeyIdentifier(ski) => {
                            cert_has_ski(c, ski.0.as_bytes())
                        }
                    });
                if !fits || kem_key.is_some() {
                    any_fit |= fits;
                    continue;
                }
                any_fit = true;
                match kem::unwrap(kem_alg, &kemri, dk) {
                    Ok(k) if k.len() == key_len => kem_key = Some(k),
                    Ok(_) | Err(Error::DecryptionFailed) => {}
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            _ => {}
        }
    }
    if !any_fit {
        return Err(Error::NotARecipient);
    }
    let (cek, substituted) = if key.ml_kem().is_some() {
        match kem_key {
            Some(k) => (k, false),
            None => return Err(first_err.unwrap_or(Error::DecryptionFailed)),
        }
    } else if key.curve().is_some() {
        match ec_key {
            Some(k) => (k, false),
            None => return Err(first_err.unwrap_or(Error::DecryptionFailed)),
        }
    } else {
        if rsa_results.is_empty() {
            return Err(first_err.unwrap_or(Error::DecryptionFailed));
        }
        if cert.is_none() && rsa_results.len() > 1 {
            // Without the certificate we cannot tell which KTRI is ours, and trying each in
            // turn would be a padding oracle.
            return Err(Error::CertificateNeeded);
        }
        let agreed = match rsa_results.first() {
            Some(Some(first)) => rsa_results
                .iter()
                .all(|r| r.as_ref().is_some_and(|k| k[..] == first[..]))
                .then(|| first.clone()),
            _ => None,
        };
        match agreed {
            Some(k) => (k, false),
            None => {
                let mut k = Zeroizing::new(vec![0u8; key_len]);
                aws_lc_rs::rand::fill(&mut k).map_err(|_| Error::Crypto { what: "RNG" })?;
                (k, true)
            }
        }
    };
    // Safe pointer arithmetic: the ciphertext is a sub-slice of `der`.
    let start = (p.ciphertext.as_ptr() as usize).saturating_sub(der.as_ptr() as usize);
    Ok(Plan {
        alg: p.alg,
        auth: p.auth,
        iv: p.iv.to_vec(),
        aad: p.aad,
        mac: p.mac.to_vec(),
        ciphertext: start..start + p.ciphertext.len(),
        cek,
        substituted,
    })
}

/// Decrypt `buf` (the ciphertext) in place with one candidate key; returns the plaintext
/// length (at the start of `buf`).
fn decrypt_in_place(p: &Plan, cek: &[u8], buf: &mut [u8]) -> Result<usize> {
    let n = match p.alg {
        ContentAlgorithm::DesEde3Cbc => {
            use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
            let dec = cbc::Decryptor::<des::TdesEde3>::new_from_slices(cek, &p.iv)
                .map_err(|_| Error::DecryptionFailed)?;
            dec.decrypt_padded_mut::<Pkcs7>(buf)
                .map_err(|_| Error::DecryptionFailed)?
                .len()
        }
        alg if alg.is_aead() => {
            let aead_alg = alg.aead().ok_or(Error::DecryptionFailed)?;
            let key = LessSafeKey::new(
                UnboundKey::new(aead_alg, cek).map_err(|_| Error::DecryptionFailed)?,
            );
            let nonce =
                Nonce::try_assume_unique_for_key(&p.iv).map_err(|_| Error::DecryptionFailed)?;
            // On a bad tag the buffer (possibly holding unauthenticated plaintext) is wiped
            // by the caller's Zeroizing and never returned.
            key.open_in_place_separate_tag(nonce, Aad::from(&p.aad[..]), &p.mac, buf)
                .map_err(|_| Error::DecryptionFailed)?
                .len()
        }
        alg => {
            let aes = alg.aes().ok_or(Error::DecryptionFailed)?;
            let iv: &[u8; 16] = p.iv[..].try_into().map_err(|_| Error::DecryptionFailed)?;
            if buf.is_empty() || !buf.len().is_multiple_of(16) {
                return Err(Error::DecryptionFailed);
            }
            let key = DecryptingKey::cbc(
                UnboundCipherKey::new(aes, cek).map_err(|_| Error::DecryptionFailed)?,
            )
            .map_err(|_| Error::DecryptionFailed)?;
            let plain = key
                .decrypt(buf, DecryptionContext::Iv128(FixedLength::from(iv)))
                .map_err(|_| Error::DecryptionFailed)?;
            pkcs7_unpadded_len(plain, 16).ok_or(Error::DecryptionFailed)?
        }
    };
    Ok(n)
}

/// Length without PKCS#7 padding (RFC 5652 §6.3), or None if the padding is invalid. Checks
/// every padding byte without early exit.
pub(crate) fn pkcs7_unpadded_len(plain: &[u8], block: usize) -> Option<usize> {
    let &last = plain.last()?;
    let pad = usize::from(last);
    if pad == 0 || pad > block || pad > plain.len() {
        return None;
    }
    let tail = plain.get(plain.len() - pad..)?;
    let diff = tail.iter().fold(0u8, |acc, &b| acc | (b ^ last));
    (diff == 0).then(|| plain.len() - pad)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keys::{Curve, KeyKind};

    const DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/smime/enveloped/"
    );

    /// A file of tests/data/smime/enveloped (openssl-made fixtures, see its NOTES).
    pub(crate) fn data(name: &str) -> Vec<u8> {
        std::fs::read(format!("{DIR}{name}")).unwrap()
    }
    pub(crate) fn cert(name: &str) -> Certificate {
        Certificate::from_der(&data(&format!("{name}.crt.der"))).unwrap()
    }
    pub(crate) fn key(name: &str) -> PrivateKey {
        PrivateKey::from_pkcs8_der(&data(&format!("{name}.pk8.der")), &Limits::default()).unwrap()
    }

    /// Deterministic RNG for tests: SHA-256 in counter mode over a seed.
    pub(crate) struct TestRng(u64, Vec<u8>);
    impl TestRng {
        pub(crate) fn new(seed: u64) -> Self {
            Self(seed << 32, Vec::new())
        }
    }
    impl rand_core::RngCore for TestRng {
        fn next_u32(&mut self) -> u32 {
            let mut b = [0u8; 4];
            self.fill_bytes(&mut b);
            u32::from_le_bytes(b)
        }
        fn next_u64(&mut self) -> u64 {
            let mut b = [0u8; 8];
            self.fill_bytes(&mut b);
            u64::from_le_bytes(b)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for d in dest {
                if self.1.is_empty() {
                    self.0 += 1;
                    self.1 = DigestAlgorithm::Sha256.digest(&self.0.to_be_bytes());
                }
                *d = self.1.pop().unwrap();
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl rand_core::CryptoRng for TestRng {}

    fn dec(file: &str, who: &str, with_cert: bool) -> Result<Decrypted> {
        let c = cert(who);
        decrypt(
            &data(file),
            &key(who),
            with_cert.then_some(&c),
            &Limits::default(),
        )
    }

    #[test]
    fn decrypts_openssl_fixtures() {
        let content = data("content.txt");
        let cases: &[(&str, &str, ContentAlgorithm)] = &[
            ("rsa-aes256.der", "rsa1", ContentAlgorithm::Aes256Cbc),
            ("rsa-aes128.der", "rsa1", ContentAlgorithm::Aes128Cbc),
            ("rsa-aes192.der", "rsa1", ContentAlgorithm::Aes192Cbc),
            ("rsa-des3.der", "rsa1", ContentAlgorithm::DesEde3Cbc),
            ("rsa-gcm.der", "rsa1", ContentAlgorithm::Aes256Gcm),
            ("rsa-gcm128.der", "rsa1", ContentAlgorithm::Aes128Gcm),
            ("rsa-oaep-sha1.der", "rsa1", ContentAlgorithm::Aes256Cbc),
            ("rsa-oaep-sha256.der", "rsa1", ContentAlgorithm::Aes256Cbc),
            ("rsa-stream.ber", "rsa1", ContentAlgorithm::Aes256Cbc),
            ("rsa-ski.der", "rsa1", ContentAlgorithm::Aes256Cbc),
            ("p256-aes256.der", "p256", ContentAlgorithm::Aes256Cbc),
            (
                "p256-aes128-sha256kdf.der",
                "p256",
                ContentAlgorithm::Aes128Cbc,
            ),
            ("p384-aes256.der", "p384", ContentAlgorithm::Aes256Cbc),
            ("p256-aes192.der", "p256", ContentAlgorithm::Aes192Cbc),
            ("p256-gcm.der", "p256", ContentAlgorithm::Aes256Gcm),
            ("p384-gcm.der", "p384", ContentAlgorithm::Aes256Gcm),
            ("gpgsm-rsa-aes128.p7m", "rsa1", ContentAlgorithm::Aes128Cbc),
            ("gpgsm-rsa-aes256.p7m", "rsa1", ContentAlgorithm::Aes256Cbc),
            ("multi.der", "rsa1", ContentAlgorithm::Aes256Cbc),
            ("multi.der", "rsa2", ContentAlgorithm::Aes256Cbc),
            ("multi.der", "p256", ContentAlgorithm::Aes256Cbc),
            ("multi.der", "p384", ContentAlgorithm::Aes256Cbc),
        ];
        for &(file, who, alg) in cases {
            for with_cert in [true, false] {
                // Several RSA recipients: without our certificate we refuse to guess (trying
                // each KTRI in turn would be a padding oracle).
                if !with_cert && file == "multi.der" && who.starts_with("rsa") {
                    assert!(matches!(
                        dec(file, who, with_cert),
                        Err(Error::CertificateNeeded)
                    ));
                    continue;
                }
                let d = dec(file, who, with_cert)
                    .unwrap_or_else(|e| panic!("{file} as {who} ({with_cert}): {e}"));
                assert_eq!(&d.content[..], &content[..], "{file} as {who}");
                assert_eq!(d.cipher, alg, "{file}");
                assert_eq!(d.authenticated, alg.is_aead(), "{file}");
            }
        }
    }

    #[test]
    fn streaming_writer_with_length_is_the_one_shot_der() {
        // EC recipients only: RSA padding takes its randomness from aws-lc, not our RNG.
        let rs = [Recipient::new(cert("p256")), Recipient::new(cert("p384"))];
        for cipher in [ContentCipher::Aes256Cbc, ContentCipher::Aes256Gcm] {
            for len in [0usize, 15, 16, 65_536, 200_003] {
                let content: Vec<u8> = (0..len as u32).map(|i| (i % 253) as u8).collect();
                let one_shot = encrypt(&content, &rs, cipher, &mut TestRng::new(9)).unwrap();
                let mut w = EnvelopedWriter::with_content_length(
                    Vec::new(),
                    &rs,
                    cipher,
                    &mut TestRng::new(9),
                    len,
                )
                .unwrap();
                for piece in content.chunks(70_001) {
                    w.write_all(piece).unwrap();
                }
                let out = w.finish().unwrap();
                assert_eq!(out, one_shot, "{cipher:?} length {len}");
                assert!(dec_bytes(&out, "p384").unwrap().content[..] == content[..]);
            }
        }
        // Fewer or more bytes than announced are errors, not wrong output.
        let mut w = EnvelopedWriter::with_content_length(
            Vec::new(),
            &rs[..1],
            ContentCipher::Aes256Cbc,
            &mut TestRng::new(1),
            10,
        )
        .unwrap();
        w.write_all(b"short").unwrap();
        assert!(w.finish().is_err());
        let mut w = EnvelopedWriter::with_content_length(
            Vec::new(),
            &rs[..1],
            ContentCipher::Aes256Cbc,
            &mut TestRng::new(1),
            3,
        )
        .unwrap();
        assert!(w.write_all(b"long").is_err());
    }

    /// Two KTRIs for the same certificate must agree: a probe KTRI next to a valid one gives
    /// DecryptionFailed whether the probe is PKCS#1-conformant or not (no padding oracle).
    #[test]
    fn duplicate_ktris_must_agree() {
        let r = Recipient::new(cert("rsa1"));
        let good = encrypt(
            b"payload",
            &[r.clone(), r.clone()],
            ContentCipher::Aes256Cbc,
            &mut TestRng::new(7),
        )
        .unwrap();
        // the same key twice (as when a sender lists a recipient twice) decrypts
        let d = decrypt(&good, &key("rsa1"), Some(&cert("rsa1")), &Limits::default()).unwrap();
        assert_eq!(&d.content[..], b"payload");
        // two different content keys wrapped for the same certificate: refuse
        let a = encrypt(
            b"payload",
            std::slice::from_ref(&r),
            ContentCipher::Aes256Cbc,
            &mut TestRng::new(1),
        )
        .unwrap();
        let b = encrypt(
            b"payload",
            &[r],
            ContentCipher::Aes256Cbc,
            &mut TestRng::new(2),
        )
        .unwrap();
        let ek = |der: &[u8]| {
            let p = parse(der, &Limits::default()).unwrap();
            match &p.recipients[0] {
                RecipientInfo::Ktri(k) => k.enc_key.as_bytes().to_vec(),
                _ => unreachable!(),
            }
        };
        let (ka, kb) = (ek(&a), ek(&b));
        assert_ne!(ka, kb);
        // splice b's wrapped key over the second KTRI of `good` (same length, RSA-2048)
        let mut mixed = good.clone();
        let wrapped = good_ktri_keys(&good);
        let idx: Vec<usize> = mixed
            .windows(256)
            .enumerate()
            .filter(|(_, w)| wrapped.iter().any(|k| &k[..] == *w))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(idx.len(), 2);
        mixed[idx[1]..idx[1] + 256].copy_from_slice(&kb);
        assert!(matches!(
            decrypt(
                &mixed,
                &key("rsa1"),
                Some(&cert("rsa1")),
                &Limits::default()
            ),
            Err(Error::DecryptionFailed)
        ));
        // a non-conformant probe next to a valid key fails the same way
        mixed[idx[1]..idx[1] + 256].fill(0x42);
        assert!(matches!(
            decrypt(
                &mixed,
                &key("rsa1"),
                Some(&cert("rsa1")),
                &Limits::default()
            ),
            Err(Error::DecryptionFailed)
        ));
    }

    fn good_ktri_keys(der: &[u8]) -> Vec<Vec<u8>> {
        parse(der, &Limits::default())
            .unwrap()
            .recipients
            .iter()
            .filter_map(|ri| match ri {
                RecipientInfo::Ktri(k) => Some(k.enc_key.as_bytes().to_vec()),
                _ => None,
            })
            .collect()
    }

    fn all_recipients() -> Vec<(&'static str, Recipient)> {
        vec![
            ("rsa1", Recipient::new(cert("rsa1"))),
            (
                "rsa2",
                Recipient::new(cert("rsa2")).with_oaep(DigestAlgorithm::Sha256),
            ),
            ("p256", Recipient::new(cert("p256"))),
            ("p384", Recipient::new(cert("p384"))),
        ]
    }

    #[test]
    fn round_trips_every_cipher_and_key_type() {
        let ciphers = [
            ContentCipher::Aes128Cbc,
            ContentCipher::Aes256Cbc,
            ContentCipher::Aes128Gcm,
            ContentCipher::Aes256Gcm,
        ];
        let mut rng = TestRng::new(1);
        for cipher in ciphers {
            for len in [0usize, 1, 15, 16, 17, 1000] {
                let content: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                // each recipient alone, then all together
                for (who, r) in all_recipients() {
                    let der = encrypt(&content, &[r], cipher, &mut rng).unwrap();
                    for with_cert in [true, false] {
                        let c = cert(who);
                        let d =
                            decrypt(&der, &key(who), with_cert.then_some(&c), &Limits::default())
                                .unwrap_or_else(|e| panic!("{cipher:?} {who} {len}: {e}"));
                        assert_eq!(&d.content[..], &content[..]);
                        assert_eq!(d.cipher, cipher.algorithm());
                        assert_eq!(d.authenticated, cipher.algorithm().is_aead());
                    }
                }
                let rs: Vec<Recipient> = all_recipients().into_iter().map(|(_, r)| r).collect();
                let der = encrypt(&content, &rs, cipher, &mut rng).unwrap();
                for (who, _) in all_recipients() {
                    let d = dec_bytes(&der, who).unwrap();
                    assert_eq!(&d.content[..], &content[..], "{who}");
                }
            }
        }
    }

    fn dec_bytes(der: &[u8], who: &str) -> Result<Decrypted> {
        let c = cert(who);
        decrypt(der, &key(who), Some(&c), &Limits::default())
    }

    #[test]
    fn output_structure_is_as_openssl_writes_it() {
        let mut rng = TestRng::new(2);
        let der = encrypt(
            b"x",
            &[Recipient::new(cert("rsa1"))],
            ContentCipher::Aes256Cbc,
            &mut rng,
        )
        .unwrap();
        let ci = cms::content_info::ContentInfo::from_der(&der).unwrap();
        assert_eq!(ci.content_type, oid::ENVELOPED_DATA);
        let ed: cms::enveloped_data::EnvelopedData = ci.content.decode_as().unwrap();
        assert_eq!(ed.version, CmsVersion::V0);
        let ct = ed.encrypted_content.encrypted_content.unwrap();
        assert_eq!(ct.as_bytes().len(), 16);
        assert_eq!(ed.encrypted_content.content_enc_alg.oid, oid::AES256_CBC);

        let der = encrypt(
            b"x",
            &[Recipient::new(cert("p256"))],
            ContentCipher::Aes256Gcm,
            &mut rng,
        )
        .unwrap();
        let ci = cms::content_info::ContentInfo::from_der(&der).unwrap();
        assert_eq!(ci.content_type, oid::AUTH_ENVELOPED_DATA);
        let ad: cms::authenveloped_data::AuthEnvelopedData = ci.content.decode_as().unwrap();
        assert_eq!(ad.version, CmsVersion::V0);
        assert_eq!(ad.mac.as_bytes().len(), 16);
        let params = ad
            .auth_encrypted_content_info
            .content_enc_alg
            .parameters
            .unwrap();
        // GCMParameters { nonce (12), ICVlen 16 }
        let p = params.to_der().unwrap();
        assert_eq!(p.len(), 19);
        assert_eq!(&p[p.len() - 3..], &[2, 1, 16]);
    }

    #[test]
    fn wrong_key_is_decryption_failed() {
        // RSA: the key of rsa2 on a message to rsa1 only (tried because no cert is given).
        let e = decrypt(
            &data("rsa-aes256.der"),
            &key("rsa2"),
            None,
            &Limits::default(),
        );
        assert!(matches!(e, Err(Error::DecryptionFailed)), "{e:?}");
        let e = decrypt(&data("rsa-gcm.der"), &key("rsa2"), None, &Limits::default());
        assert!(matches!(e, Err(Error::DecryptionFailed)), "{e:?}");
        // EC: another P-256 key.
        let other = PrivateKey::generate(KeyKind::Ec(Curve::P256)).unwrap();
        let e = decrypt(&data("p256-aes256.der"), &other, None, &Limits::default());
        assert!(matches!(e, Err(Error::DecryptionFailed)), "{e:?}");
        // With a certificate that is not among the recipients.
        let e = dec("rsa-aes256.der", "rsa2", true);
        assert!(matches!(e, Err(Error::NotARecipient)), "{e:?}");
        // P-384 key on a P-256 message: no RecipientInfo fits.
        let e = decrypt(
            &data("p256-aes256.der"),
            &key("p384"),
            None,
            &Limits::default(),
        );
        assert!(matches!(e, Err(Error::NotARecipient)), "{e:?}");
        // key and certificate do not belong together
        let c = cert("rsa1");
        let e = decrypt(
            &data("rsa-aes256.der"),
            &key("rsa2"),
            Some(&c),
            &Limits::default(),
        );
        assert!(matches!(e, Err(Error::KeyMismatch)), "{e:?}");
    }

    /// Offset of the encryptedContent bytes and of the mac in our own DER output.
    fn locate(der: &[u8]) -> (std::ops::Range<usize>, Option<std::ops::Range<usize>>) {
        let p = parse(der, &Limits::default()).unwrap();
        let base = der.as_ptr() as usize;
        let ct = p.ciphertext.as_ptr() as usize - base;
        let mac = (!p.mac.is_empty()).then(|| {
            let m = p.mac.as_ptr() as usize - base;
            m..m + p.mac.len()
        });
        (ct..ct + p.ciphertext.len(), mac)
    }

    #[test]
    fn tampering_is_decryption_failed() {
        let mut rng = TestRng::new(3);
        let content = vec![0x55u8; 40]; // padding 8 bytes
        for cipher in [ContentCipher::Aes256Cbc, ContentCipher::Aes256Gcm] {
            let der = encrypt(&content, &[Recipient::new(cert("rsa1"))], cipher, &mut rng).unwrap();
            assert_eq!(&dec_bytes(&der, "rsa1").unwrap().content[..], &content[..]);
            let (ct, mac) = locate(&der);
            // flip the last byte of the second-to-last block: the padding length byte changes
            let mut t = der.clone();
            t[ct.end - 17] ^= 0xFF;
            assert!(
                matches!(dec_bytes(&t, "rsa1"), Err(Error::DecryptionFailed)),
                "{cipher:?}"
            );
            if let Some(mac) = mac {
                let mut t = der.clone();
                t[mac.start] ^= 1;
                assert!(matches!(
                    dec_bytes(&t, "rsa1"),
                    Err(Error::DecryptionFailed)
                ));
            }
            // a tampered RSA-encrypted key gives the same error (RFC 3218 random CEK)
            let p = parse(&der, &Limits::default()).unwrap();
            let RecipientInfo::Ktri(k) = &p.recipients[0] else {
                panic!()
            };
            let ek = k.enc_key.as_bytes();
            let off = der.windows(ek.len()).position(|w| w == ek).unwrap();
            let mut t = der.clone();
            t[off + 10] ^= 1;
            assert!(matches!(
                dec_bytes(&t, "rsa1"),
                Err(Error::DecryptionFailed)
            ));
        }
    }

    /// An AuthEnvelopedData to rsa1 with authAttrs (a content-type attribute), sealed with
    /// `aad_tag` as the first AAD byte (RFC 5083 §2.2 says SET OF, 0x31).
    pub(crate) fn auth_enveloped_with_attrs(content: &[u8], aad_tag: u8) -> Vec<u8> {
        let mut rng = TestRng::new(9);
        let mut cek = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rng, &mut cek);
        let nonce = [7u8; 12];
        let (ris, _) = recipient_infos(&[Recipient::new(cert("rsa1"))], &cek, &mut rng).unwrap();
        // Attribute { id-contentType, SET { id-data } }
        let mut attr_body = Vec::new();
        tlv::push_oid(&mut attr_body, &const_oid::db::rfc5911::ID_CONTENT_TYPE);
        let mut v = Vec::new();
        tlv::push_oid(&mut v, &oid::DATA);
        tlv::push_tlv(&mut attr_body, tag::SET, &v);
        let mut attr = Vec::new();
        tlv::push_tlv(&mut attr, tag::SEQUENCE, &attr_body);
        let mut aad = Vec::new();
        tlv::push_tlv(&mut aad, aad_tag, &attr);
        let mut ct = content.to_vec();
        let key = LessSafeKey::new(UnboundKey::new(&aead::AES_256_GCM, &cek).unwrap());
        let t = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad[..]),
                &mut ct,
            )
            .unwrap();
        let mut eci = Vec::new();
        tlv::push_oid(&mut eci, &oid::DATA);
        eci.extend_from_slice(&content_alg_id(ContentAlgorithm::Aes256Gcm, &nonce));
        tlv::push_tlv(&mut eci, tag::CTX0_PRIM, &ct);
        let mut ed = vec![tag::INTEGER, 1, 0];
        tlv::push_tlv(&mut ed, tag::SET, &ris);
        tlv::push_tlv(&mut ed, tag::SEQUENCE, &eci);
        tlv::push_tlv(&mut ed, tag::CTX1, &attr);
        tlv::push_tlv(&mut ed, tag::OCTET_STRING, t.as_ref());
        let mut eds = Vec::new();
        tlv::push_tlv(&mut eds, tag::SEQUENCE, &ed);
        let mut ci = Vec::new();
        tlv::push_oid(&mut ci, &oid::AUTH_ENVELOPED_DATA);
        tlv::push_tlv(&mut ci, tag::CTX0, &eds);
        let mut out = Vec::new();
        tlv::push_tlv(&mut out, tag::SEQUENCE, &ci);
        out
    }

    /// An AuthEnvelopedData to rsa1 sealed by OpenSSL with a `nonce_len`-byte nonce and an
    /// `icv`-byte tag (`None`: aes-ICVlen left out, its DEFAULT 12), as RFC 5084 allows and
    /// neither OpenSSL's CLI nor Sealgate writes.
    pub(crate) fn auth_enveloped_lengths(
        content: &[u8],
        nonce_len: usize,
        icv: Option<u8>,
    ) -> Vec<u8> {
        use openssl::symm::{Cipher, Crypter, Mode};
        let mut rng = TestRng::new(11);
        let mut cek = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rng, &mut cek);
        // Lengths out of range are written as asked but sealed with what OpenSSL takes.
        let nonce: Vec<u8> = (0..nonce_len).map(|i| i as u8).collect();
        let sealing = &nonce[..nonce_len.min(MAX_GCM_NONCE)];
        let (ris, _) = recipient_infos(&[Recipient::new(cert("rsa1"))], &cek, &mut rng).unwrap();
        let mut c =
            Crypter::new(Cipher::aes_128_gcm(), Mode::Encrypt, &cek, Some(sealing)).unwrap();
        let mut ct = vec![0u8; content.len() + 16];
        let n = c.update(content, &mut ct).unwrap();
        let m = c.finalize(&mut ct[n..]).unwrap();
        ct.truncate(n + m);
        let mut mac = vec![0u8; usize::from(icv.unwrap_or(12))];
        let n = mac.len().clamp(12, 16);
        let mut t = vec![0u8; n];
        c.get_tag(&mut t).unwrap();
        let k = n.min(mac.len());
        mac[..k].copy_from_slice(&t[..k]);
        let mut params = Vec::new();
        tlv::push_tlv(&mut params, tag::OCTET_STRING, &nonce);
        if let Some(icv) = icv {
            params.extend_from_slice(&[tag::INTEGER, 1, icv]);
        }
        let mut alg = Vec::new();
        tlv::push_oid(&mut alg, &oid::AES128_GCM);
        tlv::push_tlv(&mut alg, tag::SEQUENCE, &params);
        let mut eci = Vec::new();
        tlv::push_oid(&mut eci, &oid::DATA);
        tlv::push_tlv(&mut eci, tag::SEQUENCE, &alg);
        tlv::push_tlv(&mut eci, tag::CTX0_PRIM, &ct);
        let mut ed = vec![tag::INTEGER, 1, 0];
        tlv::push_tlv(&mut ed, tag::SET, &ris);
        tlv::push_tlv(&mut ed, tag::SEQUENCE, &eci);
        tlv::push_tlv(&mut ed, tag::OCTET_STRING, &mac);
        let mut eds = Vec::new();
        tlv::push_tlv(&mut eds, tag::SEQUENCE, &ed);
        let mut ci = Vec::new();
        tlv::push_oid(&mut ci, &oid::AUTH_ENVELOPED_DATA);
        tlv::push_tlv(&mut ci, tag::CTX0, &eds);
        let mut out = Vec::new();
        tlv::push_tlv(&mut out, tag::SEQUENCE, &ci);
        out
    }

    #[test]
    fn one_shot_refuses_gcm_lengths_aws_lc_cannot_open() {
        for (nonce, icv) in [(16, Some(16)), (12, Some(12)), (12, None), (8, Some(14))] {
            let der = auth_enveloped_lengths(b"odd lengths", nonce, icv);
            let e = dec_bytes(&der, "rsa1");
            assert!(
                matches!(e, Err(Error::UnsupportedAlgorithm { .. })),
                "{nonce} {icv:?}: {e:?}"
            );
        }
        // the standard lengths built the same way open
        let der = auth_enveloped_lengths(b"odd lengths", 12, Some(16));
        assert_eq!(
            &dec_bytes(&der, "rsa1").unwrap().content[..],
            b"odd lengths"
        );
        // an ICV length RFC 5084 does not allow, a mac of another length than announced
        let der = auth_enveloped_lengths(b"x", 12, Some(11));
        assert!(matches!(
            dec_bytes(&der, "rsa1"),
            Err(Error::UnsupportedAlgorithm { .. })
        ));
        let mut der = auth_enveloped_lengths(b"x", 12, Some(16));
        let at = der.len() - 16 - 2 + 1;
        // the mac's INTEGER aes-ICVlen says 16; make it 15
        let icv_at = der
            .windows(3)
            .rposition(|w| w == [tag::INTEGER, 1, 16])
            .unwrap();
        der[icv_at + 2] = 15;
        assert_eq!(der[at], 16);
        assert!(matches!(
            dec_bytes(&der, "rsa1"),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn auth_attrs_are_authenticated_with_the_set_tag() {
        let der = auth_enveloped_with_attrs(b"attributed", tag::SET);
        let d = dec_bytes(&der, "rsa1").unwrap();
        assert_eq!(&d.content[..], b"attributed");
        assert!(d.authenticated);
        // change the attribute value (last byte of id-data inside authAttrs)
        let id_data = oid::DATA.as_bytes();
        let pos = der
            .windows(id_data.len())
            .rposition(|w| w == id_data)
            .unwrap();
        let mut t = der.clone();
        t[pos + id_data.len() - 1] ^= 2;
        assert!(matches!(
            dec_bytes(&t, "rsa1"),
            Err(Error::DecryptionFailed)
        ));
        // sealed over the IMPLICIT [1] encoding instead of SET OF: must not verify
        let wrong = auth_enveloped_with_attrs(b"attributed", tag::CTX1);
        assert!(matches!(
            dec_bytes(&wrong, "rsa1"),
            Err(Error::DecryptionFailed)
        ));
    }

    #[test]
    fn kari_kek_is_not_all_zero() {
        let mut rng = TestRng::new(4);
        for (who, cipher) in [
            ("p256", ContentCipher::Aes128Cbc),
            ("p384", ContentCipher::Aes256Gcm),
        ] {
            let der = encrypt(b"secret", &[Recipient::new(cert(who))], cipher, &mut rng).unwrap();
            let p = parse(&der, &Limits::default()).unwrap();
            let RecipientInfo::Kari(kari) = &p.recipients[0] else {
                panic!()
            };
            let wrap: AlgorithmIdentifierOwned = kari
                .key_enc_alg
                .parameters
                .as_ref()
                .unwrap()
                .decode_as()
                .unwrap();
            assert!(wrap.parameters.is_none());
            let (wrap_cipher, len) = if wrap.oid == kari::AES128_WRAP {
                (&aws_lc_rs::key_wrap::AES_128, 16)
            } else {
                (&aws_lc_rs::key_wrap::AES_256, 32)
            };
            let enc = kari.recipient_enc_keys[0].enc_key.as_bytes();
            let zero = aws_lc_rs::key_wrap::AesKek::new(wrap_cipher, &vec![0u8; len]).unwrap();
            let mut out = vec![0u8; enc.len()];
            use aws_lc_rs::key_wrap::KeyWrap;
            assert!(
                zero.unwrap(enc, &mut out).is_err(),
                "all-zero KEK unwraps the CEK"
            );
            // and the real recipient key does unwrap it
            let cek = kari::unwrap(kari, &kari.recipient_enc_keys[0], &key(who)).unwrap();
            assert_eq!(cek.len(), cipher.algorithm().key_len());
            // originator key as OpenSSL writes it: ecPublicKey without parameters
            let cms::enveloped_data::OriginatorIdentifierOrKey::OriginatorKey(ok) =
                &kari.originator
            else {
                panic!()
            };
            assert!(ok.algorithm.parameters.is_none());
        }
    }

    #[test]
    fn different_ephemeral_keys_per_message() {
        let mut rng = TestRng::new(5);
        let r = [Recipient::new(cert("p256"))];
        let a = encrypt(b"m", &r, ContentCipher::Aes256Cbc, &mut rng).unwrap();
        let b = encrypt(b"m", &r, ContentCipher::Aes256Cbc, &mut rng).unwrap();
        assert_ne!(a, b);
        let mut rng1 = TestRng::new(6);
        let mut rng2 = TestRng::new(6);
        let a = encrypt(b"m", &r, ContentCipher::Aes256Cbc, &mut rng1).unwrap();
        let b = encrypt(b"m", &r, ContentCipher::Aes256Cbc, &mut rng2).unwrap();
        assert_eq!(a, b, "deterministic with a deterministic RNG");
    }

    #[test]
    fn streaming_writer_round_trips() {
        let mut rng = TestRng::new(7);
        let content: Vec<u8> = (0..200_003u32).map(|i| (i % 251) as u8).collect();
        let rs: Vec<Recipient> = all_recipients().into_iter().map(|(_, r)| r).collect();
        for cipher in [ContentCipher::Aes128Cbc, ContentCipher::Aes128Gcm] {
            let mut w = EnvelopedWriter::new(Vec::new(), &rs, cipher, &mut rng).unwrap();
            // odd-sized writes across chunk boundaries, one huge write
            let (a, rest) = content.split_at(7);
            w.write_all(a).unwrap();
            let (b, c) = rest.split_at(70_000);
            w.write_all(b).unwrap();
            for piece in c.chunks(999) {
                w.write_all(piece).unwrap();
            }
            let out = w.finish().unwrap();
            assert_eq!(&out[..2], &[0x30, 0x80]);
            if cipher == ContentCipher::Aes128Gcm {
                // the mac between the closed authEncryptedContentInfo and the last three ends
                let n = out.len();
                assert_eq!(&out[n - 6..], &[0u8; 6]);
                assert_eq!(&out[n - 24..n - 22], &[tag::OCTET_STRING, 16]);
                assert_eq!(&out[n - 28..n - 24], &[0u8; 4]);
            } else {
                assert_eq!(&out[out.len() - 10..], &[0u8; 10]);
            }
            for (who, _) in all_recipients() {
                let d = dec_bytes(&out, who).unwrap();
                assert_eq!(d.content.len(), content.len());
                assert!(d.content[..] == content[..], "{who}");
                assert_eq!(d.cipher, cipher.algorithm());
                assert_eq!(d.authenticated, cipher.algorithm().is_aead());
            }
            // empty content
            let w = EnvelopedWriter::new(Vec::new(), &rs[..1], cipher, &mut rng).unwrap();
            let out = w.finish().unwrap();
            assert!(dec_bytes(&out, "rsa1").unwrap().content.is_empty());
        }
    }

    use std::io::Write;

    #[test]
    fn limits_are_enforced() {
        let mut l = Limits::default();
        l.max_recipients = 3;
        let c = cert("rsa1");
        let e = decrypt(&data("multi.der"), &key("rsa1"), Some(&c), &l);
        assert!(
            matches!(
                e,
                Err(Error::LimitExceeded {
                    what: "recipients",
                    ..
                })
            ),
            "{e:?}"
        );
        let mut l = Limits::default();
        l.max_cms_bytes = 1000;
        let e = decrypt(&data("rsa-aes256.der"), &key("rsa1"), Some(&c), &l);
        assert!(matches!(e, Err(Error::LimitExceeded { .. })), "{e:?}");
    }

    #[test]
    fn rejects_other_content_types_and_garbage() {
        // ContentInfo { id-data, [0] OCTET STRING "hi" }
        let mut body = Vec::new();
        tlv::push_oid(&mut body, &oid::DATA);
        body.extend_from_slice(&[0xA0, 4, 4, 2, b'h', b'i']);
        let mut ci = Vec::new();
        tlv::push_tlv(&mut ci, tag::SEQUENCE, &body);
        let c = cert("rsa1");
        let e = decrypt(&ci, &key("rsa1"), Some(&c), &Limits::default());
        assert!(matches!(e, Err(Error::WrongMessageType { .. })), "{e:?}");
        // every truncation of a real message is an error, never a panic
        let der = data("rsa-gcm.der");
        for n in 0..der.len() {
            assert!(decrypt(&der[..n], &key("rsa1"), Some(&c), &Limits::default()).is_err());
        }
    }

    #[test]
    fn oaep_params_parse() {
        for d in [
            DigestAlgorithm::Sha1,
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha512,
        ] {
            let alg = rsa_key_enc_alg(RsaPadding::Oaep(d)).unwrap();
            assert_eq!(oaep_digest(alg.parameters.as_ref()).unwrap(), d);
        }
        assert_eq!(oaep_digest(None).unwrap(), DigestAlgorithm::Sha1);
        // SHA-1 params are the empty SEQUENCE, as OpenSSL writes them
        let alg = rsa_key_enc_alg(RsaPadding::Oaep(DigestAlgorithm::Sha1)).unwrap();
        assert_eq!(alg.parameters.unwrap().to_der().unwrap(), vec![0x30, 0]);
        // the SHA-256 encoding is byte-identical to OpenSSL's (rsa-oaep-sha256.der)
        let ours = rsa_key_enc_alg(RsaPadding::Oaep(DigestAlgorithm::Sha256))
            .unwrap()
            .to_der()
            .unwrap();
        assert!(
            data("rsa-oaep-sha256.der")
                .windows(ours.len())
                .any(|w| w == ours)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// decrypt(encrypt(m)) == m for any content, cipher and non-empty recipient subset.
        #[test]
        fn prop_round_trip(
            content in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
            cipher_ix in 0usize..4,
            mask in 1u8..16,
            seed in proptest::prelude::any::<u64>(),
        ) {
            let cipher = [
                ContentCipher::Aes128Cbc,
                ContentCipher::Aes256Cbc,
                ContentCipher::Aes128Gcm,
                ContentCipher::Aes256Gcm,
            ][cipher_ix];
            let chosen: Vec<(&str, Recipient)> = all_recipients()
                .into_iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, r)| r)
                .collect();
            let rs: Vec<Recipient> = chosen.iter().map(|(_, r)| r.clone()).collect();
            let der = encrypt(&content, &rs, cipher, &mut TestRng::new(seed)).unwrap();
            for (who, r) in &chosen {
                let d = decrypt(&der, &key(who), Some(&r.cert), &Limits::default()).unwrap();
                proptest::prop_assert_eq!(&d.content[..], &content[..]);
            }
        }

        /// Corrupting any byte of a real message gives an error or (for CBC without
        /// integrity) some plaintext, never a panic.
        #[test]
        fn prop_corruption_never_panics(pos in 0usize..1463, val in proptest::prelude::any::<u8>()) {
            let mut der = data("rsa-gcm.der");
            let pos = pos % der.len();
            let changed = der[pos] != val;
            der[pos] = val;
            let r = dec_bytes(&der, "rsa1");
            if changed {
                // GCM: any change to the ciphertext, nonce, tag or wrapped key is detected;
                // a change in an ignored field (e.g. an unused certificate name byte) is
                // not an error but must then yield the original content.
                if let Ok(d) = r {
                    proptest::prop_assert_eq!(&d.content[..], &data("content.txt")[..]);
                }
            }
        }
    }

    #[test]
    fn pkcs7_padding_checks() {
        assert_eq!(pkcs7_unpadded_len(&[1, 2, 3, 1], 16), Some(3));
        assert_eq!(pkcs7_unpadded_len(&[1, 2, 2, 2], 16), Some(2));
        assert_eq!(pkcs7_unpadded_len(&[1, 2, 3, 2], 16), None);
        assert_eq!(pkcs7_unpadded_len(&[1, 2, 3, 0], 16), None);
        assert_eq!(pkcs7_unpadded_len(&[17; 32], 16), None);
        assert_eq!(pkcs7_unpadded_len(&[16; 16], 16), Some(0));
        assert_eq!(pkcs7_unpadded_len(&[], 16), None);
    }
}
