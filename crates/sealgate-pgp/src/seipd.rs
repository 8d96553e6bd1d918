//! Our own SEIPD v1 (RFC 9580 §5.13.1; RFC 4880 §5.13): the Symmetrically Encrypted Integrity
//! Protected Data packet with its Modification Detection Code, written and read on aws-lc-rs.
//!
//! Why not Sequoia's: sequoia-openpgp 2.4.2 hashes the MDC with its collision-detecting SHA-1
//! whatever the backend, runs CFB one block at a time through its own buffering, and its
//! partial-body writers hold 4 MiB each. Here the SHA-1 is aws-lc's plain one (SHA-NI; the
//! MDC is encrypted and needs no collision resistance), encryption is AES-CFB128 on the `aes`
//! crate ([`CfbKey`]: the serial CFB chain runs faster there),
//! decryption computes the CFB keystream as one ECB pass over the ciphertext (CFB decryption
//! is parallel, ECB uses AES-NI/VAES eight blocks at a time), and the framing uses 64 KiB
//! partial bodies so that streaming memory stays flat. Sequoia still does keys, the PKESK
//! packets (session key wrapping), signatures and compression; SEIPD v2 (AEAD) stays Sequoia's.
//!
//! OpenPGP CFB for SEIPD (RFC 9580 §5.13.1): plain CFB128 with an all-zero IV over a random
//! block-size prefix whose last two octets are repeated, then the packets, then the MDC packet
//! (0xD3 0x14 and the SHA-1 of everything before its 20 octets). No resynchronisation (that
//! was the legacy SED packet's).

use std::io::{self, Write};
use std::ops::Range;

use aws_lc_rs::cipher::{
    self, AES_128, AES_192, AES_256, DecryptionContext, StreamingEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::digest;
use openpgp::types::SymmetricAlgorithm;
use sequoia_openpgp as openpgp;
use zeroize::Zeroizing;

/// AES block size; every cipher we handle here is AES.
const BLOCK: usize = 16;
/// Prefix: one random block and its last two octets again (the "quick check").
const PREFIX: usize = BLOCK + 2;
/// The MDC packet: tag 19 new format, length 20, SHA-1 (RFC 9580 §5.14).
const MDC_HEADER: [u8; 2] = [0xD3, 0x14];
const MDC_LEN: usize = 22;
/// Partial body chunk (RFC 9580 §4.2.1.4): 2^16 octets, length octet 224 + 16.
pub(crate) const CHUNK: usize = 1 << 16;
const CHUNK_OCTET: u8 = 0xE0 | 16;

/// Packet tags we look at (RFC 9580 §5).
pub(crate) const TAG_PKESK: u8 = 1;
const TAG_MARKER: u8 = 10;
pub(crate) const TAG_LITERAL: u8 = 11;
pub(crate) const TAG_SEIPD: u8 = 18;

/// The aws-lc cipher for an OpenPGP symmetric algorithm we handle ourselves.
pub(crate) fn aes(algo: SymmetricAlgorithm) -> Option<&'static cipher::Algorithm> {
    match algo {
        SymmetricAlgorithm::AES128 => Some(&AES_128),
        SymmetricAlgorithm::AES192 => Some(&AES_192),
        SymmetricAlgorithm::AES256 => Some(&AES_256),
        _ => None,
    }
}

/// An AES key for CFB128 encryption, on the RustCrypto `aes` crate rather than aws-lc: CFB
/// encryption is one serial chain of block encryptions, and `cfb-mode` runs it with the round
/// keys held in registers (870 MB/s of AES-256 here, aws-lc's CFB 560). AES-NI when the CPU has
/// it, else the crate's fixsliced software AES; both constant time. The key schedule is wiped
/// on drop. Decryption stays on aws-lc (its ECB keystream is parallel and faster still).
pub(crate) enum CfbKey {
    Aes128(aes::Aes128),
    Aes192(aes::Aes192),
    Aes256(aes::Aes256),
}

impl CfbKey {
    /// The key for `algo` (AES-128/192/256) from the session key.
    pub(crate) fn new(algo: &'static cipher::Algorithm, key: &[u8]) -> io::Result<Self> {
        use aes::cipher::KeyInit;
        let bad = |_| io::Error::other("AES key setup failed");
        let is = |a: &cipher::Algorithm| algo == a;
        match key.len() {
            16 if is(&AES_128) => aes::Aes128::new_from_slice(key)
                .map(Self::Aes128)
                .map_err(bad),
            24 if is(&AES_192) => aes::Aes192::new_from_slice(key)
                .map(Self::Aes192)
                .map_err(bad),
            32 if is(&AES_256) => aes::Aes256::new_from_slice(key)
                .map(Self::Aes256)
                .map_err(bad),
            _ => Err(io::Error::other("AES key setup failed")),
        }
    }

    /// CFB128-encrypts `data` in place from the feedback register `iv`; a partial block is
    /// allowed only at the end (where the message ends).
    pub(crate) fn encrypt(&self, data: &mut [u8], iv: [u8; BLOCK]) {
        use aes::cipher::{AsyncStreamCipher, InnerIvInit};
        let iv = iv.into();
        match self {
            Self::Aes128(k) => cfb_mode::Encryptor::inner_iv_init(k.clone(), &iv).encrypt(data),
            Self::Aes192(k) => cfb_mode::Encryptor::inner_iv_init(k.clone(), &iv).encrypt(data),
            Self::Aes256(k) => cfb_mode::Encryptor::inner_iv_init(k.clone(), &iv).encrypt(data),
        }
    }
}

/// A new-format packet header with a definite length (RFC 9580 §4.2.1).
pub(crate) fn header(tag: u8, len: u32) -> Vec<u8> {
    let mut h = vec![0xC0 | tag];
    push_length(&mut h, len);
    h
}

