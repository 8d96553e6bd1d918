//! Tests of [`Keyring`] on every backend (memory, SQLite, PostgreSQL with the `postgres`
//! feature), with a PKI issued in-process. The cases take a factory of fresh stores, so that
//! each backend runs the same suite.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sealgate_smime::{CertificateParams, Curve, KeyKind as SKind, PrivateKey, issue, pem};

use super::*;
use crate::{MemoryStore, SqliteStore};

struct Pki {
    ca: Certificate,
    ca_key: PrivateKey,
}

fn pki() -> Pki {
    let ca_key = PrivateKey::generate(SKind::Ec(Curve::P256)).unwrap();
    let ca = issue::self_signed(
        &ca_key,
        &CertificateParams::ca("Test CA"),
        &mut rand_core::OsRng,
    )
    .unwrap();
    Pki { ca, ca_key }
}

impl Pki {
    fn user(
        &self,
        email: &str,
        f: impl FnOnce(&mut CertificateParams),
    ) -> (Certificate, PrivateKey) {
        let key = PrivateKey::generate(SKind::Ec(Curve::P256)).unwrap();
        let mut p = CertificateParams::user(email, email);
        f(&mut p);
        let c = issue::issue(
            key.public_key(),
            &p,
            &self.ca,
            &self.ca_key,
            &mut rand_core::OsRng,
        )
        .unwrap();
        (c, key)
    }
}

fn pass() -> StoreSecret {
    StoreSecret::Passphrase("correct horse".into())
}

/// One empty store of some backend; `open` gives a handle on its data (a new connection
/// where the backend has them, the same store for memory).
trait Backend {
    fn open(&self) -> Arc<dyn KeyStore>;
}

/// Makes a fresh [`Backend`]: what every case of the suite takes.
type Fresh<'a> = &'a dyn Fn() -> Box<dyn Backend>;

struct InMemory(Arc<MemoryStore>);

impl Backend for InMemory {
    fn open(&self) -> Arc<dyn KeyStore> {
        self.0.clone()
    }
}

struct SqliteFile(tempfile::TempDir);

impl Backend for SqliteFile {
    fn open(&self) -> Arc<dyn KeyStore> {
        Arc::new(SqliteStore::open(self.0.path().join("store.db")).unwrap())
    }
}

fn memory_backend() -> Box<dyn Backend> {
    Box::new(InMemory(Arc::new(MemoryStore::new())))
}

fn sqlite_backend() -> Box<dyn Backend> {
    Box::new(SqliteFile(tempfile::tempdir().unwrap()))
}

/// A keyring with the test passphrase on a fresh store of the backend.
fn fresh_keyring(fresh: Fresh<'_>) -> (Box<dyn Backend>, Keyring) {
    let b = fresh();
    let k = Keyring::open(b.open(), Some(&pass()), Limits::default()).unwrap();
    (b, k)
}

fn anchors(k: &Keyring, p: &Pki) {
    let opts = ImportOptions {
        trust_anchors: true,
        ..Default::default()
    };
    k.import(&[("ca.pem", p.ca.der())], &opts).unwrap();
}

fn pem_of(c: &Certificate, key: Option<&PrivateKey>) -> Vec<u8> {
    let mut s = pem::encode("CERTIFICATE", c.der());
    if let Some(k) = key {
        s.push_str(&pem::encode("PRIVATE KEY", &k.to_pkcs8_der().unwrap()));
    }
    s.into_bytes()
}

