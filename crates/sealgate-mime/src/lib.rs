#![doc = include_str!("../README.md")]

mod canonical;
mod entity;
mod error;
mod header;
mod limits;
mod protect;
mod smime;
mod transfer;

pub use canonical::canonicalize_crlf;
pub use entity::Entity;
pub use error::{Error, Result};
pub use header::{ContentType, HeaderField};
pub use limits::Limits;
pub use protect::{assemble, make_seven_bit, split_for_protection};
pub use smime::{
    MultipartSigned, Pkcs7Mime, build_base64_entity, build_multipart_signed, parse_multipart_signed,
    parse_pkcs7_mime,
};
pub use transfer::Base64Writer;
