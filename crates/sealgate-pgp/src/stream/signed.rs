//! PGP/MIME `multipart/signed` (RFC 3156 §5) read as a stream: see [`verify_message`].

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use sealgate_mime::multipart::{Delimiter, MultipartReader as Parts, PartBody};
use sealgate_mime::{self as mime, CanonicalWriter, Entity, HeaderField, Limits};

use super::{CHUNK, MAX_HEADER_BLOCK, mime_malformed, read_all, read_header_block};
use crate::error::{Error, Result};
use crate::message::VerifiedMessage;
use crate::{Cert, Verification};
use sealgate_mime::spill::SpillFile;

/// Largest signature part (`application/pgp-signature`, header and armor) read. A detached
/// signature is a few hundred bytes; this leaves room for many signers.
pub const MAX_SIGNATURE_PART: usize = 1024 * 1024;

/// The verified message (outer header fields and the signed entity, as
/// [`VerifiedMessage::message`] holds it) in its spill file, with the signature report.
/// It exists only once every signature was checked; whether they passed is
/// [`verification`](Self::verification)'s to say, as with the one-shot. Deleted from disk when
/// dropped (unless [`persist`](Self::persist)ed). `Debug` never shows content.
pub struct SpilledVerified {
    spill: SpillFile,
    verification: Verification,
    header_protection: Option<mime::HeaderProtection>,
}

impl std::fmt::Debug for SpilledVerified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpilledVerified")
            .field("len", &self.spill.len())
            .field("verification", &self.verification)
            .field("header_protection", &self.header_protection)
            .finish_non_exhaustive()
    }
}

impl SpilledVerified {
    /// Size of the message in bytes.
    pub fn len(&self) -> u64 {
        self.spill.len()
    }

    /// True for an empty message (never the case: `MIME-Version` is always there).
    pub fn is_empty(&self) -> bool {
        self.spill.is_empty()
    }

    /// The signatures and their checks, as [`VerifiedMessage::verification`] reports them.
    pub fn verification(&self) -> &Verification {
        &self.verification
    }

    /// Header protection found in the signed entity, as [`VerifiedMessage`] reports it.
    pub fn header_protection(&self) -> Option<&mime::HeaderProtection> {
        self.header_protection.as_ref()
    }

    /// The message from its first byte.
    pub fn reader(&mut self) -> io::Result<&mut File> {
        self.spill.reader()
    }

    /// Copy the message to `out`; returns the number of bytes.
    pub fn copy_to(&mut self, out: &mut impl Write) -> io::Result<u64> {
        self.spill.copy_to(out)
    }

    /// Keep the message as `path` (a rename: `path` must be on the spill directory's file
    /// system; the file keeps its mode 0600). Replaces an existing file.
    pub fn persist(self, path: &Path) -> Result<File> {
        self.spill.persist(path).map_err(Error::Io)
    }

    /// The message in memory (at most `Limits::max_message_bytes`): the [`VerifiedMessage`]
    /// that [`crate::verify_message`] returns for the same input.
    pub fn into_verified(mut self, limits: &Limits) -> Result<VerifiedMessage> {
        // signed, not secret: out of its wiping wrapper without a copy
        let message = std::mem::take(&mut *read_all(&mut self.spill, limits)?);
        Ok(VerifiedMessage {
            verification: self.verification,
            message,
            header_protection: self.header_protection,
        })
    }
}

/// True when the header block `head` is that of a PGP/MIME signed message (RFC 3156 §5,
/// `protocol="application/pgp-signature"`), which [`verify_message`] streams.
pub fn is_pgp_mime_signed(head: &[u8], limits: &Limits) -> bool {
    Entity::parse(head, limits).is_ok_and(|e| {
        let ct = e.content_type();
        ct.mime_type == "multipart/signed"
            && ct
                .param("protocol")
                .is_some_and(|p| p.eq_ignore_ascii_case(mime::PGP_SIGNATURE))
    })
}

fn two_parts() -> Error {
    mime_malformed("multipart/signed must have exactly two parts")
}