/// A definite body length: one, two or five octets (RFC 9580 §4.2.1.1-3).
fn push_length(out: &mut Vec<u8>, len: u32) {
    match len {
        0..192 => out.push(len as u8),
        192..8384 => {
            let l = len - 192;
            out.push((l >> 8) as u8 + 192);
            out.push(l as u8);
        }
        _ => {
            out.push(0xFF);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

/// Writes a packet body with partial body lengths (RFC 9580 §4.2.1.4): whole 64 KiB chunks as
/// they fill, the rest with a definite length at [`PartialBody::finish`]. Holds at most one
/// chunk.
pub(crate) struct PartialBody<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> PartialBody<W> {
    /// The packet's CTB must already be written to `inner`.
    pub(crate) fn new(inner: W) -> Self {
        PartialBody {
            inner,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    pub(crate) fn finish(mut self) -> io::Result<W> {
        let mut h = Vec::with_capacity(5);
        push_length(&mut h, self.buf.len() as u32);
        self.inner.write_all(&h)?;
        self.inner.write_all(&self.buf)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for PartialBody<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            if self.buf.is_empty() && data.len() > CHUNK {
                // A whole chunk straight from the caller's buffer. (Strictly more than a chunk:
                // the final length must follow, and an exact fit leaves it for `finish`.)
                let (chunk, rest) = data.split_at(CHUNK);
                self.inner.write_all(&[CHUNK_OCTET])?;
                self.inner.write_all(chunk)?;
                data = rest;
                continue;
            }
            let take = (CHUNK - self.buf.len()).min(data.len());
            let (head, rest) = data.split_at(take);
            self.buf.extend_from_slice(head);
            data = rest;
            if self.buf.len() == CHUNK && !data.is_empty() {
                self.inner.write_all(&[CHUNK_OCTET])?;
                self.inner.write_all(&self.buf)?;
                self.buf.clear();
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// How the SEIPD body is framed: a length written up front, or partial bodies.
pub(crate) enum Framing<W: Write> {
    Definite(W),
    Partial(PartialBody<W>),
}

impl<W: Write> Framing<W> {
    fn finish(self) -> io::Result<W> {
        match self {
            Framing::Definite(mut w) => {
                w.flush()?;
                Ok(w)
            }
            Framing::Partial(p) => p.finish(),
        }
    }
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Framing::Definite(w) => w.write_all(data),
            Framing::Partial(p) => p.write_all(data),
        }
    }
}

/// Encrypts what is written to it as the body of a SEIPD v1 packet: the version octet, the
/// random prefix, the data, and at [`SeipdWriter::finish`] the MDC. The packet header (CTB,
/// and the length for [`Framing::Definite`]) is the caller's.
pub(crate) struct SeipdWriter<W: Write> {
    out: Framing<W>,
    key: CfbKey,
    /// The CFB feedback register: the last ciphertext block.
    feedback: [u8; BLOCK],
    /// Plaintext not yet making up a whole block (always fewer than 16 octets).
    pending: Zeroizing<Vec<u8>>,
    /// Encryption happens in place here, a chunk at a time.
    scratch: Zeroizing<Vec<u8>>,
    /// The running SHA-1 of the MDC.
    mdc: digest::Context,
}

impl<W: Write> SeipdWriter<W> {
    /// Starts the body with `session_key` for `algo` (AES only). `random` gives the prefix.
    pub(crate) fn new(
        out: Framing<W>,
        algo: &'static cipher::Algorithm,
        session_key: &[u8],
        random: [u8; BLOCK],
    ) -> io::Result<Self> {
        let key = CfbKey::new(algo, session_key)?;
        let mut w = SeipdWriter {
            out,
            key,
            feedback: [0; BLOCK],
            pending: Zeroizing::new(Vec::with_capacity(BLOCK)),
            scratch: Zeroizing::new(Vec::with_capacity(CHUNK + BLOCK)),
            mdc: digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY),
        };
        w.out.write_all(&[1])?; // version 1
        let mut prefix = Zeroizing::new([0u8; PREFIX]);
        prefix[..BLOCK].copy_from_slice(&random);
        prefix[BLOCK..].copy_from_slice(&random[BLOCK - 2..]);
        w.write_all(&prefix[..])?;
        Ok(w)
    }

    /// CFB-encrypts `scratch` in place, continuing from the feedback register, and writes it.
    fn encrypt_scratch(&mut self) -> io::Result<()> {
        self.key.encrypt(&mut self.scratch, self.feedback);
        if let Some(last) = self
            .scratch
            .len()
            .checked_sub(BLOCK)
            .and_then(|at| self.scratch.get(at..))
            && let Ok(block) = <[u8; BLOCK]>::try_from(last)
        {
            self.feedback = block;
        }
        self.out.write_all(&self.scratch)
    }

    /// Writes the MDC packet and finishes the framing; returns the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        let digest = mdc_digest(self.mdc.clone());
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.pending);
        self.scratch.extend_from_slice(&MDC_HEADER);
        self.scratch.extend_from_slice(digest.as_ref());
        // The last, partial block: CFB needs no padding.
        self.encrypt_scratch()?;
        self.out.finish()
    }
}

impl<W: Write> Write for SeipdWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.mdc.update(buf);
        let mut data = buf;
        loop {
            // Whole blocks only, so that CFB can continue across calls from the register.
            let room = CHUNK - self.pending.len();
            let take = room.min(data.len());
            let whole = (self.pending.len() + take) / BLOCK * BLOCK;
            if whole == 0 {
                self.pending.extend_from_slice(data);
                return Ok(buf.len());
            }
            let from_data = whole - self.pending.len();
            let (head, rest) = data.split_at(from_data);
            self.scratch.clear();
            self.scratch.extend_from_slice(&self.pending);
            self.scratch.extend_from_slice(head);
            self.pending.clear();
            self.encrypt_scratch()?;
            data = rest;
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Framing::Definite(w) => w.flush(),
            Framing::Partial(p) => p.flush(),
        }
    }
}

/// Appends a whole SEIPD v1 body (version octet to MDC) holding `head` and then `data` to
/// `out`, encrypting in place in `out` with one CFB call. With `parallel`, the MDC's SHA-1 of
/// `data` runs on a second core (reading the caller's copy) while this one encrypts.
pub(crate) fn seal_into(
    out: &mut Vec<u8>,
    algo: &'static cipher::Algorithm,
    session_key: &[u8],
    random: [u8; BLOCK],
    head: &[u8],
    data: &[u8],
    parallel: bool,
) -> io::Result<()> {
    let key = CfbKey::new(algo, session_key)?;
    out.reserve(1 + PREFIX + head.len() + data.len() + MDC_LEN);
    out.push(1); // version 1
    let start = out.len();
    out.extend_from_slice(&random);
    out.extend_from_slice(&random[BLOCK - 2..]);
    out.extend_from_slice(head);
    let mut mdc = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    mdc.update(out.get(start..).unwrap_or_default());
    out.extend_from_slice(data);
    // Whole blocks now; the last partial block goes with the MDC once its digest is known.
    let whole = (out.len() - start) / BLOCK * BLOCK;
    let encrypt = |region: &mut [u8], iv: [u8; BLOCK]| -> io::Result<()> {
        key.encrypt(region, iv);
        Ok(())
    };
    let region = out
        .get_mut(start..start + whole)
        .ok_or_else(|| io::Error::other("SEIPD buffer"))?;
    let digest = if parallel {
        std::thread::scope(|scope| -> io::Result<_> {
            let hasher = scope.spawn(move || {
                mdc.update(data);
                mdc_digest(mdc)
            });
            encrypt(region, [0; BLOCK])?;
            hasher
                .join()
                .map_err(|_| io::Error::other("MDC hashing failed"))
        })?
    } else {
        mdc.update(data);
        encrypt(region, [0; BLOCK])?;
        mdc_digest(mdc)
    };
    let feedback = match whole.checked_sub(BLOCK) {
        Some(at) => out
            .get(start + at..start + whole)
            .and_then(|b| <[u8; BLOCK]>::try_from(b).ok())
            .ok_or_else(|| io::Error::other("SEIPD buffer"))?,
        None => [0; BLOCK],
    };
    out.extend_from_slice(&MDC_HEADER);
    out.extend_from_slice(digest.as_ref());
    let tail = out
        .get_mut(start + whole..)
        .ok_or_else(|| io::Error::other("SEIPD buffer"))?;
    encrypt(tail, feedback)
}

/// Encrypts a whole SEIPD v1 body (version octet to MDC) holding `head` and then `data` and
/// writes it to `sink` (an armor writer, in practice) on a second thread, as a pipeline: that
/// thread first hashes the MDC's SHA-1 over the plaintext (all of it is at hand) and then
/// writes each 1 MiB chunk of ciphertext as this thread finishes it. CFB encryption is serial
/// and so are SHA-1 and base64 with its CRC-24; on one core they add up, here the CFB on this
/// core runs beside the hash and the armor on the other. Same output as [`SeipdWriter`].
pub(crate) fn seal_pipelined<W: Write + Send>(
    mut sink: W,
    algo: &'static cipher::Algorithm,
    session_key: &[u8],
    random: [u8; BLOCK],
    head: &[u8],
    data: &[u8],
) -> io::Result<W> {
    let key = CfbKey::new(algo, session_key)?;
    let encrypt = |region: &mut [u8], iv: [u8; BLOCK]| -> io::Result<()> {
        key.encrypt(region, iv);
        Ok(())
    };
    let mut prefix = [0u8; PREFIX];
    prefix[..BLOCK].copy_from_slice(&random);
    prefix[BLOCK..].copy_from_slice(&random[BLOCK - 2..]);
    // version, prefix, head, data, MDC packet: plaintext until encrypted in place, so wiped.
    let total = 1 + PREFIX + head.len() + data.len() + MDC_LEN;
    let mut body = Zeroizing::new(Vec::with_capacity(total));
    let buf: &mut Vec<u8> = &mut body;
    std::thread::scope(move |scope| -> io::Result<W> {
        let (digest_tx, digest_rx) = std::sync::mpsc::sync_channel::<digest::Digest>(1);
        let (chunk_tx, chunk_rx) = std::sync::mpsc::sync_channel::<&[u8]>(64);
        // Started first: the hash reads the caller's copy while this thread makes its own.
        let writer = scope.spawn(move || -> io::Result<W> {
            let mut mdc = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
            mdc.update(&prefix);
            mdc.update(head);
            mdc.update(data);
            // The receiver only goes away on an error, which the join reports.
            let _ = digest_tx.send(mdc_digest(mdc));
            for chunk in chunk_rx {
                sink.write_all(chunk)?;
            }
            Ok(sink)
        });
        buf.push(1);
        buf.extend_from_slice(&prefix);
        buf.extend_from_slice(head);
        buf.extend_from_slice(data);
        let hashed_end = buf.len();
        buf.extend_from_slice(&MDC_HEADER);
        buf.resize(total, 0);
        let (version, rest) = <[u8]>::split_at_mut(buf.as_mut_slice(), 1);
        let version: &[u8] = version;
        // Whole blocks of the hashed part now; the last partial block goes with the MDC.
        let whole = (hashed_end - 1) / BLOCK * BLOCK;
        let (region, tail) = rest.split_at_mut(whole);
        // The sender moves in: it is dropped on return, which ends the writer's loop.
        let work = encrypt_chunks(&encrypt, version, region, tail, &digest_rx, chunk_tx);
        let written = writer
            .join()
            .map_err(|_| io::Error::other("SEIPD writer thread failed"))?;
        work?;
        written
    })
}

/// CFB-encrypts a region in place from an IV (the previous ciphertext block).
type CfbStep<'k> = dyn Fn(&mut [u8], [u8; BLOCK]) -> io::Result<()> + 'k;

/// The encrypting half of [`seal_pipelined`]: CFB over `region` a step at a time, each step
/// handed to the writer thread, then the tail (last partial block and MDC) once the digest
/// has come.
fn encrypt_chunks<'b>(
    encrypt: &CfbStep<'_>,
    version: &'b [u8],
    region: &'b mut [u8],
    tail: &'b mut [u8],
    digest_rx: &std::sync::mpsc::Receiver<digest::Digest>,
    chunk_tx: std::sync::mpsc::SyncSender<&'b [u8]>,
) -> io::Result<()> {
    const STEP: usize = 1 << 20;
    let gone = || io::Error::other("SEIPD writer thread stopped");
    chunk_tx.send(version).map_err(|_| gone())?;
    let mut iv = [0u8; BLOCK];
    for chunk in region.chunks_mut(STEP) {
        encrypt(chunk, iv)?;
        if let Some(last) = chunk
            .len()
            .checked_sub(BLOCK)
            .and_then(|at| chunk.get(at..))
            && let Ok(b) = <[u8; BLOCK]>::try_from(last)
        {
            iv = b;
        }
        let chunk: &[u8] = chunk;
        chunk_tx.send(chunk).map_err(|_| gone())?;
    }
    let digest = digest_rx.recv().map_err(|_| gone())?;
    let at = tail.len().checked_sub(20).ok_or_else(gone)?;
    tail.get_mut(at..)
        .ok_or_else(gone)?
        .copy_from_slice(digest.as_ref());
    encrypt(tail, iv)?;
    let tail: &[u8] = tail;
    chunk_tx.send(tail).map_err(|_| gone())
}