fn lookup_picks_the_valid_certificate_and_explains_the_others(fresh: Fresh<'_>) {
    let (_b, k) = fresh_keyring(fresh);
    {
        let p = pki();
        anchors(&k, &p);
        let now = SystemTime::now();
        let (good, _) = p.user("alice@example.com", |_| {});
        let (expired, _) = p.user("alice@example.com", |c| {
            c.not_before = now - Duration::from_secs(400 * 86400);
            c.not_after = now - Duration::from_secs(30 * 86400);
        });
        let (newer_future, _) = p.user("alice@example.com", |c| {
            c.not_before = now + Duration::from_secs(86400);
        });
        let (case, _) = p.user("Alice@example.com", |_| {});
        let other = pki();
        let (untrusted, _) = other.user("alice@example.com", |_| {});
        let files: Vec<(String, Vec<u8>)> = [&good, &expired, &newer_future, &case, &untrusted]
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("c{i}.pem"), pem_of(c, None)))
            .collect();
        let named: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let r = k.import(&named, &ImportOptions::default()).unwrap();
        assert_eq!(r.outcome.added, 5);

        let l = k.lookup_smime("alice@EXAMPLE.com", now).unwrap();
        let (sel, chain) = l.selected.clone().unwrap();
        assert_eq!(sel, good);
        assert_eq!(chain.last(), Some(&p.ca));
        assert_eq!(l.candidates.len(), 5);
        let verdict = |c: &Certificate| {
            l.candidates
                .iter()
                .find(|x| x.id == certificate_id(c))
                .unwrap()
                .verdict
                .clone()
        };
        assert_eq!(verdict(&good), Ok(()));
        assert_eq!(verdict(&expired).unwrap_err().code(), "expired");
        assert_eq!(verdict(&newer_future).unwrap_err().code(), "not-yet-valid");
        assert_eq!(verdict(&case).unwrap_err().code(), "wrong-address");
        assert_eq!(verdict(&untrusted).unwrap_err().code(), "untrusted");
        assert!(
            k.lookup_smime("bob@example.com", now)
                .unwrap()
                .selected
                .is_none()
        );
    }
}

fn newest_usable_certificate_wins(fresh: Fresh<'_>) {
    let (_b, k) = fresh_keyring(fresh);
    let p = pki();
    anchors(&k, &p);
    let now = SystemTime::now();
    let (old, _) = p.user("a@example.com", |c| {
        c.not_before = now - Duration::from_secs(86400 * 10)
    });
    let (new, _) = p.user("a@example.com", |c| {
        c.not_before = now - Duration::from_secs(86400)
    });
    k.import(
        &[("o", &pem_of(&old, None)), ("n", &pem_of(&new, None))],
        &ImportOptions::default(),
    )
    .unwrap();
    let l = k.lookup_smime("a@example.com", now).unwrap();
    assert_eq!(l.selected.unwrap().0, new);
    assert_eq!(l.candidates.iter().filter(|c| c.verdict.is_ok()).count(), 2);
}

fn private_keys_are_sealed_and_come_back(fresh: Fresh<'_>) {
    let b = fresh();
    let p = pki();
    let (cert, key) = p.user("signer@example.com", |_| {});
    {
        let k = Keyring::open(b.open(), Some(&pass()), Limits::default()).unwrap();
        anchors(&k, &p);
        let r = k
            .import(
                &[("id.pem", &pem_of(&cert, Some(&key)))],
                &ImportOptions::default(),
            )
            .unwrap();
        assert_eq!(r.private_keys, 1);
        let back = k.private_key(&certificate_id(&cert)).unwrap().unwrap();
        assert!(back.matches(&cert));
        let id = k
            .signing_identity("signer@example.com", SystemTime::now())
            .unwrap()
            .unwrap();
        assert_eq!(id.cert, cert);
        assert_eq!(id.chain, vec![p.ca.clone()]);
    }
    // What the backend holds is sealed: the key's secret scalar is not in it.
    let store = b.open();
    let sealed = store.sealed_key(&certificate_id(&cert)).unwrap().unwrap();
    let secret_part = ec_scalar(&key);
    assert!(
        !sealed
            .sealed
            .windows(secret_part.len())
            .any(|w| w == secret_part)
    );
    // Reopened: the wrong passphrase is refused at open; no passphrase: public data only.
    let wrong = StoreSecret::Passphrase("wrong".into());
    assert!(matches!(
        Keyring::open(store.clone(), Some(&wrong), Limits::default()),
        Err(Error::Locked)
    ));
    let public = Keyring::open(store, None, Limits::default()).unwrap();
    assert!(matches!(
        public.private_key(&certificate_id(&cert)),
        Err(Error::Locked)
    ));
    assert!(
        public
            .lookup_smime("signer@example.com", SystemTime::now())
            .unwrap()
            .selected
            .is_some()
    );
    let again = Keyring::open(b.open(), Some(&pass()), Limits::default()).unwrap();
    assert!(
        again
            .private_key(&certificate_id(&cert))
            .unwrap()
            .unwrap()
            .matches(&cert)
    );
}

