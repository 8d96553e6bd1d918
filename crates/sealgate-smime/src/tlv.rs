//! A minimal zero-copy reader and writer of DER tag-length-value encodings: the one DER walker
//! of the crate, for the places where the `der` crate's owned types would copy (the encrypted
//! content, which may be hundreds of megabytes) or re-encode (signedAttrs and tbsCertificate,
//! whose signatures cover the exact bytes received).
//!
//! Input here has always been through [`crate::ber::to_der`], so only definite lengths are
//! accepted.

use const_oid::ObjectIdentifier;

use crate::error::{Error, Result};

/// Universal and context-specific tags used by CMS.
pub(crate) mod tag {
    /// INTEGER.
    pub const INTEGER: u8 = 0x02;
    /// OCTET STRING.
    pub const OCTET_STRING: u8 = 0x04;
    /// OBJECT IDENTIFIER.
    pub const OID: u8 = 0x06;
    /// SEQUENCE / SEQUENCE OF.
    pub const SEQUENCE: u8 = 0x30;
    /// SET / SET OF.
    pub const SET: u8 = 0x31;
    /// `[0]` primitive (IMPLICIT OCTET STRING encryptedContent).
    pub const CTX0_PRIM: u8 = 0x80;
    /// `[0]` constructed.
    pub const CTX0: u8 = 0xA0;
    /// `[1]` constructed.
    pub const CTX1: u8 = 0xA1;
    /// `[2]` constructed.
    pub const CTX2: u8 = 0xA2;
}
pub(crate) use tag::{CTX0, CTX1, INTEGER, OCTET_STRING, OID, SEQUENCE, SET};

/// One decoded element: its tag byte, its contents and its whole encoding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    /// The identifier octet.
    pub tag: u8,
    /// The contents octets.
    pub value: &'a [u8],
    /// The whole encoding (identifier, length and contents).
    pub raw: &'a [u8],
}

/// Read the next element from `input` and advance past it.
pub(crate) fn next<'a>(input: &mut &'a [u8], what: &'static str) -> Result<Tlv<'a>> {
    let data: &'a [u8] = input;
    let bad = |detail: &str| Error::malformed(what, detail);
    let tag = *data.first().ok_or_else(|| bad("unexpected end of data"))?;
    if tag & 0x1f == 0x1f {
        // CMS and X.509 use no tag numbers >= 31.
        return Err(bad("high tag number"));
    }
    let first = *data.get(1).ok_or_else(|| bad("truncated length"))?;
    let (len, header) = match first {
        0..=0x7f => (usize::from(first), 2usize),
        0x80 => return Err(bad("indefinite length (BER) where DER is required")),
        _ => {
            let n = usize::from(first & 0x7f);
            if n > 4 {
                return Err(bad("length too large"));
            }
            let bytes = data.get(2..2 + n).ok_or_else(|| bad("truncated length"))?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, 2 + n)
        }
    };
    let end = header
        .checked_add(len)
        .ok_or_else(|| bad("length overflow"))?;
    let raw = data
        .get(..end)
        .ok_or_else(|| bad("element extends past its container"))?;
    let value = raw.get(header..).ok_or_else(|| bad("truncated"))?;
    *input = data.get(end..).unwrap_or_default();
    Ok(Tlv { tag, value, raw })
}

/// Read the next element, which must carry `tag`.
pub(crate) fn expect<'a>(input: &mut &'a [u8], tag: u8, what: &'static str) -> Result<Tlv<'a>> {
    let t = next(input, what)?;
    if t.tag != tag {
        return Err(Error::malformed(
            what,
            format!("expected tag 0x{tag:02X}, found 0x{:02X}", t.tag),
        ));
    }
    Ok(t)
}

/// Read the next element if it carries `tag`.
pub(crate) fn optional<'a>(
    input: &mut &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<Option<Tlv<'a>>> {
    if input.first() == Some(&tag) {
        next(input, what).map(Some)
    } else {
        Ok(None)
    }
}

/// Fail if anything follows the last expected element.
pub(crate) fn finished(rest: &[u8], what: &'static str) -> Result<()> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(Error::malformed(
            what,
            "unexpected data after the last field",
        ))
    }
}

/// Every element of a SET OF / SEQUENCE OF body, at most `max` of them (`limit` names the
/// limit in the error).
pub(crate) fn elements<'a>(
    mut body: &'a [u8],
    max: usize,
    limit: &'static str,
    what: &'static str,
) -> Result<Vec<Tlv<'a>>> {
    let mut out = Vec::new();
    while !body.is_empty() {
        if out.len() >= max {
            return Err(Error::LimitExceeded {
                what: limit,
                limit: max as u64,
            });
        }
        out.push(next(&mut body, what)?);
    }
    Ok(out)
}

