//! Packaging a message: the attachments (or the whole message) into a password ZIP, the
//! message for the recipient with an explanation, and the notification for the sender with
//! the password.

use std::borrow::Cow;
use std::time::SystemTime;

use rand_core::CryptoRngCore;
use sealgate_mime::{
    Entity, HeaderField, Limits, MessageBuilder, Part, canonicalize_crlf, format_date, mailboxes,
    make_seven_bit, message_id,
};
use zeroize::Zeroizing;

use crate::{Encryption, Error, Password, Result, WriteOptions, ZipWriter, malformed};

/// What goes into the ZIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Scope {
    /// The attachments only; the body stays readable. A message without attachments is
    /// [`Error::NoAttachments`].
    #[default]
    Attachments,
    /// The whole original message, as `message.eml`.
    WholeMessage,
}

/// The texts of the two messages. Placeholders in braces are replaced once (a value that
/// itself contains braces is not expanded again):
///
/// | placeholder | value |
/// | --- | --- |
/// | `{sender}` | the From of the original message |
/// | `{recipients}` | its To and Cc addresses |
/// | `{subject}` | its subject |
/// | `{files}` | the file names in the ZIP, one per line (an HTML list in HTML templates) |
/// | `{zip_name}` | the name of the attached ZIP |
/// | `{openers}` | which programs open it (depends on the encryption) |
/// | `{password}` | the password: **sender templates only** |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Templates {
    /// text/plain body of the recipient message.
    pub recipient_text: String,
    /// text/html body of the recipient message.
    pub recipient_html: String,
    /// Subject of the sender notification.
    pub sender_subject: String,
    /// text/plain body of the sender notification.
    pub sender_text: String,
}

impl Default for Templates {
    fn default() -> Self {
        Self {
            recipient_text:
                "{sender} sent you a message whose files are protected by a password.\n\n\
Subject: {subject}\n\n\
The files are in the attached ZIP archive {zip_name}:\n\n{files}\n\n\
The sender has the password and will give it to you by another channel (telephone, text\n\
message or in person). {openers}\n"
                    .to_string(),
            recipient_html: "<!DOCTYPE html>\n<html><body>\n\
<p>{sender} sent you a message whose files are protected by a password.</p>\n\
<p>Subject: {subject}</p>\n\
<p>The files are in the attached ZIP archive <b>{zip_name}</b>:</p>\n{files}\n\
<p>The sender has the password and will give it to you by another channel (telephone, text \
message or in person). {openers}</p>\n</body></html>\n"
                .to_string(),
            sender_subject: "Password for your message: {subject}".to_string(),
            sender_text: "Your message to {recipients}\nwith the subject \"{subject}\"\n\
was sent with its files in the encrypted ZIP archive {zip_name}:\n\n{files}\n\n\
The password that opens the archive:\n\n    {password}\n\n\
Please give this password to the recipients by another channel (telephone, text message or\n\
in person), never by e-mail: whoever has both the message and the password can open the\n\
files. {openers}\n"
                .to_string(),
        }
    }
}

/// Options of [`package`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PackageOptions {
    /// The ZIP encryption.
    pub encryption: Encryption,
    /// What goes into the ZIP.
    pub scope: Scope,
    /// The name of the attached ZIP (default `attachments.zip` or `message.zip`).
    pub zip_name: Option<String>,
    /// The texts.
    pub templates: Templates,
    /// From of the sender notification (default `postmaster@` the sender's domain).
    pub notification_from: Option<String>,
    /// The time for Date fields and ZIP entries.
    pub now: SystemTime,
}

impl Default for PackageOptions {
    fn default() -> Self {
        Self {
            encryption: Encryption::Aes256,
            scope: Scope::Attachments,
            zip_name: None,
            templates: Templates::default(),
            notification_from: None,
            now: SystemTime::now(),
        }
    }
}

/// The result of [`package`].
pub struct Packaged {
    /// The message for the recipients (send it instead of the original).
    pub recipient_message: Vec<u8>,
    /// The notification for the sender; holds the password, so it is wiped on drop.
    pub sender_notification: Zeroizing<Vec<u8>>,
    /// The names of the files in the ZIP, as written.
    pub files: Vec<String>,
    /// The name of the attached ZIP.
    pub zip_name: String,
}

impl std::fmt::Debug for Packaged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packaged")
            .field("recipient_message_len", &self.recipient_message.len())
            .field("sender_notification", &"[redacted]")
            .field("files", &self.files)
            .field("zip_name", &self.zip_name)
            .finish()
    }
}

