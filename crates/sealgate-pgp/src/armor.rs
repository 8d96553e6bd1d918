//! ASCII armor (RFC 9580 §6; RFC 4880 §6) for OpenPGP messages, on sealgate-mime's base64.
//!
//! Sequoia's armor filter was a large share of the PGP/MIME time (both ways); the base64 here
//! is the workspace's one fast encoder and decoder, and the CRC-24 is computed eight octets at
//! a time.

use std::io::{self, Write};

use sealgate_mime::Base64Writer;

/// RFC 9580 §6.1: CRC-24 initial value and generator.
const CRC24_INIT: u32 = 0x00B7_04CE;
const CRC24_POLY: u32 = 0x0186_4CFB;

/// Slicing-by-8 tables for CRC-24, kept in the top 24 bits of a `u32` (so that it shifts like a
/// CRC-32 without reflection). `TABLES[k][b]`: the register after `b` and then `k` zero octets.
const TABLES: [[u32; 256]; 8] = {
    let poly = CRC24_POLY << 8;
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 0x8000_0000 != 0 {
                (r << 1) ^ poly
            } else {
                r << 1
            };
            bit += 1;
        }
        t[0][i] = r;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev << 8) ^ t[0][(prev >> 24) as usize];
            i += 1;
        }
        k += 1;
    }
    t
};

/// The running CRC-24 of RFC 9580 §6.1.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Crc24(u32);

impl Crc24 {
    pub(crate) fn new() -> Self {
        Crc24(CRC24_INIT << 8)
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        let t = &TABLES;
        let mut r = self.0;
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let (a, b) = c.split_at(4);
            let a = r ^ u32::from_be_bytes([a[0], a[1], a[2], a[3]]);
            let b = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            r = t[7][(a >> 24) as usize]
                ^ t[6][(a >> 16 & 0xff) as usize]
                ^ t[5][(a >> 8 & 0xff) as usize]
                ^ t[4][(a & 0xff) as usize]
                ^ t[3][(b >> 24) as usize]
                ^ t[2][(b >> 16 & 0xff) as usize]
                ^ t[1][(b >> 8 & 0xff) as usize]
                ^ t[0][(b & 0xff) as usize];
        }
        for &byte in chunks.remainder() {
            r = (r << 8) ^ t[0][((r >> 24) ^ u32::from(byte)) as usize];
        }
        self.0 = r;
    }

    /// The three checksum octets.
    pub(crate) fn finish(self) -> [u8; 3] {
        let [a, b, c, _] = self.0.to_be_bytes();
        [a, b, c]
    }
}

const BEGIN_MESSAGE: &[u8] = b"-----BEGIN PGP MESSAGE-----";
const END_MESSAGE: &[u8] = b"-----END PGP MESSAGE-----";

/// Writes an armored `PGP MESSAGE` block: header line, blank line, base64 body in 76-character
/// lines, the CRC-24 line (RFC 4880 §6.1; RFC 9580 makes it optional, GnuPG 2.2 expects it),
/// footer line. `eol` ends every line (LF as GnuPG writes it, or CRLF for PGP/MIME).
pub(crate) struct ArmorWriter<W: Write> {
    body: Base64Writer<W>,
    crc: Crc24,
    eol: &'static [u8],
}

impl<W: Write> ArmorWriter<W> {
    pub(crate) fn new(mut inner: W, eol: &'static [u8]) -> io::Result<Self> {
        inner.write_all(BEGIN_MESSAGE)?;
        inner.write_all(eol)?;
        inner.write_all(eol)?;
        Ok(ArmorWriter {
            body: Base64Writer::with_line_end(inner, eol),
            crc: Crc24::new(),
            eol,
        })
    }

    pub(crate) fn finish(self) -> io::Result<W> {
        let mut inner = self.body.finish()?;
        let crc = self.crc.finish();
        let mut line = Vec::with_capacity(8);
        line.push(b'=');
        let mut b64 = Base64Writer::with_line_end(&mut line, b"");
        b64.write_all(&crc)?;
        b64.finish()?;
        inner.write_all(&line)?;
        inner.write_all(self.eol)?;
        inner.write_all(END_MESSAGE)?;
        inner.write_all(self.eol)?;
        inner.flush()?;
        Ok(inner)
    }
}

impl<W: Write> Write for ArmorWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.crc.update(buf);
        self.body.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.body.flush()
    }
}

/// Decodes an armored `PGP MESSAGE` block in the shape GnuPG, Sequoia and we write it: BEGIN
/// line, armor header lines (`Key: value`), a blank line, base64 lines, an optional `=` CRC
/// line (not checked, see below), the END line. `None` for anything else (other block kinds, a missing
/// blank line, bad base64 or CRC); the caller then leaves the input to Sequoia's tolerant
/// reader, so this is only a fast path and never decides what is valid.
pub(crate) fn dearmor_message(text: &[u8]) -> Option<Vec<u8>> {
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    let mut rest = text.get(start..)?.strip_prefix(BEGIN_MESSAGE)?;
    rest = strip_eol(rest)?;
    // Armor headers up to the blank line (RFC 9580 §6.2).
    loop {
        let (line, tail) = split_line(rest)?;
        rest = tail;
        if line.is_empty() {
            break;
        }
        if !line.windows(2).any(|w| w == b": ") {
            return None;
        }
    }
    let end = memchr::memmem::find(rest, END_MESSAGE)?;
    let (body, _footer) = rest.split_at(end);
    // The last non-empty line may be the checksum: `=` and four base64 characters.
    let trimmed = body.trim_ascii_end();
    let last_start = trimmed
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let last = trimmed.get(last_start..)?.trim_ascii();
    // RFC 9580 §6.1: a reader "MUST NOT reject an OpenPGP object when the CRC24 footer is
    // present, missing, malformed, or disagrees"; integrity comes from the MDC or AEAD tag and
    // the signatures. So the checksum is skipped, not computed.
    let data_text = match last.strip_prefix(b"=") {
        Some(_crc) => trimmed.get(..last_start)?,
        None => trimmed,
    };
    let data = sealgate_mime::decode_base64(data_text).ok()?;
    (!data.is_empty()).then_some(data)
}

