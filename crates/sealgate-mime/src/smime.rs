//! The MIME envelopes of S/MIME (RFC 8551 §3) and of RFC 1847 security multiparts.

use rand_core::RngCore;

use crate::entity::Entity;
use crate::header::{HeaderField, malformed};
use crate::{Limits, Result, transfer};

/// A top-level `multipart/signed` message (RFC 1847 §2.1, RFC 8551 §3.5.3), split.
#[derive(Debug, Clone)]
pub struct MultipartSigned<'a> {
    /// The message's header fields except `Content-*` and `MIME-Version`.
    pub outer: Vec<HeaderField<'a>>,
    /// The exact bytes of the first part as transmitted (header fields and body, without the
    /// line break before the next delimiter); canonicalise before hashing.
    pub signed: &'a [u8],
    /// The `protocol` parameter, e.g. `application/pkcs7-signature`.
    pub protocol: String,
    /// The `micalg` parameter, lowercased, e.g. `sha-256`.
    pub micalg: Option<String>,
    /// The second part with its transfer encoding undone (for S/MIME: DER or BER CMS).
    pub signature: Vec<u8>,
}

/// Find and split a top-level `multipart/signed` message; `Ok(None)` if it is another type.
///
/// Errors if it is `multipart/signed` but has no `protocol` or not exactly two parts.
pub fn parse_multipart_signed<'a>(
    raw: &'a [u8],
    limits: &Limits,
) -> Result<Option<MultipartSigned<'a>>> {
    let message = Entity::parse(raw, limits)?;
    let ct = message.content_type();
    if ct.mime_type != "multipart/signed" {
        return Ok(None);
    }
    let protocol = ct
        .param("protocol")
        .ok_or_else(|| malformed("multipart/signed without protocol parameter"))?
        .to_ascii_lowercase();
    let micalg = ct.param("micalg").map(str::to_ascii_lowercase);
    // RFC 1847 §2.1: exactly two body parts.
    let [signed, signature] = <[Entity<'a>; 2]>::try_from(message.parts(limits)?)
        .map_err(|_| malformed("multipart/signed must have exactly two parts"))?;
    Ok(Some(MultipartSigned {
        outer: outer_fields(&message),
        signed: signed.raw(),
        protocol,
        micalg,
        signature: signature.decoded_body(limits)?,
    }))
}

pub(crate) fn outer_fields<'a>(message: &Entity<'a>) -> Vec<HeaderField<'a>> {
    message
        .headers()
        .iter()
        .filter(|h| !h.is_mime_field())
        .copied()
        .collect()
}

/// A top-level `application/pkcs7-mime` message (RFC 8551 §3.2), decoded.
#[derive(Debug, Clone)]
pub struct Pkcs7Mime<'a> {
    /// The message's header fields except `Content-*` and `MIME-Version`.
    pub outer: Vec<HeaderField<'a>>,
    /// The `smime-type` parameter, lowercased (`enveloped-data`, `signed-data`,
    /// `authenveloped-data`, `compressed-data`, `certs-only`), if given.
    pub smime_type: Option<String>,
    /// The body with its transfer encoding undone: the BER/DER CMS ContentInfo.
    pub der: Vec<u8>,
}

/// Find and decode a top-level S/MIME message: `application/pkcs7-mime`,
/// `application/x-pkcs7-mime` (RFC 8551 §3.2.1), or `application/octet-stream` named
/// `*.p7m`, `*.p7c` or `*.p7s` as some gateways send it. `Ok(None)` for other types.
pub fn parse_pkcs7_mime<'a>(raw: &'a [u8], limits: &Limits) -> Result<Option<Pkcs7Mime<'a>>> {
    let message = Entity::parse(raw, limits)?;
    let ct = message.content_type();
    let is_pkcs7 = match ct.mime_type.as_str() {
        "application/pkcs7-mime" | "application/x-pkcs7-mime" => true,
        "application/octet-stream" => message.filename().is_some_and(|name| {
            let name = name.to_ascii_lowercase();
            [".p7m", ".p7c", ".p7s"]
                .iter()
                .any(|ext| name.ends_with(ext))
        }),
        _ => false,
    };
    if !is_pkcs7 {
        return Ok(None);
    }
    Ok(Some(Pkcs7Mime {
        outer: outer_fields(&message),
        smime_type: ct.param("smime-type").map(str::to_ascii_lowercase),
        der: message.decoded_body(limits)?,
    }))
}

