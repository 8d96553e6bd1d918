//! Certificate lifecycle against the real tools: CRLs made by `openssl ca -gencrl` (and
//! cross-checked with `openssl verify -crl_check`), PKCS#12 export read by `openssl pkcs12` and
//! imported by `gpgsm`, validation levels from certificates issued by openssl and by us.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use sealgate::Limits;
use sealgate::smime::crl::{Crl, RevocationStatus};
use sealgate::smime::pkcs12::{self, Pkcs12Format};
use sealgate::smime::validation::{Generation, ValidationLevel, ValidationType};
use sealgate::smime::{self, Certificate, CertificateParams, Identity, KeyKind, PrivateKey};
use sealgate_tests::{
    CrlVersion, Gpgsm, KeyType, P12_PASSWORD, Pki, User, openssl, require, run, run_unchecked,
};
use secrecy::SecretString;

fn limits() -> Limits {
    Limits::default()
}

fn cert(path: &std::path::Path) -> Certificate {
    Certificate::load(&std::fs::read(path).unwrap(), &limits()).unwrap()
}

fn load_crl(path: &std::path::Path) -> Crl {
    Crl::load(&std::fs::read(path).unwrap(), &limits()).unwrap()
}

/// `openssl verify -crl_check` on `user` with `crl`: true if openssl accepts the certificate.
fn openssl_accepts(pki: &Pki, user: &User, crl: &std::path::Path) -> bool {
    let out = run_unchecked(
        openssl(&["verify", "-crl_check", "-CAfile"])
            .arg(&pki.root)
            .arg("-untrusted")
            .arg(&pki.intermediate)
            .arg("-CRLfile")
            .arg(crl)
            .arg(&user.cert),
    );
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        assert!(
            text.contains("revoked"),
            "unexpected openssl verify failure: {text}"
        );
    }
    out.status.success()
}

#[test]
fn openssl_crl_revokes_one_certificate_not_the_other() {
    if !require("openssl") {
        return;
    }
    let pki = Pki::new();
    let alice = pki.user("alice", "alice@example.com", KeyType::Rsa2048);
    let bob = pki.user("bob", "bob@example.com", KeyType::P256);
    let path = pki.crl("v2", &[&alice], CrlVersion::V2);
    let crl = load_crl(&path);
    let int = cert(&pki.intermediate);
    assert!(crl.verify_signature(&int).unwrap());
    assert_eq!(crl.issuer(), int.subject());
    assert_eq!(crl.len(), 1);

    // the answer openssl gives, and ours
    assert!(!openssl_accepts(&pki, &alice, &path));
    assert!(openssl_accepts(&pki, &bob, &path));
    let (a, b) = (cert(&alice.cert), cert(&bob.cert));
    assert!(crl.is_revoked(&a));
    assert!(!crl.is_revoked(&b));
    match crl.status(&a) {
        RevocationStatus::Revoked(e) => {
            assert_eq!(e.reason, Some(smime::crl::RevocationReason::KeyCompromise));
            let age = SystemTime::now().duration_since(e.revocation_date).unwrap();
            assert!(age < Duration::from_secs(600), "{age:?}");
        }
        other => panic!("alice: {other:?}"),
    }
    assert_eq!(crl.status(&b), RevocationStatus::NotRevoked);
    // the root did not issue alice: its CRL would not cover her; nor did it sign this CRL
    assert!(matches!(
        crl.status(&cert(&pki.intermediate)),
        RevocationStatus::NotCovered(_)
    ));
    assert!(matches!(
        crl.verify_signature(&cert(&pki.root)),
        Err(smime::Error::UnusableCertificate { .. })
    ));

    // openssl ca wrote crlnumber 1000 (hex) and default_crl_days 30
    assert_eq!(crl.crl_number(), Some(&[0x10, 0x00][..]));
    let now = SystemTime::now();
    let this = crl.this_update();
    assert!(now.duration_since(this).unwrap() < Duration::from_secs(600));
    let next = crl.next_update().unwrap();
    let days = next.duration_since(this).unwrap().as_secs() / 86400;
    assert_eq!(days, 30);
    assert!(!crl.is_stale(now));
    assert!(crl.is_stale(now + Duration::from_secs(31 * 86400)));

    // DER as well as PEM
    let der = run(openssl(&["crl", "-outform", "DER", "-in"]).arg(&path)).stdout;
    let from_der = Crl::load(&der, &limits()).unwrap();
    assert_eq!(from_der.der(), crl.der());
}

