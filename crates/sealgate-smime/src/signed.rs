//! CMS SignedData (RFC 5652 §5) as S/MIME uses it (RFC 8551 §2.5, §3.5): signing, detached
//! and encapsulated, and verification with a per-check report.
//!
//! Input and output are DER `ContentInfo` bytes; the MIME layer (`multipart/signed`,
//! `application/pkcs7-mime; smime-type=signed-data`) is built on top.
//!
//! ```
//! use sealgate_smime::issue::{self, CertificateParams};
//! use sealgate_smime::signed::{self, CheckName, SignOptions, VerifyOptions};
//! use sealgate_smime::{Curve, KeyKind, Limits, PrivateKey, TrustStore};
//! # fn main() -> sealgate_smime::Result<()> {
//! let rng = &mut rand_core::OsRng;
//! let ca_key = PrivateKey::generate(KeyKind::Ec(Curve::P256))?;
//! let ca = issue::self_signed(&ca_key, &CertificateParams::ca("Example CA"), rng)?;
//! let key = PrivateKey::generate(KeyKind::Ec(Curve::P256))?;
//! let params = CertificateParams::user("Alice", "alice@example.com");
//! let cert = issue::issue(key.public_key(), &params, &ca, &ca_key, rng)?;
//!
//! let der = signed::sign(b"hello", &key, &cert, &[], &SignOptions::default(), true)?;
//! let opts = VerifyOptions { from: Some("alice@example.com".into()), ..Default::default() };
//! let v = signed::verify(&der, Some(b"hello"), &TrustStore::new(vec![ca]), &opts, &Limits::default())?;
//! assert!(v.is_valid());
//! assert_eq!(v.signers[0].certificate.as_ref(), Some(&cert));
//! assert!(v.signers[0].check(CheckName::ContentDigest).is_some_and(|c| c.passed));
//! # Ok(()) }
//! ```

use std::io;
use std::time::SystemTime;

use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5911, rfc5912};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::time::Time;

use crate::alg::{DigestAlgorithm, Hasher};
use crate::cert::{self, RsaPssParams, TrustStore};
use crate::error::{Error, Result};
use crate::keys::{Certificate, PrivateKey, SignatureScheme, addresses_equal};
use crate::{Limits, ber, tlv};

/// `id-aa-encrypKeyPref` (RFC 8551 §2.5.3): SMIMEEncryptionKeyPreference.
pub const ID_AA_ENCRYPT_KEY_PREF: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.11");

/// How [`sign`] and [`DetachedSigner`] sign.
#[derive(Debug, Clone)]
pub struct SignOptions {
    /// The message digest (SHA-256 by default). ECDSA keys always use their curve's digest
    /// (P-256: SHA-256, P-384: SHA-384), as RFC 5753 §2.1.1 pairs them; ML-DSA keys always
    /// SHA-512 (RFC 9882 §3.3: mandatory to support, strong enough for every parameter set).
    /// SHA-1 is refused.
    pub digest: DigestAlgorithm,
    /// Include `chain` next to the signer certificate (default true).
    pub include_chain: bool,
    /// The signingTime attribute; `None` means now.
    pub signing_time: Option<SystemTime>,
    /// Add the SMIMECapabilities attribute (RFC 8551 §2.5.2; default true).
    pub capabilities: bool,
    /// The certificate named in SMIMEEncryptionKeyPreference (RFC 8551 §2.5.3), for a sender
    /// with separate signing and encryption certificates. `None`: the signing certificate.
    pub encryption_key_preference: Option<Certificate>,
    /// Sign with RSASSA-PSS (RFC 4056) instead of PKCS#1 v1.5 (RSA keys only; default false).
    pub rsa_pss: bool,
}

impl Default for SignOptions {
    fn default() -> Self {
        Self {
            digest: DigestAlgorithm::Sha256,
            include_chain: true,
            signing_time: None,
            capabilities: true,
            encryption_key_preference: None,
            rsa_pss: false,
        }
    }
}

/// Sign `content`: a detached signature (the SignedData carries no content; send it with the
/// content in `multipart/signed`) or an encapsulated one (`detached = false`: the content is
/// inside, for `application/pkcs7-mime`). Returns the DER `ContentInfo`.
///
/// Signed attributes: contentType (id-data), signingTime, messageDigest, SMIMECapabilities,
/// SMIMEEncryptionKeyPreference. The signer is identified by issuerAndSerialNumber.
pub fn sign(
    content: &[u8],
    key: &PrivateKey,
    cert: &Certificate,
    chain: &[Certificate],
    opts: &SignOptions,
    detached: bool,
) -> Result<Vec<u8>> {
    let mut signer = DetachedSigner::new(key, cert, chain, opts)?;
    signer.hasher.update(content);
    signer.finish_with(if detached { None } else { Some(content) })
}

/// A streaming detached signer: write the content through [`io::Write`], then
/// [`finish`](Self::finish) for the DER `ContentInfo`. The content is hashed, not kept.
pub struct DetachedSigner<'k> {
    key: &'k PrivateKey,
    cert: Certificate,
    chain: Vec<Certificate>,
    opts: SignOptions,
    digest: DigestAlgorithm,
    hasher: Hasher,
}

impl std::fmt::Debug for DetachedSigner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetachedSigner")
            .field("cert", &self.cert)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl<'k> DetachedSigner<'k> {
    /// A signer for `key`, whose certificate is `cert`; `chain` are the intermediates to
    /// include. Fails if the key does not match the certificate or cannot sign as asked.
    pub fn new(
        key: &'k PrivateKey,
        cert: &Certificate,
        chain: &[Certificate],
        opts: &SignOptions,
    ) -> Result<Self> {
        if !key.matches(cert) {
            return Err(Error::KeyMismatch);
        }
        if opts.digest == DigestAlgorithm::Sha1 {
            return Err(Error::UnsupportedAlgorithm {
                what: "signature digest (SHA-1 is never produced)",
                oid: DigestAlgorithm::Sha1.oid().to_string(),
            });
        }
        if opts.rsa_pss && !key.is_rsa() {
            return Err(Error::InvalidKey {
                reason: "RSASSA-PSS needs an RSA key".into(),
            });
        }
        let digest = key.signing_digest(opts.digest);
        Ok(Self {
            key,
            cert: cert.clone(),
            chain: chain.to_vec(),
            opts: opts.clone(),
            digest,
            hasher: digest.hasher(),
        })
    }

    /// Sign what was written; returns the DER `ContentInfo` of a detached SignedData.
    pub fn finish(self) -> Result<Vec<u8>> {
        self.finish_with(None)
    }

    fn finish_with(self, econtent: Option<&[u8]>) -> Result<Vec<u8>> {
        let digest = self.digest;
        let message_digest = self.hasher.clone().finish();
        let attrs = self.signed_attributes(&message_digest)?;
        // RFC 5652 §5.4: the signature covers the DER of the attributes with a SET OF tag. The
        // same SetOfVec is encoded into the SignerInfo, so the bytes are identical.
        let to_sign = attrs.to_der()?;
        let (scheme, signature_algorithm) = if self.opts.rsa_pss {
            (
                SignatureScheme::RsaPss(digest),
                AlgorithmIdentifierOwned {
                    oid: rfc5912::ID_RSASSA_PSS,
                    parameters: Some(Any::from_der(&RsaPssParams::for_digest(digest)?.to_der()?)?),
                },
            )
        } else if let Some(dsa) = self.key.ml_dsa() {
            // RFC 9882 §3.3: pure ML-DSA over the DER signed attributes, the id-ml-dsa-* OID
            // with parameters absent; digestAlgorithm (SHA-512) covers the content.
            (
                SignatureScheme::MlDsa(dsa),
                AlgorithmIdentifierOwned {
                    oid: dsa.oid(),
                    parameters: None,
                },
            )
        } else if self.key.curve().is_some() {
            let oid = match digest {
                DigestAlgorithm::Sha384 => rfc5912::ECDSA_WITH_SHA_384,
                DigestAlgorithm::Sha512 => rfc5912::ECDSA_WITH_SHA_512,
                _ => rfc5912::ECDSA_WITH_SHA_256,
            };
            (
                SignatureScheme::Ecdsa(digest),
                AlgorithmIdentifierOwned {
                    oid,
                    parameters: None,
                },
            )
        } else {
            // rsaEncryption with the digest in digestAlgorithm: what OpenSSL and most clients
            // write (RFC 3370 §3.2 allows both this and sha256WithRSAEncryption).
            (
                SignatureScheme::RsaPkcs1(digest),
                AlgorithmIdentifierOwned {
                    oid: rfc5912::RSA_ENCRYPTION,
                    parameters: Some(Any::null()),
                },
            )
        };
        let signature = self.key.sign(scheme, &to_sign)?;
        let digest_alg = AlgorithmIdentifierOwned {
            oid: digest.oid(),
            parameters: None,
        };
        let signer_info = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(self.cert.issuer_and_serial()),
            digest_alg: digest_alg.clone(),
            signed_attrs: Some(attrs),
            signature_algorithm,
            signature: OctetString::new(signature)?,
            unsigned_attrs: None,
        };
        let mut certs = vec![self.cert.clone()];
        if self.opts.include_chain {
            for c in &self.chain {
                if !certs.contains(c) {
                    certs.push(c.clone());
                }
            }
        }
        let certificates = CertificateSet(SetOfVec::try_from(
            certs
                .iter()
                .map(|c| CertificateChoices::Certificate(c.x509().clone()))
                .collect::<Vec<_>>(),
        )?);
        let econtent = match econtent {
            Some(c) => Some(Any::new(der::Tag::OctetString, c)?),
            None => None,
        };
        let sd = SignedData {
            // RFC 5652 §5.1: version 1 (issuerAndSerialNumber, id-data, no attribute certs).
            version: CmsVersion::V1,
            digest_algorithms: SetOfVec::try_from(vec![digest_alg])?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: rfc5911::ID_DATA,
                econtent,
            },
            certificates: Some(certificates),
            crls: None,
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info])?),
        };
        let ci = ContentInfo {
            content_type: rfc5911::ID_SIGNED_DATA,
            content: Any::from_der(&sd.to_der()?)?,
        };
        Ok(ci.to_der()?)
    }

    fn signed_attributes(&self, message_digest: &[u8]) -> Result<SetOfVec<Attribute>> {
        let mut attrs = vec![
            attribute(rfc5911::ID_CONTENT_TYPE, Any::from(&rfc5911::ID_DATA))?,
            attribute(
                rfc5911::ID_MESSAGE_DIGEST,
                Any::new(der::Tag::OctetString, message_digest)?,
            )?,
        ];
        let when = self.opts.signing_time.unwrap_or_else(SystemTime::now);
        // RFC 5652 §11.3: UTCTime through 2049, GeneralizedTime from 2050 (Time::from does so).
        let time = Time::try_from(when)?;
        attrs.push(attribute(
            rfc5911::ID_SIGNING_TIME,
            Any::from_der(&time.to_der()?)?,
        )?);
        if self.opts.capabilities {
            attrs.push(attribute(
                rfc5911::SMIME_CAPABILITIES,
                Any::from_der(&smime_capabilities()?)?,
            )?);
        }
        // RFC 8551 §2.5.3: SMIMEEncryptionKeyPreference ::= CHOICE { issuerAndSerialNumber [0]
        // IMPLICIT IssuerAndSerialNumber, ... }: the SEQUENCE tag becomes [0] constructed.
        let pref = self
            .opts
            .encryption_key_preference
            .as_ref()
            .unwrap_or(&self.cert);
        let mut ias = pref.issuer_and_serial().to_der()?;
        if let Some(first) = ias.first_mut() {
            *first = tlv::CTX0;
        }
        attrs.push(attribute(ID_AA_ENCRYPT_KEY_PREF, Any::from_der(&ias)?)?);
        Ok(SetOfVec::try_from(attrs)?)
    }
}

