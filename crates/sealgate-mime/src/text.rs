//! Text of a MIME part as a reader sees it: transfer encoding undone, charset decoded
//! (ISO-2022-JP, Shift_JIS, EUC-JP, UTF-8, Latin-1, the Windows code pages, ...), and HTML
//! reduced to its text. Content filters (the policy) read bodies through this.

use crate::{Entity, Limits, Result};

impl Entity<'_> {
    /// The `charset` parameter of the Content-Type, if any.
    pub fn charset(&self) -> Option<String> {
        self.content_type().param("charset").map(str::to_string)
    }

    /// The body as text: [`Entity::decoded_body`], then decoded from its declared charset
    /// (or guessed with [`decode_text`] when none is declared), and for `text/html` reduced
    /// to text with [`html_to_text`]. Undecodable bytes become U+FFFD, never an error.
    pub fn decoded_text(&self, limits: &Limits) -> Result<String> {
        let bytes = self.decoded_body(limits)?;
        let text = decode_text(&bytes, self.charset().as_deref());
        if self.content_type().mime_type == "text/html" {
            Ok(html_to_text(&text))
        } else {
            Ok(text)
        }
    }
}

/// Decode `bytes` to text. A known `charset` label (any label mail-parser or the WHATWG
/// Encoding Standard knows) is used as declared, except that a byte-order mark wins; without
/// one the text is taken as UTF-8 if it is valid, ISO-2022-JP if it has its escape sequences,
/// Shift_JIS or EUC-JP if it decodes cleanly as one, and Windows-1252 (Latin-1) otherwise.
pub fn decode_text(bytes: &[u8], charset: Option<&str>) -> String {
    if let Some((enc, bom_len)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _) = enc.decode_without_bom_handling(bytes.get(bom_len..).unwrap_or_default());
        return text.into_owned();
    }
    if let Some(label) = charset.map(str::trim).filter(|l| !l.is_empty()) {
        // us-ascii text that is really UTF-8 is common; valid UTF-8 reads as UTF-8.
        let ascii = label.eq_ignore_ascii_case("us-ascii") || label.eq_ignore_ascii_case("ascii");
        if ascii && let Ok(s) = std::str::from_utf8(bytes) {
            return s.to_string();
        }
        if let Some(decoder) =
            mail_parser::decoders::charsets::map::charset_decoder(label.as_bytes())
        {
            return decoder(bytes);
        }
        if let Some(enc) = encoding_rs::Encoding::for_label(label.as_bytes()) {
            return enc.decode_without_bom_handling(bytes).0.into_owned();
        }
    }
    guess(bytes)
}

fn guess(bytes: &[u8]) -> String {
    // ISO-2022-JP is 7-bit (so valid UTF-8): its escape sequences tell it apart.
    if memchr::memmem::find(bytes, b"\x1b$B").is_some()
        || memchr::memmem::find(bytes, b"\x1b$@").is_some()
    {
        return encoding_rs::ISO_2022_JP
            .decode_without_bom_handling(bytes)
            .0
            .into_owned();
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return s.to_string();
    }
    for enc in [encoding_rs::SHIFT_JIS, encoding_rs::EUC_JP] {
        if let Some(text) = enc.decode_without_bom_handling_and_without_replacement(bytes) {
            return text.into_owned();
        }
    }
    encoding_rs::WINDOWS_1252
        .decode_without_bom_handling(bytes)
        .0
        .into_owned()
}

/// Reduce HTML to the text a reader sees: tags, comments, `<script>`, `<style>` and `<head>`
/// dropped, block elements and `<br>` as line breaks, character references decoded, runs of
/// white space collapsed. Linear in the input; never fails.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut space_pending = false;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            if let Some(after) = rest.strip_prefix("<!--") {
                rest = after.find("-->").map_or("", |i| &after[i + 3..]);
                continue;
            }
            // '<' is one byte, so index 1 is a character boundary.
            let (tag, next) = match rest.find('>') {
                Some(i) => (&rest[1..i], i + 1),
                None => (&rest[1..], rest.len()),
            };
            rest = &rest[next..];
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_lowercase())
                .collect();
            let closing = tag.starts_with('/');
            if !closing && matches!(name.as_str(), "script" | "style" | "head" | "title") {
                // Skip to the matching close tag (case-insensitive, ASCII).
                let close = format!("</{name}");
                rest = find_ascii_ci(rest, &close).map_or("", |i| {
                    let after = &rest[i..];
                    after.find('>').map_or("", |j| &after[j + 1..])
                });
                continue;
            }
            if matches!(
                name.as_str(),
                "br" | "p"
                    | "div"
                    | "tr"
                    | "li"
                    | "h1"
                    | "h2"
                    | "h3"
                    | "h4"
                    | "h5"
                    | "h6"
                    | "table"
                    | "ul"
                    | "ol"
                    | "blockquote"
                    | "pre"
                    | "hr"
            ) {
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                space_pending = false;
            } else if matches!(name.as_str(), "td" | "th") {
                space_pending = true;
            }
            continue;
        }
        if c == '&' {
            let (decoded, used) = char_reference(rest);
            if let Some(d) = decoded {
                push_text(&mut out, d, &mut space_pending);
                rest = &rest[used..];
                continue;
            }
        }
        push_text(&mut out, c, &mut space_pending);
        rest = &rest[c.len_utf8()..];
    }
    out.trim().to_string()
}

