//! Any bytes as an RFC 5322 message: classification, MIME splitting, signature verification
//! and decryption with a fixed key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate::{mime, smime};

#[path = "fixed_key.rs"]
mod fixed_key;

fuzz_target!(|data: &[u8]| {
    let f = fixed_key::fixed();
    let _ = smime::classify(data, &f.limits);
    let _ = mime::split_for_protection(data, &f.limits);
    let _ = mime::parse_multipart_signed(data, &f.limits);
    let _ = mime::parse_pkcs7_mime(data, &f.limits);
    let _ = smime::verify_message(data, &f.trust, None, &f.limits);
    let _ = smime::decrypt_message(data, &f.key, Some(&f.cert), Some(&f.trust), &f.limits);
});
