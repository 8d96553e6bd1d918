//! Certificate lifecycle facts: the validation level a CA asserts in certificatePolicies
//! (CA/Browser Forum S/MIME Baseline Requirements §7.1.6.1), and expiry.
//!
//! The S/MIME BR reserve one policy OID per validation type and generation under
//! `2.23.140.1.5`: `.1` mailbox-validated, `.2` organization-validated, `.3` sponsor-validated,
//! `.4` individual-validated; each with `.1` legacy, `.2` multipurpose, `.3` strict. A publicly
//! trusted S/MIME certificate carries exactly one of them. The level says what the CA checked
//! (control of the mailbox only, or also the organisation and/or the person); it is read from
//! the certificate as issued and proves nothing unless the certificate chains to a trusted CA.

use std::time::{Duration, SystemTime};

use const_oid::ObjectIdentifier;
use x509_cert::ext::pkix::CertificatePolicies;

use crate::keys::Certificate;

/// `2.23.140.1.5`: the CA/B Forum S/MIME BR policy arc.
const SMIME_BR_ARC: [u32; 5] = [2, 23, 140, 1, 5];

/// What the CA validated (S/MIME BR §1.2 and §7.1.6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ValidationType {
    /// Control of the mail address only.
    Mailbox,
    /// The organisation (and the address), no natural person.
    Organization,
    /// The organisation and an individual affiliated with it.
    Sponsor,
    /// The individual (natural person) and the address.
    Individual,
}

/// Which certificate profile of the BR the certificate follows (§7.1.6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Generation {
    /// Legacy: the most lenient profile, for existing deployments.
    Legacy,
    /// Multipurpose: aligned with Strict but allows some extra uses.
    Multipurpose,
    /// Strict: the long-term target profile.
    Strict,
}

/// A validation level: type × generation, as one of the twelve reserved policy OIDs says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValidationLevel {
    /// What the CA validated.
    pub validation: ValidationType,
    /// Which profile.
    pub generation: Generation,
}

impl ValidationLevel {
    /// The level a reserved S/MIME BR policy OID stands for; `None` for any other OID.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        let arcs: Vec<u32> = oid.arcs().collect();
        let (prefix, rest) = arcs.split_at_checked(SMIME_BR_ARC.len())?;
        if prefix != SMIME_BR_ARC {
            return None;
        }
        let validation = match rest.first()? {
            1 => ValidationType::Mailbox,
            2 => ValidationType::Organization,
            3 => ValidationType::Sponsor,
            4 => ValidationType::Individual,
            _ => return None,
        };
        let generation = match rest.get(1)? {
            1 => Generation::Legacy,
            2 => Generation::Multipurpose,
            3 => Generation::Strict,
            _ => return None,
        };
        (rest.len() == 2).then_some(Self {
            validation,
            generation,
        })
    }

    /// The reserved policy OID of this level.
    pub fn oid(&self) -> ObjectIdentifier {
        let v = match self.validation {
            ValidationType::Mailbox => "1",
            ValidationType::Organization => "2",
            ValidationType::Sponsor => "3",
            ValidationType::Individual => "4",
        };
        let g = match self.generation {
            Generation::Legacy => "1",
            Generation::Multipurpose => "2",
            Generation::Strict => "3",
        };
        // Twelve fixed, well-formed strings: parsing cannot fail.
        ObjectIdentifier::new(&format!("2.23.140.1.5.{v}.{g}"))
            .unwrap_or(ObjectIdentifier::new_unwrap("2.23.140.1.5"))
    }

    /// The BR's name of the validation type: `mailbox-validated`, `organization-validated`,
    /// `sponsor-validated`, `individual-validated`.
    pub fn validation_name(&self) -> &'static str {
        match self.validation {
            ValidationType::Mailbox => "mailbox-validated",
            ValidationType::Organization => "organization-validated",
            ValidationType::Sponsor => "sponsor-validated",
            ValidationType::Individual => "individual-validated",
        }
    }

    /// `legacy`, `multipurpose` or `strict`.
    pub fn generation_name(&self) -> &'static str {
        match self.generation {
            Generation::Legacy => "legacy",
            Generation::Multipurpose => "multipurpose",
            Generation::Strict => "strict",
        }
    }
}

impl std::fmt::Display for ValidationLevel {
    /// `mailbox-validated (strict)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.validation_name(), self.generation_name())
    }
}

impl Certificate {
    /// The policy identifiers of the certificatePolicies extension, in certificate order
    /// (empty when the extension is absent or cannot be read).
    pub fn certificate_policies(&self) -> Vec<ObjectIdentifier> {
        match self
            .x509()
            .tbs_certificate()
            .get_extension::<CertificatePolicies>()
        {
            Ok(Some((_, policies))) => policies.0.iter().map(|p| p.policy_identifier).collect(),
            _ => Vec::new(),
        }
    }

