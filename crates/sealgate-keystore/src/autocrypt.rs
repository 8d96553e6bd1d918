//! Autocrypt Level 1 headers (<https://autocrypt.org/level1.html>): the strict parser used
//! when harvesting `Autocrypt:` and `Autocrypt-Gossip:` headers, the choice of the one header
//! a message may carry for its sender (§2.3), and the writer for the header we emit (§2.1).
//!
//! The parser never panics on untrusted input and allocates at most the decoded keydata,
//! which the caller's [`Limits`] bound.

use base64::Engine as _;
use sealgate_mime::Limits;

use crate::{Error, Result};

/// The `prefer-encrypt` attribute (Autocrypt Level 1 §2.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PreferEncrypt {
    /// `prefer-encrypt=mutual`: the sender wants encrypted mail by default.
    Mutual,
    /// No `prefer-encrypt` attribute, or any other value (§2.1.1: treated as no preference).
    #[default]
    NoPreference,
}

impl PreferEncrypt {
    /// `"mutual"` or `"nopreference"`, as in the Autocrypt state (§2.3).
    pub fn as_str(self) -> &'static str {
        match self {
            PreferEncrypt::Mutual => "mutual",
            PreferEncrypt::NoPreference => "nopreference",
        }
    }
}

/// One parsed `Autocrypt:` (or `Autocrypt-Gossip:`) header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutocryptHeader {
    /// The `addr` attribute, as written.
    pub addr: String,
    /// The `prefer-encrypt` attribute (always [`PreferEncrypt::NoPreference`] for gossip,
    /// which has no such attribute in Level 1).
    pub prefer_encrypt: PreferEncrypt,
    /// The decoded `keydata`: one binary OpenPGP certificate (not yet parsed).
    pub keydata: Vec<u8>,
}

/// Parse one header value strictly (Level 1 §2.1): attributes `addr`, `prefer-encrypt` and
/// `keydata` at most once each; attributes starting with `_` are non-critical and skipped;
/// any other attribute is critical and unknown, so the whole header is ignored (an error).
/// `addr` must look like an address (`local@domain`, no spaces or angle brackets) and
/// `keydata` must be base64 (whitespace from folding removed) no larger than
/// `limits.max_message_bytes`.
pub fn parse(value: &str, limits: &Limits) -> Result<AutocryptHeader> {
    let bad = |reason: String| Error::Autocrypt { reason };
    let mut addr: Option<&str> = None;
    let mut prefer: Option<&str> = None;
    let mut keydata: Option<&str> = None;
    for attr in value.split(';') {
        if attr.trim().is_empty() {
            // A trailing `;` is harmless; an empty attribute elsewhere too.
            continue;
        }
        let Some((k, v)) = attr.split_once('=') else {
            return Err(bad(format!("attribute without value: {:?}", short(attr))));
        };
        let k = k.trim();
        let slot = match k {
            "addr" => &mut addr,
            "prefer-encrypt" => &mut prefer,
            "keydata" => &mut keydata,
            k if k.starts_with('_') => continue,
            k => return Err(bad(format!("unknown critical attribute {:?}", short(k)))),
        };
        if slot.replace(v).is_some() {
            return Err(bad(format!("attribute {k} given twice")));
        }
    }
    let addr = addr
        .map(str::trim)
        .ok_or_else(|| bad("addr missing".into()))?;
    let keydata = keydata.ok_or_else(|| bad("keydata missing".into()))?;
    let valid_addr = match addr.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !addr
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>,\"".contains(c))
        }
        None => false,
    };
    if !valid_addr {
        return Err(bad(format!("addr {:?} is not an address", short(addr))));
    }
    // Base64 is at most 4/3 of the key; refuse before decoding what the limits do not allow.
    if keydata.len() / 4 * 3 > limits.max_message_bytes {
        return Err(bad("keydata larger than the message size limit".into()));
    }
    let b64: String = keydata
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if b64.is_empty() {
        return Err(bad("keydata empty".into()));
    }
    let keydata = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| bad(format!("keydata is not base64: {e}")))?;
    let prefer_encrypt = match prefer.map(str::trim) {
        Some("mutual") => PreferEncrypt::Mutual,
        _ => PreferEncrypt::NoPreference,
    };
    Ok(AutocryptHeader {
        addr: addr.to_string(),
        prefer_encrypt,
        keydata,
    })
}