/// The MDC digest: the hash of everything written, then of
/// the MDC packet's own two header octets (RFC 9580 §5.14).
pub(crate) fn mdc_digest(mut mdc: digest::Context) -> digest::Digest {
    mdc.update(&MDC_HEADER);
    mdc.finish()
}

/// The length of a SEIPD v1 body holding `inner` octets of packets, if it fits a definite
/// length.
pub(crate) fn seipd_body_len(inner: usize) -> Option<u32> {
    u32::try_from(inner.checked_add(1 + PREFIX + MDC_LEN)?).ok()
}

/// A packet found in memory: tag, where it is, and its body as ranges of the input (several
/// when it uses partial body lengths).
pub(crate) struct RawPacket {
    pub(crate) tag: u8,
    pub(crate) whole: Range<usize>,
    pub(crate) body: Vec<Range<usize>>,
    pub(crate) partial: bool,
}

/// Reads the packet header at `at` (RFC 9580 §4.2: new and legacy formats, partial bodies).
/// `None` when it is not a well-formed packet that fits in `data`.
pub(crate) fn read_packet(data: &[u8], at: usize) -> Option<RawPacket> {
    let ctb = *data.get(at)?;
    if ctb & 0x80 == 0 {
        return None;
    }
    let byte = |i: usize| data.get(i).copied().map(usize::from);
    let mut body = Vec::new();
    let mut partial = false;
    let end;
    let tag;
    if ctb & 0x40 != 0 {
        tag = ctb & 0x3F;
        let mut pos = at + 1;
        loop {
            let o1 = byte(pos)?;
            let (len, hdr, more) = match o1 {
                0..192 => (o1, 1, false),
                192..224 => (((o1 - 192) << 8) + byte(pos + 1)? + 192, 2, false),
                255 => {
                    let b = data.get(pos + 1..pos + 5)?;
                    (
                        usize::try_from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok()?,
                        5,
                        false,
                    )
                }
                _ => (1usize << (o1 & 0x1F), 1, true),
            };
            let start = pos + hdr;
            let stop = start.checked_add(len)?;
            if stop > data.len() {
                return None;
            }
            body.push(start..stop);
            pos = stop;
            if !more {
                break;
            }
            partial = true;
        }
        end = pos;
    } else {
        // Legacy format (RFC 9580 §4.2.2): tag in bits 5-2, length type in bits 1-0.
        tag = (ctb >> 2) & 0x0F;
        let (len, hdr) = match ctb & 3 {
            0 => (byte(at + 1)?, 1),
            1 => ((byte(at + 1)? << 8) | byte(at + 2)?, 2),
            2 => {
                let b = data.get(at + 1..at + 5)?;
                (
                    usize::try_from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok()?,
                    4,
                )
            }
            _ => (data.len() - at - 1, 0),
        };
        let start = at + 1 + hdr;
        let stop = start.checked_add(len)?;
        if stop > data.len() {
            return None;
        }
        body.push(start..stop);
        end = stop;
    }
    Some(RawPacket {
        tag,
        whole: at..end,
        body,
        partial,
    })
}

