//! The PostgreSQL backend: one database shared by several gateway nodes.
//!
//! Same semantics as [`SqliteStore`](crate::SqliteStore) (the keyring tests run against
//! both), with what sharing needs:
//!
//! - **Migrations** are numbered rows of a `sealgate_schema` table, applied at connect in one
//!   transaction under `pg_advisory_xact_lock`, so that nodes starting together migrate once;
//!   a database migrated by a newer Sealgate (a version we do not know) is refused, not touched.
//! - **Every [`Batch`] is one transaction** that first bumps the generation counter row: that
//!   row lock orders concurrent batches (as SQLite's `BEGIN IMMEDIATE` does), so two nodes
//!   applying overlapping batches cannot deadlock, and the counter tells every node's caches
//!   that something changed. Writes are upserts (`ON CONFLICT`), so two nodes harvesting the
//!   same certificate store one row; a batch that still fails with a serialization failure
//!   or a deadlock is retried a few times.
//! - **A small pool**: `connections` clients, each behind its own mutex; a request takes the
//!   first free one. A connection the server closed is replaced on its next use.
//! - **Rows are read with `try_get`**: a row of an unexpected type is an [`Error::Backend`],
//!   never a panic.
//!
//! The connection parameters are libpq's (`host=... port=... user=... password=...
//! dbname=...` or a `postgresql://` URL). Transport is plain TCP or a Unix socket: keep the
//! server on a private network or the same host (TLS is not built in yet). `Debug` never
//! shows the password.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row, Statement};

use crate::error::{Error, Result};
use crate::store::{
    Batch, BatchOutcome, CertRecord, Change, CrlRecord, KeyStore, PgpRecord, SealedKey, index_key,
};
use crate::{KeyKind, Provenance, Trust};

/// The migrations, in order; version `i + 1` is `MIGRATIONS[i]`. Never edit one that has
/// shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the schema of SQLite's versions 1 and 2 (the checked path included).
    "CREATE TABLE sealgate_meta (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
     CREATE TABLE sealgate_generation (
        one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), value BIGINT NOT NULL);
     INSERT INTO sealgate_generation (one, value) VALUES (TRUE, 0);
     CREATE TABLE sealgate_certs (
        id TEXT PRIMARY KEY, der BYTEA NOT NULL, subject TEXT NOT NULL, addresses TEXT NOT NULL,
        is_ca BOOLEAN NOT NULL, trust INTEGER NOT NULL,
        not_before BIGINT NOT NULL, not_after BIGINT NOT NULL, chain TEXT NOT NULL DEFAULT '');
     CREATE INDEX sealgate_certs_not_after ON sealgate_certs (not_after);
     CREATE INDEX sealgate_certs_ca ON sealgate_certs (is_ca, trust);
     CREATE TABLE sealgate_cert_addresses (address TEXT NOT NULL, id TEXT NOT NULL,
        PRIMARY KEY (address, id));
     CREATE TABLE sealgate_pgp_certs (fingerprint TEXT PRIMARY KEY, data BYTEA NOT NULL,
        addresses TEXT NOT NULL, trust INTEGER NOT NULL);
     CREATE TABLE sealgate_pgp_addresses (address TEXT NOT NULL, fingerprint TEXT NOT NULL,
        PRIMARY KEY (address, fingerprint));
     CREATE TABLE sealgate_keys (owner TEXT PRIMARY KEY, kind INTEGER NOT NULL,
        sealed BYTEA NOT NULL);
     CREATE TABLE sealgate_crls (issuer TEXT PRIMARY KEY, der BYTEA NOT NULL,
        this_update BIGINT NOT NULL, next_update BIGINT);
     CREATE TABLE sealgate_provenance (entry TEXT NOT NULL, source TEXT NOT NULL,
        recorded_by TEXT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (entry, source));",
];

/// The advisory lock key of the migrations (any constant; "SEALGATE" in ASCII).
const MIGRATION_LOCK: i64 = 0x5345_414c_4741_5445;

