//! A gateway from a configuration file: [`GatewayConfig::load`] reads `gateway.toml`,
//! [`GatewayConfig::build`] opens the key store, loads the policy, opens the audit file and
//! returns the [`Gateway`].
//!
//! The format (a contract: unknown keys are errors, errors carry line and column, paths are
//! relative to the directory of the configuration file):
//!
//! ```toml
//! hostname = "gw.example.com"         # Message-IDs of the messages the gateway writes
//! policy = "policy.toml"              # the rule file (sealgate-policy format), required
//! audit = "audit.jsonl"               # hash-chained JSON Lines audit trail (optional)
//! mike_address = "keys@example.com"   # key-exchange responder address (optional)
//! sender_copy = true                  # encrypt to the sender's own key too (default true)
//! outer_subject = "Encrypted message" # outer Subject of encrypted mail (default: unchanged)
//! protect_headers = false             # RFC 9788 header protection of encrypted mail
//! legacy_display = false              # with it, the real Subject at the top of text bodies
//!
//! [store]
//! path = "keys.db"                    # SQLite key store; or, instead of path:
//! # postgres_env = "SEALGATE_PG"      # env var with PostgreSQL connection parameters (feature
//! # connections = 4                   #   `postgres`; nodes share the store), pool size
//! # The store key, one of (default: passphrase_env = "SEALGATE_STORE_PASSPHRASE"):
//! passphrase_env = "SEALGATE_STORE_PASSPHRASE"  # env var holding the passphrase (Argon2id)
//! # key_env = "SEALGATE_STORE_KEY"              # env var holding a raw key, 64 hex digits
//! # key_file = "store.key"                      # file holding a raw key, 64 hex digits
//!
//! [domain_identities]                 # signing identity of senders without their own
//! "example.com" = "<certificate id: SHA-256 of its DER, hex>"
//!
//! [limits]                            # overrides of sealgate::Limits (optional)
//! max_message_bytes = 52428800
//!
//! [directories]                       # how external key directories are used (optional)
//! negative_ttl_secs = 600             # don't ask again for an address they had nothing for
//! hold_on_error = false               # true: a failing directory holds the message (4xx)
//!                                     # instead of falling back to the next method
//!
//! # External key directories, asked in this order when the store has no usable key for an
//! # outbound recipient (what they return is kept in the store as unverified). Optional.
//! [autocrypt]                        # Autocrypt Level 1 (optional)
//! harvest = true                      # learn Autocrypt/gossip keys of inbound mail (default)
//! use_for_encryption = false          # encrypt OpenPGP to keys learnt only from Autocrypt
//! emit_for = ["*@example.com"]        # senders whose mail announces a key (addresses, *@domain)
//! prefer_encrypt = "nopreference"     # or "mutual"
//! # key = "org-key.asc"               # key to announce; default: the sender's own stored key
//! gossip = false                      # Autocrypt-Gossip inside pgp-encrypted mail to 2+ To/Cc
//!
//! [[directory]]
//! type = "ldap"                       # S/MIME certificates (userCertificate;binary)
//! url = "ldaps://ldap.partner.example"
//! base_dn = "dc=partner,dc=example"
//! timeout_secs = 5                    # default 5, for every directory type
//! # bind_dn = "cn=gateway,dc=partner,dc=example"
//! # bind_password_env = "SEALGATE_LDAP_PASSWORD"
//! # starttls = true                   # for ldap:// URLs
//! # mail_attribute = "mail"
//!
//! [[directory]]
//! type = "wkd"                        # OpenPGP Web Key Directory of the address's domain
//! # method = "advanced-then-direct"   # or "advanced", "direct"
//! # base_url = "http://127.0.0.1:8080" # a local mirror instead of the address's domain
//!
//! [[directory]]
//! type = "hkp"                        # OpenPGP key server
//! url = "hkps://keys.openpgp.org"
//! ```
//!
//! The `[limits]` table takes the fields of [`Limits`] listed in [`LimitsOverrides`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::audit::{AuditSink, JsonLinesSink};
use crate::keystore::directory::{Hkp, Wkd, WkdMethod};
use crate::keystore::{KeyDirectory, Keyring, SqliteStore, StoreSecret};
use crate::{Error, Gateway, Limits, Options, Result};

/// The environment variable that holds the store passphrase unless the file names another.
pub const DEFAULT_PASSPHRASE_ENV: &str = "SEALGATE_STORE_PASSPHRASE";

