//! The keyword automaton's pass over a text: every match, overlapping, in the order
//! `AhoCorasick::find_overlapping_iter` reports them, from a loop of our own.
//!
//! With a thousand patterns the automaton is a table walk whose every step waits for the
//! previous one (the next state is a load that depends on the current state): the library's
//! overlapping iterator adds its bookkeeping to that chain, about 20 instructions a byte. This
//! loop keeps the state in a register and walks [`LANES`] pieces of a long text side by side,
//! so that their independent chains of loads overlap in the CPU. Each piece after the first
//! starts `max_pattern_len - 1` bytes early (so a match that crosses into it is seen whole)
//! and reports only the matches that end inside it; its matches wait in a bounded buffer
//! until the pieces before it are reported, which keeps the order.

use std::ops::Range;

use aho_corasick::automaton::{Automaton, OverlappingState};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, Input, PatternID};

/// Pieces walked side by side.
pub(crate) const LANES: usize = 4;
const _: () = assert!(
    LANES == 4,
    "the side-by-side loop below is written out for four pieces"
);
/// Automata of at most this many patterns are built with the library's prefilter and searched
/// with its iterator (the walk pays for every byte; a prefilter skips most of them).
pub(crate) const MAX_PREFILTERED: usize = 32;
/// Texts shorter than this are walked in one piece.
pub(crate) const MIN_SPLIT: usize = 16 * 1024;
/// Matches of one later piece held back at most; when a buffer fills, the side-by-side walk
/// stops and every piece is finished alone, in order.
const MAX_BUFFERED: usize = 1 << 14;

/// Calls `report(pattern, range)` for every match of `dfa` in `hay`, overlapping, ordered by
/// end and then as the automaton lists a state's patterns.
pub(crate) fn overlapping(dfa: &DFA, hay: &[u8], report: &mut dyn FnMut(PatternID, Range<usize>)) {
    overlapping_split(dfa, hay, MIN_SPLIT, report);
}

/// [`overlapping`] with the split threshold given (tests split short texts).
pub(crate) fn overlapping_split(
    dfa: &DFA,
    hay: &[u8],
    min_split: usize,
    report: &mut dyn FnMut(PatternID, Range<usize>),
) {
    if dfa.prefilter().is_some() {
        // A few patterns: the library's search skips to their rare bytes, far faster than
        // any walk of every byte.
        let mut state = OverlappingState::start();
        let input = Input::new(hay);
        while dfa.try_find_overlapping(&input, &mut state).is_ok() {
            let Some(m) = state.get_match() else { break };
            report(m.pattern(), m.range());
        }
        return;
    }
    let Ok(start) = dfa.start_state(Anchored::No) else {
        return;
    };
    let overlap = dfa.max_pattern_len().saturating_sub(1);
    let n = hay.len();
    let seg = n / LANES;
    if n < min_split.max(1) || overlap >= seg {
        walk(dfa, start, hay, 0, n, 0, report);
        return;
    }
    // Piece c covers the ends in (c * seg, (c + 1) * seg] (the last: up to n) and starts
    // reading at c * seg - overlap (the first at 0).
    let from = |c: usize| (c * seg).saturating_sub(if c == 0 { 0 } else { overlap });
    let until = |c: usize| if c + 1 == LANES { n } else { (c + 1) * seg };
    let mut sid = [start; LANES];
    let mut buffered: [Vec<(PatternID, Range<usize>)>; LANES] = Default::default();
    // Side by side: step k of piece c reads hay[from(c) + k]; every piece has at least seg
    // bytes, so the first seg steps are in bounds for all of them.
    let lane = |c: usize| hay.get(from(c)..from(c) + seg).unwrap_or_default();
    let (l0, l1, l2, l3) = (lane(0), lane(1), lane(2), lane(3));
    let mut k = 0;
    for (((&b0, &b1), &b2), &b3) in l0.iter().zip(l1).zip(l2).zip(l3) {
        sid[0] = dfa.next_state(Anchored::No, sid[0], b0);
        sid[1] = dfa.next_state(Anchored::No, sid[1], b1);
        sid[2] = dfa.next_state(Anchored::No, sid[2], b2);
        sid[3] = dfa.next_state(Anchored::No, sid[3], b3);
        k += 1;
        // One branch for the common case: no lane is in a match state.
        if !(dfa.is_special(sid[0])
            | dfa.is_special(sid[1])
            | dfa.is_special(sid[2])
            | dfa.is_special(sid[3]))
        {
            continue;
        }
        let mut full = false;
        for c in 0..LANES {
            if !dfa.is_special(sid[c]) {
                continue;
            }
            let end = from(c) + k;
            if c == 0 {
                matches(dfa, sid[c], end, report);
            } else if end > c * seg {
                let buf = &mut buffered[c];
                matches(dfa, sid[c], end, &mut |p, r| buf.push((p, r)));
                full |= buf.len() >= MAX_BUFFERED;
            }
        }
        if full {
            break;
        }
    }
    for c in 0..LANES {
        for (p, r) in buffered[c].drain(..) {
            report(p, r);
        }
        let floor = if c == 0 { 0 } else { c * seg };
        walk(dfa, sid[c], hay, from(c) + k, until(c), floor, report);
    }
}