/// An ML-DSA identity (RFC 9881 key and certificate) is stored sealed and comes back as our
/// signing identity, but its certificate is never picked as an encryption recipient.
fn ml_dsa_identity_signs_but_is_never_a_recipient(fresh: Fresh<'_>) {
    let (_b, k) = fresh_keyring(fresh);
    let p = pki();
    anchors(&k, &p);
    let key = PrivateKey::generate(SKind::MlDsa(sealgate_smime::MlDsa::MlDsa65)).unwrap();
    let params = CertificateParams::user("pq", "pq@example.com");
    let cert = issue::issue(
        key.public_key(),
        &params,
        &p.ca,
        &p.ca_key,
        &mut rand_core::OsRng,
    )
    .unwrap();
    let r = k
        .import(
            &[("pq.pem", &pem_of(&cert, Some(&key)))],
            &ImportOptions::default(),
        )
        .unwrap();
    assert_eq!(r.private_keys, 1);
    let back = k.private_key(&certificate_id(&cert)).unwrap().unwrap();
    assert!(back.matches(&cert));
    let id = k
        .signing_identity("pq@example.com", SystemTime::now())
        .unwrap()
        .unwrap();
    assert_eq!(id.cert, cert);
    let l = k.lookup_smime("pq@example.com", SystemTime::now()).unwrap();
    assert!(l.selected.is_none());
    assert_eq!(l.candidates.len(), 1);
    assert_eq!(
        l.candidates[0].verdict.clone().unwrap_err().code(),
        "key-usage"
    );
}

/// The 32-byte secret scalar of a P-256 key: ECPrivateKey (RFC 5915) inside the PKCS#8 is
/// version 1, then the scalar as an OCTET STRING.
fn ec_scalar(key: &PrivateKey) -> Vec<u8> {
    let pkcs8 = key.to_pkcs8_der().unwrap();
    let at = pkcs8
        .windows(5)
        .position(|w| w == [2, 1, 1, 4, 32])
        .unwrap()
        + 5;
    pkcs8[at..at + 32].to_vec()
}

#[test]
fn sqlite_file_holds_no_private_key_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let p = pki();
    let (cert, key) = p.user("signer@example.com", |_| {});
    {
        let k = Keyring::open(
            Arc::new(SqliteStore::open(&db).unwrap()),
            Some(&pass()),
            Limits::default(),
        )
        .unwrap();
        k.import(
            &[("id.pem", &pem_of(&cert, Some(&key)))],
            &ImportOptions::default(),
        )
        .unwrap();
    }
    // The key bytes appear nowhere in the file (nor in the WAL, checkpointed at close).
    let mut bytes = std::fs::read(&db).unwrap();
    if let Ok(wal) = std::fs::read(dir.path().join("store.db-wal")) {
        bytes.extend(wal);
    }
    let secret_part = ec_scalar(&key);
    assert!(!bytes.windows(secret_part.len()).any(|w| w == secret_part));
    assert!(bytes.windows(cert.der().len()).any(|w| w == cert.der()));
}

