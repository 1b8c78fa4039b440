//! Bit counting over contiguous hash slices: the floor every search plan stands on.
//!
//! The hot loop is a mask kernel ([`hit_masks_with`]) with one implementation per instruction
//! set ([`Kernel`]); the process picks one at first use ([`kernel()`]) and the planner prices
//! scans by it.

mod avx2;
mod avx512;
mod code;
mod cross;
mod distances;
mod kernel;
mod portable;
mod sliced;

pub use kernel::{kernel, Kernel, KERNEL_ENV};
#[doc(hidden)]
pub use portable::hit_masks_shift_in_place;

pub use code::Code;
pub use cross::{cross_hits, hits_within};
pub use distances::{byte_mask_within, clipped_distances};
pub use sliced::{scan_many_sliced, sliced_serves};
#[cfg(test)]
pub use sliced::{SLICED_MAX_RADIUS, SLICED_MIN_QUERIES};

/// Number of differing bits between two hashes.
#[inline(always)]
pub fn distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// Bytes of hashes per call of the mask kernel: 32 KiB, so the hashes are still in L1 when
/// the hits are read back.
const CHUNK_BYTES: usize = 32 << 10;
/// Masks per call of the mask kernel: 4,096 64-bit hashes, fewer of wider ones.
const CHUNK_MASKS: usize = CHUNK_BYTES / 8 / 64;

/// Hashes of `C` per chunk of `bytes` bytes, a multiple of 64.
#[inline(always)]
const fn chunk_len<C: Code>(bytes: usize) -> usize {
    bytes / std::mem::size_of::<C>() / 64 * 64
}

/// Masks [`scan`] tests for a hit at once before it walks them one by one.
const MASKS_TESTED_TOGETHER: usize = 8;

/// Calls `hit(position, distance)` for every hash in `hashes` within `radius` of `query`,
/// in position order.
///
/// The distance test is branch-free: each block of 64 hashes becomes a 64-bit mask of hits
/// ([`Code::hit_masks`]), so a miss costs no branch, and only the rare hits are visited.
#[inline]
pub fn scan<C: Code>(hashes: &[C], query: C, radius: u32, mut hit: impl FnMut(usize, u32)) {
    let mut masks = [0u64; CHUNK_MASKS];
    let chunk_len = chunk_len::<C>(CHUNK_BYTES);
    let kernel = kernel();
    for (c, chunk) in hashes.chunks(chunk_len).enumerate() {
        let base = c * chunk_len;
        let blocks = chunk.len() / 64;
        C::hit_masks(
            kernel,
            &chunk[..blocks * 64],
            query,
            radius,
            &mut masks[..blocks],
        );
        // Most masks of a narrow query are empty: tested eight at a time, they cost one
        // branch per 512 hashes instead of one per 64.
        for (g, group) in masks[..blocks].chunks(MASKS_TESTED_TOGETHER).enumerate() {
            if group.iter().fold(0, |any, &m| any | m) == 0 {
                continue;
            }
            for (j, &mask) in group.iter().enumerate() {
                let b = g * MASKS_TESTED_TOGETHER + j;
                let mut mask = mask;
                while mask != 0 {
                    let i = b * 64 + mask.trailing_zeros() as usize;
                    mask &= mask - 1;
                    hit(base + i, chunk[i].distance(query));
                }
            }
        }
        for (i, &h) in chunk.iter().enumerate().skip(blocks * 64) {
            let d = h.distance(query);
            if d <= radius {
                hit(base + i, d);
            }
        }
    }
}

