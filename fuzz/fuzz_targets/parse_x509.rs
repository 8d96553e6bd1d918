//! Any bytes as a certificate file (PEM or DER, one or many) and as an unencrypted private
//! key (PKCS#8, PKCS#1, SEC1; PEM or DER), with everything a caller reads off a certificate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate::Limits;
use sealgate::smime::{Certificate, PrivateKey, load_private_key};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(certs) = Certificate::load_all(data, &limits) {
        for c in &certs {
            let _ = (c.subject(), c.issuer(), c.serial_hex(), c.validity());
            let _ = (
                c.email_addresses(),
                c.subject_key_identifier(),
                c.issuer_and_serial(),
            );
            let _ = c.public_key();
        }
    }
    if let Ok(key) = PrivateKey::from_der(data, &limits) {
        let _ = key.curve();
    }
    let _ = load_private_key(data, None, &limits);
});
