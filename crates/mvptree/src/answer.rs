//! What searches answer, and the one order they answer in.
//!
//! Every range and kNN answer is sorted by distance, then id ([`Match`]'s derived order);
//! every self-join answer by distance, then the two ids ([`sort_pairs`]). The faces pass
//! these orders through unchanged.

use crate::MAX_RADIUS;

/// One query answer: an indexed entry and its Hamming distance to the query.
///
/// Ordering is by distance, then id: the order every query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Match {
    pub distance: u32,
    pub id: u64,
}

/// One answer of the self-join [`crate::Index::pairs`]: `a < b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pair {
    pub a: u64,
    pub b: u64,
    pub distance: u32,
}

/// An entry as [`crate::Index::entries`] yields it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub id: u64,
    pub hash: u64,
    pub title: &'a [u8],
    /// Still in the pending queue: `lookup` finds it, queries do not.
    pub pending: bool,
}

/// Sorts by distance, then id. Wide radii return a large share of the index, and a
/// comparison sort of hundreds of thousands of matches costs more than the scan that found
/// them: a counting sort on the distance (65 values) leaves only short runs to sort by id.
pub(crate) fn sort_matches(matches: &mut Vec<Match>) {
    if matches.len() < 1024 {
        matches.sort_unstable();
        return;
    }
    let mut starts = [0usize; MAX_RADIUS as usize + 2];
    for m in matches.iter() {
        starts[m.distance as usize + 1] += 1;
    }
    for d in 1..starts.len() {
        starts[d] += starts[d - 1];
    }
    let bounds = starts;
    let mut sorted = vec![Match { distance: 0, id: 0 }; matches.len()];
    for &m in matches.iter() {
        sorted[starts[m.distance as usize]] = m;
        starts[m.distance as usize] += 1;
    }
    for run in bounds.windows(2) {
        sorted[run[0]..run[1]].sort_unstable_by_key(|m| m.id);
    }
    *matches = sorted;
}

/// Sorts self-join answers by distance, then the smaller id, then the larger one.
pub(crate) fn sort_pairs(pairs: &mut [Pair]) {
    pairs.sort_unstable_by_key(|p| (p.distance, p.a, p.b));
}
