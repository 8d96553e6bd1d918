//! Large PGP/MIME messages in bounded memory: `sealgate pgp encrypt`, `decrypt` and `verify` of a message
//! of hundreds of MiB (256 MiB by default; `SEALGATE_BIG_MIB=1024` for the 1 GiB run), each
//! child's peak RSS measured with GNU time and required to stay under 64 MiB, the outputs
//! compared with the input by SHA-256. gpg reads what we wrote (`gpg --decrypt` of the armored
//! part), and we read a PGP/MIME message built here around `gpg --encrypt --armor -z 0`
//! output; gpg's own figures are printed beside ours.
//!
//! The 1 GiB command (release build, figures on stderr):
//!
//! ```text
//! SEALGATE_BIG_MIB=1024 cargo test --release -p sealgate-examples --test cli_bigmsg_pgp -- --nocapture
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bigmsg_support;

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use bigmsg_support::{Measured, bounded, measured, sha256_file, size_mib, write_message};
use sealgate_tests::{Gpg, GpgAlgo, GpgKey, require, run, run_unchecked};

const BIN: &str = env!("CARGO_BIN_EXE_sealgate");

/// `sealgate pgp encrypt` of `input` to `to` into `out`.
fn encrypt_cmd(to: &GpgKey, input: &Path, out: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(["pgp", "encrypt", "--to"])
        .arg(&to.public)
        .arg("--in")
        .arg(input)
        .arg("--out")
        .arg(out);
    c
}

/// `sealgate pgp decrypt` of `input` into `out` with the recipient's secret key.
fn decrypt_cmd(key: &GpgKey, input: &Path, out: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(["pgp", "decrypt", "--key"])
        .arg(&key.secret)
        .arg("--in")
        .arg(input)
        .arg("--out")
        .arg(out);
    c
}

/// Copy the armored OpenPGP block of a PGP/MIME message (BEGIN to END line) to `to`, as a
/// stream.
fn extract_armor(message: &Path, to: &Path) {
    let mut r = BufReader::with_capacity(1 << 20, File::open(message).unwrap());
    let mut w = BufWriter::with_capacity(1 << 20, File::create(to).unwrap());
    let mut line = Vec::new();
    let mut inside = false;
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).unwrap() == 0 {
            break;
        }
        inside |= line.starts_with(b"-----BEGIN PGP MESSAGE-----");
        if inside {
            w.write_all(&line).unwrap();
        }
        if line.starts_with(b"-----END PGP MESSAGE-----") {
            break;
        }
    }
    assert!(inside, "no armor in {}", message.display());
    w.flush().unwrap();
}