/// Verify a PGP/MIME signed message (RFC 3156 §5) from `input` against `signers`, the
/// message without its signature going to a spill file in `spill_dir`. See the module
/// documentation for what is held in memory and how the result compares with the one-shot
/// [`crate::verify_message`]: the same message bytes, the same report.
///
/// `Ok` carries the report even when a signature is invalid (as the one-shot does); `Err`
/// means the message could not be read as a signed message, and the spill file is gone.
/// Errors: [`Error::WrongMessageType`] for a message that is not `multipart/signed` with
/// `protocol="application/pgp-signature"` (an inline cleartext signature included: use the
/// one-shot function), [`Error::LimitExceeded`] past `Limits::max_spill_bytes` or
/// [`MAX_SIGNATURE_PART`], [`Error::Mime`] for a broken MIME structure, and the errors of
/// [`crate::verify_detached`].
pub fn verify_message(
    mut input: impl BufRead + Send + Sync,
    signers: &[Cert],
    spill_dir: &Path,
    limits: &Limits,
) -> Result<SpilledVerified> {
    let head = read_header_block(&mut input)?;
    let message = Entity::parse(&head, limits)?;
    let ct = message.content_type();
    // The checks and errors of `mime::parse_multipart_signed` and `crate::verify_message`.
    if ct.mime_type != "multipart/signed" {
        return Err(Error::WrongMessageType {
            expected: "PGP/MIME signed",
            found: ct.mime_type,
        });
    }
    let protocol = ct
        .param("protocol")
        .ok_or_else(|| mime_malformed("multipart/signed without protocol parameter"))?
        .to_ascii_lowercase();
    if protocol != mime::PGP_SIGNATURE {
        return Err(Error::WrongMessageType {
            expected: "PGP/MIME signed",
            found: format!("multipart/signed; protocol={protocol}"),
        });
    }
    let boundary = ct
        .param("boundary")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| mime_malformed("multipart without boundary parameter"))?
        .as_bytes()
        .to_vec();
    let outer: Vec<HeaderField<'_>> = message
        .headers()
        .iter()
        .filter(|h| !h.is_mime_field())
        .copied()
        .collect();
    // What the header parse left as body (a line it did not take as a field) comes first.
    let body = io::Cursor::new(message.body().to_vec()).chain(input);
    let mut parts = Parts::new(body, boundary);
    match parts.skip_preamble()? {
        Some(Delimiter::Open) => {}
        None => return Err(mime_malformed("multipart body without boundary delimiter")),
        Some(Delimiter::Close) => return Err(two_parts()),
    }
    let mut spill = SpillFile::create_in(spill_dir, ".sealgate-verified-")?;

    // The signed part, canonical CRLF (RFC 3156 §5: it is hashed in that form, as the
    // one-shot's `canonicalize_crlf`), into the spill file behind the message's header.
    let mut signed = PartBody::new(parts, Vec::new(), false);
    let mut sink = CanonicalWriter::new(SignedPart::new(&outer, spill.as_file(), limits));
    // (wiped: after a streamed decryption, `SpilledMessage::verify_inner` reads plaintext)
    let mut buf = zeroize::Zeroizing::new(vec![0u8; CHUNK]);
    let mut total = 0u64;
    loop {
        let n = match signed.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        total += n as u64;
        if total > limits.max_spill_bytes {
            return Err(Error::LimitExceeded {
                what: "signed part size (spill file)",
                limit: limits.max_spill_bytes,
            });
        }
        sink.write_all(buf.get(..n).unwrap_or_default())?;
    }
    let content = sink.finish()?.finish()?;
    if signed.ended_by() != Some(Delimiter::Open) {
        return Err(two_parts());
    }

    // The signature part: small, read whole and bounded; then the close delimiter (or the end
    // of the input, as `Entity::parts` takes a missing one). The epilogue is not read.
    let max = MAX_SIGNATURE_PART.min(limits.max_message_bytes);
    let (part, end) = signed
        .into_parts()
        .read_part(max)?
        .ok_or(Error::LimitExceeded {
            what: "PGP/MIME signature part",
            limit: max as u64,
        })?;
    if end == Some(Delimiter::Open) {
        return Err(two_parts());
    }
    let signature = Entity::parse(&part, limits)?.decoded_body(limits)?;

    let (mut verification, header_protection, len) = match content {
        Content::Streamed { head, at, len } => {
            // The signed content again: its header block from memory, the rest from the spill
            // file after the message's header. Sequoia's detached verifier hashes it in steps
            // (whatever the hash, text or binary signature, v4 or salted v6: the one-shot's code).
            let mut file = spill.reopen()?;
            file.seek(io::SeekFrom::Start(at))?;
            let data = io::Cursor::new(head).chain(BufReader::with_capacity(CHUNK, file));
            let v = crate::decrypt::verify_detached_reader(data, &signature, signers, limits)?;
            (v, None, len)
        }
        Content::Whole(entity) => {
            // Header protection: the one-shot's steps, in memory.
            let v = crate::verify_detached(&entity, &signature, signers, limits)?;
            let (m, hp) = mime::unprotect_headers(&outer, &entity, limits)?;
            let mut out = BufWriter::new(spill.as_file());
            out.write_all(&m)?;
            out.flush()?;
            (v, hp, m.len() as u64)
        }
    };
    crate::message::check_signer_address(&mut verification, &outer);
    Ok(SpilledVerified {
        spill: {
            spill.set_len(len);
            spill
        },
        verification,
        header_protection,
    })
}

/// What [`SignedPart`] made of the signed entity.
enum Content {
    /// The message is in the spill file (`len` bytes); the signed content is `head` followed
    /// by the spill file from `at` on.
    Streamed { head: Vec<u8>, at: u64, len: u64 },
    /// The whole signed entity, canonical (header protection, or a header block without end).
    Whole(Vec<u8>),
}

/// Where [`SignedPart`] is.
enum Stage {
    /// Gathering the entity's header block.
    Head(Vec<u8>),
    /// Header protection: the whole entity is needed (bounded by `max_message_bytes`).
    Whole(Vec<u8>),
    /// The message's header is written; the rest goes straight out.
    Streaming { head: Vec<u8>, at: u64 },
    /// An error found in the content; later input is dropped.
    Failed(Error),
}

/// The canonical signed entity in, the message as the one-shot `verify_message` makes it
/// out: [`mime::unprotect_headers`] of the outer fields and the entity's header block, then
/// the body as it comes. With header protection the whole entity is held (the one-shot's
/// steps need all of it).
struct SignedPart<'o, 'f> {
    stage: Stage,
    outer: &'o [HeaderField<'o>],
    out: BufWriter<&'f File>,
    len: u64,
    limits: &'o Limits,
}

