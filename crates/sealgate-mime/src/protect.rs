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
///
/// Canonicalising would corrupt binary data, so first every non-text leaf whose body has a bare
/// CR (or a bare LF in a message written with CRLF) and no base64/quoted-printable encoding is
/// re-encoded in base64; text line ends are canonicalised, which is what they mean
/// (RFC 2046 §4.1.1).
pub fn split_for_protection<'a>(
    raw: &'a [u8],
    limits: &Limits,
) -> Result<(Vec<HeaderField<'a>>, Vec<u8>)> {
    let message = Entity::parse(raw, limits)?;
    let eol = line_ending_of(raw);
    let (outer, mut inner) = outer_and_inner_header(&message, eol, raw.len());
    inner.extend_from_slice(message.body());
    let mut count = 0;
    if let Some(safe) = seven_bit(&inner, 0, limits, eol, Mode::LineEnds, &mut count)? {
        inner = safe;
    }
    let inner = match canonicalize_crlf(&inner) {
        Cow::Borrowed(_) => inner,
        Cow::Owned(canonical) => canonical,
    };
    Ok((outer, inner))
}

/// [`split_for_protection`] of a header block alone, for writers that stream the body: the
/// outer header fields and the start of the inner entity (its header block, CRLF, with the
/// default `Content-Type` when there is none; then whatever of `block` followed a line that
/// ended the header early). The body is not looked at: a streaming writer cannot re-encode
/// it, so binary parts must be transfer-encoded already.
pub fn split_header_for_protection<'a>(
    block: &'a [u8],
    limits: &Limits,
) -> Result<(Vec<HeaderField<'a>>, Vec<u8>)> {
    let message = Entity::parse(block, limits)?;
    let (outer, mut inner) = outer_and_inner_header(&message, b"\r\n", message.body().len());
    inner.extend_from_slice(message.body());
    let inner = match canonicalize_crlf(&inner) {
        Cow::Borrowed(_) => inner,
        Cow::Owned(canonical) => canonical,
    };
    Ok((outer, inner))
}

/// [`split_for_protection`] without copying the body when it can stay as it is: returns the
/// outer header fields, the inner entity's header block (with its empty line) and its body
/// ([`ProtectedParts`]);
/// the inner entity is the two concatenated, exactly what [`split_for_protection`] returns
/// (with `seven_bit`: what [`make_seven_bit`] then makes of it, as a detached signature needs).
///
/// The body is borrowed from `raw` when the message has CRLF line ends and nothing in it needs
/// re-encoding; otherwise the whole entity is in the (owned) body and the header block is
/// empty.
pub fn split_for_protection_parts<'a>(
    raw: &'a [u8],
    limits: &Limits,
    seven_bit: bool,
) -> Result<ProtectedParts<'a>> {
    let message = Entity::parse(raw, limits)?;
    let eol = line_ending_of(raw);
    let body = message.body();
    if eol == b"\r\n" && crate::canonical::is_canonical(body) {
        let (outer, header) = outer_and_inner_header(&message, eol, 0);
        // The same walks split_for_protection and make_seven_bit make; the top-level fields
        // of `raw` include the outer ones, so they are left out here and the inner header
        // block is checked on its own.
        // A leaf the line-end walk would re-encode (identity encoding, bare CR or LF) the
        // 7-bit walk re-encodes too, so one walk is enough either way.
        let mode = match seven_bit {
            true => Mode::SevenBitBodies,
            false => Mode::LineEnds,
        };
        let mut count = 0;
        let unchanged = crate::canonical::is_canonical(&header)
            && (!seven_bit || header.is_ascii())
            && walk(raw, limits, eol, mode, &mut count)?.is_none();
        if unchanged {
            return Ok(ProtectedParts {
                outer,
                header,
                body: Cow::Borrowed(body),
            });
        }
    }
    let (outer, inner) = split_for_protection(raw, limits)?;
    let changed = match seven_bit {
        true => match make_seven_bit(&inner, limits)? {
            Cow::Owned(changed) => Some(changed),
            Cow::Borrowed(_) => None,
        },
        false => None,
    };
    let inner = changed.unwrap_or(inner);
    Ok(ProtectedParts {
        outer,
        header: Vec::new(),
        body: Cow::Owned(inner),
    })
}

