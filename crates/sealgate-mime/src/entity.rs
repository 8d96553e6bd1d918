//! Messages and MIME entities as borrowed views with exact raw byte ranges.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use crate::header::{ContentType, HeaderField, malformed, parse_header_block};
use crate::{Error, Limits, Result, transfer};

/// A message or MIME entity split into header block and body, borrowing the input.
#[derive(Debug, Clone)]
pub struct Entity<'a> {
    raw: &'a [u8],
    headers: Vec<HeaderField<'a>>,
    body_start: usize,
    depth: usize,
    tree: Arc<Tree>,
}

/// What one parsed message has handed out so far, shared by every entity of its tree:
/// [`Limits::max_parts`] bounds the parts of the whole message, not of each multipart, or
/// a hundred multiparts of 9,999 parts each would hold a million.
#[derive(Default)]
struct Tree {
    /// The start address of every entity handed out by `parts` and `embedded_message`: a
    /// part walked twice (callers do) is counted once. Addresses only, never dereferenced.
    seen: Mutex<HashSet<usize>>,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.seen.lock().map_or(0, |s| s.len());
        write!(f, "Tree({n} parts)")
    }
}

impl Tree {
    /// Count `parts` (distinct start addresses) against the message-wide limit.
    fn admit(&self, parts: &[&[u8]], limits: &Limits) -> Result<()> {
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| malformed("part bookkeeping"))?;
        for p in parts {
            seen.insert(p.as_ptr() as usize);
            if seen.len() > limits.max_parts {
                return Err(Error::LimitExceeded {
                    what: "MIME part count",
                    limit: limits.max_parts as u64,
                });
            }
        }
        Ok(())
    }
}

impl<'a> Entity<'a> {
    /// Parse a message or entity: header fields up to the first empty line (CRLF or LF), body
    /// after it. An input that ends inside the header block has an empty body; an input whose
    /// first line is neither a header field nor empty is an error.
    pub fn parse(raw: &'a [u8], limits: &Limits) -> Result<Self> {
        Self::parse_at(raw, limits, 0)
    }

    pub(crate) fn parse_at(raw: &'a [u8], limits: &Limits, depth: usize) -> Result<Self> {
        Self::parse_in(raw, limits, depth, Arc::default())
    }

    fn parse_in(raw: &'a [u8], limits: &Limits, depth: usize, tree: Arc<Tree>) -> Result<Self> {
        if raw.len() > limits.max_message_bytes {
            return Err(Error::LimitExceeded {
                what: "message size",
                limit: limits.max_message_bytes as u64,
            });
        }
        if depth > limits.max_mime_depth {
            return Err(Error::LimitExceeded {
                what: "MIME depth",
                limit: limits.max_mime_depth as u64,
            });
        }
        let (headers, body_start) = parse_header_block(raw, limits)?;
        Ok(Self {
            raw,
            headers,
            body_start,
            depth,
            tree,
        })
    }

    /// All header fields in order.
    pub fn headers(&self) -> &[HeaderField<'a>] {
        &self.headers
    }

