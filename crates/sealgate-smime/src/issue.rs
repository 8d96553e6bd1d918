//! Issuing certificates: self-signed roots and the certificates they sign.
//!
//! Production S/MIME certificates come from a CA; this is for tests, examples, demos and
//! private deployments that run their own small CA. Certificates are X.509 v3 with the
//! extensions S/MIME clients look for (RFC 8550 §4.4): basicConstraints, keyUsage,
//! extendedKeyUsage emailProtection and the address as SAN rfc822Name.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::ID_KP_EMAIL_PROTECTION;
use der::asn1::{BitString, Ia5String, OctetString};
use der::{Encode, Sequence};
use rand_core::CryptoRngCore;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, ExtendedKeyUsage, KeyUsage,
    KeyUsages, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::alg::DigestAlgorithm;
use crate::error::{Error, Result};
use crate::keys::{Certificate, Curve, PrivateKey, PublicKey, SignatureScheme};

/// What goes into a new certificate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CertificateParams {
    /// Subject common name.
    pub common_name: String,
    /// Subject organisation, if any.
    pub organization: Option<String>,
    /// Mail address (SAN rfc822Name); `None` for a CA.
    pub email: Option<String>,
    /// Issue a CA certificate (basicConstraints cA, keyCertSign) instead of a user one.
    pub ca: bool,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// certificatePolicies policy identifiers (non-critical extension; none when empty),
    /// e.g. a CA/B Forum S/MIME BR level from [`crate::validation::ValidationLevel::oid`].
    pub policies: Vec<ObjectIdentifier>,
}

impl CertificateParams {
    /// A user certificate for `email`, valid from an hour ago for a year.
    pub fn user(common_name: &str, email: &str) -> Self {
        let now = SystemTime::now();
        Self {
            common_name: common_name.into(),
            organization: None,
            email: Some(email.into()),
            ca: false,
            not_before: now - Duration::from_secs(3600),
            not_after: now + Duration::from_secs(365 * 86400),
            policies: Vec::new(),
        }
    }

    /// A CA certificate, valid from an hour ago for ten years.
    pub fn ca(common_name: &str) -> Self {
        let now = SystemTime::now();
        Self {
            common_name: common_name.into(),
            organization: None,
            email: None,
            ca: true,
            not_before: now - Duration::from_secs(3600),
            not_after: now + Duration::from_secs(10 * 365 * 86400),
            policies: Vec::new(),
        }
    }
}

// RFC 5280 §4.1: TBSCertificate, written with our own derive so that we can build it
// (x509-cert keeps its fields private outside its builder).
#[derive(Sequence)]
struct TbsCertificate {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: u8,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Vec<Extension>,
}

#[derive(Sequence)]
struct CertificateDer<'a> {
    tbs_certificate: der::asn1::AnyRef<'a>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// Issue a self-signed certificate for `key`.
pub fn self_signed(
    key: &PrivateKey,
    params: &CertificateParams,
    rng: &mut impl CryptoRngCore,
) -> Result<Certificate> {
    let subject = name(params)?;
    build(key.public_key(), params, &subject, None, key, rng)
}

/// Issue a certificate for `subject_key`, signed by `issuer` (which must be a CA certificate
/// whose private key is `issuer_key`).
pub fn issue(
    subject_key: &PublicKey,
    params: &CertificateParams,
    issuer: &Certificate,
    issuer_key: &PrivateKey,
    rng: &mut impl CryptoRngCore,
) -> Result<Certificate> {
    if !issuer_key.matches(issuer) {
        return Err(Error::KeyMismatch);
    }
    build(
        subject_key,
        params,
        issuer.x509().tbs_certificate().subject(),
        Some(issuer),
        issuer_key,
        rng,
    )
}