#[test]
fn openssl_v1_crl_without_extensions() {
    if !require("openssl") {
        return;
    }
    let pki = Pki::new();
    let alice = pki.user("alice", "alice@example.com", KeyType::Rsa2048);
    let bob = pki.user("bob", "bob@example.com", KeyType::Rsa2048);
    let path = pki.crl("v1", &[&bob], CrlVersion::V1);
    let text = run(openssl(&["crl", "-noout", "-text", "-in"]).arg(&path)).stdout;
    assert!(
        String::from_utf8_lossy(&text).contains("Version 1"),
        "not a v1 CRL"
    );
    let crl = load_crl(&path);
    assert!(crl.verify_signature(&cert(&pki.intermediate)).unwrap());
    assert!(crl.is_revoked(&cert(&bob.cert)));
    assert!(!crl.is_revoked(&cert(&alice.cert)));
    assert_eq!(crl.crl_number(), None);
    assert!(!openssl_accepts(&pki, &bob, &path));
}

#[test]
fn tampered_or_foreign_crl_does_not_verify() {
    if !require("openssl") {
        return;
    }
    let pki = Pki::new();
    let alice = pki.user("alice", "alice@example.com", KeyType::Rsa2048);
    let int = cert(&pki.intermediate);
    let path = pki.crl("t", &[&alice], CrlVersion::V2);
    let der = run(openssl(&["crl", "-outform", "DER", "-in"]).arg(&path)).stdout;
    let a = cert(&alice.cert);

    // a flipped bit in alice's serial: the CRL still parses, no longer lists her, and its
    // signature no longer verifies, so a store must not import it
    let serial = a
        .x509()
        .tbs_certificate()
        .serial_number()
        .as_bytes()
        .to_vec();
    let pos = der
        .windows(serial.len())
        .position(|w| w == serial.as_slice())
        .unwrap();
    let mut tampered = der.clone();
    tampered[pos + serial.len() - 1] ^= 0x01;
    let t = Crl::load(&tampered, &limits()).unwrap();
    assert!(!t.is_revoked(&a));
    assert!(!t.verify_signature(&int).unwrap());
    let tpath = pki.write("tampered.crl.der", &tampered);
    let out = run_unchecked(
        openssl(&["crl", "-inform", "DER", "-noout", "-CAfile"])
            .arg(&pki.intermediate)
            .arg("-in")
            .arg(&tpath),
    );
    assert!(
        !out.status.success() || String::from_utf8_lossy(&out.stderr).contains("failure"),
        "openssl accepted the tampered CRL"
    );

    // a flipped bit in the signature
    let mut bad_sig = der.clone();
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 0x80;
    assert!(
        !Crl::load(&bad_sig, &limits())
            .unwrap()
            .verify_signature(&int)
            .unwrap()
    );

    // same issuer name, another CA key (a second PKI names its intermediate alike)
    let other = Pki::new();
    let forged = load_crl(&other.crl("f", &[], CrlVersion::V2));
    assert_eq!(forged.issuer(), int.subject());
    assert!(!forged.verify_signature(&int).unwrap());

    // truncations never panic
    for cut in (0..der.len()).step_by(7) {
        assert!(Crl::load(&der[..cut], &limits()).is_err());
    }
}

fn identity_of(u: &User) -> Identity {
    Identity::from_pkcs12(
        &std::fs::read(&u.p12).unwrap(),
        &SecretString::from(P12_PASSWORD),
        &limits(),
    )
    .unwrap()
}

/// The public key of a PEM file holding a key or certificate, as openssl prints it.
fn openssl_pubkey(args: &[&str], input: &[u8], dir: &std::path::Path, name: &str) -> Vec<u8> {
    let p = dir.join(name);
    std::fs::write(&p, input).unwrap();
    run(openssl(args).arg(&p)).stdout
}

