//! A private PostgreSQL server for the tests: `initdb` in a temporary directory, `pg_ctl
//! start` on a free loopback port (and a Unix socket in the same directory), stopped when
//! the guard is dropped. As root the server runs as `nobody` (PostgreSQL refuses to run as
//! root). Without the server binaries the tests print a notice and skip, except under
//! `CI=true`, where the binaries are required.

// Test-only code (compiled under cfg(test)): a harness that cannot set up fails the test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A running test server; stopped on drop.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_nobody: bool,
    databases: AtomicUsize,
}

/// The directory with `initdb` and `pg_ctl`: `$SEALGATE_PG_BIN`, else the newest
/// `/usr/lib/postgresql/N/bin` (Debian's layout).
fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SEALGATE_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

impl PgServer {
    /// Start a server, or `None` (after a notice on stderr) when PostgreSQL is not installed.
    /// Panics when it is installed but does not start, and when it is missing under `CI=true`.
    pub fn start() -> Option<Self> {
        let Some(bin) = find_bin() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true: the PostgreSQL server binaries (initdb, pg_ctl) are required"
            );
            eprintln!("notice: PostgreSQL server binaries not found: PostgreSQL tests skipped");
            return None;
        };
        let as_nobody = is_root();
        let dir = tempfile::Builder::new()
            .prefix("sg-pg")
            .tempdir()
            .expect("temp dir");
        if as_nobody {
            let ok = Command::new("chown")
                .args(["nobody"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown nobody {}", dir.path().display());
        }
        let mut server = Self {
            dir,
            bin,
            port: 0,
            as_nobody,
            databases: AtomicUsize::new(0),
        };
        let data = server.data();
        server.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "sg".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        // A free port can be taken by someone else before the server binds it: try again.
        for attempt in 0..5 {
            server.port = free_port();
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                server.port,
                server.dir.path().display()
            );
            let log = server.dir.path().join("server.log");
            let started = server.try_run(
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-o".as_ref(),
                    opts.as_ref(),
                    "-l".as_ref(),
                    log.as_os_str(),
                    "-w".as_ref(),
                    "start".as_ref(),
                ],
            );
            if started {
                return Some(server);
            }
            eprintln!(
                "PostgreSQL did not start (attempt {attempt}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        panic!("PostgreSQL did not start");
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        let mut c = if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        // The server inherits no pipe of ours: a test harness waiting for EOF would hang.
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir(self.dir.path());
        c
    }

    fn try_run(&self, tool: &str, args: &[&std::ffi::OsStr]) -> bool {
        self.command(tool)
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    }

    fn run(&self, tool: &str, args: &[&std::ffi::OsStr]) {
        let out = self
            .command(tool)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Connection parameters for database `name`.
    pub fn params(&self, name: &str) -> String {
        format!("host=127.0.0.1 port={} user=sg dbname={name}", self.port)
    }

    /// A new, empty database; its connection parameters.
    pub fn create_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("sg_test_{n}");
        let mut c = postgres::Client::connect(&self.params("postgres"), postgres::NoTls)
            .expect("connect to the test server");
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        self.params(&name)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.try_run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