/// The top-level packets of an encrypted message in the shape we decrypt ourselves: PKESKs
/// (marker packets skipped) and one SEIPD v1 packet last. `None` for anything else (SKESK,
/// SEIPD v2, legacy SED, trailing packets, malformed framing): Sequoia takes those.
pub(crate) struct V1Message<'a> {
    pub(crate) pkesks: Vec<&'a [u8]>,
    /// The SEIPD body after its version octet, as one slice or gathered from partial chunks.
    pub(crate) ciphertext: std::borrow::Cow<'a, [u8]>,
}

pub(crate) fn split_v1(message: &[u8]) -> Option<V1Message<'_>> {
    let mut at = 0;
    let mut pkesks = Vec::new();
    loop {
        let p = read_packet(message, at)?;
        match p.tag {
            TAG_PKESK if !p.partial => pkesks.push(message.get(p.whole.clone())?),
            TAG_MARKER => {}
            TAG_SEIPD if p.whole.end == message.len() && !pkesks.is_empty() => {
                let first = p.body.first()?;
                if message.get(first.start) != Some(&1) {
                    return None;
                }
                let ciphertext = if let [only] = p.body.as_slice() {
                    std::borrow::Cow::Borrowed(message.get(only.start + 1..only.end)?)
                } else {
                    let total = p.body.iter().map(|r| r.len()).sum::<usize>();
                    let mut c = Vec::with_capacity(total);
                    for r in &p.body {
                        c.extend_from_slice(message.get(r.clone())?);
                    }
                    c.remove(0);
                    std::borrow::Cow::Owned(c)
                };
                return Some(V1Message { pkesks, ciphertext });
            }
            // SKESK (passwords), SED, SEIPD v2, anything else: Sequoia's.
            _ => return None,
        }
        at = p.whole.end;
    }
}

