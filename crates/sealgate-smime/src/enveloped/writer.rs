//! Streaming EnvelopedData encryption with bounded memory.

use std::io::{self, Write};

use aws_lc_rs::cipher::{EncryptionContext, StreamingEncryptingKey, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::tlv::{self, tag};
use super::{ContentCipher, Recipient, content_alg_id, oid, recipient_infos};
use crate::error::{Error, Result};

/// Plaintext is encrypted and emitted in chunks of this size (one OCTET STRING each).
const CHUNK: usize = 64 * 1024;

/// Streaming encryptor for CBC: memory stays bounded whatever the content size.
///
/// Writes a BER ContentInfo with indefinite lengths and the encryptedContent as a constructed
/// OCTET STRING of chunks (RFC 5652 §6.1 allows it; `openssl cms -stream` writes the same shape)
/// to the inner writer. [`EnvelopedWriter::finish`] must be called: it writes the final block
/// and the end-of-contents octets and returns the inner writer. Dropped unfinished, the output
/// is truncated and unreadable.
pub struct EnvelopedWriter<W: Write> {
    inner: W,
    key: StreamingEncryptingKey,
    pending: Zeroizing<Vec<u8>>,
    out: Vec<u8>,
}

impl<W: Write> std::fmt::Debug for EnvelopedWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopedWriter").finish_non_exhaustive()
    }
}

impl<W: Write> EnvelopedWriter<W> {
    /// Start an EnvelopedData to `recipients` with a CBC `cipher` (GCM is refused: a streamed
    /// AuthEnvelopedData would hand out plaintext before its tag is checked on the other side,
    /// and the one-shot [`super::encrypt`] covers it).
    pub fn new(
        mut inner: W,
        recipients: &[Recipient],
        cipher: ContentCipher,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self> {
        let alg = cipher.algorithm();
        let aes = alg.aes().ok_or_else(|| Error::UnsupportedAlgorithm {
            what: "streaming content encryption (CBC only)",
            oid: alg.oid().to_string(),
        })?;
        let mut cek = Zeroizing::new(vec![0u8; alg.key_len()]);
        rng.fill_bytes(&mut cek);
        let (ris, all_v0) = recipient_infos(recipients, &cek, rng)?;
        let mut iv = [0u8; 16];
        rng.fill_bytes(&mut iv);
        let fail = |_| Error::Crypto { what: "AES-CBC" };
        let key = StreamingEncryptingKey::less_safe_cbc_pkcs7(
            UnboundCipherKey::new(aes, &cek).map_err(fail)?,
            EncryptionContext::Iv128(FixedLength::from(&iv)),
        )
        .map_err(fail)?;

        let mut head = Vec::with_capacity(ris.len() + 128);
        head.extend_from_slice(&[tag::SEQUENCE, 0x80]);
        tlv::push_oid(&mut head, &oid::ENVELOPED_DATA);
        head.extend_from_slice(&[tag::CTX0, 0x80, tag::SEQUENCE, 0x80]);
        head.extend_from_slice(&[tag::INTEGER, 1, if all_v0 { 0 } else { 2 }]);
        tlv::push_tlv(&mut head, tag::SET, &ris);
        head.extend_from_slice(&[tag::SEQUENCE, 0x80]);
        tlv::push_oid(&mut head, &oid::DATA);
        head.extend_from_slice(&content_alg_id(alg, &iv));
        // encryptedContent [0] IMPLICIT OCTET STRING, constructed (X.690 §8.7.3.2).
        head.extend_from_slice(&[tag::CTX0, 0x80]);
        inner.write_all(&head)?;
        Ok(Self {
            inner,
            key,
            pending: Zeroizing::new(Vec::with_capacity(CHUNK)),
            out: vec![0u8; CHUNK + 32],
        })
    }

    /// The inner writer (writing to it directly would corrupt the output: for writers that
    /// need to hold the output back, e.g. until outer header fields are known).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Encrypt `plain` (at most CHUNK bytes) and write it as one OCTET STRING chunk.
    fn emit(
        key: &mut StreamingEncryptingKey,
        out: &mut [u8],
        inner: &mut W,
        plain: &[u8],
    ) -> io::Result<()> {
        let update = key
            .update(plain, out)
            .map_err(|_| io::Error::other("AES-CBC encryption failed"))?;
        write_chunk(inner, update.written())
    }

    /// Write the last block and the end-of-contents octets; return the inner writer.
    pub fn finish(mut self) -> Result<W> {
        if !self.pending.is_empty() {
            Self::emit(&mut self.key, &mut self.out, &mut self.inner, &self.pending)?;
            self.pending.clear();
        }
        let (_, last) = self
            .key
            .finish(&mut self.out)
            .map_err(|_| Error::Crypto { what: "AES-CBC" })?;
        write_chunk(&mut self.inner, last.written())?;
        // Close [0] encryptedContent, EncryptedContentInfo, EnvelopedData, [0] content,
        // ContentInfo.
        self.inner.write_all(&[0u8; 10])?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

fn write_chunk<W: Write>(inner: &mut W, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let mut h = Vec::with_capacity(6);
    tlv::push_header(&mut h, tag::OCTET_STRING, data.len());
    inner.write_all(&h)?;
    inner.write_all(data)
}

impl<W: Write> Write for EnvelopedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        // Fill the pending chunk first; large writes then go straight through in whole chunks.
        if !self.pending.is_empty() {
            let take = (CHUNK - self.pending.len()).min(rest.len());
            let (head, tail) = rest.split_at(take);
            self.pending.extend_from_slice(head);
            rest = tail;
            if self.pending.len() == CHUNK {
                Self::emit(&mut self.key, &mut self.out, &mut self.inner, &self.pending)?;
                self.pending.clear();
            }
        }
        while rest.len() >= CHUNK {
            let (head, tail) = rest.split_at(CHUNK);
            Self::emit(&mut self.key, &mut self.out, &mut self.inner, head)?;
            rest = tail;
        }
        self.pending.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