#[test]
fn exported_pkcs12_is_read_by_openssl() {
    if !require("openssl") {
        return;
    }
    let pki = Pki::new();
    let pw = "export pässword 1";
    for (i, kt) in [KeyType::Rsa2048, KeyType::P256].into_iter().enumerate() {
        let user = pki.user(&format!("u{i}"), &format!("u{i}@example.com"), kt);
        let id = identity_of(&user);
        assert_eq!(id.chain.len(), 1, "openssl put the intermediate in");
        for (format, legacy, cipher, mac) in [
            (
                Pkcs12Format::Aes256,
                false,
                "PBES2, PBKDF2, AES-256-CBC",
                "MAC: sha256",
            ),
            (
                Pkcs12Format::Legacy3Des,
                true,
                "pbeWithSHA1And3-KeyTripleDES-CBC",
                "MAC: sha1",
            ),
        ] {
            let p12 = pkcs12::export(&id, &SecretString::from(pw), format, &mut rand_core::OsRng)
                .unwrap();
            let file = pki.write(&format!("u{i}-{format:?}.p12"), &p12);
            let mut info = openssl(&["pkcs12", "-info", "-noout", "-passin", "env:SG_P12_PW"]);
            if legacy {
                info.arg("-legacy");
            }
            let out = run(info.arg("-in").arg(&file).env("SG_P12_PW", pw));
            let report = String::from_utf8_lossy(&out.stderr).to_string()
                + &String::from_utf8_lossy(&out.stdout);
            assert!(report.contains(cipher), "{format:?}: {report}");
            assert!(report.contains(mac), "{format:?}: {report}");
            assert!(report.contains("Iteration 2048"), "{format:?}: {report}");
            assert!(report.contains("Shrouded Keybag"), "{format:?}: {report}");

            // the key openssl takes out is the user's key; the certificates are the user's
            // certificate and the intermediate, in that order
            let mut keys = openssl(&["pkcs12", "-nocerts", "-nodes", "-passin", "env:SG_P12_PW"]);
            if legacy {
                keys.arg("-legacy");
            }
            let key_pem = run(keys.arg("-in").arg(&file).env("SG_P12_PW", pw)).stdout;
            let theirs = openssl_pubkey(&["pkey", "-pubout", "-in"], &key_pem, pki.path(), "k.pem");
            let ours = run(openssl(&["pkey", "-pubout", "-in"]).arg(&user.key)).stdout;
            assert_eq!(theirs, ours, "{format:?}: another key came out");
            let mut certs = openssl(&["pkcs12", "-nokeys", "-passin", "env:SG_P12_PW"]);
            if legacy {
                certs.arg("-legacy");
            }
            let certs_pem = run(certs.arg("-in").arg(&file).env("SG_P12_PW", pw)).stdout;
            let got = Certificate::load_all(&certs_pem, &limits()).unwrap();
            assert_eq!(
                got,
                vec![id.cert.clone(), id.chain[0].clone()],
                "{format:?}"
            );

            // a wrong password is refused by openssl, and by us
            let out = run_unchecked(
                openssl(&[
                    "pkcs12",
                    "-info",
                    "-noout",
                    "-legacy",
                    "-passin",
                    "pass:wrong",
                    "-in",
                ])
                .arg(&file),
            );
            assert!(!out.status.success());
            assert!(matches!(
                Identity::from_pkcs12(&p12, &SecretString::from("wrong"), &limits()),
                Err(smime::Error::BadPassword)
            ));
            // and our reader restores the identity
            let back = Identity::from_pkcs12(&p12, &SecretString::from(pw), &limits()).unwrap();
            assert_eq!(back.cert, id.cert);
            assert_eq!(back.chain, id.chain);
            assert!(back.key.matches(&id.cert));
        }
    }
}

