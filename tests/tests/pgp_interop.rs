//! OpenPGP interop, both directions, with GnuPG (`gpg`) and Sequoia (`sq`). Keys are generated
//! by gpg at test time (`sealgate_tests::Gpg`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sealgate::Limits;
use sealgate::mime;
use sealgate::pgp::{self, Cert, SecretKey};
use sealgate_tests::{Gpg, GpgAlgo, GpgKey, require, run, run_unchecked};

fn limits() -> Limits {
    Limits::default()
}

fn cert(k: &GpgKey) -> Cert {
    Cert::load_all(&std::fs::read(&k.public).unwrap(), &limits())
        .unwrap()
        .remove(0)
}

fn secret(k: &GpgKey) -> SecretKey {
    SecretKey::load(&std::fs::read(&k.secret).unwrap(), None, &limits()).unwrap()
}

fn message(from: &str, to: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: Quarterly figures\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Grüße aus Zürich. The figures are attached.\r\n"
    )
    .into_bytes()
}

fn entity_of(msg: &[u8]) -> Vec<u8> {
    mime::split_for_protection(msg, &limits()).unwrap().1
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The armored OpenPGP message inside a PGP/MIME message.
fn armored_part(msg: &[u8]) -> Vec<u8> {
    mime::parse_pgp_encrypted(msg, &limits())
        .unwrap()
        .unwrap()
        .encrypted
}

#[test]
fn our_pgp_mime_reads_in_gpg() {
    if !require("gpg") {
        return;
    }
    for algo in [GpgAlgo::Rsa3072, GpgAlgo::Ed25519] {
        let g = Gpg::new();
        let alice_home = Gpg::new();
        let alice = alice_home.gen_key("Alice", "alice@example.com", algo);
        let bob = g.gen_key("Bob", "bob@example.org", algo);
        g.import(&alice.public);
        let msg = message(&alice.email, &bob.email);
        let want = entity_of(&msg);

        // encrypted (no signature)
        let enc = pgp::encrypt_message(
            &msg,
            &[cert(&bob)],
            None,
            &Default::default(),
            &mut rand_core::OsRng,
            &limits(),
        )
        .unwrap();
        assert!(find(&enc, "Grüße".as_bytes()).is_none());
        let f = g.write("enc.asc", &armored_part(&enc));
        let out = run(g.cmd(&["--decrypt"]).arg(&f));
        assert_eq!(out.stdout, want, "{algo:?}: gpg decrypted other bytes");

        // signed + encrypted in one pass: gpg reports a good signature by alice
        let enc = pgp::encrypt_message(
            &msg,
            &[cert(&bob)],
            Some(&secret(&alice)),
            &Default::default(),
            &mut rand_core::OsRng,
            &limits(),
        )
        .unwrap();
        let f = g.write("encsig.asc", &armored_part(&enc));
        let out = run(g.cmd(&["--status-fd", "2", "--decrypt"]).arg(&f));
        assert_eq!(out.stdout, want);
        let status = String::from_utf8_lossy(&out.stderr);
        assert!(
            status.contains(&format!("VALIDSIG {}", alice.fingerprint))
                || status.contains("GOODSIG"),
            "{status}"
        );

        // signed (multipart/signed): gpg verifies the detached signature over the first part
        let signed =
            pgp::sign_message(&msg, &secret(&alice), &mut rand_core::OsRng, &limits()).unwrap();
        let ms = mime::parse_multipart_signed(&signed, &limits())
            .unwrap()
            .unwrap();
        assert_eq!(ms.protocol, "application/pgp-signature");
        let content = g.write("content", &mime::canonicalize_crlf(ms.signed));
        let sig = g.write("sig.asc", &ms.signature);
        let out = run_unchecked(
            g.cmd(&["--status-fd", "2", "--verify"])
                .arg(&sig)
                .arg(&content),
        );
        let status = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && status.contains("GOODSIG"),
            "{algo:?}: {status}"
        );
        // one byte changed: gpg refuses
        let mut bad = mime::canonicalize_crlf(ms.signed).into_owned();
        let n = bad.len() - 5;
        bad[n] ^= 1;
        let content = g.write("content-bad", &bad);
        let out = run_unchecked(g.cmd(&["--verify"]).arg(&sig).arg(&content));
        assert!(!out.status.success());
    }
}

