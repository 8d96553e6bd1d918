//! Streaming EnvelopedData (CBC) and AuthEnvelopedData (GCM) encryption with bounded memory.

use std::io::{self, Write};

use aws_lc_rs::cipher::{EncryptionContext, StreamingEncryptingKey, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::{ContentCipher, Recipient, content_alg_id, oid, recipient_infos};
use crate::error::{Error, Result};
use crate::tlv::{self, tag};

/// Plaintext is encrypted and emitted in chunks of this size (one OCTET STRING each).
const CHUNK: usize = 64 * 1024;

/// Streaming encryptor: memory stays bounded whatever the content size.
///
/// Writes a BER ContentInfo with indefinite lengths and the encryptedContent as a constructed
/// OCTET STRING of chunks (RFC 5652 §6.1 allows it; `openssl cms -stream` writes the same shape)
/// to the inner writer: EnvelopedData for the CBC ciphers, AuthEnvelopedData (RFC 5083) for
/// AES-GCM, whose mac (the tag) follows the ciphertext; no authAttrs, as OpenSSL writes it.
/// [`EnvelopedWriter::finish`] must be called: it writes the final block or the tag and the
/// end-of-contents octets and returns the inner writer. Dropped unfinished, the output is
/// truncated and unreadable.
pub struct EnvelopedWriter<W: Write> {
    inner: W,
    key: ContentKey,
    pending: Zeroizing<Vec<u8>>,
    out: Vec<u8>,
    /// DER output: the plaintext bytes still to come. `None`: BER, any length.
    remaining: Option<usize>,
}

/// The content encryption in steps: aws-lc-rs for CBC, OpenSSL for GCM (aws-lc-rs has no
/// incremental GCM).
enum ContentKey {
    Cbc(StreamingEncryptingKey),
    Gcm(openssl::symm::Crypter),
}

/// RFC 5083 §2.1: the mac holds the GCM tag, 16 bytes as our GCMParameters say.
const GCM_TAG: usize = 16;

impl<W: Write> std::fmt::Debug for EnvelopedWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopedWriter").finish_non_exhaustive()
    }
}

