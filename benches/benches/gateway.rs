//! Messages per second through `Gateway::process`: a typical outbound message of about 50 KB
//! (a text body and a PDF attachment), a policy of 20 rules (19 that are evaluated and do not
//! match: keywords, regexes, attachment names and types, headers, sender lists, sensitive
//! data; the last one signs and encrypts), S/MIME sign + encrypt to one partner (RSA-2048,
//! AES-256-CBC, no sender copy), the audit record written to a JSON Lines file. On one thread
//! and on two threads sharing one `Gateway`.
//!
//! Beside it, in the same run, the reference: OpenSSL's CMS (the `openssl` crate, in process)
//! doing only the cryptography of the same result on the same keys: `CMS_sign` (detached) of the
//! entity, the multipart/signed assembled by hand, `CMS_encrypt` of that, DER and base64. The
//! gateway also parses the message, inspects the attachment, runs the policy, looks the
//! partner's certificate up in the key store (chain check), unseals the signing key and writes
//! the audit record, so the ratio (OpenSSL's time / the gateway's; above 1 the gateway is faster) shows what the whole pipeline
//! costs against the bare crypto of one tool.
//!
//! Run: `cargo bench -p sealgate-benches --bench gateway`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::PKey;
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::X509;
use sealgate::audit::{AuditSink, JsonLinesSink};
use sealgate::keystore::{ImportOptions, Keyring, MemoryStore, StoreSecret};
use sealgate::policy::Policy;
use sealgate::smime::{self, CertificateParams, Curve, KeyKind, PrivateKey};
use sealgate::{Envelope, Gateway, Limits, Options};

const FROM: &str = "alice@example.com";
const TO: &str = "bob@partner.example";

/// 19 rules that are evaluated and do not match this message, then the one that does.
const POLICY: &str = r#"
internal_domains = ["example.com", "*.example.com"]

[lists]
blocked = ["spammer.example", "phish.example", "badguy@elsewhere.example"]
vip = ["ceo@example.com", "cfo@example.com"]

[patterns]
employee_id = "\\bEMP-[0-9]{6}\\b"

[[rule]]
name = "blocked-recipients"
when = { recipient = { list = "blocked" } }
action = { reject = "blocked" }
[[rule]]
name = "executables"
when = { attachment_type = ["executable", "script"] }
action = { reject = "no executables" }
[[rule]]
name = "executable-names"
when = { attachment_name = ["*.exe", "*.scr", "*.bat", "*.cmd", "*.js", "*.vbs", "*.ps1", "*.msi"] }
action = { reject = "no executables" }
[[rule]]
name = "encrypted-archives"
when = { uninspectable = "encrypted" }
action = { reject = "cannot inspect" }
[[rule]]
name = "classified-header"
when = { header = { name = "X-Classification", matches = "(?i)^(confidential|secret)$" } }
action = { zip = { password = "generate" } }
[[rule]]
name = "subject-confidential"
when = { subject_contains = ["confidential", "vertraulich", "secret", "internal only"] }
action = { zip = { password = "generate" } }
[[rule]]
name = "body-confidential"
when = { body_contains = ["strictly confidential", "streng vertraulich", "do not forward"] }
action = { zip = { password = "generate" } }
[[rule]]
name = "attachment-confidential"
when = { attachment_contains = ["CONFIDENTIAL", "TOP SECRET"] }
action = { zip = { password = "generate" } }
[[rule]]
name = "cards"
when = { sensitive = "payment_card" }
action = { encrypt = ["smime", "pgp"] }
[[rule]]
name = "ibans"
when = { sensitive = "iban", min_count = 3 }
action = { encrypt = ["smime", "zip"] }
[[rule]]
name = "employee-ids"
when = { sensitive = "employee_id", min_count = 5 }
action = { encrypt = ["smime", "zip"] }
[[rule]]
name = "finance-author"
when = { attachment_property = { author = "Finance*" } }
action = { encrypt = ["smime", "zip"] }
[[rule]]
name = "vip-senders"
when = { sender = { list = "vip" } }
action = [{ sign = "smime" }, { encrypt = ["smime", "zip"] }]
[[rule]]
name = "newsletter"
when = { sender = ["newsletter@example.com", "news-*@example.com"] }
action = { sign = "smime" }
[[rule]]
name = "big-messages"
when = { size_over = "20MB" }
action = { reject = "too large" }
[[rule]]
name = "invoice-subject"
when = { subject_matches = "(?i)\\binvoice\\s+#?[0-9]{5,}\\b" }
action = { encrypt = ["smime", "zip"] }
[[rule]]
name = "spreadsheets-out"
when = { all = [{ direction = "outbound" }, { attachment_type = ["excel", "spreadsheet"] }] }
action = { encrypt = ["smime", "zip"] }
[[rule]]
name = "macro-tag"
when = { attachment_type = "macro" }
action = { add_header = { name = "X-Warning", value = "macro" } }
[[rule]]
name = "internal-clear"
when = { direction = "internal" }
action = "none"
[[rule]]
name = "outbound-protect"
when = { direction = "outbound" }
action = [{ sign = "smime" }, { encrypt = ["smime", "pgp", "zip"] }]
"#;

