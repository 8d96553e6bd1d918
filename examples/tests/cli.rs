//! End-to-end tests of the `sealgate` binary: every `smime` command and flag, checked against
//! `openssl cms` where a second opinion matters, and the error contract (exit code 2, exactly
//! one line on stderr, never a panic or a backtrace).
//!
//! Keys and certificates come from `sealgate_tests::Pki` (openssl at test time); without
//! openssl the tests skip with a notice, except under `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sealgate_tests::{KeyType, P12_PASSWORD, Pki, User, openssl, require, run, run_unchecked};

const BIN: &str = env!("CARGO_BIN_EXE_sealgate");

/// A 7-bit, CRLF message: what S/MIME protects of it comes back byte for byte.
fn message(from: &str) -> Vec<u8> {
    format!(
        "From: Alice Sender <{from}>\r\nTo: <bob@example.org>\r\nSubject: Quarterly figures\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <cli-1@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         The figures are attached.\r\nSecond line.\r\n"
    )
    .into_bytes()
}

/// The entity S/MIME protects in [`message`]: its Content-* field and body.
const ENTITY: &[u8] =
    b"Content-Type: text/plain; charset=us-ascii\r\n\r\nThe figures are attached.\r\nSecond line.\r\n";

/// Run `sealgate smime ARGS` with `stdin`, backtraces on (so that a panic would show one).
fn sg(args: &[&dyn AsRef<std::ffi::OsStr>], stdin: &[u8]) -> Output {
    sg_env(args, stdin, &[])
}

