//! Content-Transfer-Encodings (RFC 2045 §6): base64 and quoted-printable, both ways.

use std::io::{self, Write};

use base64::Engine as _;
use base64::alphabet::STANDARD as STANDARD_ALPHABET;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::Result;
use crate::header::malformed;

/// Decoder that accepts missing padding and non-zero trailing bits, as mail software writes them;
/// characters outside the alphabet are still errors.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &STANDARD_ALPHABET,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Bytes per base64 line: 57 input bytes make the 76 characters of RFC 2045 §6.8.
const LINE_INPUT: usize = 57;
/// Lines [`Base64Writer`] encodes before it writes them on: large writes need no buffer of their size.
const LINES_PER_BLOCK: usize = 1024;

/// Decode a base64 body: line ends and blanks are skipped (RFC 2045 §6.8), anything else outside
/// the alphabet is an error.
///
/// Public for other containers of base64 text (the OpenPGP armor body, RFC 9580 §6): one fast
/// decoder in the workspace.
pub fn decode_base64(body: &[u8]) -> Result<Vec<u8>> {
    match decode_base64_lines(body) {
        Some(out) => Ok(out),
        None => decode_base64_general(body),
    }
}

/// The 6-bit value of each base64 character; 0xFF for every other byte.
const DECODE: [u8; 256] = {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut table = [0xFFu8; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Fast path for the shape mail software writes: lines of whole 4-character groups ended by
/// CRLF or LF, no blanks, padding only in the last group. `None` for anything else; the
/// general decoder then decides (and gives the same bytes where this one succeeds).
fn decode_base64_lines(body: &[u8]) -> Option<Vec<u8>> {
    // Written in place (no per-group capacity checks), truncated at the end.
    let mut out = vec![0u8; body.len() / 4 * 3 + 3];
    let mut pos = 0;
    let mut rest = body;
    let mut padded = false;
    while !rest.is_empty() {
        let (line, tail) = match memchr::memchr(b'\n', rest) {
            Some(i) => (rest.get(..i)?, rest.get(i + 1..)?),
            None => (rest, &[][..]),
        };
        rest = tail;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if padded || line.len() % 4 != 0 {
            return None;
        }
        let (groups, last) = if line.last() == Some(&b'=') {
            padded = true;
            let (groups, last) = line.split_at(line.len() - 4);
            (groups, Some(last))
        } else {
            (line, None)
        };
        let n = groups.len() / 4 * 3;
        let dst = out.get_mut(pos..pos + n)?;
        let mut bad = 0u8;
        for (g, d) in groups.chunks_exact(4).zip(dst.chunks_exact_mut(3)) {
            if let ([a, b, c, e], [x, y, z]) = (g, d) {
                let [a, b, c, e] = [a, b, c, e].map(|v| DECODE[usize::from(*v)]);
                bad |= a | b | c | e;
                let n = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(e);
                [_, *x, *y, *z] = n.to_be_bytes();
            }
        }
        if bad & 0x80 != 0 {
            return None;
        }
        pos += n;
        if let Some(last) = last {
            let dst = out.get_mut(pos..pos + 3)?;
            pos += LENIENT.decode_slice(last, dst).ok()?;
        }
    }
    out.truncate(pos);
    Some(out)
}

/// Any base64 body (see [`decode_base64`]).
///
/// The characters are gathered in blocks of about 64 KiB and each block decoded straight into
/// the output, so that no copy of the whole body is made.
fn decode_base64_general(body: &[u8]) -> Result<Vec<u8>> {
    const BLOCK: usize = 64 * 1024;
    let is_blank = |b: &u8| matches!(b, b'\r' | b' ' | b'\t');
    let invalid = || malformed("invalid base64 body");
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 3);
    let mut block: Vec<u8> = Vec::with_capacity(BLOCK + 128);
    // Set once a decoded block ended in padding: nothing may follow it.
    let mut padded = false;
    let mut flush = |block: &mut Vec<u8>, last: bool, padded: &mut bool| -> Result<()> {
        // Whole 4-character groups only, except at the very end.
        let take = if last { block.len() } else { block.len() & !3 };
        if take == 0 {
            return Ok(());
        }
        if *padded {
            return Err(invalid());
        }
        let group = block.get(..take).unwrap_or_default();
        *padded = group.last() == Some(&b'=');
        LENIENT.decode_vec(group, &mut out).map_err(|_| invalid())?;
        block.drain(..take);
        Ok(())
    };
    for line in lines(body) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().any(is_blank) {
            block.extend(line.iter().filter(|b| !is_blank(b)));
        } else {
            block.extend_from_slice(line);
        }
        if block.len() >= BLOCK {
            flush(&mut block, false, &mut padded)?;
        }
    }
    flush(&mut block, true, &mut padded)?;
    Ok(out)
}

