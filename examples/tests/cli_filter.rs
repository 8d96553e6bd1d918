//! `sealgate filter` as Postfix would use it: mail sent to it over SMTP, the copies received by
//! an in-process SMTP sink standing for the next hop (both written here, independently of the
//! filter's own SMTP code). Checks: S/MIME and password-ZIP outputs as the policy says (read
//! with openssl and our ZIP reader), dot-stuffing round trip, 550 with the reason on a policy
//! rejection, 552 over the size limit, 451 when the next hop fails or is down, /metrics and
//! /health, and SIGTERM finishing the message in flight.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealgate::Limits;
use sealgate::keystore::{ImportOptions, Keyring, SqliteStore, StoreSecret};
use sealgate_tests::{
    KeyType, P12_PASSWORD, Pki, attachment, contains, notification_password, openssl, require, run,
};

const BIN: &str = env!("CARGO_BIN_EXE_sealgate");
const KEY: &str = "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c";
const MARKER: &str = "FILTER-MARKER-4711";
const ATTACHED: &str = "ATTACHED-FIGURES-0042";

const POLICY: &str = r#"
internal_domains = ["example.com"]

[[rule]]
name = "no-exe"
when = { attachment_name = "*.exe" }
action = { reject = "no executables here" }

[[rule]]
name = "confidential-zip"
when = { subject_contains = ["confidential"] }
action = { zip = { password = "generate", length = 16, method = "aes256" } }

[[rule]]
name = "smime-required"
when = { direction = "outbound" }
action = [{ sign = "smime" }, { encrypt = ["smime"] }]
"#;

const CONFIG: &str = r#"
hostname = "gw.example.com"
policy = "policy.toml"
audit = "audit.jsonl"

[store]
path = "keys.db"
key_env = "SG_FILTER_TEST_KEY"

[limits]
max_message_bytes = 200000
"#;

/// One message as the sink received it.
#[derive(Clone, Debug)]
struct Received {
    from: String,
    rcpts: Vec<String>,
    data: Vec<u8>,
}

/// The next hop: a minimal SMTP server that keeps every message, or answers 451 to MAIL
/// while `fail` is set.
struct Sink {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    fail: Arc<AtomicBool>,
}

impl Sink {
    fn start() -> Sink {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let fail = Arc::new(AtomicBool::new(false));
        let (g, f) = (got.clone(), fail.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let (g, f) = (g.clone(), f.clone());
                std::thread::spawn(move || sink_session(s.unwrap(), &g, &f));
            }
        });
        Sink { addr, got, fail }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

fn sink_session(s: TcpStream, got: &Mutex<Vec<Received>>, fail: &AtomicBool) {
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut say = |l: &str| w.write_all(format!("{l}\r\n").as_bytes());
    say("220 sink").unwrap();
    let (mut from, mut rcpts) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let addr = || cmd[cmd.find('<').unwrap() + 1..cmd.rfind('>').unwrap()].to_string();
        let ok = if upper.starts_with("EHLO") {
            say("250-sink\r\n250 PIPELINING")
        } else if upper.starts_with("MAIL FROM:") {
            if fail.load(Ordering::SeqCst) {
                say("451 4.3.0 sink says later")
            } else {
                from = addr();
                rcpts.clear();
                say("250 ok")
            }
        } else if upper.starts_with("RCPT TO:") {
            rcpts.push(addr());
            say("250 ok")
        } else if upper == "DATA" {
            say("354 go").unwrap();
            let mut data = Vec::new();
            loop {
                let mut l = Vec::new();
                r.read_until(b'\n', &mut l).unwrap();
                if l == b".\r\n" {
                    break;
                }
                let l = if l.starts_with(b".") { &l[1..] } else { &l[..] };
                data.extend_from_slice(l);
            }
            got.lock().unwrap().push(Received {
                from: from.clone(),
                rcpts: std::mem::take(&mut rcpts),
                data,
            });
            say("250 queued")
        } else if upper == "QUIT" {
            let _ = say("221 bye");
            return;
        } else {
            say("250 ok")
        };
        if ok.is_err() {
            return;
        }
    }
}

