//! The two ZIP encryptions: WinZip AES-256 (AE-1/AE-2) on aws-lc-rs, and the legacy PKWARE
//! "ZipCrypto" stream cipher.

use std::num::NonZeroU32;

use aws_lc_rs::cipher::{AES_128, AES_192, AES_256, EncryptingKey, UnboundCipherKey};
use aws_lc_rs::{hmac, pbkdf2};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// WinZip AES salt length for AES-256 (strength 3).
pub(crate) const AES_SALT_LEN: usize = 16;
/// Password verification value length.
pub(crate) const AES_VERIFIER_LEN: usize = 2;
/// Authentication code length: HMAC-SHA1 truncated to 10 bytes.
pub(crate) const AES_MAC_LEN: usize = 10;
/// PBKDF2-HMAC-SHA1 iterations fixed by the WinZip AES specification.
const AES_PBKDF2_ITERATIONS: u32 = 1000;
/// Keystream computed per AES call: 4096 counter blocks (64 KiB), so that the per-call set-up
/// of the cipher context is paid once per 64 KiB.
const KEYSTREAM_BLOCKS: usize = 4096;

/// WinZip AES-256 in one direction: AES-CTR with a little-endian block counter starting at 1
/// (not the big-endian counter of NIST CTR, which is why it is built on ECB here), and
/// HMAC-SHA1 over the ciphertext.
pub(crate) struct AesCtr {
    key: EncryptingKey,
    mac: hmac::Context,
    counter: u128,
    keystream: Zeroizing<Vec<u8>>,
    /// Unused keystream bytes at the end of `keystream`.
    used: usize,
}

/// The keys PBKDF2 derives from the password and salt (encryption key, MAC key, verifier).
pub(crate) struct AesKeys {
    material: Zeroizing<Vec<u8>>,
    key_len: usize,
}

/// Salt length of WinZip AES strength 1, 2, 3 (AES-128, -192, -256); the key is twice that.
pub(crate) fn salt_len(strength: u8) -> Option<usize> {
    match strength {
        1 => Some(8),
        2 => Some(12),
        3 => Some(16),
        _ => None,
    }
}

impl AesKeys {
    /// Keys for AES-256 (what we write).
    pub(crate) fn derive(password: &[u8], salt: &[u8; AES_SALT_LEN]) -> Self {
        Self::derive_for(password, salt)
    }

    /// Keys for the strength given by the salt length (8, 12 or 16 bytes).
    pub(crate) fn derive_for(password: &[u8], salt: &[u8]) -> Self {
        let key_len = salt.len() * 2;
        let mut material = Zeroizing::new(vec![0u8; 2 * key_len + 2]);
        let iterations = NonZeroU32::new(AES_PBKDF2_ITERATIONS).unwrap_or(NonZeroU32::MIN);
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA1,
            iterations,
            salt,
            password,
            &mut material[..],
        );
        Self { material, key_len }
    }

    pub(crate) fn verifier(&self) -> [u8; AES_VERIFIER_LEN] {
        let k = 2 * self.key_len;
        [
            self.material.get(k).copied().unwrap_or_default(),
            self.material.get(k + 1).copied().unwrap_or_default(),
        ]
    }

    pub(crate) fn cipher(&self) -> Result<AesCtr> {
        let k = self.key_len;
        let alg = match k {
            16 => &AES_128,
            24 => &AES_192,
            _ => &AES_256,
        };
        let enc = self.material.get(..k).unwrap_or_default();
        let mac = self.material.get(k..2 * k).unwrap_or_default();
        let unbound = UnboundCipherKey::new(alg, enc).map_err(|_| Error::WrongPassword)?;
        let key = EncryptingKey::ecb(unbound).map_err(|_| Error::WrongPassword)?;
        let mac_key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, mac);
        Ok(AesCtr {
            key,
            mac: hmac::Context::with_key(&mac_key),
            counter: 1,
            keystream: Zeroizing::new(vec![0u8; KEYSTREAM_BLOCKS * 16]),
            used: KEYSTREAM_BLOCKS * 16,
        })
    }
}

