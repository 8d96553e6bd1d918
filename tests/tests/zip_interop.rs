//! Password ZIP interop, both directions: our archives opened by 7-Zip (AES-256 and
//! ZipCrypto), `unzip -P` and Python's `zipfile` (ZipCrypto); archives made by
//! `7z a -tzip -mem=AES256`, `7z -mem=ZipCrypto` and Info-ZIP `zip -P` opened by ours. Plus
//! wrong passwords, a 1 GiB-of-zeros bomb and path traversal, refused with typed errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use sealgate::Limits;
use sealgate::zip::{Encryption, Error, Password, WriteOptions, ZipReader, create, read_all};
use sealgate_tests::{pseudo_random, pseudo_text, require, run, run_unchecked};

const PASSWORD: &str = "Tr0ub4dor&3 correct-horse";

/// Entries that exercise every path: empty, AE-2-sized, text (deflated), random and a JPEG
/// header (stored), a directory path, and names in several scripts.
fn corpus(ascii_only: bool) -> Vec<(String, Vec<u8>)> {
    let mut v = vec![
        ("empty.txt".to_string(), Vec::new()),
        ("tiny.txt".to_string(), b"19 bytes of secret".to_vec()),
        ("twenty.txt".to_string(), b"exactly twenty bytes".to_vec()),
        ("report.txt".to_string(), pseudo_text(700_000, 1)),
        ("noise.bin".to_string(), pseudo_random(300_000, 2)),
        (
            "photo.jpg".to_string(),
            [
                b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00".to_vec(),
                pseudo_random(50_000, 3),
            ]
            .concat(),
        ),
        (
            "sub/dir/nested.csv".to_string(),
            b"a,b,c\n1,2,3\n".repeat(1000),
        ),
    ];
    if !ascii_only {
        for (i, name) in [
            "Grüße.txt",
            "日本語の文書.txt",
            "Ελληνικά.txt",
            "русский.doc",
            "عربى.txt",
        ]
        .iter()
        .enumerate()
        {
            v.push((
                name.to_string(),
                pseudo_text(1000 + i * 5000, 10 + i as u64),
            ));
        }
    }
    v
}

fn make(entries: &[(String, Vec<u8>)], enc: Encryption) -> Vec<u8> {
    let refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, d)| (n.as_str(), &d[..])).collect();
    create(
        &refs,
        &Password::from(PASSWORD),
        &WriteOptions::new(enc),
        &mut rand_core::OsRng,
    )
    .unwrap()
}

fn seven_zip_extract(zip: &Path, out: &Path, password: &str) -> std::process::Output {
    run_unchecked(
        Command::new("7z")
            .arg("x")
            .arg(format!("-p{password}"))
            .arg(format!("-o{}", out.display()))
            .arg("-y")
            .arg(zip)
            .env("LC_ALL", "C.UTF-8"),
    )
}

fn assert_tree(dir: &Path, entries: &[(String, Vec<u8>)]) {
    for (name, data) in entries {
        let got = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            got == *data,
            "{name}: content differs ({} vs {} bytes)",
            got.len(),
            data.len()
        );
    }
}

#[test]
fn our_aes256_opens_in_7z() {
    if !require("7z") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let entries = corpus(false);
    let zip = tmp.path().join("ours.zip");
    std::fs::write(&zip, make(&entries, Encryption::Aes256)).unwrap();
    let listing = run(Command::new("7z").args(["l", "-slt"]).arg(&zip));
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("Method = AES-256 Deflate"), "{listing}");
    assert!(listing.contains("Method = AES-256 Store"), "{listing}");
    let out = tmp.path().join("out");
    let r = seven_zip_extract(&zip, &out, PASSWORD);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stdout));
    assert_tree(&out, &entries);
    // and 7z says no to a wrong password
    let r = seven_zip_extract(&zip, &tmp.path().join("bad"), "wrong");
    assert!(!r.status.success());
}