fn import_is_all_or_nothing_and_names_the_file(fresh: Fresh<'_>) {
    let (_b, k) = fresh_keyring(fresh);
    let p = pki();
    let (a, _) = p.user("a@example.com", |_| {});
    let err = k
        .import(
            &[
                ("good.pem", &pem_of(&a, None)),
                (
                    "bad.pem",
                    b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
                ),
            ],
            &ImportOptions::default(),
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::Import { file, .. } if file == "bad.pem"),
        "{err}"
    );
    assert!(k.store().certificates().unwrap().is_empty());
    // Duplicates merge: importing twice adds once; provenance keeps both sources.
    let pem = pem_of(&a, None);
    assert_eq!(
        k.import(&[("x", &pem)], &Default::default())
            .unwrap()
            .outcome
            .added,
        1
    );
    let again = k.import(&[("y", &pem)], &Default::default()).unwrap();
    assert_eq!((again.outcome.added, again.outcome.merged), (0, 1));
    let prov = k.store().provenance(&certificate_id(&a)).unwrap();
    assert_eq!(prov.len(), 2);
    assert_eq!(prov[0].source, "import:x");
}

fn key_without_certificate_is_refused(fresh: Fresh<'_>) {
    let (_b, k) = fresh_keyring(fresh);
    let key = PrivateKey::generate(SKind::Ec(Curve::P256)).unwrap();
    let pem = pem::encode("PRIVATE KEY", &key.to_pkcs8_der().unwrap());
    let err = k
        .import(&[("k.pem", pem.as_bytes())], &Default::default())
        .unwrap_err();
    assert!(err.to_string().contains("without its certificate"), "{err}");
}

fn pgp_lookup_and_secret_round_trip(fresh: Fresh<'_>) {
    let (_b, k) = fresh_keyring(fresh);
    let sk = pgp::SecretKey::generate("Carol <carol@example.org>", pgp::KeyKind::Cv25519).unwrap();
    let r = k
        .import(
            &[("carol.asc", &sk.to_armored_secret().unwrap())],
            &Default::default(),
        )
        .unwrap();
    assert_eq!((r.pgp_certificates, r.private_keys), (1, 1));
    let l = k
        .lookup_pgp("carol@EXAMPLE.org", SystemTime::now())
        .unwrap();
    assert_eq!(l.selected.unwrap().fingerprint(), sk.cert().fingerprint());
    assert!(
        k.lookup_pgp("Carol@example.org", SystemTime::now())
            .unwrap()
            .selected
            .is_none()
    );
    let back = k
        .pgp_secret_key(&sk.cert().fingerprint(), None)
        .unwrap()
        .unwrap();
    assert_eq!(back.cert().fingerprint(), sk.cert().fingerprint());
    // Re-import merges.
    let again = k
        .import(
            &[("carol.pub", &sk.to_armored_public().unwrap())],
            &Default::default(),
        )
        .unwrap();
    assert_eq!(again.outcome.merged, 1);
}

fn expiring_lists_only_the_window(fresh: Fresh<'_>) {
    let (_b, k) = fresh_keyring(fresh);
    let p = pki();
    let now = SystemTime::now();
    let (soon, _) = p.user("s@example.com", |c| {
        c.not_after = now + Duration::from_secs(5 * 86400)
    });
    let (later, _) = p.user("l@example.com", |c| {
        c.not_after = now + Duration::from_secs(50 * 86400)
    });
    let (gone, _) = p.user("g@example.com", |c| {
        c.not_before = now - Duration::from_secs(9 * 86400);
        c.not_after = now - Duration::from_secs(86400)
    });
    for (n, c) in [("s", &soon), ("l", &later), ("g", &gone)] {
        k.import(&[(n, &pem_of(c, None))], &Default::default())
            .unwrap();
    }
    let ids: Vec<String> = k
        .expiring(30, now)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec![certificate_id(&soon)]);
}

