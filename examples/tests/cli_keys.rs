//! End-to-end tests of `sealgate keys`: imports of what openssl and gpg write (PKCS#12 default
//! and -legacy, PEM bundles, DER, `gpg --export` / `--export-secret-keys`), lookup among
//! expired, revoked (CRL from `openssl ca -gencrl`), wrong-EKU, wrong-key-usage and
//! wrong-address certificates with every rejection explained, `export-p12` read back by
//! `openssl pkcs12`, `expiring`, the exit codes, and that no private key byte is in the file.
//!
//! Without openssl or gpg the tests skip with a notice, except under `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use sealgate::Limits;
use sealgate::smime::{self, Certificate, CertificateParams, issue};
use sealgate_tests::{
    CrlVersion, Gpg, GpgAlgo, KeyType, P12_PASSWORD, Pki, User, openssl, require, run,
    run_unchecked,
};

const BIN: &str = env!("CARGO_BIN_EXE_sealgate");
const STORE_PASS: &str = "store passphrase for tests";

fn keys(store: &Path, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    run_unchecked(
        Command::new(BIN)
            .arg("keys")
            .arg("--store")
            .arg(store)
            .args(args.iter().map(|a| a.as_ref()))
            .env("SEALGATE_STORE_PASSPHRASE", STORE_PASS)
            .env("P12PW", P12_PASSWORD)
            .env("EXPORTPW", "export password"),
    )
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn id_of(pem: &Path) -> String {
    let c = Certificate::load(&std::fs::read(pem).unwrap(), &Limits::default()).unwrap();
    c.fingerprint_sha256().to_ascii_lowercase()
}

/// The JSON parses (python3's json module is the independent reader).
fn assert_json(s: &str) {
    let mut child = Command::new("python3")
        .args(["-c", "import json,sys; json.load(sys.stdin)"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "not JSON: {s}");
}

/// A certificate for `email` issued by the PKI's intermediate with the given validity (openssl
/// 3.0 `x509 -req` cannot backdate, so this one is issued in-process with the same CA key).
fn issue_with_validity(
    pki: &Pki,
    name: &str,
    email: &str,
    nb: SystemTime,
    na: SystemTime,
) -> PathBuf {
    let l = Limits::default();
    let int = Certificate::load(&std::fs::read(&pki.intermediate).unwrap(), &l).unwrap();
    let int_key = smime::load_private_key(
        &std::fs::read(pki.path().join("int.key")).unwrap(),
        None,
        &l,
    )
    .unwrap();
    let key = smime::PrivateKey::generate(smime::KeyKind::Rsa(2048)).unwrap();
    let mut p = CertificateParams::user(name, email);
    p.not_before = nb;
    p.not_after = na;
    let c = issue::issue(key.public_key(), &p, &int, &int_key, &mut rand_core::OsRng).unwrap();
    pki.write(
        &format!("{name}.pem"),
        smime::pem::encode("CERTIFICATE", c.der()).as_bytes(),
    )
}

struct World {
    pki: Pki,
    store: PathBuf,
    good: User,
    revoked: User,
    wrong_eku: User,
    wrong_ku: User,
    wrong_case: User,
    expired: PathBuf,
}

fn world() -> World {
    let pki = Pki::new();
    let good = pki.user("good", "alice@example.com", KeyType::Rsa2048);
    let revoked = pki.user("revoked", "alice@example.com", KeyType::Rsa2048);
    let wrong_eku = pki.user_with(
        "wrongeku",
        "alice@example.com",
        KeyType::Rsa2048,
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth",
    );
    let wrong_ku = pki.user_with(
        "wrongku",
        "alice@example.com",
        KeyType::Rsa2048,
        "keyUsage=digitalSignature\nextendedKeyUsage=emailProtection",
    );
    let wrong_case = pki.user("wrongcase", "Alice@example.com", KeyType::P256);
    let now = SystemTime::now();
    let expired = issue_with_validity(
        &pki,
        "expired",
        "alice@example.com",
        now - Duration::from_secs(400 * 86400),
        now - Duration::from_secs(35 * 86400),
    );
    let store = pki.path().join("store.db");
    World {
        pki,
        store,
        good,
        revoked,
        wrong_eku,
        wrong_ku,
        wrong_case,
        expired,
    }
}

#[test]
fn lookup_picks_the_valid_certificate_and_explains_every_rejection() {
    if !require("openssl") || !require("python3") {
        return;
    }
    let w = world();
    let s = &w.store;
    ok(&keys(s, &[&"import", &w.pki.root, &"--trust"]));
    let out = ok(&keys(
        s,
        &[
            &"import",
            &w.pki.intermediate,
            &w.good.cert,
            &w.revoked.cert,
            &w.wrong_eku.cert,
            &w.wrong_ku.cert,
            &w.wrong_case.cert,
            &w.expired,
        ],
    ));
    assert!(out.contains("imported 7 certificate(s)"), "{out}");
    let crl = w.pki.crl("r", &[&w.revoked], CrlVersion::V2);
    ok(&keys(s, &[&"crl", &"import", &crl]));

    let o = keys(s, &[&"lookup", &"alice@example.com", &"--smime"]);
    let text = ok(&o);
    let line = |id: &str| {
        text.lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id} not in\n{text}"))
            .to_string()
    };
    assert!(line(&id_of(&w.good.cert)).contains("selected"), "{text}");
    assert!(line(&id_of(&w.revoked.cert)).contains("revoked:"), "{text}");
    assert!(
        line(&id_of(&w.wrong_eku.cert)).contains("wrong extended key usage"),
        "{text}"
    );
    assert!(
        line(&id_of(&w.wrong_ku.cert)).contains("wrong key usage"),
        "{text}"
    );
    assert!(
        line(&id_of(&w.wrong_case.cert)).contains("wrong address"),
        "{text}"
    );
    assert!(line(&id_of(&w.expired)).contains("expired"), "{text}");

    let o = keys(s, &[&"lookup", &"alice@example.com", &"--smime", &"--json"]);
    let json = ok(&o);
    assert_json(&json);
    assert!(
        json.contains(&format!("\"selected\":\"{}\"", id_of(&w.good.cert))),
        "{json}"
    );
    for (who, code) in [
        (&w.revoked.cert, "revoked"),
        (&w.wrong_eku.cert, "extended-key-usage"),
        (&w.wrong_ku.cert, "key-usage"),
        (&w.wrong_case.cert, "wrong-address"),
        (&w.expired, "expired"),
    ] {
        let entry = format!("{{\"sha256\":\"{}\"", id_of(who));
        let at = json
            .find(&entry)
            .unwrap_or_else(|| panic!("{entry} in {json}"));
        let rest = &json[at..];
        let end = rest.find('}').unwrap();
        assert!(
            rest[..end].contains(&format!("\"code\":\"{code}\"")),
            "{code}: {}",
            &rest[..end]
        );
    }
    assert!(
        json.contains("\"addresses\":[\"alice@example.com\"]"),
        "{json}"
    );
}

#[test]
fn lookup_with_nothing_usable_exits_1_with_the_reasons() {
    if !require("openssl") {
        return;
    }
    let w = world();
    let s = &w.store;
    ok(&keys(s, &[&"import", &w.pki.ca_bundle, &"--trust"]));
    ok(&keys(s, &[&"import", &w.expired, &w.wrong_eku.cert]));
    let o = keys(s, &[&"lookup", &"alice@example.com"]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("expired"), "{text}");
    assert!(text.contains("wrong extended key usage"), "{text}");
    assert!(text.contains("none usable"), "{text}");
    // An address nobody has: exit 1 too.
    let o = keys(s, &[&"lookup", &"nobody@example.com", &"--smime"]);
    assert_eq!(o.status.code(), Some(1));
    // Usage errors and a broken store give 2 and one line.
    let bad = w.pki.write(
        "junk.db",
        b"this is not a database, just bytes long enough to matter",
    );
    let o = keys(&bad, &[&"list"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&o.stderr).lines().count(), 1);
}

#[test]
fn imports_pkcs12_default_and_legacy_pem_bundles_and_der() {
    if !require("openssl") {
        return;
    }
    let w = world();
    let d = w.pki.path();
    let s = &w.store;
    // -legacy: RC2-40/3DES and a SHA-1 MAC, as older tools write it.
    let legacy = d.join("legacy.p12");
    let bob = w.pki.user("bob", "bob@example.org", KeyType::P256);
    run(&mut openssl(&[
        "pkcs12",
        "-export",
        "-legacy",
        "-inkey",
        &bob.key.display().to_string(),
        "-in",
        &bob.cert.display().to_string(),
        "-certfile",
        &w.pki.intermediate.display().to_string(),
        "-passout",
        &format!("pass:{P12_PASSWORD}"),
        "-out",
        &legacy.display().to_string(),
    ]));
    let der = d.join("root.der");
    run(&mut openssl(&[
        "x509",
        "-in",
        &w.pki.root.display().to_string(),
        "-outform",
        "DER",
        "-out",
        &der.display().to_string(),
    ]));
    // Wrong password: exit 2, the file is named, nothing is stored.
    let o = keys(s, &[&"import", &w.good.p12, &"--password-env", &"EXPORTPW"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("good.p12"), "{err}");
    assert!(ok(&keys(s, &[&"list"])).trim().is_empty());

    ok(&keys(s, &[&"import", &der, &"--trust"]));
    let out = ok(&keys(
        s,
        &[
            &"import",
            &w.pki.ca_bundle,
            &w.good.p12,
            &legacy,
            &"--password-env",
            &"P12PW",
        ],
    ));
    // bundle: 2, each p12: cert + intermediate
    assert!(
        out.contains("imported 6 certificate(s), 2 private key(s)"),
        "{out}"
    );
    let list = ok(&keys(s, &[&"list", &"--json"]));
    assert_json(&list);
    let entry = |id: &str| {
        let at = list
            .find(&format!("\"sha256\":\"{id}\""))
            .unwrap_or_else(|| panic!("{id}: {list}"));
        list[at..at + list[at..].find('}').unwrap()].to_string()
    };
    assert!(entry(&id_of(&w.good.cert)).contains("\"has_key\":true"));
    assert!(entry(&id_of(&bob.cert)).contains("\"has_key\":true"));
    assert!(entry(&id_of(&w.pki.root)).contains("\"trust\":\"anchor\""));
    assert!(entry(&id_of(&w.pki.intermediate)).contains("\"ca\":true"));
    // The root came twice (DER, then in the bundle) and is listed once.
    assert_eq!(list.matches(&id_of(&w.pki.root)).count(), 1);
    // The imported keys make lookups and signing identities work.
    ok(&keys(s, &[&"lookup", &"bob@example.org", &"--smime"]));

    // No private key byte in the database file (or its WAL).
    let mut bytes = std::fs::read(s).unwrap();
    if let Ok(wal) = std::fs::read(format!("{}-wal", s.display())) {
        bytes.extend(wal);
    }
    for key in [&w.good.key, &bob.key] {
        let pem = std::fs::read(key).unwrap();
        let block = &smime::pem::parse_all(&pem, 4).unwrap()[0];
        let der = &block.der;
        // a window from the private half (RSA: inside d/p/q; EC: the scalar region)
        let mid = der.len() / 2;
        let window = if der.len() > 200 {
            &der[mid..mid + 32]
        } else {
            &der[36..36 + 32]
        };
        assert!(
            !bytes.windows(window.len()).any(|x| x == window),
            "private key bytes of {} found in the store",
            key.display()
        );
    }
    let cert_der =
        Certificate::load(&std::fs::read(&w.good.cert).unwrap(), &Limits::default()).unwrap();
    assert!(
        bytes
            .windows(cert_der.der().len())
            .any(|x| x == cert_der.der()),
        "sanity: the certificate is stored in clear"
    );
}

#[test]
fn export_p12_is_read_by_openssl() {
    if !require("openssl") {
        return;
    }
    let w = world();
    let s = &w.store;
    ok(&keys(s, &[&"import", &w.pki.root, &"--trust"]));
    ok(&keys(
        s,
        &[&"import", &w.good.p12, &"--password-env", &"P12PW"],
    ));
    let out = w.pki.path().join("backup.p12");
    let o = ok(&keys(
        s,
        &[
            &"export-p12",
            &"alice@example.com",
            &"--out",
            &out,
            &"--password-env",
            &"EXPORTPW",
        ],
    ));
    assert!(o.contains("2 chain certificate(s)"), "{o}");
    let info = run(openssl(&[
        "pkcs12",
        "-info",
        "-nodes",
        "-passin",
        "env:EXPORTPW",
        "-in",
    ])
    .arg(&out)
    .env("EXPORTPW", "export password"));
    let text =
        String::from_utf8_lossy(&info.stdout).into_owned() + &String::from_utf8_lossy(&info.stderr);
    assert!(
        text.contains("CN = good") || text.contains("CN=good"),
        "{text}"
    );
    assert!(
        text.contains("PBKDF2") && text.contains("AES-256-CBC"),
        "{text}"
    );
    assert!(text.contains("BEGIN PRIVATE KEY"), "{text}");
    // the key in the export is the original key
    let orig = run(openssl(&["pkey", "-pubout", "-in"]).arg(&w.good.key));
    let exported = run(openssl(&[
        "pkcs12",
        "-nocerts",
        "-nodes",
        "-passin",
        "env:EXPORTPW",
        "-in",
    ])
    .arg(&out)
    .env("EXPORTPW", "export password"));
    let key_file = w.pki.write("exported.key", &exported.stdout);
    let back = run(openssl(&["pkey", "-pubout", "-in"]).arg(&key_file));
    assert_eq!(orig.stdout, back.stdout);
    // Legacy 3DES: readable by openssl -legacy.
    let legacy = w.pki.path().join("backup-legacy.p12");
    ok(&keys(
        s,
        &[
            &"export-p12",
            &"alice@example.com",
            &"--out",
            &legacy,
            &"--password-env",
            &"EXPORTPW",
            &"--legacy",
        ],
    ));
    let info = run(openssl(&[
        "pkcs12",
        "-legacy",
        "-info",
        "-nodes",
        "-passin",
        "env:EXPORTPW",
        "-in",
    ])
    .arg(&legacy)
    .env("EXPORTPW", "export password"));
    let text = String::from_utf8_lossy(&info.stderr);
    assert!(
        text.contains("3DES") || text.contains("TripleDES"),
        "{text}"
    );
    // Without the store passphrase the key cannot be exported.
    let o = run_unchecked(
        Command::new(BIN)
            .args(["keys", "--store"])
            .arg(s)
            .args(["export-p12", "alice@example.com", "--out"])
            .arg(w.pki.path().join("x.p12"))
            .args(["--password-env", "EXPORTPW"])
            .env("EXPORTPW", "x")
            .env_remove("SEALGATE_STORE_PASSPHRASE"),
    );
    assert_eq!(o.status.code(), Some(2));
    let o = run_unchecked(
        Command::new(BIN)
            .args(["keys", "--store"])
            .arg(s)
            .arg("list")
            .env("SEALGATE_STORE_PASSPHRASE", "wrong"),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("wrong store passphrase"));
}

#[test]
fn imports_gpg_exports_public_and_secret() {
    if !require("gpg") {
        return;
    }
    let gpg = Gpg::new();
    let carol = gpg.gen_key("Carol", "carol@example.org", GpgAlgo::Ed25519);
    let dave = gpg.gen_key("Dave", "dave@example.org", GpgAlgo::Rsa3072);
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store.db");
    // binary --export of Dave, armored --export-secret-keys of Carol
    let dave_bin = dir.path().join("dave.gpg");
    let o = run(&mut gpg.cmd(&["--export", &dave.fingerprint]));
    std::fs::write(&dave_bin, &o.stdout).unwrap();
    let carol_sec_bin = dir.path().join("carol-secret.gpg");
    let o = run(&mut gpg.cmd(&["--export-secret-keys", &carol.fingerprint]));
    std::fs::write(&carol_sec_bin, &o.stdout).unwrap();
    let out = ok(&keys(
        &s,
        &[
            &"import",
            &dave_bin,
            &carol.secret,
            &carol_sec_bin,
            &carol.public,
        ],
    ));
    assert!(out.contains("4 OpenPGP certificate(s)"), "{out}");
    assert!(out.contains("3 new, 3 merged"), "{out}");
    let o = ok(&keys(
        &s,
        &[&"lookup", &"dave@example.org", &"--pgp", &"--json"],
    ));
    assert!(
        o.contains(&format!("\"selected\":\"{}\"", dave.fingerprint)),
        "{o}"
    );
    let list = ok(&keys(&s, &[&"list", &"--json"]));
    let at = list.find(&carol.fingerprint).unwrap();
    assert!(
        list[at..]
            .split('}')
            .next()
            .unwrap()
            .contains("\"has_secret\":true"),
        "{list}"
    );
    // The Ed25519 secret scalar does not appear in the file: check the whole secret export.
    let secret = std::fs::read(&carol_sec_bin).unwrap();
    let db = std::fs::read(&s).unwrap();
    let window = &secret[secret.len() / 2..secret.len() / 2 + 24];
    assert!(!db.windows(window.len()).any(|x| x == window));
    let o = keys(&s, &[&"lookup", &"erin@example.org", &"--pgp"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn expiring_lists_the_window() {
    if !require("openssl") {
        return;
    }
    let pki = Pki::new();
    let now = SystemTime::now();
    let soon = issue_with_validity(
        &pki,
        "soon",
        "s@example.com",
        now - Duration::from_secs(86400),
        now + Duration::from_secs(10 * 86400),
    );
    let later = issue_with_validity(
        &pki,
        "later",
        "l@example.com",
        now - Duration::from_secs(86400),
        now + Duration::from_secs(100 * 86400),
    );
    let s = pki.path().join("store.db");
    ok(&keys(&s, &[&"import", &soon, &later]));
    let out = ok(&keys(&s, &[&"expiring", &"--days", &"30"]));
    assert!(out.contains(&id_of(&soon)), "{out}");
    assert!(!out.contains(&id_of(&later)), "{out}");
    let out = ok(&keys(&s, &[&"expiring", &"--days", &"365"]));
    assert_eq!(out.lines().count(), 2, "{out}");
}

/// Crash safety: `sealgate keys import DIR` of 3000 certificates (one transaction) is killed
/// with SIGKILL at delays that close in on the moment it commits (bisection: "nothing stored"
/// moves the next kill later, "all stored" earlier), so that several kills land while the
/// transaction is being written. After every kill the store must pass SQLite's integrity check
/// and hold all 3000 or none.
#[test]
fn killed_mid_import_leaves_all_or_nothing() {
    use sealgate::keystore::{KeyStore, SqliteStore};
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let ca_key = smime::PrivateKey::generate(smime::KeyKind::Ec(smime::Curve::P256)).unwrap();
    let ca = issue::self_signed(
        &ca_key,
        &CertificateParams::ca("Crash CA"),
        &mut rand_core::OsRng,
    )
    .unwrap();
    let leaf = smime::PrivateKey::generate(smime::KeyKind::Ec(smime::Curve::P256)).unwrap();
    const N: usize = 3000;
    for i in 0..N {
        let p = CertificateParams::user(&format!("u{i}"), &format!("u{i}@example.com"));
        let c = issue::issue(leaf.public_key(), &p, &ca, &ca_key, &mut rand_core::OsRng).unwrap();
        std::fs::write(
            certs.join(format!("{i:05}.pem")),
            smime::pem::encode("CERTIFICATE", c.der()),
        )
        .unwrap();
    }
    let import = |store: &Path| {
        Command::new(BIN)
            .args(["keys", "--store"])
            .arg(store)
            .arg("import")
            .arg(&certs)
            .env("SEALGATE_STORE_PASSPHRASE", STORE_PASS)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // A full run, timed, to know the range to search.
    let calib = dir.path().join("calib.db");
    // The store is created first so that the killed runs do not measure its creation.
    ok(&keys(&calib, &[&"list"]));
    let t0 = std::time::Instant::now();
    assert!(import(&calib).wait().unwrap().success());
    let full = t0.elapsed();
    assert_eq!(
        SqliteStore::open(&calib)
            .unwrap()
            .certificates()
            .unwrap()
            .len(),
        N
    );

    let (mut lo, mut hi) = (Duration::ZERO, full + full / 4);
    let (mut none, mut all, mut mid_write) = (0, 0, 0);
    for round in 0..16 {
        let store = dir.path().join(format!("crash{round}.db"));
        ok(&keys(&store, &[&"list"]));
        let delay = (lo + hi) / 2;
        let mut child = import(&store);
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL on Unix
        let _ = child.wait();
        let wal = std::fs::metadata(format!("{}-wal", store.display()))
            .map(|m| m.len())
            .unwrap_or(0);
        let s = SqliteStore::open(&store).unwrap();
        s.integrity_check().unwrap();
        let n = s.certificates().unwrap().len();
        assert!(
            n == 0 || n == N,
            "round {round}: {n} of {N} certificates after kill -9 at {delay:?}"
        );
        if n == 0 {
            none += 1;
            lo = delay;
            // WAL frames written but no commit: the kill hit the transaction itself.
            if wal > 0 {
                mid_write += 1;
            }
        } else {
            all += 1;
            hi = delay;
        }
    }
    eprintln!(
        "kill -9 rounds: {none} nothing, {all} everything, {mid_write} while the transaction was being written (full import {full:?}, commit point ~{lo:?}..{hi:?})"
    );
    assert!(none > 0 && all > 0, "the kills never straddled the commit");
}
