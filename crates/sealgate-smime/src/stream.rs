//! Streaming decryption of whole S/MIME messages in bounded memory, for messages of any size.
//!
//! [`decrypt_message`] reads an RFC 5322 `application/pkcs7-mime` encrypted message
//! (`smime-type=enveloped-data` or `authEnveloped-data`) from an [`io::BufRead`], undoes the
//! base64 transfer encoding on the fly, walks the BER or DER ContentInfo → EnvelopedData
//! (RFC 5652 §6.1) or AuthEnvelopedData (RFC 5083) as it arrives (definite and indefinite
//! lengths; the encryptedContent as one primitive `[0]` or as a constructed `[0]` of OCTET
//! STRING chunks, as `openssl cms -encrypt -stream` and our
//! [`EnvelopedWriter`](crate::EnvelopedWriter) write it), decrypts AES-CBC (or legacy
//! DES-EDE3-CBC) or AES-GCM (RFC 5084, with OpenSSL: aws-lc-rs has no incremental GCM) chunk
//! by chunk and writes the plaintext to a **spill file**: a temporary file (mode 0600 on Unix)
//! in a directory the caller chooses. The file is deleted when the [`SpilledMessage`] is
//! dropped, and on every error. A `SpilledMessage` exists only once every check has passed
//! (key transport, the PKCS#7 padding of the last block or the GCM tag, the structure up to
//! the last byte), so no caller can read plaintext that failed a check: unauthenticated GCM
//! plaintext exists only in the private spill file until the tag (which follows the
//! ciphertext) has verified.
//!
//! What stays in memory: the message's header block and the decrypted entity's header block
//! (each at most [`MAX_HEADER_BLOCK`]), the RecipientInfos (at most [`MAX_RECIPIENT_INFOS`],
//! and `Limits::max_recipients`), and buffers of about 1 MiB. The plaintext size is limited by
//! the disk only.
//!
//! The result is byte for byte what [`crate::decrypt_message`] makes of the same message: the
//! outer header fields merged in front of the decrypted entity (line ends made CRLF), the
//! entity's own fields winning over the outer ones. What differs:
//!
//! - The inner signature is not verified during the decryption: [`SpilledMessage::is_signed`]
//!   says whether there is one; [`SpilledMessage::verify_signature`] then checks it from the
//!   spill file, as a stream too, and [`SpilledMessage::into_decrypted`] loads the message
//!   (bounded by `Limits::max_message_bytes`) and verifies it exactly as `decrypt_message` does.
//! - Header protection (RFC 9788 or `protected-headers="v1"` in the decrypted entity) streams:
//!   the message header is made from the entity's header block, the body passes through, and
//!   only a part marked for a Legacy Display Element (`hp-legacy-display`, whose element must
//!   be cut out of its body) makes the whole entity needed: then it is read back from the
//!   spill file, bounded by `Limits::max_message_bytes`.
//! - AuthEnvelopedData with authAttrs is [`Error::NotStreamable`] (after the content was
//!   decrypted once, the spill file deleted): RFC 5083 §2.2 makes them the GCM AAD, which GCM
//!   needs before the ciphertext, and they come after it. OpenSSL never writes them, nor does
//!   any S/MIME agent for id-data content; [`crate::decrypt_message`] reads such a message in
//!   memory (bounded by `Limits::max_cms_bytes`).
//! - GCM nonces of 1..=128 bytes and tags of 12..=16 bytes (all RFC 5084 and OpenSSL allow)
//!   are read here; the one-shot path, on aws-lc-rs, reads only the 12-byte nonce and 16-byte
//!   tag that OpenSSL and Sealgate write.
//! - A decrypted header block over [`MAX_HEADER_BLOCK`] is [`Error::LimitExceeded`], the body
//!   may only be base64 or unencoded (no quoted-printable), and `Limits::max_message_bytes`
//!   does not apply to the message itself (that is the point).
//!
//! Signed messages stream too: [`verify_message`] verifies a `multipart/signed` or opaque
//! signed-data message of any size, hashing the signed content as it goes by into a spill file
//! that holds what [`crate::verify_message`] returns as the message (module `verify`
//! below: what it holds in memory, and when it sends a message back to the one-shot function
//! with [`Error::NotStreamable`]). Streamed creation is [`crate::MessageEncryptor`] and
//! [`crate::MessageSigner`].
//!
//! Decryption errors stay coarse: a wrong key, a bad padding, a bad GCM tag and (for RSA key
//! transport) a failed key decryption all give [`Error::DecryptionFailed`], after the whole content was
//! decrypted once (RFC 3218 §2.3.2: a random key stands in for a failed RSA decryption). Errors
//! that depend on the plaintext (a malformed decrypted header) are reported only after that.
//!
//! ```
//! # fn main() -> sealgate_smime::Result<()> {
//! use std::io::Read;
//! use sealgate_smime::{stream, EncryptMessageOptions, Limits, Recipient};
//! # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/smime/enveloped/");
//! # let cert = std::fs::read(format!("{dir}rsa1.crt.der")).unwrap();
//! # let key = std::fs::read(format!("{dir}rsa1.pk8.der")).unwrap();
//! let limits = Limits::default();
//! let cert = sealgate_smime::Certificate::from_der(&cert)?;
//! let key = sealgate_smime::PrivateKey::from_pkcs8_der(&key, &limits)?;
//! let sealed = sealgate_smime::encrypt_message(b"Subject: hi\r\n\r\nHello\r\n",
//!     &[Recipient::new(cert.clone())], None, &EncryptMessageOptions::default(),
//!     &mut rand_core::OsRng, &limits)?;
//! // Any `BufRead`: a `BufReader<File>` of a 1 GiB message works the same way.
//! let spill_dir = std::env::temp_dir();
//! let mut opened = stream::decrypt_message(&sealed[..], &key, Some(&cert), &spill_dir, &limits)?;
//! let mut text = Vec::new();
//! opened.reader()?.read_to_end(&mut text)?;
//! // The content header fields come back from inside the encryption (encrypt_message added
//! // the default Content-Type to the protected entity).
//! assert_eq!(text, &b"Subject: hi\r\nMIME-Version: 1.0\r\n\
//!     Content-Type: text/plain; charset=us-ascii\r\n\r\nHello\r\n"[..]);
//! // or opened.persist(path) to keep it (a rename: choose spill_dir on the same file system)
//! # Ok(()) }
//! ```

use std::fs::File;
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::path::Path;

use aws_lc_rs::cipher::{DecryptingKey, DecryptionContext, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use base64::Engine as _;
use const_oid::ObjectIdentifier;
use sealgate_mime::spill::SpillFile;
use sealgate_mime::{self as mime, CanonicalWriter, Entity, Limits};
use zeroize::Zeroizing;

use crate::cert::TrustStore;
use crate::enveloped::{self, ContentAlgorithm, oid};
use crate::error::{Error, Result};
use crate::keys::{Certificate, PrivateKey};
use crate::message::{self, DecryptedMessage, SmimeKind};
use crate::tlv::{self, tag};

mod triple;
mod verify;
pub use triple::{SpilledTriple, unwrap_triple};
pub use verify::{SpilledVerified, verify_message};

/// Largest header block (of the message, and of the decrypted entity) held in memory.
pub const MAX_HEADER_BLOCK: usize = message::MAX_STREAMED_HEADER;

/// Largest RecipientInfos SET (and originatorInfo) read into memory; `Limits::max_cms_bytes`
/// when that is smaller.
pub const MAX_RECIPIENT_INFOS: usize = 16 * 1024 * 1024;

/// Ciphertext decrypted per step.
const CHUNK: usize = 256 * 1024;

/// The decrypted message in its spill file, released only after every check passed. Deleted
/// from disk when dropped (unless [`persist`](Self::persist)ed). `Debug` never shows content.
pub struct SpilledMessage {
    spill: SpillFile,
    cipher: ContentAlgorithm,
    authenticated: bool,
    signed: bool,
    header_protection: Option<mime::HeaderProtection>,
    /// The outer header block of the encrypted message (for [`Self::into_decrypted`]).
    outer: Vec<u8>,
}

impl std::fmt::Debug for SpilledMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpilledMessage")
            .field("len", &self.spill.len())
            .field("cipher", &self.cipher)
            .field("authenticated", &self.authenticated)
            .field("signed", &self.signed)
            .field("header_protection", &self.header_protection)
            .finish_non_exhaustive()
    }
}

