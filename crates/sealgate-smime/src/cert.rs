//! Trust anchors, certification path building and the certificate checks of S/MIME signature
//! verification (RFC 5280 §6, RFC 8550 §4).
//!
//! What is checked on a path leaf → intermediates → anchor: names chain (issuer of each equals
//! the subject of the next), every certificate signature, every CA certificate has
//! basicConstraints cA (and keyCertSign when keyUsage is present) and respects
//! pathLenConstraint, and no certificate carries a critical extension we do not process.
//! Validity periods are checked separately ([`chain_valid_at`]) so that a caller can tell "valid
//! when signed" from "valid now". Not done: revocation (CRL, OCSP), name constraints and
//! certificate policies (a certificate that marks either critical is refused).

use std::time::SystemTime;

use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5280, rfc5912};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};

use crate::alg::DigestAlgorithm;
use crate::error::{Error, Result};
use crate::keys::{Certificate, MlDsa, PublicKey, SignatureScheme};
use crate::tlv;

/// Longest path (certificates including leaf and anchor) that is searched.
const MAX_PATH_LEN: usize = 10;
/// Most certificate signatures checked while searching for one path (bounds the work an
/// attacker-supplied certificate set can cause).
const MAX_SIGNATURE_CHECKS: usize = 64;

/// The certificates a verifier trusts, plus intermediates it knows.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    anchors: Vec<Certificate>,
    intermediates: Vec<Certificate>,
}

impl TrustStore {
    /// A store trusting exactly `anchors` (usually self-signed root CAs; a leaf certificate may
    /// be an anchor too, which trusts it directly).
    pub fn new(anchors: Vec<Certificate>) -> Self {
        Self {
            anchors,
            intermediates: Vec::new(),
        }
    }

    /// Add certificates that are not trusted themselves but may complete a path (intermediate
    /// CAs that senders omit; also signer certificates of messages sent without certificates).
    pub fn add_intermediates(&mut self, certs: impl IntoIterator<Item = Certificate>) {
        for c in certs {
            if !self.intermediates.contains(&c) {
                self.intermediates.push(c);
            }
        }
    }

    /// The trust anchors.
    pub fn anchors(&self) -> &[Certificate] {
        &self.anchors
    }

    /// The extra intermediates.
    pub fn intermediates(&self) -> &[Certificate] {
        &self.intermediates
    }

    fn is_anchor(&self, cert: &Certificate) -> bool {
        self.anchors.iter().any(|a| a.der() == cert.der())
    }
}

/// The outcome of path building: the path found (leaf first, anchor last) or the reason none
/// was found.
#[derive(Debug, Clone)]
pub struct PathResult {
    /// The certificates from the leaf to the anchor. When no path was found, the leaf alone.
    pub chain: Vec<Certificate>,
    /// `Ok(())` if `chain` ends in a trust anchor and every link checked out; otherwise why not.
    pub status: std::result::Result<(), String>,
}

/// Build and check a path from `leaf` to one of `trust`'s anchors, with `extra` certificates
/// (those carried in the message) as candidate intermediates.
pub fn build_path(leaf: &Certificate, extra: &[Certificate], trust: &TrustStore) -> PathResult {
    let mut search = Search {
        trust,
        candidates: trust
            .anchors
            .iter()
            .chain(trust.intermediates.iter())
            .chain(extra.iter())
            .collect(),
        checks: 0,
        last_error: None,
    };
    let mut path = vec![leaf.clone()];
    if let Err(e) = unsupported_critical(leaf) {
        return PathResult {
            chain: path,
            status: Err(e),
        };
    }
    if search.extend(&mut path) {
        PathResult {
            chain: path,
            status: Ok(()),
        }
    } else {
        let reason = search
            .last_error
            .unwrap_or_else(|| format!("no issuer certificate found for \"{}\"", leaf.issuer()));
        PathResult {
            chain: vec![leaf.clone()],
            status: Err(reason),
        }
    }
}

