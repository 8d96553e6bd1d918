//! A multipart body read as a stream (RFC 2046 §5.1), for messages too large to hold: one line
//! at a time (a long line in pieces of at most [`LINE_PIECE`] bytes), delimiter lines told
//! apart as [`Entity::parts`](crate::Entity::parts) tells them, a part's body handed on as a
//! [`Read`]er that holds back the line break before the next delimiter (it belongs to the
//! delimiter).
//!
//! Used by the streaming S/MIME and PGP/MIME readers (`multipart/signed`,
//! `multipart/encrypted`); what stays in memory is one line piece and what the caller asks
//! to gather (a part's header block, a small part), each with a bound it gives.
//!
//! ```
//! use std::io::Read;
//! use sealgate_mime::multipart::{Delimiter, MultipartReader, PartBody};
//! let body = b"preamble\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nsecond\r\n--b--\r\n";
//! let mut parts = MultipartReader::new(&body[..], b"b".to_vec());
//! assert_eq!(parts.skip_preamble().unwrap(), Some(Delimiter::Open));
//! let mut first = PartBody::new(parts, Vec::new(), false);
//! let mut text = Vec::new();
//! first.read_to_end(&mut text).unwrap();
//! assert_eq!(text, b"Content-Type: text/plain\r\n\r\nhello");
//! assert_eq!(first.ended_by(), Some(Delimiter::Open));
//! let (second, end) = first.into_parts().read_part(1024).unwrap().unwrap();
//! assert_eq!((&second[..], end), (&b"second"[..], Some(Delimiter::Close)));
//! ```

