//! KeyAgreeRecipientInfo with ephemeral-static ECDH (RFC 5652 §6.2.2, RFC 5753 §3.1).
//!
//! Written on the `cms` ASN.1 types directly: the `cms` crate's `KeyAgreeRecipientInfoBuilder`
//! wraps the content-encryption key under an all-zero KEK and must never be used.

use aws_lc_rs::key_wrap::{AES_128, AES_256, AesKek, KeyWrap};
use cms::content_info::CmsVersion;
use cms::enveloped_data::{
    KeyAgreeRecipientIdentifier, KeyAgreeRecipientInfo, OriginatorIdentifierOrKey,
    OriginatorPublicKey, RecipientEncryptedKey, RecipientInfo,
};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::asn1::{BitString, OctetString};
use der::{Any, Decode, Encode};
use rand_core::CryptoRngCore;
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use crate::alg::DigestAlgorithm;
use crate::error::{Error, Result};
use crate::keys::{self, Certificate, Curve, PrivateKey};
use crate::tlv::{self, tag};

/// dhSinglePass-stdDH-sha1kdf-scheme (RFC 5753 §7.1.4; OpenSSL's default).
pub(crate) const STD_DH_SHA1KDF: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.133.16.840.63.0.2");
/// dhSinglePass-cofactorDH-sha1kdf-scheme.
const COFACTOR_DH_SHA1KDF: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.133.16.840.63.0.3");
/// dhSinglePass-stdDH-sha256kdf-scheme (RFC 5753 §7.1.4, SEC 1 arc).
pub(crate) const STD_DH_SHA256KDF: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.132.1.11.1");
/// dhSinglePass-stdDH-sha384kdf-scheme.
pub(crate) const STD_DH_SHA384KDF: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.132.1.11.2");
/// dhSinglePass-stdDH-sha512kdf-scheme.
const STD_DH_SHA512KDF: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.1.11.3");
/// dhSinglePass-cofactorDH-sha{256,384,512}kdf-scheme.
const COFACTOR_DH_SHA256KDF: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.1.14.1");
const COFACTOR_DH_SHA384KDF: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.1.14.2");
const COFACTOR_DH_SHA512KDF: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.1.14.3");
/// id-aes128-wrap, id-aes256-wrap (RFC 3565 §2.3.2).
pub(crate) const AES128_WRAP: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.5");
pub(crate) const AES256_WRAP: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.45");
/// id-alg-CMS3DESwrap (RFC 3217 §3): read only (what OpenSSL picks for 3DES content).
const DES3_WRAP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.3.6");
/// id-aes192-wrap: read only (what OpenSSL picks for AES-192 content).
pub(super) const AES192_WRAP: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.25");

/// The KDF digest for a key-agreement algorithm OID. The cofactor variants equal the standard
/// ones on P-256 and P-384, whose cofactor is 1.
fn kdf_digest(oid: &ObjectIdentifier) -> Result<DigestAlgorithm> {
    Ok(match *oid {
        STD_DH_SHA1KDF | COFACTOR_DH_SHA1KDF => DigestAlgorithm::Sha1,
        STD_DH_SHA256KDF | COFACTOR_DH_SHA256KDF => DigestAlgorithm::Sha256,
        STD_DH_SHA384KDF | COFACTOR_DH_SHA384KDF => DigestAlgorithm::Sha384,
        STD_DH_SHA512KDF | COFACTOR_DH_SHA512KDF => DigestAlgorithm::Sha512,
        _ => {
            return Err(Error::UnsupportedAlgorithm {
                what: "key agreement",
                oid: oid.to_string(),
            });
        }
    })
}

/// KEK length in bytes for a key-wrap OID.
fn wrap_key_len(oid: &ObjectIdentifier) -> Result<usize> {
    match *oid {
        AES128_WRAP => Ok(16),
        AES192_WRAP | DES3_WRAP => Ok(24),
        AES256_WRAP => Ok(32),
        _ => Err(Error::UnsupportedAlgorithm {
            what: "key wrap",
            oid: oid.to_string(),
        }),
    }
}

fn kek(wrap: &ObjectIdentifier, kek: &[u8]) -> Result<AesKek> {
    let cipher = if *wrap == AES128_WRAP {
        &AES_128
    } else {
        &AES_256
    };
    AesKek::new(cipher, kek).map_err(|_| Error::Crypto { what: "key wrap" })
}