impl SpilledMessage {
    /// Size of the decrypted message in bytes.
    pub fn len(&self) -> u64 {
        self.spill.len()
    }

    /// True for an empty message (never the case for a message with a header).
    pub fn is_empty(&self) -> bool {
        self.spill.is_empty()
    }

    /// The content-encryption algorithm of the message.
    pub fn cipher(&self) -> ContentAlgorithm {
        self.cipher
    }

    /// True for AES-GCM whose tag verified. CBC content is never authenticated by itself
    /// (EFAIL: see [`DecryptedMessage::authenticated`]); a valid inner signature makes it so
    /// once [`verify_signature`](Self::verify_signature) (or
    /// [`into_decrypted`](Self::into_decrypted)) checked it.
    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    /// True when the decrypted message is signed (`multipart/signed` or opaque signed-data):
    /// verify it with [`into_decrypted`](Self::into_decrypted) or [`crate::verify_message`].
    pub fn is_signed(&self) -> bool {
        self.signed
    }

    /// Header protection found inside the encryption, as [`DecryptedMessage`] reports it.
    pub fn header_protection(&self) -> Option<&mime::HeaderProtection> {
        self.header_protection.as_ref()
    }

    /// The decrypted message from its first byte.
    pub fn reader(&mut self) -> io::Result<&mut File> {
        self.spill.reader()
    }

    /// Copy the decrypted message to `out`; returns the number of bytes.
    pub fn copy_to(&mut self, out: &mut impl Write) -> io::Result<u64> {
        let n = io::copy(self.reader()?, out)?;
        out.flush()?;
        Ok(n)
    }

    /// Keep the decrypted message as `path` (a rename: `path` must be on the spill
    /// directory's file system; the file keeps its mode 0600). Replaces an existing file.
    pub fn persist(self, path: &Path) -> Result<File> {
        self.spill.persist(path).map_err(Error::Io)
    }

    /// Verify the inner signature (of a message that [`is_signed`](Self::is_signed)) against
    /// `trust` from the spill file, in a stream: the report [`into_decrypted`](Self::into_decrypted)
    /// gives as `signature`, without loading the message (what the streamed verification
    /// holds: see [`verify_message`]). `Ok(None)` when the message is not signed. As in
    /// `into_decrypted`, a valid signature makes the content [`authenticated`](Self::authenticated)
    /// (EFAIL: only the signed entity is covered), and header protection inside the signed
    /// entity of a `multipart/signed` puts its fields in front of it (the spill file is
    /// rewritten beside itself). An invalid signature is a report, not an error.
    /// [`Error::NotStreamable`] as in [`verify_message`]: `into_decrypted` reads such a message.
    pub fn verify_signature(
        &mut self,
        trust: &TrustStore,
        limits: &Limits,
    ) -> Result<Option<crate::Verification>> {
        if !self.signed {
            return Ok(None);
        }
        let checked = {
            let r = io::BufReader::with_capacity(CHUNK, self.reader()?);
            verify::verify_into(r, trust, None, None, limits)?
        };
        if self.header_protection.is_none() && !checked.opaque {
            let outer_entity = Entity::parse(&self.outer, limits)?;
            let outer: Vec<_> = outer_entity
                .headers()
                .iter()
                .filter(|h| !h.is_mime_field())
                .copied()
                .collect();
            let (fields, hp) = mime::protected_header(&outer, &checked.signed_head, limits)?;
            if hp.is_some() {
                self.rewrite_header(fields, limits)?;
                self.header_protection = hp;
            }
        }
        if checked.verification.is_valid() {
            self.authenticated = true;
        }
        Ok(Some(checked.verification))
    }

    /// Put `fields` (the protected header of a signed entity) in front of the decrypted
    /// `multipart/signed` entity, as [`message::finish_decrypted`] does in memory.
    fn rewrite_header(&mut self, fields: Vec<u8>, limits: &Limits) -> Result<()> {
        let dir = self.spill.dir().to_path_buf();
        let mut r = io::BufReader::with_capacity(CHUNK, self.spill.reader()?);
        let head = read_header_block(&mut r)?;
        let entity = Entity::parse(&head, limits)?;
        let mut rebuilt = Zeroizing::new(fields);
        rebuilt.extend_from_slice(b"MIME-Version: 1.0\r\n");
        for f in entity.headers().iter().filter(|f| f.is_mime_field()) {
            if !f.is_named("MIME-Version") {
                rebuilt.extend_from_slice(f.raw);
            }
        }
        rebuilt.extend_from_slice(b"\r\n");
        rebuilt.extend_from_slice(entity.body());
        let mut spill = SpillFile::create_in(&dir, ".sealgate-decrypted-")?;
        let mut w = BufWriter::with_capacity(CHUNK, spill.as_file());
        w.write_all(&rebuilt)?;
        let rest = io::copy(&mut r, &mut w)?;
        w.flush()?;
        drop(w);
        spill.set_len(rebuilt.len() as u64 + rest);
        self.spill = spill;
        Ok(())
    }

    /// The message in memory (at most `Limits::max_message_bytes`), with the inner signature
    /// verified against `trust` as [`crate::decrypt_message`] does it: the same
    /// [`DecryptedMessage`] that function returns for the same input.
    pub fn into_decrypted(
        mut self,
        trust: Option<&TrustStore>,
        limits: &Limits,
    ) -> Result<DecryptedMessage> {
        let message = read_all(&mut self.spill, limits)?;
        let outer_entity = Entity::parse(&self.outer, limits)?;
        let outer: Vec<_> = outer_entity
            .headers()
            .iter()
            .filter(|h| !h.is_mime_field())
            .copied()
            .collect();
        message::finish_decrypted(
            &outer,
            message,
            self.header_protection.take(),
            self.cipher,
            self.authenticated,
            trust,
            limits,
        )
    }
}

/// The whole spill file in memory, at most `Limits::max_message_bytes` (wiped when dropped:
/// it may be plaintext).
fn read_all(spill: &mut SpillFile, limits: &Limits) -> Result<Zeroizing<Vec<u8>>> {
    spill
        .read_all(limits.max_message_bytes)?
        .ok_or(Error::LimitExceeded {
            what: "message size",
            limit: limits.max_message_bytes as u64,
        })
}

/// Read a header block from `input`: up to and including its empty line (or all there is,
/// when the input ends first). More than [`MAX_HEADER_BLOCK`] bytes is
/// [`Error::LimitExceeded`].
pub fn read_header_block(input: &mut impl BufRead) -> Result<Vec<u8>> {
    mime::read_header_block(input, MAX_HEADER_BLOCK)?.ok_or(Error::LimitExceeded {
        what: "header block",
        limit: MAX_HEADER_BLOCK as u64,
    })
}

/// Decrypt an encrypted message from `input` with our key (`cert` selects the
/// RecipientInfo, as in [`crate::decrypt_message`]) into a spill file in `spill_dir`. See the
/// module documentation for what is held in memory and how the result compares with the
/// one-shot [`crate::decrypt_message`].
///
/// Errors: [`Error::WrongMessageType`] for a message that is not `application/pkcs7-mime`
/// encrypted (a signed message, a triple wrap: use [`crate::triple::unwrap_triple`]), and the
/// errors of [`crate::decrypt_message`].
pub fn decrypt_message(
    mut input: impl BufRead,
    key: &PrivateKey,
    cert: Option<&Certificate>,
    spill_dir: &Path,
    limits: &Limits,
) -> Result<SpilledMessage> {
    let head = read_header_block(&mut input)?;
    if message::classify(&head, limits)? != SmimeKind::Encrypted {
        return Err(Error::WrongMessageType {
            expected: "encrypted",
            found: message::found_type(&head, limits),
        });
    }
    let entity = Entity::parse(&head, limits)?;
    let encoding = entity.transfer_encoding();
    // A line the toolkit does not take as a header field ends the header there, as in the
    // one-shot parse: what follows it in the block is body, read before the rest.
    let input = io::Cursor::new(entity.body().to_vec()).chain(input);
    if let Some(c) = cert
        && !key.matches(c)
    {
        return Err(Error::KeyMismatch);
    }
    let mut spill = SpillFile::create_in(spill_dir, ".sealgate-decrypted-")?;
    let mut sink = CanonicalWriter::new(mime::spill::DecryptedWriter::new(
        &head,
        spill.as_file(),
        MAX_HEADER_BLOCK,
        limits.clone(),
    ));
    let (cipher, authenticated) = match encoding.as_deref() {
        None | Some("7bit" | "8bit" | "binary") => {
            walk(&mut Ber::new(input), key, cert, limits, &mut sink)?
        }
        Some("base64") => {
            let decoded = io::BufReader::with_capacity(CHUNK, Base64Reader::new(input));
            walk(&mut Ber::new(decoded), key, cert, limits, &mut sink)?
        }
        Some("quoted-printable") => {
            return Err(Error::UnsupportedAlgorithm {
                what: "transfer encoding for streaming decryption",
                oid: "quoted-printable".into(),
            });
        }
        Some(_) => {
            return Err(Error::Mime(mime::Error::Malformed {
                detail: "unknown Content-Transfer-Encoding".into(),
            }));
        }
    };
    let done = sink.finish()?.finish().map_err(from_mime)?;
    spill.set_len(done.len);
    Ok(SpilledMessage {
        spill,
        cipher,
        authenticated,
        signed: is_signed(&done.header, limits),
        header_protection: done.header_protection,
        outer: head,
    })
}

