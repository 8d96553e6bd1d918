//! Header protection (RFC 9788) both ways with the real tools: openssl and gpg decrypt what we
//! protect and find the real header inside (`hp="cipher"`, `HP-Outer`, the Legacy Display
//! Element), our decryption restores it and says what was confidential; the older
//! `protected-headers="v1"` form (Thunderbird, Enigmail), built around `openssl cms -encrypt` and
//! `gpg --encrypt` output, is read too. Keys are made at run time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sealgate::Limits;
use sealgate::mime::Entity;
use sealgate::pgp;
use sealgate::smime::{self, Certificate, Identity, Recipient, TrustStore};
use sealgate_tests::{Gpg, GpgAlgo, KeyType, Pki, User, contains, openssl, require, run};

const SECRET_SUBJECT: &str = "Merger with Initech";

fn message() -> Vec<u8> {
    format!(
        "From: Alice <alice@example.com>\r\nTo: Bob <bob@partner.example>\r\n\
         Subject: {SECRET_SUBJECT}\r\nKeywords: merger\r\n\
         Date: Wed, 02 Dec 2026 10:00:00 +0000\r\nMessage-ID: <hp-1@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         The numbers are in.\r\n"
    )
    .into_bytes()
}

fn limits() -> Limits {
    Limits::default()
}

fn cert(path: &std::path::Path) -> Certificate {
    Certificate::load(&std::fs::read(path).unwrap(), &limits()).unwrap()
}

fn identity(pki: &Pki, u: &User) -> Identity {
    let key = smime::load_private_key(&std::fs::read(&u.key).unwrap(), None, &limits()).unwrap();
    let chain =
        Certificate::load_all(&std::fs::read(&pki.intermediate).unwrap(), &limits()).unwrap();
    Identity::new(key, cert(&u.cert), chain).unwrap()
}

/// `openssl cms -decrypt` of the message in `path` as `user`; the plaintext.
fn openssl_decrypt(path: &std::path::Path, user: &User) -> Vec<u8> {
    run(openssl(&["cms", "-decrypt", "-in"])
        .arg(path)
        .arg("-inkey")
        .arg(&user.key)
        .arg("-recip")
        .arg(&user.cert))
    .stdout
}

/// `openssl cms -verify` of the signed message in `path` against the test CA; the content.
fn openssl_verify(path: &std::path::Path, pki: &Pki) -> Vec<u8> {
    run(openssl(&["cms", "-verify", "-in"])
        .arg(path)
        .arg("-CAfile")
        .arg(&pki.root)
        .arg("-certfile")
        .arg(&pki.intermediate))
    .stdout
}

/// The header block of a message (up to the empty line), as text.
fn header_of(raw: &[u8]) -> String {
    let e = Entity::parse(raw, &limits()).unwrap();
    String::from_utf8_lossy(e.header_block()).into_owned()
}

fn assert_outer_obscured(out: &[u8]) {
    let outer = header_of(out);
    assert!(outer.contains("Subject: [...]"), "{outer}");
    assert!(
        !outer.contains(SECRET_SUBJECT) && !outer.contains("Keywords"),
        "{outer}"
    );
    assert!(outer.contains("From: Alice <alice@example.com>"), "{outer}");
}

fn assert_restored(message: &[u8], hp: Option<&sealgate::mime::HeaderProtection>) {
    let head = header_of(message);
    assert_eq!(head.matches("Subject:").count(), 1, "{head}");
    assert!(
        head.contains(&format!("Subject: {SECRET_SUBJECT}")),
        "{head}"
    );
    assert!(
        head.contains("Keywords: merger") && !head.contains("HP-Outer"),
        "{head}"
    );
    assert_eq!(head.matches("From:").count(), 1, "{head}");
    let hp = hp.expect("header protection reported");
    assert_eq!(hp.scheme, "rfc9788-cipher");
    assert!(hp.confidential.iter().any(|c| c == "Subject"), "{hp:?}");
    assert!(hp.confidential.iter().any(|c| c == "Keywords"), "{hp:?}");
    assert!(!hp.confidential.iter().any(|c| c == "From"), "{hp:?}");
    for f in ["From", "To", "Date", "Message-ID"] {
        assert!(hp.protected.iter().any(|p| p == f), "{f}: {hp:?}");
    }
}

