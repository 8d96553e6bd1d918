//! A loaded policy: rules compiled once (all keywords of a kind of text, and the prefix
//! literals of its regexes, in one Aho-Corasick automaton; the regexes without usable
//! literals in one `RegexSet`), and the pure decision over an [`Inspection`].

use std::collections::HashMap;
use std::path::Path;

use aho_corasick::MatchKind;
use aho_corasick::dfa::DFA;
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use sealgate_mime::Entity;

use crate::config::{self, ActionSpec, CondSpec, ListSpec, PolicyFile, Target, UninspectableSpec};
use crate::decision::{
    Action, DECISION_FORMAT_VERSION, Decision, Direction, Reason, RecipientDecision, Trigger,
};
use crate::glob::{AddressPattern, Glob};
use crate::inspect::{Inspection, Location, TextSource};
use crate::prefilter::{self, Anchor, MAX_CANDIDATES};
use crate::scan;
use crate::sensitive::{self, SensitiveKind};
use crate::{Error, Result};

/// Largest address list file read.
const LIST_FILE_CAP: u64 = 16 * 1024 * 1024;
/// Largest compiled `RegexSet` (all regexes of one kind of text together).
const REGEX_SET_SIZE_LIMIT: usize = 256 << 20;
/// Cache of the set's lazy DFA: large enough that hundreds of patterns do not thrash it.
const REGEX_SET_DFA_LIMIT: usize = 16 << 20;
/// Regexes per `RegexSet` (one pass over the text per set; fewer, larger sets measured faster).
const REGEX_SET_CHUNK: usize = 1000;
/// Evidence kept per condition.
const MAX_TRIGGERS: usize = 5;
/// Longest excerpt of matched text kept in a reason.
const EXCERPT_CHARS: usize = 64;
/// Matches of one custom pattern counted at most.
const MAX_CUSTOM_MATCHES: usize = 10_000;
/// Piece of text used to locate regex matches for excerpts.
const SEGMENT: usize = 64 * 1024;

/// The SMTP envelope: who sends, to whom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// MAIL FROM (None for the null sender).
    pub mail_from: Option<String>,
    /// RCPT TO, in order.
    pub rcpt_to: Vec<String>,
}

impl Envelope {
    /// The envelope as the header says: the first From mailbox, and every To, Cc and Bcc
    /// mailbox (each address once, case-insensitively).
    pub fn from_headers(message: &Entity<'_>) -> Self {
        let mail_from = message
            .header_field("From")
            .and_then(|h| sealgate_mime::mailboxes(h.raw_value()).into_iter().next());
        let mut rcpt_to: Vec<String> = Vec::new();
        for h in message.headers() {
            if h.is_named("To") || h.is_named("Cc") || h.is_named("Bcc") {
                for a in sealgate_mime::mailboxes(h.raw_value()) {
                    if !rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(&a)) {
                        rcpt_to.push(a);
                    }
                }
            }
        }
        Self { mail_from, rcpt_to }
    }
}

#[derive(Debug)]
enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Always(bool),
    Direction(Vec<Direction>),
    Sender(Vec<AddressPattern>),
    Recipient(Vec<AddressPattern>),
    Keywords(Target, Vec<usize>),
    Regexes(Target, Vec<usize>),
    Header(String, Vec<Regex>),
    SizeOver(u64),
    Sensitive(SensitiveKind, u64),
    Custom(usize, u64),
    AttachmentName(Vec<Glob>),
    AttachmentType(Vec<String>),
    AttachmentProperty(Vec<(&'static str, Glob)>),
    Uninspectable(Option<String>),
}

#[derive(Debug)]
struct Rule {
    name: String,
    cond: Cond,
    actions: Vec<Action>,
    stop: bool,
}

/// The keywords and regexes of one kind of text, compiled together.
#[derive(Debug, Default)]
struct Matchers {
    keywords: Vec<String>,
    keyword_ids: HashMap<String, usize>,
    automaton: Option<DFA>,
    regex_sources: Vec<String>,
    regex_ids: HashMap<String, usize>,
    /// The regexes without an [`Anchor`], in sets of at most [`REGEX_SET_CHUNK`], with the
    /// regex id of each member.
    sets: Vec<(Vec<usize>, RegexSet)>,
    regexes: Vec<Regex>,
    /// Per regex id: checked at the places where its prefix literals occur.
    anchors: Vec<Option<Anchor>>,
    /// Per automaton pattern after the keywords (a prefix literal): the regexes it starts.
    literal_owners: Vec<Vec<usize>>,
}

/// A loaded policy. Build it once with [`Policy::from_toml`], then call [`Policy::decide`]
/// for every message (it is `Send + Sync`).
#[derive(Debug)]
pub struct Policy {
    internal: Vec<AddressPattern>,
    rules: Vec<Rule>,
    default: Vec<Action>,
    matchers: [Matchers; 3],
    custom: Vec<(String, Regex)>,
}

struct Compiler<'a> {
    base_dir: Option<&'a Path>,
    lists: &'a std::collections::BTreeMap<String, ListSpec>,
    custom_names: HashMap<String, usize>,
    matchers: [Matchers; 3],
    rule: String,
}

/// Largest rule file [`Policy::from_toml`] reads: 1 MiB, some 10,000 rules. The TOML parser
/// holds a document in about 30 times its size (100,000 rules, 8 MB, took over 256 MiB);
/// long address lists belong in list files (`{ file = "..." }`).
pub const MAX_POLICY_BYTES: usize = 1 << 20;

fn rule_error(rule: &str, message: impl Into<String>) -> Error {
    Error::Rule {
        rule: rule.to_string(),
        message: message.into(),
    }
}

fn regex(source: &str, rule: &str) -> Result<Regex> {
    RegexBuilder::new(source)
        .size_limit(config::REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| rule_error(rule, format!("invalid regular expression {source:?}: {e}")))
}

