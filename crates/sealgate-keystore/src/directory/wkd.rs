//! Web Key Directory (draft-koch-openpgp-webkey-service §3.1): OpenPGP certificates over HTTPS
//! at a URL made from the mail address.
//!
//! The local part, with ASCII upper case mapped to lower case, is hashed with SHA-1 and the
//! 160-bit digest encoded in z-base-32 (RFC 6189 §5.1.6): 32 characters. Two URL forms:
//! - advanced: `https://openpgpkey.DOMAIN/.well-known/openpgpkey/DOMAIN/hu/HASH?l=LOCAL`
//! - direct: `https://DOMAIN/.well-known/openpgpkey/hu/HASH?l=LOCAL`
//!
//! The advanced form is tried first and the direct one when that gives nothing (no
//! `openpgpkey` host, or no key there), as GnuPG and Sequoia do. The response is one or more
//! binary (or armored) certificates; the draft has the client keep only those with a User ID
//! for the address, which [`Keyring::lookup_or_fetch_pgp`](crate::Keyring::lookup_or_fetch_pgp)
//! does.

use std::time::Duration;

use aws_lc_rs::digest;
use sealgate_mime::Limits;

use super::KeyDirectory;
use super::http::{HttpClient, HttpError, percent_encode, split_address};
use crate::{Error, KeyKind, Result};

/// z-base-32 alphabet (RFC 6189 §5.1.6).
const ZBASE32: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

/// Which WKD URL forms are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WkdMethod {
    /// The advanced form (`openpgpkey.` subdomain) only.
    Advanced,
    /// The direct form only.
    Direct,
    /// Advanced, then direct when advanced gives nothing (the draft's order).
    AdvancedThenDirect,
}

/// A WKD client.
#[derive(Debug, Clone)]
pub struct Wkd {
    client: HttpClient,
    method: WkdMethod,
    base: Option<String>,
    timeout: Duration,
    max_bytes: usize,
}

impl Wkd {
    /// A WKD client over HTTPS whose requests end within `timeout`, with response bodies
    /// bounded by [`Limits::max_directory_response_bytes`].
    pub fn new(timeout: Duration, limits: &Limits) -> Self {
        Self {
            // WKD is HTTPS only (draft §3.1): no plain URL, no redirect to one.
            client: HttpClient::new(timeout, limits, true),
            method: WkdMethod::AdvancedThenDirect,
            base: None,
            timeout,
            max_bytes: limits.max_directory_response_bytes,
        }
    }

    /// Ask only these URL forms.
    pub fn with_method(mut self, method: WkdMethod) -> Self {
        self.method = method;
        self
    }

    /// Send every request to `base` (`http://127.0.0.1:8080`) instead of the address's
    /// domain, keeping the paths of both forms: for tests and for a local WKD mirror. A base
    /// URL may be plain HTTP (the HTTPS-only rule is for the addresses' own domains).
    pub fn with_base_url(mut self, base: &str) -> Self {
        self.base = Some(base.trim_end_matches('/').to_string());
        let mut limits = Limits::default();
        limits.max_directory_response_bytes = self.max_bytes;
        self.client = HttpClient::new(self.timeout, &limits, base.starts_with("https://"));
        self
    }

    /// The (advanced, direct) URLs for `address`.
    pub fn urls(&self, address: &str) -> Result<(String, String)> {
        let (local, domain) = split_address(address).map_err(|reason| Error::Directory {
            directory: self.name(),
            reason,
        })?;
        let hash = wkd_hash(local);
        let l = percent_encode(local);
        let (adv_host, direct_host) = match &self.base {
            Some(b) => (b.clone(), b.clone()),
            None => (
                format!("https://openpgpkey.{domain}"),
                format!("https://{domain}"),
            ),
        };
        Ok((
            format!("{adv_host}/.well-known/openpgpkey/{domain}/hu/{hash}?l={l}"),
            format!("{direct_host}/.well-known/openpgpkey/hu/{hash}?l={l}"),
        ))
    }
}

