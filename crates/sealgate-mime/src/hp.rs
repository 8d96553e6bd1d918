//! Header protection (RFC 9788) for S/MIME and PGP/MIME: the message's header fields travel
//! inside the signature or the encryption, and come back out on the other side.
//!
//! **Sending** ([`apply_header_protection`]): the Cryptographic Payload (the entity that gets
//! signed or encrypted) carries every header field of the message except the `Content-*` and
//! `MIME-Version` ones, and its Content-Type gets `hp="clear"` (signed only) or `hp="cipher"`
//! (encrypted). For an encrypted message the outer header follows the `hcp_baseline` Header
//! Confidentiality Policy: the Subject becomes `[...]`, `Keywords` and `Comments` are removed,
//! everything else stays; the payload records each outer field as it was sent in an `HP-Outer`
//! field, so the receiver knows what was confidential. Optionally a Legacy Display Element shows
//! the real Subject at the top of the body, for clients that render only the inner body.
//!
//! **Receiving** ([`unprotect_headers`]): when the decrypted or verified entity has an `hp`
//! parameter, its header fields are the message's user-facing header (the outer Subject, From,
//! To, Cc, Date, Message-ID ... are ignored; transport fields such as `Received` are kept), the
//! `HP-Outer` copies are dropped, and a Legacy Display Element we recognise is removed. The
//! older `protected-headers="v1"` form (Enigmail, Thunderbird) is read too: there the inner
//! fields replace the outer ones of the same name. [`HeaderProtection`] says what was found.

use std::borrow::Cow;

use crate::entity::Entity;
use crate::header::HeaderField;
use crate::protect::ProtectedParts;
use crate::{Limits, Result};

/// The outer Subject of an encrypted message under `hcp_baseline` (RFC 9788 §3.2).
pub const OBSCURED_SUBJECT: &str = "[...]";

/// Fields `hcp_baseline` removes from the outer header of an encrypted message.
const HCP_REMOVED: [&str; 2] = ["Keywords", "Comments"];

/// The fields a reader shows: on a message with RFC 9788 protection they are taken from inside
/// only, never from the unprotected outer header.
const USER_FACING: [&str; 12] = [
    "Subject",
    "From",
    "Sender",
    "To",
    "Cc",
    "Reply-To",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Keywords",
    "Comments",
];

/// Which kind of cryptographic protection the payload gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HpMode {
    /// Signed only: `hp="clear"`, the outer header is unchanged.
    Clear,
    /// Encrypted (possibly also signed): `hp="cipher"`, the outer header obscured.
    Cipher,
}

impl HpMode {
    fn param(self) -> &'static str {
        match self {
            Self::Clear => "clear",
            Self::Cipher => "cipher",
        }
    }
}

/// How a received message's header was protected, from [`unprotect_headers`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeaderProtection {
    /// `rfc9788-cipher`, `rfc9788-clear` or `protected-headers-v1`.
    pub scheme: &'static str,
    /// The names of the header fields that came from inside the protection, in order.
    pub protected: Vec<String>,
    /// For `hp="cipher"`: the protected fields that the outer header did not show as they are
    /// (obscured or removed in transit: the confidential ones).
    pub confidential: Vec<String>,
    /// A Legacy Display Element was found and removed from the body.
    pub legacy_display_removed: bool,
}

