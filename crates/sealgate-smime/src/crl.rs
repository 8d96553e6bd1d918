//! Certificate revocation lists (RFC 5280 §5): parsed under [`Limits`], signature checked
//! against the issuer certificate, and asked whether a certificate is revoked.
//!
//! A CRL is read into a hash of its revoked serial numbers, so that [`Crl::status`] is one
//! lookup however long the list is. What is refused (fail closed, RFC 5280 §5.2 and §5.3: a CRL
//! with a critical extension we do not process must not be used): delta CRLs, indirect CRLs
//! (entries with certificateIssuer), CRLs limited to some revocation reasons or to attribute
//! certificates, and any other critical CRL or entry extension. An issuingDistributionPoint is
//! honoured: a CRL for one distribution point covers only the certificates whose
//! cRLDistributionPoints name it, and [`Crl::status`] says [`RevocationStatus::NotCovered`] for
//! the others.
//!
//! The TBSCertList is decoded with our own derive (the `version` field is OPTIONAL in
//! RFC 5280 and version-1 CRLs omit it, where x509-cert 0.3's `TbsCertList` requires it),
//! and the revoked entries are read one by one so that their count is bounded before anything
//! is allocated for them. x509-cert's own types are used for every part inside
//! (`Name`, `Time`, `Extensions`, `IssuingDistributionPoint`, `CrlReason`).

use std::collections::HashMap;
use std::time::SystemTime;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280;
use der::asn1::{AnyRef, BitString, IntRef};
use der::{
    Decode, DecodeValue, EncodeValue, FixedTag, Header, Length, Reader, Sequence, SliceReader, Tag,
    Writer,
};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Version;
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::crl::{CrlNumber, CrlReason, IssuingDistributionPoint};
use x509_cert::ext::pkix::name::DistributionPointName;
use x509_cert::ext::pkix::{CrlDistributionPoints, KeyUsage};
use x509_cert::name::Name;
use x509_cert::time::Time;

use crate::alg::DigestAlgorithm;
use crate::cert;
use crate::error::{Error, Result};
use crate::keys::Certificate;
use crate::{pem, tlv};
use sealgate_mime::Limits;

/// issuingDistributionPoint (RFC 5280 §5.2.5). x509-cert 0.3.0 associates
/// `IssuingDistributionPoint` with the wrong OID (id-pe-subjectInfoAccess), so it is matched by
/// this OID here and decoded directly.
const ID_CE_ISSUING_DISTRIBUTION_POINT: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.5.29.28");

/// CertificateList (RFC 5280 §5.1) with the TBSCertList kept undecoded, so that the signature
/// is checked over its exact bytes.
#[derive(Sequence)]
struct CertificateListDer<'a> {
    tbs_cert_list: AnyRef<'a>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// TBSCertList (RFC 5280 §5.1), revokedCertificates left undecoded.
#[derive(Sequence)]
struct TbsCertList<'a> {
    version: Option<Version>,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    this_update: Time,
    next_update: Option<Time>,
    revoked_certificates: Option<RevokedList<'a>>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    crl_extensions: Option<Extensions>,
}

/// The content octets of revokedCertificates (a SEQUENCE OF entries), read one entry at a time
/// so that the entry count is checked before anything is allocated for it.
struct RevokedList<'a>(&'a [u8]);

impl<'a> DecodeValue<'a> for RevokedList<'a> {
    type Error = der::Error;
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        Ok(Self(reader.read_slice(header.length())?))
    }
}

impl EncodeValue for RevokedList<'_> {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.0.len())
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(self.0)
    }
}

impl FixedTag for RevokedList<'_> {
    const TAG: Tag = Tag::Sequence;
}

/// One revokedCertificates entry (RFC 5280 §5.1.2.6).
#[derive(Sequence)]
struct RevokedCertDer<'a> {
    user_certificate: IntRef<'a>,
    revocation_date: Time,
    crl_entry_extensions: Option<Extensions>,
}

/// Why a certificate was revoked (RFC 5280 §5.3.1 CRLReason).
pub type RevocationReason = CrlReason;

/// What the CRL says about one revoked certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevokedEntry {
    /// When the CA revoked it.
    pub revocation_date: SystemTime,
    /// The reasonCode entry extension, when present.
    pub reason: Option<RevocationReason>,
}

