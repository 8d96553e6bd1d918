//! `sealgate audit verify`: exit 0 with the head hash on an intact chain, 1 with the broken line
//! on an edited, shortened or reordered one, 2 on an unreadable file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::SystemTime;

use sealgate::audit::{AuditRecord, AuditSink, JsonLinesSink};

const BIN: &str = env!("CARGO_BIN_EXE_sealgate");

fn verify(path: &Path, head: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["audit", "verify"]).arg(path);
    if let Some(h) = head {
        cmd.args(["--head", h]);
    }
    cmd.output().unwrap()
}

fn write(path: &Path, n: usize) {
    let sink = JsonLinesSink::open(path).unwrap();
    for i in 0..n {
        let mut r = AuditRecord::new(SystemTime::now());
        r.message_id = Some(format!("<{i}@example.com>"));
        r.direction = "outbound".into();
        sink.record(&r).unwrap();
    }
}

#[test]
fn intact_edited_and_truncated_chains() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write(&path, 3);

    let ok = verify(&path, None);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let out = String::from_utf8(ok.stdout).unwrap();
    assert!(out.starts_with("audit: ok: 3 records, head "), "{out}");
    let head = out.trim().rsplit(' ').next().unwrap().to_string();
    assert_eq!(head.len(), 64);
    assert_eq!(verify(&path, Some(&head)).status.code(), Some(0));

    // Append more: the old head is still in the chain.
    write(&path, 2);
    assert_eq!(verify(&path, Some(&head)).status.code(), Some(0));

    // Truncation after the recorded head: the file alone looks fine, --head catches it.
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&path, format!("{}\n{}\n", lines[0], lines[1])).unwrap();
    assert_eq!(verify(&path, None).status.code(), Some(0));
    let cut = verify(&path, Some(&head));
    assert_eq!(cut.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&cut.stderr).contains("not in the chain"));

    // An edited record: exit 1, the line named, one line on stderr.
    let edited = text.replacen("<1@example.com>", "<9@example.com>", 1);
    std::fs::write(&path, edited).unwrap();
    let bad = verify(&path, None);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8(bad.stderr).unwrap();
    assert!(err.contains("BROKEN at line 2"), "{err}");
    assert_eq!(err.lines().count(), 1);

    // A removed record.
    std::fs::write(&path, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
    assert_eq!(verify(&path, None).status.code(), Some(1));

    // No such file: exit 2.
    let missing = verify(&dir.path().join("nope.jsonl"), None);
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&missing.stderr).lines().count(), 1);
}