/// The message `plain` (outer fields for `entity_at` bytes, then the entity) with its entity
/// replaced by gpg's armored encryption of it: a PGP/MIME message (RFC 3156 §4) as a mail
/// client that uses gpg builds it.
fn wrap_pgp_mime(plain: &Path, entity_at: u64, armored: &Path, to: &Path) {
    let mut outer = Vec::new();
    File::open(plain)
        .unwrap()
        .take(entity_at)
        .read_to_end(&mut outer)
        .unwrap();
    let boundary = "=_gpg-made-boundary";
    let mut w = BufWriter::with_capacity(1 << 20, File::create(to).unwrap());
    w.write_all(&outer).unwrap();
    write!(
        w,
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n\
         \tboundary=\"{boundary}\"\r\n\r\n\
         This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n\
         --{boundary}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
         --{boundary}\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::with_capacity(1 << 20, File::open(armored).unwrap());
    std::io::copy(&mut r, &mut w).unwrap();
    write!(w, "\r\n--{boundary}--\r\n").unwrap();
    w.flush().unwrap();
}

/// Copy `from` without its first `skip` bytes (the outer fields) to `to`, as a stream.
fn copy_from(from: &Path, skip: u64, to: &Path) {
    let mut r = BufReader::with_capacity(1 << 20, File::open(from).unwrap());
    std::io::copy(&mut Read::by_ref(&mut r).take(skip), &mut std::io::sink()).unwrap();
    let mut w = BufWriter::with_capacity(1 << 20, File::create(to).unwrap());
    std::io::copy(&mut r, &mut w).unwrap();
    w.flush().unwrap();
}

/// The message `plain` (outer fields for `entity_at` bytes, then the canonical entity) signed
/// by gpg's armored detached signature `sig` of the entity: a PGP/MIME signed message (RFC 3156
/// §5) as a mail client that uses gpg builds it.
fn wrap_pgp_signed(plain: &Path, entity_at: u64, sig: &Path, to: &Path) {
    let boundary = "=_gpg-signed-boundary";
    let mut r = BufReader::with_capacity(1 << 20, File::open(plain).unwrap());
    let mut w = BufWriter::with_capacity(1 << 20, File::create(to).unwrap());
    std::io::copy(&mut Read::by_ref(&mut r).take(entity_at), &mut w).unwrap();
    write!(
        w,
        "Content-Type: multipart/signed; micalg=pgp-sha256;\r\n\
         \tprotocol=\"application/pgp-signature\"; boundary=\"{boundary}\"\r\n\r\n\
         This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n--{boundary}\r\n"
    )
    .unwrap();
    std::io::copy(&mut r, &mut w).unwrap();
    write!(
        w,
        "\r\n--{boundary}\r\nContent-Type: application/pgp-signature; name=\"signature.asc\"\r\n\r\n"
    )
    .unwrap();
    let sig = std::fs::read_to_string(sig).unwrap();
    w.write_all(sig.replace("\r\n", "\n").replace('\n', "\r\n").as_bytes())
        .unwrap();
    write!(w, "\r\n--{boundary}--\r\n").unwrap();
    w.flush().unwrap();
}

/// The signed entity and the armored signature of a PGP/MIME signed message, as files for
/// `gpg --verify SIG DATA`, read as a stream (the line end before a delimiter belongs to it).
fn split_signed(message: &Path, entity: &Path, sig: &Path) {
    let mut r = BufReader::with_capacity(1 << 20, File::open(message).unwrap());
    let mut e = BufWriter::with_capacity(1 << 20, File::create(entity).unwrap());
    let mut s = BufWriter::new(File::create(sig).unwrap());
    let mut line = Vec::new();
    let mut boundary = None;
    let (mut inside, mut held, mut armor, mut in_sig) = (false, false, false, false);
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).unwrap() == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        if boundary.is_none()
            && let Some(at) = text.find("boundary=\"")
        {
            boundary = text[at + 10..].split('"').next().map(|b| format!("--{b}"));
            continue;
        }
        let Some(b) = &boundary else { continue };
        if text.trim_end() == b {
            if inside {
                inside = false;
                armor = true;
            } else if !armor {
                inside = true;
            }
            continue;
        }
        if inside {
            if held {
                e.write_all(b"\r\n").unwrap();
            }
            let body = line.strip_suffix(b"\r\n").unwrap_or(&line);
            held = body.len() < line.len();
            e.write_all(body).unwrap();
        } else if armor {
            in_sig |= text.starts_with("-----BEGIN PGP SIGNATURE-----");
            if in_sig {
                s.write_all(&line).unwrap();
            }
            if text.starts_with("-----END PGP SIGNATURE-----") {
                break;
            }
        }
    }
    e.flush().unwrap();
    s.flush().unwrap();
    assert!(armor, "no signature part in {}", message.display());
}

/// Change one letter in the middle of `path` (a text line of the body), in place.
fn tamper_middle(path: &Path) {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let len = f.metadata().unwrap().len();
    let mut at = len / 2;
    let mut b = [0u8; 1];
    loop {
        f.seek(SeekFrom::Start(at)).unwrap();
        f.read_exact(&mut b).unwrap();
        if b[0].is_ascii_lowercase() {
            break;
        }
        at += 1;
    }
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0].to_ascii_uppercase()]).unwrap();
}

fn mib_of(m: &Measured) -> f64 {
    m.peak_kib as f64 / 1024.0
}

/// Spill or temporary files of ours left in `dir`.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".sealgate-"))
        .collect()
}

fn work_dir() -> tempfile::TempDir {
    // Next to the target directory's file system, as the S/MIME test's PKI directory is.
    tempfile::Builder::new()
        .prefix("sg-bigpgp")
        .tempdir_in("/tmp")
        .unwrap()
}

