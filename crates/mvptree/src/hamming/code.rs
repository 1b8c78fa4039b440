//! Hash codes of a width fixed per index: 64, 128 or 256 bits.
//!
//! A 64-bit code is a `u64`; wider ones are arrays of words, `[u64; 2]` and `[u64; 4]`. Bit `i`
//! of a code is bit `i % 64` of word `i / 64`. Every structure and plan is written once over
//! [`Code`], so the same rules hold at every width; only the bit counting kernels are chosen
//! per width ([`Code::hit_masks`]).
//!
//! How the faces map text, bytes and arrays onto words is theirs to say (docs/spec.md); the
//! core only needs the words to be the same for the same hash.

use std::fmt::Debug;
use std::hash::Hash;

use super::Kernel;

mod sealed {
    pub trait Sealed {}
    impl Sealed for u64 {}
    impl Sealed for [u64; 2] {}
    impl Sealed for [u64; 4] {}
}

/// A hash code: a fixed number of bits compared by Hamming distance.
///
/// Sealed: the widths are the ones the file format and the faces know.
pub trait Code:
    Copy + Default + Eq + Ord + Hash + Debug + Send + Sync + 'static + sealed::Sealed
{
    /// Bits in a code: also the largest distance between two codes.
    const BITS: u32;
    /// 64-bit words in a code.
    const WORDS: usize;
    /// A distance stored per entry (the tree's leaf distances): the narrowest integer that
    /// holds `0..=BITS`.
    type Distance: Copy + Default + Ord + Debug + Send + Sync + Into<u32> + 'static;

    fn xor(self, other: Self) -> Self;
    fn count_ones(self) -> u32;

    /// Number of differing bits.
    #[inline(always)]
    fn distance(self, other: Self) -> u32 {
        self.xor(other).count_ones()
    }

    /// Bits `shift..shift + width` as an integer (`width` at most 32; the bits may straddle
    /// two words).
    fn bits(self, shift: u32, width: u32) -> usize;

    /// `d` (at most [`Code::BITS`]) as a stored distance.
    fn narrow(d: u32) -> Self::Distance;

    /// Word `i` (`i < WORDS`).
    fn word(self, i: usize) -> u64;

    /// The code made of `words`; `None` unless there are exactly [`Code::WORDS`] of them.
    fn from_words(words: &[u64]) -> Option<Self>;

    /// `masks[b]` bit `i` = whether `hashes[64 b + i]` is within `radius` of `query`, by
    /// `kernel` where this width has an implementation for it (see [`Code::scan_kernel`]).
    fn hit_masks(kernel: Kernel, hashes: &[Self], query: Self, radius: u32, masks: &mut [u64]);

    /// The kernel [`Code::hit_masks`] actually runs when `kernel` is the process's choice:
    /// what the planner prices.
    fn scan_kernel(kernel: Kernel) -> Kernel;

    /// One block of [`super::scan_many`]: `hit(query_index, position, distance)` for every
    /// code of `block` within `radius(query_index)` of each of `queries` (read once per query
    /// per block, so a k-nearest search can shrink it between blocks), a query's hits in any
    /// order.
    #[inline]
    fn scan_block_many(
        _kernel: Kernel,
        block: &[Self],
        queries: &[Self],
        radius: impl Fn(usize) -> u32,
        hit: &mut impl FnMut(usize, usize, u32),
    ) {
        for (qi, &q) in queries.iter().enumerate() {
            super::scan(block, q, radius(qi), |i, d| hit(qi, i, d));
        }
    }
}

impl Code for u64 {
    const BITS: u32 = 64;
    const WORDS: usize = 1;
    type Distance = u8;

    #[inline(always)]
    fn xor(self, other: Self) -> Self {
        self ^ other
    }

    #[inline(always)]
    fn count_ones(self) -> u32 {
        u64::count_ones(self)
    }

    #[inline(always)]
    fn bits(self, shift: u32, width: u32) -> usize {
        ((self >> shift) & ((1u64 << width) - 1)) as usize
    }

    #[inline(always)]
    fn narrow(d: u32) -> u8 {
        d as u8
    }

    #[inline(always)]
    fn word(self, _: usize) -> u64 {
        self
    }

