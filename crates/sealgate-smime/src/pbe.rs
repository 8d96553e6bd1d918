//! Password-based encryption for key files: everything below is read; two schemes are also
//! written (PKCS#12 export, [`encrypt`]).
//!
//! - PBES2 (RFC 8018 §6.2) with PBKDF2 (§5.2; PRF hmacWithSHA1/256/384/512) and AES-128/192/256-CBC
//!   or DES-EDE3-CBC: OpenSSL 3's default for encrypted PKCS#8 and PKCS#12.
//! - The PKCS#12 PBE schemes (RFC 7292 Appendix C) on the PKCS#12 key derivation function
//!   (Appendix B.2): pbeWithSHAAnd3-KeyTripleDES-CBC, 2-KeyTripleDES, 128- and 40-bit RC2-CBC,
//!   as written by OpenSSL `-legacy`, Windows and Java. The same KDF keys the PFX MAC.
//!
//! PBKDF2, HMAC, SHA and AES come from aws-lc-rs; DES-EDE and RC2 from the RustCrypto `des` and
//! `rc2` crates (3DES is also written, for the legacy PKCS#12 export gpgsm needs). Every iteration count is checked against
//! [`Limits::max_kdf_iterations`] before any key is derived, so a hostile file cannot make us
//! spin. Any decryption failure is [`Error::BadPassword`], whatever its cause.

use std::num::NonZeroU32;

use aws_lc_rs::{cipher as lc_cipher, digest, hmac, pbkdf2};
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyIvInit, block_padding::Pkcs7};
use const_oid::ObjectIdentifier;
use der::Sequence;
use der::asn1::{OctetString, OctetStringRef, UintRef};
use rand_core::CryptoRngCore;
use spki::{AlgorithmIdentifierOwned, AlgorithmIdentifierRef};
use zeroize::Zeroizing;

use crate::alg::DigestAlgorithm;
use crate::error::{Error, Result};
use sealgate_mime::Limits;

const fn oid(s: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(s)
}

/// id-PBES2 (RFC 8018 §A.4).
pub(crate) const PBES2: ObjectIdentifier = oid("1.2.840.113549.1.5.13");
/// id-PBKDF2 (RFC 8018 §A.2).
pub(crate) const PBKDF2: ObjectIdentifier = oid("1.2.840.113549.1.5.12");
/// id-PBMAC1 (RFC 8018 §A.5, used for PKCS#12 by RFC 9579).
pub(crate) const PBMAC1: ObjectIdentifier = oid("1.2.840.113549.1.5.14");
const HMAC_WITH_SHA1: ObjectIdentifier = oid("1.2.840.113549.2.7");
const HMAC_WITH_SHA256: ObjectIdentifier = oid("1.2.840.113549.2.9");
const HMAC_WITH_SHA384: ObjectIdentifier = oid("1.2.840.113549.2.10");
const HMAC_WITH_SHA512: ObjectIdentifier = oid("1.2.840.113549.2.11");
const AES128_CBC: ObjectIdentifier = oid("2.16.840.1.101.3.4.1.2");
const AES192_CBC: ObjectIdentifier = oid("2.16.840.1.101.3.4.1.22");
const AES256_CBC: ObjectIdentifier = oid("2.16.840.1.101.3.4.1.42");
const DES_EDE3_CBC: ObjectIdentifier = oid("1.2.840.113549.3.7");
/// RFC 7292 Appendix C: pkcs-12PbeIds.
const PBE_SHA1_RC2_128: ObjectIdentifier = oid("1.2.840.113549.1.12.1.5");
const PBE_SHA1_RC2_40: ObjectIdentifier = oid("1.2.840.113549.1.12.1.6");
const PBE_SHA1_3DES: ObjectIdentifier = oid("1.2.840.113549.1.12.1.3");
const PBE_SHA1_2DES: ObjectIdentifier = oid("1.2.840.113549.1.12.1.4");

