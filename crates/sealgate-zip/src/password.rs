//! Passwords: fixed by policy or generated from a CSPRNG, always held as secrets.

use rand_core::CryptoRngCore;
use secrecy::{ExposeSecret, SecretString};

use crate::{Error, Result};

/// Letters and digits without the look-alikes `0 O 1 l I`: what a person can read out or type
/// from a printed notification without mistakes.
pub const DEFAULT_ALPHABET: &str = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// Length of a generated password unless the policy says otherwise.
pub const DEFAULT_LENGTH: usize = 16;

/// A ZIP password. Zeroized on drop; `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    /// A fixed password (from policy or the user).
    pub fn new(secret: SecretString) -> Self {
        Self(secret)
    }

    /// A password of `length` characters drawn uniformly from `alphabet` (ASCII, no
    /// repeats needed) with `rng`, e.g. `rand_core::OsRng`.
    pub fn generate(length: usize, alphabet: &str, rng: &mut impl CryptoRngCore) -> Result<Self> {
        let mut chars: Vec<u8> = alphabet.bytes().collect();
        chars.sort_unstable();
        chars.dedup();
        if length == 0 || length > 1024 {
            return Err(Error::PasswordPolicy {
                detail: "length must be between 1 and 1024",
            });
        }
        if chars.len() < 2 || !alphabet.is_ascii() || chars.iter().any(u8::is_ascii_control) {
            return Err(Error::PasswordPolicy {
                detail: "the alphabet needs at least two printable ASCII characters",
            });
        }
        let n = chars.len() as u32;
        // Rejection sampling: no modulo bias.
        let zone = u32::MAX - u32::MAX % n;
        let mut out = String::with_capacity(length);
        while out.len() < length {
            let v = rng.next_u32();
            if let Some(&c) = chars.get((v % n) as usize).filter(|_| v < zone) {
                out.push(char::from(c));
            }
        }
        Ok(Self(SecretString::from(out)))
    }

    /// A password of [`DEFAULT_LENGTH`] from [`DEFAULT_ALPHABET`].
    pub fn generate_default(rng: &mut impl CryptoRngCore) -> Self {
        // The defaults are a valid policy.
        Self::generate(DEFAULT_LENGTH, DEFAULT_ALPHABET, rng)
            .unwrap_or_else(|_| Self(SecretString::from(String::new())))
    }

    /// The password itself: for the sender notification and for deriving keys. Keep the
    /// borrow short and never log it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }
}

impl From<SecretString> for Password {
    fn from(s: SecretString) -> Self {
        Self(s)
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Self(SecretString::from(s))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u64);
    impl rand_core::RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 32) as u32
        }
        fn next_u64(&mut self) -> u64 {
            u64::from(self.next_u32()) << 32 | u64::from(self.next_u32())
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = self.next_u32() as u8;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl rand_core::CryptoRng for Counter {}

    #[test]
    fn generated_from_the_alphabet_and_deterministic() {
        let a = Password::generate_default(&mut Counter(7));
        let b = Password::generate_default(&mut Counter(7));
        assert_eq!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 16);
        assert!(a.expose().chars().all(|c| DEFAULT_ALPHABET.contains(c)));
        assert!(!a.expose().contains(['0', 'O', '1', 'l', 'I']));
        let c = Password::generate(40, "ab", &mut Counter(1)).unwrap();
        assert!(c.expose().contains('a') && c.expose().contains('b'));
        assert_eq!(c.expose().len(), 40);
    }

    #[test]
    fn bad_policies_and_redacted_debug() {
        assert!(Password::generate(0, DEFAULT_ALPHABET, &mut Counter(1)).is_err());
        assert!(Password::generate(8, "a", &mut Counter(1)).is_err());
        assert!(Password::generate(8, "äö", &mut Counter(1)).is_err());
        let p = Password::from("hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
