//! `sealgate process` with a configuration the test writes: a SQLite store filled with an
//! openssl-made PKI, a policy that demands S/MIME; outputs checked with openssl; exit codes
//! 0 (all delivered), 1 (a recipient held or rejected), 2 (error, one line).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use sealgate::Limits;
use sealgate::keystore::{ImportOptions, Keyring, SqliteStore, StoreSecret};
use sealgate_tests::{KeyType, P12_PASSWORD, Pki, openssl, require, run};

const BIN: &str = env!("CARGO_BIN_EXE_sealgate");
const KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const MARKER: &str = "PROCESS-CLI-MARKER-0815";

const POLICY: &str = r#"
internal_domains = ["example.com"]

[[rule]]
name = "no-exe"
when = { attachment_name = "*.exe" }
action = { reject = "no executables here" }

[[rule]]
name = "smime-required"
when = { direction = "outbound" }
action = [{ sign = "smime" }, { encrypt = ["smime"] }]
"#;

const CONFIG: &str = r#"
hostname = "gw.example.com"
policy = "rules/policy.toml"
audit = "audit.jsonl"
mike_address = "keys@example.com"

[store]
path = "keys.db"
key_env = "SG_PROCESS_TEST_KEY"
"#;

struct Setup {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    pki: Pki,
    bob: sealgate_tests::User,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let pki = Pki::new();
    let alice = pki.user("alice", "alice@example.com", KeyType::Rsa2048);
    let bob = pki.user("bob", "bob@partner.example", KeyType::Rsa2048);
    std::fs::create_dir(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/policy.toml"), POLICY).unwrap();
    std::fs::write(dir.join("gateway.toml"), CONFIG).unwrap();
    let kr = Keyring::open(
        Arc::new(SqliteStore::open(dir.join("keys.db")).unwrap()),
        Some(&StoreSecret::raw_key_from_hex(KEY).unwrap()),
        Limits::default(),
    )
    .unwrap();
    kr.import_paths(
        std::slice::from_ref(&pki.root),
        &ImportOptions {
            trust_anchors: true,
            ..Default::default()
        },
    )
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

fn message(to: &str, attachment: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.com>\r\nTo: {to}\r\nSubject: Figures\r\n\
         Message-ID: <process-{}@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nThe figures: {MARKER}\r\n--b\r\n\
         Content-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"{attachment}\"\r\n\r\nAAAA\r\n--b--\r\n",
        to.len() + attachment.len()
    )
    .into_bytes()
}

fn process(dir: &Path, args: &[&str], stdin: Option<&[u8]>, key: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("process")
        .arg("--config")
        .arg(dir.join("gateway.toml"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match key {
        Some(k) => cmd.env("SG_PROCESS_TEST_KEY", k),
        None => cmd.env_remove("SG_PROCESS_TEST_KEY"),
    };
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    // A run that fails before reading stdin closes it: that is its answer, not a test error.
    if let Err(e) = input.write_all(stdin.unwrap_or_default()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn process_delivers_holds_rejects_and_errors_with_the_contracted_exit_codes() {
    if !require("openssl") {
        return;
    }
    let s = setup();
    let dir = &s.dir;
    let msg = dir.join("msg.eml");
    std::fs::write(
        &msg,
        message("bob@partner.example, dave@plain.example", "figures.csv"),
    )
    .unwrap();

    // bob has a certificate: signed and encrypted; dave has none and ZIP is not allowed: held.
    let out_dir = dir.join("out");
    let o = {
        let mut c = Command::new(BIN);
        c.arg("process")
            .arg("--config")
            .arg(dir.join("gateway.toml"))
            .args([
                "--from",
                "alice@example.com",
                "--to",
                "bob@partner.example",
                "--to",
                "dave@plain.example",
                "--in",
            ])
            .arg(&msg)
            .arg("--out-dir")
            .arg(&out_dir)
            .env("SG_PROCESS_TEST_KEY", KEY);
        c.output().unwrap()
    };
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("held") && l.contains("dave@plain.example")),
        "{stdout}"
    );
    let files: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let bob_copy = out_dir.join("01-signed-smime-smime-bob@partner.example.eml");
    assert_eq!(files[0], bob_copy);
    assert!(stdout.contains(&bob_copy.display().to_string()), "{stdout}");
    let sealed = std::fs::read(&bob_copy).unwrap();
    assert!(!contains(&sealed, MARKER), "clear text went out");
    let dec = dir.join("dec.eml");
    run(openssl(&["cms", "-decrypt", "-in"])
        .arg(&bob_copy)
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
    assert!(contains(&verified.stdout, MARKER));

    // Only bob, message on stdin: everything delivered, exit 0.
    let out2 = dir.join("out2");
    let o = process(
        dir,
        &[
            "--from",
            "alice@example.com",
            "--to",
            "bob@partner.example",
            "--out-dir",
            out2.to_str().unwrap(),
        ],
        Some(&message("bob@partner.example", "figures.csv")),
        Some(KEY),
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        out2.join("01-signed-smime-smime-bob@partner.example.eml")
            .exists()
    );

    // Rejected by policy: exit 1, the policy's text on stdout, nothing written.
    let out3 = dir.join("out3");
    let o = process(
        dir,
        &[
            "--from",
            "alice@example.com",
            "--to",
            "bob@partner.example",
            "--out-dir",
            out3.to_str().unwrap(),
        ],
        Some(&message("bob@partner.example", "setup.exe")),
        Some(KEY),
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("rejected") && stdout.contains("no executables here"),
        "{stdout}"
    );
    assert_eq!(std::fs::read_dir(&out3).unwrap().count(), 0);

    // Three messages, three audit records, the chain intact.
    let head = sealgate::audit::verify_file(dir.join("audit.jsonl")).unwrap();
    assert_eq!(head.records, 3);

    // Errors: exit 2, one line on stderr.
    let one_line_error = |o: &Output, want: &str| {
        assert_eq!(o.status.code(), Some(2), "{o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{want}: {err}");
    };
    let args = [
        "--from",
        "alice@example.com",
        "--to",
        "bob@partner.example",
        "--out-dir",
        out3.to_str().unwrap(),
    ];
    let o = process(dir, &args, Some(b"x"), None);
    one_line_error(&o, "SG_PROCESS_TEST_KEY is not set");
    let o = process(dir, &args, Some(b"x"), Some(&"00".repeat(32)));
    one_line_error(&o, "");
    std::fs::write(dir.join("gateway.toml"), format!("{CONFIG}\nbogus = 1\n")).unwrap();
    let o = process(dir, &args, Some(b"x"), Some(KEY));
    one_line_error(&o, "gateway.toml: line");
    assert!(String::from_utf8_lossy(&o.stderr).contains("bogus"));
    std::fs::write(dir.join("gateway.toml"), CONFIG).unwrap();
    std::fs::write(
        dir.join("rules/policy.toml"),
        "[[rule]]\nname = \"x\"\naction = \"explode\"\n",
    )
    .unwrap();
    let o = process(dir, &args, Some(b"x"), Some(KEY));
    one_line_error(&o, "policy.toml");
    // The key store secret is never echoed.
    assert!(!String::from_utf8_lossy(&o.stderr).contains(KEY));
}