/// ECC-CMS-SharedInfo (RFC 5753 §7.2): `keyInfo` is the key-wrap AlgorithmIdentifier as it
/// appears in the message, `entityUInfo [0]` the ukm if present, `suppPubInfo [2]` the KEK
/// length in bits as a 32-bit big-endian OCTET STRING.
fn shared_info(key_info_der: &[u8], ukm: Option<&[u8]>, kek_len: usize) -> Vec<u8> {
    let bits = u32::try_from(kek_len * 8).unwrap_or(u32::MAX).to_be_bytes();
    let mut body = Vec::with_capacity(key_info_der.len() + 64);
    body.extend_from_slice(key_info_der);
    if let Some(ukm) = ukm {
        let mut inner = Vec::with_capacity(ukm.len() + 6);
        tlv::push_tlv(&mut inner, tag::OCTET_STRING, ukm);
        tlv::push_tlv(&mut body, tag::CTX0, &inner);
    }
    let mut inner = Vec::with_capacity(6);
    tlv::push_tlv(&mut inner, tag::OCTET_STRING, &bits);
    tlv::push_tlv(&mut body, tag::CTX2, &inner);
    let mut out = Vec::with_capacity(body.len() + 4);
    tlv::push_tlv(&mut out, tag::SEQUENCE, &body);
    out
}

