#![doc = include_str!("../README.md")]

mod error;
mod limits;

pub use error::{Error, Result};
pub use limits::Limits;
