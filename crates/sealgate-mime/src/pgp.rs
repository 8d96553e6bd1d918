//! The MIME envelopes of OpenPGP: PGP/MIME (RFC 3156) and inline PGP in text bodies.

use rand_core::RngCore;

use crate::canonical::canonicalize_crlf;
use crate::entity::Entity;
use crate::header::{HeaderField, malformed};
use crate::smime::{choose_boundary, outer_fields, param_value};
use crate::{Limits, Result};

/// `protocol` of PGP/MIME `multipart/signed` (RFC 3156 §5).
pub const PGP_SIGNATURE: &str = "application/pgp-signature";
/// `protocol` of PGP/MIME `multipart/encrypted` (RFC 3156 §4).
pub const PGP_ENCRYPTED: &str = "application/pgp-encrypted";

/// Build a PGP/MIME `multipart/signed` entity (RFC 3156 §5): `entity` (already 7-bit and
/// canonical, as it was signed) verbatim as the first part, the ASCII-armored detached
/// signature as the second (`application/pgp-signature`, 7bit). `micalg` is e.g.
/// `pgp-sha256`. Returns the new top-level entity (Content-Type and body).
pub fn build_pgp_signed(
    entity: &[u8],
    micalg: &str,
    armored_signature: &[u8],
    rng: &mut impl RngCore,
) -> Vec<u8> {
    let signature = canonicalize_crlf(armored_signature);
    let boundary = choose_boundary(&[entity, &signature], rng);
    let frame = signed_frame(&boundary, micalg);
    let mut out = Vec::with_capacity(
        frame.head.len() + entity.len() + frame.middle.len() + signature.len() + 128,
    );
    out.extend_from_slice(&frame.head);
    out.extend_from_slice(entity);
    out.extend_from_slice(&frame.middle);
    out.extend_from_slice(&signature);
    if !signature.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(&frame.tail);
    out
}

/// The fixed pieces of a [`build_pgp_signed`] entity, for a caller that writes the entity
/// straight into its output while it signs it: `head`, the entity, `middle`, the armored
/// signature (ending with CRLF), `tail`.
#[derive(Debug, Clone)]
pub struct SignedFrame {
    /// Content-Type, preamble and the first delimiter.
    pub head: Vec<u8>,
    /// The delimiter and header of the signature part.
    pub middle: Vec<u8>,
    /// The close delimiter.
    pub tail: Vec<u8>,
}

/// The [`SignedFrame`] for `entity` (already 7-bit and canonical, as it is signed), with a
/// boundary that occurs nowhere in it. The signature need not be scanned: the boundary starts
/// with `----`, so a delimiter line starts with six dashes, and every armor line that starts
/// with a dash has five and then a letter (RFC 9580 §6.2).
pub fn pgp_signed_frame(entity: &[u8], micalg: &str, rng: &mut impl RngCore) -> SignedFrame {
    let boundary = choose_boundary(&[entity], rng);
    signed_frame(&boundary, micalg)
}

fn signed_frame(boundary: &str, micalg: &str) -> SignedFrame {
    let head = format!(
        "Content-Type: multipart/signed; protocol={};\r\n\tmicalg={};\r\n\tboundary=\"{boundary}\"\r\n\r\n\
         This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n--{boundary}\r\n",
        param_value(PGP_SIGNATURE),
        param_value(micalg),
    );
    let middle = format!(
        "\r\n--{boundary}\r\n\
         Content-Type: application/pgp-signature; name=\"signature.asc\"\r\n\
         Content-Description: OpenPGP digital signature\r\n\
         Content-Disposition: attachment; filename=\"signature.asc\"\r\n\r\n"
    );
    SignedFrame {
        head: head.into_bytes(),
        middle: middle.into_bytes(),
        tail: format!("\r\n--{boundary}--\r\n").into_bytes(),
    }
}

