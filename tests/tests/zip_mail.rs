//! Property test of `zip mail` (the packaging of `sealgate::zip::package`): for random sets of
//! attachments (names in Latin, Cyrillic, Greek, CJK, Arabic and emoji scripts, with unsafe
//! characters and duplicates; sizes from 0 B to 5 MB; base64 or quoted-printable or 8bit;
//! with and without a text body) and both encryptions:
//!
//! - the recipient message is 7-bit, parses, and carries no attachment in clear: its only part
//!   with a file name is the ZIP, and no attachment's bytes (or their base64) appear in it;
//! - the password printed in the sender notification opens the ZIP, whose files are exactly
//!   the attachments (names sanitised, made unique), byte for byte;
//! - with a text body, the body stays readable in the recipient message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use sealgate::Limits;
use sealgate::mime::Entity;
use sealgate::zip::{
    Encryption, PackageOptions, Password, Scope, package, read_all, sanitize_name,
};

const STEMS: &[&str] = &[
    "report",
    "Grüße",
    "Отчёт",
    "Ελληνικά",
    "日本語の資料",
    "تقرير",
    "🙂 emoji",
    "../../etc/passwd",
    "C:\\Windows\\evil",
    "tab\tname",
    "a \"quoted\" name",
    "very long name ",
];
const EXTS: &[&str] = &[".pdf", ".txt", ".docx", ".jpg", "", ".tar.gz"];

#[derive(Debug, Clone)]
struct Attachment {
    name: String,
    data: Vec<u8>,
    encoding: u8,
}

fn attachment() -> impl Strategy<Value = Attachment> {
    (
        0..STEMS.len(),
        0..EXTS.len(),
        0u8..3,
        prop_oneof![
            6 => 0usize..2000,
            3 => 2000usize..200_000,
            1 => 1_000_000usize..=5_000_000,
        ],
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(|(s, e, encoding, size, seed, text)| {
            let mut name = STEMS[s].to_string();
            if name.ends_with(' ') {
                name = name.repeat(8);
            }
            name.push_str(EXTS[e]);
            let data = if text {
                sealgate_tests::pseudo_text(size, seed)
            } else {
                sealgate_tests::pseudo_random(size, seed)
            };
            // 8bit only for text without NUL and short lines; else base64
            let encoding = if encoding == 2 && !text { 0 } else { encoding };
            Attachment {
                name,
                data,
                encoding,
            }
        })
}

fn rfc2231(name: &str) -> String {
    let mut s = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_' {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn message(atts: &[Attachment], body: bool) -> Vec<u8> {
    use base64::Engine as _;
    let mut m =
        b"From: Sender <sender@example.com>\r\nTo: r1@example.org, R Two <r2@example.net>\r\n\
Subject: =?utf-8?b?UHLDvGZ1bmcg4piD?=\r\nMessage-ID: <prop@example.com>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\n"
            .to_vec();
    if body {
        m.extend_from_slice(b"--=_b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nThe body text st\xc3\xa4ys readable.\r\n");
    }
    for a in atts {
        m.extend_from_slice(b"--=_b\r\nContent-Type: application/octet-stream\r\n");
        m.extend_from_slice(
            format!(
                "Content-Disposition: attachment; filename*=utf-8''{}\r\n",
                rfc2231(&a.name)
            )
            .as_bytes(),
        );
        match a.encoding {
            0 => {
                m.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\n");
                let b64 = base64::engine::general_purpose::STANDARD.encode(&a.data);
                for line in b64.as_bytes().chunks(76) {
                    m.extend_from_slice(line);
                    m.extend_from_slice(b"\r\n");
                }
            }
            _ => {
                // pseudo_text is 7-bit with LF line ends: as quoted-printable-free 8bit, CRLF
                m.extend_from_slice(b"Content-Transfer-Encoding: 7bit\r\n\r\n");
                m.extend_from_slice(&a.data);
                m.extend_from_slice(b"\r\n");
            }
        }
    }
    m.extend_from_slice(b"--=_b--\r\n");
    m
}

/// What the attachment decodes to in the message (7bit text: the bytes up to the line break
/// before the next delimiter, which belongs to the delimiter).
fn expected(a: &Attachment) -> Vec<u8> {
    a.data.clone()
}

fn password_from(notification: &[u8], limits: &Limits) -> String {
    let e = Entity::parse(notification, limits).unwrap();
    let body = String::from_utf8(e.decoded_body(limits).unwrap()).unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix("    "))
        .unwrap()
        .trim()
        .to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn zip_mail_round_trip(
        atts in prop::collection::vec(attachment(), 1..5),
        body in any::<bool>(),
        zipcrypto in any::<bool>(),
    ) {
        // 7bit parts cannot hold a lone CR or end in a line break that is not theirs
        let atts: Vec<Attachment> = atts.into_iter().map(|mut a| {
            if a.encoding != 0 {
                a.data = a.data.iter().map(|&b| if b == b'\n' { b' ' } else { b }).collect();
                a.data.truncate(900);
            }
            a
        }).collect();
        let limits = Limits::default();
        let raw = message(&atts, body);
        let mut options = PackageOptions::default();
        options.scope = Scope::Attachments;
        options.encryption = if zipcrypto { Encryption::ZipCrypto } else { Encryption::Aes256 };
        let password = Password::generate_default(&mut rand_core::OsRng);
        let out = package(&raw, &password, &options, &mut rand_core::OsRng, &limits).unwrap();

        let r = &out.recipient_message;
        prop_assert!(r.is_ascii());
        let e = Entity::parse(r, &limits).unwrap();
        let parts = e.parts(&limits).unwrap();
        let named: Vec<_> = parts.iter().filter(|p| p.filename().is_some()).collect();
        prop_assert_eq!(named.len(), 1);
        prop_assert_eq!(named[0].content_type().mime_type, "application/zip");
        for a in &atts {
            if a.data.len() >= 100 {
                let probe = &a.data[a.data.len() / 2..a.data.len() / 2 + 48];
                prop_assert!(memchr_find(r, probe).is_none(), "attachment bytes in clear");
                use base64::Engine as _;
                let b64 = base64::engine::general_purpose::STANDARD.encode(&a.data[..57]);
                prop_assert!(memchr_find(r, b64.as_bytes()).is_none(), "attachment base64 in clear");
            }
        }
        if body {
            prop_assert!(String::from_utf8_lossy(r).contains("The body text st"));
        }

        let pw = password_from(&out.sender_notification, &limits);
        prop_assert_eq!(pw.as_str(), password.expose());
        let zip = named[0].decoded_body(&limits).unwrap();
        let files = read_all(&zip, Some(&Password::from(pw.as_str())), &limits).unwrap();
        prop_assert_eq!(files.len(), atts.len());
        let mut seen = std::collections::HashSet::new();
        for (a, f) in atts.iter().zip(&files) {
            let base = sanitize_name(&a.name);
            prop_assert!(f.name == base || f.name.starts_with(base.rsplit_once('.').map_or(base.as_str(), |x| x.0)),
                "{} for {}", f.name, a.name);
            prop_assert!(seen.insert(f.name.clone()), "names unique");
            prop_assert!(!f.name.contains("..") && !f.name.starts_with('/'));
            prop_assert!(f.data[..] == expected(a)[..], "content of {}", a.name);
        }
        prop_assert_eq!(&out.files, &files.iter().map(|f| f.name.clone()).collect::<Vec<_>>());
    }
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
