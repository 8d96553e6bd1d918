//! Any bytes as CMS: BER normalisation, SignedData verification (with and without detached
//! content) and Enveloped/AuthEnvelopedData decryption with a fixed key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate::smime::{self, VerifyOptions};

#[path = "fixed_key.rs"]
mod fixed_key;

fuzz_target!(|data: &[u8]| {
    let f = fixed_key::fixed();
    let _ = smime::ber::to_der(data, &f.limits);
    let _ = smime::signed::verify(data, None, &f.trust, &VerifyOptions::default(), &f.limits);
    let _ = smime::signed::verify(
        data,
        Some(b"content"),
        &f.trust,
        &VerifyOptions::default(),
        &f.limits,
    );
    let _ = smime::enveloped::decrypt(data, &f.key, Some(&f.cert), &f.limits);
    let _ = smime::enveloped::decrypt(data, &f.key, None, &f.limits);
});
