//! The lookup index: sorted, non-overlapping address ranges, each naming the entry that
//! owns it.
//!
//! Entries are numbered in file order, and a higher number wins wherever entries overlap:
//! runtimes reuse freed code space and append a line for the code now there, so the newest
//! line covering an address is the true one. Where a newer entry covers only part of an
//! older one, the older keeps the rest (nothing newer claims it).
use std::collections::BinaryHeap;

/// `start..end` belongs to entry number `entry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Segment {
    pub start: u64,
    pub end: u64,
    pub entry: u32,
}

/// Builds the index of `count` entries numbered `first..first + count`, where `span(i)` is
/// entry `first + i`'s `(start, end)`, with `start < end`. O(n log n): a sweep over the
/// entries sorted by start, with a heap of those covering the sweep position, newest on top.
pub(super) fn build(count: usize, first: u32, span: impl Fn(usize) -> (u64, u64)) -> Vec<Segment> {
    let mut order: Vec<u32> = (0..count as u32).collect();
    order.sort_unstable_by_key(|&i| span(i as usize).0);
    // (entry, end); stale elements (end <= pos) are dropped when they reach the top.
    let mut active: BinaryHeap<(u32, u64)> = BinaryHeap::new();
    let mut out = Vec::with_capacity(count);
    let mut next = 0;
    let mut pos = 0;
    loop {
        while active.peek().is_some_and(|&(_, end)| end <= pos) {
            active.pop();
        }
        if active.is_empty() {
            match order.get(next) {
                Some(&i) => pos = span(i as usize).0,
                None => break,
            }
        }
        // `pos` never passes an unvisited start, so each entry joins exactly at its start.
        while let Some(&i) = order.get(next) {
            let (start, end) = span(i as usize);
            if start > pos {
                break;
            }
            if end > pos {
                active.push((i, end));
            }
            next += 1;
        }
        let Some(&(i, end)) = active.peek() else {
            continue;
        };
        // The owner holds until it ends or another entry (maybe newer) starts.
        let stop = order
            .get(next)
            .map_or(end, |&n| end.min(span(n as usize).0));
        push(
            &mut out,
            Segment {
                start: pos,
                end: stop,
                entry: first + i,
            },
        );
        pos = stop;
    }
    out
}

/// `old` with `new` laid over it: `new` wins wherever both cover an address. Both must be
/// sorted and non-overlapping; so is the result. Linear, so appending a few lines to a big
/// map costs a pass over the index, not a re-sort.
pub(super) fn overlay(old: &[Segment], new: &[Segment]) -> Vec<Segment> {
    if new.is_empty() {
        return old.to_vec();
    }
    // What remains of `old` outside every new segment.
    let mut kept = Vec::with_capacity(old.len() + 2);
    let mut first = 0;
    for seg in old {
        let mut from = seg.start;
        while new.get(first).is_some_and(|n| n.end <= from) {
            first += 1;
        }
        for n in &new[first..] {
            if n.start >= seg.end || from >= seg.end {
                break;
            }
            if n.start > from {
                kept.push(Segment {
                    start: from,
                    end: n.start,
                    ..*seg
                });
            }
            from = from.max(n.end);
        }
        if from < seg.end {
            kept.push(Segment {
                start: from,
                ..*seg
            });
        }
    }
    // Merge the two disjoint, sorted lists.
    let mut out = Vec::with_capacity(kept.len() + new.len());
    let (mut a, mut b) = (kept.iter().peekable(), new.iter().peekable());
    loop {
        let seg = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.start < y.start => a.next(),
            (Some(_), Some(_)) | (None, Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, None) => break,
        };
        push(&mut out, *seg.expect("peeked"));
    }
    out
}

/// The segment covering `addr`.
pub(super) fn find(index: &[Segment], addr: u64) -> Option<&Segment> {
    let after = index.partition_point(|seg| seg.start <= addr);
    index[..after].last().filter(|seg| addr < seg.end)
}

