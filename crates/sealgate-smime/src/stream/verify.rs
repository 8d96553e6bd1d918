//! Streaming verification of signed S/MIME messages: detached `multipart/signed` and opaque
//! `application/pkcs7-mime; smime-type=signed-data`, of any size.
//!
//! The signed content is hashed as it streams by (the digests the message announces: the
//! `micalg` parameter of `multipart/signed`, RFC 8551 §3.5.3.2, SHA-256 when it names none we
//! know; the digestAlgorithms of an opaque SignedData) and written, as
//! [`crate::verify_message`] would return it, to a spill file; what stays in memory is the
//! header blocks, the signature (certificates, signerInfos: at most `Limits::max_cms_bytes`)
//! and buffers of a few hundred KiB. A signer whose digest was not computed, or without signed
//! attributes (then the signature covers the content itself, which is gone by the time the
//! signature is read), gives [`Error::NotStreamable`]: the one-shot function reads it.
//! Header protection in the signed entity streams as in the streamed decryption: only a part
//! marked for a Legacy Display Element needs the whole entity (bounded by
//! `Limits::max_message_bytes`).

use std::fs::File;
use std::io::{self, BufRead, BufWriter, Read, Seek, Write};
use std::path::Path;
use std::time::SystemTime;

use const_oid::db::rfc5911;
use sealgate_mime::multipart::{Delimiter, MultipartReader, PartBody};
use sealgate_mime::spill::SpillFile;
use sealgate_mime::{self as mime, CanonicalWriter, Entity, Limits};
use zeroize::Zeroizing;

use super::{Base64Reader, Ber, CHUNK, MAX_HEADER_BLOCK, chunks, from_io, malformed, oid_of};
use crate::alg::{DigestAlgorithm, Hasher};
use crate::cert::TrustStore;
use crate::error::{Error, Result};
use crate::message::{self, SmimeKind, VerifiedMessage};
use crate::signed::{self, Verification, VerifyOptions};
use crate::tlv::{self, tag};

/// Most distinct digest algorithms computed over a streamed content.
const MAX_DIGESTS: usize = 4;

/// A verified message in its spill file: what [`crate::verify_message`] returns as
/// [`VerifiedMessage::message`] (the outer header fields and the signed entity, without the
/// signature), with the report. An invalid signature is a report, not an error, as in the
/// one-shot function: check [`verification`](Self::verification) before trusting the content.
/// Deleted from disk when dropped (unless [`persist`](Self::persist)ed). `Debug` never shows
/// content.
pub struct SpilledVerified {
    spill: SpillFile,
    verification: Verification,
    opaque: bool,
    header_protection: Option<mime::HeaderProtection>,
}

impl std::fmt::Debug for SpilledVerified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpilledVerified")
            .field("len", &self.spill.len())
            .field("verification", &self.verification)
            .field("opaque", &self.opaque)
            .field("header_protection", &self.header_protection)
            .finish_non_exhaustive()
    }
}

impl SpilledVerified {
    /// Size of the message in bytes.
    pub fn len(&self) -> u64 {
        self.spill.len()
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.spill.is_empty()
    }

    /// Signer reports and checks (`content` is `None`: the content is the spill file).
    pub fn verification(&self) -> &Verification {
        &self.verification
    }

    /// True for opaque signed-data, false for `multipart/signed`.
    pub fn opaque(&self) -> bool {
        self.opaque
    }

    /// Header protection found in the signed entity (its fields are the message's header).
    pub fn header_protection(&self) -> Option<&mime::HeaderProtection> {
        self.header_protection.as_ref()
    }

    /// The message from its first byte.
    pub fn reader(&mut self) -> io::Result<&mut File> {
        self.spill.reader()
    }

    /// Copy the message to `out`; returns the number of bytes.
    pub fn copy_to(&mut self, out: &mut impl Write) -> io::Result<u64> {
        let n = io::copy(self.reader()?, out)?;
        out.flush()?;
        Ok(n)
    }

    /// Keep the message as `path` (a rename within the spill directory's file system; mode
    /// 0600). Replaces an existing file.
    pub fn persist(self, path: &Path) -> Result<File> {
        self.spill.persist(path).map_err(Error::Io)
    }

    /// The [`VerifiedMessage`] in memory (at most `Limits::max_message_bytes`): what
    /// [`crate::verify_message`] returns, except that `verification.content` stays `None`.
    pub fn into_verified(mut self, limits: &Limits) -> Result<VerifiedMessage> {
        // signed, not secret: out of its wiping wrapper without a copy
        let message = std::mem::take(&mut *super::read_all(&mut self.spill, limits)?);
        Ok(VerifiedMessage {
            verification: self.verification,
            message,
            opaque: self.opaque,
            header_protection: self.header_protection,
        })
    }
}

