//! Key store: S/MIME lookup by address in a store of 100,000 certificates, and the import rate,
//! with OpenSSL (through the `openssl` crate, in the same process) doing the comparable part
//! of the work beside it.
//!
//! Run: `cargo bench -p sealgate-benches --bench keystore`. The store is SQLite (WAL, one
//! file) with 100,000 user certificates `u{i}@example.com`, each issued in-process by one
//! P-256 CA (trust anchor); it is built once and cached in the bench's target directory
//! (`$CARGO_TARGET_TMPDIR/keystore-100k.db`; delete it to rebuild, it is rebuilt anyway when
//! its certificates are within 30 days of expiring).
//!
//! | bench | Sealgate | OpenSSL side by side |
//! | --- | --- | --- |
//! | `lookup` | `Keyring::lookup_smime(addr, now)`: address index query, parse every candidate, address / validity / keyUsage / EKU checks, path to the anchor with the signature checked, CRL check, ranking | `X509StoreContext::verify_cert` of the same certificate against the same anchor (path building and signature only: no index, no parsing from the database) |
//! | `import` | `Keyring::import` of 1,000 PEM certificates into a fresh store: sniff, parse, one transaction, fsync | `X509::from_pem` of the same 1,000 (parsing only, nothing stored) |
//!
//! Addresses are taken in a fixed pseudo-random order over all 100,000, so that lookups do
//! not hit the same pages of the database. Ratio = OpenSSL's time / Sealgate's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, Throughput};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509StoreContext};
use sealgate::Limits;
use sealgate::keystore::{ImportOptions, Keyring, SqliteStore, StoreSecret};
use sealgate::smime::{self, Certificate, CertificateParams, Curve, KeyKind, PrivateKey, issue};

const N: usize = 100_000;
const BATCH: usize = 1000;

/// A fixed raw store key: the bench stores no private key, and Argon2 is not what is measured.
fn secret() -> StoreSecret {
    StoreSecret::raw_key_from_hex(&"07".repeat(32)).unwrap()
}

struct Ca {
    cert: Certificate,
    key: PrivateKey,
    leaf: PrivateKey,
}

fn ca() -> Ca {
    let key = PrivateKey::generate(KeyKind::Ec(Curve::P256)).unwrap();
    let cert = issue::self_signed(
        &key,
        &CertificateParams::ca("Bench CA"),
        &mut rand_core::OsRng,
    )
    .unwrap();
    let leaf = PrivateKey::generate(KeyKind::Ec(Curve::P256)).unwrap();
    Ca { cert, key, leaf }
}

fn pem_certs(ca: &Ca, from: usize, n: usize, prefix: &str) -> Vec<Vec<u8>> {
    (from..from + n)
        .map(|i| {
            let email = format!("{prefix}{i}@example.com");
            let c = issue::issue(
                ca.leaf.public_key(),
                &CertificateParams::user(&email, &email),
                &ca.cert,
                &ca.key,
                &mut rand_core::OsRng,
            )
            .unwrap();
            smime::pem::encode("CERTIFICATE", c.der()).into_bytes()
        })
        .collect()
}

fn open(path: &std::path::Path) -> Keyring {
    Keyring::open(
        Arc::new(SqliteStore::open(path).unwrap()),
        Some(&secret()),
        Limits::default(),
    )
    .unwrap()
}

fn import_all(k: &Keyring, files: &[Vec<u8>], opts: &ImportOptions) {
    let names: Vec<String> = (0..files.len()).map(|i| format!("c{i}.pem")).collect();
    let named: Vec<(&str, &[u8])> = names
        .iter()
        .zip(files)
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    k.import(&named, opts).unwrap();
}

/// The cached 100k store: (keyring, the CA certificate). Built if missing or stale.
fn store_100k() -> (Keyring, Certificate) {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("keystore-100k.db");
    if path.exists() {
        let k = open(&path);
        let certs = k.store().certificates_expiring(i64::MIN, i64::MAX).unwrap();
        let soon = SystemTime::now() + Duration::from_secs(30 * 86400);
        let soon = soon
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let anchors: Vec<_> = certs.iter().filter(|c| c.is_ca).collect();
        if certs.len() == N + 1 && anchors.len() == 1 && certs.iter().all(|c| c.not_after > soon) {
            let ca = Certificate::from_der(&anchors[0].der).unwrap();
            println!("keystore bench: using the cached store {}", path.display());
            return (k, ca);
        }
        drop(k);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(path.with_extension("db-wal"));
        let _ = std::fs::remove_file(path.with_extension("db-shm"));
    }
    println!(
        "keystore bench: building {N} certificates in {} ...",
        path.display()
    );
    let ca = ca();
    let k = open(&path);
    let anchor = ImportOptions {
        trust_anchors: true,
        ..Default::default()
    };
    k.import(&[("ca.pem", ca.cert.der())], &anchor).unwrap();
    let (mut t_issue, mut t_import) = (Duration::ZERO, Duration::ZERO);
    for b in 0..N / 10_000 {
        let t = Instant::now();
        let files = pem_certs(&ca, b * 10_000, 10_000, "u");
        t_issue += t.elapsed();
        let t = Instant::now();
        import_all(&k, &files, &ImportOptions::default());
        t_import += t.elapsed();
    }
    println!(
        "keystore bench: issued {N} in {:.1} s, imported in {:.1} s ({:.0} certificates/s, batches of 10,000)",
        t_issue.as_secs_f64(),
        t_import.as_secs_f64(),
        N as f64 / t_import.as_secs_f64()
    );
    (k, ca.cert)
}