/// Whether a decrypted message (its header block) is signed.
fn is_signed(message: &[u8], limits: &Limits) -> bool {
    matches!(
        message::classify(message, limits),
        Ok(SmimeKind::DetachedSigned | SmimeKind::OpaqueSigned)
    )
}

/// An error of the plaintext side ([`mime::spill::DecryptedWriter`]) as ours: I/O and limits
/// keep their kind.
fn from_mime(e: mime::Error) -> Error {
    match e {
        mime::Error::Io(e) => Error::Io(e),
        mime::Error::LimitExceeded { what, limit } => Error::LimitExceeded { what, limit },
        e => Error::Mime(e),
    }
}

// ---------------------------------------------------------------------------------------------
// The transfer encoding: base64 decoded as it is read.

/// Base64 characters gathered per decoding step.
const B64_BLOCK: usize = 64 * 1024;

/// Decodes a base64 body as [`mime::decode_base64`] does (blanks and line breaks ignored,
/// padding optional and only at the end, anything else an error), from a reader.
struct Base64Reader<R: BufRead> {
    inner: R,
    chars: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    padded: bool,
    eof: bool,
}

impl<R: BufRead> Base64Reader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            chars: Vec::with_capacity(B64_BLOCK + 4),
            out: Vec::with_capacity(B64_BLOCK / 4 * 3 + 3),
            out_pos: 0,
            padded: false,
            eof: false,
        }
    }

    fn invalid() -> io::Error {
        io::Error::other(Error::Mime(mime::Error::Malformed {
            detail: "invalid base64 body".into(),
        }))
    }

    /// Decode the gathered characters: whole 4-character groups, all of them at the end.
    fn decode(&mut self, last: bool) -> io::Result<()> {
        const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
                .with_decode_allow_trailing_bits(true),
        );
        let take = if last {
            self.chars.len()
        } else {
            self.chars.len() & !3
        };
        if take == 0 {
            return Ok(());
        }
        if self.padded {
            return Err(Self::invalid());
        }
        let group = self.chars.get(..take).unwrap_or_default();
        self.padded = group.last() == Some(&b'=');
        self.out.clear();
        self.out_pos = 0;
        LENIENT
            .decode_vec(group, &mut self.out)
            .map_err(|_| Self::invalid())?;
        self.chars.drain(..take);
        Ok(())
    }

    fn refill(&mut self) -> io::Result<()> {
        while self.out_pos >= self.out.len() && !self.eof {
            let data = self.inner.fill_buf()?;
            if data.is_empty() {
                self.eof = true;
                self.decode(true)?;
                break;
            }
            let n = data.len().min(B64_BLOCK);
            let part = data.get(..n).unwrap_or_default();
            push_base64_chars(&mut self.chars, part);
            self.inner.consume(n);
            if self.chars.len() >= B64_BLOCK {
                self.decode(false)?;
            }
        }
        Ok(())
    }
}

/// Append `part` without blanks and line breaks: whole lines at a time (memchr finds the line
/// ends), byte by byte only in the rare line with a blank in it. Per byte throughout, this
/// was most of an unoptimised build's decryption time.
fn push_base64_chars(chars: &mut Vec<u8>, mut part: &[u8]) {
    while !part.is_empty() {
        let end = memchr::memchr2(b'\r', b'\n', part).unwrap_or(part.len());
        let run = part.get(..end).unwrap_or_default();
        if memchr::memchr2(b' ', b'\t', run).is_some() {
            chars.extend(run.iter().filter(|b| !matches!(b, b' ' | b'\t')));
        } else {
            chars.extend_from_slice(run);
        }
        part = part.get(end + 1..).unwrap_or_default();
    }
}

impl<R: BufRead> Read for Base64Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.refill()?;
        let avail = self.out.get(self.out_pos..).unwrap_or_default();
        let n = avail.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.out_pos += n;
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// The CMS side: a BER walker over the decoded bytes as they arrive.

fn malformed(detail: impl std::fmt::Display) -> Error {
    Error::malformed("streamed CMS", detail)
}

/// An I/O error from the decoding layer may carry our own error (invalid base64).
fn from_io(e: io::Error) -> Error {
    if !e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        return Error::Io(e);
    }
    match e.into_inner().map(|b| b.downcast::<Error>()) {
        Some(Ok(err)) => *err,
        _ => malformed("input"),
    }
}

/// A BER identifier and length.
#[derive(Clone, Copy, Debug)]
struct Header {
    tag: u8,
    /// `None` for the indefinite form.
    len: Option<u64>,
}

struct Ber<B: BufRead> {
    r: B,
    /// Bytes consumed so far.
    pos: u64,
    /// When set, every consumed byte is also appended here (bounded by `record_max`).
    record: Option<Vec<u8>>,
    record_max: usize,
    record_what: &'static str,
}

impl<B: BufRead> Ber<B> {
    fn new(r: B) -> Self {
        Self {
            r,
            pos: 0,
            record: None,
            record_max: 0,
            record_what: "",
        }
    }

    fn peek(&mut self) -> Result<Option<u8>> {
        Ok(self.r.fill_buf().map_err(from_io)?.first().copied())
    }

