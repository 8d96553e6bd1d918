//! Store first, directories second: [`Keyring::lookup_or_fetch_smime`] and
//! [`Keyring::lookup_or_fetch_pgp`] ask the directories only when the store has nothing usable,
//! and keep what they return in the store, with the directory's name as provenance and
//! [`Trust::Unverified`], so that the next lookup is answered locally.
//!
//! Only material for the address asked is kept: a certificate whose SAN/emailAddress (X.509)
//! or User IDs (OpenPGP) do not name it is dropped, so a directory cannot plant keys for other
//! people. What is kept is still subject to every lookup rule (an S/MIME certificate from LDAP
//! must chain to one of the store's trust anchors to be used).

use std::collections::HashMap;
use std::time::SystemTime;

use sealgate_pgp as pgp;
use sealgate_smime::Certificate;

use super::KeyDirectory;
use crate::keyring::{cert_record, unix};
use crate::store::{Batch, Change};
use crate::{KeyKind, Keyring, PgpLookup, Provenance, Result, SmimeLookup, Trust};

/// What the directories did for one lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// Directories asked, in order, with how many entries each gave that were stored.
    pub stored: Vec<(String, usize)>,
    /// Directories that failed, with why (the lookup goes on with the next one).
    pub errors: Vec<(String, String)>,
    /// Material returned but not stored, and why.
    pub skipped: Vec<String>,
}

impl Keyring {
    /// [`Keyring::lookup_smime`]; when nothing is usable, ask `directories` in order (stopping
    /// at the first that yields a usable certificate), store what they return for `address`,
    /// and look up again.
    pub fn lookup_or_fetch_smime(
        &self,
        address: &str,
        at: SystemTime,
        directories: &[&dyn KeyDirectory],
    ) -> Result<(SmimeLookup, FetchReport)> {
        let mut report = FetchReport::default();
        let mut lookup = self.lookup_smime(address, at)?;
        for dir in directories {
            if lookup.selected.is_some() {
                break;
            }
            if self.fetch_into_store(*dir, address, KeyKind::Smime, &mut report)? {
                lookup = self.lookup_smime(address, at)?;
            }
        }
        Ok((lookup, report))
    }

    /// [`Keyring::lookup_pgp`] with the same fall-back to `directories` (WKD, HKP).
    pub fn lookup_or_fetch_pgp(
        &self,
        address: &str,
        at: SystemTime,
        directories: &[&dyn KeyDirectory],
    ) -> Result<(PgpLookup, FetchReport)> {
        let mut report = FetchReport::default();
        let mut lookup = self.lookup_pgp(address, at)?;
        for dir in directories {
            if lookup.selected.is_some() {
                break;
            }
            if self.fetch_into_store(*dir, address, KeyKind::Pgp, &mut report)? {
                lookup = self.lookup_pgp(address, at)?;
            }
        }
        Ok((lookup, report))
    }

    /// Ask one directory and store what it returns for `address` in one batch. True if
    /// anything was stored. A directory error is recorded, not returned; a store error is.
    fn fetch_into_store(
        &self,
        dir: &dyn KeyDirectory,
        address: &str,
        kind: KeyKind,
        report: &mut FetchReport,
    ) -> Result<bool> {
        let name = dir.name();
        let material = match dir.fetch(address, kind) {
            Ok(m) => m,
            Err(e) => {
                report.errors.push((name, e.to_string()));
                return Ok(false);
            }
        };
        let prov = Provenance {
            source: name.clone(),
            by: name.clone(),
            at: unix(SystemTime::now()),
        };
        let limits = self.limits();
        let mut batch = Batch::default();
        // versions of one OpenPGP certificate within this batch merge (a keyring may repeat it)
        let mut pending = HashMap::new();
        for item in &material {
            match kind {
                KeyKind::Smime => match Certificate::load_all(item, limits) {
                    Ok(certs) => {
                        for c in certs {
                            if c.has_email(address) {
                                batch.changes.push(Change::Certificate(
                                    cert_record(&c, Trust::Unverified),
                                    prov.clone(),
                                ));
                            } else {
                                report.skipped.push(format!(
                                    "{name}: certificate \"{}\" is not for {address}",
                                    c.subject()
                                ));
                            }
                        }
                    }
                    Err(e) => report.skipped.push(format!("{name}: {e}")),
                },
                KeyKind::Pgp => match pgp::Cert::load_all(item, limits) {
                    Ok(certs) => {
                        for c in certs {
                            if c.has_address(address) {
                                batch.changes.push(self.pgp_change(
                                    &c,
                                    Trust::Unverified,
                                    prov.clone(),
                                    &name,
                                    &mut pending,
                                )?);
                            } else {
                                report.skipped.push(format!(
                                    "{name}: OpenPGP key {} is not for {address}",
                                    c.fingerprint()
                                ));
                            }
                        }
                    }
                    Err(e) => report.skipped.push(format!("{name}: {e}")),
                },
            }
        }
        let stored = batch.changes.len();
        report.stored.push((name, stored));
        if stored > 0 {
            self.store().apply(batch)?;
        }
        Ok(stored > 0)
    }
}