/// The answer of a CRL about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationStatus {
    /// The CRL covers the certificate and does not list it.
    NotRevoked,
    /// The CRL lists the certificate.
    Revoked(RevokedEntry),
    /// The CRL says nothing about this certificate (another issuer, or a distribution point
    /// or certificate kind outside its scope); why.
    NotCovered(String),
}

/// A parsed certificate revocation list.
#[derive(Clone)]
pub struct Crl {
    der: Vec<u8>,
    issuer: Name,
    this_update: SystemTime,
    next_update: Option<SystemTime>,
    crl_number: Option<Vec<u8>>,
    scope: Option<IssuingDistributionPoint>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: Vec<u8>,
    /// Revoked serial numbers (INTEGER content octets, as [`Certificate`]s hold them).
    revoked: HashMap<Vec<u8>, RevokedEntry>,
}

impl std::fmt::Debug for Crl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crl")
            .field("issuer", &self.issuer())
            .field("this_update", &cert::fmt_time(self.this_update))
            .field("next_update", &self.next_update.map(cert::fmt_time))
            .field("entries", &self.revoked.len())
            .finish()
    }
}

impl Crl {
    /// Parse a CRL from DER or PEM (`X509 CRL` block; the first one counts).
    ///
    /// Bounded by [`Limits::max_crl_bytes`] and [`Limits::max_crl_entries`]. A CRL with a
    /// critical extension that is not processed here (delta CRL, indirect CRL, reason-limited
    /// CRL, unknown ones) is refused with [`Error::UnsupportedAlgorithm`]: it could not be
    /// relied on to say "not revoked".
    pub fn load(data: &[u8], limits: &Limits) -> Result<Self> {
        if data.len() > limits.max_crl_bytes {
            return Err(Error::LimitExceeded {
                what: "CRL size",
                limit: limits.max_crl_bytes as u64,
            });
        }
        if pem::is_pem(data) {
            let blocks = pem::parse_all(data, 16)?;
            let block = blocks
                .iter()
                .find(|b| b.label == "X509 CRL")
                .ok_or_else(|| Error::malformed("CRL", "no X509 CRL block in PEM"))?;
            Self::from_der(&block.der, limits)
        } else {
            Self::from_der(data, limits)
        }
    }

    /// Parse a DER-encoded CRL (see [`Crl::load`]).
    pub fn from_der(der: &[u8], limits: &Limits) -> Result<Self> {
        if der.len() > limits.max_crl_bytes {
            return Err(Error::LimitExceeded {
                what: "CRL size",
                limit: limits.max_crl_bytes as u64,
            });
        }
        let bad = |e: der::Error| Error::malformed("CRL", e);
        let outer = CertificateListDer::from_der(der).map_err(bad)?;
        let tbs: TbsCertList<'_> = outer.tbs_cert_list.decode_as().map_err(bad)?;
        if tbs.version.is_some_and(|v| v != Version::V2) {
            return Err(Error::malformed("CRL", "version is not v2"));
        }
        // RFC 5280 §5.1.1.2: the outer algorithm must be the one inside the signed part.
        if tbs.signature != outer.signature_algorithm {
            return Err(Error::malformed(
                "CRL",
                "signatureAlgorithm differs from the signature field of tbsCertList",
            ));
        }
        let signature = outer
            .signature
            .as_bytes()
            .ok_or_else(|| Error::malformed("CRL", "signature has unused bits"))?
            .to_vec();

        let mut crl_number = None;
        let mut scope = None;
        for ext in tbs.crl_extensions.iter().flatten() {
            match ext.extn_id {
                rfc5280::ID_CE_CRL_NUMBER => {
                    let n = CrlNumber::from_der(ext.extn_value.as_bytes()).map_err(bad)?;
                    crl_number = Some(n.0.as_bytes().to_vec());
                }
                ID_CE_ISSUING_DISTRIBUTION_POINT => {
                    let idp = IssuingDistributionPoint::from_der(ext.extn_value.as_bytes())
                        .map_err(bad)?;
                    if idp.indirect_crl {
                        return Err(unsupported("indirect CRL", ext.extn_id));
                    }
                    if idp.only_some_reasons.is_some() {
                        return Err(unsupported("CRL limited to some reasons", ext.extn_id));
                    }
                    if idp.only_contains_attribute_certs {
                        return Err(unsupported("CRL of attribute certificates", ext.extn_id));
                    }
                    scope = Some(idp);
                }
                rfc5280::ID_CE_DELTA_CRL_INDICATOR => {
                    return Err(unsupported("delta CRL", ext.extn_id));
                }
                // authorityKeyIdentifier, issuerAltName, freshestCRL, authorityInfoAccess and
                // other informational extensions: not needed for the check.
                other if ext.critical => {
                    return Err(unsupported("critical CRL extension", other));
                }
                _ => {}
            }
        }

        let mut revoked = HashMap::new();
        if let Some(list) = tbs.revoked_certificates {
            let mut reader = SliceReader::new(list.0).map_err(bad)?;
            while !reader.is_finished() {
                if revoked.len() >= limits.max_crl_entries {
                    return Err(Error::LimitExceeded {
                        what: "CRL entries",
                        limit: limits.max_crl_entries as u64,
                    });
                }
                let entry = RevokedCertDer::decode(&mut reader).map_err(bad)?;
                let mut reason = None;
                for ext in entry.crl_entry_extensions.iter().flatten() {
                    match ext.extn_id {
                        rfc5280::ID_CE_CRL_REASONS => {
                            reason =
                                Some(CrlReason::from_der(ext.extn_value.as_bytes()).map_err(bad)?);
                        }
                        // An entry for another issuer's certificate: indirect CRL (§5.3.3).
                        rfc5280::ID_CE_CERTIFICATE_ISSUER => {
                            return Err(unsupported(
                                "indirect CRL (certificateIssuer entry)",
                                ext.extn_id,
                            ));
                        }
                        other if ext.critical => {
                            return Err(unsupported("critical CRL entry extension", other));
                        }
                        // invalidityDate and others are informational.
                        _ => {}
                    }
                }
                revoked.insert(
                    entry.user_certificate.as_bytes().to_vec(),
                    RevokedEntry {
                        revocation_date: entry.revocation_date.to_system_time(),
                        reason,
                    },
                );
            }
        }
        Ok(Self {
            der: der.to_vec(),
            issuer: tbs.issuer,
            this_update: tbs.this_update.to_system_time(),
            next_update: tbs.next_update.map(|t| t.to_system_time()),
            crl_number,
            scope,
            signature_algorithm: outer.signature_algorithm,
            signature,
            revoked,
        })
    }

