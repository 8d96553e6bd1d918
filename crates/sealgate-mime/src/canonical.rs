//! Canonical line ends (RFC 5652 §5.4 / RFC 8551 §3.1.1: MIME entities are signed with CRLF).

use std::borrow::Cow;
use std::io::{self, Write};

/// A header field's raw bytes (name, value, folds, line end) ready to be written with CRLF
/// line ends: a bare CR inside it becomes a space first. The parser ends a field only at LF, so
/// a CR there is part of the value; written as a line end (what [`canonicalize_crlf`] would do)
/// it would start a new header field the sender never wrote (header injection, e.g.
/// `Subject: x\rBcc: y`). LF (folds and the field's end) becomes CRLF as usual.
pub(crate) fn canonical_field(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 8);
    for (i, &b) in raw.iter().enumerate() {
        match b {
            b'\r' if raw.get(i + 1) == Some(&b'\n') => out.push(b'\r'),
            b'\r' => out.push(b' '),
            b'\n' => {
                if !out.ends_with(b"\r") {
                    out.push(b'\r');
                }
                out.push(b'\n');
            }
            _ => out.push(b),
        }
    }
    out
}

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

/// Whether every CR is followed by LF and every LF preceded by CR (then
/// [`canonicalize_crlf`] borrows).
pub fn is_canonical(data: &[u8]) -> bool {
    let mut rest = data;
    while let Some(i) = memchr::memchr2(b'\r', b'\n', rest) {
        match rest.get(i..) {
            Some([b'\r', b'\n', after @ ..]) => rest = after,
            _ => return false,
        }
    }
    true
}

/// Streaming [`canonicalize_crlf`]: bare LF and bare CR become CRLF on the way to the inner
/// writer, whatever the write boundaries (a CR at the end of one write waits for the next).
/// Runs of already canonical text are passed through in one write.
///
/// ```
/// use std::io::Write;
/// let mut w = sealgate_mime::CanonicalWriter::new(Vec::new());
/// w.write_all(b"a\nb\r")?;
/// w.write_all(b"\nc\r")?;
/// assert_eq!(w.finish()?, b"a\r\nb\r\nc\r\n");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct CanonicalWriter<W: Write> {
    inner: W,
    /// The last byte written was a CR whose successor is not known yet.
    pending_cr: bool,
}

impl<W: Write> CanonicalWriter<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            pending_cr: false,
        }
    }

    /// The inner writer (writing to it directly bypasses the conversion).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// End a trailing CR with LF, flush and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if self.pending_cr {
            self.inner.write_all(b"\r\n")?;
        }
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for CanonicalWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        if self.pending_cr {
            self.pending_cr = false;
            self.inner.write_all(b"\r\n")?;
            if let [b'\n', after @ ..] = rest {
                rest = after;
            }
        }
        // `rest[..scan]` is canonical and not yet written.
        let mut scan = 0;
        while let Some(i) = rest
            .get(scan..)
            .and_then(|tail| memchr::memchr2(b'\r', b'\n', tail))
            .map(|i| i + scan)
        {
            let (text, tail) = rest.split_at(i);
            match tail {
                [b'\r', b'\n', ..] => {
                    scan = i + 2;
                    continue;
                }
                [b'\r'] => {
                    self.inner.write_all(text)?;
                    self.pending_cr = true;
                    return Ok(buf.len());
                }
                [_, after @ ..] => {
                    self.inner.write_all(text)?;
                    self.inner.write_all(b"\r\n")?;
                    rest = after;
                    scan = 0;
                }
                [] => break,
            }
        }
        self.inner.write_all(rest)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Read a header block from `input`: up to and including its empty line (or all there is, when
/// the input ends first), at most `max` bytes (`Ok(None)` past that). For the streaming
/// readers, which take the header into memory and the body in steps.
pub fn read_header_block(input: &mut impl io::BufRead, max: usize) -> io::Result<Option<Vec<u8>>> {
    use io::{BufRead as _, Read as _};
    let mut head = Vec::with_capacity(4096);
    loop {
        let start = head.len();
        let room = (max + 1).saturating_sub(start) as u64;
        let n = input.by_ref().take(room).read_until(b'\n', &mut head)?;
        if n == 0 {
            return Ok(Some(head));
        }
        let line = head.get(start..).unwrap_or_default();
        if line == b"\n" || line == b"\r\n" {
            return Ok(Some(head));
        }
        if head.len() > max {
            return Ok(None);
        }
    }
}

/// Where the header block ends in `head` (just after its empty line, LF or CRLF), looking at
/// new bytes from `from` on (for a block gathered piece by piece); `None` while it has not.
pub fn header_block_end(head: &[u8], from: usize) -> Option<usize> {
    match head {
        [b'\n', ..] => return Some(1),
        [b'\r', b'\n', ..] => return Some(2),
        _ => {}
    }
    let start = from.saturating_sub(2);
    let tail = head.get(start..)?;
    tail.iter().enumerate().find_map(|(i, &b)| {
        let at = start + i;
        if b != b'\n' {
            return None;
        }
        match head.get(at + 1..)? {
            [b'\n', ..] => Some(at + 2),
            [b'\r', b'\n', ..] => Some(at + 3),
            _ => None,
        }
    })
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

    #[test]
    fn writer_matches_one_shot() {
        let data: Vec<u8> = (0..5000u32)
            .map(|i| match i * 7919 % 13 {
                0 | 1 => b'\r',
                2 | 3 => b'\n',
                _ => b'a' + (i % 26) as u8,
            })
            .collect();
        let expected = canonicalize_crlf(&data).into_owned();
        for step in [1usize, 2, 3, 7, 64, 5000] {
            let mut w = CanonicalWriter::new(Vec::new());
            for chunk in data.chunks(step) {
                w.write_all(chunk).unwrap();
            }
            assert_eq!(w.finish().unwrap(), expected, "step {step}");
        }
        let mut w = CanonicalWriter::new(Vec::new());
        w.write_all(b"\r").unwrap();
        w.write_all(b"\r").unwrap();
        w.write_all(b"\n").unwrap();
        assert_eq!(w.finish().unwrap(), b"\r\n\r\n");
    }
}