#[test]
fn legacy_pkcs12_export_is_imported_by_gpgsm() {
    if !require("openssl") || !require("gpgsm") {
        return;
    }
    let pki = Pki::new();
    // gpgsm 2.2 reads RSA keys from PKCS#12 (EC keys crash its p12 importer, whoever wrote
    // the file), and only the 3DES layout
    let user = pki.user("gina", "gina@example.com", KeyType::Rsa2048);
    let id = identity_of(&user);
    let pw = "gpgsm-pw";
    let gpgsm = Gpgsm::new(&pki);
    // gpgsm 2.2.40 refuses about 1 in 40 of these files (salt-dependent: openssl and our reader
    // open the same files; its 3DES key derivation, which needs two SHA-1 rounds, appears to
    // go wrong for some salts). Measured 1/40 with one identity; so up to three fresh exports
    // are tried, and three refusals in a row (p ~ 2e-5 by that rate) fail the test.
    let mut log = String::new();
    let mut imported = false;
    for attempt in 0..3 {
        let p12 = id
            .to_pkcs12(
                &SecretString::from(pw),
                Pkcs12Format::Legacy3Des,
                &mut rand_core::OsRng,
            )
            .unwrap();
        let file = pki.write(&format!("gina-legacy-{attempt}.p12"), &p12);
        let mut import = gpgsm.cmd(&["--passphrase-fd", "0", "--import"]);
        import.arg(&file).stdin(std::process::Stdio::piped());
        let mut child = import
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            writeln!(stdin, "{pw}").unwrap();
        }
        let out = child.wait_with_output().unwrap();
        log = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() && log.contains("secret keys imported: 1") {
            imported = true;
            break;
        }
        eprintln!("gpgsm refused export {attempt}, trying a fresh one");
    }
    assert!(imported, "gpgsm --import failed three times: {log}");
    let listing = run(&mut gpgsm.cmd(&["--with-colons", "--list-secret-keys"])).stdout;
    let sha1 =
        run(openssl(&["x509", "-noout", "-fingerprint", "-sha1", "-in"]).arg(&user.cert)).stdout;
    let sha1 = String::from_utf8_lossy(&sha1)
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "");
    assert!(
        String::from_utf8_lossy(&listing).contains(&format!(":{sha1}:")),
        "gpgsm lists no secret key for the exported certificate"
    );
}

#[test]
fn validation_level_of_openssl_issued_certificates() {
    if !require("openssl") {
        return;
    }
    let pki = Pki::new();
    let cases = [
        (
            "certificatePolicies=2.23.140.1.5.2.2",
            Some((ValidationType::Organization, Generation::Multipurpose)),
        ),
        (
            "certificatePolicies=1.3.6.1.4.1.55555.7,2.23.140.1.5.4.3",
            Some((ValidationType::Individual, Generation::Strict)),
        ),
        (
            "certificatePolicies=2.23.140.1.5.3.1",
            Some((ValidationType::Sponsor, Generation::Legacy)),
        ),
        ("certificatePolicies=1.3.6.1.4.1.55555.7", None),
        ("", None),
        // two different levels: the BR allow exactly one
        (
            "certificatePolicies=2.23.140.1.5.1.1,2.23.140.1.5.2.1",
            None,
        ),
    ];
    for (i, (ext, want)) in cases.into_iter().enumerate() {
        let u = pki.user_with(
            &format!("v{i}"),
            &format!("v{i}@example.com"),
            KeyType::P256,
            ext,
        );
        let got = cert(&u.cert).validation_level();
        let want = want.map(|(validation, generation)| ValidationLevel {
            validation,
            generation,
        });
        assert_eq!(got, want, "{ext}");
    }
}

#[test]
fn validation_level_issued_by_us_is_read_by_openssl() {
    if !require("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_core::OsRng;
    let key = PrivateKey::generate(KeyKind::Rsa(2048)).unwrap();
    let level = ValidationLevel {
        validation: ValidationType::Mailbox,
        generation: Generation::Strict,
    };
    let mut params = CertificateParams::user("Mia", "mia@example.com");
    params.policies = vec![level.oid()];
    let c = smime::issue::self_signed(&key, &params, &mut rng).unwrap();
    let p = dir.path().join("mia.der");
    std::fs::write(&p, c.der()).unwrap();
    let text = run(openssl(&["x509", "-inform", "DER", "-noout", "-text", "-in"]).arg(&p)).stdout;
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("Policy: 2.23.140.1.5.1.3"), "{text}");
    assert_eq!(c.validation_level(), Some(level));
    assert_eq!(level.to_string(), "mailbox-validated (strict)");
}