/// Build a PGP/MIME `multipart/encrypted` entity (RFC 3156 §4): the `application/pgp-encrypted`
/// control part (`Version: 1`) and the ASCII-armored OpenPGP message as
/// `application/octet-stream`. Returns the new top-level entity.
pub fn build_pgp_encrypted(armored_message: &[u8], rng: &mut impl RngCore) -> Vec<u8> {
    let message = canonicalize_crlf(armored_message);
    let boundary = choose_boundary(&[&message], rng);
    let mut out = Vec::with_capacity(message.len() + 1024);
    pgp_encrypted_head(&mut out, &boundary);
    out.extend_from_slice(&message);
    if !message.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// The entity of [`build_pgp_encrypted`] in two halves, for an OpenPGP message that the caller
/// ASCII-armors itself, with CRLF line ends, straight between them (no copy of the armor):
/// `(head, tail)`. Write `head`, the armor (ending with CRLF), then `tail`.
///
/// The boundary starts with `=_`, so no armor line can hold a delimiter: armor lines are
/// base64 (no `-`), the checksum (`=` then base64) and the `-----BEGIN`/`-----END` lines,
/// whose third octet is `-`, where a delimiter has `=` (RFC 2046 §5.1.1; RFC 9580 §6.2).
pub fn pgp_encrypted_frame(rng: &mut impl RngCore) -> (Vec<u8>, Vec<u8>) {
    let mut random = [0u8; 16];
    rng.fill_bytes(&mut random);
    let mut boundary = String::from("=_sealgate-");
    for b in random {
        boundary.push_str(&format!("{b:02x}"));
    }
    let mut head = Vec::with_capacity(512);
    pgp_encrypted_head(&mut head, &boundary);
    (head, format!("\r\n--{boundary}--\r\n").into_bytes())
}

fn pgp_encrypted_head(out: &mut Vec<u8>, boundary: &str) {
    out.extend_from_slice(
        format!(
            "Content-Type: multipart/encrypted; protocol={};\r\n\tboundary=\"{boundary}\"\r\n\r\n",
            param_value(PGP_ENCRYPTED),
        )
        .as_bytes(),
    );
    out.extend_from_slice(b"This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n");
    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    out.extend_from_slice(
        b"Content-Type: application/pgp-encrypted\r\n\
          Content-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n",
    );
    out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
    out.extend_from_slice(
        b"Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\
          Content-Description: OpenPGP encrypted message\r\n\
          Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n",
    );
}

/// A top-level PGP/MIME `multipart/encrypted` message, split.
#[derive(Debug, Clone)]
pub struct MultipartEncrypted<'a> {
    /// The message's header fields except `Content-*` and `MIME-Version`.
    pub outer: Vec<HeaderField<'a>>,
    /// The decoded control part (`Version: 1`).
    pub control: Vec<u8>,
    /// The decoded second part: the OpenPGP message (usually ASCII-armored).
    pub encrypted: Vec<u8>,
}

/// Find and split a top-level `multipart/encrypted; protocol="application/pgp-encrypted"`;
/// `Ok(None)` for any other message. Errors if it is PGP/MIME but not two parts, or the
/// control part does not say `Version: 1` (RFC 3156 §4).
pub fn parse_pgp_encrypted<'a>(
    raw: &'a [u8],
    limits: &Limits,
) -> Result<Option<MultipartEncrypted<'a>>> {
    let message = Entity::parse(raw, limits)?;
    let ct = message.content_type();
    if ct.mime_type != "multipart/encrypted"
        || !ct
            .param("protocol")
            .is_some_and(|p| p.eq_ignore_ascii_case(PGP_ENCRYPTED))
    {
        return Ok(None);
    }
    let [control, encrypted] = <[Entity<'a>; 2]>::try_from(message.parts(limits)?)
        .map_err(|_| malformed("multipart/encrypted must have exactly two parts"))?;
    let control = control.decoded_body(limits)?;
    let says_version_1 = control
        .split(|&b| b == b'\n')
        .any(|line| line.trim_ascii().eq_ignore_ascii_case(b"Version: 1"));
    if !says_version_1 {
        return Err(malformed("PGP/MIME control part without \"Version: 1\""));
    }
    Ok(Some(MultipartEncrypted {
        outer: outer_fields(&message),
        control,
        encrypted: encrypted.decoded_body(limits)?,
    }))
}

/// What an inline-PGP armor block in a text body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InlinePgpKind {
    /// `-----BEGIN PGP MESSAGE-----`: encrypted (or signed-only binary) message.
    Message,
    /// `-----BEGIN PGP SIGNED MESSAGE-----`: cleartext signature.
    SignedMessage,
}

/// An inline-PGP block found in a text part.
#[derive(Debug, Clone)]
pub struct InlinePgp<'a> {
    /// The message's header fields except `Content-*` and `MIME-Version`.
    pub outer: Vec<HeaderField<'a>>,
    /// The kind of block.
    pub kind: InlinePgpKind,
    /// The armor block, from its BEGIN line to the end of its END line (decoded from the
    /// part's transfer encoding).
    pub block: Vec<u8>,
    /// The `charset` parameter of the text part, if any.
    pub charset: Option<String>,
}

