//! Autocrypt at the gateway, end to end with gpg: an inbound `Autocrypt:` header teaches a
//! key (trust "autocrypt"), the reply is OpenPGP encrypted to it only when the configuration
//! allows it, an administrator's key wins, gossip is learnt only from inside the encryption,
//! the header the gateway emits parses back and its keydata is imported by `gpg --import`,
//! and so is the gossip it writes inside OpenPGP mail to several recipients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine as _;
use sealgate::autocrypt::AutocryptOptions;
use sealgate::keystore::autocrypt::{self, PreferEncrypt};
use sealgate::keystore::{ImportOptions, KeyStore, Keyring, MemoryStore, StoreSecret, Trust};
use sealgate::mime::Entity;
use sealgate::policy::Policy;
use sealgate::{Envelope, Gateway, Limits, Options};
use sealgate_tests::{Gpg, GpgAlgo, GpgKey, contains, require, run};

const MARKER: &str = "AUTOCRYPT-E2E-MARKER-0815";

const POLICY: &str = r#"
internal_domains = ["example.com"]

[[rule]]
name = "pgp-only"
when = { direction = "outbound" }
action = { encrypt = ["pgp"] }
"#;

fn keyring(store: &Arc<dyn KeyStore>) -> Keyring {
    let secret = StoreSecret::raw_key_from_hex(&"42".repeat(32)).unwrap();
    Keyring::open(store.clone(), Some(&secret), Limits::default()).unwrap()
}

/// A memory store with the key files at `paths` imported.
fn store_with(paths: &[std::path::PathBuf]) -> Arc<dyn KeyStore> {
    let store: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    keyring(&store)
        .import_paths(paths, &ImportOptions::default())
        .unwrap();
    store
}

fn gateway(store: &Arc<dyn KeyStore>, autocrypt: AutocryptOptions) -> Gateway {
    let mut options = Options::default();
    options.hostname = "gw.example.com".into();
    options.autocrypt = autocrypt;
    Gateway::builder()
        .policy(Policy::from_toml(POLICY, None).unwrap())
        .keyring(keyring(store))
        .options(options)
        .build()
        .unwrap()
}

fn envelope(from: &str, to: &[&str]) -> Envelope {
    Envelope {
        mail_from: Some(from.into()),
        rcpt_to: to.iter().map(|s| s.to_string()).collect(),
    }
}

fn keydata(gpg: &Gpg, key: &GpgKey) -> String {
    let out = run(&mut gpg.cmd(&["--export", &key.fingerprint]));
    base64::engine::general_purpose::STANDARD.encode(out.stdout)
}

/// `inner` encrypted by gpg to `to`, armored, in a PGP/MIME frame after the header fields
/// `header` (each ending with CRLF; `MIME-Version` is added).
fn gpg_pgp_mime(gpg: &Gpg, to: &GpgKey, header: &str, inner: &[u8]) -> Vec<u8> {
    let inner_file = gpg.write("inner.txt", inner);
    let armored = run(gpg
        .cmd(&["--armor", "--encrypt", "-r", &to.fingerprint, "-o", "-"])
        .arg(&inner_file));
    let mut m = format!("{header}MIME-Version: 1.0\r\n").into_bytes();
    m.extend(sealgate::mime::build_pgp_encrypted(
        &armored.stdout,
        &mut rand_core::OsRng,
    ));
    m
}

