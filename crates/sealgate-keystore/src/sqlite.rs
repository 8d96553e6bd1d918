//! The SQLite backend: one file, WAL journal, schema versioned by `PRAGMA user_version` with
//! forward-only migrations applied in one transaction at open.
//!
//! Every [`Batch`] is one `BEGIN IMMEDIATE ... COMMIT`: a process killed in the middle leaves
//! the previous state (SQLite's journal rolls the half-written transaction back at the next
//! open). `synchronous = FULL` so that a committed import survives a power cut too.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};
use crate::store::{
    Batch, BatchOutcome, CertRecord, Change, CrlRecord, KeyStore, PgpRecord, SealedKey, index_key,
};
use crate::{KeyKind, Provenance, Trust};

/// The migrations, in order; `user_version` is the number applied. Never edit one that has
/// shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
     CREATE TABLE certs (
        id TEXT PRIMARY KEY, der BLOB NOT NULL, subject TEXT NOT NULL, addresses TEXT NOT NULL,
        is_ca INTEGER NOT NULL, trust INTEGER NOT NULL,
        not_before INTEGER NOT NULL, not_after INTEGER NOT NULL);
     CREATE INDEX certs_not_after ON certs(not_after);
     CREATE INDEX certs_ca ON certs(is_ca, trust);
     CREATE TABLE cert_addresses (address TEXT NOT NULL, id TEXT NOT NULL,
        PRIMARY KEY (address, id)) WITHOUT ROWID;
     CREATE TABLE pgp_certs (fingerprint TEXT PRIMARY KEY, data BLOB NOT NULL,
        addresses TEXT NOT NULL, trust INTEGER NOT NULL);
     CREATE TABLE pgp_addresses (address TEXT NOT NULL, fingerprint TEXT NOT NULL,
        PRIMARY KEY (address, fingerprint)) WITHOUT ROWID;
     CREATE TABLE keys (owner TEXT PRIMARY KEY, kind INTEGER NOT NULL, sealed BLOB NOT NULL);
     CREATE TABLE crls (issuer TEXT PRIMARY KEY, der BLOB NOT NULL, this_update INTEGER NOT NULL,
        next_update INTEGER);
     CREATE TABLE provenance (entry TEXT NOT NULL, source TEXT NOT NULL, by TEXT NOT NULL,
        at INTEGER NOT NULL, PRIMARY KEY (entry, source)) WITHOUT ROWID;
     INSERT INTO meta (name, value) VALUES ('generation', 0);",
    // 2: the certification path checked at import, so that lookups need not verify
    // signatures again (see CertRecord::chain).
    "ALTER TABLE certs ADD COLUMN chain TEXT NOT NULL DEFAULT '';",
];

/// A key store in one SQLite file.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn db(e: rusqlite::Error) -> Error {
    Error::Backend(e.to_string())
}

fn trust_rank(t: Trust) -> i64 {
    match t {
        Trust::Autocrypt => 0,
        Trust::Unverified => 1,
        Trust::Imported => 2,
        Trust::Anchor => 3,
    }
}

fn trust_of(n: i64) -> Trust {
    match n {
        0 => Trust::Autocrypt,
        1 => Trust::Unverified,
        2 => Trust::Imported,
        _ => Trust::Anchor,
    }
}

fn kind_of(n: i64) -> KeyKind {
    if n == 1 { KeyKind::Pgp } else { KeyKind::Smime }
}

// Addresses are kept as one newline-separated column: an address cannot hold a newline.
fn join(addrs: &[String]) -> String {
    addrs.join("\n")
}

fn split(s: String) -> Vec<String> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split('\n').map(str::to_owned).collect()
    }
}

const CERT_COLS: &str = "c.id, c.der, c.subject, c.addresses, c.is_ca, c.trust, c.not_before, \
     c.not_after, EXISTS (SELECT 1 FROM keys k WHERE k.owner = c.id), c.chain";

