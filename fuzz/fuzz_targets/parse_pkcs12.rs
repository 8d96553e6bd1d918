//! Any bytes as a key file: PKCS#12 (MAC, PBES2 / PKCS#12 PBE decryption, SafeBags) with the
//! empty password and the fixtures' password, and as a PEM/DER private key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate::Limits;
use sealgate::smime::{Identity, load_private_key};
use secrecy::SecretString;

fuzz_target!(|data: &[u8]| {
    // The fixtures in tests/data/keys use 2048 iterations; a low ceiling keeps every input fast.
    let mut limits = Limits::default();
    limits.max_kdf_iterations = 2048;
    for password in ["", "sealgate-test"] {
        let password = SecretString::from(password);
        let _ = Identity::from_pkcs12(data, &password, &limits);
        let _ = load_private_key(data, Some(&password), &limits);
    }
    let _ = load_private_key(data, None, &limits);
});
