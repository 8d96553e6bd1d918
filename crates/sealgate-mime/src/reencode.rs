//! Re-encoding a message as it streams through, for the streaming signers and encryptors of
//! sealgate-smime and sealgate-pgp, which take only what needs no re-encoding.
//!
//! [`reencode`] reads a whole message and writes it again with the same changes the in-memory
//! walk makes ([`make_seven_bit`](crate::make_seven_bit) and
//! [`split_for_protection`](crate::split_for_protection)): every leaf whose body cannot
//! travel as it is (8-bit bytes, NUL, bare CR or LF, lines over 998 bytes) and that has no
//! base64 or quoted-printable encoding yet is written as quoted-printable (`text/*`) or base64
//! (anything else), and with [`Reencode::SevenBit`] the 8-bit `Content-*` parameters and
//! descriptions become RFC 2231 / RFC 2047 text. Multipart structure (boundaries, preambles,
//! epilogues) and everything else passes through byte for byte, so a message that needs no
//! change comes out unchanged.
//!
//! Whether a leaf needs re-encoding is known only at its end, and its
//! Content-Transfer-Encoding field comes before it: a leaf body of up to 1 MiB is held in
//! memory, a larger one is written to an unnamed temporary file in the caller's spill
//! directory (gone when closed, or when the process dies; at most
//! [`Limits::max_spill_bytes`]) and read back from there. Memory stays bounded whatever the
//! message size: one header block (at most [`MAX_HEADER_BLOCK`]), one leaf buffer and the
//! coding steps.
//!
//! ```
//! use sealgate_mime::{Limits, reencode::{Reencode, reencode}};
//! let msg = "Subject: café\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDéjà vu\r\n";
//! let mut out = Vec::new();
//! reencode(msg.as_bytes(), &mut out, Reencode::SevenBit, &std::env::temp_dir(), &Limits::default())?;
//! assert_eq!(
//!     out,
//!     "Subject: café\r\nContent-Type: text/plain; charset=utf-8\r\n\
//!      Content-Transfer-Encoding: quoted-printable\r\n\r\nD=C3=A9j=C3=A0 vu\r\n".as_bytes()
//! );
//! # Ok::<(), sealgate_mime::Error>(())
//! ```

use std::borrow::Cow;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use crate::entity::{Entity, line_ending_of};
use crate::header::malformed;
use crate::multipart::{Delimiter, MultipartReader, PartBody};
use crate::protect::{has_bare_line_end, needs_encoding, seven_bit_field};
use crate::{Base64Writer, CanonicalWriter, Error, Limits, Result, canonicalize_crlf, transfer};

/// Largest header block of one entity held while re-encoding.
pub const MAX_HEADER_BLOCK: usize = 1024 * 1024;

/// A leaf body up to this size is looked at in memory; a larger one goes through a temporary
/// file.
const IN_MEMORY: usize = 1024 * 1024;

/// Bytes read from a spilled leaf at a time; for base64, a whole number of 57-byte lines.
const STEP: usize = 57 * 4096;

/// What [`reencode`] re-encodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reencode {
    /// Everything that is not 7-bit safe, as a detached signature needs (RFC 8551 §3.1.2,
    /// RFC 3156 §5): the entity a streaming signer then signs is the one
    /// [`split_for_protection_parts`](crate::split_for_protection_parts) with `seven_bit`
    /// gives. The top-level fields other than `Content-*` are left as they are (they are the
    /// outer fields, which the signature does not cover).
    SevenBit,
    /// Only non-text leaves that canonical CRLF line ends would corrupt (a bare CR, or a bare
    /// LF in a message written with CRLF), as encryption needs: what
    /// [`split_for_protection`](crate::split_for_protection) re-encodes. Text passes through
    /// unread.
    LineEnds,
}

/// Copy the message `input` to `out`, re-encoded as `what` says (see the
/// [module documentation](self)); returns the number of bytes written. Large leaves go
/// through an unnamed temporary file in `spill_dir`.
///
/// Errors: a malformed structure (a multipart body without its boundary delimiter), a limit
/// (`max_parts`, `max_mime_depth`, a header block over [`MAX_HEADER_BLOCK`], a leaf over
/// `max_spill_bytes`), or I/O on either side (a write error of `out` is passed on as
/// [`Error::Io`], its inner error intact). `out` then holds an incomplete message.
pub fn reencode<R: BufRead, W: Write>(
    mut input: R,
    out: W,
    what: Reencode,
    spill_dir: &Path,
    limits: &Limits,
) -> Result<u64> {
    let mut out = Counting { inner: out, n: 0 };
    let mut walk = Walk {
        limits,
        what,
        spill_dir,
        eol: b"\r\n",
        count: 0,
    };
    walk.entity(&mut input, &mut out, 0)?;
    out.flush()?;
    Ok(out.n)
}