#[test]
fn expiry_of_openssl_issued_certificates() {
    if !require("openssl") {
        return;
    }
    let pki = Pki::new();
    // Pki::user issues for 825 days
    let u = cert(&pki.user("e", "e@example.com", KeyType::P256).cert);
    let now = SystemTime::now();
    assert!(!u.expires_within(Duration::from_secs(820 * 86400), now));
    assert!(u.expires_within(Duration::from_secs(830 * 86400), now));
    let left = u.time_left(now).unwrap().as_secs() / 86400;
    assert!((824..=825).contains(&left), "{left}");
}

/// A CRL scoped by issuingDistributionPoint (openssl `-crlexts` with a fullname URI and
/// onlyContainsUserCerts): it covers the certificates whose cRLDistributionPoints name that
/// URI, and says "not covered" for the others instead of "not revoked".
#[test]
fn openssl_crl_with_issuing_distribution_point() {
    if !require("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let uri = "http://crl.example.com/part1.crl";
    run(openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=IDP Test CA",
        "-days",
        "3650",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ])
    .current_dir(d));
    let issue = |name: &str, ext: &str| {
        std::fs::write(d.join(format!("{name}.ext")), ext).unwrap();
        run(openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ])
        .current_dir(d));
        run(openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ])
        .current_dir(d));
        d.join(format!("{name}.pem"))
    };
    let inside = issue("inside", &format!("crlDistributionPoints=URI:{uri}\n"));
    let elsewhere = issue(
        "elsewhere",
        "crlDistributionPoints=URI:http://crl.example.com/part2.crl\n",
    );
    let none = issue("none", "basicConstraints=CA:FALSE\n");
    let conf = format!(
        "[ ca ]\ndefault_ca = d\n[ d ]\ndatabase = idx.txt\ncrlnumber = num\ncertificate = ca.pem\n\
         private_key = ca.key\ndefault_md = sha256\ndefault_crl_days = 7\n\
         [ idp ]\nissuingDistributionPoint = critical, @idp_sect\n\
         [ idp_sect ]\nfullname = URI:{uri}\nonlyuser = TRUE\n"
    );
    std::fs::write(d.join("ca.cnf"), conf).unwrap();
    std::fs::write(d.join("idx.txt"), "").unwrap();
    std::fs::write(d.join("num"), "01\n").unwrap();
    for c in [&inside, &elsewhere] {
        run(openssl(&["ca", "-config", "ca.cnf", "-revoke"])
            .arg(c)
            .current_dir(d));
    }
    run(openssl(&[
        "ca", "-config", "ca.cnf", "-gencrl", "-crlexts", "idp", "-out", "idp.crl",
    ])
    .current_dir(d));
    let text = run(openssl(&["crl", "-noout", "-text", "-in", "idp.crl"]).current_dir(d)).stdout;
    assert!(
        String::from_utf8_lossy(&text).contains("Issuing Distribution Point: critical"),
        "openssl wrote no IDP"
    );

    let crl = load_crl(&d.join("idp.crl"));
    assert!(crl.verify_signature(&cert(&d.join("ca.pem"))).unwrap());
    assert_eq!(crl.len(), 2);
    // listed and in scope: revoked
    assert!(crl.is_revoked(&cert(&inside)));
    // listed, but its distribution point is another partition: this CRL does not speak for it
    assert!(matches!(
        crl.status(&cert(&elsewhere)),
        RevocationStatus::NotCovered(_)
    ));
    // not listed and no distribution point: not covered, so not "good" either
    assert!(matches!(
        crl.status(&cert(&none)),
        RevocationStatus::NotCovered(_)
    ));
    // a CA certificate is outside onlyContainsUserCerts
    assert!(matches!(
        crl.status(&cert(&d.join("ca.pem"))),
        RevocationStatus::NotCovered(_)
    ));
}
