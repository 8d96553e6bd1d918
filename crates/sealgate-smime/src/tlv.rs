//! A minimal DER TLV walker. Used where the exact encoded bytes of a field matter (the
//! signedAttrs of a SignerInfo, the tbsCertificate of a certificate) and a decode/re-encode
//! round trip through `der` types could change them (SET OF values are re-sorted on decode).

use crate::error::{Error, Result};

/// One DER element: its tag byte, its contents and the whole encoding (tag, length, contents).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

/// Universal SEQUENCE, constructed.
pub(crate) const SEQUENCE: u8 = 0x30;
/// Universal SET, constructed.
pub(crate) const SET: u8 = 0x31;
/// Universal OCTET STRING, primitive.
pub(crate) const OCTET_STRING: u8 = 0x04;
/// Universal INTEGER.
pub(crate) const INTEGER: u8 = 0x02;
/// Universal OBJECT IDENTIFIER.
pub(crate) const OID: u8 = 0x06;
/// `[0]` constructed (context-specific).
pub(crate) const CTX0: u8 = 0xA0;
/// `[1]` constructed (context-specific).
pub(crate) const CTX1: u8 = 0xA1;

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
}