impl Compiler<'_> {
    fn list(&self, spec: &ListSpec) -> Result<Vec<AddressPattern>> {
        let entries = match spec {
            ListSpec::Inline(v) => v.clone(),
            ListSpec::Named(name) => {
                let inner = self
                    .lists
                    .get(name)
                    .ok_or_else(|| rule_error(&self.rule, format!("unknown list {name:?}")))?;
                if matches!(inner, ListSpec::Named(_)) {
                    return Err(rule_error(
                        &self.rule,
                        format!("list {name:?} refers to another list"),
                    ));
                }
                return self.list(inner);
            }
            ListSpec::File(file) => read_list_file(self.base_dir, file)?,
        };
        Ok(entries
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .map(AddressPattern::new)
            .collect())
    }

    fn keyword(&mut self, target: Target, k: &str) -> usize {
        let m = &mut self.matchers[target as usize];
        *m.keyword_ids.entry(k.to_string()).or_insert_with(|| {
            m.keywords.push(k.to_string());
            m.keywords.len() - 1
        })
    }

    fn regex(&mut self, target: Target, source: &str) -> Result<usize> {
        let rule = self.rule.clone();
        let m = &mut self.matchers[target as usize];
        if let Some(&id) = m.regex_ids.get(source) {
            return Ok(id);
        }
        m.regexes.push(regex(source, &rule)?);
        m.regex_sources.push(source.to_string());
        let id = m.regex_sources.len() - 1;
        m.regex_ids.insert(source.to_string(), id);
        Ok(id)
    }

    fn cond(&mut self, spec: &CondSpec) -> Result<Cond> {
        Ok(match spec {
            CondSpec::All(v) => Cond::All(v.iter().map(|c| self.cond(c)).collect::<Result<_>>()?),
            CondSpec::Any(v) => Cond::Any(v.iter().map(|c| self.cond(c)).collect::<Result<_>>()?),
            CondSpec::Not(c) => Cond::Not(Box::new(self.cond(c)?)),
            CondSpec::Always(b) => Cond::Always(*b),
            CondSpec::Direction(v) => Cond::Direction(
                v.iter()
                    .map(|d| match d.as_str() {
                        "inbound" => Direction::Inbound,
                        "outbound" => Direction::Outbound,
                        "internal" => Direction::Internal,
                        _ => Direction::Relay,
                    })
                    .collect(),
            ),
            CondSpec::Sender(l) => Cond::Sender(self.list(l)?),
            CondSpec::Recipient(l) => Cond::Recipient(self.list(l)?),
            CondSpec::Contains(t, v) => {
                Cond::Keywords(*t, v.iter().map(|k| self.keyword(*t, k)).collect())
            }
            CondSpec::Matches(t, v) => Cond::Regexes(
                *t,
                v.iter().map(|r| self.regex(*t, r)).collect::<Result<_>>()?,
            ),
            CondSpec::Header(name, v) => {
                let rule = self.rule.clone();
                Cond::Header(
                    name.clone(),
                    v.iter().map(|r| regex(r, &rule)).collect::<Result<_>>()?,
                )
            }
            CondSpec::SizeOver(n) => Cond::SizeOver(*n),
            CondSpec::Sensitive(kind, min) => match SensitiveKind::from_name(kind) {
                Some(k) => Cond::Sensitive(k, *min),
                None => match self.custom_names.get(kind) {
                    Some(&i) => Cond::Custom(i, *min),
                    None => {
                        return Err(rule_error(
                            &self.rule,
                            format!(
                                "unknown sensitive kind {kind:?}: expected payment_card, iban, my_number or a name from [patterns]"
                            ),
                        ));
                    }
                },
            },
            CondSpec::AttachmentName(v) => {
                Cond::AttachmentName(v.iter().map(|g| Glob::new(g)).collect())
            }
            CondSpec::AttachmentType(v) => Cond::AttachmentType(v.clone()),
            CondSpec::AttachmentProperty(v) => {
                Cond::AttachmentProperty(v.iter().map(|(k, g)| (*k, Glob::new(g))).collect())
            }
            CondSpec::Uninspectable(UninspectableSpec::Any(true)) => Cond::Uninspectable(None),
            CondSpec::Uninspectable(UninspectableSpec::Any(false)) => {
                Cond::Not(Box::new(Cond::Uninspectable(None)))
            }
            CondSpec::Uninspectable(UninspectableSpec::Reason(r)) => {
                Cond::Uninspectable(Some(r.clone()))
            }
        })
    }
}

