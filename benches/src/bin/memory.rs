//! Peak memory of the one-shot S/MIME operations and of the streaming encryptor.
//!
//! ```text
//! memory prepare DIR SIZE     # keys, message, signed and encrypted message of SIZE bytes
//! memory run OP DIR           # OP: sign | verify | encrypt | decrypt, on DIR's files
//! memory stream DIR SIZE      # stream-encrypt a generated SIZE-byte message, then
//!                             # `openssl cms -decrypt` it and compare the plaintext
//! memory pgp-stream DIR SIZE  # OpenPGP: stream-encrypt SIZE bytes with `sealgate::pgp::Encryptor`
//!                             # to a key made by gpg, then `gpg --decrypt` it and compare
//! memory pgp-stream-decrypt DIR SIZE  # PGP/MIME of SIZE bytes, written by
//!                             # `pgp::stream::MessageEncryptor`, decrypted by
//!                             # `pgp::stream::decrypt_message` into a spill file in DIR
//! ```
//!
//! Each `run` is its own process: it reads its input file, resets the peak RSS
//! (`/proc/self/clear_refs`), does the one operation and reports the peak above what it held
//! before (binary, keys and the input) as well as the absolute peak.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use openssl::sha::Sha256;
use sealgate::Limits;
use sealgate::smime::{
    self, Certificate, EncryptMessageOptions, Identity, MessageEncryptor, PrivateKey, Recipient,
    SignMessageOptions, TrustStore,
};
use sealgate_benches::{Keys, current_rss, message, message_chunks, peak_rss, reset_peak_rss};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("prepare") => prepare(Path::new(&args[2]), args[3].parse().unwrap()),
        Some("run") => run(&args[2], Path::new(&args[3])),
        Some("stream") => stream(Path::new(&args[2]), args[3].parse().unwrap()),
        Some("pgp-stream") => pgp_stream(Path::new(&args[2]), args[3].parse().unwrap()),
        Some("pgp-stream-decrypt") => {
            pgp_stream_decrypt(Path::new(&args[2]), args[3].parse().unwrap())
        }
        _ => {
            eprintln!(
                "usage: memory prepare DIR SIZE | run OP DIR | stream DIR SIZE | pgp-stream DIR SIZE | pgp-stream-decrypt DIR SIZE"
            );
            std::process::exit(2);
        }
    }
}

fn ours(dir: &Path) -> (Identity, Certificate) {
    let limits = Limits::default();
    let key =
        PrivateKey::from_der(&std::fs::read(dir.join("key.pk8.der")).unwrap(), &limits).unwrap();
    let cert = Certificate::from_der(&std::fs::read(dir.join("cert.der")).unwrap()).unwrap();
    (Identity::new(key, cert.clone(), vec![]).unwrap(), cert)
}

fn prepare(dir: &Path, size: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let keys = Keys::generate();
    std::fs::write(dir.join("key.pk8.der"), &keys.key_pkcs8_der).unwrap();
    std::fs::write(dir.join("cert.der"), &keys.cert_der).unwrap();
    std::fs::write(
        dir.join("key.pem"),
        keys.key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("cert.pem"), keys.cert.to_pem().unwrap()).unwrap();
    let (id, cert) = ours(dir);
    let limits = Limits::default();
    let msg = message(size);
    let rng = &mut rand_core::OsRng;
    let signed =
        smime::sign_message(&msg, &id, &SignMessageOptions::default(), rng, &limits).unwrap();
    let encrypted = smime::encrypt_message(
        &msg,
        &[Recipient::new(cert)],
        None,
        &EncryptMessageOptions::default(),
        rng,
        &limits,
    )
    .unwrap();
    std::fs::write(dir.join("message.eml"), &msg).unwrap();
    std::fs::write(dir.join("signed.eml"), &signed).unwrap();
    std::fs::write(dir.join("encrypted.eml"), &encrypted).unwrap();
}