impl io::Write for DetachedSigner<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value])?,
    })
}

/// RFC 8551 §2.5.2 SMIMECapability.
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct SmimeCapability {
    capability_id: ObjectIdentifier,
    parameters: Option<Any>,
}

/// RFC 4055 §4.1 RSAES-OAEP-params (EXPLICIT tags; pSourceFunc left at its default).
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct RsaOaepParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierOwned>,
}

/// SMIMECapabilities in preference order: AES-256-GCM, AES-256-CBC, AES-128-CBC, then key
/// transport RSAES-OAEP with SHA-256 (RFC 4055 §4.1) and rsaEncryption.
fn smime_capabilities() -> Result<Vec<u8>> {
    let bare = |oid| SmimeCapability {
        capability_id: oid,
        parameters: None,
    };
    let sha256 = AlgorithmIdentifierOwned {
        oid: rfc5912::ID_SHA_256,
        parameters: None,
    };
    let oaep = RsaOaepParams {
        mask_gen: Some(AlgorithmIdentifierOwned {
            oid: rfc5912::ID_MGF_1,
            parameters: Some(Any::from_der(&sha256.to_der()?)?),
        }),
        hash: Some(sha256),
    };
    let caps = vec![
        bare(rfc5911::ID_AES_256_GCM),
        bare(rfc5911::ID_AES_256_CBC),
        bare(rfc5911::ID_AES_128_CBC),
        SmimeCapability {
            capability_id: rfc5912::ID_RSAES_OAEP,
            parameters: Some(Any::from_der(&oaep.to_der()?)?),
        },
        SmimeCapability {
            capability_id: rfc5912::RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
    ];
    Ok(caps.to_der()?)
}

/// How far a signingTime may lie ahead of the verifier's clock.
const MAX_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// How [`verify`] judges.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The time "now" for [`CheckName::ValidNow`] (and for the other validity check when the
    /// message has no signingTime). `None`: the system clock.
    pub at: Option<SystemTime>,
    /// The sender address (the message's `From`); when set, the signer certificate must name
    /// it ([`CheckName::SignerAddress`]).
    pub from: Option<String>,
    /// Accept SHA-1 in signatures and in certificate signatures (off by default: SHA-1
    /// collisions are practical and RFC 8551 §2.1 says not to accept it). For reading old
    /// archives only.
    pub allow_sha1: bool,
}

/// The checks made for each signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckName {
    /// The certificate named by the SignerInfo's sid is in the message or the trust store.
    SignerCertificateFound,
    /// The contentType attribute equals eContentType (RFC 5652 §5.3); without signed
    /// attributes, eContentType must be id-data.
    ContentType,
    /// The messageDigest attribute equals the digest of the content (RFC 5652 §5.4).
    ContentDigest,
    /// The signature verifies with the signer certificate's public key.
    Signature,
    /// A certification path to a trust anchor exists and every link checks out.
    Chain,
    /// Every certificate of the path was valid at the signing time (the signingTime
    /// attribute, else [`VerifyOptions::at`]). The signingTime is the signer's own claim,
    /// not a trusted timestamp: it is used only when it is not in the future (one day of
    /// clock skew allowed), and a caller that must not trust it can require
    /// [`CheckName::ValidNow`] as well.
    ValidAtSigningTime,
    /// Every certificate of the path is valid now ([`VerifyOptions::at`]). Informational:
    /// [`SignerReport::is_valid`] does not require it, so an old message signed with a
    /// since-expired certificate stays valid (as RFC 8550 §4.3 argues).
    ValidNow,
    /// The signer's keyUsage, when present, allows digitalSignature or nonRepudiation.
    KeyUsage,
    /// The signer's extendedKeyUsage, when present, has emailProtection or anyExtendedKeyUsage.
    ExtendedKeyUsage,
    /// The signer certificate names [`VerifyOptions::from`] (passes when no address is given).
    SignerAddress,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Which check.
    pub name: CheckName,
    /// Whether it passed.
    pub passed: bool,
    /// A human-readable explanation (names, times, algorithms; never key material).
    pub detail: String,
}

/// What was found out about one signer.
#[derive(Debug, Clone)]
pub struct SignerReport {
    /// The signer certificate, if found.
    pub certificate: Option<Certificate>,
    /// The certification path, leaf first and trust anchor last (the leaf alone when no path
    /// was found; empty without a signer certificate).
    pub chain: Vec<Certificate>,
    /// The digest algorithm of this SignerInfo.
    pub digest: DigestAlgorithm,
    /// The signingTime attribute (as the signer claims it).
    pub signing_time: Option<SystemTime>,
    /// The algorithms of the SMIMECapabilities attribute, in the signer's preference order.
    pub capabilities: Vec<ObjectIdentifier>,
    /// Every check, in the order of [`CheckName`].
    pub checks: Vec<Check>,
}

impl SignerReport {
    /// True if every check except [`CheckName::ValidNow`] passed.
    pub fn is_valid(&self) -> bool {
        !self.checks.is_empty()
            && self
                .checks
                .iter()
                .all(|c| c.passed || c.name == CheckName::ValidNow)
    }

    /// The check called `name`.
    pub fn check(&self, name: CheckName) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// True for the signature algorithms that hash with SHA-1 (sha1WithRSAEncryption,
/// ecdsa-with-SHA1, RSASSA-PSS with SHA-1 or default parameters).
fn is_sha1_signature(alg: &spki::AlgorithmIdentifierOwned) -> bool {
    const ECDSA_WITH_SHA1: const_oid::ObjectIdentifier =
        const_oid::ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");
    match alg.oid {
        rfc5912::SHA_1_WITH_RSA_ENCRYPTION | ECDSA_WITH_SHA1 => true,
        rfc5912::ID_RSASSA_PSS => cert::pss_digest(alg).is_none_or(|d| d == DigestAlgorithm::Sha1),
        _ => false,
    }
}

/// The result of [`verify`]. `Debug` shows the content's size, not the content.
#[derive(Clone)]
pub struct Verification {
    /// The encapsulated content (`None` for a detached signature).
    pub content: Option<Vec<u8>>,
    /// One report per SignerInfo, in message order.
    pub signers: Vec<SignerReport>,
    /// Every certificate the SignedData carries.
    pub certificates: Vec<Certificate>,
}

impl std::fmt::Debug for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verification")
            .field(
                "content",
                &self
                    .content
                    .as_ref()
                    .map(|c| format!("[{} bytes]", c.len())),
            )
            .field("signers", &self.signers)
            .field("certificates", &self.certificates)
            .finish()
    }
}

impl Verification {
    /// True if there is at least one signer and every signer [is valid](SignerReport::is_valid).
    pub fn is_valid(&self) -> bool {
        !self.signers.is_empty() && self.signers.iter().all(SignerReport::is_valid)
    }
}