struct Search<'a> {
    trust: &'a TrustStore,
    candidates: Vec<&'a Certificate>,
    checks: usize,
    last_error: Option<String>,
}

impl Search<'_> {
    /// Depth-first: extend `path` (whose last element is already checked) until an anchor.
    fn extend(&mut self, path: &mut Vec<Certificate>) -> bool {
        let Some(current) = path.last().cloned() else {
            return false;
        };
        if self.trust.is_anchor(&current) {
            return true;
        }
        if path.len() >= MAX_PATH_LEN {
            self.last_error = Some("certification path too long".into());
            return false;
        }
        let issuer_name = current.x509().tbs_certificate().issuer().clone();
        let candidates: Vec<Certificate> = self
            .candidates
            .iter()
            .filter(|c| c.x509().tbs_certificate().subject() == &issuer_name)
            .filter(|c| !path.iter().any(|p| p.der() == c.der()))
            .map(|c| (*c).clone())
            .collect();
        for issuer in candidates {
            if self.checks >= MAX_SIGNATURE_CHECKS {
                self.last_error = Some("too many candidate certificates".into());
                return false;
            }
            self.checks += 1;
            // Intermediate CAs below this issuer (RFC 5280 §4.2.1.9: pathLenConstraint counts
            // the non-self-issued intermediates that may follow, the leaf not included).
            let below = path.len().saturating_sub(1);
            match check_issuer(&current, &issuer, below, self.trust.is_anchor(&issuer)) {
                Ok(()) => {
                    path.push(issuer);
                    if self.extend(path) {
                        return true;
                    }
                    path.pop();
                }
                Err(e) => self.last_error = Some(e),
            }
        }
        false
    }
}

/// Check that `issuer` may have issued `child` and did: signature, CA flags, path length.
fn check_issuer(
    child: &Certificate,
    issuer: &Certificate,
    intermediates_below: usize,
    issuer_is_anchor: bool,
) -> std::result::Result<(), String> {
    let who = issuer.subject();
    match verify_certificate_signature(child, issuer) {
        Ok(true) => {}
        Ok(false) => {
            return Err(format!(
                "signature on \"{}\" does not verify with the key of \"{who}\"",
                child.subject()
            ));
        }
        Err(e) => {
            return Err(format!(
                "cannot check signature on \"{}\": {e}",
                child.subject()
            ));
        }
    }
    let tbs = issuer.x509().tbs_certificate();
    // A v1 trust anchor (no extensions) is trusted as configured (RFC 5280 §6.1.1 (d)); every
    // other issuer must say it is a CA.
    let v1_anchor = issuer_is_anchor && tbs.extensions().is_none();
    if !v1_anchor {
        match tbs.get_extension::<BasicConstraints>() {
            Ok(Some((_, bc))) if bc.ca => {
                if let Some(max) = bc.path_len_constraint
                    && intermediates_below > usize::from(max)
                {
                    return Err(format!("\"{who}\": pathLenConstraint {max} exceeded"));
                }
            }
            Ok(_) => {
                return Err(format!(
                    "\"{who}\" is not a CA (basicConstraints cA not set)"
                ));
            }
            Err(e) => return Err(format!("\"{who}\": bad basicConstraints: {e}")),
        }
        match tbs.get_extension::<KeyUsage>() {
            Ok(Some((_, ku))) if !ku.key_cert_sign() => {
                return Err(format!("\"{who}\": keyUsage lacks keyCertSign"));
            }
            Ok(_) => {}
            Err(e) => return Err(format!("\"{who}\": bad keyUsage: {e}")),
        }
    }
    unsupported_critical(issuer)
}

