#![doc = include_str!("../README.md")]

mod config;
mod decision;
mod error;
mod extract;
mod filetype;
mod glob;
mod inspect;
mod policy;
mod prefilter;
mod scan;
mod sensitive;

pub use decision::{
    Action, Alphabet, DECISION_FORMAT_VERSION, Decision, Direction, Fallback, Method, Reason,
    RecipientDecision, SignMethod, Trigger, ZipMethod, ZipPassword, ZipSettings,
};
pub use error::{Error, Result};
pub use filetype::FileType;
pub use inspect::{
    FileInfo, Inspection, Location, Properties, SensitiveMatch, TextBlock, TextSource,
    Uninspectable, UninspectableReason, inspect,
};
pub use policy::{Envelope, MAX_POLICY_BYTES, Policy};
pub use sensitive::SensitiveKind;