fn harvests_verified_signatures_only_and_idempotently(fresh: Fresh<'_>) {
    let (_b, k) = fresh_keyring(fresh);
    let p = pki();
    anchors(&k, &p);
    let (cert, key) = p.user("dave@example.com", |_| {});
    let id = Identity::new(key, cert.clone(), vec![]).unwrap();
    let msg = b"From: dave@example.com\r\nTo: gw@example.net\r\nMessage-ID: <1@x>\r\nSubject: s\r\n\r\nhello\r\n";
    let signed = smime::sign_message(
        msg,
        &id,
        &Default::default(),
        &mut rand_core::OsRng,
        &Limits::default(),
    )
    .unwrap();
    // Broken: flip a byte of the signed text.
    let mut broken = signed.clone();
    let pos = broken.windows(5).position(|w| w == b"hello").unwrap();
    broken[pos] = b'j';
    let r = k.harvest_message(&broken, SystemTime::now()).unwrap();
    assert!(r.certificates.is_empty() && !r.skipped.is_empty());
    assert!(
        k.lookup_smime("dave@example.com", SystemTime::now())
            .unwrap()
            .candidates
            .is_empty()
    );

    let r = k.harvest_message(&signed, SystemTime::now()).unwrap();
    assert_eq!(r.certificates, vec![certificate_id(&cert)]);
    let gen1 = k.store().generation().unwrap();
    let r2 = k.harvest_message(&signed, SystemTime::now()).unwrap();
    assert_eq!(r2.certificates, r.certificates);
    let rec = k
        .store()
        .certificate(&certificate_id(&cert))
        .unwrap()
        .unwrap();
    assert_eq!(rec.trust, Trust::Unverified);
    assert_eq!(k.store().provenance(&rec.id).unwrap().len(), 1);
    assert!(k.store().generation().unwrap() > gen1);
    let l = k
        .lookup_smime("dave@example.com", SystemTime::now())
        .unwrap();
    assert_eq!(l.selected.unwrap().0, cert);
}

fn harvests_autocrypt_and_attached_keys_of_the_sender_only(fresh: Fresh<'_>) {
    use base64::Engine as _;
    let (_b, k) = fresh_keyring(fresh);
    let erin = pgp::SecretKey::generate("Erin <erin@example.org>", pgp::KeyKind::Cv25519).unwrap();
    let mallory =
        pgp::SecretKey::generate("Frank <frank@example.org>", pgp::KeyKind::Cv25519).unwrap();
    let bin = {
        use sequoia_openpgp::serialize::SerializeInto;
        erin.cert().as_sequoia().to_vec().unwrap()
    };
    let kd = base64::engine::general_purpose::STANDARD.encode(bin);
    let attached = String::from_utf8(mallory.to_armored_public().unwrap()).unwrap();
    let msg = format!(
        "From: erin@example.org\r\nAutocrypt: addr=erin@example.org; keydata={kd}\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
         Content-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/pgp-keys\r\n\r\n\
         {attached}\r\n--b--\r\n"
    );
    let r = k
        .harvest_message(msg.as_bytes(), SystemTime::now())
        .unwrap();
    assert_eq!(r.pgp_certificates, vec![erin.cert().fingerprint()]);
    assert!(
        r.skipped
            .iter()
            .any(|s| s.contains(&mallory.cert().fingerprint()))
    );
    let rec = k.store().pgp(&erin.cert().fingerprint()).unwrap().unwrap();
    assert_eq!(rec.trust, Trust::Autocrypt);
    assert!(
        k.lookup_pgp("frank@example.org", SystemTime::now())
            .unwrap()
            .candidates
            .is_empty()
    );
    let r2 = k
        .harvest_message(msg.as_bytes(), SystemTime::now())
        .unwrap();
    assert_eq!(r2.pgp_certificates, r.pgp_certificates);
    assert_eq!(k.store().pgp_certificates().unwrap().len(), 1);
}

