//! Building new messages: a small multipart builder for the messages a gateway writes itself
//! (password-ZIP recipient messages and sender notifications, key-exchange replies, bounces).
//!
//! Everything it writes is 7-bit and CRLF: header text outside ASCII becomes RFC 2047 encoded
//! words, file names RFC 2231 parameters, text bodies quoted-printable where they need it,
//! binary bodies base64.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::RngCore;

use crate::smime::choose_boundary;
use crate::transfer::{encode_base64_lines, encode_quoted_printable};

/// One MIME entity to build.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Part<'a> {
    /// `text/SUBTYPE; charset=utf-8`: 7bit when it is short-lined ASCII, else quoted-printable.
    /// Line ends are made CRLF.
    Text {
        /// `plain`, `html`, ...
        subtype: Cow<'a, str>,
        /// The text.
        text: Cow<'a, str>,
    },
    /// A base64 body, as an attachment when it has a file name.
    Binary {
        /// The media type, e.g. `application/zip`.
        content_type: Cow<'a, str>,
        /// The file name (any Unicode; written per RFC 2231, with an RFC 2047 `name` fallback).
        filename: Option<Cow<'a, str>>,
        /// The bytes.
        data: Cow<'a, [u8]>,
    },
    /// An entity already built (header fields, empty line, body), copied as it is: the caller
    /// makes sure it is 7-bit and CRLF.
    Raw(Cow<'a, [u8]>),
    /// `multipart/SUBTYPE` of the parts.
    Multipart {
        /// `mixed`, `alternative`, ...
        subtype: Cow<'a, str>,
        /// The children.
        parts: Vec<Part<'a>>,
    },
}

impl<'a> Part<'a> {
    /// A `text/plain` part.
    pub fn plain(text: impl Into<Cow<'a, str>>) -> Self {
        Part::Text {
            subtype: "plain".into(),
            text: text.into(),
        }
    }

    /// A `text/html` part.
    pub fn html(text: impl Into<Cow<'a, str>>) -> Self {
        Part::Text {
            subtype: "html".into(),
            text: text.into(),
        }
    }

    /// An attachment.
    pub fn attachment(
        content_type: impl Into<Cow<'a, str>>,
        filename: impl Into<Cow<'a, str>>,
        data: impl Into<Cow<'a, [u8]>>,
    ) -> Self {
        Part::Binary {
            content_type: content_type.into(),
            filename: Some(filename.into()),
            data: data.into(),
        }
    }

    /// A multipart of `parts`.
    pub fn multipart(subtype: impl Into<Cow<'a, str>>, parts: Vec<Part<'a>>) -> Self {
        Part::Multipart {
            subtype: subtype.into(),
            parts,
        }
    }

    /// The entity: header fields, empty line, body, CRLF throughout.
    pub fn to_bytes(&self, rng: &mut impl RngCore) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out, rng);
        out
    }

    fn write(&self, out: &mut Vec<u8>, rng: &mut impl RngCore) {
        match self {
            Part::Text { subtype, text } => {
                let subtype = token(subtype);
                let crlf = crlf_text(text);
                let seven_bit = crlf.is_ascii() && crlf.split("\r\n").all(|l| l.len() <= 76);
                out.extend_from_slice(
                    format!("Content-Type: text/{subtype}; charset=utf-8\r\n").as_bytes(),
                );
                if seven_bit {
                    out.extend_from_slice(b"Content-Transfer-Encoding: 7bit\r\n\r\n");
                    out.extend_from_slice(crlf.as_bytes());
                } else {
                    out.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n");
                    encode_quoted_printable(crlf.as_bytes(), b"\r\n", out);
                }
                if !out.ends_with(b"\r\n") {
                    out.extend_from_slice(b"\r\n");
                }
            }
            Part::Binary {
                content_type,
                filename,
                data,
            } => {
                let ct = content_type.replace(['\r', '\n'], " ");
                match filename {
                    Some(name) => {
                        out.extend_from_slice(
                            format!("Content-Type: {ct};\r\n {}\r\n", name_param(name)).as_bytes(),
                        );
                        out.extend_from_slice(b"Content-Disposition: attachment;\r\n");
                        out.extend_from_slice(filename_param("filename", name).as_bytes());
                        out.extend_from_slice(b"\r\n");
                    }
                    None => out.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes()),
                }
                out.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\n");
                encode_base64_lines(data, b"\r\n", out);
            }
            Part::Raw(raw) => {
                out.extend_from_slice(raw);
                if !out.ends_with(b"\r\n") {
                    out.extend_from_slice(b"\r\n");
                }
            }
            Part::Multipart { subtype, parts } => {
                let children: Vec<Vec<u8>> = parts.iter().map(|p| p.to_bytes(rng)).collect();
                let pieces: Vec<&[u8]> = children.iter().map(Vec::as_slice).collect();
                let boundary = choose_boundary(&pieces, rng);
                out.extend_from_slice(
                    format!(
                        "Content-Type: multipart/{};\r\n boundary=\"{boundary}\"\r\n\r\n",
                        token(subtype)
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(b"This is a multi-part message in MIME format.\r\n");
                for child in &children {
                    out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
                    // The child ends in CRLF; the CRLF before the next delimiter belongs to
                    // the delimiter (RFC 2046 §5.1.1), so the child's own line end survives.
                    out.extend_from_slice(child);
                }
                out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            }
        }
    }
}