/// RFC 5280 §4.2: a certificate with a critical extension we do not process must be refused.
fn unsupported_critical(cert: &Certificate) -> std::result::Result<(), String> {
    const KNOWN: [ObjectIdentifier; 6] = [
        rfc5280::ID_CE_BASIC_CONSTRAINTS,
        rfc5280::ID_CE_KEY_USAGE,
        rfc5280::ID_CE_EXT_KEY_USAGE,
        rfc5280::ID_CE_SUBJECT_ALT_NAME,
        rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
        rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
    ];
    for ext in cert
        .x509()
        .tbs_certificate()
        .extensions()
        .into_iter()
        .flatten()
    {
        if ext.critical && !KNOWN.contains(&ext.extn_id) {
            return Err(format!(
                "\"{}\" has an unsupported critical extension {}",
                cert.subject(),
                ext.extn_id
            ));
        }
    }
    Ok(())
}

/// Verify the signature of `child` with the public key of `issuer`, over the exact
/// tbsCertificate bytes.
pub fn verify_certificate_signature(child: &Certificate, issuer: &Certificate) -> Result<bool> {
    let mut outer = child.der();
    let cert = tlv::expect(&mut outer, tlv::SEQUENCE, "certificate")?;
    let mut body = cert.value;
    let tbs = tlv::expect(&mut body, tlv::SEQUENCE, "certificate")?;
    let sig = child
        .x509()
        .signature()
        .as_bytes()
        .ok_or_else(|| Error::malformed("certificate", "signature has unused bits"))?;
    let key = issuer.public_key()?;
    verify_signature(&key, child.x509().signature_algorithm(), None, tbs.raw, sig)
}

/// The checks RFC 8550 asks of a signer certificate: validity at `at` for every certificate of
/// `chain`. Returns the first certificate outside its validity period.
pub fn chain_valid_at(chain: &[Certificate], at: SystemTime) -> std::result::Result<(), String> {
    for c in chain {
        if !c.is_valid_at(at) {
            let (nb, na) = c.validity();
            let state = if at < nb { "not yet valid" } else { "expired" };
            return Err(format!(
                "\"{}\" is {state} (valid {} to {})",
                c.subject(),
                fmt_time(nb),
                fmt_time(na)
            ));
        }
    }
    Ok(())
}

/// keyUsage of a signer certificate: when present, digitalSignature or nonRepudiation
/// (RFC 8550 §4.4.2).
pub fn check_signing_key_usage(cert: &Certificate) -> std::result::Result<String, String> {
    match cert.x509().tbs_certificate().get_extension::<KeyUsage>() {
        Ok(None) => Ok("no keyUsage extension".into()),
        Ok(Some((_, ku))) if ku.digital_signature() || ku.non_repudiation() => {
            Ok("keyUsage allows signing".into())
        }
        Ok(Some(_)) => Err("keyUsage has neither digitalSignature nor nonRepudiation".into()),
        Err(e) => Err(format!("bad keyUsage extension: {e}")),
    }
}

/// extendedKeyUsage of a signer certificate: when present, emailProtection or
/// anyExtendedKeyUsage (RFC 8550 §4.4.4).
pub fn check_email_eku(cert: &Certificate) -> std::result::Result<String, String> {
    match cert
        .x509()
        .tbs_certificate()
        .get_extension::<ExtendedKeyUsage>()
    {
        Ok(None) => Ok("no extendedKeyUsage extension".into()),
        Ok(Some((_, eku)))
            if eku.0.iter().any(|o| {
                *o == rfc5280::ID_KP_EMAIL_PROTECTION || *o == rfc5280::ANY_EXTENDED_KEY_USAGE
            }) =>
        {
            Ok("extendedKeyUsage allows emailProtection".into())
        }
        Ok(Some(_)) => Err("extendedKeyUsage lacks emailProtection".into()),
        Err(e) => Err(format!("bad extendedKeyUsage extension: {e}")),
    }
}

/// RFC 4055 §3.1 RSASSA-PSS-params (EXPLICIT tags; absent fields take the SHA-1 defaults).
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
pub(crate) struct RsaPssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub mask_gen: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    pub salt_len: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    pub trailer: Option<u32>,
}