fn harvests_gossip_for_recipients_only_and_never_downgrades(fresh: Fresh<'_>) {
    use base64::Engine as _;
    use sequoia_openpgp::serialize::SerializeInto;
    let (_b, k) = fresh_keyring(fresh);
    let bob = pgp::SecretKey::generate("Bob <bob@example.org>", pgp::KeyKind::Cv25519).unwrap();
    let carol =
        pgp::SecretKey::generate("Carol <carol@example.org>", pgp::KeyKind::Cv25519).unwrap();
    let kd = |c: &pgp::SecretKey| {
        base64::engine::general_purpose::STANDARD.encode(c.cert().as_sequoia().to_vec().unwrap())
    };
    // Carol's key is already imported by an administrator.
    let armored = carol.to_armored_public().unwrap();
    k.import(&[("carol.asc", &armored)], &ImportOptions::default())
        .unwrap();
    let msg = format!(
        "From: alice@example.org\r\nTo: bob@example.org, carol@example.org\r\n\
         Autocrypt-Gossip: addr=bob@example.org; keydata={}\r\n\
         Autocrypt-Gossip: addr=carol@example.org; keydata={}\r\n\
         Autocrypt-Gossip: addr=dave@example.org; keydata={}\r\n\
         Autocrypt-Gossip: addr=bob@example.org; x=1; keydata={}\r\n\
         Content-Type: text/plain\r\n\r\nhi\r\n",
        kd(&bob),
        kd(&carol),
        kd(&bob),
        kd(&bob)
    );
    let rcpts = vec![
        "bob@example.org".to_string(),
        "carol@example.org".to_string(),
    ];
    let r = k.harvest_gossip(msg.as_bytes(), &rcpts, "<m1@x>").unwrap();
    assert_eq!(
        r.pgp_certificates,
        vec![bob.cert().fingerprint(), carol.cert().fingerprint()]
    );
    assert!(
        r.skipped.iter().any(|s| s.contains("not a recipient")),
        "{:?}",
        r.skipped
    );
    assert!(
        r.skipped.iter().any(|s| s.contains("critical")),
        "{:?}",
        r.skipped
    );
    let bob_rec = k.store().pgp(&bob.cert().fingerprint()).unwrap().unwrap();
    assert_eq!(bob_rec.trust, Trust::Autocrypt);
    // Gossip does not downgrade the administrator's import.
    let carol_rec = k.store().pgp(&carol.cert().fingerprint()).unwrap().unwrap();
    assert_eq!(carol_rec.trust, Trust::Imported);
    // A gossip key for a recipient whose User ID is someone else is refused.
    let planted = format!(
        "To: bob@example.org\r\nAutocrypt-Gossip: addr=bob@example.org; keydata={}\r\n\r\nx",
        kd(&carol)
    );
    let r = k
        .harvest_gossip(planted.as_bytes(), &rcpts, "<m2@x>")
        .unwrap();
    assert!(r.pgp_certificates.is_empty());
    assert!(
        r.skipped.iter().any(|s| s.contains("is not for")),
        "{:?}",
        r.skipped
    );
}