/// Counts what goes through to the wrapped writer.
struct Counting<W: Write> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct Walk<'l> {
    limits: &'l Limits,
    what: Reencode,
    spill_dir: &'l Path,
    /// The line end of the message: that of its first line.
    eol: &'static [u8],
    /// Entities seen so far (`max_parts`).
    count: usize,
}

impl Walk<'_> {
    /// One entity, read to its end from `r`.
    fn entity(&mut self, r: &mut dyn BufRead, out: &mut dyn Write, depth: usize) -> Result<()> {
        self.count += 1;
        if self.count > self.limits.max_parts {
            return Err(Error::LimitExceeded {
                what: "MIME part count",
                limit: self.limits.max_parts as u64,
            });
        }
        let head = crate::read_header_block(&mut &mut *r, MAX_HEADER_BLOCK)?.ok_or(
            Error::LimitExceeded {
                what: "header block",
                limit: MAX_HEADER_BLOCK as u64,
            },
        )?;
        if depth == 0 {
            self.eol = line_ending_of(&head);
        }
        let entity = Entity::parse_at(&head, self.limits, depth)?;
        let ct = entity.content_type();
        let identity = matches!(
            entity.transfer_encoding().as_deref(),
            None | Some("7bit" | "8bit" | "binary")
        );
        // What followed a line that ended the header block early is the start of the body.
        let mut body = io::Cursor::new(entity.body()).chain(r);
        let fields = match self.what {
            Reencode::SevenBit => self.seven_bit_fields(&entity, depth),
            Reencode::LineEnds => None,
        };

        if ct.is_multipart() {
            if depth + 1 > self.limits.max_mime_depth {
                return Err(Error::LimitExceeded {
                    what: "MIME depth",
                    limit: self.limits.max_mime_depth as u64,
                });
            }
            let boundary = ct
                .param("boundary")
                .filter(|b| !b.is_empty())
                .ok_or_else(|| malformed("multipart without boundary parameter"))?;
            self.write_head(out, &entity, fields.as_deref(), None)?;
            return self.multipart(&mut body, out, boundary.as_bytes(), depth);
        }
        if ct.mime_type == "message/rfc822" && identity {
            self.write_head(out, &entity, fields.as_deref(), None)?;
            return self.entity(&mut body, out, depth + 1);
        }
        // Encoded bodies are never re-encoded; with LineEnds, text is canonicalised as it is.
        if !identity || (self.what == Reencode::LineEnds && ct.is_text()) {
            self.write_head(out, &entity, fields.as_deref(), None)?;
            io::copy(&mut body, out)?;
            return Ok(());
        }
        self.leaf(&mut body, out, &entity, fields.as_deref(), ct.is_text())
    }

    /// The header fields with their 7-bit forms, `None` when none changes. At the top level
    /// only the `Content-*` fields are looked at.
    fn seven_bit_fields<'e>(
        &self,
        entity: &Entity<'e>,
        depth: usize,
    ) -> Option<Vec<Cow<'e, [u8]>>> {
        if entity.header_block().is_ascii() {
            return None;
        }
        let converted: Vec<Option<Vec<u8>>> = entity
            .headers()
            .iter()
            .map(|f| {
                (depth > 0 || f.is_mime_field())
                    .then(|| seven_bit_field(f, self.eol))
                    .flatten()
            })
            .collect();
        converted.iter().any(Option::is_some).then(|| {
            entity
                .headers()
                .iter()
                .zip(converted)
                .map(|(f, c)| c.map_or(Cow::Borrowed(f.raw), Cow::Owned))
                .collect()
        })
    }

    /// The header block: as it was, or rewritten with `fields` and a new
    /// Content-Transfer-Encoding (as the in-memory walk writes it).
    fn write_head(
        &self,
        out: &mut dyn Write,
        entity: &Entity<'_>,
        fields: Option<&[Cow<'_, [u8]>]>,
        new_cte: Option<&str>,
    ) -> io::Result<()> {
        if fields.is_none() && new_cte.is_none() {
            return out.write_all(entity.header_block());
        }
        let mut head = Vec::with_capacity(entity.header_block().len() + 64);
        for (i, field) in entity.headers().iter().enumerate() {
            if new_cte.is_some() && field.is_named("Content-Transfer-Encoding") {
                continue;
            }
            let raw = fields
                .and_then(|f| f.get(i))
                .map_or(field.raw, |c| c.as_ref());
            head.extend_from_slice(raw);
            if !raw.ends_with(b"\n") {
                head.extend_from_slice(self.eol);
            }
        }
        if let Some(cte) = new_cte {
            head.extend_from_slice(b"Content-Transfer-Encoding: ");
            head.extend_from_slice(cte.as_bytes());
            head.extend_from_slice(self.eol);
        }
        head.extend_from_slice(self.eol);
        out.write_all(&head)
    }

    /// A multipart body: preamble, delimiter lines and epilogue as they are, each part walked.
    fn multipart(
        &mut self,
        body: &mut dyn BufRead,
        out: &mut dyn Write,
        boundary: &[u8],
        depth: usize,
    ) -> Result<()> {
        let mut parts = MultipartReader::new(body, boundary.to_vec());
        loop {
            match parts.next_line()? {
                None => return Err(malformed("multipart body without boundary delimiter")),
                Some(None) => out.write_all(parts.line())?,
                Some(Some(d)) => {
                    out.write_all(parts.line())?;
                    if d == Delimiter::Close {
                        return copy_rest(&mut parts, out);
                    }
                    break;
                }
            }
        }
        loop {
            let mut part = PartBody::new(parts, Vec::new(), false);
            {
                let mut reader = BufReader::with_capacity(64 * 1024, &mut part);
                self.entity(&mut reader, out, depth + 1)?;
                // Every branch reads its entity to the end; make sure nothing is left behind.
                io::copy(&mut reader, out)?;
            }
            let ended = part.ended_by();
            let held = part.held_line_end();
            parts = part.into_parts();
            match ended {
                // The input ended inside the part (no close delimiter): it ran to the end.
                None => return Ok(()),
                Some(d) => {
                    out.write_all(held)?;
                    out.write_all(parts.line())?;
                    if d == Delimiter::Close {
                        return copy_rest(&mut parts, out);
                    }
                }
            }
        }
    }

    /// A leaf with an identity encoding: looked at whole (in memory, or in a temporary file
    /// when large), then written as it is or re-encoded.
    ///
    /// The in-memory walk canonicalises before its 7-bit pass, so with
    /// [`Reencode::SevenBit`] a leaf is judged (and quoted-printable written) by its canonical
    /// form, except that a non-text leaf with bare line ends is taken in base64 as it is (the
    /// in-memory line-end pass does that first). With [`Reencode::LineEnds`] only the latter.
    fn leaf(
        &self,
        body: &mut dyn BufRead,
        out: &mut dyn Write,
        entity: &Entity<'_>,
        fields: Option<&[Cow<'_, [u8]>]>,
        text: bool,
    ) -> Result<()> {
        let seven_bit = self.what == Reencode::SevenBit;
        let mut first = Vec::with_capacity(8192);
        body.take(IN_MEMORY as u64 + 1).read_to_end(&mut first)?;
        if first.len() <= IN_MEMORY {
            let raw_b64 = !text && has_bare_line_end(&first, self.eol);
            let canonical = canonicalize_crlf(&first);
            let coded = if raw_b64 {
                Some(Coded::Base64(&first[..]))
            } else if seven_bit && needs_encoding(&canonical, b"\r\n") {
                Some(match text {
                    true => Coded::Qp(&canonical[..]),
                    false => Coded::Base64(&canonical[..]),
                })
            } else {
                None
            };
            self.write_head(out, entity, fields, coded.as_ref().map(Coded::name))?;
            let mut buf = Vec::new();
            match coded {
                None => out.write_all(&first)?,
                Some(Coded::Base64(data)) => {
                    transfer::encode_base64_lines(data, b"\r\n", &mut buf);
                    out.write_all(&buf)?;
                }
                Some(Coded::Qp(data)) => {
                    transfer::encode_quoted_printable(data, b"\r\n", &mut buf);
                    out.write_all(&buf)?;
                }
            }
            return Ok(());
        }

        // Large: the body into an unnamed temporary file (text canonical, as it is judged and
        // encoded; anything else as it is), both checks made on the way.
        let file = BufWriter::with_capacity(STEP, tempfile::tempfile_in(self.spill_dir)?);
        let mut spill = Spill {
            file: match text {
                true => Target::Canonical(CanonicalWriter::new(file)),
                false => Target::Raw(file),
            },
            canonical_scan: CanonicalWriter::new(Scan::new(true, seven_bit)),
            raw_scan: Scan::new(self.eol == b"\r\n", false),
            total: 0,
            max: self.limits.max_spill_bytes,
        };
        spill.write_all(&first)?;
        drop(first);
        io::copy(body, &mut spill).map_err(|e| match e.downcast::<Error>() {
            Ok(limit) => limit,
            Err(e) => Error::Io(e),
        })?;
        let Spill {
            file,
            canonical_scan,
            raw_scan,
            ..
        } = spill;
        let needs = canonical_scan.finish()?.needs();
        let raw_b64 = !text && raw_scan.needs();
        let file = match file {
            Target::Canonical(w) => w.finish()?,
            Target::Raw(w) => w,
        };
        let name = if raw_b64 || (seven_bit && needs && !text) {
            Some("base64")
        } else if seven_bit && needs {
            Some("quoted-printable")
        } else {
            None
        };
        self.write_head(out, entity, fields, name)?;
        let mut file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.rewind()?;
        let mut file = BufReader::with_capacity(STEP, file);
        match name {
            None => {
                io::copy(&mut file, out)?;
            }
            Some("quoted-printable") => encode_qp_stream(&mut file, out)?,
            Some(_) if raw_b64 => {
                let mut w = Base64Writer::new(&mut *out);
                io::copy(&mut file, &mut w)?;
                w.finish()?;
            }
            Some(_) => {
                let mut w = CanonicalWriter::new(Base64Writer::new(&mut *out));
                io::copy(&mut file, &mut w)?;
                w.finish()?.finish()?;
            }
        }
        Ok(())
    }
}

/// A leaf body to be written re-encoded.
enum Coded<'a> {
    Base64(&'a [u8]),
    Qp(&'a [u8]),
}

impl Coded<'_> {
    fn name(&self) -> &'static str {
        match self {
            Coded::Base64(_) => "base64",
            Coded::Qp(_) => "quoted-printable",
        }
    }
}