/// Verify a SignedData `ContentInfo` (DER or BER). `detached_content` is the signed content of
/// a detached signature (the first part of `multipart/signed`, exactly as received) and must
/// be `None` when the content is encapsulated.
///
/// Failed checks are reported in the [`Verification`], not as errors (a missing signer
/// certificate too); `Err` means malformed input, an unsupported digest, or a limit hit.
pub fn verify(
    der: &[u8],
    detached_content: Option<&[u8]>,
    trust: &TrustStore,
    opts: &VerifyOptions,
    limits: &Limits,
) -> Result<Verification> {
    if der.len() > limits.max_cms_bytes {
        return Err(Error::LimitExceeded {
            what: "CMS size",
            limit: limits.max_cms_bytes as u64,
        });
    }
    let der = ber::to_der(der, limits)?;
    let parsed = ParsedSignedData::parse(&der, limits)?;
    let content: &[u8] = match (parsed.econtent, detached_content) {
        (Some(c), None) => c,
        (None, Some(c)) => c,
        (Some(_), Some(_)) => {
            return Err(Error::malformed(
                "SignedData",
                "content given for a signature that encapsulates its content",
            ));
        }
        (None, None) => {
            return Err(Error::malformed(
                "SignedData",
                "detached signature and no content given",
            ));
        }
    };
    let signers = verify_signers(&parsed, SignedContent::Bytes(content), trust, opts, limits)?;
    Ok(Verification {
        content: parsed.econtent.map(<[u8]>::to_vec),
        signers,
        certificates: parsed.certificates,
    })
}

/// The signed content as [`verify_signer`] sees it: the bytes, or (streamed) their digests.
#[derive(Clone, Copy)]
pub(crate) enum SignedContent<'a> {
    Bytes(&'a [u8]),
    /// The digests of content that was hashed as it went by (and is not held).
    Digests(&'a [(DigestAlgorithm, Vec<u8>)]),
}

fn verify_signers(
    parsed: &ParsedSignedData<'_>,
    content: SignedContent<'_>,
    trust: &TrustStore,
    opts: &VerifyOptions,
    limits: &Limits,
) -> Result<Vec<SignerReport>> {
    let now = opts.at.unwrap_or_else(SystemTime::now);
    let mut signers = Vec::with_capacity(parsed.signer_infos.len());
    for si in &parsed.signer_infos {
        signers.push(verify_signer(
            si, parsed, content, trust, opts, now, limits,
        )?);
    }
    Ok(signers)
}

/// [`verify`] of a SignedData without eContent whose content was hashed while it streamed by
/// (the digests of every algorithm the signers may use). A SignerInfo whose digest algorithm
/// is not among `digests`, or that has no signed attributes (then the signature covers the
/// content itself), is [`Error::NotStreamable`]: [`verify`] reads such a message.
pub(crate) fn verify_digests(
    der: &[u8],
    digests: &[(DigestAlgorithm, Vec<u8>)],
    trust: &TrustStore,
    opts: &VerifyOptions,
    limits: &Limits,
) -> Result<Verification> {
    if der.len() > limits.max_cms_bytes {
        return Err(Error::LimitExceeded {
            what: "CMS size",
            limit: limits.max_cms_bytes as u64,
        });
    }
    let der = ber::to_der(der, limits)?;
    let parsed = ParsedSignedData::parse(&der, limits)?;
    if parsed.econtent.is_some() {
        return Err(Error::malformed(
            "SignedData",
            "content given for a signature that encapsulates its content",
        ));
    }
    let signers = verify_signers(
        &parsed,
        SignedContent::Digests(digests),
        trust,
        opts,
        limits,
    )?;
    Ok(Verification {
        content: None,
        signers,
        certificates: parsed.certificates,
    })
}

/// The parts of a SignedData verification needs, borrowing the DER.
struct ParsedSignedData<'a> {
    econtent_type: ObjectIdentifier,
    econtent: Option<&'a [u8]>,
    certificates: Vec<Certificate>,
    signer_infos: Vec<ParsedSignerInfo<'a>>,
}

struct ParsedSignerInfo<'a> {
    sid: SignerIdentifier,
    digest_alg: AlgorithmIdentifierOwned,
    /// The whole `[0] IMPLICIT` signedAttrs element, exactly as encoded.
    signed_attrs: Option<&'a [u8]>,
    signature_alg: AlgorithmIdentifierOwned,
    signature: &'a [u8],
}

impl<'a> ParsedSignedData<'a> {
    fn parse(der: &'a [u8], limits: &Limits) -> Result<Self> {
        const W: &str = "SignedData";
        let mut input = der;
        let ci = tlv::expect(&mut input, tlv::SEQUENCE, "ContentInfo")?;
        tlv::finished(input, "ContentInfo")?;
        let mut ci_body = ci.value;
        let ct = tlv::expect(&mut ci_body, tlv::OID, "ContentInfo")?;
        let ct = ObjectIdentifier::from_der(ct.raw)?;
        if ct != rfc5911::ID_SIGNED_DATA {
            return Err(Error::WrongMessageType {
                expected: "signed",
                found: ct.to_string(),
            });
        }
        let explicit = tlv::expect(&mut ci_body, tlv::CTX0, "ContentInfo")?;
        let mut ex = explicit.value;
        let sd = tlv::expect(&mut ex, tlv::SEQUENCE, W)?;
        let mut body = sd.value;
        let _version = tlv::expect(&mut body, tlv::INTEGER, W)?;
        let _digest_algs = tlv::expect(&mut body, tlv::SET, W)?;
        let eci = tlv::expect(&mut body, tlv::SEQUENCE, W)?;
        let mut eci_body = eci.value;
        let ect = tlv::expect(&mut eci_body, tlv::OID, W)?;
        let econtent_type = ObjectIdentifier::from_der(ect.raw)?;
        let econtent = match tlv::optional(&mut eci_body, tlv::CTX0, W)? {
            Some(wrapper) => {
                let mut w = wrapper.value;
                Some(tlv::expect(&mut w, tlv::OCTET_STRING, "eContent")?.value)
            }
            None => None,
        };
        let mut certificates = Vec::new();
        if let Some(set) = tlv::optional(&mut body, tlv::CTX0, W)? {
            for c in tlv::elements(set.value, limits.max_certificates, "certificates", W)? {
                // Only X.509 certificates; attribute and other certificate formats are skipped.
                if c.tag == tlv::SEQUENCE {
                    certificates.push(Certificate::from_der(c.raw)?);
                }
            }
        }
        let _crls = tlv::optional(&mut body, tlv::CTX1, W)?;
        let sis = tlv::expect(&mut body, tlv::SET, W)?;
        tlv::finished(body, W)?;
        let mut signer_infos = Vec::new();
        for si in tlv::elements(sis.value, limits.max_signers, "signers", W)? {
            if si.tag != tlv::SEQUENCE {
                return Err(Error::malformed("SignerInfo", "not a SEQUENCE"));
            }
            signer_infos.push(ParsedSignerInfo::parse(si.value)?);
        }
        Ok(Self {
            econtent_type,
            econtent,
            certificates,
            signer_infos,
        })
    }
}

impl<'a> ParsedSignerInfo<'a> {
    fn parse(mut body: &'a [u8]) -> Result<Self> {
        const W: &str = "SignerInfo";
        let _version = tlv::expect(&mut body, tlv::INTEGER, W)?;
        let sid = SignerIdentifier::from_der(tlv::next(&mut body, W)?.raw)?;
        let digest_alg =
            AlgorithmIdentifierOwned::from_der(tlv::expect(&mut body, tlv::SEQUENCE, W)?.raw)?;
        let signed_attrs = tlv::optional(&mut body, tlv::CTX0, W)?.map(|t| t.raw);
        let signature_alg =
            AlgorithmIdentifierOwned::from_der(tlv::expect(&mut body, tlv::SEQUENCE, W)?.raw)?;
        let signature = tlv::expect(&mut body, tlv::OCTET_STRING, W)?.value;
        let _unsigned_attrs = tlv::optional(&mut body, tlv::CTX1, W)?;
        tlv::finished(body, W)?;
        Ok(Self {
            sid,
            digest_alg,
            signed_attrs,
            signature_alg,
            signature,
        })
    }
}

/// What the signed attributes say (RFC 5652 §11).
#[derive(Default)]
struct SignedAttrs {
    content_type: Vec<ObjectIdentifier>,
    message_digest: Vec<Vec<u8>>,
    signing_time: Option<SystemTime>,
    signing_time_count: usize,
    capabilities: Vec<ObjectIdentifier>,
}

