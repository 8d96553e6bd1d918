//! The LDAP key directory against a real OpenLDAP `slapd` on loopback: the test writes its own
//! slapd.conf in a temp dir, loads an LDIF with certificates made by openssl (`slapadd`), starts
//! slapd as the current user on 127.0.0.1 and a free port, and looks certificates up by `mail`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sealgate::Limits;
use sealgate::keystore::directory::Ldap;
use sealgate::keystore::{
    ImportOptions, KeyDirectory, KeyKind, KeyStore, Keyring, MemoryStore, Trust,
};
use sealgate::smime::Certificate;
use sealgate_tests::{KeyType, Pki, in_ci, openssl, run};
use secrecy::SecretString;

const BASE: &str = "dc=example,dc=com";
const ROOT_DN: &str = "cn=admin,dc=example,dc=com";
const ROOT_PW: &str = "ldap-test-secret";

/// slapd and slapadd, which Debian keeps in /usr/sbin (not always on PATH).
fn sbin(tool: &str) -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")]);
    candidates.map(|d| d.join(tool)).find(|p| p.is_file())
}

fn require_slapd() -> Option<(PathBuf, PathBuf)> {
    match (sbin("slapd"), sbin("slapadd")) {
        (Some(d), Some(a)) => Some((d, a)),
        _ => {
            assert!(
                !in_ci(),
                "slapd is required under CI=true but was not found"
            );
            eprintln!("NOTICE: skipping: slapd (Debian slapd) not installed");
            None
        }
    }
}

