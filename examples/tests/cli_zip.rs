//! End-to-end tests of `sealgate zip`: create (checked by 7z and unzip), extract (archives
//! made by 7z; wrong password, traversal and planted links refused without leaving files),
//! and mail (the ZIP opens with the password read from the sender notification).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use sealgate::Limits;
use sealgate::mime::Entity;
use sealgate_tests::{pseudo_random, pseudo_text, require, run, run_unchecked};

const BIN: &str = env!("CARGO_BIN_EXE_sealgate");

fn sg(args: &[&dyn AsRef<std::ffi::OsStr>], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .arg("zip")
        .args(args.iter().map(|a| a.as_ref()))
        .envs(env.iter().copied())
        .output()
        .expect("run sealgate")
}

/// Exit 2 with exactly one line on stderr.
fn assert_error(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err}");
    assert!(!err.contains("panicked"));
    err
}

fn write_inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let files = vec![
        ("notes.txt".to_string(), pseudo_text(200_000, 1)),
        ("data.bin".to_string(), pseudo_random(100_000, 2)),
        ("empty".to_string(), Vec::new()),
    ];
    for (n, d) in &files {
        std::fs::write(dir.join(n), d).unwrap();
    }
    files
}

#[test]
fn create_with_generated_password_opens_in_7z_and_in_ours() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let files = write_inputs(d);
    let zip = d.join("out.zip");
    let out = sg(
        &[
            &"create",
            &"--out",
            &zip,
            &"--generate-password",
            &d.join("notes.txt"),
            &d.join("data.bin"),
            &d.join("empty"),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "the password, once");
    let pw = stdout.trim_end().to_string();
    assert_eq!(pw.len(), 16);
    assert!(
        pw.chars()
            .all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c))
    );
    if require("7z") {
        let x = d.join("7z");
        run(Command::new("7z")
            .arg("x")
            .arg(format!("-p{pw}"))
            .arg(format!("-o{}", x.display()))
            .arg(&zip));
        for (n, data) in &files {
            assert!(std::fs::read(x.join(n)).unwrap() == *data, "{n}");
        }
    }
    let x = d.join("ours");
    let out = sg(
        &[
            &"extract",
            &"--password-env",
            &"ZPW",
            &"--out-dir",
            &x,
            &zip,
        ],
        &[("ZPW", &pw)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (n, data) in &files {
        assert!(std::fs::read(x.join(n)).unwrap() == *data, "{n}");
    }
    // a length can be given
    let out = sg(
        &[
            &"create",
            &"--out",
            &d.join("b.zip"),
            &"--generate-password",
            &"24",
            &d.join("empty"),
        ],
        &[],
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim_end().len(), 24);
}

#[test]
fn create_zipcrypto_opens_in_unzip() {
    if !require("unzip") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let files = write_inputs(d);
    let zip = d.join("zc.zip");
    let out = sg(
        &[
            &"create",
            &"--out",
            &zip,
            &"--password-env",
            &"ZPW",
            &"--method",
            &"zipcrypto",
            &d.join("notes.txt"),
            &d.join("data.bin"),
        ],
        &[("ZPW", "pass word")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "a given password is not printed");
    let x = d.join("x");
    run(Command::new("unzip")
        .args(["-q", "-P", "pass word"])
        .arg(&zip)
        .arg("-d")
        .arg(&x));
    for (n, data) in files.iter().take(2) {
        assert!(std::fs::read(x.join(n)).unwrap() == *data, "{n}");
    }
}

#[test]
fn extract_7z_archive_and_refuse_wrong_password() {
    if !require("7z") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let files = write_inputs(d);
    let zip = d.join("7z.zip");
    run(Command::new("7z")
        .args(["a", "-tzip", "-mem=AES256", "-psecret"])
        .arg(&zip)
        .args(files.iter().map(|f| f.0.as_str()))
        .current_dir(d));
    let x = d.join("x");
    let out = sg(
        &[&"extract", &"--password-env", &"P", &"--out-dir", &x, &zip],
        &[("P", "secret")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (n, data) in &files {
        assert!(std::fs::read(x.join(n)).unwrap() == *data, "{n}");
    }
    let y = d.join("y");
    let out = sg(
        &[&"extract", &"--password-env", &"P", &"--out-dir", &y, &zip],
        &[("P", "wrong")],
    );
    let err = assert_error(&out);
    assert!(err.contains("wrong password"), "{err}");
    assert_eq!(
        std::fs::read_dir(&y).unwrap().count(),
        0,
        "nothing left behind"
    );
    // no password for an encrypted archive
    let out = sg(&[&"extract", &"--out-dir", &d.join("z"), &zip], &[]);
    assert!(assert_error(&out).contains("no password"));
}

#[test]
fn extract_never_writes_outside_the_directory() {
    if !require("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let zip = d.join("evil.zip");
    run(Command::new("python3")
        .arg("-c")
        .arg("import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1], 'w')\nz.writestr(zipfile.ZipInfo('../escaped.txt'), b'x')\nz.close()\n")
        .arg(&zip));
    let x = d.join("x");
    std::fs::create_dir(&x).unwrap();
    let out = sg(&[&"extract", &"--out-dir", &x, &zip], &[]);
    assert!(assert_error(&out).contains("unsafe entry name"));
    assert!(!d.join("escaped.txt").exists());
    // a planted symbolic link inside DIR is not followed
    let zip = d.join("link.zip");
    run(Command::new("python3")
        .arg("-c")
        .arg("import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1], 'w')\nz.writestr('sub/file.txt', b'x')\nz.close()\n")
        .arg(&zip));
    let outside = d.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, x.join("sub")).unwrap();
    let out = sg(&[&"extract", &"--out-dir", &x, &zip], &[]);
    assert!(assert_error(&out).contains("symbolic link"));
    assert!(!outside.join("file.txt").exists());
}

const MAIL: &str = "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: Figures\r\n\
Message-ID: <m1@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n\
--XX\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n\
--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"figures.xlsx\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nc2VjcmV0IGZpZ3VyZXMgaW4gYSBzcHJlYWRzaGVldA==\r\n--XX--\r\n";

/// The password line of a sender notification (indented by four blanks).
fn password_from(notification: &[u8]) -> String {
    let limits = Limits::default();
    let e = Entity::parse(notification, &limits).unwrap();
    let body = String::from_utf8(e.decoded_body(&limits).unwrap()).unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix("    "))
        .expect("password line")
        .trim()
        .to_string()
}

#[test]
fn mail_zip_opens_with_the_password_from_the_sender_message() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("in.eml"), MAIL).unwrap();
    for (method, extra) in [("aes256", None), ("zipcrypto", Some("--whole-message"))] {
        let (r, s) = (
            d.join(format!("r-{method}.eml")),
            d.join(format!("s-{method}.eml")),
        );
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"mail",
            &"--in",
            &"",
            &"--recipient-out",
            &r,
            &"--sender-out",
            &s,
            &"--generate-password",
            &"--method",
            &method,
        ];
        let input = d.join("in.eml");
        args[2] = &input;
        if let Some(x) = &extra {
            args.push(x);
        }
        let out = sg(&args, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty());
        let recipient = std::fs::read(&r).unwrap();
        assert!(recipient.is_ascii());
        assert!(
            !String::from_utf8_lossy(&recipient).contains("c2VjcmV0IGZpZ3VyZXMg"),
            "attachment in clear"
        );
        let pw = password_from(&std::fs::read(&s).unwrap());
        assert_eq!(pw.len(), 16);
        let limits = Limits::default();
        let e = Entity::parse(&recipient, &limits).unwrap();
        let zip = e
            .parts(&limits)
            .unwrap()
            .into_iter()
            .find(|p| p.filename().is_some())
            .unwrap()
            .decoded_body(&limits)
            .unwrap();
        let zpath = d.join(format!("{method}.zip"));
        std::fs::write(&zpath, &zip).unwrap();
        let x = d.join(format!("x-{method}"));
        let out = sg(
            &[
                &"extract",
                &"--password-env",
                &"P",
                &"--out-dir",
                &x,
                &zpath,
            ],
            &[("P", &pw)],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if extra.is_none() {
            assert_eq!(
                std::fs::read(x.join("figures.xlsx")).unwrap(),
                b"secret figures in a spreadsheet"
            );
        } else {
            assert_eq!(
                std::fs::read(x.join("message.eml")).unwrap(),
                MAIL.as_bytes()
            );
        }
        if require("7z") {
            let y = d.join(format!("y-{method}"));
            run(Command::new("7z")
                .arg("x")
                .arg(format!("-p{pw}"))
                .arg(format!("-o{}", y.display()))
                .arg(&zpath));
        }
    }
    // No attachments: an error that says what to do.
    std::fs::write(
        d.join("plain.eml"),
        "From: a@example.com\r\nSubject: x\r\n\r\nhello\r\n",
    )
    .unwrap();
    let out = sg(
        &[
            &"mail",
            &"--in",
            &d.join("plain.eml"),
            &"--recipient-out",
            &d.join("r.eml"),
            &"--sender-out",
            &d.join("s.eml"),
            &"--password-env",
            &"P",
        ],
        &[("P", "pw")],
    );
    assert!(assert_error(&out).contains("--whole-message"));
}

#[test]
fn usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("f");
    std::fs::write(&f, b"x").unwrap();
    // neither or both password options
    let out = sg(&[&"create", &"--out", &tmp.path().join("a.zip"), &f], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = sg(
        &[
            &"create",
            &"--out",
            &tmp.path().join("a.zip"),
            &"--password-env",
            &"P",
            &"--generate-password",
            &f,
        ],
        &[("P", "x")],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = sg(
        &[
            &"create",
            &"--out",
            &tmp.path().join("a.zip"),
            &"--password-env",
            &"UNSET_VAR_X",
            &f,
        ],
        &[],
    );
    assert!(assert_error(&out).contains("UNSET_VAR_X"));
    assert!(!tmp.path().join("a.zip").exists());
    let out = sg(
        &[
            &"create",
            &"--out",
            &tmp.path().join("a.zip"),
            &"--generate-password",
            &tmp.path().join("missing"),
        ],
        &[],
    );
    assert_error(&out);
    assert!(
        !tmp.path().join("a.zip").exists(),
        "no partial archive left"
    );
    let out = run_unchecked(Command::new(BIN).args(["zip", "mail", "--help"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--whole-message"));
}
