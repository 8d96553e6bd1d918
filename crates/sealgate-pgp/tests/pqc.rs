//! Post-quantum OpenPGP (draft-ietf-openpgp-pqc): ML-KEM-768+X25519 recipients and
//! ML-DSA-65+Ed25519 signers, through Sequoia's OpenSSL backend on the vendored OpenSSL 3.5.
//!
//! No tool on Debian 12 reads these algorithms (gpg 2.2, sq 0.27), so interoperability is
//! checked against the draft's vectors and rsop's (`tests/data/pgp-pqc`, see NOTES.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand_core::OsRng;
use sealgate_mime::Limits;
use sealgate_pgp::{
    Cert, EncryptMessageOptions, EncryptOptions, Error, KeyKind, SecretKey, decrypt,
    decrypt_message, encrypt, encrypt_message, sign_message, verify_message,
};
use sequoia_openpgp::types::PublicKeyAlgorithm;

fn data(dir: &str, name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/data/{dir}/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn pqc(name: &str) -> Vec<u8> {
    data("pgp-pqc", name)
}

fn secret(bytes: &[u8]) -> SecretKey {
    SecretKey::load(bytes, None, &Limits::default()).unwrap()
}

fn cert(bytes: &[u8]) -> Cert {
    let mut v = Cert::load_all(bytes, &Limits::default()).unwrap();
    assert_eq!(v.len(), 1);
    v.remove(0)
}

/// The encryption subkeys' algorithms and key versions of `cert`.
fn encryption_algos(c: &Cert) -> Vec<(PublicKeyAlgorithm, u8)> {
    let fprs = c
        .encryption_keys_for(None, std::time::SystemTime::now())
        .unwrap();
    c.as_sequoia()
        .keys()
        .filter(|ka| fprs.contains(&ka.key().fingerprint().to_hex()))
        .map(|ka| (ka.key().pk_algo(), ka.key().version()))
        .collect()
}

const MAIL: &[u8] = b"From: alice@example.org\r\nTo: pq@example.org\r\nSubject: quantum\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nHello, post-quantum world.\r\n";

#[test]
fn the_backend_offers_the_pqc_algorithms() {
    // Sequoia's OpenSSL backend enables them only on OpenSSL >= 3.5 at run time: this is the
    // vendored OpenSSL, not Debian's 3.0.
    assert!(
        PublicKeyAlgorithm::MLKEM768_X25519.is_supported(),
        "{}",
        sequoia_openpgp::crypto::backend()
    );
    assert!(PublicKeyAlgorithm::MLDSA65_Ed25519.is_supported());
    assert!(openssl::version::number() >= 0x3050_0000);
}

#[test]
fn generated_pqc_keys_have_the_draft_algorithms() {
    let v6 = SecretKey::generate("PQ <pq@example.org>", KeyKind::V6MlDsa65Ed25519).unwrap();
    let primary = v6.cert().as_sequoia().primary_key().key();
    assert_eq!(primary.version(), 6);
    assert_eq!(primary.pk_algo(), PublicKeyAlgorithm::MLDSA65_Ed25519);
    assert_eq!(
        encryption_algos(v6.cert()),
        vec![(PublicKeyAlgorithm::MLKEM768_X25519, 6)]
    );
    assert!(v6.cert().supports_seipdv2());

    let v4 = SecretKey::generate("PQ4 <pq4@example.org>", KeyKind::Ed25519MlKem768).unwrap();
    let primary = v4.cert().as_sequoia().primary_key().key();
    assert_eq!(primary.version(), 4);
    assert_eq!(primary.pk_algo(), PublicKeyAlgorithm::EdDSA);
    assert_eq!(
        encryption_algos(v4.cert()),
        vec![(PublicKeyAlgorithm::MLKEM768_X25519, 4)]
    );
    assert!(v4.cert().has_address("pq4@example.org"));

    // Both export and load again with the same fingerprint.
    for k in [&v6, &v4] {
        let again = secret(&k.to_armored_secret().unwrap());
        assert_eq!(again.cert().fingerprint(), k.cert().fingerprint());
    }
    // GnuPG 2.2 reads neither.
    for kind in [KeyKind::V6MlDsa65Ed25519, KeyKind::Ed25519MlKem768] {
        assert!(SecretKey::generate_for_gnupg("G <g@example.org>", kind).is_err());
    }
}

#[test]
fn pgp_mime_round_trip_signed_by_mldsa() {
    let limits = Limits::default();
    let k = SecretKey::generate("PQ <pq@example.org>", KeyKind::V6MlDsa65Ed25519).unwrap();
    let recipients = [k.cert().clone()];
    for signer in [None, Some(&k)] {
        let enc = encrypt_message(
            MAIL,
            &recipients,
            signer,
            &EncryptMessageOptions::default(),
            &mut OsRng,
            &limits,
        )
        .unwrap();
        let d = decrypt_message(&enc, std::slice::from_ref(&k), &recipients, &limits).unwrap();
        assert!(d.aead, "a v6 ML-KEM recipient gets SEIPD v2");
        assert!(
            d.message
                .ends_with(b"\r\n\r\nHello, post-quantum world.\r\n"),
            "{}",
            String::from_utf8_lossy(&d.message)
        );
        match signer {
            None => assert!(d.verification.signatures.is_empty()),
            Some(s) => {
                assert!(d.verification.is_valid());
                let r = &d.verification.signatures[0];
                assert_eq!(
                    r.signer.as_ref().unwrap().fingerprint(),
                    s.cert().fingerprint()
                );
            }
        }
    }
}

#[test]
fn pgp_mime_signed_by_mldsa_verifies() {
    let limits = Limits::default();
    let k = SecretKey::generate("PQ <alice@example.org>", KeyKind::V6MlDsa65Ed25519).unwrap();
    let signed = sign_message(MAIL, &k, &mut OsRng, &limits).unwrap();
    let v = verify_message(&signed, &[k.cert().clone()], &limits).unwrap();
    assert!(v.verification.is_valid(), "{:?}", v.verification);
    assert_eq!(
        v.verification.signatures[0]
            .signer
            .as_ref()
            .unwrap()
            .fingerprint(),
        k.cert().fingerprint()
    );
    // A flipped body byte breaks the ML-DSA-65+Ed25519 signature.
    let at = last_index_of(&signed, b"post-quantum");
    let mut bad = signed.clone();
    bad[at] ^= 0x20;
    let v = verify_message(&bad, &[k.cert().clone()], &limits).unwrap();
    assert!(!v.verification.is_valid());
}

fn last_index_of(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .rposition(|w| w == needle)
        .unwrap()
}

#[test]
fn v4_mlkem_subkey_round_trips_in_seipd_v1_and_v2() {
    let limits = Limits::default();
    let pq = SecretKey::generate("PQ4 <pq4@example.org>", KeyKind::Ed25519MlKem768).unwrap();
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    // Alone: it advertises SEIPD v2, so Sequoia writes PKESK v6 + SEIPD v2.
    let ct = encrypt(
        &body,
        &[pq.cert().clone()],
        Some(&pq),
        &EncryptOptions::default(),
    )
    .unwrap();
    let d = decrypt(
        &ct,
        std::slice::from_ref(&pq),
        &[pq.cert().clone()],
        &limits,
    )
    .unwrap();
    assert_eq!(&d.plaintext[..], &body[..]);
    assert!(d.aead);
    assert!(d.verification.is_valid());
    // With a GnuPG 2.2 key (SEIPD v1 only): PKESK v3 for both and our SEIPD v1, which the
    // draft allows for ML-KEM-768+X25519 on a v4 key.
    let gpg_rsa = cert(&data("pgp", "rsa.pub.asc"));
    let rsa = secret(&data("pgp", "rsa.sec.asc"));
    let ct = encrypt(
        &body,
        &[gpg_rsa, pq.cert().clone()],
        None,
        &EncryptOptions::default(),
    )
    .unwrap();
    for k in [&pq, &rsa] {
        let d = decrypt(&ct, std::slice::from_ref(k), &[], &limits).unwrap();
        assert_eq!(&d.plaintext[..], &body[..]);
        assert!(!d.aead);
    }
}

#[test]
fn one_message_to_rsa_cv25519_and_pqc() {
    let limits = Limits::default();
    let pq = SecretKey::generate("PQ <pq@example.org>", KeyKind::V6MlDsa65Ed25519).unwrap();
    let rsa = SecretKey::generate("RSA <rsa@example.org>", KeyKind::Rsa3072).unwrap();
    let cv = SecretKey::generate("Cv <cv@example.org>", KeyKind::Cv25519).unwrap();
    let keys = [&pq, &rsa, &cv];
    let recipients: Vec<Cert> = keys.iter().map(|k| k.cert().clone()).collect();
    let enc = encrypt_message(
        MAIL,
        &recipients,
        Some(&pq),
        &EncryptMessageOptions::default(),
        &mut OsRng,
        &limits,
    )
    .unwrap();
    for k in keys {
        let d = decrypt_message(&enc, std::slice::from_ref(k), &recipients, &limits).unwrap();
        assert!(d.aead);
        assert!(
            d.message
                .ends_with(b"\r\n\r\nHello, post-quantum world.\r\n")
        );
        assert!(d.verification.is_valid());
        assert_eq!(
            d.verification.signatures[0]
                .signer
                .as_ref()
                .unwrap()
                .fingerprint(),
            pq.cert().fingerprint()
        );
    }
}

#[test]
fn v6_pqc_with_a_seipd_v1_only_recipient_is_refused() {
    // The v6 ML-KEM key needs PKESK v6 + SEIPD v2; GnuPG 2.2 reads SEIPD v1 only. No message
    // serves both, so the caller is told which certificate to send separately.
    let pq = SecretKey::generate("PQ <pq@example.org>", KeyKind::V6MlDsa65Ed25519).unwrap();
    let gpg_rsa = cert(&data("pgp", "rsa.pub.asc"));
    let fpr = gpg_rsa.fingerprint();
    let e = encrypt(
        b"x",
        &[gpg_rsa, pq.cert().clone()],
        None,
        &EncryptOptions::default(),
    );
    assert!(
        matches!(&e, Err(Error::SeipdV1OnlyWithPostQuantum { fingerprint }) if *fingerprint == fpr),
        "{e:?}"
    );
}

#[test]
fn wrong_or_damaged_pqc_key_gives_the_coarse_errors() {
    let limits = Limits::default();
    let pq = SecretKey::generate("PQ <pq@example.org>", KeyKind::V6MlDsa65Ed25519).unwrap();
    let other = SecretKey::generate("PQ2 <pq2@example.org>", KeyKind::V6MlDsa65Ed25519).unwrap();
    let opts = EncryptOptions {
        armor: false,
        compression: false,
    };
    let ct = encrypt(b"secret", &[pq.cert().clone()], None, &opts).unwrap();
    // Not addressed to us: as for any other key.
    assert!(matches!(
        decrypt(&ct, std::slice::from_ref(&other), &[], &limits),
        Err(Error::NoMatchingKey)
    ));
    // Addressed to us, but the PKESK v6 is damaged after the recipient fingerprint (bytes
    // ~40-71 the X25519 ephemeral key, then the 1088-byte ML-KEM ciphertext; ML-KEM's implicit
    // rejection gives a wrong key, the AES key unwrap fails): the one coarse error.
    for at in [60, 200, 1000] {
        let mut bad = ct.clone();
        bad[at] ^= 0x01;
        let e = decrypt(&bad, std::slice::from_ref(&pq), &[], &limits);
        assert!(
            matches!(e, Err(Error::DecryptionFailed)),
            "byte {at}: {e:?}"
        );
    }
}

#[test]
fn draft_vectors_decrypt() {
    let limits = Limits::default();
    // (secret key, message, signer certificate, plaintext)
    let cases: &[(&str, &str, Option<&str>, &[u8])] = &[
        (
            "v6-mldsa-65-sample-sk.pgp",
            "v6-mldsa-65-sample-message.pgp",
            None,
            b"Testing\n",
        ),
        (
            "v4-eddsa-sample-sk.pgp",
            "v4-eddsa-sample-message-v1.pgp",
            None,
            b"Testing\n",
        ),
        (
            "v4-eddsa-sample-sk.pgp",
            "v4-eddsa-sample-message-v2.pgp",
            None,
            b"Testing\n",
        ),
        (
            "rsop_draft-ietf-openpgp-pqc-08-v6-mldsa65ed25519-mlkem768x25519_bob_sk.pgp",
            "rsop_draft-ietf-openpgp-pqc-08-v6-mldsa65ed25519-mlkem768x25519_message.pgp",
            Some("rsop_draft-ietf-openpgp-pqc-08-v6-mldsa65ed25519-mlkem768x25519_alice_pk.pgp"),
            b"Hello World\n",
        ),
        (
            "rsop_draft-ietf-openpgp-pqc-08-v4-ed25519-mlkem768x25519_bob_sk.pgp",
            "rsop_draft-ietf-openpgp-pqc-08-v4-ed25519-mlkem768x25519_message.pgp",
            Some("rsop_draft-ietf-openpgp-pqc-08-v4-ed25519-mlkem768x25519_alice_pk.pgp"),
            b"Hello World\n",
        ),
    ];
    for (sk, msg, signer, plaintext) in cases {
        let key = secret(&pqc(sk));
        let signers: Vec<Cert> = signer.iter().map(|s| cert(&pqc(s))).collect();
        let d = decrypt(&pqc(msg), std::slice::from_ref(&key), &signers, &limits)
            .unwrap_or_else(|e| panic!("{msg}: {e}"));
        assert_eq!(&d.plaintext[..], *plaintext, "{msg}");
        if let Some(alice) = signers.first() {
            assert!(d.verification.is_valid(), "{msg}: {:?}", d.verification);
            assert_eq!(
                d.verification.signatures[0]
                    .signer
                    .as_ref()
                    .unwrap()
                    .fingerprint(),
                alice.fingerprint(),
                "{msg}"
            );
        }
        // Someone else's PQC key: the same error as for any key the message is not for.
        let stranger = SecretKey::generate("S <s@example.org>", KeyKind::V6MlDsa65Ed25519).unwrap();
        assert!(
            matches!(
                decrypt(&pqc(msg), &[stranger], &[], &limits),
                Err(Error::NoMatchingKey)
            ),
            "{msg}"
        );
    }
}
