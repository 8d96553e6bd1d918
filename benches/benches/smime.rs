//! S/MIME sign, verify, encrypt and decrypt of a 10 KB and a 10 MB message, Sealgate beside
//! OpenSSL's CMS (the `openssl` crate, in the same process) on the same keys and bytes.
//!
//! Run: `cargo bench -p sealgate-benches --bench smime`. After criterion's own report, a table
//! prints each operation's throughput for both and the ratio (Sealgate / OpenSSL; above 1 means
//! Sealgate is faster), measured back to back so that a noisy machine still compares fairly.
//!
//! What each side does (the `openssl` crate has no `SMIME_write_CMS` and its `smime_read_cms`
//! passes no content BIO, so it cannot hand back the detached content of a multipart/signed):
//!
//! | op | Sealgate (whole message in, whole message out) | OpenSSL |
//! | --- | --- | --- |
//! | sign | split header/entity, 7-bit check, canonical check, SignedData (detached), multipart/signed with base64 signature, outer header | `CMS_sign` (DETACHED, BINARY) of the prepared entity, DER, base64 of the DER (no line breaks) |
//! | verify | parse the message, split the multipart, decode the signature, canonicalise, verify, rebuild the message | `SMIME_read_CMS` of the same multipart/signed message (MIME split, base64 decode; the content it drops), `CMS_verify` with the canonical first part prepared beforehand |
//! | encrypt | split header/entity, binary-leaf and canonical checks, EnvelopedData AES-256-CBC (DER), base64, outer header | `CMS_encrypt` (AES-256-CBC, BINARY) of the prepared entity, DER, base64 of the DER |
//! | decrypt | parse, base64 decode, EnvelopedData decrypt, rebuild the message with the outer header | `SMIME_read_CMS` of the same message, `CMS_decrypt` |
//!
//! So OpenSSL is spared the header split and the message assembly everywhere, and for verify
//! the extraction of the signed part: the comparison stays conservative.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::X509;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use sealgate::Limits;
use sealgate::smime::{
    self, Certificate, ContentCipher, EncryptMessageOptions, Identity, PrivateKey, Recipient,
    SignMessageOptions, TrustStore,
};
use sealgate_benches::{Keys, message};

struct Fixture {
    ours_id: Identity,
    ours_trust: TrustStore,
    ours_cert: Certificate,
    ossl_key: PKey<Private>,
    ossl_cert: X509,
    ossl_store: X509Store,
}

fn fixture() -> Fixture {
    let keys = Keys::generate();
    let limits = Limits::default();
    let ours_key = PrivateKey::from_der(&keys.key_pkcs8_der, &limits).unwrap();
    let ours_cert = Certificate::from_der(&keys.cert_der).unwrap();
    let ours_id = Identity::new(ours_key, ours_cert.clone(), vec![]).unwrap();
    let ours_trust = TrustStore::new(vec![ours_cert.clone()]);
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(keys.cert.clone()).unwrap();
    Fixture {
        ours_id,
        ours_trust,
        ours_cert,
        ossl_key: keys.key.clone(),
        ossl_cert: keys.cert.clone(),
        ossl_store: store.build(),
    }
}

type Op<'a> = Box<dyn FnMut() + 'a>;

