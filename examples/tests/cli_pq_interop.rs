//! The `sealgate` binary against OpenSSL 3.6 with ML-KEM recipients (KEMRecipientInfo, RFC 9629
//! / RFC 9936), both ways: `encrypt --pq --to CERT` to OpenSSL-made certificates, read back by
//! `openssl cms -decrypt`; `openssl cms -encrypt` to them, read by `decrypt --key --cert` with
//! the OpenSSL-made key files. And ML-DSA signatures (RFC 9882): `sign --key --cert` with
//! OpenSSL-made ML-DSA keys in each form (no new flag: the key decides), checked by `openssl
//! cms -verify` and by our `verify`; `openssl cms -sign` messages checked by `verify`; a
//! changed byte fails on both sides.
//!
//! Needs `SEALGATE_OPENSSL_PQ` (the output of tests/openssl-pq.sh); skipped with a notice without
//! it, a failure under CI=true.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use sealgate_tests::{Pki, openssl_pq, openssl_pq_cmd, run};

const BIN: &str = env!("CARGO_BIN_EXE_sealgate");

/// A 7-bit CRLF message; its entity comes back byte for byte.
const MESSAGE: &[u8] = b"From: Alice <alice@example.com>\r\nTo: <pq@example.org>\r\n\
    Subject: Post-quantum\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
    Message-ID: <pq-1@example.com>\r\nMIME-Version: 1.0\r\n\
    Content-Type: text/plain; charset=us-ascii\r\n\r\nThe figures are attached.\r\n";
const ENTITY: &[u8] =
    b"Content-Type: text/plain; charset=us-ascii\r\n\r\nThe figures are attached.\r\n";