/// Verify a signed message from `input` against `trust` (`at`: the time taken as now, `None`
/// the clock), writing the message without its signature to a spill file in `spill_dir`. The
/// signer's address is checked against the From header, as [`crate::verify_message`] does,
/// whose result this is byte for byte (see the module documentation for what is held in
/// memory and when [`Error::NotStreamable`] sends a message back to the one-shot function).
///
/// Errors: [`Error::WrongMessageType`] for a message that is not signed, and the errors of
/// [`crate::verify_message`].
pub fn verify_message(
    input: impl BufRead,
    trust: &TrustStore,
    at: Option<SystemTime>,
    spill_dir: &Path,
    limits: &Limits,
) -> Result<SpilledVerified> {
    let mut spill = SpillFile::create_in(spill_dir, ".sealgate-verified-")?;
    let checked = verify_into(input, trust, at, Some(spill.as_file()), limits)?;
    spill.set_len(checked.len);
    Ok(SpilledVerified {
        spill,
        verification: checked.verification,
        opaque: checked.opaque,
        header_protection: checked.header_protection,
    })
}

/// What [`verify_into`] found.
pub(super) struct Checked {
    pub(super) verification: Verification,
    pub(super) opaque: bool,
    /// Header protection of the signed entity (only with an output).
    pub(super) header_protection: Option<mime::HeaderProtection>,
    /// The header block of the signed entity (CRLF).
    pub(super) signed_head: Zeroizing<Vec<u8>>,
    pub(super) len: u64,
}

/// The streamed verification; the message without its signature goes to `out` (nothing is
/// written without one: then only the report and the signed entity's header are made).
pub(super) fn verify_into(
    mut input: impl BufRead,
    trust: &TrustStore,
    at: Option<SystemTime>,
    out: Option<&File>,
    limits: &Limits,
) -> Result<Checked> {
    let head = super::read_header_block(&mut input)?;
    let kind = message::classify(&head, limits)?;
    let entity = Entity::parse(&head, limits)?;
    let opts = VerifyOptions {
        at,
        from: Some(message::sender_address(&entity)),
        allow_sha1: false,
    };
    // A line the toolkit does not take as a header field ends the header there, as in the
    // one-shot parse: what follows it in the block is body, read before the rest.
    let body = io::Cursor::new(entity.body().to_vec()).chain(input);
    let mut sink = Output::new(&head, out, limits.clone());
    let (verification, opaque) = match kind {
        SmimeKind::DetachedSigned => {
            let ct = entity.content_type();
            let boundary = ct
                .param("boundary")
                .filter(|b| !b.is_empty())
                .ok_or_else(|| mime_malformed("multipart without boundary parameter"))?;
            let algs = micalg_digests(ct.param("micalg"));
            let parts = MultipartReader::new(body, boundary.as_bytes().to_vec());
            (
                detached(parts, &algs, &mut sink, trust, &opts, limits)?,
                false,
            )
        }
        SmimeKind::OpaqueSigned | SmimeKind::Encrypted => {
            let v = match entity.transfer_encoding().as_deref() {
                None | Some("7bit" | "8bit" | "binary") => {
                    opaque(&mut Ber::new(body), &mut sink, trust, &opts, limits)?
                }
                Some("base64") => {
                    let decoded = io::BufReader::with_capacity(CHUNK, Base64Reader::new(body));
                    opaque(&mut Ber::new(decoded), &mut sink, trust, &opts, limits)?
                }
                Some("quoted-printable") => {
                    return Err(Error::UnsupportedAlgorithm {
                        what: "transfer encoding for streaming verification",
                        oid: "quoted-printable".into(),
                    });
                }
                Some(_) => return Err(mime_malformed("unknown Content-Transfer-Encoding")),
            };
            (v, true)
        }
        SmimeKind::None => {
            return Err(Error::WrongMessageType {
                expected: "signed",
                found: message::found_type(&head, limits),
            });
        }
    };
    let (len, header_protection, signed_head) = sink.finish()?;
    Ok(Checked {
        verification,
        opaque,
        header_protection,
        signed_head,
        len,
    })
}

fn mime_malformed(detail: &str) -> Error {
    Error::Mime(mime::Error::Malformed {
        detail: detail.into(),
    })
}

fn two_parts() -> Error {
    mime_malformed("multipart/signed must have exactly two parts")
}

/// The digests named by a `micalg` parameter (RFC 8551 §3.5.3.2; a comma-separated list when
/// there are several signers), SHA-256 when it names none we know.
fn micalg_digests(micalg: Option<&str>) -> Vec<DigestAlgorithm> {
    let mut algs = Vec::new();
    for name in micalg.unwrap_or_default().split(',') {
        let alg = match name.trim().to_ascii_lowercase().as_str() {
            "sha-1" | "sha1" => DigestAlgorithm::Sha1,
            "sha-256" | "sha256" => DigestAlgorithm::Sha256,
            "sha-384" | "sha384" => DigestAlgorithm::Sha384,
            "sha-512" | "sha512" => DigestAlgorithm::Sha512,
            _ => continue,
        };
        if !algs.contains(&alg) && algs.len() < MAX_DIGESTS {
            algs.push(alg);
        }
    }
    if algs.is_empty() {
        algs.push(DigestAlgorithm::Sha256);
    }
    algs
}

