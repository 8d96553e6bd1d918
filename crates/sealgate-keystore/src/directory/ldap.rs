//! LDAP directories of S/MIME certificates: `(mail=ADDRESS)` under a base DN, values of
//! `userCertificate;binary` (RFC 4523 §2.1; RFC 4522 for the `;binary` option), as corporate
//! directories (OpenLDAP, Active Directory) and CA directories publish them.
//!
//! The synchronous `ldap3::LdapConn` runs a small tokio runtime of its own per connection: one
//! connection per [`KeyDirectory::fetch`], bound (optionally), searched, unbound. `ldap://` with
//! optional StartTLS, and `ldaps://`, both through native-tls. What the server sends is bounded:
//! a size limit and time limit go with the search, and the certificates read are counted and
//! measured against [`Limits::max_certificates`] and
//! [`Limits::max_directory_response_bytes`] while the entries stream in (one entry itself is
//! buffered whole by ldap3 before it is seen here). Entries are decoded here rather than with
//! `ldap3::SearchEntry::construct`, which panics on a malformed entry.

use std::time::Duration;

use ldap3::{LdapConn, LdapConnSettings, Scope, SearchOptions, ldap_escape};
use sealgate_mime::Limits;
use secrecy::{ExposeSecret, SecretString};

use super::KeyDirectory;
use crate::{Error, KeyKind, Result};

/// Attributes asked for: the certificate with the `;binary` transfer option, and without it
/// (servers that drop the option answer with the plain name).
const ATTRIBUTES: [&str; 2] = ["userCertificate;binary", "userCertificate"];

/// An LDAP directory of S/MIME certificates.
pub struct Ldap {
    url: String,
    base_dn: String,
    bind: Option<(String, SecretString)>,
    starttls: bool,
    timeout: Duration,
    max_entries: usize,
    max_certificates: usize,
    max_bytes: usize,
    mail_attribute: String,
}

impl std::fmt::Debug for Ldap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ldap")
            .field("url", &self.url)
            .field("base_dn", &self.base_dn)
            .field("bind_dn", &self.bind.as_ref().map(|(dn, _)| dn))
            .field("password", &self.bind.as_ref().map(|_| "[redacted]"))
            .field("starttls", &self.starttls)
            .finish()
    }
}

impl Ldap {
    /// A directory at `url` (`ldap://host[:port]`, `ldaps://host[:port]`) searched under
    /// `base_dn`, anonymously, with `timeout` for connecting and for each operation.
    pub fn new(url: &str, base_dn: &str, timeout: Duration, limits: &Limits) -> Self {
        Self {
            url: url.trim().to_string(),
            base_dn: base_dn.to_string(),
            bind: None,
            starttls: false,
            timeout,
            max_entries: 100,
            max_certificates: limits.max_certificates,
            max_bytes: limits.max_directory_response_bytes,
            mail_attribute: "mail".into(),
        }
    }

    /// Bind with this DN and password before searching (simple bind; use `ldaps://` or
    /// [`Ldap::with_starttls`] so that the password is not sent in clear).
    pub fn with_bind(mut self, dn: &str, password: SecretString) -> Self {
        self.bind = Some((dn.to_string(), password));
        self
    }

    /// Upgrade an `ldap://` connection with StartTLS (RFC 4511 §4.14) before anything else.
    pub fn with_starttls(mut self) -> Self {
        self.starttls = true;
        self
    }

    /// Search this attribute for the address instead of `mail` (some directories use
    /// `proxyAddresses` or `rfc822Mailbox`).
    pub fn with_mail_attribute(mut self, attribute: &str) -> Self {
        self.mail_attribute = attribute.to_string();
        self
    }

    /// The search filter for `address` (RFC 4515, the address escaped).
    pub fn filter(&self, address: &str) -> String {
        format!("({}={})", self.mail_attribute, ldap_escape(address.trim()))
    }

    fn err(&self, reason: impl std::fmt::Display) -> Error {
        Error::Directory {
            directory: self.name(),
            reason: reason.to_string(),
        }
    }

