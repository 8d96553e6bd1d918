//! Post-quantum S/MIME interop with OpenSSL 3.6: ML-KEM-512/768/1024 recipients in CMS
//! KEMRecipientInfo (RFC 9629, profile RFC 9936), both ways; ML-DSA-44/65/87 signatures in
//! SignedData (RFC 9882) and certificates (RFC 9881), both ways.
//!
//! OpenSSL 3.6 makes the ML-KEM keys (each private-key form it writes), a certificate for each
//! public key (issued by the RSA test intermediate: a KEM key cannot sign its own request), and
//! messages to them; we decrypt those with the OpenSSL-made key files. Then we encrypt to the
//! OpenSSL-made certificates and `openssl cms -decrypt` must give the plaintext back.
//! For ML-DSA, OpenSSL makes an ML-DSA-65 root CA and a user per parameter set (keys in each
//! form it writes); `openssl cms -sign` messages verify with us, ours with `openssl cms
//! -verify`, a changed byte fails on both sides.
//!
//! Needs `SEALGATE_OPENSSL_PQ` (the output of tests/openssl-pq.sh): Debian 12's OpenSSL 3.0 has
//! no ML-KEM. Skipped with a notice without it, a failure under CI=true.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use sealgate::Limits;
use sealgate::mime;
use sealgate::smime::{
    self, Certificate, ContentCipher, EncryptMessageOptions, MlDsa, MlKem, PrivateKey, PublicKey,
    Recipient,
};
use sealgate_tests::{
    KeyType, MlDsaUser, MlKemUser, Pki, User, openssl_pq, openssl_pq_cmd, run, run_unchecked,
    sample_message,
};

fn limits() -> Limits {
    Limits::default()
}

const SETS: [(MlKem, &str); 3] = [
    (MlKem::MlKem512, "ML-KEM-512"),
    (MlKem::MlKem768, "ML-KEM-768"),
    (MlKem::MlKem1024, "ML-KEM-1024"),
];

