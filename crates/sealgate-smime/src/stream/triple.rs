//! Streaming unwrap of a triple-wrapped message (RFC 2634 §1.1: signed, encrypted, signed) of
//! any size: the outer signature verified as the message streams into a spill file, the
//! encrypted message in it decrypted as a stream into a second one, the inner signature
//! checked from that, as [`crate::unwrap_triple`] does in memory.

use std::io::{self, BufRead};
use std::path::Path;
use std::time::SystemTime;

use sealgate_mime::Limits;

use super::{CHUNK, SpilledMessage};
use crate::cert::TrustStore;
use crate::error::{Error, Result};
use crate::keys::{Certificate, PrivateKey};
use crate::signed::Verification;

/// The result of [`unwrap_triple`]: both reports and the decrypted message in its spill file
/// (the outer layer's spill file is gone). `Debug` never shows the plaintext.
#[derive(Debug)]
#[non_exhaustive]
pub struct SpilledTriple {
    /// The outer signature (over the encrypted entity).
    pub outer: Verification,
    /// The decrypted message (the signed message as it was, as [`crate::unwrap_triple`]
    /// gives it in `decrypted.message`).
    pub decrypted: SpilledMessage,
    /// The inner signature; `None` when the encrypted content was not signed (an
    /// encrypt-then-sign message, not a complete triple wrap: not valid).
    pub inner: Option<Verification>,
}

impl SpilledTriple {
    /// True when both signatures are present and valid, as
    /// [`crate::TripleUnwrapped::is_valid`] says.
    pub fn is_valid(&self) -> bool {
        self.outer.is_valid() && self.inner.as_ref().is_some_and(Verification::is_valid)
    }

    /// As [`crate::TripleUnwrapped::is_valid_with_outer_signers`]: the outer signature may be
    /// one of `outer_signers`' for an author whose address they do not carry.
    pub fn is_valid_with_outer_signers(&self, outer_signers: &[Certificate]) -> bool {
        crate::triple::outer_verification_is_valid(&self.outer, outer_signers)
            && self.inner.as_ref().is_some_and(Verification::is_valid)
    }
}

/// Unwrap a triple-wrapped message from `input` with our key (`cert` selects the
/// RecipientInfo), both signatures checked against `trust` (`at` for the outer one, as in
/// [`crate::unwrap_triple`]), in bounded memory; spill files go to `spill_dir`.
///
/// Errors: [`Error::WrongMessageType`] when the message is not signed or its signed content is
/// not encrypted; [`Error::NotStreamable`] as in [`super::verify_message`] (the one-shot
/// [`crate::unwrap_triple`] reads such a message); the errors of [`super::decrypt_message`].
pub fn unwrap_triple(
    input: impl BufRead,
    key: &PrivateKey,
    cert: Option<&Certificate>,
    trust: &TrustStore,
    at: Option<SystemTime>,
    spill_dir: &Path,
    limits: &Limits,
) -> Result<SpilledTriple> {
    let mut outer = super::verify_message(input, trust, at, spill_dir, limits)?;
    let decrypted = {
        let r = io::BufReader::with_capacity(CHUNK, outer.reader()?);
        super::decrypt_message(r, key, cert, spill_dir, limits)
    };
    let mut decrypted = match decrypted {
        Err(Error::WrongMessageType { found, .. }) => {
            return Err(Error::WrongMessageType {
                expected: "triple-wrapped (signed encrypted)",
                found,
            });
        }
        r => r?,
    };
    let outer = outer.verification().clone();
    let inner = decrypted.verify_signature(trust, limits)?;
    Ok(SpilledTriple {
        outer,
        decrypted,
        inner,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::{self, CertificateParams};
    use crate::keys::{Curve, KeyKind};
    use crate::{Identity, Recipient, TripleWrapOptions};
    use std::io::Read;

    fn identity(ca: &Identity, name: &str, email: &str) -> Identity {
        let key = PrivateKey::generate(KeyKind::Ec(Curve::P256)).unwrap();
        let cert = issue::issue(
            key.public_key(),
            &CertificateParams::user(name, email),
            &ca.cert,
            &ca.key,
            &mut rand_core::OsRng,
        )
        .unwrap();
        Identity::new(key, cert, vec![]).unwrap()
    }

    #[test]
    fn streamed_unwrap_equals_the_one_shot() {
        let limits = Limits::default();
        let ca_key = PrivateKey::generate(KeyKind::Ec(Curve::P256)).unwrap();
        let ca_cert =
            issue::self_signed(&ca_key, &CertificateParams::ca("CA"), &mut rand_core::OsRng)
                .unwrap();
        let ca = Identity::new(ca_key, ca_cert.clone(), vec![]).unwrap();
        let alice = identity(&ca, "Alice", "alice@example.com");
        let bob = identity(&ca, "Bob", "bob@example.org");
        let gateway = identity(&ca, "Gateway", "gw@example.com");
        let trust = TrustStore::new(vec![ca_cert]);
        let mut raw =
            b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: t\r\n\r\n".to_vec();
        raw.extend_from_slice(&crate::stream::tests::body(300_000, 3));
        for outer in [&alice, &gateway] {
            let wrapped = crate::triple_wrap(
                &raw,
                &alice,
                &[Recipient::new(bob.cert.clone())],
                outer,
                &TripleWrapOptions::default(),
                &mut rand_core::OsRng,
                &limits,
            )
            .unwrap();
            let one =
                crate::unwrap_triple(&wrapped, &bob.key, Some(&bob.cert), &trust, None, &limits)
                    .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let mut s = unwrap_triple(
                io::BufReader::with_capacity(4096, &wrapped[..]),
                &bob.key,
                Some(&bob.cert),
                &trust,
                None,
                dir.path(),
                &limits,
            )
            .unwrap();
            let mut got = Vec::new();
            s.decrypted.reader().unwrap().read_to_end(&mut got).unwrap();
            assert_eq!(got, *one.decrypted.message);
            assert_eq!(s.is_valid(), one.is_valid());
            assert_eq!(s.is_valid(), std::ptr::eq(outer, &alice));
            let allowed = [gateway.cert.clone()];
            assert_eq!(
                s.is_valid_with_outer_signers(&allowed),
                one.is_valid_with_outer_signers(&allowed)
            );
            assert!(s.is_valid_with_outer_signers(&allowed));
            // only the decrypted message's spill file is left, until it is dropped
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
            drop(s);
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
        // a signed message that is not encrypted inside
        let signed = crate::sign_message(
            &raw,
            &alice,
            &Default::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let r = unwrap_triple(
            &signed[..],
            &bob.key,
            None,
            &trust,
            None,
            dir.path(),
            &limits,
        );
        assert!(matches!(r, Err(Error::WrongMessageType { .. })), "{r:?}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