/// Where a large leaf goes on its way in: the temporary file and the two checks, bounded by
/// `max_spill_bytes`.
struct Spill {
    file: Target,
    /// The 7-bit check (or, for LineEnds, nothing: see [`Scan::new`]) of the canonical form.
    canonical_scan: CanonicalWriter<Scan>,
    /// The bare-line-end check of the body as it is (for non-text leaves).
    raw_scan: Scan,
    total: u64,
    max: u64,
}

/// The temporary file of a large leaf: text canonical, anything else as it is.
enum Target {
    Canonical(CanonicalWriter<BufWriter<std::fs::File>>),
    Raw(BufWriter<std::fs::File>),
}

impl Write for Spill {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.total += buf.len() as u64;
        if self.total > self.max {
            return Err(io::Error::other(Error::LimitExceeded {
                what: "part size (spill file)",
                limit: self.max,
            }));
        }
        self.canonical_scan.write_all(buf)?;
        self.raw_scan.write_all(buf)?;
        match &mut self.file {
            Target::Canonical(w) => w.write_all(buf)?,
            Target::Raw(w) => w.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Target::Canonical(w) => w.flush(),
            Target::Raw(w) => w.flush(),
        }
    }
}

/// The rest of a multipart body after its close delimiter (the epilogue), as it is.
fn copy_rest(parts: &mut MultipartReader<&mut dyn BufRead>, out: &mut dyn Write) -> Result<()> {
    while parts.next_line()?.is_some() {
        out.write_all(parts.line())?;
    }
    Ok(())
}

