//! PKCS#12 (RFC 7292): a small reader (private keys and certificates out of a PFX file, used by
//! [`crate::Identity::from_pkcs12`]) and the writer [`export`].
//!
//! Our own, on `der` derive, rather than the `pkcs12` crate: its pre-release pins a `cms`
//! version that cannot coexist with ours, and a `[patch]` would not reach crates.io users of
//! Sealgate (see CRATE-NOTES). Only password integrity and privacy mode are read (RFC 7292 §4:
//! MAC with HMAC over the PKCS#12 KDF, or PBMAC1 per RFC 9579; bags in `data` or
//! `encryptedData`); public-key modes (signedData, envelopedData) are refused as unsupported.

use std::borrow::Cow;

use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, ContextSpecific, OctetStringRef, UintRef};
use der::{Decode, Reader, Sequence, SliceReader, Tag, TagNumber, Tagged};
use secrecy::{ExposeSecret, SecretString};
use spki::AlgorithmIdentifierRef;
use zeroize::Zeroizing;

use crate::alg::DigestAlgorithm;
use crate::ber;
use crate::error::{Error, Result};
use crate::keyfile::to_der_secret;
use crate::keys::{Certificate, PrivateKey};
use crate::pbe::{self, Password};
use sealgate_mime::Limits;

mod export;
pub use export::{DEFAULT_ITERATIONS, Pkcs12Format, export, export_with_iterations};

const fn oid(s: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(s)
}

const ID_DATA: ObjectIdentifier = oid("1.2.840.113549.1.7.1");
const ID_ENCRYPTED_DATA: ObjectIdentifier = oid("1.2.840.113549.1.7.6");
// RFC 7292 §4.2: bag types.
const KEY_BAG: ObjectIdentifier = oid("1.2.840.113549.1.12.10.1.1");
const SHROUDED_KEY_BAG: ObjectIdentifier = oid("1.2.840.113549.1.12.10.1.2");
const CERT_BAG: ObjectIdentifier = oid("1.2.840.113549.1.12.10.1.3");
const SAFE_CONTENTS_BAG: ObjectIdentifier = oid("1.2.840.113549.1.12.10.1.6");
// RFC 7292 §4.2.3: certTypes.
const X509_CERTIFICATE: ObjectIdentifier = oid("1.2.840.113549.1.9.22.1");

/// How deep safeContentsBags may nest inside each other.
const MAX_BAG_NESTING: usize = 4;

/// What a PFX holds that we use: its private keys and certificates, in file order.
pub(crate) struct Contents {
    pub(crate) keys: Vec<PrivateKey>,
    pub(crate) certs: Vec<Certificate>,
}

/// PFX (RFC 7292 §4).
#[derive(Sequence)]
struct Pfx<'a> {
    version: UintRef<'a>,
    auth_safe: ContentInfo<'a>,
    mac_data: Option<MacData<'a>>,
}

/// ContentInfo (RFC 5652 §3), content left undecoded.
#[derive(Sequence)]
struct ContentInfo<'a> {
    content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    content: Option<AnyRef<'a>>,
}

/// MacData (RFC 7292 §4): `iterations` defaults to 1.
#[derive(Sequence)]
struct MacData<'a> {
    mac: DigestInfo<'a>,
    mac_salt: &'a OctetStringRef,
    iterations: Option<UintRef<'a>>,
}

/// DigestInfo (RFC 8017 §9.2).
#[derive(Sequence)]
struct DigestInfo<'a> {
    algorithm: AlgorithmIdentifierRef<'a>,
    digest: &'a OctetStringRef,
}

/// PBMAC1-params (RFC 8018 §A.5).
#[derive(Sequence)]
struct Pbmac1Params<'a> {
    key_derivation_func: AlgorithmIdentifierRef<'a>,
    message_auth_scheme: AlgorithmIdentifierRef<'a>,
}