fn cert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CertRecord> {
    Ok(CertRecord {
        id: r.get(0)?,
        der: r.get(1)?,
        subject: r.get(2)?,
        addresses: split(r.get(3)?),
        is_ca: r.get(4)?,
        trust: trust_of(r.get(5)?),
        not_before: r.get(6)?,
        not_after: r.get(7)?,
        has_key: r.get(8)?,
        chain: split(r.get(9)?),
    })
}

const PGP_COLS: &str = "p.fingerprint, p.data, p.addresses, p.trust, \
     EXISTS (SELECT 1 FROM keys k WHERE k.owner = p.fingerprint)";

fn pgp_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PgpRecord> {
    Ok(PgpRecord {
        fingerprint: r.get(0)?,
        data: r.get(1)?,
        addresses: split(r.get(2)?),
        trust: trust_of(r.get(3)?),
        has_secret: r.get(4)?,
    })
}

impl SqliteStore {
    /// Open (or create) the store at `path`, migrating its schema to the current version. A
    /// file from a newer Sealgate (a schema we do not know) is refused, not touched.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let conn = Connection::open(path).map_err(db)?;
        Self::setup(conn)
    }

    /// A store in a private in-memory SQLite database (tests of the SQL code itself).
    pub fn open_in_memory() -> Result<Self> {
        Self::setup(Connection::open_in_memory().map_err(db)?)
    }

    fn setup(mut conn: Connection) -> Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", true).map_err(db)?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db)?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(Error::Backend(format!(
                "the store has schema version {version}; this Sealgate knows up to {known}"
            )));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            tx.execute_batch(m).map_err(db)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| Error::Backend("store connection poisoned".into()))
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64> {
        self.conn()?
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db)
    }

    /// Run SQLite's `PRAGMA integrity_check`; `Ok(())` when the file is sound.
    pub fn integrity_check(&self) -> Result<()> {
        let r: String = self
            .conn()?
            .pragma_query_value(None, "integrity_check", |r| r.get(0))
            .map_err(db)?;
        if r == "ok" {
            Ok(())
        } else {
            Err(Error::Backend(format!("integrity check: {r}")))
        }
    }

    fn query<T>(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
        f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(sql).map_err(db)?;
        let rows = st.query_map(p, f).map_err(db)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
    }
}

fn add_provenance(tx: &rusqlite::Transaction<'_>, entry: &str, p: &Provenance) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO provenance (entry, source, by, at) VALUES (?1, ?2, ?3, ?4)",
    )
    .map_err(db)?
    .execute(params![entry, p.source, p.by, p.at])
    .map_err(db)?;
    Ok(())
}

