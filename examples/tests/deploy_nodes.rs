//! Two `sealgate filter` nodes on one PostgreSQL key store (issue 10, acceptance 2, first
//! half): a certificate harvested from inbound signed mail by one node is used by the other to
//! encrypt the reply.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod filter_support;

use std::sync::Arc;

use filter_support::*;
use sealgate::Limits;
use sealgate::keystore::{ImportOptions, Keyring, PgStore, StoreSecret};
use sealgate_tests::{KeyType, P12_PASSWORD, Pki, contains, openssl, require, run};

const PG_CONFIG: &str = r#"
hostname = "gw.example.com"
policy = "policy.toml"

[store]
postgres_env = "SG_FILTER_TEST_PG"
connections = 2
key_env = "SG_FILTER_TEST_KEY"
"#;

#[test]
fn a_certificate_harvested_by_one_node_encrypts_on_the_other() {
    if !require("openssl") {
        return;
    }
    let Some(pg) = PgServer::start() else {
        return;
    };
    let params = pg.create_database("sealgate_nodes");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("policy.toml"), POLICY).unwrap();
    std::fs::write(dir.join("gateway.toml"), PG_CONFIG).unwrap();
    let pki = Pki::new();
    let alice = pki.user("alice", "alice@example.com", KeyType::Rsa2048);
    let carol = pki.user("carol", "carol@partner.example", KeyType::Rsa2048);
    {
        let kr = Keyring::open(
            Arc::new(PgStore::connect(&params, 1).unwrap()),
            Some(&StoreSecret::raw_key_from_hex(KEY).unwrap()),
            Limits::default(),
        )
        .unwrap();
        let anchors = ImportOptions {
            trust_anchors: true,
            ..Default::default()
        };
        kr.import_paths(std::slice::from_ref(&pki.root), &anchors)
            .unwrap();
        kr.import_paths(
            std::slice::from_ref(&pki.intermediate),
            &ImportOptions::default(),
        )
        .unwrap();
        kr.import_paths(
            std::slice::from_ref(&alice.p12),
            &ImportOptions {
                password: Some(P12_PASSWORD.to_string().into()),
                ..Default::default()
            },
        )
        .unwrap();
    }
    let env = [("SG_FILTER_TEST_PG", params.as_str())];
    let (sink_a, sink_b) = (Sink::start(), Sink::start());
    let node_a = Filter::start_with(dir, free_addr(), sink_a.addr, &env);
    let node_b = Filter::start_with(dir, free_addr(), sink_b.addr, &env);

    // Before: node b has no certificate for carol, so the outbound message is held (451).
    let reply = message("carol@partner.example", "Reply", "figures.csv");
    let mut b = Client::connect(node_b.listen);
    let (code, text) = b.send("alice@example.com", &["carol@partner.example"], &reply);
    assert_eq!(code, 451, "{text}");
    assert!(sink_b.received().is_empty());

    // Carol writes to alice, signed: node a verifies it and harvests her certificate.
    let content = pki.write(
        "carol.txt",
        b"Content-Type: text/plain\r\n\r\nHello from carol\r\n",
    );
    let signed = run(openssl(&["cms", "-sign", "-in"])
        .arg(&content)
        .arg("-signer")
        .arg(&carol.cert)
        .arg("-inkey")
        .arg(&carol.key)
        .arg("-certfile")
        .arg(&pki.intermediate)
        .args([
            "-from",
            "carol@partner.example",
            "-to",
            "alice@example.com",
            "-subject",
            "Hello",
        ]));
    let mut a = Client::connect(node_a.listen);
    let (code, text) = a.send(
        "carol@partner.example",
        &["alice@example.com"],
        &signed.stdout,
    );
    assert_eq!(code, 250, "{text}");
    assert_eq!(sink_a.received().len(), 1);

    // After: node b encrypts alice's reply to carol with the certificate node a stored.
    let (code, text) = b.send("alice@example.com", &["carol@partner.example"], &reply);
    assert_eq!(code, 250, "{text}");
    let got = sink_b.received();
    assert_eq!(got.len(), 1);
    assert!(!contains(&got[0].data, MARKER), "clear text went out");
    let out = pki.write("to-carol.eml", &got[0].data);
    let dec = run(openssl(&["cms", "-decrypt", "-in"])
        .arg(&out)
        .arg("-recip")
        .arg(&carol.cert)
        .arg("-inkey")
        .arg(&carol.key));
    let verified = run(openssl(&["cms", "-verify", "-CAfile"])
        .arg(&pki.ca_bundle)
        .arg("-in")
        .arg(pki.write("dec.eml", &dec.stdout)));
    assert!(contains(&verified.stdout, MARKER));
}