/// One address, domain or glob a line; blank lines and `#` comments are skipped.
fn read_list_file(base_dir: Option<&Path>, file: &str) -> Result<Vec<String>> {
    use std::io::Read;
    let path = match base_dir {
        Some(dir) => dir.join(file),
        None => {
            return Err(Error::ListFile {
                path: file.into(),
                message: "list files need a base directory (give the rule file's directory)".into(),
            });
        }
    };
    let err = |message: String| Error::ListFile {
        path: path.clone(),
        message,
    };
    let f = std::fs::File::open(&path).map_err(|e| err(e.to_string()))?;
    let mut text = String::new();
    f.take(LIST_FILE_CAP + 1)
        .read_to_string(&mut text)
        .map_err(|e| err(e.to_string()))?;
    if text.len() as u64 > LIST_FILE_CAP {
        return Err(err(format!("larger than {LIST_FILE_CAP} bytes")));
    }
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

/// 1-based line and column of byte offset `at` in `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Policy {
    /// Load a policy from the TOML rule file format (see the crate docs). List files named
    /// with `{ file = "..." }` are read now, relative to `base_dir`; errors in the TOML carry
    /// the line and column of the offending value; unknown keys are errors.
    pub fn from_toml(text: &str, base_dir: Option<&Path>) -> Result<Policy> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(Error::TooLarge {
                bytes: text.len(),
                limit: MAX_POLICY_BYTES,
            });
        }
        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_column(text, s.start));
            Error::Syntax {
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        let mut c = Compiler {
            base_dir,
            lists: &file.lists,
            custom_names: HashMap::new(),
            matchers: Default::default(),
            rule: "internal_domains".to_string(),
        };
        let internal = match &file.internal_domains {
            Some(l) => c.list(l)?,
            None => Vec::new(),
        };
        let mut custom = Vec::new();
        for (name, spec) in &file.patterns {
            if SensitiveKind::from_name(name).is_some() {
                return Err(rule_error(
                    name,
                    "a custom pattern cannot reuse a built-in kind's name",
                ));
            }
            let source = spec.0.join("|");
            c.custom_names.insert(name.clone(), custom.len());
            custom.push((name.clone(), regex(&source, name)?));
        }
        let mut rules = Vec::with_capacity(file.rule.len());
        // A set, not a scan of the rules so far: that was quadratic (100,000 rules took minutes).
        let mut names = std::collections::HashSet::with_capacity(file.rule.len());
        for r in &file.rule {
            if r.name.trim().is_empty() {
                return Err(rule_error("", "every rule needs a name"));
            }
            if !names.insert(r.name.as_str()) || r.name == "default" {
                return Err(rule_error(
                    &r.name,
                    "rule names must be unique (and not \"default\")",
                ));
            }
            c.rule = r.name.clone();
            let cond = match &r.when {
                Some(w) => c.cond(w)?,
                None => Cond::Always(true),
            };
            let ActionSpec(actions) = &r.action;
            rules.push(Rule {
                name: r.name.clone(),
                cond,
                actions: actions.clone(),
                stop: r.stop,
            });
        }
        let default = file
            .default
            .as_ref()
            .map(|d| d.action.0.clone())
            .unwrap_or_else(|| vec![Action::None]);
        let mut matchers = c.matchers;
        for m in &mut matchers {
            let mut literal_ids: HashMap<Vec<u8>, usize> = HashMap::new();
            let mut literals: Vec<Vec<u8>> = Vec::new();
            let mut unanchored = Vec::new();
            for (id, source) in m.regex_sources.iter().enumerate() {
                match prefilter::analyze(source, config::REGEX_SIZE_LIMIT) {
                    Some((lits, anchor)) => {
                        for l in lits {
                            let li = *literal_ids.entry(l.clone()).or_insert_with(|| {
                                literals.push(l);
                                m.literal_owners.push(Vec::new());
                                literals.len() - 1
                            });
                            if let Some(owners) = m.literal_owners.get_mut(li) {
                                owners.push(id);
                            }
                        }
                        m.anchors.push(Some(anchor));
                    }
                    None => {
                        m.anchors.push(None);
                        unanchored.push(id);
                    }
                }
            }
            if !m.keywords.is_empty() || !literals.is_empty() {
                let count = m.keywords.len() + literals.len();
                let patterns = m
                    .keywords
                    .iter()
                    .map(|k| k.as_bytes().to_vec())
                    .chain(literals);
                let ac = DFA::builder()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .prefilter(count <= scan::MAX_PREFILTERED)
                    .start_kind(aho_corasick::StartKind::Unanchored)
                    .build(patterns)
                    .map_err(|e| rule_error("keywords", e.to_string()))?;
                m.automaton = Some(ac);
            }
            for chunk in unanchored.chunks(REGEX_SET_CHUNK) {
                let set =
                    RegexSetBuilder::new(chunk.iter().filter_map(|&i| m.regex_sources.get(i)))
                        .size_limit(REGEX_SET_SIZE_LIMIT)
                        .dfa_size_limit(REGEX_SET_DFA_LIMIT)
                        .build()
                        .map_err(|e| rule_error("regular expressions", e.to_string()))?;
                m.sets.push((chunk.to_vec(), set));
            }
        }
        Ok(Policy {
            internal,
            rules,
            default,
            matchers,
            custom,
        })
    }

    /// The rule names, in order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    /// Whether `address` is in one of the internal domains.
    pub fn is_internal(&self, address: &str) -> bool {
        self.internal.iter().any(|p| p.matches(address))
    }

    /// Decide what to do with `message` for every recipient of `envelope`. Pure: reads only
    /// its arguments (the [`Inspection`] from [`crate::inspect`] of the same message).
    pub fn decide(
        &self,
        message: &Entity<'_>,
        envelope: &Envelope,
        inspection: &Inspection,
    ) -> Decision {
        self.decide_with(message, envelope, inspection, &self.facts(inspection))
    }

    /// [`Policy::decide`] over facts already computed (the fast way, or in tests the simple).
    fn decide_with(
        &self,
        message: &Entity<'_>,
        envelope: &Envelope,
        inspection: &Inspection,
        facts: &Facts,
    ) -> Decision {
        let sender = envelope.mail_from.as_deref().filter(|s| !s.is_empty());
        let sender_internal = sender.is_some_and(|s| self.is_internal(s));
        let mut fired = vec![false; self.rules.len()];
        let mut default_fired = false;
        let mut recipients = Vec::with_capacity(envelope.rcpt_to.len());
        for rcpt in &envelope.rcpt_to {
            let direction = match (sender_internal, self.is_internal(rcpt)) {
                (true, true) => Direction::Internal,
                (true, false) => Direction::Outbound,
                (false, true) => Direction::Inbound,
                (false, false) => Direction::Relay,
            };
            let ctx = Ctx {
                message,
                inspection,
                facts,
                sender,
                recipient: rcpt,
                direction,
            };
            let mut actions = Vec::new();
            let mut reasons = Vec::new();
            let mut stopped = false;
            for (i, rule) in self.rules.iter().enumerate() {
                let mut triggers = Vec::new();
                if ctx.eval(&rule.cond, &mut triggers) {
                    fired[i] = true;
                    actions.extend(rule.actions.iter().cloned());
                    reasons.push(Reason {
                        rule: rule.name.clone(),
                        triggers,
                    });
                    if rule.stop {
                        stopped = true;
                        break;
                    }
                }
            }
            if !stopped {
                default_fired = true;
                actions.extend(self.default.iter().cloned());
                reasons.push(Reason {
                    rule: "default".to_string(),
                    triggers: Vec::new(),
                });
            }
            recipients.push(RecipientDecision {
                recipient: rcpt.clone(),
                direction,
                actions: normalize(actions),
                reasons,
            });
        }
        let mut fired: Vec<String> = self
            .rules
            .iter()
            .zip(&fired)
            .filter(|(_, f)| **f)
            .map(|(r, _)| r.name.clone())
            .collect();
        if default_fired {
            fired.push("default".to_string());
        }
        Decision {
            version: DECISION_FORMAT_VERSION,
            recipients,
            fired,
            sensitive: inspection.sensitive.clone(),
            uninspectable: inspection.uninspectable.clone(),
        }
    }

    /// Run every automaton and regex set once over the texts they apply to.
    fn facts(&self, inspection: &Inspection) -> Facts {
        let mut facts = Facts {
            keywords: Default::default(),
            regexes: Default::default(),
            custom: vec![(0, None); self.custom.len()],
        };
        for (t, m) in self.matchers.iter().enumerate() {
            facts.keywords[t] = vec![None; m.keywords.len()];
            facts.regexes[t] = vec![None; m.regex_sources.len()];
            let source = match t {
                0 => TextSource::Subject,
                1 => TextSource::Body,
                _ => TextSource::Attachment,
            };
            let nk = m.keywords.len();
            // Candidate places per anchored regex in the current text (None: too many).
            let mut candidates: Vec<Option<Vec<usize>>> = vec![Some(Vec::new()); m.anchors.len()];
            for block in inspection.texts.iter().filter(|b| b.source == source) {
                if let Some(ac) = &m.automaton {
                    for c in candidates.iter_mut() {
                        match c {
                            Some(v) => v.clear(),
                            None => *c = Some(Vec::new()),
                        }
                    }
                    let keywords = &mut facts.keywords[t];
                    let regexes = &facts.regexes[t];
                    scan::overlapping(ac, block.text.as_bytes(), &mut |pid, range| {
                        let pid = pid.as_usize();
                        if pid < nk {
                            if let Some(slot) = keywords.get_mut(pid)
                                && slot.is_none()
                            {
                                *slot = Some(Hit {
                                    location: block.location.clone(),
                                    excerpt: excerpt(block.text.get(range).unwrap_or_default()),
                                });
                            }
                            return;
                        }
                        let Some(owners) = m.literal_owners.get(pid - nk) else {
                            return;
                        };
                        for &r in owners {
                            if regexes.get(r).is_some_and(Option::is_some) {
                                continue;
                            }
                            if let Some(c) = candidates.get_mut(r) {
                                match c {
                                    Some(v) if v.len() >= MAX_CANDIDATES => *c = None,
                                    Some(v) => v.push(range.start),
                                    None => {}
                                }
                            }
                        }
                    });
                    for (r, anchor) in m.anchors.iter().enumerate() {
                        let (Some(anchor), Some(c), Some(re)) =
                            (anchor, candidates.get_mut(r), m.regexes.get(r))
                        else {
                            continue;
                        };
                        if facts.regexes[t].get(r).is_some_and(Option::is_some) {
                            continue;
                        }
                        if let Some(v) = c {
                            if v.is_empty() {
                                continue;
                            }
                            v.sort_unstable();
                            v.dedup();
                        }
                        if let Some(range) = anchor.find(re, &block.text, c.as_deref()) {
                            facts.regexes[t][r] = Some(Hit {
                                location: block.location.clone(),
                                excerpt: excerpt(block.text.get(range).unwrap_or_default()),
                            });
                        }
                    }
                }
                if !m.sets.is_empty() {
                    regex_hits(m, &block.text, &block.location, &mut facts.regexes[t]);
                }
            }
        }
        self.custom_facts(inspection, &mut facts);
        facts
    }

    /// The simple way, for tests: every keyword and every regex searched on its own, block
    /// by block (first block with a match wins, its first match is the excerpt).
    #[cfg(test)]
    fn facts_simple(&self, inspection: &Inspection) -> Facts {
        let mut facts = Facts {
            keywords: Default::default(),
            regexes: Default::default(),
            custom: vec![(0, None); self.custom.len()],
        };
        for (t, m) in self.matchers.iter().enumerate() {
            facts.keywords[t] = vec![None; m.keywords.len()];
            facts.regexes[t] = vec![None; m.regex_sources.len()];
            let source = match t {
                0 => TextSource::Subject,
                1 => TextSource::Body,
                _ => TextSource::Attachment,
            };
            for block in inspection.texts.iter().filter(|b| b.source == source) {
                let text = block.text.as_bytes();
                for (k, kw) in m.keywords.iter().enumerate() {
                    let kw = kw.as_bytes();
                    if facts.keywords[t][k].is_some() || kw.len() > text.len() {
                        continue;
                    }
                    if let Some(i) = (0..=text.len() - kw.len())
                        .find(|&i| text[i..i + kw.len()].eq_ignore_ascii_case(kw))
                    {
                        facts.keywords[t][k] = Some(Hit {
                            location: block.location.clone(),
                            excerpt: excerpt(block.text.get(i..i + kw.len()).unwrap_or_default()),
                        });
                    }
                }
                for (r, re) in m.regexes.iter().enumerate() {
                    if facts.regexes[t][r].is_some() {
                        continue;
                    }
                    if let Some(x) = re.find(&block.text) {
                        facts.regexes[t][r] = Some(Hit {
                            location: block.location.clone(),
                            excerpt: excerpt(x.as_str()),
                        });
                    }
                }
            }
        }
        self.custom_facts(inspection, &mut facts);
        facts
    }

    /// Count the distinct matches of every custom sensitive pattern.
    fn custom_facts(&self, inspection: &Inspection, facts: &mut Facts) {
        for (i, (_, re)) in self.custom.iter().enumerate() {
            let mut seen = std::collections::HashSet::new();
            let mut first = Vec::new();
            'texts: for block in &inspection.texts {
                for m in re.find_iter(&block.text) {
                    if seen.len() >= MAX_CUSTOM_MATCHES {
                        break 'texts;
                    }
                    if seen.insert(m.as_str().to_string()) && first.len() < MAX_TRIGGERS {
                        first.push(Hit {
                            location: block.location.clone(),
                            excerpt: sensitive::mask_custom(m.as_str()),
                        });
                    }
                }
            }
            facts.custom[i] = (seen.len() as u64, Some(first));
        }
    }
}