/// Apply header protection to the parts [`split_for_protection_parts`](crate::split_for_protection_parts)
/// returned: the message's header fields (and, for [`HpMode::Cipher`], the `HP-Outer` record)
/// go in front of the inner entity's header block, whose Content-Type gets the `hp` parameter.
/// For `Cipher`, `parts.outer` loses the fields `hcp_baseline` removes and the Subject, and the
/// returned fields are to be added to the outer header (the obscured Subject).
///
/// `legacy_display` adds a Legacy Display Element (the real Subject at the top of the body)
/// when the message is encrypted and has a Subject, to each main body part (RFC 9788 §4.2: the
/// entity itself when it is a text part; in a `multipart/alternative` every alternative, in
/// any other multipart its first part, looked into recursively) that is `text/plain` or
/// `text/html` without a base64/quoted-printable encoding; each part that gets one is marked
/// `hp-legacy-display="1"`. Parts it cannot put one into are left alone.
pub fn apply_header_protection(
    parts: &mut ProtectedParts<'_>,
    mode: HpMode,
    legacy_display: bool,
) -> Vec<(&'static str, String)> {
    // The inner entity as header block + body (the owned form has the whole entity in body).
    if parts.header.is_empty() {
        let whole = std::mem::take(&mut parts.body).into_owned();
        let end = header_end(&whole).unwrap_or(whole.len());
        let (h, b) = whole.split_at(end);
        parts.header = h.to_vec();
        parts.body = Cow::Owned(b.to_vec());
    }
    let mut block = Vec::with_capacity(parts.header.len() + 1024);
    for f in &parts.outer {
        push_field(&mut block, f.raw);
    }
    let subject = parts
        .outer
        .iter()
        .find(|f| f.is_named("Subject"))
        .map(|f| f.value());
    let mut extra = Vec::new();
    if mode == HpMode::Cipher {
        parts
            .outer
            .retain(|f| !HCP_REMOVED.iter().any(|n| f.is_named(n)));
        let had_subject = parts.outer.iter().any(|f| f.is_named("Subject"));
        for f in &parts.outer {
            if f.is_named("Subject") {
                continue;
            }
            block.extend_from_slice(b"HP-Outer: ");
            push_field(&mut block, f.raw);
        }
        if had_subject {
            parts.outer.retain(|f| !f.is_named("Subject"));
            block
                .extend_from_slice(format!("HP-Outer: Subject: {OBSCURED_SUBJECT}\r\n").as_bytes());
            extra.push(("Subject", OBSCURED_SUBJECT.to_string()));
        }
    }
    let mut lde = false;
    if mode == HpMode::Cipher
        && legacy_display
        && let Some(subject) = subject.filter(|s| !s.is_empty())
    {
        lde = add_legacy_display(parts, &subject);
        if !lde {
            add_legacy_display_inside(parts, &subject);
        }
    }
    let mut content = add_content_type_param(&parts.header, "hp", mode.param());
    if lde {
        content = add_content_type_param(&content, "hp-legacy-display", "1");
    }
    block.extend_from_slice(&content);
    parts.header = block;
    extra
}

/// Put "Subject: ..." at the top of a single text part (RFC 9788 §4.2.2/§4.2.3). False when
/// the entity is not one it can do that to.
fn add_legacy_display(parts: &mut ProtectedParts<'_>, subject: &str) -> bool {
    let limits = Limits::default();
    let Ok(entity) = Entity::parse(&parts.header, &limits) else {
        return false;
    };
    match with_legacy_display(&entity, parts.body.as_ref(), subject) {
        Some(body) => {
            parts.body = Cow::Owned(body);
            true
        }
        None => false,
    }
}

/// The main body parts of `entity` (RFC 9788 §4.2, "main body part"): the entity itself when
/// it is not multipart; every alternative of a `multipart/alternative`; the first part of any
/// other multipart; each looked into again. Bounded by `limits` (depth and part count).
fn main_body_parts<'a>(entity: &Entity<'a>, limits: &Limits, out: &mut Vec<Entity<'a>>) {
    let ct = entity.content_type();
    if !ct.is_multipart() {
        out.push(entity.clone());
        return;
    }
    let Ok(children) = entity.parts(limits) else {
        return;
    };
    if ct.mime_type.eq_ignore_ascii_case("multipart/alternative") {
        for c in &children {
            main_body_parts(c, limits, out);
        }
    } else if let Some(first) = children.first() {
        main_body_parts(first, limits, out);
    }
}

/// Where `part` (a subslice of `whole`) starts in `whole`.
fn offset_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len()).then_some(start)
}

/// Replaces, in `whole`, each `(range, bytes)` (ranges sorted and disjoint).
fn splice(whole: &[u8], edits: Vec<(std::ops::Range<usize>, Vec<u8>)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(whole.len() + edits.iter().map(|e| e.1.len()).sum::<usize>());
    let mut at = 0;
    for (range, bytes) in edits {
        out.extend_from_slice(whole.get(at..range.start).unwrap_or_default());
        out.extend_from_slice(&bytes);
        at = range.end;
    }
    out.extend_from_slice(whole.get(at..).unwrap_or_default());
    out
}

