//! Whole PGP/MIME messages of any size in bounded memory: streaming decryption and
//! verification into a spill file, and streaming encryption.
//!
//! [`decrypt_message`] reads an RFC 3156 `multipart/encrypted;
//! protocol="application/pgp-encrypted"` message from an [`io::BufRead`]: the message's header
//! block, the preamble and the `Version: 1` control part, then the ASCII-armored OpenPGP message
//! of the `application/octet-stream` part line by line up to its closing delimiter, its
//! armor decoded (sealgate-mime's base64 for the shape GnuPG, Sequoia and we write, as the
//! in-memory path does; Sequoia's tolerant armor reader for any other) into Sequoia's
//! `Decryptor`. The plaintext goes to a **spill file**: a
//! temporary file (mode 0600 on Unix) in a directory the caller chooses, deleted when the
//! [`SpilledMessage`] is dropped and on every error. A `SpilledMessage` exists only once the
//! whole message was read and every check passed: the MDC (SEIPD v1) or the last AEAD tag
//! (SEIPD v2), the message grammar, and the one-pass signatures inside the encryption. So no
//! caller can read plaintext that was not authenticated.
//!
//! What stays in memory when decrypting: the message's header block, the part headers and the decrypted
//! entity's header block (each at most [`MAX_HEADER_BLOCK`]), the control part (at most
//! [`MAX_CONTROL_PART`]), one armor line, and buffers of a few hundred KiB (Sequoia holds back
//! [`HOLD_BACK`] bytes of plaintext). The plaintext on disk is bounded by
//! `Limits::max_spill_bytes` (also after decompression: a compression bomb stops there);
//! `Limits::max_message_bytes` does not apply to the message itself (that is the point).
//!
//! The result is byte for byte what [`crate::decrypt_message`] makes of the same message: the
//! outer header fields merged in front of the decrypted entity (line ends made CRLF), the
//! entity's own fields winning over the outer ones, and the same signature report for
//! signatures inside the encryption. What differs:
//!
//! - A signed entity inside the encryption (`multipart/signed`, or an inline cleartext
//!   signature) is not verified while decrypting: [`SpilledMessage::is_signed`] says whether
//!   the entity is `multipart/signed`; [`SpilledMessage::verify_inner`] then verifies it from
//!   the spill file with [`verify_message`] (any size), and
//!   [`SpilledMessage::into_decrypted`] loads the message (bounded by
//!   `Limits::max_message_bytes`) and verifies it (inline signatures too) exactly as
//!   `decrypt_message` does. Both give the same report.
//! - Header protection (RFC 9788 or `protected-headers="v1"`) streams (sealgate-mime's
//!   [`mime::spill::DecryptedWriter`], shared with the S/MIME stream): only a part marked for
//!   a Legacy Display Element needs the whole entity, read back from the spill file, bounded
//!   by `Limits::max_message_bytes`.
//! - Inline PGP is not streamed ([`Error::WrongMessageType`]): use the one-shot function.
//! - The encrypted part must be 7bit, 8bit or binary (as RFC 3156 §4 sends the armor); a
//!   base64 or quoted-printable one is [`Error::Malformed`].
//! - Errors found only at the end (a third MIME part, say) come after the decryption.
//!
//! Errors stay the one-shot's: [`Error::DecryptionFailed`] for a bad MDC or tag and for a
//! session key that does not decrypt, [`Error::NoMatchingKey`],
//! [`Error::MissingIntegrityProtection`] for a legacy SED packet or a stripped MDC,
//! [`Error::NotEncrypted`]. Errors that depend on the plaintext (a malformed decrypted header)
//! are reported only after the MDC or tag was checked.
//!
//! ## Signed messages
//!
//! [`verify_message`] reads an RFC 3156 §5 `multipart/signed;
//! protocol="application/pgp-signature"` message from an [`io::BufRead`]: the header block, the
//! preamble, then the signed part line by line (sealgate-mime's `MultipartReader`, which splits
//! as `Entity::parts` does) through a `CanonicalWriter` (CRLF: what is signed and hashed, as the
//! one-shot's `canonicalize_crlf`) into a spill file, behind the header the one-shot
//! [`crate::verify_message`] gives the message (`mime::unprotect_headers` of the outer fields and
//! the entity's header block); then the signature part, at most [`MAX_SIGNATURE_PART`]. Only
//! then are the signatures known, so the signed content is hashed in a second pass: its header
//! block from memory, the rest read back from the spill file, through the same Sequoia detached
//! verifier and policy the one-shot uses. Hashing in the first pass would need the hash
//! algorithm before the signature (`micalg` says it, but need not be right) and, for v6
//! signatures (RFC 9580 §5.2.4), the salt that is hashed before the data; the second pass takes
//! every signature as it is (v4 or v6, binary 0x00 or text 0x01 over the CRLF content, any
//! hash), and its cost is one read of a file just written. `micalg` is not used, as the one-shot
//! does not use it.
//!
//! The [`SpilledVerified`] exists only once every signature was checked: the message, the
//! report (the `signer-address` check included) and the header protection are those of the
//! one-shot, byte for byte and field for field; a bad signature is a report (`Ok`), as there.
//! The signed entity's header block is held (at most [`MAX_HEADER_BLOCK`]); with header
//! protection (`hp` or `protected-headers` in its Content-Type) the whole entity is held and
//! verified as the one-shot does, bounded by `Limits::max_message_bytes`, and so is an entity
//! whose header block does not end within [`MAX_HEADER_BLOCK`]. An inline cleartext signature
//! is [`Error::WrongMessageType`] (use the one-shot). The epilogue is not read. The spill
//! file is bounded by `Limits::max_spill_bytes`, and deleted on drop and on every error.
//!
//! ```
//! # fn main() -> sealgate_pgp::Result<()> {
//! use sealgate_pgp::{stream, KeyKind, SecretKey};
//! let limits = sealgate_mime::Limits::default();
//! let alice = SecretKey::generate("Alice <alice@example.org>", KeyKind::Cv25519)?;
//! let signed = sealgate_pgp::sign_message(b"From: alice@example.org\r\n\r\nHello\r\n",
//!     &alice, &mut rand_core::OsRng, &limits)?;
//! let spill_dir = std::env::temp_dir();
//! let mut checked = stream::verify_message(&signed[..], &[alice.cert().clone()], &spill_dir, &limits)?;
//! assert!(checked.verification().is_valid());
//! let mut text = Vec::new();
//! checked.copy_to(&mut text)?;
//! assert!(text.ends_with(b"\r\n\r\nHello\r\n"));
//! # Ok(()) }
//! ```
//!
//! [`MessageSigner`] is the writing side of signed messages: the message goes in through
//! [`io::Write`], the `multipart/signed` message comes out as it is made (the signature at
//! `finish`), for content that is 7-bit already ([`Error::NotStreamable`] otherwise: the
//! one-shot [`crate::sign_message`] re-encodes it in memory).
//!
//! [`MessageEncryptor`] is the other direction: the message goes in through [`io::Write`], the
//! PGP/MIME message comes out of the wrapped writer as it is made.
//!
//! ```
//! # fn main() -> sealgate_pgp::Result<()> {
//! use std::io::Read;
//! use sealgate_pgp::{stream, EncryptMessageOptions, KeyKind, SecretKey};
//! let limits = sealgate_mime::Limits::default();
//! let bob = SecretKey::generate("Bob <bob@example.org>", KeyKind::Cv25519)?;
//! let sealed = sealgate_pgp::encrypt_message(b"Subject: hi\r\n\r\nHello\r\n",
//!     &[bob.cert().clone()], None, &EncryptMessageOptions::default(),
//!     &mut rand_core::OsRng, &limits)?;
//! // Any `BufRead`: a `BufReader<File>` of a 1 GiB message works the same way.
//! let spill_dir = std::env::temp_dir();
//! let mut opened = stream::decrypt_message(&sealed[..], &[bob], &[], &spill_dir, &limits)?;
//! let mut text = Vec::new();
//! opened.reader()?.read_to_end(&mut text)?;
//! assert_eq!(text, &b"Subject: hi\r\nMIME-Version: 1.0\r\n\
//!     Content-Type: text/plain; charset=us-ascii\r\n\r\nHello\r\n"[..]);
//! // or opened.persist(path) to keep it (a rename: choose spill_dir on the same file system)
//! # Ok(()) }
//! ```

use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use openpgp::armor::{Kind, ReaderMode};
use openpgp::packet::Tag;
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageStructure, VerificationHelper,
};
use openpgp::parse::{PacketParser, Parse};
use openpgp::{KeyHandle, Packet};
use sealgate_mime::multipart::{Delimiter, LINE_PIECE, MultipartReader as Parts, PartBody};
use sealgate_mime::spill::SpillFile;
use sealgate_mime::{self as mime, CanonicalWriter, Entity, Limits};
use sequoia_openpgp as openpgp;
use zeroize::Zeroizing;

