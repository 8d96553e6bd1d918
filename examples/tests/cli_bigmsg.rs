//! Large messages in bounded memory: `sealgate smime encrypt` and `decrypt` of a message of
//! hundreds of MiB (256 MiB by default; `SEALGATE_BIG_MIB=1024` for the 1 GiB run that
//! benches/README.md reports), each child's peak RSS measured with GNU time (`/usr/bin/time
//! -f %M`) and required to stay under 64 MiB. The output is compared with the input by
//! SHA-256, read as a stream. `openssl cms -decrypt` reads what we wrote, and we read what
//! `openssl cms -encrypt -stream` wrote, under the same bound; openssl's own figures are
//! printed beside ours (it loads the whole message).
//!
//! The documented 1 GiB command (release build, figures on stderr):
//!
//! ```text
//! SEALGATE_BIG_MIB=1024 cargo test --release -p sealgate-examples --test cli_bigmsg -- --nocapture
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bigmsg_support;

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::Command;

use bigmsg_support::{MAX_RSS_KIB, measured, sha256_file, size_mib, write_message};
use sealgate_tests::{KeyType, Pki, require};

const BIN: &str = env!("CARGO_BIN_EXE_sealgate");

/// `sealgate smime decrypt` of `input` into `out` with the recipient's key and certificate.
fn decrypt_cmd(key: &Path, cert: &Path, input: &Path, out: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(["smime", "decrypt", "--key"])
        .arg(key)
        .arg("--cert")
        .arg(cert)
        .arg("--in")
        .arg(input)
        .arg("--out")
        .arg(out);
    c
}

/// The entity of the message at `plain` (from `entity_at` on), as openssl's input.
fn copy_entity(plain: &Path, entity_at: u64, entity: &Path) {
    let mut from = File::open(plain).unwrap();
    std::io::copy(
        &mut Read::by_ref(&mut from).take(entity_at),
        &mut std::io::sink(),
    )
    .unwrap();
    let mut to = BufWriter::new(File::create(entity).unwrap());
    std::io::copy(&mut from, &mut to).unwrap();
}

/// The spill and output temporaries our commands leave in `dir` (there must be none).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".sealgate-"))
        .collect()
}

/// The first `n` bytes of a file.
fn head_of(path: &Path, n: u64) -> Vec<u8> {
    let mut h = Vec::new();
    File::open(path)
        .unwrap()
        .take(n)
        .read_to_end(&mut h)
        .unwrap();
    h
}

