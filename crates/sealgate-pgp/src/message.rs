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
    /// carried inside the encryption and restored by [`decrypt_message`]. Ignored with
    /// `protect_headers`, whose outer Subject is RFC 9788's `[...]`.
    pub outer_subject: Option<String>,
    /// Header protection (RFC 9788, `hp="cipher"`): the header fields travel inside the
    /// encryption, the outer Subject becomes `[...]`, `Keywords` and `Comments` stay inside
    /// only (`hcp_baseline`).
    pub protect_headers: bool,
    /// With `protect_headers`: a Legacy Display Element (the real Subject at the top of a
    /// single-part text body) for clients that show only the inner body.
    pub legacy_display: bool,
    /// Header fields (name, value) written only inside the encryption, first in the header
    /// of the encrypted entity, e.g. `Autocrypt-Gossip` (Autocrypt Level 1 §2.3: "MUST be
    /// placed in the root MIME part of the encrypted message payload"). Values are folded as
    /// [`mime::rewrite_header`] folds them; a name that is not a header field name is an
    /// error. [`decrypt_message`] returns them as part of the message header.
    pub inner_headers: Vec<(String, String)>,
}

/// How [`sign_message_with`] signs.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SignMessageOptions {
    /// Header protection (RFC 9788, `hp="clear"`): the header fields are signed too, inside
    /// the signed entity; the outer header is unchanged.
    pub protect_headers: bool,
}

/// The result of [`verify_message`]. `Debug` shows the report, not the message.
#[non_exhaustive]
pub struct VerifiedMessage {
    /// The signatures and their checks.
    pub verification: Verification,
    /// The message without its signature: outer header fields and the signed entity (or, for
    /// an inline cleartext signature, the signed text). With header protection, the
    /// protected fields are the header.
    pub message: Vec<u8>,
    /// Header protection found in the signed entity (RFC 9788 or `protected-headers="v1"`).
    pub header_protection: Option<mime::HeaderProtection>,
}

impl std::fmt::Debug for VerifiedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedMessage")
            .field("verification", &self.verification)
            .field("message", &format_args!("[{} bytes]", self.message.len()))
            .field("header_protection", &self.header_protection)
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
    /// Header protection found inside the encryption (RFC 9788 or `protected-headers="v1"`):
    /// the protected fields are the header of `message`; the report says which were
    /// protected and which confidential.
    pub header_protection: Option<mime::HeaderProtection>,
}

impl std::fmt::Debug for DecryptedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptedMessage")
            .field("message", &format_args!("[{} bytes]", self.message.len()))
            .field("verification", &self.verification)
            .field("aead", &self.aead)
            .field("inline", &self.inline)
            .field("header_protection", &self.header_protection)
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
    let (mut outer, entity) = mime::split_for_protection(raw, limits)?;
    let mut extra = Vec::new();
    let entity = if opts.protect_headers {
        let mut parts = mime::ProtectedParts {
            outer,
            header: Vec::new(),
            body: std::borrow::Cow::Owned(entity),
        };
        extra =
            mime::apply_header_protection(&mut parts, mime::HpMode::Cipher, opts.legacy_display);
        outer = parts.outer;
        [&parts.header[..], &parts.body[..]].concat()
    } else {
        match &opts.outer_subject {
            Some(_) => mime::protect_subject(&outer, &entity),
            None => entity,
        }
    };
    let entity = with_inner_headers(entity, opts, limits)?;
    // The header and MIME frame first, then the armor (CRLF lines, as the MIME part needs them)
    // written straight after them: the 1.4x larger armored message is never copied.
    let (head, tail) = mime::pgp_encrypted_frame(rng);
    let out = if opts.protect_headers {
        let extra: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
        mime::assemble(&outer, &extra, &head)
    } else {
        with_outer(&outer, opts.outer_subject.as_deref(), &head)
    };
    let mut out = crate::encrypt::encrypt_appending(
        out,
        &entity,
        recipients,
        signer,
        &EncryptOptions {
            armor: true,
            ..EncryptOptions::default()
        },
        b"\r\n",
    )?;
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(&tail);
    Ok(out)
}