/// The password a key file is opened with.
///
/// Two encodings exist: PBKDF2 takes the UTF-8 bytes; the PKCS#12 KDF takes a BMPString with a
/// two-byte zero terminator (RFC 7292 Appendix B.1). Writers got the second wrong in two ways
/// that OpenSSL still accepts, so we try them as well (see [`Password::candidates`]).
#[derive(Clone, Copy)]
pub(crate) struct Password<'a> {
    text: &'a str,
    bmp: BmpEncoding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BmpEncoding {
    /// UTF-16BE of the text plus a zero code unit: the standard.
    Utf16,
    /// OpenSSL's absent (`NULL`) password: no bytes at all, not even the terminator.
    Absent,
    /// Each UTF-8 byte taken as one code unit (OpenSSL before 1.1.0 did this with non-ASCII
    /// passwords; OpenSSL 3 retries it when the MAC check fails).
    BytesAsUnits,
}

impl std::fmt::Debug for Password<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl<'a> Password<'a> {
    /// A password given as text (possibly empty).
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            bmp: BmpEncoding::Utf16,
        }
    }

    /// The encodings to try for a PKCS#12 file, standard first: an empty password also as
    /// absent (OpenSSL's `PKCS12_parse` tries both, since writers disagree), a non-ASCII one
    /// also in the pre-1.1.0 OpenSSL byte encoding (as `PKCS12_verify_mac` callers do).
    pub(crate) fn candidates(text: &'a str) -> Vec<Password<'a>> {
        let mut out = vec![Self::new(text)];
        if text.is_empty() {
            out.push(Self {
                text,
                bmp: BmpEncoding::Absent,
            });
        }
        if !text.is_ascii() {
            out.push(Self {
                text,
                bmp: BmpEncoding::BytesAsUnits,
            });
        }
        out
    }

    fn utf8(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// The password as input to the PKCS#12 KDF (RFC 7292 Appendix B.1).
    pub(crate) fn bmp(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(2 * self.text.len() + 2));
        match self.bmp {
            BmpEncoding::Absent => {}
            BmpEncoding::Utf16 => {
                for unit in self.text.encode_utf16().chain([0]) {
                    out.extend_from_slice(&unit.to_be_bytes());
                }
            }
            BmpEncoding::BytesAsUnits => {
                for b in self.text.bytes().chain([0]) {
                    out.extend_from_slice(&[0, b]);
                }
            }
        }
        out
    }
}

/// Check an iteration count from a file against the limit, before any work is done.
pub(crate) fn check_iterations(count: &UintRef<'_>, limits: &Limits) -> Result<NonZeroU32> {
    let bytes = count.as_bytes();
    let exceeded = || Error::LimitExceeded {
        what: "KDF iterations",
        limit: u64::from(limits.max_kdf_iterations),
    };
    if bytes.len() > 4 {
        return Err(exceeded());
    }
    let value = bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    if value > limits.max_kdf_iterations {
        return Err(exceeded());
    }
    NonZeroU32::new(value).ok_or_else(|| Error::malformed("key file", "iteration count 0"))
}

/// Decrypt `ciphertext` encrypted under `alg` (an EncryptedPrivateKeyInfo's or a PKCS#12
/// EncryptedContentInfo's algorithm) with `password`.
pub(crate) fn decrypt(
    alg: &AlgorithmIdentifierRef<'_>,
    ciphertext: &[u8],
    password: Password<'_>,
    limits: &Limits,
) -> Result<Zeroizing<Vec<u8>>> {
    let params = alg
        .parameters
        .ok_or_else(|| Error::malformed("password-based encryption", "missing parameters"))?;
    match alg.oid {
        PBES2 => {
            let params: Pbes2Params<'_> = params.decode_as()?;
            let cipher = BlockCipher::from_pbes2(&params.encryption_scheme)?;
            let iv = params
                .encryption_scheme
                .parameters
                .ok_or_else(|| Error::malformed("PBES2", "missing IV"))?
                .decode_as::<&OctetStringRef>()?;
            let key = pbkdf2_derive(
                &params.key_derivation_func,
                password,
                cipher.key_len(),
                limits,
            )?;
            cipher.decrypt(&key, iv.as_bytes(), ciphertext)
        }
        PBE_SHA1_3DES | PBE_SHA1_2DES | PBE_SHA1_RC2_128 | PBE_SHA1_RC2_40 => {
            let cipher = match alg.oid {
                PBE_SHA1_3DES => BlockCipher::DesEde3,
                PBE_SHA1_2DES => BlockCipher::DesEde2,
                PBE_SHA1_RC2_128 => BlockCipher::Rc2 { key_len: 16 },
                _ => BlockCipher::Rc2 { key_len: 5 },
            };
            let params: Pkcs12PbeParams<'_> = params.decode_as()?;
            let iterations = check_iterations(&params.iterations, limits)?;
            let salt = params.salt.as_bytes();
            let pw = password.bmp();
            let sha1 = DigestAlgorithm::Sha1;
            // RFC 7292 Appendix B.3: ID 1 derives the key, ID 2 the IV.
            let key = pkcs12_kdf(sha1, &pw, salt, 1, iterations, cipher.key_len());
            let iv = pkcs12_kdf(sha1, &pw, salt, 2, iterations, cipher.block_len());
            cipher.decrypt(&key, &iv, ciphertext)
        }
        other => Err(Error::UnsupportedAlgorithm {
            what: "key file encryption",
            oid: other.to_string(),
        }),
    }
}