/// The WKD hash of a local part: z-base-32 of SHA-1 of the local part with ASCII A-Z mapped
/// to a-z (draft-koch-openpgp-webkey-service §3.1).
pub fn wkd_hash(local_part: &str) -> String {
    let lower = local_part.to_ascii_lowercase();
    zbase32(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, lower.as_bytes()).as_ref())
}

/// z-base-32 (RFC 6189 §5.1.6) of `bytes`, most significant bit first, no padding.
pub fn zbase32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ZBASE32[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ZBASE32[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

impl KeyDirectory for Wkd {
    fn name(&self) -> String {
        match &self.base {
            Some(b) => format!("wkd:{b}"),
            None => "wkd".into(),
        }
    }

    /// OpenPGP certificates published for `address`; S/MIME certificates are not in WKD
    /// (always empty).
    fn fetch(&self, address: &str, kind: KeyKind) -> Result<Vec<Vec<u8>>> {
        if kind != KeyKind::Pgp {
            return Ok(Vec::new());
        }
        let (advanced, direct) = self.urls(address)?;
        let err = |e: HttpError| Error::Directory {
            directory: self.name(),
            reason: e.to_string(),
        };
        let try_advanced = matches!(
            self.method,
            WkdMethod::Advanced | WkdMethod::AdvancedThenDirect
        );
        let try_direct = matches!(
            self.method,
            WkdMethod::Direct | WkdMethod::AdvancedThenDirect
        );
        let mut last_error = None;
        if try_advanced {
            match self.client.get(&advanced) {
                Ok(Some(body)) if !body.is_empty() => return Ok(vec![body]),
                Ok(_) => {}
                // No openpgpkey host: the direct form is the one to use (§3.1).
                Err(e @ HttpError::Connect(_)) if try_direct => last_error = Some(e),
                Err(e) => return Err(err(e)),
            }
        }
        if try_direct {
            match self.client.get(&direct) {
                Ok(Some(body)) if !body.is_empty() => return Ok(vec![body]),
                Ok(_) => return Ok(Vec::new()),
                Err(e) => return Err(err(e)),
            }
        }
        match last_error {
            Some(e) => Err(err(e)),
            None => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_of_the_drafts_example() {
        // draft-koch-openpgp-webkey-service §3.1: "Joe.Doe@Example.ORG"
        assert_eq!(wkd_hash("Joe.Doe"), "iy9q119eutrkn8s1mk4r39qejnbu3n5q");
        let wkd = Wkd::new(Duration::from_secs(1), &Limits::default());
        let (adv, direct) = wkd.urls("Joe.Doe@Example.ORG").unwrap();
        assert_eq!(
            adv,
            "https://openpgpkey.example.org/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe"
        );
        assert_eq!(
            direct,
            "https://example.org/.well-known/openpgpkey/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe"
        );
    }

    #[test]
    fn zbase32_known_answers() {
        // RFC 6189 / the z-base-32 spec's examples, whole octets
        assert_eq!(zbase32(&[]), "");
        assert_eq!(zbase32(&[0xf0, 0xbf, 0xc7]), "6n9hq");
        assert_eq!(zbase32(&[0xd4, 0x7a, 0x04]), "4t7ye");
        assert_eq!(zbase32(&[0x00]), "yy");
        assert_eq!(zbase32(&[0xff; 5]), "99999999");
    }

    #[test]
    fn bad_addresses_never_make_a_request() {
        let wkd = Wkd::new(Duration::from_secs(1), &Limits::default());
        assert!(matches!(
            wkd.fetch("x@evil.org/.well-known", KeyKind::Pgp),
            Err(Error::Directory { .. })
        ));
        assert!(
            wkd.fetch("x@example.org", KeyKind::Smime)
                .unwrap()
                .is_empty()
        );
    }
}