/// Whether a SEIPD v1 ciphertext is too short to hold the prefix, a minimal packet and the MDC
/// (RFC 9580 §5.13.1): it cannot be integrity-protected.
pub(crate) fn too_short(ciphertext: &[u8]) -> bool {
    ciphertext.len() < MIN_CIPHERTEXT
}

/// The shortest SEIPD v1 ciphertext that can hold the prefix, a minimal packet and the MDC.
pub(crate) const MIN_CIPHERTEXT: usize = PREFIX + 2 + MDC_LEN;

/// The quick check of RFC 9580 §5.13.1: the two repeated prefix octets, to pick the right
/// session key among candidates. A failure is reported exactly like a bad MDC.
pub(crate) fn quick_check(algo: &'static cipher::Algorithm, key: &[u8], ciphertext: &[u8]) -> bool {
    let Some(head) = ciphertext.get(..PREFIX) else {
        return false;
    };
    let mut buf = Zeroizing::new([0u8; PREFIX]);
    buf.copy_from_slice(head);
    let ok = UnboundCipherKey::new(algo, key)
        .and_then(cipher::DecryptingKey::cfb128)
        .and_then(|k| {
            k.decrypt(&mut buf[..], DecryptionContext::Iv128([0u8; BLOCK].into()))
                .map(|_| ())
        })
        .is_ok();
    ok && buf[BLOCK - 2..BLOCK] == buf[BLOCK..PREFIX]
}

/// Why a SEIPD v1 body was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No MDC packet at the end: no integrity protection (EFAIL).
    NoMdc,
    /// The MDC does not match, or decryption failed.
    Failed,
}

/// Decrypts a SEIPD v1 ciphertext and checks its MDC. On success, the decrypted packets are
/// `plaintext[range]`; nothing is returned before the MDC matched.
pub(crate) fn open(
    algo: &'static cipher::Algorithm,
    key: &[u8],
    ciphertext: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, Range<usize>), Refused> {
    if too_short(ciphertext) {
        return Err(Refused::NoMdc);
    }
    let n = ciphertext.len();
    // The MDC covers everything before its 20 digest octets.
    let parallel =
        n >= PARALLEL_HASH_FROM && std::thread::available_parallelism().is_ok_and(|p| p.get() > 1);
    let (pt, ours) =
        cfb_decrypt_hashed(algo, key, ciphertext, n - 20, parallel).ok_or(Refused::Failed)?;
    let (hashed, digest) = pt.split_at(n - 20);
    if hashed.get(n - MDC_LEN..) != Some(&MDC_HEADER[..]) {
        return Err(Refused::NoMdc);
    }
    if aws_lc_rs::constant_time::verify_slices_are_equal(ours.as_ref(), digest).is_err() {
        return Err(Refused::Failed);
    }
    Ok((pt, PREFIX..n - MDC_LEN))
}

/// From this size on, decryption hashes the MDC on a second thread, a chunk behind.
const PARALLEL_HASH_FROM: usize = 1 << 20;

/// [`cfb_decrypt`] fused with the MDC's SHA-1 of the first `hash_len` plaintext octets, a
/// 64 KiB chunk at a time while it is in cache: keystream (ECB), XOR, hash. With `parallel`
/// the hash runs on a second thread over the chunks already done.
fn cfb_decrypt_hashed(
    algo: &'static cipher::Algorithm,
    key: &[u8],
    ciphertext: &[u8],
    hash_len: usize,
    parallel: bool,
) -> Option<(Zeroizing<Vec<u8>>, digest::Digest)> {
    let n = ciphertext.len();
    let blocks = n.div_ceil(BLOCK);
    let mut out = Zeroizing::new(vec![0u8; blocks * BLOCK]);
    let mut ecb = StreamingEncryptingKey::ecb_pkcs7(UnboundCipherKey::new(algo, key).ok()?).ok()?;
    let mut mdc = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    // Keystream block i is E(ciphertext block i-1); block 0's is E(IV = 0).
    let step = |ecb: &mut StreamingEncryptingKey,
                at: usize,
                chunk: &mut [u8],
                sink: &mut dyn FnMut(&[u8])|
     -> Option<()> {
        let len = chunk.len();
        let mut filled = 0;
        if at == 0 {
            let first = ecb
                .less_safe_update(&[0u8; BLOCK], chunk.get_mut(..BLOCK)?)
                .ok()?;
            if first.written().len() != BLOCK {
                return None;
            }
            filled = BLOCK;
        }
        if filled < len {
            let src = ciphertext.get(at + filled - BLOCK..at + len - BLOCK)?;
            let done = ecb.less_safe_update(src, chunk.get_mut(filled..)?).ok()?;
            if done.written().len() != src.len() {
                return None;
            }
        }
        let stop = len.min(n.saturating_sub(at));
        for (p, c) in chunk.iter_mut().zip(ciphertext.get(at..at + stop)?) {
            *p ^= c;
        }
        let hashed = hash_len.saturating_sub(at).min(stop);
        sink(chunk.get(..hashed)?);
        Some(())
    };
    let digest = if parallel {
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<&[u8]>(8);
            let hasher = scope.spawn(move || {
                for chunk in rx {
                    mdc.update(chunk);
                }
                mdc.finish()
            });
            let mut ok = Some(());
            let mut at = 0;
            for chunk in out.chunks_mut(CHUNK) {
                let len = chunk.len();
                ok = ok.and_then(|()| step(&mut ecb, at, chunk, &mut |_| ()));
                if ok.is_none() {
                    break;
                }
                // Done with this chunk here: the hasher may read it.
                let chunk: &[u8] = chunk;
                let hashed = hash_len.saturating_sub(at).min(len);
                if let Some(c) = chunk.get(..hashed)
                    && tx.send(c).is_err()
                {
                    ok = None;
                    break;
                }
                at += len;
            }
            drop(tx);
            let digest = hasher.join().ok();
            ok.and(digest)
        })
    } else {
        let mut at = 0;
        let mut ok = Some(());
        for chunk in out.chunks_mut(CHUNK) {
            let len = chunk.len();
            ok = ok.and_then(|()| step(&mut ecb, at, chunk, &mut |c| mdc.update(c)));
            at += len;
        }
        ok.map(|()| mdc.finish())
    }?;
    out.truncate(n);
    Some((out, digest))
}

