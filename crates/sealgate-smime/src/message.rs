//! Whole RFC 5322 messages: sign, verify, encrypt and decrypt as S/MIME 4.0 (RFC 8551 §3).
//!
//! These functions join the MIME toolkit (`sealgate-mime`) and the CMS layer of this crate.
//! The outer header fields (From, To, Cc, Subject, Date, Message-ID, ...) stay outside the
//! protection; the MIME entity (the Content-* fields and the body) is what gets signed or
//! encrypted, canonicalised to CRLF first (RFC 8551 §3.1.1).

use std::borrow::Cow;
use std::time::SystemTime;

use rand_core::CryptoRngCore;
use sealgate_mime::{self as mime, Entity, Limits};
use zeroize::Zeroizing;

use crate::cert::TrustStore;
use crate::enveloped::{self, ContentCipher, Recipient};
use crate::error::{Error, Result};
use crate::keyfile::Identity;
use crate::keys::{Certificate, PrivateKey};
use crate::signed::{self, SignOptions, Verification, VerifyOptions};

const SIGNATURE_TYPE: &str = "application/pkcs7-signature";

/// How [`sign_message`] signs.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SignMessageOptions {
    /// CMS options (digest, chain, capabilities, ...).
    pub cms: SignOptions,
    /// `application/pkcs7-mime; smime-type=signed-data` (opaque) instead of the default
    /// `multipart/signed` (detached), which clients without S/MIME can still read.
    pub opaque: bool,
}

/// How [`encrypt_message`] encrypts.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct EncryptMessageOptions {
    /// Content cipher (AES-256-CBC by default; AES-256-GCM gives AuthEnvelopedData).
    pub cipher: ContentCipher,
    /// Replace the outer Subject (which travels in clear) with this text, e.g.
    /// "Encrypted message". `None` keeps the original Subject.
    pub outer_subject: Option<String>,
}

/// The result of [`verify_message`]. `Debug` shows the report and the message size, never
/// the message (it may have come out of an encryption).
#[non_exhaustive]
pub struct VerifiedMessage {
    /// Signer reports and checks.
    pub verification: Verification,
    /// The message without its signature: outer header fields and the signed entity.
    pub message: Vec<u8>,
    /// True for `application/pkcs7-mime; smime-type=signed-data`, false for `multipart/signed`.
    pub opaque: bool,
}

/// The result of [`decrypt_message`]. `Debug` never shows the plaintext.
#[non_exhaustive]
pub struct DecryptedMessage {
    /// Outer header fields followed by the decrypted entity. If the entity was signed, this is
    /// the signed message as it was (verify it with [`verify_message`], or see `signature`).
    /// Wiped from memory when dropped.
    pub message: Zeroizing<Vec<u8>>,
    /// The content-encryption algorithm that protected the content.
    pub cipher: enveloped::ContentAlgorithm,
    /// True when the content was authenticated (AES-GCM AuthEnvelopedData). CBC content is
    /// not: only a signature inside proves it was not altered.
    pub authenticated: bool,
    /// The inner signature, verified against the trust store given to [`decrypt_message`].
    pub signature: Option<VerifiedMessage>,
}

impl std::fmt::Debug for VerifiedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedMessage")
            .field("verification", &self.verification)
            .field("message", &format_args!("[{} bytes]", self.message.len()))
            .field("opaque", &self.opaque)
            .finish()
    }
}

impl std::fmt::Debug for DecryptedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptedMessage")
            .field("message", &format_args!("[{} bytes]", self.message.len()))
            .field("cipher", &self.cipher)
            .field("authenticated", &self.authenticated)
            .field("signature", &self.signature)
            .finish()
    }
}

/// What kind of S/MIME a message is (from its top-level Content-Type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmimeKind {
    /// `multipart/signed` with `protocol="application/pkcs7-signature"`.
    DetachedSigned,
    /// `application/pkcs7-mime; smime-type=signed-data`.
    OpaqueSigned,
    /// `application/pkcs7-mime; smime-type=enveloped-data` or `authEnveloped-data` (or a
    /// pkcs7-mime message without smime-type).
    Encrypted,
    /// Anything else.
    None,
}