/// Largest configuration, policy or key file read (they are small text files).
const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// A gateway configuration, as read from `gateway.toml` (see the module docs), with every
/// path resolved against the file's directory.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// The SQLite key store file (empty when the store is PostgreSQL: [`Self::store_postgres`]).
    pub store_path: PathBuf,
    /// The PostgreSQL key store, when `[store]` names one instead of a file.
    pub store_postgres: Option<PostgresStore>,
    /// Where the store key comes from.
    pub store_secret: SecretSource,
    /// The policy (rule file).
    pub policy: PathBuf,
    /// The audit file, if any.
    pub audit: Option<PathBuf>,
    /// The MIKE responder address.
    pub mike_address: Option<String>,
    /// Encrypt to the sender's own certificate or key too.
    pub sender_copy: bool,
    /// The outer Subject of encrypted messages.
    pub outer_subject: Option<String>,
    /// RFC 9788 header protection of outbound encrypted mail.
    pub protect_headers: bool,
    /// With it, a Legacy Display Element.
    pub legacy_display: bool,
    /// The host name for Message-IDs.
    pub hostname: String,
    /// Domain → certificate id of the domain's signing identity.
    pub domain_identities: BTreeMap<String, String>,
    /// Resource limits (defaults with the file's overrides).
    pub limits: Limits,
    /// External key directories, in the order they are asked.
    pub directories: Vec<DirectoryConfig>,
    /// Don't ask the directories again for an address they had nothing for, for this long.
    pub directory_negative_ttl: std::time::Duration,
    /// A failing directory holds the message instead of falling back.
    pub hold_on_directory_error: bool,
    /// The `[autocrypt]` table.
    pub autocrypt: AutocryptConfig,
}

/// The `[autocrypt]` table (see [`crate::autocrypt::AutocryptOptions`] for the meaning).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AutocryptConfig {
    /// Learn keys from Autocrypt and gossip headers (default true).
    pub harvest: bool,
    /// Encrypt to keys learnt only from Autocrypt (default false).
    pub use_for_encryption: bool,
    /// Senders whose outbound mail gets an `Autocrypt:` header.
    pub emit_for: Vec<String>,
    /// `prefer-encrypt=mutual` in emitted headers.
    pub mutual: bool,
    /// The OpenPGP key file announced instead of the sender's own key.
    pub key: Option<PathBuf>,
    /// `Autocrypt-Gossip:` inside OpenPGP-encrypted mail to several recipients.
    pub gossip: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AutocryptFile {
    #[serde(default = "yes")]
    harvest: bool,
    #[serde(default)]
    use_for_encryption: bool,
    #[serde(default)]
    emit_for: Vec<String>,
    #[serde(default)]
    prefer_encrypt: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    gossip: bool,
}

impl Default for AutocryptFile {
    fn default() -> Self {
        Self {
            harvest: true,
            use_for_encryption: false,
            emit_for: Vec::new(),
            prefer_encrypt: None,
            key: None,
            gossip: false,
        }
    }
}

fn yes() -> bool {
    true
}

/// One `[[directory]]` entry. Only names of secrets are kept (the bind password is read from
/// its environment variable when the gateway is built).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum DirectoryConfig {
    /// An LDAP directory of S/MIME certificates.
    Ldap {
        /// `ldap://host[:port]` or `ldaps://host[:port]`.
        url: String,
        /// The search base.
        base_dn: String,
        /// Connect and operation timeout, seconds (default 5).
        #[serde(default)]
        timeout_secs: Option<u64>,
        /// Simple bind with this DN (anonymous when absent).
        #[serde(default)]
        bind_dn: Option<String>,
        /// The environment variable holding the bind password.
        #[serde(default)]
        bind_password_env: Option<String>,
        /// Upgrade an `ldap://` connection with StartTLS.
        #[serde(default)]
        starttls: bool,
        /// The attribute that holds the address (default `mail`).
        #[serde(default)]
        mail_attribute: Option<String>,
    },
    /// OpenPGP Web Key Directory.
    Wkd {
        /// `advanced`, `direct` or `advanced-then-direct` (default).
        #[serde(default)]
        method: Option<String>,
        /// Send every request to this base URL instead of the address's domain.
        #[serde(default)]
        base_url: Option<String>,
        /// Request timeout, seconds (default 5).
        #[serde(default)]
        timeout_secs: Option<u64>,
    },
    /// An HKP key server.
    Hkp {
        /// `hkps://host`, `hkp://host[:port]`, `http(s)://host[:port]`.
        url: String,
        /// Request timeout, seconds (default 5).
        #[serde(default)]
        timeout_secs: Option<u64>,
    },
}

/// Default directory timeout.
const DEFAULT_DIRECTORY_TIMEOUT_SECS: u64 = 5;

impl DirectoryConfig {
    fn check(&self) -> Result<()> {
        let timeout = match self {
            Self::Ldap {
                url,
                bind_dn,
                bind_password_env,
                timeout_secs,
                ..
            } => {
                if !(url.starts_with("ldap://") || url.starts_with("ldaps://")) {
                    return Err(config_err(format!(
                        "[[directory]] ldap: url {url:?} is not ldap:// or ldaps://"
                    )));
                }
                match (bind_dn, bind_password_env) {
                    (Some(_), Some(v)) => {
                        env_name(v)?;
                    }
                    (None, None) => {}
                    _ => {
                        return Err(config_err(
                            "[[directory]] ldap: bind_dn and bind_password_env go together",
                        ));
                    }
                }
                timeout_secs
            }
            Self::Wkd {
                method,
                timeout_secs,
                ..
            } => {
                if let Some(m) = method {
                    wkd_method(m)?;
                }
                timeout_secs
            }
            Self::Hkp { url, timeout_secs } => {
                Hkp::new(url, std::time::Duration::from_secs(1), &Limits::default())
                    .map_err(|e| config_err(format!("[[directory]] hkp: {e}")))?;
                timeout_secs
            }
        };
        if *timeout == Some(0) {
            return Err(config_err("[[directory]]: timeout_secs must be at least 1"));
        }
        Ok(())
    }

