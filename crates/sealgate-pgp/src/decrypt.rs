//! Decrypting and verifying, on sequoia's `parse::stream` with the standard policy.

use std::cell::Cell;
use std::io::Read;
use std::time::SystemTime;

use openpgp::crypto::SessionKey;
use openpgp::packet::{PKESK, SKESK, Tag};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, DetachedVerifierBuilder, MessageLayer, MessageStructure,
    VerificationError, VerificationHelper, VerifierBuilder,
};
use openpgp::parse::{PacketParser, PacketParserResult, Parse};
use openpgp::types::SymmetricAlgorithm;
use openpgp::{KeyHandle, Packet};
use sealgate_mime::Limits;
use sequoia_openpgp as openpgp;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::keys::{Cert, POLICY, SecretKey, check_input_size, malformed};

/// What we found out about one signature.
#[derive(Debug, Clone)]
pub struct SignatureReport {
    /// Fingerprint (or, when the key is unknown, key ID) of the key that made the signature,
    /// upper-case hex.
    pub fingerprint: String,
    /// Whether one of the given signer certificates holds that key.
    pub known: bool,
    /// That certificate.
    pub signer: Option<Cert>,
    /// The signature creation time (RFC 9580 §5.2.3.11).
    pub created: Option<SystemTime>,
    /// Whether the signature is good: math, key binding, key validity at signing time, policy.
    pub valid: bool,
    /// Each check made: (name, passed, detail).
    pub checks: Vec<(String, bool, String)>,
}

/// The signatures of a message or a detached signature.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    /// One report per signature, in message order.
    pub signatures: Vec<SignatureReport>,
}

impl Verification {
    /// At least one good signature by a known key, and no signature that is bad (a signature
    /// by an unknown key is not bad: it is just not checked).
    pub fn is_valid(&self) -> bool {
        self.signatures.iter().any(|s| s.valid)
            && self.signatures.iter().all(|s| s.valid || !s.known)
    }
}

/// A decrypted message. Debug shows the plaintext's length, not its bytes.
pub struct Decrypted {
    /// The literal data.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The signatures inside the encryption.
    pub verification: Verification,
    /// Whether it was SEIPD v2 (AEAD) rather than SEIPD v1 with MDC.
    pub aead: bool,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decrypted")
            .field("plaintext_len", &self.plaintext.len())
            .field("verification", &self.verification)
            .field("aead", &self.aead)
            .finish()
    }
}

/// Carries verification (and decryption) state through sequoia's callbacks.
pub(crate) struct Helper<'a> {
    keys: &'a [SecretKey],
    signers: &'a [Cert],
    pub(crate) verification: Verification,
    pub(crate) aead: bool,
    /// What the packets showed, kept outside the helper: sequoia drops the helper when it fails.
    seen: &'a Seen,
    max_signatures: usize,
    /// The certificate whose key decrypted the message, when we decrypted it ourselves (our
    /// SEIPD v1): signatures naming intended recipients must name it (RFC 9580 §5.2.3.36), as
    /// Sequoia's decryptor checks for its own.
    identity: Option<openpgp::Fingerprint>,
}

/// Packets seen while decrypting, to tell a stripped MDC from a bad one.
#[derive(Default)]
pub(crate) struct Seen {
    /// The encryption container's version (1 or 2), when one was seen.
    seip_version: Cell<Option<u8>>,
    /// Whether an MDC packet (RFC 9580 §5.14) was seen.
    mdc: Cell<bool>,
}

impl Seen {
    /// Sequoia reports SEIPD v1 that ends without an MDC packet like a bad MDC; we want to say
    /// that protection was missing (EFAIL: an attacker strips the MDC).
    pub(crate) fn refine(&self, e: Error) -> Error {
        if matches!(e, Error::DecryptionFailed)
            && self.seip_version.get() == Some(1)
            && !self.mdc.get()
        {
            Error::MissingIntegrityProtection
        } else {
            e
        }
    }
}

impl<'a> Helper<'a> {
    pub(crate) fn new(
        keys: &'a [SecretKey],
        signers: &'a [Cert],
        seen: &'a Seen,
        limits: &Limits,
    ) -> Self {
        Helper {
            keys,
            signers,
            verification: Verification::default(),
            aead: false,
            seen,
            max_signatures: limits.max_signers,
            identity: None,
        }
    }
}

impl VerificationHelper for Helper<'_> {
    fn inspect(&mut self, pp: &PacketParser) -> openpgp::Result<()> {
        match &pp.packet {
            // RFC 9580 §5.7: never release plaintext from a packet without integrity protection.
            Packet::Unknown(u) if u.tag() == Tag::SED => {
                return Err(Error::MissingIntegrityProtection.into());
            }
            Packet::SEIP(s) => self.seen.seip_version.set(Some(s.version())),
            #[allow(deprecated)]
            Packet::MDC(_) => self.seen.mdc.set(true),
            _ => {}
        }
        Ok(())
    }

    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<openpgp::Cert>> {
        // Sequoia picks the right one by issuer; a short list of certificates is cheap.
        Ok(self.signers.iter().map(|c| c.inner.clone()).collect())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        for layer in structure {
            match layer {
                MessageLayer::Encryption { aead_algo, .. } => self.aead = aead_algo.is_some(),
                MessageLayer::Compression { .. } => {}
                MessageLayer::SignatureGroup { results } => {
                    for r in results {
                        if self.verification.signatures.len() >= self.max_signatures {
                            return Err(Error::LimitExceeded {
                                what: "signatures",
                                limit: self.max_signatures as u64,
                            }
                            .into());
                        }
                        let not_for_us = match (&r, &self.identity) {
                            (Ok(good), Some(us)) => {
                                let mut named = good.sig.intended_recipients().peekable();
                                named.peek().is_some() && !named.any(|f| f == us)
                            }
                            _ => false,
                        };
                        let mut rep = report(r, self.signers);
                        if not_for_us {
                            rep.valid = false;
                            rep.checks.push((
                                "intended-recipient".into(),
                                false,
                                "the signature names other recipients, not us".into(),
                            ));
                        }
                        self.verification.signatures.push(rep);
                    }
                }
            }
        }
        Ok(())
    }
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<openpgp::Cert>> {
        let mut addressed_to_us = false;
        for pkesk in pkesks {
            for sk in self.keys {
                let candidates: Vec<_> = match pkesk.recipient() {
                    Some(handle) => sk.secret_for(&handle).into_iter().collect(),
                    // Anonymous recipient (RFC 9580 §5.1.1): try every decryption key.
                    None => sk.decryption_keys().collect(),
                };
                for key in candidates {
                    addressed_to_us = true;
                    let Some(mut kp) = sk.keypair(key) else {
                        continue;
                    };
                    if let Some((algo, session_key)) = pkesk.decrypt(&mut kp, sym_algo)
                        && decrypt(algo, &session_key)
                    {
                        return Ok(Some(sk.cert().inner.clone()));
                    }
                }
            }
        }
        if addressed_to_us {
            Err(Error::DecryptionFailed.into())
        } else {
            Err(Error::NoMatchingKey.into())
        }
    }
}