/// Which regexes match `text` (one `RegexSet` pass over the whole text per set: exact), and for
/// each newly matched one an excerpt of its first match. Excerpts are located by passing the
/// sets over 64 KiB pieces of the text (cut at line ends) until every match is placed, so that
/// no regex is run alone over a long text; one that matches only across a cut is run alone.
fn regex_hits(m: &Matchers, text: &str, location: &Location, slots: &mut [Option<Hit>]) {
    let mut pending: Vec<usize> = Vec::new();
    for (ids, set) in &m.sets {
        if ids
            .iter()
            .all(|&id| slots.get(id).is_some_and(Option::is_some))
        {
            continue;
        }
        pending.extend(
            set.matches(text)
                .iter()
                .filter_map(|local| ids.get(local).copied())
                .filter(|&id| slots.get(id).is_some_and(Option::is_none)),
        );
    }
    let place = |id: usize, piece: &str, slots: &mut [Option<Hit>]| -> bool {
        match m.regexes.get(id).and_then(|r| r.find(piece)) {
            Some(x) => {
                if let Some(slot) = slots.get_mut(id) {
                    *slot = Some(Hit {
                        location: location.clone(),
                        excerpt: excerpt(x.as_str()),
                    });
                }
                true
            }
            None => false,
        }
    };
    let mut rest = text;
    while !pending.is_empty() && !rest.is_empty() {
        let mut cut = rest.len().min(SEGMENT);
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        if cut < rest.len()
            && let Some(nl) = rest[..cut].rfind('\n')
        {
            cut = nl + 1;
        }
        let piece = &rest[..cut];
        rest = &rest[cut..];
        for (ids, set) in &m.sets {
            if !pending.iter().any(|id| ids.contains(id)) {
                continue;
            }
            for local in set.matches(piece).iter() {
                let Some(&id) = ids.get(local) else { continue };
                if let Some(pos) = pending.iter().position(|&p| p == id)
                    && place(id, piece, slots)
                {
                    pending.swap_remove(pos);
                }
            }
        }
    }
    for id in pending {
        if !place(id, text, slots) {
            // Cannot happen (the set said it matches); record the match without an excerpt.
            if let Some(slot) = slots.get_mut(id) {
                *slot = Some(Hit {
                    location: location.clone(),
                    excerpt: String::new(),
                });
            }
        }
    }
}