/// Package `message` (RFC 5322, LF or CRLF): its attachments (or all of it) go into a ZIP
/// encrypted with `password`; the recipient message keeps the original header fields (MIME
/// fields replaced), gets the explanation as text/plain + text/html and the ZIP attached; the
/// sender notification goes to the original From with the password. Both are 7-bit, CRLF,
/// with Message-ID and Date (the recipient message keeps the original ones when present);
/// the notification answers the original (In-Reply-To, References) and is marked
/// `Auto-Submitted: auto-generated` (RFC 3834).
pub fn package(
    message: &[u8],
    password: &Password,
    options: &PackageOptions,
    rng: &mut impl CryptoRngCore,
    limits: &Limits,
) -> Result<Packaged> {
    let msg = Entity::parse(message, limits)?;
    let (files_in, kept_body) = match options.scope {
        Scope::WholeMessage => (
            vec![("message.eml".to_string(), Cow::Borrowed(message))],
            None,
        ),
        Scope::Attachments => {
            let mut found = Vec::new();
            let kept = split(&msg, true, &mut found, limits)?;
            if found.is_empty() {
                return Err(Error::NoAttachments);
            }
            (found, kept)
        }
    };
    let zip_name = options.zip_name.clone().unwrap_or_else(|| {
        match options.scope {
            Scope::WholeMessage => "message.zip",
            Scope::Attachments => "attachments.zip",
        }
        .to_string()
    });
    let mut write_options = WriteOptions::new(options.encryption);
    write_options.modified = options.now;
    let mut zip = ZipWriter::new(Vec::new(), password.clone(), write_options);
    let mut files = Vec::with_capacity(files_in.len());
    for (name, data) in &files_in {
        files.push(zip.add_bytes(name, data, rng)?);
    }
    let zip = zip.finish()?;

    let from_field = msg.header_field("From");
    let sender_mailbox = from_field
        .map(|f| mailboxes(f.raw_value()))
        .and_then(|m| m.into_iter().next());
    let sender_display = msg.header("From").unwrap_or_default();
    let domain = sender_mailbox
        .as_deref()
        .and_then(|a| a.rsplit_once('@'))
        .map_or("localhost".to_string(), |(_, d)| d.to_string());
    let subject = msg.header("Subject").unwrap_or_default();
    let mut recipients = Vec::new();
    for f in msg.headers() {
        if f.is_named("To") || f.is_named("Cc") {
            recipients.extend(mailboxes(f.raw_value()));
        }
    }
    let openers = match options.encryption {
        Encryption::ZipCrypto => {
            "Windows Explorer and macOS open the archive directly; 7-Zip, WinZip and others do too."
        }
        _ => {
            "Open the archive with 7-Zip, WinZip, PeaZip, Keka or The Unarchiver (Windows Explorer cannot open AES-encrypted archives)."
        }
    };
    let files_text = files
        .iter()
        .map(|f| format!("  - {f}"))
        .collect::<Vec<_>>()
        .join("\n");
    let files_html = format!(
        "<ul>\n{}\n</ul>",
        files
            .iter()
            .map(|f| format!("<li>{}</li>", html_escape(f)))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let recipients_text = if recipients.is_empty() {
        "(no To or Cc recipients)".to_string()
    } else {
        recipients.join(", ")
    };
    let text_values: Vec<(&str, Cow<'_, str>)> = vec![
        ("sender", sender_display.as_str().into()),
        ("recipients", recipients_text.as_str().into()),
        ("subject", subject.as_str().into()),
        ("files", files_text.as_str().into()),
        ("zip_name", zip_name.as_str().into()),
        ("openers", openers.into()),
    ];
    let html_values: Vec<(&str, Cow<'_, str>)> = text_values
        .iter()
        .map(|(k, v)| match *k {
            "files" => (*k, Cow::Borrowed(files_html.as_str())),
            _ => (*k, Cow::Owned(html_escape(v))),
        })
        .collect();

    // The recipient message.
    let t = &options.templates;
    let explanation = Part::multipart(
        "alternative",
        vec![
            Part::plain(fill(&t.recipient_text, &text_values)),
            Part::html(fill(&t.recipient_html, &html_values)),
        ],
    );
    let mut parts = vec![explanation];
    if let Some(kept) = kept_body {
        parts.push(Part::Raw(Cow::Owned(kept)));
    }
    parts.push(Part::attachment("application/zip", zip_name.as_str(), zip));
    let mut head = MessageBuilder::new();
    for f in msg.headers() {
        if f.is_mime_field() {
            continue;
        }
        head = copy_field(head, f);
    }
    if !head.has("Date") {
        head = head.raw("Date", &format_date(options.now));
    }
    if !head.has("Message-ID") {
        head = head.raw("Message-ID", &message_id(&domain, rng));
    }
    let recipient_message = head.build(&Part::multipart("mixed", parts), rng);

    // The sender notification.
    let mut secret_values = text_values.clone();
    secret_values.push(("password", password.expose().into()));
    let notification_from = options
        .notification_from
        .clone()
        .unwrap_or_else(|| format!("postmaster@{domain}"));
    let body = Zeroizing::new(fill(&t.sender_text, &secret_values));
    let mut head = MessageBuilder::new()
        .raw("From", &notification_from)
        .raw(
            "To",
            &sender_mailbox.map_or_else(|| notification_from.clone(), |a| format!("<{a}>")),
        )
        .text("Subject", &fill(&t.sender_subject, &text_values))
        .raw("Date", &format_date(options.now))
        .raw("Message-ID", &message_id(&domain, rng))
        .raw("Auto-Submitted", "auto-generated");
    if let Some(id) = msg.header_field("Message-ID") {
        let id = String::from_utf8_lossy(id.raw_value()).trim().to_string();
        if id.is_ascii() && !id.is_empty() {
            head = head.raw("In-Reply-To", &id).raw("References", &id);
        }
    }
    let sender_notification = Zeroizing::new(head.build(&Part::plain(body.as_str()), rng));
    Ok(Packaged {
        recipient_message,
        sender_notification,
        files,
        zip_name,
    })
}

/// Copy a header field, 7-bit: as it is when ASCII; otherwise unstructured fields are encoded
/// per RFC 2047 and address fields keep only their addresses (RFC 6532 UTF-8 headers cannot
/// travel 7-bit as they are).
fn copy_field(head: MessageBuilder, f: &HeaderField<'_>) -> MessageBuilder {
    if f.raw.is_ascii() {
        return head.copied(f.raw);
    }
    let address_field = ["From", "To", "Cc", "Bcc", "Reply-To", "Sender"]
        .iter()
        .any(|n| f.is_named(n));
    if address_field {
        let list = mailboxes(f.raw_value())
            .into_iter()
            .filter(|a| a.is_ascii())
            .map(|a| format!("<{a}>"))
            .collect::<Vec<_>>()
            .join(", ");
        head.raw(f.name, &list)
    } else {
        head.text(f.name, &f.value())
    }
}

/// Replace `{name}` placeholders in one pass.
fn fill(template: &str, values: &[(&str, Cow<'_, str>)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let (before, after) = rest.split_at(open);
        out.push_str(before);
        let key_end = after.find('}');
        let value = key_end.and_then(|end| {
            let key = after.get(1..end)?;
            values
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (v, end))
        });
        match value {
            Some((v, end)) => {
                out.push_str(v);
                rest = after.get(end + 1..).unwrap_or_default();
            }
            None => {
                out.push('{');
                rest = after.get(1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Whether an entity is an attachment: it has a file name, says `attachment`, or is a message
/// (whose own attachments would otherwise travel in clear), a signed or encrypted entity
/// (which cannot be taken apart without breaking it).
fn is_attachment(e: &Entity<'_>) -> bool {
    let ct = e.content_type();
    e.filename().is_some()
        || e.content_disposition()
            .is_some_and(|d| d.mime_type == "attachment")
        || ct.mime_type == "message/rfc822"
        || ct.mime_type == "multipart/signed"
        || ct.mime_type == "multipart/encrypted"
        || ct.mime_type == "application/pkcs7-mime"
        || ct.mime_type == "application/x-pkcs7-mime"
}

/// Move the attachments of `e` into `found`; return the entity without them (7-bit, CRLF),
/// or `None` when nothing is left.
fn split<'a>(
    e: &Entity<'a>,
    top: bool,
    found: &mut Vec<(String, Cow<'a, [u8]>)>,
    limits: &Limits,
) -> Result<Option<Vec<u8>>> {
    let ct = e.content_type();
    if is_attachment(e) {
        let n = found.len() + 1;
        let name = e.filename().unwrap_or_else(|| match ct.mime_type.as_str() {
            "message/rfc822" => format!("message-{n}.eml"),
            "multipart/signed" => format!("signed-{n}.eml"),
            "multipart/encrypted" | "application/pkcs7-mime" | "application/x-pkcs7-mime" => {
                format!("encrypted-{n}.eml")
            }
            _ => format!("attachment-{n}.bin"),
        });
        let data = if ct.is_multipart()
            || (ct.mime_type.ends_with("pkcs7-mime") && e.filename().is_none())
        {
            // A signed or encrypted entity travels whole, as a message file.
            Cow::Owned(mime_entity(e, top))
        } else if ct.mime_type == "message/rfc822" && !is_encoded(e) {
            Cow::Borrowed(e.body())
        } else {
            Cow::Owned(e.decoded_body(limits)?)
        };
        found.push((name, data));
        return Ok(None);
    }
    if ct.is_multipart() {
        let boundary = ct
            .param("boundary")
            .ok_or_else(|| malformed("multipart without boundary"))?
            .to_string();
        let mut kept = Vec::new();
        for child in e.parts(limits)? {
            if let Some(k) = split(&child, false, found, limits)? {
                kept.push(k);
            }
        }
        if kept.is_empty() {
            return Ok(None);
        }
        let mut out = mime_header_block(e, top);
        out.extend_from_slice(b"\r\n");
        for k in kept {
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            out.extend_from_slice(&k);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        return Ok(Some(out));
    }
    // A body part that stays: 7-bit and CRLF so it can sit in our multipart/mixed.
    let entity = mime_entity(e, top);
    let seven = make_seven_bit(&entity, limits)?;
    Ok(Some(canonicalize_crlf(&seven).into_owned()))
}

fn is_encoded(e: &Entity<'_>) -> bool {
    matches!(
        e.transfer_encoding().as_deref(),
        Some("base64" | "quoted-printable")
    )
}

/// The MIME header fields of `e` (all of them below the top; only the Content-* ones at the
/// top, where the rest are message fields), each ending in CRLF.
fn mime_header_block(e: &Entity<'_>, top: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for f in e.headers() {
        if top && (!f.is_mime_field() || f.is_named("MIME-Version")) {
            continue;
        }
        let raw = f.raw;
        let trimmed = raw
            .strip_suffix(b"\r\n")
            .or_else(|| raw.strip_suffix(b"\n"))
            .unwrap_or(raw);
        out.extend_from_slice(&canonicalize_crlf(trimmed));
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn mime_entity(e: &Entity<'_>, top: bool) -> Vec<u8> {
    let mut out = mime_header_block(e, top);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&canonicalize_crlf(e.body()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_all;

    const MSG: &str = "From: \"Alice Sender\" <alice@example.com>\n\
To: Bob <bob@example.org>, carol@example.net\n\
Subject: =?utf-8?q?Quartalszahlen_f=C3=BCr_Q3?=\n\
Message-ID: <orig-1@example.com>\n\
Date: Mon, 30 Nov 2026 10:00:00 +0000\n\
MIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"b1\"\n\
\n\
--b1\n\
Content-Type: text/plain; charset=utf-8\n\
Content-Transfer-Encoding: 8bit\n\
\n\
Hallo Bob, die Zahlen anbei. Grüße\n\
--b1\n\
Content-Type: application/pdf; name=\"report.pdf\"\n\
Content-Disposition: attachment; filename=\"report.pdf\"\n\
Content-Transfer-Encoding: base64\n\
\n\
JVBERi0xLjQKc2VjcmV0IGZpZ3VyZXMK\n\
--b1\n\
Content-Type: text/csv\n\
Content-Disposition: attachment; filename*=utf-8''%D0%B4%D0%B0%D0%BD%D0%BD%D1%8B%D0%B5.csv\n\
\n\
a,b\n\
1,2\n\
--b1--\n";

    fn files_in(recipient: &[u8], password: &Password, limits: &Limits) -> Vec<(String, Vec<u8>)> {
        let e = Entity::parse(recipient, limits).unwrap();
        let parts = e.parts(limits).unwrap();
        let zips: Vec<_> = parts.iter().filter(|p| p.filename().is_some()).collect();
        assert_eq!(zips.len(), 1, "exactly one attachment: the ZIP");
        assert_eq!(zips[0].content_type().mime_type, "application/zip");
        let zip = zips[0].decoded_body(limits).unwrap();
        read_all(&zip, Some(password), limits)
            .unwrap()
            .into_iter()
            .map(|x| (x.name, x.data.to_vec()))
            .collect()
    }

    #[test]
    fn attachments_go_into_the_zip_and_the_body_stays() {
        let limits = Limits::default();
        let pw = Password::from("s3cret-pass");
        let out = package(
            MSG.as_bytes(),
            &pw,
            &PackageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let r = &out.recipient_message;
        assert!(r.is_ascii());
        assert!(
            memchr::memmem::find(r, b"JVBERi0x").is_none(),
            "attachment in clear"
        );
        let files = files_in(r, &pw, &limits);
        assert_eq!(
            files[0],
            (
                "report.pdf".to_string(),
                b"%PDF-1.4\nsecret figures\n".to_vec()
            )
        );
        assert_eq!(files[1], ("данные.csv".to_string(), b"a,b\n1,2".to_vec()));
        let e = Entity::parse(r, &limits).unwrap();
        assert_eq!(
            e.header("Message-ID").as_deref(),
            Some("<orig-1@example.com>")
        );
        assert_eq!(
            e.header("Subject").as_deref(),
            Some("Quartalszahlen für Q3")
        );
        assert_eq!(e.content_type().mime_type, "multipart/mixed");
        let parts = e.parts(&limits).unwrap();
        // explanation, the original text (readable), the ZIP
        assert_eq!(parts.len(), 3);
        let text = parts[1].parts(&limits).unwrap();
        assert_eq!(text.len(), 1);
        assert_eq!(
            text[0].decoded_body(&limits).unwrap(),
            "Hallo Bob, die Zahlen anbei. Grüße".as_bytes()
        );
        let alt = parts[0].parts(&limits).unwrap();
        let plain = String::from_utf8(alt[0].decoded_body(&limits).unwrap()).unwrap();
        assert!(plain.contains("report.pdf") && plain.contains("данные.csv"));
        assert!(plain.contains("Alice Sender"));
        assert!(!plain.contains("s3cret-pass"));
        assert!(!String::from_utf8_lossy(r).contains("s3cret-pass"));

        let s = Entity::parse(&out.sender_notification, &limits).unwrap();
        assert_eq!(s.header("To").as_deref(), Some("<alice@example.com>"));
        assert_eq!(
            s.header("In-Reply-To").as_deref(),
            Some("<orig-1@example.com>")
        );
        assert!(s.header("Message-ID").is_some() && s.header("Date").is_some());
        assert_eq!(
            s.header("Subject").as_deref(),
            Some("Password for your message: Quartalszahlen für Q3")
        );
        let body = String::from_utf8(s.decoded_body(&limits).unwrap()).unwrap();
        assert!(body.contains("    s3cret-pass\r\n"));
        assert!(body.contains("bob@example.org, carol@example.net"));
        assert!(body.contains("данные.csv"));
        assert!(out.sender_notification.is_ascii());
    }

    #[test]
    fn whole_message_and_zipcrypto() {
        let limits = Limits::default();
        let pw = Password::from("pw");
        let o = PackageOptions {
            scope: Scope::WholeMessage,
            encryption: Encryption::ZipCrypto,
            ..PackageOptions::default()
        };
        let out = package(MSG.as_bytes(), &pw, &o, &mut rand_core::OsRng, &limits).unwrap();
        let files = files_in(&out.recipient_message, &pw, &limits);
        assert_eq!(
            files,
            vec![("message.eml".to_string(), MSG.as_bytes().to_vec())]
        );
        assert_eq!(out.zip_name, "message.zip");
        let e = Entity::parse(&out.recipient_message, &limits).unwrap();
        assert_eq!(e.parts(&limits).unwrap().len(), 2);
        assert!(!String::from_utf8_lossy(&out.recipient_message).contains("Hallo Bob"));
    }

    #[test]
    fn no_attachments_and_placeholders() {
        let limits = Limits::default();
        let plain = b"From: a@example.com\nSubject: {password}\n\nhello\n";
        let r = package(
            plain,
            &Password::from("pw"),
            &PackageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        );
        assert!(matches!(r, Err(Error::NoAttachments)));
        // A subject that names a placeholder is not expanded (single pass).
        let o = PackageOptions {
            scope: Scope::WholeMessage,
            ..PackageOptions::default()
        };
        let out = package(
            plain,
            &Password::from("TOPSECRET"),
            &o,
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        assert!(!String::from_utf8_lossy(&out.recipient_message).contains("TOPSECRET"));
        let s = Entity::parse(&out.sender_notification, &limits).unwrap();
        assert_eq!(
            s.header("Subject").as_deref(),
            Some("Password for your message: {password}")
        );
        assert_eq!(
            fill("{a}{b}{", &[("a", "{b}".into()), ("b", "x".into())]),
            "{b}x{"
        );
    }
}
