//! BER to DER normalisation (stub until the coordinator's implementation lands).

use std::borrow::Cow;

use crate::error::Result;
use sealgate_mime::Limits;

/// Re-encode BER (indefinite lengths, constructed strings) as DER-shaped bytes.
///
/// Stub: passes the input through unchanged; the real implementation replaces this file.
pub fn to_der<'a>(input: &'a [u8], _limits: &Limits) -> Result<Cow<'a, [u8]>> {
    Ok(Cow::Borrowed(input))
}
