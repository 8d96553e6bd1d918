//! What only the PostgreSQL backend has: migrations shared by nodes, several connections and
//! nodes on one database, lost connections, rows of an unexpected shape, and a `Debug` that
//! hides the password. Run by `on_postgres` in `keyring_tests.rs`, on the same private server.

use std::sync::{Arc, Barrier};
use std::time::SystemTime;

use super::*;
use crate::PgStore;
use crate::pg_server::PgServer;

/// A database of the test server.
pub(super) struct Pg(pub(super) String);

impl Backend for Pg {
    fn open(&self) -> Arc<dyn KeyStore> {
        Arc::new(PgStore::connect(&self.0, 2).unwrap())
    }
}

fn client(params: &str) -> postgres::Client {
    postgres::Client::connect(params, postgres::NoTls).unwrap()
}

/// A PostgreSQL-only case: it makes the databases it needs on the server.
type Case = (&'static str, fn(&PgServer));

pub(super) const CASES: &[Case] = &[
    (
        "migrations_run_once_and_newer_schemas_are_refused",
        migrations,
    ),
    ("debug_hides_the_password", debug_hides_the_password),
    (
        "two_nodes_harvesting_one_certificate_store_one_row",
        concurrent_harvest,
    ),
    (
        "a_certificate_stored_by_one_node_is_used_by_another",
        shared_between_nodes,
    ),
    ("a_lost_connection_is_reopened", reconnects),
    ("odd_rows_are_errors_not_panics", odd_rows),
];

fn migrations(server: &PgServer) {
    let params = server.create_database();
    // Nodes starting together on an empty database: the advisory lock makes one migrate.
    let barrier = Barrier::new(4);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                barrier.wait();
                PgStore::connect(&params, 1).unwrap();
            });
        }
    });
    let store = PgStore::connect(&params, 1).unwrap();
    assert_eq!(store.schema_version().unwrap(), MIGRATION_COUNT);
    let mut c = client(&params);
    let rows: i64 = c
        .query_one("SELECT count(*) FROM sealgate_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, MIGRATION_COUNT);
    assert_eq!(store.generation().unwrap(), 0);
    // A database from a newer Sealgate is refused and left as it is.
    c.execute("INSERT INTO sealgate_schema (version) VALUES (99)", &[])
        .unwrap();
    let e = PgStore::connect(&params, 1).unwrap_err().to_string();
    assert!(e.contains("schema version 99"), "{e}");
}

const MIGRATION_COUNT: i64 = 1;