/// The running digests of the signed content.
struct Digests(Vec<(DigestAlgorithm, Hasher)>);

impl Digests {
    fn new(algs: &[DigestAlgorithm]) -> Self {
        Self(algs.iter().map(|&a| (a, a.hasher())).collect())
    }

    fn update(&mut self, data: &[u8]) {
        for (_, h) in &mut self.0 {
            h.update(data);
        }
    }

    fn finish(self) -> Vec<(DigestAlgorithm, Vec<u8>)> {
        self.0.into_iter().map(|(a, h)| (a, h.finish())).collect()
    }
}

/// The canonical signed part: into the digests, and on to the output.
struct Tee<'a, 'f> {
    digests: &'a mut Digests,
    sink: &'a mut Output<'f>,
}

impl Write for Tee<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.digests.update(buf);
        self.sink.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `multipart/signed` (RFC 1847 §2.1, RFC 8551 §3.5): the first part canonicalised and hashed
/// as it streams, then the signature part (bounded).
fn detached<R: BufRead>(
    mut parts: MultipartReader<R>,
    algs: &[DigestAlgorithm],
    sink: &mut Output<'_>,
    trust: &TrustStore,
    opts: &VerifyOptions,
    limits: &Limits,
) -> Result<Verification> {
    match parts.skip_preamble()? {
        Some(Delimiter::Open) => {}
        Some(Delimiter::Close) => return Err(two_parts()),
        None => return Err(mime_malformed("multipart body without boundary delimiter")),
    }
    let mut digests = Digests::new(algs);
    let mut first = PartBody::new(parts, Vec::new(), false);
    {
        let mut w = CanonicalWriter::new(Tee {
            digests: &mut digests,
            sink,
        });
        io::copy(&mut first, &mut w).map_err(from_io)?;
        w.finish().map_err(from_io)?;
    }
    if first.ended_by() != Some(Delimiter::Open) {
        return Err(two_parts());
    }
    let mut parts = first.into_parts();
    // base64 with line breaks: at most 4/3 of the DER and 2 bytes per 76, plus a header
    let max = limits
        .max_cms_bytes
        .saturating_mul(3)
        .saturating_div(2)
        .saturating_add(MAX_HEADER_BLOCK);
    let (part, end) = parts.read_part(max)?.ok_or(Error::LimitExceeded {
        what: "signature part",
        limit: max as u64,
    })?;
    if end == Some(Delimiter::Open) {
        return Err(two_parts());
    }
    let der = Entity::parse(&part, limits)?.decoded_body(limits)?;
    signed::verify_digests(&der, &digests.finish(), trust, opts, limits)
}