/// What [`split_for_protection_parts`] returns: the inner entity is `header` then `body`.
#[derive(Debug, Clone)]
pub struct ProtectedParts<'a> {
    /// The message's header fields except `Content-*` and `MIME-Version`.
    pub outer: Vec<HeaderField<'a>>,
    /// The inner entity's header block with its empty line (CRLF), or empty.
    pub header: Vec<u8>,
    /// The inner entity's body (borrowed from the message when possible), or the whole entity.
    pub body: Cow<'a, [u8]>,
}

fn walk(
    raw: &[u8],
    limits: &Limits,
    eol: &[u8],
    mode: Mode,
    count: &mut usize,
) -> Result<Option<Vec<u8>>> {
    seven_bit(raw, 0, limits, eol, mode, count)
}

/// The outer header fields, and the inner entity's header block: its `Content-*` fields (or
/// a default Content-Type) and the empty line, in `eol` line ends, with room for `extra` bytes.
fn outer_and_inner_header<'a>(
    message: &Entity<'a>,
    eol: &[u8],
    extra: usize,
) -> (Vec<HeaderField<'a>>, Vec<u8>) {
    let (mime, outer): (Vec<HeaderField<'a>>, Vec<HeaderField<'a>>) =
        message.headers().iter().partition(|h| h.is_mime_field());
    let mut inner = Vec::with_capacity(message.header_block().len() + extra + 64);
    if !mime.iter().any(|h| h.is_named("Content-Type")) {
        inner.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii");
        inner.extend_from_slice(eol);
    }
    for field in mime.iter().filter(|h| !h.is_named("MIME-Version")) {
        inner.extend_from_slice(field.raw);
        if !field.raw.ends_with(b"\n") {
            inner.extend_from_slice(eol);
        }
    }
    inner.extend_from_slice(eol);
    (outer, inner)
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
/// CR and LF in `extra_headers` names and values are replaced by spaces, and a bare CR inside an
/// outer field by a space, so that no value can inject header fields.
pub fn assemble(
    outer: &[HeaderField<'_>],
    extra_headers: &[(&str, &str)],
    entity: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(entity.len() + 1024);
    for field in outer {
        push_field(&mut out, &crate::canonical::canonical_field(field.raw));
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
/// UTF-8 header fields are made 7-bit too where the standards say how: RFC 2231 parameters in
/// Content-Type and Content-Disposition (e.g. a file name), RFC 2047 encoded words in Subject,
/// Comments and Content-Description. Not changed: other 8-bit header fields (addresses in an
/// embedded message), non-UTF-8 header bytes, preambles and epilogues.
pub fn make_seven_bit<'a>(entity: &'a [u8], limits: &Limits) -> Result<Cow<'a, [u8]>> {
    let eol = line_ending_of(entity);
    let mut count = 0;
    Ok(
        match seven_bit(entity, 0, limits, eol, Mode::SevenBit, &mut count)? {
            Some(owned) => Cow::Owned(owned),
            None => Cow::Borrowed(entity),
        },
    )
}

/// Which leaves [`seven_bit`] re-encodes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Everything that is not 7-bit safe ([`make_seven_bit`]).
    SevenBit,
    /// As `SevenBit`, but the top-level header fields are not looked at (they are those of a
    /// whole message, outer fields included).
    SevenBitBodies,
    /// Only non-text leaves that canonicalising the line ends would corrupt.
    LineEnds,
}

/// `None` when `raw` needs no change.
fn seven_bit(
    raw: &[u8],
    depth: usize,
    limits: &Limits,
    eol: &[u8],
    mode: Mode,
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

    // RFC 2047 / RFC 2231 for the header fields that can carry them.
    let mut fields: Option<Vec<Cow<'_, [u8]>>> = None;
    let fields_too = mode == Mode::SevenBit || (mode == Mode::SevenBitBodies && depth > 0);
    if fields_too && entity.header_block().iter().any(|&b| b >= 128) {
        let converted: Vec<Option<Vec<u8>>> = entity
            .headers()
            .iter()
            .map(|f| seven_bit_field(f, eol))
            .collect();
        if converted.iter().any(Option::is_some) {
            fields = Some(
                entity
                    .headers()
                    .iter()
                    .zip(converted)
                    .map(|(f, c)| c.map_or(Cow::Borrowed(f.raw), Cow::Owned))
                    .collect(),
            );
        }
    }

    let mut new_cte: Option<&str> = None;
    let new_body: Option<Vec<u8>> = if let Some(layout) = entity.multipart_layout(limits)? {
        let mut new_body: Option<Vec<u8>> = None;
        let mut copied = 0;
        for range in layout.parts {
            let part = body
                .get(range.clone())
                .ok_or_else(|| malformed("part range"))?;
            if let Some(changed) = seven_bit(part, depth + 1, limits, eol, mode, count)? {
                let out = new_body.get_or_insert_with(|| Vec::with_capacity(body.len() * 4 / 3));
                out.extend_from_slice(body.get(copied..range.start).unwrap_or_default());
                out.extend_from_slice(&changed);
                copied = range.end;
            }
        }
        new_body.map(|mut out| {
            out.extend_from_slice(body.get(copied..).unwrap_or_default());
            out
        })
    } else if ct.mime_type == "message/rfc822" && identity {
        seven_bit(body, depth + 1, limits, eol, mode, count)?
    } else {
        // Encoded bodies are never re-encoded: do not scan them.
        let needed = identity
            && match mode {
                Mode::SevenBit | Mode::SevenBitBodies => needs_encoding(body, eol),
                Mode::LineEnds => !ct.is_text() && has_bare_line_end(body, eol),
            };
        if needed {
            let mut out = Vec::with_capacity(body.len() * 4 / 3 + 64);
            if ct.is_text() {
                new_cte = Some("quoted-printable");
                transfer::encode_quoted_printable(body, eol, &mut out);
            } else {
                new_cte = Some("base64");
                transfer::encode_base64_lines(body, eol, &mut out);
            }
            Some(out)
        } else {
            None
        }
    };

    if fields.is_none() && new_body.is_none() {
        return Ok(None);
    }
    let body = new_body.as_deref().unwrap_or(body);
    let mut out = Vec::with_capacity(entity.header_block().len() + body.len() + 64);
    if fields.is_none() && new_cte.is_none() {
        out.extend_from_slice(entity.header_block());
    } else {
        let fields = fields.unwrap_or_else(|| {
            entity
                .headers()
                .iter()
                .map(|f| Cow::Borrowed(f.raw))
                .collect()
        });
        for (field, raw) in entity.headers().iter().zip(&fields) {
            if new_cte.is_some() && field.is_named("Content-Transfer-Encoding") {
                continue;
            }
            out.extend_from_slice(raw);
            if !raw.ends_with(b"\n") {
                out.extend_from_slice(eol);
            }
        }
        if let Some(cte) = new_cte {
            out.extend_from_slice(b"Content-Transfer-Encoding: ");
            out.extend_from_slice(cte.as_bytes());
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(body);
    Ok(Some(out))
}

/// A 7-bit form of a header field with 8-bit bytes, where the standards give one:
/// RFC 2231 parameters for Content-Type and Content-Disposition, RFC 2047 encoded words for
/// the unstructured Subject, Comments and Content-Description. `None` for other fields, 7-bit
/// fields and values that are not UTF-8.
pub(crate) fn seven_bit_field(field: &HeaderField<'_>, eol: &[u8]) -> Option<Vec<u8>> {
    let value = field.raw_value();
    if value.is_ascii() || std::str::from_utf8(value).is_err() {
        return None;
    }
    let mut out = Vec::with_capacity(value.len() * 2 + 32);
    out.extend_from_slice(field.name.as_bytes());
    out.extend_from_slice(b":");
    let with_params = ["Content-Type", "Content-Disposition"]
        .iter()
        .any(|n| field.is_named(n));
    if with_params {
        let parsed = crate::header::parse_type_and_params(value, field.is_named("Content-Type"))?;
        // RFC 2231 encodes parameter values only: an 8-bit type or parameter name cannot be
        // made 7-bit, so such a field stays as it was rather than being rewritten (and then
        // rewritten again by a second pass: make_seven_bit must be idempotent).
        if !parsed.mime_type.is_ascii() || parsed.params.iter().any(|(n, _)| !n.is_ascii()) {
            return None;
        }
        out.extend_from_slice(b" ");
        out.extend_from_slice(parsed.mime_type.as_bytes());
        for (name, value) in &parsed.params {
            write_param(&mut out, name, value, eol);
        }
    } else if ["Subject", "Comments", "Content-Description"]
        .iter()
        .any(|n| field.is_named(n))
    {
        let text = field.value();
        // RFC 2047 §2: lines with encoded words stay within 76 characters; 30 bytes make 40 in
        // base64, so even `Content-Description: =?utf-8?B?...?=` fits.
        let mut first = true;
        for chunk in utf8_chunks(&text, 30) {
            if !first {
                out.extend_from_slice(eol);
            }
            first = false;
            out.extend_from_slice(b" =?utf-8?B?");
            transfer::encode_base64_lines(chunk.as_bytes(), b"", &mut out);
            out.extend_from_slice(b"?=");
        }
    } else {
        return None;
    }
    out.extend_from_slice(eol);
    Some(out)
}

/// `; name=value` on a folded line, as RFC 2231 §3-4 `name*0*=utf-8''...` continuations when
/// the value is not ASCII.
fn write_param(out: &mut Vec<u8>, name: &str, value: &str, eol: &[u8]) {
    out.extend_from_slice(b";");
    out.extend_from_slice(eol);
    if value.is_ascii() {
        out.extend_from_slice(format!("\t{name}={}", crate::smime::param_value(value)).as_bytes());
        return;
    }
    // 15 bytes are at most 45 characters percent-encoded: short lines whatever the name.
    for (i, chunk) in utf8_chunks(value, 15).enumerate() {
        if i > 0 {
            out.extend_from_slice(b";");
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(format!("\t{name}*{i}*=").as_bytes());
        if i == 0 {
            out.extend_from_slice(b"utf-8''");
        }
        for &b in chunk.as_bytes() {
            // RFC 2231 §7 attribute-char; everything else percent-encoded.
            let plain = b.is_ascii_alphanumeric() || b"!#$&+-.^_`{|}~".contains(&b);
            if plain {
                out.push(b);
            } else {
                out.extend_from_slice(format!("%{b:02X}").as_bytes());
            }
        }
    }
}

/// `text` in pieces of at most `max` bytes (at least one character), split at characters.
fn utf8_chunks(text: &str, max: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let mut end = first.len_utf8();
        for (i, c) in rest.char_indices().skip(1) {
            if i + c.len_utf8() > max {
                break;
            }
            end = i + c.len_utf8();
        }
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        Some(chunk)
    })
}

/// Whether `body` has a CR that does not end a line, or (in a CRLF entity) a LF without CR.
pub(crate) fn has_bare_line_end(body: &[u8], eol: &[u8]) -> bool {
    let crlf = eol == b"\r\n";
    memchr::memchr2_iter(b'\r', b'\n', body).any(|i| match body.get(i) {
        Some(b'\r') => body.get(i + 1) != Some(&b'\n'),
        _ => crlf && (i == 0 || body.get(i - 1) != Some(&b'\r')),
    })
}

/// Whether `body` cannot travel as 7bit (RFC 5322 §2.3, RFC 2045 §2.7): 8-bit bytes, NUL,
/// a CR that does not end a line, a LF without CR in a CRLF entity, lines over 998 bytes.
pub(crate) fn needs_encoding(body: &[u8], eol: &[u8]) -> bool {
    let crlf = eol == b"\r\n";
    let bad_line =
        |line: &[u8]| line.len() > 998 || line.iter().any(|&b| b == 0 || b == b'\r' || b >= 128);
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', body) {
        let line = body.get(start..nl).unwrap_or_default();
        let content = match line.strip_suffix(b"\r") {
            Some(content) => content,
            None if crlf => return true,
            None => line,
        };
        if bad_line(content) {
            return true;
        }
        start = nl + 1;
    }
    bad_line(body.get(start..).unwrap_or_default())
}

/// Protect the Subject (the legacy form of RFC 9788 header protection): the Subject field(s)
/// of `outer` in front of the inner entity's header block `inner`, so that a message whose
/// outer Subject is replaced by a neutral one still carries the real one inside the
/// encryption. [`unprotected_outer`] undoes it on the way back.
pub fn protect_subject(outer: &[HeaderField<'_>], inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(inner.len() + 256);
    for h in outer.iter().filter(|h| h.is_named("Subject")) {
        out.extend_from_slice(&crate::canonical::canonical_field(h.raw));
        if !h.raw.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(inner);
    out
}

/// The outer header fields that the decrypted `entity` does not carry itself: fields inside
/// the protection (a protected Subject) win over the outer ones.
pub fn unprotected_outer<'a>(
    outer: Vec<HeaderField<'a>>,
    entity: &[u8],
    limits: &Limits,
) -> Result<Vec<HeaderField<'a>>> {
    let inner = Entity::parse(entity, limits)?;
    Ok(outer
        .into_iter()
        .filter(|h| inner.header_field(h.name).is_none())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bare CR inside a header value must not become a line end in what we write (it would
    /// inject a header field, e.g. a Bcc, into the clear-text outer header).
    #[test]
    fn a_bare_cr_in_a_header_field_cannot_inject_a_field() {
        let limits = Limits::default();
        let raw = b"From: a@example.com\r\nSubject: hello\rBcc: evil@example.net\r\n\
            To: b@example.org\r\nContent-Type: text/plain\r\n\r\nbody\r\n";
        let (outer, inner) = split_for_protection(raw, &limits).unwrap();
        let out = assemble(&outer, &[], &inner);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(!text.contains("\r\nBcc:"), "{text:?}");
        assert!(
            text.contains("Subject: hello Bcc: evil@example.net\r\n"),
            "{text:?}"
        );
        let e = crate::Entity::parse(&out, &limits).unwrap();
        assert!(e.header("Bcc").is_none());
        let subject = protect_subject(&outer, b"Content-Type: text/plain\r\n\r\n");
        assert!(!String::from_utf8(subject).unwrap().contains("\r\nBcc:"));
        // Folds and CRLF line ends are kept as they are.
        assert_eq!(
            crate::canonical::canonical_field(b"Subject: a\r\n b\n c\r\n"),
            b"Subject: a\r\n b\r\n c\r\n"
        );
    }

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
    fn split_parts_borrows_canonical_bodies() {
        let limits = Limits::default();
        let raw = b"From: a@example.org\r\nContent-Type: text/plain\r\n\r\nline\r\n";
        for seven_bit in [false, true] {
            let ProtectedParts {
                outer,
                header: head,
                body,
            } = split_for_protection_parts(raw, &limits, seven_bit).unwrap();
            assert_eq!(outer.len(), 1);
            assert_eq!(head, b"Content-Type: text/plain\r\n\r\n");
            assert!(matches!(body, Cow::Borrowed(b"line\r\n")));
        }
        // A UTF-8 outer Subject does not matter, an 8-bit body does for 7-bit.
        let raw = "Subject: Grüße\r\nContent-Type: text/plain\r\n\r\nGrüße\r\n".as_bytes();
        let body = split_for_protection_parts(raw, &limits, false)
            .unwrap()
            .body;
        assert!(matches!(body, Cow::Borrowed(_)));
        let ProtectedParts {
            header: head, body, ..
        } = split_for_protection_parts(raw, &limits, true).unwrap();
        assert!(head.is_empty());
        assert_eq!(
            &body[..],
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n"
        );
        // LF line ends: the whole entity, canonicalised, in the body.
        let raw = b"From: a@example.org\nContent-Type: text/plain\n\nline\n";
        let ProtectedParts {
            header: head, body, ..
        } = split_for_protection_parts(raw, &limits, false).unwrap();
        assert!(head.is_empty());
        assert_eq!(&body[..], b"Content-Type: text/plain\r\n\r\nline\r\n");
    }

    #[test]
    fn split_keeps_binary_exact() {
        let raw = b"Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nbare\nlf\r\n--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: binary\r\n\r\n\x89PNG\r\n\x1a\n\x00\r\n--b--\r\n";
        let limits = Limits::default();
        let (_, inner) = split_for_protection(raw, &limits).unwrap();
        assert!(crate::canonical::is_canonical(&inner));
        let parts = Entity::parse(&inner, &limits)
            .unwrap()
            .parts(&limits)
            .unwrap();
        assert_eq!(parts[0].decoded_body(&limits).unwrap(), b"bare\r\nlf");
        assert_eq!(parts[1].transfer_encoding().as_deref(), Some("base64"));
        assert_eq!(
            parts[1].decoded_body(&limits).unwrap(),
            b"\x89PNG\r\n\x1a\n\x00"
        );
    }

    /// Found by the parse_mime fuzz target: a Content-Type whose type is 8-bit UTF-8 was
    /// rewritten on every pass (the 8-bit type stayed, the parameters changed form).
    #[test]
    fn eight_bit_type_is_left_alone_and_idempotent() {
        let limits = Limits::default();
        let raw = b"Content-Type:\x0e/\xef\xbf\xbd;y=n\rQ";
        let once = make_seven_bit(raw, &limits).unwrap();
        assert_eq!(&once[..], &raw[..]);
        let raw = "Content-Type: text/plain; naïve=1\r\n\r\nx".as_bytes();
        assert_eq!(&make_seven_bit(raw, &limits).unwrap()[..], raw);
        // An 8-bit parameter value is still encoded (RFC 2231), and a second pass keeps it.
        let raw = "Content-Type: text/plain; name=\"Grüße\"\r\n\r\nx".as_bytes();
        let once = make_seven_bit(raw, &limits).unwrap().into_owned();
        assert!(once.is_ascii());
        assert_eq!(make_seven_bit(&once, &limits).unwrap(), once);
    }

    #[test]
    fn has_bare_line_end_rules() {
        assert!(!has_bare_line_end(b"a\r\nb", b"\r\n"));
        assert!(has_bare_line_end(b"\na", b"\r\n"));
        assert!(!has_bare_line_end(b"a\nb\r\n", b"\n"));
        assert!(has_bare_line_end(b"a\r", b"\n"));
    }

    #[test]
    fn split_default_content_type() {
        let (outer, inner) =
            split_for_protection(b"Subject: x\r\n\r\nbody", &Limits::default()).unwrap();
        assert_eq!(outer.len(), 1);
        assert_eq!(
            inner,
            b"Content-Type: text/plain; charset=us-ascii\r\n\r\nbody"
        );
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
        assert_eq!(
            inner.transfer_encoding().as_deref(),
            Some("quoted-printable")
        );
        assert_eq!(
            inner.decoded_body(&limits).unwrap(),
            format!("{long}\n").as_bytes()
        );
    }

    #[test]
    fn seven_bit_headers() {
        let raw = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pdf; name=\"Übersicht März.pdf\"\r\nContent-Disposition: attachment; filename=\"Übersicht März.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: Grüße aus Zürich, eine ziemlich lange Betreffzeile mit Umlauten äöü\r\n\r\nhi\r\n--b--\r\n";
        let limits = Limits::default();
        let out = make_seven_bit(raw.as_bytes(), &limits).unwrap();
        assert!(out.is_ascii(), "{}", String::from_utf8_lossy(&out));
        let parts = Entity::parse(&out, &limits)
            .unwrap()
            .parts(&limits)
            .unwrap();
        assert_eq!(parts[0].filename().as_deref(), Some("Übersicht März.pdf"));
        assert_eq!(
            parts[0].content_type().param("name"),
            Some("Übersicht März.pdf")
        );
        assert_eq!(parts[0].decoded_body(&limits).unwrap(), b"%PDF");
        let inner = parts[1].embedded_message(&limits).unwrap().unwrap();
        assert_eq!(
            inner.header("subject").as_deref(),
            Some("Grüße aus Zürich, eine ziemlich lange Betreffzeile mit Umlauten äöü")
        );
        assert!(out.split(|&b| b == b'\n').all(|l| l.len() <= 77));
    }

    #[test]
    fn deep_nesting_is_a_limit_not_a_stack_overflow() {
        let mut raw = Vec::new();
        for i in 0..5000 {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        for _ in 0..5000 {
            raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        let limits = Limits::default();
        assert!(matches!(
            make_seven_bit(&raw, &limits),
            Err(Error::LimitExceeded {
                what: "MIME depth",
                ..
            })
        ));
        assert!(matches!(
            split_for_protection(&raw, &limits),
            Err(Error::LimitExceeded {
                what: "MIME depth",
                ..
            })
        ));
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

    mod roundtrip {
        use super::*;
        use proptest::prelude::*;

        /// A random MIME tree.
        #[derive(Debug, Clone)]
        enum Node {
            Leaf {
                text: bool,
                cte: Option<&'static str>,
                filename: Option<String>,
                body: Vec<u8>,
            },
            Multipart {
                preamble: String,
                epilogue: String,
                children: Vec<Node>,
            },
            Message(Box<Node>),
        }

        fn text_body() -> impl Strategy<Value = Vec<u8>> {
            let chunk = prop_oneof![
                "[ -~]{0,40}".prop_map(String::into_bytes),
                "\\PC{0,30}".prop_map(String::into_bytes),
                Just(b"\r\n".to_vec()),
                Just(b"\n".to_vec()),
                Just(b"\r".to_vec()),
                Just(b" \t".to_vec()),
                Just(b"From x\r\n".to_vec()),
                Just(b"--not-a-boundary".to_vec()),
                (990usize..1100).prop_map(|n| vec![b'x'; n]),
            ];
            prop::collection::vec(chunk, 0..20).prop_map(|c| c.concat())
        }

        fn leaf() -> impl Strategy<Value = Node> {
            let cte = prop_oneof![
                Just(None),
                Just(Some("7bit")),
                Just(Some("8bit")),
                Just(Some("binary")),
            ];
            let body = prop_oneof![text_body(), prop::collection::vec(any::<u8>(), 0..3000)];
            // File names with UTF-8 written raw (RFC 6532 style), to be made RFC 2231.
            let filename = prop::option::of("\\PC{1,40}".prop_filter_map("plain name", |n| {
                let n: String = n.chars().filter(|c| *c != '"' && *c != '\\').collect();
                let trimmed = n.trim();
                (!trimmed.is_empty()).then(|| trimmed.to_string())
            }));
            (any::<bool>(), cte, filename, body).prop_map(|(text, cte, filename, body)| {
                Node::Leaf {
                    text,
                    cte,
                    filename,
                    body,
                }
            })
        }

        fn tree() -> impl Strategy<Value = Node> {
            leaf().prop_recursive(4, 24, 4, |inner| {
                prop_oneof![
                    (
                        "[ -~]{0,20}",
                        "[ -~]{0,20}",
                        prop::collection::vec(inner.clone(), 1..4)
                    )
                        .prop_map(|(preamble, epilogue, children)| {
                            Node::Multipart {
                                preamble,
                                epilogue,
                                children,
                            }
                        }),
                    inner.prop_map(|n| Node::Message(Box::new(n))),
                ]
            })
        }

        fn write(node: &Node, counter: &mut usize, out: &mut Vec<u8>) {
            match node {
                Node::Leaf {
                    text,
                    cte,
                    filename,
                    body,
                } => {
                    out.extend_from_slice(if *text {
                        &b"Content-Type: text/plain; charset=utf-8\r\n"[..]
                    } else {
                        b"Content-Type: application/octet-stream\r\n"
                    });
                    if let Some(name) = filename {
                        out.extend_from_slice(
                            format!("Content-Disposition: attachment; filename=\"{name}\"\r\n")
                                .as_bytes(),
                        );
                    }
                    if let Some(cte) = cte {
                        out.extend_from_slice(
                            format!("Content-Transfer-Encoding: {cte}\r\n").as_bytes(),
                        );
                    }
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(body);
                }
                Node::Multipart {
                    preamble,
                    epilogue,
                    children,
                } => {
                    *counter += 1;
                    let b = format!("=_b{counter}_");
                    out.extend_from_slice(
                        format!("Content-Type: multipart/mixed;\r\n boundary=\"{b}\"\r\n\r\n")
                            .as_bytes(),
                    );
                    if !preamble.is_empty() {
                        out.extend_from_slice(format!("{preamble}\r\n").as_bytes());
                    }
                    for child in children {
                        out.extend_from_slice(format!("--{b}\r\n").as_bytes());
                        write(child, counter, out);
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(format!("--{b}--\r\n{epilogue}").as_bytes());
                }
                Node::Message(inner) => {
                    out.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
                    write(inner, counter, out);
                }
            }
        }

        fn delimiters_absent(node: &Node) -> bool {
            match node {
                Node::Leaf { body, .. } => !body.windows(5).any(|w| w == b"--=_b"),
                Node::Multipart { children, .. } => children.iter().all(delimiters_absent),
                Node::Message(inner) => delimiters_absent(inner),
            }
        }

        /// Compare the trees leaf by leaf: same types, same decoded bodies.
        /// With `canonical_text`, text leaves of `b` are compared with the CRLF form of `a`'s.
        fn same_leaves(a: &Entity<'_>, b: &Entity<'_>, limits: &Limits, canonical_text: bool) {
            assert_eq!(a.content_type().mime_type, b.content_type().mime_type);
            assert_eq!(a.filename(), b.filename());
            let (pa, pb) = (a.parts(limits).unwrap(), b.parts(limits).unwrap());
            assert_eq!(pa.len(), pb.len());
            if a.content_type().is_multipart() {
                for (x, y) in pa.iter().zip(&pb) {
                    same_leaves(x, y, limits, canonical_text);
                }
            } else if let Some(ea) = a.embedded_message(limits).unwrap() {
                let eb = b.embedded_message(limits).unwrap().unwrap();
                same_leaves(&ea, &eb, limits, canonical_text);
            } else if canonical_text && a.content_type().is_text() {
                let da = a.decoded_body(limits).unwrap();
                assert_eq!(&*canonicalize_crlf(&da), b.decoded_body(limits).unwrap());
            } else {
                assert_eq!(
                    a.decoded_body(limits).unwrap(),
                    b.decoded_body(limits).unwrap()
                );
            }
        }

        proptest! {
            #[test]
            fn seven_bit_round_trip(node in tree()) {
                let mut raw = Vec::new();
                write(&node, &mut 0, &mut raw);
                // Random bodies must not contain our delimiters.
                prop_assume!(delimiters_absent(&node));
                let limits = Limits::default();
                let out = make_seven_bit(&raw, &limits).unwrap();
                prop_assert!(out.iter().all(|&b| b < 128 && b != 0));
                for line in out.split(|&b| b == b'\n') {
                    prop_assert!(line.len() <= 999, "line of {} bytes", line.len());
                }
                let before = Entity::parse(&raw, &limits).unwrap();
                let after = Entity::parse(&out, &limits).unwrap();
                same_leaves(&before, &after, &limits, false);
                // Already 7-bit: a second pass changes nothing.
                prop_assert!(matches!(make_seven_bit(&out, &limits).unwrap(), Cow::Borrowed(_)));
            }

            /// The signing pipeline: split, 7-bit, canonical; binary leaves survive exactly.
            #[test]
            fn protection_pipeline(node in tree()) {
                let mut raw = b"From: a@example.org\r\nSubject: s\r\n".to_vec();
                write(&node, &mut 0, &mut raw);
                prop_assume!(delimiters_absent(&node));
                let limits = Limits::default();
                let (outer, inner) = split_for_protection(&raw, &limits).unwrap();
                prop_assert_eq!(outer.len(), 2);
                let ProtectedParts { outer: outer2, header: head, body } =
                    split_for_protection_parts(&raw, &limits, false).unwrap();
                prop_assert_eq!(outer2.len(), 2);
                prop_assert_eq!([&head[..], &body[..]].concat(), inner.clone());
                let ProtectedParts { header: head, body, .. } =
                    split_for_protection_parts(&raw, &limits, true).unwrap();
                let seven = make_seven_bit(&inner, &limits).unwrap();
                prop_assert_eq!([&head[..], &body[..]].concat(), seven.into_owned());
                let entity = canonicalize_crlf(&make_seven_bit(&inner, &limits).unwrap()).into_owned();
                prop_assert!(entity.iter().all(|&b| b < 128 && b != 0));
                prop_assert!(crate::canonical::is_canonical(&entity));
                for line in entity.split(|&b| b == b'\n') {
                    prop_assert!(line.len() <= 999, "line of {} bytes", line.len());
                }
                let before = Entity::parse(&raw, &limits).unwrap();
                let after = Entity::parse(&entity, &limits).unwrap();
                same_leaves(&before, &after, &limits, true);
            }

            #[test]
            fn canonicalize_idempotent(data in prop::collection::vec(
                prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a'), any::<u8>()], 0..500)) {
                let once = canonicalize_crlf(&data).into_owned();
                prop_assert!(crate::canonical::is_canonical(&once));
                prop_assert!(matches!(canonicalize_crlf(&once), Cow::Borrowed(_)));
                let stripped: Vec<u8> = data.iter().copied().filter(|b| *b != b'\r' && *b != b'\n').collect();
                let stripped_once: Vec<u8> = once.iter().copied().filter(|b| *b != b'\r' && *b != b'\n').collect();
                prop_assert_eq!(stripped, stripped_once);
            }
        }
    }
}