impl<'o, 'f> SignedPart<'o, 'f> {
    fn new(outer: &'o [HeaderField<'o>], file: &'f File, limits: &'o Limits) -> Self {
        Self {
            stage: Stage::Head(Vec::with_capacity(8192)),
            outer,
            out: BufWriter::with_capacity(CHUNK, file),
            len: 0,
            limits,
        }
    }

    fn emit(&mut self, data: &[u8]) -> io::Result<()> {
        self.len += data.len() as u64;
        self.out.write_all(data)
    }

    /// The header block ends at `end` of `held`: write the message's header, then the rest.
    fn start(&mut self, held: Vec<u8>, end: usize) -> Result<()> {
        let block = held.get(..end).unwrap_or_default();
        // No header protection (checked): the result is the block's, the body appended as is.
        let (m, _) = mime::unprotect_headers(self.outer, block, self.limits)?;
        self.emit(&m)?;
        let at = self.len;
        self.emit(held.get(end..).unwrap_or_default())?;
        let mut head = held;
        head.truncate(end);
        self.stage = Stage::Streaming { head, at };
        Ok(())
    }

    fn hold(&mut self, mut held: Vec<u8>, buf: &[u8]) {
        if held.len() + buf.len() > self.limits.max_message_bytes {
            self.stage = Stage::Failed(Error::LimitExceeded {
                what: "signed entity with header protection (held in memory)",
                limit: self.limits.max_message_bytes as u64,
            });
        } else {
            held.extend_from_slice(buf);
            self.stage = Stage::Whole(held);
        }
    }

    fn finish(mut self) -> Result<Content> {
        match std::mem::replace(&mut self.stage, Stage::Head(Vec::new())) {
            Stage::Head(held) | Stage::Whole(held) => Ok(Content::Whole(held)),
            Stage::Streaming { head, at } => {
                self.out.flush()?;
                Ok(Content::Streamed {
                    head,
                    at,
                    len: self.len,
                })
            }
            Stage::Failed(e) => Err(e),
        }
    }
}

impl Write for SignedPart<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::mem::replace(&mut self.stage, Stage::Head(Vec::new())) {
            Stage::Streaming { head, at } => {
                self.stage = Stage::Streaming { head, at };
                self.emit(buf)?;
            }
            Stage::Failed(e) => self.stage = Stage::Failed(e),
            Stage::Whole(held) => self.hold(held, buf),
            Stage::Head(mut held) => {
                let from = held.len();
                held.extend_from_slice(buf);
                match mime::header_block_end(&held, from) {
                    Some(end) => {
                        let block = held.get(..end).unwrap_or_default();
                        if mime::has_header_protection(block, self.limits) {
                            self.hold(held, &[]);
                        } else if let Err(e) = self.start(held, end) {
                            match e {
                                Error::Io(e) => return Err(e),
                                e => self.stage = Stage::Failed(e),
                            }
                        }
                    }
                    // No end of the header block in sight (the parse will end it at a line
                    // that is no field): the whole entity, as the one-shot reads it.
                    None if held.len() > MAX_HEADER_BLOCK => self.hold(held, &[]),
                    None => self.stage = Stage::Head(held),
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming signing.

/// Longest line RFC 5322 §2.1.1 allows (without its CRLF); a longer one is re-encoded by the
/// one-shot, so the stream refuses it.
const MAX_LINE: usize = 998;

/// Writes a PGP/MIME signed message (RFC 3156 §5) as the message goes in through
/// [`io::Write`]: the outer header fields, the `multipart/signed` frame, the entity (its
/// `Content-*` fields and body, canonical CRLF) while it is hashed, then at
/// [`finish`](Self::finish) the armored detached SHA-256 signature. Nothing of the message is
/// held but its header block (at most [`MAX_HEADER_BLOCK`]) and one line.
///
/// The output is what [`crate::sign_message`] makes of the same message, the random boundary
/// aside, provided the entity is 7-bit already: RFC 3156 §5 wants 7-bit content (a signature
/// must survive transport), and the one-shot re-encodes 8-bit bodies, which a stream that has
/// already written the body cannot. So an entity with an octet above 127 or NUL (in its
/// header fields or body), a line over 998 octets, a bare CR or a line end other than the
/// message's (re-encoded by the one-shot too) is [`Error::NotStreamable`]: what was written is
/// incomplete and must be discarded (write to a temporary file), and the message signed with
/// the one-shot function instead, or passed through [`mime::reencode::reencode`] with
/// `Reencode::SevenBit` on its way in, which makes the same entity as a stream. The outer
/// header fields are copied as they are, as there.
///
/// The boundary is 128 random bits (as [`mime::pgp_signed_frame`] draws them), chosen when the
/// signer is made: the content is not scanned for it, since a line that starts with it cannot
/// occur by chance in content that exists before the boundary does.
pub struct MessageSigner<'a, W: Write + Send + Sync> {
    stage: SignStage<'a, W>,
    frame: mime::SignedFrame,
    limits: Limits,
    /// `b"\r\n"` or `b"\n"`: the line end of the message, from its first line.
    eol: &'static [u8],
    line: usize,
    after_cr: bool,
}

enum SignStage<'a, W: Write + Send + Sync> {
    /// Gathering the header block.
    Head {
        out: W,
        held: Vec<u8>,
        signer: &'a crate::SecretKey,
    },
    /// The entity goes to the output and to the signer.
    Body {
        out: CanonicalWriter<W>,
        hash: CanonicalWriter<crate::DetachedSigner<'a, Vec<u8>>>,
    },
    /// Failed: nothing more is accepted.
    Failed,
}

impl<W: Write + Send + Sync> std::fmt::Debug for MessageSigner<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageSigner").finish_non_exhaustive()
    }
}

