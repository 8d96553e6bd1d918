//! Any bytes as a message, and the same bytes as an attachment of a fixed message: `inspect`
//! (MIME walk, charset decoding, file type sniffing, ZIP/OOXML/ODF/PDF/OLE/gzip/tar extraction,
//! sensitive-data scan) and `decide` with a policy that uses every condition. Must never panic,
//! and with tight limits must stay within them.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealgate::Limits;
use sealgate::mime::{Entity, build_base64_entity};
use sealgate::policy::{Envelope, Policy, inspect};

const RULES: &str = r#"
internal_domains = ["example.com"]
[patterns]
emp = "EMP-[0-9]{6}"
[[rule]]
name = "all"
when = { any = [
  { direction = "outbound" }, { sender = "*@example.com" }, { recipient = "*.example" },
  { subject_contains = ["secret", "秘密"] }, { subject_matches = "(?i)conf" },
  { body_contains = "confidential" }, { body_matches = "\\d{4}" },
  { header = { name = "X-Classification", matches = "secret" } }, { size_over = 100 },
  { sensitive = "payment_card" }, { sensitive = "iban", min_count = 2 }, { sensitive = "my_number" },
  { sensitive = "emp" }, { attachment_name = "*.docx" }, { attachment_type = ["excel", "executable", "archive"] },
  { attachment_contains = "secret" }, { attachment_matches = "[A-Z]{3}" },
  { attachment_property = { author = "*", title = "?*" } }, { uninspectable = true },
  { not = { uninspectable = "encrypted" } },
] }
action = [{ encrypt = ["smime", "pgp", "zip"] }, "require_tls"]
stop = false
[[rule]]
name = "reject"
when = { attachment_type = "script" }
action = { reject = "no" }
"#;

fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| Policy::from_toml(RULES, None).expect("fixed policy loads"))
}

fuzz_target!(|data: &[u8]| {
    let mut tight = Limits::default();
    tight.max_mime_depth = 3;
    tight.max_parts = 8;
    tight.max_extract_bytes_per_attachment = 64 * 1024;
    tight.max_extract_bytes_per_message = 128 * 1024;
    tight.max_archive_depth = 1;
    tight.max_archive_entries = 8;
    tight.max_compression_ratio = 10;
    let mut wrapped = b"From: a@example.com\r\nTo: b@partner.example\r\nSubject: x\r\n\
Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
        .to_vec();
    wrapped.extend_from_slice(&build_base64_entity(
        "application/octet-stream",
        Some("file.bin"),
        data,
    ));
    wrapped.extend_from_slice(b"\r\n--zz--\r\n");
    for limits in [Limits::default(), tight] {
        for raw in [data, &wrapped[..]] {
            let Ok(msg) = Entity::parse(raw, &limits) else {
                continue;
            };
            let inspection = inspect(&msg, &limits);
            let text: usize = inspection.texts.iter().map(|t| t.text.len()).sum();
            // Text from attachments is bounded by the per-message extraction limit (bodies and
            // the subject come on top, bounded by the message size).
            assert!(text <= limits.max_extract_bytes_per_message + raw.len() * 4 + 1024);
            let d = policy().decide(&msg, &Envelope::from_headers(&msg), &inspection);
            let _ = d.recipients.iter().map(|r| r.is_rejected()).count();
        }
    }
});