fn load_key(path: &Path) -> PrivateKey {
    smime::load_private_key(&std::fs::read(path).unwrap(), None, &limits())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load_cert(path: &Path) -> Certificate {
    Certificate::load(&std::fs::read(path).unwrap(), &limits())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The first byte (the tag of the ML-KEM-PrivateKey CHOICE) inside the privateKey OCTET
/// STRING of an unencrypted PKCS#8 PEM file.
fn private_key_choice(path: &Path) -> u8 {
    use base64::Engine as _;
    let pem = std::fs::read_to_string(path).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    // SEQUENCE { INTEGER 0, AlgorithmIdentifier { OID } (13 bytes), OCTET STRING { .. } }
    let header = |at: usize| match der[at + 1] {
        n if n < 0x80 => at + 2,
        n => at + 2 + usize::from(n & 0x7f),
    };
    let version = header(0);
    assert_eq!(&der[version..version + 3], &[2, 1, 0], "{}", path.display());
    let octets = version + 3 + 13;
    assert_eq!(der[octets], 0x04, "{}", path.display());
    der[header(octets)]
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// LF line ends, for comparing what openssl wrote (text mode) with what we sent.
fn lf(b: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(b)
        .replace("\r\n", "\n")
        .into_bytes()
}

/// A set-up shared by the tests: the RSA test PKI, an RSA user, one OpenSSL-made user per
/// parameter set.
struct World {
    bin: PathBuf,
    pki: Pki,
    rsa: User,
    pq: Vec<(MlKem, MlKemUser)>,
}

fn world() -> Option<World> {
    let bin = openssl_pq()?;
    let pki = Pki::new();
    let rsa = pki.user("bob", "bob@example.org", KeyType::Rsa2048);
    let pq = SETS
        .iter()
        .map(|&(kem, alg)| (kem, pki.ml_kem_user(&bin, alg)))
        .collect();
    Some(World { bin, pki, rsa, pq })
}

/// Every key form OpenSSL 3.6 writes loads, names its parameter set and matches the
/// OpenSSL-made certificate, whose SPKI we read as that ML-KEM public key; the forms are the
/// same key. So do the key as DER and as password-encrypted PKCS#8.
#[test]
fn openssl_pq_keys_and_certificates_load() {
    let Some(w) = world() else { return };
    for (kem, u) in &w.pq {
        let cert = load_cert(&u.cert);
        let PublicKey::MlKem { kem: got, key } = cert.public_key().unwrap() else {
            panic!("{}: not an ML-KEM certificate", u.cert.display())
        };
        assert_eq!(got, *kem);
        assert_eq!(key.len(), kem.public_key_len());
        for (form, path) in &u.keys {
            let k = load_key(path);
            assert!(k.matches(&cert), "{kem:?} {form}");
            assert_eq!(k.public_key(), &cert.public_key().unwrap(), "{form}");
        }
        // Each file is the RFC 9935 §6 CHOICE arm it claims, so each of our three loaders
        // met an OpenSSL-made key: genpkey's default is `both` (SEQUENCE), then `seed` ([0])
        // and `expandedKey` (OCTET STRING).
        let arms: Vec<(&str, u8)> = u
            .keys
            .iter()
            .map(|(form, path)| (form.as_str(), private_key_choice(path)))
            .collect();
        assert_eq!(
            arms,
            [("default", 0x30), ("seed-only", 0x80), ("priv-only", 0x04)],
            "{kem:?}"
        );
        // The same key as DER, and as encrypted PKCS#8 (PBES2, AES-256-CBC) with a password.
        let d = w.pki.path();
        let der = d.join("k.der");
        let encrypted = d.join("k.enc.pem");
        run(
            openssl_pq_cmd(&w.bin, d, &["pkey", "-outform", "DER", "-out"])
                .arg(&der)
                .arg("-in")
                .arg(u.key()),
        );
        run(openssl_pq_cmd(
            &w.bin,
            d,
            &["pkey", "-aes-256-cbc", "-passout", "pass:pq-secret", "-out"],
        )
        .arg(&encrypted)
        .arg("-in")
        .arg(u.key()));
        assert!(load_key(&der).matches(&cert), "{kem:?} DER");
        let pw = secrecy::SecretString::from("pq-secret");
        let k = smime::load_private_key(&std::fs::read(&encrypted).unwrap(), Some(&pw), &limits())
            .unwrap();
        assert!(k.matches(&cert), "{kem:?} encrypted");
    }
}

/// `openssl cms -encrypt` (3.6) to each ML-KEM certificate, AES-128/256-CBC EnvelopedData and
/// AES-128/256-GCM AuthEnvelopedData, recipient by issuerAndSerialNumber and by SKI (`-keyid`),
/// alone and beside an RSA recipient, with the other wraps and KDFs OpenSSL offers
/// (`-aes192-wrap`, `-recip_kdf HKDF-SHA384/512`, `-recip_ukm`): we decrypt with the
/// OpenSSL-made key in each form.
#[test]
fn openssl_pq_encrypts_to_ml_kem_we_decrypt() {
    let Some(w) = world() else { return };
    let msg = sample_message("alice@example.com", "pq@example.org");
    let entity = mime::split_for_protection(&msg, &limits()).unwrap().1;
    let input = w.pki.write("entity.txt", &entity);
    for (kem, u) in &w.pq {
        let cert = load_cert(&u.cert);
        // OpenSSL picks the key wrap by the content cipher's key size (aes128-wrap for
        // AES-128 content, aes256-wrap for AES-256, whatever the parameter set): both reach us.
        for cipher in [
            "-aes-128-cbc",
            "-aes-256-cbc",
            "-aes-128-gcm",
            "-aes-256-gcm",
        ] {
            // (what, options before -recip, options after it (for that recipient), RSA too)
            let variants: [(&str, &[&str], &[&str], bool); 6] = [
                ("issuerAndSerial", &[], &[], false),
                ("keyid", &["-keyid"], &[], false),
                ("with RSA", &[], &[], true),
                ("aes192-wrap", &["-aes192-wrap"], &[], false),
                ("hkdf-sha384", &[], &["-recip_kdf", "HKDF-SHA384"], false),
                (
                    "hkdf-sha512 ukm",
                    &[],
                    &[
                        "-recip_kdf",
                        "HKDF-SHA512",
                        "-recip_ukm",
                        "7365616c67617465",
                    ],
                    false,
                ),
            ];
            for (variant, before, after, with_rsa) in variants {
                let what = format!("{kem:?} {cipher} {variant}");
                let out = w.pki.path().join("from-openssl.eml");
                let mut cmd = openssl_pq_cmd(
                    &w.bin,
                    w.pki.path(),
                    &["cms", "-encrypt", "-binary", cipher],
                );
                cmd.arg("-in").arg(&input).arg("-out").arg(&out);
                cmd.args(["-to", &u.email, "-subject", "From OpenSSL 3.6"]);
                cmd.args(before).arg("-recip").arg(&u.cert).args(after);
                if with_rsa {
                    cmd.arg("-recip").arg(&w.rsa.cert);
                }
                run(&mut cmd);
                let enc = std::fs::read(&out).unwrap();
                for (form, path) in &u.keys {
                    for c in [Some(&cert), None] {
                        let d = smime::decrypt_message(&enc, &load_key(path), c, None, &limits())
                            .unwrap_or_else(|e| {
                                panic!("{what} key {form} cert={}: {e}", c.is_some())
                            });
                        assert!(
                            find(&d.message, &entity).is_some(),
                            "{what} {form}: decrypted content differs"
                        );
                        assert!(find(&d.message, b"Subject: From OpenSSL 3.6").is_some());
                        assert_eq!(d.authenticated, cipher.ends_with("gcm"), "{what}");
                    }
                }
                if with_rsa {
                    let d = smime::decrypt_message(
                        &enc,
                        &load_key(&w.rsa.key),
                        Some(&load_cert(&w.rsa.cert)),
                        None,
                        &limits(),
                    )
                    .unwrap();
                    assert!(find(&d.message, &entity).is_some(), "{what} rsa");
                }
                // Another parameter set's key: not a recipient, or the coarse error.
                let other = &w.pq.iter().find(|(k, _)| k != kem).unwrap().1;
                let err =
                    smime::decrypt_message(&enc, &load_key(other.key()), None, None, &limits())
                        .unwrap_err();
                assert!(
                    matches!(
                        err,
                        smime::Error::DecryptionFailed | smime::Error::NotARecipient
                    ),
                    "{what}: {err:?}"
                );
            }
        }
    }
}

/// `openssl cms -decrypt` (3.6) with `key` (and `cert` to pick the RecipientInfo) on `enc`.
fn openssl_pq_decrypt(w: &World, enc: &[u8], key: &Path, cert: &Path) -> Vec<u8> {
    let f = w.pki.write("to-openssl.eml", enc);
    let out = run(
        openssl_pq_cmd(&w.bin, w.pki.path(), &["cms", "-decrypt", "-binary"])
            .arg("-in")
            .arg(&f)
            .arg("-inkey")
            .arg(key)
            .arg("-recip")
            .arg(cert),
    );
    out.stdout
}

/// `openssl cms -cmsout -print` (3.6) of an S/MIME message: the structure as OpenSSL reads it.
fn openssl_pq_print(w: &World, enc: &[u8]) -> String {
    let f = w.pki.write("to-print.eml", enc);
    let out =
        run(openssl_pq_cmd(&w.bin, w.pki.path(), &["cms", "-cmsout", "-print", "-in"]).arg(&f));
    String::from_utf8(out.stdout).unwrap()
}

/// Our library encrypts to the OpenSSL-made ML-KEM certificates (AES-128/256, CBC and GCM,
/// alone and beside the RSA recipient): OpenSSL prints our KEMRecipientInfo as we meant it, `openssl cms -decrypt` (3.6) with the ML-KEM key, in each form,
/// gives the entity back; with the RSA key too for the mixed message. A wrong ML-KEM key fails
/// in OpenSSL as well.
#[test]
fn we_encrypt_to_ml_kem_openssl_pq_decrypts() {
    let Some(w) = world() else { return };
    let msg = sample_message("alice@example.com", "pq@example.org");
    let entity = mime::split_for_protection(&msg, &limits()).unwrap().1;
    for (kem, u) in &w.pq {
        for cipher in [
            ContentCipher::Aes128Cbc,
            ContentCipher::Aes256Cbc,
            ContentCipher::Aes128Gcm,
            ContentCipher::Aes256Gcm,
        ] {
            for with_rsa in [false, true] {
                let what = format!("{kem:?} {cipher:?} rsa={with_rsa}");
                let mut rs = vec![Recipient::new(load_cert(&u.cert))];
                if with_rsa {
                    rs.push(Recipient::new(load_cert(&w.rsa.cert)));
                }
                let mut opts = EncryptMessageOptions::default();
                opts.cipher = cipher;
                let enc = smime::encrypt_message(
                    &msg,
                    &rs,
                    None,
                    &opts,
                    &mut rand_core::OsRng,
                    &limits(),
                )
                .unwrap();
                // OpenSSL parses our KEMRecipientInfo field by field as the RFC 9936 profile
                // we write: HKDF-SHA256, aes128-wrap for ML-KEM-512, aes256-wrap otherwise.
                let print = openssl_pq_print(&w, &enc);
                let (wrap, kek_len) = if *kem == MlKem::MlKem512 {
                    ("id-aes128-wrap", "kekLength: 16")
                } else {
                    ("id-aes256-wrap", "kekLength: 32")
                };
                for field in [
                    "d.kemri:",
                    "d.issuerAndSerialNumber:",
                    &format!("algorithm: {} ", u.alg),
                    "algorithm: HKDF-SHA256 ",
                    kek_len,
                    "ukm: <ABSENT>",
                    wrap,
                ] {
                    assert!(print.contains(field), "{what}: no {field:?} in\n{print}");
                }
                for (form, key) in &u.keys {
                    let got = openssl_pq_decrypt(&w, &enc, key, &u.cert);
                    assert_eq!(lf(&got), lf(&entity), "{what} key {form}");
                }
                if with_rsa {
                    let got = openssl_pq_decrypt(&w, &enc, &w.rsa.key, &w.rsa.cert);
                    assert_eq!(lf(&got), lf(&entity), "{what} rsa");
                }
                // A fresh ML-KEM key of the same set with the right certificate: OpenSSL
                // refuses too (implicit rejection gives a wrong KEK, the unwrap fails).
                let other = w.pki.path().join("other.key");
                run(openssl_pq_cmd(
                    &w.bin,
                    w.pki.path(),
                    &["genpkey", "-algorithm", &u.alg, "-out"],
                )
                .arg(&other));
                let f = w.pki.write("to-openssl.eml", &enc);
                let st = run_unchecked(
                    openssl_pq_cmd(&w.bin, w.pki.path(), &["cms", "-decrypt", "-binary"])
                        .arg("-in")
                        .arg(&f)
                        .arg("-inkey")
                        .arg(&other)
                        .arg("-recip")
                        .arg(&u.cert),
                );
                assert!(
                    !st.status.success(),
                    "{what}: openssl decrypted with another key"
                );
                assert!(find(&st.stdout, b"The figures").is_none());
            }
        }
    }
}

/// Streaming, both ways: our `MessageEncryptor` (BER with indefinite lengths, written as it
/// goes) to each ML-KEM certificate, decrypted by OpenSSL 3.6; OpenSSL's `-stream` output
/// (BER, chunked content) to them, decrypted by us. A body of a few hundred kilobytes so the
/// content spans many chunks.
#[test]
fn streamed_messages_both_ways() {
    use std::io::Write as _;
    let Some(w) = world() else { return };
    let mut msg = b"From: alice@example.com\r\nTo: pq@example.org\r\nSubject: Streamed\r\n\
        MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
        .to_vec();
    let body: Vec<u8> = (0..20_000u32)
        .flat_map(|i| format!("line {i}\r\n").into_bytes())
        .collect();
    msg.extend_from_slice(&body);
    let input = w.pki.write("stream-in.eml", &msg);
    for (kem, u) in &w.pq {
        let mut enc = smime::MessageEncryptor::new(
            Vec::new(),
            &[Recipient::new(load_cert(&u.cert))],
            &EncryptMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits(),
        )
        .unwrap();
        // In pieces that cut through lines and the header, as a mail server would hand them.
        for piece in msg.chunks(4093) {
            enc.write_all(piece).unwrap();
        }
        let sealed = enc.finish().unwrap();
        let got = openssl_pq_decrypt(&w, &sealed, u.key(), &u.cert);
        assert!(got.ends_with(&body), "{kem:?}: OpenSSL got another body");

        let out = w.pki.path().join("stream-out.eml");
        run(openssl_pq_cmd(
            &w.bin,
            w.pki.path(),
            &[
                "cms",
                "-encrypt",
                "-binary",
                "-stream",
                "-aes-256-cbc",
                "-in",
            ],
        )
        .arg(&input)
        .arg("-out")
        .arg(&out)
        .arg("-recip")
        .arg(&u.cert));
        let theirs = std::fs::read(&out).unwrap();
        let d = smime::decrypt_message(
            &theirs,
            &load_key(u.key()),
            Some(&load_cert(&u.cert)),
            None,
            &limits(),
        )
        .unwrap();
        assert!(d.message.ends_with(&body), "{kem:?}: we got another body");
    }
}

const DSA_SETS: [(MlDsa, &str); 3] = [
    (MlDsa::MlDsa44, "ML-DSA-44"),
    (MlDsa::MlDsa65, "ML-DSA-65"),
    (MlDsa::MlDsa87, "ML-DSA-87"),
];

/// The OpenSSL-made ML-DSA PKI: the ML-DSA-65 root, one user per parameter set.
struct DsaWorld {
    bin: PathBuf,
    pki: Pki,
    ca: PathBuf,
    users: Vec<(MlDsa, MlDsaUser)>,
}

fn dsa_world() -> Option<DsaWorld> {
    let bin = openssl_pq()?;
    let pki = Pki::new();
    let ca = pki.ml_dsa_ca(&bin);
    let users = DSA_SETS
        .iter()
        .map(|&(dsa, alg)| (dsa, pki.ml_dsa_user(&bin, alg)))
        .collect();
    Some(DsaWorld {
        bin,
        pki,
        ca,
        users,
    })
}

fn dsa_trust(w: &DsaWorld) -> smime::TrustStore {
    smime::TrustStore::new(vec![load_cert(&w.ca)])
}

/// Every ML-DSA key form OpenSSL 3.6 writes (genpkey's default `both`, `seed-only`,
/// `priv-only`) loads as the key of the OpenSSL-made certificate, each the RFC 9881 §6 CHOICE
/// arm it claims; so do the key as DER and as encrypted PKCS#8. The certificates' ML-DSA-65
/// signatures verify under the OpenSSL-made root (and the root's own), and not under a
/// different ML-DSA key.
#[test]
fn openssl_pq_ml_dsa_keys_and_certificates_load() {
    let Some(w) = dsa_world() else { return };
    let ca = load_cert(&w.ca);
    assert!(smime::cert::verify_certificate_signature(&ca, &ca).unwrap());
    for (dsa, u) in &w.users {
        let cert = load_cert(&u.cert);
        let PublicKey::MlDsa { dsa: got, key } = cert.public_key().unwrap() else {
            panic!("{}: not an ML-DSA certificate", u.cert.display())
        };
        assert_eq!(got, *dsa);
        assert_eq!(key.len(), dsa.public_key_len());
        assert!(smime::cert::verify_certificate_signature(&cert, &ca).unwrap());
        assert!(!smime::cert::verify_certificate_signature(&cert, &cert).unwrap_or(false));
        let chain = smime::cert::build_path(&cert, &[], &smime::TrustStore::new(vec![ca.clone()]));
        assert!(chain.status.is_ok(), "{dsa:?}: {:?}", chain.status);
        for (form, path) in &u.keys {
            let k = load_key(path);
            assert_eq!(k.ml_dsa(), Some(*dsa));
            assert!(k.matches(&cert), "{dsa:?} {form}");
        }
        let arms: Vec<(&str, u8)> = u
            .keys
            .iter()
            .map(|(form, path)| (form.as_str(), private_key_choice(path)))
            .collect();
        assert_eq!(
            arms,
            [("default", 0x30), ("seed-only", 0x80), ("priv-only", 0x04)],
            "{dsa:?}"
        );
        let d = w.pki.path();
        let der = d.join("dsa.der");
        let encrypted = d.join("dsa.enc.pem");
        run(
            openssl_pq_cmd(&w.bin, d, &["pkey", "-outform", "DER", "-out"])
                .arg(&der)
                .arg("-in")
                .arg(u.key()),
        );
        run(openssl_pq_cmd(
            &w.bin,
            d,
            &["pkey", "-aes-256-cbc", "-passout", "pass:pq-secret", "-out"],
        )
        .arg(&encrypted)
        .arg("-in")
        .arg(u.key()));
        assert!(load_key(&der).matches(&cert), "{dsa:?} DER");
        let pw = secrecy::SecretString::from("pq-secret");
        let k = smime::load_private_key(&std::fs::read(&encrypted).unwrap(), Some(&pw), &limits())
            .unwrap();
        assert!(k.matches(&cert), "{dsa:?} encrypted");
    }
}

/// `openssl cms -sign` (3.6) with each ML-DSA key, detached and opaque (`-nodetach`), with
/// `-md sha512` and with the smallest digest RFC 9882 §3.3 lists for the parameter set
/// (OpenSSL 3.6 has no default digest for ML-DSA: without `-md` it fails with "no default
/// digest"): we verify each through the ML-DSA root,
/// the signer is the OpenSSL-made certificate, the signed entity is the one OpenSSL got. A
/// changed byte of the signed body fails.
#[test]
fn openssl_pq_signs_with_ml_dsa_we_verify() {
    let Some(w) = dsa_world() else { return };
    let trust = dsa_trust(&w);
    let msg = sample_message("alice@example.com", "bob@example.org");
    let entity = mime::split_for_protection(&msg, &limits()).unwrap().1;
    let input = w.pki.write("dsa-entity.eml", &entity);
    for (dsa, u) in &w.users {
        let cert = load_cert(&u.cert);
        for opaque in [false, true] {
            let smallest = match dsa {
                MlDsa::MlDsa44 => ("sha256", smime::DigestAlgorithm::Sha256),
                MlDsa::MlDsa65 => ("sha384", smime::DigestAlgorithm::Sha384),
                _ => ("sha512", smime::DigestAlgorithm::Sha512),
            };
            for (md, digest) in [("sha512", smime::DigestAlgorithm::Sha512), smallest] {
                let what = format!("{dsa:?} opaque={opaque} md={md}");
                let out = w.pki.path().join("dsa-signed.eml");
                let mut cmd = openssl_pq_cmd(&w.bin, w.pki.path(), &["cms", "-sign", "-binary"]);
                cmd.args(["-md", md]);
                if opaque {
                    cmd.arg("-nodetach");
                }
                run(cmd
                    .arg("-in")
                    .arg(&input)
                    .arg("-signer")
                    .arg(&u.cert)
                    .arg("-inkey")
                    .arg(u.key())
                    .args(["-from", &u.email, "-to", "bob@example.org"])
                    .arg("-out")
                    .arg(&out));
                let signed = std::fs::read(&out).unwrap();
                let v = smime::verify_message(&signed, &trust, None, &limits())
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(
                    v.verification.is_valid(),
                    "{what}: {:#?}",
                    v.verification.signers
                );
                let s = &v.verification.signers[0];
                assert_eq!(s.certificate.as_ref(), Some(&cert), "{what}");
                assert_eq!(s.digest, digest, "{what}");
                assert_eq!(v.opaque, opaque, "{what}");
                assert!(
                    find(&v.message, "The figures are attached.".as_bytes()).is_some(),
                    "{what}"
                );
                if !opaque {
                    let mut bad = signed.clone();
                    let pos = find(&bad, b"The figures are attached").unwrap();
                    bad[pos + 4] ^= 0x01;
                    let v = smime::verify_message(&bad, &trust, None, &limits()).unwrap();
                    assert!(!v.verification.is_valid(), "{what}: tampered accepted");
                }
            }
        }
    }
}

/// We sign with the OpenSSL-made ML-DSA keys (every form), detached and opaque, and with a
/// key and certificate of our own issued by an ML-DSA CA of our own: `openssl cms -verify`
/// (3.6) accepts each and returns the entity; a changed byte is refused by OpenSSL.
#[test]
fn we_sign_with_ml_dsa_openssl_pq_verifies() {
    let Some(w) = dsa_world() else { return };
    let msg = sample_message("alice@example.com", "bob@example.org");
    let d = w.pki.path();
    let mut signers: Vec<(String, smime::Identity, PathBuf)> = Vec::new();
    for (dsa, u) in &w.users {
        for (form, path) in &u.keys {
            let id = smime::Identity::from_files(
                &std::fs::read(path).unwrap(),
                &std::fs::read(&u.cert).unwrap(),
                None,
                None,
                &limits(),
            )
            .unwrap();
            signers.push((format!("{dsa:?} {form}"), id, w.ca.clone()));
        }
    }
    // our own ML-DSA-87 CA and ML-DSA-44 user (issue.rs): OpenSSL checks our certificate
    // signatures as well
    let rng = &mut rand_core::OsRng;
    let ca_key = PrivateKey::generate(smime::KeyKind::MlDsa(MlDsa::MlDsa87)).unwrap();
    let ca = smime::issue::self_signed(&ca_key, &smime::CertificateParams::ca("Our PQ CA"), rng)
        .unwrap();
    let key = PrivateKey::generate(smime::KeyKind::MlDsa(MlDsa::MlDsa44)).unwrap();
    let params = smime::CertificateParams::user("Alice", "alice@example.com");
    let cert = smime::issue::issue(key.public_key(), &params, &ca, &ca_key, rng).unwrap();
    let ca_path = w.pki.write("our-mldsa-ca.pem", pem_cert(&ca).as_bytes());
    // OpenSSL reads the keys we export (seed form for ours, expandedKey for a key that came
    // without its seed) as the same key: its public key is our certificate's.
    let priv_only = &w.users[0].1.keys[2];
    assert_eq!(priv_only.0, "priv-only");
    for (what, k, c) in [
        ("ours", &key, cert.clone()),
        (
            "priv-only",
            &load_key(&priv_only.1),
            load_cert(&w.users[0].1.cert),
        ),
    ] {
        let f = w.pki.write("exported.der", &k.to_pkcs8_der().unwrap());
        let out = run(openssl_pq_cmd(
            &w.bin,
            d,
            &[
                "pkey", "-inform", "DER", "-pubout", "-outform", "DER", "-in",
            ],
        )
        .arg(&f));
        let PublicKey::MlDsa { key: raw, .. } = c.public_key().unwrap() else {
            panic!("{what}: not ML-DSA")
        };
        // SPKI = SEQUENCE { AlgorithmIdentifier (13 bytes), BIT STRING { 0, key } }: 22 bytes
        // of header for these sizes.
        assert!(
            out.stdout.ends_with(&raw),
            "{what}: OpenSSL read another key"
        );
        assert_eq!(out.stdout.len(), raw.len() + 22, "{what}");
    }
    signers.push((
        "ours".into(),
        smime::Identity::new(key, cert, vec![]).unwrap(),
        ca_path,
    ));
    for (what, id, ca) in &signers {
        for opaque in [false, true] {
            let what = format!("{what} opaque={opaque}");
            let mut opts = smime::SignMessageOptions::default();
            opts.opaque = opaque;
            let signed = smime::sign_message(&msg, id, &opts, rng, &limits()).unwrap();
            let f = w.pki.write("dsa-ours.eml", &signed);
            let out = d.join("dsa-ours.out");
            run(openssl_pq_cmd(
                &w.bin,
                d,
                &["cms", "-verify", "-purpose", "smimesign", "-CAfile"],
            )
            .arg(ca)
            .arg("-in")
            .arg(&f)
            .arg("-out")
            .arg(&out));
            let got = std::fs::read(&out).unwrap();
            assert!(
                find(&got, b"The figures are attached.").is_some(),
                "{what}: {}",
                String::from_utf8_lossy(&got)
            );
            let mut tampered = signed.clone();
            if opaque {
                let body = find(&tampered, b"\r\n\r\n").unwrap() + 200;
                tampered[body] = if tampered[body] == b'A' { b'B' } else { b'A' };
            } else {
                let pos = find(&signed, b"The figures are attached").unwrap();
                tampered[pos + 4] ^= 0x01;
            }
            let f = w.pki.write("dsa-tampered.eml", &tampered);
            let st = run_unchecked(
                openssl_pq_cmd(&w.bin, d, &["cms", "-verify", "-CAfile"])
                    .arg(ca)
                    .arg("-in")
                    .arg(&f),
            );
            assert!(
                !st.status.success(),
                "{what}: openssl accepted a tampered message"
            );
        }
    }
}

fn pem_cert(c: &Certificate) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(c.der());
    let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(line).unwrap());
        s.push('\n');
    }
    s.push_str("-----END CERTIFICATE-----\n");
    s
}