#[test]
fn our_zipcrypto_opens_in_unzip_python_and_7z() {
    let tmp = tempfile::tempdir().unwrap();
    let entries = corpus(true);
    let zip = tmp.path().join("ours.zip");
    std::fs::write(&zip, make(&entries, Encryption::ZipCrypto)).unwrap();
    if require("unzip") {
        let out = tmp.path().join("unzip");
        run(Command::new("unzip")
            .args(["-q", "-P", PASSWORD])
            .arg(&zip)
            .arg("-d")
            .arg(&out));
        assert_tree(&out, &entries);
        // the integrity test checks every CRC
        run(Command::new("unzip")
            .args(["-t", "-q", "-P", PASSWORD])
            .arg(&zip));
        let bad = run_unchecked(
            Command::new("unzip")
                .args(["-t", "-q", "-P", "wrong"])
                .arg(&zip),
        );
        assert!(!bad.status.success());
    }
    if require("python3") {
        // zipfile's own reader (not extractall, which would sanitise names for us)
        let script = r#"
import os, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for i in z.infolist():
    data = z.read(i, pwd=sys.argv[2].encode())
    path = os.path.join(sys.argv[3], i.filename)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "wb").write(data)
"#;
        let out = tmp.path().join("python");
        run(Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&zip)
            .arg(PASSWORD)
            .arg(&out));
        assert_tree(&out, &entries);
    }
    if require("7z") {
        let out = tmp.path().join("7z");
        let r = seven_zip_extract(&zip, &out, PASSWORD);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stdout));
        assert_tree(&out, &entries);
    }
}

/// Write the corpus into `dir` (for the tools to archive).
fn write_tree(dir: &Path, entries: &[(String, Vec<u8>)]) {
    for (name, data) in entries {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

fn read_ours(zip: &Path, password: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let data = std::fs::read(zip).unwrap();
    Ok(
        read_all(&data, Some(&Password::from(password)), &Limits::default())?
            .into_iter()
            .map(|e| (e.name, e.data.to_vec()))
            .collect(),
    )
}

fn assert_same_files(got: &[(String, Vec<u8>)], want: &[(String, Vec<u8>)]) {
    for (name, data) in want {
        let found = got
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert!(found.1 == *data, "{name}: content differs");
    }
    assert_eq!(got.len(), want.len());
}

#[test]
fn seven_zip_archives_open_in_ours() {
    if !require("7z") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let entries = corpus(false);
    write_tree(&src, &entries);
    for (method, level) in [
        ("AES256", "-mx5"),
        ("AES256", "-mx0"),
        ("AES128", "-mx1"),
        ("ZipCrypto", "-mx5"),
    ] {
        let zip = tmp.path().join(format!("7z-{method}{level}.zip"));
        run(Command::new("7z")
            .args([
                "a",
                "-tzip",
                &format!("-mem={method}"),
                level,
                &format!("-p{PASSWORD}"),
                "-r",
            ])
            .arg(&zip)
            .arg(".")
            .current_dir(&src)
            .env("LC_ALL", "C.UTF-8"));
        let got = read_ours(&zip, PASSWORD).unwrap_or_else(|e| panic!("{method}{level}: {e}"));
        assert_same_files(&got, &entries);
        let wrong = read_ours(&zip, "not the password");
        assert!(
            matches!(wrong, Err(Error::WrongPassword)),
            "{method}: {wrong:?}"
        );
    }
}

#[test]
fn info_zip_archives_open_in_ours() {
    if !require("zip") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let entries = corpus(true);
    write_tree(&src, &entries);
    let zip = tmp.path().join("infozip.zip");
    let mut cmd = Command::new("zip");
    cmd.args(["-q", "-r", "-P", PASSWORD]).arg(&zip);
    for (name, _) in &entries {
        cmd.arg(name);
    }
    run(cmd.current_dir(&src));
    let got = read_ours(&zip, PASSWORD).unwrap();
    assert_same_files(&got, &entries);
    assert!(matches!(
        read_ours(&zip, "wrong"),
        Err(Error::WrongPassword)
    ));
    // streamed from a pipe (data descriptors, check byte from the time)
    let streamed = tmp.path().join("stream.zip");
    let data = pseudo_text(200_000, 9);
    let mut child = Command::new("zip")
        .args(["-q", "-P", PASSWORD, "-"])
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&streamed).unwrap())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&data).unwrap();
    }
    assert!(child.wait().unwrap().success());
    let got = read_ours(&streamed, PASSWORD).unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].1 == data);
}