/// Classify a message without decoding its body.
pub fn classify(raw: &[u8], limits: &Limits) -> Result<SmimeKind> {
    let entity = Entity::parse(raw, limits)?;
    let ct = entity.content_type();
    Ok(match ct.mime_type.as_str() {
        "multipart/signed"
            if ct.param("protocol").is_some_and(|p| {
                p.eq_ignore_ascii_case(SIGNATURE_TYPE)
                    || p.eq_ignore_ascii_case("application/x-pkcs7-signature")
            }) =>
        {
            SmimeKind::DetachedSigned
        }
        "application/pkcs7-mime" | "application/x-pkcs7-mime" => {
            match ct
                .param("smime-type")
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("signed-data") => SmimeKind::OpaqueSigned,
                _ => SmimeKind::Encrypted,
            }
        }
        _ => SmimeKind::None,
    })
}

/// Sign a whole message. Detached signing first makes the entity 7-bit safe (8-bit parts are
/// re-encoded as quoted-printable or base64, RFC 8551 §3.1.2) so that it survives transport.
pub fn sign_message(
    raw: &[u8],
    signer: &Identity,
    opts: &SignMessageOptions,
    rng: &mut impl CryptoRngCore,
    limits: &Limits,
) -> Result<Vec<u8>> {
    check_size(raw, limits)?;
    let (outer, entity) = mime::split_for_protection(raw, limits)?;
    let mut cms_opts = opts.cms.clone();
    if let Some(curve) = signer.key.curve() {
        // ECDSA signs with the curve's own digest; micalg must name what was used.
        cms_opts.digest = curve.digest();
    }
    let part = if opts.opaque {
        let der = signed::sign(
            &entity,
            &signer.key,
            &signer.cert,
            &signer.chain,
            &cms_opts,
            false,
        )?;
        mime::build_base64_entity(
            "application/pkcs7-mime; smime-type=signed-data; name=\"smime.p7m\"",
            Some("smime.p7m"),
            &der,
        )
    } else {
        let entity = mime::make_seven_bit(&entity, limits)?;
        let der = signed::sign(
            &entity,
            &signer.key,
            &signer.cert,
            &signer.chain,
            &cms_opts,
            true,
        )?;
        mime::build_multipart_signed(
            &entity,
            SIGNATURE_TYPE,
            cms_opts.digest.micalg(),
            &der,
            "application/pkcs7-signature; name=\"smime.p7s\"",
            "smime.p7s",
            rng,
        )
    };
    Ok(mime::assemble(&outer, &[], &part))
}

/// Verify a signed message (detached `multipart/signed` or opaque signed-data). The signer's
/// address is checked against the From header. Returns `Ok` with the per-check report even when
/// the signature is invalid; `Err` means the message could not be read as a signed message.
pub fn verify_message(
    raw: &[u8],
    trust: &TrustStore,
    at: Option<SystemTime>,
    limits: &Limits,
) -> Result<VerifiedMessage> {
    check_size(raw, limits)?;
    let from = Some(sender_address(&Entity::parse(raw, limits)?));
    let vopts = VerifyOptions {
        at,
        from,
        allow_sha1: false,
    };
    match classify(raw, limits)? {
        SmimeKind::DetachedSigned => {
            let ms = mime::parse_multipart_signed(raw, limits)?
                .ok_or_else(|| not_signed(raw, limits))?;
            let content = mime::canonicalize_crlf(ms.signed);
            let verification =
                signed::verify(&ms.signature, Some(&content), trust, &vopts, limits)?;
            Ok(VerifiedMessage {
                verification,
                message: mime::assemble(&ms.outer, &[], &content),
                opaque: false,
            })
        }
        SmimeKind::OpaqueSigned | SmimeKind::Encrypted => {
            let p = mime::parse_pkcs7_mime(raw, limits)?.ok_or_else(|| not_signed(raw, limits))?;
            let verification = signed::verify(&p.der, None, trust, &vopts, limits)?;
            let content = verification.content.clone().unwrap_or_default();
            Ok(VerifiedMessage {
                verification,
                message: mime::assemble(&p.outer, &[], &content),
                opaque: true,
            })
        }
        SmimeKind::None => Err(not_signed(raw, limits)),
    }
}