impl AesCtr {
    fn refill(&mut self) -> Result<()> {
        for block in self.keystream.chunks_exact_mut(16) {
            block.copy_from_slice(&self.counter.to_le_bytes());
            self.counter = self.counter.wrapping_add(1);
        }
        self.key
            .encrypt(&mut self.keystream[..])
            .map_err(|_| Error::WrongPassword)?;
        self.used = 0;
        Ok(())
    }

    fn xor(&mut self, data: &mut [u8]) -> Result<()> {
        let mut rest = data;
        while !rest.is_empty() {
            if self.used == self.keystream.len() {
                self.refill()?;
            }
            let ks = self.keystream.get(self.used..).unwrap_or_default();
            let n = ks.len().min(rest.len());
            let (now, later) = rest.split_at_mut(n);
            for (d, k) in now.iter_mut().zip(ks) {
                *d ^= k;
            }
            self.used += n;
            rest = later;
        }
        Ok(())
    }

    /// Encrypt in place and authenticate the ciphertext.
    pub(crate) fn encrypt(&mut self, data: &mut [u8]) -> Result<()> {
        self.xor(data)?;
        self.mac.update(data);
        Ok(())
    }

    /// Authenticate the ciphertext and decrypt it in place.
    pub(crate) fn decrypt(&mut self, data: &mut [u8]) -> Result<()> {
        self.mac.update(data);
        self.xor(data)
    }

    /// The 10-byte authentication code.
    pub(crate) fn finish(self) -> [u8; AES_MAC_LEN] {
        let tag = self.mac.sign();
        let mut out = [0u8; AES_MAC_LEN];
        out.copy_from_slice(&tag.as_ref()[..AES_MAC_LEN]);
        out
    }
}

/// Constant-time equality of two short byte strings (authentication codes, verifiers).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The traditional PKWARE encryption (APPNOTE §6.1). Weak: known-plaintext attacks recover
/// the keys from 12 known bytes. Offered because Windows Explorer opens it with nothing
/// installed.
#[derive(Clone)]
pub(crate) struct ZipCrypto {
    keys: [u32; 3],
}

impl Drop for ZipCrypto {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.keys);
    }
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

#[inline(always)]
fn crc_byte(crc: u32, b: u8) -> u32 {
    CRC_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8)
}

impl ZipCrypto {
    pub(crate) fn new(password: &[u8]) -> Self {
        let mut z = Self {
            keys: [0x1234_5678, 0x2345_6789, 0x3456_7890],
        };
        for &b in password {
            z.update(b);
        }
        z
    }

    #[inline(always)]
    fn update(&mut self, plain: u8) {
        let [k0, k1, k2] = &mut self.keys;
        *k0 = crc_byte(*k0, plain);
        *k1 = k1
            .wrapping_add(*k0 & 0xff)
            .wrapping_mul(134_775_813)
            .wrapping_add(1);
        *k2 = crc_byte(*k2, (*k1 >> 24) as u8);
    }

    #[inline(always)]
    fn stream_byte(&self) -> u8 {
        let t = (self.keys[2] | 2) as u16;
        (t.wrapping_mul(t ^ 1) >> 8) as u8
    }

    pub(crate) fn encrypt(&mut self, data: &mut [u8]) {
        for b in data {
            let p = *b;
            *b = p ^ self.stream_byte();
            self.update(p);
        }
    }