    /// The directory client this entry describes.
    pub fn open(&self, limits: &Limits) -> Result<Arc<dyn KeyDirectory>> {
        let secs = |t: &Option<u64>| {
            std::time::Duration::from_secs(t.unwrap_or(DEFAULT_DIRECTORY_TIMEOUT_SECS))
        };
        Ok(match self {
            #[cfg(feature = "ldap")]
            Self::Ldap {
                url,
                base_dn,
                timeout_secs,
                bind_dn,
                bind_password_env,
                starttls,
                mail_attribute,
            } => {
                let mut ldap =
                    crate::keystore::directory::Ldap::new(url, base_dn, secs(timeout_secs), limits);
                if let (Some(dn), Some(var)) = (bind_dn, bind_password_env) {
                    let password = std::env::var(var).map_err(|_| {
                        config_err(format!(
                            "[[directory]] ldap {url}: environment variable {var} is not set"
                        ))
                    })?;
                    ldap = ldap.with_bind(dn, password.into());
                }
                if *starttls {
                    ldap = ldap.with_starttls();
                }
                if let Some(a) = mail_attribute {
                    ldap = ldap.with_mail_attribute(a);
                }
                Arc::new(ldap)
            }
            #[cfg(not(feature = "ldap"))]
            Self::Ldap { .. } => {
                return Err(config_err(
                    "[[directory]] ldap: this build has no LDAP support (feature `ldap`)",
                ));
            }
            Self::Wkd {
                method,
                base_url,
                timeout_secs,
            } => {
                let mut wkd = Wkd::new(secs(timeout_secs), limits);
                if let Some(m) = method {
                    wkd = wkd.with_method(wkd_method(m)?);
                }
                if let Some(b) = base_url {
                    wkd = wkd.with_base_url(b);
                }
                Arc::new(wkd)
            }
            Self::Hkp { url, timeout_secs } => Arc::new(
                Hkp::new(url, secs(timeout_secs), limits)
                    .map_err(|e| config_err(format!("[[directory]] hkp: {e}")))?,
            ),
        })
    }
}

fn wkd_method(m: &str) -> Result<WkdMethod> {
    match m {
        "advanced" => Ok(WkdMethod::Advanced),
        "direct" => Ok(WkdMethod::Direct),
        "advanced-then-direct" => Ok(WkdMethod::AdvancedThenDirect),
        other => Err(config_err(format!(
            "[[directory]] wkd: method {other:?} is not advanced, direct or advanced-then-direct"
        ))),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DirectoriesFile {
    #[serde(default)]
    negative_ttl_secs: Option<u64>,
    #[serde(default)]
    hold_on_error: Option<bool>,
}

/// A PostgreSQL key store: where its connection parameters come from (they may hold a
/// password, so the file only names the environment variable) and the pool size.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresStore {
    /// The environment variable holding libpq-style parameters or a `postgresql://` URL.
    pub params_env: String,
    /// Connections in the pool (default 4).
    pub connections: usize,
}

/// Where the key store's key comes from. Only names are kept here, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretSource {
    /// The environment variable that holds the passphrase.
    PassphraseEnv(String),
    /// The environment variable that holds a raw key (64 hex digits).
    KeyEnv(String),
    /// A file that holds a raw key (64 hex digits).
    KeyFile(PathBuf),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    hostname: Option<String>,
    policy: String,
    #[serde(default)]
    audit: Option<String>,
    #[serde(default)]
    mike_address: Option<String>,
    #[serde(default)]
    sender_copy: Option<bool>,
    #[serde(default)]
    outer_subject: Option<String>,
    #[serde(default)]
    protect_headers: bool,
    #[serde(default)]
    legacy_display: bool,
    store: StoreFile,
    #[serde(default)]
    domain_identities: BTreeMap<String, String>,
    #[serde(default)]
    limits: LimitsOverrides,
    #[serde(default)]
    directory: Vec<DirectoryConfig>,
    #[serde(default)]
    directories: DirectoriesFile,
    #[serde(default)]
    autocrypt: AutocryptFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    postgres_env: Option<String>,
    #[serde(default)]
    connections: Option<usize>,
    #[serde(default)]
    passphrase_env: Option<String>,
    #[serde(default)]
    key_env: Option<String>,
    #[serde(default)]
    key_file: Option<String>,
}