/// How often a batch is tried when the server aborts it with a serialization failure or a
/// deadlock (both are safe to retry: the transaction left nothing behind).
const BATCH_ATTEMPTS: usize = 5;

/// A key store in a PostgreSQL database, shared by any number of processes and hosts.
pub struct PgStore {
    config: Config,
    pool: Vec<Mutex<Option<Conn>>>,
    next: AtomicUsize,
}

/// One connection and the statements prepared on it.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("server", &describe(&self.config))
            .field("connections", &self.pool.len())
            .finish()
    }
}

/// Where a configuration connects, without its password: `user@host:port/dbname`, with
/// `password=[redacted]` when it has one.
fn describe(config: &Config) -> String {
    use postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    let mut s = format!(
        "{}@{}:{}/{}",
        config.get_user().unwrap_or(""),
        hosts.join(","),
        ports.join(","),
        config.get_dbname().unwrap_or("")
    );
    if config.get_password().is_some() {
        s.push_str(" password=[redacted]");
    }
    s
}

fn db(e: postgres::Error) -> Error {
    // The server's message (missing table, constraint, connection refused) never holds the
    // connection password: the client does not echo its parameters.
    Error::Backend(format!("postgresql: {e}"))
}

fn retryable(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

// Trust and key kind as in the SQLite schema, so that a store can be copied between backends.
fn trust_rank(t: Trust) -> i32 {
    match t {
        Trust::Autocrypt => 0,
        Trust::Unverified => 1,
        Trust::Imported => 2,
        Trust::Anchor => 3,
    }
}

fn trust_of(n: i32) -> Trust {
    match n {
        0 => Trust::Autocrypt,
        1 => Trust::Unverified,
        2 => Trust::Imported,
        _ => Trust::Anchor,
    }
}

fn kind_rank(k: KeyKind) -> i32 {
    match k {
        KeyKind::Smime => 0,
        KeyKind::Pgp => 1,
    }
}

fn kind_of(n: i32) -> KeyKind {
    if n == 1 { KeyKind::Pgp } else { KeyKind::Smime }
}

// Addresses and paths are one newline-separated column: neither can hold a newline.
fn join(items: &[String]) -> String {
    items.join("\n")
}

fn split(s: String) -> Vec<String> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split('\n').map(str::to_owned).collect()
    }
}

fn get<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i).map_err(db)
}

/// `SELECT` of the columns [`cert_row`] reads, then the rest of the query (a literal, so that
/// the whole text is a `&'static str`, the key of the statement cache).
macro_rules! select_certs {
    ($rest:literal) => {
        concat!(
            "SELECT c.id, c.der, c.subject, c.addresses, c.is_ca, c.trust, c.not_before, ",
            "c.not_after, EXISTS (SELECT 1 FROM sealgate_keys k WHERE k.owner = c.id), c.chain ",
            $rest
        )
    };
}

fn cert_row(r: &Row) -> Result<CertRecord> {
    Ok(CertRecord {
        id: get(r, 0)?,
        der: get(r, 1)?,
        subject: get(r, 2)?,
        addresses: split(get(r, 3)?),
        is_ca: get(r, 4)?,
        trust: trust_of(get(r, 5)?),
        not_before: get(r, 6)?,
        not_after: get(r, 7)?,
        has_key: get(r, 8)?,
        chain: split(get(r, 9)?),
    })
}

/// `SELECT` of the columns [`pgp_row`] reads, then the rest of the query.
macro_rules! select_pgp {
    ($rest:literal) => {
        concat!(
            "SELECT p.fingerprint, p.data, p.addresses, p.trust, ",
            "EXISTS (SELECT 1 FROM sealgate_keys k WHERE k.owner = p.fingerprint) ",
            $rest
        )
    };
}

fn pgp_row(r: &Row) -> Result<PgpRecord> {
    Ok(PgpRecord {
        fingerprint: get(r, 0)?,
        data: get(r, 1)?,
        addresses: split(get(r, 2)?),
        trust: trust_of(get(r, 3)?),
        has_secret: get(r, 4)?,
    })
}

