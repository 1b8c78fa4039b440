//! Bit counting over contiguous hash slices: the floor every search plan stands on.

/// Number of differing bits between two hashes.
#[inline(always)]
pub fn distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// Hashes per call of the mask kernel: 32 KiB, so the hashes are still in L1 when the hits
/// are read back.
const CHUNK: usize = 4096;

/// Calls `hit(position, distance)` for every hash in `hashes` within `radius` of `query`,
/// in position order.
///
/// The distance test is branch-free: each block of 64 hashes becomes a 64-bit mask of hits
/// ([`hit_masks`]), so a miss costs no branch, and only the rare hits are visited.
#[inline]
pub fn scan(hashes: &[u64], query: u64, radius: u32, mut hit: impl FnMut(usize, u32)) {
    let mut masks = [0u64; CHUNK / 64];
    for (c, chunk) in hashes.chunks(CHUNK).enumerate() {
        let base = c * CHUNK;
        let blocks = chunk.len() / 64;
        hit_masks(&chunk[..blocks * 64], query, radius, &mut masks[..blocks]);
        for (b, &mask) in masks[..blocks].iter().enumerate() {
            let mut mask = mask;
            while mask != 0 {
                let i = b * 64 + mask.trailing_zeros() as usize;
                mask &= mask - 1;
                hit(base + i, distance(chunk[i], query));
            }
        }
        for (i, &h) in chunk.iter().enumerate().skip(blocks * 64) {
            let d = distance(h, query);
            if d <= radius {
                hit(base + i, d);
            }
        }
    }
}

/// Whether this CPU counts bits eight hashes at a time (AVX-512 VPOPCNTDQ). The planner
/// prices scans by it.
#[inline]
pub fn vector_popcount() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512vpopcntdq") && std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `masks[b]` bit `i` = whether `hashes[64 b + i]` is within `radius` of `query`.
/// `hashes.len()` must be `64 * masks.len()`.
#[inline]
fn hit_masks(hashes: &[u64], query: u64, radius: u32, masks: &mut [u64]) {
    debug_assert_eq!(hashes.len(), masks.len() * 64);
    #[cfg(target_arch = "x86_64")]
    if vector_popcount() {
        // SAFETY: the CPU has the features the function is compiled for (checked above).
        unsafe { avx512::hit_masks(hashes, query, radius, masks) };
        return;
    }
    portable_hit_masks(hashes, query, radius, masks);
}

/// [`hit_masks`] with scalar POPCNT, for CPUs without AVX-512's vector popcount.
#[inline]
fn portable_hit_masks(hashes: &[u64], query: u64, radius: u32, masks: &mut [u64]) {
    for (block, mask) in hashes.chunks_exact(64).zip(masks.iter_mut()) {
        let mut m = 0u64;
        for (i, &h) in block.iter().enumerate() {
            m |= u64::from(distance(h, query) <= radius) << i;
        }
        *mask = m;
    }
}

/// Eight hashes per instruction with AVX-512's vector popcount (Intel Ice Lake and AMD Zen 4
/// onwards): about twice the scalar POPCNT loop, which is the floor of every wide query.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub unsafe fn hit_masks(hashes: &[u64], query: u64, radius: u32, masks: &mut [u64]) {
        let q = _mm512_set1_epi64(query as i64);
        let r = _mm512_set1_epi64(i64::from(radius));
        for (block, mask) in hashes.chunks_exact(64).zip(masks.iter_mut()) {
            let mut m = 0u64;
            for k in 0..8 {
                // SAFETY: block has 64 elements, so 8 at offset 8k are in bounds.
                let v = unsafe { _mm512_loadu_si512(block.as_ptr().add(k * 8).cast()) };
                let d = _mm512_popcnt_epi64(_mm512_xor_si512(v, q));
                m |= u64::from(_mm512_cmple_epu64_mask(d, r)) << (k * 8);
            }
            *mask = m;
        }
    }
}

/// Like [`scan`] for many queries at once: walks `hashes` in cache-sized blocks and runs every
/// query over a block before moving on, so memory is read once per batch instead of once per
/// query. Calls `hit(query_index, position, distance)`.
pub fn scan_many(
    hashes: &[u64],
    queries: &[u64],
    radius: u32,
    mut hit: impl FnMut(usize, usize, u32),
) {
    // 2,048 hashes are 16 KiB: half a typical L1 data cache.
    const BLOCK: usize = 2048;
    for (b, block) in hashes.chunks(BLOCK).enumerate() {
        for (qi, &q) in queries.iter().enumerate() {
            scan(block, q, radius, |i, d| hit(qi, b * BLOCK + i, d));
        }
    }
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

    /// Whichever kernel this CPU runs, the portable one gives the same masks.
    #[test]
    fn mask_kernels_agree() {
        let hashes: Vec<u64> = (0..64 * 40u64)
            .map(|i| {
                i.wrapping_mul(0xD1B5_4A32_D192_ED03)
                    .rotate_left((i % 64) as u32)
            })
            .collect();
        for query in [0, u64::MAX, hashes[77], hashes[1000] ^ 0xFFFF] {
            for radius in 0..=64 {
                let mut fast = vec![0; 40];
                let mut portable = vec![0; 40];
                hit_masks(&hashes, query, radius, &mut fast);
                portable_hit_masks(&hashes, query, radius, &mut portable);
                assert_eq!(fast, portable, "radius {radius}");
            }
        }
    }

    #[test]
    fn scan_many_agrees_with_scan() {
        let hashes: Vec<u64> = (0..5000u64)
            .map(|i| i.wrapping_mul(0xD1B5_4A32_D192_ED03))
            .collect();
        let queries = [hashes[3], hashes[4999] ^ 0xFF, 0, u64::MAX];
        let mut got = vec![Vec::new(); queries.len()];
        scan_many(&hashes, &queries, 24, |q, i, d| got[q].push((i, d)));
        for (qi, &q) in queries.iter().enumerate() {
            let mut want = Vec::new();
            scan(&hashes, q, 24, |i, d| want.push((i, d)));
            assert_eq!(got[qi], want);
        }
    }
}