/// For a multipart inner entity: a Legacy Display Element in each main body part that can take
/// one, that part's Content-Type marked `hp-legacy-display="1"`.
fn add_legacy_display_inside(parts: &mut ProtectedParts<'_>, subject: &str) {
    let limits = Limits::default();
    let whole = [&parts.header[..], parts.body.as_ref()].concat();
    let Ok(entity) = Entity::parse(&whole, &limits) else {
        return;
    };
    if !entity.content_type().is_multipart() {
        return;
    }
    let mut leaves = Vec::new();
    main_body_parts(&entity, &limits, &mut leaves);
    let mut edits = Vec::new();
    for leaf in &leaves {
        let (Some(start), Some(body_at)) = (
            offset_in(&whole, leaf.header_block()),
            offset_in(&whole, leaf.body()),
        ) else {
            continue;
        };
        let Some(body) = with_legacy_display(leaf, leaf.body(), subject) else {
            continue;
        };
        let mut bytes = add_content_type_param(leaf.header_block(), "hp-legacy-display", "1");
        bytes.extend_from_slice(&body);
        edits.push((start..body_at + leaf.body().len(), bytes));
    }
    if edits.is_empty() {
        return;
    }
    edits.sort_by_key(|e| e.0.start);
    let header_len = parts.header.len();
    let new = splice(&whole, edits);
    parts.body = Cow::Owned(new.get(header_len..).unwrap_or_default().to_vec());
}

