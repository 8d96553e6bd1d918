//! BER to DER-shaped bytes, so that the `der` crate can decode what real S/MIME software writes.
//!
//! gpgsm, Outlook and `openssl cms -stream` write CMS with indefinite lengths and with the
//! encrypted or encapsulated content split into a constructed OCTET STRING of chunks. The `der`
//! crate accepts neither, so every CMS and PKCS#12 input goes through [`to_der`] first:
//!
//! - indefinite lengths become definite, non-minimal length octets become minimal;
//! - constructed universal string types (OCTET STRING, BIT STRING, the character strings)
//!   become one primitive value with the chunks concatenated (X.690 §8.7.3, §8.21);
//! - one schema-aware rule: the `encryptedContent [0] IMPLICIT OCTET STRING` of an
//!   `EncryptedContentInfo` (RFC 5652 §6.1, also in PKCS#12 EncryptedData) is recognised by the
//!   shape of its SEQUENCE (OID, AlgorithmIdentifier, constructed `[0]` of OCTET STRINGs) and
//!   flattened to a primitive `[0]`. Without the schema an `[0] EXPLICIT OCTET STRING` with one
//!   chunk looks the same, so the rule is limited to that shape.
//!
//! SET OF values are not re-sorted: signatures over signed attributes are checked on the bytes
//! as received. The conversion is linear in time and memory, bounded by
//! [`Limits::max_asn1_depth`] and [`Limits::max_cms_bytes`], and borrows when the input is
//! already definite-length DER-shaped.

use std::borrow::Cow;

use crate::error::{Error, Result};
use sealgate_mime::Limits;

/// Convert BER to DER-shaped bytes (see the module documentation). Exactly one top-level value
/// is accepted; anything after it is an error.
pub fn to_der<'a>(input: &'a [u8], limits: &Limits) -> Result<Cow<'a, [u8]>> {
    if input.len() > limits.max_cms_bytes {
        return Err(Error::LimitExceeded {
            what: "CMS size",
            limit: limits.max_cms_bytes as u64,
        });
    }
    // Most input (everything OpenSSL writes without -stream) is already DER-shaped: check that
    // without allocating, and only build the tree when something must change.
    if der_shaped(input, 0, limits.max_asn1_depth)? == input.len() {
        return Ok(Cow::Borrowed(input));
    }
    let mut p = Parser {
        input,
        nodes: Vec::new(),
        changed: false,
        max_depth: limits.max_asn1_depth,
        max_elements: limits.max_asn1_elements,
    };
    let (root, end) = p.parse(0, 0)?;
    if end != input.len() {
        return Err(Error::malformed(
            "BER",
            format!("{} bytes after the value", input.len() - end),
        ));
    }
    if !p.changed {
        return Ok(Cow::Borrowed(input));
    }
    let total = p.encoded_len(root);
    if total > limits.max_cms_bytes {
        return Err(Error::LimitExceeded {
            what: "CMS size",
            limit: limits.max_cms_bytes as u64,
        });
    }
    let mut out = Vec::with_capacity(total);
    p.emit(root, &mut out);
    debug_assert_eq!(out.len(), total);
    Ok(Cow::Owned(out))
}