fn name(params: &CertificateParams) -> Result<Name> {
    let escape = |s: &str| {
        s.chars()
            .flat_map(|c| {
                let esc = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=');
                esc.then_some('\\').into_iter().chain(std::iter::once(c))
            })
            .collect::<String>()
    };
    let mut dn = format!("CN={}", escape(&params.common_name));
    if let Some(o) = &params.organization {
        dn.push_str(&format!(",O={}", escape(o)));
    }
    Name::from_str(&dn).map_err(|e| Error::malformed("certificate name", e))
}

fn signature_algorithm(key: &PrivateKey) -> (SignatureScheme, AlgorithmIdentifierOwned) {
    if let Some(dsa) = key.ml_dsa() {
        // RFC 9881 §3: pure ML-DSA over the tbsCertificate, parameters absent.
        return (
            SignatureScheme::MlDsa(dsa),
            AlgorithmIdentifierOwned {
                oid: dsa.oid(),
                parameters: None,
            },
        );
    }
    match key.curve() {
        Some(Curve::P256) => (
            SignatureScheme::Ecdsa(DigestAlgorithm::Sha256),
            AlgorithmIdentifierOwned {
                oid: ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2"),
                parameters: None,
            },
        ),
        Some(Curve::P384) => (
            SignatureScheme::Ecdsa(DigestAlgorithm::Sha384),
            AlgorithmIdentifierOwned {
                oid: ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3"),
                parameters: None,
            },
        ),
        None => (
            SignatureScheme::RsaPkcs1(DigestAlgorithm::Sha256),
            AlgorithmIdentifierOwned {
                oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11"),
                parameters: Some(der::Any::null()),
            },
        ),
    }
}

fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    // RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value.
    DigestAlgorithm::Sha1.digest(spki.subject_public_key.raw_bytes())
}

fn ext<T: const_oid::AssociatedOid + Encode>(
    value: &T,
    _subject: &Name,
    critical: bool,
) -> Result<Extension> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

