//! Sensitive data found with validation, not just a pattern: payment card numbers (Luhn and
//! issuer ranges), IBANs (country length and ISO 7064 mod 97-10), Japanese My Numbers
//! (check digit). Values are masked as soon as they are found; only the masked form leaves.

use serde::Serialize;

/// Kinds of built-in sensitive data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SensitiveKind {
    /// A payment card number (PAN) that passes Luhn and matches a known issuer range.
    PaymentCard,
    /// An IBAN with the right length for its country and a valid mod-97 check.
    Iban,
    /// A Japanese individual number (マイナンバー): 12 digits with a valid check digit.
    MyNumber,
}

impl SensitiveKind {
    /// The name used in rule files.
    pub fn name(self) -> &'static str {
        match self {
            Self::PaymentCard => "payment_card",
            Self::Iban => "iban",
            Self::MyNumber => "my_number",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "payment_card" => Some(Self::PaymentCard),
            "iban" => Some(Self::Iban),
            "my_number" => Some(Self::MyNumber),
            _ => None,
        }
    }
}

/// One value found in a text: its kind, its normalised value (digits, or IBAN characters)
/// and its byte range in the text.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) kind: SensitiveKind,
    pub(crate) value: String,
}

/// Find every valid card number, IBAN and My Number in `text`.
pub(crate) fn scan(text: &str, out: &mut Vec<Found>) {
    scan_digit_runs(text, out);
    scan_ibans(text, out);
}

/// Runs of digits, with single spaces or hyphens between groups, not touching other letters
/// or digits. 13–19 digits may be a card, 12 a My Number (ungrouped or 4-4-4).
fn scan_digit_runs(text: &str, out: &mut Vec<Found>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        let mut digits = String::new();
        let mut groups = Vec::new();
        let mut group = 0usize;
        let mut j = i;
        while j < b.len() && digits.len() <= 19 {
            let c = b[j];
            if c.is_ascii_digit() {
                digits.push(c as char);
                group += 1;
                j += 1;
            } else if (c == b' ' || c == b'-') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
                groups.push(group);
                group = 0;
                j += 1;
            } else {
                break;
            }
        }
        groups.push(group);
        let touches = b.get(j).is_some_and(|c| c.is_ascii_alphanumeric());
        if !touches {
            match digits.len() {
                13..=19 if is_card(&digits) => out.push(Found {
                    kind: SensitiveKind::PaymentCard,
                    value: digits,
                }),
                12 if (groups == [12] || groups == [4, 4, 4]) && is_my_number(&digits) => {
                    out.push(Found {
                        kind: SensitiveKind::MyNumber,
                        value: digits,
                    })
                }
                _ => {}
            }
        }
        i = j.max(i + 1);
    }
}

/// Luhn (ISO/IEC 7812-1 annex B).
pub(crate) fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (k, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c.wrapping_sub(b'0'));
        if d > 9 {
            return false;
        }
        if k % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// Issuer ranges (IIN prefixes) and lengths of the major networks.
fn issuer_ok(digits: &str) -> bool {
    let len = digits.len();
    let prefix = |n: usize| -> u32 { digits.get(..n).and_then(|p| p.parse().ok()).unwrap_or(0) };
    let visa = digits.starts_with('4') && matches!(len, 13 | 16 | 19);
    let mastercard =
        ((51..=55).contains(&prefix(2)) || (2221..=2720).contains(&prefix(4))) && len == 16;
    let amex = matches!(prefix(2), 34 | 37) && len == 15;
    let discover = (prefix(4) == 6011
        || (644..=649).contains(&prefix(3))
        || prefix(2) == 65
        || (622_126..=622_925).contains(&prefix(6)))
        && (16..=19).contains(&len);
    let jcb = (3528..=3589).contains(&prefix(4)) && (16..=19).contains(&len);
    let diners =
        ((300..=305).contains(&prefix(3)) || prefix(3) == 309 || matches!(prefix(2), 36 | 38 | 39))
            && (14..=19).contains(&len);
    let unionpay = prefix(2) == 62 && (16..=19).contains(&len);
    visa || mastercard || amex || discover || jcb || diners || unionpay
}

pub(crate) fn is_card(digits: &str) -> bool {
    issuer_ok(digits) && luhn(digits) && !digits.bytes().all(|c| c == digits.as_bytes()[0])
}

/// The check digit of the individual number (行政手続における特定の個人を識別するための番号の
/// 利用等に関する法律施行規則 第5条): P(n) the n-th digit from the right of the first 11,
/// Q(n) = n+1 for n ≤ 6 and n−5 for n ≥ 7; r = Σ P(n)Q(n) mod 11; check = 0 if r ≤ 1 else 11−r.
pub(crate) fn is_my_number(digits: &str) -> bool {
    let d: Vec<u32> = digits
        .bytes()
        .map(|c| u32::from(c.wrapping_sub(b'0')))
        .collect();
    if d.len() != 12 || d.iter().any(|&x| x > 9) {
        return false;
    }
    let sum: u32 = (1..=11)
        .map(|n| {
            let p = d[11 - n];
            let q = if n <= 6 { n as u32 + 1 } else { n as u32 - 5 };
            p * q
        })
        .sum();
    let r = sum % 11;
    let check = if r <= 1 { 0 } else { 11 - r };
    d[11] == check
}

/// IBAN lengths by country (SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

fn iban_length(country: &str) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(c, _)| *c == country)
        .map(|&(_, l)| l)
}

