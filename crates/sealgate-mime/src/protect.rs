//! Preparing a message for S/MIME or PGP/MIME protection and putting it back together.

use std::borrow::Cow;

use crate::canonical::canonicalize_crlf;
use crate::entity::{Entity, line_ending_of};
use crate::header::{HeaderField, malformed};
use crate::{Error, Limits, Result, transfer};

/// Split a whole RFC 5322 message for protection.
///
/// Returns the outer header fields (everything except `Content-*` and `MIME-Version`) and the
/// inner MIME entity: the message's `Content-*` fields (a default
/// `Content-Type: text/plain; charset=us-ascii` if it has none), an empty line and the body,
/// canonicalised to CRLF (RFC 8551 §3.1.1).
pub fn split_for_protection<'a>(
    raw: &'a [u8],
    limits: &Limits,
) -> Result<(Vec<HeaderField<'a>>, Vec<u8>)> {
    let message = Entity::parse(raw, limits)?;
    let (mime, outer): (Vec<HeaderField<'a>>, Vec<HeaderField<'a>>) =
        message.headers().iter().partition(|h| h.is_mime_field());
    let mut inner = Vec::with_capacity(raw.len() + 64);
    if !mime.iter().any(|h| h.is_named("Content-Type")) {
        inner.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii\r\n");
    }
    for field in mime.iter().filter(|h| !h.is_named("MIME-Version")) {
        push_field(&mut inner, field.raw);
    }
    inner.extend_from_slice(b"\r\n");
    inner.extend_from_slice(message.body());
    let inner = match canonicalize_crlf(&inner) {
        Cow::Borrowed(_) => inner,
        Cow::Owned(canonical) => canonical,
    };
    Ok((outer, inner))
}

/// Append a raw header field, adding a CRLF if the input ended inside it.
fn push_field(out: &mut Vec<u8>, raw: &[u8]) {
    out.extend_from_slice(raw);
    if !raw.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
}

