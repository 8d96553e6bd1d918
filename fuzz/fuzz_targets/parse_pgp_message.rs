//! Any bytes as an OpenPGP message: decryption with fixed keys, inline and detached
//! verification, and the PGP/MIME message layer (the bytes wrapped as RFC 3156
//! multipart/encrypted and multipart/signed parts, and as a whole RFC 5322 message).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate::pgp;

#[path = "fixed_pgp_key.rs"]
mod fixed_pgp_key;

/// The data `plain.txt.ed.asc` and `plain.txt.rsa.sig` sign, so that seeds reach the math.
const SIGNED_DATA: &[u8] = include_bytes!("../../tests/data/pgp/plain.txt");

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

fn wrap_signed(data: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(data.len() + 512);
    m.extend_from_slice(
        b"From: a@example.org\r\nTo: b@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; micalg=pgp-sha256; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain\r\n\r\nHello from GnuPG.\r\nSecond line.\r\n\
--b1\r\nContent-Type: application/pgp-signature\r\n\r\n",
    );
    m.extend_from_slice(data);
    m.extend_from_slice(b"\r\n--b1--\r\n");
    m
}

fuzz_target!(|data: &[u8]| {
    let f = fixed_pgp_key::fixed();
    let _ = pgp::decrypt(data, &f.keys, &f.signers, &f.limits);
    let _ = pgp::verify_inline(data, &f.signers, &f.limits);
    let _ = pgp::verify_detached(SIGNED_DATA, data, &f.signers, &f.limits);
    // The bytes as the signed data of a fixed signature: the hashing side.
    let _ = pgp::verify_detached(
        data,
        include_bytes!("../../tests/data/pgp/plain.txt.ed.asc"),
        &f.signers,
        &f.limits,
    );
    let _ = pgp::decrypt_message(data, &f.keys, &f.signers, &f.limits);
    let _ = pgp::verify_message(data, &f.signers, &f.limits);
    let encrypted = wrap_encrypted(data);
    let _ = pgp::decrypt_message(&encrypted, &f.keys, &f.signers, &f.limits);
    let signed = wrap_signed(data);
    let _ = pgp::verify_message(&signed, &f.signers, &f.limits);
});
