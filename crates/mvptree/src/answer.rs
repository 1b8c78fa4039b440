//! What searches answer, and the one order they answer in.
//!
//! Every range and kNN answer is sorted by distance, then id ([`Match`]'s derived order);
//! every self-join answer by distance, then the two ids ([`sort_pairs`]). The faces pass
//! these orders through unchanged.

use crate::radix::{bit_width, sort_keys, RADIX_MIN};
use crate::MAX_CODE_BITS;

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
pub struct Entry<'a, C = u64> {
    pub id: u64,
    pub hash: C,
    pub title: &'a [u8],
    /// Still in the pending queue: `lookup` finds it, queries do not.
    pub pending: bool,
}

/// Sorts by distance, then id (see [`MatchSorter`]), in place.
pub(crate) fn sort_matches(matches: &mut [Match]) {
    MatchSorter::default().sort(matches);
}

/// Sorts answers by distance, then id, reusing its buffers from one answer to the next.
///
/// Wide radii return a large share of the index, and a comparison sort of hundreds of
/// thousands of matches costs more than the scan that found them. A distance takes one of at
/// most 257 values, so a stable counting sort by distance puts every match in its place in
/// two linear passes; within one distance the ids then keep the order the search found them
/// in, which for a scan of a segment built in id order is already id order. A distance's ids
/// that are not in order are sorted on their own (radix sorted when there are many): the
/// cost is paid only where the search order differs from id order (bit-sliced batches,
/// segments merged out of order, the multi-index). Fresh buffers of that size would be fresh
/// pages for every answer, which the kernel must clear, so the ids' buffer is kept. Small
/// answers are sorted in place, with no buffer at all.
#[derive(Debug, Default)]
pub(crate) struct MatchSorter {
    /// The ids of the last answer sorted, in answer order.
    ids: Vec<u64>,
    spare: Vec<u64>,
    /// `ends[d]`: one past the last of `ids` at distance `d`.
    ends: Vec<usize>,
}

impl MatchSorter {
    /// Sorts `matches` in place.
    pub(crate) fn sort(&mut self, matches: &mut [Match]) {
        if self.sort_by_distance(matches) {
            let mut slots = matches.iter_mut();
            self.each_row(|m| *slots.next().expect("as many rows as matches") = m);
        } else {
            matches.sort_unstable();
        }
    }

    /// Appends `matches` to `ids` and `distances` in sorted order (`matches` may be
    /// reordered).
    pub(crate) fn sort_into_columns(
        &mut self,
        matches: &mut [Match],
        ids: &mut Vec<u64>,
        distances: &mut Vec<u32>,
    ) {
        if self.sort_by_distance(matches) {
            ids.extend_from_slice(&self.ids);
            let mut start = 0;
            for (distance, &end) in self.ends.iter().enumerate() {
                distances.extend(std::iter::repeat_n(distance as u32, end - start));
                start = end;
            }
        } else {
            matches.sort_unstable();
            ids.extend(matches.iter().map(|m| m.id));
            distances.extend(matches.iter().map(|m| m.distance));
        }
    }

    /// Calls `row` for each match of the last [`Self::sort_by_distance`], in order.
    fn each_row(&self, mut row: impl FnMut(Match)) {
        let mut start = 0;
        for (distance, &end) in self.ends.iter().enumerate() {
            for &id in &self.ids[start..end] {
                row(Match {
                    distance: distance as u32,
                    id,
                });
            }
            start = end;
        }
    }

    /// Leaves the ids of `matches` sorted in `self.ids`, a distance at a time as `self.ends`
    /// delimits them, or returns false when a comparison sort is the better one (a small
    /// answer).
    fn sort_by_distance(&mut self, matches: &[Match]) -> bool {
        if matches.len() < RADIX_MIN {
            return false;
        }
        // A counter for every distance a code can have: clearing 257 is cheaper than a pass
        // over the matches to find the largest.
        self.ends.clear();
        self.ends.resize(MAX_CODE_BITS as usize + 1, 0);
        for m in matches {
            self.ends[m.distance as usize] += 1;
        }
        // `ends` holds each distance's first slot while the ids are placed, and its end after.
        let mut total = 0;
        for slot in self.ends.iter_mut() {
            let count = *slot;
            *slot = total;
            total += count;
        }
        self.ids.clear();
        self.ids.resize(matches.len(), 0);
        for m in matches {
            let slot = &mut self.ends[m.distance as usize];
            self.ids[*slot] = m.id;
            *slot += 1;
        }
        let mut start = 0;
        for &end in &self.ends {
            let ids = &mut self.ids[start..end];
            if !ids.is_sorted() {
                let bits = bit_width(ids.iter().copied().max().unwrap_or(0));
                sort_keys(ids, &mut self.spare, bits);
            }
            start = end;
        }
        true
    }
}

