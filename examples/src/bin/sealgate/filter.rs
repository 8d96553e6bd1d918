//! `sealgate filter`: an SMTP content filter for Postfix's after-queue filter protocol
//! (FILTER_README): Postfix hands each message over SMTP on `--listen`, the gateway processes
//! it, and the processed copies go over SMTP to `--next-hop` (Postfix's reinjection listener).
//!
//! A message is accepted (250 after DATA) only once every copy was accepted by the next hop,
//! so a crash loses nothing: Postfix keeps the message queued and tries again. A message is
//! delivered to all its recipients or to none: a policy rejection of any recipient answers
//! 550 with the reasons; a recipient held because protection failed, a key store or next-hop
//! failure answers 451 (Postfix retries). One thread per connection, at most
//! `--max-connections` (more are answered 421); SIGTERM and SIGINT stop accepting, let each
//! session finish the message it is on, and exit. `--metrics` serves `/metrics` (Prometheus
//! text) and `/health` on a separate port.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use sealgate::config::GatewayConfig;
use sealgate::{Envelope, Gateway};

use super::Failure;
use super::smtp::{self, Command, Data, Line, LineReader};

#[derive(Args)]
pub(crate) struct FilterArgs {
    /// The gateway configuration (gateway.toml: key store, policy, audit file).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Where Postfix hands messages over (its content_filter destination).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:10025")]
    listen: SocketAddr,
    /// Where processed messages go (Postfix's reinjection listener, content_filter empty).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:10026")]
    next_hop: SocketAddr,
    /// Serve /metrics (Prometheus text format) and /health on this address.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<SocketAddr>,
    /// Sessions at once (match Postfix's maxproc of the filter transport); more get 421.
    #[arg(long, value_name = "N", default_value_t = 20)]
    max_connections: usize,
    /// Seconds a client may stay silent before the session is closed.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    timeout: u64,
    /// Seconds to wait for the next hop (connect and each reply).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    next_hop_timeout: u64,
    /// Seconds to wait for sessions to finish after SIGTERM before exiting anyway.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    shutdown_grace: u64,
}

/// How often a blocked read wakes up to look at the shutdown flag.
const TICK: Duration = Duration::from_millis(200);

/// Latency histogram buckets, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The counters behind /metrics.
#[derive(Default)]
struct Metrics {
    inner: Mutex<Counters>,
}

#[derive(Default)]
struct Counters {
    /// By action: delivered, rejected (5xx policy), deferred (4xx), too_big, failed (5xx other).
    messages: BTreeMap<&'static str, u64>,
    /// By kind: gateway, next_hop, protocol, busy.
    errors: BTreeMap<&'static str, u64>,
    /// Copies handed to the next hop, by treatment.
    copies: BTreeMap<String, u64>,
    latency_buckets: [u64; BUCKETS.len()],
    latency_sum: f64,
    latency_count: u64,
    sessions: u64,
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Counters)) {
        if let Ok(mut c) = self.inner.lock() {
            f(&mut c);
        }
    }

    fn message(&self, action: &'static str, started: Instant) {
        let secs = started.elapsed().as_secs_f64();
        self.with(|c| {
            *c.messages.entry(action).or_default() += 1;
            for (i, le) in BUCKETS.iter().enumerate() {
                if secs <= *le {
                    c.latency_buckets[i] += 1;
                }
            }
            c.latency_sum += secs;
            c.latency_count += 1;
        });
    }

    fn error(&self, kind: &'static str) {
        self.with(|c| *c.errors.entry(kind).or_default() += 1);
    }

    fn render(&self, active: usize) -> String {
        use std::fmt::Write as _;
        let Ok(c) = self.inner.lock() else {
            return String::new();
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP sealgate_filter_messages_total Messages answered, by action.\n\
             # TYPE sealgate_filter_messages_total counter"
        );
        for a in ["delivered", "rejected", "deferred", "too_big", "failed"] {
            let n = c.messages.get(a).copied().unwrap_or(0);
            let _ = writeln!(s, "sealgate_filter_messages_total{{action=\"{a}\"}} {n}");
        }
        let _ = writeln!(
            s,
            "# HELP sealgate_filter_errors_total Failures, by kind.\n\
             # TYPE sealgate_filter_errors_total counter"
        );
        for k in ["gateway", "next_hop", "protocol", "busy"] {
            let n = c.errors.get(k).copied().unwrap_or(0);
            let _ = writeln!(s, "sealgate_filter_errors_total{{kind=\"{k}\"}} {n}");
        }
        let _ = writeln!(
            s,
            "# HELP sealgate_filter_copies_total Copies handed to the next hop, by treatment.\n\
             # TYPE sealgate_filter_copies_total counter"
        );
        for (t, n) in &c.copies {
            let t: String = t
                .chars()
                .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
                .collect();
            let _ = writeln!(s, "sealgate_filter_copies_total{{treatment=\"{t}\"}} {n}");
        }
        let _ = writeln!(
            s,
            "# HELP sealgate_filter_message_seconds Time from end of DATA to the answer.\n\
             # TYPE sealgate_filter_message_seconds histogram"
        );
        for (le, n) in BUCKETS.iter().zip(c.latency_buckets) {
            let _ = writeln!(
                s,
                "sealgate_filter_message_seconds_bucket{{le=\"{le}\"}} {n}"
            );
        }
        let _ = writeln!(
            s,
            "sealgate_filter_message_seconds_bucket{{le=\"+Inf\"}} {}\n\
             sealgate_filter_message_seconds_sum {}\n\
             sealgate_filter_message_seconds_count {}",
            c.latency_count, c.latency_sum, c.latency_count
        );
        let _ = writeln!(
            s,
            "# HELP sealgate_filter_sessions_total SMTP sessions accepted.\n\
             # TYPE sealgate_filter_sessions_total counter\n\
             sealgate_filter_sessions_total {}\n\
             # HELP sealgate_filter_sessions_active SMTP sessions open now.\n\
             # TYPE sealgate_filter_sessions_active gauge\n\
             sealgate_filter_sessions_active {active}",
            c.sessions
        );
        s
    }
}

