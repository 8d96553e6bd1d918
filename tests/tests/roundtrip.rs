//! Round trips through the whole S/MIME message layer for random MIME trees:
//! sign (detached and opaque) → verify, encrypt (every [`ContentCipher`], RSA and EC
//! recipients, with and without an inner signature) → decrypt → verify.
//!
//! What must survive: every leaf's decoded body (text line ends compared after CRLF
//! canonicalisation, RFC 2046 §4.1.1), the outer From/To/Subject/Date, the signer (this
//! certificate, every check passed) and, for a 7-bit clean message, the whole message byte for
//! byte. Keys and certificates are made once in Rust; no external tool is needed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use proptest::prelude::*;
use rand_core::OsRng;
use sealgate::Limits;
use sealgate::mime::{self, Entity};
use sealgate::smime::issue::{self, CertificateParams};
use sealgate::smime::{
    self, Certificate, ContentCipher, Curve, EncryptMessageOptions, Identity, KeyKind, PrivateKey,
    Recipient, SignMessageOptions, TrustStore,
};

// ---------------------------------------------------------------------------------------------
// The test PKI: a P-256 root, an RSA-2048 user and a P-256 user, made once per test binary.

struct Pki {
    trust: TrustStore,
    rsa: Identity,
    ec: Identity,
}

const RSA_ADDRESS: &str = "alice@example.org";
const EC_ADDRESS: &str = "bob@example.org";

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let root_key = PrivateKey::generate(KeyKind::Ec(Curve::P256)).unwrap();
        let root = issue::self_signed(
            &root_key,
            &CertificateParams::ca("Sealgate Round-Trip Root"),
            &mut OsRng,
        )
        .unwrap();
        let user = |kind, name, address| {
            let key = PrivateKey::generate(kind).unwrap();
            let cert = issue::issue(
                key.public_key(),
                &CertificateParams::user(name, address),
                &root,
                &root_key,
                &mut OsRng,
            )
            .unwrap();
            Identity::new(key, cert, Vec::new()).unwrap()
        };
        Pki {
            rsa: user(KeyKind::Rsa(2048), "Alice", RSA_ADDRESS),
            ec: user(KeyKind::Ec(Curve::P256), "Bob", EC_ADDRESS),
            trust: TrustStore::new(vec![root.clone()]),
        }
    })
}

fn limits() -> Limits {
    Limits::default()
}

// ---------------------------------------------------------------------------------------------
// The MIME trees the generator makes, and how they are written out.