/// Actions in execution order: header fields, sign, encrypt or ZIP, require TLS. A reject
/// wins over everything; of several signs or encryptions the first (earliest rule) wins.
fn normalize(actions: Vec<Action>) -> Vec<Action> {
    if let Some(reject) = actions.iter().find(|a| matches!(a, Action::Reject { .. })) {
        return vec![reject.clone()];
    }
    let mut out: Vec<Action> = Vec::new();
    for a in actions
        .iter()
        .filter(|a| matches!(a, Action::AddHeader { .. }))
    {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    if let Some(sign) = actions.iter().find(|a| matches!(a, Action::Sign { .. })) {
        out.push(sign.clone());
    }
    if let Some(enc) = actions
        .iter()
        .find(|a| matches!(a, Action::Encrypt { .. } | Action::Zip { .. }))
    {
        out.push(enc.clone());
    }
    if actions.contains(&Action::RequireTls) {
        out.push(Action::RequireTls);
    }
    if out.is_empty() {
        out.push(Action::None);
    }
    out
}

fn excerpt(s: &str) -> String {
    let mut e: String = s.chars().take(EXCERPT_CHARS).collect();
    if s.chars().nth(EXCERPT_CHARS).is_some() {
        e.push('…');
    }
    e
}

#[derive(Debug, Clone, PartialEq)]
struct Hit {
    location: Location,
    excerpt: String,
}

#[derive(Debug, PartialEq)]
struct Facts {
    keywords: [Vec<Option<Hit>>; 3],
    regexes: [Vec<Option<Hit>>; 3],
    custom: Vec<(u64, Option<Vec<Hit>>)>,
}

struct Ctx<'a> {
    message: &'a Entity<'a>,
    inspection: &'a Inspection,
    facts: &'a Facts,
    sender: Option<&'a str>,
    recipient: &'a str,
    direction: Direction,
}

fn target_name(t: Target, regex: bool) -> &'static str {
    match (t, regex) {
        (Target::Subject, false) => "subject_contains",
        (Target::Subject, true) => "subject_matches",
        (Target::Body, false) => "body_contains",
        (Target::Body, true) => "body_matches",
        (Target::Attachment, false) => "attachment_contains",
        (Target::Attachment, true) => "attachment_matches",
    }
}