/// The order in which addresses are looked up: a fixed permutation (multiplicative, coprime).
fn address(i: usize) -> String {
    format!("u{}@example.com", (i * 7919 + 13) % N)
}

fn median(mut f: impl FnMut(), runs: usize) -> f64 {
    f();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let (k, ca) = store_100k();
    let now = SystemTime::now();
    let l = k.lookup_smime(&address(0), now).unwrap();
    assert!(l.selected.is_some(), "{:?}", l.candidates);

    // OpenSSL side: the same anchor, and the leaf certificates of the looked-up addresses.
    let mut sb = X509StoreBuilder::new().unwrap();
    sb.add_cert(X509::from_der(ca.der()).unwrap()).unwrap();
    let ossl_store = sb.build();
    let chain = openssl::stack::Stack::new().unwrap();
    let leaves: Vec<X509> = (0..1000)
        .map(|i| {
            let rec = k
                .store()
                .certificates_by_address(&address(i))
                .unwrap()
                .remove(0);
            X509::from_der(&rec.der).unwrap()
        })
        .collect();

    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let mut i = 0usize;
    let mut lookup = || {
        i = i.wrapping_add(1);
        let l = k.lookup_smime(&address(i), now).unwrap();
        assert!(l.selected.is_some());
        black_box(l);
    };
    let mut j = 0usize;
    let mut verify = || {
        j = j.wrapping_add(1);
        let mut ctx = X509StoreContext::new().unwrap();
        let ok = ctx
            .init(&ossl_store, &leaves[j % leaves.len()], &chain, |c| {
                c.verify_cert()
            })
            .unwrap();
        assert!(ok);
    };
    {
        let mut g = criterion.benchmark_group("keystore-lookup-100k");
        g.throughput(Throughput::Elements(1));
        g.bench_function("sealgate lookup_smime", |b| b.iter(&mut lookup));
        g.bench_function("openssl verify_cert", |b| b.iter(&mut verify));
        g.finish();
    }

    let ca_small = self::ca();
    let files = pem_certs(&ca_small, 0, BATCH, "i");
    let dir = tempfile::tempdir().unwrap();
    let mut round = 0usize;
    let mut import = || {
        round += 1;
        let kr = open(&dir.path().join(format!("import{round}.db")));
        import_all(&kr, &files, &ImportOptions::default());
        black_box(kr);
    };
    let mut parse = || {
        for f in &files {
            black_box(X509::from_pem(f).unwrap());
        }
    };
    {
        let mut g = criterion.benchmark_group("keystore-import-1000");
        g.throughput(Throughput::Elements(BATCH as u64));
        g.sample_size(10);
        g.bench_function("sealgate import", |b| b.iter(&mut import));
        g.bench_function("openssl X509::from_pem", |b| b.iter(&mut parse));
        g.finish();
    }
    criterion.final_summary();

    // The table: medians measured back to back.
    let l_ours = median(&mut lookup, 2001);
    let l_theirs = median(&mut verify, 2001);
    let i_ours = median(&mut import, 9);
    let i_theirs = median(&mut parse, 9);
    println!();
    println!("| operation | sealgate | openssl (in-process) | ratio openssl/sealgate |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| lookup in 100,000 (median) | {:.1} µs | {:.1} µs (verify_cert only) | {:.2}x |",
        l_ours * 1e6,
        l_theirs * 1e6,
        l_theirs / l_ours
    );
    println!(
        "| import 1,000 PEM (median) | {:.0} certificates/s | {:.0} certificates/s (parse only) | {:.2}x |",
        BATCH as f64 / i_ours,
        BATCH as f64 / i_theirs,
        i_theirs / i_ours
    );
}