/// The hash of an RSASSA-PSS AlgorithmIdentifier (`None` when it cannot be read).
pub(crate) fn pss_digest(alg: &AlgorithmIdentifierOwned) -> Option<DigestAlgorithm> {
    let params: RsaPssParams = alg.parameters.as_ref()?.decode_as().ok()?;
    match &params.hash {
        Some(h) => DigestAlgorithm::from_oid(&h.oid).ok(),
        None => Some(DigestAlgorithm::Sha1),
    }
}

impl RsaPssParams {
    /// The parameters Sealgate writes: `digest` for hash and MGF1, salt = digest length.
    pub(crate) fn for_digest(digest: DigestAlgorithm) -> Result<Self> {
        let hash = AlgorithmIdentifierOwned {
            oid: digest.oid(),
            parameters: Some(der::Any::null()),
        };
        Ok(Self {
            mask_gen: Some(AlgorithmIdentifierOwned {
                oid: rfc5912::ID_MGF_1,
                parameters: Some(der::Any::from_der(&hash.to_der()?)?),
            }),
            hash: Some(hash),
            salt_len: Some(u32::try_from(digest.output_len()).unwrap_or(32)),
            trailer: None,
        })
    }

    /// (digest, salt length), refusing MGF1 with a different digest and other trailers.
    fn resolve(&self) -> Result<(DigestAlgorithm, usize)> {
        let unsupported = |why: &str| Error::UnsupportedAlgorithm {
            what: "RSASSA-PSS parameters",
            oid: why.to_string(),
        };
        let digest = match &self.hash {
            Some(h) => DigestAlgorithm::from_oid(&h.oid)?,
            None => DigestAlgorithm::Sha1,
        };
        let mgf_digest = match &self.mask_gen {
            Some(m) if m.oid == rfc5912::ID_MGF_1 => {
                let inner: AlgorithmIdentifierOwned = m
                    .parameters
                    .as_ref()
                    .ok_or_else(|| unsupported("MGF1 without hash"))?
                    .decode_as()?;
                DigestAlgorithm::from_oid(&inner.oid)?
            }
            Some(m) => return Err(unsupported(&format!("mask generation {}", m.oid))),
            None => DigestAlgorithm::Sha1,
        };
        if mgf_digest != digest {
            return Err(unsupported("MGF1 digest differs from the message digest"));
        }
        if self.trailer.is_some_and(|t| t != 1) {
            return Err(unsupported("trailerField other than 1"));
        }
        let salt = self.salt_len.map_or(20, |s| s as usize);
        Ok((digest, salt))
    }
}