/// A client of the filter, speaking raw SMTP.
struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut c = Client {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        assert_eq!(c.reply().0, 220);
        c.cmd("EHLO test.example");
        c
    }

    /// The code and the text of the (last line of the) reply.
    fn reply(&mut self) -> (u16, String) {
        loop {
            let mut l = String::new();
            self.r.read_line(&mut l).unwrap();
            assert!(l.len() >= 4, "short reply {l:?}");
            if l.as_bytes()[3] != b'-' {
                return (l[..3].parse().unwrap(), l[4..].trim_end().to_string());
            }
        }
    }

    fn cmd(&mut self, line: &str) -> (u16, String) {
        self.w.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        self.reply()
    }

    /// A whole transaction; the reply to the end of DATA (or to the first failing command).
    fn send(&mut self, from: &str, to: &[&str], msg: &[u8]) -> (u16, String) {
        let r = self.cmd(&format!("MAIL FROM:<{from}>"));
        if r.0 != 250 {
            return r;
        }
        for t in to {
            assert_eq!(self.cmd(&format!("RCPT TO:<{t}>")).0, 250);
        }
        assert_eq!(self.cmd("DATA").0, 354);
        self.w.write_all(&stuffed(msg)).unwrap();
        self.reply()
    }
}

/// Dot-stuffed DATA with the final dot (the message's lines already end in CRLF).
fn stuffed(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in msg.split_inclusive(|&b| b == b'\n') {
        if l.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(l);
    }
    out.extend_from_slice(b".\r\n");
    out
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A running `sealgate filter`; killed on drop.
struct Filter {
    child: Child,
    listen: SocketAddr,
    metrics: SocketAddr,
}

impl Filter {
    fn start(dir: &Path, next_hop: SocketAddr) -> Filter {
        let (listen, metrics) = (free_addr(), free_addr());
        let child = Command::new(BIN)
            .arg("filter")
            .arg("--config")
            .arg(dir.join("gateway.toml"))
            .args(["--listen", &listen.to_string()])
            .args(["--next-hop", &next_hop.to_string()])
            .args(["--metrics", &metrics.to_string()])
            .args(["--next-hop-timeout", "5"])
            .env("SG_FILTER_TEST_KEY", KEY)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let f = Filter {
            child,
            listen,
            metrics,
        };
        let start = Instant::now();
        while TcpStream::connect(listen).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the filter did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        f
    }

    fn http(&self, path: &str) -> (String, String) {
        let mut s = TcpStream::connect(self.metrics).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap();
        (head.lines().next().unwrap().to_string(), body.to_string())
    }

    fn terminate(&self) {
        run(Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string()));
    }

    /// Wait for the exit status (at most `secs`).
    fn wait(&mut self, secs: u64) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            if start.elapsed() > Duration::from_secs(secs) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    pki: Pki,
    bob: sealgate_tests::User,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let pki = Pki::new();
    let alice = pki.user("alice", "alice@example.com", KeyType::Rsa2048);
    let bob = pki.user("bob", "bob@partner.example", KeyType::Rsa2048);
    std::fs::write(dir.join("policy.toml"), POLICY).unwrap();
    std::fs::write(dir.join("gateway.toml"), CONFIG).unwrap();
    let kr = Keyring::open(
        Arc::new(SqliteStore::open(dir.join("keys.db")).unwrap()),
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
        &[pki.intermediate.clone(), bob.cert.clone()],
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
    Setup {
        _tmp: tmp,
        dir,
        pki,
        bob,
    }
}

fn message(to: &str, subject: &str, attachment: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.com>\r\nTo: {to}\r\nSubject: {subject}\r\n\
         Message-ID: <filter-{}-{}@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nThe figures: {MARKER}\r\n.\r\n..two dots\r\n\
         .one dot\r\n--b\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"{attachment}\"\r\n\r\n{ATTACHED}\r\n--b--\r\n",
        subject.len(),
        attachment.len()
    )
    .into_bytes()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn filter_delivers_rejects_defers_and_reports() {
    if !require("openssl") {
        return;
    }
    let s = setup();
    let sink = Sink::start();
    let filter = Filter::start(&s.dir, sink.addr);
    let mut c = Client::connect(filter.listen);

    // Outbound to bob: signed and encrypted with his certificate; dot lines survive both hops.
    let (code, text) = c.send(
        "alice@example.com",
        &["bob@partner.example"],
        &message("bob@partner.example", "Figures", "figures.csv"),
    );
    assert_eq!(code, 250, "{text}");
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].from, "alice@example.com");
    assert_eq!(got[0].rcpts, vec!["bob@partner.example"]);
    assert!(!contains(&got[0].data, MARKER), "clear text went out");
    let out = s.pki.write("bob-copy.eml", &got[0].data);
    let dec = s.dir.join("dec.eml");
    run(openssl(&["cms", "-decrypt", "-in"])
        .arg(&out)
        .arg("-recip")
        .arg(&s.bob.cert)
        .arg("-inkey")
        .arg(&s.bob.key)
        .arg("-out")
        .arg(&dec));
    let verified = run(openssl(&["cms", "-verify", "-in"])
        .arg(&dec)
        .arg("-CAfile")
        .arg(&s.pki.ca_bundle));
    let clear = String::from_utf8_lossy(&verified.stdout).replace("\r\n", "\n");
    assert!(
        clear.contains(&format!("{MARKER}\n.\n..two dots\n.one dot\n")),
        "{clear}"
    );

    // Confidential to dave (no certificate): the attachment in a password ZIP to dave, the
    // password to alice in a notification sent with the null sender.
    let (code, text) = c.send(
        "alice@example.com",
        &["dave@plain.example"],
        &message("dave@plain.example", "confidential figures", "figures.csv"),
    );
    assert_eq!(code, 250, "{text}");
    let got = sink.received();
    assert_eq!(got.len(), 3, "{got:?}");
    let zip_copy = got
        .iter()
        .find(|m| m.rcpts == ["dave@plain.example"])
        .unwrap();
    assert_eq!(zip_copy.from, "alice@example.com");
    let note = got
        .iter()
        .find(|m| m.rcpts == ["alice@example.com"])
        .unwrap();
    assert_eq!(note.from, "");
    let password = notification_password(&note.data);
    let zip = attachment(&zip_copy.data, ".zip");
    let files = sealgate::zip::read_all(
        &zip,
        Some(&sealgate::zip::Password::from(password.as_str())),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].name, "figures.csv");
    assert!(contains(&files[0].data, ATTACHED), "{files:?}");
    assert!(
        !contains(&zip_copy.data, ATTACHED),
        "the attachment went out in clear"
    );
    assert!(!contains(&note.data, ATTACHED));

    // A policy rejection: 550 with the rule's reason; nothing goes out.
    let (code, text) = c.send(
        "alice@example.com",
        &["bob@partner.example"],
        &message("bob@partner.example", "Tool", "setup.exe"),
    );
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("no executables here"), "{text}");
    assert_eq!(sink.received().len(), 3);

    // Too big: announced (at MAIL) and not announced (after DATA).
    let (code, _) = c.cmd("MAIL FROM:<alice@example.com> SIZE=900000");
    assert_eq!(code, 552);
    let mut big = message("bob@partner.example", "Big", "big.csv");
    big.splice(
        0..0,
        format!("X-Filler: {}\r\n", "x".repeat(900))
            .repeat(300)
            .into_bytes(),
    );
    let (code, text) = c.send("alice@example.com", &["bob@partner.example"], &big);
    assert_eq!(code, 552, "{text}");
    // The session is still usable after the refused message.
    assert_eq!(c.cmd("NOOP").0, 250);

    // The next hop refuses for now: 451, so Postfix keeps the message and retries.
    sink.fail.store(true, Ordering::SeqCst);
    let (code, text) = c.send(
        "alice@example.com",
        &["bob@partner.example"],
        &message("bob@partner.example", "Retry", "figures.csv"),
    );
    assert_eq!(code, 451, "{text}");
    sink.fail.store(false, Ordering::SeqCst);
    assert_eq!(c.cmd("QUIT").0, 221);

    let (status, body) = filter.http("/metrics");
    assert!(status.contains("200"), "{status}");
    assert_eq!(
        metric(
            &body,
            "sealgate_filter_messages_total{action=\"delivered\"}"
        ),
        2
    );
    assert_eq!(
        metric(&body, "sealgate_filter_messages_total{action=\"rejected\"}"),
        1
    );
    assert_eq!(
        metric(&body, "sealgate_filter_messages_total{action=\"too_big\"}"),
        1
    );
    assert_eq!(
        metric(&body, "sealgate_filter_messages_total{action=\"deferred\"}"),
        1
    );
    assert_eq!(
        metric(&body, "sealgate_filter_errors_total{kind=\"next_hop\"}"),
        1
    );
    assert_eq!(metric(&body, "sealgate_filter_message_seconds_count"), 5);
    assert_eq!(
        metric(&body, "sealgate_filter_message_seconds_bucket{le=\"+Inf\"}"),
        5
    );
    let (status, body) = filter.http("/health");
    assert!(status.contains("200") && body == "ok\n", "{status} {body}");
    assert!(filter.http("/nothing").0.contains("404"));

    // Three delivered or rejected messages went through the gateway, plus the deferred
    // one: four audit records, the chain intact.
    let head = sealgate::audit::verify_file(s.dir.join("audit.jsonl")).unwrap();
    assert_eq!(head.records, 4);
}