/// ANSI X9.63 KDF (SEC 1 §3.6.1): K = Hash(Z || counter || SharedInfo) for counter = 1, 2, ...
fn x963_kdf(hash: DigestAlgorithm, z: &[u8], shared_info: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + hash.output_len()));
    let mut counter: u32 = 1;
    while out.len() < len {
        let mut ctx = aws_lc_rs::digest::Context::new(hash.aws());
        ctx.update(z);
        ctx.update(&counter.to_be_bytes());
        ctx.update(shared_info);
        out.extend_from_slice(ctx.finish().as_ref());
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

/// Build a KeyAgreeRecipientInfo for `cert` (an EC certificate) carrying `cek`.
pub(super) fn wrap_for(
    cert: &Certificate,
    curve: Curve,
    point: &[u8],
    cek: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<RecipientInfo> {
    // Suite B pairing (RFC 6318 §2.2): P-256 with the SHA-256 KDF, P-384 with SHA-384; the
    // wrap key is as strong as the content key.
    let (kdf_oid, hash) = match curve {
        Curve::P256 => (STD_DH_SHA256KDF, DigestAlgorithm::Sha256),
        Curve::P384 => (STD_DH_SHA384KDF, DigestAlgorithm::Sha384),
    };
    let wrap_oid = if cek.len() <= 16 {
        AES128_WRAP
    } else {
        AES256_WRAP
    };
    let kek_len = wrap_key_len(&wrap_oid)?;

    // The ephemeral scalar comes from the caller's RNG; a draw outside [1, n-1] is rejected by
    // aws-lc-rs and redrawn (probability about 2^-32 for P-256, negligible for P-384).
    let mut scalar = Zeroizing::new(vec![0u8; curve.field_len()]);
    let mut agreed = None;
    for _ in 0..16 {
        rng.fill_bytes(&mut scalar);
        if let Ok(r) = keys::ecdh_ephemeral(curve, &scalar, point) {
            agreed = Some(r);
            break;
        }
    }
    let (eph_public, z) = agreed.ok_or(Error::Crypto { what: "ECDH" })?;

    // RFC 5753 §7.2: keyInfo with absent parameters for the AES wraps.
    let wrap_alg = AlgorithmIdentifierOwned {
        oid: wrap_oid,
        parameters: None,
    };
    let key_info = wrap_alg.to_der()?;
    let si = shared_info(&key_info, None, kek_len);
    let kek_bytes = x963_kdf(hash, &z, &si, kek_len);
    let wrapped = wrap_key(&wrap_oid, &kek_bytes, cek)?;

    Ok(RecipientInfo::Kari(KeyAgreeRecipientInfo {
        version: CmsVersion::V3,
        // As OpenSSL writes it: id-ecPublicKey without parameters (the curve is the
        // recipient's), and the uncompressed ephemeral point.
        originator: OriginatorIdentifierOrKey::OriginatorKey(OriginatorPublicKey {
            algorithm: AlgorithmIdentifierOwned {
                oid: rfc5912::ID_EC_PUBLIC_KEY,
                parameters: None,
            },
            public_key: BitString::from_bytes(&eph_public)?,
        }),
        ukm: None,
        key_enc_alg: AlgorithmIdentifierOwned {
            oid: kdf_oid,
            parameters: Some(Any::from_der(&key_info)?),
        },
        recipient_enc_keys: vec![RecipientEncryptedKey {
            rid: KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(cert.issuer_and_serial()),
            enc_key: OctetString::new(wrapped)?,
        }],
    }))
}

/// True if the originator key of `kari` is on `curve` (absent, NULL or matching parameters).
pub(super) fn originator_fits(kari: &KeyAgreeRecipientInfo, curve: Curve) -> bool {
    let OriginatorIdentifierOrKey::OriginatorKey(ok) = &kari.originator else {
        return false;
    };
    if ok.algorithm.oid != rfc5912::ID_EC_PUBLIC_KEY {
        return false;
    }
    let params_ok = match &ok.algorithm.parameters {
        None => true,
        Some(p) if p.is_null() => true,
        Some(p) => p.decode_as::<ObjectIdentifier>().ok() == Some(curve.oid()),
    };
    params_ok
        && ok
            .public_key
            .as_bytes()
            .is_some_and(|b| b.len() == 1 + 2 * curve.field_len())
}

/// Recover the content-encryption key from one RecipientEncryptedKey of `kari`.
pub(super) fn unwrap(
    kari: &KeyAgreeRecipientInfo,
    rek: &RecipientEncryptedKey,
    key: &PrivateKey,
) -> Result<Zeroizing<Vec<u8>>> {
    let curve = key.curve().ok_or(Error::DecryptionFailed)?;
    if !originator_fits(kari, curve) {
        return Err(Error::DecryptionFailed);
    }
    let OriginatorIdentifierOrKey::OriginatorKey(ok) = &kari.originator else {
        return Err(Error::DecryptionFailed);
    };
    let point = ok.public_key.as_bytes().ok_or(Error::DecryptionFailed)?;
    let hash = kdf_digest(&kari.key_enc_alg.oid)?;
    let wrap_any = kari
        .key_enc_alg
        .parameters
        .as_ref()
        .ok_or_else(|| Error::malformed("KeyAgreeRecipientInfo", "no key-wrap algorithm"))?;
    let wrap_alg: AlgorithmIdentifierOwned = wrap_any.decode_as()?;
    let kek_len = wrap_key_len(&wrap_alg.oid)?;
    // keyInfo is the wrap AlgorithmIdentifier as the sender encoded it (OpenSSL does the same).
    let key_info = wrap_any.to_der()?;
    let ukm = kari.ukm.as_ref().map(|u| u.as_bytes());
    let si = shared_info(&key_info, ukm, kek_len);

    let z = key.ecdh(point)?;
    let kek_bytes = x963_kdf(hash, &z, &si, kek_len);
    unwrap_key(&wrap_alg.oid, &kek_bytes, rek.enc_key.as_bytes())
}

/// RFC 3394 key wrap of `cek` under `kek_bytes` with id-aes128-wrap or id-aes256-wrap (the
/// wraps we write).
pub(super) fn wrap_key(
    wrap_oid: &ObjectIdentifier,
    kek_bytes: &[u8],
    cek: &[u8],
) -> Result<Vec<u8>> {
    if *wrap_oid != AES128_WRAP && *wrap_oid != AES256_WRAP {
        return Err(Error::UnsupportedAlgorithm {
            what: "key wrap",
            oid: wrap_oid.to_string(),
        });
    }
    let mut wrapped = vec![0u8; cek.len() + 8];
    let n = kek(wrap_oid, kek_bytes)?
        .wrap(cek, &mut wrapped)
        .map_err(|_| Error::Crypto { what: "key wrap" })?
        .len();
    wrapped.truncate(n);
    Ok(wrapped)
}

/// Key unwrap with the algorithm `wrap_oid` names (AES-128/192/256 wrap, RFC 3394; 3DES wrap,
/// RFC 3217). Every failure is the one coarse [`Error::DecryptionFailed`] once the KEK is
/// accepted. The Wycheproof vectors reach this through `super::kat::key_unwrap`.
pub(super) fn unwrap_key(
    wrap_oid: &ObjectIdentifier,
    kek_bytes: &[u8],
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if *wrap_oid == AES192_WRAP {
        return unwrap_aes192(kek_bytes, wrapped);
    }
    if *wrap_oid == DES3_WRAP {
        return unwrap_des3(kek_bytes, wrapped);
    }
    let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
    let n = kek(wrap_oid, kek_bytes)?
        .unwrap(wrapped, &mut out)
        .map_err(|_| Error::DecryptionFailed)?
        .len();
    out.truncate(n);
    Ok(out)
}

/// RFC 3394 §2.2.2 key unwrap (index-based form) with AES-192, which aws-lc-rs's `key_wrap`
/// does not offer; built on single-block AES-192 decryption.
fn unwrap_aes192(kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    use aws_lc_rs::cipher::{AES_192, DecryptingKey, DecryptionContext, UnboundCipherKey};
    let fail = |_| Error::DecryptionFailed;
    if wrapped.len() < 24 || !wrapped.len().is_multiple_of(8) {
        return Err(Error::DecryptionFailed);
    }
    let key =
        DecryptingKey::ecb(UnboundCipherKey::new(&AES_192, kek).map_err(fail)?).map_err(fail)?;
    let (a0, rest) = wrapped.split_at(8);
    let mut a = [0u8; 8];
    a.copy_from_slice(a0);
    let mut r = Zeroizing::new(rest.to_vec());
    let n = r.len() / 8;
    let mut b = Zeroizing::new([0u8; 16]);
    for j in (0..6u64).rev() {
        for (idx, ri) in r.chunks_exact_mut(8).enumerate().rev() {
            let t = (n as u64) * j + idx as u64 + 1;
            b[..8].copy_from_slice(&(u64::from_be_bytes(a) ^ t).to_be_bytes());
            b[8..].copy_from_slice(ri);
            key.decrypt(&mut b[..], DecryptionContext::None)
                .map_err(fail)?;
            a.copy_from_slice(&b[..8]);
            ri.copy_from_slice(&b[8..]);
        }
    }
    // The default initial value A6A6A6A6A6A6A6A6 (RFC 3394 §2.2.3.1) is the integrity check.
    aws_lc_rs::constant_time::verify_slices_are_equal(&a, &[0xA6; 8]).map_err(fail)?;
    Ok(r)
}

/// RFC 3217 §3.2 Triple-DES key unwrap, for legacy 3DES content with key agreement.
/// Every failure is the one coarse [`Error::DecryptionFailed`].
fn unwrap_des3(kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::NoPadding};
    const IV: [u8; 8] = [0x4a, 0xdd, 0xa2, 0x2c, 0x79, 0xe8, 0x21, 0x05];
    if wrapped.len() != 40 {
        return Err(Error::DecryptionFailed);
    }
    let decrypt = |iv: &[u8], buf: &mut [u8]| -> Result<()> {
        cbc::Decryptor::<des::TdesEde3>::new_from_slices(kek, iv)
            .map_err(|_| Error::DecryptionFailed)?
            .decrypt_padded_mut::<NoPadding>(buf)
            .map_err(|_| Error::DecryptionFailed)?;
        Ok(())
    };
    // steps 2-4: decrypt under the fixed IV, reverse, split off the real IV
    let mut temp = Zeroizing::new(wrapped.to_vec());
    decrypt(&IV, &mut temp)?;
    temp.reverse();
    let (iv, rest) = temp.split_at(8);
    // steps 5-7: decrypt CEK || ICV and check the CMS key checksum (SHA-1, first 8 octets)
    let mut cek_icv = Zeroizing::new(rest.to_vec());
    decrypt(iv, &mut cek_icv)?;
    let (cek, icv) = cek_icv.split_at(24);
    let sum = DigestAlgorithm::Sha1.digest(cek);
    aws_lc_rs::constant_time::verify_slices_are_equal(&sum[..8], icv)
        .map_err(|_| Error::DecryptionFailed)?;
    Ok(Zeroizing::new(cek.to_vec()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Size and checksum failures; the positive case is the openssl `-des3` interop test
    /// with EC recipients (tests/tests/smime_interop.rs).
    #[test]
    fn des3_unwrap_rejects_bad_sizes_and_checksums() {
        let kek = [7u8; 24];
        assert!(unwrap_des3(&kek, &[0u8; 39]).is_err());
        assert!(matches!(
            unwrap_des3(&kek, &[0u8; 40]),
            Err(Error::DecryptionFailed)
        ));
    }

    /// RFC 5753 / SEC 1 X9.63 KDF test vector from the NIST CAVS "ansx963_2001" set
    /// (SHA-256, Z 32 bytes, SharedInfo 16 bytes, 128-bit key).
    #[test]
    fn x963_kdf_known_answer() {
        let z = hex("96c05619d56c328ab95fe84b18264b08725b85e33fd34f08");
        let out = x963_kdf(DigestAlgorithm::Sha256, &z, &[], 16);
        assert_eq!(&out[..], &hex("443024c3dae66b95e6f5670601558f71")[..]);
    }

    /// RFC 3394 §4.2: wrap 128 bits of key data with a 192-bit KEK.
    #[test]
    fn aes192_unwrap_known_answer() {
        let kek = hex("000102030405060708090A0B0C0D0E0F1011121314151617");
        let wrapped = hex("96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D");
        let key = unwrap_aes192(&kek, &wrapped).unwrap();
        assert_eq!(&key[..], &hex("00112233445566778899AABBCCDDEEFF")[..]);
        let mut bad = wrapped.clone();
        bad[23] ^= 1;
        assert!(matches!(
            unwrap_aes192(&kek, &bad),
            Err(Error::DecryptionFailed)
        ));
        assert!(unwrap_aes192(&kek, &wrapped[..16]).is_err());
    }

    #[test]
    fn shared_info_encoding() {
        let wrap = AlgorithmIdentifierOwned {
            oid: AES256_WRAP,
            parameters: None,
        }
        .to_der()
        .unwrap();
        let si = shared_info(&wrap, None, 32);
        assert_eq!(si, hex("3015300b060960864801650304012da206040400000100"));
    }

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
