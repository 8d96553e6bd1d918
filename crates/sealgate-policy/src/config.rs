//! The rule file as serde reads it. Every check that can be made on one value is made while
//! deserializing it, so its errors carry that value's line and column.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::decision::{
    Action, Alphabet, Fallback, Method, SignMethod, ZipMethod, ZipPassword, ZipSettings,
};
use crate::filetype::TYPE_NAMES;

/// Largest compiled form of one regular expression (regex `size_limit`).
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyFile {
    #[serde(default)]
    pub(crate) internal_domains: Option<ListSpec>,
    #[serde(default)]
    pub(crate) lists: BTreeMap<String, ListSpec>,
    #[serde(default)]
    pub(crate) patterns: BTreeMap<String, RegexSpec>,
    #[serde(default)]
    pub(crate) rule: Vec<RuleSpec>,
    #[serde(default)]
    pub(crate) default: Option<DefaultSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleSpec {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) when: Option<CondSpec>,
    pub(crate) action: ActionSpec,
    #[serde(default = "yes")]
    pub(crate) stop: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefaultSpec {
    pub(crate) action: ActionSpec,
}

/// Addresses or domains: `"x"`, `["x", "y"]`, `{ file = "path" }` or `{ list = "name" }`.
pub(crate) enum ListSpec {
    Inline(Vec<String>),
    File(String),
    Named(String),
}

impl<'de> Deserialize<'de> for ListSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ListSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address or domain, an array of them, { file = \"PATH\" } or { list = \"NAME\" }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ListSpec, E> {
                Ok(ListSpec::Inline(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ListSpec, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                Ok(ListSpec::Inline(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ListSpec, A::Error> {
                let key: String = map
                    .next_key()?
                    .ok_or_else(|| de::Error::custom("empty table: expected file or list"))?;
                let value: String = map.next_value()?;
                let spec = match key.as_str() {
                    "file" => ListSpec::File(value),
                    "list" => ListSpec::Named(value),
                    other => return Err(de::Error::unknown_field(other, &["file", "list"])),
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom("give either file or list, not both"));
                }
                Ok(spec)
            }
        }
        d.deserialize_any(V)
    }
}

/// A string or an array of strings.
#[derive(Debug, Clone)]
pub(crate) struct Strings(pub(crate) Vec<String>);

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Strings;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Strings, E> {
                Ok(Strings(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strings, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                if v.is_empty() {
                    return Err(de::Error::custom("empty array"));
                }
                Ok(Strings(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// Regular expressions, checked (and size-bounded) where they are written.
#[derive(Debug, Clone)]
pub(crate) struct RegexSpec(pub(crate) Vec<String>);

impl<'de> Deserialize<'de> for RegexSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Strings(v) = Strings::deserialize(d)?;
        for r in &v {
            regex::RegexBuilder::new(r)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    de::Error::custom(format!(
                        "invalid regular expression {r:?}: {}",
                        one_line(&e.to_string())
                    ))
                })?;
        }
        Ok(RegexSpec(v))
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeaderSpec {
    pub(crate) name: String,
    pub(crate) matches: RegexSpec,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct PropertySpec {
    pub(crate) author: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) company: Option<String>,
    pub(crate) last_modified_by: Option<String>,
}

/// `uninspectable = true` (any reason) or `uninspectable = "encrypted" | "corrupt" |
/// "unsupported" | "limit"`.
#[derive(Debug, Clone)]
pub(crate) enum UninspectableSpec {
    Any(bool),
    Reason(String),
}

impl<'de> Deserialize<'de> for UninspectableSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = UninspectableSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "true, false, or one of \"encrypted\", \"corrupt\", \"unsupported\", \"limit\"",
                )
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<UninspectableSpec, E> {
                Ok(UninspectableSpec::Any(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UninspectableSpec, E> {
                match v {
                    "encrypted" | "corrupt" | "unsupported" | "limit" => {
                        Ok(UninspectableSpec::Reason(v.to_string()))
                    }
                    _ => Err(de::Error::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A byte count: an integer or a string with a unit (`"10MB"`, `"512 KiB"`; K/M/G are 1024).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Size(pub(crate) u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size in bytes, as an integer or a string like \"10MB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| de::Error::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                let t = v.trim();
                let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
                let (num, unit) = t.split_at(split);
                let n: u64 = num
                    .parse()
                    .map_err(|_| de::Error::invalid_value(de::Unexpected::Str(v), &self))?;
                let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
                    "" | "b" => 1,
                    "k" | "kb" | "kib" => 1 << 10,
                    "m" | "mb" | "mib" => 1 << 20,
                    "g" | "gb" | "gib" => 1 << 30,
                    _ => return Err(de::Error::invalid_value(de::Unexpected::Str(v), &self)),
                };
                n.checked_mul(mult)
                    .map(Size)
                    .ok_or_else(|| de::Error::custom("size too large"))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCond {
    all: Option<Vec<CondSpec>>,
    any: Option<Vec<CondSpec>>,
    not: Option<Box<CondSpec>>,
    always: Option<bool>,
    direction: Option<Strings>,
    sender: Option<ListSpec>,
    recipient: Option<ListSpec>,
    subject_contains: Option<Strings>,
    subject_matches: Option<RegexSpec>,
    body_contains: Option<Strings>,
    body_matches: Option<RegexSpec>,
    attachment_contains: Option<Strings>,
    attachment_matches: Option<RegexSpec>,
    header: Option<HeaderSpec>,
    size_over: Option<Size>,
    sensitive: Option<String>,
    min_count: Option<u64>,
    attachment_name: Option<Strings>,
    attachment_type: Option<Strings>,
    attachment_property: Option<PropertySpec>,
    uninspectable: Option<UninspectableSpec>,
}

/// One condition after the per-value checks; a table with several keys means all of them.
pub(crate) enum CondSpec {
    All(Vec<CondSpec>),
    Any(Vec<CondSpec>),
    Not(Box<CondSpec>),
    Always(bool),
    Direction(Vec<String>),
    Sender(ListSpec),
    Recipient(ListSpec),
    Contains(Target, Vec<String>),
    Matches(Target, Vec<String>),
    Header(String, Vec<String>),
    SizeOver(u64),
    Sensitive(String, u64),
    AttachmentName(Vec<String>),
    AttachmentType(Vec<String>),
    AttachmentProperty(Vec<(&'static str, String)>),
    Uninspectable(UninspectableSpec),
}

/// Which texts a keyword or regex condition searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Subject = 0,
    Body = 1,
    Attachment = 2,
}

impl<'de> Deserialize<'de> for CondSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = RawCond::deserialize(d)?;
        let mut out = Vec::new();
        if let Some(v) = r.all {
            out.push(CondSpec::All(v));
        }
        if let Some(v) = r.any {
            if v.is_empty() {
                return Err(de::Error::custom("`any` needs at least one condition"));
            }
            out.push(CondSpec::Any(v));
        }
        if let Some(v) = r.not {
            out.push(CondSpec::Not(v));
        }
        if let Some(v) = r.always {
            out.push(CondSpec::Always(v));
        }
        if let Some(Strings(v)) = r.direction {
            for d in &v {
                if !matches!(d.as_str(), "inbound" | "outbound" | "internal" | "relay") {
                    return Err(de::Error::custom(format!(
                        "unknown direction {d:?}: expected inbound, outbound, internal or relay"
                    )));
                }
            }
            out.push(CondSpec::Direction(v));
        }
        if let Some(v) = r.sender {
            out.push(CondSpec::Sender(v));
        }
        if let Some(v) = r.recipient {
            out.push(CondSpec::Recipient(v));
        }
        for (target, contains, matches) in [
            (Target::Subject, r.subject_contains, r.subject_matches),
            (Target::Body, r.body_contains, r.body_matches),
            (
                Target::Attachment,
                r.attachment_contains,
                r.attachment_matches,
            ),
        ] {
            if let Some(Strings(v)) = contains {
                if v.iter().any(String::is_empty) {
                    return Err(de::Error::custom("empty keyword"));
                }
                out.push(CondSpec::Contains(target, v));
            }
            if let Some(RegexSpec(v)) = matches {
                out.push(CondSpec::Matches(target, v));
            }
        }
        if let Some(h) = r.header {
            if h.name.trim().is_empty() || h.name.contains(':') {
                return Err(de::Error::custom(
                    "header name must be a field name without a colon",
                ));
            }
            out.push(CondSpec::Header(h.name, h.matches.0));
        }
        if let Some(Size(n)) = r.size_over {
            out.push(CondSpec::SizeOver(n));
        }
        match (r.sensitive, r.min_count) {
            (Some(kind), min) => {
                if kind.is_empty() {
                    return Err(de::Error::custom("empty sensitive data kind"));
                }
                let min = min.unwrap_or(1);
                if min == 0 {
                    return Err(de::Error::custom("min_count must be at least 1"));
                }
                out.push(CondSpec::Sensitive(kind, min));
            }
            (None, Some(_)) => return Err(de::Error::custom("min_count belongs with sensitive")),
            (None, None) => {}
        }
        if let Some(Strings(v)) = r.attachment_name {
            out.push(CondSpec::AttachmentName(v));
        }
        if let Some(Strings(v)) = r.attachment_type {
            for t in &v {
                if !TYPE_NAMES.contains(&t.as_str()) {
                    return Err(de::Error::custom(format!(
                        "unknown attachment type {t:?}; known: {}",
                        TYPE_NAMES.join(", ")
                    )));
                }
            }
            out.push(CondSpec::AttachmentType(v));
        }
        if let Some(p) = r.attachment_property {
            let props: Vec<(&'static str, String)> = [
                ("author", p.author),
                ("title", p.title),
                ("company", p.company),
                ("last_modified_by", p.last_modified_by),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            if props.is_empty() {
                return Err(de::Error::custom(
                    "attachment_property needs author, title, company or last_modified_by",
                ));
            }
            out.push(CondSpec::AttachmentProperty(props));
        }
        if let Some(u) = r.uninspectable {
            out.push(CondSpec::Uninspectable(u));
        }
        match out.len() {
            0 => Err(de::Error::custom("empty condition")),
            1 => Ok(out.remove(0)),
            _ => Ok(CondSpec::All(out)),
        }
    }
}

/// One action, or a list of them.
pub(crate) struct ActionSpec(pub(crate) Vec<Action>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionTable {
    sign: Option<String>,
    encrypt: Option<Strings>,
    zip: Option<ZipSpec>,
    reject: Option<String>,
    add_header: Option<AddHeaderSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddHeaderSpec {
    name: String,
    value: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ZipSpec {
    password: Option<PasswordSpec>,
    length: Option<usize>,
    method: Option<String>,
    alphabet: Option<String>,
}

/// `"generate"` or `{ fixed = "..." }`.
struct PasswordSpec(ZipPassword);

impl<'de> Deserialize<'de> for PasswordSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PasswordSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"generate\" or { fixed = \"PASSWORD\" }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PasswordSpec, E> {
                if v == "generate" {
                    Ok(PasswordSpec(ZipPassword::Generate))
                } else {
                    // Never echo the value: it may be a password written in the wrong place.
                    Err(de::Error::custom(
                        "password must be \"generate\" or { fixed = \"...\" }",
                    ))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PasswordSpec, A::Error> {
                let key: Option<String> = map.next_key()?;
                if key.as_deref() != Some("fixed") {
                    return Err(de::Error::custom("password table takes one key: fixed"));
                }
                let value: String = map.next_value()?;
                if value.is_empty() {
                    return Err(de::Error::custom("empty fixed password"));
                }
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom("password table takes one key: fixed"));
                }
                Ok(PasswordSpec(ZipPassword::Fixed(SecretString::from(value))))
            }
        }
        d.deserialize_any(V)
    }
}

fn zip_settings<E: de::Error>(spec: ZipSpec) -> Result<ZipSettings, E> {
    let mut z = ZipSettings::default();
    if let Some(PasswordSpec(p)) = spec.password {
        z.password = p;
    }
    if let Some(len) = spec.length {
        if !(8..=128).contains(&len) {
            return Err(E::custom("zip password length must be 8 to 128"));
        }
        z.length = len;
    }
    if let Some(m) = spec.method {
        z.method = match m.as_str() {
            "aes256" => ZipMethod::Aes256,
            "zipcrypto" => ZipMethod::Zipcrypto,
            _ => {
                return Err(E::custom(format!(
                    "unknown zip method {m:?}: expected aes256 or zipcrypto"
                )));
            }
        };
    }
    if let Some(a) = spec.alphabet {
        z.alphabet = match a.as_str() {
            "alphanumeric" => Alphabet::Alphanumeric,
            "alphanumeric_symbols" => Alphabet::AlphanumericSymbols,
            "digits" => Alphabet::Digits,
            _ => {
                return Err(E::custom(format!(
                    "unknown alphabet {a:?}: expected alphanumeric, alphanumeric_symbols or digits"
                )));
            }
        };
    }
    Ok(z)
}

fn table_action<E: de::Error>(t: ActionTable) -> Result<Action, E> {
    let count = [
        t.sign.is_some(),
        t.encrypt.is_some(),
        t.reject.is_some(),
        t.add_header.is_some(),
    ]
    .iter()
    .filter(|&&b| b)
    .count()
        + usize::from(t.zip.is_some() && t.encrypt.is_none());
    if count != 1 {
        return Err(E::custom(
            "an action table holds one action (encrypt may carry zip settings); combine actions with a list",
        ));
    }
    if let Some(m) = t.sign {
        let method = match m.as_str() {
            "smime" => SignMethod::Smime,
            "pgp" => SignMethod::Pgp,
            _ => {
                return Err(E::custom(format!(
                    "unknown sign method {m:?}: expected smime or pgp"
                )));
            }
        };
        return Ok(Action::Sign { method });
    }
    if let Some(Strings(methods)) = t.encrypt {
        let mut out = Vec::new();
        for m in &methods {
            let method = match m.as_str() {
                "smime" => Method::Smime,
                "pgp" => Method::Pgp,
                "zip" => Method::Zip,
                _ => {
                    return Err(E::custom(format!(
                        "unknown encryption method {m:?}: expected smime, pgp or zip"
                    )));
                }
            };
            if out.contains(&method) {
                return Err(E::custom(format!("encryption method {m:?} given twice")));
            }
            out.push(method);
        }
        if t.zip.is_some() && !out.contains(&Method::Zip) {
            return Err(E::custom(
                "zip settings given but zip is not among the encryption methods",
            ));
        }
        return Ok(Action::Encrypt {
            methods: out,
            zip: zip_settings(t.zip.unwrap_or_default())?,
            if_none_usable: Fallback::Reject,
        });
    }
    if let Some(z) = t.zip {
        return Ok(Action::Zip {
            zip: zip_settings(z)?,
        });
    }
    if let Some(text) = t.reject {
        return Ok(Action::Reject { text });
    }
    if let Some(h) = t.add_header {
        let name_ok =
            !h.name.is_empty() && h.name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
        if !name_ok || h.value.contains(['\r', '\n']) {
            return Err(E::custom(
                "add_header needs a field name (no colon, no spaces) and a one-line value",
            ));
        }
        return Ok(Action::AddHeader {
            name: h.name,
            value: h.value,
        });
    }
    Err(E::custom("empty action table"))
}

fn word_action<E: de::Error>(w: &str) -> Result<Action, E> {
    match w {
        "none" => Ok(Action::None),
        "require_tls" => Ok(Action::RequireTls),
        _ => Err(E::custom(format!(
            "unknown action {w:?}: expected \"none\", \"require_tls\" or a table (sign, encrypt, zip, reject, add_header)"
        ))),
    }
}

struct OneAction(Action);

impl<'de> Deserialize<'de> for OneAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneAction;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an action: \"none\", \"require_tls\" or a table")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneAction, E> {
                word_action(v).map(OneAction)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OneAction, A::Error> {
                let t = ActionTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                table_action(t).map(OneAction)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ActionSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ActionSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an action (\"none\", \"require_tls\", a table) or an array of actions")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ActionSpec, E> {
                Ok(ActionSpec(vec![word_action(v)?]))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ActionSpec, A::Error> {
                let t = ActionTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ActionSpec(vec![table_action(t)?]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ActionSpec, A::Error> {
                let mut v = Vec::new();
                while let Some(OneAction(a)) = seq.next_element()? {
                    v.push(a);
                }
                if v.is_empty() {
                    return Err(de::Error::custom("empty action list"));
                }
                Ok(ActionSpec(v))
            }
        }
        d.deserialize_any(V)
    }
}