fn report(
    r: std::result::Result<openpgp::parse::stream::GoodChecksum, VerificationError>,
    signers: &[Cert],
) -> SignatureReport {
    let find = |fpr: &openpgp::Fingerprint| {
        signers
            .iter()
            .find(|c| &c.inner.fingerprint() == fpr)
            .cloned()
    };
    match r {
        Ok(good) => {
            let signer = find(&good.ka.cert().fingerprint());
            SignatureReport {
                fingerprint: good.ka.key().fingerprint().to_hex(),
                known: true,
                created: good.sig.signature_creation_time(),
                valid: true,
                checks: vec![
                    (
                        "signature".into(),
                        true,
                        format!("{} signature verifies", good.sig.hash_algo()),
                    ),
                    (
                        "key".into(),
                        true,
                        "signing key bound, alive and not revoked at signing time".into(),
                    ),
                ],
                signer,
            }
        }
        Err(e) => {
            let sig = match &e {
                VerificationError::MissingKey { sig }
                | VerificationError::UnboundKey { sig, .. }
                | VerificationError::BadKey { sig, .. }
                | VerificationError::BadSignature { sig, .. }
                | VerificationError::MalformedSignature { sig, .. } => Some(*sig),
                _ => None,
            };
            let issuer = sig
                .and_then(|s| s.get_issuers().first().cloned())
                .map(|h| h.to_hex())
                .unwrap_or_default();
            let created = sig.and_then(|s| s.signature_creation_time());
            let (known, signer, check) = match &e {
                VerificationError::MissingKey { .. } => (
                    false,
                    None,
                    (
                        "signer-known",
                        "no certificate given for this key".to_owned(),
                    ),
                ),
                VerificationError::UnboundKey { cert, error, .. } => (
                    true,
                    find(&cert.fingerprint()),
                    ("key-binding", error.to_string()),
                ),
                VerificationError::BadKey { ka, error, .. } => (
                    true,
                    find(&ka.cert().fingerprint()),
                    ("key", error.to_string()),
                ),
                VerificationError::BadSignature { ka, error, .. } => (
                    true,
                    find(&ka.cert().fingerprint()),
                    ("signature", error.to_string()),
                ),
                other => (false, None, ("signature-format", other.to_string())),
            };
            let fingerprint = match (&e, &signer) {
                (VerificationError::BadKey { ka, .. }, _)
                | (VerificationError::BadSignature { ka, .. }, _) => {
                    ka.key().fingerprint().to_hex()
                }
                _ => issuer,
            };
            SignatureReport {
                fingerprint,
                known,
                signer,
                created,
                valid: false,
                checks: vec![(check.0.to_owned(), false, check.1)],
            }
        }
    }
}

/// Maps a sequoia error to ours, keeping decryption failures coarse.
pub(crate) fn map_error(e: &openpgp::anyhow::Error, what: &'static str) -> Error {
    for cause in e.chain() {
        if let Some(found) = ours_or_coarse(cause) {
            return found;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(inner);
            while let Some(c) = cur {
                if let Some(found) = ours_or_coarse(c) {
                    return found;
                }
                cur = c.source();
            }
        }
    }
    malformed(what, e)
}