/// Opaque signed-data (RFC 5652 §5.1): ContentInfo → SignedData walked as it arrives, the
/// eContent hashed with every digestAlgorithm and canonicalised into the output, the rest
/// (certificates, CRLs, signerInfos) gathered; then the SignedData without its eContent is
/// verified against the digests.
fn opaque<B: BufRead>(
    b: &mut Ber<B>,
    sink: &mut Output<'_>,
    trust: &TrustStore,
    opts: &VerifyOptions,
    limits: &Limits,
) -> Result<Verification> {
    // ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT content }
    let ci = b.expect(tag::SEQUENCE, "ContentInfo")?;
    let ci_end = b.end_of(&ci);
    let oid_tlv = b.raw_tlv(64, "contentType", limits)?;
    let ct = oid_of(&oid_tlv)?;
    if ct != rfc5911::ID_SIGNED_DATA {
        return Err(Error::WrongMessageType {
            expected: "signed",
            found: ct.to_string(),
        });
    }
    let explicit = b.expect(tag::CTX0, "ContentInfo content")?;
    let explicit_end = b.end_of(&explicit);
    // SignedData ::= SEQUENCE { version, digestAlgorithms, encapContentInfo,
    //   certificates [0] IMPLICIT OPTIONAL, crls [1] IMPLICIT OPTIONAL, signerInfos }
    let sd = b.expect(tag::SEQUENCE, "SignedData")?;
    let sd_end = b.end_of(&sd);
    let version = b.raw_tlv(16, "CMSVersion", limits)?;
    let digest_algs = b.raw_tlv(64 * 1024, "digestAlgorithms", limits)?;
    if version.first() != Some(&tag::INTEGER) || digest_algs.first() != Some(&tag::SET) {
        return Err(malformed("SignedData: version or digestAlgorithms missing"));
    }
    let mut digests = Digests::new(&announced_digests(&digest_algs, limits)?);
    // EncapsulatedContentInfo ::= SEQUENCE { eContentType, eContent [0] EXPLICIT OCTET STRING OPTIONAL }
    let eci = b.expect(tag::SEQUENCE, "EncapsulatedContentInfo")?;
    let eci_end = b.end_of(&eci);
    let econtent_type = b.raw_tlv(64, "eContentType", limits)?;
    if econtent_type.first() != Some(&tag::OID) {
        return Err(malformed("EncapsulatedContentInfo: eContentType missing"));
    }
    if b.at_close(eci_end)? {
        return Err(Error::malformed(
            "SignedData",
            "detached signature and no content given",
        ));
    }
    let wrapper = b.expect(tag::CTX0, "eContent")?;
    let wrapper_end = b.end_of(&wrapper);
    {
        let mut canonical = CanonicalWriter::new(&mut *sink);
        let mut feed = |d: &[u8]| -> Result<()> {
            digests.update(d);
            canonical.write_all(d).map_err(from_io)
        };
        let os = b.header()?;
        match (os.tag, os.len) {
            (tag::OCTET_STRING, Some(n)) => b.stream(n, &mut feed)?,
            (0x24, _) => {
                let end = b.end_of(&os);
                chunks(b, end, limits.max_asn1_depth, &mut feed)?;
            }
            _ => return Err(malformed("eContent is not an OCTET STRING")),
        }
        canonical.finish().map_err(from_io)?;
    }
    b.close(wrapper_end, "eContent")?;
    b.close(eci_end, "EncapsulatedContentInfo")?;
    let mut rest = Vec::new();
    while !b.at_close(sd_end)? {
        let budget = limits.max_cms_bytes.saturating_sub(rest.len());
        rest.extend_from_slice(&b.raw_tlv(
            budget,
            "SignedData (certificates, signerInfos)",
            limits,
        )?);
    }
    b.close(explicit_end, "ContentInfo content")?;
    b.close(ci_end, "ContentInfo")?;
    b.eof()?;
    // The SignedData as if detached: the one-shot parser and checks, with the digests.
    let mut sd = version;
    sd.extend_from_slice(&digest_algs);
    tlv::push_tlv(&mut sd, tag::SEQUENCE, &econtent_type);
    sd.extend_from_slice(&rest);
    let mut seq = Vec::new();
    tlv::push_tlv(&mut seq, tag::SEQUENCE, &sd);
    let mut body = oid_tlv;
    tlv::push_tlv(&mut body, tag::CTX0, &seq);
    let mut ci = Vec::new();
    tlv::push_tlv(&mut ci, tag::SEQUENCE, &body);
    signed::verify_digests(&ci, &digests.finish(), trust, opts, limits)
}

/// The digest algorithms of a digestAlgorithms SET that we can compute (others are left to
/// the signer check, which reports them as the one-shot does).
fn announced_digests(set: &[u8], limits: &Limits) -> Result<Vec<DigestAlgorithm>> {
    let der = crate::ber::to_der(set, limits)?;
    let set = tlv::single(&der, tag::SET, "digestAlgorithms")?;
    let mut algs = Vec::new();
    for alg in tlv::elements(set.value, 64, "digest algorithms", "SignedData")? {
        let mut seq = alg.value;
        let Ok(oid) = tlv::expect(&mut seq, tlv::OID, "digestAlgorithm") else {
            continue;
        };
        let Ok(oid) = const_oid::ObjectIdentifier::from_bytes(oid.value) else {
            continue;
        };
        if let Ok(a) = DigestAlgorithm::from_oid(&oid)
            && !algs.contains(&a)
            && algs.len() < MAX_DIGESTS
        {
            algs.push(a);
        }
    }
    Ok(algs)
}

// ---------------------------------------------------------------------------------------------
// The output: the signed entity (CRLF), its header merged with the outer fields as
// `mime::unprotect_headers` does it, the rest streamed to the spill file.

enum Stage {
    /// Gathering the entity's header block.
    Head(Zeroizing<Vec<u8>>),
    /// Header protection: the header made from the entity's header block is written
    /// (`header_len` bytes), the rest streamed and watched for a part marked for a Legacy
    /// Display Element, which needs the whole entity (as in the streamed decryption).
    Protected {
        block: Zeroizing<Vec<u8>>,
        header_len: u64,
        marker: mime::LegacyDisplayMarker,
    },
    /// The header is written; the rest goes straight out.
    Streaming,
    /// No output: the header block is kept, the rest dropped.
    Discard,
}

struct Output<'f> {
    stage: Stage,
    /// The outer header block of the signed message.
    outer: Vec<u8>,
    out: Option<BufWriter<&'f File>>,
    len: u64,
    header_protection: Option<mime::HeaderProtection>,
    signed_head: Zeroizing<Vec<u8>>,
    limits: Limits,
}

impl<'f> Output<'f> {
    fn new(outer: &[u8], out: Option<&'f File>, limits: Limits) -> Self {
        Self {
            stage: Stage::Head(Zeroizing::new(Vec::with_capacity(8192))),
            outer: outer.to_vec(),
            out: out.map(|f| BufWriter::with_capacity(CHUNK, f)),
            len: 0,
            header_protection: None,
            signed_head: Zeroizing::new(Vec::new()),
            limits,
        }
    }

