//! Any bytes through the streaming PGP/MIME verification (`pgp::stream::verify_message`): as a
//! whole message, as the signed part of a fixed `multipart/signed` frame (under a fixed
//! signature, so the hash runs over the streamed, canonicalised part) and as its signature part
//! (header block, the line-wise multipart reader, the canonical writer, header protection held
//! whole, Sequoia's detached verifier over the spill file), read whole and in 7-byte reads.
//! Where it and the one-shot `verify_message` both succeed the message bytes and the signature
//! reports must be equal; where one fails the other must too, and a failure must leave no
//! spill file behind. The bytes as a message also go through the streaming `MessageSigner`
//! (the fixed Ed25519 key, 7-byte writes), whose output must verify, streamed and one-shot
//! alike, with a good signature.
#![no_main]

use std::io::{BufReader, Read, Write};

use libfuzzer_sys::fuzz_target;
use sealgate::pgp;

#[path = "fixed_pgp_key.rs"]
mod fixed_pgp_key;

const HEAD: &[u8] = b"From: <ed@example.org>\r\nTo: b@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; micalg=pgp-sha256;\r\n\
 boundary=\"b1\"\r\n\r\n--b1\r\n";

fn wrap_signed(content: &[u8], signature_part: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(content.len() + signature_part.len() + 512);
    m.extend_from_slice(HEAD);
    m.extend_from_slice(content);
    m.extend_from_slice(b"\r\n--b1\r\n");
    m.extend_from_slice(signature_part);
    m.extend_from_slice(b"\r\n--b1--\r\n");
    m
}

/// An armored detached signature by the fixed Ed25519 key over `content` (canonical, as
/// PGP/MIME signs it), as a signature part.
fn signature_part(content: &[u8]) -> Vec<u8> {
    let f = fixed_pgp_key::fixed();
    let canonical = sealgate::mime::canonicalize_crlf(content);
    let mut part = b"Content-Type: application/pgp-signature\r\n\r\n".to_vec();
    if let Some(key) = f.keys.get(1)
        && let Ok(sig) = pgp::sign_detached(&canonical, key, true)
    {
        part.extend_from_slice(&sig);
    }
    part
}

fn check(message: &[u8], dir: &std::path::Path) {
    let f = fixed_pgp_key::fixed();
    // (again for every input: a run of hours must survive a /tmp cleaner)
    std::fs::create_dir_all(dir).expect("spill dir");
    let one_shot = pgp::verify_message(message, &f.signers, &f.limits);
    for cap in [message.len().max(1), 7] {
        let input = BufReader::with_capacity(cap, message);
        match pgp::stream::verify_message(input, &f.signers, dir, &f.limits) {
            Ok(mut spilled) => {
                let mut ours = Vec::new();
                spilled
                    .reader()
                    .expect("spill file")
                    .read_to_end(&mut ours)
                    .expect("read spill file");
                assert_eq!(ours.len() as u64, spilled.len());
                let Ok(v) = &one_shot else {
                    panic!("streamed verification succeeded where the one-shot failed");
                };
                assert!(ours == v.message, "streamed and one-shot messages differ");
                assert_eq!(
                    format!("{:?}", spilled.verification()),
                    format!("{:?}", v.verification),
                    "streamed and one-shot reports differ"
                );
            }
            Err(e) => {
                // The stream refuses what it does not stream (an inline signature), and fails
                // where the one-shot fails; it never fails where the one-shot succeeds on a
                // PGP/MIME signed message.
                if let Ok(v) = &one_shot
                    && !matches!(e, pgp::Error::WrongMessageType { .. })
                {
                    panic!("the one-shot verifies it ({}), the stream not: {e}", v.verification.is_valid());
                }
                let left = std::fs::read_dir(dir).expect("spill dir").count();
                assert_eq!(left, 0, "spill file left behind");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!(
        "sealgate-fuzz-pgp-signed-stream-{}",
        std::process::id()
    ));
    check(data, &dir);
    check(&wrap_signed(data, &signature_part(data)), &dir);
    check(
        &wrap_signed(b"Content-Type: text/plain\r\n\r\nfixed\r\n", data),
        &dir,
    );
    // The writing side: the bytes as a message.
    let f = fixed_pgp_key::fixed();
    if let Some(key) = f.keys.get(1)
        && let Ok(mut w) =
            pgp::stream::MessageSigner::new(Vec::new(), key, &mut rand_core::OsRng, &f.limits)
    {
        let written = data.chunks(7).try_for_each(|c| w.write_all(c)).is_ok();
        if let (true, Ok(signed)) = (written, w.finish()) {
            check(&signed, &dir);
            let v = pgp::verify_message(&signed, &f.signers, &f.limits)
                .expect("our signed message does not verify");
            assert!(
                v.verification.signatures.first().is_some_and(|s| s.checks.first().is_some_and(|c| c.1)),
                "our signature does not verify"
            );
        }
    }
});
