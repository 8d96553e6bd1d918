//! [`Keyring`]: the key store as callers use it, on any [`KeyStore`] backend. Imports,
//! lookups with reasons, private keys sealed at rest, harvesting, expiry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealgate_mime::Limits;
use sealgate_pgp as pgp;
use sealgate_smime::{self as smime, Certificate, Identity, PrivateKey, TrustStore};
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::crl::Crl;
use crate::error::{Error, Result};
use crate::import::{Material, parse_key_material};
use crate::seal::{Sealer, StoreSecret, encode_kdf};
use crate::store::{
    Batch, BatchOutcome, CertRecord, Change, CrlRecord, KeyStore, PgpRecord, SealedKey, index_key,
};
use crate::{KeyKind, Provenance, Trust};

const META_KDF: &str = "kdf";
const META_KEY_CHECK: &str = "key_check";
const META_DOMAIN: &str = "domain_identity:";

/// Seconds since the Unix epoch (negative before 1970).
pub(crate) fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Lowercase hex.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The name of a certificate in the store: SHA-256 of its DER, lowercase hex.
pub fn certificate_id(cert: &Certificate) -> String {
    cert.fingerprint_sha256().to_ascii_lowercase()
}

/// How an import is done.
#[derive(Default)]
pub struct ImportOptions {
    /// Opens PKCS#12 files, encrypted PKCS#8 keys and locked OpenPGP secret keys.
    pub password: Option<SecretString>,
    /// Make the CA certificates of this import trust anchors.
    pub trust_anchors: bool,
    /// Who imports (for provenance); `"import"` when empty.
    pub by: String,
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("trust_anchors", &self.trust_anchors)
            .field("by", &self.by)
            .finish()
    }
}

/// What an import stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// X.509 certificates read (new or merged).
    pub certificates: usize,
    /// Private keys (X.509 and OpenPGP) stored.
    pub private_keys: usize,
    /// OpenPGP certificates read.
    pub pgp_certificates: usize,
    /// CRLs read.
    pub crls: usize,
    /// Entries new to the store / already there and merged.
    pub outcome: BatchOutcome,
}

/// Why a candidate certificate or key was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The address in the certificate is not the one looked up (the local part is compared
    /// exactly).
    WrongAddress(String),
    /// A CA certificate, not an end-entity one.
    CaCertificate,
    /// Not valid yet.
    NotYetValid(String),
    /// Expired.
    Expired(String),
    /// keyUsage allows neither keyEncipherment (RSA, ML-KEM) nor keyAgreement (EC), or the key
    /// is ML-DSA, which signs only (RFC 9881 §5).
    KeyUsage(String),
    /// extendedKeyUsage lacks emailProtection.
    ExtendedKeyUsage(String),
    /// No path to a trust anchor (or a certificate on it is invalid).
    Untrusted(String),
    /// Revoked by a CRL in the store.
    Revoked(String),
    /// OpenPGP: no valid encryption subkey for this User ID (revoked, expired, sign-only, no
    /// such User ID).
    NoEncryptionKey(String),
    /// The stored entry could not be read.
    Malformed(String),
    /// OpenPGP: learnt from Autocrypt only, and the caller does not use such keys for
    /// encryption ([`Keyring::lookup_pgp_trusted`]).
    AutocryptOnly,
    /// OpenPGP: an Autocrypt key for the address that a newer message replaced (Autocrypt
    /// Level 1 peer state: the key of the message with the latest effective date wins; one
    /// from an `Autocrypt:` header beats one from gossip). Holds the key now in use.
    AutocryptReplaced(String),
}

impl Rejection {
    /// A stable short code for machine output (`"expired"`, `"revoked"`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::WrongAddress(_) => "wrong-address",
            Rejection::CaCertificate => "ca-certificate",
            Rejection::NotYetValid(_) => "not-yet-valid",
            Rejection::Expired(_) => "expired",
            Rejection::KeyUsage(_) => "key-usage",
            Rejection::ExtendedKeyUsage(_) => "extended-key-usage",
            Rejection::Untrusted(_) => "untrusted",
            Rejection::Revoked(_) => "revoked",
            Rejection::NoEncryptionKey(_) => "no-encryption-key",
            Rejection::Malformed(_) => "malformed",
            Rejection::AutocryptOnly => "autocrypt-only",
            Rejection::AutocryptReplaced(_) => "autocrypt-replaced",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::WrongAddress(s) => write!(f, "wrong address: {s}"),
            Rejection::CaCertificate => f.write_str("a CA certificate, not a user's"),
            Rejection::NotYetValid(s) => write!(f, "not yet valid: {s}"),
            Rejection::Expired(s) => write!(f, "expired: {s}"),
            Rejection::KeyUsage(s) => write!(f, "wrong key usage: {s}"),
            Rejection::ExtendedKeyUsage(s) => write!(f, "wrong extended key usage: {s}"),
            Rejection::Untrusted(s) => write!(f, "not trusted: {s}"),
            Rejection::Revoked(s) => write!(f, "revoked: {s}"),
            Rejection::NoEncryptionKey(s) => write!(f, "no usable encryption key: {s}"),
            Rejection::Malformed(s) => write!(f, "unreadable entry: {s}"),
            Rejection::AutocryptOnly => {
                f.write_str("learnt from Autocrypt, not used for encryption here")
            }
            Rejection::AutocryptReplaced(s) => {
                write!(f, "Autocrypt key replaced by a newer message's: {s}")
            }
        }
    }
}

/// One certificate (or OpenPGP certificate) considered by a lookup.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Certificate id (SHA-256 of the DER, lowercase hex) or OpenPGP fingerprint.
    pub id: String,
    /// Subject (X.509) or primary User ID (OpenPGP).
    pub subject: String,
    /// Its addresses.
    pub addresses: Vec<String>,
    /// How it came into the store.
    pub trust: Trust,
    /// notAfter (X.509), seconds since the epoch; `None` for OpenPGP.
    pub not_after: Option<i64>,
    /// Whether the store holds its private key.
    pub has_key: bool,
    /// `Ok(())` when usable, else why not.
    pub verdict: std::result::Result<(), Rejection>,
}

/// The answer of an S/MIME lookup: the certificate to use, if any, and every candidate with
/// its verdict (usable ones first, best first).
#[derive(Debug, Clone)]
pub struct SmimeLookup {
    /// The address looked up.
    pub address: String,
    /// The certificate to encrypt to, and the path to its anchor (leaf first).
    pub selected: Option<(Certificate, Vec<Certificate>)>,
    /// Every candidate.
    pub candidates: Vec<Candidate>,
}