/// The `[limits]` table: each field, when present, replaces the [`Limits::default`] value of
/// the same name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LimitsOverrides {
    /// [`Limits::max_message_bytes`].
    pub max_message_bytes: Option<usize>,
    /// [`Limits::max_header_count`].
    pub max_header_count: Option<usize>,
    /// [`Limits::max_header_line`].
    pub max_header_line: Option<usize>,
    /// [`Limits::max_mime_depth`].
    pub max_mime_depth: Option<usize>,
    /// [`Limits::max_parts`].
    pub max_parts: Option<usize>,
    /// [`Limits::max_cms_bytes`].
    pub max_cms_bytes: Option<usize>,
    /// [`Limits::max_recipients`].
    pub max_recipients: Option<usize>,
    /// [`Limits::max_certificates`].
    pub max_certificates: Option<usize>,
    /// [`Limits::max_kdf_iterations`].
    pub max_kdf_iterations: Option<u32>,
    /// [`Limits::min_rsa_bits`].
    pub min_rsa_bits: Option<usize>,
    /// [`Limits::max_key_file_bytes`].
    pub max_key_file_bytes: Option<usize>,
    /// [`Limits::max_extract_bytes_per_attachment`].
    pub max_extract_bytes_per_attachment: Option<usize>,
    /// [`Limits::max_extract_bytes_per_message`].
    pub max_extract_bytes_per_message: Option<usize>,
    /// [`Limits::max_archive_depth`].
    pub max_archive_depth: Option<usize>,
    /// [`Limits::max_inspect_millis`].
    pub max_inspect_millis: Option<u64>,
    /// [`Limits::max_zip_entries`].
    pub max_zip_entries: Option<usize>,
    /// [`Limits::max_zip_total_bytes`].
    pub max_zip_total_bytes: Option<u64>,
}

impl LimitsOverrides {
    /// `base` with the overrides applied.
    pub fn apply(&self, mut base: Limits) -> Limits {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { base.$f = v; } )* };
        }
        set!(
            max_message_bytes,
            max_header_count,
            max_header_line,
            max_mime_depth,
            max_parts,
            max_cms_bytes,
            max_recipients,
            max_certificates,
            max_kdf_iterations,
            min_rsa_bits,
            max_key_file_bytes,
            max_extract_bytes_per_attachment,
            max_extract_bytes_per_message,
            max_archive_depth,
            max_inspect_millis,
            max_zip_entries,
            max_zip_total_bytes
        );
        base
    }
}

fn config_err(reason: impl Into<String>) -> Error {
    Error::Config {
        reason: reason.into(),
    }
}

/// 1-based line and column of byte offset `at` in `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(feature = "postgres")]
fn open_postgres(pg: &PostgresStore) -> Result<Arc<dyn crate::keystore::KeyStore>> {
    let params = zeroize::Zeroizing::new(std::env::var(&pg.params_env).map_err(|_| {
        config_err(format!(
            "the PostgreSQL key store: environment variable {} is not set",
            pg.params_env
        ))
    })?);
    Ok(Arc::new(crate::keystore::PgStore::connect(
        &params,
        pg.connections,
    )?))
}

#[cfg(not(feature = "postgres"))]
fn open_postgres(_: &PostgresStore) -> Result<Arc<dyn crate::keystore::KeyStore>> {
    Err(config_err(
        "[store] postgres_env: this build has no PostgreSQL support (cargo feature `postgres`)",
    ))
}

/// Read a small text file, refusing anything larger than [`MAX_CONFIG_BYTES`].
fn read_small(path: &Path, what: &str) -> Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| config_err(format!("{what} {}: {e}", path.display())))?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| config_err(format!("{what} {}: {e}", path.display())))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(config_err(format!(
            "{what} {}: larger than {MAX_CONFIG_BYTES} bytes",
            path.display()
        )));
    }
    Ok(text)
}

