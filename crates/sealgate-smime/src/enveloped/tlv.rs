//! A minimal zero-copy reader and writer of DER tag-length-value headers.
//!
//! The `der` crate's owned types copy every OCTET STRING; for the encrypted content (which may be
//! hundreds of megabytes) we want a slice of the input instead. Input here has always been
//! through [`crate::ber::to_der`], so only definite lengths are accepted.

use const_oid::ObjectIdentifier;

use crate::error::{Error, Result};

/// Universal and context-specific tags used by EnvelopedData.
pub(crate) mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OID: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
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

/// One decoded TLV: its tag byte, its contents and the whole encoding.
#[derive(Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub body: &'a [u8],
    pub raw: &'a [u8],
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
        let bad = |d: &str| Error::malformed(self.what, d.to_string());
        let (&t, after_tag) = self.rest.split_first().ok_or_else(|| bad("truncated"))?;
        if t & 0x1F == 0x1F {
            return Err(bad("high tag numbers are not used here"));
        }
        let (&l0, mut after_len) = after_tag.split_first().ok_or_else(|| bad("truncated"))?;
        let len = if l0 < 0x80 {
            usize::from(l0)
        } else {
            let n = usize::from(l0 & 0x7F);
            if n == 0 {
                return Err(bad("indefinite length"));
            }
            if n > 4 {
                return Err(bad("length too large"));
            }
            let (len_bytes, rest) = after_len
                .split_at_checked(n)
                .ok_or_else(|| bad("truncated"))?;
            after_len = rest;
            len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        let (body, rest) = after_len
            .split_at_checked(len)
            .ok_or_else(|| bad("truncated"))?;
        let header_len = self.rest.len() - after_len.len();
        let raw = self
            .rest
            .get(..header_len + len)
            .ok_or_else(|| bad("truncated"))?;
        self.rest = rest;
        Ok(Tlv { tag: t, body, raw })
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
        ObjectIdentifier::from_bytes(tlv.body)
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
            assert_eq!(tlv.body.len(), len);
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
