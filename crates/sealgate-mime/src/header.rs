//! Header fields (RFC 5322 §2.2) and the Content-Type field (RFC 2045 §5).

use mail_parser::{HeaderValue, parsers::MessageStream};

use crate::{Error, Limits, Result};

/// One header field exactly as written in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderField<'a> {
    /// The field name as written (case preserved, without the colon).
    pub name: &'a str,
    /// The whole field: name, colon, value, folded continuation lines and the final CRLF or LF
    /// (absent only when the input ends inside the field).
    pub raw: &'a [u8],
}

impl<'a> HeaderField<'a> {
    /// Whether this field has the given name (ASCII case-insensitive, RFC 5322 §1.2.2).
    pub fn is_named(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The raw bytes after the colon: still folded, with the final line end.
    pub fn raw_value(&self) -> &'a [u8] {
        // The name never contains a colon (RFC 5322 ftext), so the first one ends it.
        match self.raw.iter().position(|&b| b == b':') {
            Some(colon) => self.raw.get(colon + 1..).unwrap_or_default(),
            None => &[],
        }
    }

    /// The value unfolded, trimmed and with RFC 2047 encoded words decoded.
    pub fn value(&self) -> String {
        let value = with_final_newline(self.raw_value());
        match MessageStream::new(&value).parse_unstructured() {
            HeaderValue::Text(text) => text.trim().to_string(),
            HeaderValue::TextList(list) => list.join(" ").trim().to_string(),
            _ => String::new(),
        }
    }

    /// Whether this is a `Content-*` or `MIME-Version` field: the fields that describe the
    /// entity rather than the message (RFC 2045 §3, §4; RFC 8551 §3.1).
    pub fn is_mime_field(&self) -> bool {
        self.is_named("MIME-Version")
            || self
                .name
                .get(..8)
                .is_some_and(|p| p.eq_ignore_ascii_case("content-"))
    }
}

/// mail-parser's field parsers stop at a line end that is not followed by whitespace; a field cut
/// off by the end of input has none, so give it one.
fn with_final_newline(value: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if value.ends_with(b"\n") {
        value.into()
    } else {
        let mut owned = value.to_vec();
        owned.push(b'\n');
        owned.into()
    }
}

/// Length of the field name at the start of `line` if `line` starts a header field:
/// `ftext+ WSP* ":"` (RFC 5322 §2.2 and the obsolete WSP before the colon, §4.5).
fn field_name_len(line: &[u8]) -> Option<usize> {
    let name_len = line
        .iter()
        .position(|&b| !(33..=126).contains(&b) || b == b':')?;
    if name_len == 0 {
        return None;
    }
    let rest = line.get(name_len..)?;
    let ws = rest.iter().position(|&b| b != b' ' && b != b'\t')?;
    (rest.get(ws) == Some(&b':')).then_some(name_len)
}

/// Split a header block off `raw`: the fields and the offset where the body starts (after the
/// empty line, or `raw.len()` when the input ends inside the header block).
pub(crate) fn parse_header_block<'a>(
    raw: &'a [u8],
    limits: &Limits,
) -> Result<(Vec<HeaderField<'a>>, usize)> {
    // (start, name end, end) of each field; slices are made at the end.
    let mut spans: Vec<(usize, usize, usize)> = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let rest = raw.get(pos..).unwrap_or_default();
        // Look for the line end only as far as the longest line allowed (and its CRLF): a
        // 100 MB header line is refused after 64 KiB, not after scanning all of it (once per
        // parse, and callers parse a message more than once).
        let window = rest
            .get(..limits.max_header_line.saturating_add(2))
            .unwrap_or(rest);
        let end = match memchr::memchr(b'\n', window) {
            Some(i) => pos + i + 1,
            None if window.len() < rest.len() => {
                return Err(Error::LimitExceeded {
                    what: "header line length",
                    limit: limits.max_header_line as u64,
                });
            }
            None => raw.len(),
        };
        let line = raw.get(pos..end).unwrap_or_default();
        if line == b"\n" || line == b"\r\n" {
            return Ok((make_fields(raw, &spans)?, end));
        }
        let content_len = line.len() - line_end_len(line);
        if content_len > limits.max_header_line {
            return Err(Error::LimitExceeded {
                what: "header line length",
                limit: limits.max_header_line as u64,
            });
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            match spans.last_mut() {
                Some(last) => last.2 = end,
                None => return Err(malformed("header block starts with a continuation line")),
            }
        } else if let Some(name_len) = field_name_len(line) {
            if spans.len() >= limits.max_header_count {
                return Err(Error::LimitExceeded {
                    what: "header field count",
                    limit: limits.max_header_count as u64,
                });
            }
            spans.push((pos, pos + name_len, end));
        } else if spans.is_empty() {
            return Err(malformed("first line is not a header field"));
        } else {
            // A line that is no header field ends a header block that lacks its empty line;
            // mail user agents read it as the first body line, and so do we.
            return Ok((make_fields(raw, &spans)?, pos));
        }
        pos = end;
    }
    Ok((make_fields(raw, &spans)?, raw.len()))
}