/// What every session shares.
struct Shared {
    gateway: Gateway,
    next_hop: SocketAddr,
    next_hop_timeout: Duration,
    idle_timeout: Duration,
    max_message: usize,
    max_recipients: usize,
    shutdown: Arc<AtomicBool>,
    metrics: Metrics,
    /// Sessions running; the condvar wakes the shutdown wait.
    active: (Mutex<usize>, Condvar),
}

impl Shared {
    fn active(&self) -> usize {
        self.active.0.lock().map(|n| *n).unwrap_or(0)
    }
}

/// Decrements the session count when a session ends, however it ends.
struct SessionSlot(Arc<Shared>);

impl Drop for SessionSlot {
    fn drop(&mut self) {
        if let Ok(mut n) = self.0.active.0.lock() {
            *n = n.saturating_sub(1);
        }
        self.0.active.1.notify_all();
    }
}

pub(crate) fn run(a: FilterArgs) -> Result<u8, Failure> {
    let config = GatewayConfig::load(&a.config)?;
    let limits = config.limits.clone();
    let gateway = config.build()?;
    let listener = TcpListener::bind(a.listen)
        .map_err(|e| Failure(2, format!("--listen {}: {e}", a.listen)))?;
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&shutdown))
            .map_err(|e| Failure(2, format!("signal handler: {e}")))?;
    }
    let shared = Arc::new(Shared {
        gateway,
        next_hop: a.next_hop,
        next_hop_timeout: Duration::from_secs(a.next_hop_timeout.max(1)),
        idle_timeout: Duration::from_secs(a.timeout.max(1)),
        max_message: limits.max_message_bytes,
        max_recipients: limits.max_recipients,
        shutdown: Arc::clone(&shutdown),
        metrics: Metrics::default(),
        active: (Mutex::new(0), Condvar::new()),
    });
    if let Some(addr) = a.metrics {
        let l =
            TcpListener::bind(addr).map_err(|e| Failure(2, format!("--metrics {addr}: {e}")))?;
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || serve_metrics(l, &shared));
    }
    let local = listener
        .local_addr()
        .map_err(|e| Failure(2, format!("--listen: {e}")))?;
    eprintln!(
        "sealgate filter: listening on {local}, next hop {}",
        a.next_hop
    );
    listener
        .set_nonblocking(true)
        .map_err(|e| Failure(2, format!("--listen: {e}")))?;
    while !shutdown.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => admit(stream, &shared, a.max_connections.max(1)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(TICK / 4),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // EMFILE and the like: keep serving the sessions we have.
                eprintln!("sealgate filter: accept: {e}");
                std::thread::sleep(TICK);
            }
        }
    }
    drop(listener);
    eprintln!(
        "sealgate filter: stopping, {} session(s) to finish",
        shared.active()
    );
    let deadline = Instant::now() + Duration::from_secs(a.shutdown_grace);
    let (lock, cv) = &shared.active;
    let mut n = lock
        .lock()
        .map_err(|_| Failure(2, "session counter poisoned".into()))?;
    while *n > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            eprintln!(
                "sealgate filter: {} session(s) cut off after the grace time",
                *n
            );
            return Ok(1);
        }
        n = cv
            .wait_timeout(n, left.min(TICK))
            .map_err(|_| Failure(2, "session counter poisoned".into()))?
            .0;
    }
    eprintln!("sealgate filter: stopped");
    Ok(0)
}

