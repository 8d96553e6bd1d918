//! End-to-end tests through the facade (`sealgate::Gateway`), every output checked with the real
//! tools: `openssl cms` for S/MIME, `gpg` for OpenPGP, `7z` for the password ZIP, `openssl
//! pkcs7` and `gpg --import` for MIKE replies. Keys are made at run time by openssl and gpg.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use sealgate::audit::{AuditSink, JsonLinesSink};
use sealgate::keystore::{ImportOptions, Keyring, MemoryStore, StoreSecret};
use sealgate::mime::Entity;
use sealgate::policy::Policy;
use sealgate::{Envelope, Gateway, Limits, Options, Outcome};
use sealgate_tests::{
    Gpg, GpgAlgo, GpgKey, KeyType, P12_PASSWORD, Pki, User, attachment, contains,
    notification_password, openssl, require, run, run_unchecked,
};

const MARKER: &str = "SEALGATE-CONFIDENTIAL-MARKER-4711";

const POLICY: &str = r#"
internal_domains = ["example.com"]

[[rule]]
name = "pgp-partners"
when = { all = [ { direction = "outbound" }, { recipient = "*@pgp.example" } ] }
action = [ { sign = "pgp" }, { encrypt = ["pgp"] } ]

[[rule]]
name = "outbound-protect"
when = { direction = "outbound" }
action = [ { sign = "smime" }, { encrypt = ["smime", "pgp", "zip"] } ]
"#;

const POLICY_NO_ZIP: &str = r#"
internal_domains = ["example.com"]

[[rule]]
name = "smime-only"
when = { direction = "outbound" }
action = { encrypt = ["smime", "pgp"] }
"#;

struct World {
    pki: Pki,
    gpg: Gpg,
    alice: User,
    bob: User,
    erin: User,
    carol: GpgKey,
    alice_pgp: GpgKey,
}

fn tools() -> bool {
    require("openssl") && require("gpg") && require("7z")
}

fn world() -> World {
    let pki = Pki::new();
    let alice = pki.user("alice", "alice@example.com", KeyType::Rsa2048);
    let bob = pki.user("bob", "bob@partner.example", KeyType::Rsa2048);
    let erin = pki.user("erin", "erin@harvest.example", KeyType::P256);
    let gpg = Gpg::new();
    let carol = gpg.gen_key("Carol", "carol@pgp.example", GpgAlgo::Ed25519);
    let alice_pgp = gpg.gen_key("Alice", "alice@example.com", GpgAlgo::Ed25519);
    World {
        pki,
        gpg,
        alice,
        bob,
        erin,
        carol,
        alice_pgp,
    }
}

fn keyring(w: &World) -> Keyring {
    let secret = StoreSecret::raw_key_from_hex(&"42".repeat(32)).unwrap();
    let kr = Keyring::open(
        Arc::new(MemoryStore::new()),
        Some(&secret),
        Limits::default(),
    )
    .unwrap();
    kr.import_paths(
        std::slice::from_ref(&w.pki.root),
        &ImportOptions {
            trust_anchors: true,
            ..Default::default()
        },
    )
    .unwrap();
    kr.import_paths(
        &[
            w.pki.intermediate.clone(),
            w.bob.cert.clone(),
            w.carol.public.clone(),
        ],
        &ImportOptions::default(),
    )
    .unwrap();
    kr.import_paths(
        &[w.alice.p12.clone(), w.alice_pgp.secret.clone()],
        &ImportOptions {
            password: Some(P12_PASSWORD.to_string().into()),
            ..Default::default()
        },
    )
    .unwrap();
    kr
}

fn gateway(w: &World, policy: &str, audit: Option<Arc<dyn AuditSink>>) -> Gateway {
    let mut options = Options::default();
    options.mike_address = Some("keys@example.com".into());
    options.hostname = "gw.example.com".into();
    let mut b = Gateway::builder()
        .policy(Policy::from_toml(policy, None).unwrap())
        .keyring(keyring(w))
        .options(options);
    if let Some(a) = audit {
        b = b.audit(a);
    }
    b.build().unwrap()
}

