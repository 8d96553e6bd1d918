#![doc = include_str!("../README.md")]

pub mod alg;
pub mod ber;
pub mod cert;
pub mod enveloped;
mod error;
pub mod issue;
pub mod keys;
pub mod pem;
pub mod signed;
mod tlv;

pub use alg::DigestAlgorithm;
pub use cert::TrustStore;
pub use error::{Error, Result};
pub use keys::{Certificate, Curve, KeyKind, PrivateKey, PublicKey, RsaPadding, SignatureScheme};
pub use sealgate_mime::Limits;
pub use signed::{
    Check, CheckName, DetachedSigner, SignOptions, SignerReport, Verification, VerifyOptions, sign,
    verify,
};
