//! Any bytes as a key file for the key store's content-sniffing importer
//! (`keystore::parse_key_material`: PEM with many blocks, DER certificate / key / CRL, PKCS#12,
//! OpenPGP armored or binary, public or secret), without and with a password, and then the
//! whole import path into an in-memory store (one transaction; a refused file stores nothing).
//! Any private key `load_private_key` accepts (RSA, EC, ML-DSA in seed, expanded or both form)
//! must make a signature that its own public key verifies: a key whose parts do not belong
//! together must be refused at load.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sealgate::Limits;
use sealgate::keystore::{
    ImportOptions, KeyStore, Keyring, MemoryStore, StoreSecret, parse_key_material,
};
use secrecy::SecretString;

fuzz_target!(|data: &[u8]| {
    // A low KDF ceiling keeps every input fast (PKCS#12 and encrypted PKCS#8 derive keys).
    let mut limits = Limits::default();
    limits.max_kdf_iterations = 2048;
    let password = SecretString::from("sealgate-test");
    let _ = parse_key_material(data, None, &limits);
    let _ = parse_key_material(data, Some(&password), &limits);
    if let Ok(key) = sealgate::smime::load_private_key(data, None, &limits) {
        let scheme = key.signature_scheme(sealgate::smime::DigestAlgorithm::Sha256);
        // ML-KEM keys cannot sign; every other key that loaded must sign consistently.
        if let Ok(sig) = key.sign(scheme, b"fuzz") {
            assert!(
                key.public_key()
                    .verify(scheme, b"fuzz", &sig)
                    .expect("own scheme"),
                "a loaded key made a signature its public key refuses"
            );
        }
    }
    let store = Arc::new(MemoryStore::new());
    let secret = StoreSecret::raw_key_from_hex(&"01".repeat(32)).expect("fixed key");
    let keys = Keyring::open(store.clone(), Some(&secret), limits).expect("memory store");
    let opts = ImportOptions {
        password: Some(password),
        trust_anchors: true,
        by: String::new(),
    };
    if keys.import(&[("input", data)], &opts).is_err() {
        // all or nothing
        assert!(store.certificates().expect("list").is_empty());
        assert!(store.pgp_certificates().expect("list").is_empty());
    }
});