fn make_fields<'a>(raw: &'a [u8], spans: &[(usize, usize, usize)]) -> Result<Vec<HeaderField<'a>>> {
    spans
        .iter()
        .map(|&(start, name_end, end)| {
            let name = raw
                .get(start..name_end)
                .and_then(|n| std::str::from_utf8(n).ok())
                .ok_or_else(|| malformed("header field name"))?;
            let raw = raw
                .get(start..end)
                .ok_or_else(|| malformed("header field"))?;
            Ok(HeaderField { name, raw })
        })
        .collect()
}

/// Length of the line end (`\r\n`, `\n` or none) at the end of `line`.
pub(crate) fn line_end_len(line: &[u8]) -> usize {
    if line.ends_with(b"\r\n") {
        2
    } else if line.ends_with(b"\n") {
        1
    } else {
        0
    }
}

pub(crate) fn malformed(detail: &str) -> Error {
    Error::Malformed {
        detail: detail.to_string(),
    }
}

/// A parsed `Content-Type` (RFC 2045 §5.1), parameters decoded per RFC 2231.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    /// Lowercase `type/subtype`.
    pub mime_type: String,
    /// Parameters in order, names lowercased, values unquoted and decoded.
    pub params: Vec<(String, String)>,
}

impl Default for ContentType {
    /// `text/plain; charset=us-ascii`, the default of RFC 2045 §5.2.
    fn default() -> Self {
        Self {
            mime_type: "text/plain".to_string(),
            params: vec![("charset".to_string(), "us-ascii".to_string())],
        }
    }
}

impl ContentType {
    /// Parse a Content-Type field value (the bytes after the colon). `None` if it is not
    /// `type/subtype` with parameters.
    pub fn parse(value: &[u8]) -> Option<Self> {
        parse_type_and_params(value, true)
    }

    /// The value of parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the type is `multipart/*`.
    pub fn is_multipart(&self) -> bool {
        self.mime_type.starts_with("multipart/")
    }

    /// Whether the type is `text/*`.
    pub fn is_text(&self) -> bool {
        self.mime_type.starts_with("text/")
    }
}