impl Ctx<'_> {
    fn trigger(out: &mut Vec<Trigger>, condition: &str, matched: String, location: Location) {
        out.push(Trigger {
            condition: condition.to_string(),
            matched,
            location,
        });
    }

    fn eval(&self, cond: &Cond, out: &mut Vec<Trigger>) -> bool {
        match cond {
            Cond::All(v) => {
                let mut local = Vec::new();
                for c in v {
                    if !self.eval(c, &mut local) {
                        return false;
                    }
                }
                out.append(&mut local);
                true
            }
            Cond::Any(v) => {
                let mut any = false;
                for c in v {
                    let mut local = Vec::new();
                    if self.eval(c, &mut local) {
                        any = true;
                        out.append(&mut local);
                    }
                }
                any
            }
            Cond::Not(c) => {
                let mut scratch = Vec::new();
                if self.eval(c, &mut scratch) {
                    return false;
                }
                Self::trigger(
                    out,
                    "not",
                    "the negated condition does not hold".into(),
                    Location::Message,
                );
                true
            }
            Cond::Always(b) => *b,
            Cond::Direction(v) => {
                let ok = v.contains(&self.direction);
                if ok {
                    Self::trigger(
                        out,
                        "direction",
                        self.direction.name().into(),
                        Location::Envelope,
                    );
                }
                ok
            }
            Cond::Sender(list) => {
                let Some(s) = self.sender else { return false };
                match list.iter().find(|p| p.matches(s)) {
                    Some(p) => {
                        Self::trigger(
                            out,
                            "sender",
                            format!("{s} ({})", p.source()),
                            Location::Envelope,
                        );
                        true
                    }
                    None => false,
                }
            }
            Cond::Recipient(list) => match list.iter().find(|p| p.matches(self.recipient)) {
                Some(p) => {
                    Self::trigger(
                        out,
                        "recipient",
                        format!("{} ({})", self.recipient, p.source()),
                        Location::Envelope,
                    );
                    true
                }
                None => false,
            },
            Cond::Keywords(t, ids) | Cond::Regexes(t, ids) => {
                let regex = matches!(cond, Cond::Regexes(..));
                let hits = if regex {
                    &self.facts.regexes
                } else {
                    &self.facts.keywords
                };
                let mut any = false;
                for id in ids {
                    if let Some(Some(h)) = hits[*t as usize].get(*id) {
                        any = true;
                        if out.len() < MAX_TRIGGERS {
                            Self::trigger(
                                out,
                                target_name(*t, regex),
                                h.excerpt.clone(),
                                h.location.clone(),
                            );
                        }
                    }
                }
                any
            }
            Cond::Header(name, res) => {
                for h in self.message.headers().iter().filter(|h| h.is_named(name)) {
                    let value = h.value();
                    if res.iter().any(|r| r.is_match(&value)) {
                        Self::trigger(
                            out,
                            "header",
                            format!("{}: {}", h.name, excerpt(&value)),
                            Location::Header {
                                name: h.name.to_string(),
                            },
                        );
                        return true;
                    }
                }
                false
            }
            Cond::SizeOver(n) => {
                let size = self.inspection.size as u64;
                let ok = size > *n;
                if ok {
                    Self::trigger(
                        out,
                        "size_over",
                        format!("{size} bytes > {n}"),
                        Location::Message,
                    );
                }
                ok
            }
            Cond::Sensitive(kind, min) => {
                let found: Vec<_> = self
                    .inspection
                    .sensitive
                    .iter()
                    .filter(|s| s.kind == *kind)
                    .collect();
                let ok = found.len() as u64 >= *min;
                if ok {
                    for s in found.iter().take(MAX_TRIGGERS) {
                        Self::trigger(
                            out,
                            "sensitive",
                            format!("{} {}", kind.name(), s.masked),
                            s.location.clone(),
                        );
                    }
                }
                ok
            }
            Cond::Custom(i, min) => {
                let Some((count, hits)) = self.facts.custom.get(*i) else {
                    return false;
                };
                let ok = count >= min;
                if ok {
                    for h in hits.iter().flatten() {
                        Self::trigger(out, "sensitive", h.excerpt.clone(), h.location.clone());
                    }
                }
                ok
            }
            Cond::AttachmentName(globs) => {
                let mut any = false;
                for f in &self.inspection.files {
                    if let Some(g) = globs
                        .iter()
                        .find(|g| g.matches(&f.name) || g.matches(&f.path))
                    {
                        any = true;
                        if out.len() < MAX_TRIGGERS {
                            Self::trigger(
                                out,
                                "attachment_name",
                                format!("{} ({})", f.name, g.source()),
                                f.location.clone(),
                            );
                        }
                    }
                }
                any
            }
            Cond::AttachmentType(types) => {
                let mut any = false;
                for f in &self.inspection.files {
                    if let Some(t) = types.iter().find(|t| f.file_type.is(t)) {
                        any = true;
                        if out.len() < MAX_TRIGGERS {
                            let matched = if t == f.file_type.name() {
                                t.clone()
                            } else {
                                format!("{t} ({})", f.file_type.name())
                            };
                            Self::trigger(out, "attachment_type", matched, f.location.clone());
                        }
                    }
                }
                any
            }
            Cond::AttachmentProperty(props) => {
                let mut any = false;
                for f in &self.inspection.files {
                    let p = &f.properties;
                    let mut matched = Vec::new();
                    let all = props.iter().all(|(k, g)| {
                        let v = match *k {
                            "author" => p.author.as_deref(),
                            "title" => p.title.as_deref(),
                            "company" => p.company.as_deref(),
                            _ => p.last_modified_by.as_deref(),
                        };
                        let ok = v.is_some_and(|v| g.matches(v));
                        if ok {
                            matched.push(format!("{k} = {}", v.unwrap_or_default()));
                        }
                        ok
                    });
                    if all {
                        any = true;
                        if out.len() < MAX_TRIGGERS {
                            Self::trigger(
                                out,
                                "attachment_property",
                                matched.join(", "),
                                f.location.clone(),
                            );
                        }
                    }
                }
                any
            }
            Cond::Uninspectable(filter) => {
                let mut any = false;
                for u in &self.inspection.uninspectable {
                    if filter.as_deref().is_none_or(|r| r == u.reason.name()) {
                        any = true;
                        if out.len() < MAX_TRIGGERS {
                            Self::trigger(
                                out,
                                "uninspectable",
                                u.reason.to_string(),
                                u.location.clone(),
                            );
                        }
                    }
                }
                any
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{Method, SignMethod};
    use sealgate_mime::Limits;

    /// Regression: uniqueness of rule names was checked by scanning every rule before, which
    /// is quadratic (a rule file of 100,000 rules took minutes); a set finds a duplicate at
    /// the end of a long file the same.
    #[test]
    fn many_rules_and_a_duplicate_at_the_end() {
        let mut text = String::from("internal_domains = [\"example.com\"]\n");
        for i in 0..20_000 {
            text.push_str(&format!("[[rule]]\nname = \"r{i}\"\naction = \"none\"\n"));
        }
        let p = Policy::from_toml(&text, None).unwrap();
        assert_eq!(p.rule_names().count(), 20_000);
        assert_eq!(p.rule_names().last(), Some("r19999"));
        text.push_str("[[rule]]\nname = \"r7\"\naction = \"none\"\n");
        let e = Policy::from_toml(&text, None).unwrap_err();
        assert!(
            matches!(&e, Error::Rule { rule, .. } if rule == "r7"),
            "{e}"
        );
    }

    /// The example from the issue: the format's contract.
    const CONTRACT: &str = r#"
internal_domains = ["example.com"]

[[rule]]
name = "excel-out"
when = { all = [ { direction = "outbound" }, { attachment_type = "excel" } ] }
action = { encrypt = ["smime", "pgp", "zip"] }   # best effort, in this order, never clear text
stop = false

[[rule]]
name = "cards"
when = { sensitive = "payment_card", min_count = 1 }
action = { encrypt = ["smime", "zip"] }

[[rule]]
name = "finance-author"
when = { attachment_property = { author = "Finance*" } }
action = "require_tls"

[[rule]]
name = "no-exe"
when = { attachment_type = "executable" }
action = { reject = "Executable attachments are not allowed" }
"#;

    fn decide(policy: &Policy, raw: &[u8]) -> Decision {
        let limits = Limits::default();
        let msg = Entity::parse(raw, &limits).unwrap();
        policy.decide(
            &msg,
            &Envelope::from_headers(&msg),
            &crate::inspect(&msg, &limits),
        )
    }

    #[test]
    fn contract_parses_and_means_what_it_says() {
        let p = Policy::from_toml(CONTRACT, None).unwrap();
        assert_eq!(
            p.rule_names().collect::<Vec<_>>(),
            ["excel-out", "cards", "finance-author", "no-exe"]
        );
        let d = decide(&p, b"From: a@example.com\r\nTo: b@partner.example, c@example.com\r\nSubject: hi\r\n\r\ncard 4111-1111-1111-1111\r\n");
        assert_eq!(d.fired, ["cards"]);
        assert_eq!(d.recipients.len(), 2);
        let b = &d.recipients[0];
        assert_eq!(b.direction, Direction::Outbound);
        assert!(
            matches!(&b.actions[..], [Action::Encrypt { methods, .. }] if methods == &[Method::Smime, Method::Zip])
        );
        assert_eq!(
            b.reasons[0].triggers[0].matched,
            "payment_card 4111 **** **** 1111"
        );
        assert_eq!(d.recipients[1].direction, Direction::Internal);
        // No card: only the default fires.
        let d = decide(
            &p,
            b"From: a@example.com\r\nTo: b@partner.example\r\n\r\ncard 4111-1111-1111-1112\r\n",
        );
        assert_eq!(d.fired, ["default"]);
        assert_eq!(d.recipients[0].actions, [Action::None]);
    }

    #[test]
    fn errors_have_line_and_column() {
        let bad = "internal_domains = [\"example.com\"]\n\n[[rule]]\nname = \"x\"\nwhen = { subject_contans = \"a\" }\naction = \"none\"\n";
        match Policy::from_toml(bad, None) {
            Err(Error::Syntax {
                line,
                column,
                message,
            }) => {
                assert_eq!(line, 5, "{message}");
                assert!(column > 1, "{column}");
                assert!(message.contains("subject_contans"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let bad = "[[rule]]\nname = \"x\"\naction = { encrypt = [\"smime\", \"fax\"] }\n";
        match Policy::from_toml(bad, None) {
            Err(Error::Syntax {
                line: 3, message, ..
            }) => assert!(message.contains("fax"), "{message}"),
            other => panic!("{other:?}"),
        }
        let bad =
            "[[rule]]\nname = \"x\"\nwhen = { body_matches = \"(unclosed\" }\naction = \"none\"\n";
        assert!(matches!(
            Policy::from_toml(bad, None),
            Err(Error::Syntax { line: 3, .. })
        ));
        let bad = "[[rule]\nname = \"x\"\n";
        assert!(matches!(
            Policy::from_toml(bad, None),
            Err(Error::Syntax { line: 1, .. })
        ));
        let bad = "unknown_top = 1\n";
        assert!(matches!(
            Policy::from_toml(bad, None),
            Err(Error::Syntax { line: 1, .. })
        ));
        let bad = "[[rule]]\nname = \"x\"\nwhen = { sensitive = \"nope\" }\naction = \"none\"\n";
        assert!(matches!(
            Policy::from_toml(bad, None),
            Err(Error::Rule { .. })
        ));
        let bad = "[[rule]]\nname = \"x\"\naction = { zip = { password = \"hunter2\" } }\n";
        let e = Policy::from_toml(bad, None).unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn actions_combine_in_execution_order() {
        let p = Policy::from_toml(
            r#"
internal_domains = ["example.com", "*.example.com"]
[lists]
partners = ["partner.example", "*@ally.example"]
[[rule]]
name = "tag"
action = [{ add_header = { name = "X-Scanned", value = "yes" } }, "require_tls"]
stop = false
[[rule]]
name = "partners"
when = { recipient = { list = "partners" } }
action = [{ encrypt = ["pgp", "zip"], zip = { method = "zipcrypto", length = 20 } }, { sign = "smime" }]
[default]
action = { sign = "pgp" }
"#,
            None,
        )
        .unwrap();
        let d = decide(&p, b"From: a@mail.example.com\r\nTo: x@partner.example\r\nCc: y@ally.example, z@other.example\r\n\r\nhi\r\n");
        let r = &d.recipients[0];
        assert!(matches!(&r.actions[0], Action::AddHeader { name, .. } if name == "X-Scanned"));
        assert_eq!(
            r.actions[1],
            Action::Sign {
                method: SignMethod::Smime
            }
        );
        assert!(matches!(&r.actions[2], Action::Encrypt { zip, .. } if zip.length == 20));
        assert_eq!(r.actions[3], Action::RequireTls);
        assert_eq!(d.recipients[1].reasons.len(), 2);
        let z = &d.recipients[2];
        assert_eq!(
            z.reasons
                .iter()
                .map(|r| r.rule.as_str())
                .collect::<Vec<_>>(),
            ["tag", "default"]
        );
        assert_eq!(
            z.actions[1],
            Action::Sign {
                method: SignMethod::Pgp
            }
        );
        assert_eq!(d.fired, ["tag", "partners", "default"]);
    }

    #[test]
    fn triggers() {
        let p = Policy::from_toml(
            r#"
internal_domains = ["example.com"]
[patterns]
employee_id = "EMP-[0-9]{6}"
[[rule]]
name = "subject"
when = { subject_matches = "(?i)^\\[secret\\]" }
action = "require_tls"
stop = false
[[rule]]
name = "classified"
when = { header = { name = "X-Classification", matches = "(?i)confidential" } }
action = "require_tls"
stop = false
[[rule]]
name = "big"
when = { size_over = "1KB" }
action = "require_tls"
stop = false
[[rule]]
name = "emp"
when = { sensitive = "employee_id", min_count = 2 }
action = "require_tls"
stop = false
[[rule]]
name = "newsletter"
when = { sender = "news*@example.com", direction = "outbound" }
action = { sign = "smime" }
stop = false
[[rule]]
name = "not-internal"
when = { not = { direction = "internal" } }
action = "none"
stop = false
[[rule]]
name = "never"
when = { always = false }
action = "none"
"#,
            None,
        )
        .unwrap();
        let d = decide(&p, b"From: newsletter@example.com\r\nTo: b@partner.example\r\nSubject: [SECRET] plans\r\nX-Classification: Confidential\r\n\r\nEMP-123456 EMP-654321 EMP-123456\r\n");
        assert_eq!(
            d.fired,
            [
                "subject",
                "classified",
                "emp",
                "newsletter",
                "not-internal",
                "default"
            ]
        );
        let emp = d.recipients[0]
            .reasons
            .iter()
            .find(|r| r.rule == "emp")
            .unwrap();
        assert_eq!(emp.triggers[0].matched, "EM******56");
        let news = d.recipients[0]
            .reasons
            .iter()
            .find(|r| r.rule == "newsletter")
            .unwrap();
        assert_eq!(news.triggers.len(), 2);
    }

    /// A rule per keyword and per regex of the pools, over random texts: the automaton with
    /// prefix literals, anchored checks and the `RegexSet` for the rest find exactly what
    /// searching each on its own finds, and so decide exactly the same.
    mod fast_equals_simple {
        use super::*;
        use crate::inspect::TextBlock;
        use proptest::prelude::*;

        const TOKENS: &[&str] = &[
            "abc", "cde", "abcde", "ABC", "Cde", "x", "xyz", " ", " ", "\n", "\r\n", "\t", "é",
            "日本", "語", "123", "45", "-", ":", "REF", "ref:", "invoice", "INVOICE ", "zzz", "ab",
            "\u{212a}", "kelvin", ".",
        ];
        const KEYWORDS: &[&str] = &[
            "abc",
            "ABCDE",
            "cde abc",
            "日本",
            "ref",
            "invoice 1",
            "xyz\nabc",
            "é",
            "zzzz",
            "c",
            "Abc",
        ];
        const REGEXES: &[&str] = &[
            r"\babc[a-z]*cde\b",
            r"abc(cde)?",
            r"(?m)^abc",
            r"cde$",
            r"(?s)xyz.*abc",
            r"xyz.*abc",
            r"日本語?",
            r"(?i)invoice\s+\d+",
            r"REF[:-]?\d{2}",
            r"\d{3}",
            r"(?i)ref:?",
            r"abc|abd|xyz",
            r"\bcde\b",
            r"(?i)kelvin",
            r"zzz+\s",
            r"ab",
            r"[a-z]+\d",
            r"(?i)abc\b",
            r"\Aabc",
            r"cde\z",
        ];

        fn policy(keywords: &[usize], regexes: &[usize]) -> Policy {
            let mut toml = String::new();
            for (n, &k) in keywords.iter().enumerate() {
                let k = KEYWORDS[k].replace('\n', "\\n");
                toml.push_str(&format!(
                    "[[rule]]\nname = \"k{n}\"\nwhen = {{ any = [ {{ subject_contains = \"{k}\" }}, {{ body_contains = \"{k}\" }}, {{ attachment_contains = \"{k}\" }} ] }}\naction = \"require_tls\"\nstop = false\n"
                ));
            }
            for (n, &r) in regexes.iter().enumerate() {
                let r = REGEXES[r].replace('\\', "\\\\");
                toml.push_str(&format!(
                    "[[rule]]\nname = \"r{n}\"\nwhen = {{ any = [ {{ subject_matches = \"{r}\" }}, {{ body_matches = \"{r}\" }}, {{ attachment_matches = \"{r}\" }} ] }}\naction = \"require_tls\"\nstop = false\n"
                ));
            }
            Policy::from_toml(&toml, None).unwrap()
        }

        fn text() -> impl Strategy<Value = String> {
            proptest::collection::vec(0..TOKENS.len(), 0..60)
                .prop_map(|v| v.into_iter().map(|i| TOKENS[i]).collect())
        }

        fn blocks() -> impl Strategy<Value = Vec<TextBlock>> {
            proptest::collection::vec((0..3u8, text()), 0..5).prop_map(|v| {
                v.into_iter()
                    .enumerate()
                    .map(|(i, (s, text))| TextBlock {
                        source: match s {
                            0 => TextSource::Subject,
                            1 => TextSource::Body,
                            _ => TextSource::Attachment,
                        },
                        location: Location::Body {
                            part: i.to_string(),
                        },
                        text,
                    })
                    .collect()
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(400))]
            #[test]
            fn decides_the_same(
                keywords in proptest::collection::vec(0..KEYWORDS.len(), 0..8),
                regexes in proptest::collection::vec(0..REGEXES.len(), 0..12),
                texts in blocks(),
            ) {
                let p = policy(&keywords, &regexes);
                let inspection = Inspection { texts, ..Default::default() };
                let fast = p.facts(&inspection);
                let simple = p.facts_simple(&inspection);
                prop_assert_eq!(&fast, &simple);
                let limits = Limits::default();
                let raw = b"From: a@example.com\r\nTo: b@partner.example\r\n\r\nx\r\n";
                let msg = Entity::parse(raw, &limits).unwrap();
                let env = Envelope::from_headers(&msg);
                prop_assert_eq!(
                    p.decide_with(&msg, &env, &inspection, &fast),
                    p.decide_with(&msg, &env, &inspection, &simple)
                );
            }
        }

        /// Past the candidate cap and past the anchored-scan budget the regex is run over
        /// the text itself, with the same answer.
        #[test]
        fn fallbacks_agree() {
            let many = format!("{}abcq zzz", "abc ".repeat(prefilter::MAX_CANDIDATES + 10));
            let long_line = format!("{}abc", "xyz ".repeat(5000));
            for (regex, text) in [
                (r"abc[a-z]*q", many.as_str()),
                (r"(?s)xyz.*abc", long_line.as_str()),
                (r"xyz.*abc", long_line.as_str()),
                (r"xyz[^q]*zzz", long_line.as_str()),
            ] {
                let toml = format!(
                    "[[rule]]\nname = \"r\"\nwhen = {{ body_matches = \"{}\" }}\naction = \"none\"\n",
                    regex.replace('\\', "\\\\")
                );
                let p = Policy::from_toml(&toml, None).unwrap();
                let inspection = Inspection {
                    texts: vec![TextBlock {
                        source: TextSource::Body,
                        location: Location::Message,
                        text: text.to_string(),
                    }],
                    ..Default::default()
                };
                assert_eq!(p.facts(&inspection), p.facts_simple(&inspection), "{regex}");
            }
        }
    }
}