use crate::decrypt::{Helper, Seen, guard, io_error, map_error};
use crate::error::{Error, Result};
use crate::keys::{POLICY, malformed};
use crate::message::{DecryptedMessage, EncryptMessageOptions};
use crate::{Cert, EncryptOptions, SecretKey, Verification};

mod signed;
pub use signed::{
    MAX_SIGNATURE_PART, MessageSigner, SpilledVerified, is_pgp_mime_signed, verify_message,
};

/// Largest header block (of the message, of a MIME part, and of the decrypted entity) held in
/// memory.
pub const MAX_HEADER_BLOCK: usize = 1024 * 1024;

/// Largest PGP/MIME control part (`Version: 1`) read.
pub const MAX_CONTROL_PART: usize = 64 * 1024;

/// Plaintext Sequoia's decryptor holds back before handing it on. Everything it hands on goes
/// to the private spill file, which is released only after the MDC or tag was checked, so no
/// larger hold-back is needed; a small one keeps memory flat.
pub const HOLD_BACK: usize = 256 * 1024;

/// Plaintext read per step, and the spill file's write buffer.
const CHUNK: usize = 256 * 1024;

/// The decrypted message in its spill file, released only after every check passed. Deleted
/// from disk when dropped (unless [`persist`](Self::persist)ed). `Debug` never shows content.
pub struct SpilledMessage {
    spill: SpillFile,
    verification: Verification,
    aead: bool,
    signed: bool,
    header_protection: Option<mime::HeaderProtection>,
}

impl std::fmt::Debug for SpilledMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpilledMessage")
            .field("len", &self.spill.len())
            .field("verification", &self.verification)
            .field("aead", &self.aead)
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

    /// True for an empty message (never the case: the outer header is always there).
    pub fn is_empty(&self) -> bool {
        self.spill.is_empty()
    }

    /// The signatures inside the encryption (one-pass signed), as
    /// [`DecryptedMessage::verification`] reports them.
    pub fn verification(&self) -> &Verification {
        &self.verification
    }

    /// True when the content was protected with SEIPD v2 (AEAD); otherwise SEIPD v1 with MDC.
    pub fn aead(&self) -> bool {
        self.aead
    }

    /// True when the decrypted entity is `multipart/signed`: verify it with
    /// [`verify_inner`](Self::verify_inner) (streamed) or
    /// [`into_decrypted`](Self::into_decrypted) (in memory).
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
        self.spill.copy_to(out)
    }

    /// Keep the decrypted message as `path` (a rename: `path` must be on the spill
    /// directory's file system; the file keeps its mode 0600). Replaces an existing file.
    pub fn persist(self, path: &Path) -> Result<File> {
        self.spill.persist(path).map_err(Error::Io)
    }

    /// Verify a `multipart/signed` entity inside the encryption (sign, then encrypt as two
    /// MIME layers) from the spill file, with [`verify_message`] (its copy of the signed
    /// message goes to a second spill file in `spill_dir`, deleted before this returns): the
    /// same [`verification`](Self::verification) and
    /// [`header_protection`](Self::header_protection) as
    /// [`into_decrypted`](Self::into_decrypted) gives, for a message of any size. Returns the
    /// report.
    ///
    /// As there, nothing changes when the encryption carried signatures of its own, or when
    /// the entity is not a PGP/MIME signed message (or not a well-formed one): the one-shot
    /// ignores those. An inline signature inside is not looked for (use `into_decrypted`).
    /// `Err` only when the check could not be made: [`Error::Io`] and [`Error::LimitExceeded`].
    pub fn verify_inner(
        &mut self,
        signers: &[Cert],
        spill_dir: &Path,
        limits: &Limits,
    ) -> Result<&Verification> {
        if self.verification.signatures.is_empty() && self.signed {
            let file = self.spill.reopen()?;
            let input = io::BufReader::with_capacity(CHUNK, file);
            match verify_message(input, signers, spill_dir, limits) {
                Ok(inner) => {
                    self.verification = inner.verification().clone();
                    if self.header_protection.is_none() {
                        self.header_protection = inner.header_protection().cloned();
                    }
                }
                Err(e @ (Error::Io(_) | Error::LimitExceeded { .. })) => return Err(e),
                Err(_) => {}
            }
        }
        Ok(&self.verification)
    }

    /// The message in memory (at most `Limits::max_message_bytes`), with a signed entity
    /// inside the encryption verified against `signers`: the same [`DecryptedMessage`] that
    /// [`crate::decrypt_message`] returns for the same input.
    pub fn into_decrypted(mut self, signers: &[Cert], limits: &Limits) -> Result<DecryptedMessage> {
        let message = read_all(&mut self.spill, limits)?;
        let (verification, header_protection) = crate::message::inner_signature(
            &message,
            self.verification,
            self.header_protection.take(),
            signers,
            limits,
        );
        Ok(DecryptedMessage {
            message,
            verification,
            aead: self.aead,
            inline: false,
            header_protection,
        })
    }
}

/// The whole spill file in memory, at most `Limits::max_message_bytes` (wiped when dropped:
/// it may be plaintext).
pub(crate) fn read_all(spill: &mut SpillFile, limits: &Limits) -> Result<Zeroizing<Vec<u8>>> {
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

/// True when the header block `head` is that of a PGP/MIME encrypted message (RFC 3156 §4),
/// which [`decrypt_message`] streams.
pub fn is_pgp_mime_encrypted(head: &[u8], limits: &Limits) -> bool {
    Entity::parse(head, limits).is_ok_and(|e| {
        let ct = e.content_type();
        ct.mime_type == "multipart/encrypted"
            && ct
                .param("protocol")
                .is_some_and(|p| p.eq_ignore_ascii_case(mime::PGP_ENCRYPTED))
    })
}

fn mime_malformed(detail: &str) -> Error {
    Error::Mime(mime::Error::Malformed {
        detail: detail.into(),
    })
}

/// Decrypt a PGP/MIME encrypted message from `input` with our keys into a spill file in
/// `spill_dir`, verifying the signatures inside the encryption against `signers`. See the
/// module documentation for what is held in memory and how the result compares with the
/// one-shot [`crate::decrypt_message`].
///
/// Errors: [`Error::WrongMessageType`] for a message that is not PGP/MIME encrypted (inline
/// PGP included), [`Error::LimitExceeded`] past `Limits::max_spill_bytes`, and the errors of
/// [`crate::decrypt_message`].
pub fn decrypt_message(
    mut input: impl BufRead + Send + Sync,
    keys: &[SecretKey],
    signers: &[Cert],
    spill_dir: &Path,
    limits: &Limits,
) -> Result<SpilledMessage> {
    let head = read_header_block(&mut input)?;
    let entity = Entity::parse(&head, limits)?;
    let ct = entity.content_type();
    if !is_pgp_mime_encrypted(&head, limits) {
        return Err(Error::WrongMessageType {
            expected: "PGP/MIME encrypted",
            found: ct.mime_type,
        });
    }
    let boundary = ct
        .param("boundary")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| mime_malformed("multipart without boundary parameter"))?
        .as_bytes()
        .to_vec();
    // A line the toolkit does not take as a header field ends the header there, as in the
    // one-shot parse: what follows it in the block is body, read before the rest.
    let body = io::Cursor::new(entity.body().to_vec()).chain(input);
    let mut parts = Parts::new(body, boundary);
    skip_preamble(&mut parts)?;
    let control = control_part(&mut parts, limits)?;
    let control = Entity::parse(&control, limits)?.decoded_body(limits)?;
    // RFC 3156 §4, as `mime::parse_pgp_encrypted` checks it.
    if !control
        .split(|&b| b == b'\n')
        .any(|line| line.trim_ascii().eq_ignore_ascii_case(b"Version: 1"))
    {
        return Err(mime_malformed(
            "PGP/MIME control part without \"Version: 1\"",
        ));
    }
    let part_head = part_header(&mut parts)?;
    let part = Entity::parse(&part_head, limits)?;
    match part.transfer_encoding().as_deref() {
        None | Some("7bit" | "8bit" | "binary") => {}
        Some(_) => {
            return Err(Error::Malformed {
                what: "PGP/MIME message",
                detail: "the encrypted part is transfer-encoded: not streamed".into(),
            });
        }
    }
    let mut spill = SpillFile::create_in(spill_dir, ".sealgate-decrypted-")?;
    let extra_part = Arc::new(AtomicBool::new(false));
    let (len, signed, header_protection, verification, aead) = guard("message", || {
        let body = dearmor(parts, part.body().to_vec(), Arc::clone(&extra_part))?;
        decrypt_part(body, keys, signers, &head, spill.as_file(), limits)
    })?;
    if extra_part.load(Ordering::Relaxed) {
        return Err(two_parts());
    }
    Ok(SpilledMessage {
        spill: {
            spill.set_len(len);
            spill
        },
        verification,
        aead,
        signed,
        header_protection,
    })
}

type Decrypted = (
    u64,
    bool,
    Option<mime::HeaderProtection>,
    Verification,
    bool,
);