#[test]
fn gpg_messages_read_in_ours() {
    if !require("gpg") {
        return;
    }
    for algo in [GpgAlgo::Rsa3072, GpgAlgo::Ed25519] {
        let g = Gpg::new();
        let alice = g.gen_key("Alice", "alice@example.com", algo);
        let bob = g.gen_key("Bob", "bob@example.org", algo);
        let msg = message(&alice.email, &bob.email);
        let entity = g.write("entity", &entity_of(&msg));

        // PGP/MIME built around gpg --encrypt --sign --armor
        let out = run(g
            .cmd(&[
                "--encrypt",
                "--sign",
                "--armor",
                "-u",
                &alice.fingerprint,
                "-r",
                &bob.fingerprint,
                "--output",
                "-",
            ])
            .arg(&entity));
        let part = mime::build_pgp_encrypted(&out.stdout, &mut rand_core::OsRng);
        let mut m = b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: from gpg\r\nMIME-Version: 1.0\r\n".to_vec();
        m.extend_from_slice(&part);
        let d = pgp::decrypt_message(&m, &[secret(&bob)], &[cert(&alice)], &limits()).unwrap();
        assert!(find(&d.message, &entity_of(&msg)).is_some(), "{algo:?}");
        assert!(d.verification.is_valid(), "{algo:?}: {:?}", d.verification);
        assert_eq!(d.verification.signatures[0].fingerprint, alice.fingerprint);

        // inline PGP: gpg --encrypt --armor of a text, in a text/plain body
        let text = g.write("text", "Grüße, inline.\n".as_bytes());
        let out = run(g
            .cmd(&[
                "--encrypt",
                "--sign",
                "--armor",
                "-u",
                &alice.fingerprint,
                "-r",
                &bob.fingerprint,
                "--output",
                "-",
            ])
            .arg(&text));
        let mut m = b"From: alice@example.com\r\nSubject: inline\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n".to_vec();
        m.extend_from_slice(&out.stdout);
        let d = pgp::decrypt_message(&m, &[secret(&bob)], &[cert(&alice)], &limits()).unwrap();
        assert!(d.inline);
        assert!(find(&d.message, "Grüße, inline.".as_bytes()).is_some());
        assert!(d.verification.is_valid());

        // detached signature by gpg in PGP/MIME multipart/signed
        let canon = entity_of(&msg);
        let seven = mime::make_seven_bit(&canon, &limits())
            .unwrap()
            .into_owned();
        let signed_part = g.write("signed-part", &seven);
        let out = run(g
            .cmd(&[
                "--detach-sign",
                "--armor",
                "--digest-algo",
                "SHA256",
                "-u",
                &alice.fingerprint,
                "--output",
                "-",
            ])
            .arg(&signed_part));
        let built =
            mime::build_pgp_signed(&seven, "pgp-sha256", &out.stdout, &mut rand_core::OsRng);
        let mut m = format!(
            "From: {}\r\nSubject: signed by gpg\r\nMIME-Version: 1.0\r\n",
            alice.email
        )
        .into_bytes();
        m.extend_from_slice(&built);
        let v = pgp::verify_message(&m, &[cert(&alice)], &limits()).unwrap();
        assert!(v.verification.is_valid(), "{:?}", v.verification);
        let pos = find(&m, b"figures").unwrap();
        m[pos] ^= 0x20;
        let v = pgp::verify_message(&m, &[cert(&alice)], &limits()).unwrap();
        assert!(!v.verification.is_valid());
    }
}

#[test]
fn legacy_sed_message_is_refused() {
    if !require("gpg") {
        return;
    }
    let g = Gpg::new();
    let bob = g.gen_key("Bob", "bob@example.org", GpgAlgo::Rsa3072);
    let text = g.write("text", b"secret\n");
    // --rfc2440 makes gpg write a Symmetrically Encrypted Data packet without MDC.
    let out = run_unchecked(
        g.cmd(&[
            "--rfc2440",
            "--cipher-algo",
            "AES256",
            "--encrypt",
            "--armor",
            "-r",
            &bob.fingerprint,
            "--output",
            "-",
        ])
        .arg(&text),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let part = mime::build_pgp_encrypted(&out.stdout, &mut rand_core::OsRng);
    let mut m = b"From: a@example.com\r\nMIME-Version: 1.0\r\n".to_vec();
    m.extend_from_slice(&part);
    let err = pgp::decrypt_message(&m, &[secret(&bob)], &[], &limits()).unwrap_err();
    assert!(
        matches!(err, pgp::Error::MissingIntegrityProtection),
        "{err:?}"
    );
}

#[test]
fn sq_reads_ours_and_we_read_sq() {
    if !require("sq") || !require("gpg") {
        return;
    }
    let g = Gpg::new();
    let bob = g.gen_key("Bob", "bob@example.org", GpgAlgo::Ed25519);
    let msg = message("alice@example.com", &bob.email);
    let enc = pgp::encrypt_message(
        &msg,
        &[cert(&bob)],
        None,
        &Default::default(),
        &mut rand_core::OsRng,
        &limits(),
    )
    .unwrap();
    let f = g.write("enc.asc", &armored_part(&enc));
    let out = run(std::process::Command::new("sq")
        .args(["decrypt", "--recipient-key"])
        .arg(&bob.secret)
        .arg(&f));
    assert_eq!(out.stdout, entity_of(&msg));
    // sq encrypts, we decrypt
    let entity = g.write("entity", &entity_of(&msg));
    let out = run(std::process::Command::new("sq")
        .args(["encrypt", "--recipient-cert"])
        .arg(&bob.public)
        .arg(&entity));
    let part = mime::build_pgp_encrypted(&out.stdout, &mut rand_core::OsRng);
    let mut m = b"From: alice@example.com\r\nMIME-Version: 1.0\r\n".to_vec();
    m.extend_from_slice(&part);
    let d = pgp::decrypt_message(&m, &[secret(&bob)], &[], &limits()).unwrap();
    assert!(find(&d.message, &entity_of(&msg)).is_some());
}
