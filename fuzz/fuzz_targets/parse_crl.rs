//! Any bytes as a CRL (PEM or DER), with everything a key store reads off it: issuer, times,
//! number, entries, the revocation status of a fixed certificate, and the signature check
//! against that certificate (which fails, but must get there without a panic).
#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use sealgate::Limits;
use sealgate::smime::Certificate;
use sealgate::smime::crl::Crl;

fuzz_target!(|data: &[u8]| {
    static CERT: std::sync::OnceLock<Certificate> = std::sync::OnceLock::new();
    let cert = CERT.get_or_init(|| {
        Certificate::from_der(include_bytes!("../../tests/data/fuzz/cert.der")).expect("fixed cert")
    });
    let limits = Limits::default();
    if let Ok(crl) = Crl::load(data, &limits) {
        let _ = (
            crl.issuer(),
            crl.this_update(),
            crl.next_update(),
            crl.crl_number(),
        );
        let _ = (
            crl.len(),
            crl.is_stale(SystemTime::now()),
            crl.fingerprint_sha256(),
        );
        for (serial, entry) in crl.entries() {
            let _ = (serial.len(), entry.reason, entry.revocation_date);
        }
        let _ = crl.status(cert);
        let _ = crl.is_revoked(cert);
        let _ = crl.verify_signature(cert);
        // the DER it keeps parses again to the same CRL
        let again = Crl::from_der(crl.der(), &limits).expect("re-parse");
        assert_eq!(again.len(), crl.len());
    }
});
