//! Private keys at rest: AES-256-GCM under a store key, derived with Argon2id from the store
//! passphrase and a per-store random salt, or given raw (32 bytes, e.g. from a secrets manager).
//!
//! Every sealed blob is `version (1) || nonce (12) || ciphertext || tag (16)`, with the entry it
//! belongs to as additional authenticated data, so a blob moved to another row does not open.
//! A known value sealed at store creation (`key_check`) tells a wrong passphrase from a corrupt
//! entry before any key is used; both give the coarse [`Error::Locked`].

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// Argon2id parameters: OWASP's first recommendation (19 MiB, 2 passes, 1 lane). They are
/// stored with the salt so that a later version can raise them for new stores.
pub(crate) const ARGON2_M_KIB: u32 = 19 * 1024;
pub(crate) const ARGON2_T: u32 = 2;
pub(crate) const ARGON2_P: u32 = 1;
/// Ceilings on parameters read back from a store file (a tampered file must not make us
/// allocate gigabytes).
const MAX_M_KIB: u32 = 1024 * 1024;
const MAX_T: u32 = 64;
const MAX_P: u32 = 16;

const KEY_CHECK: &[u8] = b"sealgate-keystore key check v1";
pub(crate) const KEY_CHECK_AAD: &[u8] = b"meta:key_check";

/// Where the store key comes from.
pub enum StoreSecret {
    /// A passphrase; the key is Argon2id(passphrase, the store's salt).
    Passphrase(SecretString),
    /// A raw 256-bit key (for example from the environment or a secrets manager).
    RawKey(Zeroizing<[u8; 32]>),
}

impl std::fmt::Debug for StoreSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSecret::Passphrase(_) => f.write_str("StoreSecret::Passphrase([redacted])"),
            StoreSecret::RawKey(_) => f.write_str("StoreSecret::RawKey([redacted])"),
        }
    }
}

impl StoreSecret {
    /// A raw key from 64 hex digits (how an environment variable carries it).
    pub fn raw_key_from_hex(hex: &str) -> Result<Self> {
        let hex = hex.trim();
        let mut key = Zeroizing::new([0u8; 32]);
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(Error::Locked);
        }
        for (i, out) in key.iter_mut().enumerate() {
            *out = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| Error::Locked)?;
        }
        Ok(StoreSecret::RawKey(key))
    }
}

/// KDF parameters as kept in the store's metadata: `m_kib, t, p` (u32 BE each) then the salt.
pub(crate) fn encode_kdf(salt: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + salt.len());
    for n in [ARGON2_M_KIB, ARGON2_T, ARGON2_P] {
        v.extend_from_slice(&n.to_be_bytes());
    }
    v.extend_from_slice(salt);
    v
}

/// The store key, ready to seal and open.
pub(crate) struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    /// Derive the store key from `secret` and the stored KDF parameters (`kdf`, see
    /// [`encode_kdf`]; ignored for a raw key).
    pub(crate) fn derive(secret: &StoreSecret, kdf: &[u8]) -> Result<Self> {
        let key: Zeroizing<[u8; 32]> = match secret {
            StoreSecret::RawKey(k) => k.clone(),
            StoreSecret::Passphrase(p) => {
                if kdf.len() < 12 + 16 {
                    return Err(Error::Backend("bad KDF parameters in the store".into()));
                }
                let n = |i: usize| u32::from_be_bytes([kdf[i], kdf[i + 1], kdf[i + 2], kdf[i + 3]]);
                let (m, t, par) = (n(0), n(4), n(8));
                if m > MAX_M_KIB || t > MAX_T || par > MAX_P {
                    return Err(Error::Backend(
                        "KDF parameters in the store out of range".into(),
                    ));
                }
                let params = argon2::Params::new(m, t, par, Some(32))
                    .map_err(|_| Error::Backend("bad KDF parameters in the store".into()))?;
                let argon = argon2::Argon2::new(
                    argon2::Algorithm::Argon2id,
                    argon2::Version::V0x13,
                    params,
                );
                let mut out = Zeroizing::new([0u8; 32]);
                argon
                    .hash_password_into(p.expose_secret().as_bytes(), &kdf[12..], out.as_mut())
                    .map_err(|_| Error::Backend("key derivation failed".into()))?;
                out
            }
        };
        let unbound = UnboundKey::new(&AES_256_GCM, key.as_ref()).map_err(|_| Error::Locked)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Encrypt `plain` for the entry named by `aad`.
    pub(crate) fn seal(&self, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| Error::Backend("no randomness".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plain.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        let mut body = Zeroizing::new(plain.to_vec());
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                body.as_mut_slice(),
            )
            .map_err(|_| Error::Backend("encryption failed".into()))?;
        out.extend_from_slice(&body);
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypt a blob made by [`Sealer::seal`] for the same `aad`. Any failure is
    /// [`Error::Locked`].
    pub(crate) fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != VERSION {
            return Err(Error::Locked);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..1 + NONCE_LEN]);
        let mut buf = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
        let plain_len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                buf.as_mut_slice(),
            )
            .map_err(|_| Error::Locked)?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }

    pub(crate) fn key_check(&self) -> Result<Vec<u8>> {
        self.seal(KEY_CHECK, KEY_CHECK_AAD)
    }

    pub(crate) fn verify_key_check(&self, sealed: &[u8]) -> Result<()> {
        match self.open(sealed, KEY_CHECK_AAD) {
            Ok(p) if p.as_slice() == KEY_CHECK => Ok(()),
            _ => Err(Error::Locked),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kdf() -> Vec<u8> {
        encode_kdf(&[7u8; 16])
    }

    #[test]
    fn seal_open_round_trip_and_binding() {
        let s = Sealer::derive(&StoreSecret::Passphrase("pw".into()), &kdf()).unwrap();
        let blob = s.seal(b"secret key bytes", b"key:abc").unwrap();
        assert!(!blob.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            s.open(&blob, b"key:abc").unwrap().as_slice(),
            b"secret key bytes"
        );
        assert!(matches!(s.open(&blob, b"key:abd"), Err(Error::Locked)));
        let mut bad = blob.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(s.open(&bad, b"key:abc"), Err(Error::Locked)));
    }

    #[test]
    fn wrong_passphrase_fails_key_check() {
        let a = Sealer::derive(&StoreSecret::Passphrase("right".into()), &kdf()).unwrap();
        let b = Sealer::derive(&StoreSecret::Passphrase("wrong".into()), &kdf()).unwrap();
        let check = a.key_check().unwrap();
        a.verify_key_check(&check).unwrap();
        assert!(matches!(b.verify_key_check(&check), Err(Error::Locked)));
    }

    #[test]
    fn raw_key_from_hex() {
        let hex = "00".repeat(31) + "ff";
        let StoreSecret::RawKey(k) = StoreSecret::raw_key_from_hex(&hex).unwrap() else {
            panic!("not raw");
        };
        assert_eq!(k[31], 0xff);
        assert!(StoreSecret::raw_key_from_hex("abc").is_err());
        assert!(StoreSecret::raw_key_from_hex(&"zz".repeat(32)).is_err());
        assert_eq!(
            format!("{:?}", StoreSecret::raw_key_from_hex(&hex).unwrap()),
            "StoreSecret::RawKey([redacted])"
        );
    }
}