/// Walk one TLV at `pos` without allocating. Returns the position after it if it and
/// everything inside is DER-shaped (definite minimal lengths, no constructed universal string,
/// no constructed `[0]` as the third element of a SEQUENCE, which may be a chunked
/// encryptedContent), else `Ok(usize::MAX)`. Errors only where the full parser would too.
fn der_shaped(input: &[u8], pos: usize, depth_left: usize) -> Result<usize> {
    const NOT: usize = usize::MAX;
    let byte = |p: usize| {
        input
            .get(p)
            .copied()
            .ok_or_else(|| Error::malformed("BER", "truncated"))
    };
    if depth_left == 0 {
        return Ok(NOT); // let the full parser report the depth limit
    }
    let first = byte(pos)?;
    if first & 0x1f == 0x1f {
        return Ok(NOT);
    }
    let constructed = first & 0x20 != 0;
    let len_byte = byte(pos + 1)?;
    let (len, header) = if len_byte < 0x80 {
        (len_byte as usize, 2)
    } else if len_byte == 0x80 || len_byte > 0x84 {
        return Ok(NOT);
    } else {
        let n = (len_byte & 0x7f) as usize;
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | byte(pos + 2 + i)? as usize;
        }
        if length_octets(len) != 1 + n {
            return Ok(NOT);
        }
        (len, 2 + n)
    };
    let start = pos + header;
    let end = match start.checked_add(len) {
        Some(e) if e <= input.len() => e,
        _ => return Ok(NOT),
    };
    if !constructed {
        return Ok(end);
    }
    if first & 0xc0 == 0 && is_string_type(first & 0x1f) {
        return Ok(NOT);
    }
    let mut p = start;
    let mut index = 0;
    while p < end {
        if index == 2 && first == 0x30 && input.get(p) == Some(&0xa0) {
            return Ok(NOT);
        }
        p = der_shaped(input, p, depth_left - 1)?;
        if p == NOT || p > end {
            return Ok(NOT);
        }
        index += 1;
    }
    Ok(end)
}

enum Kind {
    /// Primitive value: content range in the input.
    Primitive { start: usize, end: usize },
    /// Constructed value: child node indices.
    Constructed { children: Vec<usize> },
    /// A constructed string flattened to primitive: chunk ranges in the input.
    Flattened { chunks: Vec<(usize, usize)> },
}

struct Node {
    /// The identifier octets as they appear in the input.
    tag: (usize, usize),
    /// Replacement for the first identifier octet (flattened strings lose the constructed bit).
    first_tag_byte: u8,
    kind: Kind,
    /// Length of the content in the output.
    content_len: usize,
}

struct Parser<'a> {
    input: &'a [u8],
    nodes: Vec<Node>,
    changed: bool,
    max_depth: usize,
    max_elements: usize,
}

/// Universal tag numbers whose BER encoding may be constructed (X.690 §8.7, §8.6, §8.23).
fn is_string_type(number: u8) -> bool {
    matches!(
        number,
        3 | 4 | 12 | 18 | 19 | 20 | 21 | 22 | 25 | 26 | 27 | 28 | 30
    )
}

fn length_octets(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        1 + (usize::BITS as usize / 8 - len.leading_zeros() as usize / 8)
    }
}