impl GatewayConfig {
    /// Read and check a configuration file. Errors name the file, line and column.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = read_small(path, "configuration")?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, base).map_err(|e| match e {
            Error::Config { reason } => config_err(format!("{}: {reason}", path.display())),
            other => other,
        })
    }

    /// Parse a configuration; relative paths are taken relative to `base_dir`.
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<Self> {
        let file: File = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_column(text, s.start));
            let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
            config_err(format!("line {line}, column {column}: {message}"))
        })?;
        let resolve = |p: &str| -> Result<PathBuf> {
            if p.trim().is_empty() {
                return Err(config_err("an empty path"));
            }
            let p = Path::new(p);
            Ok(if p.is_absolute() {
                p.to_path_buf()
            } else {
                base_dir.join(p)
            })
        };
        let s = &file.store;
        let store_secret = match (&s.passphrase_env, &s.key_env, &s.key_file) {
            (None, None, None) => SecretSource::PassphraseEnv(DEFAULT_PASSPHRASE_ENV.into()),
            (Some(v), None, None) => SecretSource::PassphraseEnv(env_name(v)?),
            (None, Some(v), None) => SecretSource::KeyEnv(env_name(v)?),
            (None, None, Some(f)) => SecretSource::KeyFile(resolve(f)?),
            _ => {
                return Err(config_err(
                    "[store]: give one of passphrase_env, key_env, key_file",
                ));
            }
        };
        if file.legacy_display && !file.protect_headers {
            return Err(config_err("legacy_display needs protect_headers = true"));
        }
        if let Some(m) = &file.mike_address
            && !m.contains('@')
        {
            return Err(config_err(format!("mike_address {m:?} is not an address")));
        }
        for (domain, id) in &file.domain_identities {
            if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(config_err(format!(
                    "domain_identities.{domain}: expected a certificate id (64 hex digits)"
                )));
            }
        }
        let (store_path, store_postgres) = match (&s.path, &s.postgres_env) {
            (Some(p), None) if s.connections.is_none() => (resolve(p)?, None),
            (None, Some(v)) => (
                PathBuf::new(),
                Some(PostgresStore {
                    params_env: env_name(v)?,
                    connections: s.connections.unwrap_or(4).clamp(1, 256),
                }),
            ),
            (Some(_), None) => return Err(config_err("[store]: connections is for postgres_env")),
            _ => return Err(config_err("[store]: give one of path, postgres_env")),
        };
        for d in &file.directory {
            d.check()?;
        }
        let a = &file.autocrypt;
        for p in &a.emit_for {
            let ok = match p.strip_prefix("*@") {
                Some(d) => !d.is_empty() && !d.contains('@'),
                None => p
                    .split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty()),
            };
            if !ok {
                return Err(config_err(format!(
                    "[autocrypt] emit_for: {p:?} is neither an address nor *@domain"
                )));
            }
        }
        let mutual = match a.prefer_encrypt.as_deref() {
            None | Some("nopreference") => false,
            Some("mutual") => true,
            Some(other) => {
                return Err(config_err(format!(
                    "[autocrypt] prefer_encrypt {other:?} is not mutual or nopreference"
                )));
            }
        };
        let autocrypt = AutocryptConfig {
            harvest: a.harvest,
            use_for_encryption: a.use_for_encryption,
            emit_for: a.emit_for.clone(),
            mutual,
            key: a.key.as_deref().map(resolve).transpose()?,
            gossip: a.gossip,
        };
        let defaults = Options::default();
        Ok(Self {
            autocrypt,
            directory_negative_ttl: file.directories.negative_ttl_secs.map_or(
                defaults.directory_negative_ttl,
                std::time::Duration::from_secs,
            ),
            hold_on_directory_error: file
                .directories
                .hold_on_error
                .unwrap_or(defaults.hold_on_directory_error),
            directories: file.directory,
            store_path,
            store_postgres,
            store_secret,
            policy: resolve(&file.policy)?,
            audit: file.audit.as_deref().map(resolve).transpose()?,
            mike_address: file.mike_address,
            sender_copy: file.sender_copy.unwrap_or(true),
            outer_subject: file.outer_subject,
            protect_headers: file.protect_headers,
            legacy_display: file.legacy_display,
            hostname: file.hostname.unwrap_or_else(|| Options::default().hostname),
            domain_identities: file.domain_identities,
            limits: file.limits.apply(Limits::default()),
        })
    }

    /// The store key, read now from the environment or the key file.
    pub fn store_secret(&self) -> Result<StoreSecret> {
        let missing = |var: &str| {
            config_err(format!(
                "the key store secret: environment variable {var} is not set"
            ))
        };
        match &self.store_secret {
            SecretSource::PassphraseEnv(var) => {
                let p = std::env::var(var).map_err(|_| missing(var))?;
                Ok(StoreSecret::Passphrase(p.into()))
            }
            SecretSource::KeyEnv(var) => {
                let hex = zeroize::Zeroizing::new(std::env::var(var).map_err(|_| missing(var))?);
                StoreSecret::raw_key_from_hex(&hex)
                    .map_err(|_| config_err(format!("{var}: not a key of 64 hex digits")))
            }
            SecretSource::KeyFile(path) => {
                let hex = zeroize::Zeroizing::new(read_small(path, "key file")?);
                StoreSecret::raw_key_from_hex(&hex).map_err(|_| {
                    config_err(format!("{}: not a key of 64 hex digits", path.display()))
                })
            }
        }
    }

    /// Open the key store (creating it when the file does not exist yet; migrating a
    /// PostgreSQL database to the current schema).
    pub fn open_keyring(&self) -> Result<Keyring> {
        let store: Arc<dyn crate::keystore::KeyStore> = match &self.store_postgres {
            None => Arc::new(SqliteStore::open(&self.store_path)?),
            Some(pg) => open_postgres(pg)?,
        };
        let secret = self.store_secret()?;
        Ok(Keyring::open(store, Some(&secret), self.limits.clone())?)
    }

    /// Load the policy.
    pub fn load_policy(&self) -> Result<crate::policy::Policy> {
        let text = read_small(&self.policy, "policy")?;
        crate::policy::Policy::from_toml(&text, self.policy.parent())
            .map_err(|e| config_err(format!("{}: {}", self.policy.display(), e)))
    }

    /// The gateway options this configuration gives.
    pub fn options(&self) -> Options {
        Options {
            mike_address: self.mike_address.clone(),
            sender_copy: self.sender_copy,
            outer_subject: self.outer_subject.clone(),
            hostname: self.hostname.clone(),
            limits: self.limits.clone(),
            directory_negative_ttl: self.directory_negative_ttl,
            hold_on_directory_error: self.hold_on_directory_error,
            protect_headers: self.protect_headers,
            legacy_display: self.legacy_display,
            autocrypt: crate::autocrypt::AutocryptOptions {
                harvest: self.autocrypt.harvest,
                use_for_encryption: self.autocrypt.use_for_encryption,
                emit_for: self.autocrypt.emit_for.clone(),
                prefer_encrypt: if self.autocrypt.mutual {
                    crate::keystore::autocrypt::PreferEncrypt::Mutual
                } else {
                    crate::keystore::autocrypt::PreferEncrypt::NoPreference
                },
                key: None,
                gossip: self.autocrypt.gossip,
            },
            ..Options::default()
        }
    }

    /// Build the gateway: key store opened, domain identities set, policy loaded, audit file
    /// opened (its chain is verified first and continued).
    pub fn build(&self) -> Result<Gateway> {
        let policy = self.load_policy()?;
        let keyring = self.open_keyring()?;
        for (domain, id) in &self.domain_identities {
            keyring
                .set_domain_identity(domain, &id.to_ascii_lowercase())
                .map_err(|e| config_err(format!("domain_identities.{domain}: {e}")))?;
        }
        let mut options = self.options();
        if let Some(path) = &self.autocrypt.key {
            let text = read_small(path, "[autocrypt] key")?;
            let mut certs = crate::pgp::Cert::load_all(text.as_bytes(), &self.limits)
                .map_err(|e| config_err(format!("[autocrypt] key {}: {e}", path.display())))?;
            if certs.len() != 1 {
                return Err(config_err(format!(
                    "[autocrypt] key {}: expected one OpenPGP certificate",
                    path.display()
                )));
            }
            options.autocrypt.key = Some(certs.remove(0));
        }
        let mut builder = Gateway::builder()
            .policy(policy)
            .keyring(keyring)
            .options(options);
        for d in &self.directories {
            builder = builder.directory(d.open(&self.limits)?);
        }
        if let Some(path) = &self.audit {
            let sink: Arc<dyn AuditSink> = Arc::new(JsonLinesSink::open(path)?);
            builder = builder.audit(sink);
        }
        builder.build()
    }
}