/// The OpenPGP part: dearmor, decrypt, verify, and the plaintext into `file`.
fn decrypt_part<R: BufRead + Send + Sync>(
    armor: Armored<'_, R>,
    keys: &[SecretKey],
    signers: &[Cert],
    outer: &[u8],
    file: &File,
    limits: &Limits,
) -> Result<Decrypted> {
    let seen = Seen::default();
    let helper = StreamHelper {
        inner: Helper::new(keys, signers, &seen, limits),
        encrypted: false,
    };
    let mut d = DecryptorBuilder::from_reader(SeipdGuard::new(armor))
        .map_err(|e| malformed("message", &e))?
        .buffer_size(HOLD_BACK)
        .with_policy(&StreamPolicy, None, helper)
        .map_err(|e| seen.refine(map_error(&e, "message")))?;
    let mut sink = CanonicalWriter::new(mime::spill::DecryptedWriter::new(
        outer,
        file,
        MAX_HEADER_BLOCK,
        limits.clone(),
    ));
    let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
    let mut total = 0u64;
    loop {
        let n = match d.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(seen.refine(io_error(e))),
        };
        total += n as u64;
        // Stop at once (a compression bomb must not fill the disk); the file is deleted.
        if total > limits.max_spill_bytes {
            return Err(Error::LimitExceeded {
                what: "plaintext size (spill file)",
                limit: limits.max_spill_bytes,
            });
        }
        sink.write_all(buf.get(..n).unwrap_or_default())?;
    }
    if !d.message_processed() {
        return Err(Error::DecryptionFailed);
    }
    let helper = d.into_helper();
    if !helper.encrypted {
        return Err(Error::NotEncrypted);
    }
    // Authenticated: now the errors that depend on the plaintext, and the rest of the MIME.
    let done = sink.finish()?.finish().map_err(from_mime)?;
    Ok((
        done.len,
        is_signed(&done.header, limits),
        done.header_protection,
        helper.inner.verification,
        helper.inner.aead,
    ))
}

/// The standard policy, except that a legacy Symmetrically Encrypted Data packet is
/// [`Error::MissingIntegrityProtection`] (the one-shot path finds it before decrypting; here
/// the policy sees it before the helper does).
#[derive(Debug)]
struct StreamPolicy;

impl openpgp::policy::Policy for StreamPolicy {
    fn signature(
        &self,
        sig: &openpgp::packet::Signature,
        sec: openpgp::policy::HashAlgoSecurity,
    ) -> openpgp::Result<()> {
        POLICY.signature(sig, sec)
    }

    fn key(
        &self,
        ka: &openpgp::cert::amalgamation::key::ValidErasedKeyAmalgamation<
            openpgp::packet::key::PublicParts,
        >,
    ) -> openpgp::Result<()> {
        POLICY.key(ka)
    }

    fn symmetric_algorithm(&self, algo: openpgp::types::SymmetricAlgorithm) -> openpgp::Result<()> {
        POLICY.symmetric_algorithm(algo)
    }

    fn aead_algorithm(&self, algo: openpgp::types::AEADAlgorithm) -> openpgp::Result<()> {
        POLICY.aead_algorithm(algo)
    }

    fn packet(&self, packet: &Packet) -> openpgp::Result<()> {
        // RFC 9580 §5.7: never release plaintext from a packet without integrity protection.
        if packet.tag() == Tag::SED {
            return Err(Error::MissingIntegrityProtection.into());
        }
        POLICY.packet(packet)
    }
}

/// [`Helper`] plus what the one-shot path checks on the whole message before decrypting
/// (`precheck_encrypted`), here as the packets arrive.
struct StreamHelper<'a> {
    inner: Helper<'a>,
    /// An encryption container was seen.
    encrypted: bool,
}

impl VerificationHelper for StreamHelper<'_> {
    fn inspect(&mut self, pp: &PacketParser) -> openpgp::Result<()> {
        if pp.recursion_depth() == 0 {
            match pp.packet.tag() {
                Tag::SEIP | Tag::AED => self.encrypted = true,
                // Plaintext outside any encryption: not an encrypted message.
                Tag::Literal | Tag::CompressedData | Tag::OnePassSig if !self.encrypted => {
                    return Err(Error::NotEncrypted.into());
                }
                _ => {}
            }
        }
        // RFC 9580 §5.13.1: a SEIPD v1 body (version octet and ciphertext) too short for the
        // prefix, a minimal packet and the MDC cannot be integrity-protected, as the one-shot
        // path's `seipd::too_short` decides (and sequoia 2.4.2 panics on some of them; see
        // `precheck_encrypted`).
        if let Packet::SEIP(s) = &pp.packet
            && s.version() == 1
            && let openpgp::packet::header::BodyLength::Full(n) = pp.header().length()
            && usize::try_from(*n).is_ok_and(|n| n < 1 + crate::seipd::MIN_CIPHERTEXT)
        {
            return Err(Error::MissingIntegrityProtection.into());
        }
        self.inner.inspect(pp)
    }

    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<openpgp::Cert>> {
        self.inner.get_certs(ids)
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        self.inner.check(structure)
    }
}

impl DecryptionHelper for StreamHelper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[openpgp::packet::PKESK],
        skesks: &[openpgp::packet::SKESK],
        sym_algo: Option<openpgp::types::SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(
            Option<openpgp::types::SymmetricAlgorithm>,
            &openpgp::crypto::SessionKey,
        ) -> bool,
    ) -> openpgp::Result<Option<openpgp::Cert>> {
        self.inner.decrypt(pkesks, skesks, sym_algo, decrypt)
    }
}

// ---------------------------------------------------------------------------------------------
// The MIME side: the multipart/encrypted body read line by line (RFC 2046 §5.1.1), as
// sealgate-mime's `split_multipart` reads it in memory.

fn two_parts() -> Error {
    mime_malformed("multipart/encrypted must have exactly two parts")
}

/// Up to and including the first delimiter line (an error when there is none, or it is the
/// close delimiter: PGP/MIME has two parts).
fn skip_preamble<R: BufRead>(parts: &mut Parts<R>) -> Result<()> {
    match parts.skip_preamble()? {
        None => Err(mime_malformed("multipart body without boundary delimiter")),
        Some(Delimiter::Open) => Ok(()),
        Some(Delimiter::Close) => Err(two_parts()),
    }
}

/// The whole first part (header and body, at most [`MAX_CONTROL_PART`]), through the
/// delimiter that opens the second.
fn control_part<R: BufRead>(parts: &mut Parts<R>, limits: &Limits) -> Result<Vec<u8>> {
    let max = MAX_CONTROL_PART.min(limits.max_message_bytes);
    match parts.read_part(max)? {
        Some((part, Some(Delimiter::Open))) => Ok(part),
        Some(_) => Err(two_parts()),
        None => Err(Error::LimitExceeded {
            what: "PGP/MIME control part",
            limit: max as u64,
        }),
    }
}

/// The header block of the second part (at most [`MAX_HEADER_BLOCK`]). What follows the
/// empty line is its body, read by [`PartBody`]. A part that ends before its header does is
/// returned whole, to be parsed as it is.
fn part_header<R: BufRead>(parts: &mut Parts<R>) -> Result<Vec<u8>> {
    match parts.part_header(MAX_HEADER_BLOCK)? {
        Some((_, Some(_), _)) => Err(two_parts()),
        Some((head, None, _)) => Ok(head),
        None => Err(Error::LimitExceeded {
            what: "part header block",
            limit: MAX_HEADER_BLOCK as u64,
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// ASCII armor (RFC 9580 §6) of the encrypted part, decoded line by line.

const BEGIN_MESSAGE: &[u8] = b"-----BEGIN PGP MESSAGE-----";
const END_MESSAGE: &[u8] = b"-----END PGP MESSAGE-----";

/// Base64 characters gathered per decoding step.
const B64_BLOCK: usize = 64 * 1024;

/// The binary OpenPGP message of the encrypted part.
enum Armored<'a, R: BufRead> {
    /// The shape GnuPG, Sequoia and we write (as `armor::dearmor_message` takes it in memory):
    /// decoded here with sealgate-mime's base64. Sequoia's armor filter was more than half of
    /// the time of a streamed decryption.
    Fast(FastArmor<R>),
    /// Anything else: Sequoia's tolerant reader over the part's text.
    Sequoia(Box<openpgp::armor::Reader<'a>>),
}

impl<R: BufRead> Read for Armored<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Armored::Fast(f) => f.read(buf),
            Armored::Sequoia(r) => r.read(buf),
        }
    }
}

fn invalid_armor() -> io::Error {
    io::Error::other(Error::Malformed {
        what: "message",
        detail: "invalid ASCII armor".into(),
    })
}

/// Read the armor up to its blank line: the usual shape (blank lines, the BEGIN line, `Key:
/// value` header lines, a blank line) goes to [`FastArmor`]; for any other, what was read is
/// handed to Sequoia's reader in front of the rest of the part.
fn dearmor<'a, R: BufRead + Send + Sync + 'a>(
    mut parts: Parts<R>,
    start: Vec<u8>,
    extra_part: Arc<AtomicBool>,
) -> Result<Armored<'a, R>> {
    let sequoia = |parts, replay, done| {
        let body = PartBody::new(parts, replay, done).with_open_flag(extra_part.clone());
        Ok(Armored::Sequoia(Box::new(
            openpgp::armor::Reader::from_reader(body, ReaderMode::Tolerant(Some(Kind::Message))),
        )))
    };
    if !start.is_empty() {
        return sequoia(parts, start, false);
    }
    let mut replay = Vec::new();
    let mut begun = false;
    loop {
        let starts_line = parts.at_line_start();
        match parts.next_line()? {
            None => return sequoia(parts, replay, true),
            Some(Some(d)) => {
                if d == Delimiter::Open {
                    extra_part.store(true, Ordering::Relaxed);
                }
                return sequoia(parts, replay, true);
            }
            Some(None) => {
                if replay.len() + parts.line().len() > MAX_HEADER_BLOCK {
                    return Err(Error::LimitExceeded {
                        what: "armor header",
                        limit: MAX_HEADER_BLOCK as u64,
                    });
                }
                replay.extend_from_slice(parts.line());
                let line = parts.line().trim_ascii();
                let usual = starts_line
                    && parts.at_line_start()
                    && match begun {
                        false if line.is_empty() => true,
                        false => {
                            begun = line == BEGIN_MESSAGE;
                            begun
                        }
                        true if line.is_empty() => {
                            return Ok(Armored::Fast(FastArmor::new(parts, extra_part)));
                        }
                        true => line.windows(2).any(|w| w == b": "),
                    };
                if !usual {
                    return sequoia(parts, replay, false);
                }
            }
        }
    }
}