    /// The exact DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// SHA-256 over the DER encoding, upper-case hex (as [`Certificate::fingerprint_sha256`]).
    pub fn fingerprint_sha256(&self) -> String {
        DigestAlgorithm::Sha256
            .digest(&self.der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    }

    /// The issuer as an RFC 4514 string.
    pub fn issuer(&self) -> String {
        self.issuer.to_string()
    }

    /// The issuer name as parsed.
    pub fn issuer_name(&self) -> &Name {
        &self.issuer
    }

    /// thisUpdate: when this CRL was issued.
    pub fn this_update(&self) -> SystemTime {
        self.this_update
    }

    /// nextUpdate: when the next CRL is due, if the CRL says.
    pub fn next_update(&self) -> Option<SystemTime> {
        self.next_update
    }

    /// True if a newer CRL should exist at `now`: nextUpdate has passed, or the CRL has no
    /// nextUpdate (RFC 5280 §5.1.2.5 requires one; without it freshness is unknown, and
    /// unknown is treated as stale), or thisUpdate lies in the future.
    pub fn is_stale(&self, now: SystemTime) -> bool {
        now < self.this_update || self.next_update.is_none_or(|next| now > next)
    }

    /// The cRLNumber extension (big-endian, leading zeros stripped), if present.
    pub fn crl_number(&self) -> Option<&[u8]> {
        self.crl_number.as_deref()
    }

    /// How many certificates the CRL lists.
    pub fn len(&self) -> usize {
        self.revoked.len()
    }

    /// True if the CRL lists no certificate.
    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }

