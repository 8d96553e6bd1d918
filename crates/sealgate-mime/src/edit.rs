//! Editing a message's header block in place: drop fields, add fields at the top, leave every
//! other byte (other fields, their order, the body) as it was.

use crate::header::HeaderField;
use crate::{Entity, Error, Limits, Result};

/// Rewrite the header block of `message`: the fields for which `drop` is true are removed, the
/// `add` fields (name, value) are put first, in order, the way trace and result fields are
/// added (RFC 5321 §4.4, RFC 8601 §5). Values are folded at `; ` or spaces to stay under 78
/// characters a line (a long token stays whole); a value with bytes outside printable ASCII is
/// written as RFC 2047 encoded words. The line ending of the added fields follows the message's first line.
pub fn rewrite_header(
    message: &[u8],
    drop: impl Fn(&HeaderField<'_>) -> bool,
    add: &[(&str, &str)],
    limits: &Limits,
) -> Result<Vec<u8>> {
    let entity = Entity::parse(message, limits)?;
    let eol: &[u8] = match message.iter().position(|&b| b == b'\n') {
        Some(i) if i > 0 && message[i - 1] == b'\r' => b"\r\n",
        Some(_) => b"\n",
        None => b"\r\n",
    };
    let mut out = Vec::with_capacity(message.len() + 256);
    for (name, value) in add {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b':' && b != b' ')
        {
            return Err(Error::Malformed {
                detail:
                    "a header field name to add is empty or has a space, colon or non-ASCII byte"
                        .into(),
            });
        }
        write_field(&mut out, name, value, eol);
    }
    for field in entity.headers() {
        if !drop(field) {
            out.extend_from_slice(field.raw);
        }
    }
    // The empty line and the body, exactly as they were.
    let header_len: usize = entity.headers().iter().map(|h| h.raw.len()).sum();
    out.extend_from_slice(message.get(header_len..).unwrap_or_default());
    Ok(out)
}

/// Write `name: value` folded, with `eol` after every line.
fn write_field(out: &mut Vec<u8>, name: &str, value: &str, eol: &[u8]) {
    let clean: String = value
        .chars()
        .map(|c| {
            if c == '\r' || c == '\n' || c == '\t' {
                ' '
            } else {
                c
            }
        })
        .collect();
    if !clean.bytes().all(|b| (0x20..0x7f).contains(&b)) || clean.contains("=?") {
        // RFC 2047 words, folded by the composer with CRLF.
        let encoded = crate::compose::encode_text(&clean);
        let encoded = if eol == b"\n" {
            encoded.replace("\r\n", "\n")
        } else {
            encoded
        };
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(encoded.as_bytes());
        out.extend_from_slice(eol);
        return;
    }
    let value = clean;
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    let mut line_len = name.len() + 1;
    for (i, word) in value.split(' ').filter(|w| !w.is_empty()).enumerate() {
        if i > 0 && line_len + 1 + word.len() > 78 {
            out.extend_from_slice(eol);
            line_len = 0;
        }
        out.push(b' ');
        out.extend_from_slice(word.as_bytes());
        line_len += 1 + word.len();
    }
    out.extend_from_slice(eol);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_and_adds_keeping_the_rest() {
        let msg = b"Received: x\r\nSealgate-Signature: valid; forged\r\nFrom: a@example.com\r\nsealgate-decrypted: smime\r\n  folded\r\nSubject: hi\r\n\r\nbody\r\nSealgate-Signature: in body stays\r\n";
        let out = rewrite_header(
            msg,
            |f| {
                f.name
                    .get(..9)
                    .is_some_and(|p| p.eq_ignore_ascii_case("sealgate-"))
            },
            &[("Sealgate-Signature", "none")],
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            out,
            b"Sealgate-Signature: none\r\nReceived: x\r\nFrom: a@example.com\r\nSubject: hi\r\n\r\nbody\r\nSealgate-Signature: in body stays\r\n"
        );
    }

    #[test]
    fn folds_long_values_and_encodes_non_ascii() {
        let long = format!(
            "valid; signer={}; fingerprint={}",
            "alice@example.com",
            "ab".repeat(32)
        );
        let out = rewrite_header(
            b"From: a\n\nx\n",
            |_| false,
            &[
                ("Sealgate-Signature", &long),
                ("X-Name", "Jürgen\r\nBcc: evil"),
            ],
            &Limits::default(),
        )
        .unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        for line in text.lines() {
            assert!(line.len() <= 78, "{line}");
        }
        assert!(!text.contains("\r\n"), "LF message gets LF fields");
        let e = Entity::parse(&out, &Limits::default()).unwrap();
        assert_eq!(e.header("Sealgate-Signature").unwrap(), long);
        assert_eq!(e.header("X-Name").unwrap(), "Jürgen  Bcc: evil");
        assert!(e.header("Bcc").is_none(), "no header injection");
        assert_eq!(e.body(), b"x\n");
    }

    #[test]
    fn bad_names_are_refused() {
        for name in ["", "A B", "A:B", "Ä"] {
            assert!(
                rewrite_header(
                    b"A: b\r\n\r\n",
                    |_| false,
                    &[(name, "v")],
                    &Limits::default()
                )
                .is_err()
            );
        }
    }
}