#[test]
fn smime_header_protection_with_openssl() {
    if !require("openssl") {
        return;
    }
    let pki = Pki::new();
    let bob = pki.user("bob", "bob@partner.example", KeyType::Rsa2048);
    let alice = pki.user("alice", "alice@example.com", KeyType::P256);
    let rng = &mut rand_core::OsRng;
    let mut opts = smime::EncryptMessageOptions::default();
    opts.protect_headers = true;
    opts.legacy_display = true;
    let out = smime::encrypt_message(
        &message(),
        &[Recipient::new(cert(&bob.cert))],
        None,
        &opts,
        rng,
        &limits(),
    )
    .unwrap();
    assert_outer_obscured(&out);

    // openssl sees the Cryptographic Payload of RFC 9788
    let p = pki.write("hp.eml", &out);
    let inner = openssl_decrypt(&p, &bob);
    let text = String::from_utf8_lossy(&inner);
    assert!(text.contains("hp=\"cipher\""), "{text}");
    assert!(
        text.contains(&format!("Subject: {SECRET_SUBJECT}")),
        "{text}"
    );
    assert!(text.contains("HP-Outer: Subject: [...]"), "{text}");
    assert!(
        text.contains("HP-Outer: From: Alice <alice@example.com>"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\r\n\r\nSubject: {SECRET_SUBJECT}\r\n\r\nThe numbers are in."
        )),
        "legacy display element: {text}"
    );

    // and we restore it
    let id = identity(&pki, &bob);
    let d = smime::decrypt_message(&out, &id.key, Some(&id.cert), None, &limits()).unwrap();
    assert_restored(&d.message, d.header_protection.as_ref());
    assert!(d.header_protection.as_ref().unwrap().legacy_display_removed);
    assert!(d.message.ends_with(b"\r\n\r\nThe numbers are in.\r\n"));

    // signed, then encrypted: the protection is inside the signature; openssl verifies it
    let alice_id = identity(&pki, &alice);
    let mut opts = smime::EncryptMessageOptions::default();
    opts.protect_headers = true;
    let sopts = smime::SignMessageOptions::default();
    let out = smime::encrypt_message(
        &message(),
        &[Recipient::new(cert(&bob.cert))],
        Some((&alice_id, &sopts)),
        &opts,
        rng,
        &limits(),
    )
    .unwrap();
    assert_outer_obscured(&out);
    let p = pki.write("hp-signed.eml", &out);
    let signed = openssl_decrypt(&p, &bob);
    let sp = pki.write("hp-signed-inner.eml", &signed);
    let content = openssl_verify(&sp, &pki);
    let text = String::from_utf8_lossy(&content);
    assert!(
        text.contains("hp=\"cipher\"") && text.contains(SECRET_SUBJECT),
        "{text}"
    );
    let trust = TrustStore::new(vec![cert(&pki.root)]);
    let d = smime::decrypt_message(&out, &id.key, Some(&id.cert), Some(&trust), &limits()).unwrap();
    let sig = d.signature.as_ref().unwrap();
    assert!(sig.verification.is_valid(), "{:?}", sig.verification);
    assert_restored(&d.message, d.header_protection.as_ref());
    // the signed entity is still there for the recipient to verify
    assert!(contains(&d.message, "multipart/signed"));

    // signed only: hp="clear", the outer header unchanged, openssl verifies
    let mut sopts = smime::SignMessageOptions::default();
    sopts.protect_headers = true;
    let signed = smime::sign_message(&message(), &alice_id, &sopts, rng, &limits()).unwrap();
    assert!(header_of(&signed).contains(SECRET_SUBJECT));
    let sp = pki.write("hp-clear.eml", &signed);
    let content = openssl_verify(&sp, &pki);
    assert!(String::from_utf8_lossy(&content).contains("hp=\"clear\""));
    let v = smime::verify_message(&signed, &trust, None, &limits()).unwrap();
    assert!(v.verification.is_valid(), "{:?}", v.verification);
    let hp = v.header_protection.unwrap();
    assert_eq!(hp.scheme, "rfc9788-clear");
    assert!(hp.confidential.is_empty());
    assert_eq!(header_of(&v.message).matches("Subject:").count(), 1);
}