fn apply_one(tx: &rusqlite::Transaction<'_>, c: &Change, out: &mut BatchOutcome) -> Result<()> {
    match c {
        Change::Certificate(rec, p) => {
            let n = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO certs (id, der, subject, addresses, is_ca, trust,
                     not_before, not_after, chain) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(db)?
                .execute(params![
                    rec.id,
                    rec.der,
                    rec.subject,
                    join(&rec.addresses),
                    rec.is_ca,
                    trust_rank(rec.trust),
                    rec.not_before,
                    rec.not_after,
                    join(&rec.chain)
                ])
                .map_err(db)?;
            if n == 1 {
                let mut st = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO cert_addresses (address, id) VALUES (?1, ?2)",
                    )
                    .map_err(db)?;
                for a in &rec.addresses {
                    st.execute(params![index_key(a), rec.id]).map_err(db)?;
                }
                out.added += 1;
            } else {
                tx.prepare_cached(
                    "UPDATE certs SET trust = max(trust, ?2),
                     chain = CASE WHEN chain = '' THEN ?3 ELSE chain END WHERE id = ?1",
                )
                .map_err(db)?
                .execute(params![rec.id, trust_rank(rec.trust), join(&rec.chain)])
                .map_err(db)?;
                out.merged += 1;
            }
            add_provenance(tx, &rec.id, p)?;
        }
        Change::Pgp(rec, p) => {
            let old: Option<i64> = tx
                .prepare_cached("SELECT trust FROM pgp_certs WHERE fingerprint = ?1")
                .map_err(db)?
                .query_row(params![rec.fingerprint], |r| r.get(0))
                .optional()
                .map_err(db)?;
            let trust = trust_rank(rec.trust).max(old.unwrap_or(0));
            if old.is_some() {
                out.merged += 1;
            } else {
                out.added += 1;
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO pgp_certs (fingerprint, data, addresses, trust)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(db)?
            .execute(params![
                rec.fingerprint,
                rec.data,
                join(&rec.addresses),
                trust
            ])
            .map_err(db)?;
            tx.prepare_cached("DELETE FROM pgp_addresses WHERE fingerprint = ?1")
                .map_err(db)?
                .execute(params![rec.fingerprint])
                .map_err(db)?;
            let mut st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO pgp_addresses (address, fingerprint) VALUES (?1, ?2)",
                )
                .map_err(db)?;
            for a in &rec.addresses {
                st.execute(params![index_key(a), rec.fingerprint])
                    .map_err(db)?;
            }
            add_provenance(tx, &rec.fingerprint, p)?;
        }
        Change::Key(k, p) => {
            let known: Option<i64> = tx
                .prepare_cached("SELECT 1 FROM keys WHERE owner = ?1")
                .map_err(db)?
                .query_row(params![k.owner], |r| r.get(0))
                .optional()
                .map_err(db)?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO keys (owner, kind, sealed) VALUES (?1, ?2, ?3)",
            )
            .map_err(db)?
            .execute(params![
                k.owner,
                matches!(k.kind, KeyKind::Pgp) as i64,
                k.sealed
            ])
            .map_err(db)?;
            if known.is_some() {
                out.merged += 1;
            } else {
                out.added += 1;
            }
            add_provenance(tx, &format!("key:{}", k.owner), p)?;
        }
        Change::Crl(c, p) => {
            let old: Option<i64> = tx
                .prepare_cached("SELECT this_update FROM crls WHERE issuer = ?1")
                .map_err(db)?
                .query_row(params![c.issuer], |r| r.get(0))
                .optional()
                .map_err(db)?;
            match old {
                Some(t) if t >= c.this_update => out.merged += 1,
                _ => {
                    if old.is_some() {
                        out.merged += 1;
                    } else {
                        out.added += 1;
                    }
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO crls (issuer, der, this_update, next_update)
                         VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(db)?
                    .execute(params![c.issuer, c.der, c.this_update, c.next_update])
                    .map_err(db)?;
                }
            }
            add_provenance(tx, &format!("crl:{}", c.issuer), p)?;
        }
        Change::MetaIfAbsent(name, value) => {
            tx.prepare_cached("INSERT OR IGNORE INTO meta (name, value) VALUES (?1, ?2)")
                .map_err(db)?
                .execute(params![name, value])
                .map_err(db)?;
        }
        Change::Meta(name, value) => {
            tx.prepare_cached("INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)")
                .map_err(db)?
                .execute(params![name, value])
                .map_err(db)?;
        }
    }
    Ok(())
}