/// Appends, joining a segment to the previous one of the same entry when they touch.
fn push(out: &mut Vec<Segment>, seg: Segment) {
    match out.last_mut() {
        Some(last) if last.entry == seg.entry && last.end == seg.start => last.end = seg.end,
        _ => out.push(seg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest of `spans` covering `addr`, by brute force.
    fn newest(spans: &[(u64, u64)], addr: u64) -> Option<u32> {
        (0..spans.len() as u32)
            .rev()
            .find(|&i| (spans[i as usize].0..spans[i as usize].1).contains(&addr))
    }

    fn index_of(spans: &[(u64, u64)], first: u32) -> Vec<Segment> {
        build(spans.len(), first, |i| spans[i])
    }

    fn check_sorted_disjoint(index: &[Segment]) {
        for pair in index.windows(2) {
            assert!(pair[0].end <= pair[1].start, "{pair:?}");
        }
        assert!(index.iter().all(|s| s.start < s.end));
    }

    #[test]
    fn later_entries_win() {
        // 0: [0x100, 0x200); 1: [0x180, 0x190) inside it; 2: [0x1f0, 0x300) over its end.
        let spans = [(0x100, 0x200), (0x180, 0x190), (0x1f0, 0x300)];
        let index = index_of(&spans, 0);
        let owner = |addr| find(&index, addr).map(|s| s.entry);
        assert_eq!(owner(0xff), None);
        assert_eq!(owner(0x100), Some(0));
        assert_eq!(owner(0x17f), Some(0));
        assert_eq!(owner(0x180), Some(1));
        assert_eq!(owner(0x18f), Some(1));
        assert_eq!(owner(0x190), Some(0));
        assert_eq!(owner(0x1ef), Some(0));
        assert_eq!(owner(0x1f0), Some(2));
        assert_eq!(owner(0x2ff), Some(2));
        assert_eq!(owner(0x300), None);
        // An older entry covered by a newer one at the same place disappears.
        let index = index_of(&[(0x10, 0x20), (0x10, 0x20)], 0);
        assert_eq!(
            index,
            [Segment {
                start: 0x10,
                end: 0x20,
                entry: 1
            }]
        );
        assert_eq!(index_of(&[], 0), []);
    }

    /// A small deterministic generator, so failures reproduce.
    struct Lcg(u64);
    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
        fn spans(&mut self, count: usize) -> Vec<(u64, u64)> {
            (0..count)
                .map(|_| {
                    let start = self.below(60);
                    (start, start + 1 + self.below(12))
                })
                .collect()
        }
    }

    #[test]
    fn build_and_overlay_match_brute_force() {
        let mut rng = Lcg(7);
        for round in 0..500 {
            let count = 1 + rng.below(25) as usize;
            let spans = rng.spans(count);
            let split = rng.below(count as u64 + 1) as usize;
            let whole = index_of(&spans, 0);
            let layered = overlay(
                &index_of(&spans[..split], 0),
                &index_of(&spans[split..], split as u32),
            );
            check_sorted_disjoint(&whole);
            check_sorted_disjoint(&layered);
            for addr in 0..80 {
                let want = newest(&spans, addr);
                assert_eq!(
                    find(&whole, addr).map(|s| s.entry),
                    want,
                    "round {round} addr {addr} {spans:?}"
                );
                assert_eq!(
                    find(&layered, addr).map(|s| s.entry),
                    want,
                    "round {round} addr {addr} split {split} {spans:?}"
                );
            }
            // Coalesced: the two builds give the very same segments.
            assert_eq!(whole, layered, "round {round} {spans:?}");
        }
    }

    #[test]
    fn extreme_addresses() {
        let spans = [(0, 1), (u64::MAX - 1, u64::MAX)];
        let index = index_of(&spans, 0);
        assert_eq!(find(&index, 0).map(|s| s.entry), Some(0));
        assert_eq!(find(&index, u64::MAX - 1).map(|s| s.entry), Some(1));
        assert_eq!(find(&index, u64::MAX), None);
    }
}