/// Thunderbird's and Enigmail's form: `protected-headers="v1"` on the inner entity, the real
/// Subject inside, a placeholder outside; encrypted here by openssl.
#[test]
fn smime_protected_headers_v1_from_openssl() {
    if !require("openssl") {
        return;
    }
    let pki = Pki::new();
    let bob = pki.user("bob", "bob@partner.example", KeyType::P256);
    let inner = format!(
        "Content-Type: multipart/mixed; boundary=\"tb\"; protected-headers=\"v1\"\r\n\
         Subject: {SECRET_SUBJECT}\r\nFrom: Alice <alice@example.com>\r\n\r\n\
         --tb\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nThe numbers are in.\r\n--tb--\r\n"
    );
    let ip = pki.write("tb-inner.txt", inner.as_bytes());
    let enc = run(
        openssl(&["cms", "-encrypt", "-aes-256-cbc", "-binary", "-in"])
            .arg(&ip)
            .arg(&bob.cert),
    )
    .stdout;
    let mut raw =
        b"From: Alice <alice@example.com>\r\nTo: bob@partner.example\r\nSubject: ...\r\n".to_vec();
    raw.extend_from_slice(&enc);
    let id = identity(&pki, &bob);
    let d = smime::decrypt_message(&raw, &id.key, Some(&id.cert), None, &limits()).unwrap();
    let head = header_of(&d.message);
    assert!(
        head.contains(&format!("Subject: {SECRET_SUBJECT}")),
        "{head}"
    );
    assert!(!head.contains("Subject: ..."), "{head}");
    assert!(head.contains("To: bob@partner.example"), "{head}");
    let hp = d.header_protection.unwrap();
    assert_eq!(hp.scheme, "protected-headers-v1");
    assert!(hp.protected.iter().any(|p| p == "Subject"));
}

#[test]
fn pgp_header_protection_with_gpg() {
    if !require("gpg") {
        return;
    }
    let gpg = Gpg::new();
    let bob = gpg.gen_key("Bob", "bob@partner.example", GpgAlgo::Ed25519);
    let bob_cert = pgp::Cert::load_all(&std::fs::read(&bob.public).unwrap(), &limits())
        .unwrap()
        .remove(0);
    let bob_key =
        pgp::SecretKey::load(&std::fs::read(&bob.secret).unwrap(), None, &limits()).unwrap();
    let mut opts = pgp::EncryptMessageOptions::default();
    opts.protect_headers = true;
    opts.legacy_display = true;
    let out = pgp::encrypt_message(
        &message(),
        std::slice::from_ref(&bob_cert),
        None,
        &opts,
        &mut rand_core::OsRng,
        &limits(),
    )
    .unwrap();
    assert_outer_obscured(&out);
    // gpg decrypts the encrypted part and finds the payload
    let enc = sealgate::mime::parse_pgp_encrypted(&out, &limits())
        .unwrap()
        .unwrap()
        .encrypted;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("part.asc");
    std::fs::write(&p, &enc).unwrap();
    let plain = run(gpg.cmd(&["--decrypt"]).arg(&p)).stdout;
    let text = String::from_utf8_lossy(&plain);
    assert!(
        text.contains("hp=\"cipher\"") && text.contains("hp-legacy-display"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Subject: {SECRET_SUBJECT}")),
        "{text}"
    );
    assert!(text.contains("HP-Outer: Subject: [...]"), "{text}");
    let d = pgp::decrypt_message(&out, std::slice::from_ref(&bob_key), &[], &limits()).unwrap();
    assert_restored(&d.message, d.header_protection.as_ref());
    assert!(d.message.ends_with(b"\r\n\r\nThe numbers are in.\r\n"));

    // the protected-headers="v1" form, encrypted by gpg, PGP/MIME built around it
    let inner = format!(
        "Content-Type: text/plain; charset=utf-8; protected-headers=\"v1\"\r\n\
         Subject: {SECRET_SUBJECT}\r\n\r\nThe numbers are in.\r\n"
    );
    let ip = dir.path().join("inner.txt");
    std::fs::write(&ip, inner).unwrap();
    let armored = run(gpg
        .cmd(&[
            "--armor",
            "--encrypt",
            "-r",
            &bob.fingerprint,
            "--output",
            "-",
        ])
        .arg(&ip))
    .stdout;
    let mut raw = b"From: alice@example.com\r\nTo: bob@partner.example\r\nSubject: ...\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"b\"\r\n\r\n\
        --b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
        --b\r\nContent-Type: application/octet-stream\r\n\r\n"
        .to_vec();
    raw.extend_from_slice(&armored);
    raw.extend_from_slice(b"\r\n--b--\r\n");
    let d = pgp::decrypt_message(&raw, std::slice::from_ref(&bob_key), &[], &limits()).unwrap();
    let head = header_of(&d.message);
    assert!(
        head.contains(&format!("Subject: {SECRET_SUBJECT}")) && !head.contains("Subject: ..."),
        "{head}"
    );
    assert_eq!(d.header_protection.unwrap().scheme, "protected-headers-v1");
}