/// The one mailbox of the From header(s), parsed from the raw value (encoded words are display
/// names, never addresses). A message without exactly one From mailbox gets a placeholder that
/// no certificate names, so the signer-address check fails closed.
fn sender_address(message: &Entity<'_>) -> String {
    let mut found: Vec<String> = Vec::new();
    for h in message.headers().iter().filter(|h| h.is_named("From")) {
        for a in mime::mailboxes(h.raw_value()) {
            if !found.iter().any(|f| crate::keys::addresses_equal(f, &a)) {
                found.push(a);
            }
        }
    }
    match found.len() {
        1 => found.swap_remove(0),
        0 => "<no From address>".into(),
        _ => format!("<{} From addresses>", found.len()),
    }
}

fn not_signed(raw: &[u8], limits: &Limits) -> Error {
    Error::WrongMessageType {
        expected: "signed",
        found: found_type(raw, limits),
    }
}

fn found_type(raw: &[u8], limits: &Limits) -> String {
    Entity::parse(raw, limits)
        .map(|e| e.content_type().mime_type)
        .unwrap_or_else(|_| "unparseable".into())
}

/// Encrypt a whole message to `recipients`, optionally signing it first (sign-then-encrypt,
/// RFC 8551 §3.7: the signed message is the plaintext of the envelope).
pub fn encrypt_message(
    raw: &[u8],
    recipients: &[Recipient],
    signer: Option<(&Identity, &SignMessageOptions)>,
    opts: &EncryptMessageOptions,
    rng: &mut impl CryptoRngCore,
    limits: &Limits,
) -> Result<Vec<u8>> {
    check_size(raw, limits)?;
    let raw: Cow<'_, [u8]> = match signer {
        Some((id, sopts)) => Cow::Owned(sign_message(raw, id, sopts, rng, limits)?),
        None => Cow::Borrowed(raw),
    };
    let (outer, mut entity) = mime::split_for_protection(&raw, limits)?;
    if opts.outer_subject.is_some() {
        // The real Subject travels inside the encryption so that the recipient still sees it
        // (the legacy form of RFC 9788 header protection: decrypt_message restores it).
        let mut inner = Vec::with_capacity(entity.len() + 256);
        for h in outer
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("Subject"))
        {
            inner.extend_from_slice(&mime::canonicalize_crlf(h.raw));
        }
        inner.extend_from_slice(&entity);
        entity = inner;
    }
    let der = enveloped::encrypt(&entity, recipients, opts.cipher, rng)?;
    let smime_type = match opts.cipher {
        ContentCipher::Aes128Gcm | ContentCipher::Aes256Gcm => "authEnveloped-data",
        _ => "enveloped-data",
    };
    let part = mime::build_base64_entity(
        &format!("application/pkcs7-mime; smime-type={smime_type}; name=\"smime.p7m\""),
        Some("smime.p7m"),
        &der,
    );
    match &opts.outer_subject {
        Some(subject) => {
            let kept: Vec<_> = outer
                .into_iter()
                .filter(|h| !h.name.eq_ignore_ascii_case("Subject"))
                .collect();
            Ok(mime::assemble(
                &kept,
                &[("Subject", subject.as_str())],
                &part,
            ))
        }
        None => Ok(mime::assemble(&outer, &[], &part)),
    }
}