    fn search(&self, address: &str) -> Result<Vec<Vec<u8>>> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.starttls);
        let mut conn = LdapConn::with_settings(settings, &self.url).map_err(|e| self.err(e))?;
        if let Some((dn, pw)) = &self.bind {
            conn.with_timeout(self.timeout)
                .simple_bind(dn, pw.expose_secret())
                .and_then(|r| r.success())
                // The server's message may echo the DN, never the password.
                .map_err(|e| self.err(format!("bind as {dn}: {e}")))?;
        }
        let secs = i32::try_from(self.timeout.as_secs().max(1)).unwrap_or(i32::MAX);
        let size = i32::try_from(self.max_entries).unwrap_or(i32::MAX);
        let filter = self.filter(address);
        let mut found = Vec::new();
        let mut bytes = 0usize;
        {
            let mut stream = conn
                .with_search_options(SearchOptions::new().sizelimit(size).timelimit(secs))
                .with_timeout(self.timeout)
                .streaming_search(&self.base_dn, Scope::Subtree, &filter, ATTRIBUTES.to_vec())
                .map_err(|e| self.err(e))?;
            let mut entries = 0usize;
            while let Some(entry) = stream.next().map_err(|e| self.err(e))? {
                if entry.is_ref() || entry.is_intermediate() {
                    continue;
                }
                entries += 1;
                if entries > self.max_entries {
                    return Err(self.err(format!("more than {} entries", self.max_entries)));
                }
                for value in
                    certificate_values(entry.0).ok_or_else(|| self.err("malformed entry"))?
                {
                    bytes = bytes.saturating_add(value.len());
                    if bytes > self.max_bytes {
                        return Err(
                            self.err(format!("response larger than {} bytes", self.max_bytes))
                        );
                    }
                    if found.len() >= self.max_certificates {
                        return Err(
                            self.err(format!("more than {} certificates", self.max_certificates))
                        );
                    }
                    if !found.contains(&value) {
                        found.push(value);
                    }
                }
            }
            let result = stream.result();
            // sizeLimitExceeded (4) with what came before it is still an answer; other
            // non-success codes are errors (noSuchObject (32): the base DN is not there).
            if result.rc != 0 && result.rc != 4 {
                return Err(self.err(format!(
                    "search failed: result code {} {}",
                    result.rc, result.text
                )));
            }
        }
        let _ = conn.unbind();
        Ok(found)
    }
}

/// The userCertificate values of a SearchResultEntry (RFC 4511 §4.5.2:
/// `[APPLICATION 4] SEQUENCE { objectName, attributes SEQUENCE OF PartialAttribute }`), or
/// `None` if it is not shaped like one.
fn certificate_values(tag: ldap3::asn1::StructureTag) -> Option<Vec<Vec<u8>>> {
    let mut parts = tag.match_id(4)?.expect_constructed()?.into_iter();
    let _dn = parts.next()?.expect_primitive()?;
    let attributes = parts.next()?.expect_constructed()?;
    let mut out = Vec::new();
    for attribute in attributes {
        let mut a = attribute.expect_constructed()?.into_iter();
        let name = a.next()?.expect_primitive()?;
        let values = a.next()?.expect_constructed()?;
        let name = String::from_utf8_lossy(&name).to_ascii_lowercase();
        // userCertificate, with or without ;binary (and other options in any order)
        if name.split(';').next() != Some("usercertificate") {
            continue;
        }
        for v in values {
            out.push(v.expect_primitive()?);
        }
    }
    Some(out)
}

impl KeyDirectory for Ldap {
    fn name(&self) -> String {
        self.url.clone()
    }

    /// DER certificates of the entries whose mail attribute is `address`; OpenPGP keys are
    /// not looked up in LDAP (always empty).
    fn fetch(&self, address: &str, kind: KeyKind) -> Result<Vec<Vec<u8>>> {
        if kind != KeyKind::Smime {
            return Ok(Vec::new());
        }
        if address.trim().is_empty() || !address.contains('@') {
            return Err(self.err(format!("\"{address}\" is not a mail address")));
        }
        self.search(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_is_escaped() {
        let l = Ldap::new(
            "ldap://127.0.0.1:1",
            "dc=example,dc=com",
            Duration::from_secs(1),
            &Limits::default(),
        );
        assert_eq!(l.filter("alice@example.com"), "(mail=alice@example.com)");
        assert_eq!(l.filter("*)(uid=*"), "(mail=\\2a\\29\\28uid=\\2a)");
        let dbg = format!(
            "{:?}",
            l.with_bind("cn=admin", SecretString::from("hunter2"))
        );
        assert!(
            !dbg.contains("hunter2") && dbg.contains("[redacted]"),
            "{dbg}"
        );
    }

    #[test]
    fn unreachable_server_is_a_directory_error() {
        // port 1 on loopback: nothing listens
        let l = Ldap::new(
            "ldap://127.0.0.1:1",
            "dc=x",
            Duration::from_secs(2),
            &Limits::default(),
        );
        assert!(matches!(
            l.fetch("a@example.com", KeyKind::Smime),
            Err(Error::Directory { .. })
        ));
        assert!(l.fetch("a@example.com", KeyKind::Pgp).unwrap().is_empty());
    }
}