/// ISO 13616 check: move the first four characters to the end, letters to 10..35, mod 97 = 1.
pub(crate) fn iban_valid(iban: &str) -> bool {
    let b = iban.as_bytes();
    if b.len() < 5 || iban_length(iban.get(..2).unwrap_or_default()) != Some(b.len()) {
        return false;
    }
    let mut rem: u32 = 0;
    for &c in b[4..].iter().chain(&b[..4]) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// Candidates: two capital letters of a known country, two digits, then letters and digits
/// (single spaces allowed between groups) up to exactly that country's length.
fn scan_ibans(text: &str, out: &mut Vec<Found>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i + 4 <= b.len() {
        let start_ok = (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            && b[i].is_ascii_uppercase()
            && b[i + 1].is_ascii_uppercase()
            && b[i + 2].is_ascii_digit()
            && b[i + 3].is_ascii_digit();
        let Some(len) = start_ok
            .then(|| iban_length(text.get(i..i + 2).unwrap_or_default()))
            .flatten()
        else {
            i += 1;
            continue;
        };
        let mut value = String::with_capacity(len);
        let mut j = i;
        while j < b.len() && value.len() < len {
            let c = b[j];
            if c.is_ascii_digit() || c.is_ascii_uppercase() {
                value.push(c as char);
                j += 1;
            } else if c == b' ' && j > i && b.get(j + 1).is_some_and(u8::is_ascii_alphanumeric) {
                j += 1;
            } else {
                break;
            }
        }
        let ends_clean = !b.get(j).is_some_and(u8::is_ascii_alphanumeric);
        if value.len() == len && ends_clean && iban_valid(&value) {
            out.push(Found {
                kind: SensitiveKind::Iban,
                value,
            });
            i = j;
        } else {
            i += 1;
        }
    }
}

/// The masked form shown in reasons: first four and last four characters of a card or IBAN
/// (`4111 **** **** 1111`), the last four of a My Number (`**** **** 1234`).
pub(crate) fn mask(kind: SensitiveKind, value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let (keep_head, keep_tail) = match kind {
        SensitiveKind::MyNumber => (0, 4),
        _ => (4.min(n), 4.min(n.saturating_sub(4))),
    };
    let head: String = chars[..keep_head].iter().collect();
    let tail: String = chars[n - keep_tail..].iter().collect();
    let hidden = n - keep_head - keep_tail;
    let mut parts = Vec::new();
    if !head.is_empty() {
        parts.push(head);
    }
    let mut left = hidden;
    while left > 0 {
        let g = left.min(4);
        parts.push("*".repeat(g));
        left -= g;
    }
    if !tail.is_empty() {
        parts.push(tail);
    }
    parts.join(" ")
}

/// Mask a value matched by a custom pattern: its first two and last two characters stay.
pub(crate) fn mask_custom(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let mut s: String = chars[..2].iter().collect();
    s.push_str(&"*".repeat(chars.len() - 4));
    s.extend(&chars[chars.len() - 2..]);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(SensitiveKind, String)> {
        let mut out = Vec::new();
        scan(text, &mut out);
        out.into_iter().map(|f| (f.kind, f.value)).collect()
    }

    #[test]
    fn cards() {
        // Public test numbers of each network.
        for pan in [
            "4111111111111111",
            "4012888888881881",
            "5555555555554444",
            "2223003122003222",
            "378282246310005",
            "6011111111111117",
            "3530111333300000",
            "36227206271667",
            "6200000000000005",
            "4222222222222",
        ] {
            assert!(is_card(pan), "{pan}");
        }
        assert!(!is_card("4111111111111112"), "bad Luhn");
        assert!(!is_card("1234567812345670"), "Luhn ok, no issuer");
        assert!(!is_card("0000000000000000"));
        assert_eq!(
            kinds("card 4111 1111 1111 1111, exp 12/29"),
            [(SensitiveKind::PaymentCard, "4111111111111111".to_string())]
        );
        assert_eq!(kinds("Amex 3782-822463-10005.").len(), 1);
        assert!(kinds("4111 1111 1111 1112").is_empty());
        assert!(kinds("order 41111111111111111111 x").is_empty(), "too long");
        assert!(kinds("ab4111111111111111").is_empty(), "touches a letter");
    }

    #[test]
    fn my_number() {
        // 12345678901 → check digit 8 (computed by the formula above; a known sample).
        assert!(is_my_number("123456789018"));
        assert!(!is_my_number("123456789012"));
        assert_eq!(
            kinds("マイナンバー: 1234 5678 9018。"),
            [(SensitiveKind::MyNumber, "123456789018".to_string())]
        );
        assert!(kinds("1234567 89018").is_empty(), "odd grouping");
    }

    #[test]
    fn ibans() {
        assert!(iban_valid("DE89370400440532013000"));
        assert!(iban_valid("GB82WEST12345698765432"));
        assert!(!iban_valid("DE89370400440532013001"));
        assert_eq!(
            kinds("IBAN DE89 3704 0044 0532 0130 00 please"),
            [(SensitiveKind::Iban, "DE89370400440532013000".to_string())]
        );
        assert!(
            kinds("XX89370400440532013000").is_empty(),
            "unknown country"
        );
    }

    #[test]
    fn masks() {
        assert_eq!(
            mask(SensitiveKind::PaymentCard, "4111111111111111"),
            "4111 **** **** 1111"
        );
        assert_eq!(
            mask(SensitiveKind::PaymentCard, "378282246310005"),
            "3782 **** *** 0005"
        );
        assert_eq!(
            mask(SensitiveKind::MyNumber, "123456789018"),
            "**** **** 9018"
        );
        assert_eq!(
            mask(SensitiveKind::Iban, "DE89370400440532013000"),
            "DE89 **** **** **** ** 3000"
        );
        assert_eq!(mask_custom("EMP-123456"), "EM******56");
    }
}