/// One piece alone: bytes `at..end` from state `sid`, reporting matches that end after `floor`.
fn walk(
    dfa: &DFA,
    mut sid: aho_corasick::automaton::StateID,
    hay: &[u8],
    at: usize,
    end: usize,
    floor: usize,
    report: &mut dyn FnMut(PatternID, Range<usize>),
) {
    let Some(bytes) = hay.get(at..end) else {
        return;
    };
    for (i, &b) in bytes.iter().enumerate() {
        sid = dfa.next_state(Anchored::No, sid, b);
        if dfa.is_special(sid) {
            let e = at + i + 1;
            if e > floor {
                matches(dfa, sid, e, report);
            }
        }
    }
}

/// The matches of a special state (none for the dead state) ending at `end`.
fn matches(
    dfa: &DFA,
    sid: aho_corasick::automaton::StateID,
    end: usize,
    report: &mut dyn FnMut(PatternID, Range<usize>),
) {
    if !dfa.is_match(sid) {
        return;
    }
    for i in 0..dfa.match_len(sid) {
        let p = dfa.match_pattern(sid, i);
        report(p, end.saturating_sub(dfa.pattern_len(p))..end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::{AhoCorasick, MatchKind};
    use proptest::prelude::*;

    fn dfa(patterns: &[String], prefilter: bool) -> DFA {
        DFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .prefilter(prefilter)
            .build(patterns)
            .unwrap()
    }

    fn library(patterns: &[String], hay: &str) -> Vec<(usize, Range<usize>)> {
        let ac = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(patterns)
            .unwrap();
        ac.find_overlapping_iter(hay)
            .map(|m| (m.pattern().as_usize(), m.range()))
            .collect()
    }

    fn ours(patterns: &[String], hay: &str, min_split: usize) -> Vec<(usize, Range<usize>)> {
        let d = dfa(patterns, min_split % 2 == 1);
        let mut out = Vec::new();
        overlapping_split(&d, hay.as_bytes(), min_split, &mut |p, r| {
            out.push((p.as_usize(), r))
        });
        out
    }

    #[test]
    fn overlapping_and_across_the_cuts() {
        let patterns: Vec<String> = ["abc", "bcd", "cdabc", "d", "ABCDABCD"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let hay = "abcdabcdxxabcdAbCdabcd".repeat(7);
        let want = library(&patterns, &hay);
        assert!(want.len() > 50);
        for min_split in [0, 1, 8, 1 << 20] {
            assert_eq!(ours(&patterns, &hay, min_split), want, "{min_split}");
        }
    }

    #[test]
    fn a_full_buffer_keeps_the_order() {
        let patterns = vec!["a".to_string(), "aa".to_string()];
        let hay = "a".repeat(LANES * (MAX_BUFFERED + 100));
        assert_eq!(ours(&patterns, &hay, 0), library(&patterns, &hay));
    }

    proptest! {
        #[test]
        fn equals_the_library(
            patterns in proptest::collection::vec("[abcAB]{1,6}", 1..12),
            hay in "[abcdAB ]{0,400}",
            min_split in 0usize..64,
        ) {
            prop_assert_eq!(ours(&patterns, &hay, min_split), library(&patterns, &hay));
        }
    }
}