/// A whole message: header fields in the order given, then `MIME-Version` and the body part.
#[derive(Debug, Clone, Default)]
pub struct MessageBuilder {
    fields: Vec<Vec<u8>>,
}

impl MessageBuilder {
    /// No fields yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A field whose value is unstructured text (Subject, Comments): encoded per RFC 2047
    /// when it is not ASCII, folded to fit.
    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.fields.push(field(name, &encode_text(value)));
        self
    }

    /// A field whose value is already in wire form (addresses as the original message had
    /// them, Message-ID, Date): ASCII, copied with CR and LF removed.
    pub fn raw(mut self, name: &str, value: &str) -> Self {
        let clean: String = value
            .chars()
            .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
            .collect();
        self.fields.push(field(name, clean.trim()));
        self
    }

    /// A header field exactly as it stood in another message (name, colon, value, folding
    /// and its line end), e.g. from [`crate::HeaderField::raw`].
    pub fn copied(mut self, raw_field: &[u8]) -> Self {
        let mut f = raw_field.to_vec();
        while f.last().is_some_and(|b| *b == b'\r' || *b == b'\n') {
            f.pop();
        }
        f.extend_from_slice(b"\r\n");
        self.fields.push(f);
        self
    }

    /// Whether a field called `name` was added.
    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|f| {
            f.len() > name.len()
                && f.get(..name.len())
                    .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
                && f.get(name.len()) == Some(&b':')
        })
    }

    /// The message: fields, `MIME-Version: 1.0`, then `body`'s entity.
    pub fn build(&self, body: &Part<'_>, rng: &mut impl RngCore) -> Vec<u8> {
        let mut out = Vec::new();
        for f in &self.fields {
            out.extend_from_slice(f);
        }
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");
        body.write(&mut out, rng);
        out
    }
}

fn field(name: &str, value: &str) -> Vec<u8> {
    let mut f = format!("{name}: {value}").into_bytes();
    f.extend_from_slice(b"\r\n");
    f
}

