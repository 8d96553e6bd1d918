//! Canonical line ends (RFC 5652 §5.4 / RFC 8551 §3.1.1: MIME entities are signed with CRLF).

use std::borrow::Cow;

/// Turn every bare LF and bare CR into CRLF. Borrowed when `data` is already canonical.
pub fn canonicalize_crlf(data: &[u8]) -> Cow<'_, [u8]> {
    if is_canonical(data) {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 32 + 2);
    let mut rest = data;
    while let Some(i) = memchr::memchr2(b'\r', b'\n', rest) {
        let (text, tail) = rest.split_at(i);
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
        rest = match tail {
            [b'\r', b'\n', after @ ..] => after,
            [_, after @ ..] => after,
            [] => tail,
        };
    }
    out.extend_from_slice(rest);
    Cow::Owned(out)
}

/// Whether every CR is followed by LF and every LF preceded by CR.
pub(crate) fn is_canonical(data: &[u8]) -> bool {
    let mut rest = data;
    while let Some(i) = memchr::memchr2(b'\r', b'\n', rest) {
        match rest.get(i..) {
            Some([b'\r', b'\n', after @ ..]) => rest = after,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        assert!(matches!(canonicalize_crlf(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        assert!(matches!(canonicalize_crlf(b""), Cow::Borrowed(_)));
        assert_eq!(
            &*canonicalize_crlf(b"a\nb\rc\r\n\n\r\r\n"),
            b"a\r\nb\r\nc\r\n\r\n\r\n\r\n"
        );
        assert_eq!(&*canonicalize_crlf(b"\n\r"), b"\r\n\r\n");
        assert_eq!(&*canonicalize_crlf(b"x\r"), b"x\r\n");
    }
}
