//! PGP/MIME `multipart/signed` (RFC 3156 §5) read as a stream: see [`verify_message`].

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use sealgate_mime::multipart::{Delimiter, MultipartReader as Parts, PartBody};
use sealgate_mime::{self as mime, CanonicalWriter, Entity, HeaderField, Limits};

use super::{CHUNK, MAX_HEADER_BLOCK, Spill, header_end, mime_malformed, read_header_block};
use crate::error::{Error, Result};
use crate::message::VerifiedMessage;
use crate::{Cert, Verification};

/// Largest signature part (`application/pgp-signature`, header and armor) read. A detached
/// signature is a few hundred bytes; this leaves room for many signers.
pub const MAX_SIGNATURE_PART: usize = 1024 * 1024;

/// The verified message (outer header fields and the signed entity, as
/// [`VerifiedMessage::message`] holds it) in its spill file, with the signature report.
/// It exists only once every signature was checked; whether they passed is
/// [`verification`](Self::verification)'s to say, as with the one-shot. Deleted from disk when
/// dropped (unless [`persist`](Self::persist)ed). `Debug` never shows content.
pub struct SpilledVerified {
    spill: Spill,
    verification: Verification,
    header_protection: Option<mime::HeaderProtection>,
}

impl std::fmt::Debug for SpilledVerified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpilledVerified")
            .field("len", &self.spill.len)
            .field("verification", &self.verification)
            .field("header_protection", &self.header_protection)
            .finish_non_exhaustive()
    }
}

impl SpilledVerified {
    /// Size of the message in bytes.
    pub fn len(&self) -> u64 {
        self.spill.len
    }

    /// True for an empty message (never the case: `MIME-Version` is always there).
    pub fn is_empty(&self) -> bool {
        self.spill.len == 0
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
        self.spill.persist(path)
    }

    /// The message in memory (at most `Limits::max_message_bytes`): the [`VerifiedMessage`]
    /// that [`crate::verify_message`] returns for the same input.
    pub fn into_verified(mut self, limits: &Limits) -> Result<VerifiedMessage> {
        // signed, not secret: out of its wiping wrapper without a copy
        let message = std::mem::take(&mut *self.spill.read_all(limits)?);
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
    let spill = tempfile::Builder::new()
        .prefix(".sealgate-verified-")
        .tempfile_in(spill_dir)?;

    // The signed part, canonical CRLF (RFC 3156 §5: it is hashed in that form, as the
    // one-shot's `canonicalize_crlf`), into the spill file behind the message's header.
    let mut signed = PartBody::new(parts, Vec::new(), false);
    let mut sink = CanonicalWriter::new(SignedPart::new(&outer, spill.as_file(), limits));
    let mut buf = vec![0u8; CHUNK];
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
        spill: Spill { file: spill, len },
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
                match header_end(&held, from) {
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
}