/// The answer of an OpenPGP lookup.
#[derive(Debug, Clone)]
pub struct PgpLookup {
    /// The address looked up.
    pub address: String,
    /// The certificate to encrypt to.
    pub selected: Option<pgp::Cert>,
    /// Every candidate.
    pub candidates: Vec<Candidate>,
}

/// What harvesting a message stored.
#[derive(Debug, Clone, Default)]
pub struct HarvestReport {
    /// X.509 certificates stored (signer and chain), by id.
    pub certificates: Vec<String>,
    /// OpenPGP certificates stored, by fingerprint.
    pub pgp_certificates: Vec<String>,
    /// Why something in the message was not taken (a signature that does not verify, a key
    /// for another address).
    pub skipped: Vec<String>,
}

/// A usable S/MIME candidate: its report, the certificate, its path, its rank (notBefore,
/// strength).
type Usable = (Candidate, Certificate, Vec<Certificate>, (i64, u32));

struct Authorities {
    generation: u64,
    trust: TrustStore,
    crls: Vec<Crl>,
    /// CA certificates by id, and whether each is a trust anchor (for stored paths).
    by_id: HashMap<String, (Certificate, bool)>,
}

/// The key store: certificates, keys and CRLs on a [`KeyStore`] backend, with the store key
/// that seals private keys.
pub struct Keyring {
    store: Arc<dyn KeyStore>,
    sealer: Option<Sealer>,
    limits: Limits,
    authorities: Mutex<Option<Arc<Authorities>>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("unlocked", &self.sealer.is_some())
            .finish()
    }
}

impl Keyring {
    /// Open a key store. With `secret`, private keys can be stored and used: a new store gets
    /// a random salt and a key check; an existing one must open with the same secret
    /// ([`Error::Locked`] otherwise). Without it, only public material is available.
    pub fn open(
        store: Arc<dyn KeyStore>,
        secret: Option<&StoreSecret>,
        limits: Limits,
    ) -> Result<Self> {
        let sealer = match secret {
            None => None,
            Some(secret) => Some(unlock(&*store, secret)?),
        };
        Ok(Self {
            store,
            sealer,
            limits,
            authorities: Mutex::new(None),
        })
    }