use std::io::{self, BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Longest piece of a line read at once: longer lines are read in pieces (a delimiter line is
/// always short, so only a piece that starts a line can be one).
pub const LINE_PIECE: usize = 64 * 1024;

/// What [`MultipartReader::part_header`] read: the header block, the delimiter that ended the
/// part before its header did (if one did), and whether the part ended (by a delimiter or
/// the end of the input) before an empty line.
pub type PartHeader = (Vec<u8>, Option<Delimiter>, bool);

/// What a delimiter line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delimiter {
    /// `--boundary`: a part follows.
    Open,
    /// `--boundary--`: the last part has ended.
    Close,
}

/// Is `line` (with its line end) a delimiter line for `boundary`? `--boundary` then optional
/// transport padding, or `--boundary--` (anything after it tolerated), as
/// [`Entity::parts`](crate::Entity::parts) reads it.
pub fn delimiter(line: &[u8], boundary: &[u8]) -> Option<Delimiter> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    if rest.starts_with(b"--") {
        return Some(Delimiter::Close);
    }
    rest.iter()
        .all(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .then_some(Delimiter::Open)
}

/// A multipart body read one line (or one [`LINE_PIECE`] of a long line) at a time.
pub struct MultipartReader<R: BufRead> {
    r: R,
    boundary: Vec<u8>,
    /// The current line or piece, with its line end.
    line: Vec<u8>,
    /// The current piece starts a line.
    piece_starts_line: bool,
    /// The next piece starts a line (the current one ended with LF).
    at_line_start: bool,
}

impl<R: BufRead> std::fmt::Debug for MultipartReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultipartReader")
            .field("boundary", &String::from_utf8_lossy(&self.boundary))
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> MultipartReader<R> {
    /// Read the multipart body `r` (what follows the header block's empty line), whose
    /// Content-Type names `boundary`.
    pub fn new(r: R, boundary: Vec<u8>) -> Self {
        Self {
            r,
            boundary,
            line: Vec::with_capacity(256),
            piece_starts_line: true,
            at_line_start: true,
        }
    }

    /// The next line or piece (see [`line`](Self::line)); `Ok(None)` at the end of the input,
    /// else whether it is a delimiter line.
    pub fn next_line(&mut self) -> io::Result<Option<Option<Delimiter>>> {
        self.piece_starts_line = self.at_line_start;
        self.line.clear();
        let n = self
            .r
            .by_ref()
            .take(LINE_PIECE as u64)
            .read_until(b'\n', &mut self.line)?;
        if n == 0 {
            return Ok(None);
        }
        self.at_line_start = self.line.ends_with(b"\n");
        Ok(Some(if self.piece_starts_line {
            delimiter(&self.line, &self.boundary)
        } else {
            None
        }))
    }

    /// The line or piece [`next_line`](Self::next_line) read, with its line end if it has one.
    pub fn line(&self) -> &[u8] {
        &self.line
    }

    /// True when the current piece starts a line.
    pub fn piece_starts_line(&self) -> bool {
        self.piece_starts_line
    }

    /// True when the next piece starts a line (the current one ended with its line end).
    pub fn at_line_start(&self) -> bool {
        self.at_line_start
    }

    /// Skip the preamble, up to and including the first delimiter line, and say which it was
    /// (`None`: the input ended without one).
    pub fn skip_preamble(&mut self) -> io::Result<Option<Delimiter>> {
        loop {
            match self.next_line()? {
                None => return Ok(None),
                Some(Some(d)) => return Ok(Some(d)),
                Some(None) => {}
            }
        }
    }

    /// The rest of the current part, whole (header and body), through the delimiter line
    /// that ends it, which is returned too (`None`: the input ended, and the part with it, its
    /// last line end kept). `Ok(None)` when the part is longer than `max` bytes (the caller
    /// reports its own limit, as with [`read_header_block`](crate::read_header_block)).
    pub fn read_part(&mut self, max: usize) -> io::Result<Option<(Vec<u8>, Option<Delimiter>)>> {
        let mut part = Vec::new();
        loop {
            match self.next_line()? {
                None => return Ok(Some((part, None))),
                Some(Some(d)) => {
                    // The line break before the delimiter is part of the delimiter.
                    strip_line_end(&mut part);
                    return Ok(Some((part, Some(d))));
                }
                Some(None) => {
                    if part.len() + self.line.len() > max {
                        return Ok(None);
                    }
                    part.extend_from_slice(&self.line);
                }
            }
        }
    }

    /// The header block of the current part, through its empty line; what follows is the
    /// part's body. A part that ends before its header does is returned whole, with the
    /// delimiter that ended it (`None` at the end of the input) and `true` for "ended".
    /// `Ok(None)` when the header block is longer than `max` bytes.
    pub fn part_header(&mut self, max: usize) -> io::Result<Option<PartHeader>> {
        let mut head = Vec::with_capacity(1024);
        loop {
            match self.next_line()? {
                None => return Ok(Some((head, None, true))),
                Some(Some(d)) => return Ok(Some((head, Some(d), true))),
                Some(None) => {
                    if head.len() + self.line.len() > max {
                        return Ok(None);
                    }
                    head.extend_from_slice(&self.line);
                    if self.piece_starts_line && (self.line == b"\r\n" || self.line == b"\n") {
                        return Ok(Some((head, None, false)));
                    }
                }
            }
        }
    }
}

/// Remove one line end (CRLF or LF) from the end of `data`.
fn strip_line_end(data: &mut Vec<u8>) {
    if data.ends_with(b"\r\n") {
        data.truncate(data.len() - 2);
    } else if data.ends_with(b"\n") {
        data.truncate(data.len() - 1);
    }
}

/// The rest of a part as a reader: its lines up to the delimiter that ends it (the line break
/// before the delimiter belongs to the delimiter, RFC 2046 §5.1.1). Without a close delimiter
/// the part runs to the end of the input, its last line end included, as mail readers take it.
/// [`ended_by`](Self::ended_by) says what ended it.
pub struct PartBody<R: BufRead> {
    parts: MultipartReader<R>,
    /// Bytes ready to be read, from `pos` on.
    ready: Vec<u8>,
    pos: usize,
    /// The line end of the last line, held until the next line shows it is not a delimiter.
    held_eol: &'static [u8],
    done: bool,
    ended_by: Option<Delimiter>,
    /// Set when a delimiter opened a further part (for a reader moved into another library's
    /// reader, which cannot be asked afterwards).
    open_flag: Option<Arc<AtomicBool>>,
}

impl<R: BufRead> std::fmt::Debug for PartBody<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartBody")
            .field("done", &self.done)
            .field("ended_by", &self.ended_by)
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> PartBody<R> {
    /// The part's body from where `parts` stands. `start` is read first (what a header parse
    /// left as body); `done`: the part has ended already and `start` is all of it.
    pub fn new(parts: MultipartReader<R>, start: Vec<u8>, done: bool) -> Self {
        Self {
            parts,
            ready: start,
            pos: 0,
            held_eol: b"",
            done,
            ended_by: None,
            open_flag: None,
        }
    }

    /// Also set `flag` when the part is ended by a delimiter that opens a further part.
    pub fn with_open_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.open_flag = Some(flag);
        self
    }

    /// The delimiter that ended the part, once it was read (`None` before, and when the input
    /// ended without one).
    pub fn ended_by(&self) -> Option<Delimiter> {
        self.ended_by
    }

    /// The line break before the delimiter that ended the part (it belongs to the
    /// delimiter, so it was not read as part of the body); empty before the part has ended
    /// and when the input ended without one. With [`MultipartReader::line`] after
    /// [`into_parts`](Self::into_parts), what lies between the part and the next.
    pub fn held_line_end(&self) -> &'static [u8] {
        if self.ended_by.is_some() {
            self.held_eol
        } else {
            b""
        }
    }

    /// The multipart reader, standing after the delimiter that ended the part.
    pub fn into_parts(self) -> MultipartReader<R> {
        self.parts
    }

    /// The next line into `ready`; false at the end of the part.
    fn advance(&mut self) -> io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        self.ready.clear();
        self.pos = 0;
        match self.parts.next_line()? {
            None => {
                self.done = true;
                self.ready.extend_from_slice(self.held_eol);
                Ok(!self.ready.is_empty())
            }
            Some(Some(d)) => {
                self.done = true;
                self.ended_by = Some(d);
                if d == Delimiter::Open
                    && let Some(flag) = &self.open_flag
                {
                    flag.store(true, Ordering::Relaxed);
                }
                Ok(false)
            }
            Some(None) => {
                self.ready.extend_from_slice(self.held_eol);
                let line = &self.parts.line;
                let (text, eol): (&[u8], &'static [u8]) =
                    if let Some(t) = line.strip_suffix(b"\r\n") {
                        (t, b"\r\n")
                    } else if let Some(t) = line.strip_suffix(b"\n") {
                        (t, b"\n")
                    } else {
                        (line, b"")
                    };
                self.ready.extend_from_slice(text);
                self.held_eol = eol;
                Ok(true)
            }
        }
    }
}