fn run(op: &str, dir: &Path) {
    let (id, cert) = ours(dir);
    let limits = Limits::default();
    let input_name = match op {
        "sign" | "encrypt" => "message.eml",
        "verify" => "signed.eml",
        "decrypt" => "encrypted.eml",
        _ => panic!("unknown operation {op}"),
    };
    let input = std::fs::read(dir.join(input_name)).unwrap();
    let msg_len = std::fs::metadata(dir.join("message.eml")).unwrap().len();
    let trust = TrustStore::new(vec![cert.clone()]);
    let rng = &mut rand_core::OsRng;
    // MEMORY_REPEAT=n repeats the operation (for a profiler); the peak is that of all runs.
    let repeat: usize = std::env::var("MEMORY_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    reset_peak_rss();
    let before = current_rss();
    let mut out_len = 0;
    for _ in 0..repeat {
        out_len = match op {
            "sign" => {
                smime::sign_message(&input, &id, &SignMessageOptions::default(), rng, &limits)
                    .unwrap()
                    .len()
            }
            "encrypt" => smime::encrypt_message(
                &input,
                &[Recipient::new(cert.clone())],
                None,
                &EncryptMessageOptions::default(),
                rng,
                &limits,
            )
            .unwrap()
            .len(),
            "verify" => {
                let v = smime::verify_message(&input, &trust, None, &limits).unwrap();
                assert!(v.verification.is_valid());
                v.message.len()
            }
            "decrypt" => smime::decrypt_message(&input, &id.key, Some(&cert), None, &limits)
                .unwrap()
                .message
                .len(),
            _ => unreachable!(),
        };
    }
    let peak = peak_rss();
    let mb = |b: u64| b as f64 / 1_048_576.0;
    println!(
        "{op}: message {:.1} MiB, input {:.1} MiB, output {:.1} MiB; RSS before {:.1} MiB, \
         peak {:.1} MiB, peak above before {:.1} MiB = {:.2}x the message",
        mb(msg_len),
        mb(input.len() as u64),
        mb(out_len as u64),
        mb(before),
        mb(peak),
        mb(peak - before),
        (peak - before) as f64 / msg_len as f64,
    );
}

fn stream(dir: &Path, size: usize) {
    if !dir.join("key.pem").exists() {
        prepare(dir, 1024);
    }
    let (_, cert) = ours(dir);
    let limits = Limits::default();
    let out_path: PathBuf = dir.join("streamed.eml");
    let file = BufWriter::with_capacity(64 * 1024, std::fs::File::create(&out_path).unwrap());
    let mut enc = MessageEncryptor::new(
        file,
        &[Recipient::new(cert)],
        &EncryptMessageOptions::default(),
        &mut rand_core::OsRng,
        &limits,
    )
    .unwrap();
    // The inner entity openssl must give back: the Content-Type field, the empty line, the
    // body (the message is CRLF and 7-bit already).
    let mut expected = Sha256::new();
    let mut first = true;
    let mut total = 0u64;
    message_chunks(size, |chunk| {
        total += chunk.len() as u64;
        enc.write_all(chunk).unwrap();
        if first {
            first = false;
            let text = std::str::from_utf8(chunk).unwrap();
            let ct = text.find("Content-Type:").unwrap();
            expected.update(&chunk[ct..]);
        } else {
            expected.update(chunk);
        }
    });
    let mut file = enc.finish().unwrap();
    file.flush().unwrap();
    drop(file);
    let peak = peak_rss();
    let out_len = std::fs::metadata(&out_path).unwrap().len();
    println!(
        "stream-encrypt: message {:.1} MiB -> {:.1} MiB S/MIME; peak RSS of the whole process {:.1} MiB",
        total as f64 / 1_048_576.0,
        out_len as f64 / 1_048_576.0,
        peak as f64 / 1_048_576.0
    );
    let expected = hex(&expected.finish());
    let mut child = Command::new("openssl")
        .args(["cms", "-decrypt", "-binary", "-in"])
        .arg(&out_path)
        .arg("-recip")
        .arg(dir.join("cert.pem"))
        .arg("-inkey")
        .arg(dir.join("key.pem"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut got = Sha256::new();
    let mut n = 0u64;
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = stdout.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        n += k as u64;
        got.update(&buf[..k]);
    }
    assert!(
        child.wait().unwrap().success(),
        "openssl cms -decrypt failed"
    );
    let got = hex(&got.finish());
    println!(
        "openssl cms -decrypt: {:.1} MiB, SHA-256 {got} ({})",
        n as f64 / 1_048_576.0,
        if got == expected {
            "matches the inner entity"
        } else {
            "MISMATCH"
        }
    );
    assert_eq!(got, expected);
}

/// Peak RSS of `sealgate::pgp::Encryptor` (binary OpenPGP, SEIPD v1 to a gpg-made RSA-3072
/// key) over a generated message of `size` bytes written in 64 KiB pieces to a buffered file;
/// then `gpg --decrypt` must give back the same bytes (SHA-256 compared).
fn pgp_stream(dir: &Path, size: usize) {
    use sealgate::pgp::{Cert, EncryptOptions, Encryptor};
    std::fs::create_dir_all(dir).unwrap();
    let gpg = sealgate_tests::Gpg::new();
    let k = gpg.gen_key(
        "Bench",
        "bench@example.com",
        sealgate_tests::GpgAlgo::Rsa3072,
    );
    let limits = Limits::default();
    let certs = Cert::load_all(&std::fs::read(&k.public).unwrap(), &limits).unwrap();
    let out_path: PathBuf = dir.join("streamed.pgp");
    // Only the streaming part is measured: the gpg key generation above is another process.
    reset_peak_rss();
    let before = current_rss();
    let file = BufWriter::with_capacity(64 * 1024, std::fs::File::create(&out_path).unwrap());
    let opts = EncryptOptions {
        armor: false,
        ..EncryptOptions::default()
    };
    let mut enc = Encryptor::new(file, &certs, None, &opts).unwrap();
    let mut expected = Sha256::new();
    let mut total = 0u64;
    message_chunks(size, |chunk| {
        total += chunk.len() as u64;
        enc.write_all(chunk).unwrap();
        expected.update(chunk);
    });
    let mut file = enc.finish().unwrap();
    file.flush().unwrap();
    drop(file);
    let peak = peak_rss();
    let out_len = std::fs::metadata(&out_path).unwrap().len();
    println!(
        "pgp-stream-encrypt: {:.1} MiB -> {:.1} MiB OpenPGP; RSS before {:.1} MiB, peak RSS of the whole process {:.1} MiB",
        total as f64 / 1_048_576.0,
        out_len as f64 / 1_048_576.0,
        before as f64 / 1_048_576.0,
        peak as f64 / 1_048_576.0
    );
    let expected = hex(&expected.finish());
    let mut child = gpg
        .cmd(&["--decrypt"])
        .arg(&out_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut got = Sha256::new();
    let mut n = 0u64;
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = stdout.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        n += k as u64;
        got.update(&buf[..k]);
    }
    assert!(child.wait().unwrap().success(), "gpg --decrypt failed");
    let got = hex(&got.finish());
    println!(
        "gpg --decrypt: {:.1} MiB, SHA-256 {got} ({})",
        n as f64 / 1_048_576.0,
        if got == expected {
            "matches the input"
        } else {
            "MISMATCH"
        }
    );
    assert_eq!(got, expected);
    std::fs::remove_file(&out_path).unwrap();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Peak RSS of `sealgate::pgp::stream::decrypt_message` over a PGP/MIME message of `size`
/// bytes of content (written first, in this process, by the streaming `MessageEncryptor` to an
/// RSA-3072 key of ours; the peak is reset after that), reading the file through a 64 KiB
/// `BufReader`; the spilled plaintext's SHA-256 is compared with the input's.
fn pgp_stream_decrypt(dir: &Path, size: usize) {
    use sealgate::pgp::{self, EncryptMessageOptions, KeyKind, SecretKey};
    std::fs::create_dir_all(dir).unwrap();
    let limits = Limits::default();
    let key = SecretKey::generate("Bench <bench@example.com>", KeyKind::Rsa3072).unwrap();
    let certs = vec![key.cert().clone()];
    let path = dir.join("streamed-mime.eml");
    let head = b"From: a@example.com\r\nTo: bench@example.com\r\nSubject: big\r\n\
        MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n";
    {
        let file = BufWriter::with_capacity(64 * 1024, std::fs::File::create(&path).unwrap());
        let mut enc = pgp::stream::MessageEncryptor::new(
            file,
            &certs,
            None,
            &EncryptMessageOptions::default(),
            &limits,
        )
        .unwrap();
        enc.write_all(head).unwrap();
        message_chunks(size, |chunk| enc.write_all(chunk).unwrap());
        enc.finish().unwrap().flush().unwrap();
    }
    let input_len = std::fs::metadata(&path).unwrap().len();
    let keys = vec![key];
    reset_peak_rss();
    let before = current_rss();
    let input = std::io::BufReader::with_capacity(64 * 1024, std::fs::File::open(&path).unwrap());
    let mut spilled =
        pgp::stream::decrypt_message(input, &keys, &[], dir, &Limits::default()).unwrap();
    let peak = peak_rss();
    println!(
        "pgp-stream-decrypt: {:.1} MiB PGP/MIME -> {:.1} MiB; RSS before {:.1} MiB, peak RSS of the whole process {:.1} MiB",
        input_len as f64 / 1_048_576.0,
        spilled.len() as f64 / 1_048_576.0,
        before as f64 / 1_048_576.0,
        peak as f64 / 1_048_576.0
    );
    // The content comes back: the spilled message ends with the generated body.
    let mut got = Vec::new();
    spilled.reader().unwrap().read_to_end(&mut got).unwrap();
    let mut expected = Vec::with_capacity(size);
    message_chunks(size, |chunk| expected.extend_from_slice(chunk));
    assert!(got.ends_with(&expected), "the decrypted body differs");
}