/// Autocrypt Level 1 peer state: the key of the message with the latest effective date (its
/// Date, clamped to now) is used, whatever the keys' creation times; an older message that
/// arrives late does not bring its key back; the sender's own header beats gossip about it.
fn autocrypt_newer_message_replaces_older_key(fresh: Fresh<'_>) {
    use base64::Engine as _;
    use sequoia_openpgp::serialize::SerializeInto;
    let (_b, k) = fresh_keyring(fresh);
    let make =
        || pgp::SecretKey::generate("Erin <erin@example.org>", pgp::KeyKind::Cv25519).unwrap();
    let old_key = make();
    // One second apart, so that "newest created" and "newest message" disagree below.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let new_key = make();
    let kd = |c: &pgp::SecretKey| {
        base64::engine::general_purpose::STANDARD.encode(c.cert().as_sequoia().to_vec().unwrap())
    };
    let msg = |date: &str, key: &pgp::SecretKey| {
        format!(
            "From: erin@example.org\r\nDate: {date}\r\n\
             Autocrypt: addr=erin@example.org; keydata={}\r\n\r\nhi\r\n",
            kd(key)
        )
    };
    let now = SystemTime::now();
    let selected = || {
        k.lookup_pgp("erin@example.org", now)
            .unwrap()
            .selected
            .map(|c| c.fingerprint())
    };
    // The newer key first, in an older message; then the older key in a newer one.
    k.harvest_message(
        msg("Mon, 1 Jun 2026 10:00:00 +0000", &new_key).as_bytes(),
        now,
    )
    .unwrap();
    assert_eq!(selected(), Some(new_key.cert().fingerprint()));
    k.harvest_message(
        msg("Tue, 2 Jun 2026 10:00:00 +0000", &old_key).as_bytes(),
        now,
    )
    .unwrap();
    assert_eq!(selected(), Some(old_key.cert().fingerprint()));
    let l = k.lookup_pgp("erin@example.org", now).unwrap();
    let replaced = l
        .candidates
        .iter()
        .find(|c| c.id == new_key.cert().fingerprint())
        .unwrap();
    assert_eq!(
        replaced.verdict,
        Err(Rejection::AutocryptReplaced(old_key.cert().fingerprint()))
    );
    // A message from before that, delivered late: ignored, with the reason.
    let r = k
        .harvest_message(
            msg("Sun, 31 May 2026 10:00:00 +0000", &new_key).as_bytes(),
            now,
        )
        .unwrap();
    assert!(r.pgp_certificates.is_empty());
    assert!(
        r.skipped.iter().any(|s| s.contains("older")),
        "{:?}",
        r.skipped
    );
    assert_eq!(selected(), Some(old_key.cert().fingerprint()));
    // A Date in the future counts as now: it cannot pin a key against later mail.
    k.harvest_message(
        msg("Fri, 1 Jan 2100 00:00:00 +0000", &new_key).as_bytes(),
        now,
    )
    .unwrap();
    assert_eq!(selected(), Some(new_key.cert().fingerprint()));
    // Gossip about Erin (newer than all of that) does not beat her own header.
    let gossip = format!(
        "From: zoe@example.org\r\nTo: erin@example.org\r\nDate: {}\r\n\
         Autocrypt-Gossip: addr=erin@example.org; keydata={}\r\n\r\nx",
        sealgate_mime::format_date(SystemTime::now()),
        kd(&old_key)
    );
    let r = k
        .harvest_gossip(gossip.as_bytes(), &["erin@example.org".into()], "<g1@x>")
        .unwrap();
    assert_eq!(r.pgp_certificates, vec![old_key.cert().fingerprint()]);
    assert_eq!(selected(), Some(new_key.cert().fingerprint()));
}

#[test]
fn schema_version_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let s = SqliteStore::open(&db).unwrap();
    assert_eq!(s.schema_version().unwrap(), 2);
    s.integrity_check().unwrap();
    drop(s);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert!(
        SqliteStore::open(&db)
            .unwrap_err()
            .to_string()
            .contains("schema version 99")
    );
}

#[test]
fn time_format() {
    assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
    assert_eq!(format_time(1_795_000_000), "2026-11-18T11:06:40Z");
}

fn paths_are_checked_at_import_and_reused_or_rebuilt_at_lookup(fresh: Fresh<'_>) {
    let (_b, k) = fresh_keyring(fresh);
    let p = pki();
    let (leaf, _) = p.user("z@example.com", |_| {});
    // Leaf before its CA: no path at import, lookup builds one once the anchor is there.
    k.import(&[("leaf", &pem_of(&leaf, None))], &Default::default())
        .unwrap();
    let rec = k
        .store()
        .certificate(&certificate_id(&leaf))
        .unwrap()
        .unwrap();
    assert!(rec.chain.is_empty());
    assert!(
        k.lookup_smime("z@example.com", SystemTime::now())
            .unwrap()
            .selected
            .is_none()
    );
    anchors(&k, &p);
    let l = k.lookup_smime("z@example.com", SystemTime::now()).unwrap();
    assert_eq!(l.selected.unwrap().1, vec![leaf.clone(), p.ca.clone()]);
    // CA and leaf in one import: the path is checked and kept.
    let (_b2, k2) = fresh_keyring(fresh);
    let (leaf2, _) = p.user("y@example.com", |_| {});
    let opts = ImportOptions {
        trust_anchors: true,
        ..Default::default()
    };
    k2.import(
        &[("ca", &pem_of(&p.ca, None)), ("l", &pem_of(&leaf2, None))],
        &opts,
    )
    .unwrap();
    let rec = k2
        .store()
        .certificate(&certificate_id(&leaf2))
        .unwrap()
        .unwrap();
    assert_eq!(
        rec.chain,
        vec![certificate_id(&leaf2), certificate_id(&p.ca)]
    );
    let l = k2.lookup_smime("y@example.com", SystemTime::now()).unwrap();
    assert_eq!(l.selected.unwrap().1, vec![leaf2, p.ca.clone()]);
}

