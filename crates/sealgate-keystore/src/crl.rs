//! Certificate revocation lists: sealgate-smime's `crl` module (wip-lifecycle) once merged.
//! Until then this stand-in refuses every CRL, so nothing is ever wrongly taken as
//! "not revoked" by a CRL we could not check.

use std::time::SystemTime;

use sealgate_mime::Limits;
use sealgate_smime::Certificate;

/// A parsed CRL (stand-in: none can be made).
#[derive(Clone, Debug)]
pub struct Crl {
    never: std::convert::Infallible,
}

impl Crl {
    /// Parse a DER CRL.
    pub fn from_der(_der: &[u8], _limits: &Limits) -> sealgate_smime::Result<Self> {
        Err(sealgate_smime::Error::UnsupportedAlgorithm {
            what: "CRL (support arrives with sealgate-smime's crl module)",
            oid: String::new(),
        })
    }
    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        match self.never {}
    }
    /// The issuer, RFC 4514.
    pub fn issuer(&self) -> String {
        match self.never {}
    }
    /// thisUpdate.
    pub fn this_update(&self) -> SystemTime {
        match self.never {}
    }
    /// nextUpdate.
    pub fn next_update(&self) -> Option<SystemTime> {
        match self.never {}
    }
    /// Check the CRL's signature with the issuer's public key.
    pub fn verify_signature(&self, _issuer: &Certificate) -> sealgate_smime::Result<bool> {
        match self.never {}
    }
    /// True if the CRL lists `cert`.
    pub fn is_revoked(&self, _cert: &Certificate) -> bool {
        match self.never {}
    }
}