/// Verify `signature` over `message` with `key` as `alg` says. `digest` is the digest to pair
/// with a bare `rsaEncryption` or `id-ecPublicKey` identifier (CMS SignerInfos carry these,
/// RFC 3370 §3.2 / RFC 5753 §2.1.1); certificates always name the full algorithm.
/// `Ok(false)` for a signature that does not verify or a key of the wrong type.
pub(crate) fn verify_signature(
    key: &PublicKey,
    alg: &AlgorithmIdentifierOwned,
    digest: Option<DigestAlgorithm>,
    message: &[u8],
    signature: &[u8],
) -> Result<bool> {
    let need_digest = || {
        digest.ok_or_else(|| Error::UnsupportedAlgorithm {
            what: "signature",
            oid: alg.oid.to_string(),
        })
    };
    let scheme = match alg.oid {
        rfc5912::RSA_ENCRYPTION => SignatureScheme::RsaPkcs1(need_digest()?),
        rfc5912::SHA_1_WITH_RSA_ENCRYPTION => SignatureScheme::RsaPkcs1(DigestAlgorithm::Sha1),
        rfc5912::SHA_256_WITH_RSA_ENCRYPTION => SignatureScheme::RsaPkcs1(DigestAlgorithm::Sha256),
        rfc5912::SHA_384_WITH_RSA_ENCRYPTION => SignatureScheme::RsaPkcs1(DigestAlgorithm::Sha384),
        rfc5912::SHA_512_WITH_RSA_ENCRYPTION => SignatureScheme::RsaPkcs1(DigestAlgorithm::Sha512),
        rfc5912::ECDSA_WITH_SHA_256 => SignatureScheme::Ecdsa(DigestAlgorithm::Sha256),
        rfc5912::ECDSA_WITH_SHA_384 => SignatureScheme::Ecdsa(DigestAlgorithm::Sha384),
        rfc5912::ECDSA_WITH_SHA_512 => SignatureScheme::Ecdsa(DigestAlgorithm::Sha512),
        rfc5912::ID_EC_PUBLIC_KEY => SignatureScheme::Ecdsa(need_digest()?),
        rfc5912::ID_RSASSA_PSS => {
            let params: RsaPssParams = alg
                .parameters
                .as_ref()
                .ok_or_else(|| {
                    Error::malformed("signature algorithm", "RSASSA-PSS without parameters")
                })?
                .decode_as()?;
            let (d, salt) = params.resolve()?;
            return key.verify_rsa_pss(d, salt, message, signature);
        }
        oid if MlDsa::from_oid(&oid).is_some() => {
            // RFC 9881 §3 / RFC 9882 §3.3: parameters MUST be absent.
            if alg.parameters.is_some() {
                return Err(Error::malformed(
                    "signature algorithm",
                    "ML-DSA with parameters",
                ));
            }
            SignatureScheme::MlDsa(
                MlDsa::from_oid(&oid)
                    .ok_or_else(|| Error::malformed("signature algorithm", "ML-DSA"))?,
            )
        }
        other => {
            return Err(Error::UnsupportedAlgorithm {
                what: "signature",
                oid: other.to_string(),
            });
        }
    };
    key.verify(scheme, message, signature)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for messages.
pub(crate) fn fmt_time(t: SystemTime) -> String {
    match der::DateTime::from_system_time(t) {
        Ok(d) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            d.year(),
            d.month(),
            d.day(),
            d.hour(),
            d.minutes(),
            d.seconds()
        ),
        Err(_) => "(out of range)".into(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Limits;

    pub(crate) fn fixture(name: &str) -> Vec<u8> {
        let p = format!(
            "{}/../../tests/data/smime/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    pub(crate) fn cert(name: &str) -> Certificate {
        Certificate::load(&fixture(name), &Limits::default()).unwrap()
    }

    pub(crate) fn trust() -> TrustStore {
        TrustStore::new(vec![cert("root.pem")])
    }

    #[test]
    fn builds_leaf_intermediate_root() {
        let leaf = cert("alice-rsa.pem");
        let int = cert("int.pem");
        let r = build_path(&leaf, std::slice::from_ref(&int), &trust());
        assert_eq!(r.status, Ok(()));
        assert_eq!(r.chain.len(), 3);
        assert_eq!(r.chain[0], leaf);
        assert_eq!(r.chain[1], int);
        assert_eq!(r.chain[2], cert("root.pem"));
    }

    #[test]
    fn intermediate_from_trust_store() {
        let mut t = trust();
        t.add_intermediates([cert("int.pem")]);
        let r = build_path(&cert("bob-p256.pem"), &[], &t);
        assert_eq!(r.status, Ok(()));
        assert_eq!(r.chain.len(), 3);
    }

    #[test]
    fn missing_intermediate_fails() {
        let r = build_path(&cert("alice-rsa.pem"), &[], &trust());
        let e = r.status.unwrap_err();
        assert!(e.contains("no issuer certificate"), "{e}");
        assert_eq!(r.chain, vec![cert("alice-rsa.pem")]);
    }

    #[test]
    fn untrusted_root_fails() {
        let r = build_path(
            &cert("alice-rsa.pem"),
            &[cert("int.pem")],
            &TrustStore::new(vec![cert("bob-p256.pem")]),
        );
        assert!(r.status.is_err());
    }

    #[test]
    fn issuer_that_is_not_a_ca_fails() {
        let r = build_path(
            &cert("mallory.pem"),
            &[cert("notca.pem"), cert("int.pem")],
            &trust(),
        );
        let e = r.status.unwrap_err();
        assert!(e.contains("is not a CA"), "{e}");
    }

    #[test]
    fn anchor_as_leaf() {
        let leaf = cert("alice-rsa.pem");
        let r = build_path(&leaf, &[], &TrustStore::new(vec![leaf.clone()]));
        assert_eq!(r.status, Ok(()));
        assert_eq!(r.chain, vec![leaf]);
    }

    #[test]
    fn forged_signature_fails() {
        // bob's certificate claims the intermediate as issuer; checking it against alice's
        // certificate (different key, same name forced) must fail.
        let bob = cert("bob-p256.pem");
        assert!(verify_certificate_signature(&bob, &cert("int.pem")).unwrap());
        assert!(!verify_certificate_signature(&bob, &cert("root.pem")).unwrap());
        assert!(!verify_certificate_signature(&bob, &cert("alice-rsa.pem")).unwrap());
    }

    #[test]
    fn usages() {
        assert!(check_signing_key_usage(&cert("alice-rsa.pem")).is_ok());
        assert!(check_email_eku(&cert("alice-rsa.pem")).is_ok());
        assert!(check_signing_key_usage(&cert("erin-wrong.pem")).is_err());
        assert!(check_email_eku(&cert("erin-wrong.pem")).is_err());
        // no EKU on the intermediate: allowed
        assert_eq!(
            check_email_eku(&cert("int.pem")),
            Ok("no extendedKeyUsage extension".into())
        );
    }

    #[test]
    fn validity() {
        let dave = cert("dave-past.pem");
        let jan15 = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_579_046_400);
        assert_eq!(chain_valid_at(std::slice::from_ref(&dave), jan15), Ok(()));
        let e = chain_valid_at(&[dave], SystemTime::now()).unwrap_err();
        assert!(
            e.contains("expired") && e.contains("2020-02-01T00:00:00Z"),
            "{e}"
        );
    }
    #[test]
    fn path_len_constraint_is_enforced() {
        let extra = [cert("sub-ca.pem"), cert("pl0-ca.pem")];
        let r = build_path(&cert("frank.pem"), &extra, &trust());
        let e = r.status.unwrap_err();
        assert!(e.contains("pathLenConstraint 0 exceeded"), "{e}");
        // with the sub CA as the anchor the pathlen-0 CA is not on the path: fine
        let r = build_path(
            &cert("frank.pem"),
            &extra,
            &TrustStore::new(vec![cert("sub-ca.pem")]),
        );
        assert_eq!(r.status, Ok(()));
        assert_eq!(r.chain, vec![cert("frank.pem"), cert("sub-ca.pem")]);
    }

    #[test]
    fn ca_without_key_cert_sign_fails() {
        let r = build_path(&cert("grace.pem"), &[cert("noks-ca.pem")], &trust());
        let e = r.status.unwrap_err();
        assert!(e.contains("keyCertSign"), "{e}");
    }

    #[test]
    fn unknown_critical_extension_fails() {
        let r = build_path(&cert("heidi.pem"), &[cert("int.pem")], &trust());
        let e = r.status.unwrap_err();
        assert!(
            e.contains("unsupported critical extension 1.3.6.1.4.1.55555.1"),
            "{e}"
        );
    }

    #[test]
    fn wrong_candidate_is_skipped() {
        // a decoy with the intermediate's name but another key comes first; the real one
        // still completes the path
        let decoy = cert("decoy-int.pem");
        assert_eq!(decoy.subject(), cert("int.pem").subject());
        let mut t = trust();
        t.add_intermediates([decoy.clone()]);
        assert!(
            build_path(&cert("alice-rsa.pem"), &[], &t)
                .status
                .unwrap_err()
                .contains("does not verify")
        );
        let r = build_path(&cert("alice-rsa.pem"), &[cert("int.pem")], &t);
        assert_eq!(r.status, Ok(()));
        assert_eq!(r.chain.len(), 3);
    }
}