#[test]
fn gigabyte_of_zeros_bomb_is_refused() {
    if !require("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bomb = tmp.path().join("bomb.zip");
    // 1 GiB of zeros, deflated (about 1 MB): streamed by Python's zipfile.
    run(Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile\n\
         z = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED, compresslevel=1)\n\
         block = bytes(1 << 20)\n\
         with z.open('zeros.bin', 'w', force_zip64=True) as f:\n\
         \x20   for _ in range(1024): f.write(block)\n\
         z.close()\n",
        )
        .arg(&bomb));
    let data = std::fs::read(&bomb).unwrap();
    assert!(data.len() < 16 << 20, "bomb is {} bytes", data.len());
    let r = read_all(&data, None, &Limits::default());
    assert!(matches!(r, Err(Error::CompressionRatio { .. })), "{r:?}");
    // With the ratio limit lifted, the total-size limit refuses it.
    let mut limits = Limits::default();
    limits.max_zip_ratio = u64::MAX;
    limits.max_zip_total_bytes = 64 << 20;
    let r = read_all(&data, None, &limits);
    assert!(matches!(r, Err(Error::LimitExceeded { .. })), "{r:?}");
}

#[test]
fn bomb_that_lies_about_its_size_is_stopped_while_inflating() {
    if !require("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bomb = tmp.path().join("liar.zip");
    // 256 MiB of zeros whose central directory (and local header) claim 2 MiB.
    run(Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile, struct\n\
         z = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED, compresslevel=1)\n\
         block = bytes(1 << 20)\n\
         with z.open('zeros.bin', 'w') as f:\n\
         \x20   for _ in range(256): f.write(block)\n\
         z.close()\n\
         b = bytearray(open(sys.argv[1], 'rb').read())\n\
         c = b.rfind(b'PK\\x01\\x02')\n\
         b[c+24:c+28] = struct.pack('<I', 2 << 20)\n\
         b[22:26] = struct.pack('<I', 2 << 20)\n\
         open(sys.argv[1], 'wb').write(b)\n",
        )
        .arg(&bomb));
    let data = std::fs::read(&bomb).unwrap();
    let r = read_all(&data, None, &Limits::default());
    assert!(matches!(r, Err(Error::CompressionRatio { .. })), "{r:?}");
}

#[test]
fn path_traversal_entries_are_refused() {
    if !require("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "../evil.txt",
        "a/../../evil.txt",
        "/etc/evil.txt",
        "..\\evil.txt",
        "C:/evil.txt",
    ] {
        let zip = tmp.path().join("traversal.zip");
        run(Command::new("python3")
            .arg("-c")
            .arg(
                "import sys, zipfile\n\
                 z = zipfile.ZipFile(sys.argv[1], 'w')\n\
                 z.writestr('ok.txt', b'fine')\n\
                 z.writestr(zipfile.ZipInfo(sys.argv[2]), b'evil')\n\
                 z.close()\n",
            )
            .arg(&zip)
            .arg(name));
        let data = std::fs::read(&zip).unwrap();
        let r = ZipReader::open(std::io::Cursor::new(&data[..]), &Limits::default());
        assert!(matches!(r, Err(Error::UnsafePath { .. })), "{name}: {r:?}");
    }
}