impl<W: Write> EnvelopedWriter<W> {
    /// Start an EnvelopedData (CBC `cipher`) or AuthEnvelopedData (GCM) to `recipients`.
    ///
    /// GCM: a streamed AuthEnvelopedData is only safe with a receiver that checks the tag
    /// before it releases any plaintext, as [`crate::stream::decrypt_message`] and the
    /// one-shot [`super::decrypt`] do.
    pub fn new(
        inner: W,
        recipients: &[Recipient],
        cipher: ContentCipher,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self> {
        Self::start(inner, recipients, cipher, rng, None)
    }

    /// Like [`EnvelopedWriter::new`] for content of a length known up front: the output is DER
    /// (definite lengths, the encryptedContent one primitive OCTET STRING), byte for byte what
    /// the one-shot [`super::encrypt`] writes. [`EnvelopedWriter::finish`] fails if another
    /// number of bytes was written.
    pub fn with_content_length(
        inner: W,
        recipients: &[Recipient],
        cipher: ContentCipher,
        rng: &mut impl CryptoRngCore,
        content_len: usize,
    ) -> Result<Self> {
        Self::start(inner, recipients, cipher, rng, Some(content_len))
    }

    fn start(
        mut inner: W,
        recipients: &[Recipient],
        cipher: ContentCipher,
        rng: &mut impl CryptoRngCore,
        content_len: Option<usize>,
    ) -> Result<Self> {
        let alg = cipher.algorithm();
        let mut cek = Zeroizing::new(vec![0u8; alg.key_len()]);
        rng.fill_bytes(&mut cek);
        let (ris, ed_version) = recipient_infos(recipients, &cek, rng)?;
        // The same randomness in the same order as the one-shot encrypt: with one RNG the
        // DER output is the same bytes.
        let mut iv = [0u8; 16];
        let iv = if alg.is_aead() {
            &mut iv[..12]
        } else {
            &mut iv[..]
        };
        rng.fill_bytes(iv);
        let key = if let Some(gcm) = alg.openssl_gcm() {
            let c = openssl::symm::Crypter::new(gcm, openssl::symm::Mode::Encrypt, &cek, Some(iv))
                .map_err(|_| Error::Crypto { what: "AES-GCM" })?;
            ContentKey::Gcm(c)
        } else {
            let aes = alg.aes().ok_or_else(|| Error::UnsupportedAlgorithm {
                what: "streaming content encryption",
                oid: alg.oid().to_string(),
            })?;
            let fail = |_| Error::Crypto { what: "AES-CBC" };
            let iv: &[u8; 16] = (&*iv)
                .try_into()
                .map_err(|_| Error::Crypto { what: "AES-CBC" })?;
            ContentKey::Cbc(
                StreamingEncryptingKey::less_safe_cbc_pkcs7(
                    UnboundCipherKey::new(aes, &cek).map_err(fail)?,
                    EncryptionContext::Iv128(FixedLength::from(iv)),
                )
                .map_err(fail)?,
            )
        };
        let alg_id = content_alg_id(alg, iv);
        // RFC 5652 §6.1: version 0 when every RecipientInfo is version 0, else 2. RFC 5083
        // §2.1: AuthEnvelopedData version is always 0.
        let version = if alg.is_aead() { 0 } else { ed_version };
        let content_type = if alg.is_aead() {
            oid::AUTH_ENVELOPED_DATA
        } else {
            oid::ENVELOPED_DATA
        };

        let mut head = Vec::with_capacity(ris.len() + 128);
        match content_len {
            None => {
                head.extend_from_slice(&[tag::SEQUENCE, 0x80]);
                tlv::push_oid(&mut head, &content_type);
                head.extend_from_slice(&[tag::CTX0, 0x80, tag::SEQUENCE, 0x80]);
                head.extend_from_slice(&[tag::INTEGER, 1, version]);
                tlv::push_tlv(&mut head, tag::SET, &ris);
                head.extend_from_slice(&[tag::SEQUENCE, 0x80]);
                tlv::push_oid(&mut head, &oid::DATA);
                head.extend_from_slice(&alg_id);
                // encryptedContent [0] IMPLICIT OCTET STRING, constructed (X.690 §8.7.3.2).
                head.extend_from_slice(&[tag::CTX0, 0x80]);
            }
            Some(len) => {
                // PKCS#7 padding always adds 1..=16 bytes (RFC 5652 §6.3); GCM none.
                let (ct_len, mac_len) = if alg.is_aead() {
                    (len, tlv::tlv_len(GCM_TAG))
                } else {
                    ((len / 16 + 1) * 16, 0)
                };
                let eci_body = tlv::oid_len(&oid::DATA) + alg_id.len() + tlv::tlv_len(ct_len);
                let ed_body = 3 + tlv::tlv_len(ris.len()) + tlv::tlv_len(eci_body) + mac_len;
                let explicit_body = tlv::tlv_len(ed_body);
                let ci_body = tlv::oid_len(&content_type) + tlv::tlv_len(explicit_body);
                tlv::push_header(&mut head, tag::SEQUENCE, ci_body);
                tlv::push_oid(&mut head, &content_type);
                tlv::push_header(&mut head, tag::CTX0, explicit_body);
                tlv::push_header(&mut head, tag::SEQUENCE, ed_body);
                head.extend_from_slice(&[tag::INTEGER, 1, version]);
                tlv::push_tlv(&mut head, tag::SET, &ris);
                tlv::push_header(&mut head, tag::SEQUENCE, eci_body);
                tlv::push_oid(&mut head, &oid::DATA);
                head.extend_from_slice(&alg_id);
                tlv::push_header(&mut head, tag::CTX0_PRIM, ct_len);
            }
        }
        inner.write_all(&head)?;
        Ok(Self {
            inner,
            key,
            pending: Zeroizing::new(Vec::with_capacity(CHUNK)),
            out: vec![0u8; CHUNK + 32],
            remaining: content_len,
        })
    }

    /// The inner writer (writing to it directly would corrupt the output: for writers that
    /// need to hold the output back, e.g. until outer header fields are known).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Encrypt `plain` (at most CHUNK bytes) and write it as one OCTET STRING chunk.
    fn emit(&mut self, from_pending: bool, plain: &[u8]) -> io::Result<()> {
        let plain = if from_pending {
            &self.pending[..]
        } else {
            plain
        };
        let ber = self.remaining.is_none();
        match &mut self.key {
            ContentKey::Cbc(key) => {
                let update = key
                    .update(plain, &mut self.out)
                    .map_err(|_| io::Error::other("AES-CBC encryption failed"))?;
                write_chunk(&mut self.inner, update.written(), ber)
            }
            ContentKey::Gcm(c) => {
                // `out` has a block more room than the CHUNK this is at most.
                let n = c
                    .update(plain, &mut self.out)
                    .map_err(|_| io::Error::other("AES-GCM encryption failed"))?;
                write_chunk(&mut self.inner, self.out.get(..n).unwrap_or_default(), ber)
            }
        }
    }

    /// Write the last block and (BER) the end-of-contents octets; return the inner writer.
    pub fn finish(mut self) -> Result<W> {
        if !self.pending.is_empty() {
            self.emit(true, &[])?;
            self.pending.clear();
        }
        if self.remaining.is_some_and(|r| r != 0) {
            return Err(Error::Crypto {
                what: "EnvelopedWriter: fewer bytes written than announced",
            });
        }
        let ber = self.remaining.is_none();
        match self.key {
            ContentKey::Cbc(key) => {
                let (_, last) = key
                    .finish(&mut self.out)
                    .map_err(|_| Error::Crypto { what: "AES-CBC" })?;
                write_chunk(&mut self.inner, last.written(), ber)?;
                if ber {
                    // Close [0] encryptedContent, EncryptedContentInfo, EnvelopedData,
                    // [0] content, ContentInfo.
                    self.inner.write_all(&[0u8; 10])?;
                }
            }
            ContentKey::Gcm(mut c) => {
                let fail = |_| Error::Crypto { what: "AES-GCM" };
                let n = c.finalize(&mut self.out).map_err(fail)?;
                write_chunk(&mut self.inner, self.out.get(..n).unwrap_or_default(), ber)?;
                let mut mac = [0u8; GCM_TAG];
                c.get_tag(&mut mac).map_err(fail)?;
                if ber {
                    // Close [0] encryptedContent and authEncryptedContentInfo.
                    self.inner.write_all(&[0u8; 4])?;
                }
                // RFC 5083 §2.1: mac MessageAuthenticationCode, after the content
                let mut m = Vec::with_capacity(2 + GCM_TAG);
                tlv::push_tlv(&mut m, tag::OCTET_STRING, &mac);
                self.inner.write_all(&m)?;
                if ber {
                    // Close AuthEnvelopedData, [0] content, ContentInfo.
                    self.inner.write_all(&[0u8; 6])?;
                }
            }
        }
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// Write ciphertext: as one OCTET STRING chunk of the constructed encryptedContent (BER) or
/// as it is (DER, the primitive encryptedContent's header is already out).
fn write_chunk<W: Write>(inner: &mut W, data: &[u8], ber: bool) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    if !ber {
        return inner.write_all(data);
    }
    let mut h = Vec::with_capacity(6);
    tlv::push_header(&mut h, tag::OCTET_STRING, data.len());
    inner.write_all(&h)?;
    inner.write_all(data)
}

impl<W: Write> Write for EnvelopedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(remaining) = self.remaining.as_mut() {
            *remaining = remaining.checked_sub(buf.len()).ok_or_else(|| {
                io::Error::other("EnvelopedWriter: more bytes written than announced")
            })?;
        }
        let mut rest = buf;
        // Fill the pending chunk first; large writes then go straight through in whole chunks.
        if !self.pending.is_empty() {
            let take = (CHUNK - self.pending.len()).min(rest.len());
            let (head, tail) = rest.split_at(take);
            self.pending.extend_from_slice(head);
            rest = tail;
            if self.pending.len() == CHUNK {
                self.emit(true, &[])?;
                self.pending.clear();
            }
        }
        while rest.len() >= CHUNK {
            let (head, tail) = rest.split_at(CHUNK);
            self.emit(false, head)?;
            rest = tail;
        }
        self.pending.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
