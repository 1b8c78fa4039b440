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
        // Most answers of a batch of near lookups: no row, or the one copy.
        match matches {
            [] => return,
            [only] => {
                ids.push(only.id);
                distances.push(only.distance);
                return;
            }
            _ => {}
        }
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

/// A self-join row as one sort key: distance, then the smaller id, then the larger, each
/// id in `id_bits` bits (see [`packed_id_bits`]). Keys sort as [`sort_pairs`] sorts rows.
#[inline(always)]
pub(crate) fn pack_pair(id_bits: u32, pair: Pair) -> u64 {
    (u64::from(pair.distance) << id_bits | pair.a) << id_bits | pair.b
}

/// [`pack_pair`]'s inverse.
#[inline(always)]
fn unpack_pair(id_bits: u32, key: u64) -> Pair {
    let id_mask = low_bits(id_bits);
    Pair {
        a: key >> id_bits & id_mask,
        b: key & id_mask,
        distance: (key >> (2 * id_bits)) as u32,
    }
}

/// Bits an id takes in a packed self-join key when no id exceeds `max_id`, or `None` when
/// two of them and a distance do not fit in 64 bits (an id of 2^27 or more).
pub(crate) fn packed_id_bits(max_id: u64) -> Option<u32> {
    let bits = bit_width(max_id);
    (2 * bits + DISTANCE_BITS <= 64).then_some(bits)
}

/// Bits of a packed self-join key with ids of `id_bits` bits: what its radix sort reads.
pub(crate) const fn packed_pair_bits(id_bits: u32) -> u32 {
    2 * id_bits + DISTANCE_BITS
}

/// Sorts self-join answers by distance, then the smaller id, then the larger one: radix
/// sorted as packed keys when both ids and the distance fit in 64 bits together (every id
/// below 2^27), as [`sort_matches`] does.
pub(crate) fn sort_pairs(pairs: &mut [Pair]) {
    let packed_id_bits = (pairs.len() >= RADIX_MIN)
        .then(|| packed_id_bits(pairs.iter().map(|p| p.b).max().unwrap_or(0)))
        .flatten();
    let Some(id_bits) = packed_id_bits else {
        pairs.sort_unstable_by_key(|p| (p.distance, p.a, p.b));
        return;
    };
    let mut keys: Vec<u64> = pairs.iter().map(|&p| pack_pair(id_bits, p)).collect();
    sort_keys(&mut keys, &mut Vec::new(), packed_pair_bits(id_bits));
    for (p, &key) in pairs.iter_mut().zip(&keys) {
        *p = unpack_pair(id_bits, key);
    }
}

/// One share of a self-join's rows, in [`sort_pairs`]'s order: packed keys ([`pack_pair`])
/// while the ids fit, so that a join writes and sorts 8 bytes a row instead of 24, else rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PairRun {
    Packed { keys: Vec<u64>, id_bits: u32 },
    Rows(Vec<Pair>),
}

impl From<Vec<Pair>> for PairRun {
    /// Rows already in [`sort_pairs`]'s order.
    fn from(rows: Vec<Pair>) -> PairRun {
        PairRun::Rows(rows)
    }
}

impl PairRun {
    pub(crate) fn len(&self) -> usize {
        match self {
            PairRun::Packed { keys, .. } => keys.len(),
            PairRun::Rows(rows) => rows.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i` (below [`PairRun::len`]).
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> Pair {
        match self {
            PairRun::Packed { keys, id_bits } => unpack_pair(*id_bits, keys[i]),
            PairRun::Rows(rows) => rows[i],
        }
    }

    /// The first row at `distance` or more (the run's length if none is).
    pub(crate) fn distance_start(&self, distance: u32) -> usize {
        match self {
            PairRun::Packed { keys, id_bits } => {
                keys.partition_point(|&k| k >> (2 * id_bits) < u64::from(distance))
            }
            PairRun::Rows(rows) => rows.partition_point(|p| p.distance < distance),
        }
    }

    /// Every row, in order.
    pub(crate) fn rows(&self) -> impl Iterator<Item = Pair> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// Merges runs that are each in [`sort_pairs`]'s order into one run in that order: how a
/// self-join split over threads, each thread sorting its own rows, is joined without sorting
/// all of them again on one thread.
pub(crate) fn merge_sorted_pairs(mut runs: Vec<PairRun>) -> Vec<Pair> {
    runs.retain(|run| !run.is_empty());
    if runs.len() <= 1 {
        return match runs.pop() {
            Some(PairRun::Rows(rows)) => rows,
            Some(run) => run.rows().collect(),
            None => Vec::new(),
        };
    }
    let key = |p: &Pair| (p.distance, p.a, p.b);
    let total = runs.iter().map(PairRun::len).sum();
    let mut out = Vec::with_capacity(total);
    let mut heads = vec![0usize; runs.len()];
    // A linear pick among the runs' heads: there are as many runs as threads, a handful.
    loop {
        let mut best: Option<(usize, Pair)> = None;
        for (r, run) in runs.iter().enumerate() {
            if heads[r] < run.len() {
                let p = run.get(heads[r]);
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
            // Runs of both forms: rows, and packed keys where the ids fit.
            let runs: Vec<PairRun> = pairs
                .chunks(1700)
                .enumerate()
                .map(|(i, run)| {
                    let mut run = run.to_vec();
                    sort_pairs(&mut run);
                    match packed_id_bits(low_bits(id_bits)).filter(|_| i % 2 == 0) {
                        Some(bits) => PairRun::Packed {
                            keys: run.iter().map(|&p| pack_pair(bits, p)).collect(),
                            id_bits: bits,
                        },
                        None => PairRun::Rows(run),
                    }
                })
                .chain([PairRun::Rows(Vec::new())])
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
