//! Any bytes as an `Autocrypt:` header value: the strict parser, the choice of the header for
//! a sender, and (for what parses) the keydata as an OpenPGP certificate; what we write
//! parses back to the same header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate::Limits;
use sealgate::keystore::autocrypt::{header_value, parse, select_for_sender};
use sealgate::pgp::Cert;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits::default();
    let _ = select_for_sender([value, value], "a@b", &limits);
    if let Ok(h) = parse(value, &limits) {
        let _ = Cert::load_all(&h.keydata, &limits);
        let again = parse(
            &header_value(&h.addr, h.prefer_encrypt, &h.keydata),
            &limits,
        )
        .expect("own header parses");
        assert_eq!(again, h);
    }
});