/// Start a session for `stream`, or answer 421 when `max` sessions are running.
fn admit(mut stream: TcpStream, shared: &Arc<Shared>, max: usize) {
    {
        let Ok(mut n) = shared.active.0.lock() else {
            return;
        };
        if *n >= max {
            drop(n);
            shared.metrics.error("busy");
            let _ = stream.write_all(b"421 4.3.2 Too many connections, try again later\r\n");
            return;
        }
        *n += 1;
    }
    shared.metrics.with(|c| c.sessions += 1);
    let slot = SessionSlot(Arc::clone(shared));
    let spawned = std::thread::Builder::new()
        .name("smtp-session".into())
        .spawn(move || {
            let shared = Arc::clone(&slot.0);
            if let Err(e) = session(stream, &shared)
                && !matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::UnexpectedEof
                )
            {
                shared.metrics.error("protocol");
            }
            drop(slot);
        });
    if let Err(e) = spawned {
        eprintln!("sealgate filter: cannot start a session thread: {e}");
    }
}

fn reply(w: &mut impl Write, line: &str) -> io::Result<()> {
    w.write_all(line.as_bytes())?;
    w.write_all(b"\r\n")?;
    w.flush()
}

/// The text of a reply line: printable ASCII only (reasons come from rules and certificates),
/// bounded.
fn reply_text(s: &str) -> String {
    let mut t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .collect();
    t.truncate(400);
    t
}