/// CFB128 decryption with a zero IV: plaintext block i is ciphertext block i XOR E(ciphertext
/// block i-1), so the keystream is one ECB encryption of the ciphertext shifted by a block,
/// which aws-lc runs on many blocks at once (its CFB would go one block at a time). The plain
/// form of [`cfb_decrypt_hashed`], kept as its reference in the tests.
#[cfg(test)]
fn cfb_decrypt(
    algo: &'static cipher::Algorithm,
    key: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    const STEP: usize = 1 << 20;
    let n = ciphertext.len();
    let blocks = n.div_ceil(BLOCK);
    let mut out = Zeroizing::new(vec![0u8; blocks * BLOCK]);
    // PKCS#7 padding would only matter at `finish`, which is never called: every update is
    // whole blocks, and EVP encryption passes whole blocks straight through.
    let mut ecb = StreamingEncryptingKey::ecb_pkcs7(UnboundCipherKey::new(algo, key).ok()?).ok()?;
    let first = ecb
        .less_safe_update(&[0u8; BLOCK], out.get_mut(..BLOCK)?)
        .ok()?;
    if first.written().len() != BLOCK {
        return None;
    }
    let feed = ciphertext.get(..blocks.checked_sub(1)? * BLOCK)?;
    let mut pos = BLOCK;
    for chunk in feed.chunks(STEP) {
        let dst = out.get_mut(pos..pos + chunk.len())?;
        let done = ecb.less_safe_update(chunk, dst).ok()?;
        if done.written().len() != chunk.len() {
            return None;
        }
        pos += chunk.len();
    }
    out.truncate(n);
    for (p, c) in out.iter_mut().zip(ciphertext) {
        *p ^= c;
    }
    Some(out)
}

/// The data of the one Literal Data packet (RFC 9580 §5.9) that makes up `packets`, as ranges
/// of `packets`; `None` when `packets` is anything else (signed, compressed, several packets),
/// which Sequoia's parser then reads.
pub(crate) fn literal_data(packets: &[u8]) -> Option<Vec<Range<usize>>> {
    let p = read_packet(packets, 0)?;
    if p.tag != TAG_LITERAL || p.whole.end != packets.len() {
        return None;
    }
    let mut ranges = p.body;
    // Format octet, file name (length-prefixed), four-octet date: all in the first chunk
    // (a first partial chunk has at least 512 octets).
    let first = ranges.first_mut()?;
    let name_len = usize::from(*packets.get(first.start + 1)?);
    let header = 2 + name_len + 4;
    if first.len() < header {
        return None;
    }
    first.start += header;
    Some(ranges)
}