#[test]
fn large_message_encrypts_and_decrypts_in_bounded_memory() {
    if !require("openssl") || !require("/usr/bin/time") {
        return;
    }
    let mib = size_mib();
    let pki = Pki::new();
    let bob = pki.user("bob", "bob@example.org", KeyType::Rsa2048);
    let dir = pki.path();
    let plain = dir.join("big.eml");
    let (message_hash, entity_hash, entity_at) = write_message(&plain, mib);
    eprintln!(
        "bigmsg: message of {mib} MiB of text ({} bytes)",
        std::fs::metadata(&plain).unwrap().len()
    );

    // ours: encrypt, then decrypt, each a child of its own
    let sealed = dir.join("big.p7m");
    let enc = measured(
        dir,
        "sealgate encrypt",
        Command::new(BIN)
            .args(["smime", "encrypt", "--to"])
            .arg(&bob.cert)
            .arg("--in")
            .arg(&plain)
            .arg("--out")
            .arg(&sealed),
    );
    let opened = dir.join("big.out.eml");
    let dec = measured(
        dir,
        "sealgate decrypt",
        &mut decrypt_cmd(&bob.key, &bob.cert, &sealed, &opened),
    );
    assert_eq!(
        sha256_file(&opened, 0),
        message_hash,
        "the decrypted message differs from the original"
    );
    std::fs::remove_file(&opened).unwrap();
    assert!(
        enc.peak_kib < MAX_RSS_KIB,
        "encrypt peak RSS {} KiB",
        enc.peak_kib
    );
    assert!(
        dec.peak_kib < MAX_RSS_KIB,
        "decrypt peak RSS {} KiB",
        dec.peak_kib
    );
    // nothing but the inputs and outputs is left in the directory (no spill files)
    let left = leftovers(dir);
    assert!(left.is_empty(), "{left:?}");

    // openssl reads ours (the entity comes out; the header fields are ours to merge)
    let by_openssl = dir.join("big.openssl.txt");
    let ossl_dec = measured(
        dir,
        "openssl cms -decrypt",
        Command::new("openssl")
            .args(["cms", "-decrypt", "-binary", "-in"])
            .arg(&sealed)
            .arg("-inkey")
            .arg(&bob.key)
            .arg("-recip")
            .arg(&bob.cert)
            .arg("-out")
            .arg(&by_openssl),
    );
    assert_eq!(sha256_file(&by_openssl, 0), entity_hash);
    std::fs::remove_file(&by_openssl).unwrap();
    std::fs::remove_file(&sealed).unwrap();

    // openssl's encryption of the same entity (in memory), and its -stream form (BER,
    // chunked), which we decrypt under the same bound
    let entity = dir.join("big.entity.txt");
    copy_entity(&plain, entity_at, &entity);
    std::fs::remove_file(&plain).unwrap();
    let by_openssl = dir.join("big.openssl.p7m");
    let ossl_enc = measured(
        dir,
        "openssl cms -encrypt",
        Command::new("openssl")
            .args(["cms", "-encrypt", "-binary", "-aes256", "-in"])
            .arg(&entity)
            .args(["-subject", "From openssl", "-out"])
            .arg(&by_openssl)
            .arg(&bob.cert),
    );
    std::fs::remove_file(&by_openssl).unwrap();
    let streamed = dir.join("big.openssl-stream.p7m");
    measured(
        dir,
        "openssl cms -encrypt -stream",
        Command::new("openssl")
            .args(["cms", "-encrypt", "-binary", "-stream", "-aes256", "-in"])
            .arg(&entity)
            .args(["-subject", "From openssl", "-out"])
            .arg(&streamed)
            .arg(&bob.cert),
    );
    std::fs::remove_file(&entity).unwrap();
    let opened = dir.join("big.stream.out.eml");
    let dec_stream = measured(
        dir,
        "sealgate decrypt (openssl -stream input)",
        &mut decrypt_cmd(&bob.key, &bob.cert, &streamed, &opened),
    );
    assert!(
        dec_stream.peak_kib < MAX_RSS_KIB,
        "decrypt of openssl -stream output: peak RSS {} KiB",
        dec_stream.peak_kib
    );
    // the header openssl wrote (Subject, MIME-Version) and then exactly the entity
    let head = head_of(&opened, 4096);
    let at = head
        .windows(13)
        .position(|w| w == b"Content-Type:")
        .expect("entity header");
    assert!(head[..at].starts_with(b"Subject: From openssl\r\n"));
    assert_eq!(sha256_file(&opened, at as u64), entity_hash);

    eprintln!(
        "bigmsg summary ({mib} MiB): sealgate encrypt {:.2} s / {:.1} MiB, decrypt {:.2} s / {:.1} MiB; \
         openssl cms -encrypt {:.2} s / {:.1} MiB, -decrypt {:.2} s / {:.1} MiB",
        enc.seconds,
        enc.peak_kib as f64 / 1024.0,
        dec.seconds,
        dec.peak_kib as f64 / 1024.0,
        ossl_enc.seconds,
        ossl_enc.peak_kib as f64 / 1024.0,
        ossl_dec.seconds,
        ossl_dec.peak_kib as f64 / 1024.0,
    );
}

