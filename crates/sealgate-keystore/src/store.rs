//! The storage backend trait and the in-memory backend.
//!
//! A backend stores records and answers indexed queries; it parses nothing and decrypts
//! nothing ([`Keyring`](crate::Keyring) does that on top). The trait is object-safe and
//! `Send + Sync` so callers hold an `Arc<dyn KeyStore>` and never name the backend; every
//! write is one [`Batch`], applied in one transaction, all or nothing. A PostgreSQL backend
//! for several gateway nodes sharing one store implements the same methods (a batch is one SQL
//! transaction there too; `generation` is a counter row bumped by each batch).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::RwLock;

use crate::error::{Error, Result};
use crate::{KeyKind, Provenance, Trust};

/// A stored X.509 certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertRecord {
    /// SHA-256 of the DER encoding, lowercase hex: the certificate's name everywhere.
    pub id: String,
    /// The DER encoding.
    pub der: Vec<u8>,
    /// Subject, RFC 4514.
    pub subject: String,
    /// The mail addresses in the certificate, as written (SAN rfc822Name, subject emailAddress).
    pub addresses: Vec<String>,
    /// basicConstraints cA: a CA certificate (candidate intermediate or anchor).
    pub is_ca: bool,
    /// How far it is trusted; [`Trust::Anchor`] makes it a trust anchor.
    pub trust: Trust,
    /// notBefore, seconds since the Unix epoch.
    pub not_before: i64,
    /// notAfter, seconds since the Unix epoch.
    pub not_after: i64,
    /// Whether the store holds the private key (filled in by the backend; ignored on write).
    pub has_key: bool,
    /// A certification path that was checked when the certificate was stored (ids, leaf
    /// first, anchor last; every signature verified and every CA constraint met, by
    /// `sealgate_smime::cert::build_path`); empty if none was found then. Those checks depend
    /// only on the certificates' bytes, so lookups reuse the path and re-check only what can
    /// change: that its last certificate is still a trust anchor, validity, revocation.
    pub chain: Vec<String>,
}

/// A stored OpenPGP certificate (public part; secret keys are [`SealedKey`]s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgpRecord {
    /// Primary key fingerprint, upper-case hex.
    pub fingerprint: String,
    /// The certificate, binary OpenPGP (public packets only).
    pub data: Vec<u8>,
    /// The mail addresses of its User IDs.
    pub addresses: Vec<String>,
    /// How far it is trusted.
    pub trust: Trust,
    /// Whether the store holds its secret key (filled in by the backend; ignored on write).
    pub has_secret: bool,
}

/// A stored certificate revocation list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlRecord {
    /// The issuer's subject, RFC 4514; one CRL per issuer is kept (the newest).
    pub issuer: String,
    /// The DER encoding.
    pub der: Vec<u8>,
    /// thisUpdate, seconds since the Unix epoch (the newer CRL of an issuer wins).
    pub this_update: i64,
    /// nextUpdate, if the CRL has one.
    pub next_update: Option<i64>,
}

/// A private key (X.509) or transferable secret key (OpenPGP), encrypted under the store key.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedKey {
    /// The entry it belongs to: a certificate id or an OpenPGP fingerprint.
    pub owner: String,
    /// S/MIME (sealed PKCS#8) or OpenPGP (sealed binary TSK).
    pub kind: KeyKind,
    /// `version || nonce || ciphertext || tag`; never the key in clear.
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedKey")
            .field("owner", &self.owner)
            .field("kind", &self.kind)
            .field("sealed", &"[sealed]")
            .finish()
    }
}

/// One write of a [`Batch`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Change {
    /// Add a certificate, or merge with the stored one (trust becomes the higher of both, a
    /// checked path replaces a missing one); the provenance is added unless the same source is already recorded (idempotent harvests).
    Certificate(CertRecord, Provenance),
    /// Add or replace an OpenPGP certificate (the caller merged it with the stored one);
    /// trust becomes the higher of both.
    Pgp(PgpRecord, Provenance),
    /// Add or replace a sealed private key.
    Key(SealedKey, Provenance),
    /// Add a CRL, replacing an older one of the same issuer (an older one is ignored).
    Crl(CrlRecord, Provenance),
    /// Set a metadata value unless it is already set (store salt, key check).
    MetaIfAbsent(String, Vec<u8>),
    /// Set a metadata value, replacing any earlier one (remembered SMIMECapabilities).
    Meta(String, Vec<u8>),
}

/// Writes applied together in one transaction.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// The writes, in order.
    pub changes: Vec<Change>,
}

/// What a batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Entries that were new.
    pub added: usize,
    /// Entries that were already there and were merged.
    pub merged: usize,
}