/// Moves `ranges` of `buf` (in order, not overlapping) to its front and cuts the rest.
pub(crate) fn compact(buf: &mut Zeroizing<Vec<u8>>, ranges: &[Range<usize>]) {
    let mut w = 0;
    for r in ranges {
        buf.copy_within(r.clone(), w);
        w += r.len();
    }
    buf.truncate(w);
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext};

    #[test]
    fn cfb_key_equals_aws_lc_cfb() {
        for (algo, len) in [(&AES_128, 16), (&AES_192, 24), (&AES_256, 32)] {
            let k = &key()[..len];
            for n in [0usize, 1, 15, 16, 17, 100, 4096 + 5] {
                let data: Vec<u8> = (0..n).map(|i| (i * 13 % 256) as u8).collect();
                let mut want = data.clone();
                EncryptingKey::cfb128(UnboundCipherKey::new(algo, k).unwrap())
                    .unwrap()
                    .less_safe_encrypt(&mut want, EncryptionContext::Iv128([9u8; 16].into()))
                    .unwrap();
                // In one call, and in whole-block pieces continued from the last block.
                let ours = CfbKey::new(algo, k).unwrap();
                let mut one = data.clone();
                ours.encrypt(&mut one, [9; 16]);
                assert_eq!(one, want, "{n}");
                let mut pieces = data.clone();
                let mut iv = [9u8; 16];
                let mut at = 0;
                while at < n {
                    let step = (n - at).min(32);
                    let piece = &mut pieces[at..at + step];
                    ours.encrypt(piece, iv);
                    if step == 32 {
                        iv.copy_from_slice(&piece[16..]);
                    }
                    at += step;
                }
                assert_eq!(pieces, want, "{n} in pieces");
            }
        }
        assert!(CfbKey::new(&AES_256, &key()[..16]).is_err());
    }

    fn key() -> [u8; 32] {
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8 * 7 + 1;
        }
        k
    }

    #[test]
    fn ecb_keystream_cfb_equals_aws_lc_cfb() {
        for n in [1usize, 15, 16, 17, 100, 4096, 100_001, (1 << 20) + 33] {
            let plain: Vec<u8> = (0..n).map(|i| (i * 13 % 256) as u8).collect();
            let mut ct = plain.clone();
            let k =
                EncryptingKey::cfb128(UnboundCipherKey::new(&AES_256, &key()).unwrap()).unwrap();
            k.less_safe_encrypt(&mut ct, EncryptionContext::Iv128([0u8; 16].into()))
                .unwrap();
            let back = cfb_decrypt(&AES_256, &key(), &ct).unwrap();
            assert_eq!(&back[..], &plain[..], "{n}");
        }
    }

    #[test]
    fn fused_decrypt_and_hash_agree() {
        for n in [16usize, 17, 65_535, 65_536, 65_537, 300_001, (1 << 20) + 5] {
            let plain: Vec<u8> = (0..n).map(|i| (i * 11 % 256) as u8).collect();
            let mut ct = plain.clone();
            let k =
                EncryptingKey::cfb128(UnboundCipherKey::new(&AES_256, &key()).unwrap()).unwrap();
            k.less_safe_encrypt(&mut ct, EncryptionContext::Iv128([0u8; 16].into()))
                .unwrap();
            for parallel in [false, true] {
                let (pt, d) = cfb_decrypt_hashed(&AES_256, &key(), &ct, n - 3, parallel).unwrap();
                assert_eq!(&pt[..], &plain[..], "{n} {parallel}");
                let want = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &plain[..n - 3]);
                assert_eq!(d.as_ref(), want.as_ref(), "{n} {parallel}");
            }
        }
    }

    #[test]
    fn seipd_writer_chunks_agree_with_one_call() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let run = |step: usize, partial: bool| {
            let out = Vec::new();
            let framing = if partial {
                Framing::Partial(PartialBody::new(out))
            } else {
                Framing::Definite(out)
            };
            let mut w = SeipdWriter::new(framing, &AES_256, &key(), [9; 16]).unwrap();
            for c in data.chunks(step) {
                w.write_all(c).unwrap();
            }
            w.finish().unwrap()
        };
        let one = run(data.len(), false);
        assert_eq!(one.len(), seipd_body_len(data.len()).unwrap() as usize);
        for step in [1, 15, 16, 17, 1000, CHUNK, CHUNK + 1] {
            assert_eq!(run(step, false), one, "{step}");
        }
        // Partial framing: the same octets, cut into 64 KiB chunks with length octets.
        let framed = run(777, true);
        let mut pkt = vec![0xC0 | TAG_SEIPD];
        pkt.extend_from_slice(&framed);
        let p = read_packet(&pkt, 0).unwrap();
        assert!(p.partial);
        assert_eq!(p.whole.end, pkt.len());
        let body: Vec<u8> = p
            .body
            .iter()
            .flat_map(|r| pkt[r.clone()].to_vec())
            .collect();
        assert_eq!(body, one);
        // And it opens, with the MDC checked.
        let (pt, range) = open(&AES_256, &key(), &one[1..]).unwrap();
        assert_eq!(&pt[range], &data[..]);
    }

    #[test]
    fn pipelined_seal_equals_the_writer() {
        let key = key();
        let random = [9u8; BLOCK];
        let head = b"\xCB\x0Fb\0\0\0\0\0".to_vec();
        // Sizes around the 1 MiB step and the block size, so chunking and the tail both vary.
        for n in [0usize, 1, 15, 16, 17, (1 << 20) - 9, 1 << 20, (3 << 20) + 5] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 + i / 251) as u8).collect();
            let mut w =
                SeipdWriter::new(Framing::Definite(Vec::new()), &AES_256, &key, random).unwrap();
            w.write_all(&head).unwrap();
            w.write_all(&data).unwrap();
            let expected = w.finish().unwrap();
            let got = seal_pipelined(Vec::new(), &AES_256, &key, random, &head, &data).unwrap();
            assert_eq!(got, expected, "size {n}");
        }
    }

    #[test]
    fn seal_into_equals_the_writer() {
        for n in [0usize, 1, 13, 14, 30, 1000, 300_001] {
            let data: Vec<u8> = (0..n).map(|i| (i % 249) as u8).collect();
            let head = [0xCB, 0xFF, 1, 2, 3, 4, b'b', 0];
            let mut w =
                SeipdWriter::new(Framing::Definite(Vec::new()), &AES_256, &key(), [5; 16]).unwrap();
            w.write_all(&head).unwrap();
            w.write_all(&data).unwrap();
            let expected = w.finish().unwrap();
            for parallel in [false, true] {
                let mut out = b"before".to_vec();
                seal_into(&mut out, &AES_256, &key(), [5; 16], &head, &data, parallel).unwrap();
                assert_eq!(&out[..6], b"before");
                assert_eq!(&out[6..], &expected[..], "{n} {parallel}");
            }
        }
    }

    #[test]
    fn tampering_and_truncation_are_refused() {
        let data = vec![b'x'; 5000];
        let mut w = SeipdWriter::new(
            Framing::Definite(Vec::new()),
            &AES_128,
            &key()[..16],
            [3; 16],
        )
        .unwrap();
        w.write_all(&data).unwrap();
        let body = w.finish().unwrap();
        let ct = &body[1..];
        assert!(open(&AES_128, &key()[..16], ct).is_ok());
        assert!(quick_check(&AES_128, &key()[..16], ct));
        // Wrong key: the quick check fails (almost always) and so does the MDC.
        let mut other = key();
        other[0] ^= 1;
        assert!(open(&AES_128, &other[..16], ct).is_err());
        // One flipped bit in the data: the MDC fails.
        let mut t = ct.to_vec();
        t[2500] ^= 1;
        assert_eq!(
            open(&AES_128, &key()[..16], &t).err(),
            Some(Refused::Failed)
        );
        // Cut off: no MDC where it must be.
        assert_eq!(
            open(&AES_128, &key()[..16], &ct[..ct.len() - 22]).err(),
            Some(Refused::NoMdc)
        );
        assert_eq!(
            open(&AES_128, &key()[..16], &ct[..30]).err(),
            Some(Refused::NoMdc)
        );
        // A truncated last octet: garbled MDC.
        assert!(open(&AES_128, &key()[..16], &ct[..ct.len() - 1]).is_err());
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // a body of one range is what is meant
    fn packet_headers_both_formats() {
        for len in [0u32, 1, 191, 192, 8383, 8384, 100_000] {
            let mut p = header(TAG_LITERAL, len);
            let h = p.len();
            p.resize(h + len as usize, 0);
            let r = read_packet(&p, 0).unwrap();
            assert_eq!(
                (r.tag, r.whole.end, r.body.clone()),
                (TAG_LITERAL, p.len(), vec![h..p.len()])
            );
            assert!(read_packet(&p[..p.len() - 1], 0).is_none() || len == 0);
        }
        // Legacy: tag 11, two-octet length.
        let p = [0x80 | (11 << 2) | 1, 0, 3, 1, 2, 3];
        let r = read_packet(&p, 0).unwrap();
        assert_eq!((r.tag, r.body), (11, vec![3..6]));
        assert!(read_packet(&[0x00], 0).is_none());
        assert!(read_packet(&[], 0).is_none());
        // A partial chunk running past the end.
        assert!(read_packet(&[0xC0 | 11, 0xE9, 1, 2], 0).is_none());
    }
}

