#![doc = include_str!("../README.md")]

pub mod alg;
pub mod ber;
pub mod enveloped;
mod error;
pub mod keys;
pub mod pem;

pub use alg::DigestAlgorithm;
pub use error::{Error, Result};
pub use keys::{Certificate, Curve, KeyKind, PrivateKey, PublicKey, RsaPadding, SignatureScheme};
pub use sealgate_mime::Limits;