    fn emit(&mut self, data: &[u8]) -> io::Result<()> {
        self.len += data.len() as u64;
        match self.out.as_mut() {
            Some(out) => out.write_all(data),
            None => Ok(()),
        }
    }

    /// `entity` is the signed entity, or (`whole` false) its header block and what followed
    /// it in the same write: the message as `mime::unprotect_headers` makes it.
    fn start(&mut self, entity: &[u8]) -> Result<()> {
        let outer = Entity::parse(&self.outer, &self.limits)?;
        let outer: Vec<_> = outer
            .headers()
            .iter()
            .filter(|h| !h.is_mime_field())
            .copied()
            .collect();
        let (m, hp) = mime::unprotect_headers(&outer, entity, &self.limits)?;
        let m = Zeroizing::new(m);
        self.header_protection = hp;
        self.emit(&m)?;
        Ok(())
    }

    /// A part is marked for a Legacy Display Element: the entity (`block`, then the output
    /// after `header_len`) made whole, at most `max_message_bytes`, and the output rewritten.
    fn redo_whole(&mut self, block: &[u8], header_len: u64) -> Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        out.flush()?;
        let mut file: &File = out.get_ref();
        let rest = self.len.saturating_sub(header_len);
        let limit = self.limits.max_message_bytes as u64;
        if block.len() as u64 + rest > limit {
            return Err(Error::LimitExceeded {
                what: "message size (header protection with a legacy display element, streamed)",
                limit,
            });
        }
        let mut entity = Zeroizing::new(block.to_vec());
        file.seek(io::SeekFrom::Start(header_len))?;
        file.read_to_end(&mut entity)?;
        file.set_len(0)?;
        file.rewind()?;
        self.len = 0;
        self.start(&entity)
    }

    fn finish(mut self) -> Result<(u64, Option<mime::HeaderProtection>, Zeroizing<Vec<u8>>)> {
        match std::mem::replace(&mut self.stage, Stage::Streaming) {
            Stage::Head(held) => {
                // The entity ended inside its header block: all of it is the header.
                if self.out.is_some() {
                    self.start(&held)?;
                }
                self.signed_head = held;
            }
            Stage::Protected {
                block,
                header_len,
                marker,
            } => {
                if marker.seen() {
                    self.redo_whole(&block, header_len)?;
                }
            }
            Stage::Streaming | Stage::Discard => {}
        }
        if let Some(out) = self.out.as_mut() {
            out.flush()?;
        }
        Ok((self.len, self.header_protection, self.signed_head))
    }
}