/// PBES2-params (RFC 8018 §A.4).
#[derive(Sequence)]
struct Pbes2Params<'a> {
    key_derivation_func: AlgorithmIdentifierRef<'a>,
    encryption_scheme: AlgorithmIdentifierRef<'a>,
}

/// PBKDF2-params (RFC 8018 §A.2). `salt` may only be `specified` (otherSource is reserved).
#[derive(Sequence)]
struct Pbkdf2Params<'a> {
    salt: &'a OctetStringRef,
    iteration_count: UintRef<'a>,
    key_length: Option<UintRef<'a>>,
    prf: Option<AlgorithmIdentifierRef<'a>>,
}

/// pkcs-12PbeParams (RFC 7292 Appendix C).
#[derive(Sequence)]
struct Pkcs12PbeParams<'a> {
    salt: &'a OctetStringRef,
    iterations: UintRef<'a>,
}

/// PBKDF2 (RFC 8018 §5.2) as described by a keyDerivationFunc AlgorithmIdentifier.
/// `key_len` is what the caller needs; a keyLength in the parameters must agree with it.
pub(crate) fn pbkdf2_derive(
    kdf: &AlgorithmIdentifierRef<'_>,
    password: Password<'_>,
    key_len: usize,
    limits: &Limits,
) -> Result<Zeroizing<Vec<u8>>> {
    let params = pbkdf2_params(kdf)?;
    let iterations = check_iterations(&params.iteration_count, limits)?;
    if uint_usize(params.key_length.as_ref()).is_some_and(|len| len != Some(key_len)) {
        return Err(Error::malformed(
            "PBKDF2",
            "keyLength does not fit the cipher",
        ));
    }
    // RFC 8018 §A.2: the PRF defaults to hmacWithSHA1 when absent.
    let prf = match params.prf.map(|p| p.oid) {
        None | Some(HMAC_WITH_SHA1) => pbkdf2::PBKDF2_HMAC_SHA1,
        Some(HMAC_WITH_SHA256) => pbkdf2::PBKDF2_HMAC_SHA256,
        Some(HMAC_WITH_SHA384) => pbkdf2::PBKDF2_HMAC_SHA384,
        Some(HMAC_WITH_SHA512) => pbkdf2::PBKDF2_HMAC_SHA512,
        Some(other) => {
            return Err(Error::UnsupportedAlgorithm {
                what: "PBKDF2 PRF",
                oid: other.to_string(),
            });
        }
    };
    let mut key = Zeroizing::new(vec![0u8; key_len]);
    // key_len is at most 64 here (our callers ask for a cipher key or an HMAC key), far
    // below the (2^32 - 1) * hLen bound at which `derive` would panic.
    pbkdf2::derive(
        prf,
        iterations,
        params.salt.as_bytes(),
        password.utf8(),
        &mut key,
    );
    Ok(key)
}

fn pbkdf2_params<'a>(kdf: &AlgorithmIdentifierRef<'a>) -> Result<Pbkdf2Params<'a>> {
    if kdf.oid != PBKDF2 {
        return Err(Error::UnsupportedAlgorithm {
            what: "key derivation function",
            oid: kdf.oid.to_string(),
        });
    }
    Ok(kdf
        .parameters
        .ok_or_else(|| Error::malformed("PBKDF2", "missing parameters"))?
        .decode_as()?)
}