/// Read a PFX: verify its MAC, then collect keys and certificates from every bag.
pub(crate) fn parse(data: &[u8], password: &SecretString, limits: &Limits) -> Result<Contents> {
    if data.len() > limits.max_cms_bytes {
        return Err(Error::LimitExceeded {
            what: "PKCS#12 size",
            limit: limits.max_cms_bytes as u64,
        });
    }
    let der = ber::to_der(data, limits)?;
    let pfx = Pfx::from_der(&der).map_err(|e| Error::malformed("PKCS#12", e))?;
    if pfx.version.as_bytes() != [3] {
        return Err(Error::malformed("PKCS#12", "version is not 3"));
    }
    if pfx.auth_safe.content_type != ID_DATA {
        return Err(Error::UnsupportedAlgorithm {
            what: "PKCS#12 integrity mode (only password integrity is read)",
            oid: pfx.auth_safe.content_type.to_string(),
        });
    }
    let auth_safe = octets(
        pfx.auth_safe
            .content
            .ok_or_else(|| Error::malformed("PKCS#12", "authSafe without content"))?,
    )?;
    let candidates = Password::candidates(password.expose_secret());
    match &pfx.mac_data {
        Some(mac) => {
            // The MAC is checked before anything is decrypted (RFC 7292 §5.1), and it tells
            // which of the password encodings the writer used.
            let mut chosen = None;
            for pw in candidates {
                if verify_mac(mac, &auth_safe, pw, limits)? {
                    chosen = Some(pw);
                    break;
                }
            }
            let pw = chosen.ok_or(Error::BadPassword)?;
            read_auth_safe(&auth_safe, pw, limits)
        }
        None => {
            // No integrity check: the decryption padding is the only password test.
            let mut last = Error::BadPassword;
            for pw in candidates {
                match read_auth_safe(&auth_safe, pw, limits) {
                    Err(Error::BadPassword) => last = Error::BadPassword,
                    other => return other,
                }
            }
            Err(last)
        }
    }
}

/// Check the PFX MAC (RFC 7292 §5.1 and Appendix B.4; or PBMAC1, RFC 9579 §4). `Ok(false)` for
/// a wrong password.
fn verify_mac(
    mac: &MacData<'_>,
    auth_safe: &[u8],
    pw: Password<'_>,
    limits: &Limits,
) -> Result<bool> {
    let alg = &mac.mac.algorithm;
    let (hmac_alg, key) = if alg.oid == pbe::PBMAC1 {
        // RFC 9579 §4: macSalt and iterations are ignored; PBKDF2's parameters rule, and
        // keyLength must be present.
        let params: Pbmac1Params<'_> = alg
            .parameters
            .ok_or_else(|| Error::malformed("PKCS#12 MAC", "PBMAC1 without parameters"))?
            .decode_as()?;
        let hmac_alg = pbe::hmac_for_oid(&params.message_auth_scheme.oid)?;
        let key_len = pbe::pbkdf2_key_length(&params.key_derivation_func)?
            .ok_or_else(|| Error::malformed("PKCS#12 MAC", "PBMAC1 without keyLength"))?;
        if !(1..=64).contains(&key_len) {
            return Err(Error::malformed(
                "PKCS#12 MAC",
                "PBMAC1 keyLength out of range",
            ));
        }
        let key = pbe::pbkdf2_derive(&params.key_derivation_func, pw, key_len, limits)?;
        (hmac_alg, key)
    } else {
        let digest = DigestAlgorithm::from_oid(&alg.oid)?;
        let one = UintRef::new(&[1])?;
        let iterations = pbe::check_iterations(mac.iterations.as_ref().unwrap_or(&one), limits)?;
        // Appendix B.4: the MAC key is as long as the hash output, ID 3.
        let key = pbe::pkcs12_kdf(
            digest,
            &pw.bmp(),
            mac.mac_salt.as_bytes(),
            3,
            iterations,
            digest.output_len(),
        );
        (pbe::hmac_for_digest(digest), key)
    };
    let key = aws_lc_rs::hmac::Key::new(hmac_alg, &key);
    Ok(aws_lc_rs::hmac::verify(&key, auth_safe, mac.mac.digest.as_bytes()).is_ok())
}