fn not_seven_bit(what: &'static str) -> io::Error {
    io::Error::other(Error::NotStreamable { what })
}

impl<'a, W: Write + Send + Sync + 'a> MessageSigner<'a, W> {
    /// A signer by `signer`'s signing key writing to `out`; the boundary from `rng`.
    pub fn new(
        out: W,
        signer: &'a crate::SecretKey,
        rng: &mut impl rand_core::RngCore,
        limits: &Limits,
    ) -> Result<Self> {
        // The typed error (no signing key) before anything is written.
        signer.signing_keypair()?;
        Ok(Self {
            stage: SignStage::Head {
                out,
                held: Vec::with_capacity(4096),
                signer,
            },
            frame: mime::pgp_signed_frame(b"", crate::SIGNATURE_HASH, rng),
            limits: limits.clone(),
            eol: b"\r\n",
            line: 0,
            after_cr: false,
        })
    }

    /// The header block is complete (`end` bytes of `held`): write the outer fields and the
    /// frame, start the entity with its `Content-*` fields (as `mime::split_for_protection`
    /// takes them) and what the header parse left as body.
    fn start(
        &mut self,
        mut out: W,
        held: &[u8],
        end: usize,
        signer: &'a crate::SecretKey,
    ) -> Result<()> {
        let block = held.get(..end).unwrap_or_default();
        self.eol = match block.iter().position(|&b| b == b'\n') {
            Some(i) if i > 0 && block.get(i - 1) == Some(&b'\r') => b"\r\n",
            Some(_) => b"\n",
            None => b"\r\n",
        };
        let message = Entity::parse(block, &self.limits)?;
        let (mime_fields, outer): (Vec<HeaderField<'_>>, Vec<HeaderField<'_>>) =
            message.headers().iter().partition(|h| h.is_mime_field());
        let mut inner = Vec::with_capacity(block.len() + 64);
        if !mime_fields.iter().any(|h| h.is_named("Content-Type")) {
            inner.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii\r\n");
        }
        for field in mime_fields.iter().filter(|h| !h.is_named("MIME-Version")) {
            inner.extend_from_slice(field.raw);
            if !field.raw.ends_with(b"\n") {
                inner.extend_from_slice(b"\r\n");
            }
        }
        inner.extend_from_slice(b"\r\n");
        if inner.iter().any(|&b| b >= 0x80 || b == 0) {
            return Err(Error::NotStreamable {
                what: "8-bit entity header fields",
            });
        }
        out.write_all(&mime::assemble(&outer, &[], &self.frame.head))?;
        let mut out = CanonicalWriter::new(out);
        let mut hash = CanonicalWriter::new(crate::DetachedSigner::new(Vec::new(), signer, true)?);
        out.write_all(&inner)?;
        hash.write_all(&inner)?;
        let rest = message.body();
        self.stage = SignStage::Body { out, hash };
        self.body(rest)?;
        self.body(held.get(end..).unwrap_or_default())?;
        Ok(())
    }

    /// Body bytes: checked to be what the one-shot leaves as it is, then out and hashed.
    fn body(&mut self, data: &[u8]) -> io::Result<()> {
        for &b in data {
            if b >= 0x80 || b == 0 {
                return Err(not_seven_bit("8-bit or NUL octets"));
            }
            if self.after_cr && b != b'\n' {
                return Err(not_seven_bit("a bare CR"));
            }
            match b {
                b'\n' => {
                    if self.after_cr != (self.eol == b"\r\n") {
                        return Err(not_seven_bit("mixed line ends"));
                    }
                    self.line = 0;
                }
                b'\r' => {}
                _ => {
                    self.line += 1;
                    if self.line > MAX_LINE {
                        return Err(not_seven_bit("a line over 998 octets"));
                    }
                }
            }
            self.after_cr = b == b'\r';
        }
        if let SignStage::Body { out, hash } = &mut self.stage {
            out.write_all(data)?;
            hash.write_all(data)?;
        }
        Ok(())
    }

    /// The rest of the entity, the signature and the close delimiter; returns the writer.
    pub fn finish(mut self) -> Result<W> {
        if let SignStage::Head { held, .. } = &self.stage {
            let end = held.len();
            let held = held.clone();
            self.header_complete(held, end)?;
        }
        if self.after_cr {
            return Err(Error::NotStreamable { what: "a bare CR" });
        }
        match std::mem::replace(&mut self.stage, SignStage::Failed) {
            SignStage::Body { out, hash } => {
                let mut out = out.finish()?;
                let signature = hash.finish()?.finish()?;
                out.write_all(&self.frame.middle)?;
                let signature = mime::canonicalize_crlf(&signature);
                out.write_all(&signature)?;
                if !signature.ends_with(b"\r\n") {
                    out.write_all(b"\r\n")?;
                }
                out.write_all(&self.frame.tail)?;
                out.flush()?;
                Ok(out)
            }
            _ => Err(Error::Operation {
                what: "signing",
                detail: "the message signer failed earlier".into(),
            }),
        }
    }

    fn header_complete(&mut self, held: Vec<u8>, end: usize) -> Result<()> {
        match std::mem::replace(&mut self.stage, SignStage::Failed) {
            SignStage::Head { out, signer, .. } => self.start(out, &held, end, signer),
            other => {
                self.stage = other;
                Ok(())
            }
        }
    }
}

