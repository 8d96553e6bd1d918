//! The random MIME trees of the round-trip tests (S/MIME in `roundtrip.rs`, OpenPGP in
//! `pgp_roundtrip.rs`): the generator, how a tree is written out as a message, and what must
//! survive protection (decoded leaves, outer header fields, a 7-bit clean message byte for byte).
//!
//! Included by each test file with `#[path = "common/trees.rs"] mod trees;`; not every test
//! uses every item.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use sealgate::Limits;
use sealgate::mime::{self, Entity};

pub fn limits() -> Limits {
    Limits::default()
}

// ---------------------------------------------------------------------------------------------
// The MIME trees the generator makes, and how they are written out.

/// A MIME entity to generate. Everything is written with CRLF line ends.
#[derive(Debug, Clone)]
pub enum Node {
    /// `text/plain` or `text/html` in UTF-8, sent as 8bit (so 8-bit text and long lines stay
    /// as they are until signing has to make them 7-bit).
    Text { html: bool, text: String },
    /// An attachment sent in base64.
    Base64 { data: Vec<u8> },
    /// An attachment sent as `Content-Transfer-Encoding: binary`: NULs, bare CR and LF.
    Binary { data: Vec<u8> },
    /// `multipart/mixed` or `multipart/alternative`.
    Multipart {
        alternative: bool,
        children: Vec<Node>,
    },
    /// `message/rfc822` with its own header fields.
    Message { subject: String, inner: Box<Node> },
}

/// Writes a tree; numbers the boundaries so that nested multiparts never share one.
pub struct Writer {
    out: Vec<u8>,
    boundaries: usize,
}

impl Writer {
    fn line(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// The Content-* header fields, the empty line and the body of `node`.
    fn entity(&mut self, node: &Node) {
        match node {
            Node::Text { html, text } => {
                let subtype = if *html { "html" } else { "plain" };
                self.line(&format!("Content-Type: text/{subtype}; charset=utf-8"));
                self.line("Content-Transfer-Encoding: 8bit");
                self.line("");
                self.out.extend_from_slice(text.as_bytes());
            }
            Node::Base64 { data } => {
                // The library's encoder writes it; the comparison is on the decoded bytes, so
                // a bug in it would still show up as a mismatch against `data`.
                let entity = mime::build_base64_entity(
                    "application/octet-stream",
                    Some("attachment.bin"),
                    data,
                );
                self.out.extend_from_slice(&entity);
            }
            Node::Binary { data } => {
                self.line("Content-Type: application/octet-stream; name=\"raw.bin\"");
                self.line("Content-Transfer-Encoding: binary");
                self.line("");
                self.out.extend_from_slice(data);
            }
            Node::Multipart {
                alternative,
                children,
            } => {
                self.boundaries += 1;
                // "=_" cannot occur in quoted-printable or base64 output, nor in the generated
                // text (no '='), so the boundary is never found inside a part.
                let boundary = format!("=_roundtrip_{}", self.boundaries);
                let subtype = if *alternative { "alternative" } else { "mixed" };
                self.line(&format!(
                    "Content-Type: multipart/{subtype}; boundary=\"{boundary}\""
                ));
                self.line("");
                self.line("This is a multi-part message in MIME format.");
                for child in children {
                    self.line(&format!("--{boundary}"));
                    self.entity(child);
                    // RFC 2046 §5.1.1: this CRLF belongs to the delimiter, not to the part.
                    self.line("");
                }
                self.line(&format!("--{boundary}--"));
            }
            Node::Message { subject, inner } => {
                self.line("Content-Type: message/rfc822");
                self.line("");
                self.line("From: Carol <carol@example.net>");
                self.line(&format!("Subject: {subject}"));
                self.line("MIME-Version: 1.0");
                self.entity(inner);
            }
        }
    }
}

pub const SUBJECT: &str = "Round trip";
pub const DATE: &str = "Mon, 23 Nov 2026 10:00:00 +0000";

/// A whole message from `from`: outer header fields, MIME-Version, then the tree. The
/// MIME-Version comes right after the outer fields, where [`mime::assemble`] puts it back, so
/// that a 7-bit clean message can come back byte for byte.
pub fn message(from: &str, root: &Node) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::new(),
        boundaries: 0,
    };
    w.line(&format!("From: Sender <{from}>"));
    w.line("To: Receiver <receiver@example.com>, other@example.com");
    w.line(&format!("Subject: {SUBJECT}"));
    w.line(&format!("Date: {DATE}"));
    w.line("Message-ID: <roundtrip@example.org>");
    w.line("MIME-Version: 1.0");
    w.entity(root);
    w.out
}

// ---------------------------------------------------------------------------------------------
// Strategies.

/// Text: lines of printable ASCII, tabs, trailing spaces and (unless `ascii`) a few non-ASCII
/// characters, joined by CRLF. Lines up to `max_line` characters: over 998 octets
/// (RFC 5322 §2.1.1) signing has to re-encode.
pub fn text(ascii: bool, max_line: usize, max_lines: usize) -> impl Strategy<Value = String> {
    let non_ascii = if ascii { 0 } else { 1 };
    let ch = prop_oneof![
        8 => prop::char::range(' ', '<'), // printable ASCII without '='
        8 => prop::char::range('>', '~'),
        1 => Just('\t'),
        non_ascii => prop::sample::select(vec!['é', 'ß', 'Ω', '€', 'ж', '漢', '😀']),
    ];
    let line = prop::collection::vec(ch, 0..max_line).prop_map(String::from_iter);
    prop::collection::vec(line, 0..max_lines).prop_map(|lines| lines.join("\r\n"))
}

