//! `sealgate demo`: run twice in a temp dir; every kind of output checked with the real tools
//! (openssl decrypts and verifies S/MIME, gpg decrypts and verifies PGP/MIME as the partner
//! whose secret key the demo wrote to DIR/check, 7z opens the ZIP with the password from the
//! sender notification); the audit trail has a record per message with rules and
//! fingerprints, no generated password and no private key bytes, and verifies after two runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sealgate::Limits;
use sealgate::config::GatewayConfig;
use sealgate::mime::Entity;
use sealgate_tests::{
    Gpg, attachment, contains, notification_password, openssl, require, run, run_unchecked, texts,
};

const BIN: &str = env!("CARGO_BIN_EXE_sealgate");
const SAMPLES: usize = 10;

fn demo(dir: &Path) -> Output {
    Command::new(BIN)
        .args(["demo", "--dir"])
        .arg(dir)
        .output()
        .unwrap()
}

fn tools() -> bool {
    require("openssl") && require("gpg") && require("7z")
}

/// The one output file whose name starts with `prefix` and contains `part`.
fn output(dir: &Path, prefix: &str, part: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with(prefix) && n.contains(part) && n.ends_with(".eml")
        })
        .collect();
    assert_eq!(found.len(), 1, "{prefix}*{part}*: {found:?}");
    found.into_iter().next().unwrap()
}

fn outputs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    v.sort();
    v
}

/// The password of every ZIP sender notification in DIR/out.
fn passwords(dir: &Path) -> Vec<String> {
    outputs(dir)
        .iter()
        .filter(|p| p.to_string_lossy().contains("zip-password-notification"))
        .map(|p| notification_password(&std::fs::read(p).unwrap()))
        .collect()
}