/// Raw throughput of the pieces on this machine, to compare with gpg's figures (not a test of
/// correctness; run with `cargo test --release -p sealgate-pgp -- --ignored --nocapture
/// throughput`).
#[cfg(test)]
mod throughput {
    use super::*;
    use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext};
    use std::time::Instant;

    /// CPU time of this thread (ns), from /proc: on a loaded machine wall time mostly
    /// measures the wait for a core.
    fn cpu_ns() -> Option<u64> {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        s.split_whitespace().next()?.parse().ok()
    }

    fn mbps(n: usize, f: &mut dyn FnMut()) -> f64 {
        f();
        let mut best = f64::MAX;
        for _ in 0..5 {
            let (t, c) = (Instant::now(), cpu_ns());
            f();
            let wall = t.elapsed().as_secs_f64();
            let secs = match (c, cpu_ns()) {
                (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
                _ => wall,
            };
            best = best.min(secs);
        }
        n as f64 / best / 1e6
    }

    #[test]
    #[ignore]
    fn throughput() {
        let n = 10 << 20;
        let data: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
        let key = [7u8; 32];
        let mut buf = data.clone();
        let cfb = EncryptingKey::cfb128(UnboundCipherKey::new(&AES_256, &key).unwrap()).unwrap();
        let enc = mbps(n, &mut || {
            cfb.less_safe_encrypt(&mut buf, EncryptionContext::Iv128([0u8; 16].into()))
                .unwrap();
        });
        let ct = buf.clone();
        let ours = CfbKey::new(&AES_256, &key).unwrap();
        let enc_aes = mbps(n, &mut || ours.encrypt(&mut buf, [0u8; 16]));
        let dec = mbps(n, &mut || {
            std::hint::black_box(cfb_decrypt(&AES_256, &key, &ct).unwrap());
        });
        let sha1 = mbps(n, &mut || {
            std::hint::black_box(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &data));
        });
        let seipd = mbps(n, &mut || {
            let mut w = SeipdWriter::new(
                Framing::Definite(Vec::with_capacity(n + 100)),
                &AES_256,
                &key,
                [1; 16],
            )
            .unwrap();
            w.write_all(&data).unwrap();
            std::hint::black_box(w.finish().unwrap());
        });
        let mut body =
            SeipdWriter::new(Framing::Definite(Vec::new()), &AES_256, &key, [1; 16]).unwrap();
        body.write_all(&data).unwrap();
        let body = body.finish().unwrap();
        let open_ = mbps(n, &mut || {
            std::hint::black_box(open(&AES_256, &key, &body[1..]).unwrap());
        });
        let armor = mbps(n, &mut || {
            let mut a =
                crate::armor::ArmorWriter::new(Vec::with_capacity(n * 14 / 10), b"\n").unwrap();
            a.write_all(&data).unwrap();
            std::hint::black_box(a.finish().unwrap());
        });
        let mut a = crate::armor::ArmorWriter::new(Vec::new(), b"\n").unwrap();
        a.write_all(&data).unwrap();
        let text = a.finish().unwrap();
        let dearmor = mbps(n, &mut || {
            std::hint::black_box(crate::armor::dearmor_message(&text).unwrap());
        });
        println!(
            "10 MiB, MB/s of thread CPU time (best of 5): AES-256-CFB encrypt aws-lc {enc:.0}, aes crate {enc_aes:.0}, CFB decrypt (ECB keystream) {dec:.0}, \
             SHA-1 {sha1:.0}, SEIPD v1 write {seipd:.0}, SEIPD v1 open {open_:.0}, armor {armor:.0}, dearmor {dearmor:.0}"
        );
    }
}