impl SignedAttrs {
    fn parse(raw: &[u8]) -> Result<Self> {
        const W: &str = "signedAttrs";
        let mut input = raw;
        let set = tlv::expect(&mut input, tlv::CTX0, W)?;
        let mut out = Self::default();
        let mut body = set.value;
        while !body.is_empty() {
            let attr = Attribute::from_der(tlv::next(&mut body, W)?.raw)?;
            let values = attr.values.iter();
            match attr.oid {
                rfc5911::ID_CONTENT_TYPE => {
                    for v in values {
                        out.content_type.push(v.decode_as()?);
                    }
                }
                rfc5911::ID_MESSAGE_DIGEST => {
                    for v in values {
                        let os: OctetString = v.decode_as()?;
                        out.message_digest.push(os.as_bytes().to_vec());
                    }
                }
                rfc5911::ID_SIGNING_TIME => {
                    for v in values {
                        out.signing_time_count += 1;
                        let t = Time::from_der(&v.to_der()?)?;
                        out.signing_time = Some(t.to_system_time());
                    }
                }
                rfc5911::SMIME_CAPABILITIES => {
                    if let Some(v) = attr.values.iter().next() {
                        // Informational only: a malformed list is ignored, not fatal.
                        if let Ok(caps) = Vec::<SmimeCapability>::from_der(&v.to_der()?) {
                            out.capabilities = caps.into_iter().map(|c| c.capability_id).collect();
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

fn check(name: CheckName, passed: bool, detail: impl Into<String>) -> Check {
    Check {
        name,
        passed,
        detail: detail.into(),
    }
}

fn hex(b: &[u8]) -> String {
    crate::keys::hex_upper(b)
}

fn verify_signer(
    si: &ParsedSignerInfo<'_>,
    sd: &ParsedSignedData<'_>,
    content: SignedContent<'_>,
    trust: &TrustStore,
    opts: &VerifyOptions,
    now: SystemTime,
    limits: &Limits,
) -> Result<SignerReport> {
    use CheckName as N;
    let digest = DigestAlgorithm::from_oid(&si.digest_alg.oid)?;
    let content_digest = match content {
        SignedContent::Bytes(c) => digest.digest(c),
        SignedContent::Digests(d) => d
            .iter()
            .find(|(a, _)| *a == digest)
            .map(|(_, v)| v.clone())
            .ok_or(Error::NotStreamable {
                what: "a signature whose digest algorithm the message did not announce \
                       (micalg or digestAlgorithms; use verify_message)",
            })?,
    };
    let mut checks = Vec::new();

    let attrs = match si.signed_attrs {
        Some(raw) => Some(SignedAttrs::parse(raw)?),
        None => None,
    };
    // What the signature covers: the signedAttrs with the SET OF tag (RFC 5652 §5.4), or the
    // content itself when there are none.
    let signed_attrs_der;
    let signed_bytes: &[u8] = match si.signed_attrs {
        Some(raw) => {
            let mut v = raw.to_vec();
            if let Some(first) = v.first_mut() {
                *first = tlv::SET;
            }
            signed_attrs_der = v;
            &signed_attrs_der
        }
        None => match content {
            SignedContent::Bytes(c) => c,
            SignedContent::Digests(_) => {
                return Err(Error::NotStreamable {
                    what: "a signature without signed attributes (use verify_message)",
                });
            }
        },
    };
    // Every certificate the SignerIdentifier names is a candidate (a message may carry a
    // stray or forged one with the same issuer and serial): the first whose key verifies the
    // signature is the signer; if none does, the first is reported.
    let verify_with = |c: &Certificate| {
        c.public_key().and_then(|k| {
            if let crate::keys::PublicKey::Rsa { bits, .. } = &k
                && (*bits < limits.min_rsa_bits || *bits > limits.max_rsa_bits)
            {
                return Err(Error::UnusableCertificate {
                    reason: format!("RSA key of {bits} bits is outside the accepted sizes"),
                });
            }
            cert::verify_signature(
                &k,
                &si.signature_alg,
                Some(digest),
                signed_bytes,
                si.signature,
            )
        })
    };
    let mut certificate: Option<Certificate> = None;
    let mut verified: Option<Result<bool>> = None;
    for c in sd
        .certificates
        .iter()
        .chain(trust.intermediates())
        .chain(trust.anchors())
        .filter(|c| c.matches_identifier(&si.sid))
        .take(limits.max_certificates)
    {
        let r = verify_with(c);
        let good = matches!(r, Ok(true));
        if good || certificate.is_none() {
            certificate = Some(c.clone());
            verified = Some(r);
        }
        if good {
            break;
        }
    }
    checks.push(match &certificate {
        Some(c) => check(N::SignerCertificateFound, true, c.subject()),
        None => check(
            N::SignerCertificateFound,
            false,
            match &si.sid {
                SignerIdentifier::IssuerAndSerialNumber(ias) => format!(
                    "no certificate with issuer \"{}\" and serial {}",
                    ias.issuer,
                    hex(ias.serial_number.as_bytes())
                ),
                SignerIdentifier::SubjectKeyIdentifier(ski) => {
                    format!(
                        "no certificate with subjectKeyIdentifier {}",
                        hex(ski.0.as_bytes())
                    )
                }
            },
        ),
    });

    let signature_ok = match verified {
        Some(Ok(true)) => check(
            N::Signature,
            true,
            format!("{} signature verifies", si.signature_alg.oid),
        ),
        Some(Ok(false)) => check(
            N::Signature,
            false,
            "signature does not verify with the signer's key",
        ),
        Some(Err(e)) => check(N::Signature, false, format!("cannot verify: {e}")),
        None => check(N::Signature, false, "no signer certificate"),
    };
    let uses_sha1 = digest == DigestAlgorithm::Sha1 || is_sha1_signature(&si.signature_alg);
    let signature_ok = if uses_sha1 && !opts.allow_sha1 && signature_ok.passed {
        check(
            N::Signature,
            false,
            "SHA-1 signatures are not accepted (RFC 8551 §2.1; VerifyOptions::allow_sha1 \
             reads old archives)",
        )
    } else {
        signature_ok
    };
    let signature_passed = signature_ok.passed;

    match &attrs {
        Some(a) => {
            checks.push(match a.content_type.as_slice() {
                [ct] if *ct == sd.econtent_type => check(N::ContentType, true, ct.to_string()),
                [ct] => check(
                    N::ContentType,
                    false,
                    format!(
                        "contentType attribute {ct} but eContentType {}",
                        sd.econtent_type
                    ),
                ),
                _ => check(
                    N::ContentType,
                    false,
                    "contentType attribute missing or repeated",
                ),
            });
            checks.push(match a.message_digest.as_slice() {
                [md] if *md == content_digest => {
                    check(N::ContentDigest, true, format!("{digest:?} {}", hex(md)))
                }
                [md] => check(
                    N::ContentDigest,
                    false,
                    format!(
                        "messageDigest {} but the content's {digest:?} is {}",
                        hex(md),
                        hex(&content_digest)
                    ),
                ),
                _ => check(
                    N::ContentDigest,
                    false,
                    "messageDigest attribute missing or repeated",
                ),
            });
        }
        None => {
            // RFC 5652 §5.3: without signedAttrs the content type must be id-data, and the
            // signature itself covers the content.
            checks.push(check(
                N::ContentType,
                sd.econtent_type == rfc5911::ID_DATA,
                format!("no signed attributes; eContentType {}", sd.econtent_type),
            ));
            checks.push(check(
                N::ContentDigest,
                signature_passed,
                "no signed attributes: the signature covers the content directly",
            ));
        }
    }
    checks.push(signature_ok);

    let signing_time = attrs.as_ref().and_then(|a| a.signing_time);
    let repeated_time = attrs.as_ref().is_some_and(|a| a.signing_time_count > 1);
    let chain = match &certificate {
        Some(leaf) => {
            let path = cert::build_path(leaf, &sd.certificates, trust);
            let sha1_cert = path
                .chain
                .iter()
                .filter(|c| !trust.anchors().contains(c))
                .find(|c| is_sha1_signature(c.x509().signature_algorithm()));
            checks.push(match (&path.status, sha1_cert) {
                (Ok(()), Some(c)) if !opts.allow_sha1 => check(
                    N::Chain,
                    false,
                    format!(
                        "{} is signed with SHA-1, which is not accepted \
                         (VerifyOptions::allow_sha1 reads old archives)",
                        c.subject()
                    ),
                ),
                (Ok(()), _) => check(
                    N::Chain,
                    true,
                    path.chain
                        .iter()
                        .map(Certificate::subject)
                        .collect::<Vec<_>>()
                        .join(" <- "),
                ),
                (Err(e), _) => check(N::Chain, false, e.clone()),
            });
            let when = signing_time.unwrap_or(now);
            checks.push(if repeated_time {
                check(
                    N::ValidAtSigningTime,
                    false,
                    "signingTime attribute repeated",
                )
            } else if signing_time.is_some_and(|t| t > now + MAX_CLOCK_SKEW) {
                // The signer's clock may be off a little; a signingTime far ahead of ours is
                // not plausible and would let a signer pick the time the certificate is
                // judged at.
                check(
                    N::ValidAtSigningTime,
                    false,
                    format!("signingTime {} is in the future", cert::fmt_time(when)),
                )
            } else {
                match cert::chain_valid_at(&path.chain, when) {
                    Ok(()) => check(
                        N::ValidAtSigningTime,
                        true,
                        format!(
                            "valid at {}{}",
                            cert::fmt_time(when),
                            if signing_time.is_some() {
                                " (signingTime)"
                            } else {
                                " (no signingTime; now)"
                            }
                        ),
                    ),
                    Err(e) => check(N::ValidAtSigningTime, false, e),
                }
            });
            checks.push(match cert::chain_valid_at(&path.chain, now) {
                Ok(()) => check(
                    N::ValidNow,
                    true,
                    format!("valid at {}", cert::fmt_time(now)),
                ),
                Err(e) => check(N::ValidNow, false, e),
            });
            checks.push(match cert::check_signing_key_usage(leaf) {
                Ok(d) => check(N::KeyUsage, true, d),
                Err(d) => check(N::KeyUsage, false, d),
            });
            checks.push(match cert::check_email_eku(leaf) {
                Ok(d) => check(N::ExtendedKeyUsage, true, d),
                Err(d) => check(N::ExtendedKeyUsage, false, d),
            });
            checks.push(match &opts.from {
                None => check(N::SignerAddress, true, "no sender address to compare"),
                Some(from) => {
                    let addrs = leaf.email_addresses();
                    if addrs.iter().any(|a| addresses_equal(a, from)) {
                        check(N::SignerAddress, true, format!("certificate names {from}"))
                    } else {
                        check(
                            N::SignerAddress,
                            false,
                            format!("{from} is not among the certificate's addresses {addrs:?}"),
                        )
                    }
                }
            });
            path.chain
        }
        None => {
            for n in [
                N::Chain,
                N::ValidAtSigningTime,
                N::ValidNow,
                N::KeyUsage,
                N::ExtendedKeyUsage,
                N::SignerAddress,
            ] {
                checks.push(check(n, false, "no signer certificate"));
            }
            Vec::new()
        }
    };

    Ok(SignerReport {
        certificate,
        chain,
        digest,
        signing_time,
        capabilities: attrs.map(|a| a.capabilities).unwrap_or_default(),
        checks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::tests::{cert, fixture, trust};
    use std::io::Write as _;
    use std::time::Duration;

    fn key(name: &str) -> PrivateKey {
        let blocks = crate::pem::parse_all(&fixture(name), 4).unwrap();
        PrivateKey::from_der(&blocks[0].der, &Limits::default()).unwrap()
    }

    fn content() -> Vec<u8> {
        fixture("content.txt")
    }

    fn run(der: &[u8], detached: Option<&[u8]>, opts: &VerifyOptions) -> Verification {
        verify(der, detached, &trust(), opts, &Limits::default()).unwrap()
    }

    fn passed(r: &SignerReport, name: CheckName) -> bool {
        r.check(name)
            .unwrap_or_else(|| panic!("no {name:?} check"))
            .passed
    }

    fn failed_names(r: &SignerReport) -> Vec<CheckName> {
        r.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn openssl_rsa_detached() {
        let v = run(
            &fixture("rsa-detached.der"),
            Some(&content()),
            &VerifyOptions::default(),
        );
        assert!(v.is_valid(), "{:#?}", v.signers);
        assert_eq!(v.content, None);
        assert_eq!(v.signers.len(), 1);
        let s = &v.signers[0];
        assert_eq!(s.certificate.as_ref(), Some(&cert("alice-rsa.pem")));
        assert_eq!(
            s.chain,
            vec![cert("alice-rsa.pem"), cert("int.pem"), cert("root.pem")]
        );
        assert_eq!(s.digest, DigestAlgorithm::Sha256);
        assert_eq!(s.checks.len(), 10);
        assert!(failed_names(s).is_empty());
        assert!(s.signing_time.is_some());
        assert!(s.capabilities.contains(&rfc5911::ID_AES_256_CBC));
        assert_eq!(v.certificates.len(), 2);
    }

    #[test]
    fn openssl_rsa_opaque_returns_content() {
        let v = run(&fixture("rsa-opaque.der"), None, &VerifyOptions::default());
        assert!(v.is_valid());
        assert_eq!(v.content, Some(content()));
    }

    #[test]
    fn openssl_noattr() {
        let v = run(
            &fixture("rsa-noattr.der"),
            Some(&content()),
            &VerifyOptions::default(),
        );
        assert!(v.is_valid(), "{:#?}", v.signers);
        let s = &v.signers[0];
        assert_eq!(s.signing_time, None);
        assert!(
            s.check(CheckName::ContentDigest)
                .unwrap()
                .detail
                .contains("directly")
        );
        let mut bad = content();
        bad[0] ^= 1;
        let v = run(
            &fixture("rsa-noattr.der"),
            Some(&bad),
            &VerifyOptions::default(),
        );
        assert_eq!(
            failed_names(&v.signers[0]),
            vec![CheckName::ContentDigest, CheckName::Signature]
        );
    }

    #[test]
    fn tampered_content_fails_digest_only() {
        let mut bad = content();
        let last = bad.len() - 3;
        bad[last] ^= 0x20;
        let v = run(
            &fixture("rsa-detached.der"),
            Some(&bad),
            &VerifyOptions::default(),
        );
        assert!(!v.is_valid());
        assert_eq!(failed_names(&v.signers[0]), vec![CheckName::ContentDigest]);
    }

    #[test]
    fn tampered_signature_fails() {
        let mut der = fixture("rsa-detached.der");
        // the signature is the last element: flip a byte near the end
        let n = der.len() - 10;
        der[n] ^= 1;
        let v = run(&der, Some(&content()), &VerifyOptions::default());
        assert_eq!(failed_names(&v.signers[0]), vec![CheckName::Signature]);
    }

    #[test]
    fn sender_address() {
        let der = fixture("rsa-detached.der");
        let opts = |a: &str| VerifyOptions {
            from: Some(a.into()),
            ..Default::default()
        };
        let v = run(&der, Some(&content()), &opts("alice@EXAMPLE.com"));
        assert!(v.is_valid());
        let v = run(&der, Some(&content()), &opts("mallory@example.com"));
        assert!(!v.is_valid());
        assert_eq!(failed_names(&v.signers[0]), vec![CheckName::SignerAddress]);
        // local part is case-sensitive
        let v = run(&der, Some(&content()), &opts("Alice@example.com"));
        assert!(!passed(&v.signers[0], CheckName::SignerAddress));
    }

    #[test]
    fn certificate_expired_before_signing() {
        let v = run(
            &fixture("expired.der"),
            Some(&content()),
            &VerifyOptions::default(),
        );
        let s = &v.signers[0];
        assert_eq!(
            failed_names(s),
            vec![CheckName::ValidAtSigningTime, CheckName::ValidNow]
        );
        assert!(!v.is_valid());
        assert!(
            s.check(CheckName::ValidAtSigningTime)
                .unwrap()
                .detail
                .contains("dave-past")
        );
    }

    #[test]
    fn valid_at_signing_time_expired_now_is_still_valid() {
        let year_2060 = SystemTime::UNIX_EPOCH + Duration::from_secs(2_840_140_800);
        let opts = VerifyOptions {
            at: Some(year_2060),
            ..VerifyOptions::default()
        };
        let v = run(&fixture("rsa-detached.der"), Some(&content()), &opts);
        let s = &v.signers[0];
        assert_eq!(failed_names(s), vec![CheckName::ValidNow]);
        assert!(s.is_valid());
        assert!(v.is_valid());
    }

    #[test]
    fn wrong_key_usage_and_eku() {
        let v = run(
            &fixture("wrong-usage.der"),
            Some(&content()),
            &VerifyOptions::default(),
        );
        assert_eq!(
            failed_names(&v.signers[0]),
            vec![CheckName::KeyUsage, CheckName::ExtendedKeyUsage]
        );
    }

    #[test]
    fn issued_by_non_ca_fails_chain() {
        let v = run(
            &fixture("notca.der"),
            Some(&content()),
            &VerifyOptions::default(),
        );
        let s = &v.signers[0];
        assert_eq!(failed_names(s), vec![CheckName::Chain]);
        assert!(
            s.check(CheckName::Chain)
                .unwrap()
                .detail
                .contains("not a CA")
        );
        assert_eq!(s.chain, vec![cert("mallory.pem")]);
    }

    #[test]
    fn untrusted_root() {
        let t = TrustStore::new(vec![cert("int.pem")]);
        // the intermediate as the anchor: the path ends there and is valid
        let v = verify(
            &fixture("rsa-detached.der"),
            Some(&content()),
            &t,
            &VerifyOptions::default(),
            &Limits::default(),
        )
        .unwrap();
        assert!(v.is_valid());
        assert_eq!(v.signers[0].chain.len(), 2);
        let t = TrustStore::new(vec![cert("bob-p256.pem")]);
        let v = verify(
            &fixture("rsa-detached.der"),
            Some(&content()),
            &t,
            &VerifyOptions::default(),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(failed_names(&v.signers[0]), vec![CheckName::Chain]);
    }

    #[test]
    fn missing_signer_certificate_is_a_failed_check() {
        let der = fixture("rsa-nocerts.der");
        let v = run(&der, Some(&content()), &VerifyOptions::default());
        let s = &v.signers[0];
        assert!(!v.is_valid());
        assert_eq!(s.certificate, None);
        assert!(!passed(s, CheckName::SignerCertificateFound));
        assert!(passed(s, CheckName::ContentDigest));
        assert!(!passed(s, CheckName::Signature));
        let mut t = trust();
        t.add_intermediates([cert("alice-rsa.pem"), cert("int.pem")]);
        let v = verify(
            &der,
            Some(&content()),
            &t,
            &VerifyOptions::default(),
            &Limits::default(),
        )
        .unwrap();
        assert!(v.is_valid(), "{:#?}", v.signers);
        assert_eq!(v.signers[0].certificate, Some(cert("alice-rsa.pem")));
    }

    #[test]
    fn openssl_ecdsa() {
        let v = run(
            &fixture("p256-detached.der"),
            Some(&content()),
            &VerifyOptions::default(),
        );
        assert!(v.is_valid(), "{:#?}", v.signers);
        assert_eq!(v.signers[0].certificate, Some(cert("bob-p256.pem")));
        let v = run(&fixture("p384-opaque.der"), None, &VerifyOptions::default());
        assert!(v.is_valid(), "{:#?}", v.signers);
        assert_eq!(v.signers[0].digest, DigestAlgorithm::Sha384);
        assert_eq!(v.signers[0].certificate, Some(cert("carol-p384.pem")));
        assert_eq!(v.content, Some(content()));
    }

    #[test]
    fn openssl_pss_both_salt_lengths() {
        for f in ["rsa-pss.der", "rsa-pss-digestsalt.der"] {
            let v = run(&fixture(f), Some(&content()), &VerifyOptions::default());
            assert!(v.is_valid(), "{f}: {:#?}", v.signers);
            let mut bad = content();
            bad[1] ^= 1;
            let v = run(&fixture(f), Some(&bad), &VerifyOptions::default());
            assert_eq!(failed_names(&v.signers[0]), vec![CheckName::ContentDigest]);
        }
    }

    #[test]
    fn two_signers() {
        let v = run(
            &fixture("two-signers.der"),
            Some(&content()),
            &VerifyOptions::default(),
        );
        assert!(v.is_valid());
        let mut who: Vec<_> = v
            .signers
            .iter()
            .map(|s| s.certificate.clone().unwrap())
            .collect();
        who.sort_by_key(Certificate::subject);
        assert_eq!(who, vec![cert("alice-rsa.pem"), cert("bob-p256.pem")]);
        // with bob's address one signer fails, so the whole message is not valid
        let opts = VerifyOptions {
            from: Some("bob@example.com".into()),
            ..Default::default()
        };
        let v = run(&fixture("two-signers.der"), Some(&content()), &opts);
        assert!(!v.is_valid());
        assert_eq!(v.signers.iter().filter(|s| s.is_valid()).count(), 1);
    }

    #[test]
    fn limits_and_misuse() {
        let mut l = Limits::default();
        l.max_signers = 1;
        let e = verify(
            &fixture("two-signers.der"),
            Some(&content()),
            &trust(),
            &VerifyOptions::default(),
            &l,
        );
        assert!(
            matches!(
                e,
                Err(Error::LimitExceeded {
                    what: "signers",
                    ..
                })
            ),
            "{e:?}"
        );
        let mut l = Limits::default();
        l.max_certificates = 1;
        let e = verify(
            &fixture("rsa-detached.der"),
            Some(&content()),
            &trust(),
            &VerifyOptions::default(),
            &l,
        );
        assert!(
            matches!(
                e,
                Err(Error::LimitExceeded {
                    what: "certificates",
                    ..
                })
            ),
            "{e:?}"
        );
        let mut l = Limits::default();
        l.max_cms_bytes = 100;
        let e = verify(
            &fixture("rsa-detached.der"),
            Some(&content()),
            &trust(),
            &VerifyOptions::default(),
            &l,
        );
        assert!(matches!(e, Err(Error::LimitExceeded { .. })), "{e:?}");
        let e = verify(
            &fixture("rsa-detached.der"),
            None,
            &trust(),
            &VerifyOptions::default(),
            &Limits::default(),
        );
        assert!(matches!(e, Err(Error::Malformed { .. })));
        let e = verify(
            &fixture("rsa-opaque.der"),
            Some(b"x"),
            &trust(),
            &VerifyOptions::default(),
            &Limits::default(),
        );
        assert!(matches!(e, Err(Error::Malformed { .. })));
        // a ContentInfo of another type
        let data = ContentInfo {
            content_type: rfc5911::ID_DATA,
            content: Any::new(der::Tag::OctetString, b"x".as_slice()).unwrap(),
        }
        .to_der()
        .unwrap();
        let e = verify(
            &data,
            Some(b"x"),
            &trust(),
            &VerifyOptions::default(),
            &Limits::default(),
        );
        assert!(
            matches!(
                e,
                Err(Error::WrongMessageType {
                    expected: "signed",
                    ..
                })
            ),
            "{e:?}"
        );
    }

    #[test]
    fn trailing_data_is_malformed() {
        let mut der = fixture("rsa-opaque.der");
        der.push(0);
        let e = verify(
            &der,
            None,
            &trust(),
            &VerifyOptions::default(),
            &Limits::default(),
        );
        assert!(matches!(e, Err(Error::Malformed { .. })), "{e:?}");
    }

    #[test]
    fn encryption_key_preference_names_the_given_certificate() {
        let (k, c) = alice();
        let enc = cert("bob-p256.pem");
        let opts = SignOptions {
            encryption_key_preference: Some(enc.clone()),
            ..Default::default()
        };
        let der = sign(b"x", &k, &c, &[], &opts, true).unwrap();
        let sd: SignedData = ContentInfo::from_der(&der)
            .unwrap()
            .content
            .decode_as()
            .unwrap();
        let si = sd.signer_infos.0.iter().next().unwrap();
        let attrs = si.signed_attrs.as_ref().unwrap();
        let pref = attrs
            .iter()
            .find(|a| a.oid == ID_AA_ENCRYPT_KEY_PREF)
            .unwrap();
        let mut ias = enc.issuer_and_serial().to_der().unwrap();
        ias[0] = 0xA0;
        assert_eq!(pref.values.iter().next().unwrap().to_der().unwrap(), ias);
    }

    #[test]
    fn truncated_and_corrupted_input_never_panics() {
        let der = fixture("rsa-opaque.der");
        for n in 0..der.len() {
            let _ = verify(
                &der[..n],
                None,
                &trust(),
                &VerifyOptions::default(),
                &Limits::default(),
            );
        }
        for i in (0..der.len()).step_by(7) {
            let mut d = der.clone();
            d[i] ^= 0xFF;
            let _ = verify(
                &d,
                None,
                &trust(),
                &VerifyOptions::default(),
                &Limits::default(),
            );
        }
    }

    fn alice() -> (PrivateKey, Certificate) {
        (key("alice-rsa.key"), cert("alice-rsa.pem"))
    }

    #[test]
    fn sign_detached_and_opaque_round_trip() {
        let (k, c) = alice();
        let chain = [cert("int.pem")];
        // a minute after the certificate's notBefore: in the past, whole seconds
        let t = c.validity().0 + Duration::from_secs(60);
        let opts = SignOptions {
            signing_time: Some(t),
            ..Default::default()
        };
        let det = sign(&content(), &k, &c, &chain, &opts, true).unwrap();
        let v = run(&det, Some(&content()), &VerifyOptions::default());
        assert!(v.is_valid(), "{:#?}", v.signers);
        assert_eq!(v.content, None);
        let s = &v.signers[0];
        assert_eq!(s.certificate, Some(c.clone()));
        assert_eq!(s.chain.len(), 3);
        assert_eq!(s.signing_time, Some(t));
        assert_eq!(
            s.capabilities,
            vec![
                rfc5911::ID_AES_256_GCM,
                rfc5911::ID_AES_256_CBC,
                rfc5911::ID_AES_128_CBC,
                rfc5912::ID_RSAES_OAEP,
                rfc5912::RSA_ENCRYPTION
            ]
        );
        assert!(v.certificates.contains(&c) && v.certificates.contains(&cert("int.pem")));
        assert_eq!(v.certificates.len(), 2);

        let opaque = sign(&content(), &k, &c, &chain, &opts, false).unwrap();
        let v = run(&opaque, None, &VerifyOptions::default());
        assert!(v.is_valid());
        assert_eq!(v.content, Some(content()));
    }

    #[test]
    fn sign_writes_the_expected_structure() {
        let (k, c) = alice();
        let der = sign(b"hi", &k, &c, &[], &SignOptions::default(), true).unwrap();
        let ci = ContentInfo::from_der(&der).unwrap();
        assert_eq!(ci.content_type, rfc5911::ID_SIGNED_DATA);
        let sd: SignedData = ci.content.decode_as().unwrap();
        assert_eq!(sd.version, CmsVersion::V1);
        assert_eq!(sd.encap_content_info.econtent, None);
        assert_eq!(sd.digest_algorithms.len(), 1);
        let si = sd.signer_infos.0.iter().next().unwrap();
        assert_eq!(si.version, CmsVersion::V1);
        assert_eq!(si.signature_algorithm.oid, rfc5912::RSA_ENCRYPTION);
        assert_eq!(
            si.sid,
            SignerIdentifier::IssuerAndSerialNumber(c.issuer_and_serial())
        );
        let attrs = si.signed_attrs.as_ref().unwrap();
        let oids: Vec<_> = attrs.iter().map(|a| a.oid).collect();
        for o in [
            rfc5911::ID_CONTENT_TYPE,
            rfc5911::ID_MESSAGE_DIGEST,
            rfc5911::ID_SIGNING_TIME,
            rfc5911::SMIME_CAPABILITIES,
            ID_AA_ENCRYPT_KEY_PREF,
        ] {
            assert!(oids.contains(&o), "{o}");
        }
        let pref = attrs
            .iter()
            .find(|a| a.oid == ID_AA_ENCRYPT_KEY_PREF)
            .unwrap();
        let v = pref.values.iter().next().unwrap().to_der().unwrap();
        let mut ias = c.issuer_and_serial().to_der().unwrap();
        ias[0] = 0xA0;
        assert_eq!(v, ias);
        let st = attrs
            .iter()
            .find(|a| a.oid == rfc5911::ID_SIGNING_TIME)
            .unwrap();
        assert_eq!(st.values.iter().next().unwrap().to_der().unwrap()[0], 0x17);
        // only the signer certificate without a chain
        assert_eq!(sd.certificates.unwrap().0.len(), 1);
    }

    #[test]
    fn signing_time_after_2049_is_generalized_time() {
        let (k, c) = alice();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(2_600_000_000); // 2052
        let opts = SignOptions {
            signing_time: Some(t),
            capabilities: false,
            ..Default::default()
        };
        let der = sign(b"x", &k, &c, &[], &opts, false).unwrap();
        let sd: SignedData = ContentInfo::from_der(&der)
            .unwrap()
            .content
            .decode_as()
            .unwrap();
        let si = sd.signer_infos.0.iter().next().unwrap();
        let attrs = si.signed_attrs.as_ref().unwrap();
        assert!(!attrs.iter().any(|a| a.oid == rfc5911::SMIME_CAPABILITIES));
        let st = attrs
            .iter()
            .find(|a| a.oid == rfc5911::ID_SIGNING_TIME)
            .unwrap();
        assert_eq!(st.values.iter().next().unwrap().to_der().unwrap()[0], 0x18);
        let mut t2 = trust();
        t2.add_intermediates([cert("int.pem")]);
        let v = verify(
            &der,
            None,
            &t2,
            &VerifyOptions::default(),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(v.signers[0].signing_time, Some(t));
        // alice's certificate ends ~2046: not valid at a 2052 signing time
        assert_eq!(
            failed_names(&v.signers[0]),
            vec![CheckName::ValidAtSigningTime]
        );
    }

    #[test]
    fn sign_ecdsa_and_pss() {
        let chain = [cert("int.pem")];
        for (k, c, d) in [
            (
                key("bob-p256.key"),
                cert("bob-p256.pem"),
                DigestAlgorithm::Sha256,
            ),
            (
                key("carol-p384.key"),
                cert("carol-p384.pem"),
                DigestAlgorithm::Sha384,
            ),
        ] {
            let der = sign(&content(), &k, &c, &chain, &SignOptions::default(), true).unwrap();
            let v = run(&der, Some(&content()), &VerifyOptions::default());
            assert!(v.is_valid(), "{:#?}", v.signers);
            assert_eq!(v.signers[0].digest, d);
            assert_eq!(v.signers[0].certificate, Some(c));
        }
        let (k, c) = alice();
        let opts = SignOptions {
            rsa_pss: true,
            digest: DigestAlgorithm::Sha384,
            ..Default::default()
        };
        let der = sign(&content(), &k, &c, &chain, &opts, true).unwrap();
        let v = run(&der, Some(&content()), &VerifyOptions::default());
        assert!(v.is_valid(), "{:#?}", v.signers);
        assert_eq!(v.signers[0].digest, DigestAlgorithm::Sha384);
        let sd: SignedData = ContentInfo::from_der(&der)
            .unwrap()
            .content
            .decode_as()
            .unwrap();
        let si = sd.signer_infos.0.iter().next().unwrap();
        assert_eq!(si.signature_algorithm.oid, rfc5912::ID_RSASSA_PSS);
    }

    #[test]
    fn streaming_signer_matches_content() {
        let (k, c) = alice();
        let mut s =
            DetachedSigner::new(&k, &c, &[cert("int.pem")], &SignOptions::default()).unwrap();
        for chunk in content().chunks(5) {
            s.write_all(chunk).unwrap();
        }
        let der = s.finish().unwrap();
        let v = run(&der, Some(&content()), &VerifyOptions::default());
        assert!(v.is_valid(), "{:#?}", v.signers);
        let v = run(&der, Some(b"other"), &VerifyOptions::default());
        assert_eq!(failed_names(&v.signers[0]), vec![CheckName::ContentDigest]);
    }

    #[test]
    fn sign_refuses_mismatch_sha1_and_pss_on_ec() {
        let (k, _) = alice();
        let e = sign(
            b"x",
            &k,
            &cert("bob-p256.pem"),
            &[],
            &SignOptions::default(),
            true,
        );
        assert!(matches!(e, Err(Error::KeyMismatch)));
        let (k, c) = alice();
        let sha1 = SignOptions {
            digest: DigestAlgorithm::Sha1,
            ..Default::default()
        };
        assert!(matches!(
            sign(b"x", &k, &c, &[], &sha1, true),
            Err(Error::UnsupportedAlgorithm { .. })
        ));
        let pss = SignOptions {
            rsa_pss: true,
            ..Default::default()
        };
        let e = sign(
            b"x",
            &key("bob-p256.key"),
            &cert("bob-p256.pem"),
            &[],
            &pss,
            true,
        );
        assert!(matches!(e, Err(Error::InvalidKey { .. })));
    }

    /// Byte offset of `part` (a subslice of `whole`).
    fn offset(whole: &[u8], part: &[u8]) -> usize {
        part.as_ptr() as usize - whole.as_ptr() as usize
    }

    #[test]
    fn signed_attrs_are_verified_as_encoded_not_re_sorted() {
        // RFC 5652 §5.4: the signature is over the signedAttrs exactly as sent. Reverse the
        // (DER-sorted) attributes, re-sign those bytes, and verify: a re-encoding through
        // `der` types would sort them back and break the signature.
        let der = fixture("rsa-detached.der");
        let p = ParsedSignedData::parse(&der, &Limits::default()).unwrap();
        let si = &p.signer_infos[0];
        let attrs_raw = si.signed_attrs.unwrap();
        let mut body = attrs_raw;
        let outer = tlv::next(&mut body, "t").unwrap();
        let elems = tlv::elements(outer.value, 100, "n", "t").unwrap();
        let reversed: Vec<u8> = elems.iter().rev().flat_map(|e| e.raw.to_vec()).collect();
        assert_ne!(reversed, outer.value);
        let header_len = attrs_raw.len() - outer.value.len();
        let mut new_attrs = attrs_raw[..header_len].to_vec();
        new_attrs.extend_from_slice(&reversed);
        let mut to_sign = new_attrs.clone();
        to_sign[0] = 0x31;
        let sig = key("alice-rsa.key")
            .sign(SignatureScheme::RsaPkcs1(DigestAlgorithm::Sha256), &to_sign)
            .unwrap();
        assert_eq!(sig.len(), si.signature.len());
        let mut forged = der.clone();
        let a = offset(&der, attrs_raw);
        forged[a..a + new_attrs.len()].copy_from_slice(&new_attrs);
        let b = offset(&der, si.signature);
        forged[b..b + sig.len()].copy_from_slice(&sig);
        let v = run(&forged, Some(&content()), &VerifyOptions::default());
        assert!(v.is_valid(), "{:#?}", v.signers);
        // and the original signature does not cover the reordered attributes
        forged[b..b + sig.len()].copy_from_slice(si.signature);
        let v = run(&forged, Some(&content()), &VerifyOptions::default());
        assert_eq!(failed_names(&v.signers[0]), vec![CheckName::Signature]);
    }

    #[test]
    fn sha_with_rsa_signature_oids_are_accepted() {
        // The signatureAlgorithm is not signed: rewrite OpenSSL's rsaEncryption to
        // sha256WithRSAEncryption (as some clients write) and to sha384WithRSAEncryption.
        let der = fixture("rsa-detached.der");
        let rsa_enc = [
            0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01,
        ];
        let at = der
            .windows(rsa_enc.len())
            .rposition(|w| w == rsa_enc)
            .unwrap()
            + rsa_enc.len()
            - 1;
        let mut d = der.clone();
        d[at] = 11; // sha256WithRSAEncryption
        let v = run(&d, Some(&content()), &VerifyOptions::default());
        assert!(v.is_valid(), "{:#?}", v.signers);
        d[at] = 12; // sha384WithRSAEncryption: wrong hash for this signature
        let v = run(&d, Some(&content()), &VerifyOptions::default());
        assert_eq!(failed_names(&v.signers[0]), vec![CheckName::Signature]);
    }

    #[test]
    fn subject_key_identifier_signer() {
        let v = run(
            &fixture("rsa-keyid.der"),
            Some(&content()),
            &VerifyOptions::default(),
        );
        assert!(v.is_valid(), "{:#?}", v.signers);
        assert_eq!(v.signers[0].certificate, Some(cert("alice-rsa.pem")));
    }

    #[test]
    fn future_signing_time_is_not_trusted() {
        let (k, c) = alice();
        let in_a_week = SystemTime::now() + Duration::from_secs(7 * 24 * 3600);
        let opts = SignOptions {
            signing_time: Some(in_a_week),
            ..Default::default()
        };
        let der = sign(&content(), &k, &c, &[cert("int.pem")], &opts, true).unwrap();
        let v = run(&der, Some(&content()), &VerifyOptions::default());
        assert_eq!(
            failed_names(&v.signers[0]),
            vec![CheckName::ValidAtSigningTime]
        );
        // judged a week later, it is fine
        let later = VerifyOptions {
            at: Some(in_a_week),
            ..VerifyOptions::default()
        };
        assert!(run(&der, Some(&content()), &later).is_valid());
    }

    #[test]
    fn gpgsm_ber_detached_and_opaque() {
        let v = run(
            &fixture("gpgsm-detached.der"),
            Some(&content()),
            &VerifyOptions::default(),
        );
        assert!(v.is_valid(), "{:#?}", v.signers);
        assert_eq!(v.signers[0].certificate, Some(cert("alice-rsa.pem")));
        assert_eq!(v.signers[0].chain.len(), 3);
        let v = run(
            &fixture("gpgsm-opaque.der"),
            None,
            &VerifyOptions::default(),
        );
        assert!(v.is_valid(), "{:#?}", v.signers);
        assert_eq!(v.content, Some(content()));
        let mut bad = content();
        bad[0] ^= 1;
        let v = run(
            &fixture("gpgsm-detached.der"),
            Some(&bad),
            &VerifyOptions::default(),
        );
        assert_eq!(failed_names(&v.signers[0]), vec![CheckName::ContentDigest]);
    }

    #[test]
    fn openssl_streamed_ber() {
        let v = run(
            &fixture("rsa-opaque-ber.der"),
            None,
            &VerifyOptions::default(),
        );
        assert!(v.is_valid(), "{:#?}", v.signers);
        assert_eq!(v.content, Some(content()));
    }

    #[test]
    #[ignore]
    fn write_interop_outputs() {
        let dir = std::env::var("OUT_SIGNED").unwrap();
        let chain = [cert("int.pem")];
        let pss = SignOptions {
            rsa_pss: true,
            ..Default::default()
        };
        for (name, k, c, o, det) in [
            (
                "rsa-det",
                "alice-rsa",
                "alice-rsa.pem",
                SignOptions::default(),
                true,
            ),
            (
                "rsa-opq",
                "alice-rsa",
                "alice-rsa.pem",
                SignOptions::default(),
                false,
            ),
            ("rsa-pss", "alice-rsa", "alice-rsa.pem", pss, true),
            (
                "p256",
                "bob-p256",
                "bob-p256.pem",
                SignOptions::default(),
                true,
            ),
            (
                "p384",
                "carol-p384",
                "carol-p384.pem",
                SignOptions::default(),
                false,
            ),
        ] {
            let der = sign(
                &content(),
                &key(&format!("{k}.key")),
                &cert(c),
                &chain,
                &o,
                det,
            )
            .unwrap();
            std::fs::write(format!("{dir}/{name}.der"), der).unwrap();
        }
    }

    fn pq_data(dir: &str, name: &str) -> Vec<u8> {
        let p = format!(
            "{}/../../tests/data/{dir}/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    /// RFC 9882 Appendix A: the ML-DSA-44/65/87 signed-data examples (encapsulated, SHA-512,
    /// signed attributes) verify under the RFC 9881 Appendix C certificates; a changed
    /// content byte or signature byte does not.
    #[test]
    fn rfc9882_examples_verify() {
        let limits = Limits::default();
        for n in ["44", "65", "87"] {
            let cert = Certificate::load(&pq_data("rfc9881", &format!("ML-DSA-{n}.crt")), &limits)
                .unwrap();
            let pem = pq_data("rfc9882", &format!("mldsa{n}-signed-attrs.pem"));
            let der = crate::pem::parse_all(&pem, 2)
                .unwrap()
                .remove(0)
                .der
                .to_vec();
            let trust = TrustStore::new(vec![cert.clone()]);
            let v = verify(&der, None, &trust, &VerifyOptions::default(), &limits).unwrap();
            assert!(v.is_valid(), "ML-DSA-{n}: {:#?}", v.signers);
            let s = &v.signers[0];
            assert_eq!(s.certificate.as_ref(), Some(&cert));
            assert_eq!(s.digest, DigestAlgorithm::Sha512);
            assert_eq!(
                v.content.as_deref(),
                Some(format!("ML-DSA-{n} signed-data example with signed attributes").as_bytes())
            );
            // one content byte changed: the digest fails, the signature (over the attributes)
            // still verifies
            let at = der
                .windows(8)
                .position(|w| w == b"ML-DSA-6" || w == b"ML-DSA-4" || w == b"ML-DSA-8")
                .unwrap();
            let mut bad = der.clone();
            bad[at] ^= 1;
            let v = verify(&bad, None, &trust, &VerifyOptions::default(), &limits).unwrap();
            assert_eq!(failed_names(&v.signers[0]), vec![CheckName::ContentDigest]);
            // one signature byte changed: the signature fails
            let mut bad = der.clone();
            let last = bad.len() - 10;
            bad[last] ^= 1;
            let v = verify(&bad, None, &trust, &VerifyOptions::default(), &limits).unwrap();
            assert_eq!(failed_names(&v.signers[0]), vec![CheckName::Signature]);
        }
    }

    /// The RFC 9936 ML-KEM-512 certificate is issued by an ML-DSA-65 root: its signature
    /// verifies under that root, and not once a byte of the tbsCertificate has changed.
    #[test]
    fn rfc9936_ml_dsa_root_signed_the_ml_kem_certificate() {
        let limits = Limits::default();
        let root = Certificate::load(&pq_data("rfc9936", "mldsa65RootCA.pem"), &limits).unwrap();
        let leaf = Certificate::load(&pq_data("rfc9936", "ML-KEM-512.pem"), &limits).unwrap();
        assert!(matches!(
            root.public_key().unwrap(),
            crate::PublicKey::MlDsa {
                dsa: crate::MlDsa::MlDsa65,
                ..
            }
        ));
        assert!(cert::verify_certificate_signature(&leaf, &root).unwrap());
        assert!(cert::verify_certificate_signature(&root, &root).unwrap());
        let mut der = leaf.der().to_vec();
        let at = der.windows(3).position(|w| w == b"ML-").unwrap_or(40);
        der[at] ^= 1;
        let bad = Certificate::from_der(&der).unwrap();
        assert!(!cert::verify_certificate_signature(&bad, &root).unwrap());
    }

    /// An ML-DSA-65 CA issuing an ML-DSA-44/65/87 user certificate; SignedData from each key,
    /// detached and encapsulated: SHA-512, the id-ml-dsa OID without parameters, and every
    /// check passes (the chain through the ML-DSA CA included).
    #[test]
    fn ml_dsa_sign_round_trip_with_ml_dsa_ca() {
        use crate::issue::{self, CertificateParams};
        use crate::{KeyKind, MlDsa};
        let rng = &mut rand_core::OsRng;
        let limits = Limits::default();
        let ca_key = PrivateKey::generate(KeyKind::MlDsa(MlDsa::MlDsa65)).unwrap();
        let ca = issue::self_signed(&ca_key, &CertificateParams::ca("PQ CA"), rng).unwrap();
        assert_eq!(ca.x509().signature_algorithm().oid, MlDsa::MlDsa65.oid());
        assert_eq!(ca.x509().signature_algorithm().parameters, None);
        let trust = TrustStore::new(vec![ca.clone()]);
        for dsa in [MlDsa::MlDsa44, MlDsa::MlDsa65, MlDsa::MlDsa87] {
            let key = PrivateKey::generate(KeyKind::MlDsa(dsa)).unwrap();
            let params = CertificateParams::user("Alice", "alice@example.com");
            let c = issue::issue(key.public_key(), &params, &ca, &ca_key, rng).unwrap();
            assert!(cert::verify_certificate_signature(&c, &ca).unwrap());
            let opts = VerifyOptions {
                from: Some("alice@example.com".into()),
                ..Default::default()
            };
            for detached in [true, false] {
                let der = sign(
                    b"hello pq",
                    &key,
                    &c,
                    &[],
                    &SignOptions::default(),
                    detached,
                )
                .unwrap();
                let sd: SignedData = ContentInfo::from_der(&der)
                    .unwrap()
                    .content
                    .decode_as()
                    .unwrap();
                let si = sd.signer_infos.0.iter().next().unwrap();
                assert_eq!(si.digest_alg.oid, rfc5912::ID_SHA_512);
                assert_eq!(si.signature_algorithm.oid, dsa.oid());
                assert_eq!(si.signature_algorithm.parameters, None);
                assert_eq!(si.signature.as_bytes().len(), dsa.signature_len());
                let content = detached.then_some(&b"hello pq"[..]);
                let v = verify(&der, content, &trust, &opts, &limits).unwrap();
                assert!(v.is_valid(), "{dsa:?}: {:#?}", v.signers);
                assert_eq!(v.signers[0].certificate.as_ref(), Some(&c));
                assert_eq!(v.signers[0].chain, vec![c.clone(), ca.clone()]);
                if detached {
                    let v = verify(&der, Some(b"hello pQ"), &trust, &opts, &limits).unwrap();
                    assert_eq!(failed_names(&v.signers[0]), vec![CheckName::ContentDigest]);
                }
            }
            // the streaming signer makes the same kind of signature
            let mut w = DetachedSigner::new(&key, &c, &[], &SignOptions::default()).unwrap();
            w.write_all(b"hello ").unwrap();
            w.write_all(b"pq").unwrap();
            let der = w.finish().unwrap();
            assert!(
                verify(&der, Some(b"hello pq"), &trust, &opts, &limits)
                    .unwrap()
                    .is_valid()
            );
            // RSASSA-PSS makes no sense for ML-DSA
            let pss = SignOptions {
                rsa_pss: true,
                ..Default::default()
            };
            assert!(matches!(
                DetachedSigner::new(&key, &c, &[], &pss),
                Err(Error::InvalidKey { .. })
            ));
        }
    }

    /// RFC 9882 §3.2: without signed attributes, ML-DSA signs the eContent itself (OpenSSL 3.6
    /// cannot make these: `cms -sign -noattr` fails for ML-DSA). A SignerInfo re-made that way
    /// from ours verifies; over other bytes it does not.
    #[test]
    fn ml_dsa_without_signed_attributes_signs_the_content() {
        use crate::issue::{self, CertificateParams};
        use crate::{KeyKind, MlDsa};
        let rng = &mut rand_core::OsRng;
        let key = PrivateKey::generate(KeyKind::MlDsa(MlDsa::MlDsa44)).unwrap();
        let c =
            issue::self_signed(&key, &CertificateParams::user("A", "a@example.com"), rng).unwrap();
        let trust = TrustStore::new(vec![c.clone()]);
        let der = sign(
            b"no attributes",
            &key,
            &c,
            &[],
            &SignOptions::default(),
            false,
        )
        .unwrap();
        let remake = |signed_over: &[u8]| {
            let mut sd: SignedData = ContentInfo::from_der(&der)
                .unwrap()
                .content
                .decode_as()
                .unwrap();
            let mut si = sd.signer_infos.0.iter().next().unwrap().clone();
            si.signed_attrs = None;
            let sig = key
                .sign(SignatureScheme::MlDsa(MlDsa::MlDsa44), signed_over)
                .unwrap();
            si.signature = OctetString::new(sig).unwrap();
            sd.signer_infos = SignerInfos(SetOfVec::try_from(vec![si]).unwrap());
            ContentInfo {
                content_type: rfc5911::ID_SIGNED_DATA,
                content: Any::from_der(&sd.to_der().unwrap()).unwrap(),
            }
            .to_der()
            .unwrap()
        };
        let limits = Limits::default();
        let good = remake(b"no attributes");
        let v = verify(&good, None, &trust, &VerifyOptions::default(), &limits).unwrap();
        assert!(v.is_valid(), "{:#?}", v.signers);
        let bad = remake(b"other bytes");
        let v = verify(&bad, None, &trust, &VerifyOptions::default(), &limits).unwrap();
        assert!(failed_names(&v.signers[0]).contains(&CheckName::Signature));
    }
}
