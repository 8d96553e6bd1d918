//! WKD and HKP key directories against a small HTTP server started by the test on loopback
//! (a std TcpListener thread), serving OpenPGP keys that gpg made at test time. The WKD paths
//! the server answers are built from the hash gpg itself prints (`--with-wkd-hash`), so the
//! z-base-32 SHA-1 of the local part is checked against GnuPG, not against ourselves.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sealgate::Limits;
use sealgate::keystore::directory::{Hkp, Wkd, WkdMethod, wkd_hash};
use sealgate::keystore::{KeyDirectory, KeyKind, KeyStore, Keyring, MemoryStore, Trust};
use sealgate_tests::{Gpg, GpgAlgo, GpgKey, require, run};

/// What the server answers for one path (with query).
#[derive(Clone)]
enum Reply {
    Ok(Vec<u8>),
    Slow(Duration, Vec<u8>),
}

/// A tiny HTTP/1.1 server: exact path+query routes, 404 for the rest, a log of what was asked.
struct Server {
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(routes: HashMap<String, Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let routes = Arc::new(routes);
        let l = log.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (routes, log) = (routes.clone(), l.clone());
                std::thread::spawn(move || serve(conn, &routes, &log));
            }
        });
        Server { base, log }
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.log.lock().unwrap().clear();
    }
}