#[test]
fn large_pgp_message_encrypts_and_decrypts_in_bounded_memory() {
    if !require("gpg") || !require("/usr/bin/time") {
        return;
    }
    let mib = size_mib();
    let g = Gpg::new();
    let bob = g.gen_key("Bob", "bob@example.org", GpgAlgo::Ed25519);
    let work = work_dir();
    let dir = work.path();
    let plain = dir.join("big.eml");
    let (message_hash, entity_hash, entity_at) = write_message(&plain, mib);
    eprintln!(
        "bigmsg-pgp: message of {mib} MiB of text ({} bytes)",
        std::fs::metadata(&plain).unwrap().len()
    );

    // ours: encrypt, then decrypt, each a child of its own
    let sealed = dir.join("big.pgp.eml");
    let enc = bounded(
        dir,
        "sealgate pgp encrypt",
        &mut encrypt_cmd(&bob, &plain, &sealed),
    );
    let opened = dir.join("big.out.eml");
    let dec = bounded(
        dir,
        "sealgate pgp decrypt",
        &mut decrypt_cmd(&bob, &sealed, &opened),
    );
    assert_eq!(
        sha256_file(&opened, 0),
        message_hash,
        "the decrypted message differs from the original"
    );
    std::fs::remove_file(&opened).unwrap();
    assert!(leftovers(dir).is_empty(), "{:?}", leftovers(dir));

    // gpg reads ours: the armored part, decrypted to the entity
    let armored = dir.join("big.ours.asc");
    extract_armor(&sealed, &armored);
    std::fs::remove_file(&sealed).unwrap();
    let by_gpg = dir.join("big.gpg.txt");
    let gpg_dec = measured(
        dir,
        "gpg --decrypt (ours)",
        g.cmd(&["--quiet", "--output"])
            .arg(&by_gpg)
            .arg("--decrypt")
            .arg(&armored),
    );
    assert_eq!(
        sha256_file(&by_gpg, 0),
        entity_hash,
        "gpg read something else"
    );
    std::fs::remove_file(&by_gpg).unwrap();
    std::fs::remove_file(&armored).unwrap();

    // gpg's encryption of the entity (armored, uncompressed), as PGP/MIME, which we decrypt
    let entity = dir.join("big.entity.txt");
    copy_from(&plain, entity_at, &entity);
    let gpg_armored = dir.join("big.gpg.asc");
    let gpg_enc = measured(
        dir,
        "gpg --encrypt --armor -z 0",
        g.cmd(&[
            "--encrypt",
            "--armor",
            "-z",
            "0",
            "--recipient",
            &bob.fingerprint,
            "--output",
        ])
        .arg(&gpg_armored)
        .arg(&entity),
    );
    std::fs::remove_file(&entity).unwrap();
    let gpg_made = dir.join("big.gpg-made.eml");
    wrap_pgp_mime(&plain, entity_at, &gpg_armored, &gpg_made);
    std::fs::remove_file(&plain).unwrap();
    let gpg_own = dir.join("big.gpg-own.txt");
    let gpg_dec_own = measured(
        dir,
        "gpg --decrypt (gpg's)",
        g.cmd(&["--quiet", "--output"])
            .arg(&gpg_own)
            .arg("--decrypt")
            .arg(&gpg_armored),
    );
    assert_eq!(sha256_file(&gpg_own, 0), entity_hash);
    std::fs::remove_file(&gpg_own).unwrap();
    std::fs::remove_file(&gpg_armored).unwrap();
    let opened = dir.join("big.gpg-made.out.eml");
    let dec_gpg = bounded(
        dir,
        "sealgate pgp decrypt (gpg's)",
        &mut decrypt_cmd(&bob, &gpg_made, &opened),
    );
    assert_eq!(
        sha256_file(&opened, 0),
        message_hash,
        "the decrypted gpg-made message differs from the original"
    );
    assert!(leftovers(dir).is_empty(), "{:?}", leftovers(dir));

    eprintln!(
        "bigmsg-pgp summary ({mib} MiB): sealgate encrypt {:.2} s / {:.1} MiB, decrypt {:.2} s / \
         {:.1} MiB, decrypt of gpg's {:.2} s / {:.1} MiB; gpg --encrypt {:.2} s / {:.1} MiB, \
         --decrypt of ours {:.2} s / {:.1} MiB, of its own {:.2} s / {:.1} MiB",
        enc.seconds,
        mib_of(&enc),
        dec.seconds,
        mib_of(&dec),
        dec_gpg.seconds,
        mib_of(&dec_gpg),
        gpg_enc.seconds,
        mib_of(&gpg_enc),
        gpg_dec.seconds,
        mib_of(&gpg_dec),
        gpg_dec_own.seconds,
        mib_of(&gpg_dec_own),
    );
}