/// Unstructured header text (RFC 5322 §2.2.1) in 7-bit form: ASCII text folded at blanks to
/// keep lines near 78 characters; anything else as RFC 2047 `B` encoded words of UTF-8, at
/// most 75 characters each, one per folded line.
pub fn encode_text(value: &str) -> String {
    let value: String = value
        .chars()
        .map(|c| {
            if c == '\r' || c == '\n' || c == '\t' {
                ' '
            } else {
                c
            }
        })
        .collect();
    let needs_encoding = !value.is_ascii()
        || value.contains("=?")
        || value.chars().any(|c| c.is_ascii_control())
        || value.split(' ').any(|w| w.len() > 70);
    if !needs_encoding {
        return fold_words(&value);
    }
    // 39 input bytes make 52 base64 characters: 64 with `=?utf-8?B?` and `?=`, so that even the
    // first word fits on the line of a long field name.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > 39 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| format!("=?utf-8?B?{}?=", STANDARD.encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

fn fold_words(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let mut line = 0usize;
    for (i, word) in value.split(' ').enumerate() {
        if i > 0 {
            if line + 1 + word.len() > 76 {
                out.push_str("\r\n ");
                line = 1;
            } else {
                out.push(' ');
                line += 1;
            }
        }
        out.push_str(word);
        line += word.len();
    }
    out
}

/// A display name and address as a mailbox (`"Name" <addr>` or RFC 2047 encoded name).
pub fn encode_mailbox(display_name: &str, address: &str) -> String {
    let address: String = address
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '<' | '>' | '"' | ','))
        .collect();
    if display_name.is_empty() {
        return format!("<{address}>");
    }
    if display_name.is_ascii() && !display_name.chars().any(|c| c.is_ascii_control()) {
        let quoted = display_name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{quoted}\" <{address}>")
    } else {
        format!("{} <{address}>", encode_text(display_name))
    }
}

/// The `name=` parameter of Content-Type: quoted ASCII, or an RFC 2047 encoded word in a
/// quoted string (not standard, but what Outlook and older clients read when they do not read
/// RFC 2231).
fn name_param(name: &str) -> String {
    if is_plain_param(name) {
        format!("name=\"{name}\"")
    } else {
        format!("name=\"{}\"", encode_text(name))
    }
}

fn is_plain_param(v: &str) -> bool {
    v.is_ascii()
        && v.len() <= 60
        && !v.is_empty()
        && v.chars()
            .all(|c| !c.is_ascii_control() && c != '"' && c != '\\')
}

/// A parameter holding a file name: `param="name"` when it is short plain ASCII, otherwise
/// RFC 2231 `param*0*=utf-8''...; param*1*=...` in percent-encoded UTF-8, continued so that no
/// line passes 78 characters. Returned with leading blank, ready to follow a `;` line.
pub fn filename_param(param: &str, filename: &str) -> String {
    if is_plain_param(filename) {
        return format!(" {param}=\"{filename}\"");
    }
    // Percent-encoded UTF-8 in sections of at most 50 characters, split between characters
    // (some readers decode each section on its own).
    let mut sections: Vec<String> = vec![String::new()];
    for c in filename.chars() {
        let mut utf8 = [0u8; 4];
        let mut enc = String::new();
        for &b in c.encode_utf8(&mut utf8).as_bytes() {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                enc.push(char::from(b));
            } else {
                enc.push_str(&format!("%{b:02X}"));
            }
        }
        if sections.last().is_some_and(|s| s.len() + enc.len() > 50) {
            sections.push(String::new());
        }
        if let Some(last) = sections.last_mut() {
            last.push_str(&enc);
        }
    }
    if let [only] = sections.as_slice() {
        return format!(" {param}*=utf-8''{only}");
    }
    sections
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let charset = if i == 0 { "utf-8''" } else { "" };
            format!(" {param}*{i}*={charset}{s}")
        })
        .collect::<Vec<_>>()
        .join(";\r\n")
}

/// Keep a media type or subtype token to token characters (RFC 2045 §5.1).
fn token(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(*c))
        .collect()
}

fn crlf_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 40);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            c => out.push(c),
        }
    }
    out
}

/// A new Message-ID value, `<32 hex digits@domain>` (RFC 5322 §3.6.4).
pub fn message_id(domain: &str, rng: &mut impl RngCore) -> String {
    let mut random = [0u8; 16];
    rng.fill_bytes(&mut random);
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let domain: String = domain
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .collect();
    let domain = if domain.is_empty() {
        "localhost".to_string()
    } else {
        domain
    };
    format!("<{hex}@{domain}>")
}