fn operations<'a>(
    f: &'a Fixture,
    msg: &'a [u8],
    prepared: &'a Prepared,
) -> Vec<(&'static str, Op<'a>, Op<'a>)> {
    let limits: &'static Limits = Box::leak(Box::new(Limits::default()));
    let entity = &prepared.entity;
    vec![
        (
            "sign",
            Box::new(move || {
                let out = smime::sign_message(
                    msg,
                    &f.ours_id,
                    &SignMessageOptions::default(),
                    &mut rand_core::OsRng,
                    limits,
                )
                .unwrap();
                black_box(out);
            }),
            Box::new(move || {
                let cms = CmsContentInfo::sign(
                    Some(&f.ossl_cert),
                    Some(&f.ossl_key),
                    None,
                    Some(entity),
                    CMSOptions::DETACHED | CMSOptions::BINARY,
                )
                .unwrap();
                black_box(openssl::base64::encode_block(&cms.to_der().unwrap()));
            }),
        ),
        (
            "verify",
            Box::new(move || {
                let v = smime::verify_message(&prepared.ours_signed, &f.ours_trust, None, limits)
                    .unwrap();
                assert!(v.verification.is_valid());
            }),
            Box::new(move || {
                let mut cms = CmsContentInfo::smime_read_cms(&prepared.ours_signed).unwrap();
                cms.verify(
                    None,
                    Some(&f.ossl_store),
                    Some(&prepared.ours_signed_content),
                    None,
                    CMSOptions::BINARY,
                )
                .unwrap();
            }),
        ),
        (
            "encrypt",
            Box::new(move || {
                let out = smime::encrypt_message(
                    msg,
                    &[Recipient::new(f.ours_cert.clone())],
                    None,
                    &EncryptMessageOptions::default(),
                    &mut rand_core::OsRng,
                    limits,
                )
                .unwrap();
                black_box(out);
            }),
            Box::new(move || {
                let mut certs = Stack::new().unwrap();
                certs.push(f.ossl_cert.clone()).unwrap();
                let cms = CmsContentInfo::encrypt(
                    &certs,
                    entity,
                    Cipher::aes_256_cbc(),
                    CMSOptions::BINARY,
                )
                .unwrap();
                black_box(openssl::base64::encode_block(&cms.to_der().unwrap()));
            }),
        ),
        (
            "decrypt",
            Box::new(move || {
                let d = smime::decrypt_message(
                    &prepared.ours_encrypted,
                    &f.ours_id.key,
                    Some(&f.ours_cert),
                    None,
                    limits,
                )
                .unwrap();
                black_box(d);
            }),
            Box::new(move || {
                let cms = CmsContentInfo::smime_read_cms(&prepared.ours_encrypted).unwrap();
                black_box(cms.decrypt(&f.ossl_key, &f.ossl_cert).unwrap());
            }),
        ),
    ]
}

struct Prepared {
    entity: Vec<u8>,
    ours_signed: Vec<u8>,
    ours_signed_content: Vec<u8>,
    ours_encrypted: Vec<u8>,
}

fn prepare(f: &Fixture, msg: &[u8]) -> Prepared {
    let limits = Limits::default();
    let entity = sealgate::mime::split_for_protection(msg, &limits)
        .unwrap()
        .1;
    let ours_signed = smime::sign_message(
        msg,
        &f.ours_id,
        &SignMessageOptions::default(),
        &mut rand_core::OsRng,
        &limits,
    )
    .unwrap();
    let parts = sealgate::mime::parse_multipart_signed(&ours_signed, &limits)
        .unwrap()
        .unwrap();
    let ours_signed_content = sealgate::mime::canonicalize_crlf(parts.signed).into_owned();
    let ours_encrypted = smime::encrypt_message(
        msg,
        &[Recipient::new(f.ours_cert.clone())],
        None,
        &{
            let mut o = EncryptMessageOptions::default();
            o.cipher = ContentCipher::Aes256Cbc;
            o
        },
        &mut rand_core::OsRng,
        &limits,
    )
    .unwrap();
    Prepared {
        entity,
        ours_signed,
        ours_signed_content,
        ours_encrypted,
    }
}

/// Median seconds per call over `runs` calls (after one warm-up call).
fn median_time(op: &mut Op<'_>, runs: usize) -> f64 {
    op();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            op();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let f = fixture();
    let sizes = [("10KB", 10 * 1024), ("10MB", 10 * 1024 * 1024)];
    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let mut table = Vec::new();
    for (label, size) in sizes {
        let msg = message(size);
        let prepared = prepare(&f, &msg);
        let mut ops = operations(&f, &msg, &prepared);
        let mut group = criterion.benchmark_group(format!("smime-{label}"));
        group.throughput(Throughput::Bytes(msg.len() as u64));
        for (name, ours, theirs) in ops.iter_mut() {
            group.bench_function(BenchmarkId::new(*name, "sealgate"), |b| b.iter(&mut *ours));
            group.bench_function(BenchmarkId::new(*name, "openssl"), |b| b.iter(&mut *theirs));
        }
        group.finish();
        let runs = if size > 1_000_000 { 7 } else { 201 };
        for (name, ours, theirs) in ops.iter_mut() {
            // interleave so that both see the same machine state
            let a = median_time(ours, runs);
            let b = median_time(theirs, runs);
            table.push((label, *name, msg.len(), a, b));
        }
    }
    criterion.final_summary();
    println!();
    println!("| size | operation | sealgate | openssl (in-process) | ratio sealgate/openssl |");
    println!("| --- | --- | --- | --- | --- |");
    for (label, name, len, ours, theirs) in table {
        let fmt = |t: f64| {
            if len > 1_000_000 {
                format!("{:.0} MB/s", len as f64 / t / 1e6)
            } else {
                format!("{:.0} ops/s", 1.0 / t)
            }
        };
        println!(
            "| {label} | {name} | {} | {} | {:.2}x |",
            fmt(ours),
            fmt(theirs),
            theirs / ours
        );
    }
}