fn message(from: &str, to: &[&str]) -> Vec<u8> {
    format!(
        "From: Alice <{from}>\r\nTo: {}\r\nSubject: Quarterly figures\r\n\
         Date: Wed, 02 Dec 2026 10:00:00 +0000\r\nMessage-ID: <e2e-1@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         The figures: {MARKER}\r\n--b1\r\n\
         Content-Type: text/csv; name=\"figures.csv\"\r\n\
         Content-Disposition: attachment; filename=\"figures.csv\"\r\n\r\n\
         quarter,revenue\r\nQ4,{MARKER}\r\n--b1--\r\n",
        to.iter()
            .map(|t| format!("<{t}>"))
            .collect::<Vec<_>>()
            .join(", ")
    )
    .into_bytes()
}

fn envelope(from: &str, to: &[&str]) -> Envelope {
    Envelope {
        mail_from: Some(from.into()),
        rcpt_to: to.iter().map(|s| s.to_string()).collect(),
    }
}

fn delivery_for<'a>(o: &'a Outcome, rcpt: &str) -> &'a sealgate::Delivery {
    o.deliveries
        .iter()
        .find(|d| d.recipients.iter().any(|r| r == rcpt))
        .unwrap_or_else(|| panic!("no delivery for {rcpt}: {o:?}"))
}

fn write(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

#[test]
fn outbound_smime_pgp_and_zip_read_by_the_real_tools() {
    if !tools() {
        return;
    }
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let audit_path = dir.path().join("audit.jsonl");
    let sink: Arc<dyn AuditSink> = Arc::new(JsonLinesSink::open(&audit_path).unwrap());
    let gw = gateway(&w, POLICY, Some(sink));
    let to = [
        "bob@partner.example",
        "carol@pgp.example",
        "dave@plain.example",
    ];
    let msg = message("alice@example.com", &to);
    let out = gw
        .process(&msg, &envelope("alice@example.com", &to))
        .unwrap();
    assert!(out.refused.is_empty(), "{:?}", out.refused);
    assert_eq!(out.deliveries.len(), 3, "{out:?}");
    for d in out.deliveries.iter().chain(&out.notifications) {
        if d.treatment != "zip-password-notification" {
            assert!(
                !contains(&d.message, MARKER),
                "clear text in {}",
                d.treatment
            );
        }
    }

    // bob: S/MIME signed and encrypted; openssl decrypts and verifies.
    let bob = delivery_for(&out, "bob@partner.example");
    assert_eq!(bob.treatment, "signed:smime+smime");
    let enc = write(dir.path(), "bob.eml", &bob.message);
    let dec = dir.path().join("bob.dec");
    run(openssl(&["cms", "-decrypt", "-in"])
        .arg(&enc)
        .arg("-inkey")
        .arg(&w.bob.key)
        .arg("-recip")
        .arg(&w.bob.cert)
        .arg("-out")
        .arg(&dec));
    let verified = run(openssl(&["cms", "-verify", "-in"])
        .arg(&dec)
        .arg("-CAfile")
        .arg(&w.pki.ca_bundle));
    assert!(contains(&verified.stdout, MARKER));

    // carol: PGP/MIME signed and encrypted; gpg decrypts and reports a good signature by alice.
    let carol = delivery_for(&out, "carol@pgp.example");
    assert_eq!(carol.treatment, "signed:pgp+pgp");
    let text = String::from_utf8_lossy(&carol.message);
    let start = text.find("-----BEGIN PGP MESSAGE-----").unwrap();
    let end = text.find("-----END PGP MESSAGE-----").unwrap() + 25;
    let armored = write(dir.path(), "carol.asc", text[start..end].as_bytes());
    let gpg_out = run(w.gpg.cmd(&["--status-fd", "2", "--decrypt"]).arg(&armored));
    assert!(contains(&gpg_out.stdout, MARKER));
    let status = String::from_utf8_lossy(&gpg_out.stderr);
    assert!(status.contains("[GNUPG:] GOODSIG"), "{status}");
    assert!(status.contains(&w.alice_pgp.fingerprint), "{status}");

    // dave: nothing known, best effort gives a password ZIP; 7z opens it with the password from
    // the notification to alice.
    let dave = delivery_for(&out, "dave@plain.example");
    assert!(dave.treatment.ends_with("zip"), "{}", dave.treatment);
    assert_eq!(out.notifications.len(), 1);
    let note = &out.notifications[0];
    assert_eq!(note.recipients, ["alice@example.com"]);
    let password = notification_password(&note.message);
    assert!(password.len() >= 16);
    let zip = write(dir.path(), "dave.zip", &attachment(&dave.message, ".zip"));
    let x = dir.path().join("x");
    run(std::process::Command::new("7z")
        .arg("x")
        .arg(format!("-p{password}"))
        .arg(format!("-o{}", x.display()))
        .arg(&zip));
    let extracted: Vec<u8> = std::fs::read_dir(&x)
        .unwrap()
        .flat_map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(contains(&extracted, MARKER));
    let wrong = run_unchecked(
        std::process::Command::new("7z")
            .arg("t")
            .arg("-pwrong-password")
            .arg(&zip),
    );
    assert!(!wrong.status.success());

    // The audit trail: one record, rules and fingerprints, and no password or key bytes.
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    sealgate::audit::verify_file(&audit_path).unwrap();
    assert_eq!(audit.lines().count(), 1);
    assert!(audit.contains("outbound-protect") && audit.contains("pgp-partners"));
    assert!(audit.contains(&w.carol.fingerprint.to_ascii_lowercase()));
    assert!(!audit.contains(&password), "password in the audit trail");
    assert!(!audit.contains(MARKER), "content in the audit trail");
    for key in [&w.alice.key, &w.bob.key] {
        let pem = std::fs::read_to_string(key).unwrap();
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!audit.contains(line), "key bytes in the audit trail");
        }
    }
}