fn build(
    subject_key: &PublicKey,
    params: &CertificateParams,
    issuer_name: &Name,
    issuer: Option<&Certificate>,
    signing_key: &PrivateKey,
    rng: &mut impl CryptoRngCore,
) -> Result<Certificate> {
    let spki_der = match subject_key {
        PublicKey::Rsa { spki, .. } => spki.clone(),
        PublicKey::Ec { curve, point } => SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
                parameters: Some(der::Any::from(&curve.oid())),
            },
            subject_public_key: BitString::from_bytes(point)?,
        }
        .to_der()?,
        // RFC 9935 §4: id-alg-ml-kem-* with parameters absent.
        PublicKey::MlKem { kem, key } => SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: kem.oid(),
                parameters: None,
            },
            subject_public_key: BitString::from_bytes(key)?,
        }
        .to_der()?,
        // RFC 9881 §4: id-ml-dsa-* with parameters absent.
        PublicKey::MlDsa { dsa, key } => SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: dsa.oid(),
                parameters: None,
            },
            subject_public_key: BitString::from_bytes(key)?,
        }
        .to_der()?,
    };
    let spki: SubjectPublicKeyInfoOwned = der::Decode::from_der(&spki_der)?;
    let subject = name(params)?;
    let (scheme, sig_alg) = signature_algorithm(signing_key);

    let mut serial = [0u8; 16];
    rng.fill_bytes(&mut serial);
    serial[0] &= 0x7f; // positive
    serial[0] |= 0x01; // and without a leading zero octet
    let serial_number = SerialNumber::new(&serial)?;

    let usage = if params.ca {
        KeyUsages::KeyCertSign | KeyUsages::CRLSign
    } else if matches!(subject_key, PublicKey::MlKem { .. }) {
        // RFC 9935 §5: keyEncipherment is the only keyUsage bit for an ML-KEM key.
        KeyUsages::KeyEncipherment.into()
    } else if matches!(subject_key, PublicKey::MlDsa { .. }) {
        // RFC 9881 §5: digitalSignature, nonRepudiation (keyCertSign, cRLSign for a CA); never
        // keyEncipherment or keyAgreement.
        KeyUsages::DigitalSignature | KeyUsages::NonRepudiation
    } else if matches!(subject_key, PublicKey::Ec { .. }) {
        KeyUsages::DigitalSignature | KeyUsages::NonRepudiation | KeyUsages::KeyAgreement
    } else {
        KeyUsages::DigitalSignature | KeyUsages::NonRepudiation | KeyUsages::KeyEncipherment
    };
    let mut extensions = vec![
        ext(
            &BasicConstraints {
                ca: params.ca,
                path_len_constraint: None,
            },
            &subject,
            true,
        )?,
        ext(&KeyUsage(usage), &subject, true)?,
        ext(
            &SubjectKeyIdentifier(OctetString::new(key_identifier(&spki))?),
            &subject,
            false,
        )?,
    ];
    let issuer_ski = match issuer {
        Some(cert) => cert.subject_key_identifier(),
        None => Some(key_identifier(&spki)),
    };
    if let Some(ki) = issuer_ski {
        extensions.push(ext(
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(ki)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            &subject,
            false,
        )?);
    }
    if !params.ca {
        extensions.push(ext(
            &ExtendedKeyUsage(vec![ID_KP_EMAIL_PROTECTION]),
            &subject,
            false,
        )?);
    }
    if let Some(email) = &params.email {
        let ia5 = Ia5String::new(email).map_err(|e| Error::malformed("mail address", e))?;
        extensions.push(ext(
            &SubjectAltName(vec![GeneralName::Rfc822Name(ia5)]),
            &subject,
            false,
        )?);
    }
    if !params.policies.is_empty() {
        let policies = params
            .policies
            .iter()
            .map(|oid| PolicyInformation {
                policy_identifier: *oid,
                policy_qualifiers: None,
            })
            .collect();
        extensions.push(ext(&CertificatePolicies(policies), &subject, false)?);
    }
    let validity = Validity::new(
        Time::try_from(params.not_before)?,
        Time::try_from(params.not_after)?,
    );
    let tbs = TbsCertificate {
        version: 2,
        serial_number,
        signature: sig_alg.clone(),
        issuer: issuer_name.clone(),
        validity,
        subject,
        subject_public_key_info: spki,
        extensions,
    }
    .to_der()?;
    let signature = signing_key.sign(scheme, &tbs)?;
    let cert = CertificateDer {
        tbs_certificate: der::Decode::from_der(&tbs)?,
        signature_algorithm: sig_alg,
        signature: BitString::from_bytes(&signature)?,
    }
    .to_der()?;
    Certificate::from_der(&cert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyKind;

    #[test]
    fn issues_a_chain_that_verifies() {
        let mut rng = rand_core::OsRng;
        let ca_key = PrivateKey::generate(KeyKind::Rsa(2048)).unwrap();
        let ca = self_signed(&ca_key, &CertificateParams::ca("Test CA"), &mut rng).unwrap();
        let user_key = PrivateKey::generate(KeyKind::Ec(Curve::P256)).unwrap();
        let user = issue(
            user_key.public_key(),
            &CertificateParams::user("Alice", "alice@example.com"),
            &ca,
            &ca_key,
            &mut rng,
        )
        .unwrap();
        assert!(user_key.matches(&user));
        assert!(ca_key.matches(&ca));
        assert_eq!(
            user.email_addresses(),
            vec!["alice@example.com".to_string()]
        );
        assert_eq!(user.issuer(), ca.subject());
        // the signature over the TBS verifies with the CA key
        let tbs = user.x509().tbs_certificate().to_der().unwrap();
        let sig = user.x509().signature().raw_bytes();
        assert!(
            ca.public_key()
                .unwrap()
                .verify(
                    SignatureScheme::RsaPkcs1(DigestAlgorithm::Sha256),
                    &tbs,
                    sig
                )
                .unwrap()
        );
        assert!(user.is_valid_at(SystemTime::now()));
    }
}
