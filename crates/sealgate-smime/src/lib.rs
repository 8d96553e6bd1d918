#![doc = include_str!("../README.md")]

pub mod alg;
pub mod ber;
pub mod cert;
pub mod certs_only;
pub mod crl;
pub mod enveloped;
mod error;
pub mod issue;
pub mod keyfile;
pub mod keys;
pub mod message;
mod pbe;
pub mod pem;
pub mod pkcs12;
pub mod signed;
pub mod stream;
mod tlv;
pub mod triple;
pub mod validation;

pub use alg::DigestAlgorithm;
pub use cert::TrustStore;
pub use enveloped::{
    ContentAlgorithm, ContentCipher, Decrypted, EnvelopedWriter, MlKem, Recipient,
};
pub use error::{Error, Result};
pub use issue::CertificateParams;
pub use keyfile::{Identity, encrypt_private_key, load_private_key};
pub use keys::{
    Certificate, Curve, KeyKind, MlDsa, PrivateKey, PublicKey, RsaPadding, SignatureScheme,
};
pub use message::{
    DecryptedMessage, EncryptMessageOptions, MessageEncryptor, MessageSigner, SignMessageOptions,
    SmimeKind, VerifiedMessage, classify, decrypt_message, encrypt_message, sign_message,
    verify_message,
};
pub use pkcs12::Pkcs12Format;
pub use sealgate_mime::Limits;
pub use signed::{
    Check, CheckName, DetachedSigner, SignOptions, SignerReport, Verification, VerifyOptions, sign,
    verify,
};
pub use triple::{
    TripleUnwrapped, TripleWrapOptions, is_triple_wrapped, outer_is_valid, triple_wrap,
    unwrap_triple, verify_outer,
};