/// `masks[b]` bit `i` = whether `hashes[64 b + i]` is within `radius` of `query`, computed by
/// `kernel`; every kernel gives the same masks. For tests and benchmarks that compare kernels:
/// searches use the process's [`kernel()`].
///
/// # Panics
///
/// If `hashes.len()` is not `64 * masks.len()`, or this CPU lacks `kernel`'s instructions
/// ([`Kernel::is_supported`]): running it would be undefined behaviour.
#[inline]
pub fn hit_masks_with(kernel: Kernel, hashes: &[u64], query: u64, radius: u32, masks: &mut [u64]) {
    assert_eq!(hashes.len(), masks.len() * 64);
    match kernel {
        Kernel::Portable => portable::hit_masks(hashes, query, radius, masks),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => {
            assert!(kernel.is_supported(), "this CPU has no AVX2");
            // SAFETY: the CPU has AVX2 (checked above); the lengths match (checked above).
            unsafe { avx2::hit_masks(hashes, query, radius, masks) }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => {
            assert!(kernel.is_supported(), "this CPU has no AVX-512 VPOPCNTDQ");
            // SAFETY: the CPU has AVX-512F and VPOPCNTDQ (checked above); the lengths match
            // (checked above).
            unsafe { avx512::hit_masks(hashes, query, radius, masks) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Kernel::Avx2 | Kernel::Avx512 => panic!("{} needs an x86-64 CPU", kernel.name()),
    }
}

/// Hashes per block of [`scan_many`]: 2,048 64-bit hashes are 16 KiB, half a typical L1 data
/// cache; blocks of wider hashes hold as many bytes.
pub const SCAN_MANY_BLOCK: usize = 2048;

/// Hashes of `C` per block of [`scan_many`].
#[inline(always)]
pub const fn scan_many_block<C: Code>() -> usize {
    chunk_len::<C>(SCAN_MANY_BLOCK * 8)
}

/// Like [`scan`] for many queries at once: walks `hashes` in cache-sized blocks and runs every
/// query over a block before moving on, so memory is read once per batch instead of once per
/// query. Calls `hit(query_index, position, distance)`: blocks in order, but within a block a
/// query's hits may come in any order (the bit-sliced form of 64-bit batches groups them by
/// vector lane).
pub fn scan_many<C: Code>(
    hashes: &[C],
    queries: &[C],
    radius: u32,
    mut hit: impl FnMut(usize, usize, u32),
) {
    scan_many_by_block(
        hashes,
        queries,
        radius,
        &mut (),
        |_, qi, p, d| hit(qi, p, d),
        |_| true,
    );
}

/// [`scan_many`] that hands every hit to `hit(state, query_index, position, distance)` and,
/// after each block, calls `after_block(state)`; the scan stops when that returns false. A
/// caller can so collect a block's hits compactly and resolve what it reads per hit (ids) in
/// a pass of its own, where those reads overlap, instead of one cache miss at a time among
/// the scan's work; and stop the scan as soon as an answer overflows.
pub fn scan_many_by_block<C: Code, S>(
    hashes: &[C],
    queries: &[C],
    radius: u32,
    state: &mut S,
    mut hit: impl FnMut(&mut S, usize, usize, u32),
    mut after_block: impl FnMut(&mut S) -> bool,
) {
    let block_len = scan_many_block::<C>();
    for (b, block) in hashes.chunks(block_len).enumerate() {
        let first = b * block_len;
        C::scan_block_many(kernel(), block, queries, |_| radius, &mut |qi, i, d| {
            hit(state, qi, first + i, d)
        });
        if !after_block(state) {
            return;
        }
    }
}

/// The mask kernel for 128-bit codes: the portable one, whichever kernel is chosen (no
/// vector kernel exists for this width yet).
#[inline]
pub fn hit_masks_128(
    _kernel: Kernel,
    hashes: &[[u64; 2]],
    query: [u64; 2],
    radius: u32,
    masks: &mut [u64],
) {
    assert_eq!(hashes.len(), masks.len() * 64);
    portable::hit_masks_generic(hashes, query, radius, masks);
}

/// The kernel [`hit_masks_128`] runs: always the portable one.
pub fn scan_kernel_128(_kernel: Kernel) -> Kernel {
    Kernel::Portable
}

/// The mask kernel for 256-bit codes, by `kernel` (see [`scan_kernel_256`]).
///
/// # Panics
///
/// As [`hit_masks_with`].
#[inline]
pub fn hit_masks_256(
    kernel: Kernel,
    hashes: &[[u64; 4]],
    query: [u64; 4],
    radius: u32,
    masks: &mut [u64],
) {
    assert_eq!(hashes.len(), masks.len() * 64);
    match scan_kernel_256(kernel) {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => {
            assert!(kernel.is_supported(), "this CPU has no AVX-512 VPOPCNTDQ");
            // SAFETY: the CPU has AVX-512F and VPOPCNTDQ (checked above); the lengths match
            // (checked above).
            unsafe { avx512::hit_masks_256(hashes, query, radius, masks) }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => {
            assert!(kernel.is_supported(), "this CPU has no AVX2");
            // SAFETY: the CPU has AVX2 (checked above); the lengths match (checked above).
            unsafe { avx2::hit_masks_256(hashes, query, radius, masks) }
        }
        _ => portable::hit_masks_generic(hashes, query, radius, masks),
    }
}

/// The kernel [`hit_masks_256`] runs when `kernel` is chosen: each kernel has a 256-bit form.
pub fn scan_kernel_256(kernel: Kernel) -> Kernel {
    kernel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_exactly_the_hashes_within_radius() {
        let hashes: Vec<u64> = (0..300u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let q = hashes[17] ^ 0b1011;
        for radius in [0, 3, 20, 32, 64] {
            let mut got = Vec::new();
            scan(&hashes, q, radius, |i, d| got.push((i, d)));
            let want: Vec<(usize, u32)> = hashes
                .iter()
                .enumerate()
                .map(|(i, &h)| (i, distance(h, q)))
                .filter(|&(_, d)| d <= radius)
                .collect();
            assert_eq!(got, want, "radius {radius}");
        }
    }

    /// Every kernel this CPU runs gives the portable kernel's masks, at every radius, for
    /// edge queries and for queries near and far from the hashes.
    #[test]
    fn mask_kernels_agree() {
        let hashes: Vec<u64> = (0..64 * 40u64)
            .map(|i| {
                i.wrapping_mul(0xD1B5_4A32_D192_ED03)
                    .rotate_left((i % 64) as u32)
            })
            .chain([0, u64::MAX, 1, 1 << 63])
            .chain((0..60).map(|i| u64::MAX >> i))
            .collect();
        let blocks = hashes.len() / 64;
        let hashes = &hashes[..blocks * 64];
        let queries = [0, u64::MAX, hashes[77], hashes[1000] ^ 0xFFFF, !hashes[5]];
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
            for query in queries {
                for radius in 0..=64 {
                    let mut fast = vec![0; blocks];
                    let mut portable = vec![0; blocks];
                    hit_masks_with(kernel, hashes, query, radius, &mut fast);
                    hit_masks_with(Kernel::Portable, hashes, query, radius, &mut portable);
                    assert_eq!(fast, portable, "{} radius {radius}", kernel.name());
                    let mut other = vec![0; blocks];
                    hit_masks_shift_in_place(hashes, query, radius, &mut other);
                    assert_eq!(other, portable);
                }
            }
        }
    }

    /// The portable kernel against the definition, hash by hash.
    #[test]
    fn portable_masks_follow_the_definition() {
        let hashes: Vec<u64> = (0..128u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        for radius in [0, 20, 32, 40, 64] {
            let mut masks = [0u64; 2];
            hit_masks_with(Kernel::Portable, &hashes, 0, radius, &mut masks);
            for (i, &h) in hashes.iter().enumerate() {
                let bit = masks[i / 64] >> (i % 64) & 1 == 1;
                assert_eq!(bit, h.count_ones() <= radius, "hash {i} radius {radius}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn kernels_agree_on_random_data(
            hashes in proptest::collection::vec(proptest::num::u64::ANY, 64..=640),
            query: u64,
            radius in 0u32..=64,
            flips in proptest::collection::vec(0u32..64, 0..8),
        ) {
            let blocks = hashes.len() / 64;
            let mut hashes = hashes[..blocks * 64].to_vec();
            // Some hashes near the query, so small radii hit too.
            let n = hashes.len();
            for (i, f) in flips.iter().enumerate() {
                hashes[i * 7 % n] = query ^ (1 << f);
            }
            let mut want = vec![0; blocks];
            hit_masks_with(Kernel::Portable, &hashes, query, radius, &mut want);
            for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
                let mut got = vec![0; blocks];
                hit_masks_with(kernel, &hashes, query, radius, &mut got);
                proptest::prop_assert_eq!(&got, &want, "{}", kernel.name());
            }
        }
    }

    /// 256-bit codes: every kernel gives the definition's masks, for codes near the query in
    /// every word and far from it.
    #[test]
    fn wide_mask_kernels_agree() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let query: [u64; 4] = std::array::from_fn(|_| next());
        let hashes: Vec<[u64; 4]> = (0..64 * 12)
            .map(|i| match i % 3 {
                0 => std::array::from_fn(|_| next()),
                // Near the query, with the flips in one word or spread over all four.
                1 => std::array::from_fn(|w| query[w] ^ (next() & next() & next() & next())),
                _ => {
                    let mut h = query;
                    h[i % 4] ^= next() & next();
                    h
                }
            })
            .collect();
        let blocks = hashes.len() / 64;
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
            for radius in (0..=256).step_by(3) {
                let mut got = vec![0; blocks];
                <[u64; 4]>::hit_masks(kernel, &hashes, query, radius, &mut got);
                for (i, h) in hashes.iter().enumerate() {
                    let bit = got[i / 64] >> (i % 64) & 1 == 1;
                    assert_eq!(bit, h.distance(query) <= radius, "{kernel:?} r{radius} {i}");
                }
            }
        }
        let narrow: Vec<[u64; 2]> = hashes.iter().map(|h| [h[0], h[1]]).collect();
        let mut got = vec![0; blocks];
        <[u64; 2]>::hit_masks(kernel(), &narrow, [query[0], query[1]], 40, &mut got);
        for (i, h) in narrow.iter().enumerate() {
            assert_eq!(
                got[i / 64] >> (i % 64) & 1 == 1,
                h.distance([query[0], query[1]]) <= 40
            );
        }
    }

    /// Small batches, and any batch past the bit-sliced form's widest radius, run the mask
    /// kernel per query, larger ones bit-sliced: both find what one scan per query finds, a
    /// block at a time.
    #[test]
    fn scan_many_agrees_with_scan() {
        let hashes: Vec<u64> = (0..5000u64)
            .map(|i| i.wrapping_mul(0xD1B5_4A32_D192_ED03))
            .collect();
        let near: Vec<u64> = (0..20).map(|i| hashes[i * 240 + 3] ^ (1 << i)).collect();
        for batch in [4, SLICED_MIN_QUERIES, SLICED_MIN_QUERIES + 3] {
            let queries: Vec<u64> = [0, u64::MAX, hashes[4999] ^ 0xFF]
                .into_iter()
                .chain(near.iter().copied())
                .take(batch)
                .collect();
            for radius in [0, 12, SLICED_MAX_RADIUS, SLICED_MAX_RADIUS + 1, 63, 64] {
                let mut got = vec![Vec::new(); queries.len()];
                scan_many(&hashes, &queries, radius, |q, i, d| got[q].push((i, d)));
                for (qi, &q) in queries.iter().enumerate() {
                    let mut want = Vec::new();
                    scan(&hashes, q, radius, |i, d| want.push((i, d)));
                    // Blocks come in order; within one, hits may come in any order.
                    let block = |&(i, _): &(usize, u32)| i / SCAN_MANY_BLOCK;
                    assert!(got[qi].windows(2).all(|w| block(&w[0]) <= block(&w[1])));
                    got[qi].sort_unstable();
                    assert_eq!(got[qi], want, "batch {batch} radius {radius} query {qi}");
                }
            }
        }
    }
}
