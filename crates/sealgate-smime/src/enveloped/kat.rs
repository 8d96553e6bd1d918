//! Known-answer test hooks: the content-decryption and key-unwrap primitives exactly as
//! [`super::decrypt`] runs them, for the Wycheproof vectors in `tests/tests/wycheproof.rs`.
//!
//! Hidden from the documentation and not part of the API: they exist so that public test
//! vectors reach the code we ship (our CBC unpadding, our AES-192 key unwrap, the aws-lc-rs
//! calls and their parameters) rather than a copy of it. They may change without notice.

use zeroize::Zeroizing;

use super::{ContentAlgorithm, Plan, decrypt_in_place, kari};
use crate::error::{Error, Result};

/// Decrypt `ciphertext` with `alg` as EnvelopedData (CBC, `tag` empty) or AuthEnvelopedData
/// (GCM, `aad` = the authAttrs, `tag` = the ICV) content is decrypted: the same function, the
/// same checks, the same coarse [`Error::DecryptionFailed`].
pub fn content_decrypt(
    alg: ContentAlgorithm,
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    // The CMS parser accepts only these sizes (RFC 5084 nonce 12, ICV 16; block-size IVs).
    let iv_ok = if alg.is_aead() {
        iv.len() == 12 && tag.len() == 16
    } else {
        iv.len()
            == if alg == ContentAlgorithm::DesEde3Cbc {
                8
            } else {
                16
            }
            && tag.is_empty()
    };
    if !iv_ok || key.len() != alg.key_len() {
        return Err(Error::DecryptionFailed);
    }
    let plan = Plan {
        alg,
        auth: alg.is_aead(),
        iv: iv.to_vec(),
        aad: aad.to_vec(),
        mac: tag.to_vec(),
        ciphertext: 0..ciphertext.len(),
        cek: Zeroizing::new(key.to_vec()),
        substituted: false,
    };
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let n = decrypt_in_place(&plan, &plan.cek, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// AES-GCM content as the streamed decryption ([`crate::stream::decrypt_message`]) runs it:
/// OpenSSL in steps of `step` bytes, the tag checked at the end. The nonce and tag lengths it
/// takes are the CMS parser's (nonce 1..=128 bytes, ICV 12..=16); no AAD, as the stream
/// refuses authAttrs. Everything refused is [`Error::DecryptionFailed`] here.
pub fn content_decrypt_streamed(
    alg: ContentAlgorithm,
    key: &[u8],
    nonce: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
    step: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let sizes_ok = alg.is_aead()
        && (1..=super::MAX_GCM_NONCE).contains(&nonce.len())
        && (12..=16).contains(&tag.len())
        && key.len() == alg.key_len();
    if !sizes_ok {
        return Err(Error::DecryptionFailed);
    }
    let mut gcm = crate::stream::GcmStream::new(alg, key, nonce)?;
    let mut out = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    for piece in ciphertext.chunks(step.max(1)) {
        gcm.update(piece, &mut *out)?;
    }
    gcm.finish(tag, &mut *out)?;
    Ok(out)
}

/// RFC 3394 AES key unwrap as key agreement (KARI) runs it; the KEK length picks
/// id-aes128-wrap, id-aes192-wrap or id-aes256-wrap.
pub fn key_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let oid = match kek.len() {
        16 => kari::AES128_WRAP,
        24 => kari::AES192_WRAP,
        32 => kari::AES256_WRAP,
        _ => return Err(Error::DecryptionFailed),
    };
    kari::unwrap_key(&oid, kek, wrapped)
}
