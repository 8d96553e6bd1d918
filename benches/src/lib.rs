//! Shared bench support: keys made with OpenSSL (so both sides use the same ones) and test
//! messages of a given size.

// Bench set-up: a failure should stop the run loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{ExtendedKeyUsage, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};

/// An RSA-2048 key with a self-signed S/MIME certificate.
pub struct Keys {
    /// OpenSSL's key.
    pub key: PKey<Private>,
    /// OpenSSL's certificate.
    pub cert: X509,
    /// The key as PKCS#8 DER.
    pub key_pkcs8_der: Vec<u8>,
    /// The certificate as DER.
    pub cert_der: Vec<u8>,
}

impl Keys {
    /// Generate a fresh key and certificate for bench@example.com.
    #[allow(clippy::unwrap_used)]
    pub fn generate() -> Keys {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "Sealgate Bench").unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .key_cert_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.append_extension(ExtendedKeyUsage::new().email_protection().build().unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .email("bench@example.com")
            .build(&b.x509v3_context(None, None))
            .unwrap();
        b.append_extension(san).unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let cert = b.build();
        Keys {
            key_pkcs8_der: key.private_key_to_pkcs8().unwrap(),
            cert_der: cert.to_der().unwrap(),
            key,
            cert,
        }
    }
}

/// A message of about `size` bytes: a text part and a base64 attachment.
pub fn message(size: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(size);
    message_chunks(size, |c| m.extend_from_slice(c));
    m
}

/// The bytes of [`message`]`(size)`, handed to `sink` in pieces of at most about 64 KiB, so
/// that a message of any size can be streamed without being held.
pub fn message_chunks(size: usize, mut sink: impl FnMut(&[u8])) {
    let head = b"From: bench@example.com\r\nTo: someone@example.org\r\nSubject: bench\r\n\
        Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"bench-boundary\"\r\n\r\n\
        --bench-boundary\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThe report.\r\n\
        --bench-boundary\r\nContent-Type: application/octet-stream\r\n\
        Content-Transfer-Encoding: base64\r\n\r\n";
    sink(head);
    let mut len = head.len();
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state: u32 = 12345;
    let mut buf = Vec::with_capacity(64 * 1024 + 78);
    while len + 78 + 20 < size {
        for _ in 0..76 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            buf.push(T[(state >> 26) as usize]);
        }
        buf.extend_from_slice(b"\r\n");
        len += 78;
        if buf.len() >= 64 * 1024 {
            sink(&buf);
            buf.clear();
        }
    }
    buf.extend_from_slice(b"--bench-boundary--\r\n");
    sink(&buf);
}

/// Peak resident set size of this process (VmHWM) in bytes.
pub fn peak_rss() -> u64 {
    proc_status_kb("VmHWM:") * 1024
}

/// Current resident set size (VmRSS) in bytes.
pub fn current_rss() -> u64 {
    proc_status_kb("VmRSS:") * 1024
}

/// Reset the peak to the current RSS (Linux: `5` to `/proc/self/clear_refs`).
pub fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

fn proc_status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
