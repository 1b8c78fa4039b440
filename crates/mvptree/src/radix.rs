//! Least-significant-digit radix sort of `u64` keys: the sort behind wide self-join answers,
//! and behind the ids of one distance of a wide range answer when the search found them out
//! of id order (range answers are counted into distances first: `answer::MatchSorter`).
//!
//! Self-join answers are sorted by (distance, a, b). Packed into one integer (the
//! distance above the ids), such a key has few significant bits: a distance needs 7, and the
//! ids of an index of a million entries 20 each. Sorting those bits a digit at a time costs a
//! few linear passes where a comparison sort of hundreds of thousands of rows costs
//! `log2 n` ≈ 18 and branches on every comparison. Written here rather than taken from a
//! crate because the packing, not the sort, is the part that matters, and the sort is short.

/// Bits per digit: 2,048 counters of 4 bytes stay in L1 while a pass runs.
const DIGIT_BITS: u32 = 11;
const BUCKETS: usize = 1 << DIGIT_BITS;

/// Below this many keys a comparison sort is faster than clearing the counters.
pub(crate) const RADIX_MIN: usize = 2048;

/// Sorts `keys` ascending, given that no key has a bit set at or above `bits` (`bits` ≤ 64).
/// Digits on which every key agrees are skipped, so only the bits that vary cost a pass.
/// `spare` is scratch space, grown as needed: passing the same one again saves allocating.
pub(crate) fn sort_keys(keys: &mut [u64], spare: &mut Vec<u64>, bits: u32) {
    debug_assert!(bits == 64 || keys.iter().all(|&k| k >> bits == 0));
    if keys.len() < RADIX_MIN || keys.len() > u32::MAX as usize {
        keys.sort_unstable();
        return;
    }
    let passes = bits.div_ceil(DIGIT_BITS) as usize;
    // Every pass's histogram in one read of the keys.
    let mut counts = vec![[0u32; BUCKETS]; passes];
    for &key in keys.iter() {
        for (pass, count) in counts.iter_mut().enumerate() {
            count[digit(key, pass)] += 1;
        }
    }
    spare.clear();
    spare.resize(keys.len(), 0);
    // Each pass scatters from one buffer into the other; `in_spare` says which holds the keys.
    let mut in_spare = false;
    for (pass, count) in counts.iter().enumerate() {
        if count.iter().any(|&c| c as usize == keys.len()) {
            continue;
        }
        let mut next = [0u32; BUCKETS];
        let mut total = 0u32;
        for (slot, &c) in next.iter_mut().zip(count) {
            *slot = total;
            total += c;
        }
        let (from, to): (&[u64], &mut [u64]) = if in_spare {
            (&spare[..], &mut *keys)
        } else {
            (&*keys, &mut spare[..])
        };
        for &key in from {
            let d = digit(key, pass);
            to[next[d] as usize] = key;
            next[d] += 1;
        }
        in_spare = !in_spare;
    }
    if in_spare {
        keys.copy_from_slice(spare);
    }
}

#[inline(always)]
fn digit(key: u64, pass: usize) -> usize {
    (key >> (pass as u32 * DIGIT_BITS)) as usize & (BUCKETS - 1)
}

/// Bits needed to write `value` (0 for 0).
pub(crate) const fn bit_width(value: u64) -> u32 {
    u64::BITS - value.leading_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(mut keys: Vec<u64>, bits: u32) {
        let mut want = keys.clone();
        want.sort_unstable();
        sort_keys(&mut keys, &mut Vec::new(), bits);
        assert_eq!(keys, want);
    }

    #[test]
    fn sorts_like_a_comparison_sort() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for (n, bits) in [(0, 1), (5, 3), (3000, 27), (10_000, 64), (70_000, 47)] {
            let keys: Vec<u64> = (0..n)
                .map(|_| {
                    if bits == 64 {
                        next()
                    } else {
                        next() >> (64 - bits)
                    }
                })
                .collect();
            check(keys, bits);
        }
        // Digits shared by every key are skipped: the rest must still sort.
        check((0..5000u64).rev().map(|k| k << 22 | 0x1F).collect(), 40);
        check(vec![7; 4096], 3);
    }

    #[test]
    fn widths() {
        assert_eq!(bit_width(0), 0);
        assert_eq!(bit_width(1), 1);
        assert_eq!(bit_width(1 << 40), 41);
        assert_eq!(bit_width(u64::MAX), 64);
    }
}