    /// The S/MIME BR validation level the certificate asserts.
    ///
    /// `None` when it carries no reserved S/MIME BR policy OID, and also when it carries more
    /// than one different level: the BR require exactly one, and a certificate that claims two
    /// cannot be taken at either word.
    pub fn validation_level(&self) -> Option<ValidationLevel> {
        let mut levels = self
            .certificate_policies()
            .iter()
            .filter_map(ValidationLevel::from_oid)
            .collect::<Vec<_>>();
        levels.dedup();
        match levels.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// True if the certificate's notAfter falls before `now + within`, which includes
    /// certificates that have expired already (the ones to renew first).
    pub fn expires_within(&self, within: Duration, now: SystemTime) -> bool {
        let (_, not_after) = self.validity();
        match now.checked_add(within) {
            Some(limit) => not_after < limit,
            None => true,
        }
    }

    /// Time left until notAfter at `now`; `None` if the certificate has expired.
    pub fn time_left(&self, now: SystemTime) -> Option<Duration> {
        let (_, not_after) = self.validity();
        not_after.duration_since(now).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CertificateParams, KeyKind, PrivateKey, issue};

    fn oid(s: &str) -> ObjectIdentifier {
        ObjectIdentifier::new_unwrap(s)
    }

    #[test]
    fn all_twelve_oids_round_trip() {
        let mut seen = Vec::new();
        for v in 1..=4 {
            for g in 1..=3 {
                let o = oid(&format!("2.23.140.1.5.{v}.{g}"));
                let level = ValidationLevel::from_oid(&o).unwrap();
                assert_eq!(level.oid(), o);
                seen.push(level);
            }
        }
        seen.dedup();
        assert_eq!(seen.len(), 12);
        let l = ValidationLevel::from_oid(&oid("2.23.140.1.5.3.2")).unwrap();
        assert_eq!(l.validation, ValidationType::Sponsor);
        assert_eq!(l.generation, Generation::Multipurpose);
        assert_eq!(l.to_string(), "sponsor-validated (multipurpose)");
        for other in [
            "2.23.140.1.5",
            "2.23.140.1.5.1",
            "2.23.140.1.5.5.1",
            "2.23.140.1.5.1.4",
            "2.23.140.1.5.1.1.1",
            "2.23.140.1.2.1",
            "1.3.6.1.4.1.311.1",
        ] {
            assert_eq!(ValidationLevel::from_oid(&oid(other)), None, "{other}");
        }
    }

    fn issued(policies: &[&str]) -> Certificate {
        let mut rng = rand_core::OsRng;
        let key = PrivateKey::generate(KeyKind::Ec(crate::Curve::P256)).unwrap();
        let mut params = CertificateParams::user("Val", "val@example.com");
        params.policies = policies.iter().map(|p| oid(p)).collect();
        issue::self_signed(&key, &params, &mut rng).unwrap()
    }

    #[test]
    fn level_from_issued_certificates() {
        let c = issued(&["2.23.140.1.5.4.3"]);
        assert_eq!(c.certificate_policies(), vec![oid("2.23.140.1.5.4.3")]);
        assert_eq!(
            c.validation_level(),
            Some(ValidationLevel {
                validation: ValidationType::Individual,
                generation: Generation::Strict
            })
        );
        // a CA-specific policy next to the reserved one does not matter
        let c = issued(&["1.3.6.1.4.1.55555.1.2", "2.23.140.1.5.1.1"]);
        assert_eq!(
            c.validation_level().unwrap().to_string(),
            "mailbox-validated (legacy)"
        );
        // none, or two different reserved ones: no level
        assert_eq!(issued(&[]).validation_level(), None);
        assert_eq!(issued(&["1.3.6.1.4.1.55555.1.2"]).validation_level(), None);
        assert_eq!(
            issued(&["2.23.140.1.5.1.1", "2.23.140.1.5.2.3"]).validation_level(),
            None
        );
    }

    #[test]
    fn expiry() {
        let c = issued(&[]);
        let now = SystemTime::now();
        // valid for a year from now (see CertificateParams::user)
        assert!(!c.expires_within(Duration::from_secs(30 * 86400), now));
        assert!(c.expires_within(Duration::from_secs(400 * 86400), now));
        let left = c.time_left(now).unwrap();
        assert!(
            left > Duration::from_secs(364 * 86400) && left <= Duration::from_secs(365 * 86400)
        );
        let later = now + Duration::from_secs(366 * 86400);
        assert!(c.time_left(later).is_none());
        assert!(c.expires_within(Duration::ZERO, later));
    }
}
