//! The plaintext side of a streamed decryption (S/MIME and PGP/MIME): the decrypted entity,
//! line ends already CRLF, becomes the message a reader sees, written to a spill file as it
//! arrives. The entity's header block is gathered (bounded); the outer header fields of the
//! encrypted message go in front of it (the entity's own fields win), or, when the entity
//! carries header protection, the protected header replaces them as [`unprotect_headers`]
//! makes it; the body streams through. Only a part marked for a Legacy Display Element
//! ([`LegacyDisplayMarker`]) makes the whole entity needed: it is then read back from the
//! spill file, bounded by `Limits::max_message_bytes`.
//!
//! Errors that depend on the plaintext are held until [`DecryptedWriter::finish`]: reporting
//! them while the ciphertext is still being checked would tell a caller something about
//! plaintext that may not be authentic.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::Path;

use zeroize::Zeroizing;

use crate::{
    Entity, Error, HeaderField, HeaderProtection, LegacyDisplayMarker, Limits, Result, assemble,
    has_header_protection, unprotect_headers, unprotected_outer,
};

/// A streamed result in its spill file: a private temporary file (mode 0600 on Unix) that is
/// deleted when dropped, unless [`persist`](Self::persist)ed. What the streaming readers of
/// sealgate-smime and sealgate-pgp hand out wraps one, once every check has passed.
#[derive(Debug)]
pub struct SpillFile {
    file: tempfile::NamedTempFile,
    len: u64,
}

impl SpillFile {
    /// A new, empty spill file in `dir`, its name starting with `prefix`.
    pub fn create_in(dir: &Path, prefix: &str) -> io::Result<Self> {
        let file = tempfile::Builder::new().prefix(prefix).tempfile_in(dir)?;
        Ok(Self { file, len: 0 })
    }

    /// The file to write to (then [`set_len`](Self::set_len) with what was written).
    pub fn as_file(&self) -> &File {
        self.file.as_file()
    }

    /// Record the length of what was written.
    pub fn set_len(&mut self, len: u64) {
        self.len = len;
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The directory the file is in.
    pub fn dir(&self) -> &Path {
        self.file.path().parent().unwrap_or(Path::new("."))
    }

    /// A second handle on the file (its own position), for reading it while it is kept.
    pub fn reopen(&self) -> io::Result<File> {
        self.file.reopen()
    }

    /// The content from its first byte.
    pub fn reader(&mut self) -> io::Result<&mut File> {
        let f = self.file.as_file_mut();
        f.rewind()?;
        Ok(f)
    }

    /// Copy the content to `out` (flushed); returns the number of bytes.
    pub fn copy_to(&mut self, out: &mut impl Write) -> io::Result<u64> {
        let n = io::copy(self.reader()?, out)?;
        out.flush()?;
        Ok(n)
    }

    /// Keep the file as `path` (a rename: `path` must be on the same file system; the mode
    /// stays 0600). Replaces an existing file.
    pub fn persist(self, path: &Path) -> io::Result<File> {
        self.file.persist(path).map_err(|e| e.error)
    }

    /// The whole content in memory (wiped when dropped: it may be plaintext), or `Ok(None)`
    /// when it is longer than `max` bytes.
    pub fn read_all(&mut self, max: usize) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
        if self.len > max as u64 {
            return Ok(None);
        }
        let mut all = Zeroizing::new(Vec::with_capacity(usize::try_from(self.len).unwrap_or(0)));
        self.reader()?.read_to_end(&mut all)?;
        Ok(Some(all))
    }
}

/// Bytes buffered before they are written to the spill file.
const BUFFER: usize = 256 * 1024;

/// What [`DecryptedWriter::finish`] wrote.
#[derive(Debug)]
#[non_exhaustive]
pub struct Written {
    /// Bytes written.
    pub len: u64,
    /// The header block of the message as written (for the caller to classify it, e.g. as
    /// signed); it is in the spill file too.
    pub header: Zeroizing<Vec<u8>>,
    /// Header protection found in the entity, as [`unprotect_headers`] reports it.
    pub header_protection: Option<HeaderProtection>,
}

enum Stage {
    /// Gathering the entity's header block.
    Head(Zeroizing<Vec<u8>>),
    /// The header is written; the rest goes straight out.
    Streaming,
    /// Header protection: the header made from the entity's header block (`block`) is written
    /// (`header_len` bytes), the rest streams, watched by `marker`.
    Protected {
        block: Zeroizing<Vec<u8>>,
        header_len: u64,
        marker: LegacyDisplayMarker,
    },
    /// An error that depends on the plaintext, held for `finish`. Later input is dropped.
    Failed(Error),
}

/// Writes a decrypted entity (CRLF: put a [`CanonicalWriter`](crate::CanonicalWriter) in
/// front) to a spill file as the decrypted message (see the module documentation). Nothing is
/// flushed to the file before [`finish`](Self::finish).
pub struct DecryptedWriter<'f> {
    stage: Stage,
    outer: Vec<u8>,
    out: BufWriter<&'f File>,
    len: u64,
    header: Zeroizing<Vec<u8>>,
    header_protection: Option<HeaderProtection>,
    max_header: usize,
    limits: Limits,
}