/// Whether an error means the connection is gone: closed, or the server terminating it
/// (class 57: operator intervention, as in a restart or `pg_terminate_backend`).
fn connection_lost(e: &postgres::Error) -> bool {
    e.is_closed() || e.code().is_some_and(|c| c.code().starts_with("57P"))
}

/// A statement prepared once per connection (the SQL texts are constants).
fn prepare_raw(
    client: &mut Client,
    cache: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
) -> std::result::Result<Statement, postgres::Error> {
    if let Some(s) = cache.get(sql) {
        return Ok(s.clone());
    }
    let s = client.prepare(sql)?;
    cache.insert(sql, s.clone());
    Ok(s)
}

impl PgStore {
    /// Connect to the database named by libpq-style `params` (key=value pairs or a
    /// `postgresql://` URL) with a pool of `connections` (at least one), and migrate its
    /// schema to the current version.
    pub fn connect(params: &str, connections: usize) -> Result<Self> {
        let mut config: Config = params
            .parse()
            .map_err(|e: postgres::Error| Error::Backend(format!("postgresql parameters: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let store = Self {
            pool: (0..connections.max(1)).map(|_| Mutex::new(None)).collect(),
            config,
            next: AtomicUsize::new(0),
        };
        store.migrate()?;
        Ok(store)
    }

    fn open_conn(&self) -> Result<Conn> {
        Ok(Conn {
            client: self.config.connect(NoTls).map_err(db)?,
            statements: HashMap::new(),
        })
    }

    /// A connection of the pool: the first one free, else wait for one (round robin).
    /// A missing or closed connection is (re)opened here.
    fn conn(&self) -> Result<MutexGuard<'_, Option<Conn>>> {
        let n = self.pool.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut guard = None;
        for i in 0..n {
            if let Ok(g) = self.pool[(start + i) % n].try_lock() {
                guard = Some(g);
                break;
            }
        }
        let mut guard = match guard {
            Some(g) => g,
            None => self.pool[start % n]
                .lock()
                .map_err(|_| Error::Backend("store connection poisoned".into()))?,
        };
        if guard.as_ref().is_none_or(|c| c.client.is_closed()) {
            *guard = Some(self.open_conn()?);
        }
        Ok(guard)
    }

    fn migrate(&self) -> Result<()> {
        let mut guard = self.conn()?;
        let conn = guard
            .as_mut()
            .ok_or_else(|| Error::Backend("no connection".into()))?;
        let mut tx = conn.client.transaction().map_err(db)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(db)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS sealgate_schema (
                version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .map_err(db)?;
        let row = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM sealgate_schema", &[])
            .map_err(db)?;
        let version: i32 = get(&row, 0)?;
        let known = MIGRATIONS.len();
        if version < 0 || version as usize > known {
            return Err(Error::Backend(format!(
                "the store has schema version {version}; this Sealgate knows up to {known}"
            )));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.batch_execute(m).map_err(db)?;
            let v = i32::try_from(i + 1).map_err(|_| Error::Backend("schema version".into()))?;
            tx.execute("INSERT INTO sealgate_schema (version) VALUES ($1)", &[&v])
                .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i64> {
        let rows = self.query("SELECT COALESCE(MAX(version), 0) FROM sealgate_schema", &[])?;
        let row = rows
            .first()
            .ok_or_else(|| Error::Backend("no schema version".into()))?;
        Ok(i64::from(get::<i32>(row, 0)?))
    }

    /// Run a read. A connection the server closed (restart, idle timeout, failover) is
    /// reopened and the read tried once more: reads are idempotent.
    fn query(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let mut guard = self.conn()?;
        let mut retried = false;
        loop {
            let conn = match guard.as_mut() {
                Some(c) => c,
                None => guard.insert(self.open_conn()?),
            };
            let Conn { client, statements } = conn;
            let r = prepare_raw(client, statements, sql).and_then(|st| client.query(&st, params));
            match r {
                Err(e) if !retried && (client.is_closed() || connection_lost(&e)) => {
                    *guard = None;
                    retried = true;
                }
                Err(e) => {
                    if client.is_closed() || connection_lost(&e) {
                        *guard = None;
                    }
                    return Err(db(e));
                }
                Ok(rows) => return Ok(rows),
            }
        }
    }

    fn query_map<T>(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
        f: impl Fn(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.query(sql, params)?.iter().map(f).collect()
    }

    fn try_apply(
        &self,
        conn: &mut Conn,
        batch: &Batch,
    ) -> std::result::Result<BatchOutcome, Tried> {
        let Conn { client, statements } = conn;
        let mut tx = client.transaction().map_err(Tried::Db)?;
        // First: the counter row, whose lock orders concurrent batches (see the module doc).
        tx.execute(
            "UPDATE sealgate_generation SET value = value + 1 WHERE one",
            &[],
        )
        .map_err(Tried::Db)?;
        let mut out = BatchOutcome::default();
        for c in &batch.changes {
            apply_one(&mut tx, statements, c, &mut out)?;
        }
        tx.commit().map_err(Tried::Db)?;
        Ok(out)
    }
}

/// A failed attempt at a batch: a database error (maybe retryable) or another error.
enum Tried {
    Db(postgres::Error),
    Other(Error),
}

impl From<Error> for Tried {
    fn from(e: Error) -> Self {
        Tried::Other(e)
    }
}

fn exec(
    tx: &mut postgres::Transaction<'_>,
    cache: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
) -> std::result::Result<Vec<Row>, Tried> {
    let st = match cache.get(sql) {
        Some(s) => s.clone(),
        None => {
            let s = tx.prepare(sql).map_err(Tried::Db)?;
            cache.insert(sql, s.clone());
            s
        }
    };
    tx.query(&st, params).map_err(Tried::Db)
}

fn add_provenance(
    tx: &mut postgres::Transaction<'_>,
    cache: &mut HashMap<&'static str, Statement>,
    entry: &str,
    p: &Provenance,
) -> std::result::Result<(), Tried> {
    exec(
        tx,
        cache,
        "INSERT INTO sealgate_provenance (entry, source, recorded_by, at)
         VALUES ($1, $2, $3, $4) ON CONFLICT (entry, source) DO NOTHING",
        &[&entry, &p.source, &p.by, &p.at],
    )?;
    Ok(())
}

/// Whether an upsert's `RETURNING (xmax = 0)` row says the row was inserted (not updated).
fn inserted(rows: &[Row]) -> std::result::Result<Option<bool>, Tried> {
    match rows.first() {
        Some(r) => Ok(Some(get(r, 0)?)),
        None => Ok(None),
    }
}

fn apply_one(
    tx: &mut postgres::Transaction<'_>,
    cache: &mut HashMap<&'static str, Statement>,
    c: &Change,
    out: &mut BatchOutcome,
) -> std::result::Result<(), Tried> {
    match c {
        Change::Certificate(rec, p) => {
            // `xmax = 0` holds for a row this statement inserted, not for one it updated.
            let rows = exec(
                tx,
                cache,
                "INSERT INTO sealgate_certs (id, der, subject, addresses, is_ca, trust,
                     not_before, not_after, chain) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (id) DO UPDATE SET
                     trust = GREATEST(sealgate_certs.trust, EXCLUDED.trust),
                     chain = CASE WHEN sealgate_certs.chain = '' THEN EXCLUDED.chain
                             ELSE sealgate_certs.chain END
                 RETURNING (xmax = 0)",
                &[
                    &rec.id,
                    &rec.der,
                    &rec.subject,
                    &join(&rec.addresses),
                    &rec.is_ca,
                    &trust_rank(rec.trust),
                    &rec.not_before,
                    &rec.not_after,
                    &join(&rec.chain),
                ],
            )?;
            if inserted(&rows)? == Some(true) {
                for a in &rec.addresses {
                    exec(
                        tx,
                        cache,
                        "INSERT INTO sealgate_cert_addresses (address, id) VALUES ($1, $2)
                         ON CONFLICT DO NOTHING",
                        &[&index_key(a), &rec.id],
                    )?;
                }
                out.added += 1;
            } else {
                out.merged += 1;
            }
            add_provenance(tx, cache, &rec.id, p)?;
        }
        Change::Pgp(rec, p) => {
            let rows = exec(
                tx,
                cache,
                "INSERT INTO sealgate_pgp_certs (fingerprint, data, addresses, trust)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (fingerprint) DO UPDATE SET data = EXCLUDED.data,
                     addresses = EXCLUDED.addresses,
                     trust = GREATEST(sealgate_pgp_certs.trust, EXCLUDED.trust)
                 RETURNING (xmax = 0)",
                &[
                    &rec.fingerprint,
                    &rec.data,
                    &join(&rec.addresses),
                    &trust_rank(rec.trust),
                ],
            )?;
            if inserted(&rows)? == Some(true) {
                out.added += 1;
            } else {
                out.merged += 1;
            }
            exec(
                tx,
                cache,
                "DELETE FROM sealgate_pgp_addresses WHERE fingerprint = $1",
                &[&rec.fingerprint],
            )?;
            for a in &rec.addresses {
                exec(
                    tx,
                    cache,
                    "INSERT INTO sealgate_pgp_addresses (address, fingerprint) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                    &[&index_key(a), &rec.fingerprint],
                )?;
            }
            add_provenance(tx, cache, &rec.fingerprint, p)?;
        }
        Change::Key(k, p) => {
            let rows = exec(
                tx,
                cache,
                "INSERT INTO sealgate_keys (owner, kind, sealed) VALUES ($1, $2, $3)
                 ON CONFLICT (owner) DO UPDATE SET kind = EXCLUDED.kind, sealed = EXCLUDED.sealed
                 RETURNING (xmax = 0)",
                &[&k.owner, &kind_rank(k.kind), &k.sealed],
            )?;
            if inserted(&rows)? == Some(true) {
                out.added += 1;
            } else {
                out.merged += 1;
            }
            add_provenance(tx, cache, &format!("key:{}", k.owner), p)?;
        }
        Change::Crl(c, p) => {
            // Replaces only an older CRL of the issuer; no row back: the stored one is as new.
            let rows = exec(
                tx,
                cache,
                "INSERT INTO sealgate_crls (issuer, der, this_update, next_update)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (issuer) DO UPDATE SET der = EXCLUDED.der,
                     this_update = EXCLUDED.this_update, next_update = EXCLUDED.next_update
                 WHERE sealgate_crls.this_update < EXCLUDED.this_update
                 RETURNING (xmax = 0)",
                &[&c.issuer, &c.der, &c.this_update, &c.next_update],
            )?;
            if inserted(&rows)? == Some(true) {
                out.added += 1;
            } else {
                out.merged += 1;
            }
            add_provenance(tx, cache, &format!("crl:{}", c.issuer), p)?;
        }
        Change::MetaIfAbsent(name, value) => {
            exec(
                tx,
                cache,
                "INSERT INTO sealgate_meta (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
                &[name, value],
            )?;
        }
        Change::Meta(name, value) => {
            exec(
                tx,
                cache,
                "INSERT INTO sealgate_meta (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                &[name, value],
            )?;
        }
    }
    Ok(())
}

impl KeyStore for PgStore {
    fn apply(&self, batch: Batch) -> Result<BatchOutcome> {
        let mut guard = self.conn()?;
        let mut last = None;
        for _ in 0..BATCH_ATTEMPTS {
            let conn = match guard.as_mut() {
                Some(c) => c,
                None => guard.insert(self.open_conn()?),
            };
            match self.try_apply(conn, &batch) {
                Ok(out) => return Ok(out),
                Err(Tried::Other(e)) => return Err(e),
                Err(Tried::Db(e)) if retryable(&e) => last = Some(e),
                Err(Tried::Db(e)) => {
                    if conn.client.is_closed() || connection_lost(&e) {
                        *guard = None;
                    }
                    return Err(db(e));
                }
            }
        }
        Err(last.map_or_else(|| Error::Backend("batch not applied".into()), db))
    }

    fn certificates_by_address(&self, key: &str) -> Result<Vec<CertRecord>> {
        self.query_map(
            select_certs!(
                "FROM sealgate_cert_addresses a JOIN sealgate_certs c ON c.id = a.id
                 WHERE a.address = $1"
            ),
            &[&key],
            cert_row,
        )
    }

    fn certificate(&self, id: &str) -> Result<Option<CertRecord>> {
        Ok(self
            .query_map(
                select_certs!("FROM sealgate_certs c WHERE c.id = $1"),
                &[&id],
                cert_row,
            )?
            .pop())
    }

    fn authorities(&self) -> Result<Vec<CertRecord>> {
        self.query_map(
            select_certs!("FROM sealgate_certs c WHERE c.is_ca OR c.trust = 3 ORDER BY c.id"),
            &[],
            cert_row,
        )
    }

    fn certificates(&self) -> Result<Vec<CertRecord>> {
        self.query_map(
            select_certs!("FROM sealgate_certs c ORDER BY c.id"),
            &[],
            cert_row,
        )
    }

    fn certificates_expiring(&self, from: i64, to: i64) -> Result<Vec<CertRecord>> {
        self.query_map(
            select_certs!(
                "FROM sealgate_certs c WHERE c.not_after BETWEEN $1 AND $2
                 ORDER BY c.not_after, c.id"
            ),
            &[&from, &to],
            cert_row,
        )
    }

    fn pgp_by_address(&self, key: &str) -> Result<Vec<PgpRecord>> {
        self.query_map(
            select_pgp!(
                "FROM sealgate_pgp_addresses a JOIN sealgate_pgp_certs p
                 ON p.fingerprint = a.fingerprint WHERE a.address = $1"
            ),
            &[&key],
            pgp_row,
        )
    }

    fn pgp(&self, fingerprint: &str) -> Result<Option<PgpRecord>> {
        Ok(self
            .query_map(
                select_pgp!("FROM sealgate_pgp_certs p WHERE p.fingerprint = $1"),
                &[&fingerprint],
                pgp_row,
            )?
            .pop())
    }

    fn pgp_certificates(&self) -> Result<Vec<PgpRecord>> {
        self.query_map(
            select_pgp!("FROM sealgate_pgp_certs p ORDER BY p.fingerprint"),
            &[],
            pgp_row,
        )
    }

    fn sealed_key(&self, owner: &str) -> Result<Option<SealedKey>> {
        Ok(self
            .query_map(
                "SELECT owner, kind, sealed FROM sealgate_keys WHERE owner = $1",
                &[&owner],
                |r| {
                    Ok(SealedKey {
                        owner: get(r, 0)?,
                        kind: kind_of(get(r, 1)?),
                        sealed: get(r, 2)?,
                    })
                },
            )?
            .pop())
    }

    fn crls(&self) -> Result<Vec<CrlRecord>> {
        self.query_map(
            "SELECT issuer, der, this_update, next_update FROM sealgate_crls ORDER BY issuer",
            &[],
            |r| {
                Ok(CrlRecord {
                    issuer: get(r, 0)?,
                    der: get(r, 1)?,
                    this_update: get(r, 2)?,
                    next_update: get(r, 3)?,
                })
            },
        )
    }

    fn provenance(&self, id: &str) -> Result<Vec<Provenance>> {
        self.query_map(
            "SELECT source, recorded_by, at FROM sealgate_provenance WHERE entry = $1
             ORDER BY at, source",
            &[&id],
            |r| {
                Ok(Provenance {
                    source: get(r, 0)?,
                    by: get(r, 1)?,
                    at: get(r, 2)?,
                })
            },
        )
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .query_map(
                "SELECT value FROM sealgate_meta WHERE name = $1",
                &[&name],
                |r| get(r, 0),
            )?
            .pop())
    }

    fn generation(&self) -> Result<u64> {
        let rows = self.query("SELECT value FROM sealgate_generation WHERE one", &[])?;
        let row = rows
            .first()
            .ok_or_else(|| Error::Backend("the generation row is missing".into()))?;
        let g: i64 = get(row, 0)?;
        u64::try_from(g).map_err(|_| Error::Backend("negative generation".into()))
    }
}
