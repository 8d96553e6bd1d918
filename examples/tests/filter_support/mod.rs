//! What the filter tests share: a gateway setup (openssl-made PKI, SQLite store, policy), an
//! in-process SMTP sink for the next hop, a raw SMTP client and a `sealgate filter` process.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealgate::Limits;
use sealgate::keystore::{ImportOptions, Keyring, SqliteStore, StoreSecret};
use sealgate_tests::{KeyType, P12_PASSWORD, Pki, contains, run};

pub mod postfix;

pub const BIN: &str = env!("CARGO_BIN_EXE_sealgate");
pub const KEY: &str = "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c";
pub const MARKER: &str = "FILTER-MARKER-4711";
pub const ATTACHED: &str = "ATTACHED-FIGURES-0042";

pub const POLICY: &str = r#"
internal_domains = ["example.com"]

[[rule]]
name = "tls-only"
when = { subject_contains = ["tls-only"] }
action = "require_tls"
stop = false

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

pub const CONFIG: &str = r#"
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
pub struct Received {
    pub from: String,
    pub rcpts: Vec<String>,
    /// The message, or only its header for a sink started with `Sink::start_light`.
    pub data: Vec<u8>,
    /// The size of the whole message.
    pub size: usize,
    /// Whether the message carries `MARKER` in the clear.
    pub clear: bool,
    /// When the end of its DATA arrived.
    pub at: Instant,
}

/// The next hop: a minimal SMTP server that keeps every message, or answers 451 to MAIL
/// while `fail` is set.
pub struct Sink {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Received>>>,
    pub fail: Arc<AtomicBool>,
}

impl Sink {
    pub fn start() -> Sink {
        Self::start_keeping(true)
    }

    /// A sink that keeps only the header of each message (a load test's thousands of them).
    pub fn start_light() -> Sink {
        Self::start_keeping(false)
    }

    fn start_keeping(whole: bool) -> Sink {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let fail = Arc::new(AtomicBool::new(false));
        let (g, f) = (got.clone(), fail.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let (g, f) = (g.clone(), f.clone());
                std::thread::spawn(move || sink_session(s.unwrap(), &g, &f, whole));
            }
        });
        Sink { addr, got, fail }
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

pub fn sink_session(s: TcpStream, got: &Mutex<Vec<Received>>, fail: &AtomicBool, whole: bool) {
    let _ = serve_smtp(
        s,
        "sink",
        || {
            fail.load(Ordering::SeqCst)
                .then(|| "451 4.3.0 sink says later".to_string())
        },
        |from, rcpts, mut data| {
            let at = Instant::now();
            let (size, clear) = (data.len(), contains(&data, MARKER));
            if !whole {
                let end = data
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(data.len(), |p| p + 4);
                data.truncate(end);
            }
            got.lock().unwrap().push(Received {
                from,
                rcpts,
                data,
                size,
                clear,
                at,
            });
            ("250 queued".to_string(), None)
        },
    );
}

/// What `serve_smtp` runs after writing the reply to a message.
pub type AfterReply = Box<dyn FnOnce()>;

/// The server side of one SMTP session (the sink, a pass-through relay): `refuse_mail` may
/// answer MAIL FROM with an error instead of 250; each message (envelope and un-stuffed data)
/// goes to `message`, whose answer is the reply to the end of DATA and what to do right after
/// that reply is written (a pass-through's QUIT to its next hop). Returns when the client
/// quits or goes away (also mid-message: nothing is delivered then).
pub fn serve_smtp(
    s: TcpStream,
    name: &str,
    mut refuse_mail: impl FnMut() -> Option<String>,
    mut message: impl FnMut(String, Vec<String>, Vec<u8>) -> (String, Option<AfterReply>),
) -> std::io::Result<()> {
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let mut say = |l: &str| w.write_all(format!("{l}\r\n").as_bytes());
    say(&format!("220 {name}"))?;
    let (mut from, mut rcpts) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let addr = || match (cmd.find('<'), cmd.rfind('>')) {
            (Some(a), Some(b)) if a < b => cmd[a + 1..b].to_string(),
            _ => String::new(),
        };
        if upper.starts_with("EHLO") {
            say(&format!("250-{name}\r\n250 PIPELINING"))?;
        } else if upper.starts_with("MAIL FROM:") {
            if let Some(refusal) = refuse_mail() {
                say(&refusal)?;
            } else {
                from = addr();
                rcpts.clear();
                say("250 ok")?;
            }
        } else if upper.starts_with("RCPT TO:") {
            rcpts.push(addr());
            say("250 ok")?;
        } else if upper == "DATA" {
            say("354 go")?;
            let mut data = Vec::new();
            loop {
                let mut l = Vec::new();
                if r.read_until(b'\n', &mut l)? == 0 {
                    // The sender went away mid-message (a killed filter): nothing received.
                    return Ok(());
                }
                if l == b".\r\n" {
                    break;
                }
                let l = if l.starts_with(b".") { &l[1..] } else { &l[..] };
                data.extend_from_slice(l);
            }
            let (answer, after) = message(from.clone(), std::mem::take(&mut rcpts), data);
            say(&answer)?;
            if let Some(after) = after {
                after();
            }
        } else if upper == "QUIT" {
            let _ = say("221 bye");
            return Ok(());
        } else {
            say("250 ok")?;
        }
    }
}