    pub(crate) fn decrypt(&mut self, data: &mut [u8]) {
        // Byte-serial by design (each key update takes the plaintext byte): the keys stay in
        // registers, and k1's product is split so that only `k0`'s low byte times the
        // constant is on the loop-carried path ((k1 + x) * M = k1 * M + x * M).
        let [mut k0, mut k1, mut k2] = self.keys;
        for b in data {
            let t = (k2 | 2) as u16;
            let p = *b ^ (t.wrapping_mul(t ^ 1) >> 8) as u8;
            *b = p;
            k0 = crc_byte(k0, p);
            let k1m = k1.wrapping_mul(134_775_813).wrapping_add(1);
            k1 = k1m.wrapping_add((k0 & 0xff).wrapping_mul(134_775_813));
            k2 = crc_byte(k2, (k1 >> 24) as u8);
        }
        self.keys = [k0, k1, k2];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipcrypto_round_trip() {
        let mut data = b"attack at dawn, attack at dawn".to_vec();
        ZipCrypto::new(b"pw").encrypt(&mut data);
        assert_ne!(&data[..], b"attack at dawn, attack at dawn");
        ZipCrypto::new(b"pw").decrypt(&mut data);
        assert_eq!(&data[..], b"attack at dawn, attack at dawn");
    }

    #[test]
    fn aes_ctr_is_little_endian_from_one() {
        // Keystream block i is AES-ECB(key, (i + 1) as little-endian u128).
        let keys = AesKeys::derive(b"pw", &[7; 16]);
        let mut c = keys.cipher().unwrap();
        let mut data = vec![0u8; 16 * 9000];
        c.encrypt(&mut data).unwrap();
        let ecb =
            EncryptingKey::ecb(UnboundCipherKey::new(&AES_256, &keys.material[..32]).unwrap())
                .unwrap();
        for (i, block) in data.chunks(16).enumerate() {
            let mut want = ((i as u128) + 1).to_le_bytes();
            ecb.encrypt(&mut want).unwrap();
            assert_eq!(block, want, "block {i}");
        }
        // Split writes give the same stream.
        let mut c2 = keys.cipher().unwrap();
        let mut parts = vec![0u8; 16 * 9000];
        for chunk in parts.chunks_mut(3701) {
            c2.encrypt(chunk).unwrap();
        }
        assert_eq!(parts, data);
        assert!(ct_eq(&c.finish(), &c2.finish()));
    }

    /// The decryption loop as APPNOTE §6.1 writes it (decrypt a byte, update the keys).
    fn zipcrypto_reference(z: &mut ZipCrypto, data: &mut [u8]) {
        for b in data {
            let p = *b ^ z.stream_byte();
            *b = p;
            z.update(p);
        }
    }

    #[test]
    fn zipcrypto_decrypt_equals_reference() {
        let mut x = 7u64;
        let data: Vec<u8> = (0..100_003)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut fast = data.clone();
        let mut slow = data.clone();
        let (mut a, mut b) = (ZipCrypto::new(b"pw"), ZipCrypto::new(b"pw"));
        for (f, s) in fast.chunks_mut(4099).zip(slow.chunks_mut(4099)) {
            a.decrypt(f);
            zipcrypto_reference(&mut b, s);
        }
        assert_eq!(fast, slow);
        assert_eq!(a.keys, b.keys);
        ZipCrypto::new(b"pw").encrypt(&mut fast);
        assert_eq!(fast, data);
    }

    /// `cargo test --release -p sealgate-zip -- --ignored --nocapture throughput`: MB/s of
    /// each step of extracting a stored entry (best of 5 over 10 MiB).
    #[test]
    #[ignore]
    fn throughput() {
        let mut data = vec![0x5au8; 10 << 20];
        let best = |f: &mut dyn FnMut(&mut [u8]), data: &mut [u8]| {
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t = std::time::Instant::now();
                f(data);
                best = best.min(t.elapsed().as_secs_f64());
            }
            format!("{:.0} MB/s", data.len() as f64 / best / 1e6)
        };
        let keys = AesKeys::derive(b"pw", &[7; 16]);
        let mut ctr = keys.cipher().unwrap();
        println!(
            "AES-256-CTR xor: {}",
            best(&mut |d| ctr.xor(d).unwrap(), &mut data)
        );
        let mac_key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &[1; 32]);
        println!(
            "HMAC-SHA1: {}",
            best(
                &mut |d| {
                    let mut m = hmac::Context::with_key(&mac_key);
                    m.update(d);
                    std::hint::black_box(m.sign());
                },
                &mut data
            )
        );
        println!(
            "CRC-32: {}",
            best(
                &mut |d| {
                    let mut h = crc32fast::Hasher::new();
                    h.update(d);
                    std::hint::black_box(h.finalize());
                },
                &mut data
            )
        );
        println!(
            "memcpy: {}",
            best(
                &mut |d| {
                    let v = d.to_vec();
                    std::hint::black_box(v);
                },
                &mut data
            )
        );
        let mut z = ZipCrypto::new(b"pw");
        println!(
            "ZipCrypto decrypt: {}",
            best(&mut |d| z.decrypt(d), &mut data)
        );
        let mut z = ZipCrypto::new(b"pw");
        println!(
            "ZipCrypto decrypt (reference loop): {}",
            best(&mut |d| zipcrypto_reference(&mut z, d), &mut data)
        );
    }
}
