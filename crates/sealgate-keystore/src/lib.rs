#![doc = include_str!("../README.md")]

pub mod autocrypt;
pub mod crl;
pub mod directory;
mod error;
pub mod import;
mod keyring;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(all(test, feature = "postgres"))]
mod pg_server;
mod seal;
mod sqlite;
pub mod store;

pub use directory::KeyDirectory;
pub use error::{Error, Result};
pub use import::{Material, parse_key_material};
pub use keyring::{
    Candidate, HarvestReport, ImportOptions, ImportReport, Keyring, PgpLookup, Rejection,
    SmimeLookup, certificate_id, format_time,
};
#[cfg(feature = "postgres")]
pub use pg::PgStore;
pub use seal::StoreSecret;
pub use sqlite::SqliteStore;
pub use store::{CertRecord, CrlRecord, KeyStore, MemoryStore, PgpRecord};

/// Which kind of key material: X.509 for S/MIME, or OpenPGP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// X.509 certificates and keys for S/MIME.
    Smime,
    /// OpenPGP certificates and secret keys.
    Pgp,
}

/// How much an entry is trusted, by how it came into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Trust {
    /// Learnt from an Autocrypt header (opportunistic, unverified).
    Autocrypt,
    /// Harvested from mail or fetched from a directory, not checked by an administrator.
    Unverified,
    /// Imported by an administrator.
    Imported,
    /// An administrator-declared trust anchor (root or intermediate CA certificate).
    Anchor,
}

impl Trust {
    /// The lowercase name (`"autocrypt"`, `"unverified"`, `"imported"`, `"anchor"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Autocrypt => "autocrypt",
            Trust::Unverified => "unverified",
            Trust::Imported => "imported",
            Trust::Anchor => "anchor",
        }
    }
}

/// Where an entry came from, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The source: `"import:FILE"`, `"harvest:<Message-ID>"`, a directory name, ...
    pub source: String,
    /// Who put it there (user name, `"harvester"`, directory name).
    pub by: String,
    /// When, in seconds since the Unix epoch.
    pub at: i64,
}