/// Quote a parameter value unless it is a plain token (RFC 2045 §5.1).
pub(crate) fn param_value(value: &str) -> String {
    const TSPECIALS: &str = "()<>@,;:\\\"/[]?=";
    let token = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && !TSPECIALS.contains(c));
    if token {
        value.to_string()
    } else {
        let escaped: String = value
            .chars()
            .filter(|c| *c != '\r' && *c != '\n')
            .flat_map(|c| match c {
                '"' | '\\' => vec!['\\', c],
                _ => vec![c],
            })
            .collect();
        format!("\"{escaped}\"")
    }
}

/// Does a line of `data` start with `--boundary`?
fn boundary_occurs(data: &[u8], boundary: &[u8]) -> bool {
    let mut needle = b"--".to_vec();
    needle.extend_from_slice(boundary);
    memchr::memmem::find_iter(data, &needle).any(|i| i == 0 || data.get(i - 1) == Some(&b'\n'))
}

/// Build `multipart/signed` (RFC 1847 §2.1, RFC 8551 §3.5.3).
///
/// `entity` (already 7-bit and canonical) becomes part 1 verbatim, so the bytes that were
/// signed are exactly the bytes a receiver finds; `signature` becomes part 2 in base64 with
/// `sig_content_type` (e.g. `application/pkcs7-signature; name=smime.p7s`) and a
/// `Content-Disposition: attachment` with `sig_filename`. Returns the new top-level entity
/// (Content-Type field and body); [`crate::assemble`] adds the outer header fields. The
/// boundary is drawn from `rng` and drawn again while it occurs in `entity`.
pub fn build_multipart_signed(
    entity: &[u8],
    protocol: &str,
    micalg: &str,
    signature: &[u8],
    sig_content_type: &str,
    sig_filename: &str,
    rng: &mut impl RngCore,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(entity.len() + signature.len() * 4 / 3 + 1024);
    write_multipart_signed(
        &mut out,
        &[entity],
        protocol,
        micalg,
        signature,
        sig_content_type,
        sig_filename,
        rng,
    );
    out
}

/// [`build_multipart_signed`] appending to `out`, with the signed entity in pieces (e.g. its
/// header block and its body, as [`crate::split_for_protection_parts`] gives them), so that
/// a large entity is copied once, into `out`.
#[allow(clippy::too_many_arguments)]
pub fn write_multipart_signed(
    out: &mut Vec<u8>,
    entity: &[&[u8]],
    protocol: &str,
    micalg: &str,
    signature: &[u8],
    sig_content_type: &str,
    sig_filename: &str,
    rng: &mut impl RngCore,
) {
    let boundary = choose_boundary(entity, rng);
    out.reserve(entity.iter().map(|p| p.len()).sum::<usize>() + signature.len() * 4 / 3 + 1024);
    out.extend_from_slice(
        format!(
            "Content-Type: multipart/signed; protocol={};\r\n\tmicalg={};\r\n\tboundary=\"{boundary}\"\r\n\r\n",
            param_value(protocol),
            param_value(micalg),
        )
        .as_bytes(),
    );
    out.extend_from_slice(b"This is an S/MIME signed message\r\n\r\n");
    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    for piece in entity {
        out.extend_from_slice(piece);
    }
    out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
    out.extend_from_slice(&build_base64_entity(
        sig_content_type,
        Some(sig_filename),
        signature,
    ));
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
}