impl Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.stage {
            Stage::Streaming => self.emit(buf)?,
            Stage::Discard => {}
            Stage::Protected { marker, .. } => {
                marker.update(buf);
                self.emit(buf)?;
            }
            Stage::Head(held) => {
                let from = held.len();
                held.extend_from_slice(buf);
                match mime::header_block_end(held, from) {
                    Some(end) => {
                        let held = std::mem::take(held);
                        self.signed_head =
                            Zeroizing::new(held.get(..end).unwrap_or_default().to_vec());
                        if self.out.is_none() {
                            self.stage = Stage::Discard;
                        } else if mime::has_header_protection(&self.signed_head, &self.limits) {
                            let block = held.get(..end).unwrap_or_default();
                            self.start(block).map_err(to_io)?;
                            let mut marker = mime::LegacyDisplayMarker::default();
                            marker.update(&held);
                            self.stage = Stage::Protected {
                                block: Zeroizing::new(block.to_vec()),
                                header_len: self.len,
                                marker,
                            };
                            self.emit(held.get(end..).unwrap_or_default())?;
                        } else {
                            self.stage = Stage::Streaming;
                            self.start(held.get(..end).unwrap_or_default())
                                .map_err(to_io)?;
                            self.emit(held.get(end..).unwrap_or_default())?;
                        }
                    }
                    None if held.len() > MAX_HEADER_BLOCK => {
                        return Err(io::Error::other(Error::LimitExceeded {
                            what: "signed entity header block",
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
        Ok(())
    }
}

/// Our error through an `io::Write`, taken back out by [`from_io`].
fn to_io(e: Error) -> io::Error {
    match e {
        Error::Io(e) => e,
        e => io::Error::other(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::tests::{cert, fixture, trust};
    use crate::message::SignMessageOptions;
    use crate::stream::tests::body;

    /// Streamed through a reader of `cap` bytes at a time, against the one-shot function: the
    /// same bytes, report and header protection (or the same kind of error); the spill
    /// directory is empty again afterwards.
    fn same(raw: &[u8], trust: &TrustStore, cap: usize, what: &str) -> bool {
        let limits = Limits::default();
        let dir = tempfile::tempdir().unwrap();
        // one "now" for both reports
        let at = Some(SystemTime::now());
        let one = crate::verify_message(raw, trust, at, &limits);
        let r = io::BufReader::with_capacity(cap, raw);
        let streamed = verify_message(r, trust, at, dir.path(), &limits);
        match (one, streamed) {
            (Ok(one), Ok(mut s)) => {
                let mut got = Vec::new();
                s.reader().unwrap().read_to_end(&mut got).unwrap();
                assert_eq!(got, one.message, "{what}: message");
                assert_eq!(s.len(), got.len() as u64, "{what}: len");
                assert_eq!(s.opaque(), one.opaque, "{what}: opaque");
                assert_eq!(
                    format!("{:?}", s.verification().signers),
                    format!("{:?}", one.verification.signers),
                    "{what}: report"
                );
                assert_eq!(
                    s.verification().certificates,
                    one.verification.certificates,
                    "{what}: certificates"
                );
                assert_eq!(
                    format!("{:?}", s.header_protection()),
                    format!("{:?}", one.header_protection),
                    "{what}: header protection"
                );
                assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
                drop(s);
                assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
                true
            }
            (Err(a), Err(b)) => {
                assert_eq!(
                    std::mem::discriminant(&a),
                    std::mem::discriminant(&b),
                    "{what}: {a} / {b}"
                );
                assert_eq!(
                    std::fs::read_dir(dir.path()).unwrap().count(),
                    0,
                    "{what}: spill file left"
                );
                false
            }
            (a, b) => panic!("{what}: one-shot {:?}, streamed {:?}", a.err(), b.err()),
        }
    }

    fn identity() -> crate::Identity {
        let blocks = crate::pem::parse_all(&fixture("alice-rsa.key"), 4).unwrap();
        let key = crate::PrivateKey::from_der(&blocks[0].der, &Limits::default()).unwrap();
        crate::Identity::new(key, cert("alice-rsa.pem"), vec![cert("int.pem")]).unwrap()
    }

    fn message(len: usize, lf: bool) -> Vec<u8> {
        let mut m = b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: big\r\n\
            Date: Thu, 3 Dec 2026 10:00:00 +0000\r\nContent-Type: text/plain\r\n\r\n"
            .to_vec();
        m.extend_from_slice(&body(len, len as u64));
        if lf {
            m.retain(|&b| b != b'\r');
        }
        m
    }

    fn sign(raw: &[u8], opaque: bool, protect_headers: bool) -> Vec<u8> {
        let opts = SignMessageOptions {
            opaque,
            protect_headers,
            ..Default::default()
        };
        crate::sign_message(
            raw,
            &identity(),
            &opts,
            &mut rand_core::OsRng,
            &Limits::default(),
        )
        .unwrap()
    }

    #[test]
    fn streamed_equals_one_shot_for_our_messages() {
        let t = trust();
        for len in [0, 1, 999, CHUNK - 1, CHUNK + 1, 3 * 64 * 1024 + 5] {
            for (opaque, hp) in [(false, false), (true, false), (false, true), (true, true)] {
                let signed = sign(&message(len, false), opaque, hp);
                for cap in [7, 4096, 1 << 20] {
                    let what = format!("{len} B, opaque {opaque}, hp {hp}, cap {cap}");
                    assert!(same(&signed, &t, cap, &what), "{what}");
                }
                // as a Unix mailbox keeps it: LF line ends (the signature is over CRLF)
                let mut lf = signed.clone();
                lf.retain(|&b| b != b'\r');
                assert!(same(
                    &lf,
                    &t,
                    4096,
                    &format!("{len} B, opaque {opaque}, hp {hp}, LF")
                ));
            }
        }
        // and the report says valid
        let dir = tempfile::tempdir().unwrap();
        let signed = sign(&message(5000, false), false, false);
        let s = verify_message(&signed[..], &t, None, dir.path(), &Limits::default()).unwrap();
        assert!(s.verification().is_valid(), "{:#?}", s.verification());
    }

    /// OpenSSL and gpgsm signatures (tests/data/smime, made by make.sh): DER, BER with
    /// indefinite lengths, RSA, PSS, ECDSA P-256/P-384, two signers, no certificates, a key
    /// identifier sid.
    #[test]
    fn streamed_equals_one_shot_for_openssl_and_gpgsm() {
        let t = trust();
        let content = fixture("content.txt");
        for f in [
            "rsa-detached.der",
            "rsa-keyid.der",
            "rsa-nocerts.der",
            "rsa-pss.der",
            "p256-detached.der",
            "two-signers.der",
            "gpgsm-detached.der",
            "wrong-usage.der",
            "expired.der",
        ] {
            let der = fixture(f);
            let sig = mime::build_base64_entity(
                "application/pkcs7-signature; name=smime.p7s",
                Some("smime.p7s"),
                &der,
            );
            let mut m = b"From: alice@example.com\r\nMIME-Version: 1.0\r\nContent-Type: \
                multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; \
                boundary=\"b-1\"\r\n\r\npreamble\r\n--b-1\r\n"
                .to_vec();
            m.extend_from_slice(&content);
            m.extend_from_slice(b"\r\n--b-1\r\n");
            m.extend_from_slice(&sig);
            m.extend_from_slice(b"\r\n--b-1--\r\nepilogue\r\n");
            assert!(same(&m, &t, 100, f), "{f}");
        }
        for f in [
            "rsa-opaque.der",
            "rsa-opaque-ber.der",
            "p384-opaque.der",
            "gpgsm-opaque.der",
        ] {
            let mut m = b"From: alice@example.com\r\nMIME-Version: 1.0\r\n".to_vec();
            m.extend_from_slice(&mime::build_base64_entity(
                "application/pkcs7-mime; smime-type=signed-data; name=smime.p7m",
                Some("smime.p7m"),
                &fixture(f),
            ));
            assert!(same(&m, &t, 100, f), "{f}");
            // binary transfer encoding too
            let mut b = b"From: alice@example.com\r\nMIME-Version: 1.0\r\nContent-Type: \
                application/pkcs7-mime; smime-type=signed-data\r\n\
                Content-Transfer-Encoding: binary\r\n\r\n"
                .to_vec();
            b.extend_from_slice(&fixture(f));
            assert!(same(&b, &t, 100, &format!("{f} binary")), "{f}");
        }
    }

    /// A signed entity with a Legacy Display Element (what a sign-then-encrypt with header
    /// protection and the element decrypts to): the element is removed as by the one-shot
    /// function, also when the message is larger than an in-memory bound would allow it not
    /// to be (then the limit error), and a protected one without it streams past that bound.
    #[test]
    fn header_protection_in_the_signed_entity_streams_unless_it_has_a_legacy_display_element() {
        use crate::enveloped::tests::{cert as ecert, key as ekey};
        use crate::message::EncryptMessageOptions;
        let limits = Limits::default();
        let t = trust();
        for legacy_display in [false, true] {
            let enc = crate::encrypt_message(
                &message(200_000, false),
                &[crate::Recipient::new(ecert("rsa1"))],
                Some((&identity(), &SignMessageOptions::default())),
                &EncryptMessageOptions {
                    protect_headers: true,
                    legacy_display,
                    ..Default::default()
                },
                &mut rand_core::OsRng,
                &limits,
            )
            .unwrap();
            let c = ecert("rsa1");
            let signed = crate::decrypt_message(&enc, &ekey("rsa1"), Some(&c), None, &limits)
                .unwrap()
                .message;
            let what = format!("legacy display {legacy_display}");
            assert!(same(&signed, &t, 4096, &what), "{what}");
            let one = crate::verify_message(&signed, &t, None, &limits).unwrap();
            assert_eq!(
                one.header_protection
                    .as_ref()
                    .map(|h| h.legacy_display_removed),
                Some(legacy_display),
                "{what}"
            );
            let mut small = Limits::default();
            small.max_message_bytes = 100_000;
            let dir = tempfile::tempdir().unwrap();
            let r = verify_message(&signed[..], &t, None, dir.path(), &small);
            if legacy_display {
                assert!(matches!(r, Err(Error::LimitExceeded { .. })), "{r:?}");
            } else {
                let mut s = r.unwrap();
                let mut got = Vec::new();
                s.copy_to(&mut got).unwrap();
                assert_eq!(got, one.message);
            }
        }
    }

    #[test]
    fn tampering_is_an_invalid_report_in_both() {
        let t = trust();
        for opaque in [false, true] {
            let signed = sign(&message(20_000, false), opaque, false);
            // flip one bit of the body text (detached) or of the base64 (opaque: a different
            // base64 letter, so still decodable)
            let mut bad = signed.clone();
            let at = bad.len() / 3;
            let i = (at..bad.len())
                .find(|&i| bad[i].is_ascii_alphabetic())
                .unwrap();
            bad[i] ^= 0x20;
            assert!(same(&bad, &t, 4096, &format!("tampered, opaque {opaque}")));
            let dir = tempfile::tempdir().unwrap();
            if let Ok(s) = verify_message(&bad[..], &t, None, dir.path(), &Limits::default()) {
                assert!(!s.verification().is_valid(), "opaque {opaque}");
            }
        }
    }

    #[test]
    fn what_cannot_stream_is_said_and_other_messages_are_typed_errors() {
        let limits = Limits::default();
        let dir = tempfile::tempdir().unwrap();
        let t = trust();
        // a signature without signed attributes covers the content itself
        let mut m = b"From: alice@example.com\r\nMIME-Version: 1.0\r\nContent-Type: \
            multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; \
            boundary=b\r\n\r\n--b\r\n"
            .to_vec();
        m.extend_from_slice(&fixture("content.txt"));
        m.extend_from_slice(b"\r\n--b\r\n");
        m.extend_from_slice(&mime::build_base64_entity(
            "application/pkcs7-signature",
            None,
            &fixture("rsa-noattr.der"),
        ));
        m.extend_from_slice(b"\r\n--b--\r\n");
        let r = verify_message(&m[..], &t, None, dir.path(), &limits);
        assert!(matches!(r, Err(Error::NotStreamable { .. })), "{r:?}");
        assert!(crate::verify_message(&m, &t, None, &limits).is_ok());
        // a micalg that does not name the signer's digest (SHA-256)
        let signed = sign(&message(100, false), false, false);
        let lied = String::from_utf8(signed.clone()).unwrap().replacen(
            "micalg=sha-256",
            "micalg=sha-512",
            1,
        );
        assert_ne!(lied.as_bytes(), &signed[..]);
        let r = verify_message(lied.as_bytes(), &t, None, dir.path(), &limits);
        assert!(matches!(r, Err(Error::NotStreamable { .. })), "{r:?}");
        // not signed at all; encrypted; three parts; no signature part
        let plain = message(10, false);
        let r = verify_message(&plain[..], &t, None, dir.path(), &limits);
        assert!(matches!(r, Err(Error::WrongMessageType { .. })), "{r:?}");
        let three = String::from_utf8(signed.clone()).unwrap();
        let boundary = three
            .split("boundary=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let close = format!("--{boundary}--");
        let three = three.replacen(&close, &format!("--{boundary}\r\n\r\nthird\r\n{close}"), 1);
        assert!(!same(three.as_bytes(), &t, 4096, "three parts"));
        let one = String::from_utf8(signed).unwrap();
        let cut = one.rfind(&format!("--{boundary}\r\n")).unwrap();
        assert!(!same(&one.as_bytes()[..cut], &t, 4096, "one part"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// The inner signature of a streamed decryption, checked from the spill file: the same
    /// message, report, header protection and `authenticated` as `into_decrypted`.
    #[test]
    fn inner_signature_from_the_spill_file_equals_into_decrypted() {
        use crate::enveloped::tests::{cert as ecert, key as ekey};
        use crate::message::EncryptMessageOptions;
        let limits = Limits::default();
        let t = trust();
        let to = [crate::Recipient::new(ecert("rsa1"))];
        for len in [10, CHUNK + 7] {
            for (opaque, hp, gcm) in [
                (false, false, false),
                (true, false, false),
                (false, true, false),
                (true, true, true),
                (false, false, true),
            ] {
                let what = format!("{len} B, opaque {opaque}, hp {hp}, gcm {gcm}");
                let sopts = SignMessageOptions {
                    opaque,
                    ..Default::default()
                };
                let eopts = EncryptMessageOptions {
                    protect_headers: hp,
                    cipher: if gcm {
                        crate::ContentCipher::Aes256Gcm
                    } else {
                        crate::ContentCipher::default()
                    },
                    ..Default::default()
                };
                let enc = crate::encrypt_message(
                    &message(len, false),
                    &to,
                    Some((&identity(), &sopts)),
                    &eopts,
                    &mut rand_core::OsRng,
                    &limits,
                )
                .unwrap();
                let dir = tempfile::tempdir().unwrap();
                let open = || {
                    let c = ecert("rsa1");
                    crate::stream::decrypt_message(
                        &enc[..],
                        &ekey("rsa1"),
                        Some(&c),
                        dir.path(),
                        &limits,
                    )
                    .unwrap()
                };
                let expected = open().into_decrypted(Some(&t), &limits).unwrap();
                let mut s = open();
                assert!(s.is_signed(), "{what}");
                let v = s.verify_signature(&t, &limits).unwrap().unwrap();
                let sig = expected.signature.as_ref().unwrap();
                assert!(v.is_valid(), "{what}: {v:#?}");
                assert_eq!(
                    format!("{:?}", v.signers).len(),
                    format!("{:?}", sig.verification.signers).len(),
                    "{what}"
                );
                assert_eq!(s.authenticated(), expected.authenticated, "{what}");
                assert!(s.authenticated(), "{what}");
                assert_eq!(
                    format!("{:?}", s.header_protection()),
                    format!("{:?}", expected.header_protection),
                    "{what}"
                );
                let mut got = Vec::new();
                s.reader().unwrap().read_to_end(&mut got).unwrap();
                assert_eq!(got, *expected.message, "{what}: message");
                assert_eq!(s.len(), got.len() as u64, "{what}");
                drop(s);
                assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{what}");
            }
        }
        // an unsigned message has no inner signature
        let enc = crate::encrypt_message(
            &message(10, false),
            &to,
            None,
            &EncryptMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let c = ecert("rsa1");
        let mut s =
            crate::stream::decrypt_message(&enc[..], &ekey("rsa1"), Some(&c), dir.path(), &limits)
                .unwrap();
        assert!(s.verify_signature(&t, &limits).unwrap().is_none());
        assert!(!s.authenticated());
    }
}