/// One of our errors carried through sequoia, or a failed MDC/tag or session key, which must
/// read as [`Error::DecryptionFailed`] wherever in the chain sequoia put it (a failed MDC
/// found while the plaintext streams arrives wrapped in an I/O error).
fn ours_or_coarse(c: &(dyn std::error::Error + 'static)) -> Option<Error> {
    if let Some(ours) = c.downcast_ref::<Error>() {
        return Some(clone_error(ours));
    }
    match c.downcast_ref::<openpgp::Error>() {
        Some(
            openpgp::Error::ManipulatedMessage
            | openpgp::Error::InvalidSessionKey(_)
            | openpgp::Error::MissingSessionKey(_),
        ) => Some(Error::DecryptionFailed),
        // Sequoia's streaming readers turn `anyhow::Error`s into `io::Error`s; anyhow's boxed
        // form hides the concrete type from `downcast_ref`, and only the message is left.
        _ if c.to_string() == openpgp::Error::ManipulatedMessage.to_string() => {
            Some(Error::DecryptionFailed)
        }
        _ => None,
    }
}

/// Our errors that travel through sequoia's callbacks are unit-like or small: rebuild them.
fn clone_error(e: &Error) -> Error {
    match e {
        Error::MissingIntegrityProtection => Error::MissingIntegrityProtection,
        Error::DecryptionFailed => Error::DecryptionFailed,
        Error::NoMatchingKey => Error::NoMatchingKey,
        Error::NotEncrypted => Error::NotEncrypted,
        Error::LimitExceeded { what, limit } => Error::LimitExceeded {
            what,
            limit: *limit,
        },
        other => Error::Malformed {
            what: "message",
            detail: other.to_string(),
        },
    }
}

/// Reads all of `r` into a zeroizing buffer of at most `limit` bytes: the plaintext bound that
/// also stops compression bombs as they inflate.
fn read_bounded(
    r: impl Read,
    limit: usize,
    size_hint: usize,
) -> std::io::Result<std::result::Result<Zeroizing<Vec<u8>>, Error>> {
    // Reserve the expected size up front (the plaintext of an uncompressed message is never
    // larger than its ciphertext): growing the vector would copy the plaintext several times
    // and leave the old, un-wiped buffers behind on the heap.
    let mut out = Zeroizing::new(Vec::with_capacity(size_hint.min(limit)));
    // One octet over the limit tells "exactly at the limit" from "too long".
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    r.take(cap).read_to_end(&mut out)?;
    if out.len() > limit {
        return Ok(Err(Error::LimitExceeded {
            what: "plaintext size",
            limit: limit as u64,
        }));
    }
    Ok(Ok(out))
}

/// An ASCII-armored message (RFC 9580 §6) decoded to binary once, so that the pre-check and
/// the decryption do not both undo the armor (base64 decoding is a large share of the time).
/// Anything that is not armored, or whose armor does not decode, is passed on as it is and
/// the parser reports it as before.
fn dearmor(message: &[u8], limits: &Limits) -> Option<Vec<u8>> {
    let start = message.iter().position(|b| !b.is_ascii_whitespace())?;
    if !message.get(start..)?.starts_with(b"-----BEGIN PGP ") {
        return None;
    }
    // Our decoder for the usual shape (sealgate-mime's base64, CRC checked); Sequoia's
    // tolerant reader for the rest.
    if let Some(data) = crate::armor::dearmor_message(message) {
        return Some(data);
    }
    let mut r =
        openpgp::armor::Reader::from_bytes(message, openpgp::armor::ReaderMode::Tolerant(None));
    // Decoded armor is about 3/4 of its text.
    let mut out = Vec::with_capacity(message.len() / 4 * 3 + 16);
    let cap = u64::try_from(limits.max_message_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    (&mut r).take(cap).read_to_end(&mut out).ok()?;
    (out.len() <= limits.max_message_bytes && !out.is_empty()).then_some(out)
}

/// Scans the top-level packets (without decrypting) for the legacy SED packet and checks that
/// this is an encrypted message at all.
fn precheck_encrypted(message: &[u8]) -> Result<()> {
    let mut ppr = PacketParser::from_bytes(message).map_err(|e| malformed("message", &e))?;
    let mut encrypted = false;
    while let PacketParserResult::Some(pp) = ppr {
        match pp.packet.tag() {
            Tag::SED => return Err(Error::MissingIntegrityProtection),
            Tag::SEIP | Tag::AED => encrypted = true,
            _ => {}
        }
        // A SEIPD v1 body (version octet, RFC 9580 §5.13.1 prefix of block size + 2, at least
        // a minimal literal packet, the 22-octet MDC) is never shorter than 41 octets. Shorter
        // ones cannot carry an MDC, and sequoia 2.4.2 panics on them (parse.rs
        // `data_consume_hard(bl + 2).unwrap()` after reserving 22 octets for the MDC).
        if let Packet::SEIP(s) = &pp.packet
            && s.version() == 1
            && let openpgp::packet::header::BodyLength::Full(n) = pp.header().length()
            && *n < 41
        {
            return Err(Error::MissingIntegrityProtection);
        }
        ppr = pp.next().map_err(|e| malformed("message", &e))?.1;
    }
    if encrypted {
        Ok(())
    } else {
        Err(Error::NotEncrypted)
    }
}

/// Decrypts `message` (armored or binary) with our secret keys and verifies the signatures
/// inside against `signers`.
///
/// Refuses plaintext without integrity protection ([`Error::MissingIntegrityProtection`]) and
/// never returns any of it. The plaintext (after decompression) is bounded by
/// `limits.max_message_bytes`; packet sizes and nesting by sequoia's parser defaults (1 MiB
/// for non-data packets, 16 levels).
pub fn decrypt(
    message: &[u8],
    keys: &[SecretKey],
    signers: &[Cert],
    limits: &Limits,
) -> Result<Decrypted> {
    check_input_size(message, limits)?;
    let binary = dearmor(message, limits);
    let message = binary.as_deref().unwrap_or(message);
    if let Some(v1) = crate::seipd::split_v1(message) {
        // PKESKs and one SEIPD v1 packet: ours (aws-lc CFB and SHA-1). `None` means a cipher
        // we leave to Sequoia.
        if let Some(result) =
            guard("message", || Ok(decrypt_v1(&v1, keys, signers, limits))).transpose()
        {
            return result.and_then(|r| r);
        }
    }
    precheck_encrypted(message)?;
    let seen = Seen::default();
    guard("message", || {
        decrypt_inner(message, keys, signers, &seen, limits)
    })
}

/// Decrypts PKESKs + SEIPD v1 with our own SEIPD code (`crate::seipd`). `None` when the
/// session key is for a cipher other than AES (Sequoia then decrypts the message as a whole).
/// The PKESK v3s themselves, ML-KEM-768+X25519 ones to v4 keys included (draft-ietf-openpgp-pqc),
/// are opened by Sequoia's key pairs (RSA by ours, `crate::rsa`); only the AES layer is ours.
/// PKESK v6 comes with SEIPD v2, which `split_v1` leaves to Sequoia.
///
/// Same outcomes as Sequoia's path: [`Error::NoMatchingKey`] when no PKESK is for our keys,
/// [`Error::DecryptionFailed`] for a session key that does not decrypt, a failed quick check
/// or a bad MDC, [`Error::MissingIntegrityProtection`] when there is no MDC. No plaintext
/// leaves before the MDC matched.
fn decrypt_v1(
    v1: &crate::seipd::V1Message<'_>,
    keys: &[SecretKey],
    signers: &[Cert],
    limits: &Limits,
) -> Option<Result<Decrypted>> {
    use crate::seipd::{self, Refused};
    if seipd::too_short(&v1.ciphertext) {
        return Some(Err(Error::MissingIntegrityProtection));
    }
    let mut addressed_to_us = false;
    let mut chosen = None;
    'search: for bytes in &v1.pkesks {
        let Ok(Packet::PKESK(pkesk)) = Packet::from_bytes(bytes) else {
            return Some(Err(Error::Malformed {
                what: "message",
                detail: "unreadable public-key encrypted session key packet".into(),
            }));
        };
        for sk in keys {
            let candidates: Vec<_> = match pkesk.recipient() {
                Some(handle) => sk.secret_for(&handle).into_iter().collect(),
                // Anonymous recipient (RFC 9580 §5.1.1): try every decryption key.
                None => sk.decryption_keys().collect(),
            };
            for key in candidates {
                addressed_to_us = true;
                let Some(mut kp) = sk.keypair(key) else {
                    continue;
                };
                let Some((algo, session_key)) = pkesk.decrypt(&mut kp, None) else {
                    continue;
                };
                let cipher = seipd::aes(algo?)?;
                if seipd::quick_check(cipher, &session_key, &v1.ciphertext) {
                    chosen = Some((cipher, session_key, sk.cert().inner.fingerprint()));
                    break 'search;
                }
            }
        }
    }
    let Some((cipher, session_key, identity)) = chosen else {
        return Some(Err(if addressed_to_us {
            Error::DecryptionFailed
        } else {
            Error::NoMatchingKey
        }));
    };
    let (mut plaintext, packets) = match seipd::open(cipher, &session_key, &v1.ciphertext) {
        Ok(p) => p,
        Err(Refused::NoMdc) => return Some(Err(Error::MissingIntegrityProtection)),
        Err(Refused::Failed) => return Some(Err(Error::DecryptionFailed)),
    };
    drop(session_key);
    // Authenticated from here on. The common case, one Literal Data packet, is cut out in
    // place; signed or compressed content goes through Sequoia's parser.
    let inner = plaintext.get(packets.clone())?;
    if let Some(ranges) = seipd::literal_data(inner) {
        let ranges: Vec<_> = ranges
            .into_iter()
            .map(|r| r.start + packets.start..r.end + packets.start)
            .collect();
        seipd::compact(&mut plaintext, &ranges);
        return Some(Ok(Decrypted {
            plaintext,
            verification: Verification::default(),
            aead: false,
        }));
    }
    let seen = Seen::default();
    let mut helper = Helper::new(&[], signers, &seen, limits);
    helper.identity = Some(identity);
    Some(read_packets(inner, helper, limits))
}

/// Reads decrypted, authenticated packets (one-pass signed, compressed, literal) with
/// Sequoia's verifier: the plaintext (bounded by `max_message_bytes`: compression) and the
/// signatures.
fn read_packets(packets: &[u8], helper: Helper<'_>, limits: &Limits) -> Result<Decrypted> {
    let mut v = VerifierBuilder::from_bytes(packets)
        .map_err(|e| malformed("message", &e))?
        // Everything is read into our buffer before it is returned: no hold-back needed.
        .buffer_size(DECRYPT_HOLD_BACK)
        .with_policy(&POLICY, None, helper)
        .map_err(|e| map_error(&e, "message"))?;
    let plaintext = match read_bounded(&mut v, limits.max_message_bytes, packets.len()) {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(io_error(e)),
    };
    if !v.message_processed() {
        return Err(Error::DecryptionFailed);
    }
    Ok(Decrypted {
        plaintext,
        verification: v.into_helper().verification,
        aead: false,
    })
}

/// Defence in depth: a panic inside sequoia on hostile input must not take the gateway down
/// (see `precheck_encrypted` for the one we know of). No state outlives the call.
pub(crate) fn guard<T>(what: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(Error::Malformed {
            what,
            detail: "rejected by the OpenPGP parser".into(),
        })
    })
}