/// The header a message carries for its sender (Level 1 §2.3): of the `Autocrypt:` header
/// values given, the valid ones whose `addr` is `from` (compared case-insensitively); exactly
/// one such header is used, none or several mean no header. Each value that was not used is
/// returned with the reason, for the harvest report.
pub fn select_for_sender<'a>(
    values: impl IntoIterator<Item = &'a str>,
    from: &str,
    limits: &Limits,
) -> (Option<AutocryptHeader>, Vec<String>) {
    let mut valid = Vec::new();
    let mut skipped = Vec::new();
    for v in values {
        match parse(v, limits) {
            Ok(h) if h.addr.eq_ignore_ascii_case(from) => valid.push(h),
            Ok(h) => skipped.push(format!(
                "Autocrypt header for {}, not the sender {from}",
                short(&h.addr)
            )),
            Err(e) => skipped.push(e.to_string()),
        }
    }
    if valid.len() > 1 {
        skipped.push(format!(
            "{} valid Autocrypt headers for {from}: none is used (§2.3)",
            valid.len()
        ));
        return (None, skipped);
    }
    (valid.pop(), skipped)
}

/// The value of an `Autocrypt:` header (Level 1 §2.1) for `addr` with the binary OpenPGP
/// certificate `keydata` (which the caller has reduced to the minimal exportable form:
/// primary key, encryption subkey, User ID and their self-signatures). The base64 keydata is
/// folded into lines of at most 78 characters (RFC 5322 §2.1.1) beginning with a space, so
/// that `Autocrypt: ` + the value can be written into a header as it is.
pub fn header_value(addr: &str, prefer_encrypt: PreferEncrypt, keydata: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(keydata);
    let mut out = format!("addr={addr};");
    if prefer_encrypt == PreferEncrypt::Mutual {
        out.push_str(" prefer-encrypt=mutual;");
    }
    out.push_str(" keydata=");
    // 76 base64 characters after a leading space keep each folded line within 78.
    for chunk in b64.as_bytes().chunks(76) {
        out.push_str("\r\n ");
        out.push_str(&String::from_utf8_lossy(chunk));
    }
    out
}

/// The minimal exportable form of `cert` for an `Autocrypt:` header for `addr` (Level 1
/// §2.1.1): the primary key, the newest valid encryption subkey, the User IDs with `addr`
/// and their self-signatures, as binary OpenPGP without any secret key material.
pub fn minimal_keydata(
    cert: &sealgate_pgp::Cert,
    addr: &str,
    at: std::time::SystemTime,
) -> Result<Vec<u8>> {
    use sequoia_openpgp::serialize::SerializeInto;
    let bad = |reason: String| Error::Autocrypt { reason };
    let keep = cert
        .encryption_keys_for(Some(addr), at)
        .map_err(|e| bad(format!("no key to announce for {addr}: {e}")))?;
    let primary = cert.as_sequoia().fingerprint().to_hex();
    // The newest encryption-capable subkey (or the primary, when it encrypts itself).
    let chosen = cert
        .as_sequoia()
        .keys()
        .subkeys()
        .filter(|ka| keep.contains(&ka.key().fingerprint().to_hex()))
        .max_by_key(|ka| ka.key().creation_time())
        .map(|ka| ka.key().fingerprint().to_hex());
    if chosen.is_none() && !keep.contains(&primary) {
        return Err(bad(format!("no encryption key for {addr}")));
    }
    let minimal = cert
        .as_sequoia()
        .clone()
        .strip_secret_key_material()
        .retain_userids(|ua| {
            ua.userid()
                .email()
                .ok()
                .flatten()
                .is_some_and(|e| e.eq_ignore_ascii_case(addr))
        })
        .retain_subkeys(|ka| Some(ka.key().fingerprint().to_hex()) == chosen);
    minimal
        .export_to_vec()
        .map_err(|e| bad(format!("serialising the key: {e}")))
}

