//! Any bytes as OpenPGP certificates and secret keys: `Cert::load_all` and every accessor of
//! what it returns, `SecretKey::load` without and with a passphrase.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use sealgate::Limits;
use sealgate::pgp::{Cert, SecretKey};
use secrecy::SecretString;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    // A fixed time (2026-01-01) so that a run is reproducible, and "now".
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    if let Ok(certs) = Cert::load_all(data, &limits) {
        for cert in &certs {
            exercise(cert, at);
        }
    }
    for passphrase in [None, Some(SecretString::from("correct horse"))] {
        if let Ok(key) = SecretKey::load(data, passphrase.as_ref(), &limits) {
            exercise(key.cert(), at);
            let _ = format!("{key:?}");
            let _ = key.to_armored_secret();
            let _ = key.to_armored_public();
        }
    }
});

fn exercise(cert: &Cert, at: SystemTime) {
    let _ = format!("{cert:?}");
    let _ = cert.fingerprint();
    let addresses = cert.addresses();
    for a in &addresses {
        let _ = cert.has_address(a);
        let _ = cert.encryption_keys_for(Some(a), at);
    }
    let _ = cert.has_address("rsa@EXAMPLE.org");
    let _ = cert.encryption_keys_for(None, at);
    let _ = cert.encryption_keys_for(None, SystemTime::now());
    let _ = cert.supports_seipdv2();
    if let Ok(armored) = cert.to_armored() {
        // What we write must read back as the same certificate.
        let again = Cert::load_all(&armored, &Limits::default()).expect("re-read own armor");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].fingerprint(), cert.fingerprint());
    }
}