impl<'a, W: Write + Send + Sync + 'a> Write for MessageSigner<'a, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let to_err = |e: Error| match e {
            Error::Io(e) => e,
            e => io::Error::other(e),
        };
        match &mut self.stage {
            SignStage::Body { .. } => {
                if let Err(e) = self.body(buf) {
                    self.stage = SignStage::Failed;
                    return Err(e);
                }
            }
            SignStage::Failed => return Err(io::Error::other("the message signer failed earlier")),
            SignStage::Head { held, .. } => {
                let from = held.len();
                held.extend_from_slice(buf);
                match mime::header_block_end(held, from) {
                    Some(end) => {
                        let held = std::mem::take(held);
                        if let Err(e) = self.header_complete(held, end) {
                            // nothing more goes out or into the hash
                            self.stage = SignStage::Failed;
                            return Err(to_err(e));
                        }
                    }
                    None if held.len() > MAX_HEADER_BLOCK => {
                        self.stage = SignStage::Failed;
                        return Err(to_err(Error::LimitExceeded {
                            what: "header block",
                            limit: MAX_HEADER_BLOCK as u64,
                        }));
                    }
                    None => {}
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stage {
            SignStage::Body { out, .. } => out.flush(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyKind, SecretKey};
    use sealgate_mime::multipart::LINE_PIECE;

    const OUTER: &str = "From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\n\
        Subject: signed\r\nMIME-Version: 1.0\r\n";

    /// A canonical entity with `len` bytes of body: varied lines, one longer than a line piece
    /// when `long`.
    fn entity(len: usize, long: bool) -> Vec<u8> {
        let mut e = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n".to_vec();
        let start = e.len();
        let mut i = 0u32;
        while e.len() - start < len {
            if long && i == 3 {
                e.extend(std::iter::repeat_n(b'x', LINE_PIECE + 7));
                e.extend_from_slice(b"\r\n");
            }
            e.extend_from_slice(format!("line {i:07} of the signed body\r\n").as_bytes());
            i += 1;
        }
        e.truncate(start + len);
        // a bare CR at the end would be made CRLF (not what was signed)
        if e.ends_with(b"\r") {
            e.push(b'\n');
        }
        e
    }

    /// `multipart/signed` around `content` with the given signature part body.
    fn wrap(content: &[u8], micalg: &str, sig_part: &[u8]) -> Vec<u8> {
        let mut m = format!(
            "{OUTER}Content-Type: multipart/signed; protocol=\"application/pgp-signature\";\r\n\
             \tmicalg={micalg}; boundary=\"=-=sig=-=\"\r\n\r\npreamble\r\n--=-=sig=-=\r\n"
        )
        .into_bytes();
        m.extend_from_slice(content);
        m.extend_from_slice(b"\r\n--=-=sig=-=\r\n");
        m.extend_from_slice(sig_part);
        m.extend_from_slice(b"\r\n--=-=sig=-=--\r\nepilogue\r\n");
        m
    }

    fn armored_part(sig: &[u8]) -> Vec<u8> {
        let mut p = b"Content-Type: application/pgp-signature\r\n\r\n".to_vec();
        p.extend_from_slice(&mime::canonicalize_crlf(sig));
        p
    }

    /// Binary signatures, base64 in the part (several signers in one part).
    fn base64_part(sigs: &[Vec<u8>]) -> Vec<u8> {
        mime::build_base64_entity("application/pgp-signature", None, &sigs.concat())
    }

    struct Streamed {
        message: Vec<u8>,
        verification: Verification,
        header_protection: Option<mime::HeaderProtection>,
    }

    /// The streamed verification of `m`, read through a small buffer, and what is left in the
    /// spill directory afterwards (nothing, also on errors).
    fn streamed(m: &[u8], signers: &[Cert], buffer: usize, limits: &Limits) -> Result<Streamed> {
        let dir = tempfile::tempdir().unwrap();
        let input = BufReader::with_capacity(buffer, m);
        let r = verify_message(input, signers, dir.path(), limits);
        let r = r.map(|mut s| {
            let mut message = Vec::new();
            s.reader().unwrap().read_to_end(&mut message).unwrap();
            assert_eq!(message.len() as u64, s.len());
            Streamed {
                message,
                verification: s.verification().clone(),
                header_protection: s.header_protection().cloned(),
            }
        });
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        r
    }

    /// The streamed result is the one-shot's, byte for byte and field for field; returns it.
    fn assert_same(m: &[u8], signers: &[Cert], what: &str) -> Option<VerifiedMessage> {
        let limits = Limits::default();
        let one = crate::verify_message(m, signers, &limits);
        for buffer in [64, 4096, CHUNK + 1] {
            let s = streamed(m, signers, buffer, &limits);
            match (&one, s) {
                (Ok(one), Ok(s)) => {
                    assert!(s.message == one.message, "{what}: message differs");
                    assert_eq!(
                        format!("{:?}", s.verification),
                        format!("{:?}", one.verification),
                        "{what}"
                    );
                    assert_eq!(
                        format!("{:?}", s.header_protection),
                        format!("{:?}", one.header_protection),
                        "{what}"
                    );
                }
                (Err(_), Err(_)) => {}
                (one, s) => panic!(
                    "{what}: one-shot {:?}, streamed {:?}",
                    one.as_ref().map(|_| ()),
                    s.map(|_| ())
                ),
            }
        }
        one.ok()
    }

    #[test]
    fn streamed_verification_is_the_one_shots() {
        let v4 =
            SecretKey::generate_for_gnupg("Alice <alice@example.org>", KeyKind::Cv25519).unwrap();
        let v6 = SecretKey::generate("Alice <alice@example.org>", KeyKind::V6Cv25519).unwrap();
        let bob = SecretKey::generate("Bob <bob@example.org>", KeyKind::Cv25519).unwrap();
        let all = [v4.cert().clone(), v6.cert().clone(), bob.cert().clone()];
        let mut sizes = vec![0, 1, 2, 100, 4095, 4096, 70_000];
        for around in [CHUNK, LINE_PIECE, MAX_HEADER_BLOCK] {
            sizes.extend([around - 1, around, around + 1]);
        }
        let mut checked = 0;
        for &len in &sizes {
            for long in [false, true] {
                let content = entity(len, long);
                let lf = String::from_utf8(content.clone())
                    .unwrap()
                    .replace("\r\n", "\n")
                    .into_bytes();
                for key in [&v4, &v6] {
                    let sig = crate::sign_detached(&content, key, true).unwrap();
                    // CRLF as signed, and LF on the wire (canonicalised before hashing)
                    for body in [&content, &lf] {
                        let m = wrap(body, "pgp-sha256", &armored_part(&sig));
                        let one = assert_same(&m, &all, &format!("{len} B"));
                        let one = one.expect("verifies");
                        assert!(one.verification.is_valid(), "{len} B");
                        checked += 1;
                    }
                }
                if len > 100_000 {
                    continue;
                }
                // two signers, one unknown; a bad signature (content changed); micalg wrong
                let sigs = [
                    crate::sign_detached(&content, &v4, false).unwrap(),
                    crate::sign_detached(&content, &bob, false).unwrap(),
                ];
                let m = wrap(&content, "pgp-sha256", &base64_part(&sigs));
                let one = assert_same(&m, &all, "two signers").unwrap();
                assert_eq!(one.verification.signatures.len(), 2);
                // Bob's address is not From: that signature fails its signer-address check
                assert!(!one.verification.is_valid());
                let one = assert_same(&m, &all[..1], "one unknown signer").unwrap();
                assert!(one.verification.is_valid());
                assert!(!one.verification.signatures[1].known);
                let mut changed = content.clone();
                changed.push(b'!');
                let m = wrap(&changed, "pgp-sha512", &base64_part(&sigs[..1]));
                let one = assert_same(&m, &all, "changed content").unwrap();
                assert!(!one.verification.is_valid());
                let m = wrap(&content, "pgp-sha1", &base64_part(&sigs[..1]));
                assert!(
                    assert_same(&m, &all, "micalg")
                        .unwrap()
                        .verification
                        .is_valid()
                );
            }
        }
        assert_eq!(checked, sizes.len() * 2 * 2 * 2);
    }

    #[test]
    fn text_signatures_and_header_protection() {
        use openpgp::serialize::stream::{Armorer, Message, Signer};
        use sequoia_openpgp as openpgp;
        let limits = Limits::default();
        let alice = SecretKey::generate("Alice <alice@example.org>", KeyKind::Cv25519).unwrap();
        let signers = [alice.cert().clone()];
        // a text signature (type 0x01) over the canonical content
        let content = entity(300_000, true);
        let mut sig = Vec::new();
        {
            let m = Armorer::new(Message::new(&mut sig))
                .kind(openpgp::armor::Kind::Signature)
                .build()
                .unwrap();
            let template = openpgp::packet::signature::SignatureBuilder::new(
                openpgp::types::SignatureType::Text,
            );
            let mut s = Signer::with_template(m, alice.signing_keypair().unwrap(), template)
                .unwrap()
                .detached()
                .build()
                .unwrap();
            s.write_all(&content).unwrap();
            s.finalize().unwrap();
        }
        let m = wrap(&content, "pgp-sha512", &armored_part(&sig));
        assert!(
            assert_same(&m, &signers, "text")
                .unwrap()
                .verification
                .is_valid()
        );

        // header protection (RFC 9788 hp="clear"): held whole, as the one-shot reads it
        let raw = format!(
            "{OUTER}Content-Type: text/plain; charset=us-ascii\r\n\r\n{}",
            "protected body line\r\n".repeat(5000)
        );
        let opts = crate::SignMessageOptions {
            protect_headers: true,
        };
        let signed = crate::sign_message_with(
            raw.as_bytes(),
            &alice,
            &opts,
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let one = assert_same(&signed, &[alice.cert().clone()], "hp").unwrap();
        assert!(one.header_protection.is_some());
        assert!(one.verification.is_valid());
        let plain =
            crate::sign_message(raw.as_bytes(), &alice, &mut rand_core::OsRng, &limits).unwrap();
        assert!(
            assert_same(&plain, &[alice.cert().clone()], "ours")
                .unwrap()
                .verification
                .is_valid()
        );
    }

    #[test]
    fn malformed_messages_are_errors_in_both_and_leave_no_file() {
        let limits = Limits::default();
        let alice = SecretKey::generate("Alice <alice@example.org>", KeyKind::Cv25519).unwrap();
        let signers = [alice.cert().clone()];
        let content = entity(5000, false);
        let sig = armored_part(&crate::sign_detached(&content, &alice, true).unwrap());
        let good = String::from_utf8(wrap(&content, "pgp-sha256", &sig)).unwrap();
        let cases = [
            (
                "three parts",
                good.replace("--=-=sig=-=--", "--=-=sig=-=\r\n\r\nthird\r\n--=-=sig=-=--"),
            ),
            (
                "one part",
                good.replacen(
                    "\r\n--=-=sig=-=\r\nContent-Type: application/pgp",
                    "\r\nContent-Type: application/pgp",
                    1,
                ),
            ),
            ("no delimiter", good.replace("--=-=sig=-=", "--other")),
            (
                "no close delimiter",
                good.replace("--=-=sig=-=--\r\nepilogue\r\n", ""),
            ),
            (
                "S/MIME",
                good.replace(
                    "application/pgp-signature\"",
                    "application/pkcs7-signature\"",
                ),
            ),
            (
                "no protocol",
                good.replace("protocol=\"application/pgp-signature\";", ""),
            ),
            (
                "not signed",
                good.replace("multipart/signed", "multipart/mixed"),
            ),
            (
                "garbage signature",
                good.replace("-----BEGIN PGP SIGNATURE-----", "xx"),
            ),
            (
                "no signature",
                good.replace("-----BEGIN PGP SIGNATURE-----", ""),
            ),
            (
                "transport padding",
                good.replace("--=-=sig=-=\r\n", "--=-=sig=-= \t\r\n"),
            ),
        ];
        for (what, m) in &cases {
            assert_same(m.as_bytes(), &signers, what);
        }
        assert!(matches!(
            streamed(cases[6].1.as_bytes(), &signers, 4096, &limits),
            Err(Error::WrongMessageType { .. })
        ));
        assert!(matches!(
            streamed(cases[4].1.as_bytes(), &signers, 4096, &limits),
            Err(Error::WrongMessageType { .. })
        ));
        // an oversized signature part, the spill limit
        let big_sig = format!(
            "Content-Type: application/pgp-signature\r\n\r\n{}",
            "A".repeat(MAX_SIGNATURE_PART)
        );
        let m = wrap(&content, "pgp-sha256", big_sig.as_bytes());
        assert!(matches!(
            streamed(&m, &signers, 4096, &limits),
            Err(Error::LimitExceeded { .. })
        ));
        let mut small = limits.clone();
        small.max_spill_bytes = 1000;
        assert!(matches!(
            streamed(good.as_bytes(), &signers, 4096, &small),
            Err(Error::LimitExceeded { .. })
        ));
    }

    #[test]
    fn corruption_never_panics() {
        let limits = Limits::default();
        let alice = SecretKey::generate("Alice <alice@example.org>", KeyKind::Cv25519).unwrap();
        let signers = [alice.cert().clone()];
        let m = crate::sign_message(
            &[OUTER.as_bytes(), &entity(3000, false)].concat(),
            &alice,
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let mut x = 0x9e37_79b9_u32;
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let mut c = m.clone();
            let at = x as usize % c.len();
            c[at] = (x >> 8) as u8;
            if x.is_multiple_of(7) {
                c.truncate(at);
            }
            assert_same(&c, &signers, "corrupted");
        }
    }

    #[test]
    fn verify_inner_after_a_streamed_decryption_is_into_decrypted() {
        let limits = Limits::default();
        let alice = SecretKey::generate("Alice <alice@example.org>", KeyKind::Cv25519).unwrap();
        let bob = SecretKey::generate("Bob <bob@example.org>", KeyKind::Cv25519).unwrap();
        let signers = [alice.cert().clone()];
        for (what, raw, signer) in [
            (
                "signed",
                [OUTER.as_bytes(), &entity(300_000, true)].concat(),
                Some(&alice),
            ),
            (
                "signed by another",
                [OUTER.as_bytes(), &entity(1000, false)].concat(),
                Some(&bob),
            ),
            (
                "not signed",
                [OUTER.as_bytes(), &entity(1000, false)].concat(),
                None,
            ),
        ] {
            let inner = match signer {
                Some(k) => crate::sign_message(&raw, k, &mut rand_core::OsRng, &limits).unwrap(),
                None => raw,
            };
            let enc = crate::encrypt_message(
                &inner,
                std::slice::from_ref(bob.cert()),
                None,
                &crate::EncryptMessageOptions::default(),
                &mut rand_core::OsRng,
                &limits,
            )
            .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let open = || {
                super::super::decrypt_message(
                    &enc[..],
                    std::slice::from_ref(&bob),
                    &[],
                    dir.path(),
                    &limits,
                )
                .unwrap()
            };
            let d = open().into_decrypted(&signers, &limits).unwrap();
            let mut s = open();
            assert_eq!(s.is_signed(), signer.is_some());
            let v = s
                .verify_inner(&signers, dir.path(), &limits)
                .unwrap()
                .clone();
            assert_eq!(format!("{v:?}"), format!("{:?}", d.verification), "{what}");
            assert_eq!(
                format!("{:?}", s.header_protection()),
                format!("{:?}", d.header_protection.as_ref())
            );
            assert_eq!(v.is_valid(), what == "signed");
            let mut m = Vec::new();
            s.copy_to(&mut m).unwrap();
            assert!(m == *d.message);
            drop(s);
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }

    /// `m` with its `----sealgate-...` boundary replaced by `B`, up to the signature part.
    fn signed_head(m: &[u8]) -> String {
        let text = String::from_utf8(m.to_vec()).unwrap();
        let at = text.find("boundary=\"").unwrap() + 10;
        let boundary = text[at..].split('"').next().unwrap().to_owned();
        let text = text.replace(&boundary, "B");
        text[..text
            .find("Content-Type: application/pgp-signature")
            .unwrap()]
            .to_owned()
    }

    #[test]
    fn message_signer_writes_what_the_one_shot_writes() {
        let limits = Limits::default();
        let alice = SecretKey::generate("Alice <alice@example.org>", KeyKind::Cv25519).unwrap();
        let signers = [alice.cert().clone()];
        let multipart = format!(
            "{OUTER}Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\npre\r\n--mix\r\n\
             Content-Type: text/plain\r\n\r\nfirst\r\n--mix\r\nContent-Type: application/x-y\r\n\
             Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--mix--\r\n"
        );
        let mut inputs = vec![
            multipart.clone().into_bytes(),
            b"From: alice@example.org\r\n\r\n".to_vec(),
            b"From: alice@example.org\r\nSubject: no line end".to_vec(),
            // a line that does not parse as a field ends the header: body from there
            b"From: alice@example.org\r\nnot a field\r\n\r\nbody\r\n".to_vec(),
        ];
        for len in [0, 1, 5000, CHUNK + 3] {
            inputs.push([OUTER.as_bytes(), &entity(len, false)].concat());
        }
        let lf: Vec<Vec<u8>> = inputs
            .iter()
            .map(|m| {
                String::from_utf8(m.clone())
                    .unwrap()
                    .replace("\r\n", "\n")
                    .into_bytes()
            })
            .collect();
        inputs.extend(lf);
        for raw in &inputs {
            let what = String::from_utf8_lossy(&raw[..raw.len().min(60)]).into_owned();
            let mut w =
                MessageSigner::new(Vec::new(), &alice, &mut rand_core::OsRng, &limits).unwrap();
            for piece in raw.chunks(777) {
                w.write_all(piece).unwrap();
            }
            let ours = w.finish().unwrap();
            let one = crate::sign_message(raw, &alice, &mut rand_core::OsRng, &limits).unwrap();
            assert_eq!(signed_head(&ours), signed_head(&one), "{what}");
            let a = crate::verify_message(&ours, &signers, &limits).unwrap();
            let b = crate::verify_message(&one, &signers, &limits).unwrap();
            assert!(a.message == b.message, "{what}");
            assert_eq!(
                a.verification.is_valid(),
                b.verification.is_valid(),
                "{what}"
            );
            assert_eq!(a.verification.signatures.len(), 1);
            assert!(a.verification.signatures[0].checks[0].1, "{what}");
            assert_same(&ours, &signers, &what);
        }
        // not 7-bit: refused, typed
        for (what, raw) in [
            (
                "8-bit",
                format!("{OUTER}\r\nGr\u{fc}\u{df}e\r\n").into_bytes(),
            ),
            (
                "8-bit field",
                format!("{OUTER}Content-Type: text/plain; name=\"\u{fc}\"\r\n\r\nx\r\n")
                    .into_bytes(),
            ),
            ("NUL", format!("{OUTER}\r\na\0b\r\n").into_bytes()),
            (
                "long line",
                format!("{OUTER}\r\n{}\r\n", "x".repeat(999)).into_bytes(),
            ),
            ("bare CR", format!("{OUTER}\r\na\rb\r\n").into_bytes()),
            ("bare LF", format!("{OUTER}\r\na\nb\r\n").into_bytes()),
            ("CR at the end", format!("{OUTER}\r\nab\r").into_bytes()),
        ] {
            let mut w =
                MessageSigner::new(Vec::new(), &alice, &mut rand_core::OsRng, &limits).unwrap();
            let r = w
                .write_all(&raw)
                .map_err(Error::from)
                .and_then(|()| w.finish());
            let e = r.err().unwrap_or_else(|| panic!("{what}: accepted"));
            let typed = match &e {
                Error::Io(io) => io
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<Error>())
                    .is_some_and(|i| matches!(i, Error::NotStreamable { .. })),
                e => matches!(e, Error::NotStreamable { .. }),
            };
            assert!(typed, "{what}: {e:?}");
            // a caller that goes on writing gets no signed message
            let mut w =
                MessageSigner::new(Vec::new(), &alice, &mut rand_core::OsRng, &limits).unwrap();
            let refused = w.write_all(&raw).is_err();
            let more = w.write_all(b"more\r\n").is_err();
            assert!(w.finish().is_err() && (refused || more), "{what}");
            // the one-shot signs it (re-encoded)
            let one = crate::sign_message(&raw, &alice, &mut rand_core::OsRng, &limits).unwrap();
            assert!(
                crate::verify_message(&one, &signers, &limits)
                    .unwrap()
                    .verification
                    .is_valid()
            );
        }
    }
}