/// `entity` (header fields, or header fields and body) with [`EncryptMessageOptions::inner_headers`]
/// put first in its header.
pub(crate) fn with_inner_headers(
    entity: Vec<u8>,
    opts: &EncryptMessageOptions,
    limits: &Limits,
) -> Result<Vec<u8>> {
    if opts.inner_headers.is_empty() {
        return Ok(entity);
    }
    let add: Vec<(&str, &str)> = opts
        .inner_headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    Ok(mime::rewrite_header(&entity, |_| false, &add, limits)?)
}

/// Sign a whole message as PGP/MIME `multipart/signed` (RFC 3156 §5): the entity is made
/// 7-bit safe and canonical first, and `micalg` names the hash the signature used.
pub fn sign_message(
    raw: &[u8],
    signer: &SecretKey,
    rng: &mut impl RngCore,
    limits: &Limits,
) -> Result<Vec<u8>> {
    sign_message_with(raw, signer, &SignMessageOptions::default(), rng, limits)
}

/// [`sign_message`] with options (header protection).
pub fn sign_message_with(
    raw: &[u8],
    signer: &SecretKey,
    opts: &SignMessageOptions,
    rng: &mut impl RngCore,
    limits: &Limits,
) -> Result<Vec<u8>> {
    check_size(raw, limits)?;
    let (outer, entity) = mime::split_for_protection(raw, limits)?;
    let (outer, entity) = if opts.protect_headers {
        let mut parts = mime::ProtectedParts {
            outer,
            header: Vec::new(),
            body: std::borrow::Cow::Owned(entity),
        };
        mime::apply_header_protection(&mut parts, mime::HpMode::Clear, false);
        (parts.outer, [&parts.header[..], &parts.body[..]].concat())
    } else {
        (outer, entity)
    };
    let entity = mime::make_seven_bit(&entity, limits)?;
    // The header, the frame and the entity are written while the entity is hashed and signed
    // (on a second core when it is large): the signature only goes after them.
    let build = |rng: &mut _| {
        let frame = mime::pgp_signed_frame(&entity, crate::SIGNATURE_HASH, rng);
        let mut out = mime::assemble(&outer, &[], &frame.head);
        out.reserve(entity.len() + frame.middle.len() + frame.tail.len() + 2048);
        out.extend_from_slice(&entity);
        out.extend_from_slice(&frame.middle);
        (out, frame.tail)
    };
    let (signature, (mut out, tail)) = if entity.len() >= PARALLEL_SIGN_FROM {
        std::thread::scope(|scope| {
            let signing = scope.spawn(|| crate::sign_detached(&entity, signer, true));
            let built = build(rng);
            let signature = signing.join().unwrap_or_else(|_| {
                Err(Error::Operation {
                    what: "signing",
                    detail: "signing thread failed".into(),
                })
            });
            (signature, built)
        })
    } else {
        (crate::sign_detached(&entity, signer, true), build(rng))
    };
    let signature = mime::canonicalize_crlf(&signature?).into_owned();
    out.extend_from_slice(&signature);
    if !signature.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(&tail);
    Ok(out)
}

/// From this entity size on, signing hashes on a second thread while the message is built.
const PARALLEL_SIGN_FROM: usize = 1 << 20;