    /// Check that `issuer` issued this CRL: its subject is the CRL issuer, its keyUsage (if
    /// present) allows cRLSign, and the CRL signature verifies with its key.
    ///
    /// `Ok(false)` if the signature does not verify (a tampered CRL or another key);
    /// [`Error::UnusableCertificate`] if `issuer` is not the CRL's issuer or may not sign CRLs.
    pub fn verify_signature(&self, issuer: &Certificate) -> Result<bool> {
        if issuer.x509().tbs_certificate().subject() != &self.issuer {
            return Err(Error::UnusableCertificate {
                reason: format!(
                    "\"{}\" is not the issuer of the CRL (\"{}\")",
                    issuer.subject(),
                    self.issuer()
                ),
            });
        }
        // RFC 5280 §4.2.1.3: the cRLSign bit is what allows a key to sign CRLs.
        match issuer.x509().tbs_certificate().get_extension::<KeyUsage>() {
            Ok(Some((_, ku))) if !ku.crl_sign() => {
                return Err(Error::UnusableCertificate {
                    reason: format!("\"{}\": keyUsage lacks cRLSign", issuer.subject()),
                });
            }
            Ok(_) => {}
            Err(e) => {
                return Err(Error::UnusableCertificate {
                    reason: format!("\"{}\": bad keyUsage: {e}", issuer.subject()),
                });
            }
        }
        let mut outer = self.der.as_slice();
        let list = tlv::expect(&mut outer, tlv::SEQUENCE, "CRL")?;
        let mut body = list.value;
        let tbs = tlv::expect(&mut body, tlv::SEQUENCE, "CRL")?;
        let key = issuer.public_key()?;
        cert::verify_signature(
            &key,
            &self.signature_algorithm,
            None,
            tbs.raw,
            &self.signature,
        )
    }

    /// True if the CRL lists `cert` (same issuer name and serial number). A certificate outside
    /// the CRL's scope is not revoked by it: see [`Crl::status`] to tell "not listed" from "not
    /// covered".
    pub fn is_revoked(&self, cert: &Certificate) -> bool {
        matches!(self.status(cert), RevocationStatus::Revoked(_))
    }

    /// What this CRL says about `cert`. The signature of the CRL is not checked here: call
    /// [`Crl::verify_signature`] once when the CRL is imported.
    pub fn status(&self, cert: &Certificate) -> RevocationStatus {
        let tbs = cert.x509().tbs_certificate();
        if tbs.issuer() != &self.issuer {
            return RevocationStatus::NotCovered(format!(
                "the CRL is from \"{}\", the certificate from \"{}\"",
                self.issuer(),
                cert.issuer()
            ));
        }
        if let Some(why) = self.out_of_scope(cert) {
            return RevocationStatus::NotCovered(why);
        }
        match self.revoked.get(tbs.serial_number().as_bytes()) {
            Some(entry) => RevocationStatus::Revoked(*entry),
            None => RevocationStatus::NotRevoked,
        }
    }

    /// RFC 5280 §6.3.3 (b): the issuingDistributionPoint scope against the certificate.
    fn out_of_scope(&self, cert: &Certificate) -> Option<String> {
        let idp = self.scope.as_ref()?;
        let tbs = cert.x509().tbs_certificate();
        let is_ca = matches!(
            tbs.get_extension::<x509_cert::ext::pkix::BasicConstraints>(),
            Ok(Some((_, bc))) if bc.ca
        );
        if idp.only_contains_user_certs && is_ca {
            return Some("the CRL covers only end-entity certificates".into());
        }
        if idp.only_contains_ca_certs && !is_ca {
            return Some("the CRL covers only CA certificates".into());
        }
        let Some(DistributionPointName::FullName(names)) = &idp.distribution_point else {
            // No distribution point: the CRL is for the issuer's whole population. One named
            // relative to the issuer is a partition we do not match, so it covers nothing.
            return idp
                .distribution_point
                .as_ref()
                .map(|_| "the CRL's distribution point is a relative name".into());
        };
        let points = match tbs.get_extension::<CrlDistributionPoints>() {
            Ok(Some((_, dps))) => dps,
            _ => {
                return Some(
                    "the CRL is for one distribution point and the certificate names none".into(),
                );
            }
        };
        let listed = points.0.iter().any(|dp| {
            matches!(&dp.distribution_point, Some(DistributionPointName::FullName(cert_names))
                if cert_names.iter().any(|n| names.contains(n)))
        });
        (!listed).then(|| "the certificate names another CRL distribution point".into())
    }

    /// Every revoked serial number (upper-case hex, as [`Certificate::serial_hex`]) with its
    /// entry, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (String, &RevokedEntry)> {
        self.revoked
            .iter()
            .map(|(serial, entry)| (serial.iter().map(|b| format!("{b:02X}")).collect(), entry))
    }
}