/// A slapd serving `BASE` from a temp dir; killed on drop.
struct Slapd {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn b64(data: &[u8]) -> String {
    use std::fmt::Write as _;
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for chunk in data.chunks(3) {
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                let _ = s.write_char(char::from(T[((v >> (18 - 6 * i)) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

impl Slapd {
    /// `entries`: (cn, mail, DER certificates).
    fn start(slapd: &Path, slapadd: &Path, entries: &[(&str, &str, Vec<Vec<u8>>)]) -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("db")).unwrap();
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             modulepath /usr/lib/ldap\nmoduleload back_mdb\n\
             pidfile {dir}/slapd.pid\nargsfile {dir}/slapd.args\n\
             database mdb\nmaxsize 16777216\nsuffix \"{BASE}\"\nrootdn \"{ROOT_DN}\"\n\
             rootpw {ROOT_PW}\ndirectory {dir}/db\n",
            dir = d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        let mut ldif = format!(
            "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
             dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n"
        );
        for (cn, mail, certs) in entries {
            ldif.push_str(&format!(
                "dn: cn={cn},ou=people,{BASE}\nobjectClass: inetOrgPerson\ncn: {cn}\nsn: {cn}\nmail: {mail}\n"
            ));
            for c in certs {
                ldif.push_str(&format!("userCertificate;binary:: {}\n", b64(c)));
            }
            ldif.push('\n');
        }
        std::fs::write(d.join("data.ldif"), ldif).unwrap();
        run(Command::new(slapadd)
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("data.ldif")));
        let port = free_port();
        let url = format!("ldap://127.0.0.1:{port}");
        // -d 0: stay in the foreground (no fork), so that the test owns the process.
        let child = Command::new(slapd)
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-h")
            .arg(format!("{url}/"))
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut s = Slapd {
            child,
            url,
            _dir: dir,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = s.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = s.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("slapd exited ({status}): {err}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "slapd did not listen within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }
}

fn der_of(path: &Path) -> Vec<u8> {
    Certificate::load(&std::fs::read(path).unwrap(), &Limits::default())
        .unwrap()
        .der()
        .to_vec()
}

fn ldap(url: &str) -> Ldap {
    Ldap::new(url, BASE, Duration::from_secs(5), &Limits::default())
}

#[test]
fn ldap_lookup_against_slapd() {
    let Some((slapd, slapadd)) = require_slapd() else {
        return;
    };
    let pki = Pki::new();
    let alice = pki.user("alice", "alice@example.com", KeyType::Rsa2048);
    let alice_new = pki.user("alice2", "alice@example.com", KeyType::P256);
    let mallory = pki.user("mallory", "mallory@example.com", KeyType::P256);
    let (a1, a2, m) = (
        der_of(&alice.cert),
        der_of(&alice_new.cert),
        der_of(&mallory.cert),
    );
    let server = Slapd::start(
        &slapd,
        &slapadd,
        &[
            ("alice", "alice@example.com", vec![a1.clone(), a2.clone()]),
            // an entry that carries somebody else's certificate
            ("bob", "bob@example.com", vec![m.clone()]),
            ("carol", "carol@example.com", vec![]),
        ],
    );
    let dir = ldap(&server.url);
    assert_eq!(dir.name(), server.url);

    // both of alice's certificates, byte for byte as openssl wrote them
    let mut got = dir.fetch("alice@example.com", KeyKind::Smime).unwrap();
    got.sort();
    let mut want = vec![a1.clone(), a2.clone()];
    want.sort();
    assert_eq!(got, want);
    // mail matching is the directory's (case-insensitive for mail in the core schema)
    assert_eq!(
        dir.fetch("ALICE@example.com", KeyKind::Smime)
            .unwrap()
            .len(),
        2
    );
    assert!(
        dir.fetch("carol@example.com", KeyKind::Smime)
            .unwrap()
            .is_empty()
    );
    assert!(
        dir.fetch("nobody@example.com", KeyKind::Smime)
            .unwrap()
            .is_empty()
    );
    assert!(
        dir.fetch("alice@example.com", KeyKind::Pgp)
            .unwrap()
            .is_empty()
    );
    // the filter is escaped: a wildcard in the address matches nothing
    assert!(
        dir.fetch("*@example.com", KeyKind::Smime)
            .unwrap()
            .is_empty()
    );
    assert!(
        dir.fetch("*)(mail=*@example.com", KeyKind::Smime)
            .unwrap()
            .is_empty()
    );

    // simple bind: the right password works, a wrong one is a directory error without it
    let bound = ldap(&server.url).with_bind(ROOT_DN, SecretString::from(ROOT_PW));
    assert_eq!(
        bound
            .fetch("alice@example.com", KeyKind::Smime)
            .unwrap()
            .len(),
        2
    );
    let wrong = ldap(&server.url).with_bind(ROOT_DN, SecretString::from("not-it"));
    let e = wrong
        .fetch("alice@example.com", KeyKind::Smime)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bind") && !e.contains("not-it"), "{e}");
    // a base DN that is not there
    let elsewhere = Ldap::new(
        &server.url,
        "dc=nowhere",
        Duration::from_secs(5),
        &Limits::default(),
    );
    assert!(
        elsewhere
            .fetch("alice@example.com", KeyKind::Smime)
            .is_err()
    );
    // limits: fewer certificates or bytes allowed than the entry has
    let mut tight = Limits::default();
    tight.max_directory_response_bytes = a1.len() + a2.len() - 1;
    let small = Ldap::new(&server.url, BASE, Duration::from_secs(5), &tight);
    assert!(small.fetch("alice@example.com", KeyKind::Smime).is_err());

    // lookup_or_fetch: the store knows the CA but not alice; LDAP supplies her certificate,
    // which is cached with the directory as provenance and then selected (the newer one)
    let store: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let keyring = Keyring::open(store.clone(), None, Limits::default()).unwrap();
    let root = std::fs::read(&pki.root).unwrap();
    let int = std::fs::read(&pki.intermediate).unwrap();
    let opts = ImportOptions {
        trust_anchors: true,
        ..ImportOptions::default()
    };
    keyring.import(&[("root.pem", &root)], &opts).unwrap();
    keyring
        .import(&[("int.pem", &int)], &ImportOptions::default())
        .unwrap();
    let now = SystemTime::now();
    assert!(
        keyring
            .lookup_smime("alice@example.com", now)
            .unwrap()
            .selected
            .is_none()
    );
    let dirs: [&dyn KeyDirectory; 1] = [&dir];
    let (lookup, report) = keyring
        .lookup_or_fetch_smime("alice@example.com", now, &dirs)
        .unwrap();
    assert_eq!(report.stored, vec![(server.url.clone(), 2)]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let (selected, chain) = lookup.selected.expect("a usable certificate from LDAP");
    assert!(selected.der() == a1.as_slice() || selected.der() == a2.as_slice());
    assert_eq!(chain.len(), 3, "leaf, intermediate, root");
    assert_eq!(lookup.candidates.len(), 2);
    for c in &lookup.candidates {
        assert_eq!(c.trust, Trust::Unverified);
        let prov = store.provenance(&c.id).unwrap();
        assert!(
            prov.iter()
                .any(|p| p.source == server.url && p.by == server.url),
            "{prov:?}"
        );
    }
    // now cached: answered from the store even with the server gone
    drop(server);
    let dead = ldap("ldap://127.0.0.1:1");
    let dead_dirs: [&dyn KeyDirectory; 1] = [&dead];
    let (again, report) = keyring
        .lookup_or_fetch_smime("alice@example.com", now, &dead_dirs)
        .unwrap();
    assert!(again.selected.is_some());
    assert!(report.stored.is_empty() && report.errors.is_empty());
}

#[test]
fn ldap_entry_with_another_persons_certificate_is_not_cached() {
    let Some((slapd, slapadd)) = require_slapd() else {
        return;
    };
    let pki = Pki::new();
    let mallory = pki.user("mallory", "mallory@example.com", KeyType::P256);
    let server = Slapd::start(
        &slapd,
        &slapadd,
        &[("bob", "bob@example.com", vec![der_of(&mallory.cert)])],
    );
    let dir = ldap(&server.url);
    // the directory hands it out ...
    assert_eq!(
        dir.fetch("bob@example.com", KeyKind::Smime).unwrap().len(),
        1
    );
    // ... but the store does not take it for bob
    let store: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let keyring = Keyring::open(store.clone(), None, Limits::default()).unwrap();
    let dirs: [&dyn KeyDirectory; 1] = [&dir];
    let (lookup, report) = keyring
        .lookup_or_fetch_smime("bob@example.com", SystemTime::now(), &dirs)
        .unwrap();
    assert!(lookup.selected.is_none());
    assert_eq!(report.stored, vec![(server.url.clone(), 0)]);
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.contains("is not for bob@example.com")),
        "{:?}",
        report.skipped
    );
    assert!(store.certificates().unwrap().is_empty());
    // openssl agrees the certificate names mallory only
    let text =
        run(openssl(&["x509", "-noout", "-ext", "subjectAltName", "-in"]).arg(&mallory.cert))
            .stdout;
    assert!(String::from_utf8_lossy(&text).contains("mallory@example.com"));
}

/// The gateway from a `gateway.toml` with a `[[directory]]` LDAP entry: an outbound recipient
/// whose certificate only the directory has gets an S/MIME message that openssl decrypts with
/// their key; the audit record says what the directory did. With the directory down, a
/// recipient the store does not know is held with a temporary refusal (a 4xx for an MTA), and
/// the one already fetched is still encrypted to from the store.
#[test]
fn gateway_config_with_an_ldap_directory() {
    let Some((slapd, slapadd)) = require_slapd() else {
        return;
    };
    let pki = Pki::new();
    let alice = pki.user("alice", "alice@example.com", KeyType::Rsa2048);
    let server = Slapd::start(
        &slapd,
        &slapadd,
        &[("alice", "alice@example.com", vec![der_of(&alice.cert)])],
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("store.key"), "5a".repeat(32)).unwrap();
    std::fs::write(
        dir.path().join("policy.toml"),
        "internal_domains = [\"corp.example\"]\n\
         [[rule]]\nname = \"encrypt-out\"\nwhen = { direction = \"outbound\" }\n\
         action = { encrypt = [\"smime\"] }\n",
    )
    .unwrap();
    let cfg_path = dir.path().join("gateway.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "policy = \"policy.toml\"\naudit = \"audit.jsonl\"\n\
             [store]\npath = \"keys.db\"\nkey_file = \"store.key\"\n\
             [[directory]]\ntype = \"ldap\"\nurl = \"{}\"\nbase_dn = \"{BASE}\"\ntimeout_secs = 3\n",
            server.url
        ),
    )
    .unwrap();
    let cfg = sealgate::GatewayConfig::load(&cfg_path).unwrap();
    assert_eq!(cfg.directories.len(), 1);
    {
        // the store holds the CA (trust anchor) and the intermediate, nothing of alice
        let keyring = cfg.open_keyring().unwrap();
        keyring
            .import_paths(
                std::slice::from_ref(&pki.root),
                &ImportOptions {
                    trust_anchors: true,
                    ..ImportOptions::default()
                },
            )
            .unwrap();
        keyring
            .import_paths(
                std::slice::from_ref(&pki.intermediate),
                &ImportOptions::default(),
            )
            .unwrap();
    }
    let gw = cfg.build().unwrap();
    let msg = b"From: <sender@corp.example>\r\nTo: <alice@example.com>\r\nSubject: ldap\r\n\
                Message-ID: <ldap-1@corp.example>\r\n\r\nDIRECTORY-MARKER-0815\r\n";
    let env = |to: &str| sealgate::Envelope {
        mail_from: Some("sender@corp.example".into()),
        rcpt_to: vec![to.to_string()],
    };
    let out = gw.process(msg, &env("alice@example.com")).unwrap();
    assert!(out.refused.is_empty(), "{:?}", out.refused);
    assert_eq!(out.deliveries.len(), 1);
    assert_eq!(out.deliveries[0].treatment, "smime");
    let rec = &out.audit.recipients[0];
    assert!(
        rec.lookups
            .iter()
            .any(|l| l == &format!("smime: {}: stored 1", server.url)),
        "{:?}",
        rec.lookups
    );
    let tmp = dir.path().join("out.eml");
    std::fs::write(&tmp, &out.deliveries[0].message).unwrap();
    let plain = run(openssl(&["cms", "-decrypt", "-in"])
        .arg(&tmp)
        .arg("-inkey")
        .arg(&alice.key)
        .arg("-recip")
        .arg(&alice.cert))
    .stdout;
    assert!(String::from_utf8_lossy(&plain).contains("DIRECTORY-MARKER-0815"));

    // the directory goes away: alice is answered from the store, an unknown address is held
    // for a retry, not sent in clear
    drop(server);
    let out = gw.process(msg, &env("alice@example.com")).unwrap();
    assert_eq!(out.deliveries.len(), 1, "{:?}", out.refused);
    assert!(out.audit.recipients[0].lookups.is_empty());
    let out = gw.process(msg, &env("zoe@example.com")).unwrap();
    assert!(out.deliveries.is_empty());
    assert_eq!(out.refused.len(), 1);
    let r = &out.refused[0];
    assert!(!r.by_policy && r.temporary, "{r:?}");
    assert!(
        out.audit.recipients[0]
            .lookups
            .iter()
            .any(|l| l.contains("error")),
        "{:?}",
        out.audit.recipients[0].lookups
    );
    drop(gw);
    assert_eq!(
        sealgate::audit::verify_file(dir.path().join("audit.jsonl"))
            .unwrap()
            .records,
        3
    );
}
