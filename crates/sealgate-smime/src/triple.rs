//! Triple wrapping (RFC 2634 §1.1): sign, encrypt, sign again.
//!
//! The inner signature (by the author) is made over the message's MIME entity, the signed
//! message is encrypted, and the outer signature is made over the resulting
//! `application/pkcs7-mime; smime-type=enveloped-data` entity (RFC 2634 §1.1.2 steps 1-8:
//! each layer is MIME-wrapped, both signatures use eContentType id-data). A gateway or list
//! agent can check the outer signature without the decryption key ([`verify_outer`]); the
//! recipient checks both ([`unwrap_triple`]).
//!
//! Not done: security labels (ESSSecurityLabel) and signed receipts in the inner signature
//! (RFC 2634 §§2-3); an inner signature that carries them still verifies (the attributes are
//! signed, just not interpreted).

use std::time::SystemTime;

use rand_core::CryptoRngCore;
use sealgate_mime::Limits;

use crate::cert::TrustStore;
use crate::enveloped::Recipient;
use crate::error::{Error, Result};
use crate::keyfile::Identity;
use crate::keys::{Certificate, PrivateKey};
use crate::message::{
    self, DecryptedMessage, EncryptMessageOptions, SignMessageOptions, SmimeKind, VerifiedMessage,
};

/// How [`triple_wrap`] signs and encrypts each layer.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TripleWrapOptions {
    /// The inner signature (over the original entity). `protect_headers` here is ignored:
    /// header protection is `encrypt.protect_headers` (it then goes inside the inner signature).
    pub inner: SignMessageOptions,
    /// The encryption layer (cipher, header protection, outer Subject).
    pub encrypt: EncryptMessageOptions,
    /// The outer signature (over the enveloped entity). `protect_headers` is ignored: the
    /// outer layer has only the header fields that travel in clear anyway.
    pub outer: SignMessageOptions,
}

/// Triple-wrap a whole message (RFC 2634): signed by `signer`, encrypted to `recipients`, the
/// encrypted entity signed by `outer_signer` (the author again, or e.g. the gateway).
///
/// The outer layer is `multipart/signed` by default (so that a reader without the key sees an
/// `application/pkcs7-mime` attachment and a checkable signature), opaque signed-data with
/// `opts.outer.opaque`.
pub fn triple_wrap(
    raw: &[u8],
    signer: &Identity,
    recipients: &[Recipient],
    outer_signer: &Identity,
    opts: &TripleWrapOptions,
    rng: &mut impl CryptoRngCore,
    limits: &Limits,
) -> Result<Vec<u8>> {
    let mut inner = opts.inner.clone();
    inner.protect_headers = false;
    let enveloped = message::encrypt_message(
        raw,
        recipients,
        Some((signer, &inner)),
        &opts.encrypt,
        rng,
        limits,
    )?;
    let mut outer = opts.outer.clone();
    outer.protect_headers = false;
    message::sign_message(&enveloped, outer_signer, &outer, rng, limits)
}

/// The result of [`unwrap_triple`]. `Debug` never shows the plaintext.
#[derive(Debug)]
#[non_exhaustive]
pub struct TripleUnwrapped {
    /// The outer signature (over the encrypted entity). Its `message` is the encrypted
    /// message as it was signed (outer header fields and the `application/pkcs7-mime` entity).
    pub outer: VerifiedMessage,
    /// The decrypted message; `decrypted.signature` is the inner signature (`None` when the
    /// encrypted content was not signed: an encrypt-then-sign message, not a complete triple
    /// wrap, which [`TripleUnwrapped::is_valid`] reports as invalid).
    pub decrypted: DecryptedMessage,
}

impl TripleUnwrapped {
    /// The inner signature's report, if the decrypted content was signed.
    pub fn inner(&self) -> Option<&VerifiedMessage> {
        self.decrypted.signature.as_ref()
    }