    /// Consume up to `n` bytes and hand them to `f`; returns how many.
    fn step(&mut self, n: u64, f: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<usize> {
        let data = self.r.fill_buf().map_err(from_io)?;
        let k = data.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        if k == 0 {
            return Err(malformed("truncated"));
        }
        let part = data.get(..k).unwrap_or_default();
        if let Some(rec) = self.record.as_mut() {
            if rec.len() + k > self.record_max {
                return Err(Error::LimitExceeded {
                    what: self.record_what,
                    limit: self.record_max as u64,
                });
            }
            rec.extend_from_slice(part);
        }
        f(part)?;
        self.r.consume(k);
        self.pos += k as u64;
        Ok(k)
    }

    fn byte(&mut self) -> Result<u8> {
        let mut b = 0;
        self.step(1, &mut |d| {
            b = d.first().copied().unwrap_or_default();
            Ok(())
        })?;
        Ok(b)
    }

    /// Consume `n` bytes, each run handed to `f`.
    fn stream(&mut self, mut n: u64, f: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        while n > 0 {
            n -= self.step(n, f)? as u64;
        }
        Ok(())
    }

    fn header(&mut self) -> Result<Header> {
        let tag = self.byte()?;
        if tag & 0x1f == 0x1f {
            return Err(malformed("high tag number"));
        }
        let first = self.byte()?;
        let len = match first {
            0..=0x7f => Some(u64::from(first)),
            0x80 if tag & 0x20 != 0 => None,
            0x80 => return Err(malformed("indefinite length of a primitive value")),
            0x81..=0x88 => {
                let mut n = 0u64;
                for _ in 0..(first & 0x7f) {
                    n = (n << 8) | u64::from(self.byte()?);
                }
                Some(n)
            }
            _ => return Err(malformed("length too long")),
        };
        Ok(Header { tag, len })
    }

    fn expect(&mut self, tag: u8, what: &str) -> Result<Header> {
        let h = self.header()?;
        if h.tag != tag {
            return Err(malformed(format_args!(
                "{what}: expected tag {tag:#04x}, found {:#04x}",
                h.tag
            )));
        }
        Ok(h)
    }

    /// Where a value with this header that starts here ends (`None`: indefinite).
    fn end_of(&self, h: &Header) -> Option<u64> {
        h.len.map(|n| self.pos.saturating_add(n))
    }

    /// Whether the contents of a value ending at `end` are done: at the end of a definite
    /// length, or at (and past) the end-of-contents octets of an indefinite one.
    fn at_close(&mut self, end: Option<u64>) -> Result<bool> {
        match end {
            Some(end) if self.pos == end => Ok(true),
            Some(end) if self.pos > end => Err(malformed("value overruns its container")),
            Some(_) => Ok(false),
            None => {
                if self.peek()? != Some(0) {
                    return Ok(false);
                }
                self.byte()?;
                if self.byte()? != 0 {
                    return Err(malformed("bad end-of-contents"));
                }
                Ok(true)
            }
        }
    }

    fn close(&mut self, end: Option<u64>, what: &str) -> Result<()> {
        if !self.at_close(end)? {
            return Err(malformed(format_args!(
                "{what}: unexpected data at the end"
            )));
        }
        Ok(())
    }

    /// Skip the contents of a value (whose header was read), nested to at most `depth`.
    fn skip(&mut self, h: &Header, depth: usize) -> Result<()> {
        match h.len {
            Some(n) => self.stream(n, &mut |_| Ok(())),
            None => {
                if depth == 0 {
                    return Err(Error::LimitExceeded {
                        what: "ASN.1 depth",
                        limit: 0,
                    });
                }
                while !self.at_close(None)? {
                    let inner = self.header()?;
                    self.skip(&inner, depth - 1)?;
                }
                Ok(())
            }
        }
    }

    /// Read one whole TLV (identifier, length, contents, BER allowed) into memory, at most
    /// `max` bytes.
    fn raw_tlv(&mut self, max: usize, what: &'static str, limits: &Limits) -> Result<Vec<u8>> {
        self.record = Some(Vec::new());
        self.record_max = max;
        self.record_what = what;
        let r = self
            .header()
            .and_then(|h| self.skip(&h, limits.max_asn1_depth));
        let rec = self.record.take().unwrap_or_default();
        r.map(|()| rec)
    }

    fn eof(&mut self) -> Result<()> {
        match self.peek()? {
            None => Ok(()),
            Some(_) => Err(malformed("data after the ContentInfo")),
        }
    }
}

/// Walk ContentInfo → EnvelopedData or AuthEnvelopedData, find our content key with the
/// one-shot code, decrypt the content into `sink`. Returns the algorithm and whether the
/// content is authenticated (a GCM tag that verified).
fn walk<B: BufRead>(
    b: &mut Ber<B>,
    key: &PrivateKey,
    cert: Option<&Certificate>,
    limits: &Limits,
    sink: &mut impl Write,
) -> Result<(ContentAlgorithm, bool)> {
    // RFC 5652 §3: ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT content }
    // The contentType TLV is recorded: the one-shot parser gets it back.
    let ci = b.expect(tag::SEQUENCE, "ContentInfo")?;
    let ci_end = b.end_of(&ci);
    let oid_tlv = b.raw_tlv(64, "contentType", limits)?;
    let auth = match oid_of(&oid_tlv)? {
        oid::ENVELOPED_DATA => false,
        oid::AUTH_ENVELOPED_DATA => true,
        other => {
            return Err(Error::WrongMessageType {
                expected: "encrypted",
                found: other.to_string(),
            });
        }
    };
    let explicit = b.expect(tag::CTX0, "ContentInfo content")?;
    let explicit_end = b.end_of(&explicit);
    // RFC 5652 §6.1: EnvelopedData ::= SEQUENCE { version, originatorInfo [0] OPTIONAL,
    // recipientInfos, encryptedContentInfo, unprotectedAttrs [1] OPTIONAL }
    // RFC 5083 §2.1: AuthEnvelopedData ::= SEQUENCE { version, originatorInfo [0] OPTIONAL,
    // recipientInfos, authEncryptedContentInfo, authAttrs [1] OPTIONAL, mac,
    // unauthAttrs [2] OPTIONAL }
    let ed = b.expect(tag::SEQUENCE, "EnvelopedData")?;
    let ed_end = b.end_of(&ed);
    let version = b.raw_tlv(16, "CMSVersion", limits)?;
    let max_ri = MAX_RECIPIENT_INFOS.min(limits.max_cms_bytes);
    let mut ris = b.raw_tlv(max_ri, "RecipientInfos", limits)?;
    if ris.first() == Some(&tag::CTX0) {
        // originatorInfo: certificates for the recipient's convenience, not needed
        ris = b.raw_tlv(max_ri, "RecipientInfos", limits)?;
    }
    if version.first() != Some(&tag::INTEGER) || ris.first() != Some(&tag::SET) {
        return Err(malformed(
            "EnvelopedData: version or RecipientInfos missing",
        ));
    }
    // EncryptedContentInfo ::= SEQUENCE { contentType, contentEncryptionAlgorithm,
    // encryptedContent [0] IMPLICIT OCTET STRING OPTIONAL }
    let eci = b.expect(tag::SEQUENCE, "EncryptedContentInfo")?;
    let eci_end = b.end_of(&eci);
    let inner_type = b.raw_tlv(64, "EncryptedContentInfo contentType", limits)?;
    let alg = b.raw_tlv(4096, "contentEncryptionAlgorithm", limits)?;
    if inner_type.first() != Some(&tag::OID) || alg.first() != Some(&tag::SEQUENCE) {
        return Err(malformed("EncryptedContentInfo"));
    }
    // Everything before the ciphertext, as a DER (Auth)EnvelopedData with empty content (and
    // for GCM a stand-in mac of the announced length, the real one comes after the
    // ciphertext): the one-shot parser and recipient code find the content key (with the RSA
    // implicit rejection).
    let plan = {
        let alg_der = crate::ber::to_der(&alg, limits)?;
        let params = tlv::single(&alg_der, tag::SEQUENCE, "contentEncryptionAlgorithm")?;
        let (_, _, icv_len) = enveloped::content_params(params.value)?;
        let mut eci = inner_type;
        eci.extend_from_slice(&alg);
        eci.extend_from_slice(&[tag::CTX0_PRIM, 0]);
        let mut ed = version;
        ed.extend_from_slice(&ris);
        tlv::push_tlv(&mut ed, tag::SEQUENCE, &eci);
        if auth {
            tlv::push_tlv(&mut ed, tag::OCTET_STRING, &vec![0u8; icv_len]);
        }
        let mut seq = Vec::new();
        tlv::push_tlv(&mut seq, tag::SEQUENCE, &ed);
        let mut body = oid_tlv;
        tlv::push_tlv(&mut body, tag::CTX0, &seq);
        let mut ci = Vec::new();
        tlv::push_tlv(&mut ci, tag::SEQUENCE, &body);
        let der = crate::ber::to_der(&ci, limits)?;
        enveloped::plan(&der, key, cert, limits)?
    };
    let mut content = if auth {
        ContentStream::Gcm(GcmStream::new(plan.alg, &plan.cek, &plan.iv)?)
    } else {
        ContentStream::Cbc(CbcStream::new(plan.alg, &plan.cek, &plan.iv)?)
    };
    let ct = b.header()?;
    match (ct.tag, ct.len) {
        (tag::CTX0_PRIM, Some(n)) => b.stream(n, &mut |d| content.update(d, sink))?,
        (tag::CTX0, _) => {
            let end = b.end_of(&ct);
            chunks(b, end, limits.max_asn1_depth, &mut |d| {
                content.update(d, sink)
            })?;
        }
        _ => return Err(malformed("encryptedContent missing (detached content)")),
    }
    b.close(eci_end, "EncryptedContentInfo")?;
    let mut mac = Zeroizing::new(Vec::new());
    if auth {
        let mut h = b.header()?;
        if h.tag == tag::CTX1 {
            // RFC 5083 §2.2: authAttrs are the GCM AAD, which OpenSSL (any GCM, in fact) needs
            // before the ciphertext, and here they come after it. OpenSSL and S/MIME id-data
            // content never have them; the one-shot path reads such a message.
            return Err(Error::NotStreamable {
                what: "AuthEnvelopedData with authAttrs (use decrypt_message)",
            });
        }
        // RFC 5083 §2.1: mac MessageAuthenticationCode (OCTET STRING), aes-ICVlen bytes
        let want = plan.mac_len();
        if h.tag != tag::OCTET_STRING || h.len != Some(want as u64) {
            return Err(malformed(
                "AuthEnvelopedData: mac missing or not aes-ICVlen bytes",
            ));
        }
        b.stream(want as u64, &mut |d| {
            mac.extend_from_slice(d);
            Ok(())
        })?;
        if !b.at_close(ed_end)? {
            h = b.header()?;
            if h.tag != tag::CTX2 {
                return Err(malformed("AuthEnvelopedData: unexpected element"));
            }
            // unauthAttrs: not covered by the tag, not needed
            b.skip(&h, limits.max_asn1_depth)?;
            b.close(ed_end, "AuthEnvelopedData")?;
        }
    } else if !b.at_close(ed_end)? {
        let attrs = b.header()?;
        if attrs.tag != tag::CTX1 {
            return Err(malformed("EnvelopedData: unexpected element"));
        }
        b.skip(&attrs, limits.max_asn1_depth)?;
        b.close(ed_end, "EnvelopedData")?;
    }
    b.close(explicit_end, "ContentInfo content")?;
    b.close(ci_end, "ContentInfo")?;
    b.eof()?;
    // The padding or the tag, then the key: the one coarse error, after all content was
    // decrypted. Only then may the caller release the spill file.
    let checked = match content {
        ContentStream::Cbc(cbc) => cbc.finish(sink),
        ContentStream::Gcm(gcm) => gcm.finish(&mac, sink),
    };
    if checked.is_err() || plan.substituted {
        return Err(Error::DecryptionFailed);
    }
    sink.flush()?;
    Ok((plan.alg, auth))
}

fn oid_of(tlv_bytes: &[u8]) -> Result<ObjectIdentifier> {
    let t = tlv::single(tlv_bytes, tag::OID, "contentType")?;
    ObjectIdentifier::from_bytes(t.value).map_err(|e| Error::malformed("contentType", e))
}

/// The chunks of a constructed encryptedContent: OCTET STRINGs, nested constructed ones
/// (BER allows it) to at most `depth`.
fn chunks<B: BufRead>(
    b: &mut Ber<B>,
    end: Option<u64>,
    depth: usize,
    f: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    while !b.at_close(end)? {
        let h = b.header()?;
        match (h.tag, h.len) {
            (tag::OCTET_STRING, Some(n)) => b.stream(n, f)?,
            (0x24, _) if depth > 0 => {
                let inner = b.end_of(&h);
                chunks(b, inner, depth - 1, f)?;
            }
            (0x24, _) => {
                return Err(Error::LimitExceeded {
                    what: "ASN.1 depth",
                    limit: 0,
                });
            }
            _ => return Err(malformed("encryptedContent chunk is not an OCTET STRING")),
        }
    }
    Ok(())
}

/// The content decryption of either kind, fed the ciphertext as it arrives.
enum ContentStream {
    Cbc(CbcStream),
    Gcm(GcmStream),
}

impl ContentStream {
    fn update(&mut self, data: &[u8], sink: &mut impl Write) -> Result<()> {
        match self {
            Self::Cbc(c) => c.update(data, sink),
            Self::Gcm(g) => g.update(data, sink),
        }
    }
}

/// AES-GCM decryption in steps (RFC 5084) with OpenSSL: the plaintext goes to the spill file
/// as it is made, and [`GcmStream::finish`] checks the tag. Until then the spill file holds
/// unauthenticated plaintext, which is why it is released only after `finish` succeeded (and
/// deleted otherwise).
pub(crate) struct GcmStream {
    crypter: openssl::symm::Crypter,
    out: Zeroizing<Vec<u8>>,
}

impl GcmStream {
    pub(crate) fn new(alg: ContentAlgorithm, cek: &[u8], nonce: &[u8]) -> Result<Self> {
        let cipher = alg.openssl_gcm().ok_or(Error::DecryptionFailed)?;
        // Crypter::new asserts on a short key: the plan's key has the algorithm's length, but
        // a check here keeps a mistake from becoming a panic.
        if cek.len() != cipher.key_len() || nonce.is_empty() {
            return Err(Error::DecryptionFailed);
        }
        let crypter =
            openssl::symm::Crypter::new(cipher, openssl::symm::Mode::Decrypt, cek, Some(nonce))
                .map_err(|_| Error::DecryptionFailed)?;
        Ok(Self {
            crypter,
            out: Zeroizing::new(vec![0u8; CHUNK + 16]),
        })
    }