/// Sequential reader over concatenated TLVs.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Read the TLVs in `input`; `what` names the structure in errors.
    pub fn new(input: &'a [u8], what: &'static str) -> Self {
        Self { rest: input, what }
    }

    /// True when everything has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The tag of the next TLV, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next TLV.
    pub fn next_tlv(&mut self) -> Result<Tlv<'a>> {
        next(&mut self.rest, self.what)
    }

    /// The next TLV, which must have tag `t`.
    pub fn expect(&mut self, t: u8) -> Result<Tlv<'a>> {
        let tlv = self.next_tlv()?;
        if tlv.tag != t {
            return Err(Error::malformed(
                self.what,
                format!("expected tag {t:#04x}, found {:#04x}", tlv.tag),
            ));
        }
        Ok(tlv)
    }

    /// The next TLV if it has tag `t`.
    pub fn optional(&mut self, t: u8) -> Result<Option<Tlv<'a>>> {
        if self.peek_tag() == Some(t) {
            self.next_tlv().map(Some)
        } else {
            Ok(None)
        }
    }

    /// The next TLV, an OBJECT IDENTIFIER.
    pub fn oid(&mut self) -> Result<ObjectIdentifier> {
        let tlv = self.expect(tag::OID)?;
        ObjectIdentifier::from_bytes(tlv.value)
            .map_err(|e| Error::malformed(self.what, format!("object identifier: {e}")))
    }

    /// Error unless everything has been read.
    pub fn finish(&self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::malformed(self.what, "trailing data"))
        }
    }
}

/// Parse `input` as exactly one TLV with tag `t`.
pub(crate) fn single<'a>(input: &'a [u8], t: u8, what: &'static str) -> Result<Tlv<'a>> {
    let mut r = Reader::new(input, what);
    let tlv = r.expect(t)?;
    r.finish()?;
    Ok(tlv)
}

/// Bytes a DER header for `len` content bytes takes.
pub(crate) fn header_len(len: usize) -> usize {
    1 + match len {
        0..=0x7F => 1,
        0x80..=0xFF => 2,
        0x100..=0xFFFF => 3,
        0x1_0000..=0xFF_FFFF => 4,
        _ => 5,
    }
}

/// Bytes a whole TLV with `len` content bytes takes.
pub(crate) fn tlv_len(len: usize) -> usize {
    header_len(len) + len
}

/// Append a DER header (tag and definite length). Lengths above 2^32 - 1 are not produced:
/// callers check sizes first.
pub(crate) fn push_header(out: &mut Vec<u8>, t: u8, len: usize) {
    out.push(t);
    let bytes = (len as u64).to_be_bytes();
    match header_len(len) - 1 {
        1 => out.push(len as u8),
        n => {
            out.push(0x80 | (n as u8 - 1));
            out.extend_from_slice(&bytes[8 - (n - 1)..]);
        }
    }
}

/// Append a whole TLV.
pub(crate) fn push_tlv(out: &mut Vec<u8>, t: u8, body: &[u8]) {
    push_header(out, t, body.len());
    out.extend_from_slice(body);
}

/// Append an OBJECT IDENTIFIER.
pub(crate) fn push_oid(out: &mut Vec<u8>, oid: &ObjectIdentifier) {
    push_tlv(out, tag::OID, oid.as_bytes());
}

/// Bytes an OBJECT IDENTIFIER TLV takes.
pub(crate) fn oid_len(oid: &ObjectIdentifier) -> usize {
    tlv_len(oid.as_bytes().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_and_rejects() {
        let mut d: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x05, 0x04, 0x00];
        let t = expect(&mut d, SEQUENCE, "t").unwrap();
        assert_eq!(t.value, &[0x02, 0x01, 0x05]);
        assert_eq!(t.raw.len(), 5);
        assert!(optional(&mut d, SET, "t").unwrap().is_none());
        let o = expect(&mut d, OCTET_STRING, "t").unwrap();
        assert!(o.value.is_empty());
        assert!(d.is_empty());
        for bad in [
            &[0x30u8, 0x80, 0, 0][..],
            &[0x30, 0x05, 0],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30],
            &[0x1f, 0],
        ] {
            let mut b = bad;
            assert!(next(&mut b, "t").is_err());
        }
        let mut long: &[u8] = &[0x04, 0x81, 0x01, 0xAA];
        assert_eq!(next(&mut long, "t").unwrap().value, &[0xAA]);
        assert!(elements(&[0x05, 0x00, 0x05, 0x00], 1, "n", "t").is_err());
    }

    #[test]
    fn headers_round_trip() {
        for len in [
            0usize,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            1 << 24,
            (1 << 24) + 5,
        ] {
            let mut out = Vec::new();
            push_header(&mut out, tag::OCTET_STRING, len);
            assert_eq!(out.len(), header_len(len), "len {len}");
            out.resize(out.len() + len, 0xAB);
            let mut r = Reader::new(&out, "test");
            let tlv = r.next_tlv().unwrap();
            assert_eq!(tlv.tag, tag::OCTET_STRING);
            assert_eq!(tlv.value.len(), len);
            assert_eq!(tlv.raw.len(), out.len());
            assert!(r.is_empty());
        }
    }

    #[test]
    fn rejects_truncation_and_indefinite() {
        assert!(Reader::new(&[0x04, 0x05, 1, 2], "t").next_tlv().is_err());
        assert!(Reader::new(&[0x30, 0x80, 0, 0], "t").next_tlv().is_err());
        assert!(
            Reader::new(&[0x04, 0x84, 0xFF, 0xFF, 0xFF, 0xFF], "t")
                .next_tlv()
                .is_err()
        );
        assert!(Reader::new(&[0x04], "t").next_tlv().is_err());
        assert!(single(&[0x04, 0x00, 0x00], tag::OCTET_STRING, "t").is_err());
    }
}