    /// True when both signatures are present and valid (each against the trust store, each
    /// signer's address being the From address).
    pub fn is_valid(&self) -> bool {
        self.outer.verification.is_valid()
            && self.inner().is_some_and(|s| s.verification.is_valid())
    }

    /// [`is_valid`](Self::is_valid) for a triple wrap whose outer signature may be a gateway's
    /// or a mail list agent's (RFC 2634 §1.1): the outer signature as [`outer_is_valid`] says
    /// with `outer_signers`, the inner one fully valid (its signer is the From address).
    pub fn is_valid_with_outer_signers(&self, outer_signers: &[Certificate]) -> bool {
        outer_is_valid(&self.outer, outer_signers)
            && self.inner().is_some_and(|s| s.verification.is_valid())
    }
}

/// True when the outer signature of a triple wrap is valid, or fails only the signer-address
/// check with a signer certificate that is one of `outer_signers`: the identities (a gateway,
/// a mail list agent) allowed to sign the outer layer for an author whose address they do not
/// carry (RFC 2634 §1.1). Every other check (signature, chain to the trust store, validity,
/// key usage) must pass as always; the signer-address check is the only one relaxed, and only
/// for those certificates. With no `outer_signers` this is `verification.is_valid()`.
pub fn outer_is_valid(outer: &VerifiedMessage, outer_signers: &[Certificate]) -> bool {
    outer_verification_is_valid(&outer.verification, outer_signers)
}

/// [`outer_is_valid`] of a verification report alone (as a streamed verification,
/// [`crate::stream::verify_message`], gives it).
pub fn outer_verification_is_valid(
    verification: &crate::Verification,
    outer_signers: &[Certificate],
) -> bool {
    use crate::signed::CheckName;
    let signers = &verification.signers;
    !signers.is_empty()
        && signers.iter().all(|s| {
            s.is_valid()
                || (s
                    .certificate
                    .as_ref()
                    .is_some_and(|c| outer_signers.contains(c))
                    && !s.checks.is_empty()
                    && s.checks.iter().all(|c| {
                        c.passed
                            || c.name == CheckName::ValidNow
                            || c.name == CheckName::SignerAddress
                    }))
        })
}

/// Check the outer signature of a triple-wrapped message without decrypting it (what a
/// gateway without the recipient's key can do). Fails with [`Error::WrongMessageType`] when
/// the message is not signed or its signed content is not an encrypted S/MIME entity. As with
/// [`message::verify_message`], an invalid signature is `Ok` with the failed checks in the
/// report.
pub fn verify_outer(
    raw: &[u8],
    trust: &TrustStore,
    at: Option<SystemTime>,
    limits: &Limits,
) -> Result<VerifiedMessage> {
    match message::classify(raw, limits)? {
        SmimeKind::DetachedSigned | SmimeKind::OpaqueSigned => {}
        _ => return Err(not_triple(raw, limits)),
    }
    let outer = message::verify_message(raw, trust, at, limits)?;
    if message::classify(&outer.message, limits)? != SmimeKind::Encrypted {
        return Err(not_triple(&outer.message, limits));
    }
    Ok(outer)
}

/// True when `raw` is signed and its signed content is an encrypted S/MIME entity (the outer
/// layers of a triple wrap). Nothing is checked: this only says which way to read the message
/// ([`unwrap_triple`] or [`message::decrypt_message`]).
pub fn is_triple_wrapped(raw: &[u8], limits: &Limits) -> Result<bool> {
    match message::classify(raw, limits)? {
        SmimeKind::DetachedSigned | SmimeKind::OpaqueSigned => {}
        _ => return Ok(false),
    }
    // with no trust anchors the checks fail, but the signed content still comes out
    let outer = message::verify_message(raw, &TrustStore::new(Vec::new()), None, limits)?;
    Ok(message::classify(&outer.message, limits)? == SmimeKind::Encrypted)
}