    fn from_words(words: &[u64]) -> Option<Self> {
        match words {
            [w] => Some(*w),
            _ => None,
        }
    }

    #[inline]
    fn hit_masks(kernel: Kernel, hashes: &[u64], query: u64, radius: u32, masks: &mut [u64]) {
        super::hit_masks_with(kernel, hashes, query, radius, masks);
    }

    fn scan_kernel(kernel: Kernel) -> Kernel {
        kernel
    }

    /// Batches the bit-sliced form serves ([`super::sliced_serves`]) run bit-sliced, the
    /// block's tail (fewer codes than a transposed set) by the mask kernel.
    #[inline]
    fn scan_block_many(
        kernel: Kernel,
        block: &[u64],
        queries: &[u64],
        radius: impl Fn(usize) -> u32,
        hit: &mut impl FnMut(usize, usize, u32),
    ) {
        let mut done = 0;
        let widest = (0..queries.len()).map(&radius).max().unwrap_or(0);
        if super::sliced_serves(kernel, queries.len(), widest) {
            done = super::scan_many_sliced(kernel, block, queries, &radius, &mut *hit);
        }
        if done < block.len() {
            for (qi, &q) in queries.iter().enumerate() {
                super::scan(&block[done..], q, radius(qi), |i, d| hit(qi, done + i, d));
            }
        }
    }
}

macro_rules! wide_code {
    ($words:literal, $distance:ty, $hit_masks:expr, $scan_kernel:expr) => {
        impl Code for [u64; $words] {
            const BITS: u32 = 64 * $words;
            const WORDS: usize = $words;
            type Distance = $distance;

            #[inline(always)]
            fn xor(self, other: Self) -> Self {
                std::array::from_fn(|i| self[i] ^ other[i])
            }

            #[inline(always)]
            fn count_ones(self) -> u32 {
                self.iter().map(|w| w.count_ones()).sum()
            }

            #[inline(always)]
            fn bits(self, shift: u32, width: u32) -> usize {
                let (word, offset) = ((shift / 64) as usize, shift % 64);
                let mut v = self[word] >> offset;
                if offset + width > 64 {
                    v |= self[word + 1] << (64 - offset);
                }
                (v & ((1u64 << width) - 1)) as usize
            }

            #[inline(always)]
            fn narrow(d: u32) -> $distance {
                d as $distance
            }

            #[inline(always)]
            fn word(self, i: usize) -> u64 {
                self[i]
            }

            fn from_words(words: &[u64]) -> Option<Self> {
                words.try_into().ok()
            }

            #[inline]
            fn hit_masks(
                kernel: Kernel,
                hashes: &[Self],
                query: Self,
                radius: u32,
                masks: &mut [u64],
            ) {
                $hit_masks(kernel, hashes, query, radius, masks);
            }

            fn scan_kernel(kernel: Kernel) -> Kernel {
                $scan_kernel(kernel)
            }
        }
    };
}

wide_code!(2, u8, super::hit_masks_128, super::scan_kernel_128);
wide_code!(4, u16, super::hit_masks_256, super::scan_kernel_256);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_straddle_words() {
        let code: [u64; 4] = [0xF000_0000_0000_0000, 0x0000_0000_0000_0005, 0, 1 << 63];
        assert_eq!(code.bits(60, 8), 0x5F);
        assert_eq!(code.bits(0, 32), 0);
        assert_eq!(code.bits(255, 1), 1);
        assert_eq!(code.bits(224, 32), 0x8000_0000);
        let narrow: u64 = 0xABCD;
        assert_eq!(narrow.bits(4, 8), 0xBC);
    }

    #[test]
    fn distances_count_every_word() {
        let a = [0u64; 4];
        let b = [u64::MAX, 1, 0, 3];
        assert_eq!(a.distance(b), 67);
        assert_eq!(b.distance(b), 0);
        assert_eq!(<[u64; 4]>::narrow(256), 256u16);
        assert_eq!(<[u64; 4]>::from_words(&[1, 2, 3]), None);
        assert_eq!(<[u64; 2]>::from_words(&[1, 2]), Some([1, 2]));
    }
}