/// One line without its LF or CRLF, and what follows it.
fn split_line(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = memchr::memchr(b'\n', data)?;
    let (line, tail) = data.split_at(i);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some((line.trim_ascii_end(), tail.get(1..)?))
}

fn strip_eol(data: &[u8]) -> Option<&[u8]> {
    let data = data.trim_ascii_start_blanks();
    data.strip_prefix(b"\r\n")
        .or_else(|| data.strip_prefix(b"\n"))
}

trait TrimBlanks {
    fn trim_ascii_start_blanks(&self) -> &Self;
}

impl TrimBlanks for [u8] {
    /// Trailing spaces and tabs after the BEGIN line are tolerated, as by GnuPG.
    fn trim_ascii_start_blanks(&self) -> &[u8] {
        let n = self
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        self.get(n..).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc24_bitwise(data: &[u8]) -> u32 {
        let mut crc = CRC24_INIT;
        for &b in data {
            crc ^= u32::from(b) << 16;
            for _ in 0..8 {
                crc <<= 1;
                if crc & 0x0100_0000 != 0 {
                    crc ^= CRC24_POLY;
                }
            }
        }
        crc & 0x00ff_ffff
    }

    fn crc(data: &[u8]) -> u32 {
        let mut c = Crc24::new();
        c.update(data);
        let [a, b, d] = c.finish();
        u32::from_be_bytes([0, a, b, d])
    }

    #[test]
    fn crc24_matches_the_rfc_definition() {
        assert_eq!(crc(b""), 0xB704CE);
        // The common check value of CRC-24/OPENPGP.
        assert_eq!(crc(b"123456789"), 0x21CF02);
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 256) as u8).collect();
        for n in [1, 7, 8, 9, 63, 64, 65, 4999] {
            assert_eq!(crc(&data[..n]), crc24_bitwise(&data[..n]), "{n}");
        }
        // Split updates give the same result.
        let mut c = Crc24::new();
        c.update(&data[..13]);
        c.update(&data[13..]);
        assert_eq!(c.finish(), Crc24(crc(&data) << 8).finish());
    }

    #[test]
    fn armor_round_trip_and_sequoia_reads_it() {
        use std::io::Read;
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let eols: [&'static [u8]; 2] = [b"\n", b"\r\n"];
        for eol in eols {
            let mut w = ArmorWriter::new(Vec::new(), eol).unwrap();
            for c in data.chunks(999) {
                w.write_all(c).unwrap();
            }
            let text = w.finish().unwrap();
            assert!(text.starts_with(b"-----BEGIN PGP MESSAGE-----"));
            assert!(text.ends_with(&[END_MESSAGE, eol].concat()));
            assert_eq!(dearmor_message(&text).unwrap(), data);
            // The checksum line is the RFC's CRC-24 of the data.
            let s = String::from_utf8(text.clone()).unwrap();
            let crc_line = s.lines().rev().nth(1).unwrap().trim_end();
            let crc = sealgate_mime::decode_base64(&crc_line.as_bytes()[1..]).unwrap();
            assert_eq!(crc, crc24_bitwise(&data).to_be_bytes()[1..]);
            // Sequoia's reader reads it.
            let mut r = sequoia_openpgp::armor::Reader::from_bytes(
                &text,
                sequoia_openpgp::armor::ReaderMode::VeryTolerant,
            );
            let mut back = Vec::new();
            r.read_to_end(&mut back).unwrap();
            assert_eq!(back, data);
        }
    }

    #[test]
    fn dearmor_reads_sequoia_armor_and_refuses_odd_shapes() {
        use sequoia_openpgp::armor::{Kind, Writer};
        let data: Vec<u8> = (0..3000u32).map(|i| (i % 256) as u8).collect();
        let mut w = Writer::with_headers(Vec::new(), Kind::Message, [("Comment", "x")]).unwrap();
        w.write_all(&data).unwrap();
        let text = w.finalize().unwrap();
        assert_eq!(dearmor_message(&text).unwrap(), data);
        // A wrong CRC is not a reason to refuse (RFC 9580 §6.1); another block kind or no
        // blank line are not for the fast path.
        let s = String::from_utf8(text.clone()).unwrap();
        let crc_line = s.lines().rev().nth(1).unwrap().to_owned();
        if crc_line.starts_with('=') {
            let bad = s.replace(&crc_line, "=AAAA");
            assert_eq!(dearmor_message(bad.as_bytes()).unwrap(), data);
        }
        let other = s.replace("PGP MESSAGE", "PGP SIGNATURE");
        assert!(dearmor_message(other.as_bytes()).is_none());
        let no_blank = s.replacen("Comment: x\n\n", "", 1);
        assert!(dearmor_message(no_blank.as_bytes()).is_none());
        assert!(dearmor_message(b"").is_none());
        assert!(dearmor_message(b"-----BEGIN PGP MESSAGE-----\n\n").is_none());
    }
}