impl std::fmt::Debug for DecryptedWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptedWriter")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<'f> DecryptedWriter<'f> {
    /// Write to `file` the entity that decrypts from a message whose header block is `outer`;
    /// the entity's header block may be at most `max_header` bytes.
    pub fn new(outer: &[u8], file: &'f File, max_header: usize, limits: Limits) -> Self {
        Self {
            stage: Stage::Head(Zeroizing::new(Vec::with_capacity(8192))),
            outer: outer.to_vec(),
            out: BufWriter::with_capacity(BUFFER, file),
            len: 0,
            header: Zeroizing::new(Vec::new()),
            header_protection: None,
            max_header,
            limits,
        }
    }

    fn emit(&mut self, data: &[u8]) -> io::Result<()> {
        self.len += data.len() as u64;
        self.out.write_all(data)
    }

    /// The outer header fields (`Content-*` and `MIME-Version` are the envelope's own).
    fn outer_fields<'a>(outer: &'a [u8], limits: &Limits) -> Result<Vec<HeaderField<'a>>> {
        let e = Entity::parse(outer, limits)?;
        Ok(e.headers()
            .iter()
            .filter(|h| !h.is_mime_field())
            .copied()
            .collect())
    }

    /// The entity's header block is complete in `held` (`end` bytes of it; the rest is
    /// body): write the message header, then the rest.
    fn start(&mut self, held: &[u8], end: usize) -> Result<()> {
        let block = held.get(..end).unwrap_or_default();
        let outer = Self::outer_fields(&self.outer, &self.limits)?;
        if has_header_protection(block, &self.limits) {
            let (m, hp) = unprotect_headers(&outer, block, &self.limits)?;
            let m = Zeroizing::new(m);
            self.header_protection = hp;
            let mut marker = LegacyDisplayMarker::default();
            marker.update(held);
            self.emit(&m)?;
            self.header = m;
            self.stage = Stage::Protected {
                block: Zeroizing::new(block.to_vec()),
                header_len: self.len,
                marker,
            };
        } else {
            let outer = unprotected_outer(outer, block, &self.limits)?;
            let merged = Zeroizing::new(assemble(&outer, &[], block));
            self.emit(&merged)?;
            self.header = merged;
            self.stage = Stage::Streaming;
        }
        self.emit(held.get(end..).unwrap_or_default())?;
        Ok(())
    }

    /// A part is marked for a Legacy Display Element: the entity (its header `block`, the
    /// rest from the spill file after `header_len`) made whole, at most `max_message_bytes`,
    /// and the spill file rewritten with what `unprotect_headers` makes of it.
    fn redo_whole(&mut self, block: &[u8], header_len: u64) -> Result<()> {
        self.out.flush()?;
        let rest = self.len.saturating_sub(header_len);
        let limit = self.limits.max_message_bytes as u64;
        if block.len() as u64 + rest > limit {
            return Err(Error::LimitExceeded {
                what: "message size (header protection with a legacy display element, streamed)",
                limit,
            });
        }
        let mut file: &File = self.out.get_ref();
        let mut entity = Zeroizing::new(block.to_vec());
        file.seek(io::SeekFrom::Start(header_len))?;
        file.read_to_end(&mut entity)?;
        let outer = Self::outer_fields(&self.outer, &self.limits)?;
        let (m, hp) = unprotect_headers(&outer, &entity, &self.limits)?;
        let m = Zeroizing::new(m);
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(&m)?;
        self.len = m.len() as u64;
        self.header_protection = hp;
        let end = crate::header_block_end(&m, 0).unwrap_or(m.len());
        self.header = Zeroizing::new(m.get(..end).unwrap_or_default().to_vec());
        Ok(())
    }

    /// Finish the message (the held error, if there is one) and flush the spill file.
    pub fn finish(mut self) -> Result<Written> {
        match std::mem::replace(&mut self.stage, Stage::Streaming) {
            // The entity ended inside its header block: all of it is the header.
            Stage::Head(held) => self.start(&held, held.len())?,
            Stage::Streaming => {}
            Stage::Protected {
                block,
                header_len,
                marker,
            } => {
                if marker.seen() {
                    self.redo_whole(&block, header_len)?;
                }
            }
            Stage::Failed(e) => return Err(e),
        }
        self.out.flush()?;
        Ok(Written {
            len: self.len,
            header: self.header,
            header_protection: self.header_protection,
        })
    }
}

impl Write for DecryptedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.stage {
            Stage::Streaming => self.emit(buf)?,
            Stage::Failed(_) => {}
            Stage::Protected { marker, .. } => {
                marker.update(buf);
                self.emit(buf)?;
            }
            Stage::Head(held) => {
                let from = held.len();
                held.extend_from_slice(buf);
                match crate::header_block_end(held, from) {
                    Some(end) => {
                        let held = std::mem::take(held);
                        self.stage = Stage::Streaming;
                        match self.start(&held, end) {
                            Ok(()) => {}
                            Err(Error::Io(e)) => return Err(e),
                            Err(e) => self.stage = Stage::Failed(e),
                        }
                    }
                    None if held.len() > self.max_header => {
                        self.stage = Stage::Failed(Error::LimitExceeded {
                            what: "decrypted header block",
                            limit: self.max_header as u64,
                        });
                    }
                    None => {}
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Nothing is flushed before the end: the spill file is private until released.
        Ok(())
    }
}
