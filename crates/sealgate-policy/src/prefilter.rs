//! Regexes checked only where they can start: the prefix literals of a regex (every match of
//! it begins with one of them) go into the same Aho-Corasick automaton as the keywords, so
//! one pass over a text finds both the keywords and every place where a regex can match; the
//! regex is then run anchored at those places only. Hundreds of regexes cost one automaton
//! pass plus work proportional to their candidate places, instead of a `RegexSet` pass whose
//! lazy DFA grows with the number of patterns.
//!
//! A regex without usable prefix literals (one that can start with a short or open class,
//! `\d+...`, or match the empty string) stays in the `RegexSet` path.

use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind, meta};
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Class, Hir, HirKind};

/// Shortest prefix literal worth a candidate place (shorter ones occur everywhere).
const MIN_LITERAL: usize = 3;
/// Most prefix literals of one regex (after ASCII case folding) put into the automaton.
const MAX_LITERALS: usize = 64;
/// Candidate places of one regex kept per text; past that the regex is run over the text.
pub(crate) const MAX_CANDIDATES: usize = 4096;
/// Cache of one anchored regex's lazy DFA.
const DFA_CACHE: usize = 1 << 20;

/// A regex that is checked at its candidate places.
#[derive(Debug)]
pub(crate) struct Anchor {
    regex: meta::Regex,
    /// Longest match, when bounded.
    max_len: Option<usize>,
    /// Whether a match can contain a line feed (if not, a match ends before the next one).
    newline: bool,
}

/// Prefix literals of `source` (ASCII-lowercased, deduplicated) and its anchored checker, when
/// every match of it starts with one of a few literals of at least [`MIN_LITERAL`] bytes.
pub(crate) fn analyze(source: &str, size_limit: usize) -> Option<(Vec<Vec<u8>>, Anchor)> {
    let hir = syntax::parse_with(source, &syntax::Config::new().utf8(true)).ok()?;
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let mut literals: Vec<Vec<u8>> = seq
        .literals()?
        .iter()
        .map(|l| l.as_bytes().to_ascii_lowercase())
        .collect();
    literals.sort();
    literals.dedup();
    if literals.is_empty()
        || literals.len() > MAX_LITERALS
        || literals.iter().any(|l| l.len() < MIN_LITERAL)
    {
        return None;
    }
    let config = meta::Config::new()
        .nfa_size_limit(Some(size_limit))
        .hybrid_cache_capacity(DFA_CACHE)
        .match_kind(MatchKind::LeftmostFirst)
        .utf8_empty(true)
        .which_captures(WhichCaptures::Implicit);
    let regex = meta::Builder::new()
        .configure(config)
        .build_from_hir(&hir)
        .ok()?;
    let anchor = Anchor {
        regex,
        max_len: hir.properties().maximum_len(),
        newline: can_match_newline(&hir),
    };
    Some((literals, anchor))
}

/// Whether some match of `hir` contains a `\n` byte (look-arounds consume nothing).
fn can_match_newline(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Literal(l) => l.0.contains(&b'\n'),
        HirKind::Class(Class::Unicode(c)) => c.ranges().iter().any(|r| {
            let (s, e) = (u32::from(r.start()), u32::from(r.end()));
            (s..=e).contains(&0x0a)
        }),
        HirKind::Class(Class::Bytes(c)) => c
            .ranges()
            .iter()
            .any(|r| (r.start()..=r.end()).contains(&b'\n')),
        HirKind::Repetition(r) => r.max != Some(0) && can_match_newline(&r.sub),
        HirKind::Capture(c) => can_match_newline(&c.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(can_match_newline),
    }
}

impl Anchor {
    /// The leftmost-first match of the regex in `text`, given every place where one of its
    /// prefix literals starts (`candidates`, sorted, deduplicated; `None` when there were
    /// too many to keep). Equals `Regex::find(text)`: no match can start elsewhere, and at a
    /// given start the anchored search makes the same choice. Linear in the text: once the
    /// anchored searches would have scanned twice the text, the rest is one unanchored
    /// search from the current candidate on.
    pub(crate) fn find(
        &self,
        fallback: &regex::Regex,
        text: &str,
        candidates: Option<&[usize]>,
    ) -> Option<std::ops::Range<usize>> {
        let Some(candidates) = candidates else {
            return fallback.find(text).map(|m| m.range());
        };
        let len = text.len();
        let bytes = text.as_bytes();
        let mut budget = len.saturating_mul(2).saturating_add(64 * 1024);
        for &p in candidates {
            if p > len {
                break;
            }
            let mut end = self.max_len.map_or(len, |m| p.saturating_add(m).min(len));
            if !self.newline {
                let line = bytes.get(p..end).unwrap_or_default();
                if let Some(nl) = memchr::memchr(b'\n', line) {
                    end = p + nl;
                }
            }
            let cost = end - p + 1;
            if cost > budget {
                if !text.is_char_boundary(p) {
                    return fallback.find(text).map(|m| m.range());
                }
                return fallback.find_at(text, p).map(|m| m.range());
            }
            budget -= cost;
            let input = Input::new(bytes).span(p..end).anchored(Anchored::Yes);
            if let Some(m) = self.regex.search(&input) {
                return Some(m.range());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_bounds() {
        let (lits, a) = analyze(r"(?i)invoice\s+\d{4}", 1 << 20).unwrap();
        assert!(lits.contains(&b"invoice".to_vec()), "{lits:?}");
        assert!(a.newline);
        let (lits, a) = analyze(r"\bkalo[a-z]*mils\b", 1 << 20).unwrap();
        assert_eq!(lits, [b"kalo".to_vec()]);
        assert!(!a.newline);
        assert_eq!(a.max_len, None);
        let (_, a) = analyze(r"REF[:-]?12[0-9]{3}", 1 << 20).unwrap();
        assert_eq!(a.max_len, Some(9));
        assert!(analyze(r"\d{4}-x", 1 << 20).is_none());
        assert!(analyze(r"a*", 1 << 20).is_none());
        assert!(analyze(r"ab", 1 << 20).is_none());
    }

    #[test]
    fn anchored_find_equals_find() {
        let re = regex::Regex::new(r"\babc[a-z]*cd\b").unwrap();
        let (_, a) = analyze(r"\babc[a-z]*cd\b", 1 << 20).unwrap();
        let text = "xabccd abcxcd\nabczzcd abc cd";
        let cands: Vec<usize> = text.match_indices("abc").map(|(i, _)| i).collect();
        assert_eq!(
            a.find(&re, text, Some(&cands)),
            re.find(text).map(|m| m.range())
        );
        assert_eq!(a.find(&re, text, Some(&cands)), Some(7..13));
        assert_eq!(a.find(&re, text, None), Some(7..13));
    }
}
