//! The blocking HTTP client WKD and HKP share: a timeout on the whole request, a ceiling on
//! the response body ([`Limits::max_directory_response_bytes`]), and no status treated as
//! success but 200.

use std::time::Duration;

use sealgate_mime::Limits;
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

/// Why a request did not give a body.
#[derive(Debug)]
pub(crate) enum HttpError {
    /// No connection (DNS, refused, TLS, timeout).
    Connect(String),
    /// The server answered with this status (not 200, 404 or 410).
    Status(u16),
    /// The body was larger than the limit.
    TooLarge(u64),
    /// Anything else (bad URL, protocol error).
    Other(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Connect(e) => write!(f, "cannot connect: {e}"),
            HttpError::Status(s) => write!(f, "HTTP status {s}"),
            HttpError::TooLarge(n) => write!(f, "response larger than {n} bytes"),
            HttpError::Other(e) => write!(f, "{e}"),
        }
    }
}

/// A GET-only client with a timeout and a response size limit.
#[derive(Clone)]
pub(crate) struct HttpClient {
    agent: ureq::Agent,
    max_bytes: u64,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl HttpClient {
    /// A client whose every request (connect, TLS, headers and body) ends within `timeout`.
    /// With `https_only`, plain-HTTP URLs and redirects to them are refused (no downgrade).
    pub(crate) fn new(timeout: Duration, limits: &Limits, https_only: bool) -> Self {
        // native-tls: the system OpenSSL and its root store (see the workspace Cargo.toml).
        let tls = TlsConfig::builder()
            .provider(TlsProvider::NativeTls)
            .root_certs(RootCerts::PlatformVerifier)
            .build();
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .https_only(https_only)
            .max_redirects(5)
            .max_response_header_size(64 * 1024)
            .user_agent(concat!("sealgate-keystore/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build();
        Self {
            agent: config.into(),
            max_bytes: limits.max_directory_response_bytes as u64,
        }
    }

    /// GET `url`: `Ok(Some(body))` for 200, `Ok(None)` for 404 and 410 (the directory has
    /// nothing), an error otherwise.
    pub(crate) fn get(&self, url: &str) -> Result<Option<Vec<u8>>, HttpError> {
        let mut resp = self.agent.get(url).call().map_err(classify)?;
        match resp.status().as_u16() {
            200 => resp
                .body_mut()
                .with_config()
                .limit(self.max_bytes)
                .read_to_vec()
                .map(Some)
                .map_err(classify),
            404 | 410 => Ok(None),
            s => Err(HttpError::Status(s)),
        }
    }
}

fn classify(e: ureq::Error) -> HttpError {
    match e {
        ureq::Error::BodyExceedsLimit(n) => HttpError::TooLarge(n),
        ureq::Error::HostNotFound
        | ureq::Error::ConnectionFailed
        | ureq::Error::Timeout(_)
        | ureq::Error::Io(_)
        | ureq::Error::Tls(_) => HttpError::Connect(e.to_string()),
        other => HttpError::Other(other.to_string()),
    }
}

/// Percent-encode a query value (RFC 3986 §2.3: unreserved characters stay, every other byte
/// of the UTF-8 is `%XX`).
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Split a mail address for a directory query: (local part, lower-case domain). The domain must
/// be a plain host name (letters, digits, `-`, `.`), since it becomes part of a URL: anything
/// else (ports, paths, IP literals, user info) is refused before a request is made.
pub(crate) fn split_address(address: &str) -> Result<(&str, String), String> {
    let (local, domain) = address
        .trim()
        .rsplit_once('@')
        .ok_or_else(|| format!("\"{address}\" is not a mail address"))?;
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if local.is_empty() || domain.len() > 253 || !domain.split('.').all(ok_label) {
        return Err(format!(
            "\"{address}\" is not a mail address with a host name"
        ));
    }
    Ok((local, domain.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_only_refuses_plain_http_before_connecting() {
        // nothing listens on port 1; an https-only client must not even try
        let strict = HttpClient::new(Duration::from_secs(2), &Limits::default(), true);
        match strict.get("http://127.0.0.1:1/x") {
            Err(HttpError::Other(e)) => assert!(e.to_lowercase().contains("https"), "{e}"),
            other => panic!("{other:?}"),
        }
        let lax = HttpClient::new(Duration::from_secs(2), &Limits::default(), false);
        assert!(matches!(
            lax.get("http://127.0.0.1:1/x"),
            Err(HttpError::Connect(_))
        ));
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(percent_encode("Joe.Doe"), "Joe.Doe");
        assert_eq!(percent_encode("a+b@x y/é"), "a%2Bb%40x%20y%2F%C3%A9");
    }

    #[test]
    fn splits_addresses_and_refuses_url_tricks() {
        assert_eq!(
            split_address("Joe.Doe@Example.ORG").unwrap(),
            ("Joe.Doe", "example.org".to_string())
        );
        for bad in [
            "nobody",
            "@example.org",
            "a@",
            "a@evil.com/x",
            "a@127.0.0.1:8080",
            "a@[::1]",
            "a@host?x=1",
            "a@-bad.org",
            "a@ex..org",
        ] {
            assert!(split_address(bad).is_err(), "{bad}");
        }
    }
}
