//! Any bytes as a MIME message: the entity tree walked to the bottom (header values, types,
//! decoded bodies, multipart children, embedded messages), preparation for protection,
//! 7-bit re-encoding (in memory and as a stream) and the S/MIME part finders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate::Limits;
use sealgate::mime::reencode::{Reencode, reencode};
use sealgate::mime::{self, Entity};

fuzz_target!(|data: &[u8]| {
    // Once with the defaults and once with tiny limits, so that every limit check is reached
    // (depth, part count, header count and line length) and must fail cleanly.
    let mut tight = Limits::default();
    tight.max_mime_depth = 2;
    tight.max_parts = 3;
    tight.max_header_count = 4;
    tight.max_header_line = 30;
    for limits in [Limits::default(), tight] {
        exercise(data, &limits);
    }
});

fn exercise(data: &[u8], limits: &Limits) {
    if let Ok(e) = Entity::parse(data, limits) {
        walk(&e, limits);
    }
    let _ = mime::split_for_protection(data, limits);
    if let Ok(seven) = mime::make_seven_bit(data, limits) {
        // What make_seven_bit writes must parse again, and needs no second pass.
        if let Ok(e) = Entity::parse(&seven, limits) {
            walk(&e, limits);
        }
        if let Ok(again) = mime::make_seven_bit(&seven, limits) {
            assert!(again == seven, "make_seven_bit is not idempotent");
        }
    }
    // The streaming re-encoder on the same bytes, both ways; what it makes is parsed and
    // walked again.
    for what in [Reencode::SevenBit, Reencode::LineEnds] {
        let mut out = Vec::new();
        if reencode(data, &mut out, what, &std::env::temp_dir(), limits).is_ok()
            && let Ok(e) = Entity::parse(&out, limits)
        {
            walk(&e, limits);
        }
    }
    let _ = mime::parse_multipart_signed(data, limits);
    let _ = mime::parse_pkcs7_mime(data, limits);
    let _ = mime::canonicalize_crlf(data);
    // The Date parser (Autocrypt's effective date) on any text.
    let _ = mime::parse_date(&String::from_utf8_lossy(data));
}

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
    for h in e.headers().iter().filter(|h| h.is_named("From")) {
        let _ = mime::mailboxes(h.raw_value());
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