/// Bytes with many NULs, CRs and LFs.
pub fn binary(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => any::<u8>(),
        1 => prop::sample::select(vec![0u8, b'\r', b'\n']),
    ];
    prop::collection::vec(byte, 0..max)
}

/// Any leaf, up to about `max_bytes`.
pub fn leaf(max_bytes: usize) -> BoxedStrategy<Node> {
    prop_oneof![
        (any::<bool>(), text(false, 1500, max_bytes / 40 + 1))
            .prop_map(|(html, text)| Node::Text { html, text }),
        binary(max_bytes).prop_map(|data| Node::Base64 { data }),
        binary(max_bytes).prop_map(|data| Node::Binary { data }),
    ]
    .boxed()
}

/// A leaf that is already 7-bit clean: ASCII text in short lines, or base64.
pub fn seven_bit_leaf(max_bytes: usize) -> BoxedStrategy<Node> {
    prop_oneof![
        (any::<bool>(), text(true, 200, max_bytes / 40 + 1))
            .prop_map(|(html, text)| Node::Text { html, text }),
        binary(max_bytes).prop_map(|data| Node::Base64 { data }),
    ]
    .boxed()
}

/// A tree up to four levels deep with up to about a dozen leaves.
pub fn tree(leaf: BoxedStrategy<Node>) -> impl Strategy<Value = Node> {
    leaf.prop_recursive(4, 12, 4, |inner| {
        prop_oneof![
            (any::<bool>(), prop::collection::vec(inner.clone(), 1..4)).prop_map(
                |(alternative, children)| Node::Multipart {
                    alternative,
                    children
                }
            ),
            ("[a-z ]{0,20}", inner).prop_map(|(subject, inner)| Node::Message {
                subject,
                inner: Box::new(inner)
            }),
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// What must survive.

/// A leaf as a reader sees it: its MIME type and decoded body (text with CRLF line ends).
#[derive(Debug, PartialEq, Eq)]
pub struct Leaf {
    mime_type: String,
    body: Vec<u8>,
}

pub fn leaves(raw: &[u8]) -> Vec<Leaf> {
    let mut out = Vec::new();
    collect(&Entity::parse(raw, &limits()).unwrap(), &mut out);
    out
}

pub fn collect(e: &Entity<'_>, out: &mut Vec<Leaf>) {
    let limits = limits();
    let ct = e.content_type();
    if ct.is_multipart() {
        for part in e.parts(&limits).unwrap() {
            collect(&part, out);
        }
    } else if let Some(inner) = e.embedded_message(&limits).unwrap() {
        // The embedded message's Subject is part of what must survive (RFC 2047-encoded by
        // signing if it were 8-bit; the generated ones are ASCII).
        out.push(Leaf {
            mime_type: "message/rfc822 subject".into(),
            body: inner.header("Subject").unwrap_or_default().into_bytes(),
        });
        collect(&inner, out);
    } else {
        let body = e.decoded_body(&limits).unwrap();
        let body = if ct.is_text() {
            mime::canonicalize_crlf(&body).into_owned()
        } else {
            body
        };
        out.push(Leaf {
            mime_type: ct.mime_type,
            body,
        });
    }
}

/// 7-bit clean (RFC 5322 §2.1.1, RFC 2045 §2.7): ASCII without NUL, CR and LF only as CRLF,
/// lines of at most 998 octets. Such a message needs no re-encoding and must come back as is.
pub fn seven_bit_clean(raw: &[u8]) -> bool {
    let mut line_len = 0;
    for (i, &b) in raw.iter().enumerate() {
        match b {
            b'\r' if raw.get(i + 1) == Some(&b'\n') => {}
            b'\n' if i > 0 && raw.get(i - 1) == Some(&b'\r') => line_len = 0,
            0 | b'\r' | b'\n' | 128.. => return false,
            _ => {
                line_len += 1;
                if line_len > 998 {
                    return false;
                }
            }
        }
    }
    true
}

pub fn assert_outer_headers_kept(original: &[u8], result: &[u8]) {
    let a = Entity::parse(original, &limits()).unwrap();
    let b = Entity::parse(result, &limits()).unwrap();
    for name in ["From", "To", "Subject", "Date", "Message-ID"] {
        assert_eq!(b.header(name), a.header(name), "{name}");
    }
}

/// The message that came back carries the same content as `original`.
pub fn assert_same_content(original: &[u8], result: &[u8]) {
    assert_outer_headers_kept(original, result);
    assert_eq!(leaves(result), leaves(original));
    if seven_bit_clean(original) {
        assert_eq!(
            String::from_utf8_lossy(result),
            String::from_utf8_lossy(original),
            "a 7-bit clean message must come back byte for byte"
        );
    }
}

/// `len` bytes from `seed` (xorshift64), every fourth byte a NUL, CR or LF. Large leaves are
/// made this way because proptest drawing a megabyte byte by byte is slow in a debug build.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match i % 4 {
                0 => [0, b'\r', b'\n'][(x % 3) as usize],
                _ => x as u8,
            }
        })
        .collect()
}

/// About `len` bytes of UTF-8 text from `seed`: words, some non-ASCII, lines of up to ~3000
/// characters (so signing must re-encode them), CRLF line ends.
pub fn prose(seed: u64, len: usize) -> String {
    const WORDS: [&str; 8] = [
        "lorem", "Grüße", "ipsum", "€10", "dolor\t", "漢字", "sit", "amet  ",
    ];
    let mut out = String::with_capacity(len + 16);
    let mut line = 0;
    for b in noise(seed, len / 4) {
        let word = WORDS[usize::from(b) % WORDS.len()];
        line += word.len() + 1;
        if line > usize::from(b) * 12 {
            out.push_str("\r\n");
            line = 0;
        } else {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() >= len {
            break;
        }
    }
    out
}