/// Unwrap a triple-wrapped message: verify the outer signature (over the ciphertext), decrypt
/// with `key` (`cert` selects the RecipientInfo, as in [`message::decrypt_message`]), verify
/// the inner signature. Both reports are returned whatever they say: see
/// [`TripleUnwrapped::is_valid`]. Decryption failures are the coarse
/// [`Error::DecryptionFailed`] of [`message::decrypt_message`].
pub fn unwrap_triple(
    raw: &[u8],
    key: &PrivateKey,
    cert: Option<&Certificate>,
    trust: &TrustStore,
    at: Option<SystemTime>,
    limits: &Limits,
) -> Result<TripleUnwrapped> {
    let outer = verify_outer(raw, trust, at, limits)?;
    let decrypted = message::decrypt_message(&outer.message, key, cert, Some(trust), limits)?;
    Ok(TripleUnwrapped { outer, decrypted })
}

fn not_triple(raw: &[u8], limits: &Limits) -> Error {
    Error::WrongMessageType {
        expected: "triple-wrapped (signed encrypted)",
        found: sealgate_mime::Entity::parse(raw, limits)
            .map(|e| e.content_type().mime_type)
            .unwrap_or_else(|_| "unparseable".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::{self, CertificateParams};
    use crate::keys::{Curve, KeyKind};
    use crate::signed::CheckName;

    struct Pki {
        ca: Certificate,
        alice: Identity,
        bob: Identity,
        gateway: Identity,
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
            alice: mk(KeyKind::Ec(Curve::P256), "Alice", "alice@example.com"),
            bob: mk(KeyKind::Ec(Curve::P384), "Bob", "bob@example.org"),
            gateway: mk(KeyKind::Ec(Curve::P256), "Gateway", "gateway@example.com"),
            ca,
        }
    }

    const MSG: &[u8] = b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\n\
        Subject: Secret plans\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nMeet at noon.\r\n";

    fn wrap(p: &Pki, outer: &Identity, opts: &TripleWrapOptions) -> Vec<u8> {
        triple_wrap(
            MSG,
            &p.alice,
            &[Recipient::new(p.bob.cert.clone())],
            outer,
            opts,
            &mut rand_core::OsRng,
            &Limits::default(),
        )
        .unwrap()
    }

    #[test]
    fn round_trip_reports_both_signers() {
        let p = pki();
        let limits = Limits::default();
        let trust = TrustStore::new(vec![p.ca.clone()]);
        for (outer_opaque, inner_opaque, gcm) in [
            (false, false, false),
            (true, true, true),
            (false, true, true),
        ] {
            let mut opts = TripleWrapOptions::default();
            opts.outer.opaque = outer_opaque;
            opts.inner.opaque = inner_opaque;
            if gcm {
                opts.encrypt.cipher = crate::ContentCipher::Aes256Gcm;
            }
            let w = wrap(&p, &p.alice, &opts);
            let want = if outer_opaque {
                SmimeKind::OpaqueSigned
            } else {
                SmimeKind::DetachedSigned
            };
            assert_eq!(message::classify(&w, &limits).unwrap(), want);
            assert!(!w.windows(12).any(|x| x == b"Meet at noon"));
            // the outer layer checks out without any key
            let o = verify_outer(&w, &trust, None, &limits).unwrap();
            assert!(o.verification.is_valid(), "{:#?}", o.verification);
            let u =
                unwrap_triple(&w, &p.bob.key, Some(&p.bob.cert), &trust, None, &limits).unwrap();
            assert!(u.is_valid(), "{u:#?}");
            assert_eq!(
                u.outer.verification.signers[0].certificate.as_ref(),
                Some(&p.alice.cert)
            );
            let inner = u.inner().unwrap();
            assert_eq!(
                inner.verification.signers[0].certificate.as_ref(),
                Some(&p.alice.cert)
            );
            assert!(inner.message.windows(12).any(|x| x == b"Meet at noon"));
            assert!(u.decrypted.authenticated);
        }
    }

    #[test]
    fn a_gateway_outer_signer_is_reported_with_its_address_check() {
        let p = pki();
        let limits = Limits::default();
        let trust = TrustStore::new(vec![p.ca.clone()]);
        let w = wrap(&p, &p.gateway, &TripleWrapOptions::default());
        let u = unwrap_triple(&w, &p.bob.key, None, &trust, None, &limits).unwrap();
        let outer = &u.outer.verification.signers[0];
        assert_eq!(outer.certificate.as_ref(), Some(&p.gateway.cert));
        // the gateway's certificate does not name the From address: reported, not hidden
        let failed: Vec<_> = outer
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect();
        assert_eq!(failed, vec![CheckName::SignerAddress]);
        assert!(!u.is_valid());
        assert!(u.inner().unwrap().verification.is_valid());
        // Named as an allowed outer signer, the gateway's signature counts; another
        // certificate in that list does not make it count.
        assert!(u.is_valid_with_outer_signers(std::slice::from_ref(&p.gateway.cert)));
        assert!(outer_is_valid(
            &u.outer,
            std::slice::from_ref(&p.gateway.cert)
        ));
        assert!(!u.is_valid_with_outer_signers(std::slice::from_ref(&p.alice.cert)));
        assert!(!outer_is_valid(&u.outer, &[]));
        // An outer signature by the author stays valid with or without the list.
        let w = wrap(&p, &p.alice, &TripleWrapOptions::default());
        let u = unwrap_triple(&w, &p.bob.key, None, &trust, None, &limits).unwrap();
        assert!(u.is_valid() && u.is_valid_with_outer_signers(&[]));
        assert!(u.is_valid_with_outer_signers(std::slice::from_ref(&p.gateway.cert)));
    }

    #[test]
    fn an_allowed_outer_signer_does_not_excuse_a_broken_outer_signature() {
        let p = pki();
        let limits = Limits::default();
        let w = wrap(&p, &p.gateway, &TripleWrapOptions::default());
        // Without the CA among the anchors the chain check fails too: not excused.
        let no_anchor = TrustStore::new(vec![]);
        let o = verify_outer(&w, &no_anchor, None, &limits).unwrap();
        assert!(!outer_is_valid(&o, std::slice::from_ref(&p.gateway.cert)));
    }

    #[test]
    fn a_changed_ciphertext_breaks_the_outer_signature_before_decryption() {
        let p = pki();
        let limits = Limits::default();
        let trust = TrustStore::new(vec![p.ca.clone()]);
        let w = wrap(&p, &p.alice, &TripleWrapOptions::default());
        // flip one base64 character deep inside the enveloped part (the first body part)
        let start = w
            .windows(9)
            .position(|x| x == b"smime.p7m")
            .expect("enveloped part");
        let mut bad = w.clone();
        let i = start + 400;
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        let o = verify_outer(&bad, &trust, None, &limits).unwrap();
        assert!(!o.verification.is_valid());
    }

    #[test]
    fn not_a_triple_wrap_is_refused() {
        let p = pki();
        let limits = Limits::default();
        let trust = TrustStore::new(vec![p.ca.clone()]);
        let signed = message::sign_message(
            MSG,
            &p.alice,
            &SignMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let enc = message::encrypt_message(
            MSG,
            &[Recipient::new(p.bob.cert.clone())],
            None,
            &EncryptMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let w = wrap(&p, &p.alice, &TripleWrapOptions::default());
        assert!(is_triple_wrapped(&w, &limits).unwrap());
        for m in [&signed[..], &enc[..], MSG] {
            assert!(!is_triple_wrapped(m, &limits).unwrap());
            assert!(matches!(
                unwrap_triple(m, &p.bob.key, None, &trust, None, &limits),
                Err(Error::WrongMessageType { .. })
            ));
        }
    }
}