/// An RFC 5322 §3.3 date-time in UTC, e.g. `Wed, 02 Dec 2026 06:27:06 +0000`.
pub fn format_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .get(m as usize - 1)
    .copied()
    .unwrap_or("Jan");
    format!(
        "{weekday}, {d:02} {month} {y} {:02}:{:02}:{:02} +0000",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Proleptic Gregorian date (year, month, day) of a day count since 1970-01-01 (H. Hinnant's
/// civil_from_days). The one calendar routine of the workspace: Date fields, RFC 3339 stamps
/// and ZIP's DOS times all use it.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Day count since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil,
/// the inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the Unix epoch of an RFC 5322 §3.3 date-time (`Tue, 1 Jul 2003 10:52:37
/// +0200`), with the obsolete forms of §4.3 that mail still carries: no day of week, two- and
/// three-digit years, seconds left out, the named zones (`UT`, `GMT`, `EST` ... `PDT`; military
/// letters and unknown names count as `-0000`), comments in parentheses. `None` for anything
/// else (a field no one can order by), never a panic.
pub fn parse_date(value: &str) -> Option<i64> {
    // Comments out (not nested more than the field is long), commas and runs of blanks to one.
    let mut text = String::with_capacity(value.len());
    let mut depth = 0usize;
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            ',' => text.push(' '),
            c => text.push(c),
        }
    }
    let mut words: Vec<&str> = text.split_whitespace().collect();
    if let Some(first) = words.first()
        && first.chars().all(|c| c.is_ascii_alphabetic())
    {
        words.remove(0); // day of week: not checked (many senders get it wrong)
    }
    let [day, month, year, time, zone @ ..] = words.as_slice() else {
        return None;
    };
    let num = |s: &str, max_len: usize| -> Option<i64> {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let d = u32::try_from(num(day, 2)?).ok()?;
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let m = MONTHS
        .iter()
        .position(|n| n.eq_ignore_ascii_case(month))
        .and_then(|i| u32::try_from(i + 1).ok())?;
    let y = match (num(year, 4)?, year.len()) {
        (y, 2) if y < 50 => 2000 + y,
        (y, 2 | 3) => 1900 + y,
        (y, 4) => y,
        _ => return None,
    };
    let hms: Vec<&str> = time.split(':').collect();
    let (h, mi, sec) = match hms.as_slice() {
        [h, mi] => (num(h, 2)?, num(mi, 2)?, 0),
        [h, mi, s] => (num(h, 2)?, num(mi, 2)?, num(s, 2)?),
        _ => return None,
    };
    let days_in_month = match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    // 60 seconds: a leap second.
    if d == 0 || d > days_in_month || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let offset = match zone.first().copied() {
        None => 0,
        Some(z) if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let hh = num(&z[1..3], 2)?;
            let mm = num(&z[3..5], 2)?;
            if mm > 59 {
                return None;
            }
            let o = hh * 3600 + mm * 60;
            if z.starts_with('-') { -o } else { o }
        }
        Some(z) => {
            let hours = match z.to_ascii_uppercase().as_str() {
                "EDT" => -4,
                "EST" | "CDT" => -5,
                "CST" | "MDT" => -6,
                "MST" | "PDT" => -7,
                "PST" => -8,
                _ if z.chars().all(|c| c.is_ascii_alphabetic()) => 0,
                _ => return None,
            };
            hours * 3600
        }
    };
    Some(days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

/// RFC 3339 date-time in UTC with second precision (`2026-12-02T06:30:00Z`) of a count of
/// seconds since the Unix epoch (negative: before it).
pub fn format_rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entity, Limits};

    #[test]
    fn parse_date_reads_what_format_date_writes_and_the_obsolete_forms() {
        for secs in [
            0u64,
            951_782_400,
            1_057_049_557,
            1_796_000_000,
            4_102_444_799,
        ] {
            let t = UNIX_EPOCH + std::time::Duration::from_secs(secs);
            assert_eq!(parse_date(&format_date(t)), Some(secs as i64), "{secs}");
        }
        // RFC 5322 Appendix A examples and obsolete forms (§4.3).
        assert_eq!(
            parse_date("Fri, 21 Nov 1997 09:55:06 -0600"),
            Some(880_127_706)
        );
        assert_eq!(parse_date("21 Nov 97 09:55:06 GMT"), Some(880_106_106));
        assert_eq!(
            parse_date("Thu,\r\n 13\r\n  Feb\r\n    1969\r\n 23:32\r\n -0330 (Newfoundland Time)"),
            Some(-27_723_480)
        );
        assert_eq!(
            parse_date("Tue, 1 Jul 2003 10:52:37 +0200"),
            Some(1_057_049_557)
        );
        assert_eq!(parse_date("1 Jul 2003 03:52:37 PDT"), Some(1_057_056_757));
        assert_eq!(
            parse_date("Tue, 01 Jul 103 10:52 +0000"),
            Some(1_057_056_720)
        );
        assert_eq!(parse_date("Tue, 1 Jul 2003 10:52:37"), Some(1_057_056_757));
        for bad in [
            "",
            "yesterday",
            "32 Jan 2020 00:00:00 +0000",
            "29 Feb 2021 00:00:00 +0000",
            "1 Foo 2020 00:00:00 +0000",
            "1 Jan 2020 24:00:00 +0000",
            "1 Jan 2020 10:00:00 +0099",
            "1 Jan 2020 10:00:00 +00",
            "1 Jan 20200 10:00:00 +0000",
            "1 Jan 2020 1:2:3:4 +0000",
            "((((",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_date("29 Feb 2024 00:00:00 +0000"),
            Some(1_709_164_800)
        );
    }

    #[test]
    fn dates_and_ids() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(format_date(t), "Tue, 14 Nov 2023 22:13:20 +0000");
        assert_eq!(format_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
        let id = message_id("example.org", &mut rand_core::OsRng);
        assert!(id.starts_with('<') && id.ends_with("@example.org>") && id.len() == 46);
    }

    #[test]
    fn header_text_round_trips_through_the_parser() {
        let limits = Limits::default();
        for subject in [
            "Hello",
            "Grüße aus Köln — ein sehr langer Betreff, der über mehrere Zeilen gefaltet werden muss ☃",
            "日本語の件名",
            "a =?utf-8?q?x?= trick",
            "line\r\nInjected: header",
        ] {
            let msg = MessageBuilder::new()
                .text("Subject", subject)
                .build(&Part::plain("x"), &mut rand_core::OsRng);
            assert!(msg.is_ascii());
            assert!(msg.split(|b| *b == b'\n').all(|l| l.len() <= 78));
            let e = Entity::parse(&msg, &limits).unwrap();
            assert_eq!(e.header("Subject").unwrap(), subject.replace("\r\n", "  "));
            assert!(e.header("Injected").is_none());
        }
    }

    #[test]
    fn multipart_with_attachment_parses_back() {
        let limits = Limits::default();
        let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let name = "Квартальный отчёт — очень длинное имя файла для проверки продолжений.zip";
        let body = Part::multipart(
            "mixed",
            vec![
                Part::multipart(
                    "alternative",
                    vec![Part::plain("Grüße\nline two\n"), Part::html("<p>Grüße</p>")],
                ),
                Part::attachment("application/zip", name, &data[..]),
            ],
        );
        let msg = MessageBuilder::new()
            .raw("From", "a@example.org")
            .build(&body, &mut rand_core::OsRng);
        assert!(msg.is_ascii());
        assert!(msg.split(|b| *b == b'\n').all(|l| l.len() <= 78));
        let e = Entity::parse(&msg, &limits).unwrap();
        let parts = e.parts(&limits).unwrap();
        assert_eq!(parts.len(), 2);
        let alt = parts[0].parts(&limits).unwrap();
        assert_eq!(
            alt[0].decoded_body(&limits).unwrap(),
            "Grüße\r\nline two\r\n".as_bytes()
        );
        assert_eq!(alt[1].content_type().mime_type, "text/html");
        assert_eq!(parts[1].filename().as_deref(), Some(name));
        assert_eq!(parts[1].decoded_body(&limits).unwrap(), data);
        // mail-parser (the parser most Rust mail code uses) agrees
        use mail_parser::MimeHeaders;
        let parsed = mail_parser::MessageParser::default()
            .parse(&msg[..])
            .unwrap();
        assert_eq!(
            parsed.attachment(0).and_then(|a| a.attachment_name()),
            Some(name)
        );
    }

    #[test]
    fn crlf_normalisation() {
        assert_eq!(crlf_text("a\nb\r\nc\rd"), "a\r\nb\r\nc\r\nd");
    }
}