/// About 50 KB: a plain text body and a PDF with text in an uncompressed content stream.
fn message() -> Vec<u8> {
    let words =
        "the quarterly figures show steady growth in every region and the team is on track ";
    let mut body = String::new();
    while body.len() < 8000 {
        body.push_str(words);
        if body.len() % 700 < words.len() {
            body.push_str("\r\n");
        }
    }
    let mut content = String::from("BT /F1 10 Tf 50 780 Td 12 TL\n");
    while content.len() < 31_000 {
        content.push_str("(Revenue by region and quarter, figures in thousands) Tj T*\n");
    }
    content.push_str("ET\n");
    let pdf = format!(
        "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
         2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n\
         3 0 obj << /Type /Page /Parent 2 0 R /Contents 4 0 R >> endobj\n\
         4 0 obj << /Length {} >>\nstream\n{content}endstream\nendobj\n\
         5 0 obj << /Title (Report) /Author (Alice Example) >> endobj\n\
         trailer << /Root 1 0 R /Info 5 0 R >>\n%%EOF\n",
        content.len()
    );
    let b64 = openssl::base64::encode_block(pdf.as_bytes());
    let mut att = String::new();
    for chunk in b64.as_bytes().chunks(76) {
        att.push_str(std::str::from_utf8(chunk).unwrap());
        att.push_str("\r\n");
    }
    format!(
        "From: Alice Example <{FROM}>\r\nTo: Bob Partner <{TO}>\r\nSubject: Q4 report\r\n\
         Date: Wed, 02 Dec 2026 10:00:00 +0000\r\nMessage-ID: <bench@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{body}\r\n--b1\r\n\
         Content-Type: application/pdf; name=\"report.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{att}--b1--\r\n"
    )
    .into_bytes()
}

struct World {
    gateway: Gateway,
    _dir: tempfile::TempDir,
    alice_key: PKey<openssl::pkey::Private>,
    alice_cert: X509,
    bob_cert: X509,
}