impl Parser<'_> {
    fn byte(&self, pos: usize) -> Result<u8> {
        self.input
            .get(pos)
            .copied()
            .ok_or_else(|| Error::malformed("BER", "truncated"))
    }

    /// Parse one TLV at `pos`; returns the node index and the position after it.
    fn parse(&mut self, pos: usize, depth: usize) -> Result<(usize, usize)> {
        if depth > self.max_depth {
            return Err(Error::LimitExceeded {
                what: "ASN.1 nesting depth",
                limit: self.max_depth as u64,
            });
        }
        let tag_start = pos;
        let first = self.byte(pos)?;
        let mut pos = pos + 1;
        if first & 0x1f == 0x1f {
            // high tag number form: base-128 digits, at most 4 octets (tag numbers we never need
            // beyond 2^28)
            let mut n = 0;
            loop {
                let b = self.byte(pos)?;
                pos += 1;
                n += 1;
                if n > 4 {
                    return Err(Error::malformed("BER", "tag number too large"));
                }
                if b & 0x80 == 0 {
                    break;
                }
            }
        }
        let tag = (tag_start, pos);
        let constructed = first & 0x20 != 0;
        let universal = first & 0xc0 == 0;
        let number = first & 0x1f;

        let len_byte = self.byte(pos)?;
        pos += 1;
        let length: Option<usize> = if len_byte == 0x80 {
            if !constructed {
                return Err(Error::malformed(
                    "BER",
                    "indefinite length on a primitive value",
                ));
            }
            self.changed = true;
            None
        } else if len_byte < 0x80 {
            Some(len_byte as usize)
        } else {
            let n = (len_byte & 0x7f) as usize;
            if n > 8 || n == 0x7f {
                return Err(Error::malformed("BER", "length too large"));
            }
            let mut len: u64 = 0;
            for _ in 0..n {
                len = (len << 8) | u64::from(self.byte(pos)?);
                pos += 1;
            }
            let len =
                usize::try_from(len).map_err(|_| Error::malformed("BER", "length too large"))?;
            if length_octets(len) != 1 + n {
                self.changed = true; // non-minimal length encoding
            }
            Some(len)
        };

        if let Some(len) = length {
            let end = pos
                .checked_add(len)
                .filter(|&e| e <= self.input.len())
                .ok_or_else(|| Error::malformed("BER", "length runs past the end of the input"))?;
            if !constructed {
                let idx = self.push(tag, first, Kind::Primitive { start: pos, end }, len)?;
                return Ok((idx, end));
            }
            let mut children = Vec::new();
            let mut p = pos;
            while p < end {
                let (c, next) = self.parse(p, depth + 1)?;
                if next > end {
                    return Err(Error::malformed("BER", "child runs past its parent"));
                }
                children.push(c);
                p = next;
            }
            let idx = self.finish_constructed(tag, first, universal, number, children)?;
            Ok((idx, end))
        } else {
            let mut children = Vec::new();
            let mut p = pos;
            loop {
                if self.byte(p)? == 0 && self.byte(p + 1)? == 0 {
                    p += 2;
                    break;
                }
                let (c, next) = self.parse(p, depth + 1)?;
                children.push(c);
                p = next;
            }
            let idx = self.finish_constructed(tag, first, universal, number, children)?;
            Ok((idx, p))
        }
    }

    fn push(
        &mut self,
        tag: (usize, usize),
        first: u8,
        kind: Kind,
        content_len: usize,
    ) -> Result<usize> {
        if self.nodes.len() >= self.max_elements {
            return Err(Error::LimitExceeded {
                what: "ASN.1 elements",
                limit: self.max_elements as u64,
            });
        }
        self.nodes.push(Node {
            tag,
            first_tag_byte: first,
            kind,
            content_len,
        });
        Ok(self.nodes.len() - 1)
    }

    fn finish_constructed(
        &mut self,
        tag: (usize, usize),
        first: u8,
        universal: bool,
        number: u8,
        children: Vec<usize>,
    ) -> Result<usize> {
        if universal && is_string_type(number) {
            // X.690 §8.7.3: a constructed string is the concatenation of its (same-typed) chunks.
            let chunks = self.collect_chunks(&children, number)?;
            self.changed = true;
            let len = chunks.iter().map(|(s, e)| e - s).sum();
            return self.push(tag, first & !0x20, Kind::Flattened { chunks }, len);
        }
        if universal && number == 16 && children.len() == 3 {
            self.flatten_encrypted_content(&children)?;
        }
        let len = children.iter().map(|&c| self.encoded_len(c)).sum();
        self.push(tag, first, Kind::Constructed { children }, len)
    }

    /// RFC 5652 §6.1 EncryptedContentInfo: SEQUENCE { OID, AlgorithmIdentifier,
    /// [0] IMPLICIT OCTET STRING } with the [0] constructed: flatten it to a primitive [0].
    fn flatten_encrypted_content(&mut self, children: &[usize]) -> Result<()> {
        let tag_byte = |n: &Node| n.first_tag_byte;
        let (a, b, c) = (children[0], children[1], children[2]);
        if tag_byte(&self.nodes[a]) != 0x06 || tag_byte(&self.nodes[b]) != 0x30 {
            return Ok(());
        }
        let node = &self.nodes[c];
        if node.first_tag_byte != 0xa0 || node.tag.1 - node.tag.0 != 1 {
            return Ok(());
        }
        let Kind::Constructed { children: inner } = &node.kind else {
            return Ok(());
        };
        let all_octets = inner.iter().all(|&i| self.nodes[i].first_tag_byte == 0x04);
        if !all_octets {
            return Ok(());
        }
        let inner = inner.clone();
        if inner
            .iter()
            .any(|&i| matches!(self.nodes[i].kind, Kind::Constructed { .. }))
        {
            return Ok(());
        }
        let mut chunks = Vec::with_capacity(inner.len());
        for i in inner {
            match &mut self.nodes[i].kind {
                Kind::Primitive { start, end } => chunks.push((*start, *end)),
                Kind::Flattened { chunks: cs } => chunks.append(cs),
                Kind::Constructed { .. } => return Ok(()),
            }
        }
        let len = chunks.iter().map(|(s, e)| e - s).sum();
        let node = &mut self.nodes[c];
        node.first_tag_byte = 0x80;
        node.kind = Kind::Flattened { chunks };
        node.content_len = len;
        self.changed = true;
        Ok(())
    }

    fn collect_chunks(&mut self, children: &[usize], number: u8) -> Result<Vec<(usize, usize)>> {
        let mut chunks = Vec::with_capacity(children.len());
        for &c in children {
            let node = &mut self.nodes[c];
            if node.first_tag_byte & 0xdf != number {
                return Err(Error::malformed(
                    "BER",
                    "constructed string with a foreign chunk",
                ));
            }
            // The child is replaced by its parent's flattened value and never emitted: move its
            // chunk list instead of copying it (nested chunked strings stay linear).
            match &mut node.kind {
                Kind::Primitive { start, end } => chunks.push((*start, *end)),
                Kind::Flattened { chunks: cs } => chunks.append(cs),
                Kind::Constructed { .. } => {
                    return Err(Error::malformed(
                        "BER",
                        "constructed string with a foreign chunk",
                    ));
                }
            }
        }
        if number == 3 && chunks.len() > 1 {
            // BIT STRING chunks each start with an unused-bits octet; only the last may be
            // non-zero. Re-assembling them needs rewriting; refuse instead (no CMS field we read
            // uses a chunked BIT STRING).
            return Err(Error::malformed("BER", "constructed BIT STRING"));
        }
        Ok(chunks)
    }

    fn encoded_len(&self, idx: usize) -> usize {
        let n = &self.nodes[idx];
        (n.tag.1 - n.tag.0) + length_octets(n.content_len) + n.content_len
    }

    fn emit(&self, idx: usize, out: &mut Vec<u8>) {
        let n = &self.nodes[idx];
        out.push(n.first_tag_byte);
        out.extend_from_slice(&self.input[n.tag.0 + 1..n.tag.1]);
        let len = n.content_len;
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        match &n.kind {
            Kind::Primitive { start, end } => out.extend_from_slice(&self.input[*start..*end]),
            Kind::Flattened { chunks } => {
                for (s, e) in chunks {
                    out.extend_from_slice(&self.input[*s..*e]);
                }
            }
            Kind::Constructed { children } => {
                for &c in children {
                    self.emit(c, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(input: &[u8]) -> Result<Vec<u8>> {
        to_der(input, &Limits::default()).map(|c| c.into_owned())
    }

    #[test]
    fn der_input_is_borrowed() {
        let der = [0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xaa];
        assert!(matches!(
            to_der(&der, &Limits::default()).unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn indefinite_lengths_become_definite() {
        let ber = [
            0x30, 0x80, 0x02, 0x01, 0x05, 0x30, 0x80, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(
            conv(&ber).unwrap(),
            [0x30, 0x07, 0x02, 0x01, 0x05, 0x30, 0x02, 0x05, 0x00]
        );
    }

    #[test]
    fn constructed_octet_string_is_flattened() {
        let ber = [
            0x24, 0x80, 0x04, 0x02, 1, 2, 0x24, 0x03, 0x04, 0x01, 3, 0x04, 0x00, 0x00, 0x00,
        ];
        assert_eq!(conv(&ber).unwrap(), [0x04, 0x03, 1, 2, 3]);
    }

    #[test]
    fn encrypted_content_info_implicit_octets_flattened() {
        // SEQUENCE { OID 1.2, SEQUENCE { OID 1.2 }, [0] constructed { 04 01 aa, 04 01 bb } }
        let ber = [
            0x30, 0x80, 0x06, 0x01, 0x2a, 0x30, 0x03, 0x06, 0x01, 0x2a, 0xa0, 0x80, 0x04, 0x01,
            0xaa, 0x04, 0x01, 0xbb, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(
            conv(&ber).unwrap(),
            [
                0x30, 0x0c, 0x06, 0x01, 0x2a, 0x30, 0x03, 0x06, 0x01, 0x2a, 0x80, 0x02, 0xaa, 0xbb
            ]
        );
    }

    #[test]
    fn explicit_octet_string_is_kept() {
        // EncapsulatedContentInfo: SEQUENCE { OID, [0] EXPLICIT OCTET STRING }: two children.
        let ber = [
            0x30, 0x80, 0x06, 0x01, 0x2a, 0xa0, 0x80, 0x04, 0x01, 0xaa, 0, 0, 0, 0,
        ];
        assert_eq!(
            conv(&ber).unwrap(),
            [0x30, 0x08, 0x06, 0x01, 0x2a, 0xa0, 0x03, 0x04, 0x01, 0xaa]
        );
    }

    #[test]
    fn long_and_non_minimal_lengths() {
        let mut ber = vec![0x04, 0x83, 0x00, 0x01, 0x00];
        ber.extend(std::iter::repeat_n(7u8, 256));
        let der = conv(&ber).unwrap();
        assert_eq!(&der[..4], &[0x04, 0x82, 0x01, 0x00]);
        assert_eq!(der.len(), 4 + 256);
        let big: Vec<u8> = [0x04, 0x82, 0x01, 0x2c]
            .into_iter()
            .chain(std::iter::repeat_n(1u8, 300))
            .collect();
        assert!(matches!(
            to_der(&big, &Limits::default()).unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x02, 0x01],
            &[0x30, 0x80, 0x02, 0x01, 0x05], // missing end-of-contents
            &[0x04, 0x80, 0x00, 0x00],       // indefinite primitive
            &[0x02, 0x01, 0x05, 0x00],       // trailing byte
            &[0x04, 0x89, 1, 1, 1, 1, 1, 1, 1, 1, 1], // 9 length octets
            &[0x04, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // huge
            &[0x24, 0x80, 0x02, 0x01, 0x05, 0x00, 0x00], // foreign chunk
            &[0x1f, 0x81, 0x81, 0x81, 0x81, 0x01, 0x00], // tag number too large
        ] {
            assert!(conv(bad).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn depth_bomb_is_bounded() {
        let mut ber = Vec::new();
        for _ in 0..10_000 {
            ber.extend_from_slice(&[0x30, 0x80]);
        }
        for _ in 0..10_000 {
            ber.extend_from_slice(&[0x00, 0x00]);
        }
        assert!(matches!(conv(&ber), Err(Error::LimitExceeded { .. })));
    }

    #[test]
    fn element_count_is_bounded() {
        // nested chunked strings with many empty chunks (a memory bomb for a naive converter)
        let mut ber = Vec::new();
        for _ in 0..60 {
            ber.extend_from_slice(&[0x24, 0x80]);
        }
        for _ in 0..200_000 {
            ber.extend_from_slice(&[0x04, 0x00]);
        }
        for _ in 0..60 {
            ber.extend_from_slice(&[0x00, 0x00]);
        }
        let mut limits = Limits::default();
        limits.max_asn1_elements = 100_000;
        assert!(matches!(
            to_der(&ber, &limits),
            Err(Error::LimitExceeded { .. })
        ));
        // within the limit it converts, linearly
        limits.max_asn1_elements = 1 << 20;
        assert_eq!(to_der(&ber, &limits).unwrap().as_ref(), &[0x04, 0x00]);
    }

    #[test]
    fn large_der_takes_the_fast_path() {
        // a DER SEQUENCE of a million NULLs: borrowed without building a tree, even with a
        // small element limit
        let n = 1_000_000;
        let mut der = vec![0x30, 0x83];
        der.extend_from_slice(&((2 * n) as u32).to_be_bytes()[1..]);
        for _ in 0..n {
            der.extend_from_slice(&[0x05, 0x00]);
        }
        let mut limits = Limits::default();
        limits.max_asn1_elements = 10;
        assert!(matches!(to_der(&der, &limits).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn size_limit() {
        let mut limits = Limits::default();
        limits.max_cms_bytes = 4;
        assert!(to_der(&[0x04, 0x03, 1, 2, 3], &limits).is_err());
    }
}
