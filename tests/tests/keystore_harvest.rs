//! Key store harvesting from real mail: a message signed by `openssl cms -sign` (detached and
//! opaque) teaches the store the signer's certificate and chain; the same message with a
//! broken signature, or signed by a CA the store does not trust, teaches it nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::SystemTime;

use sealgate::Limits;
use sealgate::keystore::{ImportOptions, Keyring, SqliteStore, StoreSecret, Trust, certificate_id};
use sealgate::smime::Certificate;
use sealgate_tests::{KeyType, Pki, openssl, require, run};

fn signed(pki: &Pki, user: &sealgate_tests::User, opaque: bool) -> Vec<u8> {
    let body = pki.write(
        "body.txt",
        b"Content-Type: text/plain\r\n\r\nThe figures for Q3 are attached.\r\n",
    );
    let mut cmd = openssl(&[
        "cms",
        "-sign",
        "-from",
        &user.email,
        "-to",
        "gw@example.net",
    ]);
    cmd.args(["-subject", "figures", "-signer"])
        .arg(&user.cert)
        .arg("-inkey")
        .arg(&user.key)
        .arg("-certfile")
        .arg(&pki.intermediate)
        .arg("-in")
        .arg(&body);
    if opaque {
        cmd.arg("-nodetach");
    }
    run(&mut cmd).stdout
}

fn store(pki: &Pki, name: &str) -> Keyring {
    let s = SqliteStore::open(pki.path().join(name)).unwrap();
    let k = Keyring::open(
        Arc::new(s),
        Some(&StoreSecret::Passphrase("pw".into())),
        Limits::default(),
    )
    .unwrap();
    let trust = ImportOptions {
        trust_anchors: true,
        ..Default::default()
    };
    k.import_paths(&[pki.root.clone()], &trust).unwrap();
    k
}

#[test]
fn harvests_the_signer_of_a_verified_openssl_signature() {
    if !require("openssl") {
        return;
    }
    let pki = Pki::new();
    let alice = pki.user("alice", "alice@example.com", KeyType::Rsa2048);
    let cert = Certificate::load(&std::fs::read(&alice.cert).unwrap(), &Limits::default()).unwrap();
    let int = Certificate::load(
        &std::fs::read(&pki.intermediate).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    for (i, opaque) in [false, true].into_iter().enumerate() {
        let k = store(&pki, &format!("h{i}.db"));
        let msg = signed(&pki, &alice, opaque);
        let r = k.harvest_message(&msg, SystemTime::now()).unwrap();
        assert!(r.skipped.is_empty(), "{:?}", r.skipped);
        assert_eq!(
            r.certificates,
            vec![certificate_id(&cert), certificate_id(&int)]
        );
        let rec = k
            .store()
            .certificate(&certificate_id(&cert))
            .unwrap()
            .unwrap();
        assert_eq!(rec.trust, Trust::Unverified);
        assert!(
            k.store()
                .certificate(&certificate_id(&int))
                .unwrap()
                .unwrap()
                .is_ca
        );
        // The harvested certificate is now what a lookup finds for the sender.
        let l = k
            .lookup_smime("alice@example.com", SystemTime::now())
            .unwrap();
        assert_eq!(l.selected.unwrap().0, cert);
        // Idempotent: the same message again adds nothing (one provenance, same entries).
        let before = k.store().certificates().unwrap();
        k.harvest_message(&msg, SystemTime::now()).unwrap();
        assert_eq!(k.store().certificates().unwrap(), before);
        assert_eq!(k.store().provenance(&rec.id).unwrap().len(), 1);
        assert!(
            k.store().provenance(&rec.id).unwrap()[0]
                .source
                .starts_with("harvest:")
        );
    }
}

#[test]
fn a_broken_or_untrusted_signature_stores_nothing() {
    if !require("openssl") {
        return;
    }
    let pki = Pki::new();
    let alice = pki.user("alice", "alice@example.com", KeyType::P256);
    let k = store(&pki, "b.db");
    let before = k.store().certificates().unwrap();
    let mut msg = signed(&pki, &alice, false);
    // inside the signed entity (the Subject field is outside what is signed)
    let at = msg.windows(2).position(|w| w == b"Q3").unwrap();
    msg[at + 1] = b'4';
    let r = k.harvest_message(&msg, SystemTime::now()).unwrap();
    assert!(r.certificates.is_empty());
    assert!(r.skipped[0].contains("does not verify"), "{:?}", r.skipped);
    assert_eq!(k.store().certificates().unwrap(), before);

    // Validly signed, but under a PKI the store does not trust.
    let other = Pki::new();
    let mallory = other.user("mallory", "alice@example.com", KeyType::P256);
    let r = k
        .harvest_message(&signed(&other, &mallory, false), SystemTime::now())
        .unwrap();
    assert!(r.certificates.is_empty(), "{r:?}");
    assert_eq!(k.store().certificates().unwrap(), before);
    assert!(
        k.lookup_smime("alice@example.com", SystemTime::now())
            .unwrap()
            .candidates
            .is_empty()
    );
}