/// The lines of `data`, each with its LF (the last one may have none).
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', data)
        .map(|nl| nl + 1)
        .chain((!data.is_empty()).then_some(data.len()))
        .filter_map(move |end| {
            let line = data.get(start..end).filter(|l| !l.is_empty())?;
            start = end;
            Some(line)
        })
}

/// Two base64 characters for every 12-bit value: a whole 3-byte group is two lookups.
/// A `static`, not a `const`: an unoptimised build copies a `const` array (8 KiB) onto the
/// stack at every lookup, which made debug-build base64 encoding ~10x slower.
static PAIRS: [[u8; 2]; 4096] = {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut table = [[0u8; 2]; 4096];
    let mut i = 0;
    while i < 4096 {
        table[i] = [ALPHABET[i >> 6], ALPHABET[i & 63]];
        i += 1;
    }
    table
};

/// One full line: 57 bytes to 76 characters (RFC 2045 §6.8).
fn encode_line(line: &[u8; LINE_INPUT], dst: &mut [u8; 76]) {
    for (src, dst) in line.chunks_exact(3).zip(dst.chunks_exact_mut(4)) {
        if let ([a, b, c], [w, x, y, z]) = (src, dst) {
            let n = usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c);
            [*w, *x] = PAIRS[n >> 12];
            [*y, *z] = PAIRS[n & 0xfff];
        }
    }
}

/// Append `data` base64-encoded in 76-character lines, each ended by `eol`.
pub(crate) fn encode_base64_lines(data: &[u8], eol: &[u8], out: &mut Vec<u8>) {
    // Each line is encoded straight into its place in `out`: no intermediate text.
    let start = out.len();
    let lines = data.len().div_ceil(LINE_INPUT);
    out.resize(start + lines * (76 + eol.len()), 0);
    let mut pos = start;
    let mut full = data.chunks_exact(LINE_INPUT);
    for line in &mut full {
        let dst = out
            .get_mut(pos..pos + 76)
            .and_then(|d| <&mut [u8; 76]>::try_from(d).ok());
        if let (Ok(line), Some(dst)) = (<&[u8; LINE_INPUT]>::try_from(line), dst) {
            encode_line(line, dst);
        }
        pos += 76;
        if let Some(end) = out.get_mut(pos..pos + eol.len()) {
            end.copy_from_slice(eol);
        }
        pos += eol.len();
    }
    let last = full.remainder();
    if !last.is_empty() {
        if let Some(room) = out.get_mut(pos..pos + 76) {
            pos += STANDARD.encode_slice(last, room).unwrap_or(0);
        }
        if let Some(end) = out.get_mut(pos..pos + eol.len()) {
            end.copy_from_slice(eol);
        }
        pos += eol.len();
    }
    out.truncate(pos);
}

/// Streaming base64 encoder: 76-character lines ended by CRLF (RFC 2045 §6.8), written to the
/// wrapped writer as whole lines.
///
/// ```
/// use std::io::Write;
/// let mut w = sealgate_mime::Base64Writer::new(Vec::new());
/// w.write_all(b"hello")?;
/// assert_eq!(w.finish()?, b"aGVsbG8=\r\n");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Base64Writer<W: Write> {
    inner: W,
    /// Input not yet making up a whole line (fewer than 57 bytes).
    pending: Vec<u8>,
    out: Vec<u8>,
    /// What ends each line: CRLF for MIME, LF where the container wants it (OpenPGP armor).
    eol: &'static [u8],
}