/// `body` of the text part `entity` with the Legacy Display Element in front (text/plain) or
/// after `<body>` (text/html); `None` when the part is not one it can do that to (another type,
/// a base64/quoted-printable encoding, a non-ASCII Subject in a non-UTF-8 part).
fn with_legacy_display(entity: &Entity<'_>, body: &[u8], subject: &str) -> Option<Vec<u8>> {
    let ct = entity.content_type();
    let identity = entity
        .transfer_encoding()
        .is_none_or(|e| matches!(e.as_str(), "7bit" | "8bit" | "binary"));
    let utf8_ok = subject.is_ascii()
        || ct
            .param("charset")
            .is_some_and(|c| c.eq_ignore_ascii_case("utf-8"));
    if !identity || !utf8_ok {
        return None;
    }
    let mime = ct.mime_type.to_ascii_lowercase();
    let subject = subject.replace(['\r', '\n'], " ");
    let new_body = match mime.as_str() {
        "text/plain" => {
            let mut b = format!("Subject: {subject}\r\n\r\n").into_bytes();
            b.extend_from_slice(body);
            b
        }
        "text/html" => {
            let div = format!(
                "<div class=\"header-protection-legacy-display\"><pre>Subject: {}</pre></div>",
                html_escape(&subject)
            );
            let at = find_ascii_ci(body, b"<body")
                .and_then(|i| {
                    body.get(i..)?
                        .iter()
                        .position(|&b| b == b'>')
                        .map(|p| i + p + 1)
                })
                .unwrap_or(0);
            let mut b = body.get(..at).unwrap_or_default().to_vec();
            b.extend_from_slice(div.as_bytes());
            b.extend_from_slice(body.get(at..).unwrap_or_default());
            b
        }
        _ => return None,
    };
    Some(new_body)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn find_ascii_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// A header field, its line ends made CRLF, ending in CRLF.
fn push_field(out: &mut Vec<u8>, raw: &[u8]) {
    out.extend_from_slice(&crate::canonical::canonical_field(raw));
    if !out.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
}

/// The offset just after the empty line that ends the header block of a CRLF entity.
fn header_end(entity: &[u8]) -> Option<usize> {
    if entity.starts_with(b"\r\n") {
        return Some(2);
    }
    entity
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
}

/// `block` (a CRLF header block) with `; name="value"` added to its Content-Type field; one
/// is added (`text/plain; charset=us-ascii`, the default) if there is none.
fn add_content_type_param(block: &[u8], name: &str, value: &str) -> Vec<u8> {
    let param = format!(";\r\n {name}=\"{value}\"");
    let mut out = Vec::with_capacity(block.len() + param.len() + 48);
    let mut lines = block.split_inclusive(|&b| b == b'\n').peekable();
    let mut done = false;
    while let Some(line) = lines.next() {
        let starts_ct = line.len() > 13 && line[..13].eq_ignore_ascii_case(b"content-type:");
        if starts_ct && !done {
            let mut field = line.to_vec();
            while let Some(next) = lines.peek() {
                if next.first().is_some_and(|&b| b == b' ' || b == b'\t') {
                    field.extend_from_slice(next);
                    lines.next();
                } else {
                    break;
                }
            }
            let trimmed_len = field
                .iter()
                .rposition(|&b| b != b'\r' && b != b'\n')
                .map_or(0, |p| p + 1);
            out.extend_from_slice(&field[..trimmed_len]);
            out.extend_from_slice(param.as_bytes());
            out.extend_from_slice(b"\r\n");
            done = true;
        } else if !done && (line == b"\r\n" || line == b"\n") {
            out.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii");
            out.extend_from_slice(param.as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(line);
            done = true;
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

/// The message a reader should see after decryption or verification: `outer` (the header
/// fields outside the protection) and `entity` (the decrypted or signed entity, CRLF). With
/// header protection (RFC 9788 `hp`, or `protected-headers="v1"`), the protected fields win as
/// the module docs say and the [`HeaderProtection`] report is returned; without it, the
/// entity's own non-`Content-*` fields still win over outer fields of the same name (a
/// protected Subject of the older kind) and the report is `None`.
///
/// The result is the outer fields kept, the protected fields, `MIME-Version: 1.0`, then the
/// entity's `Content-*` fields (the `hp` parameters left in place) and body.
pub fn unprotect_headers(
    outer: &[HeaderField<'_>],
    entity: &[u8],
    limits: &Limits,
) -> Result<(Vec<u8>, Option<HeaderProtection>)> {
    let inner = Entity::parse(entity, limits)?;
    let (mut out, mut report) = header_of(outer, &inner);
    out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    for f in inner.headers().iter().filter(|f| f.is_mime_field()) {
        if !f.is_named("MIME-Version") {
            push_field(&mut out, f.raw);
        }
    }
    out.extend_from_slice(b"\r\n");
    let body = inner.body();
    let rfc9788 = report
        .as_ref()
        .is_some_and(|r| r.scheme.starts_with("rfc9788"));
    // The Legacy Display Elements of the main body parts marked hp-legacy-display="1" (RFC
    // 9788 §4.5.3.3): the entity itself, or parts inside it.
    let mut leaves = Vec::new();
    if rfc9788 {
        main_body_parts(&inner, limits, &mut leaves);
    }
    let mut edits = Vec::new();
    for leaf in &leaves {
        let ct = leaf.content_type();
        if ct
            .param("hp-legacy-display")
            .is_none_or(|v| v.trim() != "1")
        {
            continue;
        }
        let Some(at) = offset_in(body, leaf.body()) else {
            continue;
        };
        if let Some((start, end)) = legacy_display_range(&ct.mime_type, leaf.body()) {
            edits.push((at + start..at + end, Vec::new()));
        }
    }
    if !edits.is_empty()
        && let Some(r) = report.as_mut()
    {
        r.legacy_display_removed = true;
    }
    edits.sort_by_key(|e| e.0.start);
    out.extend_from_slice(&splice(body, edits));
    Ok((out, report))
}

/// The header fields (not `Content-*`, not `MIME-Version`; CRLF, no empty line) of the
/// message a reader should see when `payload` (the signed or decrypted entity, or the signed
/// entity inside a decrypted `multipart/signed`) was protected under `outer`, as
/// [`unprotect_headers`] chooses them, and the report. For a signed-then-encrypted message
/// put these in front of the decrypted `multipart/signed` entity.
pub fn protected_header(
    outer: &[HeaderField<'_>],
    payload: &[u8],
    limits: &Limits,
) -> Result<(Vec<u8>, Option<HeaderProtection>)> {
    Ok(header_of(outer, &Entity::parse(payload, limits)?))
}

fn header_of(outer: &[HeaderField<'_>], inner: &Entity<'_>) -> (Vec<u8>, Option<HeaderProtection>) {
    let ct = inner.content_type();
    let scheme = match ct.param("hp").map(str::to_ascii_lowercase).as_deref() {
        Some("cipher") => Some("rfc9788-cipher"),
        Some("clear") => Some("rfc9788-clear"),
        _ if ct
            .param("protected-headers")
            .is_some_and(|v| v.eq_ignore_ascii_case("v1")) =>
        {
            Some("protected-headers-v1")
        }
        _ => None,
    };
    let rfc9788 = scheme.is_some_and(|s| s.starts_with("rfc9788"));
    let inner_fields: Vec<&HeaderField<'_>> = inner
        .headers()
        .iter()
        .filter(|f| !f.is_mime_field() && !f.is_named("HP-Outer"))
        .collect();
    let mut out = Vec::with_capacity(4096);
    for f in outer.iter().filter(|f| !f.is_mime_field()) {
        let shadowed = inner_fields.iter().any(|i| i.is_named(f.name));
        let user_facing = USER_FACING.iter().any(|n| f.is_named(n));
        if shadowed || (rfc9788 && user_facing) {
            continue;
        }
        push_field(&mut out, f.raw);
    }
    for f in &inner_fields {
        push_field(&mut out, f.raw);
    }
    let Some(scheme) = scheme else {
        return (out, None);
    };
    let hp_outer: Vec<String> = inner
        .headers()
        .iter()
        .filter(|f| f.is_named("HP-Outer"))
        .map(|f| normalise(&f.value()))
        .collect();
    let protected: Vec<String> = inner_fields.iter().map(|f| f.name.to_string()).collect();
    let confidential = if scheme == "rfc9788-cipher" {
        inner_fields
            .iter()
            .filter(|f| {
                let sent = normalise(&format!("{}: {}", f.name, f.value()));
                !hp_outer.iter().any(|o| o.eq_ignore_ascii_case(&sent))
            })
            .map(|f| f.name.to_string())
            .collect()
    } else {
        Vec::new()
    };
    (
        out,
        Some(HeaderProtection {
            scheme,
            protected,
            confidential,
            legacy_display_removed: false,
        }),
    )
}

/// Whether `entity`'s Content-Type announces header protection (`hp`, `protected-headers`).
pub fn has_header_protection(entity: &[u8], limits: &Limits) -> bool {
    Entity::parse(entity, limits).is_ok_and(|e| {
        let ct = e.content_type();
        ct.param("hp").is_some() || ct.param("protected-headers").is_some()
    })
}

/// Watches a stream of bytes (a protected entity, header and body) for the parameter name
/// `hp-legacy-display` (any case, across writes). Only parts whose Content-Type carries it can
/// have a Legacy Display Element that [`unprotect_headers`] removes, so a streaming reader that
/// never saw it knows that the body passes through unchanged: the header made by
/// [`unprotect_headers`] from the entity's header block alone, then the body as it is. One that
/// saw it must do the whole entity.
///
/// ```
/// let mut m = sealgate_mime::LegacyDisplayMarker::default();
/// m.update(b"Content-Type: text/plain; hp-legacy-");
/// assert!(!m.seen());
/// m.update(b"DISPLAY=\"1\"\r\n");
/// assert!(m.seen());
/// ```
#[derive(Debug, Clone, Default)]
pub struct LegacyDisplayMarker {
    /// The last bytes of the previous writes (one byte fewer than the marker).
    tail: Vec<u8>,
    seen: bool,
}

impl LegacyDisplayMarker {
    const MARKER: &'static [u8] = b"hp-legacy-display";

    /// Look at the next bytes of the stream.
    pub fn update(&mut self, data: &[u8]) {
        let n = Self::MARKER.len();
        if self.seen {
            return;
        }
        for i in memchr::memchr2_iter(b'y', b'Y', data) {
            let end = i + 1;
            let found = match end.checked_sub(n) {
                Some(start) => data
                    .get(start..end)
                    .is_some_and(|w| w.eq_ignore_ascii_case(Self::MARKER)),
                None => {
                    // the marker would begin in the tail of earlier writes
                    let need = n - end;
                    let from_tail = self
                        .tail
                        .len()
                        .checked_sub(need)
                        .and_then(|s| self.tail.get(s..));
                    from_tail.is_some_and(|t| {
                        Self::MARKER
                            .get(..need)
                            .is_some_and(|m| t.eq_ignore_ascii_case(m))
                    }) && data.get(..end).is_some_and(|d| {
                        Self::MARKER
                            .get(need..)
                            .is_some_and(|m| d.eq_ignore_ascii_case(m))
                    })
                }
            };
            if found {
                self.seen = true;
                self.tail = Vec::new();
                return;
            }
        }
        self.tail.extend_from_slice(
            data.get(data.len().saturating_sub(n - 1)..)
                .unwrap_or_default(),
        );
        let excess = self.tail.len().saturating_sub(n - 1);
        self.tail.drain(..excess);
    }

    /// True once the marker was seen.
    pub fn seen(&self) -> bool {
        self.seen
    }
}

/// Whitespace runs made single spaces, for comparing a field with its `HP-Outer` copy.
fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where the Legacy Display Element is in a text body (start, end), or `None` when there is
/// none we recognise: text/plain, the leading `Name: value` lines and the empty line after them;
/// text/html, the `<div class="header-protection-legacy-display">` element.
fn legacy_display_range(mime_type: &str, body: &[u8]) -> Option<(usize, usize)> {
    match mime_type.to_ascii_lowercase().as_str() {
        "text/plain" => {
            let end = header_end(body)?;
            let lines = body.get(..end.checked_sub(4)?)?;
            let all_fields = lines.split(|&b| b == b'\n').all(|l| {
                let l = l.strip_suffix(b"\r").unwrap_or(l);
                l.iter().position(|&b| b == b':').is_some_and(|c| {
                    c > 0
                        && l[..c]
                            .iter()
                            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                })
            });
            all_fields.then_some((0, end))
        }
        "text/html" => {
            let start = find_ascii_ci(body, b"<div class=\"header-protection-legacy-display\"")?;
            let len = find_ascii_ci(body.get(start..)?, b"</div>")?;
            Some((start, start + len + 6))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_legacy_display_marker_is_found_across_every_split() {
        let text =
            b"Content-Type: text/plain; charset=utf-8;\r\n HP-Legacy-Display=\"1\"\r\n\r\nbody";
        for a in 0..text.len() {
            for b in a..text.len() {
                let mut m = LegacyDisplayMarker::default();
                m.update(&text[..a]);
                m.update(&text[a..b]);
                m.update(&text[b..]);
                assert!(m.seen(), "{a} {b}");
            }
        }
        let mut m = LegacyDisplayMarker::default();
        for piece in [
            &b"hp-legacy"[..],
            b"-displa",
            b"x hp-legacy-displa",
            b"",
            b"z legacy-display",
        ] {
            m.update(piece);
        }
        assert!(!m.seen());
    }

    use super::*;
    use crate::split_for_protection_parts;

    const MSG: &[u8] = b"Received: from mx.example.org\r\nFrom: Alice <alice@example.com>\r\n\
        To: bob@example.org\r\nSubject: Secret plans\r\nKeywords: plans\r\n\
        Date: Wed, 02 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\
        MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe plans.\r\n";

    fn protect(raw: &[u8], mode: HpMode, lde: bool) -> (Vec<u8>, Vec<u8>) {
        let limits = Limits::default();
        let mut parts = split_for_protection_parts(raw, &limits, false).unwrap();
        let extra = apply_header_protection(&mut parts, mode, lde);
        let extra: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let entity = [&parts.header[..], &parts.body[..]].concat();
        let outer = crate::assemble(&parts.outer, &extra, b"");
        (outer, entity)
    }

    #[test]
    fn cipher_obscures_the_outer_subject_and_records_hp_outer() {
        let (outer, entity) = protect(MSG, HpMode::Cipher, false);
        let outer = String::from_utf8(outer).unwrap();
        assert!(outer.contains("Subject: [...]\r\n"), "{outer}");
        assert!(
            !outer.contains("Secret") && !outer.contains("Keywords"),
            "{outer}"
        );
        assert!(outer.contains("From: Alice <alice@example.com>"));
        let e = String::from_utf8(entity.clone()).unwrap();
        assert!(e.contains("Subject: Secret plans\r\n"), "{e}");
        assert!(e.contains("HP-Outer: Subject: [...]\r\n"), "{e}");
        assert!(
            e.contains("HP-Outer: From: Alice <alice@example.com>\r\n"),
            "{e}"
        );
        assert!(!e.contains("HP-Outer: Keywords"), "{e}");
        let limits = Limits::default();
        let parsed = Entity::parse(&entity, &limits).unwrap();
        assert_eq!(parsed.content_type().param("hp"), Some("cipher"));
        assert_eq!(parsed.content_type().param("charset"), Some("utf-8"));

        // and back: the real Subject and Keywords, the outer transport field kept
        let outer_msg = [outer.as_bytes(), b"\r\n"].concat();
        let outer_entity = Entity::parse(&outer_msg, &limits).unwrap();
        let (msg, hp) = unprotect_headers(outer_entity.headers(), &entity, &limits).unwrap();
        let hp = hp.unwrap();
        assert_eq!(hp.scheme, "rfc9788-cipher");
        assert_eq!(hp.confidential, ["Subject", "Keywords"]);
        assert!(hp.protected.contains(&"Message-ID".to_string()));
        let m = String::from_utf8(msg).unwrap();
        assert!(m.starts_with("Received: from mx.example.org\r\n"), "{m}");
        assert_eq!(m.matches("Subject:").count(), 1, "{m}");
        assert!(
            m.contains("Subject: Secret plans\r\n") && !m.contains("HP-Outer"),
            "{m}"
        );
        assert!(m.ends_with("\r\n\r\nThe plans.\r\n"), "{m}");
    }

    #[test]
    fn clear_keeps_the_outer_header() {
        let (outer, entity) = protect(MSG, HpMode::Clear, true);
        let outer = String::from_utf8(outer).unwrap();
        assert!(outer.contains("Subject: Secret plans"));
        let e = String::from_utf8(entity).unwrap();
        assert!(e.contains("hp=\"clear\"") && !e.contains("HP-Outer") && !e.contains("legacy"));
    }

    #[test]
    fn legacy_display_element_text_and_html() {
        let limits = Limits::default();
        let (outer, entity) = protect(MSG, HpMode::Cipher, true);
        let e = String::from_utf8(entity.clone()).unwrap();
        assert!(e.contains("hp-legacy-display=\"1\""), "{e}");
        assert!(
            e.ends_with("\r\n\r\nSubject: Secret plans\r\n\r\nThe plans.\r\n"),
            "{e}"
        );
        let outer_msg = [&outer[..], b"\r\n"].concat();
        let oe = Entity::parse(&outer_msg, &limits).unwrap();
        let (msg, hp) = unprotect_headers(oe.headers(), &entity, &limits).unwrap();
        assert!(hp.unwrap().legacy_display_removed);
        assert!(msg.ends_with(b"\r\n\r\nThe plans.\r\n"));

        let html = b"From: a@example.com\r\nSubject: A <b>&\r\nContent-Type: text/html\r\n\r\n<html><body class=x><p>Hi</p></body></html>\r\n";
        let (outer, entity) = protect(html, HpMode::Cipher, true);
        let e = String::from_utf8(entity.clone()).unwrap();
        assert!(
            e.contains("<body class=x><div class=\"header-protection-legacy-display\"><pre>Subject: A &lt;b&gt;&amp;</pre></div><p>Hi</p>"),
            "{e}"
        );
        let outer_msg = [&outer[..], b"\r\n"].concat();
        let oe = Entity::parse(&outer_msg, &limits).unwrap();
        let (msg, _) = unprotect_headers(oe.headers(), &entity, &limits).unwrap();
        assert!(
            msg.ends_with(b"<html><body class=x><p>Hi</p></body></html>\r\n"),
            "{}",
            String::from_utf8_lossy(&msg)
        );

        // base64 bodies get no element
        let b64 = b"Subject: s\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nSGk=\r\n";
        let (_, entity) = protect(b64, HpMode::Cipher, true);
        assert!(!String::from_utf8(entity).unwrap().contains("legacy"));
    }

    /// RFC 9788 §4.2: in a multipart message the element goes into each main body part (every
    /// alternative; the first part of a mixed), that part marked; attachments are untouched;
    /// unprotecting gives the original body back byte for byte.
    #[test]
    fn legacy_display_element_in_multipart_main_body_parts() {
        let limits = Limits::default();
        let body = "--m\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n\
            --a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHi\r\n\
            --a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Hi</p></body></html>\r\n\
            --a--\r\n\
            --m\r\nContent-Type: text/plain; name=notes.txt\r\nContent-Disposition: attachment\r\n\r\nnot the body\r\n\
            --m--\r\n";
        let msg = format!(
            "From: a@example.com\r\nTo: b@example.org\r\nSubject: Secret plans\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n{body}"
        );
        let (outer, entity) = protect(msg.as_bytes(), HpMode::Cipher, true);
        let e = String::from_utf8(entity.clone()).unwrap();
        assert_eq!(e.matches("hp-legacy-display=\"1\"").count(), 2, "{e}");
        assert!(
            e.contains("\r\n\r\nSubject: Secret plans\r\n\r\nHi\r\n--a"),
            "{e}"
        );
        assert!(
            e.contains("<body><div class=\"header-protection-legacy-display\"><pre>Subject: Secret plans</pre></div><p>Hi</p>"),
            "{e}"
        );
        assert!(e.contains("attachment\r\n\r\nnot the body\r\n"), "{e}");
        // The top-level Content-Type has hp, not the marker; the whole still parses.
        let top = Entity::parse(&entity, &limits).unwrap();
        assert!(top.content_type().param("hp-legacy-display").is_none());
        assert_eq!(top.parts(&limits).unwrap().len(), 2);

        let outer_msg = [&outer[..], b"\r\n"].concat();
        let oe = Entity::parse(&outer_msg, &limits).unwrap();
        let (back, hp) = unprotect_headers(oe.headers(), &entity, &limits).unwrap();
        assert!(hp.unwrap().legacy_display_removed);
        let back = String::from_utf8(back).unwrap();
        assert!(back.contains("Subject: Secret plans\r\n"), "{back}");
        let back_body = &back[back.find("\r\n\r\n").unwrap() + 4..];
        // The markers stay on the parts (harmless parameters); the elements are gone.
        assert_eq!(back_body.replace(";\r\n hp-legacy-display=\"1\"", ""), body);

        // A first part that cannot take one (base64): nothing is added anywhere.
        let b64 = "From: a@example.com\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n\
            --m\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nSGk=\r\n--m--\r\n";
        let (_, entity) = protect(b64.as_bytes(), HpMode::Cipher, true);
        assert!(!String::from_utf8(entity).unwrap().contains("legacy"));
    }

    #[test]
    fn a_message_without_content_type_gets_the_default_with_hp() {
        let (_, entity) = protect(b"Subject: s\r\n\r\nbody\r\n", HpMode::Cipher, false);
        let e = Entity::parse(&entity, &Limits::default()).unwrap();
        assert_eq!(e.content_type().mime_type, "text/plain");
        assert_eq!(e.content_type().param("hp"), Some("cipher"));
        assert_eq!(e.body(), b"body\r\n");
    }

    #[test]
    fn protected_headers_v1_replaces_same_named_fields_only() {
        let limits = Limits::default();
        let outer = b"From: a@example.com\r\nSubject: ...\r\nX-Trace: 1\r\n\r\n";
        let oe = Entity::parse(outer, &limits).unwrap();
        let entity = b"Subject: Real one\r\nContent-Type: multipart/mixed; boundary=\"b\"; protected-headers=\"v1\"\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n";
        let (msg, hp) = unprotect_headers(oe.headers(), entity, &limits).unwrap();
        let hp = hp.unwrap();
        assert_eq!(hp.scheme, "protected-headers-v1");
        assert_eq!(hp.protected, ["Subject"]);
        let m = String::from_utf8(msg).unwrap();
        assert!(
            m.contains("From: a@example.com") && m.contains("X-Trace: 1"),
            "{m}"
        );
        assert!(
            m.contains("Subject: Real one") && !m.contains("Subject: ..."),
            "{m}"
        );
    }

    #[test]
    fn no_protection_reports_none_and_keeps_the_old_behaviour() {
        let limits = Limits::default();
        let oe = Entity::parse(b"From: a@example.com\r\nSubject: out\r\n\r\n", &limits).unwrap();
        let (msg, hp) = unprotect_headers(
            oe.headers(),
            b"Subject: in\r\nContent-Type: text/plain\r\n\r\nx\r\n",
            &limits,
        )
        .unwrap();
        assert!(hp.is_none());
        let m = String::from_utf8(msg).unwrap();
        assert!(
            m.contains("From: a@example.com") && m.contains("Subject: in") && !m.contains("out")
        );
    }
}