/// The key in the address index: the whole address in ASCII lower case. Lookups then compare
/// the local part exactly, so that near misses (`Alice@` for `alice@`) come back as rejected
/// candidates with their reason instead of silently not at all.
pub fn index_key(address: &str) -> String {
    address.trim().to_ascii_lowercase()
}

/// Storage for a [`Keyring`](crate::Keyring): SQLite ([`SqliteStore`](crate::SqliteStore)),
/// memory ([`MemoryStore`]), or another database.
pub trait KeyStore: Send + Sync {
    /// Apply every change of `batch` in one transaction: all of them or, on error or crash,
    /// none.
    fn apply(&self, batch: Batch) -> Result<BatchOutcome>;
    /// Certificates whose addresses have this [`index_key`].
    fn certificates_by_address(&self, key: &str) -> Result<Vec<CertRecord>>;
    /// One certificate by id.
    fn certificate(&self, id: &str) -> Result<Option<CertRecord>>;
    /// CA certificates and trust anchors (for path building).
    fn authorities(&self) -> Result<Vec<CertRecord>>;
    /// Every certificate, in id order.
    fn certificates(&self) -> Result<Vec<CertRecord>>;
    /// Certificates whose notAfter lies in `from..=to` (seconds since the epoch), soonest first.
    fn certificates_expiring(&self, from: i64, to: i64) -> Result<Vec<CertRecord>>;
    /// OpenPGP certificates whose User ID addresses have this [`index_key`].
    fn pgp_by_address(&self, key: &str) -> Result<Vec<PgpRecord>>;
    /// One OpenPGP certificate by fingerprint.
    fn pgp(&self, fingerprint: &str) -> Result<Option<PgpRecord>>;
    /// Every OpenPGP certificate, in fingerprint order.
    fn pgp_certificates(&self) -> Result<Vec<PgpRecord>>;
    /// The sealed private key of an entry.
    fn sealed_key(&self, owner: &str) -> Result<Option<SealedKey>>;
    /// Every CRL.
    fn crls(&self) -> Result<Vec<CrlRecord>>;
    /// Where an entry came from, oldest first.
    fn provenance(&self, id: &str) -> Result<Vec<Provenance>>;
    /// A metadata value.
    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>>;
    /// A number that changes with every applied batch, from any process sharing the store:
    /// callers keep caches (parsed trust anchors, CRLs) until it changes.
    fn generation(&self) -> Result<u64>;
}

#[derive(Default)]
struct Memory {
    certs: BTreeMap<String, CertRecord>,
    cert_index: HashMap<String, BTreeSet<String>>,
    pgp: BTreeMap<String, PgpRecord>,
    pgp_index: HashMap<String, BTreeSet<String>>,
    keys: HashMap<String, SealedKey>,
    crls: BTreeMap<String, CrlRecord>,
    provenance: HashMap<String, Vec<Provenance>>,
    meta: HashMap<String, Vec<u8>>,
    generation: u64,
}

impl Memory {
    fn add_provenance(&mut self, id: &str, p: Provenance) {
        let list = self.provenance.entry(id.to_owned()).or_default();
        if !list.iter().any(|q| q.source == p.source) {
            list.push(p);
        }
    }

    fn apply_one(&mut self, change: Change, out: &mut BatchOutcome) {
        match change {
            Change::Certificate(mut rec, p) => {
                let id = rec.id.clone();
                if let Some(old) = self.certs.get_mut(&id) {
                    old.trust = old.trust.max(rec.trust);
                    if old.chain.is_empty() {
                        old.chain = rec.chain;
                    }
                    out.merged += 1;
                } else {
                    for a in &rec.addresses {
                        self.cert_index
                            .entry(index_key(a))
                            .or_default()
                            .insert(id.clone());
                    }
                    rec.has_key = false;
                    self.certs.insert(id.clone(), rec);
                    out.added += 1;
                }
                self.add_provenance(&id, p);
            }
            Change::Pgp(mut rec, p) => {
                let fpr = rec.fingerprint.clone();
                if let Some(old) = self.pgp.remove(&fpr) {
                    rec.trust = rec.trust.max(old.trust);
                    for a in &old.addresses {
                        if let Some(s) = self.pgp_index.get_mut(&index_key(a)) {
                            s.remove(&fpr);
                        }
                    }
                    out.merged += 1;
                } else {
                    out.added += 1;
                }
                for a in &rec.addresses {
                    self.pgp_index
                        .entry(index_key(a))
                        .or_default()
                        .insert(fpr.clone());
                }
                self.pgp.insert(fpr.clone(), rec);
                self.add_provenance(&fpr, p);
            }
            Change::Key(k, p) => {
                let owner = k.owner.clone();
                if self.keys.insert(owner.clone(), k).is_some() {
                    out.merged += 1;
                } else {
                    out.added += 1;
                }
                self.add_provenance(&format!("key:{owner}"), p);
            }
            Change::Crl(c, p) => {
                let issuer = c.issuer.clone();
                match self.crls.get(&issuer) {
                    Some(old) if old.this_update >= c.this_update => out.merged += 1,
                    Some(_) => {
                        self.crls.insert(issuer.clone(), c);
                        out.merged += 1;
                    }
                    None => {
                        self.crls.insert(issuer.clone(), c);
                        out.added += 1;
                    }
                }
                self.add_provenance(&format!("crl:{issuer}"), p);
            }
            Change::MetaIfAbsent(name, value) => {
                self.meta.entry(name).or_insert(value);
            }
            Change::Meta(name, value) => {
                self.meta.insert(name, value);
            }
        }
    }