/// Find the first inline-PGP armor block in a `text/plain` part of the message (the top level
/// or a leaf of a multipart), as older clients send it. `Ok(None)` when there is none.
pub fn find_inline_pgp<'a>(raw: &'a [u8], limits: &Limits) -> Result<Option<InlinePgp<'a>>> {
    let message = Entity::parse(raw, limits)?;
    let outer = outer_fields(&message);
    let mut stack = vec![message];
    let mut visited = 0usize;
    while let Some(e) = stack.pop() {
        visited += 1;
        if visited > limits.max_parts {
            return Err(crate::Error::LimitExceeded {
                what: "MIME parts",
                limit: limits.max_parts as u64,
            });
        }
        let ct = e.content_type();
        if ct.is_multipart() {
            // depth-first, in document order
            let mut parts = e.parts(limits)?;
            parts.reverse();
            stack.extend(parts);
            continue;
        }
        if ct.mime_type != "text/plain" {
            continue;
        }
        let body = e.decoded_body(limits)?;
        for (kind, begin, end) in [
            (
                InlinePgpKind::Message,
                &b"-----BEGIN PGP MESSAGE-----"[..],
                &b"-----END PGP MESSAGE-----"[..],
            ),
            (
                InlinePgpKind::SignedMessage,
                &b"-----BEGIN PGP SIGNED MESSAGE-----"[..],
                &b"-----END PGP SIGNATURE-----"[..],
            ),
        ] {
            let Some(start) = memchr::memmem::find(&body, begin) else {
                continue;
            };
            // The BEGIN line must start a line.
            if start > 0 && body.get(start - 1) != Some(&b'\n') {
                continue;
            }
            let Some(end_at) = memchr::memmem::find(&body[start..], end) else {
                return Err(malformed("inline PGP block without its END line"));
            };
            let mut stop = start + end_at + end.len();
            while matches!(body.get(stop), Some(b'\r' | b'\n'))
                && stop - (start + end_at + end.len()) < 2
            {
                stop += 1;
            }
            return Ok(Some(InlinePgp {
                outer,
                kind,
                block: body[start..stop].to_vec(),
                charset: ct.param("charset").map(str::to_string),
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u8);
    impl RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            self.0 = self.0.wrapping_add(1);
            u32::from(self.0)
        }
        fn next_u64(&mut self) -> u64 {
            u64::from(self.next_u32())
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    const ARMOR: &[u8] =
        b"-----BEGIN PGP MESSAGE-----\n\nhF4DAAAA\n=abcd\n-----END PGP MESSAGE-----\n";

    #[test]
    fn frame_around_armor_parses_like_the_built_entity() {
        let (head, tail) = pgp_encrypted_frame(&mut Counter(0));
        let armor = canonicalize_crlf(ARMOR);
        let entity = [&head[..], &armor[..], &tail[..]].concat();
        let mut msg = b"From: a@example.com\r\nMIME-Version: 1.0\r\n".to_vec();
        msg.extend_from_slice(&entity);
        let parsed = parse_pgp_encrypted(&msg, &Limits::default())
            .unwrap()
            .expect("a multipart/encrypted message");
        assert_eq!(parsed.encrypted, armor.into_owned());
        assert!(String::from_utf8_lossy(&parsed.control).contains("Version: 1"));
        // No armor line can start a delimiter: the boundary begins with "=_".
        let text = String::from_utf8(head).unwrap();
        assert!(text.contains("boundary=\"=_sealgate-"));
    }

    #[test]
    fn encrypted_round_trip() {
        let entity = build_pgp_encrypted(ARMOR, &mut Counter(0));
        let mut msg = b"From: a@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n".to_vec();
        msg.extend_from_slice(&entity);
        let p = parse_pgp_encrypted(&msg, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(p.encrypted, canonicalize_crlf(ARMOR).into_owned());
        assert_eq!(p.outer.len(), 2);
        assert!(String::from_utf8_lossy(&p.control).contains("Version: 1"));
        // not PGP/MIME
        assert!(
            parse_pgp_encrypted(b"Subject: x\r\n\r\nhi\r\n", &Limits::default())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn control_part_must_say_version_1() {
        let msg = b"Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=b\r\n\r\n--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 2\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n--b--\r\n";
        assert!(parse_pgp_encrypted(msg, &Limits::default()).is_err());
    }

    #[test]
    fn signed_parses_back_with_the_exact_entity() {
        let entity = b"Content-Type: text/plain\r\n\r\nhello\r\n";
        let sig = b"-----BEGIN PGP SIGNATURE-----\n\niQ\n-----END PGP SIGNATURE-----\n";
        let built = build_pgp_signed(entity, "pgp-sha256", sig, &mut Counter(7));
        let p = crate::parse_multipart_signed(&built, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(p.signed, &entity[..]);
        assert_eq!(p.protocol, PGP_SIGNATURE);
        assert_eq!(p.micalg.as_deref(), Some("pgp-sha256"));
        assert_eq!(p.signature, canonicalize_crlf(sig).into_owned());
    }

    #[test]
    fn finds_inline_blocks() {
        let msg = b"Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHi,\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nhF4D\r\n-----END PGP MESSAGE-----\r\nbye\r\n";
        let p = find_inline_pgp(msg, &Limits::default()).unwrap().unwrap();
        assert_eq!(p.kind, InlinePgpKind::Message);
        assert!(p.block.starts_with(b"-----BEGIN PGP MESSAGE-----"));
        assert!(p.block.ends_with(b"-----END PGP MESSAGE-----\r\n"));
        assert_eq!(p.charset.as_deref(), Some("utf-8"));
        let nested = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\ntext\r\n-----BEGIN PGP SIGNATURE-----\r\n\r\niQ\r\n-----END PGP SIGNATURE-----\r\n--b--\r\n";
        let p = find_inline_pgp(nested, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(p.kind, InlinePgpKind::SignedMessage);
        assert!(
            find_inline_pgp(b"Subject: x\r\n\r\nplain\r\n", &Limits::default())
                .unwrap()
                .is_none()
        );
        let broken = b"Subject: x\r\n\r\n-----BEGIN PGP MESSAGE-----\r\nabc\r\n";
        assert!(find_inline_pgp(broken, &Limits::default()).is_err());
    }
}
