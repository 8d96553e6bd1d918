//! Everything the rules look at, extracted from one message once: texts (subject, bodies,
//! attachment text), every file with its true type and document properties (archive members
//! included), validated sensitive values (masked), and what could not be inspected and why.

use std::collections::HashMap;
use std::fmt;
use std::time::Instant;

use sealgate_mime::{Entity, Limits};
use serde::Serialize;

use crate::extract::Extractor;
use crate::filetype::FileType;
use crate::sensitive::{self, SensitiveKind};

/// Where something was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Location {
    /// The SMTP envelope (sender or recipient address).
    Envelope,
    /// The message as a whole (its size, its structure).
    Message,
    /// The Subject header field.
    Subject,
    /// A header field of the message.
    Header {
        /// The field name as written.
        name: String,
    },
    /// A body text part.
    Body {
        /// The MIME part number (`1`, `2.1`, ... as in IMAP).
        part: String,
    },
    /// An attachment, or a file inside an attachment that is an archive.
    Attachment {
        /// The MIME part number of the attachment.
        part: String,
        /// The attachment's file name (empty when it has none).
        name: String,
        /// The path inside archives, outermost first (`["docs.zip", "a/report.docx"]` is a
        /// report.docx inside docs.zip inside the attachment); empty for the attachment itself.
        path: Vec<String>,
    },
}

impl Location {
    fn member(&self, member: &str) -> Location {
        match self {
            Location::Attachment { part, name, path } => {
                let mut path = path.clone();
                path.push(member.to_string());
                Location::Attachment {
                    part: part.clone(),
                    name: name.clone(),
                    path,
                }
            }
            other => other.clone(),
        }
    }

    pub(crate) fn in_archive(&self, member: &str) -> Location {
        self.member(member)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Envelope => f.write_str("envelope"),
            Location::Message => f.write_str("message"),
            Location::Subject => f.write_str("subject"),
            Location::Header { name } => write!(f, "header {name}"),
            Location::Body { part } => write!(f, "body (part {part})"),
            Location::Attachment { part, name, path } => {
                if name.is_empty() {
                    write!(f, "attachment (part {part})")?;
                } else {
                    write!(f, "attachment \"{name}\"")?;
                }
                for p in path {
                    write!(f, " > {p}")?;
                }
                Ok(())
            }
        }
    }
}

/// Which kind of text a [`TextBlock`] is, for `subject_*`, `body_*` and `attachment_*` rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TextSource {
    /// The Subject (RFC 2047 decoded).
    Subject,
    /// A text/plain or text/html body (HTML reduced to text), or an embedded message's text.
    Body,
    /// Text extracted from an attachment or a file inside one.
    Attachment,
}

/// A piece of text the rules search.
#[derive(Debug, Clone)]
pub struct TextBlock {
    /// Subject, body or attachment.
    pub source: TextSource,
    /// Where it came from.
    pub location: Location,
    /// The decoded text.
    pub text: String,
}

/// Document properties (OOXML core/app, ODF meta, PDF Info and XMP).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Properties {
    /// Author / creator (`dc:creator`, `meta:initial-creator`, PDF `/Author`).
    pub author: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Company (OOXML `app.xml`, PDF `/Company`).
    pub company: Option<String>,
    /// Last modified by (`cp:lastModifiedBy`, ODF `dc:creator`).
    pub last_modified_by: Option<String>,
}

/// One file: an attachment or a member of an archive attachment.
#[derive(Debug, Clone)]
pub struct FileInfo {
    /// Where it is.
    pub location: Location,
    /// Its file name (the last path component for archive members).
    pub name: String,
    /// The full path inside its archive (equal to `name` for attachments).
    pub path: String,
    /// The Content-Type the sender declared (attachments only).
    pub declared_type: Option<String>,
    /// What it really is, from its content.
    pub file_type: FileType,
    /// Its document properties, if it has any.
    pub properties: Properties,
}

/// Why some content could not be inspected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum UninspectableReason {
    /// Encrypted (password ZIP entry, encrypted PDF or Office file).
    Encrypted,
    /// Malformed or truncated.
    Corrupt {
        /// What was wrong (no content).
        detail: String,
    },
    /// A format we recognise but do not look inside (7z, RAR, ...).
    Unsupported {
        /// The format.
        format: String,
    },
    /// A [`Limits`] ceiling was reached (bytes, depth, entries, ratio, time).
    LimitReached {
        /// Which limit.
        limit: String,
    },
}

impl UninspectableReason {
    /// The short name used by the `uninspectable = "..."` condition.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Encrypted => "encrypted",
            Self::Corrupt { .. } => "corrupt",
            Self::Unsupported { .. } => "unsupported",
            Self::LimitReached { .. } => "limit",
        }
    }
}

impl fmt::Display for UninspectableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Encrypted => f.write_str("encrypted"),
            Self::Corrupt { detail } => write!(f, "corrupt ({detail})"),
            Self::Unsupported { format } => write!(f, "not inspected ({format})"),
            Self::LimitReached { limit } => write!(f, "limit reached ({limit})"),
        }
    }
}

/// Content that could not be inspected, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Uninspectable {
    /// Where.
    #[serde(rename = "where")]
    pub location: Location,
    /// Why.
    #[serde(flatten)]
    pub reason: UninspectableReason,
}

/// One distinct sensitive value: its kind, its masked form, where it was first seen and how
/// often it occurs. The clear value is not kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SensitiveMatch {
    /// Card, IBAN or My Number.
    pub kind: SensitiveKind,
    /// Masked (`4111 **** **** 1111`).
    pub masked: String,
    /// Where it was first found.
    #[serde(rename = "where")]
    pub location: Location,
    /// How many times it occurs.
    pub occurrences: usize,
}