    pub(crate) fn update(&mut self, data: &[u8], sink: &mut impl Write) -> Result<()> {
        // `update` wants room for a block more than its input.
        for piece in data.chunks(CHUNK) {
            let n = self
                .crypter
                .update(piece, &mut self.out)
                .map_err(|_| Error::DecryptionFailed)?;
            sink.write_all(self.out.get(..n).unwrap_or_default())?;
        }
        Ok(())
    }

    /// Check the tag (`Err` is always [`Error::DecryptionFailed`]).
    pub(crate) fn finish(mut self, mac: &[u8], sink: &mut impl Write) -> Result<()> {
        self.crypter
            .set_tag(mac)
            .map_err(|_| Error::DecryptionFailed)?;
        let n = self
            .crypter
            .finalize(&mut self.out)
            .map_err(|_| Error::DecryptionFailed)?;
        // GCM has no final block; should OpenSSL ever give one, it is authenticated now.
        sink.write_all(self.out.get(..n).unwrap_or_default())?;
        Ok(())
    }
}

/// CBC decryption in steps: the last block is held back until the end, where its PKCS#7
/// padding is checked by the one-shot path's own (constant-time) check.
struct CbcStream {
    cipher: CbcCipher,
    block: usize,
    /// The IV for the next step: the last ciphertext block of the previous one.
    iv: Zeroizing<Vec<u8>>,
    buf: Zeroizing<Vec<u8>>,
}

enum CbcCipher {
    Aes(Box<DecryptingKey>),
    Tdes(Zeroizing<Vec<u8>>),
}

impl CbcStream {
    fn new(alg: ContentAlgorithm, cek: &[u8], iv: &[u8]) -> Result<Self> {
        let (cipher, block) = match alg {
            ContentAlgorithm::DesEde3Cbc => (CbcCipher::Tdes(Zeroizing::new(cek.to_vec())), 8),
            alg => {
                let aes = alg.aes().ok_or(Error::DecryptionFailed)?;
                let key = DecryptingKey::cbc(
                    UnboundCipherKey::new(aes, cek).map_err(|_| Error::DecryptionFailed)?,
                )
                .map_err(|_| Error::DecryptionFailed)?;
                (CbcCipher::Aes(Box::new(key)), 16)
            }
        };
        if iv.len() != block {
            return Err(Error::DecryptionFailed);
        }
        Ok(Self {
            cipher,
            block,
            iv: Zeroizing::new(iv.to_vec()),
            buf: Zeroizing::new(Vec::with_capacity(CHUNK + 64)),
        })
    }