fn serve(mut conn: TcpStream, routes: &HashMap<String, Reply>, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let target = request_line.split(' ').nth(1).unwrap_or("").to_string();
    log.lock().unwrap().push(target.clone());
    let (status, body) = match routes.get(&target) {
        Some(Reply::Ok(b)) => ("200 OK", b.clone()),
        Some(Reply::Slow(d, b)) => {
            std::thread::sleep(*d);
            ("200 OK", b.clone())
        }
        None => ("404 Not Found", b"not here\n".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&body);
}

/// The WKD hash gpg prints for the key's User ID (`--with-wkd-hash`).
fn gpg_wkd_hash(gpg: &Gpg, key: &GpgKey) -> String {
    let out = run(&mut gpg.cmd(&["--with-wkd-hash", "--list-keys", &key.fingerprint])).stdout;
    let text = String::from_utf8_lossy(&out);
    let domain = key.email.rsplit_once('@').unwrap().1;
    text.lines()
        .map(str::trim)
        .find_map(|l| {
            let (hash, d) = l.split_once('@')?;
            (d == domain && hash.len() == 32 && !hash.contains(' ')).then(|| hash.to_string())
        })
        .unwrap_or_else(|| panic!("no WKD hash in gpg output:\n{text}"))
}

fn binary_export(gpg: &Gpg, key: &GpgKey) -> Vec<u8> {
    run(&mut gpg.cmd(&["--export", &key.fingerprint])).stdout
}

fn limits() -> Limits {
    Limits::default()
}

#[test]
fn wkd_and_hkp_against_a_loopback_server() {
    if !require("gpg") {
        return;
    }
    let gpg = Gpg::new();
    let alice = gpg.gen_key("Alice", "alice@example.org", GpgAlgo::Ed25519);
    let bob = gpg.gen_key("Bob", "Bob.Builder@example.net", GpgAlgo::Rsa3072);
    let carol = gpg.gen_key("Carol", "carol@example.com", GpgAlgo::Ed25519);
    let mallory = gpg.gen_key("Mallory", "mallory@example.org", GpgAlgo::Ed25519);
    let alice_hash = gpg_wkd_hash(&gpg, &alice);
    let bob_hash = gpg_wkd_hash(&gpg, &bob);
    // our hash is GnuPG's (bob's local part has upper case: it is hashed in lower case)
    assert_eq!(wkd_hash("alice"), alice_hash);
    assert_eq!(wkd_hash("Bob.Builder"), bob_hash);
    let (alice_bin, bob_bin, mallory_bin) = (
        binary_export(&gpg, &alice),
        binary_export(&gpg, &bob),
        binary_export(&gpg, &mallory),
    );
    let carol_armored = std::fs::read(&carol.public).unwrap();
    let eve_hash = wkd_hash("eve");

    let mut routes = HashMap::new();
    // alice: advanced form only; bob: direct form only (keeping the ?l= as sent)
    routes.insert(
        format!("/.well-known/openpgpkey/example.org/hu/{alice_hash}?l=alice"),
        Reply::Ok(alice_bin.clone()),
    );
    routes.insert(
        format!("/.well-known/openpgpkey/hu/{bob_hash}?l=Bob.Builder"),
        Reply::Ok(bob_bin.clone()),
    );
    // eve's WKD entry holds mallory's key
    routes.insert(
        format!("/.well-known/openpgpkey/example.org/hu/{eve_hash}?l=eve"),
        Reply::Ok(mallory_bin.clone()),
    );
    routes.insert(
        "/pks/lookup?op=get&options=mr&search=carol%40example.com".into(),
        Reply::Ok(carol_armored.clone()),
    );
    routes.insert(
        "/pks/lookup?op=get&options=mr&search=slow%40example.com".into(),
        Reply::Slow(Duration::from_secs(6), carol_armored.clone()),
    );
    let server = Server::start(routes);
    let t = Duration::from_secs(2);
    let wkd = Wkd::new(t, &limits()).with_base_url(&server.base);
    let hkp = Hkp::new(&server.base, t, &limits()).unwrap();

    // WKD advanced form
    assert_eq!(
        wkd.fetch("alice@example.org", KeyKind::Pgp).unwrap(),
        vec![alice_bin.clone()]
    );
    assert_eq!(
        server.requests(),
        vec![format!(
            "/.well-known/openpgpkey/example.org/hu/{alice_hash}?l=alice"
        )]
    );
    // WKD: advanced gives 404, the direct form has it
    server.clear();
    assert_eq!(
        wkd.fetch("Bob.Builder@example.net", KeyKind::Pgp).unwrap(),
        vec![bob_bin.clone()]
    );
    assert_eq!(
        server.requests(),
        vec![
            format!("/.well-known/openpgpkey/example.net/hu/{bob_hash}?l=Bob.Builder"),
            format!("/.well-known/openpgpkey/hu/{bob_hash}?l=Bob.Builder"),
        ]
    );
    let advanced_only = Wkd::new(t, &limits())
        .with_base_url(&server.base)
        .with_method(WkdMethod::Advanced);
    assert!(
        advanced_only
            .fetch("Bob.Builder@example.net", KeyKind::Pgp)
            .unwrap()
            .is_empty()
    );
    assert!(
        wkd.fetch("nobody@example.org", KeyKind::Pgp)
            .unwrap()
            .is_empty()
    );
    assert!(
        wkd.fetch("alice@example.org", KeyKind::Smime)
            .unwrap()
            .is_empty()
    );

    // HKP
    server.clear();
    assert_eq!(
        hkp.fetch("carol@example.com", KeyKind::Pgp).unwrap(),
        vec![carol_armored.clone()]
    );
    assert_eq!(
        server.requests(),
        vec!["/pks/lookup?op=get&options=mr&search=carol%40example.com".to_string()]
    );
    assert!(
        hkp.fetch("dave@example.com", KeyKind::Pgp)
            .unwrap()
            .is_empty()
    );

    // the response size limit and the timeout
    let mut tight = limits();
    tight.max_directory_response_bytes = 100;
    let small = Wkd::new(t, &tight).with_base_url(&server.base);
    let e = small
        .fetch("alice@example.org", KeyKind::Pgp)
        .unwrap_err()
        .to_string();
    assert!(e.contains("larger than 100 bytes"), "{e}");
    let started = Instant::now();
    let e = hkp
        .fetch("slow@example.com", KeyKind::Pgp)
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the timeout did not hold"
    );
    assert!(e.contains(&server.base), "{e}");

    // lookup_or_fetch: WKD first (nothing for carol), then HKP, cached as unverified with
    // the directory's name
    let store: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let keyring = Keyring::open(store.clone(), None, limits()).unwrap();
    let dirs: [&dyn KeyDirectory; 2] = [&wkd, &hkp];
    let now = SystemTime::now();
    let (lookup, report) = keyring
        .lookup_or_fetch_pgp("carol@example.com", now, &dirs)
        .unwrap();
    let selected = lookup.selected.expect("carol's key from HKP");
    assert_eq!(selected.fingerprint(), carol.fingerprint);
    assert_eq!(
        report.stored,
        vec![(wkd.name(), 0), (hkp.name(), 1)],
        "{report:?}"
    );
    let rec = store.pgp(&carol.fingerprint).unwrap().unwrap();
    assert_eq!(rec.trust, Trust::Unverified);
    let prov = store.provenance(&carol.fingerprint).unwrap();
    assert!(prov.iter().any(|p| p.source == hkp.name()), "{prov:?}");

    // the fetched key works: encrypt to it, gpg (which holds carol's secret key) decrypts
    let msg = b"fetched over HKP\n";
    let ct = sealgate::pgp::encrypt(msg, &[selected], None, &Default::default()).unwrap();
    let ct_path = gpg.write("to-carol.pgp", &ct);
    let out = run(&mut gpg.cmd(&["--decrypt", ct_path.to_str().unwrap()]));
    assert_eq!(out.stdout, msg);

    // alice by WKD (first directory): HKP is not asked
    server.clear();
    let (lookup, report) = keyring
        .lookup_or_fetch_pgp("alice@example.org", now, &dirs)
        .unwrap();
    assert_eq!(lookup.selected.unwrap().fingerprint(), alice.fingerprint);
    assert_eq!(report.stored, vec![(wkd.name(), 1)]);
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.starts_with("/.well-known/"))
    );

    // eve's WKD entry is mallory's key: not stored for eve
    let (lookup, report) = keyring
        .lookup_or_fetch_pgp("eve@example.org", now, &dirs)
        .unwrap();
    assert!(lookup.selected.is_none());
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.contains("is not for eve@example.org")),
        "{report:?}"
    );
    assert!(store.pgp(&mallory.fingerprint).unwrap().is_none());

    // a directory that fails is reported and the next one is asked
    let dead = Hkp::new("http://127.0.0.1:1", t, &limits()).unwrap();
    let dirs: [&dyn KeyDirectory; 2] = [&dead, &wkd];
    let fresh: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let keyring = Keyring::open(fresh, None, limits()).unwrap();
    let (lookup, report) = keyring
        .lookup_or_fetch_pgp("alice@example.org", now, &dirs)
        .unwrap();
    assert!(lookup.selected.is_some());
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].0, "http://127.0.0.1:1");
}
