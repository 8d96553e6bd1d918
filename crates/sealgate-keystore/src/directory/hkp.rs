//! HKP key servers (draft-shaw-openpgp-hkp §3): `GET /pks/lookup?op=get&options=mr&search=ADDR`
//! returns the armored certificates whose User IDs match.
//!
//! `hkp://host` means HTTP on port 11371, `hkps://host` HTTPS on 443; `http://` and `https://`
//! URLs are taken as they are (a key server behind a reverse proxy, or a test server).
//! Servers match the search text loosely (substring, case-insensitive); the caller keeps only
//! certificates with a User ID for the address.

use std::time::Duration;

use sealgate_mime::Limits;

use super::KeyDirectory;
use super::http::{HttpClient, percent_encode, split_address};
use crate::{Error, KeyKind, Result};

/// An HKP key server client.
#[derive(Debug, Clone)]
pub struct Hkp {
    name: String,
    base: String,
    client: HttpClient,
}

impl Hkp {
    /// A client for the key server at `url` (`hkps://keys.openpgp.org`, `hkp://host:port`,
    /// `http://127.0.0.1:8080`), with a timeout per request and bodies bounded by
    /// [`Limits::max_directory_response_bytes`].
    pub fn new(url: &str, timeout: Duration, limits: &Limits) -> Result<Self> {
        let url = url.trim().trim_end_matches('/');
        let bad = |reason: &str| Error::Directory {
            directory: url.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("not a URL (hkp://, hkps://, http:// or https://)"))?;
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return Err(bad("the URL must be scheme://host[:port], without a path"));
        }
        let has_port = rest
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
        let base = match scheme.to_ascii_lowercase().as_str() {
            "hkp" if has_port => format!("http://{rest}"),
            "hkp" => format!("http://{rest}:11371"),
            "hkps" => format!("https://{rest}"),
            "http" | "https" => format!("{scheme}://{rest}"),
            _ => return Err(bad("unknown scheme (hkp, hkps, http or https)")),
        };
        Ok(Self {
            name: url.to_string(),
            // an https/hkps server may not redirect to plain HTTP
            client: HttpClient::new(timeout, limits, base.starts_with("https://")),
            base,
        })
    }

    /// The lookup URL for `address`.
    pub fn url(&self, address: &str) -> Result<String> {
        // Only well-formed addresses are sent: the server would otherwise search for anything.
        split_address(address).map_err(|reason| Error::Directory {
            directory: self.name.clone(),
            reason,
        })?;
        Ok(format!(
            "{}/pks/lookup?op=get&options=mr&search={}",
            self.base,
            percent_encode(address.trim())
        ))
    }
}

impl KeyDirectory for Hkp {
    fn name(&self) -> String {
        self.name.clone()
    }

    /// The armored keyring the server returns for `address` (404: none). S/MIME certificates
    /// are not on HKP servers (always empty).
    fn fetch(&self, address: &str, kind: KeyKind) -> Result<Vec<Vec<u8>>> {
        if kind != KeyKind::Pgp {
            return Ok(Vec::new());
        }
        let url = self.url(address)?;
        match self.client.get(&url) {
            Ok(Some(body)) if !body.is_empty() => Ok(vec![body]),
            Ok(_) => Ok(Vec::new()),
            Err(e) => Err(Error::Directory {
                directory: self.name.clone(),
                reason: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hkp(url: &str) -> Result<Hkp> {
        Hkp::new(url, Duration::from_secs(1), &Limits::default())
    }

    #[test]
    fn urls() {
        assert_eq!(
            hkp("hkp://keys.example.org")
                .unwrap()
                .url("a+b@example.org")
                .unwrap(),
            "http://keys.example.org:11371/pks/lookup?op=get&options=mr&search=a%2Bb%40example.org"
        );
        assert_eq!(
            hkp("hkps://keys.example.org/")
                .unwrap()
                .url("a@example.org")
                .unwrap(),
            "https://keys.example.org/pks/lookup?op=get&options=mr&search=a%40example.org"
        );
        assert_eq!(
            hkp("http://127.0.0.1:8080")
                .unwrap()
                .url("a@example.org")
                .unwrap(),
            "http://127.0.0.1:8080/pks/lookup?op=get&options=mr&search=a%40example.org"
        );
        assert_eq!(hkp("hkp://h:1234").unwrap().base, "http://h:1234");
        for bad in [
            "keys.example.org",
            "ftp://x",
            "hkp://x/path",
            "hkp://u@x",
            "hkp://",
        ] {
            assert!(hkp(bad).is_err(), "{bad}");
        }
        assert!(hkp("hkp://x").unwrap().url("not an address").is_err());
    }
}