#[test]
fn encryption_required_without_zip_never_emits_clear_text() {
    if !tools() {
        return;
    }
    let w = world();
    let gw = gateway(&w, POLICY_NO_ZIP, None);
    let to = ["dave@plain.example", "bob@partner.example"];
    let msg = message("alice@example.com", &to);
    let out = gw
        .process(&msg, &envelope("alice@example.com", &to))
        .unwrap();
    // bob has a certificate; dave has nothing and ZIP is not allowed: held, not sent.
    assert_eq!(out.deliveries.len(), 1);
    assert_eq!(out.deliveries[0].recipients, ["bob@partner.example"]);
    assert_eq!(out.refused.len(), 1);
    let r = &out.refused[0];
    assert_eq!(r.recipient, "dave@plain.example");
    assert!(!r.by_policy);
    assert!(r.reason.contains("no allowed method"), "{}", r.reason);
    for d in out.deliveries.iter().chain(&out.notifications) {
        assert!(!contains(&d.message, MARKER), "clear text went out");
        assert!(
            !contains(&d.message, "figures.csv"),
            "attachment name went out"
        );
    }
    assert_eq!(
        out.audit
            .recipients
            .iter()
            .filter(|r| r.actions == ["hold"])
            .count(),
        1
    );
}

#[test]
fn inbound_signed_mail_is_verified_harvested_and_the_reply_encrypted() {
    if !tools() {
        return;
    }
    let w = world();
    let gw = gateway(&w, POLICY, None);
    let dir = tempfile::tempdir().unwrap();
    // erin signs with openssl; a forged result field rides along.
    let content = write(
        dir.path(),
        "erin.txt",
        b"Content-Type: text/plain\r\n\r\nHello from erin\r\n",
    );
    let signed = run(openssl(&["cms", "-sign", "-in"])
        .arg(&content)
        .args(["-signer"])
        .arg(&w.erin.cert)
        .arg("-inkey")
        .arg(&w.erin.key)
        .arg("-certfile")
        .arg(&w.pki.intermediate)
        .args([
            "-from",
            "erin@harvest.example",
            "-to",
            "alice@example.com",
            "-subject",
            "Hello",
        ]));
    let mut inbound =
        b"Sealgate-Signature: valid; smime; signer=ceo@example.com; forged\r\n".to_vec();
    inbound.extend_from_slice(&signed.stdout);
    let out = gw
        .process(
            &inbound,
            &envelope("erin@harvest.example", &["alice@example.com"]),
        )
        .unwrap();
    let d = delivery_for(&out, "alice@example.com");
    let e = Entity::parse(&d.message, &Limits::default()).unwrap();
    let results: Vec<String> = e
        .headers()
        .iter()
        .filter(|h| h.is_named("Sealgate-Signature"))
        .map(|h| h.value())
        .collect();
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(
        results[0].starts_with("valid; smime; signer=erin@harvest.example"),
        "{}",
        results[0]
    );
    assert!(!contains(&d.message, "forged"));
    assert!(
        out.audit
            .recipients
            .iter()
            .any(|r| r.actions == ["harvest"])
    );

    // Now alice's reply to erin is S/MIME encrypted with the harvested certificate.
    let reply = message("alice@example.com", &["erin@harvest.example"]);
    let out = gw
        .process(
            &reply,
            &envelope("alice@example.com", &["erin@harvest.example"]),
        )
        .unwrap();
    let d = delivery_for(&out, "erin@harvest.example");
    assert_eq!(d.treatment, "signed:smime+smime");
    let enc = write(dir.path(), "to-erin.eml", &d.message);
    let dec = run(openssl(&["cms", "-decrypt", "-in"])
        .arg(&enc)
        .arg("-inkey")
        .arg(&w.erin.key)
        .arg("-recip")
        .arg(&w.erin.cert));
    assert!(contains(&dec.stdout, "multipart/signed") || contains(&dec.stdout, "pkcs7-signature"));

    // A message signed by nobody we can verify gets an invalid result, and nothing harvested.
    let mut tampered = signed.stdout.clone();
    let pos = tampered
        .windows(15)
        .position(|w| w == b"Hello from erin")
        .unwrap();
    tampered[pos] = b'J';
    let out = gw
        .process(
            &tampered,
            &envelope("erin@harvest.example", &["alice@example.com"]),
        )
        .unwrap();
    let d = delivery_for(&out, "alice@example.com");
    let v = Entity::parse(&d.message, &Limits::default())
        .unwrap()
        .header("Sealgate-Signature")
        .unwrap();
    assert!(v.starts_with("invalid"), "{v}");
}

