//! Regexes checked only where they can start: the prefix literals of a regex (every match of
//! it begins with one of them) go into the same Aho-Corasick automaton as the keywords, so
//! one pass over a text finds both the keywords and every place where a regex can match; the
//! regex is then run anchored at those places only. Hundreds of regexes cost one automaton
//! pass plus work proportional to their candidate places, instead of a `RegexSet` pass whose
//! lazy DFA grows with the number of patterns.
//!
//! A regex without usable prefix literals (one that can start with a short or open class,
//! `\d+...`, or match the empty string) stays in the `RegexSet` path.

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::pool::Pool;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind, meta};
use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// Shortest prefix literal worth a candidate place (shorter ones occur everywhere).
const MIN_LITERAL: usize = 3;
/// Most prefix literals of one regex (after ASCII case folding) put into the automaton.
const MAX_LITERALS: usize = 64;
/// Candidate places of one regex kept per text; past that the regex is run over the text.
pub(crate) const MAX_CANDIDATES: usize = 4096;
/// Cache of one anchored regex's lazy DFA.
const DFA_CACHE: usize = 1 << 20;

type CachePool = Pool<Cache, Box<dyn Fn() -> Cache + Send + Sync>>;

/// A regex that is checked at its candidate places.
pub(crate) struct Anchor {
    /// Forward lazy DFA, searched anchored: a call costs little more than the bytes it reads.
    dfa: std::sync::Arc<DFA>,
    caches: CachePool,
    /// The full engine, for the rare candidate where the lazy DFA gives up (a Unicode `\b`
    /// next to non-ASCII text).
    regex: meta::Regex,
    /// Longest match, when bounded.
    max_len: Option<usize>,
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
    let nfa = thompson::Compiler::new()
        .configure(
            thompson::Config::new()
                .nfa_size_limit(Some(size_limit))
                .which_captures(WhichCaptures::None),
        )
        .build_from_hir(&hir)
        .ok()?;
    let dfa = DFA::builder()
        .configure(
            DFA::config()
                .match_kind(MatchKind::LeftmostFirst)
                .unicode_word_boundary(true)
                .cache_capacity(DFA_CACHE),
        )
        .build_from_nfa(nfa)
        .ok()?;
    let dfa = std::sync::Arc::new(dfa);
    let for_pool = std::sync::Arc::clone(&dfa);
    let anchor = Anchor {
        dfa,
        caches: Pool::new(Box::new(move || for_pool.create_cache())),
        regex,
        max_len: hir.properties().maximum_len(),
    };
    Some((literals, anchor))
}

impl std::fmt::Debug for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anchor")
            .field("regex", &self.regex)
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
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
        let mut cache = self.caches.get();
        for &p in candidates {
            if p > len {
                break;
            }
            let end = self.max_len.map_or(len, |m| p.saturating_add(m).min(len));
            match self.anchored_end(&mut cache, bytes, p, end, &mut budget) {
                Step::Match(e) => return Some(p..e),
                Step::NoMatch => {}
                Step::OverBudget if text.is_char_boundary(p) => {
                    return fallback.find_at(text, p).map(|m| m.range());
                }
                Step::OverBudget => return fallback.find(text).map(|m| m.range()),
                Step::GaveUp => {
                    let input = Input::new(bytes).span(p..end).anchored(Anchored::Yes);
                    if let Some(m) = self.regex.search(&input) {
                        return Some(m.range());
                    }
                }
            }
        }
        None
    }

    /// The lazy DFA walked by hand from `p` (as `try_search_fwd` does, matches reported one
    /// byte late), so that the bytes it reads are counted against `budget`.
    fn anchored_end(
        &self,
        cache: &mut Cache,
        bytes: &[u8],
        p: usize,
        end: usize,
        budget: &mut usize,
    ) -> Step {
        let input = Input::new(bytes).span(p..end).anchored(Anchored::Yes);
        let Ok(mut sid) = self.dfa.start_state_forward(cache, &input) else {
            return Step::GaveUp;
        };
        let mut last = None;
        let span = bytes.get(p..end).unwrap_or_default();
        for (i, &b) in span.iter().enumerate() {
            if *budget == 0 {
                return Step::OverBudget;
            }
            *budget -= 1;
            let at = p + i;
            let Ok(next) = self.dfa.next_state(cache, sid, b) else {
                return Step::GaveUp;
            };
            sid = next;
            if sid.is_tagged() {
                if sid.is_match() {
                    last = Some(at);
                } else if sid.is_dead() {
                    return last.map_or(Step::NoMatch, Step::Match);
                } else if sid.is_quit() {
                    return Step::GaveUp;
                }
            }
        }
        // The end of the span: the byte after it (look-ahead context) or the end of the text.
        let next = match bytes.get(end) {
            Some(&b) => self.dfa.next_state(cache, sid, b),
            None => self.dfa.next_eoi_state(cache, sid),
        };
        match next {
            Ok(sid) if sid.is_match() => Step::Match(end),
            Ok(sid) if sid.is_quit() => Step::GaveUp,
            Ok(_) => last.map_or(Step::NoMatch, Step::Match),
            Err(_) => Step::GaveUp,
        }
    }
}

enum Step {
    Match(usize),
    NoMatch,
    OverBudget,
    GaveUp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_bounds() {
        let (lits, _) = analyze(r"(?i)invoice\s+\d{4}", 1 << 20).unwrap();
        assert!(lits.contains(&b"invoice".to_vec()), "{lits:?}");
        let (lits, a) = analyze(r"\bkalo[a-z]*mils\b", 1 << 20).unwrap();
        assert_eq!(lits, [b"kalo".to_vec()]);
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