impl<R: BufRead> Read for PartBody<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        // Fill `buf` with as many lines as fit.
        while n < buf.len() {
            if self.pos >= self.ready.len() && !self.advance()? {
                break;
            }
            let avail = self.ready.get(self.pos..).unwrap_or_default();
            let k = avail.len().min(buf.len() - n);
            if let (Some(dst), Some(src)) = (buf.get_mut(n..n + k), avail.get(..k)) {
                dst.copy_from_slice(src);
            }
            self.pos += k;
            n += k;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entity, Limits};

    /// Every part as the streaming reader sees it, and as `Entity::parts` does.
    fn both(body: &[u8]) -> (Vec<Vec<u8>>, Option<Vec<Vec<u8>>>) {
        let mut parts = MultipartReader::new(body, b"XyZ".to_vec());
        let mut streamed = Vec::new();
        if parts.skip_preamble().unwrap() == Some(Delimiter::Open) {
            loop {
                let mut pb = PartBody::new(parts, Vec::new(), false);
                let mut p = Vec::new();
                pb.read_to_end(&mut p).unwrap();
                streamed.push(p);
                if pb.ended_by() != Some(Delimiter::Open) {
                    break;
                }
                parts = pb.into_parts();
            }
        }
        let eol: &[u8] = if body.windows(2).any(|w| w == b"\r\n") {
            b"\r\n"
        } else {
            b"\n"
        };
        let mut msg = b"Content-Type: multipart/mixed; boundary=XyZ".to_vec();
        msg.extend_from_slice(eol);
        msg.extend_from_slice(eol);
        msg.extend_from_slice(body);
        let limits = Limits::default();
        let one_shot = Entity::parse(&msg, &limits)
            .ok()
            .and_then(|e| e.parts(&limits).ok())
            .map(|ps| ps.iter().map(|p| p.raw().to_vec()).collect());
        (streamed, one_shot)
    }

    #[test]
    fn parts_match_the_one_shot_parse() {
        let long = "x".repeat(LINE_PIECE * 2 + 5);
        for body in [
            "--XyZ\r\nA: b\r\n\r\none\r\n--XyZ\r\n\r\ntwo\r\n--XyZ--\r\n".to_string(),
            "pre\n--XyZ \t\nA: b\n\none\n\n--XyZ\n\ntwo\n--XyZ--\nepilogue".to_string(),
            format!("--XyZ\r\n\r\n{long}\r\n--XyZ\r\n\r\n{long}--XyZ\r\n\r\nz\r\n--XyZ--"),
            "--XyZ\r\n\r\n--XyZy\r\n--XyZ--".to_string(),
            "--XyZ\r\n\r\nno close\r\n".to_string(),
        ] {
            let (streamed, one_shot) = both(body.as_bytes());
            assert_eq!(Some(streamed), one_shot, "{body:?}");
        }
    }

    #[test]
    fn bounds_are_kept() {
        let body = b"--b\r\nA: b\r\n\r\n0123456789\r\n--b--";
        let mut parts = MultipartReader::new(&body[..], b"b".to_vec());
        parts.skip_preamble().unwrap();
        assert!(parts.part_header(4).unwrap().is_none());
        let mut parts = MultipartReader::new(&body[..], b"b".to_vec());
        parts.skip_preamble().unwrap();
        assert!(parts.read_part(12).unwrap().is_none());
        let mut parts = MultipartReader::new(&body[..], b"b".to_vec());
        parts.skip_preamble().unwrap();
        let (head, end, ended) = parts.part_header(100).unwrap().unwrap();
        assert_eq!((&head[..], end, ended), (&b"A: b\r\n\r\n"[..], None, false));
        let (rest, end) = parts.read_part(12).unwrap().unwrap();
        assert_eq!(
            (&rest[..], end),
            (&b"0123456789"[..], Some(Delimiter::Close))
        );
    }
}