/// AuthenticatedSafe ::= SEQUENCE OF ContentInfo (RFC 7292 §4.1).
fn read_auth_safe(auth_safe: &[u8], pw: Password<'_>, limits: &Limits) -> Result<Contents> {
    let mut out = Contents {
        keys: Vec::new(),
        certs: Vec::new(),
    };
    let der = ber::to_der(auth_safe, limits)?;
    let mut reader = SliceReader::new(&der)?;
    reader.sequence(|r| {
        while !r.is_finished() {
            let ci = ContentInfo::decode(r)?;
            let content = ci
                .content
                .ok_or_else(|| Error::malformed("PKCS#12", "ContentInfo without content"))?;
            match ci.content_type {
                ID_DATA => read_safe_contents(&octets(content)?, pw, limits, &mut out, 0)?,
                ID_ENCRYPTED_DATA => {
                    let plain = decrypt_encrypted_data(content, pw, limits)?;
                    read_safe_contents(&plain, pw, limits, &mut out, 0)
                        // Padding can come out right by chance under a wrong key (1 in 256);
                        // garbage after it is still a wrong password, not a malformed file.
                        .map_err(|e| match e {
                            Error::Malformed { .. } => Error::BadPassword,
                            e => e,
                        })?;
                }
                other => {
                    return Err(Error::UnsupportedAlgorithm {
                        what: "PKCS#12 safe (only data and encryptedData are read)",
                        oid: other.to_string(),
                    });
                }
            }
        }
        Ok::<_, Error>(())
    })?;
    reader.finish()?;
    Ok(out)
}

/// EncryptedData (RFC 5652 §8) holding encrypted SafeContents.
fn decrypt_encrypted_data(
    content: AnyRef<'_>,
    pw: Password<'_>,
    limits: &Limits,
) -> Result<Zeroizing<Vec<u8>>> {
    content.sequence(|r| {
        let _version = UintRef::decode(r)?;
        // EncryptedContentInfo ::= SEQUENCE { contentType, contentEncryptionAlgorithm,
        //   encryptedContent [0] IMPLICIT OCTET STRING OPTIONAL }
        let (alg, ciphertext) = r.sequence(|r| {
            let _content_type: ObjectIdentifier = r.decode()?;
            let alg = AlgorithmIdentifierRef::decode(r)?;
            let encrypted = AnyRef::decode(r)?;
            Ok::<_, Error>((alg, implicit_octets(encrypted, 0)?))
        })?;
        // unprotectedAttrs [1] are of no interest.
        while !r.is_finished() {
            let _ = AnyRef::decode(r)?;
        }
        let plain = pbe::decrypt(&alg, &ciphertext, pw, limits)?;
        to_der_secret(&plain, limits)
    })
}

/// SafeContents ::= SEQUENCE OF SafeBag (RFC 7292 §4.2).
fn read_safe_contents(
    bytes: &[u8],
    pw: Password<'_>,
    limits: &Limits,
    out: &mut Contents,
    depth: usize,
) -> Result<()> {
    if depth > MAX_BAG_NESTING {
        return Err(Error::LimitExceeded {
            what: "PKCS#12 bag nesting",
            limit: MAX_BAG_NESTING as u64,
        });
    }
    // SafeContents may hold plain keyBags.
    let der = to_der_secret(bytes, limits)?;
    let mut reader = SliceReader::new(&der)?;
    reader.sequence(|r| {
        while !r.is_finished() {
            // SafeBag ::= SEQUENCE { bagId, bagValue [0] EXPLICIT, bagAttributes SET OPTIONAL }
            r.sequence(|bag| {
                let bag_id: ObjectIdentifier = bag.decode()?;
                let value = ContextSpecific::<AnyRef<'_>>::decode_explicit(bag, TagNumber(0))?
                    .map(|f| f.value)
                    .ok_or_else(|| Error::malformed("PKCS#12", "SafeBag without value"))?;
                // Attributes (friendlyName, localKeyId) are not needed: keys are paired with
                // certificates by public key.
                while !bag.is_finished() {
                    let _ = AnyRef::decode(bag)?;
                }
                read_bag(bag_id, value, pw, limits, out, depth)
            })?;
        }
        Ok::<_, Error>(())
    })?;
    reader.finish()?;
    Ok(())
}