/// A random boundary (`----sealgate-` and 32 hex digits) that occurs in none of `pieces`.
pub(crate) fn choose_boundary(pieces: &[&[u8]], rng: &mut impl RngCore) -> String {
    let mut attempt = 0u32;
    loop {
        let mut random = [0u8; 16];
        rng.fill_bytes(&mut random);
        let mut boundary = String::from("----sealgate-");
        for b in random {
            boundary.push_str(&format!("{b:02x}"));
        }
        // A constant RNG must not loop for ever: the attempt number makes the boundary new.
        if attempt > 0 {
            boundary.push_str(&format!("-{attempt}"));
        }
        if !boundary_occurs_in_pieces(pieces, boundary.as_bytes()) {
            return boundary;
        }
        attempt += 1;
    }
}

/// Whether the boundary may occur in the concatenation of `pieces`, without concatenating
/// them. Conservative: the start of every piece counts as a line start and a delimiter across
/// a junction counts wherever it lies; a false alarm only draws a new boundary.
fn boundary_occurs_in_pieces(pieces: &[&[u8]], boundary: &[u8]) -> bool {
    let mut needle = b"--".to_vec();
    needle.extend_from_slice(boundary);
    let reach = needle.len() - 1;
    // The last `reach` bytes of everything before the current piece.
    let mut carry: Vec<u8> = Vec::new();
    for piece in pieces {
        if boundary_occurs(piece, boundary) {
            return true;
        }
        let mut joint = carry.clone();
        joint.extend_from_slice(piece.get(..reach.min(piece.len())).unwrap_or_default());
        if memchr::memmem::find(&joint, &needle).is_some() {
            return true;
        }
        carry.extend_from_slice(
            piece
                .get(piece.len().saturating_sub(reach)..)
                .unwrap_or_default(),
        );
        let excess = carry.len().saturating_sub(reach);
        carry.drain(..excess);
    }
    false
}