/// One SMTP session: greeting, commands, each message processed and handed on.
fn session(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    // The listener is non-blocking (it polls the shutdown flag); the session is not.
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(TICK))?;
    stream.set_write_timeout(Some(shared.idle_timeout))?;
    stream.set_nodelay(true)?;
    let mut out = io::BufWriter::new(stream.try_clone()?);
    let mut input = LineReader::new(stream);
    let hostname = shared.gateway.options().hostname.clone();
    reply(
        &mut out,
        &format!("220 {hostname} ESMTP Sealgate content filter"),
    )?;
    let mut from: Option<String> = None;
    let mut rcpts: Vec<String> = Vec::new();
    let mut line = Vec::with_capacity(512);
    let mut msg = Vec::new();
    loop {
        let in_transaction = from.is_some();
        let mut idle = Duration::ZERO;
        let mut on_idle = |pending: bool| {
            idle += TICK;
            // At shutdown a session between messages ends now; one in a transaction (the
            // client is sending it) goes on to its end.
            if shared.shutdown.load(Ordering::Relaxed) && !pending && !in_transaction {
                return false;
            }
            idle < shared.idle_timeout
        };
        let got = match input.read_line(&mut line, smtp::MAX_COMMAND_LINE, &mut on_idle) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                let why = if shared.shutdown.load(Ordering::Relaxed) {
                    "421 4.3.2 Shutting down, try again later"
                } else {
                    "421 4.4.2 Idle timeout, closing"
                };
                let _ = reply(&mut out, why);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        match got {
            Line::Eof => return Ok(()),
            Line::TooLong => {
                reply(&mut out, "500 5.5.6 Command line too long")?;
                continue;
            }
            Line::Text => {}
        }
        match smtp::parse_command(&line) {
            Command::Ehlo(_) => {
                from = None;
                rcpts.clear();
                let text = format!(
                    "250-{hostname}\r\n250-PIPELINING\r\n250-SIZE {}\r\n250-8BITMIME\r\n\
                     250 ENHANCEDSTATUSCODES",
                    shared.max_message
                );
                reply(&mut out, &text)?;
            }
            Command::Helo(_) => {
                from = None;
                rcpts.clear();
                reply(&mut out, &format!("250 {hostname}"))?;
            }
            Command::Mail { from: f, size } => {
                if from.is_some() {
                    reply(&mut out, "503 5.5.1 Nested MAIL command")?;
                } else if size.is_some_and(|s| s > shared.max_message as u64) {
                    reply(
                        &mut out,
                        "552 5.3.4 Message size exceeds the fixed maximum message size",
                    )?;
                } else {
                    from = Some(f);
                    reply(&mut out, "250 2.1.0 Ok")?;
                }
            }
            Command::Rcpt(r) => {
                if from.is_none() {
                    reply(&mut out, "503 5.5.1 Need MAIL first")?;
                } else if rcpts.len() >= shared.max_recipients {
                    reply(&mut out, "452 4.5.3 Too many recipients")?;
                } else {
                    rcpts.push(r);
                    reply(&mut out, "250 2.1.5 Ok")?;
                }
            }
            Command::Data => {
                let Some(sender) = from.take() else {
                    reply(&mut out, "503 5.5.1 Need MAIL first")?;
                    continue;
                };
                if rcpts.is_empty() {
                    reply(&mut out, "503 5.5.1 Need RCPT first")?;
                    continue;
                }
                reply(&mut out, "354 End data with <CR><LF>.<CR><LF>")?;
                let mut idle = Duration::ZERO;
                let mut on_idle = |_: bool| {
                    idle += TICK;
                    idle < shared.idle_timeout
                };
                let data = smtp::read_data(&mut input, &mut msg, shared.max_message, &mut on_idle)?;
                let recipients = std::mem::take(&mut rcpts);
                // The next-hop connection of a delivered message: QUIT only after our 250 is
                // written, so that the window in which a crash duplicates a message (the next
                // hop has it, Postfix has no 250 yet and retries) has no round trip in it.
                let mut next_hop = None;
                let answer = match data {
                    None => return Ok(()),
                    Some(Data::TooBig) => {
                        shared.metrics.message("too_big", Instant::now());
                        "552 5.3.4 Message size exceeds the fixed maximum message size".to_owned()
                    }
                    Some(Data::LineTooLong) => {
                        shared.metrics.error("protocol");
                        shared.metrics.message("failed", Instant::now());
                        "500 5.5.6 Line too long".to_owned()
                    }
                    Some(Data::Complete) => {
                        let (answer, client) = handle(shared, &sender, recipients, &msg);
                        next_hop = client;
                        answer
                    }
                };
                msg.clear();
                if msg.capacity() > 1 << 20 {
                    msg.shrink_to(0);
                }
                reply(&mut out, &answer)?;
                if let Some(client) = next_hop {
                    client.quit();
                }
            }
            Command::Rset => {
                from = None;
                rcpts.clear();
                reply(&mut out, "250 2.0.0 Ok")?;
            }
            Command::Noop => reply(&mut out, "250 2.0.0 Ok")?,
            Command::Quit => {
                reply(&mut out, &format!("221 2.0.0 {hostname} closing"))?;
                return Ok(());
            }
            Command::Vrfy => reply(&mut out, "252 2.5.2 Cannot VRFY")?,
            Command::Help => reply(&mut out, "214 2.0.0 See RFC 5321")?,
            Command::Unknown => reply(&mut out, "502 5.5.2 Command not implemented")?,
            Command::Syntax(why) => reply(&mut out, &format!("501 5.5.4 Syntax: {why}"))?,
        }
    }
}