fn sg(args: &[&dyn AsRef<std::ffi::OsStr>], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .arg("smime")
        .args(args.iter().map(|a| a.as_ref()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sealgate");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "sealgate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn lf(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace("\r\n", "\n")
}

#[test]
fn cli_pq_interop_with_openssl36() {
    let Some(bin) = openssl_pq() else { return };
    let pki = Pki::new();
    let d = pki.path();
    for alg in ["ML-KEM-512", "ML-KEM-768", "ML-KEM-1024"] {
        let u = pki.ml_kem_user(&bin, alg);
        // ours -> OpenSSL 3.6, with the key in each form OpenSSL writes
        let sealed = ok(sg(&[&"encrypt", &"--pq", &"--to", &u.cert], MESSAGE));
        let f = pki.write("ours.eml", &sealed);
        for (form, key) in &u.keys {
            let out = run(
                openssl_pq_cmd(&bin, d, &["cms", "-decrypt", "-binary", "-in"])
                    .arg(&f)
                    .arg("-inkey")
                    .arg(key)
                    .arg("-recip")
                    .arg(&u.cert),
            );
            assert_eq!(lf(&out.stdout), lf(ENTITY), "{alg} {form}");
        }
        // OpenSSL 3.6 -> ours, CBC and GCM, with each key form
        for cipher in ["-aes-256-cbc", "-aes-256-gcm"] {
            let input = pki.write("message.eml", MESSAGE);
            let out = d.join("theirs.eml");
            run(openssl_pq_cmd(&bin, d, &["cms", "-encrypt", cipher, "-in"])
                .arg(&input)
                .arg("-out")
                .arg(&out)
                .args(["-to", &u.email, "-subject", "Post-quantum"])
                .arg(&u.cert));
            let theirs = std::fs::read(&out).unwrap();
            for (form, key) in &u.keys {
                let clear = ok(sg(
                    &[&"decrypt", &"--key", key, &"--cert", &u.cert],
                    &theirs,
                ));
                assert!(
                    lf(&clear).contains("Subject: Post-quantum\n"),
                    "{alg} {cipher} {form}: {}",
                    lf(&clear)
                );
                assert!(
                    lf(&clear).contains("The figures are attached."),
                    "{alg} {cipher} {form}: {}",
                    lf(&clear)
                );
            }
        }
    }
}

/// A 7-bit message from `from`; its body is "Signed with ML-DSA."
fn signed_message(from: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <bob@example.org>\r\nSubject: Post-quantum signature\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         Signed with ML-DSA.\r\n"
    )
    .into_bytes()
}

fn flip_body_byte(msg: &[u8], opaque: bool) -> Vec<u8> {
    let mut bad = msg.to_vec();
    let at = if opaque {
        // inside the base64 of the CMS (OpenSSL writes LF line ends, we CRLF)
        bad.windows(2)
            .position(|w| w == b"\n\n")
            .or_else(|| bad.windows(4).position(|w| w == b"\r\n\r\n"))
            .unwrap()
            + 200
    } else {
        bad.windows(6).position(|w| w == b"ML-DSA").unwrap()
    };
    bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
    bad
}

#[test]
fn cli_ml_dsa_sign_and_verify_with_openssl36() {
    let Some(bin) = openssl_pq() else { return };
    let pki = Pki::new();
    let d = pki.path();
    let ca = pki.ml_dsa_ca(&bin);
    for alg in ["ML-DSA-44", "ML-DSA-65", "ML-DSA-87"] {
        let u = pki.ml_dsa_user(&bin, alg);
        let message = signed_message(&u.email);
        // ours -> OpenSSL 3.6 and ours, with the key in each form OpenSSL writes
        for (form, key) in &u.keys {
            for opaque in [false, true] {
                let what = format!("{alg} {form} opaque={opaque}");
                let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
                    vec![&"sign", &"--key", key, &"--cert", &u.cert];
                if opaque {
                    args.push(&"--opaque");
                }
                let signed = ok(sg(&args, &message));
                if !opaque {
                    assert!(lf(&signed).contains("micalg=sha-512"), "{what}");
                }
                let f = pki.write("ours.eml", &signed);
                let out = run(openssl_pq_cmd(&bin, d, &["cms", "-verify", "-CAfile"])
                    .arg(&ca)
                    .arg("-in")
                    .arg(&f));
                assert!(lf(&out.stdout).contains("Signed with ML-DSA."), "{what}");
                ok(sg(&[&"verify", &"--trust", &ca], &signed));
                let bad = pki.write("bad.eml", &flip_body_byte(&signed, opaque));
                let st = openssl_pq_cmd(&bin, d, &["cms", "-verify", "-CAfile"])
                    .arg(&ca)
                    .arg("-in")
                    .arg(&bad)
                    .output()
                    .unwrap();
                assert!(
                    !st.status.success(),
                    "{what}: openssl accepted a changed message"
                );
                let o = sg(
                    &[&"verify", &"--trust", &ca],
                    &flip_body_byte(&signed, opaque),
                );
                assert!(!o.status.success(), "{what}: we accepted a changed message");
            }
        }
        // OpenSSL 3.6 -> ours
        let body = pki.write(
            "body.txt",
            &message[message
                .windows(13)
                .position(|w| w == b"MIME-Version:")
                .unwrap()..],
        );
        for opaque in [false, true] {
            let what = format!("{alg} openssl opaque={opaque}");
            let out = d.join("theirs.eml");
            let mut cmd = openssl_pq_cmd(&bin, d, &["cms", "-sign", "-binary", "-md", "sha512"]);
            if opaque {
                cmd.arg("-nodetach");
            }
            run(cmd
                .arg("-in")
                .arg(&body)
                .arg("-signer")
                .arg(&u.cert)
                .arg("-inkey")
                .arg(u.key())
                .args(["-from", &u.email, "-to", "bob@example.org"])
                .arg("-out")
                .arg(&out));
            let theirs = std::fs::read(&out).unwrap();
            let o = sg(&[&"verify", &"--trust", &ca], &theirs);
            assert!(
                o.status.success(),
                "{what}: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            let o = sg(
                &[&"verify", &"--trust", &ca],
                &flip_body_byte(&theirs, opaque),
            );
            assert!(!o.status.success(), "{what}: we accepted a changed message");
        }
    }
}

/// Over 8 MiB the CLI signs as a stream (MessageSigner) and verifies as a stream (the spill
/// file): both with ML-DSA-65, checked against OpenSSL 3.6 both ways.
#[test]
fn cli_ml_dsa_streamed_sign_and_verify_with_openssl36() {
    let Some(bin) = openssl_pq() else { return };
    let pki = Pki::new();
    let d = pki.path();
    let ca = pki.ml_dsa_ca(&bin);
    let u = pki.ml_dsa_user(&bin, "ML-DSA-65");
    let mut message = signed_message(&u.email);
    for i in 0..260_000 {
        message.extend_from_slice(format!("line {i} of a large signed message\r\n").as_bytes());
    }
    assert!(message.len() > 8 << 20);
    let input = pki.write("big.eml", &message);
    let ours = d.join("big-signed.eml");
    ok(sg(
        &[
            &"sign",
            &"--key",
            &u.keys[1].1,
            &"--cert",
            &u.cert,
            &"--in",
            &input,
            &"--out",
            &ours,
        ],
        b"",
    ));
    let out = run(openssl_pq_cmd(&bin, d, &["cms", "-verify", "-CAfile"])
        .arg(&ca)
        .arg("-in")
        .arg(&ours)
        .arg("-out")
        .arg(d.join("big-openssl.out")));
    assert!(out.status.success());
    let got = std::fs::read(d.join("big-openssl.out")).unwrap();
    assert!(lf(&got).contains("line 259999 of a large signed message\n"));
    ok(sg(&[&"verify", &"--trust", &ca, &"--in", &ours], b""));
    // OpenSSL signs the body (its header written with -from), we verify it streamed
    let start = message
        .windows(13)
        .position(|w| w == b"MIME-Version:")
        .unwrap();
    let body = pki.write("big-body.txt", &message[start..]);
    let theirs = d.join("big-theirs.eml");
    run(openssl_pq_cmd(
        &bin,
        d,
        &["cms", "-sign", "-binary", "-md", "sha512", "-in"],
    )
    .arg(&body)
    .arg("-signer")
    .arg(&u.cert)
    .arg("-inkey")
    .arg(u.key())
    .args(["-from", &u.email, "-out"])
    .arg(&theirs));
    ok(sg(&[&"verify", &"--trust", &ca, &"--in", &theirs], b""));
    let mut bad = std::fs::read(&theirs).unwrap();
    let at = bad.windows(10).position(|w| w == b"line 12345").unwrap();
    bad[at] = b'L';
    let bad_path = pki.write("big-bad.eml", &bad);
    let o = sg(&[&"verify", &"--trust", &ca, &"--in", &bad_path], b"");
    assert!(!o.status.success(), "a changed large message was accepted");
}