/// A tampered large message: exit 2 with one line, no --out file, no spill file, in the
/// directory of --out and in an explicit --spill-dir.
#[test]
fn tampered_large_message_leaves_nothing_behind() {
    if !require("gpg") {
        return;
    }
    let g = Gpg::new();
    let bob = g.gen_key("Bob", "bob@example.org", GpgAlgo::Ed25519);
    let work = work_dir();
    let dir = work.path();
    let plain = dir.join("m.eml");
    // above the 8 MiB from which encrypt streams
    let (message_hash, _, _) = write_message(&plain, 12);
    let sealed = dir.join("m.pgp.eml");
    let out = run_unchecked(&mut encrypt_cmd(&bob, &plain, &sealed));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut bytes = std::fs::read(&sealed).unwrap();
    // one base64 character in the middle of the armor
    let mut at = bytes.len() / 2;
    while !bytes[at].is_ascii_alphanumeric() {
        at += 1;
    }
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let tampered = dir.join("m.tampered.eml");
    std::fs::write(&tampered, &bytes).unwrap();
    let spill: PathBuf = dir.join("spill");
    std::fs::create_dir(&spill).unwrap();
    for spill_dir in [None, Some(&spill)] {
        let opened = dir.join("m.out.eml");
        let mut cmd = decrypt_cmd(&bob, &tampered, &opened);
        if let Some(s) = spill_dir {
            cmd.arg("--spill-dir").arg(s);
        }
        let out = run_unchecked(&mut cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("could not decrypt"), "{err}");
        assert!(!opened.exists(), "output written for a tampered message");
        assert!(leftovers(dir).is_empty(), "{:?}", leftovers(dir));
        assert!(leftovers(&spill).is_empty(), "{:?}", leftovers(&spill));
    }
    // the untampered one, through an explicit spill directory and to stdout
    let out = run_unchecked(
        decrypt_cmd(&bob, &sealed, &dir.join("unused"))
            .arg("--spill-dir")
            .arg(&spill),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha256_file(&dir.join("unused"), 0), message_hash);
    let out = run_unchecked(
        Command::new(BIN)
            .args(["pgp", "decrypt", "--key"])
            .arg(&bob.secret)
            .arg("--in")
            .arg(&sealed),
    );
    assert!(out.status.success());
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(&out.stdout);
    assert_eq!(ctx.finish().as_ref(), &message_hash[..]);
    assert!(leftovers(&spill).is_empty(), "{:?}", leftovers(&spill));

    // Signed and encrypted in one pass, streamed both ways: by us (--sign-key) and by gpg
    // (--sign --encrypt); the signature is checked while streaming (--signer: exit 0).
    let ours = dir.join("m.signed.eml");
    let out = run_unchecked(
        encrypt_cmd(&bob, &plain, &ours)
            .arg("--sign-key")
            .arg(&bob.secret),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, entity_hash, entity_at) = write_message(&plain, 12);
    let entity = dir.join("m.entity.txt");
    copy_from(&plain, entity_at, &entity);
    assert_eq!(sha256_file(&entity, 0), entity_hash);
    let gpg_armored = dir.join("m.gpg.asc");
    let out = run_unchecked(
        g.cmd(&[
            "--sign",
            "--encrypt",
            "--armor",
            "-z",
            "0",
            "--recipient",
            &bob.fingerprint,
        ])
        .arg("--output")
        .arg(&gpg_armored)
        .arg(&entity),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = dir.join("m.gpg-signed.eml");
    wrap_pgp_mime(&plain, entity_at, &gpg_armored, &theirs);
    for signed in [&ours, &theirs] {
        let opened = dir.join("m.signed.out.eml");
        let out = run_unchecked(
            decrypt_cmd(&bob, signed, &opened)
                .arg("--signer")
                .arg(&bob.public),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{}: {err}", signed.display());
        assert!(err.contains("signature: valid"), "{err}");
        assert_eq!(sha256_file(&opened, 0), message_hash);
        std::fs::remove_file(&opened).unwrap();
    }
    // unsigned, and a signature asked for: exit 1, the message is still written
    let opened = dir.join("m.unsigned.out.eml");
    let out = run_unchecked(
        decrypt_cmd(&bob, &sealed, &opened)
            .arg("--signer")
            .arg(&bob.public),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("signature: none"), "{err}");
    assert_eq!(sha256_file(&opened, 0), message_hash);
    assert!(leftovers(dir).is_empty(), "{:?}", leftovers(dir));
}

/// A gpg-signed PGP/MIME message (`multipart/signed`, RFC 3156 §5) of the big size: `sealgate
/// pgp verify` streams it (exit 0, the message without its signature equal to the original,
/// peak RSS under 64 MiB), reports a tampered copy invalid (exit 1) and leaves no spill file;
/// the same message signed, then encrypted (by gpg), is decrypted with its inner signature checked
/// from the spill file (`pgp decrypt --signer`). gpg's `--verify` figures are printed beside
/// ours.
#[test]
fn large_gpg_signed_message_verifies_in_bounded_memory() {
    if !require("gpg") || !require("/usr/bin/time") {
        return;
    }
    let mib = size_mib();
    let g = Gpg::new();
    let alice = g.gen_key("Alice", "alice@example.com", GpgAlgo::Ed25519);
    let bob = g.gen_key("Bob", "bob@example.org", GpgAlgo::Ed25519);
    let work = work_dir();
    let dir = work.path();
    let plain = dir.join("big.eml");
    let (message_hash, entity_hash, entity_at) = write_message(&plain, mib);

    // gpg signs the canonical entity (binary mode, SHA-256) and verifies its own signature
    let entity = dir.join("big.entity.txt");
    copy_from(&plain, entity_at, &entity);
    assert_eq!(sha256_file(&entity, 0), entity_hash);
    let sig = dir.join("big.entity.asc");
    let gpg_sign = measured(
        dir,
        "gpg --detach-sign --armor",
        g.cmd(&[
            "--detach-sign",
            "--armor",
            "--digest-algo",
            "SHA256",
            "--local-user",
            &alice.fingerprint,
            "--output",
        ])
        .arg(&sig)
        .arg(&entity),
    );
    let gpg_verify = measured(
        dir,
        "gpg --verify",
        g.cmd(&["--quiet", "--verify"]).arg(&sig).arg(&entity),
    );
    std::fs::remove_file(&entity).unwrap();
    let signed = dir.join("big.signed.eml");
    wrap_pgp_signed(&plain, entity_at, &sig, &signed);
    let signed_hash = sha256_file(&signed, 0);

    // ours signs (streamed: the message is 7-bit), gpg verifies the entity and the signature
    let ours_signed = dir.join("big.ours-signed.eml");
    let sign = bounded(
        dir,
        "sealgate pgp sign",
        Command::new(BIN)
            .args(["pgp", "sign", "--key"])
            .arg(&alice.secret)
            .arg("--in")
            .arg(&plain)
            .arg("--out")
            .arg(&ours_signed),
    );
    let ours_entity = dir.join("big.ours-signed.entity");
    let ours_sig = dir.join("big.ours-signed.asc");
    split_signed(&ours_signed, &ours_entity, &ours_sig);
    assert_eq!(sha256_file(&ours_entity, 0), entity_hash);
    let gpg_verify_ours = measured(
        dir,
        "gpg --verify (ours)",
        g.cmd(&["--quiet", "--verify"])
            .arg(&ours_sig)
            .arg(&ours_entity),
    );
    std::fs::remove_file(&ours_entity).unwrap();
    let out = run_unchecked(
        Command::new(BIN)
            .args(["pgp", "verify", "--signer"])
            .arg(&alice.public)
            .arg("--in")
            .arg(&ours_signed),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("signature: valid"), "{err}");
    std::fs::remove_file(&ours_signed).unwrap();
    std::fs::remove_file(&plain).unwrap();
    eprintln!(
        "bigmsg-pgp: gpg-signed message of {} bytes",
        std::fs::metadata(&signed).unwrap().len()
    );

    // ours: exit 0 (measured() fails on any other), the message without its signature is the
    // original message (outer fields, MIME-Version, the entity)
    let verify_cmd = |input: &Path| {
        let mut c = Command::new(BIN);
        c.args(["pgp", "verify", "--signer"])
            .arg(&alice.public)
            .arg("--in")
            .arg(input);
        c
    };
    let verified = dir.join("big.verified.eml");
    let ver = bounded(
        dir,
        "sealgate pgp verify",
        verify_cmd(&signed).arg("--out").arg(&verified),
    );
    assert_eq!(
        sha256_file(&verified, 0),
        message_hash,
        "the verified message differs from the original"
    );
    std::fs::remove_file(&verified).unwrap();
    assert!(leftovers(dir).is_empty(), "{:?}", leftovers(dir));

    // signed, then encrypted (by gpg, as a mail client does it: the multipart/signed entity
    // encrypted, RFC 3156 §6.1): decrypt --signer checks the inner signature from the spill file
    let signed_entity = dir.join("big.signed.entity");
    copy_from(&signed, entity_at, &signed_entity);
    let armored = dir.join("big.signed.entity.asc");
    run(g
        .cmd(&[
            "--encrypt",
            "--armor",
            "-z",
            "0",
            "--recipient",
            &bob.fingerprint,
        ])
        .arg("--output")
        .arg(&armored)
        .arg(&signed_entity));
    std::fs::remove_file(&signed_entity).unwrap();
    let sealed = dir.join("big.signed.pgp.eml");
    wrap_pgp_mime(&signed, entity_at, &armored, &sealed);
    std::fs::remove_file(&armored).unwrap();
    let opened = dir.join("big.signed.out.eml");
    let dec = bounded(
        dir,
        "sealgate pgp decrypt --signer (inner signed)",
        decrypt_cmd(&bob, &sealed, &opened)
            .arg("--signer")
            .arg(&alice.public),
    );
    std::fs::remove_file(&sealed).unwrap();
    assert_eq!(sha256_file(&opened, 0), signed_hash);
    std::fs::remove_file(&opened).unwrap();

    // tampered: exit 1, INVALID, no spill file left in $TMPDIR (the default without --out)
    tamper_middle(&signed);
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = run_unchecked(verify_cmd(&signed).env("TMPDIR", &tmp));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("signature: INVALID"), "{err}");
    assert!(err.contains("[FAIL] signature"), "{err}");
    assert!(leftovers(&tmp).is_empty(), "{:?}", leftovers(&tmp));
    assert!(leftovers(dir).is_empty(), "{:?}", leftovers(dir));

    eprintln!(
        "bigmsg-pgp verify summary ({mib} MiB): sealgate verify {:.2} s / {:.1} MiB, sign {:.2} s \
         / {:.1} MiB, decrypt --signer (inner multipart/signed) {:.2} s / {:.1} MiB; gpg \
         --verify {:.2} s / {:.1} MiB, --verify of ours {:.2} s / {:.1} MiB, --detach-sign \
         {:.2} s / {:.1} MiB",
        ver.seconds,
        mib_of(&ver),
        sign.seconds,
        mib_of(&sign),
        dec.seconds,
        mib_of(&dec),
        gpg_verify.seconds,
        mib_of(&gpg_verify),
        gpg_verify_ours.seconds,
        mib_of(&gpg_verify_ours),
        gpg_sign.seconds,
        mib_of(&gpg_sign),
    );
}

/// A large message that is not 7-bit (an 8-bit UTF-8 text part and a binary attachment with
/// bare CR, LF and NUL, an 8-bit file name) is re-encoded as it streams: `pgp sign` signs the
/// quoted-printable / base64 form (RFC 3156 §5), which `gpg --verify` and `pgp verify` accept,
/// also from standard input, and `pgp encrypt` base64-encodes the attachment that CRLF
/// canonicalization would corrupt, which `gpg --decrypt` opens. Python's `email` package
/// decodes every result to the original parts; each of our commands stays under 64 MiB.
#[test]
fn large_eight_bit_messages_are_re_encoded_as_they_stream() {
    use bigmsg_support::{is_seven_bit, python_parts, write_eight_bit_message};
    if !require("gpg") || !require("/usr/bin/time") || !require("python3") {
        return;
    }
    let bin_mib = (size_mib() / 8).max(12);
    let g = Gpg::new();
    let alice = g.gen_key("Alice", "alice@example.com", GpgAlgo::Ed25519);
    let bob = g.gen_key("Bob", "bob@example.org", GpgAlgo::Ed25519);
    let work = work_dir();
    let dir = work.path();
    let plain = dir.join("m8.eml");
    let parts = write_eight_bit_message(&plain, 2, bin_mib);

    let signed = dir.join("m8.signed.eml");
    let sign = bounded(
        dir,
        "sealgate pgp sign (8-bit, re-encoded)",
        Command::new(BIN)
            .args(["pgp", "sign", "--key"])
            .arg(&alice.secret)
            .arg("--in")
            .arg(&plain)
            .arg("--out")
            .arg(&signed),
    );
    // (the outer fields, which the signature does not cover, are copied as they are: 8-bit)
    let entity = dir.join("m8.signed.entity");
    let sig = dir.join("m8.signed.asc");
    split_signed(&signed, &entity, &sig);
    assert!(is_seven_bit(&entity), "the signed entity is not 7-bit");
    run(g.cmd(&["--quiet", "--verify"]).arg(&sig).arg(&entity));
    assert_eq!(python_parts(&entity), parts.expected(), "the signed entity");
    let verified = dir.join("m8.verified.eml");
    let out = run_unchecked(
        Command::new(BIN)
            .args(["pgp", "verify", "--signer"])
            .arg(&alice.public)
            .arg("--in")
            .arg(&signed)
            .arg("--out")
            .arg(&verified),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("signature: valid"), "{err}");
    assert_eq!(
        python_parts(&verified),
        parts.expected(),
        "our verified message"
    );
    for f in [&signed, &entity, &sig, &verified] {
        std::fs::remove_file(f).unwrap();
    }

    // from standard input too (streamed: it cannot be read again)
    let out = run_unchecked(
        Command::new(BIN)
            .args(["pgp", "sign", "--key"])
            .arg(&alice.secret)
            .arg("--out")
            .arg(&signed)
            .stdin(File::open(&plain).unwrap()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    split_signed(&signed, &entity, &sig);
    run(g.cmd(&["--quiet", "--verify"]).arg(&sig).arg(&entity));
    assert_eq!(python_parts(&entity), parts.expected(), "signed from stdin");
    for f in [&signed, &entity, &sig] {
        std::fs::remove_file(f).unwrap();
    }

    let sealed = dir.join("m8.pgp.eml");
    let enc = bounded(
        dir,
        "sealgate pgp encrypt (binary part, re-encoded)",
        &mut encrypt_cmd(&bob, &plain, &sealed),
    );
    let armored = dir.join("m8.asc");
    extract_armor(&sealed, &armored);
    let by_gpg = dir.join("m8.gpg.eml");
    run(g
        .cmd(&["--quiet", "--output"])
        .arg(&by_gpg)
        .arg("--decrypt")
        .arg(&armored));
    assert_eq!(
        python_parts(&by_gpg),
        parts.expected(),
        "gpg's decrypted entity"
    );
    let opened = dir.join("m8.opened.eml");
    let dec = bounded(
        dir,
        "sealgate pgp decrypt (binary part, re-encoded)",
        &mut decrypt_cmd(&bob, &sealed, &opened),
    );
    assert_eq!(
        python_parts(&opened),
        parts.expected(),
        "our decrypted message"
    );
    assert!(leftovers(dir).is_empty(), "{:?}", leftovers(dir));
    eprintln!(
        "bigmsg-pgp 8-bit ({bin_mib} MiB attachment): sign {:.2} s / {:.1} MiB, encrypt {:.2} s \
         / {:.1} MiB, decrypt {:.2} s / {:.1} MiB",
        sign.seconds,
        mib_of(&sign),
        enc.seconds,
        mib_of(&enc),
        dec.seconds,
        mib_of(&dec)
    );
}