impl<W: Write> Base64Writer<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        Self::with_line_end(inner, b"\r\n")
    }

    /// Wrap `inner`, ending every line with `eol` instead of CRLF (OpenPGP armor, RFC 9580 §6,
    /// is written with LF by GnuPG and Sequoia; 76 characters is also its longest line).
    pub fn with_line_end(inner: W, eol: &'static [u8]) -> Self {
        Self {
            inner,
            pending: Vec::with_capacity(LINE_INPUT),
            out: Vec::new(),
            eol,
        }
    }

    /// The inner writer (writing to it directly bypasses the encoding).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Encode the last partial line, flush and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.pending.is_empty() {
            self.out.clear();
            encode_base64_lines(&self.pending, self.eol, &mut self.out);
            self.inner.write_all(&self.out)?;
        }
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Base64Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        self.out.clear();
        if !self.pending.is_empty() {
            let take = (LINE_INPUT - self.pending.len()).min(rest.len());
            let (head, tail) = rest.split_at(take);
            self.pending.extend_from_slice(head);
            rest = tail;
            if self.pending.len() < LINE_INPUT {
                return Ok(buf.len());
            }
            encode_base64_lines(&self.pending, self.eol, &mut self.out);
            self.pending.clear();
        }
        let whole = rest.len() - rest.len() % LINE_INPUT;
        let (lines, tail) = rest.split_at(whole);
        // In blocks, so that a large write needs no output buffer of its own size.
        for block in lines.chunks(LINE_INPUT * LINES_PER_BLOCK) {
            encode_base64_lines(block, self.eol, &mut self.out);
            self.inner.write_all(&self.out)?;
            self.out.clear();
        }
        self.inner.write_all(&self.out)?;
        self.pending.extend_from_slice(tail);
        Ok(buf.len())
    }

    /// Flushes the inner writer; a partial line stays buffered until [`Base64Writer::finish`].
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Decode a quoted-printable body (RFC 2045 §6.7). Hard line breaks come out as the bytes that
/// were in the transport (CRLF or LF); trailing blanks on a line are dropped (rule 3) and a
/// malformed `=` escape is kept literally, as the RFC recommends.
pub(crate) fn decode_quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for line in lines(body) {
        let eol_len = crate::header::line_end_len(line);
        let (content, eol) = line.split_at(line.len() - eol_len);
        let trimmed_len = content
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(0, |i| i + 1);
        let content = content.get(..trimmed_len).unwrap_or_default();
        match content.strip_suffix(b"=") {
            // Soft line break: the line continues.
            Some(content) => decode_qp_escapes(content, &mut out),
            None => {
                decode_qp_escapes(content, &mut out);
                out.extend_from_slice(eol);
            }
        }
    }
    out
}

fn decode_qp_escapes(mut s: &[u8], out: &mut Vec<u8>) {
    while let Some(eq) = memchr::memchr(b'=', s) {
        let (literal, rest) = s.split_at(eq);
        out.extend_from_slice(literal);
        match (rest.get(1).and_then(hex), rest.get(2).and_then(hex)) {
            (Some(hi), Some(lo)) => {
                out.push(hi << 4 | lo);
                s = rest.get(3..).unwrap_or_default();
            }
            _ => {
                out.push(b'=');
                s = rest.get(1..).unwrap_or_default();
            }
        }
    }
    out.extend_from_slice(s);
}