/// `Some(value)` of a small INTEGER, `Some(None)` if it does not fit 16 bits, `None` if absent.
fn uint_usize(v: Option<&UintRef<'_>>) -> Option<Option<usize>> {
    v.map(|v| {
        let b = v.as_bytes();
        (b.len() <= 2).then(|| b.iter().fold(0usize, |acc, x| (acc << 8) | usize::from(*x)))
    })
}

/// The keyLength of PBKDF2 parameters, if present (PBMAC1 needs it, RFC 9579 §4).
pub(crate) fn pbkdf2_key_length(kdf: &AlgorithmIdentifierRef<'_>) -> Result<Option<usize>> {
    let params = pbkdf2_params(kdf)?;
    match uint_usize(params.key_length.as_ref()) {
        None => Ok(None),
        Some(Some(n)) => Ok(Some(n)),
        Some(None) => Err(Error::malformed("PBKDF2", "keyLength too large")),
    }
}

/// HMAC algorithm for a PBMAC1 messageAuthScheme (RFC 8018 §B.1).
pub(crate) fn hmac_for_oid(oid: &ObjectIdentifier) -> Result<hmac::Algorithm> {
    Ok(match *oid {
        HMAC_WITH_SHA1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        HMAC_WITH_SHA256 => hmac::HMAC_SHA256,
        HMAC_WITH_SHA384 => hmac::HMAC_SHA384,
        HMAC_WITH_SHA512 => hmac::HMAC_SHA512,
        other => {
            return Err(Error::UnsupportedAlgorithm {
                what: "MAC",
                oid: other.to_string(),
            });
        }
    })
}

/// HMAC algorithm over a digest.
pub(crate) fn hmac_for_digest(d: DigestAlgorithm) -> hmac::Algorithm {
    match d {
        DigestAlgorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        DigestAlgorithm::Sha256 => hmac::HMAC_SHA256,
        DigestAlgorithm::Sha384 => hmac::HMAC_SHA384,
        DigestAlgorithm::Sha512 => hmac::HMAC_SHA512,
    }
}

/// The PKCS#12 key derivation function (RFC 7292 Appendix B.2).
///
/// `password` is already BMP-encoded ([`Password::bmp`]); `id` is 1 (key), 2 (IV) or 3 (MAC
/// key). The iteration count must have been checked by the caller.
pub(crate) fn pkcs12_kdf(
    d: DigestAlgorithm,
    password: &[u8],
    salt: &[u8],
    id: u8,
    iterations: NonZeroU32,
    out_len: usize,
) -> Zeroizing<Vec<u8>> {
    let alg = d.aws();
    let u = alg.output_len();
    let v = alg.block_len();
    // Step 2-4: S and P are the salt and password repeated to a multiple of v bytes.
    let stretch = |src: &[u8]| -> Vec<u8> {
        let len = src.len().div_ceil(v) * v;
        src.iter().copied().cycle().take(len).collect()
    };
    let mut i = Zeroizing::new(stretch(salt));
    i.extend_from_slice(&Zeroizing::new(stretch(password)));
    let diversifier = vec![id; v];
    let mut out = Zeroizing::new(Vec::with_capacity(out_len + u));
    loop {
        // Step 6a: A_i = H^r(D || I).
        let mut ctx = digest::Context::new(alg);
        ctx.update(&diversifier);
        ctx.update(&i);
        let mut a = ctx.finish();
        for _ in 1..iterations.get() {
            a = digest::digest(alg, a.as_ref());
        }
        out.extend_from_slice(a.as_ref());
        if out.len() >= out_len {
            break;
        }
        // Step 6b-c: B = A_i repeated to v bytes; every v-byte block I_j = (I_j + B + 1) mod 2^8v.
        let b: Zeroizing<Vec<u8>> =
            Zeroizing::new(a.as_ref().iter().copied().cycle().take(v).collect());
        for block in i.chunks_mut(v) {
            let mut carry = 1u16;
            for (x, y) in block.iter_mut().rev().zip(b.iter().rev()) {
                let sum = u16::from(*x) + u16::from(*y) + carry;
                *x = sum as u8;
                carry = sum >> 8;
            }
        }
    }
    out.truncate(out_len);
    out
}

