//! Whole RFC 5322 messages: PGP/MIME (RFC 3156) encrypt, sign, decrypt and verify, and
//! inline PGP on the reading side.
//!
//! The outer header fields stay outside the protection; the MIME entity (Content-* fields and
//! body, canonical CRLF) is what gets signed or encrypted, as with S/MIME.

use rand_core::RngCore;
use sealgate_mime::{self as mime, Entity, HeaderField, InlinePgpKind, Limits};
use zeroize::Zeroizing;

use crate::{Cert, EncryptOptions, Error, Result, SecretKey, Verification};

/// How [`encrypt_message`] encrypts.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct EncryptMessageOptions {
    /// Replace the outer Subject (which travels in clear) with this text; the real one is
    /// carried inside the encryption and restored by [`decrypt_message`].
    pub outer_subject: Option<String>,
}

/// The result of [`verify_message`]. `Debug` shows the report, not the message.
#[non_exhaustive]
pub struct VerifiedMessage {
    /// The signatures and their checks.
    pub verification: Verification,
    /// The message without its signature: outer header fields and the signed entity (or, for
    /// an inline cleartext signature, the signed text).
    pub message: Vec<u8>,
}

impl std::fmt::Debug for VerifiedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedMessage")
            .field("verification", &self.verification)
            .field("message", &format_args!("[{} bytes]", self.message.len()))
            .finish()
    }
}

/// The result of [`decrypt_message`]. `Debug` never shows the plaintext.
#[non_exhaustive]
pub struct DecryptedMessage {
    /// Outer header fields followed by the decrypted entity; wiped when dropped. When the
    /// entity inside was a PGP/MIME `multipart/signed`, it is returned as it was.
    pub message: Zeroizing<Vec<u8>>,
    /// Signatures found: one-pass signatures inside the encryption, or those of an inner
    /// `multipart/signed`.
    pub verification: Verification,
    /// True when the content was protected with SEIPD v2 (AEAD); otherwise SEIPD v1 with MDC.
    pub aead: bool,
    /// True when the message was inline PGP rather than PGP/MIME.
    pub inline: bool,
}

impl std::fmt::Debug for DecryptedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptedMessage")
            .field("message", &format_args!("[{} bytes]", self.message.len()))
            .field("verification", &self.verification)
            .field("aead", &self.aead)
            .field("inline", &self.inline)
            .finish()
    }
}

/// Encrypt a whole message as PGP/MIME to `recipients`, signing it in the same pass when
/// `signer` is given (the signature travels inside the encryption, as GnuPG does).
pub fn encrypt_message(
    raw: &[u8],
    recipients: &[Cert],
    signer: Option<&SecretKey>,
    opts: &EncryptMessageOptions,
    rng: &mut impl RngCore,
    limits: &Limits,
) -> Result<Vec<u8>> {
    check_size(raw, limits)?;
    let (outer, entity) = mime::split_for_protection(raw, limits)?;
    let entity = match &opts.outer_subject {
        Some(_) => mime::protect_subject(&outer, &entity),
        None => entity,
    };
    // CRLF armor lines: the MIME part needs canonical line ends and then takes them as they are.
    let armored = crate::encrypt::encrypt_with_line_end(
        &entity,
        recipients,
        signer,
        &EncryptOptions {
            armor: true,
            ..EncryptOptions::default()
        },
        b"\r\n",
    )?;
    let part = mime::build_pgp_encrypted(&armored, rng);
    Ok(with_outer(&outer, opts.outer_subject.as_deref(), &part))
}

/// Sign a whole message as PGP/MIME `multipart/signed` (RFC 3156 §5): the entity is made
/// 7-bit safe and canonical first, and `micalg` names the hash the signature used.
pub fn sign_message(
    raw: &[u8],
    signer: &SecretKey,
    rng: &mut impl RngCore,
    limits: &Limits,
) -> Result<Vec<u8>> {
    check_size(raw, limits)?;
    let (outer, entity) = mime::split_for_protection(raw, limits)?;
    let entity = mime::make_seven_bit(&entity, limits)?;
    let signature = crate::sign_detached(&entity, signer, true)?;
    let part = mime::build_pgp_signed(&entity, crate::SIGNATURE_HASH, &signature, rng);
    Ok(mime::assemble(&outer, &[], &part))
}

