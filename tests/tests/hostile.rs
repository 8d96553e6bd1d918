//! The hostile-input corpus: one test per attack (files in `tests/hostile/`, described with the
//! expected answer in `tests/hostile/NOTES.md`; the huge inputs are generated here).
//!
//! Every case runs in a child process of this test binary (the test re-executes itself with
//! `SEALGATE_HOSTILE_CASE=<name>`), so that its memory is measured alone: the binary's global
//! allocator is the `cap` crate's counting allocator, capped at 256 MiB in the child (an
//! allocation past the cap aborts the child, which fails the test), and the child asserts its
//! peak heap (input included) stays under 256 MiB and the attack is answered within 2 s. Both
//! figures are printed (`HOSTILE <case>: ...`) and the parent prints them too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::process::Command;
use std::time::{Duration, Instant};

use cap::Cap;
use rand_core::OsRng;
use sealgate::mime::{self, Entity};
use sealgate::smime::issue::{self, CertificateParams};
use sealgate::smime::{
    self, Certificate, ContentCipher, EncryptMessageOptions, Error, Identity, KeyKind, PrivateKey,
    Recipient, SignMessageOptions, TrustStore, VerifyOptions, enveloped,
};
use sealgate::{Limits, pgp};

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

const MAX_HEAP: usize = 256 << 20;
const MAX_TIME: Duration = Duration::from_secs(2);
const CASE_VAR: &str = "SEALGATE_HOSTILE_CASE";

/// Run `attack` on what `prepare` makes, in a child process with the heap capped; `attack` is
/// timed, the heap peak covers both (so the input counts against the 256 MiB).
fn hostile<T>(name: &str, prepare: impl FnOnce() -> T, attack: impl FnOnce(T)) {
    hostile_within(name, MAX_TIME, prepare, attack);
}