/// Plaintext sequoia's decryptor holds back before handing it on (see `decrypt_inner`).
const DECRYPT_HOLD_BACK: usize = 256 * 1024;

fn decrypt_inner(
    message: &[u8],
    keys: &[SecretKey],
    signers: &[Cert],
    seen: &Seen,
    limits: &Limits,
) -> Result<Decrypted> {
    let helper = Helper::new(keys, signers, seen, limits);
    let builder = DecryptorBuilder::from_bytes(message).map_err(|e| malformed("message", &e))?;
    let mut d = builder
        // Sequoia holds back this much plaintext until signatures and MDC are checked. We
        // need no hold-back: everything is read into our own buffer below and returned only
        // after the MDC/AEAD tag and `message_processed` are checked, and dropped (wiped) on
        // any error. A small value spares sequoia copying the whole plaintext into a buffer
        // of its own first (measured: a third of the 10 MB decryption time).
        .buffer_size(DECRYPT_HOLD_BACK)
        .with_policy(&POLICY, None, helper)
        .map_err(|e| seen.refine(map_error(&e, "message")))?;
    let plaintext = match read_bounded(&mut d, limits.max_message_bytes, message.len()) {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(seen.refine(io_error(e))),
    };
    if !d.message_processed() {
        return Err(Error::DecryptionFailed);
    }
    let helper = d.into_helper();
    Ok(Decrypted {
        plaintext,
        verification: helper.verification,
        aead: helper.aead,
    })
}

pub(crate) fn io_error(e: std::io::Error) -> Error {
    match e.into_inner() {
        Some(inner) => map_error(&openpgp::anyhow::Error::from_boxed(inner), "message"),
        None => Error::DecryptionFailed,
    }
}

/// Verifies an inline-signed message (one-pass signed, RFC 9580 §10.3, or the cleartext
/// signature framework, §7) and returns its literal data.
pub fn verify_inline(
    message: &[u8],
    signers: &[Cert],
    limits: &Limits,
) -> Result<(Vec<u8>, Verification)> {
    check_input_size(message, limits)?;
    guard("message", || verify_inline_inner(message, signers, limits))
}

fn verify_inline_inner(
    message: &[u8],
    signers: &[Cert],
    limits: &Limits,
) -> Result<(Vec<u8>, Verification)> {
    let seen = Seen::default();
    let helper = Helper::new(&[], signers, &seen, limits);
    let mut v = VerifierBuilder::from_bytes(message)
        .map_err(|e| malformed("message", &e))?
        .buffer_size(
            limits
                .max_message_bytes
                .clamp(1024, openpgp::parse::stream::DEFAULT_BUFFER_SIZE),
        )
        .with_policy(&POLICY, None, helper)
        .map_err(|e| map_error(&e, "message"))?;
    let data = match read_bounded(&mut v, limits.max_message_bytes, message.len()) {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(io_error(e)),
    };
    let helper = v.into_helper();
    Ok((data.to_vec(), helper.verification))
}

/// Verifies a detached signature (armored or binary) over `data` against `signers`.
pub fn verify_detached(
    data: &[u8],
    signature: &[u8],
    signers: &[Cert],
    limits: &Limits,
) -> Result<Verification> {
    check_input_size(signature, limits)?;
    guard("signature", || {
        verify_detached_inner(|v| v.verify_bytes(data), signature, signers, limits)
    })
}

/// [`verify_detached`] over data read from `data` (hashed in steps, never held): the same
/// verifier, so the same report, for the streaming `multipart/signed` reader.
pub(crate) fn verify_detached_reader(
    data: impl std::io::Read + Send + Sync,
    signature: &[u8],
    signers: &[Cert],
    limits: &Limits,
) -> Result<Verification> {
    check_input_size(signature, limits)?;
    guard("signature", || {
        verify_detached_inner(|v| v.verify_reader(data), signature, signers, limits)
    })
}

type DetachedVerifier<'s, 'h> = openpgp::parse::stream::DetachedVerifier<'s, Helper<'h>>;

