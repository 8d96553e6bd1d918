#![doc = include_str!("../README.md")]

mod decrypt;
mod encrypt;
mod error;
mod keys;

pub use decrypt::{
    Decrypted, SignatureReport, Verification, decrypt, verify_detached, verify_inline,
};
pub use encrypt::{
    DetachedSigner, EncryptOptions, Encryptor, SIGNATURE_HASH, encrypt, sign_detached,
};
pub use error::{Error, Result};
pub use keys::{Cert, KeyKind, SecretKey};