/// Verify a PGP/MIME `multipart/signed` message, or an inline cleartext-signed text body.
/// `Ok` carries the report even when a signature is invalid; `Err` means the message is not
/// a signed OpenPGP message or cannot be read.
///
/// Besides the signature itself, each signature by a known certificate gets the check
/// `signer-address`: the message's one From mailbox (parsed from the raw header value, so an
/// RFC 2047 encoded word can never pose as an address) must be the address of a valid User ID
/// of the signer's certificate. When it is not (or there is no From, or several), the
/// signature is not valid: a good signature by Bob on mail "From: Alice" is a spoof.
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
        let mut verification = crate::verify_detached(&content, &ms.signature, signers, limits)?;
        check_signer_address(&mut verification, &ms.outer);
        let (message, header_protection) = mime::unprotect_headers(&ms.outer, &content, limits)?;
        return Ok(VerifiedMessage {
            verification,
            message,
            header_protection,
        });
    }
    if let Some(inline) = mime::find_inline_pgp(raw, limits)?
        && inline.kind == InlinePgpKind::SignedMessage
    {
        let (text, mut verification) = crate::verify_inline(&inline.block, signers, limits)?;
        check_signer_address(&mut verification, &inline.outer);
        let message = text_message(&inline.outer, inline.charset.as_deref(), &text);
        return Ok(VerifiedMessage {
            verification,
            message,
            header_protection: None,
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
        // Header fields inside the encryption win over the outer ones: RFC 9788 header
        // protection, `protected-headers="v1"`, or just a protected Subject.
        let (message, header_protection) = if mime::has_header_protection(&content, limits) {
            let (m, hp) = mime::unprotect_headers(&enc.outer, &content, limits)?;
            (Zeroizing::new(m), hp)
        } else {
            let outer = mime::unprotected_outer(enc.outer, &content, limits)?;
            (Zeroizing::new(mime::assemble(&outer, &[], &content)), None)
        };
        let (verification, header_protection) =
            inner_signature(&message, d.verification, header_protection, signers, limits);
        return Ok(DecryptedMessage {
            message,
            verification,
            aead: d.aead,
            inline: false,
            header_protection,
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
            header_protection: None,
        });
    }
    Err(Error::WrongMessageType {
        expected: "PGP encrypted",
        found: content_type(raw, limits),
    })
}

/// A signed entity inside the encryption (sign, then encrypt as two MIME layers): when the
/// decryption found no signatures, those of the decrypted `message`, and its header
/// protection when the encryption had none. Shared with the streaming path.
pub(crate) fn inner_signature(
    message: &[u8],
    verification: Verification,
    header_protection: Option<mime::HeaderProtection>,
    signers: &[Cert],
    limits: &Limits,
) -> (Verification, Option<mime::HeaderProtection>) {
    if verification.signatures.is_empty()
        && let Ok(inner) = verify_message(message, signers, limits)
    {
        return (
            inner.verification,
            header_protection.or(inner.header_protection),
        );
    }
    (verification, header_protection)
}

/// The one mailbox of the From header(s), from the raw values (`mailboxes` never takes an
/// encoded word for an address); `Err` says why there is not exactly one.
fn sender_address(outer: &[HeaderField<'_>]) -> std::result::Result<String, String> {
    let mut found: Vec<String> = Vec::new();
    for h in outer.iter().filter(|h| h.is_named("From")) {
        for a in mime::mailboxes(h.raw_value()) {
            if !found.iter().any(|f| crate::keys::same_address(f, &a)) {
                found.push(a);
            }
        }
    }
    match found.len() {
        1 => Ok(found.swap_remove(0)),
        0 => Err("the message has no From address".into()),
        n => Err(format!("the message has {n} From addresses")),
    }
}

/// Adds the `signer-address` check to every signature by a known certificate (fails closed).
pub(crate) fn check_signer_address(verification: &mut Verification, outer: &[HeaderField<'_>]) {
    let from = sender_address(outer);
    for s in &mut verification.signatures {
        let Some(cert) = &s.signer else {
            continue;
        };
        let addresses = cert.valid_addresses();
        let (passed, detail) = match &from {
            Ok(from) if addresses.iter().any(|a| crate::keys::same_address(a, from)) => {
                (true, format!("certificate names {from}"))
            }
            Ok(from) => (
                false,
                format!("{from} is not among the certificate's addresses {addresses:?}"),
            ),
            Err(why) => (false, why.clone()),
        };
        if !passed {
            s.valid = false;
        }
        s.checks.push(("signer-address".into(), passed, detail));
    }
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
pub(crate) fn with_outer(
    outer: &[HeaderField<'_>],
    subject: Option<&str>,
    entity: &[u8],
) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyKind;

    fn signer_address_check(v: &Verification) -> (bool, String) {
        let (_, passed, detail) = v.signatures[0]
            .checks
            .iter()
            .find(|c| c.0 == "signer-address")
            .cloned()
            .unwrap();
        (passed, detail)
    }

    #[test]
    fn large_messages_sign_and_encrypt_on_two_threads_and_read_back() {
        // Above the 1 MiB thresholds: signing hashes on a second thread, armored encryption
        // pipelines CFB with the armor.
        let limits = Limits::default();
        let alice = SecretKey::generate("Alice <alice@example.org>", KeyKind::Rsa3072).unwrap();
        let mut raw = b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: big\r\n\
            Content-Type: text/plain\r\n\r\n"
            .to_vec();
        while raw.len() < (3 << 20) + 7 {
            raw.extend_from_slice(b"line of text that is long enough to matter 0123456789\r\n");
        }
        let signed = sign_message(&raw, &alice, &mut rand_core::OsRng, &limits).unwrap();
        let v = verify_message(&signed, std::slice::from_ref(alice.cert()), &limits).unwrap();
        assert!(v.verification.is_valid());
        let enc = encrypt_message(
            &raw,
            std::slice::from_ref(alice.cert()),
            None,
            &EncryptMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let d = decrypt_message(&enc, std::slice::from_ref(&alice), &[], &limits).unwrap();
        let body_at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(d.message.ends_with(&raw[body_at..]));
    }

    /// `inner_headers` travel only inside the encryption, first in the entity's header, from
    /// the one-shot and the streaming encryptor alike, and come back with the message; a
    /// name that cannot be a header field name is refused.
    #[test]
    fn inner_headers_are_written_inside_the_encryption_only() {
        let limits = Limits::default();
        let bob = SecretKey::generate("Bob <bob@example.org>", KeyKind::Cv25519).unwrap();
        let raw = b"From: alice@example.org\r\nTo: bob@example.org, carol@example.org\r\n\
            Subject: gossip\r\nContent-Type: text/plain\r\n\r\nhello\r\n";
        let mut opts = EncryptMessageOptions {
            inner_headers: vec![
                (
                    "Autocrypt-Gossip".into(),
                    "addr=carol@example.org; keydata=\r\n AAAA\r\n BBBB".into(),
                ),
                ("X-Inner".into(), "only inside".into()),
            ],
            ..EncryptMessageOptions::default()
        };
        let to = std::slice::from_ref(bob.cert());
        let one_shot =
            encrypt_message(raw, to, None, &opts, &mut rand_core::OsRng, &limits).unwrap();
        let mut w =
            crate::stream::MessageEncryptor::new(Vec::new(), to, None, &opts, &limits).unwrap();
        std::io::Write::write_all(&mut w, raw).unwrap();
        let streamed = w.finish().unwrap();
        for enc in [one_shot, streamed] {
            let text = String::from_utf8_lossy(&enc);
            assert!(!text.contains("Autocrypt-Gossip") && !text.contains("X-Inner"));
            let d = decrypt_message(&enc, std::slice::from_ref(&bob), &[], &limits).unwrap();
            let e = Entity::parse(&d.message, &limits).unwrap();
            let gossip = e.header("Autocrypt-Gossip").unwrap();
            let compact: String = gossip.split_whitespace().collect();
            assert_eq!(compact, "addr=carol@example.org;keydata=AAAABBBB");
            assert_eq!(e.header("X-Inner").unwrap().trim(), "only inside");
            assert_eq!(e.header("Subject").unwrap().trim(), "gossip");
            assert!(d.message.ends_with(b"\r\n\r\nhello\r\n"));
        }
        opts.inner_headers = vec![("Bad Name".into(), "x".into())];
        assert!(encrypt_message(raw, to, None, &opts, &mut rand_core::OsRng, &limits).is_err());
    }

    #[test]
    fn verify_compares_the_signer_with_from() {
        let limits = Limits::default();
        let alice = SecretKey::generate("Alice <alice@example.org>", KeyKind::Cv25519).unwrap();
        let certs = [alice.cert().clone()];
        let verify = |from: &str| {
            let msg = format!("{from}Subject: s\r\n\r\nhello\r\n");
            let signed =
                sign_message(msg.as_bytes(), &alice, &mut rand_core::OsRng, &limits).unwrap();
            verify_message(&signed, &certs, &limits)
                .unwrap()
                .verification
        };
        // Matching (the domain without regard to case, RFC 5321 §2.4).
        for from in [
            "From: Alice <alice@example.org>\r\n",
            "From: alice@EXAMPLE.org (Alice)\r\n",
        ] {
            let v = verify(from);
            assert!(v.is_valid(), "{from}: {v:?}");
            assert!(signer_address_check(&v).0, "{from}");
        }
        // Not matching: another address, an encoded word that decodes to Alice's address in
        // front of Mallory's, a display name that looks like Alice's address, two mailboxes,
        // none at all.
        for from in [
            "From: Bob <bob@example.org>\r\n",
            "From: =?utf-8?q?alice=40example=2Eorg?= <mallory@evil.example>\r\n",
            "From: \"alice@example.org\" <mallory@evil.example>\r\n",
            "From: alice@example.org, bob@example.org\r\n",
            "From: ALICE@example.org\r\n",
            "",
        ] {
            let v = verify(from);
            let (passed, detail) = signer_address_check(&v);
            assert!(!passed, "{from}: {detail}");
            assert!(!v.is_valid(), "{from}");
            assert!(!v.signatures[0].valid);
            // The signature itself still verified: the report says which check failed.
            assert!(v.signatures[0].checks[0].1, "{:?}", v.signatures[0].checks);
        }
        // An unknown signer gets no address check (there is no certificate to compare).
        let msg = b"From: alice@example.org\r\n\r\nhi\r\n";
        let signed = sign_message(msg, &alice, &mut rand_core::OsRng, &limits).unwrap();
        let v = verify_message(&signed, &[], &limits).unwrap().verification;
        assert!(
            v.signatures[0]
                .checks
                .iter()
                .all(|c| c.0 != "signer-address")
        );
    }

    #[test]
    fn inline_cleartext_signature_checks_from_too() {
        let limits = Limits::default();
        let alice = SecretKey::generate("Alice <alice@example.org>", KeyKind::Cv25519).unwrap();
        let certs = [alice.cert().clone()];
        let block = {
            use openpgp::serialize::stream::{Message, Signer};
            use sequoia_openpgp as openpgp;
            use std::io::Write;
            let mut out = Vec::new();
            let m = Message::new(&mut out);
            let mut s = Signer::new(m, alice.signing_keypair().unwrap())
                .unwrap()
                .cleartext()
                .build()
                .unwrap();
            s.write_all(b"Hello,\r\nsigned inline.\r\n").unwrap();
            s.finalize().unwrap();
            out
        };
        for (from, ok) in [("alice@example.org", true), ("mallory@evil.example", false)] {
            let mut msg =
                format!("From: {from}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
                    .into_bytes();
            msg.extend_from_slice(&block);
            let v = verify_message(&msg, &certs, &limits).unwrap().verification;
            assert_eq!(v.is_valid(), ok, "{from}: {v:?}");
            assert_eq!(signer_address_check(&v).0, ok);
        }
    }
}