fn unsupported(what: &'static str, oid: ObjectIdentifier) -> Error {
    Error::UnsupportedAlgorithm {
        what,
        oid: oid.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::tests::cert;

    /// A CRL built in the test: issuer name, revoked serials, extensions, then signed with
    /// `key` (or left with a bogus signature).
    fn build(
        issuer: &Certificate,
        key: &crate::PrivateKey,
        serials: &[&[u8]],
        crl_ext: Vec<x509_cert::ext::Extension>,
        next: bool,
    ) -> Vec<u8> {
        use der::Encode;
        #[derive(Sequence)]
        struct Entry {
            serial: x509_cert::serial_number::SerialNumber,
            date: Time,
        }
        #[derive(Sequence)]
        struct Tbs {
            version: Version,
            signature: AlgorithmIdentifierOwned,
            issuer: Name,
            this_update: Time,
            next_update: Option<Time>,
            revoked: Option<Vec<Entry>>,
            #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
            exts: Option<Extensions>,
        }
        #[derive(Sequence)]
        struct Outer<'a> {
            tbs: AnyRef<'a>,
            alg: AlgorithmIdentifierOwned,
            sig: BitString,
        }
        let alg = AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            parameters: Some(der::Any::null()),
        };
        let now = SystemTime::now();
        let tbs = Tbs {
            version: Version::V2,
            signature: alg.clone(),
            issuer: issuer.x509().tbs_certificate().subject().clone(),
            this_update: Time::try_from(now).unwrap(),
            next_update: next
                .then(|| Time::try_from(now + std::time::Duration::from_secs(86400)).unwrap()),
            revoked: (!serials.is_empty()).then(|| {
                serials
                    .iter()
                    .map(|s| Entry {
                        serial: x509_cert::serial_number::SerialNumber::new(s).unwrap(),
                        date: Time::try_from(now).unwrap(),
                    })
                    .collect()
            }),
            exts: (!crl_ext.is_empty()).then_some(crl_ext),
        }
        .to_der()
        .unwrap();
        let sig = key
            .sign(
                crate::SignatureScheme::RsaPkcs1(DigestAlgorithm::Sha256),
                &tbs,
            )
            .unwrap();
        Outer {
            tbs: AnyRef::from_der(&tbs).unwrap(),
            alg,
            sig: BitString::from_bytes(&sig).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    fn ca() -> (Certificate, crate::PrivateKey) {
        let mut rng = rand_core::OsRng;
        let key = crate::PrivateKey::generate(crate::KeyKind::Rsa(2048)).unwrap();
        let ca = crate::issue::self_signed(&key, &crate::CertificateParams::ca("CRL CA"), &mut rng)
            .unwrap();
        (ca, key)
    }

    fn user(ca: &Certificate, key: &crate::PrivateKey, mail: &str) -> Certificate {
        let k = crate::PrivateKey::generate(crate::KeyKind::Ec(crate::Curve::P256)).unwrap();
        crate::issue::issue(
            k.public_key(),
            &crate::CertificateParams::user(mail, mail),
            ca,
            key,
            &mut rand_core::OsRng,
        )
        .unwrap()
    }

    fn serial(c: &Certificate) -> Vec<u8> {
        c.x509()
            .tbs_certificate()
            .serial_number()
            .as_bytes()
            .to_vec()
    }

    #[test]
    fn revoked_and_not_revoked() {
        let (ca, key) = ca();
        let (a, b) = (
            user(&ca, &key, "a@example.com"),
            user(&ca, &key, "b@example.com"),
        );
        let der = build(&ca, &key, &[&serial(&a)], vec![], true);
        let crl = Crl::load(&der, &Limits::default()).unwrap();
        assert!(crl.verify_signature(&ca).unwrap());
        assert!(crl.is_revoked(&a));
        assert!(!crl.is_revoked(&b));
        assert_eq!(crl.status(&b), RevocationStatus::NotRevoked);
        assert_eq!(crl.len(), 1);
        assert_eq!(crl.entries().next().unwrap().0, a.serial_hex());
        assert!(!crl.is_stale(SystemTime::now()));
        assert!(crl.is_stale(SystemTime::now() + std::time::Duration::from_secs(2 * 86400)));
        // a certificate of another issuer is not covered
        let other = cert("alice-rsa.pem");
        assert!(matches!(
            crl.status(&other),
            RevocationStatus::NotCovered(_)
        ));
        assert!(matches!(
            crl.verify_signature(&other),
            Err(Error::UnusableCertificate { .. })
        ));
    }

    #[test]
    fn tampered_or_foreign_signature_fails() {
        let (ca, key) = ca();
        let a = user(&ca, &key, "a@example.com");
        let mut der = build(&ca, &key, &[&serial(&a)], vec![], true);
        // same name, another key: the signature must not verify
        let (_, key2) = self::ca();
        let forged = build(&ca, &key2, &[], vec![], true);
        let crl = Crl::load(&forged, &Limits::default()).unwrap();
        assert!(!crl.verify_signature(&ca).unwrap());
        // flip a bit inside the revoked serial: still parses, no longer verifies
        let s = serial(&a);
        let pos = der
            .windows(s.len())
            .position(|w| w == s.as_slice())
            .unwrap();
        der[pos + s.len() - 1] ^= 1;
        let crl = Crl::load(&der, &Limits::default()).unwrap();
        assert!(!crl.is_revoked(&a));
        assert!(!crl.verify_signature(&ca).unwrap());
    }

    #[test]
    fn no_next_update_is_stale() {
        let (ca, key) = ca();
        let crl = Crl::load(&build(&ca, &key, &[], vec![], false), &Limits::default()).unwrap();
        assert!(crl.next_update().is_none());
        assert!(crl.is_stale(SystemTime::now()));
        assert!(crl.is_empty());
    }

    #[test]
    fn entry_limit_and_size_limit() {
        let (ca, key) = ca();
        let der = build(&ca, &key, &[&[1], &[2], &[3]], vec![], true);
        let mut limits = Limits::default();
        limits.max_crl_entries = 2;
        assert!(matches!(
            Crl::load(&der, &limits),
            Err(Error::LimitExceeded { .. })
        ));
        let mut limits = Limits::default();
        limits.max_crl_bytes = der.len() - 1;
        assert!(matches!(
            Crl::load(&der, &limits),
            Err(Error::LimitExceeded { .. })
        ));
        assert_eq!(Crl::load(&der, &Limits::default()).unwrap().len(), 3);
    }

    #[test]
    fn critical_unknown_and_delta_are_refused() {
        let (ca, key) = ca();
        let ext = |oid: &str, critical: bool, value: &[u8]| x509_cert::ext::Extension {
            extn_id: ObjectIdentifier::new_unwrap(oid),
            critical,
            extn_value: der::asn1::OctetString::new(value).unwrap(),
        };
        let delta = build(
            &ca,
            &key,
            &[],
            vec![ext("2.5.29.27", true, &[2, 1, 1])],
            true,
        );
        assert!(matches!(
            Crl::load(&delta, &Limits::default()),
            Err(Error::UnsupportedAlgorithm {
                what: "delta CRL",
                ..
            })
        ));
        let unknown = build(
            &ca,
            &key,
            &[],
            vec![ext("1.3.6.1.4.1.55555.9", true, &[5, 0])],
            true,
        );
        assert!(Crl::load(&unknown, &Limits::default()).is_err());
        let harmless = build(
            &ca,
            &key,
            &[],
            vec![ext("1.3.6.1.4.1.55555.9", false, &[5, 0])],
            true,
        );
        assert!(Crl::load(&harmless, &Limits::default()).is_ok());
        // IDP with indirectCRL (SEQUENCE { [4] TRUE })
        let indirect = build(
            &ca,
            &key,
            &[],
            vec![ext("2.5.29.28", true, &[0x30, 3, 0x84, 1, 0xff])],
            true,
        );
        assert!(matches!(
            Crl::load(&indirect, &Limits::default()),
            Err(Error::UnsupportedAlgorithm {
                what: "indirect CRL",
                ..
            })
        ));
        // IDP onlyContainsCACerts: a user certificate is not covered
        let ca_only = build(
            &ca,
            &key,
            &[],
            vec![ext("2.5.29.28", true, &[0x30, 3, 0x82, 1, 0xff])],
            true,
        );
        let crl = Crl::load(&ca_only, &Limits::default()).unwrap();
        let a = user(&ca, &key, "a@example.com");
        assert!(matches!(crl.status(&a), RevocationStatus::NotCovered(_)));
        // cRLNumber 5
        let numbered = build(
            &ca,
            &key,
            &[],
            vec![ext("2.5.29.20", false, &[2, 1, 5])],
            true,
        );
        assert_eq!(
            Crl::load(&numbered, &Limits::default())
                .unwrap()
                .crl_number(),
            Some(&[5u8][..])
        );
    }

    #[test]
    fn garbage_is_malformed_not_panic() {
        let (ca, key) = ca();
        let der = build(&ca, &key, &[&[1], &[2]], vec![], true);
        for cut in 0..der.len() {
            assert!(Crl::load(&der[..cut], &Limits::default()).is_err());
        }
        assert!(
            Crl::load(
                b"-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n",
                &Limits::default()
            )
            .is_err()
        );
    }
}