fn debug_hides_the_password(server: &PgServer) {
    let params = server.create_database();
    // The test server trusts loopback, so any password connects.
    let store = PgStore::connect(&format!("{params} password=hunter2-secret"), 1).unwrap();
    let shown = format!("{store:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("password=[redacted]"), "{shown}");
    assert!(shown.contains("sg@127.0.0.1:"), "{shown}");
    // An error about the parameters does not echo them either.
    let e = PgStore::connect("host=127.0.0.1 port=notaport password=hunter2-secret", 1)
        .unwrap_err()
        .to_string();
    assert!(!e.contains("hunter2"), "{e}");
}

/// A signed message from a user of `p`; harvesting it stores the signer's certificate.
fn signed_by(p: &Pki, email: &str, n: usize) -> (Certificate, Vec<u8>) {
    let (cert, key) = p.user(email, |_| {});
    let id = Identity::new(key, cert.clone(), vec![]).unwrap();
    let msg = format!(
        "From: {email}\r\nTo: gw@example.net\r\nMessage-ID: <{n}@x>\r\nSubject: s\r\n\r\nhello\r\n"
    );
    let signed = smime::sign_message(
        msg.as_bytes(),
        &id,
        &Default::default(),
        &mut rand_core::OsRng,
        &Limits::default(),
    )
    .unwrap();
    (cert, signed)
}

fn concurrent_harvest(server: &PgServer) {
    let params = server.create_database();
    let p = pki();
    let nodes: Vec<Keyring> = (0..2)
        .map(|_| {
            Keyring::open(
                Arc::new(PgStore::connect(&params, 2).unwrap()),
                Some(&pass()),
                Limits::default(),
            )
            .unwrap()
        })
        .collect();
    anchors(&nodes[0], &p);
    for round in 0..8 {
        let (cert, signed) = signed_by(&p, &format!("u{round}@example.com"), round);
        let barrier = Barrier::new(nodes.len());
        std::thread::scope(|s| {
            for k in &nodes {
                let (barrier, signed, cert) = (&barrier, &signed, &cert);
                s.spawn(move || {
                    barrier.wait();
                    let r = k.harvest_message(signed, SystemTime::now()).unwrap();
                    assert_eq!(r.certificates, vec![certificate_id(cert)]);
                });
            }
        });
        let id = certificate_id(&cert);
        let mut c = client(&params);
        let mut count = |sql: &str| -> i64 { c.query_one(sql, &[&id]).unwrap().get(0) };
        assert_eq!(
            count("SELECT count(*) FROM sealgate_certs WHERE id = $1"),
            1
        );
        assert_eq!(
            count("SELECT count(*) FROM sealgate_cert_addresses WHERE id = $1"),
            1
        );
        assert_eq!(
            count("SELECT count(*) FROM sealgate_provenance WHERE entry = $1"),
            1
        );
    }
    // Signer certificates, plus the CA.
    assert_eq!(nodes[1].store().certificates().unwrap().len(), 9);
}

fn shared_between_nodes(server: &PgServer) {
    let params = server.create_database();
    let p = pki();
    let open = || {
        Keyring::open(
            Arc::new(PgStore::connect(&params, 1).unwrap()),
            Some(&pass()),
            Limits::default(),
        )
        .unwrap()
    };
    let (a, b) = (open(), open());
    anchors(&a, &p);
    // Node b looks first (and caches the anchors of that generation) ...
    assert!(
        b.lookup_smime("dave@example.com", SystemTime::now())
            .unwrap()
            .selected
            .is_none()
    );
    // ... node a harvests; b's next lookup finds the certificate.
    let (cert, signed) = signed_by(&p, "dave@example.com", 1);
    a.harvest_message(&signed, SystemTime::now()).unwrap();
    let l = b
        .lookup_smime("dave@example.com", SystemTime::now())
        .unwrap();
    assert_eq!(l.selected.unwrap().0, cert);
    // Private keys sealed by one node open on the other (one salt, one key check).
    let (own, key) = p.user("gw@example.net", |_| {});
    a.import(
        &[("gw.pem", &pem_of(&own, Some(&key)))],
        &Default::default(),
    )
    .unwrap();
    assert!(
        b.private_key(&certificate_id(&own))
            .unwrap()
            .unwrap()
            .matches(&own)
    );
}

fn reconnects(server: &PgServer) {
    let params = server.create_database();
    let store = PgStore::connect(&params, 1).unwrap();
    assert_eq!(store.generation().unwrap(), 0);
    let mut c = client(&params);
    let killed: i64 = c
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    // pg_terminate_backend only signals: wait until the backend is gone.
    for _ in 0..100 {
        let left: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A read reconnects by itself; a write after that works too.
    assert_eq!(store.generation().unwrap(), 0);
    store
        .apply(Batch {
            changes: vec![Change::MetaIfAbsent("k".into(), b"v".to_vec())],
        })
        .unwrap();
    assert_eq!(store.meta("k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(store.generation().unwrap(), 1);
}

fn odd_rows(server: &PgServer) {
    let params = server.create_database();
    let store = PgStore::connect(&params, 1).unwrap();
    store
        .apply(Batch {
            changes: vec![Change::MetaIfAbsent("k".into(), b"v".to_vec())],
        })
        .unwrap();
    // Someone changed a column's type behind our back: an error, not a panic.
    let mut c = client(&params);
    c.batch_execute(
        "ALTER TABLE sealgate_meta ALTER COLUMN value TYPE TEXT USING encode(value, 'hex');
         ALTER TABLE sealgate_generation ALTER COLUMN value TYPE TEXT;",
    )
    .unwrap();
    // A fresh connection (the statement cache of the old one knows the old types).
    let store = PgStore::connect(&params, 1).unwrap();
    assert!(matches!(store.meta("k"), Err(Error::Backend(_))));
    assert!(matches!(store.generation(), Err(Error::Backend(_))));
}