/// The block ciphers key files are encrypted with (CBC mode, PKCS#7 padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockCipher {
    Aes128,
    Aes192,
    Aes256,
    DesEde3,
    /// Two-key triple DES (K1, K2, K1).
    DesEde2,
    /// RC2 with an effective key length equal to the key length (RFC 7292 Appendix C).
    Rc2 {
        key_len: usize,
    },
}

impl BlockCipher {
    fn from_pbes2(scheme: &AlgorithmIdentifierRef<'_>) -> Result<Self> {
        Ok(match scheme.oid {
            AES128_CBC => Self::Aes128,
            AES192_CBC => Self::Aes192,
            AES256_CBC => Self::Aes256,
            DES_EDE3_CBC => Self::DesEde3,
            other => {
                return Err(Error::UnsupportedAlgorithm {
                    what: "PBES2 encryption scheme",
                    oid: other.to_string(),
                });
            }
        })
    }

    fn key_len(self) -> usize {
        match self {
            Self::Aes128 | Self::DesEde2 => 16,
            Self::Aes192 | Self::DesEde3 => 24,
            Self::Aes256 => 32,
            Self::Rc2 { key_len } => key_len,
        }
    }

    fn block_len(self) -> usize {
        match self {
            Self::Aes128 | Self::Aes192 | Self::Aes256 => 16,
            Self::DesEde3 | Self::DesEde2 | Self::Rc2 { .. } => 8,
        }
    }

    /// Pad (PKCS#7) and CBC-encrypt. Only the ciphers Sealgate writes are supported.
    fn encrypt(self, key: &[u8], iv: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let fail = |_| Error::Crypto {
            what: "password-based encryption",
        };
        match self {
            Self::Aes256 => {
                let iv: [u8; 16] = iv.try_into().map_err(|_| Error::Crypto {
                    what: "password-based encryption",
                })?;
                let k = lc_cipher::UnboundCipherKey::new(&lc_cipher::AES_256, key).map_err(fail)?;
                let k = lc_cipher::PaddedBlockEncryptingKey::cbc_pkcs7(k).map_err(fail)?;
                let mut buf = plaintext.to_vec();
                k.less_safe_encrypt(&mut buf, lc_cipher::EncryptionContext::Iv128(iv.into()))
                    .map_err(fail)?;
                Ok(buf)
            }
            Self::DesEde3 => Ok(cbc::Encryptor::<des::TdesEde3>::new_from_slices(key, iv)
                .map_err(|_| Error::Crypto {
                    what: "password-based encryption",
                })?
                .encrypt_padded_vec_mut::<Pkcs7>(plaintext)),
            _ => Err(Error::Crypto {
                what: "password-based encryption (cipher not written)",
            }),
        }
    }

    /// CBC-decrypt and unpad. A wrong key shows up as bad padding: reported as
    /// [`Error::BadPassword`] like every other failure here, so nothing distinguishes them.
    fn decrypt(self, key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let block = self.block_len();
        if iv.len() != block {
            return Err(Error::malformed(
                "password-based encryption",
                "IV of wrong length",
            ));
        }
        if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(block) {
            return Err(Error::malformed(
                "password-based encryption",
                "ciphertext is not a whole number of blocks",
            ));
        }
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let bad = |_| Error::BadPassword;
        let n = match self {
            Self::Aes128 | Self::Aes192 | Self::Aes256 => {
                let alg = match self {
                    Self::Aes128 => &lc_cipher::AES_128,
                    Self::Aes192 => &lc_cipher::AES_192,
                    _ => &lc_cipher::AES_256,
                };
                let iv: [u8; 16] = iv.try_into().map_err(|_| Error::BadPassword)?;
                let k = lc_cipher::UnboundCipherKey::new(alg, key).map_err(bad)?;
                let k = lc_cipher::PaddedBlockDecryptingKey::cbc_pkcs7(k).map_err(bad)?;
                let ctx = lc_cipher::DecryptionContext::Iv128(iv.into());
                k.decrypt(&mut buf, ctx).map_err(bad)?.len()
            }
            Self::DesEde3 => cbc::Decryptor::<des::TdesEde3>::new_from_slices(key, iv)
                .map_err(|_| Error::BadPassword)?
                .decrypt_padded_mut::<Pkcs7>(&mut buf)
                .map_err(|_| Error::BadPassword)?
                .len(),
            Self::DesEde2 => cbc::Decryptor::<des::TdesEde2>::new_from_slices(key, iv)
                .map_err(|_| Error::BadPassword)?
                .decrypt_padded_mut::<Pkcs7>(&mut buf)
                .map_err(|_| Error::BadPassword)?
                .len(),
            Self::Rc2 { key_len } => {
                // RFC 7292 Appendix C: effective key bits = key length (40 or 128).
                let rc2 = rc2::Rc2::new_with_eff_key_len(key, key_len * 8);
                cbc::Decryptor::<rc2::Rc2>::inner_iv_slice_init(rc2, iv)
                    .map_err(|_| Error::BadPassword)?
                    .decrypt_padded_mut::<Pkcs7>(&mut buf)
                    .map_err(|_| Error::BadPassword)?
                    .len()
            }
        };
        buf.truncate(n);
        Ok(buf)
    }
}