    /// The backend.
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    /// The limits every parser here runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn sealer(&self) -> Result<&Sealer> {
        self.sealer.as_ref().ok_or(Error::Locked)
    }

    /// Import files (a directory imports every file in it, sorted by name, not recursively),
    /// all in one transaction: a file that cannot be read fails the whole import with its name
    /// and reason, and nothing is stored.
    pub fn import_paths(&self, paths: &[PathBuf], opts: &ImportOptions) -> Result<ImportReport> {
        let mut files = Vec::new();
        for p in paths {
            if p.is_dir() {
                let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                    .map_err(|e| import_err(p, &e.to_string()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file())
                    .collect();
                entries.sort();
                files.extend(entries);
            } else {
                files.push(p.clone());
            }
        }
        let mut loaded = Vec::with_capacity(files.len());
        for f in &files {
            let len = std::fs::metadata(f)
                .map_err(|e| import_err(f, &e.to_string()))?
                .len();
            if len > self.limits.max_key_file_bytes as u64 {
                return Err(import_err(f, "larger than the limit for a key file"));
            }
            let data = Zeroizing::new(std::fs::read(f).map_err(|e| import_err(f, &e.to_string()))?);
            loaded.push((f.display().to_string(), data));
        }
        let named: Vec<(&str, &[u8])> = loaded
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        self.import(&named, opts)
    }

    /// Import in-memory files `(name, bytes)`, all in one transaction (see
    /// [`Keyring::import_paths`]).
    pub fn import(&self, files: &[(&str, &[u8])], opts: &ImportOptions) -> Result<ImportReport> {
        let now = unix(SystemTime::now());
        let by = if opts.by.is_empty() {
            "import".to_string()
        } else {
            opts.by.clone()
        };
        let mut report = ImportReport::default();
        let mut batch = Batch::default();
        // Keys without a certificate in their own file may find it in another file.
        let mut loose_keys: Vec<(String, PrivateKey)> = Vec::new();
        let mut certs_seen: Vec<Certificate> = Vec::new();
        let mut crls: Vec<(String, Crl)> = Vec::new();
        let mut pending = HashMap::new();
        for (name, data) in files {
            let prov = Provenance {
                source: format!("import:{name}"),
                by: by.clone(),
                at: now,
            };
            let items = parse_key_material(data, opts.password.as_ref(), &self.limits).map_err(
                |reason| Error::Import {
                    file: name.to_string(),
                    reason,
                },
            )?;
            for item in items {
                match item {
                    Material::Certificate(c) => {
                        report.certificates += 1;
                        batch.changes.push(Change::Certificate(
                            cert_record(&c, imported_trust(&c, opts.trust_anchors)),
                            prov.clone(),
                        ));
                        certs_seen.push(c);
                    }
                    Material::PrivateKey(k) => loose_keys.push((name.to_string(), k)),
                    Material::Identity(id) => {
                        report.certificates += 1 + id.chain.len();
                        report.private_keys += 1;
                        batch.changes.push(Change::Certificate(
                            cert_record(&id.cert, Trust::Imported),
                            prov.clone(),
                        ));
                        batch.changes.push(self.seal_smime_key(
                            &id.cert,
                            &id.key,
                            prov.clone(),
                            name,
                        )?);
                        for c in &id.chain {
                            batch.changes.push(Change::Certificate(
                                cert_record(c, imported_trust(c, opts.trust_anchors)),
                                prov.clone(),
                            ));
                        }
                        certs_seen.push(id.cert);
                        certs_seen.extend(id.chain);
                    }
                    Material::PgpCertificate(c) => {
                        report.pgp_certificates += 1;
                        batch.changes.push(self.pgp_change(
                            &c,
                            Trust::Imported,
                            prov.clone(),
                            name,
                            &mut pending,
                        )?);
                    }
                    Material::PgpSecretKey { cert, tsk } => {
                        report.pgp_certificates += 1;
                        report.private_keys += 1;
                        batch.changes.push(self.pgp_change(
                            &cert,
                            Trust::Imported,
                            prov.clone(),
                            name,
                            &mut pending,
                        )?);
                        let fpr = cert.fingerprint();
                        let sealed = self
                            .sealer()
                            .map_err(|_| locked_import(name))?
                            .seal(&tsk, key_aad(&fpr, KeyKind::Pgp).as_bytes())?;
                        batch.changes.push(Change::Key(
                            SealedKey {
                                owner: fpr,
                                kind: KeyKind::Pgp,
                                sealed,
                            },
                            prov.clone(),
                        ));
                    }
                    Material::Crl(c) => crls.push((name.to_string(), c)),
                }
            }
        }
        for (name, key) in loose_keys {
            let cert = match certs_seen.iter().find(|c| key.matches(c)) {
                Some(c) => c.clone(),
                None => self
                    .stored_cert_for_key(&key)?
                    .ok_or_else(|| Error::Import {
                        file: name.clone(),
                        reason: "a private key without its certificate (import them together)"
                            .into(),
                    })?,
            };
            report.private_keys += 1;
            let prov = Provenance {
                source: format!("import:{name}"),
                by: by.clone(),
                at: now,
            };
            batch
                .changes
                .push(self.seal_smime_key(&cert, &key, prov, &name)?);
        }
        for (name, crl) in crls {
            report.crls += 1;
            let change = self.crl_change(&crl, &certs_seen, &name, &by, now)?;
            batch.changes.push(change);
        }
        self.check_paths(&mut batch, &certs_seen)?;
        report.outcome = self.store.apply(batch)?;
        Ok(report)
    }

    /// Build and check the certification path of every end-entity certificate of `batch`
    /// against the store's authorities and the batch's own CA certificates, and keep it with
    /// the certificate (see [`CertRecord::chain`]): one signature check per link, here, instead
    /// of at every lookup.
    fn check_paths(&self, batch: &mut Batch, certs: &[Certificate]) -> Result<()> {
        let auth = self.authorities()?;
        let mut trust = auth.trust.clone();
        let mut new_anchors = Vec::new();
        let mut new_cas = Vec::new();
        for ch in &batch.changes {
            if let Change::Certificate(rec, _) = ch
                && rec.is_ca
                && let Some(c) = certs.iter().find(|c| certificate_id(c) == rec.id)
            {
                if rec.trust == Trust::Anchor {
                    new_anchors.push(c.clone());
                } else {
                    new_cas.push(c.clone());
                }
            }
        }
        if !new_anchors.is_empty() {
            let mut anchors = trust.anchors().to_vec();
            anchors.extend(new_anchors);
            let intermediates = trust.intermediates().to_vec();
            trust = TrustStore::new(anchors);
            trust.add_intermediates(intermediates);
        }
        trust.add_intermediates(new_cas);
        let by_id: HashMap<String, &Certificate> =
            certs.iter().map(|c| (certificate_id(c), c)).collect();
        for ch in &mut batch.changes {
            if let Change::Certificate(rec, _) = ch
                && !rec.is_ca
                && let Some(c) = by_id.get(&rec.id)
            {
                let path = smime::cert::build_path(c, &[], &trust);
                if path.status.is_ok() {
                    rec.chain = path.chain.iter().map(certificate_id).collect();
                }
            }
        }
        Ok(())
    }

    fn seal_smime_key(
        &self,
        cert: &Certificate,
        key: &PrivateKey,
        prov: Provenance,
        file: &str,
    ) -> Result<Change> {
        let sealer = self.sealer().map_err(|_| locked_import(file))?;
        let id = certificate_id(cert);
        let pkcs8 = key.to_pkcs8_der().map_err(|e| Error::Import {
            file: file.to_string(),
            reason: e.to_string(),
        })?;
        let sealed = sealer.seal(&pkcs8, key_aad(&id, KeyKind::Smime).as_bytes())?;
        Ok(Change::Key(
            SealedKey {
                owner: id,
                kind: KeyKind::Smime,
                sealed,
            },
            prov,
        ))
    }

    /// A certificate already stored whose public key is `key`'s (keys imported after their
    /// certificate). Searches the certificates with the key's addresses: none are known from
    /// a bare key, so every certificate is tried; fine for the rare separate key import.
    fn stored_cert_for_key(&self, key: &PrivateKey) -> Result<Option<Certificate>> {
        for rec in self.store.certificates()? {
            if let Ok(c) = Certificate::from_der(&rec.der)
                && key.matches(&c)
            {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// The change that stores `cert` merged with what is known of it: an earlier version in
    /// the same batch (`pending`), else the stored one.
    pub(crate) fn pgp_change(
        &self,
        cert: &pgp::Cert,
        trust: Trust,
        prov: Provenance,
        file: &str,
        pending: &mut HashMap<String, sequoia_openpgp::Cert>,
    ) -> Result<Change> {
        use sequoia_openpgp::serialize::SerializeInto;
        let fpr = cert.fingerprint();
        let mut merged = cert.as_sequoia().clone();
        if let Some(earlier) = pending.remove(&fpr) {
            merged = earlier.merge_public(merged).map_err(|e| Error::Import {
                file: file.to_string(),
                reason: format!("OpenPGP merge: {e}"),
            })?;
        } else if let Some(old) = self.store.pgp(&fpr)?
            && let Ok(mut olds) = pgp::Cert::load_all(&old.data, &self.limits)
            && let Some(old) = olds.pop()
        {
            merged = old
                .as_sequoia()
                .clone()
                .merge_public(merged)
                .map_err(|e| Error::Import {
                    file: file.to_string(),
                    reason: format!("OpenPGP merge: {e}"),
                })?;
        }
        let data = merged.to_vec().map_err(|e| Error::Import {
            file: file.to_string(),
            reason: format!("OpenPGP: {e}"),
        })?;
        let addresses = merged
            .userids()
            .filter_map(|ua| ua.userid().email().ok().flatten().map(str::to_owned))
            .collect();
        pending.insert(fpr.clone(), merged);
        Ok(Change::Pgp(
            PgpRecord {
                fingerprint: fpr,
                data,
                addresses,
                trust,
                has_secret: false,
            },
            prov,
        ))
    }

    fn crl_change(
        &self,
        crl: &Crl,
        certs_seen: &[Certificate],
        file: &str,
        by: &str,
        now: i64,
    ) -> Result<Change> {
        let err = |reason: String| Error::Import {
            file: file.to_string(),
            reason,
        };
        // The CRL's signature is checked once, here, against an issuer we hold.
        let mut issuers: Vec<Certificate> = certs_seen.to_vec();
        for rec in self.store.authorities()? {
            if let Ok(c) = Certificate::from_der(&rec.der) {
                issuers.push(c);
            }
        }
        let issuer_name = crl.issuer();
        let mut found_issuer = false;
        let mut verified = false;
        for c in issuers.iter().filter(|c| c.subject() == issuer_name) {
            found_issuer = true;
            if crl.verify_signature(c).unwrap_or(false) {
                verified = true;
                break;
            }
        }
        if !found_issuer {
            return Err(err(format!(
                "CRL of \"{issuer_name}\": the issuer certificate is not in the store"
            )));
        }
        if !verified {
            return Err(err(format!(
                "CRL of \"{issuer_name}\": the signature does not verify with the issuer's key"
            )));
        }
        Ok(Change::Crl(
            CrlRecord {
                issuer: issuer_name,
                der: crl.der().to_vec(),
                this_update: unix(crl.this_update()),
                next_update: crl.next_update().map(unix),
            },
            Provenance {
                source: format!("import:{file}"),
                by: by.to_string(),
                at: now,
            },
        ))
    }

    /// Trust anchors, intermediates and CRLs, parsed once per store generation.
    fn authorities(&self) -> Result<Arc<Authorities>> {
        let generation = self.store.generation()?;
        let mut guard = self
            .authorities
            .lock()
            .map_err(|_| Error::Backend("cache poisoned".into()))?;
        if let Some(a) = guard.as_ref()
            && a.generation == generation
        {
            return Ok(a.clone());
        }
        let mut anchors = Vec::new();
        let mut intermediates = Vec::new();
        let mut by_id = HashMap::new();
        for rec in self.store.authorities()? {
            let Ok(c) = Certificate::from_der(&rec.der) else {
                continue;
            };
            let anchor = rec.trust == Trust::Anchor;
            by_id.insert(rec.id.clone(), (c.clone(), anchor));
            if anchor {
                anchors.push(c);
            } else {
                intermediates.push(c);
            }
        }
        let mut trust = TrustStore::new(anchors);
        trust.add_intermediates(intermediates);
        let crls: Vec<Crl> = self
            .store
            .crls()?
            .iter()
            .filter_map(|r| Crl::from_der(&r.der, &self.limits).ok())
            .collect();
        let a = Arc::new(Authorities {
            generation,
            trust,
            crls,
            by_id,
        });
        *guard = Some(a.clone());
        Ok(a)
    }

    /// The trust anchors and intermediates of the store, for verifying signatures.
    pub fn trust_store(&self) -> Result<TrustStore> {
        Ok(self.authorities()?.trust.clone())
    }

    /// Find the certificate to encrypt to `address` at time `at` (see the crate docs for the
    /// rules). Every candidate comes back with its verdict.
    pub fn lookup_smime(&self, address: &str, at: SystemTime) -> Result<SmimeLookup> {
        let auth = self.authorities()?;
        let mut usable: Vec<Usable> = Vec::new();
        let mut rejected = Vec::new();
        for rec in self.store.certificates_by_address(&index_key(address))? {
            let mut cand = Candidate {
                id: rec.id.clone(),
                subject: rec.subject.clone(),
                addresses: rec.addresses.clone(),
                trust: rec.trust,
                not_after: Some(rec.not_after),
                has_key: rec.has_key,
                verdict: Ok(()),
            };
            match check_recipient(&rec, address, at, &auth) {
                Ok((cert, chain)) => {
                    let rank = (rec.not_before, strength(&cert));
                    usable.push((cand, cert, chain, rank));
                }
                Err(r) => {
                    cand.verdict = Err(r);
                    rejected.push(cand);
                }
            }
        }
        // newest first, then strongest, then by id for a stable answer
        usable.sort_by(|a, b| b.3.cmp(&a.3).then_with(|| a.0.id.cmp(&b.0.id)));
        rejected.sort_by(|a, b| a.id.cmp(&b.id));
        let selected = usable.first().map(|u| (u.1.clone(), u.2.clone()));
        let mut candidates: Vec<Candidate> = usable.into_iter().map(|u| u.0).collect();
        candidates.extend(rejected);
        Ok(SmimeLookup {
            address: address.to_string(),
            selected,
            candidates,
        })
    }

    /// Find the OpenPGP certificate to encrypt to `address` at `at`: one with a valid,
    /// unrevoked User ID for the address and a valid encryption subkey. Higher trust first,
    /// then the newest.
    pub fn lookup_pgp(&self, address: &str, at: SystemTime) -> Result<PgpLookup> {
        self.lookup_pgp_trusted(address, at, true)
    }

    /// [`lookup_pgp`](Self::lookup_pgp), with keys of [`Trust::Autocrypt`] used only when
    /// `autocrypt` is true (otherwise they are candidates rejected with
    /// [`Rejection::AutocryptOnly`]).
    pub fn lookup_pgp_trusted(
        &self,
        address: &str,
        at: SystemTime,
        autocrypt: bool,
    ) -> Result<PgpLookup> {
        let mut usable: Vec<(Candidate, pgp::Cert, (Trust, i64))> = Vec::new();
        let mut rejected = Vec::new();
        // Autocrypt Level 1 §2.5: the peer's key is the one of its latest Autocrypt header,
        // else of its latest gossip; other keys learnt from Autocrypt are out of date.
        let autocrypt_key = match self.autocrypt_peer(AutocryptSource::Header, address)? {
            Some(p) => Some(p),
            None => self.autocrypt_peer(AutocryptSource::Gossip, address)?,
        }
        .map(|p| p.fingerprint);
        for rec in self.store.pgp_by_address(&index_key(address))? {
            let mut cand = Candidate {
                id: rec.fingerprint.clone(),
                subject: String::new(),
                addresses: rec.addresses.clone(),
                trust: rec.trust,
                not_after: None,
                has_key: rec.has_secret,
                verdict: Ok(()),
            };
            let cert = match pgp::Cert::load_all(&rec.data, &self.limits) {
                Ok(mut v) if v.len() == 1 => v.remove(0),
                Ok(_) => {
                    cand.verdict = Err(Rejection::Malformed("not one certificate".into()));
                    rejected.push(cand);
                    continue;
                }
                Err(e) => {
                    cand.verdict = Err(Rejection::Malformed(e.to_string()));
                    rejected.push(cand);
                    continue;
                }
            };
            cand.subject = cert
                .as_sequoia()
                .userids()
                .next()
                .map(|u| String::from_utf8_lossy(u.userid().value()).into_owned())
                .unwrap_or_default();
            if !cert.has_address(address) {
                cand.verdict = Err(Rejection::WrongAddress(format!(
                    "User IDs are for {}",
                    cert.addresses().join(", ")
                )));
                rejected.push(cand);
                continue;
            }
            if rec.trust == Trust::Autocrypt && !autocrypt {
                cand.verdict = Err(Rejection::AutocryptOnly);
                rejected.push(cand);
                continue;
            }
            if rec.trust == Trust::Autocrypt
                && let Some(current) = &autocrypt_key
                && *current != rec.fingerprint
            {
                cand.verdict = Err(Rejection::AutocryptReplaced(current.clone()));
                rejected.push(cand);
                continue;
            }
            match cert.encryption_keys_for(Some(address), at) {
                Ok(_) => {
                    let created = unix(cert.as_sequoia().primary_key().key().creation_time());
                    let rank = (rec.trust, created);
                    usable.push((cand, cert, rank));
                }
                Err(e) => {
                    cand.verdict = Err(Rejection::NoEncryptionKey(e.to_string()));
                    rejected.push(cand);
                }
            }
        }
        usable.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.id.cmp(&b.0.id)));
        rejected.sort_by(|a, b| a.id.cmp(&b.id));
        let selected = usable.first().map(|u| u.1.clone());
        let mut candidates: Vec<Candidate> = usable.into_iter().map(|u| u.0).collect();
        candidates.extend(rejected);
        Ok(PgpLookup {
            address: address.to_string(),
            selected,
            candidates,
        })
    }

    /// The private key of a stored certificate, unsealed.
    pub fn private_key(&self, cert_id: &str) -> Result<Option<PrivateKey>> {
        let Some(sealed) = self.store.sealed_key(cert_id)? else {
            return Ok(None);
        };
        let pkcs8 = self
            .sealer()?
            .open(&sealed.sealed, key_aad(cert_id, KeyKind::Smime).as_bytes())?;
        PrivateKey::from_pkcs8_der(&pkcs8, &self.limits)
            .map(Some)
            .map_err(|_| Error::Locked)
    }

    /// The identity (key, certificate, chain up to the anchor) of a stored certificate that
    /// has its key.
    pub fn identity(&self, cert_id: &str) -> Result<Option<Identity>> {
        let Some(rec) = self.store.certificate(cert_id)? else {
            return Ok(None);
        };
        let Some(key) = self.private_key(cert_id)? else {
            return Ok(None);
        };
        let cert = Certificate::from_der(&rec.der).map_err(|e| Error::Backend(e.to_string()))?;
        let auth = self.authorities()?;
        let path = smime::cert::build_path(&cert, &[], &auth.trust);
        let chain = path.chain.into_iter().skip(1).collect();
        Identity::new(key, cert, chain)
            .map(Some)
            .map_err(|_| Error::Locked)
    }

    /// The OpenPGP secret key with this fingerprint, unsealed (`passphrase` for keys that were
    /// imported locked).
    pub fn pgp_secret_key(
        &self,
        fingerprint: &str,
        passphrase: Option<&SecretString>,
    ) -> Result<Option<pgp::SecretKey>> {
        let Some(sealed) = self.store.sealed_key(fingerprint)? else {
            return Ok(None);
        };
        let tsk = self.sealer()?.open(
            &sealed.sealed,
            key_aad(fingerprint, KeyKind::Pgp).as_bytes(),
        )?;
        pgp::SecretKey::load(&tsk, passphrase, &self.limits)
            .map(Some)
            .map_err(|_| Error::Locked)
    }

    /// Make the stored identity `cert_id` the signing identity of every sender in `domain`
    /// that has none of its own.
    pub fn set_domain_identity(&self, domain: &str, cert_id: &str) -> Result<()> {
        if self.store.sealed_key(cert_id)?.is_none() {
            return Err(Error::Backend(format!(
                "no private key for certificate {cert_id}"
            )));
        }
        // MetaIfAbsent would keep an old value: a domain identity is replaced by removing and
        // setting in one batch is not expressible, so the key includes nothing but the domain
        // and the first setting wins until a later schema adds replacement.
        self.store.apply(Batch {
            changes: vec![Change::MetaIfAbsent(
                format!("{META_DOMAIN}{}", domain.to_ascii_lowercase()),
                cert_id.as_bytes().to_vec(),
            )],
        })?;
        Ok(())
    }

    /// Our signing identity for `sender` at `at`: a certificate with its private key for that
    /// address (valid, signing key usage, emailProtection, newest first), else the domain-wide
    /// identity of the sender's domain.
    pub fn signing_identity(&self, sender: &str, at: SystemTime) -> Result<Option<Identity>> {
        let mut own: Vec<CertRecord> = self
            .store
            .certificates_by_address(&index_key(sender))?
            .into_iter()
            .filter(|r| r.has_key && !r.is_ca)
            .collect();
        own.sort_by_key(|r| std::cmp::Reverse(r.not_before));
        for rec in own {
            let Ok(cert) = Certificate::from_der(&rec.der) else {
                continue;
            };
            if cert.has_email(sender)
                && cert.is_valid_at(at)
                && smime::cert::check_signing_key_usage(&cert).is_ok()
                && smime::cert::check_email_eku(&cert).is_ok()
            {
                return self.identity(&rec.id);
            }
        }
        let Some((_, domain)) = sender.rsplit_once('@') else {
            return Ok(None);
        };
        match self
            .store
            .meta(&format!("{META_DOMAIN}{}", domain.to_ascii_lowercase()))?
        {
            Some(id) => self.identity(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// Certificates whose notAfter falls within `days` days of `now` (not those already
    /// expired), soonest first.
    pub fn expiring(&self, days: u32, now: SystemTime) -> Result<Vec<CertRecord>> {
        let from = unix(now);
        let to = unix(now + Duration::from_secs(u64::from(days) * 86_400));
        self.store.certificates_expiring(from, to)
    }

    /// Learn certificates from an inbound message: the signer certificate and chain of an
    /// S/MIME signature that verifies against the store's trust anchors (never from one that
    /// does not), OpenPGP keys attached as `application/pgp-keys` and the `Autocrypt:` header,
    /// when their User ID is the sender's address. Stored as [`Trust::Unverified`]
    /// ([`Trust::Autocrypt`] for the header); harvesting the same message again changes
    /// nothing.
    pub fn harvest_message(&self, raw: &[u8], at: SystemTime) -> Result<HarvestReport> {
        let limits = &self.limits;
        let entity = sealgate_mime::Entity::parse(raw, limits)
            .map_err(|e| Error::Backend(format!("harvest: {e}")))?;
        let source = match entity.header("Message-ID") {
            Some(id) if !id.trim().is_empty() => format!("harvest:{}", id.trim()),
            _ => format!(
                "harvest:sha256:{}",
                hex_lower(&smime::DigestAlgorithm::Sha256.digest(raw))
            ),
        };
        let prov = Provenance {
            source,
            by: "harvest".into(),
            at: unix(SystemTime::now()),
        };
        let senders: Vec<String> = entity
            .headers()
            .iter()
            .filter(|h| h.is_named("From"))
            .flat_map(|h| sealgate_mime::mailboxes(h.raw_value()))
            .collect();
        let entity_date = entity.header("Date").map(|d| d.trim().to_owned());
        let mut report = HarvestReport::default();
        let mut batch = Batch::default();

        if let Ok(smime::SmimeKind::DetachedSigned | smime::SmimeKind::OpaqueSigned) =
            smime::classify(raw, limits)
        {
            {
                let auth = self.authorities()?;
                let trust = &auth.trust;
                match smime::verify_message(raw, trust, Some(at), limits) {
                    Ok(v) if v.verification.is_valid() => {
                        for s in &v.verification.signers {
                            // The chain is the path verify_message checked: kept for the leaf.
                            let ids: Vec<String> = s.chain.iter().map(certificate_id).collect();
                            for (i, c) in s.chain.iter().enumerate() {
                                if trust.anchors().iter().any(|a| a == c) {
                                    continue;
                                }
                                report.certificates.push(certificate_id(c));
                                let mut rec = cert_record(c, Trust::Unverified);
                                if i == 0 {
                                    rec.chain = ids.clone();
                                }
                                batch.changes.push(Change::Certificate(rec, prov.clone()));
                            }
                        }
                    }
                    Ok(v) => {
                        let why = v
                            .verification
                            .signers
                            .iter()
                            .flat_map(|s| s.checks.iter())
                            .find(|c| !c.passed)
                            .map(|c| format!("{:?}: {}", c.name, c.detail))
                            .unwrap_or_else(|| "no signer".into());
                        report
                            .skipped
                            .push(format!("S/MIME signature does not verify ({why})"));
                    }
                    Err(e) => report
                        .skipped
                        .push(format!("S/MIME signature does not verify ({e})")),
                }
            }
        }

        // OpenPGP: attached keys and Autocrypt, only for the sender's own address (a key for
        // someone else in a message is an attempt to plant it).
        // With an Autocrypt key, the change to its peer state (made only if the key is taken).
        let mut pgp_found: Vec<(pgp::Cert, Trust, Option<Change>)> = Vec::new();
        let mut pending = HashMap::new();
        let mut stack = vec![entity];
        let mut seen_parts = 0usize;
        while let Some(e) = stack.pop() {
            seen_parts += 1;
            if seen_parts > limits.max_parts {
                break;
            }
            let ct = e.content_type();
            if ct.is_multipart() {
                stack.extend(
                    e.parts(limits)
                        .map_err(|e| Error::Backend(format!("harvest: {e}")))?,
                );
            } else if ct.mime_type == "application/pgp-keys" {
                match e
                    .decoded_body(limits)
                    .map_err(|e| e.to_string())
                    .and_then(|b| pgp::Cert::load_all(&b, limits).map_err(|e| e.to_string()))
                {
                    Ok(certs) => {
                        pgp_found.extend(certs.into_iter().map(|c| (c, Trust::Unverified, None)))
                    }
                    Err(e) => report
                        .skipped
                        .push(format!("application/pgp-keys part: {e}")),
                }
            }
        }
        // Autocrypt Level 1 §2.3: exactly one valid header for the single From address.
        let autocrypt_values: Vec<String> = sealgate_mime::Entity::parse(raw, limits)
            .map(|e| {
                e.headers()
                    .iter()
                    .filter(|h| h.is_named("Autocrypt"))
                    .map(|h| h.value())
                    .collect()
            })
            .unwrap_or_default();
        if !autocrypt_values.is_empty() {
            if let [from] = senders.as_slice() {
                let (chosen, why) = crate::autocrypt::select_for_sender(
                    autocrypt_values.iter().map(String::as_str),
                    from,
                    limits,
                );
                report.skipped.extend(why);
                if let Some(h) = chosen {
                    let effective = effective_date(&entity_date, at);
                    match pgp::Cert::load_all(&h.keydata, limits) {
                        Ok(mut certs) if certs.len() == 1 => {
                            let cert = certs.remove(0);
                            match self.autocrypt_update(
                                AutocryptSource::Header,
                                from,
                                effective,
                                &cert,
                            )? {
                                Some(change) => {
                                    pgp_found.push((cert, Trust::Autocrypt, Some(change)));
                                }
                                None => report.skipped.push(format!(
                                    "Autocrypt header: older than the last one seen from {from}"
                                )),
                            }
                        }
                        Ok(_) => report.skipped.push(
                            "Autocrypt header: keydata must hold exactly one certificate".into(),
                        ),
                        Err(e) => report.skipped.push(format!("Autocrypt header: {e}")),
                    }
                }
            } else {
                report
                    .skipped
                    .push("Autocrypt header ignored: From is not exactly one address".into());
            }
        }
        for (cert, trust, peer) in pgp_found {
            let sender_ok = senders.iter().any(|s| cert.has_address(s));
            if !sender_ok {
                report.skipped.push(format!(
                    "OpenPGP key {} is not for the sender",
                    cert.fingerprint()
                ));
                continue;
            }
            batch.changes.extend(peer);
            report.pgp_certificates.push(cert.fingerprint());
            batch.changes.push(self.pgp_change(
                &cert,
                trust,
                prov.clone(),
                &prov.source,
                &mut pending,
            )?);
        }
        if !batch.changes.is_empty() {
            self.store.apply(batch)?;
        }
        Ok(report)
    }

    /// Learn OpenPGP keys from the `Autocrypt-Gossip:` headers of a message part we decrypted
    /// (Autocrypt Level 1 §2.4): only call it with the plaintext of an encrypted message,
    /// never with cleartext mail, where anyone could write such a header. The messages the
    /// decryptors return keep the outer (clear) header fields, so drop `Autocrypt-Gossip`
    /// from the outer header before decrypting (`sealgate_mime::rewrite_header`), as the
    /// gateway does, or pass only the decrypted entity. A gossip header is
    /// taken only for one of `recipients` (the To and Cc addresses of that message), with a
    /// key whose User ID is that address, and stored as [`Trust::Autocrypt`] (a key already
    /// stored with higher trust keeps it). Malformed headers are skipped with the reason.
    pub fn harvest_gossip(
        &self,
        decrypted: &[u8],
        recipients: &[String],
        source: &str,
    ) -> Result<HarvestReport> {
        let limits = &self.limits;
        let entity = sealgate_mime::Entity::parse(decrypted, limits)
            .map_err(|e| Error::Backend(format!("harvest gossip: {e}")))?;
        let effective = effective_date(
            &entity.header("Date").map(|d| d.trim().to_owned()),
            SystemTime::now(),
        );
        let prov = Provenance {
            source: format!("gossip:{source}"),
            by: "harvest".into(),
            at: unix(SystemTime::now()),
        };
        let mut report = HarvestReport::default();
        let mut batch = Batch::default();
        let mut pending = HashMap::new();
        for h in entity
            .headers()
            .iter()
            .filter(|h| h.is_named("Autocrypt-Gossip"))
            .take(limits.max_recipients)
        {
            let g = match crate::autocrypt::parse(&h.value(), limits) {
                Ok(g) => g,
                Err(e) => {
                    report.skipped.push(format!("gossip: {e}"));
                    continue;
                }
            };
            if !recipients
                .iter()
                .any(|r| smime::keys::addresses_equal(r, &g.addr))
            {
                report
                    .skipped
                    .push(format!("gossip for {}, not a recipient", g.addr));
                continue;
            }
            let cert = match pgp::Cert::load_all(&g.keydata, limits) {
                Ok(mut c) if c.len() == 1 => c.remove(0),
                Ok(_) => {
                    report
                        .skipped
                        .push(format!("gossip for {}: not one certificate", g.addr));
                    continue;
                }
                Err(e) => {
                    report.skipped.push(format!("gossip for {}: {e}", g.addr));
                    continue;
                }
            };
            if !cert.has_address(&g.addr) {
                report.skipped.push(format!(
                    "gossip key {} is not for {}",
                    cert.fingerprint(),
                    g.addr
                ));
                continue;
            }
            match self.autocrypt_update(AutocryptSource::Gossip, &g.addr, effective, &cert)? {
                Some(change) => batch.changes.push(change),
                None => {
                    report.skipped.push(format!(
                        "gossip for {}: older than the last gossip seen",
                        g.addr
                    ));
                    continue;
                }
            }
            report.pgp_certificates.push(cert.fingerprint());
            batch.changes.push(self.pgp_change(
                &cert,
                Trust::Autocrypt,
                prov.clone(),
                &prov.source,
                &mut pending,
            )?);
        }
        if !batch.changes.is_empty() {
            self.store.apply(batch)?;
        }
        Ok(report)
    }
}

/// Where an Autocrypt key came from: the sender's own `Autocrypt:` header, or gossip about
/// a recipient inside an encrypted message.
#[derive(Clone, Copy, Debug)]
enum AutocryptSource {
    Header,
    Gossip,
}

/// The Autocrypt peer state (Autocrypt Level 1 §2.3, §2.4) of one address and source: the
/// effective date of the newest message that gave a key, and that key. Kept in the store's
/// metadata (`autocrypt-peer:header:<addr>` = `"<unix seconds> <fingerprint>"`), so every node
/// on a shared store sees the same state.
struct AutocryptPeer {
    at: i64,
    fingerprint: String,
}

fn autocrypt_peer_key(source: AutocryptSource, address: &str) -> String {
    let kind = match source {
        AutocryptSource::Header => "header",
        AutocryptSource::Gossip => "gossip",
    };
    format!("autocrypt-peer:{kind}:{}", index_key(address))
}

/// Autocrypt's effective date of a message: its Date, or `now` when that is later or the field
/// is missing or unreadable.
fn effective_date(date: &Option<String>, now: SystemTime) -> i64 {
    let now = unix(now);
    date.as_deref()
        .and_then(sealgate_mime::parse_date)
        .map_or(now, |d| d.min(now))
}

impl Keyring {
    fn autocrypt_peer(
        &self,
        source: AutocryptSource,
        address: &str,
    ) -> Result<Option<AutocryptPeer>> {
        let Some(value) = self.store.meta(&autocrypt_peer_key(source, address))? else {
            return Ok(None);
        };
        Ok(std::str::from_utf8(&value)
            .ok()
            .and_then(|t| t.split_once(' '))
            .and_then(|(at, fpr)| {
                Some(AutocryptPeer {
                    at: at.parse().ok()?,
                    fingerprint: fpr.to_owned(),
                })
            }))
    }

    /// The metadata change that makes `cert` the peer's Autocrypt key as of `effective`, or
    /// `None` when a message with a later effective date already gave one (a message delivered
    /// out of order must not bring an old key back).
    fn autocrypt_update(
        &self,
        source: AutocryptSource,
        address: &str,
        effective: i64,
        cert: &pgp::Cert,
    ) -> Result<Option<Change>> {
        if let Some(peer) = self.autocrypt_peer(source, address)?
            && effective < peer.at
        {
            return Ok(None);
        }
        Ok(Some(Change::Meta(
            autocrypt_peer_key(source, address),
            format!("{effective} {}", cert.fingerprint()).into_bytes(),
        )))
    }
}

fn unlock(store: &dyn KeyStore, secret: &StoreSecret) -> Result<Sealer> {
    let kdf = match store.meta(META_KDF)? {
        Some(k) => k,
        None => {
            let mut salt = [0u8; 16];
            aws_lc_rs::rand::fill(&mut salt).map_err(|_| Error::Backend("no randomness".into()))?;
            let kdf = encode_kdf(&salt);
            let sealer = Sealer::derive(secret, &kdf)?;
            let check = sealer.key_check()?;
            // If another process created the store meanwhile, its values win and are re-read.
            store.apply(Batch {
                changes: vec![
                    Change::MetaIfAbsent(META_KDF.into(), kdf),
                    Change::MetaIfAbsent(META_KEY_CHECK.into(), check),
                ],
            })?;
            store
                .meta(META_KDF)?
                .ok_or_else(|| Error::Backend("store salt missing".into()))?
        }
    };
    let sealer = Sealer::derive(secret, &kdf)?;
    let check = store
        .meta(META_KEY_CHECK)?
        .ok_or_else(|| Error::Backend("store key check missing".into()))?;
    sealer.verify_key_check(&check)?;
    Ok(sealer)
}

fn key_aad(owner: &str, kind: KeyKind) -> String {
    match kind {
        KeyKind::Smime => format!("key:smime:{owner}"),
        KeyKind::Pgp => format!("key:pgp:{owner}"),
    }
}

fn import_err(p: &Path, reason: &str) -> Error {
    Error::Import {
        file: p.display().to_string(),
        reason: reason.to_string(),
    }
}

fn locked_import(file: &str) -> Error {
    Error::Import {
        file: file.to_string(),
        reason: "holds a private key, and the store is opened without its passphrase".into(),
    }
}

fn is_ca(c: &Certificate) -> bool {
    matches!(
        c.x509()
            .tbs_certificate()
            .get_extension::<x509_cert::ext::pkix::BasicConstraints>(),
        Ok(Some((_, bc))) if bc.ca
    )
}

fn imported_trust(c: &Certificate, anchors: bool) -> Trust {
    if anchors && is_ca(c) {
        Trust::Anchor
    } else {
        Trust::Imported
    }
}

pub(crate) fn cert_record(c: &Certificate, trust: Trust) -> CertRecord {
    let (nb, na) = c.validity();
    CertRecord {
        id: certificate_id(c),
        der: c.der().to_vec(),
        subject: c.subject(),
        addresses: c.email_addresses(),
        is_ca: is_ca(c),
        trust,
        not_before: unix(nb),
        not_after: unix(na),
        has_key: false,
        chain: Vec::new(),
    }
}

/// Security strength in bits of the certificate's key (NIST SP 800-57), for preferring the
/// stronger of two otherwise equal certificates.
fn strength(c: &Certificate) -> u32 {
    match c.public_key() {
        Ok(smime::PublicKey::Rsa { bits, .. }) => match bits {
            b if b >= 15360 => 256,
            b if b >= 7680 => 192,
            b if b >= 3072 => 128,
            b if b >= 2048 => 112,
            _ => 80,
        },
        Ok(smime::PublicKey::Ec { curve, .. }) => match curve {
            smime::Curve::P256 => 128,
            _ => 192,
        },
        _ => 0,
    }
}

fn fmt_time(t: i64) -> String {
    sealgate_mime::format_rfc3339(t)
}

/// RFC 3339 UTC form of seconds since the epoch (as `list`, `lookup` and `expiring` print).
pub fn format_time(t: i64) -> String {
    fmt_time(t)
}

/// The recipient checks, in order; the first failure is the reason.
fn check_recipient(
    rec: &CertRecord,
    address: &str,
    at: SystemTime,
    auth: &Authorities,
) -> std::result::Result<(Certificate, Vec<Certificate>), Rejection> {
    use x509_cert::ext::pkix::KeyUsage;
    let cert = Certificate::from_der(&rec.der).map_err(|e| Rejection::Malformed(e.to_string()))?;
    if !cert.has_email(address) {
        return Err(Rejection::WrongAddress(format!(
            "the certificate is for {} (the local part must match exactly)",
            cert.email_addresses().join(", ")
        )));
    }
    if rec.is_ca {
        return Err(Rejection::CaCertificate);
    }
    let now = unix(at);
    if now < rec.not_before {
        return Err(Rejection::NotYetValid(format!(
            "valid from {}",
            fmt_time(rec.not_before)
        )));
    }
    if now > rec.not_after {
        return Err(Rejection::Expired(format!(
            "expired on {}",
            fmt_time(rec.not_after)
        )));
    }
    let public = cert
        .public_key()
        .map_err(|e| Rejection::Malformed(e.to_string()))?;
    if matches!(public, smime::PublicKey::MlDsa { .. }) {
        // RFC 9881 §5: an ML-DSA key signs only, whatever its keyUsage says.
        return Err(Rejection::KeyUsage(
            "the certificate has an ML-DSA key, which cannot encrypt".into(),
        ));
    }
    match cert.x509().tbs_certificate().get_extension::<KeyUsage>() {
        Ok(None) => {}
        Ok(Some((_, ku))) => {
            let ok = match public {
                smime::PublicKey::Rsa { .. } | smime::PublicKey::MlKem { .. } => {
                    ku.key_encipherment()
                }
                smime::PublicKey::Ec { .. } => ku.key_agreement(),
                // signing-only keys (ML-DSA) were refused above
                _ => false,
            };
            if !ok {
                return Err(Rejection::KeyUsage(
                    "keyUsage allows neither keyEncipherment (RSA) nor keyAgreement (EC)".into(),
                ));
            }
        }
        Err(e) => return Err(Rejection::KeyUsage(format!("bad keyUsage extension: {e}"))),
    }
    smime::cert::check_email_eku(&cert).map_err(Rejection::ExtendedKeyUsage)?;
    let chain = match stored_path(&cert, rec, auth) {
        Some(chain) => chain,
        None => {
            let path = smime::cert::build_path(&cert, &[], &auth.trust);
            path.status.map_err(Rejection::Untrusted)?;
            path.chain
        }
    };
    smime::cert::chain_valid_at(&chain, at).map_err(Rejection::Untrusted)?;
    // Every certificate below the anchor is checked against the CRLs of its issuer.
    for c in chain.iter().take(chain.len().saturating_sub(1)) {
        if let Some(crl) = auth.crls.iter().find(|crl| crl.issuer() == c.issuer())
            && crl.is_revoked(c)
        {
            return Err(Rejection::Revoked(format!(
                "\"{}\" (serial {}) is on the CRL of \"{}\"",
                c.subject(),
                c.serial_hex(),
                crl.issuer()
            )));
        }
    }
    Ok((cert, chain))
}

/// The path checked when `rec` was stored, if every certificate on it is still in the store
/// and its last one is still a trust anchor.
fn stored_path(
    cert: &Certificate,
    rec: &CertRecord,
    auth: &Authorities,
) -> Option<Vec<Certificate>> {
    let (last, middle) = rec.chain.get(1..)?.split_last()?;
    let mut chain = Vec::with_capacity(rec.chain.len());
    chain.push(cert.clone());
    for id in middle {
        chain.push(auth.by_id.get(id)?.0.clone());
    }
    let (anchor, is_anchor) = auth.by_id.get(last)?;
    if !is_anchor {
        return None;
    }
    chain.push(anchor.clone());
    Some(chain)
}

#[cfg(test)]
#[path = "keyring_tests.rs"]
mod tests;