    /// The decoded value of the first field called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_field(name).map(|h| h.value())
    }

    /// The first field called `name` (case-insensitive), raw.
    pub fn header_field(&self, name: &str) -> Option<&HeaderField<'a>> {
        self.headers.iter().find(|h| h.is_named(name))
    }

    /// The Content-Type; `text/plain; charset=us-ascii` when absent or unparsable (RFC 2045 §5.2).
    pub fn content_type(&self) -> ContentType {
        self.header_field("Content-Type")
            .and_then(|h| ContentType::parse(h.raw_value()))
            .unwrap_or_default()
    }

    /// The Content-Disposition (`attachment`, `inline`, ...) with its parameters (RFC 2183),
    /// if present and parsable. The disposition type is in [`ContentType::mime_type`].
    pub fn content_disposition(&self) -> Option<ContentType> {
        self.header_field("Content-Disposition")
            .and_then(|h| crate::header::parse_type_and_params(h.raw_value(), false))
    }

    /// The file name from Content-Disposition `filename` or else Content-Type `name`.
    pub fn filename(&self) -> Option<String> {
        self.content_disposition()
            .and_then(|d| d.param("filename").map(str::to_string))
            .or_else(|| self.content_type().param("name").map(str::to_string))
    }

    /// The Content-Transfer-Encoding mechanism, lowercased; `None` when absent.
    pub fn transfer_encoding(&self) -> Option<String> {
        let value = self.header("Content-Transfer-Encoding")?;
        let token = value
            .split(|c: char| c.is_ascii_whitespace() || c == ';' || c == '(')
            .next()
            .unwrap_or_default();
        Some(token.to_ascii_lowercase())
    }

    /// The body: everything after the empty line that ends the header block.
    pub fn body(&self) -> &'a [u8] {
        self.raw.get(self.body_start..).unwrap_or_default()
    }

    /// The header block including its empty line.
    pub fn header_block(&self) -> &'a [u8] {
        self.raw.get(..self.body_start).unwrap_or_default()
    }

    /// The whole entity as it was given to [`Entity::parse`] (or as it stood in its parent).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// How deep this entity is nested: 0 for the top level.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The body with its Content-Transfer-Encoding undone: base64 (whitespace skipped, other
    /// stray characters are an error), quoted-printable, or as is for 7bit/8bit/binary/absent.
    pub fn decoded_body(&self, limits: &Limits) -> Result<Vec<u8>> {
        let body = self.body();
        if body.len() > limits.max_message_bytes {
            return Err(Error::LimitExceeded {
                what: "message size",
                limit: limits.max_message_bytes as u64,
            });
        }
        match self.transfer_encoding().as_deref() {
            None | Some("7bit" | "8bit" | "binary") => Ok(body.to_vec()),
            Some("base64") => transfer::decode_base64(body),
            Some("quoted-printable") => Ok(transfer::decode_quoted_printable(body)),
            Some(_) => Err(malformed("unknown Content-Transfer-Encoding")),
        }
    }

    /// The children of a multipart entity (RFC 2046 §5.1.1), each with its exact raw range:
    /// from after its delimiter line up to, not including, the line break before the next
    /// delimiter (that line break belongs to the delimiter). Empty for other types.
    pub fn parts(&self, limits: &Limits) -> Result<Vec<Entity<'a>>> {
        let Some(layout) = self.multipart_layout(limits)? else {
            return Ok(Vec::new());
        };
        let body = self.body();
        let parts = layout
            .parts
            .into_iter()
            .map(|range| body.get(range).ok_or_else(|| malformed("part range")))
            .collect::<Result<Vec<_>>>()?;
        self.tree.admit(&parts, limits)?;
        parts
            .into_iter()
            .map(|part| Entity::parse_in(part, limits, self.depth + 1, self.tree.clone()))
            .collect()
    }

    /// The message inside a `message/rfc822` entity (RFC 2046 §5.2.1), if this is one.
    pub fn embedded_message(&self, limits: &Limits) -> Result<Option<Entity<'a>>> {
        if self.content_type().mime_type != "message/rfc822" {
            return Ok(None);
        }
        self.tree.admit(&[self.body()], limits)?;
        Entity::parse_in(self.body(), limits, self.depth + 1, self.tree.clone()).map(Some)
    }

    /// Where the children of a multipart lie in [`Entity::body`]; `None` if not a multipart.
    pub(crate) fn multipart_layout(&self, limits: &Limits) -> Result<Option<MultipartLayout>> {
        let ct = self.content_type();
        if !ct.is_multipart() {
            return Ok(None);
        }
        if self.depth + 1 > limits.max_mime_depth {
            return Err(Error::LimitExceeded {
                what: "MIME depth",
                limit: limits.max_mime_depth as u64,
            });
        }
        let boundary = ct
            .param("boundary")
            .filter(|b| !b.is_empty())
            .ok_or_else(|| malformed("multipart without boundary parameter"))?;
        split_multipart(self.body(), boundary.as_bytes(), limits).map(Some)
    }
}

/// The line end used by `data`: that of its first line, CRLF when it has no line end.
pub(crate) fn line_ending_of(data: &[u8]) -> &'static [u8] {
    match memchr::memchr(b'\n', data) {
        Some(i) if i == 0 || data.get(i - 1) != Some(&b'\r') => b"\n",
        _ => b"\r\n",
    }
}

/// The children of a multipart body, as ranges of that body.
#[derive(Debug)]
pub(crate) struct MultipartLayout {
    pub(crate) parts: Vec<Range<usize>>,
}

enum Delimiter {
    Open,
    Close,
}

