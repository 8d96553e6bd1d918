//! A private Postfix instance for the deployment tests: main.cf/master.cf written in a temp
//! dir (`postfix -c DIR`), loopback ports only, a submission smtpd with a content filter, a
//! reinjection smtpd with `content_filter=` empty, and relay to a sink.
//!
//! Needs root (Postfix's master runs as root) and `/usr/sbin/postfix`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sealgate_tests::{in_ci, run};

use super::free_addr;

pub const POSTFIX: &str = "/usr/sbin/postfix";

/// How the instance is set up; `PostfixConfig::new` gives the settings of the deployment
/// tests.
pub struct PostfixConfig {
    /// Where Postfix hands messages for filtering (`scan:[ip]:port`).
    pub filter: SocketAddr,
    /// Where filtered mail is relayed to.
    pub sink: SocketAddr,
    /// The reinjection smtpd's address (the filter's next hop).
    pub reinject: SocketAddr,
    /// maxproc of the `scan` transport: the filter sessions Postfix opens at once.
    pub scan_maxproc: usize,
    /// More `-o` lines of the `scan` transport in master.cf.
    pub scan_options: String,
    /// More main.cf lines.
    pub extra_main: String,
    /// More master.cf lines.
    pub extra_master: String,
}

impl PostfixConfig {
    pub fn new(filter: SocketAddr, sink: SocketAddr) -> PostfixConfig {
        PostfixConfig {
            filter,
            sink,
            reinject: free_addr(),
            scan_maxproc: 4,
            scan_options: String::new(),
            extra_main: String::new(),
            extra_master: String::new(),
        }
    }
}

/// A private Postfix instance; stopped on drop.
pub struct Postfix {
    pub dir: tempfile::TempDir,
    /// Where mail is submitted (smtpd with the content filter).
    pub smtpd: SocketAddr,
    /// The reinjection smtpd (no content filter): the filter's next hop.
    pub reinject: SocketAddr,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

impl Postfix {
    /// Whether Postfix can run here; a failure under `CI=true` when it cannot.
    pub fn available() -> bool {
        let ok = Path::new(POSTFIX).exists() && is_root();
        if !ok {
            assert!(
                !in_ci(),
                "CI=true: the Postfix test needs root and {POSTFIX} (apt package postfix)"
            );
            eprintln!("NOTICE: skipping: Postfix not installed or not root");
        }
        ok
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("conf")
    }

    pub fn start(filter: SocketAddr, sink: SocketAddr) -> Postfix {
        Self::start_with(&PostfixConfig::new(filter, sink))
    }

    pub fn start_with(cfg: &PostfixConfig) -> Postfix {
        let dir = tempfile::Builder::new().prefix("sg-pfx").tempdir().unwrap();
        let d = dir.path();
        // Postfix's daemons run as the postfix user: they must reach the queue.
        run(Command::new("chmod").arg("755").arg(d));
        for sub in ["conf", "queue", "data"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        run(Command::new("chown").arg("postfix").arg(d.join("data")));
        let (smtpd, reinject) = (free_addr(), cfg.reinject);
        let d = d.display();
        let main = format!(
            "compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.test.example
mydomain = test.example
myorigin = test.example
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [{sink_ip}]:{sink_port}
content_filter = scan:[{filter_ip}]:{filter_port}
smtp_tls_security_level = none
smtpd_tls_security_level = none
biff = no
# retry a deferred message within seconds, not minutes
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
{extra}",
            sink_ip = cfg.sink.ip(),
            sink_port = cfg.sink.port(),
            filter_ip = cfg.filter.ip(),
            filter_port = cfg.filter.port(),
            extra = cfg.extra_main,
        );
        let master = format!(
            "{smtpd_port} inet n - n - - smtpd
{reinject_port} inet n - n - - smtpd
  -o content_filter=
  -o receive_override_options=no_unknown_recipient_checks,no_milters
  -o cleanup_service_name=cleanup-sg
cleanup-sg unix n - n - 0 cleanup
  -o header_checks=regexp:{d}/conf/sealgate_tls.regexp
  -o mime_header_checks=
  -o nested_header_checks=
  -o body_checks=
tls-out unix - - n - - smtp
  -o smtp_tls_security_level=encrypt
scan unix - - n - {scan_maxproc} smtp
  -o smtp_send_xforward_command=no
  -o disable_mime_output_conversion=yes
{scan_options}pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
showq unix n - n - - showq
{extra}",
            smtpd_port = smtpd.port(),
            reinject_port = reinject.port(),
            scan_maxproc = cfg.scan_maxproc,
            scan_options = cfg.scan_options,
            extra = cfg.extra_master,
        );
        let p = Postfix {
            dir,
            smtpd,
            reinject,
        };
        std::fs::write(p.conf().join("main.cf"), main).unwrap();
        std::fs::write(p.conf().join("master.cf"), master).unwrap();
        // The filter's require_tls mark: such copies leave through a transport that insists
        // on STARTTLS (docs/deploy.md).
        std::fs::write(
            p.conf().join("sealgate_tls.regexp"),
            format!(
                "/^X-Sealgate-Require-TLS: yes$/ FILTER tls-out:[{}]:{}\n",
                cfg.sink.ip(),
                cfg.sink.port()
            ),
        )
        .unwrap();
        let ok = Command::new(POSTFIX)
            .arg("-c")
            .arg(p.conf())
            .arg("start")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "postfix start failed:\n{}", p.log());
        let start = Instant::now();
        while std::net::TcpStream::connect(smtpd).is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "{}", p.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    pub fn reinject(&self) -> SocketAddr {
        self.reinject
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// Try every deferred message now.
    pub fn flush(&self) {
        let _ = Command::new("/usr/sbin/postqueue")
            .arg("-c")
            .arg(self.conf())
            .arg("-f")
            .status();
    }

    /// `postqueue -p` output.
    pub fn queue(&self) -> String {
        let o = Command::new("/usr/sbin/postqueue")
            .arg("-c")
            .arg(self.conf())
            .arg("-p")
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `postqueue -p`: whether the queue is empty.
    pub fn queue_is_empty(&self) -> bool {
        self.queue().contains("Mail queue is empty")
    }

    /// The pid of Postfix's master process.
    pub fn master_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("queue/pid/master.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The proportional set size (kB; shared pages split among the processes sharing them,
    /// so the sum is not inflated by the shared libraries) of the master and all its
    /// children now.
    pub fn pss_kb(&self) -> u64 {
        let Some(master) = self.master_pid() else {
            return 0;
        };
        let mut total = pss(master).unwrap_or(0);
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return total;
        };
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(master) {
                total += pss(pid).unwrap_or(0);
            }
        }
        total
    }
}

/// A `/proc/PID/status` field in kB (`VmRSS:`, `VmHWM:`).
pub fn proc_kb(pid: u32, field: &str) -> Option<u64> {
    kb_field(&format!("/proc/{pid}/status"), field)
}

/// `Pss:` of `/proc/PID/smaps_rollup`, in kB.
fn pss(pid: u32) -> Option<u64> {
    kb_field(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

fn kb_field(path: &str, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(path).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new(POSTFIX)
            .arg("-c")
            .arg(self.conf())
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Wait (at most `secs`) until `f` holds.
pub fn wait_for(secs: u64, what: &str, log: impl Fn() -> String, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}; Postfix log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The Message-ID field of a message's header.
pub fn message_id(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let head = text.split("\r\n\r\n").next()?;
    head.lines()
        .find_map(|l| l.strip_prefix("Message-ID: ").map(str::to_owned))
}