    fn cert(&self, id: &str) -> Option<CertRecord> {
        self.certs.get(id).map(|c| CertRecord {
            has_key: self.keys.contains_key(id),
            ..c.clone()
        })
    }

    fn pgp_rec(&self, fpr: &str) -> Option<PgpRecord> {
        self.pgp.get(fpr).map(|c| PgpRecord {
            has_secret: self.keys.contains_key(fpr),
            ..c.clone()
        })
    }
}

/// A store in memory, for tests and for short-lived tools. Same semantics as SQLite.
#[derive(Default)]
pub struct MemoryStore {
    inner: RwLock<Memory>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, Memory>> {
        self.inner
            .read()
            .map_err(|_| Error::Backend("memory store poisoned".into()))
    }
}

impl KeyStore for MemoryStore {
    fn apply(&self, batch: Batch) -> Result<BatchOutcome> {
        let mut guard = self
            .inner
            .write()
            .map_err(|_| Error::Backend("memory store poisoned".into()))?;
        // All or nothing: work on a copy only if the batch could fail half-way; applying a
        // change cannot fail here, so apply in place.
        let mut out = BatchOutcome::default();
        for c in batch.changes {
            guard.apply_one(c, &mut out);
        }
        guard.generation += 1;
        Ok(out)
    }

    fn certificates_by_address(&self, key: &str) -> Result<Vec<CertRecord>> {
        let m = self.read()?;
        Ok(m.cert_index
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|id| m.cert(id))
            .collect())
    }

    fn certificate(&self, id: &str) -> Result<Option<CertRecord>> {
        Ok(self.read()?.cert(id))
    }

    fn authorities(&self) -> Result<Vec<CertRecord>> {
        let m = self.read()?;
        Ok(m.certs
            .values()
            .filter(|c| c.is_ca || c.trust == Trust::Anchor)
            .filter_map(|c| m.cert(&c.id))
            .collect())
    }

    fn certificates(&self) -> Result<Vec<CertRecord>> {
        let m = self.read()?;
        Ok(m.certs.keys().filter_map(|id| m.cert(id)).collect())
    }

    fn certificates_expiring(&self, from: i64, to: i64) -> Result<Vec<CertRecord>> {
        let m = self.read()?;
        let mut v: Vec<_> = m
            .certs
            .values()
            .filter(|c| (from..=to).contains(&c.not_after))
            .filter_map(|c| m.cert(&c.id))
            .collect();
        v.sort_by_key(|c| (c.not_after, c.id.clone()));
        Ok(v)
    }

    fn pgp_by_address(&self, key: &str) -> Result<Vec<PgpRecord>> {
        let m = self.read()?;
        Ok(m.pgp_index
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|f| m.pgp_rec(f))
            .collect())
    }

    fn pgp(&self, fingerprint: &str) -> Result<Option<PgpRecord>> {
        Ok(self.read()?.pgp_rec(fingerprint))
    }

    fn pgp_certificates(&self) -> Result<Vec<PgpRecord>> {
        let m = self.read()?;
        Ok(m.pgp.keys().filter_map(|f| m.pgp_rec(f)).collect())
    }

    fn sealed_key(&self, owner: &str) -> Result<Option<SealedKey>> {
        Ok(self.read()?.keys.get(owner).cloned())
    }

    fn crls(&self) -> Result<Vec<CrlRecord>> {
        Ok(self.read()?.crls.values().cloned().collect())
    }

    fn provenance(&self, id: &str) -> Result<Vec<Provenance>> {
        Ok(self.read()?.provenance.get(id).cloned().unwrap_or_default())
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.read()?.meta.get(name).cloned())
    }

    fn generation(&self) -> Result<u64> {
        Ok(self.read()?.generation)
    }
}