/// Process one message and hand its copies on; the reply line for the client.
/// The reply to the message, and the next-hop connection still to close (QUIT) once the reply
/// is written.
fn handle(
    shared: &Shared,
    sender: &str,
    rcpts: Vec<String>,
    msg: &[u8],
) -> (String, Option<smtp::Client>) {
    let started = Instant::now();
    let envelope = Envelope {
        mail_from: (!sender.is_empty()).then(|| sender.to_owned()),
        rcpt_to: rcpts,
    };
    let outcome = match shared.gateway.process(msg, &envelope) {
        Ok(o) => o,
        Err(e) => {
            shared.metrics.error("gateway");
            // A message we cannot parse stays unparseable: refuse it. Anything else (key
            // store down, a key that cannot be opened, configuration) may pass: retry.
            let answer = if matches!(e, sealgate::Error::Mime(_)) {
                shared.metrics.message("failed", started);
                format!(
                    "554 5.6.0 Message cannot be processed: {}",
                    reply_text(&e.to_string())
                )
            } else {
                shared.metrics.message("deferred", started);
                eprintln!("sealgate filter: {}", super::one_line(&e.to_string()));
                format!(
                    "451 4.3.0 Temporary failure in the gateway: {}",
                    reply_text(&e.to_string())
                )
            };
            return (answer, None);
        }
    };
    let rejected: Vec<String> = outcome
        .refused
        .iter()
        .filter(|r| r.by_policy)
        .map(|r| format!("{}: {}", r.recipient, r.reason))
        .collect();
    if !rejected.is_empty() {
        shared.metrics.message("rejected", started);
        return (
            format!(
                "550 5.7.1 Rejected by policy: {}",
                reply_text(&rejected.join("; "))
            ),
            None,
        );
    }
    let held: Vec<String> = outcome
        .refused
        .iter()
        .map(|r| format!("{}: {}", r.recipient, r.reason))
        .collect();
    if !held.is_empty() {
        shared.metrics.message("deferred", started);
        return (
            format!(
                "451 4.7.0 Cannot protect the message as policy requires: {}",
                reply_text(&held.join("; "))
            ),
            None,
        );
    }
    let copies: Vec<(&str, &sealgate::Delivery)> = outcome
        .deliveries
        .iter()
        .map(|d| (sender, d))
        // Messages the gateway writes itself (password notifications, MIKE replies) are sent
        // with the null sender: a bounce of one must not loop back to us.
        .chain(outcome.notifications.iter().map(|d| ("", d)))
        .filter(|(_, d)| !d.recipients.is_empty())
        .collect();
    match deliver(shared, &copies) {
        Ok(client) => {
            shared.metrics.with(|c| {
                for (_, d) in &copies {
                    *c.copies.entry(d.treatment.clone()).or_default() += 1;
                }
            });
            shared.metrics.message("delivered", started);
            let treatments: Vec<&str> = outcome
                .deliveries
                .iter()
                .map(|d| d.treatment.as_str())
                .collect();
            let answer = format!(
                "250 2.0.0 Ok: {} cop{} ({})",
                copies.len(),
                if copies.len() == 1 { "y" } else { "ies" },
                reply_text(&treatments.join(", "))
            );
            (answer, client)
        }
        Err(e) => {
            shared.metrics.error("next_hop");
            eprintln!("sealgate filter: {e}");
            let answer = if e.is_permanent() {
                shared.metrics.message("failed", started);
                format!("554 5.0.0 {}", reply_text(&e.to_string()))
            } else {
                shared.metrics.message("deferred", started);
                format!("451 4.4.0 {}", reply_text(&e.to_string()))
            };
            (answer, None)
        }
    }
}

/// Every copy, in one connection to the next hop, returned open (the caller sends QUIT after
/// answering Postfix); `None` when there was nothing to send.
fn deliver(
    shared: &Shared,
    copies: &[(&str, &sealgate::Delivery)],
) -> Result<Option<smtp::Client>, smtp::SendError> {
    if copies.is_empty() {
        return Ok(None);
    }
    let hostname = &shared.gateway.options().hostname;
    let mut client = smtp::Client::connect(shared.next_hop, hostname, shared.next_hop_timeout)?;
    for (from, d) in copies {
        if d.require_tls {
            client.send(from, &d.recipients, &with_require_tls(&d.message))?;
        } else {
            client.send(from, &d.recipients, &d.message)?;
        }
    }
    Ok(Some(client))
}

/// The header field that carries a `require_tls` decision to the next hop. Postfix has no
/// REQUIRETLS (RFC 8689), so the reinjection path routes on it with a header_checks FILTER to
/// a transport with `smtp_tls_security_level = encrypt` (docs/deploy.md). One already in the
/// message can only make delivery stricter, so it is left as it is.
const REQUIRE_TLS_FIELD: &str = "X-Sealgate-Require-TLS: yes\r\n";

/// The copy with `REQUIRE_TLS_FIELD` in front of its header.
fn with_require_tls(message: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(REQUIRE_TLS_FIELD.len() + message.len());
    m.extend_from_slice(REQUIRE_TLS_FIELD.as_bytes());
    m.extend_from_slice(message);
    m
}

/// The metrics port: `GET /metrics` and `GET /health`, one request per connection.
fn serve_metrics(listener: TcpListener, shared: &Shared) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let mut req = [0u8; 2048];
        let mut n = 0;
        // Read the request head (bounded); only its first line matters.
        while n < req.len() {
            match stream.read(&mut req[n..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => {
                    n += k;
                    if req[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
        let head = String::from_utf8_lossy(&req[..n]);
        let target = head
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("GET "))
            .and_then(|l| l.split(' ').next())
            .unwrap_or("");
        let (status, body) = match target {
            "/metrics" => ("200 OK", shared.metrics.render(shared.active())),
            "/health" => {
                if shared.shutdown.load(Ordering::Relaxed) {
                    ("503 Service Unavailable", "stopping\n".to_owned())
                } else {
                    match shared.gateway.keyring().store().generation() {
                        Ok(_) => ("200 OK", "ok\n".to_owned()),
                        Err(e) => (
                            "503 Service Unavailable",
                            format!("key store: {}\n", super::one_line(&e.to_string())),
                        ),
                    }
                }
            }
            _ => ("404 Not Found", "not found\n".to_owned()),
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}