#[test]
fn next_hop_down_is_a_temporary_failure() {
    if !require("openssl") {
        return;
    }
    let s = setup();
    // Nothing listens on the next hop's port.
    let filter = Filter::start(&s.dir, free_addr());
    let mut c = Client::connect(filter.listen);
    let (code, text) = c.send(
        "alice@example.com",
        &["bob@partner.example"],
        &message("bob@partner.example", "Figures", "figures.csv"),
    );
    assert_eq!(code, 451, "{text}");
    assert!(text.contains("next hop"), "{text}");
}

#[test]
fn sigterm_finishes_the_message_in_flight_then_exits() {
    if !require("openssl") {
        return;
    }
    let s = setup();
    let sink = Sink::start();
    let mut filter = Filter::start(&s.dir, sink.addr);
    let mut busy = Client::connect(filter.listen);
    let mut idle = Client::connect(filter.listen);
    assert_eq!(busy.cmd("MAIL FROM:<alice@example.com>").0, 250);
    assert_eq!(busy.cmd("RCPT TO:<bob@partner.example>").0, 250);
    assert_eq!(busy.cmd("DATA").0, 354);
    let wire = stuffed(&message("bob@partner.example", "In flight", "figures.csv"));
    let (first, rest) = wire.split_at(wire.len() / 2);
    busy.w.write_all(first).unwrap();
    filter.terminate();
    std::thread::sleep(Duration::from_millis(600));
    // No new sessions; the idle one is told to come back later.
    assert!(TcpStream::connect(filter.listen).is_err());
    assert_eq!(idle.reply().0, 421);
    // The message in flight is finished and delivered, then the filter exits cleanly.
    busy.w.write_all(rest).unwrap();
    let (code, text) = busy.reply();
    assert_eq!(code, 250, "{text}");
    assert_eq!(sink.received().len(), 1);
    assert_eq!(busy.reply().0, 421);
    assert_eq!(filter.wait(30), Some(0));
}