fn meta_if_absent_keeps_and_meta_replaces(fresh: Fresh<'_>) {
    use crate::store::{Batch, Change};
    let b = fresh();
    let store = b.open();
    let set = |c: Change| store.apply(Batch { changes: vec![c] }).unwrap();
    set(Change::MetaIfAbsent("k".into(), b"one".to_vec()));
    set(Change::MetaIfAbsent("k".into(), b"two".to_vec()));
    assert_eq!(store.meta("k").unwrap().as_deref(), Some(&b"one"[..]));
    set(Change::Meta("k".into(), b"three".to_vec()));
    assert_eq!(store.meta("k").unwrap().as_deref(), Some(&b"three"[..]));
    set(Change::Meta("new".into(), b"x".to_vec()));
    assert_eq!(store.meta("new").unwrap().as_deref(), Some(&b"x"[..]));
    assert_eq!(store.meta("absent").unwrap(), None);
}

/// Every case above, on every backend: a `#[test]` per case for memory and SQLite; one
/// `#[test]` for PostgreSQL that starts one private server and runs each case on a database
/// of its own (reporting every failing case, not only the first).
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        mod on_memory {
            $( #[test] fn $case() { super::$case(&super::memory_backend) } )*
        }
        mod on_sqlite {
            $( #[test] fn $case() { super::$case(&super::sqlite_backend) } )*
        }
        #[cfg(feature = "postgres")]
        mod on_postgres {
            use super::*;

            #[test]
            fn every_case_and_the_postgresql_specifics() {
                let Some(server) = crate::pg_server::PgServer::start() else {
                    return;
                };
                let fresh = || -> Box<dyn Backend> {
                    Box::new(postgres_tests::Pg(server.create_database()))
                };
                let mut failed = Vec::new();
                $(
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        super::$case(&fresh)
                    }));
                    if r.is_err() {
                        failed.push(stringify!($case));
                    }
                )*
                for (name, case) in postgres_tests::CASES {
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        case(&server)
                    }));
                    if r.is_err() {
                        failed.push(name);
                    }
                }
                assert!(failed.is_empty(), "failed on PostgreSQL: {failed:?}");
            }
        }
    };
}

on_every_backend!(
    lookup_picks_the_valid_certificate_and_explains_the_others,
    newest_usable_certificate_wins,
    private_keys_are_sealed_and_come_back,
    ml_dsa_identity_signs_but_is_never_a_recipient,
    import_is_all_or_nothing_and_names_the_file,
    key_without_certificate_is_refused,
    pgp_lookup_and_secret_round_trip,
    expiring_lists_only_the_window,
    harvests_verified_signatures_only_and_idempotently,
    harvests_autocrypt_and_attached_keys_of_the_sender_only,
    harvests_gossip_for_recipients_only_and_never_downgrades,
    autocrypt_newer_message_replaces_older_key,
    paths_are_checked_at_import_and_reused_or_rebuilt_at_lookup,
    meta_if_absent_keeps_and_meta_replaces,
);

#[cfg(feature = "postgres")]
#[path = "pg_tests.rs"]
mod postgres_tests;