/// Is `line` (with its line end) a delimiter line for `boundary`? RFC 2046 §5.1.1: `--boundary`
/// then optional transport padding, or `--boundary--` for the close delimiter (anything after
/// it is tolerated, as most readers do).
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<Delimiter> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    if rest.starts_with(b"--") {
        return Some(Delimiter::Close);
    }
    rest.iter()
        .all(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .then_some(Delimiter::Open)
}

/// Split a multipart body at its delimiter lines. Linear: a substring search finds the lines
/// that start with `--boundary` (RFC 2046 §5.1.1: only after a line break or at the start).
fn split_multipart(body: &[u8], boundary: &[u8], limits: &Limits) -> Result<MultipartLayout> {
    let mut needle = Vec::with_capacity(boundary.len() + 3);
    needle.extend_from_slice(b"\n--");
    needle.extend_from_slice(boundary);
    let finder = memchr::memmem::Finder::new(&needle);
    let at_start = body.get(..needle.len() - 1) == needle.get(1..);
    let candidates = at_start
        .then_some(0)
        .into_iter()
        .chain(finder.find_iter(body).map(|i| i + 1));

    let mut parts = Vec::new();
    let mut current: Option<usize> = None;
    let mut seen_delimiter = false;
    for line_start in candidates {
        let rest = body.get(line_start..).unwrap_or_default();
        let line_end = memchr::memchr(b'\n', rest).map_or(body.len(), |i| line_start + i + 1);
        let line = body.get(line_start..line_end).unwrap_or_default();
        let Some(kind) = delimiter(line, boundary) else {
            continue;
        };
        seen_delimiter = true;
        if let Some(start) = current {
            // The line break before the delimiter is part of the delimiter.
            let mut end = line_start.saturating_sub(1);
            if end > start && body.get(end - 1) == Some(&b'\r') {
                end -= 1;
            }
            push_part(&mut parts, start..end.max(start), limits)?;
        }
        match kind {
            Delimiter::Close => return Ok(MultipartLayout { parts }),
            Delimiter::Open => current = Some(line_end),
        }
    }
    if !seen_delimiter {
        return Err(malformed("multipart body without boundary delimiter"));
    }
    // No close delimiter: the last part runs to the end, as mail readers treat it.
    if let Some(start) = current {
        push_part(&mut parts, start..body.len(), limits)?;
    }
    Ok(MultipartLayout { parts })
}