fn sg_env(args: &[&dyn AsRef<std::ffi::OsStr>], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("smime")
        .args(args.iter().map(|a| a.as_ref()))
        .env("RUST_BACKTRACE", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run sealgate");
    {
        let mut input = child.stdin.take().expect("stdin");
        // The binary may refuse before reading stdin: a broken pipe here is fine.
        let _ = input.write_all(stdin);
    }
    child.wait_with_output().expect("sealgate output")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Success: exit 0 and return stdout.
fn ok(out: Output) -> Vec<u8> {
    assert_eq!(
        out.status.code(),
        Some(0),
        "sealgate failed: {}",
        stderr(&out)
    );
    out.stdout
}

/// The error contract: exit 2, nothing on stdout, exactly one line on stderr that starts with
/// "sealgate: ", no panic, no backtrace. Returns the line.
fn error_line(out: &Output) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "exit code; stderr: {err}");
    assert!(out.stdout.is_empty(), "stdout on error: {:?}", out.stdout);
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(
        !err.to_lowercase().contains("backtrace"),
        "backtrace: {err}"
    );
    assert!(err.ends_with('\n'), "no final newline: {err:?}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("sealgate: "), "{err}");
    err.trim_end().to_string()
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn lf(b: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(b)
        .replace("\r\n", "\n")
        .into_bytes()
}

/// DER copies of a user's key (PKCS#8) and certificate.
fn der_files(pki: &Pki, name: &str, u: &User) -> (PathBuf, PathBuf) {
    let key = pki.path().join(format!("{name}.key.der"));
    let cert = pki.path().join(format!("{name}.cert.der"));
    run(
        openssl(&["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
            .arg(&u.key)
            .arg("-out")
            .arg(&key),
    );
    run(openssl(&["x509", "-outform", "DER", "-in"])
        .arg(&u.cert)
        .arg("-out")
        .arg(&cert));
    (key, cert)
}

/// `openssl cms -verify` against the root alone (so the intermediate must travel in the
/// message); returns the content openssl says was signed, and checks the signer certificate
/// openssl found is `signer`.
fn openssl_verify(pki: &Pki, signed: &[u8], signer: &Path) -> Vec<u8> {
    let f = pki.write("to-verify.eml", signed);
    let content = pki.path().join("verified.out");
    let signer_out = pki.path().join("signer.pem");
    run(
        openssl(&["cms", "-verify", "-purpose", "smimesign", "-CAfile"])
            .arg(&pki.root)
            .arg("-in")
            .arg(&f)
            .arg("-out")
            .arg(&content)
            .arg("-signer")
            .arg(&signer_out),
    );
    assert_eq!(
        cert_der(&signer_out),
        cert_der(signer),
        "openssl found another signer"
    );
    read(&content)
}

fn cert_der(pem: &Path) -> Vec<u8> {
    run(openssl(&["x509", "-outform", "DER", "-in"]).arg(pem)).stdout
}

/// `openssl cms -decrypt` of a whole message; returns the decrypted entity.
fn openssl_decrypt(pki: &Pki, sealed: &[u8], u: &User) -> Vec<u8> {
    let f = pki.write("to-decrypt.eml", sealed);
    let out = pki.path().join("decrypted.out");
    run(openssl(&["cms", "-decrypt", "-binary", "-in"])
        .arg(&f)
        .arg("-recip")
        .arg(&u.cert)
        .arg("-inkey")
        .arg(&u.key)
        .arg("-out")
        .arg(&out));
    read(&out)
}

/// What `openssl cms -cmsout -print` says about the CMS inside an S/MIME message.
fn openssl_print(pki: &Pki, smime: &[u8]) -> String {
    let f = pki.write("to-print.eml", smime);
    String::from_utf8(
        run(openssl(&["cms", "-cmsout", "-print", "-inform", "SMIME", "-in"]).arg(&f)).stdout,
    )
    .unwrap()
}

/// The header block of a message (up to the blank line).
fn header(msg: &[u8]) -> String {
    let end = find(msg, b"\r\n\r\n").expect("header end");
    String::from_utf8_lossy(&msg[..end]).into_owned()
}

struct World {
    pki: Pki,
    alice: User,
    bob: User,
    erin: User,
}

fn world() -> Option<World> {
    if !require("openssl") {
        return None;
    }
    let pki = Pki::new();
    let alice = pki.user("alice", "alice@example.com", KeyType::Rsa2048);
    let bob = pki.user("bob", "bob@example.org", KeyType::Rsa2048);
    let erin = pki.user("erin", "erin@example.net", KeyType::P256);
    Some(World {
        pki,
        alice,
        bob,
        erin,
    })
}

fn pw_env() -> [(&'static str, &'static str); 1] {
    [("SG_PW", P12_PASSWORD)]
}

// ---------------------------------------------------------------------------------------------
// sign

#[test]
fn sign_detached_pem_with_chain_files_in_and_out() {
    let Some(w) = world() else { return };
    let msg = w.pki.write("msg.eml", &message(&w.alice.email));
    let out = w.pki.path().join("signed.eml");
    let o = sg(
        &[
            &"sign",
            &"--key",
            &w.alice.key,
            &"--cert",
            &w.alice.cert,
            &"--chain",
            &w.pki.intermediate,
            &"--in",
            &msg,
            &"--out",
            &out,
        ],
        b"",
    );
    assert!(ok(o).is_empty(), "--out given: nothing on stdout");
    let signed = read(&out);
    let h = header(&signed);
    assert!(h.contains("Content-Type: multipart/signed"), "{h}");
    assert!(h.contains("micalg=sha-256"), "{h}");
    assert!(h.contains("Subject: Quarterly figures"), "{h}");
    // verified against the root alone: the intermediate came from --chain
    let content = openssl_verify(&w.pki, &signed, &w.alice.cert);
    assert_eq!(lf(&content), lf(ENTITY));
}

#[test]
fn sign_without_chain_needs_the_intermediate_elsewhere() {
    let Some(w) = world() else { return };
    let signed = ok(sg(
        &[&"sign", &"--key", &w.alice.key, &"--cert", &w.alice.cert],
        &message(&w.alice.email),
    ));
    let f = w.pki.write("nochain.eml", &signed);
    let alone = run_unchecked(
        openssl(&["cms", "-verify", "-CAfile"])
            .arg(&w.pki.root)
            .arg("-in")
            .arg(&f),
    );
    assert!(!alone.status.success(), "no chain was asked for");
    let content = openssl_verify_bundle(&w.pki, &signed, &w.alice.cert);
    assert_eq!(lf(&content), lf(ENTITY));
}

#[test]
fn sign_opaque_der_key_and_cert_stdin_stdout() {
    let Some(w) = world() else { return };
    let (key, cert) = der_files(&w.pki, "alice", &w.alice);
    let signed = ok(sg(
        &[
            &"sign",
            &"--key",
            &key,
            &"--cert",
            &cert,
            &"--chain",
            &w.pki.intermediate,
            &"--opaque",
        ],
        &message(&w.alice.email),
    ));
    let h = header(&signed);
    assert!(
        h.contains("application/pkcs7-mime; smime-type=signed-data"),
        "{h}"
    );
    let content = openssl_verify(&w.pki, &signed, &w.alice.cert);
    assert_eq!(lf(&content), lf(ENTITY));
}

#[test]
fn sign_with_p12_and_password_env() {
    let Some(w) = world() else { return };
    // the PKCS#12 holds the intermediate: no --chain needed
    let signed = ok(sg_env(
        &[&"sign", &"--p12", &w.alice.p12, &"--password-env", &"SG_PW"],
        &message(&w.alice.email),
        &pw_env(),
    ));
    let content = openssl_verify(&w.pki, &signed, &w.alice.cert);
    assert_eq!(lf(&content), lf(ENTITY));
}

#[test]
fn sign_with_encrypted_pkcs8_key_and_password_env() {
    let Some(w) = world() else { return };
    let enc = w.pki.path().join("alice.enc.key");
    run(openssl(&["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in"])
        .arg(&w.alice.key)
        .arg("-passout")
        .arg("pass:key-password")
        .arg("-out")
        .arg(&enc));
    let args: [&dyn AsRef<std::ffi::OsStr>; 8] = [
        &"sign",
        &"--key",
        &enc,
        &"--cert",
        &w.alice.cert,
        &"--chain",
        &w.pki.intermediate,
        &"--opaque",
    ];
    let msg = message(&w.alice.email);
    let mut with_pw: Vec<&dyn AsRef<std::ffi::OsStr>> = args.to_vec();
    with_pw.extend([&"--password-env" as &dyn AsRef<std::ffi::OsStr>, &"KEY_PW"]);
    let signed = ok(sg_env(&with_pw, &msg, &[("KEY_PW", "key-password")]));
    let content = openssl_verify(&w.pki, &signed, &w.alice.cert);
    assert_eq!(lf(&content), lf(ENTITY));

    let wrong = error_line(&sg_env(&with_pw, &msg, &[("KEY_PW", "not-it")]));
    assert!(wrong.contains("password"), "{wrong}");
    // no password at all: say how to give one
    let missing = error_line(&sg(&args, &msg));
    assert!(missing.contains("password"), "{missing}");
    // the variable named is not set
    let unset = error_line(&sg(&with_pw, &msg));
    assert!(unset.contains("KEY_PW"), "{unset}");
}

#[test]
fn sign_ecdsa_and_rsa_digest_and_pss_flags() {
    let Some(w) = world() else { return };
    // ECDSA P-256: the curve's digest, whatever --digest says
    let signed = ok(sg(
        &[
            &"sign",
            &"--key",
            &w.erin.key,
            &"--cert",
            &w.erin.cert,
            &"--chain",
            &w.pki.intermediate,
        ],
        &message(&w.erin.email),
    ));
    assert!(header(&signed).contains("micalg=sha-256"));
    openssl_verify(&w.pki, &signed, &w.erin.cert);

    for (digest, micalg) in [("sha384", "sha-384"), ("sha512", "sha-512")] {
        for pss in [false, true] {
            let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
                &"sign",
                &"--key",
                &w.alice.key,
                &"--cert",
                &w.alice.cert,
                &"--chain",
                &w.pki.intermediate,
                &"--digest",
                &digest,
            ];
            if pss {
                args.push(&"--pss");
            }
            let signed = ok(sg(&args, &message(&w.alice.email)));
            assert!(header(&signed).contains(&format!("micalg={micalg}")));
            let printed = openssl_print(&w.pki, &signed);
            assert_eq!(printed.contains("rsassaPss"), pss, "{printed}");
            let content = openssl_verify(&w.pki, &signed, &w.alice.cert);
            assert_eq!(lf(&content), lf(ENTITY));
        }
    }
}

#[test]
fn sign_errors_are_one_line() {
    let Some(w) = world() else { return };
    let msg = message(&w.alice.email);
    // key of one user, certificate of another
    let e = error_line(&sg(
        &[&"sign", &"--key", &w.alice.key, &"--cert", &w.bob.cert],
        &msg,
    ));
    assert!(e.contains("does not match"), "{e}");
    // missing key file: the path is named
    let e = error_line(&sg(
        &[
            &"sign",
            &"--key",
            &"/nonexistent/k.pem",
            &"--cert",
            &w.bob.cert,
        ],
        &msg,
    ));
    assert!(e.contains("/nonexistent/k.pem"), "{e}");
    // garbage as a certificate
    let junk = w.pki.write("junk.pem", b"this is not a certificate\n");
    let e = error_line(&sg(
        &[&"sign", &"--key", &w.alice.key, &"--cert", &junk],
        &msg,
    ));
    assert!(e.contains("junk.pem"), "{e}");
    // --p12 without --password-env
    let e = error_line(&sg(&[&"sign", &"--p12", &w.alice.p12], &msg));
    assert!(e.contains("--password-env"), "{e}");
    // wrong PKCS#12 password
    let e = error_line(&sg_env(
        &[&"sign", &"--p12", &w.alice.p12, &"--password-env", &"SG_PW"],
        &msg,
        &[("SG_PW", "wrong")],
    ));
    assert!(e.contains("password"), "{e}");
    // not a message at all (binary junk)
    let e = error_line(&sg(
        &[&"sign", &"--key", &w.alice.key, &"--cert", &w.alice.cert],
        &[0u8, 0xff, 0x00, 0x13, 0x10],
    ));
    assert!(!e.is_empty());
}

// ---------------------------------------------------------------------------------------------
// verify

fn signed_by_alice(w: &World, opaque: bool) -> Vec<u8> {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"sign",
        &"--key",
        &w.alice.key,
        &"--cert",
        &w.alice.cert,
        &"--chain",
        &w.pki.intermediate,
    ];
    if opaque {
        args.push(&"--opaque");
    }
    ok(sg(&args, &message(&w.alice.email)))
}

#[test]
fn verify_valid_from_stdin_and_in_prints_signer_and_checks() {
    let Some(w) = world() else { return };
    for opaque in [false, true] {
        let signed = signed_by_alice(&w, opaque);
        let o = sg(&[&"verify", &"--trust", &w.pki.root], &signed);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let report = stderr(&o);
        assert!(report.contains("signer: "), "{report}");
        assert!(report.contains("CN=alice"), "{report}");
        assert!(report.contains("addresses: alice@example.com"), "{report}");
        assert!(report.contains("chain: "), "{report}");
        assert!(report.contains("Test Intermediate CA"), "{report}");
        assert!(report.contains("[ok]"), "{report}");
        assert!(!report.contains("FAIL"), "{report}");
        assert!(report.trim_end().ends_with("signature: valid"), "{report}");
        // the fingerprint printed is the certificate's
        let fpr =
            run(openssl(&["x509", "-noout", "-fingerprint", "-sha256", "-in"]).arg(&w.alice.cert))
                .stdout;
        let fpr = String::from_utf8(fpr).unwrap();
        let fpr = fpr.trim().rsplit('=').next().unwrap().replace(':', "");
        assert!(
            report
                .to_ascii_uppercase()
                .replace(':', "")
                .contains(&fpr.to_ascii_uppercase()),
            "{fpr} not in {report}"
        );

        // --in and --out: the message without its signature
        let f = w.pki.write("signed.eml", &signed);
        let out = w.pki.path().join("unsigned.eml");
        let o = sg(
            &[
                &"verify",
                &"--trust",
                &w.pki.root,
                &"--in",
                &f,
                &"--out",
                &out,
            ],
            b"",
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(read(&out), message(&w.alice.email), "opaque={opaque}");
    }
}

#[test]
fn verify_openssl_signed_message() {
    let Some(w) = world() else { return };
    let entity = w.pki.write("entity.txt", ENTITY);
    let out = w.pki.path().join("openssl-signed.eml");
    run(
        openssl(&["cms", "-sign", "-md", "sha256", "-binary", "-in"])
            .arg(&entity)
            .arg("-signer")
            .arg(&w.erin.cert)
            .arg("-inkey")
            .arg(&w.erin.key)
            .arg("-certfile")
            .arg(&w.pki.intermediate)
            .args(["-from", &w.erin.email, "-to", "bob@example.org"])
            .args(["-subject", "From openssl", "-out"])
            .arg(&out),
    );
    let o = sg(&[&"verify", &"--trust", &w.pki.root, &"--in", &out], b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("CN=erin"), "{}", stderr(&o));
}

#[test]
fn verify_tampered_message_is_invalid() {
    let Some(w) = world() else { return };
    let signed = signed_by_alice(&w, false);
    let mut tampered = signed.clone();
    let pos = find(&tampered, b"Second line").unwrap();
    tampered[pos] = b's';
    let o = sg(&[&"verify", &"--trust", &w.pki.root], &tampered);
    let report = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{report}");
    assert!(report.contains("FAIL"), "{report}");
    assert!(
        report.trim_end().ends_with("signature: INVALID"),
        "{report}"
    );
    assert!(!report.contains("panicked"), "{report}");
}

#[test]
fn verify_wrong_from_is_invalid() {
    let Some(w) = world() else { return };
    for opaque in [false, true] {
        let signed = signed_by_alice(&w, opaque);
        let s = String::from_utf8(signed)
            .unwrap()
            .replace("<alice@example.com>", "<mallory@example.com>");
        let o = sg(&[&"verify", &"--trust", &w.pki.root], s.as_bytes());
        let report = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{report}");
        let fail: Vec<&str> = report.lines().filter(|l| l.contains("FAIL")).collect();
        assert_eq!(fail.len(), 1, "only the address check fails: {report}");
        assert!(fail[0].contains("mallory@example.com"), "{report}");
    }
}

#[test]
fn verify_untrusted_root_is_invalid() {
    let Some(w) = world() else { return };
    let other = Pki::new();
    let signed = signed_by_alice(&w, false);
    let o = sg(&[&"verify", &"--trust", &other.root], &signed);
    let report = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{report}");
    assert!(report.contains("FAIL"), "{report}");
}

#[test]
fn verify_errors_are_one_line() {
    let Some(w) = world() else { return };
    let root: &dyn AsRef<std::ffi::OsStr> = &w.pki.root;
    // garbage
    error_line(&sg(
        &[&"verify", &"--trust", root],
        b"\x00\x01\x02 garbage \xff\xfe",
    ));
    // a message that is not signed
    let e = error_line(&sg(
        &[&"verify", &"--trust", root],
        &message(&w.alice.email),
    ));
    assert!(e.contains("not an S/MIME signed message"), "{e}");
    // missing input file
    let e = error_line(&sg(
        &[&"verify", &"--trust", root, &"--in", &"/nonexistent/m.eml"],
        b"",
    ));
    assert!(e.contains("/nonexistent/m.eml"), "{e}");
    // missing trust file
    let e = error_line(&sg(
        &[&"verify", &"--trust", &"/nonexistent/ca.pem"],
        &signed_by_alice(&w, false),
    ));
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    // a trust file without certificates
    let junk = w.pki.write("junk-ca.pem", b"nothing here\n");
    let e = error_line(&sg(
        &[&"verify", &"--trust", &junk],
        &signed_by_alice(&w, false),
    ));
    assert!(e.contains("junk-ca.pem"), "{e}");
    // an opaque signed message whose base64 is corrupt, and one whose DER is cut short
    let signed = signed_by_alice(&w, true);
    let body = find(&signed, b"\r\n\r\n").unwrap() + 4;
    let mut bad64 = signed.clone();
    bad64[body + 10] = b'*';
    bad64[body + 11] = b'!';
    error_line(&sg(&[&"verify", &"--trust", root], &bad64));
    let cut = [&signed[..body + 80], b"\r\n".as_slice()].concat();
    error_line(&sg(&[&"verify", &"--trust", root], &cut));
    // a multipart/signed whose signature part is not CMS
    let detached = String::from_utf8(signed_by_alice(&w, false)).unwrap();
    let sig_start = detached.find("filename=smime.p7s").unwrap();
    let body_start = sig_start + detached[sig_start..].find("\r\n\r\n").unwrap() + 4;
    let mut broken = detached.clone();
    broken.replace_range(body_start..body_start + 8, "QUJDREVG");
    error_line(&sg(&[&"verify", &"--trust", root], broken.as_bytes()));
}

// ---------------------------------------------------------------------------------------------
// encrypt

#[test]
fn encrypt_each_cipher_openssl_decrypts() {
    let Some(w) = world() else { return };
    for (cipher, smime_type, printed) in [
        ("aes-256-gcm", "authEnveloped-data", "aes-256-gcm"),
        ("aes-256-cbc", "enveloped-data", "aes-256-cbc"),
        ("aes-128-cbc", "enveloped-data", "aes-128-cbc"),
    ] {
        let sealed = ok(sg(
            &[&"encrypt", &"--to", &w.bob.cert, &"--cipher", &cipher],
            &message(&w.alice.email),
        ));
        let h = header(&sealed);
        assert!(
            h.contains(&format!("smime-type={smime_type}")),
            "{cipher}: {h}"
        );
        assert!(h.contains("Subject: Quarterly figures"), "{h}");
        assert!(openssl_print(&w.pki, &sealed).contains(printed), "{cipher}");
        assert_eq!(openssl_decrypt(&w.pki, &sealed, &w.bob), ENTITY, "{cipher}");
    }
    // the default is AES-256-CBC
    let sealed = ok(sg(
        &[&"encrypt", &"--to", &w.bob.cert],
        &message(&w.alice.email),
    ));
    assert!(openssl_print(&w.pki, &sealed).contains("aes-256-cbc"));
}

#[test]
fn encrypt_to_several_recipients_rsa_and_ecdh() {
    let Some(w) = world() else { return };
    let (bob_key, bob_der) = der_files(&w.pki, "bob", &w.bob);
    let _ = bob_key;
    let msg = w.pki.write("msg.eml", &message(&w.alice.email));
    let out = w.pki.path().join("sealed.eml");
    let o = sg(
        &[
            &"encrypt",
            &"--to",
            &bob_der,
            &"--to",
            &w.erin.cert,
            &"--to",
            &w.alice.cert,
            &"--in",
            &msg,
            &"--out",
            &out,
        ],
        b"",
    );
    assert!(ok(o).is_empty());
    let sealed = read(&out);
    for u in [&w.bob, &w.erin, &w.alice] {
        assert_eq!(openssl_decrypt(&w.pki, &sealed, u), ENTITY, "{}", u.email);
    }
}

#[test]
fn encrypt_oaep() {
    let Some(w) = world() else { return };
    let sealed = ok(sg(
        &[&"encrypt", &"--to", &w.bob.cert, &"--oaep"],
        &message(&w.alice.email),
    ));
    let printed = openssl_print(&w.pki, &sealed);
    assert!(printed.contains("rsaesOaep"), "{printed}");
    assert_eq!(openssl_decrypt(&w.pki, &sealed, &w.bob), ENTITY);
    // and without the flag, PKCS#1 v1.5
    let sealed = ok(sg(
        &[&"encrypt", &"--to", &w.bob.cert],
        &message(&w.alice.email),
    ));
    assert!(!openssl_print(&w.pki, &sealed).contains("rsaesOaep"));
}

#[test]
fn encrypt_subject_replaces_the_outer_subject() {
    let Some(w) = world() else { return };
    let sealed = ok(sg(
        &[
            &"encrypt",
            &"--to",
            &w.bob.cert,
            &"--subject",
            &"Encrypted message",
        ],
        &message(&w.alice.email),
    ));
    let h = header(&sealed);
    assert!(h.contains("Subject: Encrypted message"), "{h}");
    assert!(!h.contains("Quarterly"), "{h}");
    assert_eq!(h.matches("Subject:").count(), 1, "{h}");
    assert!(h.contains("From: Alice Sender <alice@example.com>"), "{h}");
}

#[test]
fn encrypt_sign_then_encrypt_with_key_and_with_p12() {
    let Some(w) = world() else { return };
    let msg = message(&w.alice.email);
    let sign_key: [&dyn AsRef<std::ffi::OsStr>; 7] = [
        &"encrypt",
        &"--to",
        &w.bob.cert,
        &"--sign-key",
        &w.alice.key,
        &"--sign-cert",
        &w.alice.cert,
    ];
    let with_key = ok(sg(&sign_key, &msg));
    let mut chain_args = sign_key.to_vec();
    chain_args.extend([
        &"--chain" as &dyn AsRef<std::ffi::OsStr>,
        &w.pki.intermediate,
        &"--cipher",
        &"aes-256-gcm",
    ]);
    let with_chain = ok(sg(&chain_args, &msg));
    let with_p12 = ok(sg_env(
        &[
            &"encrypt",
            &"--to",
            &w.bob.cert,
            &"--p12",
            &w.alice.p12,
            &"--password-env",
            &"SG_PW",
        ],
        &msg,
        &pw_env(),
    ));
    // (what, message, whether the signature carries the intermediate)
    for (what, sealed, carries_chain) in [
        ("key", with_key, false),
        ("key+chain", with_chain, true),
        ("p12", with_p12, true),
    ] {
        let inner = openssl_decrypt(&w.pki, &sealed, &w.bob);
        assert!(
            header(&inner).contains("multipart/signed"),
            "{what}: {}",
            header(&inner)
        );
        // the decrypted entity is a signed MIME entity that openssl verifies
        let content = if carries_chain {
            openssl_verify(&w.pki, &inner, &w.alice.cert)
        } else {
            openssl_verify_bundle(&w.pki, &inner, &w.alice.cert)
        };
        assert_eq!(lf(&content), lf(ENTITY), "{what}");
    }
}

/// Like [`openssl_verify`], with the intermediate trusted too (a signature made without
/// --chain does not carry it).
fn openssl_verify_bundle(pki: &Pki, signed: &[u8], signer: &Path) -> Vec<u8> {
    let f = pki.write("to-verify2.eml", signed);
    let content = pki.path().join("verified2.out");
    let signer_out = pki.path().join("signer2.pem");
    run(openssl(&["cms", "-verify", "-CAfile"])
        .arg(&pki.ca_bundle)
        .arg("-in")
        .arg(&f)
        .arg("-out")
        .arg(&content)
        .arg("-signer")
        .arg(&signer_out));
    assert_eq!(cert_der(&signer_out), cert_der(signer));
    read(&content)
}

#[test]
fn encrypt_errors_are_one_line() {
    let Some(w) = world() else { return };
    let msg = message(&w.alice.email);
    let e = error_line(&sg(&[&"encrypt", &"--to", &"/nonexistent/bob.pem"], &msg));
    assert!(e.contains("/nonexistent/bob.pem"), "{e}");
    // a private key where a certificate belongs
    let e = error_line(&sg(&[&"encrypt", &"--to", &w.bob.key], &msg));
    assert!(e.contains("bob.key"), "{e}");
    let e = error_line(&sg_env(
        &[
            &"encrypt",
            &"--to",
            &w.bob.cert,
            &"--p12",
            &w.alice.p12,
            &"--password-env",
            &"SG_PW",
        ],
        &msg,
        &[("SG_PW", "wrong")],
    ));
    assert!(e.contains("password"), "{e}");
    error_line(&sg(&[&"encrypt", &"--to", &w.bob.cert], b"\x00\xff\xfe"));
    // --chain without a signer
    let e = error_line(&sg(
        &[
            &"encrypt",
            &"--to",
            &w.bob.cert,
            &"--chain",
            &w.pki.intermediate,
        ],
        &msg,
    ));
    assert!(e.contains("--sign-key"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// decrypt

fn sealed_for_bob(w: &World, sign: bool) -> Vec<u8> {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"encrypt", &"--to", &w.bob.cert];
    if sign {
        args.extend([
            &"--sign-key" as &dyn AsRef<std::ffi::OsStr>,
            &w.alice.key,
            &"--sign-cert",
            &w.alice.cert,
        ]);
    }
    ok(sg(&args, &message(&w.alice.email)))
}

#[test]
fn decrypt_with_pem_der_and_p12() {
    let Some(w) = world() else { return };
    let sealed = sealed_for_bob(&w, false);
    let (key, cert) = der_files(&w.pki, "bob", &w.bob);
    let f = w.pki.write("sealed.eml", &sealed);
    let out = w.pki.path().join("clear.eml");
    // PEM, stdin to stdout
    let clear = ok(sg(
        &[&"decrypt", &"--key", &w.bob.key, &"--cert", &w.bob.cert],
        &sealed,
    ));
    assert_eq!(clear, message(&w.alice.email));
    // DER, --in and --out
    let o = sg(
        &[
            &"decrypt", &"--key", &key, &"--cert", &cert, &"--in", &f, &"--out", &out,
        ],
        b"",
    );
    assert!(ok(o).is_empty());
    assert_eq!(read(&out), message(&w.alice.email));
    // PKCS#12
    let clear = ok(sg_env(
        &[
            &"decrypt",
            &"--p12",
            &w.bob.p12,
            &"--password-env",
            &"SG_PW",
        ],
        &sealed,
        &pw_env(),
    ));
    assert_eq!(clear, message(&w.alice.email));
}

#[test]
fn decrypt_openssl_encrypted_messages() {
    let Some(w) = world() else { return };
    let entity = w.pki.write("entity.txt", ENTITY);
    for (cipher, user) in [
        ("-aes256", &w.bob),
        ("-aes128", &w.bob),
        ("-des3", &w.bob),
        ("-aes-256-gcm", &w.bob),
        ("-aes256", &w.erin),
    ] {
        let out = w.pki.path().join("openssl-sealed.eml");
        run(openssl(&["cms", "-encrypt", "-binary", cipher, "-in"])
            .arg(&entity)
            .args(["-from", &w.alice.email, "-to", &user.email])
            .args(["-subject", "Sealed by openssl", "-out"])
            .arg(&out)
            .arg(&user.cert));
        let clear = ok(sg(
            &[
                &"decrypt", &"--key", &user.key, &"--cert", &user.cert, &"--in", &out,
            ],
            b"",
        ));
        let body = find(&clear, b"\r\n\r\n").unwrap();
        let h = header(&clear);
        assert!(h.contains("Subject: Sealed by openssl"), "{cipher}: {h}");
        // the decrypted entity follows the outer header fields
        let entity_start = find(&clear, b"Content-Type: text/plain").unwrap();
        assert!(entity_start < body, "{cipher}");
        assert_eq!(&clear[entity_start..], ENTITY, "{cipher}");
    }
}

#[test]
fn decrypt_with_trust_verifies_the_inner_signature() {
    let Some(w) = world() else { return };
    let sealed = sealed_for_bob(&w, true);
    let o = sg(
        &[
            &"decrypt",
            &"--key",
            &w.bob.key,
            &"--cert",
            &w.bob.cert,
            &"--trust",
            &w.pki.ca_bundle,
        ],
        &sealed,
    );
    let report = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{report}");
    assert!(report.contains("CN=alice"), "{report}");
    assert!(report.trim_end().ends_with("signature: valid"), "{report}");
    // the output is the signed message: `verify` reads it back to the original
    let signed = o.stdout;
    assert!(header(&signed).contains("multipart/signed"));
    let o = sg(&[&"verify", &"--trust", &w.pki.ca_bundle], &signed);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // without --trust: decrypted, not verified, nothing printed
    let o = sg(
        &[&"decrypt", &"--key", &w.bob.key, &"--cert", &w.bob.cert],
        &sealed,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, signed);
    assert!(o.stderr.is_empty(), "{}", stderr(&o));

    // trust in another PKI: the inner signature is not valid, exit 1, output still written
    let other = Pki::new();
    let o = sg(
        &[
            &"decrypt",
            &"--key",
            &w.bob.key,
            &"--cert",
            &w.bob.cert,
            &"--trust",
            &other.root,
        ],
        &sealed,
    );
    let report = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{report}");
    assert!(
        report.trim_end().ends_with("signature: INVALID"),
        "{report}"
    );
    assert_eq!(o.stdout, signed);
}

#[test]
fn decrypt_tampered_inner_signature_exits_1() {
    let Some(w) = world() else { return };
    // sign, change one byte of the signed text, then encrypt the tampered message
    let signed = signed_by_alice(&w, false);
    let mut tampered = signed.clone();
    let pos = find(&tampered, b"Second line").unwrap();
    tampered[pos] = b's';
    let sealed = ok(sg(&[&"encrypt", &"--to", &w.bob.cert], &tampered));
    let o = sg(
        &[
            &"decrypt",
            &"--key",
            &w.bob.key,
            &"--cert",
            &w.bob.cert,
            &"--trust",
            &w.pki.root,
        ],
        &sealed,
    );
    let report = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{report}");
    assert!(report.contains("FAIL"), "{report}");
    assert!(
        report.trim_end().ends_with("signature: INVALID"),
        "{report}"
    );
}

#[test]
fn decrypt_errors_are_one_line() {
    let Some(w) = world() else { return };
    let sealed = sealed_for_bob(&w, false);
    let bob: [&dyn AsRef<std::ffi::OsStr>; 5] =
        [&"decrypt", &"--key", &w.bob.key, &"--cert", &w.bob.cert];

    // not a recipient (alice's key and certificate)
    let e = error_line(&sg(
        &[&"decrypt", &"--key", &w.alice.key, &"--cert", &w.alice.cert],
        &sealed,
    ));
    assert!(
        e == "sealgate: could not decrypt the message"
            || e == "sealgate: the message is not encrypted to this certificate",
        "{e}"
    );
    // alice's key with bob's certificate: refused before any decryption
    let e = error_line(&sg(
        &[&"decrypt", &"--key", &w.alice.key, &"--cert", &w.bob.cert],
        &sealed,
    ));
    assert!(e.contains("does not match"), "{e}");
    // wrong PKCS#12 password
    let e = error_line(&sg_env(
        &[
            &"decrypt",
            &"--p12",
            &w.bob.p12,
            &"--password-env",
            &"SG_PW",
        ],
        &sealed,
        &[("SG_PW", "wrong")],
    ));
    assert!(e.contains("wrong password"), "{e}");
    assert!(e.contains("bob.p12"), "{e}");
    // a PKCS#12 that is not one
    let fake = w.pki.write("fake.p12", b"\x30\x03\x02\x01\x03");
    error_line(&sg_env(
        &[&"decrypt", &"--p12", &fake, &"--password-env", &"SG_PW"],
        &sealed,
        &pw_env(),
    ));

    let body = find(&sealed, b"\r\n\r\n").unwrap() + 4;
    // corrupt base64
    let mut bad = sealed.clone();
    bad[body + 20] = b'%';
    bad[body + 21] = b'%';
    error_line(&sg(&bob, &bad));
    // valid base64, corrupt DER: the CMS cut short
    let cut = [&sealed[..body + 120], b"\r\n".as_slice()].concat();
    error_line(&sg(&bob, &cut));
    // valid DER, flipped ciphertext byte at the end: padding/content failure, coarse error
    let s = String::from_utf8(sealed.clone()).unwrap();
    let lines: Vec<&str> = s[body..].lines().collect();
    let last_full = lines.iter().rposition(|l| l.len() >= 8).unwrap();
    let mut flipped_lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let l = &mut flipped_lines[last_full];
    let c = if l.as_bytes()[2] == b'A' { "B" } else { "A" };
    l.replace_range(2..3, c);
    let flipped = format!("{}{}\r\n", &s[..body], flipped_lines.join("\r\n"));
    let e = error_line(&sg(&bob, flipped.as_bytes()));
    assert!(
        e == "sealgate: could not decrypt the message" || e.contains("malformed"),
        "{e}"
    );
    // a signed message is not an encrypted one
    let e = error_line(&sg(&bob, &signed_by_alice(&w, true)));
    assert!(e.contains("not an S/MIME encrypted message"), "{e}");
    // neither --key/--cert nor --p12
    let e = error_line(&sg(&[&"decrypt"], &sealed));
    assert!(e.contains("--p12"), "{e}");
    // a plain message, garbage, an empty input
    error_line(&sg(&bob, &message(&w.alice.email)));
    error_line(&sg(&bob, b"\xff\xfe\x00garbage"));
    error_line(&sg(&bob, b""));
    // missing files
    let e = error_line(&sg(
        &[
            &"decrypt",
            &"--key",
            &"/nonexistent/key",
            &"--cert",
            &w.bob.cert,
        ],
        &sealed,
    ));
    assert!(e.contains("/nonexistent/key"), "{e}");
    let e = error_line(&sg(
        &[
            &bob[0],
            &bob[1],
            &bob[2],
            &bob[3],
            &bob[4],
            &"--in",
            &"/nonexistent/in",
        ],
        b"",
    ));
    assert!(e.contains("/nonexistent/in"), "{e}");
    // an unwritable --out
    let e = error_line(&sg(
        &[
            &bob[0],
            &bob[1],
            &bob[2],
            &bob[3],
            &bob[4],
            &"--out",
            &"/nonexistent/dir/out",
        ],
        &sealed,
    ));
    assert!(e.contains("/nonexistent/dir/out"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// help and usage

#[test]
fn help_lists_every_flag() {
    for (cmd, flags) in [
        (
            "sign",
            &[
                "--key",
                "--cert",
                "--p12",
                "--password-env",
                "--chain",
                "--opaque",
                "--digest",
                "--pss",
                "--in",
                "--out",
            ][..],
        ),
        ("verify", &["--trust", "--in", "--out"][..]),
        (
            "encrypt",
            &[
                "--to",
                "--cipher",
                "aes-256-gcm",
                "aes-256-cbc",
                "aes-128-cbc",
                "--oaep",
                "--subject",
                "--sign-key",
                "--sign-cert",
                "--chain",
                "--p12",
                "--password-env",
                "--in",
                "--out",
            ][..],
        ),
        (
            "decrypt",
            &[
                "--key",
                "--cert",
                "--p12",
                "--password-env",
                "--trust",
                "--in",
                "--out",
            ][..],
        ),
    ] {
        let o = sg(&[&cmd, &"--help"], b"");
        let help = String::from_utf8(o.stdout).unwrap();
        assert_eq!(o.status.code(), Some(0), "{cmd}");
        for f in flags {
            assert!(help.contains(f), "{cmd} --help lacks {f}:\n{help}");
        }
    }
    let o = sg(&[&"--help"], b"");
    let help = String::from_utf8(o.stdout).unwrap();
    for c in ["sign", "verify", "encrypt", "decrypt"] {
        assert!(help.contains(c), "{help}");
    }
}

#[test]
fn usage_errors_exit_2_without_panic() {
    for args in [
        &["verify"][..],
        &["encrypt"][..],
        &["sign", "--key", "k.pem"][..],
        &["encrypt", "--to", "b.pem", "--cipher", "rot13"][..],
        &[
            "decrypt", "--p12", "x.p12", "--key", "k.pem", "--cert", "c.pem",
        ][..],
    ] {
        let a: Vec<&dyn AsRef<std::ffi::OsStr>> = args
            .iter()
            .map(|s| s as &dyn AsRef<std::ffi::OsStr>)
            .collect();
        let o = sg(&a, b"");
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// `t` as RFC 3339 in UTC (H. Hinnant's civil_from_days).
fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[test]
fn rfc3339_formatting() {
    let at = |s: u64| rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s));
    assert_eq!(at(0), "1970-01-01T00:00:00Z");
    assert_eq!(at(1_795_428_000), "2026-11-23T10:00:00Z");
    assert_eq!(at(951_825_600), "2000-02-29T12:00:00Z");
    assert_eq!(at(2_147_483_648), "2038-01-19T03:14:08Z");
}

#[test]
fn verify_at_another_time() {
    let Some(w) = world() else { return };
    let signed = signed_by_alice(&w, false);
    let root: &dyn AsRef<std::ffi::OsStr> = &w.pki.root;
    // the certificates were made just now and last 825 days: valid tomorrow, not in 2040
    let tomorrow = rfc3339(std::time::SystemTime::now() + std::time::Duration::from_secs(86_400));
    let o = sg(&[&"verify", &"--trust", root, &"--at", &tomorrow], &signed);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // in 2040 the certificate has expired; the signature, made while it was valid, stays
    // valid, with a warning
    let o = sg(
        &[
            &"verify",
            &"--trust",
            root,
            &"--at",
            &"2040-01-01T00:00:00+02:00",
        ],
        &signed,
    );
    let report = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{report}");
    assert!(!report.contains("FAIL"), "{report}");
    let warn: Vec<&str> = report.lines().filter(|l| l.contains("[warn]")).collect();
    assert_eq!(warn.len(), 1, "{report}");
    assert!(warn[0].contains("ValidNow"), "{report}");
    assert!(warn[0].contains("expired"), "{report}");
    assert!(report.trim_end().ends_with("signature: valid"), "{report}");
    // without --at nothing to warn about; the address is listed once
    let o = sg(&[&"verify", &"--trust", root], &signed);
    assert!(!stderr(&o).contains("[warn]"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("  addresses: alice@example.com\n"),
        "{}",
        stderr(&o)
    );
    // not a time: a usage error
    let o = sg(
        &[&"verify", &"--trust", root, &"--at", &"yesterday"],
        &signed,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("RFC 3339"), "{}", stderr(&o));
}

#[test]
fn decrypt_with_trust_of_an_unsigned_message_says_so() {
    let Some(w) = world() else { return };
    let o = sg(
        &[
            &"decrypt",
            &"--key",
            &w.bob.key,
            &"--cert",
            &w.bob.cert,
            &"--trust",
            &w.pki.root,
        ],
        &sealed_for_bob(&w, false),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, message(&w.alice.email));
    assert_eq!(
        stderr(&o),
        "signature: none (the decrypted message is not signed)\n"
    );
}

/// Every byte position of every kind of message, changed or cut there: the binary answers
/// with exit 0, 1 or 2, and an error is always the one-line kind (never a panic).
#[test]
fn mutated_messages_never_break_the_error_contract() {
    let Some(w) = world() else { return };
    let gcm = ok(sg(
        &[
            &"encrypt",
            &"--to",
            &w.bob.cert,
            &"--cipher",
            &"aes-256-gcm",
        ],
        &message(&w.alice.email),
    ));
    let cases: [(&str, Vec<u8>); 5] = [
        ("detached", signed_by_alice(&w, false)),
        ("opaque", signed_by_alice(&w, true)),
        ("cbc", sealed_for_bob(&w, false)),
        ("gcm", gcm),
        ("signed+cbc", sealed_for_bob(&w, true)),
    ];
    let verify: [&dyn AsRef<std::ffi::OsStr>; 3] = [&"verify", &"--trust", &w.pki.ca_bundle];
    let decrypt: [&dyn AsRef<std::ffi::OsStr>; 7] = [
        &"decrypt",
        &"--key",
        &w.bob.key,
        &"--cert",
        &w.bob.cert,
        &"--trust",
        &w.pki.ca_bundle,
    ];
    for (name, msg) in &cases {
        let args: &[&dyn AsRef<std::ffi::OsStr>] = if name.contains("cbc") || *name == "gcm" {
            &decrypt
        } else {
            &verify
        };
        let step = (msg.len() / 37).max(1);
        for pos in (0..msg.len()).step_by(step) {
            let mut changed = msg.clone();
            changed[pos] ^= 0x21;
            for input in [changed, msg[..pos].to_vec()] {
                let o = sg(args, &input);
                let err = stderr(&o);
                assert!(
                    !err.contains("panicked") && !err.contains("internal error"),
                    "{name} at {pos}: {err}"
                );
                match o.status.code() {
                    Some(0 | 1) => {}
                    Some(2) => {
                        error_line(&o);
                    }
                    c => panic!("{name} at {pos}: exit {c:?}: {err}"),
                }
            }
        }
    }
}

#[test]
fn decrypt_with_legacy_p12_encrypted_key_and_ecdh() {
    let Some(w) = world() else { return };
    let sealed = ok(sg(
        &[&"encrypt", &"--to", &w.bob.cert, &"--to", &w.erin.cert],
        &message(&w.alice.email),
    ));
    // OpenSSL's -legacy PKCS#12 (RC2/3DES, SHA-1 MAC), as older clients export them
    let legacy = w.pki.path().join("bob.legacy.p12");
    run(openssl(&["pkcs12", "-export", "-legacy", "-inkey"])
        .arg(&w.bob.key)
        .arg("-in")
        .arg(&w.bob.cert)
        .args(["-passout", "pass:legacy-pw", "-out"])
        .arg(&legacy));
    let clear = ok(sg_env(
        &[&"decrypt", &"--p12", &legacy, &"--password-env", &"P"],
        &sealed,
        &[("P", "legacy-pw")],
    ));
    assert_eq!(clear, message(&w.alice.email));
    // an encrypted PKCS#8 key
    let enc = w.pki.path().join("bob.enc.key");
    run(openssl(&["pkcs8", "-topk8", "-v2", "aes-128-cbc", "-in"])
        .arg(&w.bob.key)
        .args(["-passout", "pass:key-pw", "-out"])
        .arg(&enc));
    let args: [&dyn AsRef<std::ffi::OsStr>; 7] = [
        &"decrypt",
        &"--key",
        &enc,
        &"--cert",
        &w.bob.cert,
        &"--password-env",
        &"P",
    ];
    let clear = ok(sg_env(&args, &sealed, &[("P", "key-pw")]));
    assert_eq!(clear, message(&w.alice.email));
    let e = error_line(&sg_env(&args, &sealed, &[("P", "wrong")]));
    assert!(e.contains("wrong password"), "{e}");
    let e = error_line(&sg(&args[..5], &sealed));
    assert!(e.contains("--password-env"), "{e}");
    // ECDH P-256 (key agreement) recipient
    let clear = ok(sg(
        &[&"decrypt", &"--key", &w.erin.key, &"--cert", &w.erin.cert],
        &sealed,
    ));
    assert_eq!(clear, message(&w.alice.email));
}

#[test]
fn eight_bit_multipart_and_lf_messages() {
    let Some(w) = world() else { return };
    let msg = sealgate_tests::sample_message(&w.alice.email, &w.bob.email);
    // encrypt and decrypt give the message back byte for byte
    let sealed = ok(sg(&[&"encrypt", &"--to", &w.bob.cert], &msg));
    let clear = ok(sg(
        &[&"decrypt", &"--key", &w.bob.key, &"--cert", &w.bob.cert],
        &sealed,
    ));
    assert_eq!(clear, msg);
    // detached signing makes the 8-bit part 7-bit (RFC 8551 §3.1.2); openssl and we agree
    let signed = ok(sg(
        &[
            &"sign",
            &"--key",
            &w.alice.key,
            &"--cert",
            &w.alice.cert,
            &"--chain",
            &w.pki.intermediate,
        ],
        &msg,
    ));
    assert!(signed.is_ascii(), "signed output is 7-bit");
    let content = openssl_verify(&w.pki, &signed, &w.alice.cert);
    let content = String::from_utf8(content).unwrap();
    assert!(
        content.contains("Gr=C3=BC=C3=9Fe aus Z=C3=BCrich"),
        "{content}"
    );
    let o = sg(&[&"verify", &"--trust", &w.pki.root], &signed);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // a signed message stored with LF line ends (Unix mailboxes) still verifies, and an LF
    // input message is written with CRLF
    let lf_signed: Vec<u8> = signed.iter().copied().filter(|&b| b != b'\r').collect();
    let out = w.pki.path().join("lf-verified.eml");
    let o = sg(
        &[&"verify", &"--trust", &w.pki.root, &"--out", &out],
        &lf_signed,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lf_msg: Vec<u8> = message(&w.alice.email)
        .into_iter()
        .filter(|&b| b != b'\r')
        .collect();
    let sealed = ok(sg(&[&"encrypt", &"--to", &w.bob.cert], &lf_msg));
    let clear = ok(sg(
        &[&"decrypt", &"--key", &w.bob.key, &"--cert", &w.bob.cert],
        &sealed,
    ));
    assert_eq!(clear, message(&w.alice.email));
}

// ---------------------------------------------------------------------------------------------
// triple wrap (RFC 2634)

/// `encrypt --triple-wrap`: openssl checks the outer signature with no key and the content it
/// covers is the enveloped entity, which openssl decrypts to alice's inner signed message;
/// `verify` checks the outer layer keyless too, and `decrypt --trust` reports both layers.
#[test]
fn encrypt_triple_wrap_layers_check_in_openssl_and_decrypt_reports_both() {
    let Some(w) = world() else { return };
    let msg = message(&w.alice.email);
    let wrapped = ok(sg(
        &[
            &"encrypt",
            &"--to",
            &w.bob.cert,
            &"--sign-key",
            &w.alice.key,
            &"--sign-cert",
            &w.alice.cert,
            &"--chain",
            &w.pki.intermediate,
            &"--triple-wrap",
        ],
        &msg,
    ));
    let h = header(&wrapped);
    assert!(h.contains("multipart/signed"), "{h}");
    assert!(find(&wrapped, b"The figures").is_none());
    // outer layer: openssl, no key
    let enveloped = openssl_verify(&w.pki, &wrapped, &w.alice.cert);
    assert!(
        find(&enveloped, b"application/pkcs7-mime").is_some(),
        "{}",
        String::from_utf8_lossy(&enveloped)
    );
    let inner = openssl_decrypt(&w.pki, &enveloped, &w.bob);
    assert!(header(&inner).contains("multipart/signed"));
    assert_eq!(
        lf(&openssl_verify(&w.pki, &inner, &w.alice.cert)),
        lf(ENTITY)
    );
    // `verify` is the keyless check of the outer layer; --out is the encrypted message
    let f = w.pki.write("triple.eml", &wrapped);
    let out = w.pki.path().join("outer-content.eml");
    let o = sg(
        &[
            &"verify",
            &"--trust",
            &w.pki.root,
            &"--in",
            &f,
            &"--out",
            &out,
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(header(&read(&out)).contains("application/pkcs7-mime"));
    // `decrypt`: both signatures, in order
    let o = sg(
        &[
            &"decrypt",
            &"--key",
            &w.bob.key,
            &"--cert",
            &w.bob.cert,
            &"--trust",
            &w.pki.root,
        ],
        &wrapped,
    );
    let report = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{report}");
    // the output is alice's signed message, which `verify` reads back to the original
    assert!(header(&o.stdout).contains("multipart/signed"));
    let out = w.pki.path().join("original.eml");
    let v = sg(
        &[&"verify", &"--trust", &w.pki.root, &"--out", &out],
        &o.stdout,
    );
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
    assert_eq!(read(&out), msg);
    let outer_at = report.find("outer signature").expect(&report);
    let inner_at = report.find("inner signature:").expect(&report);
    assert!(outer_at < inner_at, "{report}");
    assert_eq!(report.matches("signature: valid").count(), 2, "{report}");
    assert_eq!(
        report
            .matches("signer: EMAIL=alice@example.com,CN=alice")
            .count(),
        2,
        "{report}"
    );
    assert!(!report.contains("FAIL"), "{report}");
    // without --trust: refused, as the outer signature would go unchecked
    let e = error_line(&sg(
        &[&"decrypt", &"--key", &w.bob.key, &"--cert", &w.bob.cert],
        &wrapped,
    ));
    assert!(e.contains("--trust"), "{e}");
}

/// The outer signer can be another identity (here erin, as a gateway would be): decrypt names
/// both signers, and since erin's certificate does not name the From address, the outer
/// report fails that check and the exit status is 1 (the message is still written).
#[test]
fn encrypt_triple_wrap_with_another_outer_signer() {
    let Some(w) = world() else { return };
    let msg = message(&w.alice.email);
    let wrapped = ok(sg_env(
        &[
            &"encrypt",
            &"--to",
            &w.bob.cert,
            &"--p12",
            &w.alice.p12,
            &"--password-env",
            &"SG_PW",
            &"--triple-wrap",
            &"--outer-p12",
            &w.erin.p12,
            &"--cipher",
            &"aes-256-gcm",
        ],
        &msg,
        &pw_env(),
    ));
    // openssl finds erin as the outer signer
    let enveloped = openssl_verify(&w.pki, &wrapped, &w.erin.cert);
    assert!(find(&enveloped, b"authEnveloped-data").is_some());
    let o = sg(
        &[
            &"decrypt",
            &"--key",
            &w.bob.key,
            &"--cert",
            &w.bob.cert,
            &"--trust",
            &w.pki.root,
        ],
        &wrapped,
    );
    let report = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{report}");
    assert!(header(&o.stdout).contains("multipart/signed"));
    assert!(find(&o.stdout, b"The figures are attached.").is_some());
    let (outer, inner) = report.split_at(report.find("inner signature:").expect(&report));
    assert!(outer.contains("CN=erin"), "{report}");
    assert!(outer.contains("[FAIL] SignerAddress"), "{report}");
    assert!(outer.contains("signature: INVALID"), "{report}");
    assert!(inner.contains("CN=alice"), "{report}");
    assert!(inner.contains("signature: valid"), "{report}");

    // With erin named as an allowed outer signer (a gateway identity), both commands accept
    // the layer; naming someone else does not.
    let decrypt_with = |outer: &dyn AsRef<std::ffi::OsStr>| {
        sg(
            &[
                &"decrypt",
                &"--key",
                &w.bob.key,
                &"--cert",
                &w.bob.cert,
                &"--trust",
                &w.pki.root,
                &"--outer-signer",
                outer,
            ],
            &wrapped,
        )
    };
    let o = decrypt_with(&w.erin.cert);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = decrypt_with(&w.bob.cert);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let verify_with = |outer: Option<&dyn AsRef<std::ffi::OsStr>>| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"verify", &"--trust", &w.pki.root];
        if let Some(o) = outer {
            args.extend([&"--outer-signer" as &dyn AsRef<std::ffi::OsStr>, o]);
        }
        sg(&args, &wrapped).status.code()
    };
    assert_eq!(verify_with(None), Some(1));
    assert_eq!(verify_with(Some(&w.erin.cert)), Some(0));
    assert_eq!(verify_with(Some(&w.bob.cert)), Some(1));
}

#[test]
fn encrypt_triple_wrap_errors_are_one_line() {
    let Some(w) = world() else { return };
    let msg = message(&w.alice.email);
    // nothing to sign with
    let e = error_line(&sg(
        &[&"encrypt", &"--to", &w.bob.cert, &"--triple-wrap"],
        &msg,
    ));
    assert!(e.contains("--triple-wrap"), "{e}");
    // an outer signer without --triple-wrap is a usage error (exit 2)
    let o = sg(
        &[
            &"encrypt",
            &"--to",
            &w.bob.cert,
            &"--outer-key",
            &w.erin.key,
            &"--outer-cert",
            &w.erin.cert,
        ],
        &msg,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // an outer key that is not the outer certificate's
    let e = error_line(&sg(
        &[
            &"encrypt",
            &"--to",
            &w.bob.cert,
            &"--sign-key",
            &w.alice.key,
            &"--sign-cert",
            &w.alice.cert,
            &"--triple-wrap",
            &"--outer-key",
            &w.erin.key,
            &"--outer-cert",
            &w.alice.cert,
        ],
        &msg,
    ));
    assert!(e.contains("does not match"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// post-quantum recipients (KEMRecipientInfo, RFC 9629 / 9936)

/// An ML-KEM-768 user "pq@example.org" issued by the test PKI's intermediate (our issuing code:
/// openssl 3.0 knows no ML-KEM): (key PKCS#8 DER, certificate DER).
fn ml_kem_user(w: &World) -> (PathBuf, PathBuf) {
    use sealgate::smime::{self, Certificate, CertificateParams, KeyKind, MlKem, PrivateKey};
    let limits = sealgate::Limits::default();
    let ca_key = smime::load_private_key(&read(&w.pki.path().join("int.key")), None, &limits)
        .expect("intermediate key");
    let ca = Certificate::load(&read(&w.pki.intermediate), &limits).expect("intermediate");
    let key = PrivateKey::generate(KeyKind::MlKem(MlKem::MlKem768)).expect("ML-KEM key");
    let cert = smime::issue::issue(
        key.public_key(),
        &CertificateParams::user("pq", "pq@example.org"),
        &ca,
        &ca_key,
        &mut rand_core::OsRng,
    )
    .expect("ML-KEM certificate");
    (
        w.pki
            .write("pq.key.der", &key.to_pkcs8_der().expect("PKCS#8")),
        w.pki.write("pq.cert.der", cert.der()),
    )
}

/// `encrypt --pq` to an ML-KEM certificate: `decrypt` with the ML-KEM key file gets the message
/// back, a wrong ML-KEM key gets the coarse error; `--pq` with an RSA recipient beside it is
/// refused naming that certificate; without `--pq` the same two recipients get one message
/// that openssl 3.0 decrypts through the RSA recipient (it skips the ori) and ours through the
/// ML-KEM one.
#[test]
fn encrypt_pq_to_ml_kem_and_mixed_with_rsa() {
    let Some(w) = world() else { return };
    let msg = message(&w.alice.email);
    let (pq_key, pq_cert) = ml_kem_user(&w);
    let sealed = ok(sg(&[&"encrypt", &"--pq", &"--to", &pq_cert], &msg));
    assert!(find(&sealed, b"The figures").is_none());
    let print = openssl_print(&w.pki, &sealed);
    // one RecipientInfo, an ori (openssl prints its OID and DER, not its fields)
    assert!(print.contains("d.ori"), "{print}");
    assert!(
        !print.contains("d.ktri") && !print.contains("d.kari"),
        "{print}"
    );
    let clear = ok(sg(
        &[&"decrypt", &"--key", &pq_key, &"--cert", &pq_cert],
        &sealed,
    ));
    assert_eq!(clear, msg);
    // another ML-KEM key (its own certificate): the one coarse error
    let w2 = World {
        pki: Pki::new(),
        alice: w.alice.clone(),
        bob: w.bob.clone(),
        erin: w.erin.clone(),
    };
    let (other_key, other_cert) = ml_kem_user(&w2);
    let e = error_line(&sg(
        &[&"decrypt", &"--key", &other_key, &"--cert", &other_cert],
        &sealed,
    ));
    assert!(
        e == "sealgate: could not decrypt the message"
            || e.contains("not encrypted to this certificate"),
        "{e}"
    );
    // --pq refuses a non-ML-KEM recipient and names it
    let e = error_line(&sg(
        &[&"encrypt", &"--pq", &"--to", &pq_cert, &"--to", &w.bob.cert],
        &msg,
    ));
    assert!(e.contains("--pq") && e.contains("bob.pem"), "{e}");
    // mixed, without --pq
    for cipher in ["aes-256-cbc", "aes-256-gcm"] {
        let mixed = ok(sg(
            &[
                &"encrypt",
                &"--to",
                &pq_cert,
                &"--to",
                &w.bob.cert,
                &"--cipher",
                &cipher,
            ],
            &msg,
        ));
        let print = openssl_print(&w.pki, &mixed);
        assert!(
            print.contains("d.ori") && print.contains("d.ktri"),
            "{print}"
        );
        assert_eq!(
            lf(&openssl_decrypt(&w.pki, &mixed, &w.bob)),
            lf(ENTITY),
            "{cipher}"
        );
        let clear = ok(sg(
            &[&"decrypt", &"--key", &pq_key, &"--cert", &pq_cert],
            &mixed,
        ));
        assert_eq!(clear, msg, "{cipher}");
    }
}

/// A DER TLV with a short or long definite length.
fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    match n {
        0..=0x7f => out.push(n as u8),
        0x80..=0xff => out.extend_from_slice(&[0x81, n as u8]),
        _ => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(body);
    out
}

/// An S/MIME AuthEnvelopedData (AES-256-GCM) to `to` with authAttrs (RFC 5083 §2.2: the DER of
/// the SET OF attributes is the AAD), which neither openssl nor we write, built with the
/// openssl crate: KTRI with PKCS#1 v1.5, authAttrs { contentType id-data }.
fn auth_enveloped_with_attrs(to: &User, entity: &[u8]) -> Vec<u8> {
    use openssl::symm::{Cipher, Crypter, Mode};
    let cert = openssl::x509::X509::from_pem(&read(&to.cert)).unwrap();
    let mut cek = [0u8; 32];
    openssl::rand::rand_bytes(&mut cek).unwrap();
    let nonce = [9u8; 12];
    let rsa = cert.public_key().unwrap().rsa().unwrap();
    let mut ek = vec![0u8; rsa.size() as usize];
    let n = rsa
        .public_encrypt(&cek, &mut ek, openssl::rsa::Padding::PKCS1)
        .unwrap();
    ek.truncate(n);
    let serial = cert.serial_number().to_bn().unwrap().to_vec();
    let serial = if serial[0] & 0x80 != 0 {
        [&[0u8][..], &serial].concat()
    } else {
        serial
    };
    let ias = der(
        0x30,
        &[cert.issuer_name().to_der().unwrap(), der(0x02, &serial)].concat(),
    );
    let rsa_encryption = der(
        0x06,
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
    );
    let ktri = der(
        0x30,
        &[
            vec![0x02, 1, 0],
            ias,
            der(0x30, &[rsa_encryption, vec![0x05, 0]].concat()),
            der(0x04, &ek),
        ]
        .concat(),
    );
    let id_data = der(
        0x06,
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01],
    );
    let id_content_type = der(
        0x06,
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03],
    );
    let attr = der(0x30, &[id_content_type, der(0x31, &id_data)].concat());
    let aad = der(0x31, &attr);
    let mut c = Crypter::new(Cipher::aes_256_gcm(), Mode::Encrypt, &cek, Some(&nonce)).unwrap();
    c.aad_update(&aad).unwrap();
    let mut ct = vec![0u8; entity.len() + 16];
    let k = c.update(entity, &mut ct).unwrap();
    let k = k + c.finalize(&mut ct[k..]).unwrap();
    ct.truncate(k);
    let mut mac = [0u8; 16];
    c.get_tag(&mut mac).unwrap();
    let aes256_gcm = der(
        0x06,
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2e],
    );
    let params = der(0x30, &[der(0x04, &nonce), vec![0x02, 1, 16]].concat());
    let eci = der(
        0x30,
        &[
            id_data,
            der(0x30, &[aes256_gcm, params].concat()),
            der(0x80, &ct),
        ]
        .concat(),
    );
    let aed = der(
        0x30,
        &[
            vec![0x02, 1, 0],
            der(0x31, &ktri),
            eci,
            der(0xa1, &attr),
            der(0x04, &mac),
        ]
        .concat(),
    );
    let auth_enveloped_data = der(
        0x06,
        &[
            0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17,
        ],
    );
    let ci = der(0x30, &[auth_enveloped_data, der(0xa0, &aed)].concat());
    let mut msg = b"Subject: with authAttrs\r\nMIME-Version: 1.0\r\n".to_vec();
    msg.extend_from_slice(&sealgate::mime::build_base64_entity(
        "application/pkcs7-mime; smime-type=authEnveloped-data; name=smime.p7m",
        Some("smime.p7m"),
        &ci,
    ));
    msg
}

#[test]
fn decrypt_gcm_with_auth_attrs_from_a_file_falls_back_to_memory() {
    let Some(w) = world() else { return };
    let sealed = auth_enveloped_with_attrs(&w.bob, ENTITY);
    // (openssl cannot check this message: OpenSSL 3.0 stops at RFC 5083's authAttrs [1]
    // with "wrong tag ... Field=mac", so our one-shot's tag check is the proof it is right)
    let input = w.pki.path().join("authattrs.p7m");
    std::fs::write(&input, &sealed).unwrap();
    let opened = w.pki.path().join("authattrs.eml");
    ok(sg(
        &[
            &"decrypt",
            &"--key",
            &w.bob.key,
            &"--cert",
            &w.bob.cert,
            &"--in",
            &input,
            &"--out",
            &opened,
        ],
        b"",
    ));
    let out = read(&opened);
    assert!(
        out.starts_with(b"Subject: with authAttrs\r\n"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert!(out.ends_with(ENTITY));
    // from standard input it cannot be read twice: the typed error, nothing written
    let r = sg(
        &[&"decrypt", &"--key", &w.bob.key, &"--cert", &w.bob.cert],
        &sealed,
    );
    assert!(!r.status.success());
    assert!(stderr(&r).contains("cannot stream"), "{}", stderr(&r));
    assert!(r.stdout.is_empty());
}
