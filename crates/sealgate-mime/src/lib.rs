#![doc = include_str!("../README.md")]

mod canonical;
mod compose;
mod edit;
mod entity;
mod error;
mod header;
mod hp;
mod limits;
pub mod multipart;
mod pgp;
mod protect;
pub mod reencode;
mod smime;
pub mod spill;
mod text;
mod transfer;

pub use canonical::{
    CanonicalWriter, canonicalize_crlf, header_block_end, is_canonical, read_header_block,
};
pub use compose::{
    MessageBuilder, Part, civil_from_days, encode_mailbox, encode_text, filename_param,
    format_date, format_rfc3339, message_id, parse_date,
};
pub use edit::rewrite_header;
pub use entity::Entity;
pub use error::{Error, Result};
pub use header::{ContentType, HeaderField, mailboxes};
pub use hp::{
    HeaderProtection, HpMode, LegacyDisplayMarker, OBSCURED_SUBJECT, apply_header_protection,
    has_header_protection, protected_header, unprotect_headers,
};
pub use limits::Limits;
pub use pgp::{
    InlinePgp, InlinePgpKind, MultipartEncrypted, PGP_ENCRYPTED, PGP_SIGNATURE, SignedFrame,
    build_pgp_encrypted, build_pgp_signed, find_inline_pgp, parse_pgp_encrypted,
    pgp_encrypted_frame, pgp_signed_frame,
};
pub use protect::{
    ProtectedParts, assemble, make_seven_bit, protect_subject, split_for_protection,
    split_for_protection_parts, split_header_for_protection, unprotected_outer,
};
pub use smime::{
    MultipartSigned, Pkcs7Mime, build_base64_entity, build_multipart_signed,
    parse_multipart_signed, parse_pkcs7_mime, write_multipart_signed,
};
pub use text::{decode_text, html_to_text};
pub use transfer::{Base64Writer, decode_base64};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Walk everything a caller could ask of an untrusted message; only errors may come out.
    fn exercise(raw: &[u8], limits: &Limits) {
        if let Ok(e) = Entity::parse(raw, limits) {
            walk(&e, limits);
        }
        let _ = parse_multipart_signed(raw, limits);
        let _ = parse_pkcs7_mime(raw, limits);
        let _ = parse_pgp_encrypted(raw, limits);
        let _ = find_inline_pgp(raw, limits);
        let _ = parse_date(&String::from_utf8_lossy(raw));
        let _ = split_for_protection(raw, limits);
        if let Ok(out) = make_seven_bit(raw, limits) {
            let _ = Entity::parse(&out, limits);
        }
        let _ = canonicalize_crlf(raw);
    }

    fn walk(e: &Entity<'_>, limits: &Limits) {
        for h in e.headers() {
            let _ = h.value();
        }
        let _ = (e.content_type(), e.transfer_encoding(), e.filename());
        let _ = e.decoded_body(limits);
        let _ = e.decoded_text(limits);
        if let Ok(parts) = e.parts(limits) {
            for p in &parts {
                walk(p, limits);
            }
        }
        if let Ok(Some(m)) = e.embedded_message(limits) {
            walk(&m, limits);
        }
    }

    /// Lines that make the parsers take their interesting paths.
    fn mime_line() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=b\r\n".to_vec()),
            Just(b"Content-Type: multipart/mixed; boundary=\"b\"\n".to_vec()),
            Just(b"Content-Type: message/rfc822\r\n".to_vec()),
            Just(b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n".to_vec()),
            Just(b"Content-Type: text/plain; name*0*=utf-8''%E2; name*1=\"x\"\r\n".to_vec()),
            Just(b"Content-Transfer-Encoding: base64\r\n".to_vec()),
            Just(b"Content-Transfer-Encoding: quoted-printable\n".to_vec()),
            Just(b"Subject: =?utf-8?b?w6k=?= =?x?q?=ZZ?=\r\n".to_vec()),
            Just(b" folded\r\n".to_vec()),
            Just(b"--b\r\n".to_vec()),
            Just(b"--b--\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"MAMCAQA=\r\n".to_vec()),
            Just("Content-Disposition: attachment; filename=\"Grüße.txt\"\r\n".as_bytes().to_vec()),
            Just("Subject: Grüße\r\n".as_bytes().to_vec()),
            Just(b"Content-Type: text/plain; name=\"\xff\xfe\"\r\n".to_vec()),
            Just(b"caf=C3=A9=\r\n".to_vec()),
            prop::collection::vec(any::<u8>(), 0..40),
        ]
    }

    proptest! {
        #[test]
        fn no_panic_on_random_bytes(raw in prop::collection::vec(any::<u8>(), 0..2000)) {
            exercise(&raw, &Limits::default());
        }

        #[test]
        fn no_panic_on_mime_like_input(lines in prop::collection::vec(mime_line(), 0..60)) {
            let raw = lines.concat();
            exercise(&raw, &Limits::default());
            let tight = Limits { max_mime_depth: 2, max_parts: 3, max_header_count: 4, max_header_line: 30, ..Limits::default() };
            exercise(&raw, &tight);
        }
    }
}