/// Sorts self-join answers by distance, then the smaller id, then the larger one: radix
/// sorted as packed keys when both ids and the distance fit in 64 bits together (every id
/// below 2^27), as [`sort_matches`] does.
pub(crate) fn sort_pairs(pairs: &mut [Pair]) {
    let packed_id_bits = (pairs.len() >= RADIX_MIN)
        .then(|| bit_width(pairs.iter().map(|p| p.b).max().unwrap_or(0)))
        .filter(|&bits| 2 * bits + DISTANCE_BITS <= 64);
    let Some(id_bits) = packed_id_bits else {
        pairs.sort_unstable_by_key(|p| (p.distance, p.a, p.b));
        return;
    };
    let mut keys: Vec<u64> = pairs
        .iter()
        .map(|p| (u64::from(p.distance) << id_bits | p.a) << id_bits | p.b)
        .collect();
    sort_keys(&mut keys, &mut Vec::new(), 2 * id_bits + DISTANCE_BITS);
    let id_mask = low_bits(id_bits);
    for (p, &key) in pairs.iter_mut().zip(&keys) {
        *p = Pair {
            a: key >> id_bits & id_mask,
            b: key & id_mask,
            distance: (key >> (2 * id_bits)) as u32,
        };
    }
}

/// Merges runs that are each in [`sort_pairs`]'s order into one run in that order: how a
/// self-join split over threads, each thread sorting its own rows, is joined without sorting
/// all of them again on one thread.
pub(crate) fn merge_sorted_pairs(mut runs: Vec<Vec<Pair>>) -> Vec<Pair> {
    runs.retain(|run| !run.is_empty());
    if runs.len() <= 1 {
        return runs.pop().unwrap_or_default();
    }
    let key = |p: &Pair| (p.distance, p.a, p.b);
    let total = runs.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(total);
    let mut heads = vec![0usize; runs.len()];
    // A linear pick among the runs' heads: there are as many runs as threads, a handful.
    loop {
        let mut best: Option<(usize, Pair)> = None;
        for (r, run) in runs.iter().enumerate() {
            if let Some(&p) = run.get(heads[r]) {
                if best.is_none_or(|(_, b)| key(&p) < key(&b)) {
                    best = Some((r, p));
                }
            }
        }
        let Some((r, p)) = best else { break };
        out.push(p);
        heads[r] += 1;
    }
    out
}

/// Bits of a distance (0..=256, any code width) in a packed sort key.
const DISTANCE_BITS: u32 = bit_width(MAX_CODE_BITS as u64);

fn low_bits(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_sort_agrees_with_the_derived_order() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Ids in search order already sorted (a scan in id order), shuffled within a few
        // distances (large buckets, radix sorted), and wide ids at the top distance.
        let in_order: Vec<Match> = (0..100_000u64)
            .map(|id| Match {
                distance: (next() % 33) as u32,
                id,
            })
            .collect();
        let shuffled: Vec<Match> = (0..100_000)
            .map(|_| Match {
                distance: (next() % 3) as u32,
                id: next() >> 40,
            })
            .collect();
        let wide: Vec<Match> = (0..10_000)
            .map(|_| Match {
                distance: 256 - (next() % 2) as u32,
                id: next(),
            })
            .collect();
        let mut sorter = MatchSorter::default();
        for matches in [in_order, shuffled, wide] {
            let mut want = matches.clone();
            want.sort_unstable();
            let mut sorted = matches.clone();
            sorter.sort(&mut sorted);
            assert_eq!(sorted, want);
            let (mut ids, mut distances) = (vec![7], vec![9]);
            sorter.sort_into_columns(&mut matches.clone(), &mut ids, &mut distances);
            assert_eq!(
                (ids[0], distances[0]),
                (7, 9),
                "appended after what was there"
            );
            let columns: Vec<Match> = ids[1..]
                .iter()
                .zip(&distances[1..])
                .map(|(&id, &distance)| Match { distance, id })
                .collect();
            assert_eq!(columns, want);
        }
    }

    #[test]
    fn packed_sorts_agree_with_the_derived_orders() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        // Small and large ids: the large ones do not fit a packed key and take the fallback.
        for id_bits in [1u32, 20, 40, 57, 63] {
            let mut matches: Vec<Match> = (0..5000)
                .map(|_| Match {
                    distance: (next() % 65) as u32,
                    id: next() >> (64 - id_bits),
                })
                .collect();
            let mut want = matches.clone();
            want.sort_unstable();
            sort_matches(&mut matches);
            assert_eq!(matches, want, "matches, {id_bits}-bit ids");

            let mut pairs: Vec<Pair> = (0..5000)
                .map(|_| {
                    let (x, y) = (next() >> (64 - id_bits), next() >> (64 - id_bits));
                    Pair {
                        a: x.min(y),
                        b: x.max(y),
                        distance: (next() % 65) as u32,
                    }
                })
                .collect();
            let mut want = pairs.clone();
            want.sort_unstable_by_key(|p| (p.distance, p.a, p.b));
            let runs: Vec<Vec<Pair>> = pairs
                .chunks(1700)
                .map(|run| {
                    let mut run = run.to_vec();
                    sort_pairs(&mut run);
                    run
                })
                .chain([Vec::new()])
                .collect();
            assert_eq!(
                merge_sorted_pairs(runs),
                want,
                "merged runs, {id_bits}-bit ids"
            );
            sort_pairs(&mut pairs);
            assert_eq!(pairs, want, "pairs, {id_bits}-bit ids");
        }
    }
}