/// Fill `buf` from `r` as far as the input goes; the number of bytes read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(buf.get_mut(n..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Quoted-printable from a reader, in steps that end after a hard line break, so that each is
/// encoded as the whole would be; a line longer than a step is cut by a soft line break.
fn encode_qp_stream(r: &mut impl BufRead, out: &mut dyn Write) -> io::Result<()> {
    let (eol, crlf): (&[u8], bool) = (b"\r\n", true);
    let mut data: Vec<u8> = Vec::with_capacity(2 * STEP);
    let mut coded = Vec::with_capacity(2 * STEP);
    loop {
        let start = data.len();
        data.resize(start + STEP, 0);
        let n = fill(r, data.get_mut(start..).unwrap_or_default())?;
        data.truncate(start + n);
        coded.clear();
        if n == 0 {
            // The end: the rest as the last line.
            transfer::encode_quoted_printable(&data, eol, &mut coded);
            return out.write_all(&coded);
        }
        // After the last hard line break (LF, or CRLF in a CRLF message).
        let cut = memchr::memrchr_iter(b'\n', &data)
            .find(|&i| !crlf || (i > 0 && data.get(i - 1) == Some(&b'\r')))
            .map(|i| i + 1);
        match cut {
            Some(cut) => {
                transfer::encode_quoted_printable(
                    data.get(..cut).unwrap_or_default(),
                    eol,
                    &mut coded,
                );
                data.drain(..cut);
            }
            None if data.len() >= STEP => {
                // One long line: a soft break, keeping a CR that may start a CRLF.
                let keep = usize::from(crlf && data.last() == Some(&b'\r'));
                let cut = data.len() - keep;
                transfer::encode_quoted_printable(
                    data.get(..cut).unwrap_or_default(),
                    eol,
                    &mut coded,
                );
                coded.push(b'=');
                coded.extend_from_slice(eol);
                data.drain(..cut);
            }
            None => continue,
        }
        out.write_all(&coded)?;
    }
}