fn push_part(parts: &mut Vec<Range<usize>>, range: Range<usize>, limits: &Limits) -> Result<()> {
    if parts.len() >= limits.max_parts {
        return Err(Error::LimitExceeded {
            what: "MIME part count",
            limit: limits.max_parts as u64,
        });
    }
    parts.push(range);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NESTED: &[u8] = b"From: a@example.org\r\n\
Content-Type: multipart/mixed;\r\n boundary=\"outer b\"\r\n\
\r\n\
preamble\r\n\
--outer b \t\r\n\
Content-Type: text/plain\r\n\
\r\n\
first\r\n\
\r\n\
--outer b\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
\r\n\
no headers\r\n\
--inner\r\n\
Content-Type: text/html\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
<p>caf=C3=A9</p>\r\n\
--inner--\r\n\
\r\n\
--outer b\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: inner\r\n\
\r\n\
embedded\r\n\
--outer b--\r\n\
epilogue\r\n";

    /// max_parts bounds the whole message (parts spread over several multiparts count
    /// together), and walking the same tree twice does not count its parts twice.
    #[test]
    fn part_limit_is_message_wide_and_counted_once() {
        let mut m = b"Content-Type: multipart/mixed; boundary=top\r\n\r\n".to_vec();
        for _ in 0..3 {
            m.extend_from_slice(b"--top\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
            m.extend_from_slice(b"--b\r\n\r\nx\r\n--b\r\n\r\ny\r\n--b--\r\n");
        }
        m.extend_from_slice(b"--top--\r\n");
        let walk = |e: &Entity<'_>, limits: &Limits| -> Result<usize> {
            let mut n = 0;
            for p in e.parts(limits)? {
                n += 1 + p.parts(limits)?.len();
            }
            Ok(n)
        };
        // 3 + 3 * 2 = 9 parts in all.
        let enough = Limits {
            max_parts: 9,
            ..Limits::default()
        };
        let e = Entity::parse(&m, &enough).unwrap();
        assert_eq!(walk(&e, &enough).unwrap(), 9);
        assert_eq!(
            walk(&e, &enough).unwrap(),
            9,
            "a second walk counts nothing new"
        );
        let tight = Limits {
            max_parts: 8,
            ..Limits::default()
        };
        let e = Entity::parse(&m, &tight).unwrap();
        assert!(matches!(
            walk(&e, &tight),
            Err(Error::LimitExceeded {
                what: "MIME part count",
                ..
            })
        ));
    }

    #[test]
    fn nested_parts_exact_ranges() {
        let limits = Limits::default();
        let msg = Entity::parse(NESTED, &limits).unwrap();
        assert_eq!(msg.header("from").as_deref(), Some("a@example.org"));
        assert_eq!(msg.content_type().param("boundary"), Some("outer b"));
        let parts = msg.parts(&limits).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].raw(), b"Content-Type: text/plain\r\n\r\nfirst\r\n");
        assert_eq!(parts[0].body(), b"first\r\n");
        let alt = parts[1].parts(&limits).unwrap();
        assert_eq!(alt.len(), 2);
        assert_eq!(alt[0].raw(), b"\r\nno headers");
        assert!(alt[0].headers().is_empty());
        assert_eq!(alt[0].body(), b"no headers");
        assert_eq!(alt[0].content_type().mime_type, "text/plain");
        assert_eq!(
            alt[1].decoded_body(&limits).unwrap(),
            "<p>café</p>".as_bytes()
        );
        assert_eq!(alt[1].depth(), 2);
        let inner = parts[2].embedded_message(&limits).unwrap().unwrap();
        assert_eq!(inner.header("subject").as_deref(), Some("inner"));
        assert_eq!(inner.body(), b"embedded");
    }

    #[test]
    fn lf_line_ends_and_prefix_boundaries() {
        let raw =
            b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nA\n--bb\nB\n--b\n\nC\n--b--";
        let limits = Limits::default();
        let parts = Entity::parse(raw, &limits).unwrap().parts(&limits).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].raw(), b"\nA\n--bb\nB");
        assert_eq!(parts[1].raw(), b"\nC");
        assert_eq!(line_ending_of(parts[0].raw()), b"\n");
    }

    #[test]
    fn unterminated_and_missing() {
        let limits = Limits::default();
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nA\r\n";
        let parts = Entity::parse(raw, &limits).unwrap().parts(&limits).unwrap();
        assert_eq!(parts[0].body(), b"A\r\n");
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\nnothing\r\n";
        assert!(Entity::parse(raw, &limits).unwrap().parts(&limits).is_err());
        let raw = b"Content-Type: multipart/mixed\r\n\r\n--b\r\n";
        assert!(Entity::parse(raw, &limits).unwrap().parts(&limits).is_err());
    }

    #[test]
    fn part_and_depth_limits() {
        let limits = Limits {
            max_parts: 2,
            ..Limits::default()
        };
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b\r\n\r\n3\r\n--b--\r\n";
        assert!(matches!(
            Entity::parse(raw, &limits).unwrap().parts(&limits),
            Err(Error::LimitExceeded { .. })
        ));
        let limits = Limits {
            max_mime_depth: 1,
            ..Limits::default()
        };
        let parts = Entity::parse(NESTED, &limits)
            .unwrap()
            .parts(&limits)
            .unwrap();
        assert!(matches!(
            parts[1].parts(&limits),
            Err(Error::LimitExceeded { .. })
        ));
    }

    #[test]
    fn no_blank_line_and_defaults() {
        let limits = Limits::default();
        let e = Entity::parse(b"Subject: x\r\n", &limits).unwrap();
        assert_eq!(e.body(), b"");
        assert_eq!(e.content_type(), ContentType::default());
        assert_eq!(e.transfer_encoding(), None);
        let e = Entity::parse(
            b"Content-Transfer-Encoding: BASE64 (x)\r\n\r\naGk=",
            &limits,
        )
        .unwrap();
        assert_eq!(e.transfer_encoding().as_deref(), Some("base64"));
        assert_eq!(e.decoded_body(&limits).unwrap(), b"hi");
        let e = Entity::parse(
            b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin",
            &limits,
        )
        .unwrap();
        assert!(e.decoded_body(&limits).is_err());
        let small = Limits {
            max_message_bytes: 3,
            ..Limits::default()
        };
        assert!(Entity::parse(b"A: b\r\n", &small).is_err());
    }
}