/// Verify a PGP/MIME `multipart/signed` message, or an inline cleartext-signed text body.
/// `Ok` carries the report even when a signature is invalid; `Err` means the message is not
/// a signed OpenPGP message or cannot be read.
pub fn verify_message(raw: &[u8], signers: &[Cert], limits: &Limits) -> Result<VerifiedMessage> {
    check_size(raw, limits)?;
    if let Some(ms) = mime::parse_multipart_signed(raw, limits)? {
        if ms.protocol != mime::PGP_SIGNATURE {
            return Err(Error::WrongMessageType {
                expected: "PGP/MIME signed",
                found: format!("multipart/signed; protocol={}", ms.protocol),
            });
        }
        // RFC 3156 §5: the signed part is hashed in canonical (CRLF) form.
        let content = mime::canonicalize_crlf(ms.signed);
        let verification = crate::verify_detached(&content, &ms.signature, signers, limits)?;
        return Ok(VerifiedMessage {
            verification,
            message: mime::assemble(&ms.outer, &[], &content),
        });
    }
    if let Some(inline) = mime::find_inline_pgp(raw, limits)?
        && inline.kind == InlinePgpKind::SignedMessage
    {
        let (text, verification) = crate::verify_inline(&inline.block, signers, limits)?;
        let message = text_message(&inline.outer, inline.charset.as_deref(), &text);
        return Ok(VerifiedMessage {
            verification,
            message,
        });
    }
    Err(Error::WrongMessageType {
        expected: "PGP signed",
        found: content_type(raw, limits),
    })
}

/// Decrypt a PGP/MIME `multipart/encrypted` message or an inline-PGP message with our keys,
/// verifying signatures against `signers`. Plaintext without integrity protection is never
/// returned (EFAIL): that is [`Error::MissingIntegrityProtection`].
pub fn decrypt_message(
    raw: &[u8],
    keys: &[SecretKey],
    signers: &[Cert],
    limits: &Limits,
) -> Result<DecryptedMessage> {
    check_size(raw, limits)?;
    if let Some(enc) = mime::parse_pgp_encrypted(raw, limits)? {
        let d = crate::decrypt(&enc.encrypted, keys, signers, limits)?;
        let content = mime::canonicalize_crlf(&d.plaintext);
        // Header fields inside the encryption (a protected Subject) win over the outer ones.
        let outer = mime::unprotected_outer(enc.outer, &content, limits)?;
        let message = Zeroizing::new(mime::assemble(&outer, &[], &content));
        // A signed entity inside the encryption (sign, then encrypt as two MIME layers).
        let mut verification = d.verification;
        if verification.signatures.is_empty()
            && let Ok(inner) = verify_message(&message, signers, limits)
        {
            verification = inner.verification;
        }
        return Ok(DecryptedMessage {
            message,
            verification,
            aead: d.aead,
            inline: false,
        });
    }
    if let Some(inline) = mime::find_inline_pgp(raw, limits)?
        && inline.kind == InlinePgpKind::Message
    {
        let d = crate::decrypt(&inline.block, keys, signers, limits)?;
        let message = Zeroizing::new(text_message(
            &inline.outer,
            inline.charset.as_deref(),
            &d.plaintext,
        ));
        return Ok(DecryptedMessage {
            message,
            verification: d.verification,
            aead: d.aead,
            inline: true,
        });
    }
    Err(Error::WrongMessageType {
        expected: "PGP encrypted",
        found: content_type(raw, limits),
    })
}

/// The decrypted text of an inline-PGP message as a text/plain message.
fn text_message(outer: &[HeaderField<'_>], charset: Option<&str>, text: &[u8]) -> Vec<u8> {
    let charset = charset.unwrap_or("utf-8");
    let body = mime::canonicalize_crlf(text);
    let eight_bit = body.iter().any(|&b| b >= 0x80);
    let mut entity = format!(
        "Content-Type: text/plain; charset=\"{}\"\r\nContent-Transfer-Encoding: {}\r\n\r\n",
        charset.replace(['"', '\\', '\r', '\n'], ""),
        if eight_bit { "8bit" } else { "7bit" }
    )
    .into_bytes();
    entity.extend_from_slice(&body);
    mime::assemble(outer, &[], &entity)
}

/// The outer header fields with the Subject replaced (or not), then the new entity.
fn with_outer(outer: &[HeaderField<'_>], subject: Option<&str>, entity: &[u8]) -> Vec<u8> {
    match subject {
        Some(subject) => {
            let kept: Vec<_> = outer
                .iter()
                .filter(|h| !h.is_named("Subject"))
                .copied()
                .collect();
            mime::assemble(&kept, &[("Subject", subject)], entity)
        }
        None => mime::assemble(outer, &[], entity),
    }
}

fn content_type(raw: &[u8], limits: &Limits) -> String {
    Entity::parse(raw, limits)
        .map(|e| e.content_type().mime_type)
        .unwrap_or_else(|_| "unparseable".into())
}

fn check_size(raw: &[u8], limits: &Limits) -> Result<()> {
    if raw.len() > limits.max_message_bytes {
        return Err(Error::LimitExceeded {
            what: "message size",
            limit: limits.max_message_bytes as u64,
        });
    }
    Ok(())
}