/// Whether a body streamed through needs re-encoding: `needs_encoding` (with `seven_bit`) or
/// `has_bare_line_end` (without) of the in-memory walk, one write at a time.
struct Scan {
    crlf: bool,
    /// 8-bit bytes, NUL and long lines count too.
    seven_bit: bool,
    /// The last byte was a CR.
    cr: bool,
    /// Bytes of the current line, line end and CR not counted.
    line: usize,
    bad: bool,
}

impl Scan {
    /// `crlf`: the body is written with CRLF line ends (a bare LF is then a bare line end).
    fn new(crlf: bool, seven_bit: bool) -> Self {
        Self {
            crlf,
            seven_bit,
            cr: false,
            line: 0,
            bad: false,
        }
    }

    fn feed(&mut self, data: &[u8]) {
        if self.bad {
            return;
        }
        if self.seven_bit && data.iter().any(|&b| b == 0 || b >= 128) {
            self.bad = true;
            return;
        }
        let mut rest = data;
        while !rest.is_empty() {
            let Some(i) = memchr::memchr2(b'\r', b'\n', rest) else {
                // A run without CR or LF only makes the line longer.
                self.bad |= self.cr;
                self.line += rest.len();
                break;
            };
            // A CR followed by anything but LF is bare.
            if self.cr && (i > 0 || rest.get(i) == Some(&b'\r')) {
                self.bad = true;
                return;
            }
            self.line += i;
            if rest.get(i) == Some(&b'\n') {
                if (self.crlf && !self.cr) || (self.seven_bit && self.line > 998) {
                    self.bad = true;
                    return;
                }
                self.cr = false;
                self.line = 0;
            } else {
                self.cr = true;
            }
            rest = rest.get(i + 1..).unwrap_or_default();
        }
        self.bad |= self.seven_bit && self.line > 998;
    }

    /// The verdict once the body has ended (a CR at its very end is bare).
    fn needs(&self) -> bool {
        self.bad || self.cr
    }
}