/// Assemble a message: the outer header fields as they were, `extra_headers`, then
/// `MIME-Version: 1.0`, then the entity (its own header fields and body). Line ends are CRLF.
///
/// CR and LF in `extra_headers` names and values are replaced by spaces, so a value cannot
/// inject header fields.
pub fn assemble(outer: &[HeaderField<'_>], extra_headers: &[(&str, &str)], entity: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entity.len() + 1024);
    for field in outer {
        push_field(&mut out, &canonicalize_crlf(field.raw));
    }
    for (name, value) in extra_headers {
        let clean = |s: &str| s.replace(['\r', '\n'], " ");
        out.extend_from_slice(clean(name).as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(clean(value).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    out.extend_from_slice(&canonicalize_crlf(entity));
    out
}

/// Re-encode so that the entity is 7-bit safe (RFC 8551 §3.1.2, needed before multipart/signed).
///
/// Recursively, every leaf whose body has 8-bit bytes, NULs, bare CR or LF (LF counts as a line
/// end in an entity written with LF line ends) or lines over 998 bytes, and whose
/// Content-Transfer-Encoding is 7bit/8bit/binary/absent, is re-encoded: quoted-printable for
/// `text/*`, base64 otherwise. Multiparts keep their boundaries, preambles and epilogues;
/// `message/rfc822` bodies are recursed into. Borrowed when nothing changes.
///
/// Not changed: 8-bit bytes in header fields, preambles and epilogues (they cannot be
/// re-encoded without changing their meaning).
pub fn make_seven_bit<'a>(entity: &'a [u8], limits: &Limits) -> Result<Cow<'a, [u8]>> {
    let eol = line_ending_of(entity);
    let mut count = 0;
    Ok(match seven_bit(entity, 0, limits, eol, &mut count)? {
        Some(owned) => Cow::Owned(owned),
        None => Cow::Borrowed(entity),
    })
}

/// `None` when `raw` needs no change.
fn seven_bit(
    raw: &[u8],
    depth: usize,
    limits: &Limits,
    eol: &[u8],
    count: &mut usize,
) -> Result<Option<Vec<u8>>> {
    *count += 1;
    if *count > limits.max_parts {
        return Err(Error::LimitExceeded {
            what: "MIME part count",
            limit: limits.max_parts as u64,
        });
    }
    let entity = Entity::parse_at(raw, limits, depth)?;
    let body = entity.body();
    let ct = entity.content_type();
    let cte = entity.transfer_encoding();
    let identity = matches!(cte.as_deref(), None | Some("7bit" | "8bit" | "binary"));

    if let Some(layout) = entity.multipart_layout(limits)? {
        let mut new_body: Option<Vec<u8>> = None;
        let mut copied = 0;
        for range in layout.parts {
            let part = body.get(range.clone()).ok_or_else(|| malformed("part range"))?;
            if let Some(changed) = seven_bit(part, depth + 1, limits, eol, count)? {
                let out = new_body.get_or_insert_with(|| Vec::with_capacity(body.len() * 4 / 3));
                out.extend_from_slice(body.get(copied..range.start).unwrap_or_default());
                out.extend_from_slice(&changed);
                copied = range.end;
            }
        }
        return Ok(new_body.map(|mut out| {
            out.extend_from_slice(body.get(copied..).unwrap_or_default());
            splice(entity.header_block(), &out)
        }));
    }
    if ct.mime_type == "message/rfc822" && identity {
        return Ok(seven_bit(body, depth + 1, limits, eol, count)?
            .map(|inner| splice(entity.header_block(), &inner)));
    }
    if !identity || !needs_encoding(body, eol) {
        return Ok(None);
    }

    let mut out = Vec::with_capacity(entity.header_block().len() + body.len() * 4 / 3 + 64);
    for field in entity.headers() {
        if !field.is_named("Content-Transfer-Encoding") {
            out.extend_from_slice(field.raw);
            if !field.raw.ends_with(b"\n") {
                out.extend_from_slice(eol);
            }
        }
    }
    out.extend_from_slice(b"Content-Transfer-Encoding: ");
    if ct.is_text() {
        out.extend_from_slice(b"quoted-printable");
        out.extend_from_slice(eol);
        out.extend_from_slice(eol);
        transfer::encode_quoted_printable(body, eol, &mut out);
    } else {
        out.extend_from_slice(b"base64");
        out.extend_from_slice(eol);
        out.extend_from_slice(eol);
        transfer::encode_base64_lines(body, eol, &mut out);
    }
    Ok(Some(out))
}

fn splice(header_block: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header_block.len() + body.len());
    out.extend_from_slice(header_block);
    out.extend_from_slice(body);
    out
}

/// Whether `body` cannot travel as 7bit (RFC 5322 §2.3, RFC 2045 §2.7).
fn needs_encoding(body: &[u8], eol: &[u8]) -> bool {
    let crlf = eol == b"\r\n";
    let mut line_len = 0usize;
    let mut prev = 0u8;
    let mut iter = body.iter().peekable();
    while let Some(&b) = iter.next() {
        match b {
            0 | 128..=255 => return true,
            b'\r' if iter.peek() != Some(&&b'\n') => return true,
            b'\n' if crlf && prev != b'\r' => return true,
            b'\n' => line_len = 0,
            b'\r' => {}
            _ => {
                line_len += 1;
                if line_len > 998 {
                    return true;
                }
            }
        }
        prev = b;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_assemble() {
        let raw = b"From: a@example.org\nSubject: hi\n there\nMIME-Version: 1.0\nContent-Type: text/plain;\n charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nline\n";
        let limits = Limits::default();
        let (outer, inner) = split_for_protection(raw, &limits).unwrap();
        let names: Vec<_> = outer.iter().map(|h| h.name).collect();
        assert_eq!(names, ["From", "Subject"]);
        assert_eq!(
            inner,
            b"Content-Type: text/plain;\r\n charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nline\r\n"
        );
        let msg = assemble(&outer, &[("X-Sealgate", "signed\r\nBcc: x")], &inner);
        assert_eq!(
            msg,
            b"From: a@example.org\r\nSubject: hi\r\n there\r\nX-Sealgate: signed  Bcc: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain;\r\n charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nline\r\n"
        );
    }

    #[test]
    fn split_default_content_type() {
        let (outer, inner) =
            split_for_protection(b"Subject: x\r\n\r\nbody", &Limits::default()).unwrap();
        assert_eq!(outer.len(), 1);
        assert_eq!(inner, b"Content-Type: text/plain; charset=us-ascii\r\n\r\nbody");
    }

    #[test]
    fn seven_bit_unchanged_is_borrowed() {
        let raw = b"Content-Type: text/plain\r\n\r\nplain ascii\r\n";
        assert!(matches!(
            make_seven_bit(raw, &Limits::default()).unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn seven_bit_text_and_binary() {
        let raw = "Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\r\n--b--\r\npost\r\n";
        let limits = Limits::default();
        let out = make_seven_bit(raw.as_bytes(), &limits).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAE=\r\n\r\n--b--\r\npost\r\n"
        );
    }

    #[test]
    fn seven_bit_long_lines_and_embedded_message() {
        let long = "x".repeat(2000);
        let raw = format!(
            "Content-Type: message/rfc822\n\nSubject: s\nContent-Type: text/plain\n\n{long}\n"
        );
        let limits = Limits::default();
        let out = make_seven_bit(raw.as_bytes(), &limits).unwrap();
        assert!(out.split(|&b| b == b'\n').all(|l| l.len() <= 76));
        let inner = Entity::parse(&out, &limits)
            .unwrap()
            .embedded_message(&limits)
            .unwrap()
            .unwrap();
        assert_eq!(inner.transfer_encoding().as_deref(), Some("quoted-printable"));
        assert_eq!(inner.decoded_body(&limits).unwrap(), format!("{long}\n").as_bytes());
    }

    #[test]
    fn needs_encoding_rules() {
        assert!(!needs_encoding(b"a\r\nb", b"\r\n"));
        assert!(needs_encoding(b"a\nb", b"\r\n"));
        assert!(!needs_encoding(b"a\nb", b"\n"));
        assert!(needs_encoding(b"a\rb", b"\n"));
        assert!(needs_encoding(b"a\x00", b"\n"));
        assert!(needs_encoding(&[b'x'; 999], b"\n"));
        assert!(!needs_encoding(&[b'x'; 998], b"\n"));
    }
}