fn push_text(out: &mut String, c: char, space_pending: &mut bool) {
    if c.is_whitespace() {
        *space_pending = true;
        return;
    }
    if *space_pending && !out.is_empty() && !out.ends_with('\n') {
        out.push(' ');
    }
    *space_pending = false;
    out.push(c);
}

fn find_ascii_ci(hay: &str, needle: &str) -> Option<usize> {
    let n = needle.as_bytes();
    hay.as_bytes()
        .windows(n.len())
        .position(|w| w.eq_ignore_ascii_case(n))
}

/// A character reference at the start of `s` (`&amp;`, `&#233;`, `&#xE9;`): the character and
/// how many bytes it takes, or `None` when it is not one (the `&` is then text).
fn char_reference(s: &str) -> (Option<char>, usize) {
    let Some(semi) = s.get(..s.len().min(12)).and_then(|h| h.find(';')) else {
        return (None, 0);
    };
    let body = &s[1..semi];
    let c = if let Some(num) = body.strip_prefix('#') {
        let value = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => num.parse::<u32>().ok(),
        };
        value.map(|v| char::from_u32(v).unwrap_or('\u{FFFD}'))
    } else {
        match body {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            "euro" => Some('€'),
            "copy" => Some('©'),
            "reg" => Some('®'),
            "auml" => Some('ä'),
            "ouml" => Some('ö'),
            "uuml" => Some('ü'),
            "Auml" => Some('Ä'),
            "Ouml" => Some('Ö'),
            "Uuml" => Some('Ü'),
            "szlig" => Some('ß'),
            "eacute" => Some('é'),
            "egrave" => Some('è'),
            "agrave" => Some('à'),
            "ccedil" => Some('ç'),
            _ => None,
        }
    };
    (c, semi + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charsets() {
        // "秘密" in ISO-2022-JP, Shift_JIS and EUC-JP
        let jis = b"\x1b$BHkL)\x1b(B";
        let sjis = b"\x94\xe9\x96\xa7";
        let euc = b"\xc8\xeb\xcc\xa9";
        assert_eq!(decode_text(jis, Some("iso-2022-jp")), "秘密");
        assert_eq!(decode_text(jis, None), "秘密");
        assert_eq!(decode_text(sjis, Some("Shift_JIS")), "秘密");
        assert_eq!(decode_text(sjis, None), "秘密");
        assert_eq!(decode_text(euc, Some("euc-jp")), "秘密");
        assert_eq!(decode_text(b"caf\xe9", Some("iso-8859-1")), "café");
        assert_eq!(decode_text(b"caf\xe9", None), "café");
        assert_eq!(decode_text("café".as_bytes(), Some("us-ascii")), "café");
        assert_eq!(decode_text(b"\xff\xfeh\0i\0", None), "hi");
    }

    #[test]
    fn html() {
        let html = "<html><head><title>T</title><style>p{}</style></head><body><p>Hello&nbsp;<b>W</b>orld</p>\
<!-- secret --><script>var x='<p>';</script><div>caf&eacute; &#x263A; &amp; &bogus;</div>x<br>y<td>a</td><td>b</td></body></html>";
        assert_eq!(
            html_to_text(html),
            "Hello World\ncafé ☺ & &bogus;\nx\ny a b"
        );
        assert_eq!(html_to_text("<p"), "");
        assert_eq!(html_to_text("a<!-- never closed"), "a");
        assert_eq!(html_to_text("<SCRIPT>x"), "");
        assert_eq!(html_to_text("&#99999999;"), "\u{FFFD}");
    }

    #[test]
    fn entity_text() {
        let limits = Limits::default();
        let raw = b"Content-Type: text/html; charset=iso-2022-jp\r\nContent-Transfer-Encoding: base64\r\n\r\nPHA+GyRCSGtMKRsoQjwvcD4=\r\n";
        let e = Entity::parse(raw, &limits).unwrap();
        assert_eq!(e.charset().as_deref(), Some("iso-2022-jp"));
        assert_eq!(e.decoded_text(&limits).unwrap(), "秘密");
    }
}