/// At most 64 characters of an untrusted string, for error messages.
fn short(s: &str) -> String {
    s.trim().chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn parses_a_level1_header() {
        let h = parse(
            "addr=alice@example.org; prefer-encrypt=mutual; _x=1; keydata=\r\n AAEC\r\n AwQ=",
            &limits(),
        )
        .unwrap();
        assert_eq!(h.addr, "alice@example.org");
        assert_eq!(h.prefer_encrypt, PreferEncrypt::Mutual);
        assert_eq!(h.keydata, vec![0, 1, 2, 3, 4]);
        let h = parse(
            "addr=a@b; prefer-encrypt=sometimes; keydata=AAEC",
            &limits(),
        )
        .unwrap();
        assert_eq!(h.prefer_encrypt, PreferEncrypt::NoPreference);
    }

    #[test]
    fn malformed_headers_are_ignored_with_a_reason() {
        for (value, reason) in [
            (
                "addr=a@b; keydata=AAEC; type=1",
                "unknown critical attribute \"type\"",
            ),
            (
                "addr=a@b; color=red; keydata=AAEC",
                "unknown critical attribute \"color\"",
            ),
            ("keydata=AAEC", "addr missing"),
            ("addr=a@b", "keydata missing"),
            ("addr=a@b; keydata=", "keydata empty"),
            ("addr=a@b; keydata=!!!!", "not base64"),
            ("addr=a@b; addr=c@d; keydata=AAEC", "addr given twice"),
            (
                "addr=a@b; keydata=AAEC; keydata=AAEC",
                "keydata given twice",
            ),
            ("addr=<a@b>; keydata=AAEC", "not an address"),
            ("addr=nobody; keydata=AAEC", "not an address"),
            ("addr=a b@c; keydata=AAEC", "not an address"),
            ("addr=a@b; keydata AAEC", "attribute without value"),
        ] {
            let e = parse(value, &limits()).unwrap_err().to_string();
            assert!(e.contains(reason), "{value}: {e}");
        }
    }

    #[test]
    fn keydata_beyond_the_limits_is_refused_before_decoding() {
        let mut small = Limits::default();
        small.max_message_bytes = 8;
        let e = parse("addr=a@b; keydata=AAAAAAAAAAAAAAAA", &small).unwrap_err();
        assert!(e.to_string().contains("size limit"), "{e}");
        assert!(parse("addr=a@b; keydata=AAAA", &small).is_ok());
    }

    #[test]
    fn exactly_one_valid_header_for_the_sender_is_used() {
        let mine = "addr=Alice@Example.org; keydata=AAEC";
        let other = "addr=mallory@example.org; keydata=AAEC";
        let broken = "addr=alice@example.org; evil=1; keydata=AAEC";
        let (h, skipped) = select_for_sender([mine, other, broken], "alice@example.org", &limits());
        assert_eq!(h.unwrap().addr, "Alice@Example.org");
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(skipped[0].contains("not the sender"));
        let (h, skipped) = select_for_sender([mine, mine], "alice@example.org", &limits());
        assert!(h.is_none());
        assert!(skipped[0].contains("none is used"), "{skipped:?}");
        let (h, _) = select_for_sender([other], "alice@example.org", &limits());
        assert!(h.is_none());
    }

    #[test]
    fn minimal_keydata_keeps_one_user_id_one_encryption_subkey_and_no_secret() {
        use sealgate_pgp::{Cert, KeyKind, SecretKey};
        let key = SecretKey::generate("Bob <bob@example.com>", KeyKind::Cv25519).unwrap();
        let now = std::time::SystemTime::now();
        let kd = minimal_keydata(key.cert(), "bob@example.com", now).unwrap();
        let mut certs = Cert::load_all(&kd, &limits()).unwrap();
        assert_eq!(certs.len(), 1);
        let c = certs.remove(0);
        assert_eq!(c.fingerprint(), key.cert().fingerprint());
        assert!(!c.as_sequoia().is_tsk(), "secret key material exported");
        assert_eq!(c.as_sequoia().userids().count(), 1);
        assert!(c.as_sequoia().keys().subkeys().count() <= 1);
        assert_eq!(
            c.encryption_keys_for(Some("bob@example.com"), now)
                .unwrap()
                .len(),
            1
        );
        assert!(minimal_keydata(key.cert(), "eve@example.com", now).is_err());
    }

    #[test]
    fn emitted_header_parses_back_and_is_folded() {
        let keydata: Vec<u8> = (0..=255u8).cycle().take(700).collect();
        for prefer in [PreferEncrypt::Mutual, PreferEncrypt::NoPreference] {
            let v = header_value("bob@example.com", prefer, &keydata);
            let line = format!("Autocrypt: {v}");
            assert!(line.split("\r\n").all(|l| l.len() <= 78), "{line}");
            assert!(line.split("\r\n").skip(1).all(|l| l.starts_with(' ')));
            let h = parse(&v, &limits()).unwrap();
            assert_eq!(h.addr, "bob@example.com");
            assert_eq!(h.prefer_encrypt, prefer);
            assert_eq!(h.keydata, keydata);
        }
    }
}