#[test]
fn mike_requests_are_answered_with_keys_the_tools_import() {
    if !tools() {
        return;
    }
    let w = world();
    let gw = gateway(&w, POLICY, None);
    let id = sealgate::keystore::certificate_id(
        &sealgate::smime::Certificate::load(
            &std::fs::read(&w.alice.cert).unwrap(),
            &Limits::default(),
        )
        .unwrap(),
    );
    gw.keyring()
        .set_domain_identity("example.com", &id)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    let ask = |subject: &str| -> Outcome {
        let m = format!(
            "From: bob@partner.example\r\nTo: keys@example.com\r\nSubject: {subject}\r\n\
             Message-ID: <mike-{}@partner.example>\r\n\r\nplease\r\n",
            subject.len()
        );
        gw.process_at(
            m.as_bytes(),
            &envelope("bob@partner.example", &["keys@example.com"]),
            SystemTime::now(),
            &mut rand_core::OsRng,
        )
        .unwrap()
    };

    // S/MIME: a signed reply carrying a certs-only attachment openssl reads.
    let out = ask("alice@example.com SMIME");
    assert!(out.deliveries.is_empty());
    assert_eq!(out.notifications.len(), 1);
    let reply = &out.notifications[0];
    assert_eq!(reply.recipients, ["bob@partner.example"]);
    let signed = write(dir.path(), "reply.eml", &reply.message);
    let verified = run(openssl(&["cms", "-verify", "-in"])
        .arg(&signed)
        .arg("-CAfile")
        .arg(&w.pki.ca_bundle));
    let p7c = write(
        dir.path(),
        "smime.p7c",
        &attachment(&verified.stdout, ".p7c"),
    );
    let certs = run(openssl(&["pkcs7", "-inform", "DER", "-print_certs", "-in"]).arg(&p7c));
    assert!(
        contains(&certs.stdout, "alice@example.com"),
        "{}",
        String::from_utf8_lossy(&certs.stdout)
    );

    // OpenPGP: an application/pgp-keys attachment gpg imports.
    let out = ask("  alice@EXAMPLE.com \t pgp ");
    let key = write(
        dir.path(),
        "alice.asc",
        &attachment(&out.notifications[0].message, ".asc"),
    );
    let fresh = Gpg::new();
    let imported = run(fresh.cmd(&["--status-fd", "2", "--import"]).arg(&key));
    let status = String::from_utf8_lossy(&imported.stderr);
    assert!(
        status.contains(&format!("IMPORT_OK 1 {}", w.alice_pgp.fingerprint)),
        "{status}"
    );

    // Not ours, or no request: a polite reply with no key.
    for subject in ["bob@partner.example SMIME", "hello"] {
        let out = ask(subject);
        let m = &out.notifications[0].message;
        assert!(
            !contains(m, "BEGIN PGP PUBLIC KEY") && !contains(m, "pkcs7-mime"),
            "{subject}"
        );
    }
}

