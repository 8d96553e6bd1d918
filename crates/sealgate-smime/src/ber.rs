//! BER to DER normalisation (stub until the coordinator's implementation lands on main).

use std::borrow::Cow;

use sealgate_mime::Limits;

use crate::error::Result;

/// Convert BER (indefinite lengths, constructed strings) to DER. Stub: passes input through.
pub(crate) fn to_der<'a>(input: &'a [u8], _limits: &Limits) -> Result<Cow<'a, [u8]>> {
    Ok(Cow::Borrowed(input))
}