/// A client of the filter, speaking raw SMTP.
pub struct Client {
    pub r: BufReader<TcpStream>,
    pub w: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Self::connect_as(addr, "test.example")
    }

    /// A client that introduces itself as `helo`.
    pub fn connect_as(addr: SocketAddr, helo: &str) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut c = Client {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        assert_eq!(c.reply().0, 220);
        c.cmd(&format!("EHLO {helo}"));
        c
    }

    /// The code and the text of the (last line of the) reply.
    pub fn reply(&mut self) -> (u16, String) {
        loop {
            let mut l = String::new();
            self.r.read_line(&mut l).unwrap();
            assert!(l.len() >= 4, "short reply {l:?}");
            if l.as_bytes()[3] != b'-' {
                return (l[..3].parse().unwrap(), l[4..].trim_end().to_string());
            }
        }
    }

    pub fn cmd(&mut self, line: &str) -> (u16, String) {
        self.w.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        self.reply()
    }

    /// A whole transaction; the reply to the end of DATA (or to the first failing command).
    pub fn send(&mut self, from: &str, to: &[&str], msg: &[u8]) -> (u16, String) {
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
pub fn stuffed(msg: &[u8]) -> Vec<u8> {
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

/// A loopback address with a free port for a server a test starts later (a filter, a
/// metrics endpoint, a Postfix listener). Taken below the kernel's ephemeral range (32768 and
/// up on Linux): a port from `bind(0)` is released before the server binds it, and in that gap
/// any outgoing connection of a parallel test could be given it as its local port, which made
/// a filter fail to start now and then. Ports are tried from a per-process offset upwards.
pub fn free_addr() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let base = (std::process::id().wrapping_mul(2_654_435_761) >> 8) % SPAN;
    for _ in 0..SPAN {
        let port = LOW + (base + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port as u16)) {
            return l.local_addr().unwrap();
        }
    }
    panic!("no free loopback port in {LOW}..{}", LOW + SPAN);
}

/// A running `sealgate filter`; killed on drop.
pub struct Filter {
    pub child: Child,
    pub listen: SocketAddr,
    pub metrics: SocketAddr,
}

impl Filter {
    pub fn start(dir: &Path, next_hop: SocketAddr) -> Filter {
        Self::start_on(dir, free_addr(), next_hop)
    }

    /// A filter listening on `listen` (a restart on the same port).
    pub fn start_on(dir: &Path, listen: SocketAddr, next_hop: SocketAddr) -> Filter {
        Self::start_with(dir, listen, next_hop, &[])
    }

    /// A filter with more environment (the PostgreSQL parameters).
    pub fn start_with(
        dir: &Path,
        listen: SocketAddr,
        next_hop: SocketAddr,
        env: &[(&str, &str)],
    ) -> Filter {
        Self::start_args(dir, listen, next_hop, env, &[])
    }