/// Where [`FastArmor`] is in the armor.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ArmorStage {
    /// Base64 lines.
    Body,
    /// After the checksum line: only the END line (or blank lines) may follow.
    Footer,
    /// The END line or the end of the part was read.
    Done,
}

/// The base64 body of the armor, decoded as it is read: blanks ignored, padding only at the
/// end, the `=` checksum line skipped (RFC 9580 §6.1: a reader must not reject an object for
/// its CRC), then the END line. What follows the END line in the part is read and ignored, as
/// the in-memory path ignores it.
struct FastArmor<R: BufRead> {
    parts: Parts<R>,
    chars: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    stage: ArmorStage,
    padded: bool,
    extra_part: Arc<AtomicBool>,
}

impl<R: BufRead> FastArmor<R> {
    fn new(parts: Parts<R>, extra_part: Arc<AtomicBool>) -> Self {
        Self {
            parts,
            chars: Vec::with_capacity(B64_BLOCK + LINE_PIECE),
            out: Vec::new(),
            pos: 0,
            stage: ArmorStage::Body,
            padded: false,
            extra_part,
        }
    }

    /// Decode the gathered characters: whole 4-character groups, or all of them at the end.
    fn decode(&mut self, last: bool) -> io::Result<()> {
        let take = if last {
            self.chars.len()
        } else {
            self.chars.len() & !3
        };
        if take == 0 {
            return Ok(());
        }
        if self.padded {
            return Err(invalid_armor());
        }
        let group = self.chars.get(..take).unwrap_or_default();
        self.padded = group.last() == Some(&b'=');
        self.out = mime::decode_base64(group).map_err(|_| invalid_armor())?;
        self.pos = 0;
        self.chars.drain(..take);
        Ok(())
    }

    /// The end of the armor: decode the rest, then skip to the end of the part.
    fn end(&mut self) -> io::Result<()> {
        self.stage = ArmorStage::Done;
        self.decode(true)?;
        self.skip_rest()
    }

    fn skip_rest(&mut self) -> io::Result<()> {
        loop {
            match self.parts.next_line()? {
                None | Some(Some(Delimiter::Close)) => return Ok(()),
                Some(Some(Delimiter::Open)) => {
                    self.extra_part.store(true, Ordering::Relaxed);
                    return Ok(());
                }
                Some(None) => {}
            }
        }
    }