    /// Decrypt `self.buf[..n]` (whole blocks) in place, chaining the IV.
    fn decrypt_prefix(&mut self, n: usize) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let data = self.buf.get_mut(..n).ok_or(Error::DecryptionFailed)?;
        let next_iv = Zeroizing::new(
            data.get(n - self.block..)
                .ok_or(Error::DecryptionFailed)?
                .to_vec(),
        );
        match &self.cipher {
            CbcCipher::Aes(key) => {
                let iv: [u8; 16] = self.iv[..]
                    .try_into()
                    .map_err(|_| Error::DecryptionFailed)?;
                key.decrypt(data, DecryptionContext::Iv128(FixedLength::from(iv)))
                    .map_err(|_| Error::DecryptionFailed)?;
            }
            CbcCipher::Tdes(cek) => {
                use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::NoPadding};
                cbc::Decryptor::<des::TdesEde3>::new_from_slices(cek, &self.iv)
                    .map_err(|_| Error::DecryptionFailed)?
                    .decrypt_padded_mut::<NoPadding>(data)
                    .map_err(|_| Error::DecryptionFailed)?;
            }
        }
        self.iv = next_iv;
        Ok(())
    }

    fn update(&mut self, mut data: &[u8], sink: &mut impl Write) -> Result<()> {
        while !data.is_empty() {
            let room = (CHUNK + self.block).saturating_sub(self.buf.len()).max(1);
            let (now, rest) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(now);
            data = rest;
            if self.buf.len() > CHUNK {
                // Whole blocks, keeping at least one byte back: the last block may be the end.
                let n = (self.buf.len() - 1) / self.block * self.block;
                self.decrypt_prefix(n)?;
                sink.write_all(self.buf.get(..n).unwrap_or_default())?;
                self.buf.drain(..n);
            }
        }
        Ok(())
    }

    /// Decrypt what is left and check the padding (`Err` is always [`Error::DecryptionFailed`]).
    fn finish(mut self, sink: &mut impl Write) -> Result<()> {
        let n = self.buf.len();
        if n == 0 || !n.is_multiple_of(self.block) {
            return Err(Error::DecryptionFailed);
        }
        self.decrypt_prefix(n)?;
        let plain = enveloped::pkcs7_unpadded_len(&self.buf, self.block);
        let keep = plain.ok_or(Error::DecryptionFailed)?;
        sink.write_all(self.buf.get(..keep).unwrap_or_default())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{EncryptMessageOptions, MessageEncryptor};
    use crate::{ContentCipher, Recipient};

    use crate::enveloped::tests::{cert, data, key};

    /// A CMS ContentInfo as an S/MIME message, with outer header fields.
    fn as_message(der: &[u8]) -> Vec<u8> {
        let mut m = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: outer\r\n".to_vec();
        m.extend_from_slice(b"MIME-Version: 1.0\r\n");
        m.extend_from_slice(&mime::build_base64_entity(
            "application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"",
            Some("smime.p7m"),
            der,
        ));
        m
    }

    /// Decrypt by streaming through a reader of `cap` bytes at a time; the spill directory
    /// must be empty again afterwards whatever happened.
    fn streamed(
        msg: &[u8],
        who: &str,
        cap: usize,
    ) -> (Result<Vec<u8>>, Option<(ContentAlgorithm, bool)>) {
        let dir = tempfile::tempdir().unwrap();
        let r = io::BufReader::with_capacity(cap, msg);
        let c = cert(who);
        let res = decrypt_message(r, &key(who), Some(&c), dir.path(), &Limits::default());
        match res {
            Ok(mut s) => {
                assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
                let mut out = Vec::new();
                s.reader().unwrap().read_to_end(&mut out).unwrap();
                assert_eq!(out.len() as u64, s.len());
                let meta = (s.cipher(), s.authenticated());
                // dropping deletes the spill file
                drop(s);
                assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
                (Ok(out), Some(meta))
            }
            Err(e) => {
                assert_eq!(
                    std::fs::read_dir(dir.path()).unwrap().count(),
                    0,
                    "spill file left behind after {e}"
                );
                (Err(e), None)
            }
        }
    }

    fn one_shot(msg: &[u8], who: &str) -> Result<Vec<u8>> {
        let c = cert(who);
        crate::decrypt_message(msg, &key(who), Some(&c), None, &Limits::default())
            .map(|d| d.message.to_vec())
    }

    #[test]
    fn openssl_fixtures_match_the_one_shot() {
        for (file, who) in [
            ("rsa-aes256.der", "rsa1"),
            ("rsa-aes128.der", "rsa1"),
            ("rsa-aes192.der", "rsa1"),
            ("rsa-des3.der", "rsa1"),
            ("rsa-oaep-sha256.der", "rsa1"),
            ("rsa-ski.der", "rsa1"),
            ("rsa-stream.ber", "rsa1"),
            ("p256-aes256.der", "p256"),
            ("p384-aes256.der", "p384"),
            ("multi.der", "rsa2"),
            ("multi.der", "p384"),
            ("rsa-gcm.der", "rsa1"),
            ("rsa-gcm128.der", "rsa1"),
            ("p256-gcm.der", "p256"),
            ("p384-gcm.der", "p384"),
        ] {
            let msg = as_message(&data(file));
            let expected = one_shot(&msg, who).unwrap();
            assert!(expected.ends_with(&data("content.txt")[46..]), "{file}");
            for cap in [1, 3, 16, 4096, 1 << 20] {
                let (got, spilled) = streamed(&msg, who, cap);
                assert_eq!(got.unwrap(), expected, "{file} cap {cap}");
                let (cipher, authenticated) = spilled.unwrap();
                assert_eq!(cipher.is_aead(), file.contains("gcm"));
                assert_eq!(authenticated, file.contains("gcm"));
            }
        }
    }

    pub(crate) fn body(len: usize, seed: u64) -> Vec<u8> {
        // text with LF, CRLF and bare CR line ends, so that canonicalisation crosses chunks
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match x % 23 {
                    0 => b'\n',
                    1 => b'\r',
                    _ => b'a' + (x % 26) as u8,
                }
            })
            .collect()
    }

    fn plain_message(body: &[u8]) -> Vec<u8> {
        let mut m = b"From: a@example.org\nTo: b@example.org\nSubject: s\n\
            Content-Type: text/plain; charset=us-ascii\n\n"
            .to_vec();
        m.extend_from_slice(body);
        m
    }

    fn encrypt_both_ways(raw: &[u8]) -> [Vec<u8>; 2] {
        encrypt_both_ways_with(raw, ContentCipher::Aes256Cbc)
    }

    /// `raw` encrypted to rsa1 by the one-shot `encrypt_message` (DER) and by the streaming
    /// `MessageEncryptor` (BER, chunked).
    fn encrypt_both_ways_with(raw: &[u8], cipher: ContentCipher) -> [Vec<u8>; 2] {
        let limits = Limits::default();
        let to = [Recipient::new(cert("rsa1"))];
        let opts = EncryptMessageOptions {
            cipher,
            ..Default::default()
        };
        let der =
            crate::encrypt_message(raw, &to, None, &opts, &mut rand_core::OsRng, &limits).unwrap();
        let mut w =
            MessageEncryptor::new(Vec::new(), &to, &opts, &mut rand_core::OsRng, &limits).unwrap();
        w.write_all(raw).unwrap();
        [der, w.finish().unwrap()]
    }

    #[test]
    fn chunk_boundary_sizes_match_the_one_shot() {
        // around the decryption step (CHUNK), the base64 block and the AES block
        for len in [
            0,
            1,
            15,
            16,
            17,
            B64_BLOCK / 4 * 3 - 1,
            CHUNK - 100,
            CHUNK - 16,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            CHUNK + 15,
            CHUNK + 16,
            2 * CHUNK + 7,
            3 * CHUNK + 16 * 3,
        ] {
            let raw = plain_message(&body(len, len as u64));
            for enc in encrypt_both_ways(&raw) {
                let expected = one_shot(&enc, "rsa1").unwrap();
                for cap in [7, 8192, 1 << 20] {
                    let (got, _) = streamed(&enc, "rsa1", cap);
                    assert_eq!(got.unwrap(), expected, "len {len} cap {cap}");
                }
            }
        }
    }

    #[test]
    fn wrong_key_and_tampering_are_the_coarse_error() {
        let raw = plain_message(&body(100_000, 9));
        let cbc = encrypt_both_ways(&raw);
        let gcm = encrypt_both_ways_with(&raw, ContentCipher::Aes256Gcm);
        for enc in cbc.into_iter().chain(gcm) {
            // a different RSA key: the key transport fails, a random key stands in
            let dir = tempfile::tempdir().unwrap();
            let r = decrypt_message(&enc[..], &key("rsa2"), None, dir.path(), &Limits::default());
            assert!(matches!(r, Err(Error::DecryptionFailed)), "{r:?}");
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
            // not for us at all
            let c = cert("rsa2");
            let r = decrypt_message(
                &enc[..],
                &key("rsa2"),
                Some(&c),
                dir.path(),
                &Limits::default(),
            );
            assert!(matches!(r, Err(Error::NotARecipient)), "{r:?}");
        }
        // the last ciphertext block altered: the padding fails, the same error
        let der = crate::enveloped::encrypt(
            &raw,
            &[Recipient::new(cert("rsa1"))],
            ContentCipher::Aes256Cbc,
            &mut rand_core::OsRng,
        )
        .unwrap();
        for back in [1usize, 17, 40] {
            let mut bad = der.clone();
            let at = bad.len() - back;
            bad[at] ^= 0x55;
            let msg = as_message(&bad);
            let (got, _) = streamed(&msg, "rsa1", 4096);
            match back {
                // the padding block
                1 => assert!(matches!(got, Err(Error::DecryptionFailed)), "{got:?}"),
                // the block before: its last byte flips the padding byte
                17 => assert!(matches!(got, Err(Error::DecryptionFailed)), "{got:?}"),
                // an earlier block: CBC has no integrity, the padding survives
                _ => assert_eq!(got.unwrap(), one_shot(&msg, "rsa1").unwrap()),
            }
        }
    }

    #[test]
    fn signed_content_verifies_like_the_one_shot() {
        let id = crate::Identity::new(key("rsa1"), cert("rsa1"), vec![]).unwrap();
        let trust = TrustStore::new(vec![cert("rsa1")]);
        let limits = Limits::default();
        let raw = b"From: alice@example.org\r\nTo: b@example.org\r\nSubject: s\r\n\r\nsigned\r\n";
        let enc = crate::encrypt_message(
            raw,
            &[Recipient::new(cert("rsa1"))],
            Some((&id, &Default::default())),
            &EncryptMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let c = cert("rsa1");
        let expected =
            crate::decrypt_message(&enc, &key("rsa1"), Some(&c), Some(&trust), &limits).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let s = decrypt_message(&enc[..], &key("rsa1"), Some(&c), dir.path(), &limits).unwrap();
        assert!(s.is_signed());
        let got = s.into_decrypted(Some(&trust), &limits).unwrap();
        assert_eq!(got.message, expected.message);
        assert_eq!(got.authenticated, expected.authenticated);
        let (a, b) = (got.signature.unwrap(), expected.signature.unwrap());
        assert!(a.verification.is_valid());
        assert_eq!(a.message, b.message);
        // an unsigned message is not
        let enc = encrypt_both_ways(raw);
        let s = decrypt_message(&enc[1][..], &key("rsa1"), Some(&c), dir.path(), &limits).unwrap();
        assert!(!s.is_signed());
    }

    #[test]
    fn large_header_protected_messages_stream_unless_a_legacy_display_element_needs_the_whole() {
        let c = cert("rsa1");
        let big = body(300_000, 9);
        let single = [
            &b"From: a@example.org\r\nTo: b@example.org\r\nSubject: secret subject\r\n\r\n"[..],
            &big,
        ]
        .concat();
        let multi = [
            &b"From: a@example.org\r\nTo: b@example.org\r\nSubject: secret\r\n\
              MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n\
              --zz\r\nContent-Type: text/plain\r\n\r\nsee the file\r\n--zz\r\n\
              Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                [..],
            &base64::engine::general_purpose::STANDARD
                .encode(&big)
                .as_bytes()
                .chunks(76)
                .collect::<Vec<_>>()
                .join(&b"\r\n"[..]),
            b"\r\n--zz--\r\n",
        ]
        .concat();
        for (raw, what) in [(&single, "single"), (&multi, "multipart")] {
            for legacy_display in [false, true] {
                let what = format!("{what}, legacy display {legacy_display}");
                let opts = EncryptMessageOptions {
                    protect_headers: true,
                    legacy_display,
                    ..Default::default()
                };
                let limits = Limits::default();
                let enc = crate::encrypt_message(
                    raw,
                    &[Recipient::new(cert("rsa1"))],
                    None,
                    &opts,
                    &mut rand_core::OsRng,
                    &limits,
                )
                .unwrap();
                let expected =
                    crate::decrypt_message(&enc, &key("rsa1"), Some(&c), None, &limits).unwrap();
                assert!(expected.header_protection.is_some(), "{what}");
                assert_eq!(
                    expected
                        .header_protection
                        .as_ref()
                        .unwrap()
                        .legacy_display_removed,
                    legacy_display,
                    "{what}"
                );
                let dir = tempfile::tempdir().unwrap();
                for cap in [7, 1 << 16] {
                    let r = io::BufReader::with_capacity(cap, &enc[..]);
                    let mut s =
                        decrypt_message(r, &key("rsa1"), Some(&c), dir.path(), &limits).unwrap();
                    let mut got = Vec::new();
                    s.copy_to(&mut got).unwrap();
                    assert_eq!(got, &expected.message[..], "{what}, cap {cap}");
                    assert_eq!(s.len(), got.len() as u64, "{what}");
                    assert_eq!(s.header_protection(), expected.header_protection.as_ref());
                }
                // larger than the in-memory bound: streams, unless the element must go
                let mut small = Limits::default();
                small.max_message_bytes = 100_000;
                let streamed =
                    decrypt_message(&enc[..], &key("rsa1"), Some(&c), dir.path(), &small);
                if legacy_display {
                    assert!(
                        matches!(streamed, Err(Error::LimitExceeded { .. })),
                        "{what}: {streamed:?}"
                    );
                } else {
                    let mut s = streamed.unwrap();
                    let mut got = Vec::new();
                    s.copy_to(&mut got).unwrap();
                    assert_eq!(got, &expected.message[..], "{what}, over the bound");
                }
                assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{what}");
            }
        }
    }

    #[test]
    fn header_protection_matches_the_one_shot() {
        let limits = Limits::default();
        let raw =
            b"From: a@example.org\r\nTo: b@example.org\r\nSubject: secret subject\r\n\r\nhello\r\n";
        let opts = EncryptMessageOptions {
            protect_headers: true,
            legacy_display: true,
            ..Default::default()
        };
        let enc = crate::encrypt_message(
            raw,
            &[Recipient::new(cert("rsa1"))],
            None,
            &opts,
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let c = cert("rsa1");
        let expected = crate::decrypt_message(&enc, &key("rsa1"), Some(&c), None, &limits).unwrap();
        assert!(expected.header_protection.is_some());
        let dir = tempfile::tempdir().unwrap();
        let mut s = decrypt_message(&enc[..], &key("rsa1"), Some(&c), dir.path(), &limits).unwrap();
        let mut got = Vec::new();
        s.copy_to(&mut got).unwrap();
        assert_eq!(got, &expected.message[..]);
        assert_eq!(s.header_protection(), expected.header_protection.as_ref());
    }

    #[test]
    fn spill_file_is_private_and_persists_by_rename() {
        let raw = plain_message(b"persist me\n");
        let enc = &encrypt_both_ways(&raw)[1];
        let dir = tempfile::tempdir().unwrap();
        let c = cert("rsa1");
        let s = decrypt_message(
            &enc[..],
            &key("rsa1"),
            Some(&c),
            dir.path(),
            &Limits::default(),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let entry = std::fs::read_dir(dir.path())
                .unwrap()
                .next()
                .unwrap()
                .unwrap();
            let mode = entry.metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let target = dir.path().join("out.eml");
        s.persist(&target).unwrap();
        assert_eq!(
            std::fs::read(&target).unwrap(),
            one_shot(enc, "rsa1").unwrap()
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn other_messages_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits::default();
        let k = key("rsa1");
        let plain = plain_message(b"x\n");
        assert!(matches!(
            decrypt_message(&plain[..], &k, None, dir.path(), &limits),
            Err(Error::WrongMessageType { .. })
        ));
        // a header block without end, over the bound
        let huge = vec![b'X'; MAX_HEADER_BLOCK + 10];
        assert!(matches!(
            decrypt_message(&huge[..], &k, None, dir.path(), &limits),
            Err(Error::LimitExceeded { .. })
        ));
        // garbage instead of base64, truncated CMS, data after it
        let der = data("rsa-aes256.der");
        let mut cases = vec![
            b"Content-Type: application/pkcs7-mime\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n".to_vec(),
            as_message(&der[..der.len() - 5]),
            as_message(&[&der[..], &[0u8, 1][..]].concat()),
            as_message(&[0x30, 0x80, 0x06, 0x01]),
        ];
        let mut signed = der.clone();
        signed[14] = 0x02; // id-signedData
        cases.push(as_message(&signed));
        for m in cases {
            let r = decrypt_message(&m[..], &k, None, dir.path(), &limits);
            assert!(
                r.is_err(),
                "{}",
                String::from_utf8_lossy(&m[..60.min(m.len())])
            );
            assert!(crate::decrypt_message(&m, &k, None, None, &limits).is_err());
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// A decrypted entity of exactly `len` bytes (at least its header): letters and CRLF only,
    /// so that it needs no canonicalisation and the ciphertext has exactly this length.
    fn entity(len: usize) -> Vec<u8> {
        let mut e = b"Content-Type: text/plain\r\n\r\n".to_vec();
        let mut i = 0u32;
        while e.len() < len {
            i = i.wrapping_add(1);
            e.push(if i % 71 == 70 {
                b'\n'
            } else {
                b'a' + (i % 26) as u8
            });
            if e.last() == Some(&b'\n') {
                e.pop();
                if e.len() + 2 <= len {
                    e.extend_from_slice(b"\r\n");
                } else {
                    e.push(b'z');
                }
            }
        }
        e
    }

    /// `content` as AuthEnvelopedData to rsa1: DER from the one-shot `encrypt`, BER (64 KiB
    /// chunks, indefinite lengths) from `EnvelopedWriter`.
    fn gcm_both_ways(content: &[u8], cipher: ContentCipher) -> [Vec<u8>; 2] {
        let to = [Recipient::new(cert("rsa1"))];
        let der = crate::enveloped::encrypt(content, &to, cipher, &mut rand_core::OsRng).unwrap();
        let mut w =
            crate::EnvelopedWriter::new(Vec::new(), &to, cipher, &mut rand_core::OsRng).unwrap();
        for piece in content.chunks(10_007) {
            w.write_all(piece).unwrap();
        }
        [der, w.finish().unwrap()]
    }

    #[test]
    fn gcm_chunk_boundary_sizes_match_the_one_shot() {
        // around the decryption step (CHUNK), the writer's 64 KiB chunks and the base64 block
        let wchunk = 64 * 1024;
        for len in [
            28,
            29,
            44,
            B64_BLOCK / 4 * 3 - 1,
            B64_BLOCK / 4 * 3,
            wchunk - 1,
            wchunk,
            wchunk + 1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            2 * CHUNK + 7,
        ] {
            let content = entity(len);
            assert_eq!(content.len(), len);
            for cipher in [ContentCipher::Aes128Gcm, ContentCipher::Aes256Gcm] {
                for enc in gcm_both_ways(&content, cipher) {
                    let msg = as_message(&enc);
                    let expected = one_shot(&msg, "rsa1").unwrap();
                    assert!(expected.ends_with(&content[26..]));
                    for cap in [7, 8192, 1 << 20] {
                        let (got, meta) = streamed(&msg, "rsa1", cap);
                        assert_eq!(got.unwrap(), expected, "len {len} cap {cap}");
                        assert_eq!(meta, Some((cipher.algorithm(), true)));
                    }
                }
            }
        }
    }

    #[test]
    fn gcm_tampering_and_truncation_are_errors_without_a_spill_file() {
        let content = entity(100_000);
        let [der, ber] = gcm_both_ways(&content, ContentCipher::Aes256Gcm);
        // DER: ... ciphertext, 04 10, tag. BER: ... last chunk, 00 00 00 00, 04 10, tag,
        // 00 x 6.
        for (enc, ct_end) in [(&der, der.len() - 18), (&ber, ber.len() - 28)] {
            let msg = as_message(enc);
            let (got, _) = streamed(&msg, "rsa1", 4096);
            assert_eq!(got.unwrap(), one_shot(&msg, "rsa1").unwrap());
            let tag_at = ct_end + if enc == &der { 2 } else { 6 };
            assert_eq!(&enc[tag_at - 2..tag_at], &[tag::OCTET_STRING, 16]);
            // a ciphertext byte (the first, one in the middle, the last), a tag byte
            for at in [
                ct_end - 1,
                ct_end - 5000,
                ct_end - 90_000,
                tag_at,
                tag_at + 15,
            ] {
                let mut bad = enc.clone();
                bad[at] ^= 0x01;
                let msg = as_message(&bad);
                let (got, _) = streamed(&msg, "rsa1", 4096);
                assert!(
                    matches!(got, Err(Error::DecryptionFailed)),
                    "at {at}: {got:?}"
                );
                assert!(matches!(
                    one_shot(&msg, "rsa1"),
                    Err(Error::DecryptionFailed)
                ));
            }
            // cut anywhere: in the ciphertext, in the tag, before the last end-of-contents
            for cut in [200, enc.len() / 2, ct_end, tag_at + 8, enc.len() - 1] {
                let msg = as_message(&enc[..cut]);
                let (got, _) = streamed(&msg, "rsa1", 4096);
                assert!(got.is_err(), "cut at {cut}");
            }
            // trailing data after the ContentInfo
            let msg = as_message(&[&enc[..], &[0u8][..]].concat());
            assert!(streamed(&msg, "rsa1", 4096).0.is_err());
        }
    }

    #[test]
    fn gcm_auth_attrs_are_not_streamable_but_the_one_shot_reads_them() {
        let content = b"Content-Type: text/plain\r\n\r\nattributed\r\n";
        let der = crate::enveloped::tests::auth_enveloped_with_attrs(content, tag::SET);
        let msg = as_message(&der);
        let (got, _) = streamed(&msg, "rsa1", 64);
        assert!(matches!(got, Err(Error::NotStreamable { .. })), "{got:?}");
        assert!(
            one_shot(&msg, "rsa1")
                .unwrap()
                .ends_with(b"\r\n\r\nattributed\r\n")
        );
    }

    #[test]
    fn gcm_nonce_and_tag_lengths_of_rfc_5084_stream() {
        use crate::enveloped::tests::auth_enveloped_lengths;
        let content = b"Content-Type: text/plain\r\n\r\nodd lengths\r\n";
        for (nonce, icv) in [
            (16, Some(16)),
            (12, Some(12)),
            (12, None),
            (8, Some(14)),
            (1, Some(13)),
            (128, Some(15)),
        ] {
            let der = auth_enveloped_lengths(content, nonce, icv);
            let (got, meta) = streamed(&as_message(&der), "rsa1", 64);
            let got = got.unwrap_or_else(|e| panic!("{nonce} {icv:?}: {e}"));
            assert!(got.ends_with(b"\r\n\r\nodd lengths\r\n"));
            assert_eq!(meta, Some((ContentAlgorithm::Aes128Gcm, true)));
            // the last tag byte, a ciphertext byte
            for back in [1, usize::from(icv.unwrap_or(12)) + 3] {
                let mut bad = der.clone();
                let at = bad.len() - back;
                bad[at] ^= 0x80;
                let (got, _) = streamed(&as_message(&bad), "rsa1", 64);
                assert!(matches!(got, Err(Error::DecryptionFailed)), "{got:?}");
            }
        }
        // beyond what RFC 5084 and OpenSSL allow: typed errors
        for (nonce, icv) in [(12, Some(11)), (129, Some(16)), (12, Some(17))] {
            let der = auth_enveloped_lengths(content, nonce, icv);
            let (got, _) = streamed(&as_message(&der), "rsa1", 64);
            assert!(
                matches!(got, Err(Error::UnsupportedAlgorithm { .. })),
                "{got:?}"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        #[test]
        fn prop_streamed_equals_one_shot(
            len in 0usize..70_000,
            seed in proptest::prelude::any::<u64>(),
            cap in 1usize..5000,
            which in 0usize..4,
        ) {
            let raw = plain_message(&body(len, seed));
            let cipher = if which < 2 { ContentCipher::Aes256Cbc } else { ContentCipher::Aes128Gcm };
            let enc = &encrypt_both_ways_with(&raw, cipher)[which % 2];
            let expected = one_shot(enc, "rsa1").unwrap();
            let (got, _) = streamed(enc, "rsa1", cap);
            proptest::prop_assert_eq!(got.unwrap(), expected);
        }

        #[test]
        fn prop_base64_chars_drop_exactly_the_blanks(
            part in proptest::collection::vec(
                proptest::prelude::prop_oneof![
                    proptest::prelude::Just(b'\r'),
                    proptest::prelude::Just(b'\n'),
                    proptest::prelude::Just(b' '),
                    proptest::prelude::Just(b'\t'),
                    proptest::prelude::any::<u8>(),
                ],
                0..300,
            ),
        ) {
            let mut got = b"kept".to_vec();
            push_base64_chars(&mut got, &part);
            let mut want = b"kept".to_vec();
            want.extend(part.iter().filter(|b| !matches!(b, b'\r' | b'\n' | b' ' | b'\t')));
            proptest::prop_assert_eq!(got, want);
        }

        #[test]
        fn prop_gcm_corruption_never_panics(
            pos in 0usize..2200,
            val in proptest::prelude::any::<u8>(),
            cap in 1usize..300,
        ) {
            let enc = as_message(&data("rsa-gcm.der"));
            let mut bad = enc.clone();
            let at = pos % bad.len();
            bad[at] = val;
            let (got, _) = streamed(&bad, "rsa1", cap);
            if let Ok(ours) = got {
                proptest::prop_assert_eq!(ours, one_shot(&bad, "rsa1").unwrap());
            }
        }

        #[test]
        fn prop_corruption_never_panics(pos in 0usize..2200, val in proptest::prelude::any::<u8>()) {
            let enc = as_message(&data("rsa-stream.ber"));
            let mut bad = enc.clone();
            let at = pos % bad.len();
            bad[at] = val;
            let (got, _) = streamed(&bad, "rsa1", 64);
            if let Ok(ours) = got {
                // whatever we accept, the one-shot path reads the same
                proptest::prop_assert_eq!(ours, one_shot(&bad, "rsa1").unwrap());
            }
        }
    }
}