/// Decrypt an encrypted message with our key (and certificate, which selects the
/// RecipientInfo; without it every RecipientInfo that fits the key is tried). When the
/// decrypted entity is signed and `trust` is given, the inner signature is verified too.
pub fn decrypt_message(
    raw: &[u8],
    key: &PrivateKey,
    cert: Option<&Certificate>,
    trust: Option<&TrustStore>,
    limits: &Limits,
) -> Result<DecryptedMessage> {
    check_size(raw, limits)?;
    let kind = classify(raw, limits)?;
    if kind != SmimeKind::Encrypted {
        return Err(Error::WrongMessageType {
            expected: "encrypted",
            found: found_type(raw, limits),
        });
    }
    let p = mime::parse_pkcs7_mime(raw, limits)?.ok_or_else(|| Error::WrongMessageType {
        expected: "encrypted",
        found: found_type(raw, limits),
    })?;
    let decrypted = enveloped::decrypt(&p.der, key, cert, limits)?;
    let content = mime::canonicalize_crlf(&decrypted.content);
    // Header fields inside the encryption (a protected Subject) win over the outer ones.
    let inner = Entity::parse(&content, limits)?;
    let outer: Vec<_> = p
        .outer
        .into_iter()
        .filter(|h| inner.header_field(h.name).is_none())
        .collect();
    let message = Zeroizing::new(mime::assemble(&outer, &[], &content));
    drop(content);
    let signature = match trust {
        Some(trust)
            if matches!(
                classify(&message, limits)?,
                SmimeKind::DetachedSigned | SmimeKind::OpaqueSigned
            ) =>
        {
            Some(verify_message(&message, trust, None, limits)?)
        }
        _ => None,
    };
    Ok(DecryptedMessage {
        message,
        cipher: decrypted.cipher,
        authenticated: decrypted.authenticated,
        signature,
    })
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
    use crate::issue::{self, CertificateParams};
    use crate::keys::{Curve, KeyKind};

    struct Pki {
        ca: Certificate,
        alice: Identity,
        bob: Identity,
    }

    fn pki() -> Pki {
        let mut rng = rand_core::OsRng;
        let ca_key = PrivateKey::generate(KeyKind::Ec(Curve::P256)).unwrap();
        let ca = issue::self_signed(&ca_key, &CertificateParams::ca("CA"), &mut rng).unwrap();
        let mk = |kind, name: &str, email: &str| {
            let key = PrivateKey::generate(kind).unwrap();
            let params = CertificateParams::user(name, email);
            let cert = issue::issue(
                key.public_key(),
                &params,
                &ca,
                &ca_key,
                &mut rand_core::OsRng,
            )
            .unwrap();
            Identity::new(key, cert, vec![]).unwrap()
        };
        Pki {
            alice: mk(KeyKind::Rsa(2048), "Alice", "alice@example.com"),
            bob: mk(KeyKind::Ec(Curve::P384), "Bob", "bob@example.org"),
            ca,
        }
    }

    const MSG: &[u8] = b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\n\
        Subject: Secret plans\r\nContent-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: 8bit\r\n\r\nMeet at noon. \xc3\x9c\r\n";

    #[test]
    fn outer_subject_is_replaced_and_restored() {
        let p = pki();
        let limits = Limits::default();
        let opts = EncryptMessageOptions {
            outer_subject: Some("Encrypted message".into()),
            ..Default::default()
        };
        let enc = encrypt_message(
            MSG,
            &[Recipient::new(p.bob.cert.clone())],
            None,
            &opts,
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let outer = Entity::parse(&enc, &limits).unwrap();
        assert_eq!(
            outer.header("Subject").as_deref(),
            Some("Encrypted message")
        );
        assert!(!enc.windows(6).any(|w| w == b"Secret"));
        let d = decrypt_message(&enc, &p.bob.key, Some(&p.bob.cert), None, &limits).unwrap();
        let m = Entity::parse(&d.message, &limits).unwrap();
        let subjects: Vec<_> = m
            .headers()
            .iter()
            .filter(|h| h.is_named("Subject"))
            .collect();
        assert_eq!(subjects.len(), 1);
        assert_eq!(m.header("Subject").as_deref(), Some("Secret plans"));
        assert_eq!(
            m.decoded_body(&limits).unwrap(),
            b"Meet at noon. \xc3\x9c\r\n"
        );
    }

    #[test]
    fn sign_then_encrypt_round_trip_reports_signer() {
        let p = pki();
        let limits = Limits::default();
        let trust = TrustStore::new(vec![p.ca.clone()]);
        for opaque in [false, true] {
            let sopts = SignMessageOptions {
                opaque,
                ..Default::default()
            };
            let enc = encrypt_message(
                MSG,
                &[
                    Recipient::new(p.bob.cert.clone()),
                    Recipient::new(p.alice.cert.clone()),
                ],
                Some((&p.alice, &sopts)),
                &EncryptMessageOptions::default(),
                &mut rand_core::OsRng,
                &limits,
            )
            .unwrap();
            assert_eq!(classify(&enc, &limits).unwrap(), SmimeKind::Encrypted);
            for me in [&p.bob, &p.alice] {
                let d = decrypt_message(&enc, &me.key, None, Some(&trust), &limits).unwrap();
                let sig = d.signature.unwrap();
                assert!(sig.verification.is_valid(), "{:#?}", sig.verification);
                assert_eq!(sig.opaque, opaque);
                assert_eq!(
                    sig.verification.signers[0].certificate.as_ref(),
                    Some(&p.alice.cert)
                );
                let m = Entity::parse(&sig.message, &limits).unwrap();
                assert_eq!(m.header("Subject").as_deref(), Some("Secret plans"));
                assert_eq!(
                    m.decoded_body(&limits).unwrap(),
                    b"Meet at noon. \xc3\x9c\r\n"
                );
            }
        }
    }

    #[test]
    fn tampered_detached_message_fails_only_the_digest() {
        let p = pki();
        let limits = Limits::default();
        let signed = sign_message(
            MSG,
            &p.alice,
            &SignMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        assert_eq!(
            classify(&signed, &limits).unwrap(),
            SmimeKind::DetachedSigned
        );
        let trust = TrustStore::new(vec![p.ca.clone()]);
        assert!(
            verify_message(&signed, &trust, None, &limits)
                .unwrap()
                .verification
                .is_valid()
        );
        let pos = signed.windows(4).position(|w| w == b"noon").unwrap();
        let mut bad = signed.clone();
        bad[pos] = b'm';
        let v = verify_message(&bad, &trust, None, &limits)
            .unwrap()
            .verification;
        assert!(!v.is_valid());
        let failed: Vec<_> = v.signers[0]
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect();
        assert_eq!(failed, vec![crate::signed::CheckName::ContentDigest]);
    }

    #[test]
    fn sender_address_check_fails_closed() {
        let p = pki();
        let limits = Limits::default();
        let trust = TrustStore::new(vec![p.ca.clone()]);
        // Bob signs; the From claims Alice behind an encoded word that decodes to Bob's address
        for from in [
            "=?utf-8?q?bob=40example=2Eorg=2C?= <alice@example.com>",
            "alice@example.com, bob@example.org",
            "undisclosed-recipients:;",
        ] {
            let msg = format!("From: {from}\r\nSubject: x\r\n\r\nhello\r\n");
            let signed = sign_message(
                msg.as_bytes(),
                &p.bob,
                &SignMessageOptions::default(),
                &mut rand_core::OsRng,
                &limits,
            )
            .unwrap();
            let v = verify_message(&signed, &trust, None, &limits)
                .unwrap()
                .verification;
            let addr = v.signers[0]
                .check(crate::signed::CheckName::SignerAddress)
                .unwrap();
            assert!(!addr.passed, "{from}: {}", addr.detail);
        }
        let no_from = sign_message(
            b"Subject: x\r\n\r\nhello\r\n",
            &p.bob,
            &SignMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        assert!(
            !verify_message(&no_from, &trust, None, &limits)
                .unwrap()
                .verification
                .is_valid()
        );
    }

    #[test]
    fn wrong_kinds_are_typed_errors() {
        let p = pki();
        let limits = Limits::default();
        let trust = TrustStore::new(vec![p.ca.clone()]);
        assert!(matches!(
            verify_message(MSG, &trust, None, &limits),
            Err(Error::WrongMessageType {
                expected: "signed",
                ..
            })
        ));
        assert!(matches!(
            decrypt_message(MSG, &p.bob.key, None, None, &limits),
            Err(Error::WrongMessageType {
                expected: "encrypted",
                ..
            })
        ));
        let enc = encrypt_message(
            MSG,
            &[Recipient::new(p.bob.cert.clone())],
            None,
            &EncryptMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        assert!(matches!(
            decrypt_message(&enc, &p.alice.key, None, None, &limits),
            Err(Error::DecryptionFailed | Error::NotARecipient)
        ));
        let mut small = Limits::default();
        small.max_message_bytes = 10;
        assert!(matches!(
            sign_message(
                MSG,
                &p.alice,
                &SignMessageOptions::default(),
                &mut rand_core::OsRng,
                &small
            ),
            Err(Error::LimitExceeded { .. })
        ));
    }
}