/// The same for AES-256-GCM (AuthEnvelopedData, RFC 5083/5084): ours streams both ways under
/// the bound, releasing the plaintext only after the tag (which follows the ciphertext)
/// verified; a flipped tag byte leaves neither output nor spill file. openssl reads ours, and
/// we read `openssl cms -encrypt -stream -aes-256-gcm`. Kept lean for CI: no in-memory
/// openssl encryption here (the CBC test has that figure).
#[test]
fn large_gcm_message_encrypts_and_decrypts_in_bounded_memory() {
    if !require("openssl") || !require("/usr/bin/time") {
        return;
    }
    let mib = size_mib();
    let pki = Pki::new();
    let bob = pki.user("bob", "bob@example.org", KeyType::Rsa2048);
    let dir = pki.path();
    let plain = dir.join("big.eml");
    let (message_hash, entity_hash, entity_at) = write_message(&plain, mib);

    let sealed = dir.join("big.gcm.p7m");
    let enc = measured(
        dir,
        "sealgate encrypt (GCM)",
        Command::new(BIN)
            .args(["smime", "encrypt", "--cipher", "aes-256-gcm", "--to"])
            .arg(&bob.cert)
            .arg("--in")
            .arg(&plain)
            .arg("--out")
            .arg(&sealed),
    );
    let head = head_of(&sealed, 4096);
    assert!(
        head.windows(29)
            .any(|w| w == b"smime-type=authEnveloped-data"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let entity = dir.join("big.entity.txt");
    copy_entity(&plain, entity_at, &entity);
    std::fs::remove_file(&plain).unwrap();
    let opened = dir.join("big.gcm.out.eml");
    let dec = measured(
        dir,
        "sealgate decrypt (GCM)",
        &mut decrypt_cmd(&bob.key, &bob.cert, &sealed, &opened),
    );
    assert_eq!(sha256_file(&opened, 0), message_hash);
    std::fs::remove_file(&opened).unwrap();
    assert!(
        enc.peak_kib < MAX_RSS_KIB,
        "encrypt peak RSS {} KiB",
        enc.peak_kib
    );
    assert!(
        dec.peak_kib < MAX_RSS_KIB,
        "decrypt peak RSS {} KiB",
        dec.peak_kib
    );

    // openssl reads ours
    let by_openssl = dir.join("big.gcm.openssl.txt");
    let ossl_dec = measured(
        dir,
        "openssl cms -decrypt (GCM)",
        Command::new("openssl")
            .args(["cms", "-decrypt", "-binary", "-in"])
            .arg(&sealed)
            .arg("-inkey")
            .arg(&bob.key)
            .arg("-recip")
            .arg(&bob.cert)
            .arg("-out")
            .arg(&by_openssl),
    );
    assert_eq!(sha256_file(&by_openssl, 0), entity_hash);
    std::fs::remove_file(&by_openssl).unwrap();

    // A changed tag: the DER ends with the mac (16 bytes) and six end-of-contents octets, so
    // the 16th base64 character from the end (padding counted) falls in the mac. The whole
    // ciphertext is decrypted, then refused: no output, no spill file.
    {
        use std::io::{Seek, SeekFrom};
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&sealed)
            .unwrap();
        let len = f.metadata().unwrap().len();
        f.seek(SeekFrom::Start(len - 100)).unwrap();
        let mut tail = Vec::new();
        f.read_to_end(&mut tail).unwrap();
        let at = tail
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, b)| !b.is_ascii_whitespace())
            .nth(15)
            .unwrap()
            .0;
        tail[at] = if tail[at] == b'A' { b'B' } else { b'A' };
        f.seek(SeekFrom::Start(len - 100)).unwrap();
        f.write_all(&tail).unwrap();
    }
    let refused = dir.join("big.gcm.refused.eml");
    let status = decrypt_cmd(&bob.key, &bob.cert, &sealed, &refused)
        .output()
        .unwrap();
    assert!(!status.status.success());
    assert!(
        String::from_utf8_lossy(&status.stderr).contains("could not decrypt"),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(!refused.exists(), "output written despite a bad tag");
    let left = leftovers(dir);
    assert!(left.is_empty(), "{left:?}");
    std::fs::remove_file(&sealed).unwrap();

    // openssl's streamed GCM (BER, chunked), which we decrypt under the same bound
    let streamed = dir.join("big.gcm.openssl-stream.p7m");
    let ossl_enc = measured(
        dir,
        "openssl cms -encrypt -stream -aes-256-gcm",
        Command::new("openssl")
            .args([
                "cms",
                "-encrypt",
                "-binary",
                "-stream",
                "-aes-256-gcm",
                "-in",
            ])
            .arg(&entity)
            .args(["-subject", "From openssl", "-out"])
            .arg(&streamed)
            .arg(&bob.cert),
    );
    std::fs::remove_file(&entity).unwrap();
    let opened = dir.join("big.gcm.stream.out.eml");
    let dec_stream = measured(
        dir,
        "sealgate decrypt (openssl -stream GCM input)",
        &mut decrypt_cmd(&bob.key, &bob.cert, &streamed, &opened),
    );
    assert!(
        dec_stream.peak_kib < MAX_RSS_KIB,
        "decrypt of openssl -stream GCM output: peak RSS {} KiB",
        dec_stream.peak_kib
    );
    let head = head_of(&opened, 4096);
    let at = head
        .windows(13)
        .position(|w| w == b"Content-Type:")
        .expect("entity header");
    assert!(head[..at].starts_with(b"Subject: From openssl\r\n"));
    assert_eq!(sha256_file(&opened, at as u64), entity_hash);

    eprintln!(
        "bigmsg GCM summary ({mib} MiB): sealgate encrypt {:.2} s / {:.1} MiB, decrypt {:.2} s / \
         {:.1} MiB, decrypt of openssl -stream {:.2} s / {:.1} MiB; openssl cms -encrypt -stream \
         {:.2} s / {:.1} MiB, -decrypt {:.2} s / {:.1} MiB",
        enc.seconds,
        enc.peak_kib as f64 / 1024.0,
        dec.seconds,
        dec.peak_kib as f64 / 1024.0,
        dec_stream.seconds,
        dec_stream.peak_kib as f64 / 1024.0,
        ossl_enc.seconds,
        ossl_enc.peak_kib as f64 / 1024.0,
        ossl_dec.seconds,
        ossl_dec.peak_kib as f64 / 1024.0,
    );
}
