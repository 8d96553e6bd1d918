//! Any bytes through the streaming PGP/MIME decryption (`pgp::stream`): as a whole message and
//! as the encrypted part of a fixed `multipart/encrypted` frame (header block, the line-wise
//! multipart reader, sequoia's armor reader and decryptor with the fixed keys, the spill file),
//! read whole and in 7-byte reads. Where it and the one-shot `decrypt_message` both succeed
//! the bytes must be equal, and a failed streamed decryption must leave no spill file behind.
//! The bytes as a message also go through the streaming `MessageEncryptor` (to the fixed
//! Cv25519 key), whose output the streamed decryption must read back where the one-shot reads
//! it as PGP/MIME.
#![no_main]

use std::io::{BufReader, Read, Write};

use libfuzzer_sys::fuzz_target;
use sealgate::pgp;

#[path = "fixed_pgp_key.rs"]
mod fixed_pgp_key;

fn wrap_encrypted(data: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(data.len() + 512);
    m.extend_from_slice(
        b"From: a@example.org\r\nTo: b@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
--b1\r\nContent-Type: application/octet-stream\r\n\r\n",
    );
    m.extend_from_slice(data);
    m.extend_from_slice(b"\r\n--b1--\r\n");
    m
}

/// Streamed decryption of `message`, compared with the one-shot; returns what came out, or the
/// last error.
fn check(message: &[u8], dir: &std::path::Path) -> Result<Vec<u8>, String> {
    let f = fixed_pgp_key::fixed();
    // (again for every input: a run of hours must survive a /tmp cleaner)
    std::fs::create_dir_all(dir).expect("spill dir");
    let one_shot = pgp::decrypt_message(message, &f.keys, &f.signers, &f.limits);
    let mut out = Err(String::new());
    for cap in [message.len().max(1), 7] {
        let input = BufReader::with_capacity(cap, message);
        match pgp::stream::decrypt_message(input, &f.keys, &f.signers, dir, &f.limits) {
            Ok(mut spilled) => {
                let mut ours = Vec::new();
                spilled
                    .reader()
                    .expect("spill file")
                    .read_to_end(&mut ours)
                    .expect("read spill file");
                assert_eq!(ours.len() as u64, spilled.len());
                if let Ok(d) = &one_shot {
                    assert_eq!(&ours[..], &d.message[..], "streamed and one-shot differ");
                }
                // the inner-signature path of a streamed result
                let _ = spilled.into_decrypted(&f.signers, &f.limits);
                out = Ok(ours);
            }
            Err(e) => {
                if out.is_err() {
                    out = Err(e.to_string());
                }
                let left = std::fs::read_dir(dir).expect("spill dir").count();
                assert_eq!(left, 0, "spill file left behind");
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let f = fixed_pgp_key::fixed();
    let dir = std::env::temp_dir().join(format!("sealgate-fuzz-pgp-stream-{}", std::process::id()));
    let _ = check(data, &dir);
    let _ = check(&wrap_encrypted(data), &dir);
    // The writing side: the bytes as a message, in 7-byte writes.
    let to = &f.signers[1..];
    let opts = pgp::EncryptMessageOptions::default();
    if let Ok(mut w) = pgp::stream::MessageEncryptor::new(Vec::new(), to, None, &opts, &f.limits) {
        let written = data.chunks(7).try_for_each(|c| w.write_all(c)).is_ok();
        if let (true, Ok(sealed)) = (written, w.finish()) {
            // (`check` asserts equal bytes where both succeed; the one-shot also reads inline
            // PGP, which a broken header can turn our output into.)
            let one_shot = pgp::decrypt_message(&sealed, &f.keys, &[], &f.limits);
            let streamed = check(&sealed, &dir);
            if one_shot.is_ok_and(|d| !d.inline)
                && let Err(e) = streamed
            {
                panic!("the one-shot reads it, the stream not: {e}");
            }
        }
    }
});