/// Parse `token[/token] *(; param)` with mail-parser (RFC 2231 continuations and charsets).
/// Content-Disposition has the same shape without the subtype.
pub(crate) fn parse_type_and_params(value: &[u8], need_subtype: bool) -> Option<ContentType> {
    let value = with_final_newline(value);
    let HeaderValue::ContentType(ct) = MessageStream::new(&value).parse_content_type() else {
        return None;
    };
    let mime_type = match (&ct.c_subtype, need_subtype) {
        (Some(sub), _) => format!("{}/{}", ct.c_type, sub).to_ascii_lowercase(),
        (None, false) => ct.c_type.to_ascii_lowercase(),
        (None, true) => return None,
    };
    let params = ct
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|a| (a.name.to_ascii_lowercase(), a.value.into_owned()))
        .collect();
    Some(ContentType { mime_type, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_body_offset() {
        let raw = b"Subject: a\r\n b\r\nTo : x@y\r\n\r\nbody";
        let (fields, body) = parse_header_block(raw, &Limits::default()).unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].name, "Subject");
        assert_eq!(fields[0].raw, b"Subject: a\r\n b\r\n");
        assert_eq!(fields[0].value(), "a b");
        assert_eq!(fields[1].name, "To");
        assert_eq!(fields[1].value(), "x@y");
        assert_eq!(&raw[body..], b"body");
    }

    #[test]
    fn rfc2047_value() {
        let raw = b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n\n";
        let (fields, _) = parse_header_block(raw, &Limits::default()).unwrap();
        assert_eq!(fields[0].value(), "Grüße");
    }

    #[test]
    fn no_header_line_first_is_error() {
        assert!(matches!(
            parse_header_block(b"hello world\n\nx", &Limits::default()),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn limits() {
        let limits = Limits {
            max_header_count: 1,
            ..Limits::default()
        };
        assert!(matches!(
            parse_header_block(b"A: 1\nB: 2\n\n", &limits),
            Err(Error::LimitExceeded { .. })
        ));
        let limits = Limits {
            max_header_line: 5,
            ..Limits::default()
        };
        assert!(matches!(
            parse_header_block(b"A: 123456\n\n", &limits),
            Err(Error::LimitExceeded { .. })
        ));
    }

    #[test]
    fn content_type_params() {
        let ct = ContentType::parse(
            b" Multipart/Signed; protocol=\"application/pkcs7-signature\";\r\n\tMICALG=sha-256; boundary=\"a b:c\"\r\n",
        )
        .unwrap();
        assert_eq!(ct.mime_type, "multipart/signed");
        assert_eq!(ct.param("protocol"), Some("application/pkcs7-signature"));
        assert_eq!(ct.param("micalg"), Some("sha-256"));
        assert_eq!(ct.param("boundary"), Some("a b:c"));
        let ct = ContentType::parse(b" text/plain; name*=utf-8''%E2%82%AC.txt\n").unwrap();
        assert_eq!(ct.param("name"), Some("€.txt"));
    }
}

/// Every mailbox address (`local@domain`) in an address-list header value, raw as it
/// appears in the message (`"Alice Sender" <alice@example.com>`, `alice@example.com (Alice)`,
/// groups). Parsed with mail-parser's RFC 5322 address parser on the raw value: RFC 2047
/// encoded words can only ever be display names, never addresses (an encoded word that
/// decodes to `mallory@evil.example,` must not become a mailbox).
pub fn mailboxes(raw_value: &[u8]) -> Vec<String> {
    let mut field = Vec::with_capacity(raw_value.len() + 12);
    field.extend_from_slice(b"From:");
    // one logical line: unfold, and never let CR/LF start another field
    field.extend(
        raw_value
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    field.extend_from_slice(b"\r\n\r\n");
    let Some(msg) = mail_parser::MessageParser::new().parse_headers(&field[..]) else {
        return Vec::new();
    };
    let Some(from) = msg.from() else {
        return Vec::new();
    };
    from.iter()
        .filter_map(|a| a.address())
        .map(str::trim)
        .filter(|a| {
            // an addr-spec: one @ with text on both sides, no spaces or encoded-word syntax
            a.split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'))
                && !a.contains(char::is_whitespace)
                && !a.contains("=?")
        })
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod address_tests {
    fn first_address(value: &str) -> Option<String> {
        super::mailboxes(value.as_bytes()).into_iter().next()
    }

    #[test]
    fn finds_the_mailbox() {
        for (value, want) in [
            (
                "Alice Sender <alice@example.com>",
                Some("alice@example.com"),
            ),
            (
                "\"Sender, Alice\" <alice@example.com>, bob@example.org",
                Some("alice@example.com"),
            ),
            ("alice@example.com (Alice)", Some("alice@example.com")),
            ("  <alice@Example.COM>", Some("alice@Example.COM")),
            ("undisclosed-recipients:;", None),
            ("no address here", None),
        ] {
            assert_eq!(first_address(value).as_deref(), want, "{value}");
        }
    }

    #[test]
    fn encoded_words_never_become_addresses() {
        let raw = b" =?utf-8?q?mallory=40evil=2Eexample=2C?= <alice@example.com>";
        assert_eq!(super::mailboxes(raw), vec!["alice@example.com".to_string()]);
        let raw = b" =?utf-8?q?mallory=40evil=2Eexample?=";
        assert!(super::mailboxes(raw).is_empty());
        assert_eq!(
            super::mailboxes(b" a@example.com, b@example.org"),
            vec!["a@example.com".to_string(), "b@example.org".to_string()]
        );
    }
}