fn hex(b: &u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Quoted-printable encoding of text (RFC 2045 §6.7) with `eol` as the hard line break.
///
/// With `eol = "\r\n"` a CRLF in `data` is a line break and a lone CR or LF is escaped; with
/// `eol = "\n"` a LF is a line break and every CR is escaped. So decoding gives back `data`
/// exactly. Lines stay within 76 characters; a `-` or `From ` at the start of a line is escaped
/// so that no line can look like a MIME boundary or be mangled by mbox writers.
pub(crate) fn encode_quoted_printable(data: &[u8], eol: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let crlf = eol == b"\r\n";
    let break_at = |i: usize| -> usize {
        // Length of the hard line break starting at `i`, 0 if there is none.
        match (data.get(i), data.get(i + 1)) {
            (Some(b'\r'), Some(b'\n')) if crlf => 2,
            (Some(b'\n'), _) if !crlf => 1,
            _ => 0,
        }
    };
    out.reserve(data.len() + data.len() / 8);
    let mut line_len = 0;
    let mut i = 0;
    while let Some(&b) = data.get(i) {
        let brk = break_at(i);
        if brk > 0 {
            out.extend_from_slice(eol);
            line_len = 0;
            i += brk;
            continue;
        }
        // Fast path: copy a run of bytes that stand for themselves in one go. A blank is in the
        // run only when a byte follows that is no line end (rule 3: no trailing blanks).
        if line_len > 0 {
            let room = 75 - line_len;
            let run = data
                .get(i..)
                .unwrap_or_default()
                .iter()
                .enumerate()
                .take(room)
                .position(|(k, &c)| {
                    let plain = (33..=126).contains(&c) && c != b'=';
                    let blank_inside = (c == b' ' || c == b'\t')
                        && data
                            .get(i + k + 1)
                            .is_some_and(|n| *n != b'\r' && *n != b'\n');
                    !(plain || blank_inside)
                })
                .unwrap_or(room.min(data.len() - i));
            if run > 0 {
                out.extend_from_slice(data.get(i..i + run).unwrap_or_default());
                line_len += run;
                i += run;
                continue;
            }
        }
        let at_line_end = i + 1 == data.len() || break_at(i + 1) > 0;
        let literal = match b {
            b'=' => false,
            b' ' | b'\t' => !at_line_end,
            b'-' => line_len > 0,
            b'F' => line_len > 0 || !data.get(i..).is_some_and(|s| s.starts_with(b"From ")),
            33..=126 => true,
            _ => false,
        };
        let width = if literal { 1 } else { 3 };
        // Keep one column for the soft break's `=` (76 characters at most, rule 5).
        if line_len + width > 75 {
            out.push(b'=');
            out.extend_from_slice(eol);
            line_len = 0;
            // The new line may now start with `-` or `From `: re-decide this byte.
            continue;
        }
        if literal {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        line_len += width;
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_lenient_whitespace_strict_garbage() {
        assert_eq!(decode_base64(b"aGVs\r\nbG8=\r\n").unwrap(), b"hello");
        assert_eq!(decode_base64(b" aGVsbG8 \n").unwrap(), b"hello");
        assert_eq!(decode_base64(b"aGVsbG8").unwrap(), b"hello");
        assert!(decode_base64(b"aGVs*bG8=").is_err());
        assert!(decode_base64(b"aGVsbG8=aGVs").is_err());
    }

    #[test]
    fn base64_fast_path_agrees_with_the_general_decoder() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 29 % 256) as u8).collect();
        let cases: Vec<Vec<u8>> = [0usize, 1, 2, 3, 57, 58, 59, 1000, 10_000]
            .iter()
            .flat_map(|&n| {
                let mut crlf = Vec::new();
                encode_base64_lines(&data[..n], b"\r\n", &mut crlf);
                let mut lf = Vec::new();
                encode_base64_lines(&data[..n], b"\n", &mut lf);
                let mut no_end = crlf.clone();
                no_end.truncate(no_end.len().saturating_sub(2));
                [crlf, lf, no_end]
            })
            .collect();
        for case in &cases {
            let fast = decode_base64_lines(case).expect("regular shape");
            assert_eq!(fast, decode_base64_general(case).unwrap());
        }
        // Irregular shapes go to the general decoder.
        for odd in [
            &b"aGVs bG8=\n"[..],
            b"aGV\nsbG8=\n",
            b"aGU=\nAAAA\n",
            b"aGVs*bG8=\n",
            b"aG==",
        ] {
            let general = decode_base64_general(odd).ok();
            let fast = decode_base64_lines(odd);
            assert!(fast.is_none() || fast == general, "{odd:?}");
            assert_eq!(decode_base64(odd).ok(), general, "{odd:?}");
        }
    }

    #[test]
    fn base64_decode_in_blocks() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 256) as u8).collect();
        let mut text = Vec::new();
        encode_base64_lines(&data, b"\r\n", &mut text);
        assert_eq!(decode_base64(&text).unwrap(), data);
        // Lines of odd lengths, so that blocks do not end at group boundaries.
        let odd: Vec<u8> = text
            .iter()
            .copied()
            .filter(|b| *b != b'\r' && *b != b'\n')
            .collect::<Vec<_>>()
            .chunks(61)
            .flat_map(|l| l.iter().copied().chain(*b" \n"))
            .collect();
        assert_eq!(decode_base64(&odd).unwrap(), data);
        // Padding inside, then more text a block later: an error.
        let mut padded = b"aGVsbG8=\n".to_vec();
        padded.extend(std::iter::repeat_n(b"AAAA\n".iter().copied(), 20_000).flatten());
        assert!(decode_base64(&padded).is_err());
        // The same with the padding at the end of a 64 KiB block.
        let mut late = b"AAAA".repeat(16 * 1024 - 1);
        late.extend_from_slice(b"aGU=\nAAAA\n");
        assert!(decode_base64(&late).is_err());
        let mut ok = b"AAAA".repeat(16 * 1024 - 1);
        ok.extend_from_slice(b"aGU=\n");
        assert_eq!(decode_base64(&ok).unwrap().len(), (16 * 1024 - 1) * 3 + 2);
    }

    #[test]
    fn base64_lines_match_the_engine() {
        for len in [0usize, 1, 2, 3, 56, 57, 58, 114, 1000, 4099] {
            let data: Vec<u8> = (0..len).map(|i| (i * 151 % 256) as u8).collect();
            let mut out = Vec::new();
            encode_base64_lines(&data, b"\n", &mut out);
            let joined: Vec<u8> = out.iter().copied().filter(|&b| b != b'\n').collect();
            assert_eq!(joined, STANDARD.encode(&data).into_bytes(), "length {len}");
        }
    }

    #[test]
    fn base64_lines() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut out = Vec::new();
        encode_base64_lines(&data, b"\r\n", &mut out);
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            assert!(line.len() <= 77 && line.ends_with(b"\r"));
        }
        assert_eq!(out.split(|&b| b == b'\n').next().unwrap().len(), 77);
        assert_eq!(decode_base64(&out).unwrap(), data);
    }

    #[test]
    fn base64_writer_matches_one_shot() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut expected = Vec::new();
        encode_base64_lines(&data, b"\r\n", &mut expected);
        for step in [1usize, 5, 56, 57, 58, 1000, 65536] {
            let mut w = Base64Writer::new(Vec::new());
            for chunk in data.chunks(step) {
                w.write_all(chunk).unwrap();
            }
            assert_eq!(w.finish().unwrap(), expected, "step {step}");
        }
        assert_eq!(Base64Writer::new(Vec::new()).finish().unwrap(), b"");
    }

    #[test]
    fn base64_writer_with_lf_lines() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 13 % 251) as u8).collect();
        let mut expected = Vec::new();
        encode_base64_lines(&data, b"\n", &mut expected);
        let mut w = Base64Writer::with_line_end(Vec::new(), b"\n");
        for chunk in data.chunks(1000) {
            w.write_all(chunk).unwrap();
        }
        let out = w.finish().unwrap();
        assert_eq!(out, expected);
        assert!(!out.contains(&b'\r'));
        assert!(out.split(|&b| b == b'\n').all(|l| l.len() <= 76));
        assert_eq!(decode_base64(&out).unwrap(), data);
    }

    #[test]
    fn qp_decode() {
        assert_eq!(
            decode_quoted_printable(b"a=3Db  \r\nsoft=\r\nbreak=\nx=ZZ=4"),
            b"a=b\r\nsoftbreakx=ZZ=4"
        );
    }

    #[test]
    fn qp_round_trip() {
        let cases: [&[u8]; 6] = [
            b"",
            "Grüße \r\nline\rbare\nlf \t".as_bytes(),
            b"--boundary\r\nFrom me\r\n=\x00\xff",
            &[b'x'; 300],
            &[0xc3; 200],
            b"trailing space \r\n\r\n",
        ];
        for eol in [&b"\r\n"[..], b"\n"] {
            for case in cases {
                let mut out = Vec::new();
                encode_quoted_printable(case, eol, &mut out);
                assert!(out.iter().all(|&b| b < 128 && b != 0));
                for line in out.split(|&b| b == b'\n') {
                    assert!(line.len() <= 77);
                    assert!(!line.starts_with(b"-") && !line.starts_with(b"From "));
                }
                assert_eq!(decode_quoted_printable(&out), case, "{eol:?} {case:?}");
            }
        }
    }
}