fn read_bag(
    bag_id: ObjectIdentifier,
    value: AnyRef<'_>,
    pw: Password<'_>,
    limits: &Limits,
    out: &mut Contents,
    depth: usize,
) -> Result<()> {
    let max_keys = limits.max_certificates;
    match bag_id {
        KEY_BAG | SHROUDED_KEY_BAG => {
            if out.keys.len() >= max_keys {
                return Err(Error::LimitExceeded {
                    what: "PKCS#12 keys",
                    limit: max_keys as u64,
                });
            }
            let der = der::Encode::to_der(&value)?;
            let der = Zeroizing::new(der);
            let key = if bag_id == KEY_BAG {
                PrivateKey::from_pkcs8_der(&der, limits)?
            } else {
                crate::keyfile::decrypt_pkcs8(&der, pw, limits)?
            };
            out.keys.push(key);
        }
        CERT_BAG => {
            // CertBag ::= SEQUENCE { certId, certValue [0] EXPLICIT }; x509Certificate is an
            // OCTET STRING holding the DER certificate. sdsiCertificate is skipped.
            let cert = value.sequence(|r| {
                let cert_id: ObjectIdentifier = r.decode()?;
                let cert_value = ContextSpecific::<AnyRef<'_>>::decode_explicit(r, TagNumber(0))?
                    .map(|f| f.value)
                    .ok_or_else(|| Error::malformed("PKCS#12", "CertBag without value"))?;
                if cert_id != X509_CERTIFICATE {
                    return Ok(None);
                }
                let der = octets(cert_value)?;
                let der = ber::to_der(&der, limits)?;
                Certificate::from_der(&der).map(Some)
            })?;
            if let Some(cert) = cert {
                if out.certs.len() >= limits.max_certificates {
                    return Err(Error::LimitExceeded {
                        what: "certificates",
                        limit: limits.max_certificates as u64,
                    });
                }
                out.certs.push(cert);
            }
        }
        SAFE_CONTENTS_BAG => {
            let der = der::Encode::to_der(&value)?;
            read_safe_contents(&der, pw, limits, out, depth + 1)?;
        }
        // crlBag, secretBag and unknown bags are of no use to us (RFC 7292 §4.2 allows them).
        _ => {}
    }
    Ok(())
}

/// The value of an OCTET STRING. (A BER constructed OCTET STRING has been made primitive by
/// [`ber::to_der`] before we get here.)
fn octets(any: AnyRef<'_>) -> Result<Cow<'_, [u8]>> {
    match any.tag() {
        Tag::OctetString => Ok(Cow::Borrowed(any.value())),
        t => Err(Error::malformed(
            "PKCS#12",
            format!("expected OCTET STRING, found {t}"),
        )),
    }
}

/// The value of an `[n] IMPLICIT OCTET STRING`. Under implicit tagging a BER-to-DER pass cannot
/// know the type, so the constructed form (segments of primitive OCTET STRINGs, X.690 §8.7.3,
/// as Windows writes encryptedContent) is joined here.
fn implicit_octets(any: AnyRef<'_>, n: u32) -> Result<Cow<'_, [u8]>> {
    match any.tag() {
        Tag::ContextSpecific {
            constructed: false,
            number,
        } if number == TagNumber(n) => Ok(Cow::Borrowed(any.value())),
        Tag::ContextSpecific {
            constructed: true,
            number,
        } if number == TagNumber(n) => {
            let mut out = Vec::with_capacity(any.value().len());
            let mut r = SliceReader::new(any.value())?;
            while !r.is_finished() {
                out.extend_from_slice(<&OctetStringRef>::decode(&mut r)?.as_bytes());
            }
            Ok(Cow::Owned(out))
        }
        t => Err(Error::malformed(
            "PKCS#12",
            format!("expected [{n}] OCTET STRING, found {t}"),
        )),
    }
}
