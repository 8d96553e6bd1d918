//! Any bytes as a MIME message: the entity tree walked to the bottom (header values, types,
//! decoded bodies, multipart children, embedded messages), preparation for protection,
//! 7-bit re-encoding and the S/MIME part finders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate::Limits;
use sealgate::mime::{self, Entity};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(e) = Entity::parse(data, &limits) {
        walk(&e, &limits);
    }
    let _ = mime::split_for_protection(data, &limits);
    if let Ok(seven) = mime::make_seven_bit(data, &limits) {
        // What make_seven_bit writes must parse again.
        if let Ok(e) = Entity::parse(&seven, &limits) {
            walk(&e, &limits);
        }
    }
    let _ = mime::parse_multipart_signed(data, &limits);
    let _ = mime::parse_pkcs7_mime(data, &limits);
    let _ = mime::canonicalize_crlf(data);
});

fn walk(e: &Entity<'_>, limits: &Limits) {
    for h in e.headers() {
        let _ = h.value();
    }
    let _ = (
        e.content_type(),
        e.content_disposition(),
        e.filename(),
        e.transfer_encoding(),
    );
    if let Some(from) = e.header("From") {
        let _ = mime::first_address(&from);
    }
    let _ = e.decoded_body(limits);
    if let Ok(parts) = e.parts(limits) {
        for p in &parts {
            walk(p, limits);
        }
    }
    if let Ok(Some(m)) = e.embedded_message(limits) {
        walk(&m, limits);
    }
}
