#![doc = include_str!("../README.md")]

mod crypto;
mod error;
mod names;
mod package;
mod password;
mod read;
mod sniff;
mod write;

pub(crate) use error::malformed;
pub use error::{Error, Result};
pub use names::sanitize_name;
pub use package::{PackageOptions, Packaged, Scope, Templates, package};
pub use password::{DEFAULT_ALPHABET, DEFAULT_LENGTH, Password};
pub use read::{EntryEncryption, EntryInfo, Extracted, ZipReader, read_all};
pub use sniff::is_compressed;
pub use write::{DEFAULT_LEVEL, Encryption, WriteOptions, ZipWriter, create};