impl Write for Scan {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.feed(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{make_seven_bit, split_for_protection, split_for_protection_parts};
    use proptest::prelude::*;

    fn run(raw: &[u8], what: Reencode) -> Vec<u8> {
        let mut out = Vec::new();
        let n = reencode(
            raw,
            &mut out,
            what,
            &std::env::temp_dir(),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(n, out.len() as u64);
        out
    }

    /// The entity the in-memory signer signs, and the one a streaming signer signs after
    /// `reencode` (its `Content-*` fields and body, canonical).
    fn signed_entities(raw: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let limits = Limits::default();
        let parts = split_for_protection_parts(raw, &limits, true).unwrap();
        let one_shot = [&parts.header[..], &parts.body[..]].concat();
        let streamed = run(raw, Reencode::SevenBit);
        let (_, inner) = split_for_protection(&streamed, &limits).unwrap();
        // What the streaming signer signs must be 7-bit already.
        assert!(
            make_seven_bit(&inner, &limits).unwrap().as_ref() == &inner[..],
            "not 7-bit after reencode"
        );
        (one_shot, inner)
    }

    fn encrypted_entities(raw: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let limits = Limits::default();
        let (_, one_shot) = split_for_protection(raw, &limits).unwrap();
        let streamed = run(raw, Reencode::LineEnds);
        let (_, inner) = split_for_protection(&streamed, &limits).unwrap();
        (one_shot, inner)
    }

    const MIXED: &[u8] = b"From: a@example.org\r\nSubject: caf\xc3\xa9\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
D\xc3\xa9j\xc3\xa0 vu  \r\nline two\r\n--b1\r\n\
Content-Type: application/octet-stream; name=\"d\xc3\xa9.bin\"\r\n\r\n\x00\x01\r\x02\n\xff\r\n\
--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: text/plain\r\n\r\n\
\xe2\x82\xac\r\n--b1\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n\
aGVsbG8=\r\n--b1--\r\nepilogue\r\n";

    #[test]
    fn same_entity_as_the_in_memory_signer() {
        let (one, streamed) = signed_entities(MIXED);
        assert_eq!(
            String::from_utf8_lossy(&one),
            String::from_utf8_lossy(&streamed)
        );
        assert!(streamed.is_ascii());
        // the already-encoded part and the structure are untouched
        assert!(streamed.windows(8).any(|w| w == b"aGVsbG8="));
        assert!(streamed.ends_with(b"--b1--\r\nepilogue\r\n"));
    }

    #[test]
    fn same_entity_as_the_in_memory_encryptor() {
        let (one, streamed) = encrypted_entities(MIXED);
        assert_eq!(one, streamed);
        // text stays 8-bit, the binary part became base64
        assert!(streamed.windows(6).any(|w| w == "Déjà".as_bytes()));
        assert!(streamed.windows(6).any(|w| w == b"base64"));
    }

    #[test]
    fn unchanged_message_comes_out_unchanged() {
        let msg = b"Subject: x\r\nContent-Type: multipart/alternative; boundary=z\r\n\r\n--z\r\n\
Content-Type: text/plain\r\n\r\nplain\r\n--z\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--z--\r\n";
        assert_eq!(run(msg, Reencode::SevenBit), msg);
        assert_eq!(run(msg, Reencode::LineEnds), msg);
        let lf = b"Subject: x\n\nplain\nlines\n";
        assert_eq!(run(lf, Reencode::SevenBit), lf);
    }

    #[test]
    fn large_leaves_go_through_the_spill_file() {
        // 3 MiB of 8-bit text (QP in steps), 3 MiB of binary (base64 in steps), 2 MiB that
        // needs nothing (copied back), and a 1.5 MiB line without a break.
        let mut text = Vec::new();
        while text.len() < 3 << 20 {
            text.extend_from_slice("Grüße aus Köln, ligne très longue = ok \t\r\n".as_bytes());
        }
        let binary: Vec<u8> = (0..3u32 << 20)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let mut plain = Vec::new();
        while plain.len() < 2 << 20 {
            plain.extend_from_slice(b"all ascii here\r\n");
        }
        let long_line = vec![b'x'; 3 << 19];
        let mut msg = b"Subject: big\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n".to_vec();
        for (ct, body) in [
            ("text/plain; charset=utf-8", &text),
            ("application/octet-stream", &binary),
            ("text/plain", &plain),
            ("text/plain", &long_line),
        ] {
            msg.extend_from_slice(format!("--B\r\nContent-Type: {ct}\r\n\r\n").as_bytes());
            msg.extend_from_slice(body);
            msg.extend_from_slice(b"\r\n");
        }
        msg.extend_from_slice(b"--B--\r\n");
        let streamed = run(&msg, Reencode::SevenBit);
        let limits = Limits {
            max_message_bytes: 64 << 20,
            ..Limits::default()
        };
        let (_, inner) = split_for_protection(&streamed, &limits).unwrap();
        assert!(inner.is_ascii());
        // Every part decodes back to what it was.
        let entity = Entity::parse(&streamed, &limits).unwrap();
        let parts = entity.parts(&limits).unwrap();
        assert_eq!(parts.len(), 4);
        for (part, want) in parts.iter().zip([&text, &binary, &plain, &long_line]) {
            assert_eq!(&part.decoded_body(&limits).unwrap(), want);
            assert!(
                part.raw().split(|&b| b == b'\n').all(|l| l.len() <= 78),
                "long line"
            );
        }
        // Up to the long line (cut by soft breaks where the in-memory walk cuts elsewhere),
        // the same bytes as the in-memory walk.
        let one_shot = make_seven_bit(&msg, &limits).unwrap();
        let at = |m: &[u8]| m.windows(4).rposition(|w| w == b"--B\r").unwrap();
        assert_eq!(&streamed[..at(&streamed)], &one_shot[..at(&one_shot)]);
    }

    #[test]
    fn limits_and_malformed_structure() {
        let dir = std::env::temp_dir();
        let limits = Limits {
            max_spill_bytes: 2 << 20,
            ..Limits::default()
        };
        let mut msg = b"Content-Type: application/octet-stream\r\n\r\n".to_vec();
        msg.resize(3 << 20, 0xff);
        let err = reencode(&msg[..], io::sink(), Reencode::SevenBit, &dir, &limits).unwrap_err();
        assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");

        let no_delim = b"Content-Type: multipart/mixed; boundary=q\r\n\r\nnothing here\r\n";
        let err = reencode(
            &no_delim[..],
            io::sink(),
            Reencode::SevenBit,
            &dir,
            &Limits::default(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err}");

        let mut deep = Vec::new();
        for i in 0..100 {
            deep.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        let err = reencode(
            &deep[..],
            io::sink(),
            Reencode::SevenBit,
            &dir,
            &Limits::default(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
    }

    #[test]
    fn a_failing_writer_is_reported() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let err = reencode(
            MIXED,
            Full,
            Reencode::SevenBit,
            &std::env::temp_dir(),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Io(e) if e.to_string() == "disk full"),
            "{err}"
        );
    }

    fn leaf_body() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                Just(b"\r\n".to_vec()),
                Just(b"\n".to_vec()),
                Just(b"\r".to_vec()),
                Just(b" ".to_vec()),
                Just(b"=".to_vec()),
                Just("é".as_bytes().to_vec()),
                Just(vec![0u8]),
                Just(b"--b\r\n".to_vec()),
                proptest::collection::vec(b'a'..=b'z', 1..40),
            ],
            0..40,
        )
        .prop_map(|v| v.concat())
    }

    /// `s` with its LF line ends written as `eol`.
    fn lines(msg: &mut Vec<u8>, s: &str, eol: &[u8]) {
        for (i, line) in s.split('\n').enumerate() {
            if i > 0 {
                msg.extend_from_slice(eol);
            }
            msg.extend_from_slice(line.as_bytes());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Streamed and in-memory walks give the same signed and encrypted entities.
        #[test]
        fn streamed_equals_in_memory(
            crlf in any::<bool>(),
            parts in proptest::collection::vec((any::<bool>(), any::<bool>(), any::<bool>(), leaf_body()), 1..4),
            single in any::<bool>(),
        ) {
            let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
            let mut msg = Vec::new();
            lines(&mut msg, "From: a@example.org\nSubject: t\n", eol);
            let part_head = |msg: &mut Vec<u8>, text: bool, eight: bool, described: bool| {
                lines(msg, if text { "Content-Type: text/plain; charset=utf-8\n" } else { "Content-Type: application/x-y\n" }, eol);
                if eight {
                    lines(msg, "Content-Transfer-Encoding: 8bit\n", eol);
                }
                if described {
                    msg.extend_from_slice("Content-Description: d\u{e9}j\u{e0}".as_bytes());
                    msg.extend_from_slice(eol);
                }
                msg.extend_from_slice(eol);
            };
            if single {
                let (text, eight, described, body) = &parts[0];
                part_head(&mut msg, *text, *eight, *described);
                msg.extend_from_slice(body);
            } else {
                lines(&mut msg, "Content-Type: multipart/mixed; boundary=\"=_p\"\n\npre\n", eol);
                for (text, eight, described, body) in &parts {
                    lines(&mut msg, "--=_p\n", eol);
                    part_head(&mut msg, *text, *eight, *described);
                    msg.extend_from_slice(body);
                    msg.extend_from_slice(eol);
                }
                lines(&mut msg, "--=_p--\n", eol);
            }
            let (a, b) = signed_entities(&msg);
            prop_assert_eq!(a, b);
            let (a, b) = encrypted_entities(&msg);
            prop_assert_eq!(a, b);
        }
    }
}