    /// A filter with more environment and more arguments (`--max-connections N`).
    pub fn start_args(
        dir: &Path,
        listen: SocketAddr,
        next_hop: SocketAddr,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Filter {
        let metrics = free_addr();
        let child = Command::new(BIN)
            .envs(env.iter().copied())
            .arg("filter")
            .arg("--config")
            .arg(dir.join("gateway.toml"))
            .args(["--listen", &listen.to_string()])
            .args(["--next-hop", &next_hop.to_string()])
            .args(["--metrics", &metrics.to_string()])
            .args(["--next-hop-timeout", "5"])
            .args(args)
            .env("SG_FILTER_TEST_KEY", KEY)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut f = Filter {
            child,
            listen,
            metrics,
        };
        let start = Instant::now();
        while TcpStream::connect(listen).is_err() {
            if let Ok(Some(status)) = f.child.try_wait() {
                panic!("the filter on {listen} exited before listening: {status}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the filter did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        f
    }

    pub fn http(&self, path: &str) -> (String, String) {
        let mut s = TcpStream::connect(self.metrics).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap();
        (head.lines().next().unwrap().to_string(), body.to_string())
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn terminate(&self) {
        run(Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string()));
    }

    /// Wait for the exit status (at most `secs`).
    pub fn wait(&mut self, secs: u64) -> Option<i32> {
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

pub struct Setup {
    pub _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub pki: Pki,
    pub bob: sealgate_tests::User,
}

pub fn setup() -> Setup {
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
    import_pki(&kr, &pki, std::slice::from_ref(&bob.cert), &alice.p12);
    Setup {
        _tmp: tmp,
        dir,
        pki,
        bob,
    }
}

pub fn message(to: &str, subject: &str, attachment: &str) -> Vec<u8> {
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

/// A private PostgreSQL server (initdb + pg_ctl in a temp dir, loopback, as `nobody` when
/// root); stopped on drop. The same harness as sealgate-keystore's PostgreSQL tests, with the
/// command-line tools only.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_nobody: bool,
}

impl PgServer {
    /// A running server, or `None` after a notice when PostgreSQL is not installed (a failure
    /// under `CI=true`).
    pub fn start() -> Option<PgServer> {
        let bin = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
            let mut v: Vec<(u32, PathBuf)> = d
                .filter_map(|e| {
                    let e = e.ok()?;
                    let n: u32 = e.file_name().to_str()?.parse().ok()?;
                    let b = e.path().join("bin");
                    b.join("initdb").is_file().then_some((n, b))
                })
                .collect();
            v.sort();
            v.pop().map(|x| x.1)
        });
        let Some(bin) = bin else {
            assert!(
                !sealgate_tests::in_ci(),
                "CI=true: PostgreSQL (initdb, pg_ctl) is required"
            );
            eprintln!("NOTICE: skipping: PostgreSQL server binaries not found");
            return None;
        };
        let as_nobody = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let dir = tempfile::Builder::new().prefix("sg-pg").tempdir().unwrap();
        if as_nobody {
            run(Command::new("chown").arg("nobody").arg(dir.path()));
        }
        let mut s = PgServer {
            dir,
            bin,
            port: 0,
            as_nobody,
        };
        let data = s.dir.path().join("data");
        run(s
            .tool("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "sg", "--no-sync"]));
        for _ in 0..5 {
            s.port = free_addr().port();
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
                s.port,
                s.dir.path().display()
            );
            let ok = s
                .tool("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-o", &opts, "-l"])
                .arg(s.dir.path().join("log"))
                .args(["-w", "start"])
                .status()
                .unwrap()
                .success();
            if ok {
                return Some(s);
            }
        }
        panic!("PostgreSQL did not start");
    }

    fn tool(&self, name: &str) -> Command {
        let mut c = if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(self.bin.join(name));
            c
        } else {
            Command::new(self.bin.join(name))
        };
        c.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    /// A new database; its connection parameters.
    pub fn create_database(&self, name: &str) -> String {
        let port = self.port.to_string();
        let ok = self
            .tool("createdb")
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "sg", name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "createdb {name}");
        format!("host=127.0.0.1 port={} user=sg dbname={name}", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .status();
    }
}

/// Fills a key store the way every filter test needs it: the PKI's root as trust anchor, its
/// intermediate and `certs`, and the sender's PKCS#12 (`p12`, password [`P12_PASSWORD`]).
pub fn import_pki(kr: &Keyring, pki: &Pki, certs: &[PathBuf], p12: &Path) {
    let anchors = ImportOptions {
        trust_anchors: true,
        ..Default::default()
    };
    kr.import_paths(std::slice::from_ref(&pki.root), &anchors)
        .unwrap();
    let mut chain = vec![pki.intermediate.clone()];
    chain.extend_from_slice(certs);
    kr.import_paths(&chain, &ImportOptions::default()).unwrap();
    kr.import_paths(
        &[p12.to_path_buf()],
        &ImportOptions {
            password: Some(P12_PASSWORD.to_string().into()),
            ..Default::default()
        },
    )
    .unwrap();
}