    /// Read lines until there is decoded data or the armor ended.
    fn fill(&mut self) -> io::Result<()> {
        while self.pos >= self.out.len() && self.stage != ArmorStage::Done {
            let starts_line = self.parts.at_line_start();
            match self.parts.next_line()? {
                // No END line: what there is goes on (the packet parser decides).
                None => {
                    self.stage = ArmorStage::Done;
                    self.decode(true)?;
                }
                Some(Some(d)) => {
                    if d == Delimiter::Open {
                        self.extra_part.store(true, Ordering::Relaxed);
                    }
                    self.stage = ArmorStage::Done;
                    self.decode(true)?;
                }
                Some(None) => {
                    let line = self.parts.line().trim_ascii_end();
                    if starts_line && line.starts_with(END_MESSAGE) {
                        self.end()?;
                    } else if self.stage == ArmorStage::Footer {
                        if !line.trim_ascii().is_empty() {
                            return Err(invalid_armor());
                        }
                    } else if starts_line && line.starts_with(b"=") {
                        self.stage = ArmorStage::Footer;
                    } else {
                        if line.iter().any(|&b| matches!(b, b' ' | b'\t' | b'\r')) {
                            self.chars.extend(
                                line.iter().filter(|&&b| !matches!(b, b' ' | b'\t' | b'\r')),
                            );
                        } else {
                            self.chars.extend_from_slice(line);
                        }
                        if self.chars.len() >= B64_BLOCK {
                            self.decode(false)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl<R: BufRead> Read for FastArmor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fill()?;
        let avail = self.out.get(self.pos..).unwrap_or_default();
        let n = avail.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n;
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// A look at the packet framing before Sequoia: a SEIPD v1 too short to hold an MDC.

/// What [`SeipdGuard`] is reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// A top-level packet header is next.
    Header,
    /// Inside a top-level packet other than SEIPD: this many body octets before the next header.
    Body(u64),
    /// Looking no further: everything passes.
    Through,
}

/// Passes the binary message on unchanged, but reads the packet headers of the top level on the
/// way: a SEIPD v1 whose body (over all its partial chunks, or up to the end of the input) is
/// shorter than the prefix, a minimal packet and the MDC is [`Error::MissingIntegrityProtection`]
/// before Sequoia sees it. The in-memory path refuses those in `seipd::too_short`; Sequoia 2.4.2
/// panics on them (`data_consume_hard(bl + 2).unwrap()` in `parse.rs`), which partial body
/// lengths hide from the length check in [`StreamHelper::inspect`].
struct SeipdGuard<R: Read> {
    inner: io::BufReader<R>,
    state: Framing,
    /// Octets read ahead (a SEIPD's header and the start of its body), from `pos` on.
    ahead: Vec<u8>,
    pos: usize,
}

impl<R: Read> SeipdGuard<R> {
    fn new(inner: R) -> Self {
        Self {
            inner: io::BufReader::with_capacity(CHUNK, inner),
            state: Framing::Header,
            ahead: Vec::new(),
            pos: 0,
        }
    }

    /// One octet into `ahead`; `None` at the end of the input.
    fn octet(&mut self) -> io::Result<Option<u8>> {
        let mut b = [0u8; 1];
        loop {
            match self.inner.read(&mut b) {
                Ok(0) => return Ok(None),
                Ok(_) => {
                    self.ahead.push(b[0]);
                    return Ok(Some(b[0]));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// A new-format body length (RFC 9580 §4.2.1.1): `(length, partial)`.
    fn new_length(&mut self) -> io::Result<Option<(u64, bool)>> {
        let Some(o1) = self.octet()? else {
            return Ok(None);
        };
        Ok(match o1 {
            0..=191 => Some((u64::from(o1), false)),
            192..=223 => self
                .octet()?
                .map(|o2| (((u64::from(o1) - 192) << 8) + u64::from(o2) + 192, false)),
            224..=254 => Some((1u64 << (o1 & 0x1f), true)),
            255 => {
                let mut n = 0u64;
                for _ in 0..4 {
                    let Some(o) = self.octet()? else {
                        return Ok(None);
                    };
                    n = (n << 8) | u64::from(o);
                }
                Some((n, false))
            }
        })
    }

    /// Read the next top-level header into `ahead` and decide: `Some` body length of a packet
    /// to pass, or `None` to look no further (a SEIPD that is long enough, or framing that
    /// Sequoia will judge).
    fn header(&mut self) -> io::Result<Option<u64>> {
        let Some(ctb) = self.octet()? else {
            return Ok(None);
        };
        if ctb & 0x80 == 0 {
            return Ok(None);
        }
        let (tag, length) = if ctb & 0x40 != 0 {
            (ctb & 0x3f, self.new_length()?)
        } else {
            let tag = (ctb >> 2) & 0x0f;
            let octets = match ctb & 3 {
                0 => 1,
                1 => 2,
                2 => 4,
                // indeterminate: to the end of the input
                _ => 0,
            };
            let mut n = 0u64;
            for _ in 0..octets {
                let Some(o) = self.octet()? else {
                    return Ok(None);
                };
                n = (n << 8) | u64::from(o);
            }
            (tag, Some((n, octets == 0)))
        };
        let Some((len, open)) = length else {
            return Ok(None);
        };
        if tag != u8::from(Tag::SEIP) {
            return Ok((!open).then_some(len));
        }
        // SEIPD (tag 18: new format only, so `open` means partial): gather the body's first
        // octets over its partial chunks.
        let need = 1 + crate::seipd::MIN_CIPHERTEXT as u64;
        let (mut chunk, mut partial) = (len, open);
        let mut body = 0u64;
        let mut version = None;
        loop {
            while chunk > 0 && body < need {
                let Some(o) = self.octet()? else {
                    // the input ended inside the body
                    return if version == Some(1) {
                        Err(io::Error::other(Error::MissingIntegrityProtection))
                    } else {
                        Ok(None)
                    };
                };
                version.get_or_insert(o);
                chunk -= 1;
                body += 1;
            }
            if body >= need {
                return Ok(None);
            }
            if !partial {
                // the whole body is shorter than an MDC needs
                return if version == Some(1) {
                    Err(io::Error::other(Error::MissingIntegrityProtection))
                } else {
                    Ok(None)
                };
            }
            let Some((next, more)) = self.new_length()? else {
                return Ok(None);
            };
            (chunk, partial) = (next, more);
        }
    }
}

impl<R: Read> Read for SeipdGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.pos < self.ahead.len() {
                let avail = self.ahead.get(self.pos..).unwrap_or_default();
                let n = avail.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), avail.get(..n)) {
                    dst.copy_from_slice(src);
                }
                self.pos += n;
                if self.pos >= self.ahead.len() {
                    self.ahead.clear();
                    self.pos = 0;
                }
                return Ok(n);
            }
            match self.state {
                Framing::Through => return self.inner.read(buf),
                Framing::Body(0) => self.state = Framing::Header,
                Framing::Body(left) => {
                    let max = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = self.inner.read(buf.get_mut(..max).unwrap_or_default())?;
                    self.state = Framing::Body(left - n as u64);
                    if n == 0 {
                        self.state = Framing::Through;
                    }
                    return Ok(n);
                }
                Framing::Header => {
                    self.state = match self.header()? {
                        Some(len) => Framing::Body(len),
                        None => Framing::Through,
                    };
                    if self.ahead.is_empty() && self.state == Framing::Through {
                        return self.inner.read(buf);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The plaintext side is sealgate-mime's DecryptedWriter (shared with the S/MIME stream).

/// Whether a decrypted message (its header block) is a `multipart/signed` one.
fn is_signed(message: &[u8], limits: &Limits) -> bool {
    Entity::parse(message, limits).is_ok_and(|e| e.content_type().mime_type == "multipart/signed")
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
// Streaming encryption.

/// Remembers whether the last bytes written were CRLF (the armor must end with a line break
/// before the closing delimiter).
struct Tail<W> {
    inner: W,
    last: [u8; 2],
}

impl<W: Write> Write for Tail<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        match buf.get(..n).unwrap_or_default() {
            [] => {}
            [b] => self.last = [self.last[1], *b],
            [.., a, b] => self.last = [*a, *b],
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum EncStage<'a, W: Write + Send + Sync + 'a> {
    /// Waiting for the end of the header block.
    Head { out: W, held: Vec<u8> },
    /// The entity streams through the encryptor.
    Body(CanonicalWriter<crate::Encryptor<'a, Tail<W>>>),
}

/// Streaming PGP/MIME encryption of a whole message: the message goes in through
/// [`io::Write`] (header fields first, then the body), the `multipart/encrypted` message
/// (RFC 3156 §4) comes out of the wrapped writer as it is made, and
/// [`finish`](Self::finish) writes its end and returns the writer. Memory stays bounded (the
/// header block, at most [`MAX_HEADER_BLOCK`], plus small buffers) whatever the message size.
///
/// The output is what [`crate::encrypt_message`] writes for the same message (with another
/// boundary, and partial-length packets where the one-shot knows the length): the outer header
/// fields stay outside, the entity (`Content-*` fields and body, line ends made CRLF on the
/// way) is encrypted, and signed in the same pass when a signer is given. Differences: header
/// protection needs the whole message and is refused ([`Error::Operation`]; use the one-shot
/// helper), and unencoded binary parts are not re-encoded first, so their line ends are changed
/// like text's: send binary parts base64-encoded, as mail does, or pass the message through
/// [`mime::reencode::reencode`] with `Reencode::LineEnds` on its way in.
pub struct MessageEncryptor<'a, W: Write + Send + Sync + 'a> {
    stage: Option<EncStage<'a, W>>,
    recipients: &'a [Cert],
    signer: Option<&'a SecretKey>,
    opts: EncryptMessageOptions,
    limits: Limits,
    tail: Vec<u8>,
}

impl<W: Write + Send + Sync> std::fmt::Debug for MessageEncryptor<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageEncryptor")
            .field(
                "in_header",
                &matches!(self.stage, Some(EncStage::Head { .. })),
            )
            .finish_non_exhaustive()
    }
}

impl<'a, W: Write + Send + Sync + 'a> MessageEncryptor<'a, W> {
    /// Start encrypting to `recipients` into `out`, signing with `signer` when given.
    pub fn new(
        out: W,
        recipients: &'a [Cert],
        signer: Option<&'a SecretKey>,
        opts: &EncryptMessageOptions,
        limits: &Limits,
    ) -> Result<Self> {
        if opts.protect_headers {
            return Err(Error::Operation {
                what: "streaming encryption",
                detail: "header protection needs the whole message".into(),
            });
        }
        if recipients.is_empty() {
            return Err(Error::Operation {
                what: "encryption",
                detail: "no recipients".into(),
            });
        }
        for cert in recipients {
            // The typed error (expired, revoked, sign-only) before anything is written.
            cert.encryption_keys_for(None, std::time::SystemTime::now())?;
        }
        Ok(Self {
            stage: Some(EncStage::Head {
                out,
                held: Vec::with_capacity(4096),
            }),
            recipients,
            signer,
            opts: opts.clone(),
            limits: limits.clone(),
            tail: Vec::new(),
        })
    }

    /// The header block is complete (`block`, ending with its empty line, or all there was):
    /// write the outer header and the PGP/MIME frame, start the encryption with the entity's
    /// header.
    fn start(&mut self, out: W, block: &[u8]) -> Result<()> {
        // The header block alone: the body streams (a 7-bit walk of its parts, as the one-shot
        // makes, would need all of it).
        let (outer, entity) = mime::split_header_for_protection(block, &self.limits)?;
        let entity = match &self.opts.outer_subject {
            Some(_) => mime::protect_subject(&outer, &entity),
            None => entity,
        };
        let entity = crate::message::with_inner_headers(entity, &self.opts, &self.limits)?;
        let (head, tail) = mime::pgp_encrypted_frame(&mut rand_core::OsRng);
        let prefix = crate::message::with_outer(&outer, self.opts.outer_subject.as_deref(), &head);
        let mut out = Tail {
            inner: out,
            last: [0; 2],
        };
        out.write_all(&prefix)?;
        let enc = crate::Encryptor::build(
            out,
            self.recipients,
            self.signer,
            &EncryptOptions {
                armor: true,
                ..EncryptOptions::default()
            },
            b"\r\n",
            None,
        )?;
        let mut body = CanonicalWriter::new(enc);
        body.write_all(&entity)?;
        self.tail = tail;
        self.stage = Some(EncStage::Body(body));
        Ok(())
    }

    /// Encrypt the rest and write the end of the message; returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        let body = match self.stage.take() {
            Some(EncStage::Head { out, held }) => {
                self.start(out, &held)?;
                self.stage.take()
            }
            other => other,
        };
        let Some(EncStage::Body(body)) = body else {
            return Err(Error::Operation {
                what: "streaming encryption",
                detail: "already failed".into(),
            });
        };
        let mut out = body.finish()?.finish()?;
        if out.last != *b"\r\n" {
            out.write_all(b"\r\n")?;
        }
        out.write_all(&self.tail)?;
        out.flush()?;
        Ok(out.inner)
    }
}

impl<'a, W: Write + Send + Sync + 'a> Write for MessageEncryptor<'a, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.stage.take() {
            Some(EncStage::Body(mut body)) => {
                let r = body.write(buf);
                self.stage = Some(EncStage::Body(body));
                r
            }
            Some(EncStage::Head { out, mut held }) => {
                let from = held.len();
                held.extend_from_slice(buf);
                match mime::header_block_end(&held, from) {
                    Some(end) => {
                        let rest = held.split_off(end);
                        self.start(out, &held).map_err(io::Error::other)?;
                        if let Some(EncStage::Body(body)) = self.stage.as_mut() {
                            body.write_all(&rest)?;
                        }
                    }
                    None if held.len() > MAX_HEADER_BLOCK => {
                        return Err(io::Error::other(Error::LimitExceeded {
                            what: "header block",
                            limit: MAX_HEADER_BLOCK as u64,
                        }));
                    }
                    None => self.stage = Some(EncStage::Head { out, held }),
                }
                Ok(buf.len())
            }
            None => Err(io::Error::other("the message encryptor failed earlier")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stage {
            Some(EncStage::Body(body)) => body.flush(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyKind;
    use crate::keys::tests::{cert, fixture, secret};

    const OUTER: &[u8] = b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\n\
        Subject: streamed\r\nMIME-Version: 1.0\r\n";

    /// A message with `len` bytes of varied CRLF text as its body.
    fn plain_message(len: usize) -> Vec<u8> {
        let mut m = OUTER.to_vec();
        m.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii\r\n\r\n");
        let start = m.len();
        let mut i = 0u32;
        while m.len() - start < len {
            m.extend_from_slice(format!("line {i:07} of the streamed body\r\n").as_bytes());
            i += 1;
        }
        m.truncate(start + len);
        m
    }

    /// An armored OpenPGP message (or binary, armored here) wrapped as PGP/MIME.
    fn pgp_mime(openpgp_message: &[u8]) -> Vec<u8> {
        let armored = if openpgp_message.starts_with(b"-----BEGIN") {
            openpgp_message.to_vec()
        } else {
            let mut w =
                openpgp::armor::Writer::new(Vec::new(), openpgp::armor::Kind::Message).unwrap();
            w.write_all(openpgp_message).unwrap();
            w.finalize().unwrap()
        };
        let mut m = OUTER.to_vec();
        m.extend_from_slice(&mime::build_pgp_encrypted(&armored, &mut rand_core::OsRng));
        m
    }

    struct Streamed {
        message: Vec<u8>,
        spilled: SpilledMessage,
        _dir: tempfile::TempDir,
    }

    /// Decrypt by streaming through a reader of `cap` bytes at a time into a fresh spill
    /// directory, which must be empty again after an error.
    fn streamed(
        msg: &[u8],
        keys: &[SecretKey],
        signers: &[Cert],
        cap: usize,
        limits: &Limits,
    ) -> Result<Streamed> {
        let dir = tempfile::tempdir().unwrap();
        let r = decrypt_message(
            io::BufReader::with_capacity(cap, msg),
            keys,
            signers,
            dir.path(),
            limits,
        );
        match r {
            Ok(mut spilled) => {
                let mut message = Vec::new();
                spilled.reader()?.read_to_end(&mut message)?;
                assert_eq!(spilled.len(), message.len() as u64);
                Ok(Streamed {
                    message,
                    spilled,
                    _dir: dir,
                })
            }
            Err(e) => {
                let left = std::fs::read_dir(dir.path()).unwrap().count();
                assert_eq!(left, 0, "spill file left behind after {e}");
                Err(e)
            }
        }
    }

    fn assert_same(msg: &[u8], keys: &[SecretKey], signers: &[Cert], what: &str) {
        let limits = Limits::default();
        let one = crate::decrypt_message(msg, keys, signers, &limits)
            .unwrap_or_else(|e| panic!("{what}: one-shot: {e}"));
        for cap in [1, 7, 4096, 1 << 20] {
            let s = streamed(msg, keys, signers, cap, &limits).unwrap();
            assert!(
                s.message == *one.message,
                "{what}, cap {cap}: streamed != one-shot"
            );
            assert_eq!(s.spilled.aead(), one.aead, "{what}");
            let (a, b) = (
                &s.spilled.verification().signatures,
                &one.verification.signatures,
            );
            assert_eq!(a.len(), b.len(), "{what}");
            for (a, b) in a.iter().zip(b) {
                assert_eq!(
                    (a.valid, a.known, &a.fingerprint),
                    (b.valid, b.known, &b.fingerprint),
                    "{what}"
                );
            }
        }
    }

    #[test]
    fn streamed_equals_one_shot_around_the_buffer_sizes() {
        let limits = Limits::default();
        // A SEIPD v1 recipient (GnuPG-style) and a SEIPD v2 one (Sequoia's defaults).
        let v1 = SecretKey::generate_for_gnupg("V1 <v1@example.org>", KeyKind::Cv25519).unwrap();
        let v2 = SecretKey::generate("V2 <v2@example.org>", KeyKind::Cv25519).unwrap();
        for k in [&v1, &v2] {
            let to = [k.cert().clone()];
            for len in [
                0,
                1,
                1000,
                HOLD_BACK - 1,
                HOLD_BACK,
                HOLD_BACK + 1,
                2 * CHUNK + 3,
                LINE_PIECE * 3 + 11,
            ] {
                let raw = plain_message(len);
                for signer in [None, Some(k)] {
                    let enc = crate::encrypt_message(
                        &raw,
                        &to,
                        signer,
                        &EncryptMessageOptions::default(),
                        &mut rand_core::OsRng,
                        &limits,
                    )
                    .unwrap();
                    let what = format!(
                        "{len} B, v2 {}, signed {}",
                        k.cert().supports_seipdv2(),
                        signer.is_some()
                    );
                    assert_same(&enc, std::slice::from_ref(k), &to, &what);
                }
            }
            // An empty message, and an OpenPGP message with no plaintext at all.
            let enc = crate::encrypt_message(
                b"",
                &to,
                None,
                &EncryptMessageOptions::default(),
                &mut rand_core::OsRng,
                &limits,
            )
            .unwrap();
            assert_same(&enc, std::slice::from_ref(k), &to, "empty message");
            let empty = crate::encrypt(b"", &to, None, &EncryptOptions::default()).unwrap();
            assert_same(
                &pgp_mime(&empty),
                std::slice::from_ref(k),
                &to,
                "0 B plaintext",
            );
        }
    }

    #[test]
    fn gpg_made_and_sq_made_messages_match_the_one_shot() {
        for (file, key, signer) in [
            ("gpg-rsa-signed-by-ed.asc", "rsa", "ed"),
            ("gpg-ed-signed-by-rsa.asc", "ed", "rsa"),
            ("gpg-ed.pgp", "ed", "rsa"),
            ("sq-signed.asc", "sq", "sq"),
        ] {
            // The plaintext is not a MIME entity ("Hello from GnuPG."): both fail on it, after
            // the decryption, with the same error.
            let msg = pgp_mime(&fixture(file));
            let limits = Limits::default();
            let one = crate::decrypt_message(&msg, &[secret(key)], &[cert(signer)], &limits);
            let s = streamed(&msg, &[secret(key)], &[cert(signer)], 4096, &limits);
            match (one, s) {
                (Err(Error::Mime(a)), Err(Error::Mime(b))) => {
                    assert_eq!(a.to_string(), b.to_string(), "{file}")
                }
                (a, b) => panic!("{file}: {:?} / {:?}", a.err(), b.err()),
            }
            // With a MIME header in front, the same plaintext comes out of both.
            let d =
                crate::decrypt(&fixture(file), &[secret(key)], &[cert(signer)], &limits).unwrap();
            let mut entity = b"Content-Type: text/plain\r\n\r\n".to_vec();
            entity.extend_from_slice(&d.plaintext);
            let k = secret(key);
            let again = crate::encrypt(
                &entity,
                std::slice::from_ref(k.cert()),
                None,
                &EncryptOptions::default(),
            )
            .unwrap();
            assert_same(&pgp_mime(&again), &[k], &[], file);
        }
    }

    #[test]
    fn wrong_key_tampering_and_missing_protection_are_the_one_shot_errors() {
        let limits = Limits::default();
        let k = SecretKey::generate_for_gnupg("K <k@example.org>", KeyKind::Cv25519).unwrap();
        let other = SecretKey::generate("O <o@example.org>", KeyKind::Cv25519).unwrap();
        let raw = plain_message(3 * HOLD_BACK + 17);
        let enc = crate::encrypt_message(
            &raw,
            std::slice::from_ref(k.cert()),
            None,
            &EncryptMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let r = streamed(&enc, std::slice::from_ref(&other), &[], 4096, &limits);
        assert!(matches!(r, Err(Error::NoMatchingKey)), "{:?}", r.err());

        // Flip one base64 character mid-stream (plaintext before it was already spilled) and
        // one near the end: the MDC fails, coarsely, and the spill file is gone.
        let text = std::str::from_utf8(&enc).unwrap();
        let begin = text.find("-----BEGIN PGP MESSAGE").unwrap();
        let end = text.find("-----END PGP MESSAGE").unwrap();
        for at in [(begin + end) / 2, end - 600] {
            let mut tampered = enc.clone();
            let at = at
                + tampered[at..]
                    .iter()
                    .position(u8::is_ascii_alphanumeric)
                    .unwrap();
            let c = tampered[at];
            tampered[at] = if c == b'A' { b'B' } else { b'A' };
            let r = streamed(&tampered, std::slice::from_ref(&k), &[], 4096, &limits);
            assert!(
                matches!(r, Err(Error::DecryptionFailed)),
                "at {at}: {:?}",
                r.err()
            );
            let one = crate::decrypt_message(&tampered, std::slice::from_ref(&k), &[], &limits);
            assert!(
                matches!(one, Err(Error::DecryptionFailed)),
                "{:?}",
                one.err()
            );
        }

        // A SEIPD v1 too short for an MDC behind partial body lengths (Sequoia would panic
        // on it; the fuzzer found it): refused before Sequoia sees it, and by the one-shot.
        let (short, at) = crate::decrypt::tests::seipd_v1_at(&k, b"A: b\r\n\r\nx", false);
        let (head, seipd) = short.split_at(at);
        let body = &seipd[6..]; // CTB, 0xff, 4-octet length
        for first in [1usize, 2, 8, 16] {
            let mut partial = head.to_vec();
            partial.push(0xc0 | 18);
            partial.push(0xe0 | first.trailing_zeros() as u8);
            partial.extend_from_slice(&body[..first]);
            partial.push(u8::try_from(body.len() - first).unwrap());
            partial.extend_from_slice(&body[first..]);
            let m = pgp_mime(&partial);
            let r = streamed(&m, std::slice::from_ref(&k), &[], 4096, &limits);
            assert!(
                matches!(r, Err(Error::MissingIntegrityProtection)),
                "{:?}",
                r.err()
            );
            let one = crate::decrypt_message(&m, std::slice::from_ref(&k), &[], &limits);
            assert!(
                matches!(
                    one,
                    Err(Error::MissingIntegrityProtection | Error::Malformed { .. })
                ),
                "{:?}",
                one.err()
            );
        }

        // Legacy SED (gpg --rfc2440), SEIPD v1 without MDC, short and long.
        let sed = pgp_mime(&fixture("gpg-rsa-sed.pgp"));
        let r = streamed(&sed, &[secret("rsa")], &[], 4096, &limits);
        assert!(
            matches!(r, Err(Error::MissingIntegrityProtection)),
            "{:?}",
            r.err()
        );
        let mut long = b"Content-Type: text/plain\r\n\r\n".to_vec();
        long.resize(100_000, b'x');
        for body in [&b"A: b\r\n\r\nsecret"[..], &long[..]] {
            let no_mdc = pgp_mime(&crate::decrypt::tests::seipd_v1(&k, body, false));
            let r = streamed(&no_mdc, std::slice::from_ref(&k), &[], 4096, &limits);
            assert!(
                matches!(r, Err(Error::MissingIntegrityProtection)),
                "{:?}",
                r.err()
            );
            let with_mdc = pgp_mime(&crate::decrypt::tests::seipd_v1(&k, body, true));
            assert_same(
                &with_mdc,
                std::slice::from_ref(&k),
                &[],
                "hand-made SEIPD v1",
            );
        }
    }

    /// The armor of `msg` (a PGP/MIME message), rewritten by `f`, put back.
    fn rewrite_armor(msg: &[u8], f: impl Fn(&str) -> String) -> Vec<u8> {
        let text = std::str::from_utf8(msg).unwrap();
        let begin = text.find("-----BEGIN PGP MESSAGE-----").unwrap();
        let end = text.find("-----END PGP MESSAGE-----").unwrap() + 25;
        format!("{}{}{}", &text[..begin], f(&text[begin..end]), &text[end..]).into_bytes()
    }

    #[test]
    fn armor_shapes_read_like_the_one_shot() {
        let limits = Limits::default();
        let k = SecretKey::generate_for_gnupg("K <k@example.org>", KeyKind::Cv25519).unwrap();
        let enc = crate::encrypt_message(
            &plain_message(200_000),
            std::slice::from_ref(k.cert()),
            None,
            &EncryptMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let body_lines = |armor: &str| -> Vec<String> {
            armor
                .lines()
                .filter(|l| !l.starts_with("-----") && !l.starts_with('=') && !l.is_empty())
                .map(str::to_owned)
                .collect()
        };
        type Shape = Box<dyn Fn(&str) -> String>;
        let shapes: Vec<(&str, Shape)> = vec![
            ("as written", Box::new(|a: &str| a.to_owned())),
            (
                "no checksum",
                Box::new(|a: &str| {
                    a.lines()
                        .filter(|l| !l.starts_with('='))
                        .collect::<Vec<_>>()
                        .join("\r\n")
                }),
            ),
            (
                "LF, 64-character lines, a comment",
                Box::new(move |a: &str| {
                    let b64: String = body_lines(a).concat();
                    let lines: Vec<&str> = b64
                        .as_bytes()
                        .chunks(64)
                        .map(|c| std::str::from_utf8(c).unwrap())
                        .collect();
                    format!(
                        "-----BEGIN PGP MESSAGE-----\nComment: x\n\n{}\n-----END PGP MESSAGE-----",
                        lines.join("\n")
                    )
                }),
            ),
            (
                "trailing blanks, blank lines",
                Box::new(|a: &str| {
                    a.replace("\r\n", " \t\r\n")
                        .replacen("-----BEGIN", "\r\n\r\n-----BEGIN", 1)
                }),
            ),
            // not the usual shape: Sequoia's reader, in both paths
            (
                "text before the armor",
                Box::new(|a: &str| format!("Encrypted with sealgate:\r\n{a}")),
            ),
            (
                "one line of 3000 characters and more",
                Box::new(move |a: &str| {
                    format!(
                        "-----BEGIN PGP MESSAGE-----\r\n\r\n{}\r\n-----END PGP MESSAGE-----",
                        body_lines(a).concat()
                    )
                }),
            ),
        ];
        for (what, f) in &shapes {
            let m = rewrite_armor(&enc, f);
            assert_same(&m, std::slice::from_ref(&k), &[], what);
        }
        // Bad base64 in the body, text after the checksum: errors, and no plaintext.
        for (what, bad) in [
            (
                "a bad character",
                rewrite_armor(&enc, |a| {
                    let at = a.len() / 2;
                    format!("{}*{}", &a[..at], &a[at + 1..])
                }),
            ),
            (
                "text after the checksum",
                rewrite_armor(&enc, |a| a.replace("\r\n-----END", "\r\nAAAA\r\n-----END")),
            ),
        ] {
            let r = streamed(&bad, std::slice::from_ref(&k), &[], 4096, &limits);
            assert!(r.is_err(), "{what}");
        }
    }

    #[test]
    fn other_messages_are_typed_errors() {
        let limits = Limits::default();
        let k = secret("ed");
        // Signed, not encrypted.
        let signed = pgp_mime(&fixture("gpg-inline-signed-by-ed.asc"));
        let r = streamed(&signed, std::slice::from_ref(&k), &[], 4096, &limits);
        assert!(matches!(r, Err(Error::NotEncrypted)), "{:?}", r.err());
        // Not PGP/MIME at all.
        let r = streamed(
            &plain_message(100),
            std::slice::from_ref(&k),
            &[],
            4096,
            &limits,
        );
        assert!(
            matches!(r, Err(Error::WrongMessageType { .. })),
            "{:?}",
            r.err()
        );
        // Garbage in the encrypted part, a missing control part, three parts.
        let garbage =
            pgp_mime(b"-----BEGIN PGP MESSAGE-----\r\n\r\nAAAA\r\n-----END PGP MESSAGE-----\r\n");
        let r = streamed(&garbage, std::slice::from_ref(&k), &[], 4096, &limits);
        assert!(matches!(r, Err(Error::Malformed { .. })), "{:?}", r.err());
        let good = pgp_mime(&fixture("gpg-ed.pgp"));
        let text = String::from_utf8(good.clone()).unwrap();
        let boundary = text
            .split("boundary=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let no_version = text.replace("Version: 1", "Version: 2");
        let r = streamed(
            no_version.as_bytes(),
            std::slice::from_ref(&k),
            &[],
            4096,
            &limits,
        );
        assert!(matches!(r, Err(Error::Mime(_))), "{:?}", r.err());
        let three = text.replace(
            &format!("--{boundary}--"),
            &format!("--{boundary}\r\nContent-Type: text/plain\r\n\r\nthird\r\n--{boundary}--"),
        );
        let r = streamed(
            three.as_bytes(),
            std::slice::from_ref(&k),
            &[],
            4096,
            &limits,
        );
        assert!(matches!(r, Err(Error::Mime(_))), "{:?}", r.err());
        assert!(crate::decrypt_message(three.as_bytes(), &[k], &[], &limits).is_err());
    }

    #[test]
    fn the_spill_limit_stops_the_decryption() {
        let k = SecretKey::generate("K <k@example.org>", KeyKind::Cv25519).unwrap();
        let mut limits = Limits::default();
        // A compressed message: 8 MiB of one letter in a few KiB.
        let mut zeros = b"Content-Type: text/plain\r\n\r\n".to_vec();
        zeros.resize(8 << 20, b'a');
        let bomb = crate::encrypt(
            &zeros,
            std::slice::from_ref(k.cert()),
            None,
            &EncryptOptions {
                armor: true,
                compression: true,
            },
        )
        .unwrap();
        assert!(bomb.len() < 100_000);
        limits.max_spill_bytes = 1 << 20;
        let r = streamed(
            &pgp_mime(&bomb),
            std::slice::from_ref(&k),
            &[],
            4096,
            &limits,
        );
        assert!(
            matches!(r, Err(Error::LimitExceeded { limit, .. }) if limit == 1 << 20),
            "{:?}",
            r.err()
        );
        limits.max_spill_bytes = 16 << 20;
        let s = streamed(
            &pgp_mime(&bomb),
            std::slice::from_ref(&k),
            &[],
            4096,
            &limits,
        )
        .unwrap();
        assert!(s.message.ends_with(&zeros[zeros.len() - 1000..]));
    }

    #[test]
    fn a_signed_entity_inside_verifies_like_the_one_shot() {
        let limits = Limits::default();
        let alice = SecretKey::generate("Alice <alice@example.org>", KeyKind::Cv25519).unwrap();
        let bob = SecretKey::generate("Bob <bob@example.org>", KeyKind::Cv25519).unwrap();
        let signers = [alice.cert().clone()];
        let raw = plain_message(300_000);
        let signed = crate::sign_message(&raw, &alice, &mut rand_core::OsRng, &limits).unwrap();
        let enc = crate::encrypt_message(
            &signed,
            std::slice::from_ref(bob.cert()),
            None,
            &EncryptMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let one =
            crate::decrypt_message(&enc, std::slice::from_ref(&bob), &signers, &limits).unwrap();
        assert!(one.verification.is_valid());
        let s = streamed(&enc, std::slice::from_ref(&bob), &signers, 4096, &limits).unwrap();
        assert!(s.spilled.is_signed());
        assert!(s.spilled.verification().signatures.is_empty());
        let d = s.spilled.into_decrypted(&signers, &limits).unwrap();
        assert_eq!(*d.message, *one.message);
        assert!(d.verification.is_valid());
        assert_eq!(
            d.verification.signatures.len(),
            one.verification.signatures.len()
        );
    }

    /// Header protection streams past the in-memory bound; a Legacy Display Element, which
    /// must be cut out of the body, needs the whole entity and so stays within it.
    #[test]
    fn header_protection_streams_unless_a_legacy_display_element_needs_the_whole() {
        let limits = Limits::default();
        let bob = SecretKey::generate("Bob <bob@example.org>", KeyKind::Cv25519).unwrap();
        let raw = plain_message(300_000);
        let mut small = Limits::default();
        small.max_message_bytes = 100_000;
        for legacy_display in [false, true] {
            let opts = EncryptMessageOptions {
                protect_headers: true,
                legacy_display,
                ..Default::default()
            };
            let enc = crate::encrypt_message(
                &raw,
                std::slice::from_ref(bob.cert()),
                None,
                &opts,
                &mut rand_core::OsRng,
                &limits,
            )
            .unwrap();
            let one =
                crate::decrypt_message(&enc, std::slice::from_ref(&bob), &[], &limits).unwrap();
            assert_eq!(
                one.header_protection
                    .as_ref()
                    .map(|h| h.legacy_display_removed),
                Some(legacy_display)
            );
            let s = streamed(&enc, std::slice::from_ref(&bob), &[], 4096, &limits).unwrap();
            assert_eq!(s.message, *one.message, "legacy display {legacy_display}");
            assert_eq!(
                s.spilled.header_protection(),
                one.header_protection.as_ref()
            );
            let over = streamed(&enc, std::slice::from_ref(&bob), &[], 4096, &small);
            match over {
                Ok(s) => {
                    assert!(!legacy_display);
                    assert_eq!(s.message, *one.message);
                }
                Err(e) => {
                    assert!(legacy_display, "{e}");
                    assert!(matches!(e, Error::LimitExceeded { .. }), "{e}");
                }
            }
        }
    }

    #[test]
    fn header_protection_matches_the_one_shot() {
        let limits = Limits::default();
        let bob = SecretKey::generate("Bob <bob@example.org>", KeyKind::Cv25519).unwrap();
        let raw = plain_message(50_000);
        let opts = EncryptMessageOptions {
            protect_headers: true,
            ..Default::default()
        };
        let enc = crate::encrypt_message(
            &raw,
            std::slice::from_ref(bob.cert()),
            None,
            &opts,
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let one = crate::decrypt_message(&enc, std::slice::from_ref(&bob), &[], &limits).unwrap();
        assert!(one.header_protection.is_some());
        let s = streamed(&enc, std::slice::from_ref(&bob), &[], 4096, &limits).unwrap();
        assert_eq!(s.message, *one.message);
        assert_eq!(
            s.spilled.header_protection().map(|h| &h.protected),
            one.header_protection.as_ref().map(|h| &h.protected)
        );
        // An outer Subject replaced, the real one restored from inside.
        let opts = EncryptMessageOptions {
            outer_subject: Some("...".into()),
            ..Default::default()
        };
        let enc = crate::encrypt_message(
            &raw,
            std::slice::from_ref(bob.cert()),
            None,
            &opts,
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        assert_same(&enc, std::slice::from_ref(&bob), &[], "outer subject");
    }

    #[test]
    fn spill_file_is_private_and_persists_by_rename() {
        let limits = Limits::default();
        let bob = SecretKey::generate("Bob <bob@example.org>", KeyKind::Cv25519).unwrap();
        let enc = crate::encrypt_message(
            &plain_message(1000),
            std::slice::from_ref(bob.cert()),
            None,
            &EncryptMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let spilled = decrypt_message(&enc[..], &[bob], &[], dir.path(), &limits).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(names.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&names[0]).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let kept = dir.path().join("kept.eml");
        spilled.persist(&kept).unwrap();
        let back = std::fs::read(&kept).unwrap();
        assert!(back.starts_with(b"From: Alice"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn message_encryptor_writes_what_the_one_shot_reads() {
        let limits = Limits::default();
        let v1 = SecretKey::generate_for_gnupg("V1 <v1@example.org>", KeyKind::Cv25519).unwrap();
        let v2 = SecretKey::generate("V2 <v2@example.org>", KeyKind::Cv25519).unwrap();
        for k in [&v1, &v2] {
            let to = [k.cert().clone()];
            for len in [0, 5, 100_000] {
                // LF line ends in, CRLF inside the encryption
                let raw = plain_message(len);
                let lf = String::from_utf8(raw.clone())
                    .unwrap()
                    .replace("\r\n", "\n");
                for signer in [None, Some(k)] {
                    for (subject, raw) in [(None, &raw[..]), (Some("..."), lf.as_bytes())] {
                        let opts = EncryptMessageOptions {
                            outer_subject: subject.map(Into::into),
                            ..Default::default()
                        };
                        let mut w =
                            MessageEncryptor::new(Vec::new(), &to, signer, &opts, &limits).unwrap();
                        for piece in raw.chunks(777) {
                            w.write_all(piece).unwrap();
                        }
                        let out = w.finish().unwrap();
                        let one = crate::encrypt_message(
                            raw,
                            &to,
                            signer,
                            &opts,
                            &mut rand_core::OsRng,
                            &limits,
                        )
                        .unwrap();
                        let a = crate::decrypt_message(&out, std::slice::from_ref(k), &to, &limits)
                            .unwrap();
                        let b = crate::decrypt_message(&one, std::slice::from_ref(k), &to, &limits)
                            .unwrap();
                        assert_eq!(*a.message, *b.message, "{len} B");
                        assert_eq!(a.verification.is_valid(), signer.is_some());
                        // the outer header is the same too (the boundary aside)
                        let head = |m: &[u8]| {
                            m[..m.windows(9).position(|w| w == b"boundary=").unwrap()].to_vec()
                        };
                        assert_eq!(head(&out), head(&one));
                        assert_same(&out, std::slice::from_ref(k), &to, "streamed encryption");
                    }
                }
            }
        }
        let opts = EncryptMessageOptions {
            protect_headers: true,
            ..Default::default()
        };
        let to = [v1.cert().clone()];
        assert!(matches!(
            MessageEncryptor::new(Vec::new(), &to, None, &opts, &limits),
            Err(Error::Operation { .. })
        ));
    }

    #[test]
    fn corruption_never_panics() {
        let limits = Limits::default();
        let k = SecretKey::generate_for_gnupg("K <k@example.org>", KeyKind::Cv25519).unwrap();
        let enc = crate::encrypt_message(
            &plain_message(2000),
            std::slice::from_ref(k.cert()),
            Some(&k),
            &EncryptMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let mut x = 0x9e37_79b9_u32;
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let mut m = enc.clone();
            let at = x as usize % m.len();
            m[at] = (x >> 8) as u8;
            if x.is_multiple_of(7) {
                m.truncate(at);
            }
            if let Ok(s) = streamed(&m, std::slice::from_ref(&k), &[], 64, &limits) {
                // whatever came out passed the MDC: it is the plaintext of some message
                assert!(!s.spilled.is_empty());
            }
        }
    }
}