/// A MIME entity to generate. Everything is written with CRLF line ends.
#[derive(Debug, Clone)]
enum Node {
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
struct Writer {
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

const SUBJECT: &str = "Round trip";
const DATE: &str = "Mon, 23 Nov 2026 10:00:00 +0000";

/// A whole message from `from`: outer header fields, MIME-Version, then the tree. The
/// MIME-Version comes right after the outer fields, where [`mime::assemble`] puts it back, so
/// that a 7-bit clean message can come back byte for byte.
fn message(from: &str, root: &Node) -> Vec<u8> {
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
fn text(ascii: bool, max_line: usize, max_lines: usize) -> impl Strategy<Value = String> {
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
fn binary(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => any::<u8>(),
        1 => prop::sample::select(vec![0u8, b'\r', b'\n']),
    ];
    prop::collection::vec(byte, 0..max)
}

/// Any leaf, up to about `max_bytes`.
fn leaf(max_bytes: usize) -> BoxedStrategy<Node> {
    prop_oneof![
        (any::<bool>(), text(false, 1500, max_bytes / 40 + 1))
            .prop_map(|(html, text)| Node::Text { html, text }),
        binary(max_bytes).prop_map(|data| Node::Base64 { data }),
        binary(max_bytes).prop_map(|data| Node::Binary { data }),
    ]
    .boxed()
}

/// A leaf that is already 7-bit clean: ASCII text in short lines, or base64.
fn seven_bit_leaf(max_bytes: usize) -> BoxedStrategy<Node> {
    prop_oneof![
        (any::<bool>(), text(true, 200, max_bytes / 40 + 1))
            .prop_map(|(html, text)| Node::Text { html, text }),
        binary(max_bytes).prop_map(|data| Node::Base64 { data }),
    ]
    .boxed()
}

/// A tree up to four levels deep with up to about a dozen leaves.
fn tree(leaf: BoxedStrategy<Node>) -> impl Strategy<Value = Node> {
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

/// How one case protects its message.
#[derive(Debug, Clone, Copy)]
struct Protection {
    /// Sign with the RSA user (else the EC user).
    rsa_signer: bool,
    opaque: bool,
    cipher: ContentCipher,
    /// Which users the message is encrypted to: RSA, EC or both.
    to_rsa: bool,
    to_ec: bool,
}

fn protection() -> impl Strategy<Value = Protection> {
    let cipher = prop::sample::select(vec![
        ContentCipher::Aes128Cbc,
        ContentCipher::Aes256Cbc,
        ContentCipher::Aes128Gcm,
        ContentCipher::Aes256Gcm,
    ]);
    let recipients = prop::sample::select(vec![(true, false), (false, true), (true, true)]);
    (any::<bool>(), any::<bool>(), cipher, recipients).prop_map(
        |(rsa_signer, opaque, cipher, (to_rsa, to_ec))| Protection {
            rsa_signer,
            opaque,
            cipher,
            to_rsa,
            to_ec,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// What must survive.

/// A leaf as a reader sees it: its MIME type and decoded body (text with CRLF line ends).
#[derive(Debug, PartialEq, Eq)]
struct Leaf {
    mime_type: String,
    body: Vec<u8>,
}

fn leaves(raw: &[u8]) -> Vec<Leaf> {
    let mut out = Vec::new();
    collect(&Entity::parse(raw, &limits()).unwrap(), &mut out);
    out
}

fn collect(e: &Entity<'_>, out: &mut Vec<Leaf>) {
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
fn seven_bit_clean(raw: &[u8]) -> bool {
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

fn assert_outer_headers_kept(original: &[u8], result: &[u8]) {
    let a = Entity::parse(original, &limits()).unwrap();
    let b = Entity::parse(result, &limits()).unwrap();
    for name in ["From", "To", "Subject", "Date", "Message-ID"] {
        assert_eq!(b.header(name), a.header(name), "{name}");
    }
}

fn assert_signed_by(v: &smime::VerifiedMessage, signer: &Identity) {
    let [report] = v.verification.signers.as_slice() else {
        panic!("expected one signer, got {}", v.verification.signers.len());
    };
    assert_eq!(
        report.certificate.as_ref().map(Certificate::der),
        Some(signer.cert.der())
    );
    for check in &report.checks {
        assert!(check.passed, "{:?} failed: {}", check.name, check.detail);
    }
    assert!(v.verification.is_valid());
}

/// The message that came back carries the same content as `original`.
fn assert_same_content(original: &[u8], result: &[u8]) {
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

// ---------------------------------------------------------------------------------------------
// The round trips.

fn round_trip(root: &Node, p: Protection) {
    let pki = pki();
    let limits = limits();
    let signer = if p.rsa_signer { &pki.rsa } else { &pki.ec };
    let from = if p.rsa_signer {
        RSA_ADDRESS
    } else {
        EC_ADDRESS
    };
    let original = message(from, root);

    // Sign → verify.
    let mut sopts = SignMessageOptions::default();
    sopts.opaque = p.opaque;
    let signed = smime::sign_message(&original, signer, &sopts, &mut OsRng, &limits).unwrap();
    let verified = smime::verify_message(&signed, &pki.trust, None, &limits).unwrap();
    assert_eq!(verified.opaque, p.opaque);
    assert_signed_by(&verified, signer);
    assert_same_content(&original, &verified.message);

    // Encrypt (without and with an inner signature) → decrypt with every recipient's key.
    let mut recipients = Vec::new();
    let mut keys = Vec::new();
    if p.to_rsa {
        recipients.push(Recipient::new(pki.rsa.cert.clone()));
        keys.push(&pki.rsa);
    }
    if p.to_ec {
        recipients.push(Recipient::new(pki.ec.cert.clone()));
        keys.push(&pki.ec);
    }
    let mut eopts = EncryptMessageOptions::default();
    eopts.cipher = p.cipher;
    let gcm = matches!(
        p.cipher,
        ContentCipher::Aes128Gcm | ContentCipher::Aes256Gcm
    );

    let encrypted =
        smime::encrypt_message(&original, &recipients, None, &eopts, &mut OsRng, &limits).unwrap();
    for id in &keys {
        let d = smime::decrypt_message(&encrypted, &id.key, Some(&id.cert), None, &limits).unwrap();
        assert_eq!(d.cipher, p.cipher.algorithm());
        assert_eq!(d.authenticated, gcm);
        assert!(d.signature.is_none());
        assert_same_content(&original, &d.message);
    }

    let both = smime::encrypt_message(
        &original,
        &recipients,
        Some((signer, &sopts)),
        &eopts,
        &mut OsRng,
        &limits,
    )
    .unwrap();
    for id in &keys {
        // Without a certificate: every RecipientInfo that fits the key is tried.
        let d = smime::decrypt_message(&both, &id.key, None, Some(&pki.trust), &limits).unwrap();
        let inner = d.signature.expect("the inner signature is verified");
        assert_eq!(inner.opaque, p.opaque);
        assert_signed_by(&inner, signer);
        assert_same_content(&original, &inner.message);
        // The decrypted message is the signed message; verifying it again gives the same.
        let again = smime::verify_message(&d.message, &pki.trust, None, &limits).unwrap();
        assert_eq!(again.message, inner.message);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, max_shrink_iters: 200, ..ProptestConfig::default() })]

    /// Small and medium trees (leaves up to 4 KiB), every protection.
    #[test]
    fn any_tree_round_trips(root in tree(leaf(4096)), p in protection()) {
        round_trip(&root, p);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, max_shrink_iters: 200, ..ProptestConfig::default() })]

    /// 7-bit clean trees, which must come back byte for byte.
    #[test]
    fn seven_bit_tree_round_trips_exactly(root in tree(seven_bit_leaf(2048)), p in protection()) {
        prop_assert!(seven_bit_clean(&message(EC_ADDRESS, &root)));
        round_trip(&root, p);
    }
}

/// `len` bytes from `seed` (xorshift64), every fourth byte a NUL, CR or LF. Large leaves are
/// made this way because proptest drawing a megabyte byte by byte is slow in a debug build.
fn noise(seed: u64, len: usize) -> Vec<u8> {
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
fn prose(seed: u64, len: usize) -> String {
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, max_shrink_iters: 10, ..ProptestConfig::default() })]

    /// Large leaves: a multipart with a text and two attachments of up to 1 MB each.
    #[test]
    fn large_leaves_round_trip(
        seed in any::<u64>(),
        sizes in [0..=1usize << 20, 0..=1usize << 20, 0..=1usize << 20],
        p in protection(),
    ) {
        let root = Node::Multipart {
            alternative: false,
            children: vec![
                Node::Text { html: false, text: prose(seed, sizes[0]) },
                Node::Base64 { data: noise(seed ^ 1, sizes[1]) },
                Node::Binary { data: noise(seed ^ 2, sizes[2]) },
            ],
        };
        round_trip(&root, p);
    }
}

/// Fixed edge cases that random generation may miss.
#[test]
fn edge_cases_round_trip() {
    let p = Protection {
        rsa_signer: true,
        opaque: false,
        cipher: ContentCipher::Aes256Gcm,
        to_rsa: true,
        to_ec: true,
    };
    let cases = [
        // Empty bodies.
        Node::Text {
            html: false,
            text: String::new(),
        },
        Node::Binary { data: Vec::new() },
        // 7-bit clean: must come back byte for byte.
        Node::Multipart {
            alternative: true,
            children: vec![
                Node::Text {
                    html: false,
                    text: "plain\r\ntext".into(),
                },
                Node::Text {
                    html: true,
                    text: "<p>html</p>".into(),
                },
            ],
        },
        // Trailing white space, which quoted-printable must protect (RFC 2045 §6.7 rule 3).
        Node::Text {
            html: false,
            text: "trailing  \r\ntab\t\r\nGrüße ".into(),
        },
        // A line over 998 octets, and binary with every awkward byte at the edges.
        Node::Text {
            html: false,
            text: "x".repeat(5000),
        },
        Node::Binary {
            data: b"\r\0\n\r\n\r\r\n\n".to_vec(),
        },
        // An embedded message holding a multipart.
        Node::Message {
            subject: "inner".into(),
            inner: Box::new(Node::Multipart {
                alternative: false,
                children: vec![Node::Binary {
                    data: vec![0, 13, 10, 255],
                }],
            }),
        },
    ];
    for root in &cases {
        for opaque in [false, true] {
            round_trip(root, Protection { opaque, ..p });
        }
    }
}

#[test]
fn seven_bit_clean_is_what_it_says() {
    assert!(seven_bit_clean(b"a\r\nb"));
    assert!(seven_bit_clean(b"a\r\nb\r\n"));
    assert!(!seven_bit_clean(b"a\nb"));
    assert!(!seven_bit_clean(b"a\rb"));
    assert!(!seven_bit_clean(b"a\0b"));
    assert!(!seven_bit_clean("é".as_bytes()));
    assert!(seven_bit_clean("x".repeat(998).as_bytes()));
    assert!(!seven_bit_clean("x".repeat(999).as_bytes()));
}
