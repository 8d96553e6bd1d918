#![doc = include_str!("../README.md")]

mod armor;
mod decrypt;
mod encrypt;
mod error;
mod keys;
mod message;
mod rsa;
mod seipd;
pub mod stream;

pub use decrypt::{
    Decrypted, SignatureReport, Verification, decrypt, verify_detached, verify_inline,
};
pub use encrypt::{
    DetachedSigner, EncryptOptions, Encryptor, SIGNATURE_HASH, encrypt, sign_detached,
};
pub use error::{Error, Result};
pub use keys::{Cert, Encoding, KeyKind, SecretKey};
pub use message::{
    DecryptedMessage, EncryptMessageOptions, SignMessageOptions, VerifiedMessage, decrypt_message,
    encrypt_message, sign_message, sign_message_with, verify_message,
};
