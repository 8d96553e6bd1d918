#![doc = include_str!("../README.md")]

pub mod alg;
pub mod ber;
pub mod cert;
pub mod enveloped;
mod error;
pub mod issue;
pub mod keyfile;
pub mod keys;
mod pbe;
pub mod pem;
mod pkcs12;
pub mod signed;
mod tlv;

pub use alg::DigestAlgorithm;
pub use cert::TrustStore;
pub use error::{Error, Result};
pub use keyfile::{Identity, load_private_key};
pub use keys::{Certificate, Curve, KeyKind, PrivateKey, PublicKey, RsaPadding, SignatureScheme};
pub use sealgate_mime::Limits;
pub use signed::{
    Check, CheckName, DetachedSigner, SignOptions, SignerReport, Verification, VerifyOptions, sign,
    verify,
};