impl KeyStore for SqliteStore {
    fn apply(&self, batch: Batch) -> Result<BatchOutcome> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let mut out = BatchOutcome::default();
        for c in &batch.changes {
            apply_one(&tx, c, &mut out)?;
        }
        tx.execute(
            "UPDATE meta SET value = value + 1 WHERE name = 'generation'",
            [],
        )
        .map_err(db)?;
        // Dropping `tx` on an error above rolls everything back.
        tx.commit().map_err(db)?;
        Ok(out)
    }

    fn certificates_by_address(&self, key: &str) -> Result<Vec<CertRecord>> {
        self.query(
            &format!(
                "SELECT {CERT_COLS} FROM cert_addresses a JOIN certs c ON c.id = a.id
                 WHERE a.address = ?1"
            ),
            params![key],
            cert_row,
        )
    }

    fn certificate(&self, id: &str) -> Result<Option<CertRecord>> {
        Ok(self
            .query(
                &format!("SELECT {CERT_COLS} FROM certs c WHERE c.id = ?1"),
                params![id],
                cert_row,
            )?
            .pop())
    }

    fn authorities(&self) -> Result<Vec<CertRecord>> {
        self.query(
            &format!("SELECT {CERT_COLS} FROM certs c WHERE c.is_ca = 1 OR c.trust = 3"),
            [],
            cert_row,
        )
    }

    fn certificates(&self) -> Result<Vec<CertRecord>> {
        self.query(
            &format!("SELECT {CERT_COLS} FROM certs c ORDER BY c.id"),
            [],
            cert_row,
        )
    }

    fn certificates_expiring(&self, from: i64, to: i64) -> Result<Vec<CertRecord>> {
        self.query(
            &format!(
                "SELECT {CERT_COLS} FROM certs c WHERE c.not_after BETWEEN ?1 AND ?2
                 ORDER BY c.not_after, c.id"
            ),
            params![from, to],
            cert_row,
        )
    }

    fn pgp_by_address(&self, key: &str) -> Result<Vec<PgpRecord>> {
        self.query(
            &format!(
                "SELECT {PGP_COLS} FROM pgp_addresses a JOIN pgp_certs p
                 ON p.fingerprint = a.fingerprint WHERE a.address = ?1"
            ),
            params![key],
            pgp_row,
        )
    }

    fn pgp(&self, fingerprint: &str) -> Result<Option<PgpRecord>> {
        Ok(self
            .query(
                &format!("SELECT {PGP_COLS} FROM pgp_certs p WHERE p.fingerprint = ?1"),
                params![fingerprint],
                pgp_row,
            )?
            .pop())
    }

    fn pgp_certificates(&self) -> Result<Vec<PgpRecord>> {
        self.query(
            &format!("SELECT {PGP_COLS} FROM pgp_certs p ORDER BY p.fingerprint"),
            [],
            pgp_row,
        )
    }

    fn sealed_key(&self, owner: &str) -> Result<Option<SealedKey>> {
        Ok(self
            .query(
                "SELECT owner, kind, sealed FROM keys WHERE owner = ?1",
                params![owner],
                |r| {
                    Ok(SealedKey {
                        owner: r.get(0)?,
                        kind: kind_of(r.get(1)?),
                        sealed: r.get(2)?,
                    })
                },
            )?
            .pop())
    }

    fn crls(&self) -> Result<Vec<CrlRecord>> {
        self.query(
            "SELECT issuer, der, this_update, next_update FROM crls ORDER BY issuer",
            [],
            |r| {
                Ok(CrlRecord {
                    issuer: r.get(0)?,
                    der: r.get(1)?,
                    this_update: r.get(2)?,
                    next_update: r.get(3)?,
                })
            },
        )
    }

    fn provenance(&self, id: &str) -> Result<Vec<Provenance>> {
        self.query(
            "SELECT source, by, at FROM provenance WHERE entry = ?1 ORDER BY at, source",
            params![id],
            |r| {
                Ok(Provenance {
                    source: r.get(0)?,
                    by: r.get(1)?,
                    at: r.get(2)?,
                })
            },
        )
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .query(
                "SELECT value FROM meta WHERE name = ?1",
                params![name],
                |r| r.get::<_, Vec<u8>>(0),
            )?
            .pop())
    }

    fn generation(&self) -> Result<u64> {
        let g: i64 = self
            .conn()?
            .prepare_cached("SELECT value FROM meta WHERE name = 'generation'")
            .map_err(db)?
            .query_row([], |r| r.get(0))
            .map_err(db)?;
        Ok(g as u64)
    }
}