/// The password-based encryption schemes Sealgate writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteScheme {
    /// PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC (RFC 8018 §6.2): OpenSSL 3's default.
    Pbes2Aes256,
    /// pbeWithSHAAnd3-KeyTripleDES-CBC on the PKCS#12 KDF (RFC 7292 Appendix C): what older
    /// readers (gpgsm, Windows before 2019, Java 8) take.
    Pkcs12TripleDes,
}

/// PBES2-params and PBKDF2-params as written (RFC 8018 §A.2, §A.4): keyLength is left out,
/// the cipher fixes it, as OpenSSL does.
#[derive(Sequence)]
struct Pbes2ParamsOut {
    key_derivation_func: AlgorithmIdentifierOwned,
    encryption_scheme: AlgorithmIdentifierOwned,
}

#[derive(Sequence)]
struct Pbkdf2ParamsOut {
    salt: OctetString,
    iteration_count: u32,
    prf: AlgorithmIdentifierOwned,
}

#[derive(Sequence)]
struct Pkcs12PbeParamsOut {
    salt: OctetString,
    iterations: u32,
}

/// Encrypt `plaintext` under `password` with `scheme`, fresh salt and IV from `rng`.
/// Returns the AlgorithmIdentifier to write next to the ciphertext.
pub(crate) fn encrypt(
    scheme: WriteScheme,
    plaintext: &[u8],
    password: Password<'_>,
    iterations: NonZeroU32,
    rng: &mut impl CryptoRngCore,
) -> Result<(AlgorithmIdentifierOwned, Vec<u8>)> {
    match scheme {
        WriteScheme::Pbes2Aes256 => {
            let mut salt = [0u8; 16];
            rng.fill_bytes(&mut salt);
            let mut iv = [0u8; 16];
            rng.fill_bytes(&mut iv);
            let mut key = Zeroizing::new([0u8; 32]);
            pbkdf2::derive(
                pbkdf2::PBKDF2_HMAC_SHA256,
                iterations,
                &salt,
                password.utf8(),
                &mut key[..],
            );
            let ciphertext = BlockCipher::Aes256.encrypt(&key[..], &iv, plaintext)?;
            let kdf = AlgorithmIdentifierOwned {
                oid: PBKDF2,
                parameters: Some(der::Any::encode_from(&Pbkdf2ParamsOut {
                    salt: OctetString::new(salt)?,
                    iteration_count: iterations.get(),
                    prf: AlgorithmIdentifierOwned {
                        oid: HMAC_WITH_SHA256,
                        parameters: Some(der::Any::null()),
                    },
                })?),
            };
            let enc = AlgorithmIdentifierOwned {
                oid: AES256_CBC,
                parameters: Some(der::Any::encode_from(&OctetString::new(iv)?)?),
            };
            let params = Pbes2ParamsOut {
                key_derivation_func: kdf,
                encryption_scheme: enc,
            };
            Ok((
                AlgorithmIdentifierOwned {
                    oid: PBES2,
                    parameters: Some(der::Any::encode_from(&params)?),
                },
                ciphertext,
            ))
        }
        WriteScheme::Pkcs12TripleDes => {
            let mut salt = [0u8; 8];
            rng.fill_bytes(&mut salt);
            let cipher = BlockCipher::DesEde3;
            let pw = password.bmp();
            let sha1 = DigestAlgorithm::Sha1;
            // RFC 7292 Appendix B.3: ID 1 derives the key, ID 2 the IV.
            let key = pkcs12_kdf(sha1, &pw, &salt, 1, iterations, cipher.key_len());
            let iv = pkcs12_kdf(sha1, &pw, &salt, 2, iterations, cipher.block_len());
            let ciphertext = cipher.encrypt(&key, &iv, plaintext)?;
            let params = Pkcs12PbeParamsOut {
                salt: OctetString::new(salt)?,
                iterations: iterations.get(),
            };
            Ok((
                AlgorithmIdentifierOwned {
                    oid: PBE_SHA1_3DES,
                    parameters: Some(der::Any::encode_from(&params)?),
                },
                ciphertext,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn bmp_password_has_terminator_and_absent_is_empty() {
        assert_eq!(&Password::new("ab").bmp()[..], &[0, b'a', 0, b'b', 0, 0]);
        assert_eq!(&Password::new("").bmp()[..], &[0, 0]);
        assert_eq!(&Password::new("é€").bmp()[..], &[0, 0xE9, 0x20, 0xAC, 0, 0]);
        assert_eq!(Password::candidates("x").len(), 1);
        let empty = Password::candidates("");
        assert_eq!(empty.len(), 2);
        assert!(empty[1].bmp().is_empty());
        assert_eq!(empty[1].utf8(), b"");
        let accented = Password::candidates("é");
        assert_eq!(accented.len(), 2);
        assert_eq!(&accented[1].bmp()[..], &[0, 0xC3, 0, 0xA9, 0, 0]);
        assert_eq!(accented[1].utf8(), "é".as_bytes());
    }

    /// Known answers computed with OpenSSL's PKCS12_key_gen_uni (the same values appear in
    /// BouncyCastle's PKCS12Test "smeg"/"queeg" vectors).
    #[test]
    fn pkcs12_kdf_known_answers() {
        let pw = Password::new("smeg").bmp();
        let salt = hex("0A58CF64530D823F");
        let key = pkcs12_kdf(DigestAlgorithm::Sha1, &pw, &salt, 1, nz(1), 24);
        assert_eq!(
            &key[..],
            &hex("8AAAE6297B6CB04642AB5B077851284EB7128F1A2A7FBCA3")[..]
        );
        let iv = pkcs12_kdf(DigestAlgorithm::Sha1, &pw, &salt, 2, nz(1), 8);
        assert_eq!(&iv[..], &hex("79993DFE048D3B76")[..]);
        let pw = Password::new("queeg").bmp();
        let salt = hex("05DEC959ACFF72F7");
        let key = pkcs12_kdf(DigestAlgorithm::Sha1, &pw, &salt, 1, nz(1000), 24);
        assert_eq!(
            &key[..],
            &hex("ED2034E36328830FF09DF1E1A07DD357185DAC0D4F9EB3D4")[..]
        );
        let iv = pkcs12_kdf(DigestAlgorithm::Sha1, &pw, &salt, 2, nz(1000), 8);
        assert_eq!(&iv[..], &hex("11DEDAD7758D4860")[..]);
        let pw = Password::new("smeg").bmp();
        let salt = hex("3D83C0E4546AC140");
        let mac = pkcs12_kdf(DigestAlgorithm::Sha1, &pw, &salt, 3, nz(1), 20);
        assert_eq!(
            &mac[..],
            &hex("8D967D88F6CAA9D714800AB3D48051D63F73A312")[..]
        );
    }

    #[test]
    fn iteration_limit_is_enforced() {
        let mut limits = Limits::default();
        limits.max_kdf_iterations = 1000;
        let ok = UintRef::new(&[0x03, 0xE8]).unwrap();
        assert_eq!(check_iterations(&ok, &limits).unwrap().get(), 1000);
        let over = UintRef::new(&[0x03, 0xE9]).unwrap();
        assert!(matches!(
            check_iterations(&over, &limits),
            Err(Error::LimitExceeded { .. })
        ));
        let huge = UintRef::new(&[1, 0, 0, 0, 0]).unwrap();
        assert!(matches!(
            check_iterations(&huge, &limits),
            Err(Error::LimitExceeded { .. })
        ));
        let zero = UintRef::new(&[0]).unwrap();
        assert!(matches!(
            check_iterations(&zero, &limits),
            Err(Error::Malformed { .. })
        ));
    }
}