/// [`hostile`] with another time budget, for the few checks that are not an attack's answer
/// but legitimate work that must stay in bounded memory.
fn hostile_within<T>(
    name: &str,
    budget: Duration,
    prepare: impl FnOnce() -> T,
    attack: impl FnOnce(T),
) {
    if std::env::var(CASE_VAR).as_deref() == Ok(name) {
        ALLOC.set_limit(MAX_HEAP).expect("cap the heap");
        let input = prepare();
        let start = Instant::now();
        attack(input);
        let took = start.elapsed();
        let peak = ALLOC.max_allocated();
        // The Rust heap misses what C libraries (aws-lc, OpenSSL under sequoia) allocate:
        // the process's peak resident set covers everything.
        let rss = peak_rss();
        println!(
            "HOSTILE {name}: answered in {:.3} s, peak Rust heap {:.1} MiB, peak RSS {}",
            took.as_secs_f64(),
            peak as f64 / (1 << 20) as f64,
            rss.map_or("unknown".into(), |r| format!(
                "{:.1} MiB",
                r as f64 / (1 << 20) as f64
            ))
        );
        assert!(took < budget, "{name}: took {took:?}");
        assert!(peak < MAX_HEAP, "{name}: peak heap {peak} bytes");
        assert!(
            rss.is_none_or(|r| r < MAX_HEAP),
            "{name}: peak RSS {rss:?} bytes"
        );
        return;
    }
    // One child at a time: the 2 s are the case's own, not shared with a sibling's.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE_VAR, name)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The harness prints "test NAME ... " before the case's own line.
    for line in stdout
        .lines()
        .filter_map(|l| l.find("HOSTILE ").map(|i| &l[i..]))
    {
        println!("{line}");
    }
    assert!(
        out.status.success() && stdout.contains(&format!("HOSTILE {name}:")),
        "{name} failed in its child ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// VmHWM of this process in bytes (Linux); `None` elsewhere.
fn peak_rss() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn corpus(file: &str) -> Vec<u8> {
    let p = format!("{}/hostile/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn data(file: &str) -> Vec<u8> {
    let p = format!("{}/data/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn is_limit(e: &sealgate::mime::Error) -> bool {
    matches!(e, sealgate::mime::Error::LimitExceeded { .. })
}

/// Everything a caller can ask of a parsed message, depth first; the first error, and the
/// number of entities seen.
fn walk(raw: &[u8], limits: &Limits) -> (usize, Option<sealgate::mime::Error>) {
    fn go(e: &Entity<'_>, limits: &Limits, seen: &mut usize) -> Result<(), mime::Error> {
        *seen += 1;
        for h in e.headers() {
            let _ = h.value();
        }
        let _ = (e.content_type(), e.transfer_encoding(), e.filename());
        let _ = e.decoded_body(limits)?;
        for p in e.parts(limits)? {
            go(&p, limits, seen)?;
        }
        if let Some(m) = e.embedded_message(limits)? {
            go(&m, limits, seen)?;
        }
        Ok(())
    }
    let mut seen = 0;
    let r = Entity::parse(raw, limits).and_then(|e| go(&e, limits, &mut seen));
    (seen, r.err())
}

// ---------------------------------------------------------------------------------------------
// MIME bombs

#[test]
fn mime_nested_10000_multiparts() {
    hostile(
        "mime_nested_10000_multiparts",
        || {
            let mut m = b"From: a@example.com\r\nMIME-Version: 1.0\r\n".to_vec();
            for i in 0..10_000 {
                m.extend_from_slice(
                    format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                        .as_bytes(),
                );
            }
            m.extend_from_slice(b"Content-Type: text/plain\r\n\r\ndeep\r\n");
            m
        },
        |m| {
            let limits = Limits::default();
            let (seen, err) = walk(&m, &limits);
            let err = err.expect("depth limit");
            assert!(is_limit(&err), "{err}");
            assert!(seen <= limits.max_mime_depth + 1, "{seen}");
            assert!(smime::verify_message(&m, &TrustStore::new(vec![]), None, &limits).is_err());
        },
    );
}

#[test]
fn mime_million_parts() {
    hostile(
        "mime_million_parts",
        || {
            let mut m = b"From: a@example.com\r\nMIME-Version: 1.0\r\n\
                Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                .to_vec();
            for _ in 0..1_000_000 {
                m.extend_from_slice(b"--b\r\n\r\nx\r\n");
            }
            m.extend_from_slice(b"--b--\r\n");
            m
        },
        |m| {
            let limits = Limits::default();
            let e = Entity::parse(&m, &limits).unwrap();
            let err = e.parts(&limits).expect_err("part limit");
            assert!(
                matches!(err, mime::Error::LimitExceeded { what, .. } if what.contains("part")),
                "{err}"
            );
        },
    );
}

#[test]
fn mime_million_parts_spread() {
    hostile(
        "mime_million_parts_spread",
        || {
            // 100 multiparts of 9,999 parts each: every multipart is under max_parts, the
            // message holds a million.
            let mut m = b"From: a@example.com\r\nMIME-Version: 1.0\r\n\
                Content-Type: multipart/mixed; boundary=top\r\n\r\n"
                .to_vec();
            for _ in 0..100 {
                m.extend_from_slice(b"--top\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
                for _ in 0..9_999 {
                    m.extend_from_slice(b"--b\r\n\r\nx\r\n");
                }
                m.extend_from_slice(b"--b--\r\n");
            }
            m.extend_from_slice(b"--top--\r\n");
            m
        },
        |m| {
            let limits = Limits::default();
            let (seen, err) = walk(&m, &limits);
            println!("spread parts: walked {seen} entities, error {err:?}");
            let err = err.expect("message-wide part limit");
            assert!(is_limit(&err), "{err}");
            assert!(seen <= limits.max_parts + 1, "{seen}");
        },
    );
}

#[test]
fn mime_100mb_header_line() {
    hostile(
        "mime_100mb_header_line",
        || {
            let mut m = Vec::with_capacity(100_000_100);
            m.extend_from_slice(b"From: a@example.com\r\nSubject: ");
            m.resize(m.len() + 100_000_000, b'a');
            m.extend_from_slice(b"\r\n\r\nbody\r\n");
            m
        },
        |m| {
            let limits = Limits::default();
            let err = Entity::parse(&m, &limits).expect_err("header line limit");
            assert!(is_limit(&err), "{err}");
            assert!(matches!(
                smime::classify(&m, &limits),
                Err(Error::Mime(mime::Error::LimitExceeded { .. }))
            ));
        },
    );
}

#[test]
fn mime_million_header_fields() {
    hostile(
        "mime_million_header_fields",
        || {
            let mut m = Vec::with_capacity(9_000_000);
            for _ in 0..1_000_000 {
                m.extend_from_slice(b"X-A: b\r\n");
            }
            m.extend_from_slice(b"\r\nbody\r\n");
            m
        },
        |m| {
            let err = Entity::parse(&m, &Limits::default()).expect_err("header count limit");
            assert!(is_limit(&err), "{err}");
        },
    );
}

#[test]
fn mime_unterminated_boundary() {
    hostile(
        "mime_unterminated_boundary",
        || corpus("mime-unterminated-boundary.eml"),
        |m| {
            let limits = Limits::default();
            let e = Entity::parse(&m, &limits).unwrap();
            // Both parts are found; the last runs to the end of the message.
            let parts = e.parts(&limits).unwrap();
            assert_eq!(parts.len(), 2);
            assert!(parts[1].body().starts_with(b"<p>second part, never closed"));
            assert_eq!(walk(&m, &limits).1.map(|e| e.to_string()), None);
        },
    );
}

#[test]
fn mime_boundary_collision() {
    hostile(
        "mime_boundary_collision",
        || corpus("mime-boundary-collision.eml"),
        |m| {
            let limits = Limits::default();
            let e = Entity::parse(&m, &limits).unwrap();
            let parts = e.parts(&limits).unwrap();
            // "--outer-inner" and "--outerX" are not delimiters of "outer" (RFC 2046 §5.1.1).
            assert_eq!(parts.len(), 2, "outer parts");
            let inner = parts[0].parts(&limits).unwrap();
            assert_eq!(inner.len(), 2, "inner parts");
            assert_eq!(inner[1].decoded_body(&limits).unwrap(), b"<b>inner two</b>");
            assert!(parts[1].body().windows(8).any(|w| w == b"--outerX"));
        },
    );
}

#[test]
fn mime_base64_malformed() {
    hostile(
        "mime_base64_malformed",
        || corpus("mime-base64-malformed.eml"),
        |m| {
            let limits = Limits::default();
            let e = Entity::parse(&m, &limits).unwrap();
            // Stray characters in base64 are an error (whitespace alone is skipped).
            let r = e.decoded_body(&limits);
            assert!(matches!(r, Err(mime::Error::Malformed { .. })), "{r:?}");
        },
    );
}

#[test]
fn mime_quoted_printable_malformed() {
    hostile(
        "mime_quoted_printable_malformed",
        || corpus("mime-qp-malformed.eml"),
        |m| {
            let limits = Limits::default();
            let e = Entity::parse(&m, &limits).unwrap();
            let b = e.decoded_body(&limits).unwrap();
            assert!(b.len() <= e.body().len());
            // Bad escapes are kept literally, good ones decoded.
            assert!(
                b.windows(3).any(|w| w == b"=ZZ"),
                "{:?}",
                String::from_utf8_lossy(&b)
            );
            assert!(b.windows(30).any(|w| w == [b'A'; 30]));
        },
    );
}

#[test]
fn mime_charset_tricks() {
    hostile(
        "mime_charset_tricks",
        || corpus("mime-charset-tricks.eml"),
        |m| {
            let limits = Limits::default();
            let e = Entity::parse(&m, &limits).unwrap();
            // The UTF-7 display name decodes to whatever it likes; the address is the one
            // outside the encoded word.
            let from = e.header_field("From").unwrap();
            assert_eq!(mime::mailboxes(from.raw_value()), ["mallory@evil.example"]);
            let _ = e.header("Subject");
            let (seen, err) = walk(&m, &limits);
            assert!(err.is_none(), "{err:?}");
            assert_eq!(seen, 4);
            // The RTL override stays in the file name, visible to a policy that looks for it.
            let parts = e.parts(&limits).unwrap();
            let name = parts[1].filename().unwrap();
            assert!(
                name.contains('\u{202E}') && name.ends_with("fdp.exe"),
                "{name:?}"
            );
        },
    );
}

// ---------------------------------------------------------------------------------------------
// DER / BER

fn der_attack(raw: &[u8]) {
    let limits = Limits::default();
    let key = PrivateKey::from_der(&data("fuzz/key.der"), &limits).unwrap();
    let trust = TrustStore::new(vec![]);
    assert!(smime::verify(raw, None, &trust, &VerifyOptions::default(), &limits).is_err());
    assert!(enveloped::decrypt(raw, &key, None, &limits).is_err());
    assert!(Certificate::load_all(raw, &limits).is_err());
    assert!(smime::load_private_key(raw, None, &limits).is_err());
}

/// Input that is not even BER: the normaliser refuses it too.
fn ber_and_der_attack(raw: &[u8]) {
    assert!(smime::ber::to_der(raw, &Limits::default()).is_err());
    der_attack(raw);
}

#[test]
fn der_overlong_length() {
    hostile(
        "der_overlong_length",
        || corpus("der-overlong-length.der"),
        |d| ber_and_der_attack(&d),
    );
}

#[test]
fn der_length_overflow() {
    hostile(
        "der_length_overflow",
        || corpus("der-length-overflow.der"),
        |d| ber_and_der_attack(&d),
    );
}

#[test]
fn der_indefinite_unterminated() {
    hostile(
        "der_indefinite_unterminated",
        || corpus("der-indefinite-unterminated.der"),
        |d| ber_and_der_attack(&d),
    );
}

#[test]
fn der_nonminimal_length() {
    hostile(
        "der_nonminimal_length",
        || corpus("der-nonminimal-length.der"),
        |d| {
            let limits = Limits::default();
            let trust = TrustStore::new(vec![]);
            assert!(smime::verify(&d, None, &trust, &VerifyOptions::default(), &limits).is_err());
            assert!(Certificate::load_all(&d, &limits).is_err());
        },
    );
}

/// DER TLV with a definite length.
fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let b = n.to_be_bytes();
        let skip = b.iter().take_while(|&&x| x == 0).count();
        out.push(0x80 | (b.len() - skip) as u8);
        out.extend_from_slice(&b[skip..]);
    }
    out.extend_from_slice(body);
    out
}

const SIGNED_DATA_OID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
];

#[test]
fn der_deep_nesting_indefinite() {
    hostile(
        "der_deep_nesting_indefinite",
        || {
            let mut d = b"\x30\x80".repeat(100_000);
            d.extend_from_slice(&b"\x00\x00".repeat(100_000));
            d
        },
        |d| {
            let limits = Limits::default();
            assert!(matches!(
                smime::ber::to_der(&d, &limits),
                Err(Error::LimitExceeded { .. })
            ));
            der_attack(&d);
        },
    );
}

#[test]
fn der_deep_nesting_definite() {
    hostile(
        "der_deep_nesting_definite",
        || {
            // 20,000 nested SEQUENCEs inside a ContentInfo (definite lengths: already DER).
            let mut d = Vec::new();
            for _ in 0..20_000 {
                d = tlv(0x30, &d);
            }
            tlv(0x30, &[SIGNED_DATA_OID, &tlv(0xa0, &d)].concat())
        },
        |d| der_attack(&d),
    );
}

#[test]
fn der_huge_integer() {
    hostile(
        "der_huge_integer",
        || {
            // SignedData whose version INTEGER is 4 MiB long.
            let mut int = vec![0x01u8; 4 << 20];
            int[0] = 0x7f;
            let sd = tlv(0x30, &tlv(0x02, &int));
            tlv(0x30, &[SIGNED_DATA_OID, &tlv(0xa0, &sd)].concat())
        },
        |d| der_attack(&d),
    );
}

/// Every prefix of a real CMS file fails with a typed error, each within the time bound.
fn truncations(file: &str, run: impl Fn(&[u8]) -> bool) {
    let whole = data(file);
    assert!(run(&whole), "{file}: the whole file must work");
    let mut slowest = Duration::ZERO;
    for n in 0..whole.len() {
        let start = Instant::now();
        assert!(!run(&whole[..n]), "{file} truncated at {n} accepted");
        slowest = slowest.max(start.elapsed());
    }
    println!("{file}: {} truncations, slowest {slowest:?}", whole.len());
    assert!(slowest < MAX_TIME);
}

#[test]
fn cms_signed_truncated_at_every_offset() {
    hostile(
        "cms_signed_truncated_at_every_offset",
        || (),
        |()| {
            let limits = Limits::default();
            let trust = TrustStore::new(vec![
                Certificate::load(&data("smime/root.pem"), &limits).unwrap(),
            ]);
            for file in ["smime/rsa-opaque.der", "smime/rsa-opaque-ber.der"] {
                truncations(file, |d| {
                    smime::verify(d, None, &trust, &VerifyOptions::default(), &limits)
                        .is_ok_and(|v| v.is_valid())
                });
            }
        },
    );
}

#[test]
fn cms_enveloped_truncated_at_every_offset() {
    hostile(
        "cms_enveloped_truncated_at_every_offset",
        || (),
        |()| {
            let limits = Limits::default();
            let key = PrivateKey::from_der(&data("smime/enveloped/rsa1.pk8.der"), &limits).unwrap();
            let content = data("smime/enveloped/content.txt");
            for file in [
                "smime/enveloped/rsa-aes256.der",
                "smime/enveloped/rsa-gcm.der",
            ] {
                truncations(file, |d| match enveloped::decrypt(d, &key, None, &limits) {
                    Ok(p) => p.content[..] == content[..],
                    Err(_) => false,
                });
            }
        },
    );
}

// A tiny DER reader for the structural edits below (our own test inputs, not a parser under
// test).
fn children(body: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (hdr, len) = header(rest);
        out.push(&rest[..hdr + len]);
        rest = &rest[hdr + len..];
    }
    out
}

fn header(d: &[u8]) -> (usize, usize) {
    let l = d[1] as usize;
    if l < 0x80 {
        (2, l)
    } else {
        let n = l & 0x7f;
        let len = d[2..2 + n]
            .iter()
            .fold(0usize, |a, &b| (a << 8) | b as usize);
        (2 + n, len)
    }
}

fn value(t: &[u8]) -> &[u8] {
    &t[header(t).0..]
}

/// A copy of a ContentInfo whose inner SEQUENCE's element `index` (a SET) holds its first
/// member `copies` times.
fn multiply_set_member(ci: &[u8], index: usize, copies: usize) -> Vec<u8> {
    let top = children(value(ci));
    let inner = children(value(top[1]))[0];
    let mut fields: Vec<Vec<u8>> = children(value(inner)).iter().map(|f| f.to_vec()).collect();
    let member = children(value(&fields[index]))[0].to_vec();
    fields[index] = tlv(0x31, &member.repeat(copies));
    let inner = tlv(0x30, &fields.concat());
    tlv(0x30, &[top[0], &tlv(0xa0, &inner)].concat())
}

#[test]
fn cms_thousands_of_signer_infos() {
    hostile(
        "cms_thousands_of_signer_infos",
        || {
            let d = data("smime/rsa-opaque.der");
            let fields = children(value(children(value(children(value(&d))[1]))[0])).len();
            multiply_set_member(&d, fields - 1, 5000)
        },
        |d| {
            let limits = Limits::default();
            let r = smime::verify(
                &d,
                None,
                &TrustStore::new(vec![]),
                &VerifyOptions::default(),
                &limits,
            );
            assert!(
                matches!(r, Err(Error::LimitExceeded { what, .. }) if what.contains("signer")),
                "{r:?}"
            );
        },
    );
}

#[test]
fn cms_thousands_of_recipient_infos() {
    hostile(
        "cms_thousands_of_recipient_infos",
        || multiply_set_member(&data("smime/enveloped/rsa-aes256.der"), 1, 5000),
        |d| {
            let limits = Limits::default();
            let key = PrivateKey::from_der(&data("smime/enveloped/rsa1.pk8.der"), &limits).unwrap();
            let r = enveloped::decrypt(&d, &key, None, &limits);
            assert!(
                matches!(
                    r,
                    Err(Error::LimitExceeded {
                        what: "recipients",
                        ..
                    })
                ),
                "{r:?}"
            );
        },
    );
}

// ---------------------------------------------------------------------------------------------
// EFAIL: CBC malleability

struct Party {
    trust: TrustStore,
    alice: Identity,
    bob: Identity,
}

fn party() -> Party {
    let ca_key = PrivateKey::generate(KeyKind::Ec(smime::Curve::P256)).unwrap();
    let ca = issue::self_signed(&ca_key, &CertificateParams::ca("Hostile CA"), &mut OsRng).unwrap();
    let user = |name: &str, email: &str, kind| {
        let key = PrivateKey::generate(kind).unwrap();
        let cert = issue::issue(
            key.public_key(),
            &CertificateParams::user(name, email),
            &ca,
            &ca_key,
            &mut OsRng,
        )
        .unwrap();
        Identity::new(key, cert, vec![]).unwrap()
    };
    Party {
        alice: user(
            "Alice",
            "alice@example.com",
            KeyKind::Ec(smime::Curve::P256),
        ),
        bob: user("Bob", "bob@example.org", KeyKind::Ec(smime::Curve::P256)),
        trust: TrustStore::new(vec![ca]),
    }
}

const SECRET: &[u8] = b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\n\
    Subject: Merger\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
    <html><body><p>The merger is signed. Price: 42 per share. Keep this quiet until Monday, \
    please, and delete this message once read.</p></body></html>\r\n";

/// Flip CBC ciphertext so that the plaintext block `j` becomes `want` (block `j - 1` turns to
/// garbage): the EFAIL "CBC gadget". Returns the new message.
fn cbc_gadget(message: &[u8], plain: &[u8], j: usize, want: &[u8; 16]) -> Vec<u8> {
    let limits = Limits::default();
    let p = mime::parse_pkcs7_mime(message, &limits).unwrap().unwrap();
    let der = smime::ber::to_der(&p.der, &limits).unwrap().into_owned();
    // ContentInfo -> [0] -> EnvelopedData { version, recipientInfos, encryptedContentInfo }
    let top = children(value(&der));
    let ed = children(value(top[1]))[0];
    let fields: Vec<&[u8]> = children(value(ed));
    let eci = *fields.last().unwrap();
    let eci_fields = children(value(eci));
    let mut ct = value(eci_fields[2]).to_vec();
    for i in 0..16 {
        ct[(j - 1) * 16 + i] ^= plain[j * 16 + i] ^ want[i];
    }
    let eci = tlv(
        0x30,
        &[eci_fields[0], eci_fields[1], &tlv(0x80, &ct)].concat(),
    );
    let mut new_fields: Vec<&[u8]> = fields[..fields.len() - 1].to_vec();
    new_fields.push(&eci);
    let ed = tlv(0x30, &new_fields.concat());
    let der = tlv(0x30, &[top[0], &tlv(0xa0, &ed)].concat());
    let mut out =
        b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nMIME-Version: 1.0\r\n".to_vec();
    out.extend_from_slice(&mime::build_base64_entity(
        "application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"",
        Some("smime.p7m"),
        &der,
    ));
    out
}

#[test]
fn efail_cbc_gadget_unsigned() {
    hostile("efail_cbc_gadget_unsigned", party, |p| {
        let limits = Limits::default();
        let enc = smime::encrypt_message(
            SECRET,
            &[Recipient::new(p.bob.cert.clone())],
            None,
            &EncryptMessageOptions::default(),
            &mut OsRng,
            &limits,
        )
        .unwrap();
        let d = smime::decrypt_message(&enc, &p.bob.key, Some(&p.bob.cert), None, &limits).unwrap();
        // Unauthenticated CBC: flagged even before anybody tampers with it.
        assert!(!d.authenticated);
        // The entity as encrypted (canonical CRLF), to know where the blocks fall.
        let (_, entity) = mime::split_for_protection(SECRET, &limits).unwrap();
        let attacked = cbc_gadget(&enc, &entity, 6, b"<img src='http:/");
        let d = smime::decrypt_message(&attacked, &p.bob.key, Some(&p.bob.cert), None, &limits)
            .unwrap();
        // The gadget works (that is what CBC allows) and the result says it is not authentic.
        assert!(d.message.windows(16).any(|w| w == b"<img src='http:/"));
        assert!(!d.authenticated);
    });
}

#[test]
fn efail_cbc_gadget_signed() {
    hostile("efail_cbc_gadget_signed", party, |p| {
        let limits = Limits::default();
        let enc = smime::encrypt_message(
            SECRET,
            &[Recipient::new(p.bob.cert.clone())],
            Some((&p.alice, &SignMessageOptions::default())),
            &EncryptMessageOptions::default(),
            &mut OsRng,
            &limits,
        )
        .unwrap();
        let d = smime::decrypt_message(&enc, &p.bob.key, None, Some(&p.trust), &limits).unwrap();
        // CBC with a valid inner signature: authenticated.
        assert!(d.signature.as_ref().unwrap().verification.is_valid());
        assert!(d.authenticated);
        let plain = smime::enveloped::decrypt(
            &mime::parse_pkcs7_mime(&enc, &limits).unwrap().unwrap().der,
            &p.bob.key,
            None,
            &limits,
        )
        .unwrap();
        let content = &plain.content[..];
        // A gadget in the signed text: the message still decrypts, the signature no longer
        // verifies, and the result is not authenticated.
        let text = content
            .windows(10)
            .position(|w| w == b"The merger")
            .unwrap();
        let attacked = cbc_gadget(&enc, content, text / 16 + 2, b"<img src='http:/");
        let d =
            smime::decrypt_message(&attacked, &p.bob.key, None, Some(&p.trust), &limits).unwrap();
        assert!(d.message.windows(16).any(|w| w == b"<img src='http:/"));
        assert!(!d.signature.unwrap().verification.is_valid());
        assert!(!d.authenticated);
        // A gadget in the signature part: the signature cannot even be read, and nothing is
        // returned (fail closed).
        let sig = content
            .windows(11)
            .rposition(|w| w == b"smime.p7s\r\n")
            .unwrap();
        let attacked = cbc_gadget(&enc, content, sig / 16 + 8, b"<img src='http:/");
        let r = smime::decrypt_message(&attacked, &p.bob.key, None, Some(&p.trust), &limits);
        assert!(
            matches!(r, Err(Error::Mime(_) | Error::Malformed { .. })),
            "{:?}",
            r.map(|_| ())
        );
    });
}

#[test]
fn efail_gcm_bit_flip() {
    hostile("efail_gcm_bit_flip", party, |p| {
        let limits = Limits::default();
        let mut opts = EncryptMessageOptions::default();
        opts.cipher = ContentCipher::Aes256Gcm;
        let enc = smime::encrypt_message(
            SECRET,
            &[Recipient::new(p.bob.cert.clone())],
            None,
            &opts,
            &mut OsRng,
            &limits,
        )
        .unwrap();
        let ok = smime::decrypt_message(&enc, &p.bob.key, None, None, &limits).unwrap();
        assert!(ok.authenticated);
        let der = mime::parse_pkcs7_mime(&enc, &limits).unwrap().unwrap().der;
        // Flip one bit in the last 100 bytes (ciphertext and tag) one at a time.
        for off in der.len() - 100..der.len() {
            let mut bad = der.clone();
            bad[off] ^= 0x04;
            let r = enveloped::decrypt(&bad, &p.bob.key, None, &limits);
            assert!(r.is_err(), "flip at {off} accepted");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// OpenPGP

#[test]
fn pgp_without_mdc() {
    hostile(
        "pgp_without_mdc",
        || {
            let limits = Limits::default();
            (
                pgp::SecretKey::load(&data("pgp/rsa.sec.asc"), None, &limits).unwrap(),
                data("pgp/gpg-rsa-sed.pgp"),
            )
        },
        |(key, msg)| {
            let r = pgp::decrypt(&msg, &[key], &[], &Limits::default());
            assert!(
                matches!(r, Err(pgp::Error::MissingIntegrityProtection)),
                "{:?}",
                r.map(|_| ())
            );
        },
    );
}

#[test]
fn pgp_compression_bomb() {
    hostile(
        "pgp_compression_bomb",
        || {
            let limits = Limits::default();
            (
                pgp::SecretKey::load(&data("pgp/rsa.sec.asc"), None, &limits).unwrap(),
                corpus("pgp-bomb-64m.pgp"),
            )
        },
        |(key, msg)| {
            // 85 KB that inflate to 64 MiB: over a 16 MiB plaintext limit it stops.
            let mut limits = Limits::default();
            limits.max_message_bytes = 16 << 20;
            let r = pgp::decrypt(&msg, &[key], &[], &limits);
            assert!(
                matches!(
                    r,
                    Err(pgp::Error::LimitExceeded {
                        what: "plaintext size",
                        ..
                    })
                ),
                "{:?}",
                r.map(|_| ())
            );
        },
    );
}

/// The same bomb under the default limit (256 MiB of plaintext) is a legitimate 64 MiB message:
/// read whole, in memory bounded by the plaintext. Not an attack's answer, so not held to the
/// 2 s: an unoptimised test build pushes 64 MiB through sequoia's reader stack slowly.
#[test]
fn pgp_compression_bomb_under_default_limit() {
    hostile_within(
        "pgp_compression_bomb_under_default_limit",
        Duration::from_secs(60),
        || {
            let limits = Limits::default();
            (
                pgp::SecretKey::load(&data("pgp/rsa.sec.asc"), None, &limits).unwrap(),
                corpus("pgp-bomb-64m.pgp"),
            )
        },
        |(key, msg)| {
            let d = pgp::decrypt(&msg, &[key], &[], &Limits::default()).unwrap();
            assert_eq!(d.plaintext.len(), 64 << 20);
            assert!(d.plaintext.iter().all(|&b| b == 0));
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Key files and certificate paths

#[test]
fn pkcs12_billion_iterations() {
    hostile(
        "pkcs12_billion_iterations",
        || corpus("pkcs12-1e9-iterations.p12"),
        |d| {
            let r = Identity::from_pkcs12(&d, &"x".into(), &Limits::default());
            assert!(
                matches!(r, Err(Error::LimitExceeded { .. })),
                "{:?}",
                r.map(|_| ())
            );
        },
    );
}

#[test]
fn pkcs8_billion_iterations() {
    hostile(
        "pkcs8_billion_iterations",
        || corpus("pkcs8-1e9-iterations.der"),
        |d| {
            let r = smime::load_private_key(&d, Some(&"x".into()), &Limits::default());
            assert!(
                matches!(r, Err(Error::LimitExceeded { .. })),
                "{:?}",
                r.map(|_| ())
            );
        },
    );
}

#[test]
fn certificate_chain_loop() {
    hostile(
        "certificate_chain_loop",
        || {
            // A and B issue each other (A is self-signed first, then re-issued by B with the
            // same name and key); the leaf is issued by A. No anchor is reachable.
            let ka = PrivateKey::generate(KeyKind::Ec(smime::Curve::P256)).unwrap();
            let kb = PrivateKey::generate(KeyKind::Ec(smime::Curve::P256)).unwrap();
            let a0 = issue::self_signed(&ka, &CertificateParams::ca("Loop A"), &mut OsRng).unwrap();
            let b = issue::issue(
                kb.public_key(),
                &CertificateParams::ca("Loop B"),
                &a0,
                &ka,
                &mut OsRng,
            )
            .unwrap();
            let a = issue::issue(
                ka.public_key(),
                &CertificateParams::ca("Loop A"),
                &b,
                &kb,
                &mut OsRng,
            )
            .unwrap();
            let kl = PrivateKey::generate(KeyKind::Ec(smime::Curve::P256)).unwrap();
            let leaf = issue::issue(
                kl.public_key(),
                &CertificateParams::user("Leaf", "leaf@example.com"),
                &a,
                &ka,
                &mut OsRng,
            )
            .unwrap();
            let rk = PrivateKey::generate(KeyKind::Ec(smime::Curve::P256)).unwrap();
            let root =
                issue::self_signed(&rk, &CertificateParams::ca("Unrelated Root"), &mut OsRng)
                    .unwrap();
            (leaf, vec![a, b], root)
        },
        |(leaf, extra, root)| {
            // Many copies of the loop as "extra" certificates, as a message could carry them.
            let extra: Vec<Certificate> = extra.iter().cycle().take(150).cloned().collect();
            let r = smime::cert::build_path(&leaf, &extra, &TrustStore::new(vec![root]));
            assert!(r.status.is_err(), "{:?}", r.status);
            assert_eq!(r.chain.len(), 1);
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Signature and header spoofing

fn signed_by_alice(p: &Party, from: &str) -> Vec<u8> {
    let msg = format!(
        "{from}To: bob@example.org\r\nSubject: Invoice\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain\r\n\r\nPlease pay invoice 42 to the usual account.\r\n"
    );
    smime::sign_message(
        msg.as_bytes(),
        &p.alice,
        &SignMessageOptions::default(),
        &mut OsRng,
        &Limits::default(),
    )
    .unwrap()
}

fn signer_address_check(p: &Party, m: &[u8]) -> (bool, bool) {
    let v = smime::verify_message(m, &p.trust, None, &Limits::default()).unwrap();
    let s = &v.verification.signers[0];
    let addr = s.check(smime::CheckName::SignerAddress).unwrap().passed;
    let sig = s.check(smime::CheckName::Signature).unwrap().passed;
    (sig, addr && v.verification.is_valid())
}

#[test]
fn spoof_from_mismatches_signer() {
    hostile("spoof_from_mismatches_signer", party, |p| {
        // Control: the right From verifies.
        let ok = signed_by_alice(&p, "From: Alice <alice@example.com>\r\n");
        assert_eq!(signer_address_check(&p, &ok), (true, true));
        let bad = signed_by_alice(&p, "From: CEO <ceo@example.com>\r\n");
        assert_eq!(signer_address_check(&p, &bad), (true, false));
    });
}

#[test]
fn spoof_duplicate_from() {
    hostile("spoof_duplicate_from", party, |p| {
        let m = signed_by_alice(
            &p,
            "From: Alice <alice@example.com>\r\nFrom: CEO <ceo@example.com>\r\n",
        );
        // Two From mailboxes: no single sender, so the address check fails closed.
        assert_eq!(signer_address_check(&p, &m), (true, false));
        let m = signed_by_alice(&p, "From: Alice <alice@example.com>, ceo@example.com\r\n");
        assert_eq!(signer_address_check(&p, &m), (true, false));
    });
}

#[test]
fn spoof_display_name_tricks() {
    hostile("spoof_display_name_tricks", party, |p| {
        for from in [
            "From: \"alice@example.com\" <mallory@evil.example>\r\n",
            "From: =?utf-8?b?YWxpY2VAZXhhbXBsZS5jb20=?= <mallory@evil.example>\r\n",
            "From: alice@example.com <mallory@evil.example>\r\n",
            "From: (alice@example.com) mallory@evil.example\r\n",
        ] {
            let m = signed_by_alice(&p, from);
            assert_eq!(signer_address_check(&p, &m), (true, false), "{from}");
        }
    });
}

#[test]
fn spoof_unsigned_parts_around_signed_part() {
    hostile("spoof_unsigned_parts_around_signed_part", party, |p| {
        let limits = Limits::default();
        let signed = signed_by_alice(&p, "From: Alice <alice@example.com>\r\n");
        let e = Entity::parse(&signed, &limits).unwrap();
        let ct = e.header("Content-Type").unwrap();
        let body = e.body();
        let boundary = e.content_type().param("boundary").unwrap().to_string();

        // 1. The signed multipart inside a multipart/mixed with an unsigned part before it: the
        //    message is not a signed message, and verify says so.
        let mut wrapped = format!(
            "From: Alice <alice@example.com>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"w\"\r\n\r\n--w\r\n\
             Content-Type: text/html\r\n\r\n<b>URGENT: pay to IBAN XX00 0000</b>\r\n--w\r\n\
             Content-Type: {ct}\r\n\r\n"
        )
        .into_bytes();
        wrapped.extend_from_slice(body);
        wrapped.extend_from_slice(b"\r\n--w--\r\n");
        let r = smime::verify_message(&wrapped, &p.trust, None, &limits);
        assert!(
            matches!(
                r,
                Err(Error::WrongMessageType {
                    expected: "signed",
                    ..
                })
            ),
            "{:?}",
            r.map(|_| ())
        );

        // 2. Text in the preamble and epilogue of the multipart/signed itself: the signature
        //    is valid, and what comes back as verified is the signed part only.
        let mut padded = signed[..signed.len() - body.len()].to_vec();
        padded.extend_from_slice(b"<b>UNSIGNED PREAMBLE: pay to XX00</b>\r\n");
        padded.extend_from_slice(body);
        padded.extend_from_slice(b"<b>UNSIGNED EPILOGUE</b>\r\n");
        let v = smime::verify_message(&padded, &p.trust, None, &limits).unwrap();
        assert!(v.verification.is_valid());
        assert!(!v.message.windows(8).any(|w| w == b"UNSIGNED"));
        assert!(v.message.windows(12).any(|w| w == b"invoice 42 t"));

        // 3. A third part after the signature: not RFC 1847, refused.
        let close = format!("--{boundary}--");
        let pos = padded
            .windows(close.len())
            .rposition(|w| w == close.as_bytes())
            .unwrap();
        let mut three = padded[..pos].to_vec();
        three.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: text/html\r\n\r\n<b>extra</b>\r\n{close}\r\n")
                .as_bytes(),
        );
        let r = smime::verify_message(&three, &p.trust, None, &limits);
        assert!(r.is_err(), "{:?}", r.map(|v| v.verification.is_valid()));
    });
}

// ---------------------------------------------------------------------------------------------
// ZIP: through the `sealgate-zip` reader and through the policy's inspection of an attachment

use sealgate::policy::{self as policy, FileType, Policy, UninspectableReason};

/// CRC-32 (IEEE), bitwise: the inputs here are small.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// One entry of a hand-made (stored) archive; the `local_*` fields let the local header
/// disagree with the central directory.
#[derive(Clone)]
struct Raw<'a> {
    name: &'a str,
    local_name: Option<&'a str>,
    data: &'a [u8],
    local_method: u16,
    local_size_delta: u32,
}

fn raw<'a>(name: &'a str, data: &'a [u8]) -> Raw<'a> {
    Raw {
        name,
        local_name: None,
        data,
        local_method: 0,
        local_size_delta: 0,
    }
}

fn raw_zip(entries: &[Raw<'_>]) -> Vec<u8> {
    let (mut out, mut cd) = (Vec::new(), Vec::new());
    for e in entries {
        let crc = crc32(e.data);
        let offset = out.len() as u32;
        let local_name = e.local_name.unwrap_or(e.name);
        out.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00");
        out.extend_from_slice(&e.local_method.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0x21, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        let size = e.data.len() as u32;
        out.extend_from_slice(&(size + e.local_size_delta).to_le_bytes());
        out.extend_from_slice(&(size + e.local_size_delta).to_le_bytes());
        out.extend_from_slice(&(local_name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(local_name.as_bytes());
        out.extend_from_slice(e.data);
        cd.extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x00\x00\x00\x00\x21\x00");
        cd.extend_from_slice(&crc.to_le_bytes());
        cd.extend_from_slice(&size.to_le_bytes());
        cd.extend_from_slice(&size.to_le_bytes());
        cd.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        cd.extend_from_slice(&[0; 12]);
        cd.extend_from_slice(&offset.to_le_bytes());
        cd.extend_from_slice(e.name.as_bytes());
    }
    let start = out.len() as u32;
    out.extend_from_slice(&cd);
    eocd(&mut out, entries.len() as u16, cd.len() as u32, start);
    out
}

fn eocd(out: &mut Vec<u8>, count: u16, cd_size: u32, cd_start: u32) {
    out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00");
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_start.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
}

/// A message with `data` as a base64 attachment named `name`.
fn with_attachment(name: &str, data: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let mut m = format!(
        "From: a@partner.example\r\nTo: b@example.com\r\nSubject: files\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
         see attached\r\n--b\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    for line in b64.as_bytes().chunks(76) {
        m.extend_from_slice(line);
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"--b--\r\n");
    m
}

fn inspect_attachment(name: &str, data: &[u8], limits: &Limits) -> policy::Inspection {
    let m = with_attachment(name, data);
    let e = Entity::parse(&m, limits).unwrap();
    policy::inspect(&e, limits)
}

fn attachment_text(i: &policy::Inspection) -> usize {
    i.texts
        .iter()
        .filter(|t| matches!(t.source, policy::TextSource::Attachment))
        .map(|t| t.text.len())
        .sum()
}

fn has_limit(i: &policy::Inspection) -> bool {
    i.uninspectable
        .iter()
        .any(|u| matches!(u.reason, UninspectableReason::LimitReached { .. }))
}

fn has_corrupt(i: &policy::Inspection) -> bool {
    i.uninspectable
        .iter()
        .any(|u| matches!(u.reason, UninspectableReason::Corrupt { .. }))
}

fn zip_open(data: &[u8]) -> Result<usize, sealgate::zip::Error> {
    sealgate::zip::ZipReader::open(std::io::Cursor::new(data), &Limits::default())
        .map(|z| z.entries().len())
}

#[test]
fn zip_quoted_overlap() {
    hostile(
        "zip_quoted_overlap",
        || corpus("zip-quoted-overlap.zip"),
        |z| {
            // 30 KB, 250 files of 8 MiB each out of one kernel (Fifield's quoted overlap).
            let r = zip_open(&z);
            assert!(
                matches!(r, Err(sealgate::zip::Error::OverlappingEntries)),
                "{r:?}"
            );
            assert!(matches!(
                sealgate::zip::read_all(&z, None, &Limits::default()),
                Err(sealgate::zip::Error::OverlappingEntries)
            ));
            let i = inspect_attachment("bomb.zip", &z, &Limits::default());
            assert!(has_corrupt(&i), "{:?}", i.uninspectable);
            assert_eq!(attachment_text(&i), 0);
        },
    );
}

#[test]
fn zip_central_entries_sharing_one_local_file() {
    hostile(
        "zip_central_entries_sharing_one_local_file",
        || {
            // One local file, 1,000 central entries (other names) pointing at it.
            static DATA: [u8; 100_000] = [b'A'; 100_000];
            let one = raw_zip(&[raw("0", &DATA)]);
            let local_end = 30 + 1 + DATA.len();
            let mut z = one[..local_end].to_vec();
            let central = &one[local_end..one.len() - 22];
            let mut cd = Vec::new();
            for i in 0..1000u32 {
                let name = format!("{i:04}");
                let mut c = central[..46].to_vec();
                c[28..30].copy_from_slice(&4u16.to_le_bytes());
                c.extend_from_slice(name.as_bytes());
                cd.extend_from_slice(&c);
            }
            z.extend_from_slice(&cd);
            eocd(&mut z, 1000, cd.len() as u32, local_end as u32);
            z
        },
        |z| {
            let r = zip_open(&z);
            assert!(
                matches!(r, Err(sealgate::zip::Error::OverlappingEntries)),
                "{r:?}"
            );
            let i = inspect_attachment("shared.zip", &z, &Limits::default());
            assert!(has_corrupt(&i), "{:?}", i.uninspectable);
            assert_eq!(attachment_text(&i), 0);
        },
    );
}

#[test]
fn zip_42_nested() {
    hostile(
        "zip_42_nested",
        || corpus("zip-42-nested.zip"),
        |z| {
            // 22 KB: 16 × 16 × 16 × 16 archives of a 64 MiB file, 4 TiB in all.
            let r = sealgate::zip::read_all(&z, None, &Limits::default());
            assert!(
                matches!(
                    r,
                    Err(sealgate::zip::Error::LimitExceeded { .. }
                        | sealgate::zip::Error::CompressionRatio { .. })
                ),
                "{:?}",
                r.map(|f| f.len())
            );
            let i = inspect_attachment("42.zip", &z, &Limits::default());
            assert!(has_limit(&i), "{:?}", i.uninspectable);
            assert!(attachment_text(&i) < 1 << 20);
        },
    );
}

#[test]
fn zip_slip_names() {
    hostile(
        "zip_slip_names",
        || (),
        |()| {
            for name in [
                "../evil.txt",
                "a/../../evil.txt",
                "/etc/cron.d/evil",
                "..\\evil.txt",
                "a\\..\\..\\evil.txt",
                "C:\\Windows\\evil.dll",
                "C:/Windows/evil.dll",
                "c:evil.txt",
                "\\\\host\\share\\evil.txt",
            ] {
                let z = raw_zip(&[raw(name, b"payload")]);
                let r = zip_open(&z);
                assert!(
                    matches!(r, Err(sealgate::zip::Error::UnsafePath { .. })),
                    "{name}: {r:?}"
                );
                // Inspection extracts nothing to disk: the entry is looked at, under its
                // name, where a policy's attachment_name rule can see it.
                let i = inspect_attachment("slip.zip", &z, &Limits::default());
                assert!(
                    i.files.iter().any(|f| f.path == name),
                    "{name}: {:?}",
                    i.files.iter().map(|f| &f.path).collect::<Vec<_>>()
                );
            }
        },
    );
}

#[test]
fn zip_local_central_conflicts() {
    hostile(
        "zip_local_central_conflicts",
        || (),
        |()| {
            let good = raw("invoice.txt", b"pay invoice 42");
            let conflicts = [
                Raw {
                    local_name: Some("invoice.exe"),
                    ..good.clone()
                },
                Raw {
                    local_size_delta: 7,
                    ..good.clone()
                },
                Raw {
                    local_method: 8,
                    ..good.clone()
                },
            ];
            // Control: the consistent archive reads and is inspected.
            let z = raw_zip(std::slice::from_ref(&good));
            assert_eq!(zip_open(&z).unwrap(), 1);
            let i = inspect_attachment("ok.zip", &z, &Limits::default());
            assert!(i.uninspectable.is_empty(), "{:?}", i.uninspectable);
            assert!(attachment_text(&i) > 0);
            for (what, e) in ["name", "size", "method"].iter().zip(conflicts) {
                let z = raw_zip(&[e]);
                let r = zip_open(&z);
                assert!(
                    matches!(r, Err(sealgate::zip::Error::Malformed { .. })),
                    "{what}: {r:?}"
                );
                let i = inspect_attachment("conflict.zip", &z, &Limits::default());
                assert!(has_corrupt(&i), "{what}: {:?}", i.uninspectable);
                assert_eq!(attachment_text(&i), 0, "{what}");
            }
        },
    );
}

#[test]
fn zip_huge_claimed_counts() {
    hostile(
        "zip_huge_claimed_counts",
        || {
            let mut claims = Vec::new();
            // 65,535 entries and a 4 GiB central directory claimed by a 22-byte file.
            let mut z = Vec::new();
            eocd(&mut z, u16::MAX, u32::MAX, 0);
            claims.push(z);
            // The same after 1 MiB of zeros (the claim is no longer past the start).
            let mut z = vec![0u8; 1 << 20];
            eocd(&mut z, u16::MAX, 0x00F0_0000, 0);
            claims.push(z);
            // Zip64: 2^62 entries, a central directory of 2^62 bytes.
            let mut z = b"PK\x06\x06".to_vec();
            z.extend_from_slice(&44u64.to_le_bytes());
            z.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            z.extend_from_slice(&(1u64 << 62).to_le_bytes());
            z.extend_from_slice(&(1u64 << 62).to_le_bytes());
            z.extend_from_slice(&(1u64 << 62).to_le_bytes());
            z.extend_from_slice(&0u64.to_le_bytes());
            z.extend_from_slice(b"PK\x06\x07\x00\x00\x00\x00");
            z.extend_from_slice(&0u64.to_le_bytes());
            z.extend_from_slice(&1u32.to_le_bytes());
            eocd(&mut z, u16::MAX, u32::MAX, u32::MAX);
            claims.push(z);
            claims
        },
        |claims| {
            for (n, z) in claims.iter().enumerate() {
                let r = zip_open(z);
                assert!(r.is_err(), "claim {n}: {r:?}");
                // Taken for a ZIP (PK magic at the start: claims 0 and 2 are), the policy says
                // it is corrupt; otherwise it is an unknown file and nothing is opened.
                let i = inspect_attachment("claims.zip", z, &Limits::default());
                if i.files.iter().any(|f| f.file_type == FileType::Zip) {
                    assert!(has_corrupt(&i), "claim {n}: {:?}", i.uninspectable);
                } else {
                    assert!(n == 1 || n == 2, "claim {n} not taken for a ZIP");
                }
            }
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Policy: content inspection and rule files

const CONTENT_TYPES_DOCX: &[u8] = b"<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/></Types>";

#[test]
fn docx_billion_laughs() {
    hostile(
        "docx_billion_laughs",
        || {
            let mut doc =
                String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE w [\n<!ENTITY lol0 \"lol\">\n");
            for i in 1..10 {
                let p = i - 1;
                doc.push_str(&format!(
                    "<!ENTITY lol{i} \"{}\">\n",
                    format!("&lol{p};").repeat(10)
                ));
            }
            doc.push_str(
                "]>\n<w:document xmlns:w=\"w\"><w:body><w:p><w:r><w:t>visible merger text \
                 &lol9;</w:t></w:r></w:p></w:body></w:document>",
            );
            let doc: &'static [u8] = Box::leak(doc.into_bytes().into_boxed_slice());
            raw_zip(&[
                raw("[Content_Types].xml", CONTENT_TYPES_DOCX),
                raw("word/document.xml", doc),
            ])
        },
        |docx| {
            // 10^9 "lol"s if the entities were expanded: they are dropped, never expanded.
            let i = inspect_attachment("laughs.docx", &docx, &Limits::default());
            assert!(
                i.files.iter().any(|f| f.file_type == FileType::Docx),
                "{:?}",
                i.files.iter().map(|f| f.file_type).collect::<Vec<_>>()
            );
            let text: String = i.texts.iter().map(|t| t.text.as_str()).collect();
            assert!(text.contains("visible merger text"), "{text:?}");
            assert!(attachment_text(&i) < 4096, "{}", attachment_text(&i));
        },
    );
}

#[test]
fn pdf_endless_object_stream() {
    hostile(
        "pdf_endless_object_stream",
        || corpus("pdf-endless-objstm.pdf"),
        |pdf| {
            // Self-extending object streams, a /Length of 10^14, a Flate stream of 16 MiB of
            // zeros (ratio over the limit) and a last stream without endstream.
            let i = inspect_attachment("loop.pdf", &pdf, &Limits::default());
            assert!(i.files.iter().any(|f| f.file_type == FileType::Pdf));
            assert!(has_limit(&i), "{:?}", i.uninspectable);
            assert!(attachment_text(&i) < 1 << 20);
        },
    );
}

#[test]
fn pdf_100k_tiny_streams() {
    hostile(
        "pdf_100k_tiny_streams",
        || {
            let mut pdf = b"%PDF-1.7\n".to_vec();
            for _ in 0..100_000 {
                pdf.extend_from_slice(b"<<>>stream\n(a) Tj\nendstream\n");
            }
            pdf
        },
        |pdf| {
            // 2.8 MB: every stream's dictionary was searched up to 4 KiB back (gigabytes of
            // scanning); now only back to the previous stream. With a 1 s inspection budget:
            // answered in time, either done or with "inspection time" reported; text bounded.
            let mut limits = Limits::default();
            limits.max_inspect_millis = 1_000;
            let i = inspect_attachment("many.pdf", &pdf, &limits);
            assert!(i.files.iter().any(|f| f.file_type == FileType::Pdf));
            assert!(attachment_text(&i) <= limits.max_extract_bytes_per_attachment);
            println!(
                "pdf_100k_tiny_streams: {} bytes of text, uninspectable {:?}",
                attachment_text(&i),
                i.uninspectable
            );
        },
    );
}

#[test]
fn zip_in_docx_in_zip_deep() {
    hostile(
        "zip_in_docx_in_zip_deep",
        || {
            let mut inner: &'static [u8] = b"deepest secret";
            for level in 0..12 {
                let z = if level % 2 == 0 {
                    raw_zip(&[raw("level.txt", b"a level"), raw("inner.bin", inner)])
                } else {
                    raw_zip(&[
                        raw("[Content_Types].xml", CONTENT_TYPES_DOCX),
                        raw(
                            "word/document.xml",
                            b"<w:document xmlns:w=\"w\"><w:body><w:p><w:r><w:t>doc</w:t></w:r></w:p></w:body></w:document>",
                        ),
                        raw("word/embeddings/inner.zip", inner),
                    ])
                };
                inner = Box::leak(z.into_boxed_slice());
            }
            inner.to_vec()
        },
        |z| {
            let i = inspect_attachment("deep.zip", &z, &Limits::default());
            assert!(
                i.uninspectable.iter().any(|u| matches!(&u.reason,
                    UninspectableReason::LimitReached { limit } if limit == "archive depth")),
                "{:?}",
                i.uninspectable
            );
            let text: String = i.texts.iter().map(|t| t.text.as_str()).collect();
            assert!(!text.contains("deepest secret"));
        },
    );
}

#[test]
fn policy_regex_hungry_subject() {
    hostile(
        "policy_regex_hungry_subject",
        || {
            let policy = Policy::from_toml(
                r#"
internal_domains = ["example.com"]
[[rule]]
name = "hungry"
when = { any = [ { subject_matches = ["(a|aa)+$", "(\\w+\\s?)*$", "^(a+)+b"] }, { body_matches = "(x+x+)+y" } ] }
action = { reject = "no" }
"#,
                None,
            )
            .unwrap();
            let mut m = b"From: a@partner.example\r\nTo: b@example.com\r\nSubject: ".to_vec();
            m.resize(m.len() + 60_000, b'a');
            m.extend_from_slice(b"!\r\nContent-Type: text/plain\r\n\r\n");
            m.resize(m.len() + (1 << 20), b'x');
            m.extend_from_slice(b"\r\n");
            (policy, m)
        },
        |(policy, m)| {
            // Catastrophic backtracking for a backtracking engine; Rust's regex is linear.
            let limits = Limits::default();
            let e = Entity::parse(&m, &limits).unwrap();
            let i = policy::inspect(&e, &limits);
            let d = policy.decide(&e, &policy::Envelope::from_headers(&e), &i);
            // "(a|aa)+$" does not match "aaa…a!", "(\w+\s?)*$" matches the empty tail.
            assert_eq!(d.fired, ["hungry"]);
        },
    );
}

#[test]
fn policy_toml_100k_rules() {
    fn rules(n: usize) -> String {
        let mut t = String::from("internal_domains = [\"example.com\"]\n");
        for i in 0..n {
            t.push_str(&format!(
                "[[rule]]\nname = \"r{i}\"\nwhen = {{ subject_contains = \"[kw{i}]\" }}\naction = \"require_tls\"\n"
            ));
        }
        t
    }
    hostile(
        "policy_toml_100k_rules",
        || (rules(100_000), rules(3_000)),
        |(huge, big)| {
            // 8.8 MB of rules: parsed, that was over 256 MiB (and the rule-name check was
            // quadratic); refused by size before parsing.
            let r = Policy::from_toml(&huge, None);
            assert!(
                matches!(r, Err(policy::Error::TooLarge { .. })),
                "{:?}",
                r.map(|_| ())
            );
            // 3,000 rules fit under the size limit: loaded and decided.
            assert!(big.len() <= policy::MAX_POLICY_BYTES);
            let p = Policy::from_toml(&big, None).unwrap();
            assert_eq!(p.rule_names().count(), 3_000);
            let m = b"From: a@partner.example\r\nTo: b@example.com\r\nSubject: about [kw2999]\r\n\r\nx\r\n";
            let limits = Limits::default();
            let e = Entity::parse(m, &limits).unwrap();
            let d = p.decide(
                &e,
                &policy::Envelope::from_headers(&e),
                &policy::inspect(&e, &limits),
            );
            assert_eq!(d.fired, ["r2999"]);
        },
    );
}

#[test]
fn policy_toml_deep_nesting() {
    hostile(
        "policy_toml_deep_nesting",
        || {
            let depth = 10_000;
            let mut tables = String::from("[[rule]]\nname = \"deep\"\nwhen = ");
            tables.push_str(&"{ not = ".repeat(depth));
            tables.push_str("{ always = true }");
            tables.push_str(&" }".repeat(depth));
            tables.push_str("\naction = \"none\"\n");
            let mut arrays = String::from("[[rule]]\nname = \"deep\"\nwhen = { any = ");
            arrays.push_str(&"[".repeat(depth));
            arrays.push_str(&"]".repeat(depth));
            arrays.push_str(" }\naction = \"none\"\n");
            (tables, arrays)
        },
        |(tables, arrays)| {
            for t in [tables, arrays] {
                let r = Policy::from_toml(&t, None);
                assert!(
                    matches!(r, Err(policy::Error::Syntax { .. })),
                    "{:?}",
                    r.map(|_| ())
                );
            }
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Key store imports and key sizes

#[test]
fn keystore_100k_pem_certificates() {
    hostile(
        "keystore_100k_pem_certificates",
        || {
            let pem = String::from_utf8(data("fuzz/cert.pem")).unwrap();
            pem.repeat(100_000).into_bytes()
        },
        |many| {
            use sealgate::keystore::{
                ImportOptions, KeyStore, Keyring, MemoryStore, parse_key_material,
            };
            let limits = Limits::default();
            // Over the key-file size limit as it stands (1.3 KB × 100,000) ...
            let r = parse_key_material(&many, None, &limits);
            assert!(r.is_err(), "{:?}", r.map(|m| m.len()));
            // ... and with that limit raised, the certificate count stops it.
            let mut roomy = Limits::default();
            roomy.max_key_file_bytes = 200 << 20;
            let r = parse_key_material(&many, None, &roomy);
            let err = r.map(|m| m.len()).unwrap_err();
            assert!(
                err.contains("certificates") || err.contains("limit"),
                "{err}"
            );
            let store = std::sync::Arc::new(MemoryStore::new());
            let kr = Keyring::open(store.clone(), None, roomy).unwrap();
            assert!(
                kr.import(&[("many.pem", &many)], &ImportOptions::default())
                    .is_err()
            );
            assert!(store.certificates().unwrap().is_empty());
        },
    );
}

#[test]
fn keystore_pgp_keyring_of_many_certificates() {
    // Stopped after max_certificates (200) certificates whatever the ring's size: the cost is
    // parsing 200 RSA-3072 certificates, which an unoptimised test build does in about 1 s
    // per pass (two passes here), so 5 s rather than 2.
    hostile_within(
        "keystore_pgp_keyring_of_many_certificates",
        Duration::from_secs(5),
        || data("pgp/rsa.pub.pgp").repeat(5_000),
        |ring| {
            let limits = Limits::default();
            let r = pgp::Cert::load_all(&ring, &limits);
            assert!(
                matches!(r, Err(pgp::Error::LimitExceeded { .. })),
                "{:?}",
                r.map(|c| c.len())
            );
            let r = sealgate::keystore::parse_key_material(&ring, None, &limits);
            assert!(r.is_err(), "{:?}", r.map(|m| m.len()));
        },
    );
}

#[test]
fn rsa_16384_bit_key() {
    hostile(
        "rsa_16384_bit_key",
        || (corpus("rsa-16384.crt.der"), corpus("rsa-16384.pk8.der")),
        |(cert, key)| {
            let limits = Limits::default();
            // The private key is refused by size before any arithmetic.
            let r = PrivateKey::from_der(&key, &limits);
            assert!(
                matches!(r, Err(Error::LimitExceeded { .. })),
                "{:?}",
                r.map(|_| ())
            );
            // The content-sniffing loader refuses it too (it reports the formats it tried).
            assert!(smime::load_private_key(&key, None, &limits).is_err());
            // The certificate parses (it is only data), but nothing is encrypted to its key.
            let c = Certificate::from_der(&cert).unwrap();
            assert_eq!(c.email_addresses(), ["big@example.com"]);
            let r = enveloped::encrypt(
                b"secret",
                &[Recipient::new(c)],
                ContentCipher::Aes256Cbc,
                &mut OsRng,
            );
            assert!(r.is_err(), "encrypted to a 16384-bit key");
        },
    );
}

#[test]
fn pkcs12_thousands_of_bags() {
    hostile(
        "pkcs12_thousands_of_bags",
        || {
            let k = PrivateKey::generate(KeyKind::Ec(smime::Curve::P256)).unwrap();
            let c = issue::self_signed(
                &k,
                &CertificateParams::user("Bags", "bags@example.com"),
                &mut OsRng,
            )
            .unwrap();
            let chain = vec![c.clone(); 5_000];
            let id = Identity::new(k, c, chain).unwrap();
            id.to_pkcs12(&"pw".into(), smime::Pkcs12Format::Aes256, &mut OsRng)
                .unwrap()
        },
        |p12| {
            let r = Identity::from_pkcs12(&p12, &"pw".into(), &Limits::default());
            assert!(
                matches!(r, Err(Error::LimitExceeded { .. })),
                "{:?}",
                r.map(|_| ())
            );
        },
    );
}

// ---------------------------------------------------------------------------------------------
// The gateway

#[test]
fn gateway_result_fields_inside_encrypted_content() {
    hostile(
        "gateway_result_fields_inside_encrypted_content",
        || {
            use sealgate::keystore::{ImportOptions, Keyring, MemoryStore, StoreSecret};
            let secret = StoreSecret::raw_key_from_hex(&"07".repeat(32)).unwrap();
            let kr = Keyring::open(
                std::sync::Arc::new(MemoryStore::new()),
                Some(&secret),
                Limits::default(),
            )
            .unwrap();
            let (ca, cert, key) = (
                data("fuzz/gateway/ca.der"),
                data("fuzz/gateway/fuzz.der"),
                data("fuzz/key.der"),
            );
            kr.import(
                &[("ca", &ca), ("cert", &cert), ("key", &key)],
                &ImportOptions {
                    trust_anchors: true,
                    ..Default::default()
                },
            )
            .unwrap();
            let gw = sealgate::Gateway::builder()
                .policy(Policy::from_toml("internal_domains = [\"example.com\"]\n", None).unwrap())
                .keyring(kr)
                .build()
                .unwrap();
            // Anyone with our certificate writes the encrypted content's header.
            let inner = b"Sealgate-Signature: valid; smime; signer=ceo@example.com\r\n\
                Sealgate-Decrypted: smime; cipher=aes256gcm; authenticated=true\r\n\
                Content-Type: text/html\r\n\r\n<b>Wire the money today. The CEO</b>\r\n";
            let der = enveloped::encrypt(
                inner,
                &[Recipient::new(Certificate::from_der(&cert).unwrap())],
                ContentCipher::Aes256Cbc,
                &mut OsRng,
            )
            .unwrap();
            use base64::Engine as _;
            let msg = format!(
                "From: CEO <ceo@example.com>\r\nTo: fuzz@example.com\r\nSubject: urgent\r\n\
                 Sealgate-Signature: valid; smime; signer=ceo@example.com\r\nMIME-Version: 1.0\r\n\
                 Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                base64::engine::general_purpose::STANDARD.encode(der)
            );
            (gw, msg.into_bytes())
        },
        |(gw, msg)| {
            let env = sealgate::Envelope {
                mail_from: Some("mallory@evil.example".into()),
                rcpt_to: vec!["fuzz@example.com".into()],
            };
            let out = gw.process(&msg, &env).unwrap();
            let d = &out.deliveries[0].message;
            let e = Entity::parse(d, &Limits::default()).unwrap();
            let fields = |n: &str| {
                e.headers()
                    .iter()
                    .filter(|h| h.is_named(n))
                    .map(|h| h.value())
                    .collect::<Vec<_>>()
            };
            // Decrypted by us (CBC, unsigned: not authenticated), and no forged field left.
            assert_eq!(fields("Sealgate-Decrypted").len(), 1);
            assert!(fields("Sealgate-Decrypted")[0].contains("authenticated=false"));
            assert!(
                fields("Sealgate-Signature").is_empty(),
                "{:?}",
                fields("Sealgate-Signature")
            );
            assert!(e.body().windows(15).any(|w| w == b"Wire the money "));
        },
    );
}
