//! Mail-initiated key exchange (MIKE): a message to the responder address whose Subject names an
//! address and a key type (`alice@example.com PGP`, `bob@example.com smime`) gets a reply
//! carrying that public key.
//!
//! This module holds the parts without keys: reading the request from a Subject and the
//! per-sender rate limit. The gateway looks the key up and builds the reply.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// The key type a MIKE request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MikeKind {
    /// An S/MIME certificate (sent as `application/pkcs7-mime; smime-type=certs-only`).
    Smime,
    /// An OpenPGP certificate (sent as `application/pgp-keys`).
    Pgp,
}

/// A parsed MIKE request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MikeRequest {
    /// The address whose key is asked for, as written (compare with
    /// [`crate::smime::keys::addresses_equal`]).
    pub address: String,
    /// The key type asked for.
    pub kind: MikeKind,
}

/// Read a request from a (decoded) Subject: exactly an address and a key type, separated by any
/// whitespace, the type case-insensitive (`PGP`, `OpenPGP`, `SMIME`, `S/MIME`). Anything else
/// is `None` (the gateway answers with what is available).
pub fn parse_request(subject: &str) -> Option<MikeRequest> {
    let mut words = subject.split_whitespace();
    let address = words.next()?;
    let kind = words.next()?;
    if words.next().is_some() {
        return None;
    }
    let address = address
        .strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(address);
    if !looks_like_address(address) {
        return None;
    }
    let kind = match kind.to_ascii_lowercase().as_str() {
        "pgp" | "openpgp" | "gpg" => MikeKind::Pgp,
        "smime" | "s/mime" | "x509" | "x.509" => MikeKind::Smime,
        _ => return None,
    };
    Some(MikeRequest {
        address: address.to_string(),
        kind,
    })
}

fn looks_like_address(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && a.len() <= 254
        && a.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'(' | b')' | b',' | b';'))
}

/// At most `burst` replies per sender in any `window` (a sliding window per sender address,
/// lowercased). Keeps a reflector from being used to flood a third party.
#[derive(Debug)]
pub struct RateLimiter {
    burst: usize,
    window: Duration,
    seen: Mutex<HashMap<String, Vec<SystemTime>>>,
}

impl RateLimiter {
    /// A limiter allowing `burst` replies per sender per `window`.
    pub fn new(burst: usize, window: Duration) -> Self {
        Self {
            burst,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `sender` may get another reply at `now`; counts it if so.
    pub fn allow(&self, sender: &str, now: SystemTime) -> bool {
        let mut seen = match self.seen.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        // Forget senders whose window has passed, so the map cannot grow without bound.
        if seen.len() > 10_000 {
            seen.retain(|_, times| {
                times
                    .last()
                    .is_some_and(|t| now.duration_since(*t).unwrap_or_default() < self.window)
            });
        }
        let times = seen.entry(sender.to_ascii_lowercase()).or_default();
        times.retain(|t| now.duration_since(*t).unwrap_or_default() < self.window);
        if times.len() >= self.burst {
            return false;
        }
        times.push(now);
        true
    }
}

impl Default for RateLimiter {
    /// Five replies per sender per hour.
    fn default() -> Self {
        Self::new(5, Duration::from_secs(3600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let r = parse_request("alice@example.com PGP").unwrap();
        assert_eq!(r.address, "alice@example.com");
        assert_eq!(r.kind, MikeKind::Pgp);
        let r = parse_request("  <Bob@Example.COM>\t\tsmime ").unwrap();
        assert_eq!(r.address, "Bob@Example.COM");
        assert_eq!(r.kind, MikeKind::Smime);
        assert_eq!(
            parse_request("carol@example.com S/MIME").unwrap().kind,
            MikeKind::Smime
        );
        assert_eq!(
            parse_request("carol@example.com openpgp").unwrap().kind,
            MikeKind::Pgp
        );
        for bad in [
            "",
            "PGP",
            "alice@example.com",
            "alice@example.com PGP please",
            "alice PGP",
            "alice@localhost PGP",
            "alice@example.com RSA",
            "a<b>@example.com PGP",
            "Re: alice@example.com PGP",
        ] {
            assert_eq!(parse_request(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rate_limit_per_sender() {
        let l = RateLimiter::new(2, Duration::from_secs(60));
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(l.allow("a@x.example", t0));
        assert!(l.allow("A@X.example", t0 + Duration::from_secs(1)));
        assert!(!l.allow("a@x.example", t0 + Duration::from_secs(2)));
        assert!(l.allow("b@x.example", t0 + Duration::from_secs(2)));
        assert!(l.allow("a@x.example", t0 + Duration::from_secs(61)));
    }
}