fn world() -> World {
    let rng = &mut rand_core::OsRng;
    let ca_key = PrivateKey::generate(KeyKind::Ec(Curve::P256)).unwrap();
    let ca = smime::issue::self_signed(&ca_key, &CertificateParams::ca("Bench CA"), rng).unwrap();
    let mut issue = |name: &str, email: &str| {
        let key = PrivateKey::generate(KeyKind::Rsa(2048)).unwrap();
        let params = CertificateParams::user(name, email);
        let cert = smime::issue::issue(key.public_key(), &params, &ca, &ca_key, rng).unwrap();
        (key, cert)
    };
    let (alice_key, alice_cert) = issue("Alice", FROM);
    let (_bob_key, bob_cert) = issue("Bob", TO);
    let pem = |c: &smime::Certificate| smime::pem::encode("CERTIFICATE", c.der());
    let alice_pkcs8 = alice_key.to_pkcs8_der().unwrap();
    let mut alice_bundle = pem(&alice_cert);
    alice_bundle.push_str(&smime::pem::encode("PRIVATE KEY", &alice_pkcs8));

    let keyring = Keyring::open(
        Arc::new(MemoryStore::new()),
        Some(&StoreSecret::raw_key_from_hex(&"17".repeat(32)).unwrap()),
        Limits::default(),
    )
    .unwrap();
    let anchors = ImportOptions {
        trust_anchors: true,
        ..Default::default()
    };
    keyring
        .import(&[("ca.pem", pem(&ca).as_bytes())], &anchors)
        .unwrap();
    keyring
        .import(
            &[
                ("alice.pem", alice_bundle.as_bytes()),
                ("bob.pem", pem(&bob_cert).as_bytes()),
            ],
            &ImportOptions::default(),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sink: Arc<dyn AuditSink> =
        Arc::new(JsonLinesSink::open(dir.path().join("audit.jsonl")).unwrap());
    let mut options = Options::default();
    options.sender_copy = false;
    let gateway = Gateway::builder()
        .policy(Policy::from_toml(POLICY, None).unwrap())
        .keyring(keyring)
        .options(options)
        .audit(sink)
        .build()
        .unwrap();
    World {
        gateway,
        _dir: dir,
        alice_key: PKey::private_key_from_pkcs8(&alice_pkcs8).unwrap(),
        alice_cert: X509::from_der(alice_cert.der()).unwrap(),
        bob_cert: X509::from_der(bob_cert.der()).unwrap(),
    }
}

fn envelope() -> Envelope {
    Envelope {
        mail_from: Some(FROM.into()),
        rcpt_to: vec![TO.into()],
    }
}

fn process(w: &World, msg: &[u8], env: &Envelope) {
    let out = w.gateway.process(msg, env).unwrap();
    assert_eq!(out.deliveries.len(), 1);
    assert_eq!(out.deliveries[0].treatment, "signed:smime+smime");
    black_box(out);
}

/// OpenSSL doing the cryptography of the same result: sign the entity (detached), build the
/// multipart/signed, encrypt it (AES-256-CBC), DER and base64.
fn openssl_sign_encrypt(w: &World, entity: &[u8], certs: &Stack<X509>) {
    let sig = CmsContentInfo::sign(
        Some(&w.alice_cert),
        Some(&w.alice_key),
        None,
        Some(entity),
        CMSOptions::DETACHED | CMSOptions::BINARY,
    )
    .unwrap();
    let sig64 = openssl::base64::encode_block(&sig.to_der().unwrap());
    let mut signed = Vec::with_capacity(entity.len() + sig64.len() + 300);
    signed.extend_from_slice(
        b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; \
          micalg=sha-256; boundary=\"s1\"\r\n\r\n--s1\r\n",
    );
    signed.extend_from_slice(entity);
    signed.extend_from_slice(
        b"\r\n--s1\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
          Content-Transfer-Encoding: base64\r\n\r\n",
    );
    signed.extend_from_slice(sig64.as_bytes());
    signed.extend_from_slice(b"\r\n--s1--\r\n");
    let enc =
        CmsContentInfo::encrypt(certs, &signed, Cipher::aes_256_cbc(), CMSOptions::BINARY).unwrap();
    black_box(openssl::base64::encode_block(&enc.to_der().unwrap()));
}

/// Messages per second over `n` messages on `threads` threads sharing the gateway.
fn rate(w: &World, msg: &[u8], threads: usize, n: usize) -> f64 {
    let env = envelope();
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..n / threads {
                    process(w, msg, &env);
                }
            });
        }
    });
    (n / threads * threads) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let w = world();
    let msg = message();
    let env = envelope();
    // The entity OpenSSL signs: the message from its Content-Type field on.
    let at = msg.windows(13).position(|x| x == b"Content-Type:").unwrap();
    let entity = msg[at..].to_vec();
    let mut certs = Stack::new().unwrap();
    certs.push(w.bob_cert.clone()).unwrap();

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let mut g = c.benchmark_group(format!("gateway-{}KB", msg.len() / 1024));
    g.throughput(Throughput::Elements(1));
    g.bench_function("process/1-thread", |b| b.iter(|| process(&w, &msg, &env)));
    g.bench_function("process/2-threads", |b| {
        b.iter_custom(|iters| {
            let n = (iters as usize).max(2);
            let r = rate(&w, &msg, 2, n);
            Duration::from_secs_f64(iters as f64 / r)
        })
    });
    g.bench_function("openssl-sign+encrypt/1-thread", |b| {
        b.iter(|| openssl_sign_encrypt(&w, &entity, &certs))
    });
    g.finish();
    c.final_summary();

    // The table: the three measured back to back, twice, so that load from other processes
    // hits both sides alike.
    println!();
    println!(
        "message {} bytes, policy {} rules, S/MIME sign+encrypt to one partner",
        msg.len(),
        Policy::from_toml(POLICY, None)
            .unwrap()
            .rule_names()
            .count()
    );
    println!(
        "| round | gateway 1 thread | gateway 2 threads | 2-thread scaling | openssl sign+encrypt 1 thread | ratio (OpenSSL time / gateway time, 1 thread) |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for round in 1..=2 {
        let one = rate(&w, &msg, 1, 200);
        let two = rate(&w, &msg, 2, 400);
        let start = Instant::now();
        for _ in 0..200 {
            openssl_sign_encrypt(&w, &entity, &certs);
        }
        let ossl = 200.0 / start.elapsed().as_secs_f64();
        println!(
            "| {round} | {one:.0} msg/s | {two:.0} msg/s | {:.2}x | {ossl:.0} msg/s | {:.2}x |",
            two / one,
            one / ossl
        );
    }
}