fn env_name(v: &str) -> Result<String> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(config_err(format!(
            "{v:?} is not an environment variable name"
        )));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
hostname = "gw.example.com"
policy = "policy.toml"
audit = "/var/log/sealgate/audit.jsonl"
mike_address = "keys@example.com"
sender_copy = false
outer_subject = "Encrypted message"

[store]
path = "keys.db"
key_file = "store.key"

[domain_identities]
"example.com" = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

[limits]
max_message_bytes = 1000000
max_parts = 50
"#;

    fn err(text: &str) -> String {
        match GatewayConfig::from_toml(text, Path::new("/etc/sealgate")) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_postgresql_store_is_named_by_an_environment_variable() {
        let c = GatewayConfig::from_toml(
            "policy = \"p.toml\"\n[store]\npostgres_env = \"SG_PG\"\nconnections = 2\n",
            Path::new("/etc/sealgate"),
        )
        .unwrap();
        assert_eq!(
            c.store_postgres,
            Some(PostgresStore {
                params_env: "SG_PG".into(),
                connections: 2
            })
        );
        assert_eq!(c.store_path, PathBuf::new());
        let c = GatewayConfig::from_toml(
            "policy = \"p.toml\"\n[store]\npostgres_env = \"SG_PG_SURELY_UNSET\"\n",
            Path::new("/etc/sealgate"),
        )
        .unwrap();
        assert_eq!(c.store_postgres.as_ref().unwrap().connections, 4);
        let e = c.open_keyring().unwrap_err().to_string();
        assert!(
            e.contains("SG_PG_SURELY_UNSET") || e.contains("feature `postgres`"),
            "{e}"
        );
    }

    #[test]
    fn reads_every_field_with_paths_relative_to_the_file() {
        let c = GatewayConfig::from_toml(FULL, Path::new("/etc/sealgate")).unwrap();
        assert_eq!(c.hostname, "gw.example.com");
        assert_eq!(c.policy, Path::new("/etc/sealgate/policy.toml"));
        assert_eq!(c.store_path, Path::new("/etc/sealgate/keys.db"));
        assert_eq!(
            c.store_secret,
            SecretSource::KeyFile("/etc/sealgate/store.key".into())
        );
        assert_eq!(
            c.audit.as_deref(),
            Some(Path::new("/var/log/sealgate/audit.jsonl"))
        );
        assert_eq!(c.mike_address.as_deref(), Some("keys@example.com"));
        assert!(!c.sender_copy);
        assert_eq!(c.outer_subject.as_deref(), Some("Encrypted message"));
        assert_eq!(c.domain_identities.len(), 1);
        assert_eq!(c.limits.max_message_bytes, 1_000_000);
        assert_eq!(c.limits.max_parts, 50);
        assert_eq!(c.limits.max_mime_depth, Limits::default().max_mime_depth);
        let o = c.options();
        assert_eq!(o.limits, c.limits);
        assert_eq!(o.hostname, "gw.example.com");
        assert!(!o.sender_copy);
    }

    #[test]
    fn defaults() {
        let c = GatewayConfig::from_toml(
            "policy = \"p.toml\"\n[store]\npath = \"k.db\"\n",
            Path::new("cfg"),
        )
        .unwrap();
        assert_eq!(
            c.store_secret,
            SecretSource::PassphraseEnv(DEFAULT_PASSPHRASE_ENV.into())
        );
        assert!(c.sender_copy);
        assert_eq!(c.audit, None);
        assert_eq!(c.mike_address, None);
        assert_eq!(c.hostname, Options::default().hostname);
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.policy, Path::new("cfg/p.toml"));
    }

    #[test]
    fn errors_carry_line_and_column() {
        let e = err("policy = \"p.toml\"\n[store]\npath = \"k.db\"\nkey_fil = \"x\"\n");
        assert!(e.contains("line 4, column 1"), "{e}");
        assert!(e.contains("key_fil"), "{e}");
        let e = err("policy = \"p.toml\"\nsender_copy = \"yes\"\n[store]\npath = \"k.db\"\n");
        assert!(e.contains("line 2, column 15"), "{e}");
        let e = err("policy = \"p.toml\"\n[store]\npath = \"k.db\"\n[limits]\nmax_bogus = 1\n");
        assert!(e.contains("line 5") && e.contains("max_bogus"), "{e}");
        let e = err("[store]\npath = \"k.db\"\n");
        assert!(e.contains("policy"), "{e}");
    }

    #[test]
    fn refuses_bad_values() {
        let base = "policy = \"p.toml\"\n";
        for (extra, want) in [
            (
                "[store]\npath = \"k\"\nkey_env = \"A\"\nkey_file = \"f\"\n",
                "one of",
            ),
            (
                "[store]\npath = \"k\"\npassphrase_env = \"NOT-A-NAME\"\n",
                "environment variable name",
            ),
            ("[store]\npath = \"\"\n", "empty path"),
            ("[store]\nkey_env = \"A\"\n", "one of path, postgres_env"),
            (
                "[store]\npath = \"k\"\npostgres_env = \"PG\"\n",
                "one of path, postgres_env",
            ),
            (
                "[store]\npath = \"k\"\nconnections = 3\n",
                "connections is for",
            ),
            (
                "[store]\npostgres_env = \"not a name\"\n",
                "environment variable name",
            ),
            (
                "mike_address = \"keys\"\n[store]\npath = \"k\"\n",
                "not an address",
            ),
            (
                "[store]\npath = \"k\"\n[domain_identities]\n\"example.com\" = \"abc\"\n",
                "64 hex digits",
            ),
        ] {
            let e = err(&format!("{base}{extra}"));
            assert!(e.contains(want), "{extra}: {e}");
        }
    }

    #[test]
    fn directories_are_read_and_checked() {
        let base = "policy = \"p.toml\"\n[store]\npath = \"k\"\n";
        let c = GatewayConfig::from_toml(
            &format!(
                "{base}[directories]\nnegative_ttl_secs = 60\nhold_on_error = true\n\
                 [[directory]]\ntype = \"ldap\"\nurl = \"ldaps://ldap.example\"\nbase_dn = \"dc=example\"\n\
                 bind_dn = \"cn=gw\"\nbind_password_env = \"LDAP_PW\"\n\
                 [[directory]]\ntype = \"wkd\"\nmethod = \"direct\"\n\
                 [[directory]]\ntype = \"hkp\"\nurl = \"hkps://keys.openpgp.org\"\ntimeout_secs = 2\n"
            ),
            Path::new("/etc/sealgate"),
        )
        .unwrap();
        assert_eq!(c.directories.len(), 3);
        assert!(
            matches!(&c.directories[0], DirectoryConfig::Ldap { bind_dn: Some(dn), .. } if dn == "cn=gw")
        );
        assert!(matches!(
            &c.directories[2],
            DirectoryConfig::Hkp {
                timeout_secs: Some(2),
                ..
            }
        ));
        let o = c.options();
        assert_eq!(o.directory_negative_ttl, std::time::Duration::from_secs(60));
        assert!(o.hold_on_directory_error);
        // the bind password is read when the directory is opened, and never shown
        let e = c.directories[0]
            .open(&Limits::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        if std::env::var("LDAP_PW").is_err() {
            assert!(e.contains("LDAP_PW is not set"), "{e}");
        }
        assert!(c.directories[1].open(&Limits::default()).is_ok());
        let defaults = GatewayConfig::from_toml(base, Path::new(".")).unwrap();
        assert!(defaults.directories.is_empty());
        assert!(!defaults.hold_on_directory_error);

        for (entry, want) in [
            ("type = \"x500\"\n", "x500"),
            (
                "type = \"ldap\"\nurl = \"http://x\"\nbase_dn = \"dc=x\"\n",
                "ldap://",
            ),
            (
                "type = \"ldap\"\nurl = \"ldap://x\"\nbase_dn = \"dc=x\"\nbind_dn = \"cn=a\"\n",
                "go together",
            ),
            ("type = \"wkd\"\nmethod = \"sideways\"\n", "sideways"),
            ("type = \"hkp\"\nurl = \"ftp://x\"\n", "scheme"),
            ("type = \"wkd\"\ntimeout_secs = 0\n", "at least 1"),
            ("type = \"wkd\"\nbogus = 1\n", "bogus"),
        ] {
            let e = err(&format!("{base}[[directory]]\n{entry}"));
            assert!(e.contains(want), "{entry}: {e}");
        }
    }

    #[test]
    fn secrets_come_from_the_named_source_and_are_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("store.key");
        std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
        let mut c = GatewayConfig::from_toml(
            "policy = \"p.toml\"\n[store]\npath = \"k.db\"\nkey_file = \"store.key\"\n",
            dir.path(),
        )
        .unwrap();
        assert!(matches!(c.store_secret().unwrap(), StoreSecret::RawKey(_)));
        std::fs::write(&key, "not hex").unwrap();
        let e = c.store_secret().unwrap_err().to_string();
        assert!(e.contains("64 hex digits") && !e.contains("not hex"), "{e}");
        c.store_secret = SecretSource::PassphraseEnv("SEALGATE_TEST_SURELY_UNSET_VAR".into());
        let e = c.store_secret().unwrap_err().to_string();
        assert!(
            e.contains("SEALGATE_TEST_SURELY_UNSET_VAR is not set"),
            "{e}"
        );
        assert!(!format!("{c:?}").contains("abab"));
    }

    #[test]
    fn builds_a_gateway_that_reopens_its_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("store.key"), "cd".repeat(32)).unwrap();
        std::fs::write(
            dir.path().join("policy.toml"),
            "internal_domains = [\"example.com\"]\n[default]\naction = \"none\"\n",
        )
        .unwrap();
        let cfg = dir.path().join("gateway.toml");
        std::fs::write(
            &cfg,
            "policy = \"policy.toml\"\naudit = \"audit.jsonl\"\n[store]\npath = \"keys.db\"\nkey_file = \"store.key\"\n",
        )
        .unwrap();
        let c = GatewayConfig::load(&cfg).unwrap();
        let raw = b"From: a@example.com\r\nTo: b@partner.example\r\nSubject: hi\r\n\r\nhello\r\n";
        let env = crate::Envelope {
            mail_from: Some("a@example.com".into()),
            rcpt_to: vec!["b@partner.example".into()],
        };
        {
            let gw = c.build().unwrap();
            let out = gw.process(raw, &env).unwrap();
            assert_eq!(out.deliveries.len(), 1);
            assert_eq!(out.deliveries[0].treatment, "clear");
        }
        // Second build on the same files: the store opens with the same key, the audit chain
        // continues.
        let gw = c.build().unwrap();
        gw.process(raw, &env).unwrap();
        drop(gw);
        let head = crate::audit::verify_file(dir.path().join("audit.jsonl")).unwrap();
        assert_eq!(head.records, 2);
        // A different key does not open the store.
        std::fs::write(dir.path().join("store.key"), "ef".repeat(32)).unwrap();
        assert!(c.build().is_err());
        // A policy error names the policy file.
        std::fs::write(dir.path().join("store.key"), "cd".repeat(32)).unwrap();
        std::fs::write(dir.path().join("policy.toml"), "[[rule]]\nname = 1\n").unwrap();
        let e = c.build().unwrap_err().to_string();
        assert!(e.contains("policy.toml") && e.contains("line 2"), "{e}");
        // A missing configuration file names itself.
        let e = GatewayConfig::load(dir.path().join("nope.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.toml"), "{e}");
    }

    #[test]
    fn autocrypt_table() {
        let base = "policy = \"p.toml\"\n[store]\npath = \"k.db\"\n";
        let c = GatewayConfig::from_toml(base, Path::new("/etc/sealgate")).unwrap();
        assert!(c.autocrypt.harvest && !c.autocrypt.use_for_encryption);
        assert!(!c.options().autocrypt.emits_for("a@example.com"));
        let text = format!(
            "{base}[autocrypt]\nharvest = false\nuse_for_encryption = true\n\
             emit_for = [\"*@example.com\"]\nprefer_encrypt = \"mutual\"\nkey = \"org.asc\"\n\
             gossip = true\n"
        );
        let c = GatewayConfig::from_toml(&text, Path::new("/etc/sealgate")).unwrap();
        assert_eq!(
            c.autocrypt.key.as_deref(),
            Some(Path::new("/etc/sealgate/org.asc"))
        );
        let o = c.options().autocrypt;
        assert!(!o.harvest && o.use_for_encryption && o.emits_for("bob@example.com"));
        assert!(
            o.gossip
                && !GatewayConfig::from_toml(base, Path::new("/"))
                    .unwrap()
                    .options()
                    .autocrypt
                    .gossip
        );
        assert_eq!(
            o.prefer_encrypt,
            crate::keystore::autocrypt::PreferEncrypt::Mutual
        );
        for (bad, why) in [
            ("prefer_encrypt = \"always\"", "prefer_encrypt"),
            ("emit_for = [\"nobody\"]", "emit_for"),
            ("colour = 1", "unknown field"),
        ] {
            let text = format!("{base}[autocrypt]\n{bad}\n");
            let e = GatewayConfig::from_toml(&text, Path::new("/"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