/// AES-256-GCM (AuthEnvelopedData) only for recipients whose harvested SMIMECapabilities
/// advertise it; AES-256-CBC for the others, and for a group that mixes both.
#[test]
fn gcm_only_where_the_recipient_advertised_it() {
    if !tools() {
        return;
    }
    let w = world();
    let gw = gateway(&w, POLICY, None);
    let limits = Limits::default();
    // frank signs with our own engine, whose SMIMECapabilities list AES-256-GCM first.
    let frank = w.pki.user("frank", "frank@gcm.example", KeyType::P256);
    let key = sealgate::smime::load_private_key(&std::fs::read(&frank.key).unwrap(), None, &limits)
        .unwrap();
    let cert =
        sealgate::smime::Certificate::load(&std::fs::read(&frank.cert).unwrap(), &limits).unwrap();
    let chain = sealgate::smime::Certificate::load_all(
        &std::fs::read(&w.pki.intermediate).unwrap(),
        &limits,
    )
    .unwrap();
    let id = sealgate::smime::Identity::new(key, cert, chain).unwrap();
    let hello = b"From: frank@gcm.example\r\nTo: alice@example.com\r\nSubject: hi\r\n\r\nHello\r\n";
    // frank's message signed now by our engine (capabilities with GCM first); signing times
    // have one-second resolution, so the steps below are a second apart
    let ours = || {
        sealgate::smime::sign_message(
            hello,
            &id,
            &Default::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap()
    };
    let second = || std::thread::sleep(std::time::Duration::from_millis(1100));
    let from_frank = |signed: &[u8]| {
        let out = gw
            .process(
                signed,
                &envelope("frank@gcm.example", &["alice@example.com"]),
            )
            .unwrap();
        let sig = out.deliveries[0].message.clone();
        assert!(
            contains(&sig, "Sealgate-Signature: valid"),
            "{}",
            String::from_utf8_lossy(&sig)
        );
    };
    let first = ours();
    from_frank(&first);
    let cert_id = sealgate::keystore::certificate_id(&id.cert);
    assert!(
        gw.keyring()
            .store()
            .certificate(&cert_id)
            .unwrap()
            .is_some(),
        "frank's certificate was harvested"
    );

    let kind = |rcpts: &[&str]| -> Vec<String> {
        let out = gw
            .process(
                &message("alice@example.com", rcpts),
                &envelope("alice@example.com", rcpts),
            )
            .unwrap();
        assert!(out.refused.is_empty(), "{:?}", out.refused);
        out.deliveries
            .iter()
            .map(|d| {
                Entity::parse(&d.message, &limits)
                    .unwrap()
                    .content_type()
                    .param("smime-type")
                    .unwrap_or_default()
                    .to_ascii_lowercase()
            })
            .collect()
    };
    assert_eq!(kind(&["frank@gcm.example"]), ["authenveloped-data"]);
    assert_eq!(kind(&["bob@partner.example"]), ["enveloped-data"]);
    assert_eq!(
        kind(&["frank@gcm.example", "bob@partner.example"]),
        ["enveloped-data"]
    );

    // openssl reads the GCM one.
    let out = gw
        .process(
            &message("alice@example.com", &["frank@gcm.example"]),
            &envelope("alice@example.com", &["frank@gcm.example"]),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let enc = write(dir.path(), "frank.eml", &out.deliveries[0].message);
    let dec = run(openssl(&["cms", "-decrypt", "-in"])
        .arg(&enc)
        .arg("-inkey")
        .arg(&frank.key)
        .arg("-recip")
        .arg(&frank.cert));
    assert!(contains(&dec.stdout, "pkcs7-signature") || contains(&dec.stdout, "multipart/signed"));

    // The newest signed message decides. frank now signs with openssl (signing time now,
    // SMIMECapabilities without GCM): CBC from here on.
    second();
    let hello_path = write(dir.path(), "hello.eml", hello);
    let by_openssl = run(openssl(&["cms", "-sign", "-in"])
        .arg(&hello_path)
        .arg("-signer")
        .arg(&frank.cert)
        .arg("-inkey")
        .arg(&frank.key)
        .arg("-certfile")
        .arg(&w.pki.intermediate))
    .stdout;
    let mut full = b"From: frank@gcm.example\r\nTo: alice@example.com\r\n".to_vec();
    full.extend_from_slice(&by_openssl);
    from_frank(&full);
    assert_eq!(kind(&["frank@gcm.example"]), ["enveloped-data"]);
    // an older message of his, read late, does not bring GCM back ...
    from_frank(&first);
    assert_eq!(kind(&["frank@gcm.example"]), ["enveloped-data"]);
    // ... a newer one does
    second();
    from_frank(&ours());
    assert_eq!(kind(&["frank@gcm.example"]), ["authenveloped-data"]);
}

/// Inbound mail encrypted by openssl and by gpg to our keys comes out decrypted, with the
/// result fields; a forged `Sealgate-Decrypted` from outside is dropped.
#[test]
fn inbound_encrypted_mail_is_decrypted() {
    if !tools() {
        return;
    }
    let w = world();
    let gw = gateway(&w, POLICY, None);
    let limits = Limits::default();
    let dir = tempfile::tempdir().unwrap();
    let content = write(
        dir.path(),
        "in.txt",
        format!("Content-Type: text/plain\r\n\r\nInbound {MARKER}\r\n").as_bytes(),
    );
    let enc = run(openssl(&["cms", "-encrypt", "-aes256", "-in"])
        .arg(&content)
        .args([
            "-from",
            "bob@partner.example",
            "-to",
            "alice@example.com",
            "-subject",
            "In",
        ])
        .arg(&w.alice.cert));
    let mut inbound = b"Sealgate-Decrypted: smime; forged\r\n".to_vec();
    inbound.extend_from_slice(&enc.stdout);
    let out = gw
        .process(
            &inbound,
            &envelope("bob@partner.example", &["alice@example.com"]),
        )
        .unwrap();
    let d = delivery_for(&out, "alice@example.com");
    assert!(contains(&d.message, MARKER));
    assert!(!contains(&d.message, "forged"));
    let e = Entity::parse(&d.message, &limits).unwrap();
    assert!(e.header("Sealgate-Decrypted").unwrap().starts_with("smime"));
    assert!(
        out.audit
            .recipients
            .iter()
            .any(|r| r.actions == ["decrypt:smime"])
    );

    // gpg encrypts and signs to alice's OpenPGP key; PGP/MIME built around its output.
    w.gpg.import(&w.alice_pgp.public);
    let plain = write(
        dir.path(),
        "pgp-in.txt",
        format!("Content-Type: text/plain\r\n\r\nPGP inbound {MARKER}\r\n").as_bytes(),
    );
    let armored = run(w
        .gpg
        .cmd(&[
            "--armor",
            "--encrypt",
            "--sign",
            "-u",
            &w.carol.fingerprint,
            "-r",
            &w.alice_pgp.fingerprint,
            "-o",
            "-",
        ])
        .arg(&plain));
    let pgp_mime = format!(
        "From: carol@pgp.example\r\nTo: alice@example.com\r\nSubject: PGP in\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"x\"\r\n\r\n\
         --x\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--x\r\n\
         Content-Type: application/octet-stream\r\n\r\n{}\r\n--x--\r\n",
        String::from_utf8_lossy(&armored.stdout)
    );
    let out = gw
        .process(
            pgp_mime.as_bytes(),
            &envelope("carol@pgp.example", &["alice@example.com"]),
        )
        .unwrap();
    let d = delivery_for(&out, "alice@example.com");
    assert!(
        contains(&d.message, &format!("PGP inbound {MARKER}")),
        "{}",
        String::from_utf8_lossy(&d.message)
    );
    let e = Entity::parse(&d.message, &limits).unwrap();
    assert!(e.header("Sealgate-Decrypted").unwrap().starts_with("pgp"));
    let sig = e.header("Sealgate-Signature").unwrap();
    assert!(
        sig.starts_with("valid; pgp; signer=carol@pgp.example"),
        "{sig}"
    );
}

/// A key directory for the tests: serves the S/MIME certificates it was given, counts the
/// calls, and can be switched to failing (unreachable).
struct TestDirectory {
    certs: Vec<(String, Vec<u8>)>,
    calls: std::sync::atomic::AtomicUsize,
    down: std::sync::atomic::AtomicBool,
}

impl TestDirectory {
    fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl sealgate::keystore::KeyDirectory for TestDirectory {
    fn name(&self) -> String {
        "test://directory".into()
    }
    fn fetch(
        &self,
        address: &str,
        kind: sealgate::keystore::KeyKind,
    ) -> Result<Vec<Vec<u8>>, sealgate::keystore::Error> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(sealgate::keystore::Error::Directory {
                directory: self.name(),
                reason: "connection refused".into(),
            });
        }
        Ok(match kind {
            sealgate::keystore::KeyKind::Smime => self
                .certs
                .iter()
                .filter(|(a, _)| a == address)
                .map(|(_, c)| c.clone())
                .collect(),
            _ => Vec::new(),
        })
    }
}

fn gateway_with_directory(
    w: &World,
    policy: &str,
    dir: Arc<TestDirectory>,
    hold_on_error: bool,
) -> Gateway {
    let mut options = Options::default();
    options.hostname = "gw.example.com".into();
    options.hold_on_directory_error = hold_on_error;
    Gateway::builder()
        .policy(Policy::from_toml(policy, None).unwrap())
        .keyring(keyring(w))
        .options(options)
        .directory(dir)
        .build()
        .unwrap()
}

#[test]
fn directory_keys_are_fetched_once_and_misses_are_not_asked_again() {
    if !require("openssl") {
        return;
    }
    let w = world();
    let frank = w
        .pki
        .user("frank", "frank@directory.example", KeyType::P256);
    let dir = Arc::new(TestDirectory {
        certs: vec![(
            "frank@directory.example".into(),
            std::fs::read(&frank.cert).unwrap(),
        )],
        calls: Default::default(),
        down: Default::default(),
    });
    let gw = gateway_with_directory(&w, POLICY_NO_ZIP, dir.clone(), false);
    let to = ["frank@directory.example"];
    let msg = message("alice@example.com", &to);
    let out = gw
        .process(&msg, &envelope("alice@example.com", &to))
        .unwrap();
    assert_eq!(out.deliveries.len(), 1, "{:?}", out.refused);
    assert_eq!(out.deliveries[0].treatment, "smime");
    assert_eq!(dir.calls(), 1);
    assert_eq!(
        out.audit.recipients[0].lookups,
        ["smime: test://directory: stored 1"]
    );
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "frank.eml", &out.deliveries[0].message);
    let plain = run(openssl(&["cms", "-decrypt", "-in"])
        .arg(&p)
        .arg("-inkey")
        .arg(&frank.key)
        .arg("-recip")
        .arg(&frank.cert))
    .stdout;
    assert!(contains(&plain, MARKER));
    // the certificate is in the store now: the directory is not asked again
    gw.process(&msg, &envelope("alice@example.com", &to))
        .unwrap();
    assert_eq!(dir.calls(), 1);

    // an address the directory has nothing for: asked once (S/MIME; the directory has no
    // OpenPGP keys either), held, and not asked again within the negative-cache time
    let to = ["gina@directory.example"];
    let msg = message("alice@example.com", &to);
    let out = gw
        .process(&msg, &envelope("alice@example.com", &to))
        .unwrap();
    assert!(out.deliveries.is_empty());
    assert!(!out.refused[0].temporary, "{:?}", out.refused);
    let asked = dir.calls();
    assert_eq!(asked, 3, "one S/MIME and one OpenPGP lookup");
    let out = gw
        .process(&msg, &envelope("alice@example.com", &to))
        .unwrap();
    assert!(out.deliveries.is_empty());
    assert_eq!(dir.calls(), asked, "a recent miss is not asked again");
}