fn verify_detached_inner(
    hash: impl for<'s, 'h> FnOnce(&mut DetachedVerifier<'s, 'h>) -> openpgp::Result<()>,
    signature: &[u8],
    signers: &[Cert],
    limits: &Limits,
) -> Result<Verification> {
    let seen = Seen::default();
    let helper = Helper::new(&[], signers, &seen, limits);
    let mut v = DetachedVerifierBuilder::from_bytes(signature)
        .map_err(|e| malformed("signature", &e))?
        .with_policy(&POLICY, None, helper)
        .map_err(|e| map_error(&e, "signature"))?;
    hash(&mut v).map_err(|e| map_error(&e, "signature"))?;
    Ok(v.into_helper().verification)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::encrypt::{EncryptOptions, encrypt, sign_detached};
    use crate::keys::KeyKind;
    use crate::keys::tests::{ED_FPR, RSA_FPR, cert, fixture, secret};

    const PLAIN: &[u8] = b"Hello from GnuPG.\r\nSecond line.\r\n";

    #[test]
    fn gpg_encrypted_and_signed_decrypts_and_verifies() {
        let limits = Limits::default();
        let (rsa, ed) = (secret("rsa"), secret("ed"));
        assert_eq!(fixture("plain.txt"), PLAIN);
        // To RSA, signed by Ed25519.
        let d = decrypt(
            &fixture("gpg-rsa-signed-by-ed.asc"),
            &[rsa],
            &[cert("ed")],
            &limits,
        )
        .unwrap();
        assert_eq!(&d.plaintext[..], PLAIN);
        assert!(!d.aead);
        assert!(d.verification.is_valid());
        assert_eq!(d.verification.signatures.len(), 1);
        let s = &d.verification.signatures[0];
        assert!(s.valid && s.known);
        assert_eq!(
            s.signer.as_ref().map(Cert::fingerprint).as_deref(),
            Some(ED_FPR)
        );
        assert!(s.created.is_some());
        // To Cv25519, signed by RSA; the signer's certificate not given: unknown, not valid.
        let d = decrypt(&fixture("gpg-ed-signed-by-rsa.asc"), &[ed], &[], &limits).unwrap();
        assert_eq!(&d.plaintext[..], PLAIN);
        assert_eq!(d.verification.signatures.len(), 1);
        let s = &d.verification.signatures[0];
        assert!(!s.valid && !s.known && s.signer.is_none());
        assert!(
            RSA_FPR.ends_with(&s.fingerprint),
            "issuer {} of {RSA_FPR}",
            s.fingerprint
        );
        assert!(!d.verification.is_valid());
        // Binary, unsigned.
        let d = decrypt(&fixture("gpg-ed.pgp"), &[secret("ed")], &[], &limits).unwrap();
        assert_eq!(&d.plaintext[..], PLAIN);
        assert!(d.verification.signatures.is_empty());
    }

    #[test]
    fn sq_encrypted_and_signed_decrypts_and_verifies() {
        // sq 0.27 (sequoia-openpgp 1.12): SEIPD v1, signed.
        let d = decrypt(
            &fixture("sq-signed.asc"),
            &[secret("sq")],
            &[cert("sq")],
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(&d.plaintext[..], PLAIN);
        assert!(!d.aead);
        assert!(d.verification.is_valid());
        assert_eq!(
            d.verification.signatures[0]
                .signer
                .as_ref()
                .unwrap()
                .fingerprint(),
            "CD0721BA415D10DD982F606651AAF9ACA848987C"
        );
    }

    #[test]
    fn subkeys_only_export_decrypts_but_cannot_sign() {
        let k = SecretKey::load(&fixture("rsa.subkeys.sec.asc"), None, &Limits::default()).unwrap();
        assert_eq!(k.cert().fingerprint(), RSA_FPR);
        let d = decrypt(
            &fixture("gpg-rsa-signed-by-ed.asc"),
            &[k],
            &[],
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(&d.plaintext[..], PLAIN);
        let k = SecretKey::load(&fixture("rsa.subkeys.sec.asc"), None, &Limits::default()).unwrap();
        assert!(matches!(
            sign_detached(PLAIN, &k, true),
            Err(Error::NoSigningKey)
        ));
    }

    #[test]
    fn wrong_key_and_not_encrypted() {
        let limits = Limits::default();
        // Encrypted to RSA only; we hold Ed25519.
        assert!(matches!(
            decrypt(
                &fixture("gpg-rsa-signed-by-ed.asc"),
                &[secret("ed")],
                &[],
                &limits
            ),
            Err(Error::NoMatchingKey)
        ));
        assert!(matches!(
            decrypt(
                &fixture("gpg-inline-signed-by-ed.asc"),
                &[secret("ed")],
                &[],
                &limits
            ),
            Err(Error::NotEncrypted)
        ));
        assert!(matches!(
            decrypt(b"garbage", &[secret("ed")], &[], &limits),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn legacy_sed_is_refused() {
        // gpg --rfc2440: tag 9, no MDC (EFAIL). The key is right; the plaintext must not come out.
        let r = decrypt(
            &fixture("gpg-rsa-sed.pgp"),
            &[secret("rsa")],
            &[],
            &Limits::default(),
        );
        assert!(matches!(r, Err(Error::MissingIntegrityProtection)), "{r:?}");
    }

    #[test]
    fn round_trip_every_key_kind() {
        let limits = Limits::default();
        let kinds = [
            KeyKind::Cv25519,
            KeyKind::Rsa3072,
            KeyKind::P256,
            KeyKind::P384,
            KeyKind::V6Cv25519,
            KeyKind::V6MlDsa65Ed25519,
            KeyKind::Ed25519MlKem768,
        ];
        let keys: Vec<SecretKey> = kinds
            .iter()
            .map(|k| SecretKey::generate(&format!("{k:?} <k@example.org>"), *k).unwrap())
            .collect();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for (kind, k) in kinds.iter().zip(&keys) {
            for opts in [
                EncryptOptions::default(),
                EncryptOptions {
                    armor: false,
                    compression: true,
                },
            ] {
                let ct = encrypt(&data, &[k.cert().clone()], Some(k), &opts).unwrap();
                assert_eq!(ct.starts_with(b"-----BEGIN PGP MESSAGE-----"), opts.armor);
                let d =
                    decrypt(&ct, std::slice::from_ref(k), &[k.cert().clone()], &limits).unwrap();
                assert_eq!(&d.plaintext[..], &data[..], "{kind:?}");
                // Sequoia-made certificates advertise SEIPD v2.
                assert!(d.aead, "{kind:?}");
                assert!(d.verification.is_valid(), "{kind:?}");
                assert_eq!(
                    d.verification.signatures[0]
                        .signer
                        .as_ref()
                        .unwrap()
                        .fingerprint(),
                    k.cert().fingerprint()
                );
            }
        }
        // Several recipients: each decrypts alone.
        let certs: Vec<Cert> = keys.iter().map(|k| k.cert().clone()).collect();
        let ct = encrypt(b"to all", &certs, None, &EncryptOptions::default()).unwrap();
        for k in &keys {
            let d = decrypt(&ct, std::slice::from_ref(k), &[], &limits).unwrap();
            assert_eq!(&d.plaintext[..], b"to all");
            assert!(d.verification.signatures.is_empty());
        }
    }

    #[test]
    fn gpg_recipients_get_seipd_v1() {
        let limits = Limits::default();
        let me = SecretKey::generate("Me <me@example.org>", KeyKind::Cv25519).unwrap();
        // A gpg 2.2 recipient does not advertise SEIPD v2, so the whole message is v1 + MDC.
        let ct = encrypt(
            PLAIN,
            &[cert("rsa"), me.cert().clone()],
            Some(&me),
            &EncryptOptions::default(),
        )
        .unwrap();
        let d = decrypt(&ct, &[secret("rsa")], &[me.cert().clone()], &limits).unwrap();
        assert_eq!(&d.plaintext[..], PLAIN);
        assert!(!d.aead);
        assert!(d.verification.is_valid());
        let d = decrypt(&ct, &[me], &[], &limits).unwrap();
        assert_eq!(&d.plaintext[..], PLAIN);
    }

    #[test]
    fn bad_recipients_are_typed() {
        let opts = EncryptOptions::default();
        assert!(matches!(
            encrypt(b"x", &[cert("expired")], None, &opts),
            Err(Error::Expired { .. })
        ));
        assert!(matches!(
            encrypt(b"x", &[cert("revoked")], None, &opts),
            Err(Error::Revoked { .. })
        ));
        assert!(matches!(
            encrypt(b"x", &[cert("signonly")], None, &opts),
            Err(Error::NoEncryptionKey { .. })
        ));
    }

    #[test]
    fn detached_signatures_both_ways() {
        let limits = Limits::default();
        // gpg-made, armored (Ed25519) and binary (RSA).
        let v = verify_detached(
            PLAIN,
            &fixture("plain.txt.ed.asc"),
            &[cert("ed"), cert("rsa")],
            &limits,
        )
        .unwrap();
        assert!(v.is_valid());
        assert_eq!(
            v.signatures[0].signer.as_ref().unwrap().fingerprint(),
            ED_FPR
        );
        let v = verify_detached(
            PLAIN,
            &fixture("plain.txt.rsa.sig"),
            &[cert("rsa")],
            &limits,
        )
        .unwrap();
        assert!(v.is_valid());
        assert_eq!(
            v.signatures[0].signer.as_ref().unwrap().fingerprint(),
            RSA_FPR
        );
        // Altered data: known signer, bad signature.
        let v = verify_detached(
            b"Hello from GnuPG!\r\nSecond line.\r\n",
            &fixture("plain.txt.rsa.sig"),
            &[cert("rsa")],
            &limits,
        )
        .unwrap();
        assert!(!v.is_valid());
        assert!(v.signatures[0].known && !v.signatures[0].valid);
        assert_eq!(v.signatures[0].checks[0].0, "signature");
        // Ours.
        for key in [
            secret("rsa"),
            secret("ed"),
            SecretKey::generate("V6 <v6@example.org>", KeyKind::V6Cv25519).unwrap(),
        ] {
            let sig = sign_detached(PLAIN, &key, true).unwrap();
            assert!(sig.starts_with(b"-----BEGIN PGP SIGNATURE-----"));
            let v = verify_detached(PLAIN, &sig, &[key.cert().clone()], &limits).unwrap();
            assert!(v.is_valid());
            assert!(
                v.signatures[0].checks[0].2.contains("SHA256"),
                "{:?}",
                v.signatures[0].checks
            );
            let v = verify_detached(b"other", &sig, &[key.cert().clone()], &limits).unwrap();
            assert!(!v.is_valid());
        }
        // A sign-only key signs; the RSA signature is not accepted as made by Ed.
        let sig = sign_detached(PLAIN, &secret("signonly"), false).unwrap();
        assert!(
            verify_detached(PLAIN, &sig, &[cert("signonly")], &limits)
                .unwrap()
                .is_valid()
        );
        assert!(
            !verify_detached(PLAIN, &sig, &[cert("ed")], &limits)
                .unwrap()
                .is_valid()
        );
    }

    #[test]
    fn inline_signed_from_gpg() {
        let (data, v) = verify_inline(
            &fixture("gpg-inline-signed-by-ed.asc"),
            &[cert("ed")],
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(data, PLAIN);
        assert!(v.is_valid());
        assert_eq!(
            v.signatures[0].signer.as_ref().unwrap().fingerprint(),
            ED_FPR
        );
    }

    #[test]
    fn clearsigned_from_gpg() {
        let msg = fixture("gpg-clearsigned-by-ed.asc");
        let (data, v) = verify_inline(&msg, &[cert("ed")], &Limits::default()).unwrap();
        // RFC 9580 §7.1: the line break before the signature armor is not part of the text.
        assert_eq!(data, b"Hello from GnuPG.\r\nSecond line.");
        assert!(v.is_valid());
        assert_eq!(
            v.signatures[0].signer.as_ref().unwrap().fingerprint(),
            ED_FPR
        );
        // One changed character in the text: known signer, bad signature.
        let bad = String::from_utf8(msg)
            .unwrap()
            .replace("Second line.", "Second line!");
        let (_, v) = verify_inline(bad.as_bytes(), &[cert("ed")], &Limits::default()).unwrap();
        assert!(!v.is_valid() && v.signatures[0].known);
    }

    #[test]
    fn compression_bomb_is_bounded() {
        use openpgp::serialize::stream::{
            Compressor, Encryptor as SqEncryptor, LiteralWriter, Message, Recipient,
        };
        use std::io::Write;
        let k = SecretKey::generate("Bomb <bomb@example.org>", KeyKind::Cv25519).unwrap();
        // 1 GiB of zeros, deflated to about 1 MB, then encrypted.
        let mut ct = Vec::new();
        {
            let vc = k.cert().as_sequoia().with_policy(&POLICY, None).unwrap();
            let rs: Vec<_> = vc
                .keys()
                .for_transport_encryption()
                .map(|ka| Recipient::new(None, ka.key().key_handle(), ka.key()))
                .collect();
            let m = Message::new(&mut ct);
            let m = SqEncryptor::for_recipients(m, rs).build().unwrap();
            let m = Compressor::new(m)
                .algo(openpgp::types::CompressionAlgorithm::Zip)
                .level(openpgp::types::CompressionLevel::best())
                .build()
                .unwrap();
            let mut m = LiteralWriter::new(m).build().unwrap();
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..1024 {
                m.write_all(&zeros).unwrap();
            }
            m.finalize().unwrap();
        }
        assert!(ct.len() < 4 << 20, "{}", ct.len());
        let mut limits = Limits::default();
        limits.max_message_bytes = 16 << 20;
        let start = std::time::Instant::now();
        let r = decrypt(&ct, &[k], &[], &limits);
        assert!(
            matches!(r, Err(Error::LimitExceeded { what: "plaintext size", limit }) if limit == 16 << 20),
            "{r:?}"
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(30));
    }

    /// SEIPD v1 (RFC 9580 §5.13.1) to `k`, built by hand so that the MDC can be left out.
    pub(crate) fn seipd_v1(k: &SecretKey, body: &[u8], with_mdc: bool) -> Vec<u8> {
        seipd_v1_at(k, body, with_mdc).0
    }

    /// As `seipd_v1`, and where the SEIPD packet starts.
    pub(crate) fn seipd_v1_at(k: &SecretKey, body: &[u8], with_mdc: bool) -> (Vec<u8>, usize) {
        use openpgp::crypto::symmetric::{BlockCipherMode, Encryptor as Cfb, PaddingMode};
        use openpgp::packet::Literal;
        use openpgp::packet::pkesk::PKESK3;
        use openpgp::serialize::{Marshal, SerializeInto};
        use openpgp::types::DataFormat;
        use std::io::Write;
        let algo = SymmetricAlgorithm::AES256;
        let sk = SessionKey::new(32).unwrap();
        let vc = k.cert().as_sequoia().with_policy(&POLICY, None).unwrap();
        let enc = vc.keys().for_transport_encryption().next().unwrap();
        let mut out = Vec::new();
        Packet::PKESK(PKESK3::for_recipient(algo, &sk, enc.key()).unwrap().into())
            .serialize(&mut out)
            .unwrap();
        let mut lit = Literal::new(DataFormat::Binary);
        lit.set_body(body.to_vec());
        let mut plain = vec![7u8; 16];
        plain.extend_from_slice(&[7, 7]); // quick check: last two prefix bytes repeated
        plain.extend_from_slice(&Packet::from(lit).to_vec().unwrap());
        if with_mdc {
            let mut h = openpgp::types::HashAlgorithm::SHA1
                .context()
                .unwrap()
                .for_digest();
            plain.extend_from_slice(&[0xd3, 0x14]);
            h.update(&plain);
            let mut digest = [0u8; 20];
            h.digest(&mut digest).unwrap();
            plain.extend_from_slice(&digest);
        }
        let mut ct = Vec::new();
        let mut w = Cfb::new(
            algo,
            BlockCipherMode::CFB,
            PaddingMode::None,
            &sk,
            None,
            &mut ct,
        )
        .unwrap();
        w.write_all(&plain).unwrap();
        w.finalize().unwrap();
        let at = out.len();
        let len = u32::try_from(ct.len() + 1).unwrap();
        out.push(0xc0 | 18); // new-format CTB, tag 18 (SEIPD)
        out.push(0xff);
        out.extend_from_slice(&len.to_be_bytes());
        out.push(1); // version 1
        out.extend_from_slice(&ct);
        (out, at)
    }

    #[test]
    fn seipd_v1_without_mdc_is_refused_and_tampering_is_coarse() {
        let limits = Limits::default();
        let k = SecretKey::generate("Mdc <mdc@example.org>", KeyKind::Rsa3072).unwrap();
        let good = seipd_v1(&k, b"secret body", true);
        let d = decrypt(&good, std::slice::from_ref(&k), &[], &limits).unwrap();
        assert_eq!(&d.plaintext[..], b"secret body");
        assert!(!d.aead);
        // Too short to hold an MDC (caught before sequoia, which would panic on it), and long.
        for body in [&b"secret body"[..], &[b'x'; 1000][..]] {
            let stripped = seipd_v1(&k, body, false);
            let r = decrypt(&stripped, std::slice::from_ref(&k), &[], &limits);
            assert!(matches!(r, Err(Error::MissingIntegrityProtection)), "{r:?}");
        }
        // The same short stripped packet with partial body lengths (the length check above
        // cannot see it): an error, never a panic or plaintext.
        let (short, at) = seipd_v1_at(&k, b"secret body", false);
        let (head, seipd) = short.split_at(at);
        let body = &seipd[6..]; // CTB, 0xff, 4-octet length
        let mut partial = head.to_vec();
        partial.extend_from_slice(&[
            0xc0 | 18,
            0xe0,
            body[0],
            u8::try_from(body.len() - 1).unwrap(),
        ]);
        partial.extend_from_slice(&body[1..]);
        let r = decrypt(&partial, std::slice::from_ref(&k), &[], &limits);
        assert!(
            matches!(
                r,
                Err(Error::Malformed { .. } | Error::MissingIntegrityProtection)
            ),
            "{r:?}"
        );
        // Flip one ciphertext bit in the literal data: the MDC fails, coarsely.
        // (Far from the MDC packet: CFB garbles the block after the flipped one, and a garbled
        // MDC header reads as a stripped MDC.)
        let mut tampered = seipd_v1(&k, &[b'x'; 1000], true);
        let n = tampered.len();
        tampered[n - 500] ^= 1;
        let r = decrypt(&tampered, std::slice::from_ref(&k), &[], &limits);
        assert!(matches!(r, Err(Error::DecryptionFailed)), "{r:?}");
    }

    #[test]
    fn tampering_past_the_hold_back_is_coarse_and_releases_nothing() {
        // Longer than DECRYPT_HOLD_BACK: sequoia hands plaintext on before the MDC is checked,
        // so the MDC failure must still turn the whole call into DecryptionFailed.
        let limits = Limits::default();
        let k = SecretKey::generate("Mdc <mdc@example.org>", KeyKind::Cv25519).unwrap();
        let body: Vec<u8> = (0..4 * DECRYPT_HOLD_BACK)
            .map(|i| (i % 251) as u8)
            .collect();
        let good = seipd_v1(&k, &body, true);
        let d = decrypt(&good, std::slice::from_ref(&k), &[], &limits).unwrap();
        assert_eq!(&d.plaintext[..], &body[..]);
        for at in [good.len() / 2, good.len() - 500] {
            let mut tampered = good.clone();
            tampered[at] ^= 1;
            let r = decrypt(&tampered, std::slice::from_ref(&k), &[], &limits);
            assert!(matches!(r, Err(Error::DecryptionFailed)), "{r:?}");
        }
    }

    /// Decrypts with Sequoia's own parser end to end (its SEIPD v1 reader, not ours).
    fn sequoia_decrypt(message: &[u8], k: &SecretKey, signers: &[Cert]) -> Result<Decrypted> {
        let limits = Limits::default();
        let binary = dearmor(message, &limits);
        let message = binary.as_deref().unwrap_or(message);
        let seen = Seen::default();
        decrypt_inner(message, std::slice::from_ref(k), signers, &seen, &limits)
            .map_err(|e| seen.refine(e))
    }

    #[test]
    fn our_seipd_v1_reads_in_sequoia_and_sequoias_in_ours() {
        use crate::encrypt::Encryptor;
        use openpgp::serialize::stream::{
            Encryptor as SqEncryptor, LiteralWriter, Message, Recipient, Signer,
        };
        use std::io::Write;
        let limits = Limits::default();
        let (k, c) = (secret("rsa"), cert("rsa"));
        let me = SecretKey::generate("Me <me@example.org>", KeyKind::Cv25519).unwrap();
        for n in [0usize, 1, 511, 65_536, 65_537, 300_000, (2 << 20) + 3] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 % 256) as u8).collect();
            for armor in [false, true] {
                let opts = EncryptOptions {
                    armor,
                    compression: false,
                };
                // One-shot (definite length), signed (Sequoia's signer inside our SEIPD),
                // streaming (partial bodies).
                let one = encrypt(&data, std::slice::from_ref(&c), None, &opts).unwrap();
                let signed = encrypt(&data, std::slice::from_ref(&c), Some(&me), &opts).unwrap();
                let certs = [c.clone()];
                let mut e = Encryptor::new(Vec::new(), &certs, None, &opts).unwrap();
                for chunk in data.chunks(4000) {
                    e.write_all(chunk).unwrap();
                }
                let streamed = e.finish().unwrap();
                for (what, ct) in [
                    ("one-shot", &one),
                    ("signed", &signed),
                    ("streamed", &streamed),
                ] {
                    let bin = dearmor(ct, &limits).unwrap_or_else(|| ct.clone());
                    assert!(
                        crate::seipd::split_v1(&bin).is_some(),
                        "{what} {n}: PKESK + SEIPD v1"
                    );
                    let d = sequoia_decrypt(ct, &k, &[me.cert().clone()]).unwrap();
                    assert_eq!(&d.plaintext[..], &data[..], "{what} {n} {armor}");
                    assert!(!d.aead);
                    assert_eq!(d.verification.is_valid(), what == "signed", "{what}");
                    let ours = decrypt(ct, std::slice::from_ref(&k), &[me.cert().clone()], &limits)
                        .unwrap();
                    assert_eq!(&ours.plaintext[..], &data[..], "{what} {n} {armor}");
                    assert_eq!(ours.verification.is_valid(), what == "signed", "{what}");
                }
            }
            // Sequoia writes SEIPD v1 (unsigned and signed); our reader takes it.
            for sign in [false, true] {
                let mut ct = Vec::new();
                {
                    let vc = c.as_sequoia().with_policy(&POLICY, None).unwrap();
                    let rs: Vec<_> = vc
                        .keys()
                        .for_transport_encryption()
                        .map(|ka| {
                            // Features given as the gpg key's: SEIPD v1 only (with `None`
                            // Sequoia assumes its own, and writes SEIPD v2).
                            let f = openpgp::types::Features::empty().set_seipdv1();
                            Recipient::new(f, ka.key().key_handle(), ka.key())
                        })
                        .collect();
                    let m = Message::new(&mut ct);
                    let mut m = SqEncryptor::for_recipients(m, rs).build().unwrap();
                    if sign {
                        m = Signer::new(m, me.signing_keypair().unwrap())
                            .unwrap()
                            .build()
                            .unwrap();
                    }
                    let mut m = LiteralWriter::new(m).build().unwrap();
                    m.write_all(&data).unwrap();
                    m.finalize().unwrap();
                }
                let v1 = crate::seipd::split_v1(&ct)
                    .unwrap_or_else(|| panic!("{n} {sign} {:02x?}", &ct[..40.min(ct.len())]));
                let d = decrypt_v1(&v1, std::slice::from_ref(&k), &[me.cert().clone()], &limits)
                    .expect("AES: ours, not handed to Sequoia")
                    .unwrap();
                assert_eq!(&d.plaintext[..], &data[..], "sequoia-made {n} {sign}");
                assert_eq!(d.verification.is_valid(), sign);
            }
        }
    }

    #[test]
    fn our_seipd_v1_tampered_or_truncated_is_refused_coarsely() {
        let limits = Limits::default();
        let (k, c) = (secret("rsa"), cert("rsa"));
        let data = vec![b'y'; 200_000];
        let opts = EncryptOptions {
            armor: false,
            compression: false,
        };
        let ct = encrypt(&data, std::slice::from_ref(&c), None, &opts).unwrap();
        let n = ct.len();
        // A flipped bit in the data, in the last data block, in the MDC digest: a bad MDC for
        // both readers, and the same coarse error from ours.
        for at in [n / 2, n - 30, n - 5] {
            let mut t = ct.clone();
            t[at] ^= 0x40;
            let r = decrypt(&t, std::slice::from_ref(&k), &[], &limits);
            assert!(matches!(r, Err(Error::DecryptionFailed)), "{at}: {r:?}");
            assert!(sequoia_decrypt(&t, &k, &[]).is_err(), "{at}");
        }
        // The MDC packet header garbled: no MDC where it must be.
        let mut t = ct.clone();
        t[n - 22] ^= 0x01;
        let r = decrypt(&t, std::slice::from_ref(&k), &[], &limits);
        assert!(
            matches!(
                r,
                Err(Error::MissingIntegrityProtection | Error::DecryptionFailed)
            ),
            "{r:?}"
        );
        // Truncated: the packet runs past the end (never plaintext), and a SEIPD whose length
        // was rewritten to drop the MDC packet.
        for cut in [1, 22, 1000] {
            let r = decrypt(&ct[..n - cut], std::slice::from_ref(&k), &[], &limits);
            assert!(r.is_err(), "cut {cut}: {r:?}");
        }
        let v1 = crate::seipd::split_v1(&ct).unwrap();
        let seipd_at = n - v1.ciphertext.len() - 1 - 5 - 1; // CTB, five-octet length, version
        assert_eq!(ct[seipd_at], 0xC0 | 18);
        let mut short = ct[..n - 22].to_vec();
        let len = u32::from_be_bytes(short[seipd_at + 2..seipd_at + 6].try_into().unwrap()) - 22;
        short[seipd_at + 2..seipd_at + 6].copy_from_slice(&len.to_be_bytes());
        let r = decrypt(&short, std::slice::from_ref(&k), &[], &limits);
        assert!(matches!(r, Err(Error::MissingIntegrityProtection)), "{r:?}");
        // The wrong key: it is addressed to RSA only.
        let r = decrypt(&ct, &[secret("ed")], &[], &limits);
        assert!(matches!(r, Err(Error::NoMatchingKey)), "{r:?}");
    }

    #[test]
    fn streaming_encryptor() {
        use crate::encrypt::Encryptor;
        use std::io::Write;
        let k = SecretKey::generate("S <s@example.org>", KeyKind::Cv25519).unwrap();
        let certs = [k.cert().clone()];
        let mut e =
            Encryptor::new(Vec::new(), &certs, Some(&k), &EncryptOptions::default()).unwrap();
        let mut expected = Vec::new();
        for i in 0..300u32 {
            let chunk = format!("line {i}\r\n").repeat(50);
            e.write_all(chunk.as_bytes()).unwrap();
            expected.extend_from_slice(chunk.as_bytes());
        }
        let out = e.finish().unwrap();
        assert!(out.starts_with(b"-----BEGIN PGP MESSAGE-----"));
        assert!(out.ends_with(b"-----END PGP MESSAGE-----\n"));
        let d = decrypt(&out, std::slice::from_ref(&k), &certs, &Limits::default()).unwrap();
        assert_eq!(&d.plaintext[..], &expected[..]);
        assert!(d.verification.is_valid());
        let dbg = format!("{d:?}");
        assert!(
            dbg.contains("plaintext_len") && !dbg.contains("line 1"),
            "{dbg}"
        );
    }
}