/// An entity carrying `data` in base64: `Content-Type: content_type` (e.g.
/// `application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m`),
/// `Content-Transfer-Encoding: base64` and, with a file name,
/// `Content-Disposition: attachment; filename=...`; lines of 76 characters, CRLF.
pub fn build_base64_entity(content_type: &str, filename: Option<&str>, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 4 / 3 + data.len() / 38 + 256);
    out.extend_from_slice(b"Content-Type: ");
    out.extend_from_slice(content_type.replace(['\r', '\n'], " ").as_bytes());
    out.extend_from_slice(b"\r\nContent-Transfer-Encoding: base64\r\n");
    if let Some(name) = filename {
        out.extend_from_slice(
            format!(
                "Content-Disposition: attachment; filename={}\r\n",
                param_value(name)
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    transfer::encode_base64_lines(data, b"\r\n", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::canonicalize_crlf;

    /// A deterministic RNG for tests.
    struct Counter(u8);
    impl RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            0
        }
        fn next_u64(&mut self) -> u64 {
            0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(self.0);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    fn data(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../tests/data/mime/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn boundary_search_across_pieces() {
        let b = b"XYZ";
        assert!(boundary_occurs_in_pieces(&[b"a\r\n--XY", b"Z\r\n"], b));
        assert!(boundary_occurs_in_pieces(
            &[b"a\r\n-", b"-", b"X", b"YZ"],
            b
        ));
        assert!(boundary_occurs_in_pieces(&[b"a\r\n", b"--XYZ"], b));
        assert!(!boundary_occurs_in_pieces(&[b"a\r\n--XY", b"z\r\n"], b));
        assert!(!boundary_occurs_in_pieces(&[b"", b"abc"], b));
    }

    #[test]
    fn build_then_parse_multipart_signed() {
        let entity = b"Content-Type: text/plain\r\n\r\nhello\r\n";
        let sig: Vec<u8> = (0..=255u8).collect();
        let mut rng = Counter(0xab);
        let built = build_multipart_signed(
            entity,
            "application/pkcs7-signature",
            "sha-256",
            &sig,
            "application/pkcs7-signature; name=smime.p7s",
            "smime.p7s",
            &mut rng,
        );
        let msg = crate::assemble(&[], &[], &built);
        let parsed = parse_multipart_signed(&msg, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(parsed.signed, entity);
        assert_eq!(parsed.protocol, "application/pkcs7-signature");
        assert_eq!(parsed.micalg.as_deref(), Some("sha-256"));
        assert_eq!(parsed.signature, sig);
        let text = String::from_utf8(built).unwrap();
        assert!(text.starts_with("Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n\tmicalg=sha-256;\r\n\tboundary=\"----sealgate-abababab"));
        assert!(text.contains("Content-Disposition: attachment; filename=smime.p7s\r\n"));
    }

    #[test]
    fn boundary_redrawn_when_it_occurs() {
        let boundary = format!("----sealgate-{}", "00".repeat(16));
        let entity = format!("Content-Type: text/plain\r\n\r\n--{boundary}\r\n");
        let built = build_multipart_signed(
            entity.as_bytes(),
            "application/pkcs7-signature",
            "sha-256",
            b"sig",
            "application/pkcs7-signature",
            "smime.p7s",
            &mut Counter(0),
        );
        let msg = crate::assemble(&[], &[], &built);
        let parsed = parse_multipart_signed(&msg, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(parsed.signed, entity.as_bytes());
        assert!(
            String::from_utf8(built)
                .unwrap()
                .contains(&format!("boundary=\"{boundary}-1\""))
        );
    }

    #[test]
    fn base64_entity() {
        let e = build_base64_entity(
            "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m",
            Some("smime.p7m"),
            b"\x30\x03\x02\x01\x00",
        );
        assert_eq!(
            e,
            b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=smime.p7m\r\n\r\nMAMCAQA=\r\n"
        );
        let msg = crate::assemble(&[], &[], &e);
        let p = parse_pkcs7_mime(&msg, &Limits::default()).unwrap().unwrap();
        assert_eq!(p.smime_type.as_deref(), Some("enveloped-data"));
        assert_eq!(p.der, b"\x30\x03\x02\x01\x00");
    }

    #[test]
    fn octet_stream_p7m_and_other_types() {
        let limits = Limits::default();
        let raw = b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"SMIME.P7M\"\r\nContent-Transfer-Encoding: base64\r\n\r\nMAA=\r\n";
        let p = parse_pkcs7_mime(raw, &limits).unwrap().unwrap();
        assert_eq!(p.smime_type, None);
        assert_eq!(p.der, b"\x30\x00");
        let raw = b"Content-Type: application/octet-stream; name=x.bin\r\n\r\nMAA=";
        assert!(parse_pkcs7_mime(raw, &limits).unwrap().is_none());
        assert!(parse_multipart_signed(raw, &limits).unwrap().is_none());
    }

    #[test]
    fn param_quoting() {
        assert_eq!(param_value("sha-256"), "sha-256");
        assert_eq!(param_value("sha-256,sha-1"), "\"sha-256,sha-1\"");
        assert_eq!(param_value("a \"b\""), "\"a \\\"b\\\"\"");
    }

    /// `openssl cms -sign` on LF input writes the header and delimiters with LF but the signed
    /// part canonical (CRLF); with `-crlfeol` everything is CRLF. Either way the first part is
    /// exactly the canonical content that was hashed (`openssl cms -verify` in NOTES.md).
    #[test]
    fn openssl_detached() {
        let limits = Limits::default();
        let content = data("signed-content-lf.txt");
        for eol in ["lf", "crlf"] {
            let raw = data(&format!("signed-detached-{eol}.eml"));
            let p = parse_multipart_signed(&raw, &limits).unwrap().unwrap();
            assert_eq!(p.protocol, "application/pkcs7-signature");
            assert_eq!(p.micalg.as_deref(), Some("sha-256"));
            assert_eq!(p.signed, &*canonicalize_crlf(&content));
            assert_eq!(p.signature, data(&format!("signed-detached-{eol}.p7s")));
            let names: Vec<_> = p.outer.iter().map(|h| h.name).collect();
            assert_eq!(names, ["To", "From", "Subject"]);
        }
    }

    /// The same message with what other writers do: a folded Content-Type, the boundary
    /// quoted with a space in it, transport padding after delimiters, an epilogue.
    #[test]
    fn folded_padded_variant() {
        let raw = String::from_utf8(data("signed-detached-crlf.eml")).unwrap();
        let old = raw
            .split("boundary=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_string();
        let new = "=_outer part 1";
        let raw = raw
            .replace("; micalg=", ";\r\n\tmicalg=")
            .replace(
                &format!("boundary=\"{old}\""),
                &format!("\r\n boundary=\"{new}\""),
            )
            .replace(
                &format!("--{old}--\r\n"),
                &format!("--{new}-- \r\nepilogue\r\n"),
            )
            .replace(&format!("--{old}\r\n"), &format!("--{new} \t \r\n"));
        let p = parse_multipart_signed(raw.as_bytes(), &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            p.signed,
            &*canonicalize_crlf(&data("signed-content-lf.txt"))
        );
        assert_eq!(p.signature, data("signed-detached-crlf.p7s"));
    }

    /// Outlook's layout: folded parameters, x- protocol, upper-case micalg, a boundary with
    /// `=` and `.`, its own preamble, a trailing empty line after the close delimiter.
    #[test]
    fn outlook_style() {
        let content = canonicalize_crlf(&data("signed-content-lf.txt")).into_owned();
        let sig = data("signed-detached-crlf.p7s");
        let b = "----=_NextPart_000_0012_01DA1234.56789ABC";
        let mut raw = format!(
            "From: a@example.org\r\nContent-Type: multipart/signed;\r\n\tprotocol=\"application/x-pkcs7-signature\";\r\n\tmicalg=SHA-256;\r\n\tboundary=\"{b}\"\r\n\r\nThis is a multi-part message in MIME format.\r\n\r\n--{b}\r\n"
        )
        .into_bytes();
        raw.extend_from_slice(&content);
        raw.extend_from_slice(
            format!("\r\n--{b}\r\nContent-Type: application/x-pkcs7-signature;\r\n\tname=\"smime.p7s\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment;\r\n\tfilename=\"smime.p7s\"\r\n\r\n").as_bytes(),
        );
        crate::transfer::encode_base64_lines(&sig, b"\r\n", &mut raw);
        raw.extend_from_slice(format!("\r\n--{b}--\r\n\r\n").as_bytes());
        let p = parse_multipart_signed(&raw, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(p.protocol, "application/x-pkcs7-signature");
        assert_eq!(p.micalg.as_deref(), Some("sha-256"));
        assert_eq!(p.signed, content.as_slice());
        assert_eq!(p.signature, sig);
        assert_eq!(p.outer.len(), 1);
    }

    #[test]
    fn multipart_signed_needs_two_parts_and_protocol() {
        let limits = Limits::default();
        let raw = b"Content-Type: multipart/signed; protocol=x; boundary=b\r\n\r\n--b\r\n\r\nA\r\n--b--\r\n";
        assert!(matches!(
            parse_multipart_signed(raw, &limits),
            Err(crate::Error::Malformed { .. })
        ));
        let raw = b"Content-Type: multipart/signed; boundary=b\r\n\r\n--b\r\n\r\nA\r\n--b\r\n\r\nB\r\n--b--\r\n";
        assert!(matches!(
            parse_multipart_signed(raw, &limits),
            Err(crate::Error::Malformed { .. })
        ));
    }

    #[test]
    fn openssl_opaque_and_enveloped() {
        let limits = Limits::default();
        let opaque = data("signed-opaque.eml");
        let p = parse_pkcs7_mime(&opaque, &limits).unwrap().unwrap();
        assert_eq!(p.smime_type.as_deref(), Some("signed-data"));
        assert_eq!(p.der, data("signed-opaque.der"));
        let enveloped = data("enveloped.eml");
        let p = parse_pkcs7_mime(&enveloped, &limits).unwrap().unwrap();
        assert_eq!(p.smime_type.as_deref(), Some("enveloped-data"));
        assert_eq!(p.der, data("enveloped.der"));
        assert!(
            parse_multipart_signed(&data("enveloped.eml"), &limits)
                .unwrap()
                .is_none()
        );
    }
}