#[test]
fn a_failing_directory_falls_back_or_holds_as_configured() {
    if !tools() {
        return;
    }
    let w = world();
    let dir = Arc::new(TestDirectory {
        certs: Vec::new(),
        calls: Default::default(),
        down: std::sync::atomic::AtomicBool::new(true),
    });
    let to = ["hank@down.example"];
    let msg = message("alice@example.com", &to);
    let env = envelope("alice@example.com", &to);

    // default: best effort goes on to the ZIP, and the audit record says why
    let gw = gateway_with_directory(&w, POLICY, dir.clone(), false);
    let out = gw.process(&msg, &env).unwrap();
    assert_eq!(out.deliveries.len(), 1, "{:?}", out.refused);
    assert!(
        out.deliveries[0].treatment.ends_with("zip"),
        "{}",
        out.deliveries[0].treatment
    );
    let rec = &out.audit.recipients[0];
    assert!(
        rec.lookups
            .iter()
            .any(|l| l.contains("test://directory: error") && l.contains("connection refused")),
        "{:?}",
        rec.lookups
    );
    // errors are not cached as misses: the next message asks again
    let before = dir.calls();
    gw.process(&msg, &env).unwrap();
    assert!(dir.calls() > before);

    // hold_on_directory_error: the recipient is held for a retry instead
    let gw = gateway_with_directory(&w, POLICY, dir.clone(), true);
    let out = gw.process(&msg, &env).unwrap();
    assert!(out.deliveries.is_empty());
    let r = &out.refused[0];
    assert!(!r.by_policy && r.temporary, "{r:?}");
    assert!(r.reason.contains("key directory"), "{}", r.reason);
    // no clear text in anything produced
    for d in out.deliveries.iter().chain(&out.notifications) {
        assert!(!contains(&d.message, MARKER));
    }

    // no ZIP allowed and the directory down: held, temporary
    let gw = gateway_with_directory(&w, POLICY_NO_ZIP, dir, false);
    let out = gw.process(&msg, &env).unwrap();
    assert!(out.deliveries.is_empty());
    assert!(out.refused[0].temporary, "{:?}", out.refused);
}