/// Base64 lines (PEM or armor bodies) of a key file, long enough to mean something.
fn body_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.len() >= 16 && !l.starts_with("-----") && !l.contains(':'))
        .map(String::from)
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn demo_runs_twice_and_its_outputs_are_read_by_the_real_tools() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");

    let first = demo(&dir);
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("Creating the demo"), "{stdout}");
    for col in ["message", "recipient", "rules", "action", "keys"] {
        assert!(stdout.contains(col), "table column {col}: {stdout}");
    }
    assert!(stdout.contains("openssl cms -decrypt") && stdout.contains("7z x -p"));
    assert!(stdout.contains("gpg --decrypt"));
    let bob_key_before = std::fs::read(dir.join("check/bob.key")).unwrap();
    let db_before = std::fs::metadata(dir.join("keys.db")).unwrap().len();
    let first_outputs = outputs(&dir).len();
    let mut all_passwords = passwords(&dir);
    assert!(!all_passwords.is_empty());

    let second = demo(&dir);
    assert_eq!(second.status.code(), Some(0), "{second:?}");
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("Reusing the demo"), "{stdout}");
    assert_eq!(
        std::fs::read(dir.join("check/bob.key")).unwrap(),
        bob_key_before
    );
    assert!(std::fs::metadata(dir.join("keys.db")).unwrap().len() >= db_before);
    assert_eq!(
        outputs(&dir).len(),
        first_outputs,
        "outputs overwritten, not added"
    );
    all_passwords.extend(passwords(&dir));
    let check = dir.join("check");

    // S/MIME to bob: openssl decrypts with bob's key, then verifies alice's signature.
    let bob = output(&dir, "01-best-effort-", "smime-smime-bob@partner.example");
    let dec = tmp.path().join("bob.dec");
    run(openssl(&["cms", "-decrypt", "-in"])
        .arg(&bob)
        .arg("-recip")
        .arg(check.join("bob.pem"))
        .arg("-inkey")
        .arg(check.join("bob.key"))
        .arg("-out")
        .arg(&dec));
    let verified = run(openssl(&["cms", "-verify", "-in"])
        .arg(&dec)
        .arg("-CAfile")
        .arg(check.join("ca.pem"))
        .arg("-signer")
        .arg(tmp.path().join("signer.pem")));
    assert!(contains(&verified.stdout, "the plan, the budget"));
    let signer = std::fs::read_to_string(tmp.path().join("signer.pem")).unwrap();
    assert_eq!(
        signer.trim(),
        std::fs::read_to_string(check.join("alice.pem"))
            .unwrap()
            .trim()
    );
    assert!(!contains(
        &std::fs::read(&bob).unwrap(),
        "the plan, the budget"
    ));

    // PGP/MIME to carol: gpg, with carol's secret key from DIR/check, decrypts it and reports
    // alice's good signature.
    let gpg = Gpg::new();
    run(gpg.cmd(&["--import"]).arg(check.join("carol-secret.asc")));
    run(gpg.cmd(&["--import"]).arg(check.join("alice-pgp.asc")));
    let carol =
        std::fs::read(output(&dir, "01-best-effort-", "pgp-pgp-carol@pgp.example")).unwrap();
    let text = String::from_utf8_lossy(&carol);
    let start = text.find("-----BEGIN PGP MESSAGE-----").unwrap();
    let end = text.find("-----END PGP MESSAGE-----").unwrap() + 25;
    let armored = tmp.path().join("carol.asc");
    std::fs::write(&armored, &text[start..end]).unwrap();
    let out = run(gpg.cmd(&["--status-fd", "2", "--decrypt"]).arg(&armored));
    assert!(contains(&out.stdout, "the plan, the budget"));
    let status = String::from_utf8_lossy(&out.stderr);
    assert!(
        status.contains("[GNUPG:] GOODSIG") && status.contains("alice@example.com"),
        "{status}"
    );

    // Password ZIP to dave: 7z opens it with the password from the notification to alice,
    // and not with another.
    let dave = std::fs::read(output(&dir, "01-best-effort-", "zip-dave@plain.example")).unwrap();
    let note = std::fs::read(output(&dir, "01-best-effort-", "zip-password-notification")).unwrap();
    let password = {
        let t = texts(&note);
        t.lines()
            .skip_while(|l| !l.contains("password that opens the archive"))
            .skip(1)
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap()
            .to_string()
    };
    assert!(password.len() >= 16);
    assert!(
        !contains(&dave, &password),
        "the password travelled with the ZIP"
    );
    let zip = tmp.path().join("dave.zip");
    std::fs::write(&zip, attachment(&dave, ".zip")).unwrap();
    let x = tmp.path().join("x");
    run(Command::new("7z")
        .arg("x")
        .arg(format!("-p{password}"))
        .arg(format!("-o{}", x.display()))
        .arg(&zip));
    let extracted: Vec<u8> = std::fs::read_dir(&x)
        .unwrap()
        .flat_map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(contains(&extracted, "Project plan for Q1"));
    assert!(contains(&extracted, "budget.xlsx"));
    let wrong = run_unchecked(
        Command::new("7z")
            .arg("t")
            .arg("-pwrong-password")
            .arg(&zip),
    );
    assert!(!wrong.status.success());

    // The card number never left in clear (dave is held; bob's copy is encrypted).
    for f in outputs(&dir) {
        assert!(
            !contains(&std::fs::read(&f).unwrap(), "4111 1111 1111 1111"),
            "card number in clear in {}",
            f.display()
        );
    }
    assert!(
        !outputs(&dir)
            .iter()
            .any(|p| p.to_string_lossy().contains("03-card-number")
                && p.to_string_lossy().contains("dave"))
    );
    // The executable was refused: no output for that message at all.
    assert!(
        !outputs(&dir)
            .iter()
            .any(|p| p.to_string_lossy().contains("05-executable"))
    );

    // MIKE: the S/MIME reply verifies with openssl; the OpenPGP reply imports into gpg.
    let mike = output(&dir, "06-mike-smime-", "mike-reply");
    let verified = run(openssl(&["cms", "-verify", "-in"])
        .arg(&mike)
        .arg("-CAfile")
        .arg(check.join("ca.pem")));
    assert!(contains(&verified.stdout, "certs-only"));
    let mike_pgp = std::fs::read(output(&dir, "07-mike-pgp-", "mike-reply")).unwrap();
    let key = tmp.path().join("mike.asc");
    std::fs::write(&key, attachment(&mike_pgp, ".asc")).unwrap();
    let fresh = Gpg::new();
    let imported = run(fresh.cmd(&["--status-fd", "2", "--import"]).arg(&key));
    assert!(String::from_utf8_lossy(&imported.stderr).contains("IMPORT_OK"));

    // Inbound: erin's signature verified (the forged field gone), her certificate harvested,
    // and the reply to her encrypted to it (openssl decrypts with erin's key).
    let inbound = std::fs::read(output(&dir, "08-inbound-signed-", "alice@example.com")).unwrap();
    let e = Entity::parse(&inbound, &Limits::default()).unwrap();
    let sigs: Vec<String> = e
        .headers()
        .iter()
        .filter(|h| h.is_named("Sealgate-Signature"))
        .map(|h| h.value())
        .collect();
    assert_eq!(sigs.len(), 1, "{sigs:?}");
    assert!(
        sigs[0].starts_with("valid; smime; signer=erin@harvest.example"),
        "{}",
        sigs[0]
    );
    assert!(!contains(&inbound, "forged"));
    let reply = output(
        &dir,
        "09-reply-to-erin-",
        "smime-smime-erin@harvest.example",
    );
    let out = run(openssl(&["cms", "-decrypt", "-in"])
        .arg(&reply)
        .arg("-recip")
        .arg(check.join("erin.pem"))
        .arg("-inkey")
        .arg(check.join("erin.key")));
    let dec = tmp.path().join("erin.dec");
    std::fs::write(&dec, &out.stdout).unwrap();
    let verified = run(openssl(&["cms", "-verify", "-in"])
        .arg(&dec)
        .arg("-CAfile")
        .arg(check.join("ca.pem")));
    assert!(contains(&verified.stdout, "thanks, noted"));
    let decrypted =
        std::fs::read(output(&dir, "10-inbound-encrypted-", "alice@example.com")).unwrap();
    let e = Entity::parse(&decrypted, &Limits::default()).unwrap();
    assert!(e.header("Sealgate-Decrypted").unwrap().starts_with("smime"));
    assert!(
        e.header("Sealgate-Signature")
            .unwrap()
            .starts_with("valid; smime; signer=bob@partner.example")
    );

    // The audit trail: one record per message per run, rules and fingerprints, chain intact.
    let audit_path = dir.join("audit.jsonl");
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    assert_eq!(audit.lines().count(), 2 * SAMPLES);
    let records: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["record"].clone())
        .collect();
    for m in std::fs::read_dir(dir.join("messages")).unwrap() {
        let raw = std::fs::read(m.unwrap().path()).unwrap();
        let id = Entity::parse(&raw, &Limits::default())
            .unwrap()
            .header("Message-ID")
            .unwrap();
        assert_eq!(
            records
                .iter()
                .filter(|r| r["message_id"].as_str() == Some(id.trim()))
                .count(),
            1,
            "one record for {id}"
        );
    }
    let with_rules = records
        .iter()
        .filter(|r| {
            r["rules"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["name"] != "default"))
        })
        .count();
    assert_eq!(with_rules, 2 * 6, "the six outbound samples fire rules");
    for name in [
        "outbound-best-effort",
        "pgp-partners",
        "confidential-zip",
        "card-numbers",
        "newsletter-signing",
        "reject-executables",
    ] {
        assert!(audit.contains(&format!("\"name\":\"{name}\"")), "{name}");
    }
    let limits = Limits::default();
    for cert in ["bob.pem", "alice.pem", "erin.pem", "newsletter.pem"] {
        let c =
            sealgate::smime::Certificate::load(&std::fs::read(check.join(cert)).unwrap(), &limits)
                .unwrap();
        let fpr = sealgate::keystore::certificate_id(&c);
        assert!(
            audit.contains(&fpr),
            "fingerprint of {cert} in the audit trail"
        );
    }
    let carol_cert =
        sealgate::pgp::Cert::load_all(&std::fs::read(check.join("carol.asc")).unwrap(), &limits)
            .unwrap()
            .remove(0);
    assert!(audit.contains(&carol_cert.fingerprint().to_ascii_lowercase()));

    // No generated password, no private key bytes, no store key in the audit trail.
    for pw in &all_passwords {
        assert!(
            !audit.contains(pw.as_str()),
            "a ZIP password in the audit trail"
        );
    }
    for f in ["bob.key", "erin.key", "carol-secret.asc"] {
        for line in body_lines(&std::fs::read_to_string(check.join(f)).unwrap()) {
            assert!(!audit.contains(&line), "bytes of {f} in the audit trail");
        }
    }
    let store_key = std::fs::read_to_string(dir.join("store.key")).unwrap();
    assert!(!audit.contains(store_key.trim()));
    let config = GatewayConfig::load(dir.join("gateway.toml")).unwrap();
    let keyring = config.open_keyring().unwrap();
    let mut ids: Vec<String> = ["alice.pem", "newsletter.pem"]
        .iter()
        .map(|f| {
            sealgate::keystore::certificate_id(
                &sealgate::smime::Certificate::load(
                    &std::fs::read(check.join(f)).unwrap(),
                    &limits,
                )
                .unwrap(),
            )
        })
        .collect();
    ids.extend(config.domain_identities.values().cloned());
    assert_eq!(ids.len(), 3);
    for id in &ids {
        let identity = keyring
            .identity(id)
            .unwrap()
            .expect("our identity in the store");
        let pkcs8 = identity.key.to_pkcs8_der().unwrap();
        let pem = sealgate::smime::pem::encode("PRIVATE KEY", &pkcs8);
        for line in body_lines(&pem) {
            assert!(
                !audit.contains(&line),
                "bytes of our private key in the audit trail"
            );
        }
        let h = hex(&pkcs8);
        for w in (0..h.len().saturating_sub(64)).step_by(32) {
            assert!(
                !audit.contains(&h[w..w + 64]),
                "hex of our private key in the audit trail"
            );
        }
    }
    let alice_pgp = sealgate::pgp::Cert::load_all(
        &std::fs::read(check.join("alice-pgp.asc")).unwrap(),
        &limits,
    )
    .unwrap()
    .remove(0);
    let secret = keyring
        .pgp_secret_key(&alice_pgp.fingerprint(), None)
        .unwrap()
        .expect("alice's OpenPGP secret key in the store");
    let armored = String::from_utf8(secret.to_armored_secret().unwrap()).unwrap();
    for line in body_lines(&armored) {
        assert!(
            !audit.contains(&line),
            "bytes of alice's OpenPGP secret key in the audit trail"
        );
    }
    drop(keyring);

    // `sealgate audit verify` accepts the chain after the two runs.
    let v = run(Command::new(BIN).args(["audit", "verify"]).arg(&audit_path));
    assert!(
        String::from_utf8_lossy(&v.stdout).contains(&format!("{} records", 2 * SAMPLES)),
        "{v:?}"
    );
}

#[test]
fn demo_refuses_a_directory_that_is_not_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("precious.txt"), b"keep me").unwrap();
    let out = demo(tmp.path());
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not a demo directory"), "{err}");
    assert_eq!(
        std::fs::read(tmp.path().join("precious.txt")).unwrap(),
        b"keep me"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}