fn mail(from: &str, to: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: Hi\r\n\
         Date: Wed, 02 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{from}-1@x>\r\n{extra}\
         MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

#[test]
fn autocrypt_harvest_use_and_emit() {
    if !require("gpg") {
        return;
    }
    let gpg = Gpg::new();
    let erin = gpg.gen_key("Erin", "erin@partner.example", GpgAlgo::Ed25519);
    let alice = gpg.gen_key("Alice", "alice@example.com", GpgAlgo::Ed25519);
    let store = store_with(std::slice::from_ref(&alice.secret));
    let mut allowed = AutocryptOptions::default();
    allowed.use_for_encryption = true;
    allowed.emit_for = vec!["*@example.com".into()];
    allowed.prefer_encrypt = PreferEncrypt::Mutual;
    let gw = gateway(&store, allowed);
    let refusing = gateway(&store, AutocryptOptions::default());

    // Inbound with erin's Autocrypt header: stored with trust "autocrypt".
    let header = format!(
        "Autocrypt: addr=erin@partner.example; prefer-encrypt=mutual; keydata={}\r\n",
        keydata(&gpg, &erin)
    );
    let inbound = mail(
        "erin@partner.example",
        "alice@example.com",
        &header,
        "hello",
    );
    gw.process(
        &inbound,
        &envelope("erin@partner.example", &["alice@example.com"]),
    )
    .unwrap();
    let rec = store
        .pgp(&erin.fingerprint)
        .unwrap()
        .expect("erin's key stored");
    assert_eq!(rec.trust, Trust::Autocrypt);

    // The reply: without the switch no OpenPGP encryption to an Autocrypt-only key ...
    let reply = mail("alice@example.com", "erin@partner.example", "", MARKER);
    let out = refusing
        .process(
            &reply,
            &envelope("alice@example.com", &["erin@partner.example"]),
        )
        .unwrap();
    assert!(
        out.deliveries.iter().all(|d| !d.treatment.contains("pgp")),
        "{out:?}"
    );
    assert!(
        out.deliveries.iter().all(|d| !contains(&d.message, MARKER)),
        "clear text went out"
    );
    // ... with it, PGP encrypted to erin's key, which gpg decrypts; the Autocrypt header
    // announces alice's key.
    let out = gw
        .process(
            &reply,
            &envelope("alice@example.com", &["erin@partner.example"]),
        )
        .unwrap();
    let d = out
        .deliveries
        .iter()
        .find(|d| d.recipients.iter().any(|r| r == "erin@partner.example"))
        .unwrap_or_else(|| panic!("no delivery: {out:?}"));
    assert!(d.treatment.contains("pgp"), "{}", d.treatment);
    assert!(!contains(&d.message, MARKER));
    let enc = gpg.write("to-erin.eml", &d.message);
    let dec = run(gpg.cmd(&["--decrypt"]).arg(&enc));
    assert!(contains(&dec.stdout, MARKER));

    let e = Entity::parse(&d.message, &Limits::default()).unwrap();
    let value = e.header("Autocrypt").expect("Autocrypt header emitted");
    let h = autocrypt::parse(&value, &Limits::default()).unwrap();
    assert_eq!(h.addr, "alice@example.com");
    assert_eq!(h.prefer_encrypt, PreferEncrypt::Mutual);
    let fresh = Gpg::new();
    let kd = fresh.write("alice.autocrypt.pgp", &h.keydata);
    run(fresh.cmd(&["--import"]).arg(&kd));
    let listed = run(&mut fresh.cmd(&["--with-colons", "--list-keys", "alice@example.com"]));
    assert!(contains(&listed.stdout, &alice.fingerprint));
    let secret = run(&mut fresh.cmd(&["--with-colons", "--list-secret-keys"]));
    assert!(
        !contains(&secret.stdout, &alice.fingerprint),
        "secret key exported"
    );

    // An administrator's key for erin wins over the Autocrypt one and is not downgraded.
    let erin2 = gpg.gen_key("Erin", "erin@partner.example", GpgAlgo::Ed25519);
    let kr = keyring(&store);
    kr.import_paths(
        std::slice::from_ref(&erin2.public),
        &ImportOptions::default(),
    )
    .unwrap();
    let header2 = format!(
        "Autocrypt: addr=erin@partner.example; keydata={}\r\n",
        keydata(&gpg, &erin2)
    );
    gw.process(
        &mail(
            "erin@partner.example",
            "alice@example.com",
            &header2,
            "again",
        ),
        &envelope("erin@partner.example", &["alice@example.com"]),
    )
    .unwrap();
    assert_eq!(
        store.pgp(&erin2.fingerprint).unwrap().unwrap().trust,
        Trust::Imported
    );
    let l = kr
        .lookup_pgp("erin@partner.example", std::time::SystemTime::now())
        .unwrap();
    assert_eq!(l.selected.unwrap().fingerprint(), erin2.fingerprint);

    // Gossip in cleartext mail is not learnt; inside PGP/MIME encrypted to alice it is.
    let dave = gpg.gen_key("Dave", "dave@partner.example", GpgAlgo::Ed25519);
    let gossip = format!(
        "Autocrypt-Gossip: addr=dave@partner.example; keydata={}\r\n",
        keydata(&gpg, &dave)
    );
    let to = "alice@example.com>, <dave@partner.example";
    gw.process(
        &mail("erin@partner.example", to, &gossip, "clear"),
        &envelope("erin@partner.example", &["alice@example.com"]),
    )
    .unwrap();
    assert!(
        store.pgp(&dave.fingerprint).unwrap().is_none(),
        "cleartext gossip learnt"
    );
    let inner = format!("{gossip}Content-Type: text/plain\r\n\r\nsecret hello\r\n");
    // gpg's armor in the PGP/MIME frame, with the header of erin's message.
    let encrypted = gpg_pgp_mime(
        &gpg,
        &alice,
        "From: <erin@partner.example>\r\nTo: <alice@example.com>, <dave@partner.example>\r\n\
         Subject: ...\r\nMessage-ID: <gossip-1@x>\r\n",
        inner.as_bytes(),
    );
    let out = gw
        .process(
            &encrypted,
            &envelope("erin@partner.example", &["alice@example.com"]),
        )
        .unwrap();
    let d = &out.deliveries[0];
    assert!(
        contains(&d.message, "secret hello"),
        "not decrypted: {out:?}"
    );
    let rec = store
        .pgp(&dave.fingerprint)
        .unwrap()
        .expect("gossip from the decrypted part learnt");
    assert_eq!(rec.trust, Trust::Autocrypt);
}

/// An `Autocrypt-Gossip:` field in the clear outer header of an encrypted message is not
/// learnt (anyone on the path can write one there; Level 1 §2.3 puts gossip inside the
/// encryption), and it does not reach the decrypted message either.
#[test]
fn gossip_in_the_clear_header_of_encrypted_mail_is_not_learnt() {
    if !require("gpg") {
        return;
    }
    let gpg = Gpg::new();
    let alice = gpg.gen_key("Alice", "alice@example.com", GpgAlgo::Ed25519);
    let frank = gpg.gen_key("Frank", "frank@partner.example", GpgAlgo::Ed25519);
    let store = store_with(std::slice::from_ref(&alice.secret));
    let gw = gateway(&store, AutocryptOptions::default());
    let header = format!(
        "From: <erin@partner.example>\r\nTo: <alice@example.com>, <frank@partner.example>\r\n\
         Subject: ...\r\nMessage-ID: <gossip-2@x>\r\n\
         Autocrypt-Gossip: addr=frank@partner.example; keydata={}\r\n",
        keydata(&gpg, &frank)
    );
    let encrypted = gpg_pgp_mime(
        &gpg,
        &alice,
        &header,
        b"Content-Type: text/plain\r\n\r\nsecret hello\r\n",
    );
    let out = gw
        .process(
            &encrypted,
            &envelope("erin@partner.example", &["alice@example.com"]),
        )
        .unwrap();
    let d = &out.deliveries[0];
    assert!(
        contains(&d.message, "secret hello"),
        "not decrypted: {out:?}"
    );
    assert!(
        store.pgp(&frank.fingerprint).unwrap().is_none(),
        "gossip from the clear outer header learnt"
    );
    assert!(
        !contains(&d.message, "Autocrypt-Gossip"),
        "clear gossip passed into the decrypted message"
    );
}

/// With `gossip` on, OpenPGP mail to several To/Cc recipients carries inside the encryption
/// an `Autocrypt-Gossip:` header for each with the key it was encrypted to (never for a Bcc
/// recipient, none in the clear header): gpg decrypts it and imports every gossiped key, and
/// a receiving gateway's harvester learns the other recipient's key from it. Off by default,
/// and not for a single To/Cc recipient.
#[test]
fn gossip_is_emitted_inside_the_encryption_for_to_and_cc() {
    if !require("gpg") {
        return;
    }
    let limits = Limits::default();
    let gpg = Gpg::new();
    let bob = gpg.gen_key("Bob", "bob@partner.example", GpgAlgo::Ed25519);
    let carol = gpg.gen_key("Carol", "carol@partner.example", GpgAlgo::Ed25519);
    let dave = gpg.gen_key("Dave", "dave@partner.example", GpgAlgo::Ed25519);
    let store = store_with(&[
        bob.public.clone(),
        carol.public.clone(),
        dave.public.clone(),
    ]);
    let mut gossiping = AutocryptOptions::default();
    gossiping.gossip = true;
    let gw = gateway(&store, gossiping);
    let quiet = gateway(&store, AutocryptOptions::default());
    let to_all = format!(
        "From: <alice@example.com>\r\nTo: <bob@partner.example>\r\n\
         Cc: Carol <carol@partner.example>\r\nSubject: Hi\r\nMessage-ID: <g-3@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n{MARKER}\r\n"
    );
    let rcpts = [
        "bob@partner.example",
        "carol@partner.example",
        "dave@partner.example",
    ];
    // What gpg decrypts of the copy for bob (every key is in gpg's home): the inner entity.
    let decrypted = |gw: &Gateway, raw: &str, rcpts: &[&str], name: &str| {
        let out = gw
            .process(raw.as_bytes(), &envelope("alice@example.com", rcpts))
            .unwrap();
        let d = out
            .deliveries
            .iter()
            .find(|d| d.recipients.iter().any(|r| r == "bob@partner.example"))
            .unwrap_or_else(|| panic!("no delivery to bob: {out:?}"));
        assert!(d.treatment.contains("pgp"), "{}", d.treatment);
        assert!(!contains(&d.message, MARKER), "clear text went out");
        assert!(
            !contains(&d.message, "Autocrypt-Gossip"),
            "gossip in the clear"
        );
        let enc = gpg.write(name, &d.message);
        let dec = run(gpg.cmd(&["--decrypt"]).arg(&enc));
        assert!(contains(&dec.stdout, MARKER));
        dec.stdout
    };
    let gossip_of = |inner: &[u8]| -> Vec<autocrypt::AutocryptHeader> {
        Entity::parse(inner, &limits)
            .unwrap()
            .headers()
            .iter()
            .filter(|h| h.is_named("Autocrypt-Gossip"))
            .map(|h| autocrypt::parse(&h.value(), &limits).unwrap())
            .collect()
    };

    let inner = decrypted(&gw, &to_all, &rcpts, "to-all.eml");
    let gossip = gossip_of(&inner);
    let addrs: Vec<&str> = gossip.iter().map(|g| g.addr.as_str()).collect();
    assert_eq!(addrs, ["bob@partner.example", "carol@partner.example"]);
    for (g, key) in gossip.iter().zip([&bob, &carol]) {
        assert_eq!(g.prefer_encrypt, PreferEncrypt::NoPreference);
        let fresh = Gpg::new();
        let kd = fresh.write("gossip.pgp", &g.keydata);
        run(fresh.cmd(&["--import"]).arg(&kd));
        let listed = run(&mut fresh.cmd(&["--with-colons", "--list-keys", &g.addr]));
        assert!(contains(&listed.stdout, &key.fingerprint), "{}", g.addr);
    }
    // bob's gateway learns carol's key from it (as gossip, trust "autocrypt").
    let theirs: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let h = keyring(&theirs)
        .harvest_gossip(
            &inner,
            &["bob@partner.example".into(), "carol@partner.example".into()],
            "<g-3@example.com>",
        )
        .unwrap();
    assert_eq!(h.pgp_certificates.len(), 2, "{:?}", h.skipped);
    assert_eq!(
        theirs.pgp(&carol.fingerprint).unwrap().unwrap().trust,
        Trust::Autocrypt
    );

    // Off by default; and one To/Cc recipient (dave in Bcc) gets no gossip.
    assert!(gossip_of(&decrypted(&quiet, &to_all, &rcpts, "quiet.eml")).is_empty());
    let to_bob = to_all.replace("Cc: Carol <carol@partner.example>\r\n", "");
    let inner = decrypted(
        &gw,
        &to_bob,
        &["bob@partner.example", "dave@partner.example"],
        "to-bob.eml",
    );
    assert!(gossip_of(&inner).is_empty());
}