/// Everything extracted from one message, built once by [`inspect`] and read by every rule.
#[derive(Debug, Clone, Default)]
pub struct Inspection {
    /// Size of the whole message in bytes.
    pub size: usize,
    /// Subject, bodies and attachment texts.
    pub texts: Vec<TextBlock>,
    /// Every attachment and every file inside an archive attachment.
    pub files: Vec<FileInfo>,
    /// Distinct validated card numbers, IBANs and My Numbers, masked.
    pub sensitive: Vec<SensitiveMatch>,
    /// What could not be inspected.
    pub uninspectable: Vec<Uninspectable>,
}

/// Inspect a message: walk its MIME tree, decode every text body, look inside every
/// attachment (true type, text, properties; archives to `limits.max_archive_depth`), and scan
/// all text for sensitive values. Never fails: what cannot be read is listed in
/// [`Inspection::uninspectable`] with the reason, so a policy can fail closed on it.
pub fn inspect(message: &Entity<'_>, limits: &Limits) -> Inspection {
    let mut ex = Extractor::new(limits, Instant::now());
    let subject = message.header("Subject").unwrap_or_default();
    if !subject.is_empty() {
        ex.texts.push(TextBlock {
            source: TextSource::Subject,
            location: Location::Subject,
            text: subject,
        });
    }
    walk(&mut ex, message, String::new(), limits);
    let mut inspection = Inspection {
        size: message.raw().len(),
        texts: std::mem::take(&mut ex.texts),
        files: std::mem::take(&mut ex.files),
        sensitive: Vec::new(),
        uninspectable: std::mem::take(&mut ex.uninspectable),
    };
    inspection.sensitive = find_sensitive(&inspection.texts);
    inspection
}

fn child_number(parent: &str, index: usize) -> String {
    if parent.is_empty() {
        (index + 1).to_string()
    } else {
        format!("{parent}.{}", index + 1)
    }
}

fn walk(ex: &mut Extractor<'_>, e: &Entity<'_>, part: String, limits: &Limits) {
    let ct = e.content_type();
    let here = if part.is_empty() {
        "1".to_string()
    } else {
        part.clone()
    };
    if ct.is_multipart() {
        match e.parts(limits) {
            Ok(parts) => {
                for (i, p) in parts.iter().enumerate() {
                    walk(ex, p, child_number(&part, i), limits);
                }
            }
            Err(err) => ex.uninspectable(Location::Body { part: here }, mime_reason(&err)),
        }
        return;
    }
    if ct.mime_type == "message/rfc822" {
        match e.embedded_message(limits) {
            Ok(Some(inner)) => {
                if let Some(subject) = inner.header("Subject") {
                    ex.texts.push(TextBlock {
                        source: TextSource::Body,
                        location: Location::Body { part: here.clone() },
                        text: subject,
                    });
                }
                walk(ex, &inner, here, limits);
            }
            Ok(None) => {}
            Err(err) => ex.uninspectable(Location::Body { part: here }, mime_reason(&err)),
        }
        return;
    }
    let disposition = e.content_disposition().map(|d| d.mime_type);
    let filename = e.filename();
    let is_body =
        ct.is_text() && filename.is_none() && disposition.as_deref() != Some("attachment");
    if is_body {
        match e.decoded_text(limits) {
            Ok(text) => {
                if ex.charge_message(text.len()) {
                    ex.texts.push(TextBlock {
                        source: TextSource::Body,
                        location: Location::Body { part: here },
                        text,
                    });
                } else {
                    ex.limit(
                        Location::Body { part: here },
                        "extraction bytes per message",
                    );
                }
            }
            Err(err) => ex.uninspectable(Location::Body { part: here }, mime_reason(&err)),
        }
        return;
    }
    let name = filename.unwrap_or_default();
    let location = Location::Attachment {
        part: here,
        name: name.clone(),
        path: Vec::new(),
    };
    match e.decoded_body(limits) {
        Ok(data) => {
            let charset = e.charset();
            ex.attachment(
                &data,
                &name,
                Some(ct.mime_type),
                charset.as_deref(),
                location,
            );
        }
        Err(err) => {
            ex.file(
                location.clone(),
                &name,
                &name,
                Some(ct.mime_type),
                FileType::Unknown,
            );
            ex.uninspectable(location, mime_reason(&err));
        }
    }
}

fn mime_reason(err: &sealgate_mime::Error) -> UninspectableReason {
    match err {
        sealgate_mime::Error::LimitExceeded { what, .. } => UninspectableReason::LimitReached {
            limit: (*what).to_string(),
        },
        _ => UninspectableReason::Corrupt {
            detail: "malformed MIME".to_string(),
        },
    }
}

/// Scan every text once; keep distinct values with their first location, masked.
fn find_sensitive(texts: &[TextBlock]) -> Vec<SensitiveMatch> {
    let mut index: HashMap<(SensitiveKind, String), usize> = HashMap::new();
    let mut out: Vec<SensitiveMatch> = Vec::new();
    let mut found = Vec::new();
    for block in texts {
        found.clear();
        sensitive::scan(&block.text, &mut found);
        for f in found.drain(..) {
            let masked = sensitive::mask(f.kind, &f.value);
            match index.entry((f.kind, f.value)) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    if let Some(m) = out.get_mut(*e.get()) {
                        m.occurrences += 1;
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(out.len());
                    out.push(SensitiveMatch {
                        kind: f.kind,
                        masked,
                        location: block.location.clone(),
                        occurrences: 1,
                    });
                }
            }
        }
    }
    out
}
