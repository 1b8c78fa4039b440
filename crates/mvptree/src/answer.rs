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
/// thousands of matches costs more than the scan that found them: the pair is packed into one
/// integer (distance above id) and radix sorted, a few passes over the bits that vary. Fresh
/// buffers of that size would be fresh pages for every answer, which the kernel must clear.
/// Small answers are sorted in place, with no buffer at all.
#[derive(Debug, Default)]
pub(crate) struct MatchSorter {
    keys: Vec<u64>,
    spare: Vec<u64>,
}

impl MatchSorter {
    /// Sorts `matches` in place.
    pub(crate) fn sort(&mut self, matches: &mut [Match]) {
        match self.sort_packed(matches) {
            Some(id_bits) => {
                for (m, &key) in matches.iter_mut().zip(&self.keys) {
                    *m = unpack_match(key, id_bits);
                }
            }
            None => matches.sort_unstable(),
        }
    }

    /// Calls `row` for every match of `matches` in sorted order (`matches` may be reordered).
    pub(crate) fn sort_into(&mut self, matches: &mut [Match], mut row: impl FnMut(Match)) {
        match self.sort_packed(matches) {
            Some(id_bits) => self
                .keys
                .iter()
                .for_each(|&key| row(unpack_match(key, id_bits))),
            None => {
                matches.sort_unstable();
                matches.iter().copied().for_each(row);
            }
        }
    }

    /// Leaves `matches` packed and sorted in `self.keys` and returns the id width of the
    /// packing, or `None` when a comparison sort is the better one (a small answer) or the
    /// only one (ids too wide to share 64 bits with a distance).
    fn sort_packed(&mut self, matches: &[Match]) -> Option<u32> {
        if matches.len() < RADIX_MIN {
            return None;
        }
        let id_bits = bit_width(matches.iter().map(|m| m.id).max().unwrap_or(0));
        if id_bits + DISTANCE_BITS > 64 {
            return None;
        }
        self.keys.clear();
        self.keys.extend(
            matches
                .iter()
                .map(|m| u64::from(m.distance) << id_bits | m.id),
        );
        sort_keys(&mut self.keys, &mut self.spare, id_bits + DISTANCE_BITS);
        Some(id_bits)
    }
}

fn unpack_match(key: u64, id_bits: u32) -> Match {
    Match {
        distance: (key >> id_bits) as u32,
        id: key & low_bits(id_bits),
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
            sort_pairs(&mut pairs);
            assert_eq!(pairs, want, "pairs, {id_bits}-bit ids");
        }
    }
}
