//! The mask kernel with AVX2: four hashes per instruction.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// [`super::hit_masks_with`] with AVX2 (Intel Haswell and AMD Zen onwards).
///
/// AVX2 has no vector popcount, so each byte's bits are counted by two 16-entry table lookups
/// (`vpshufb` on the low and high nibbles) and the eight byte counts of each hash summed by
/// `vpsadbw` against zero, which leaves each hash's distance in its own 64-bit lane, ready for
/// a 64-bit compare and `vmovmskpd`.
///
/// # Safety
///
/// The CPU must support AVX2. `hashes.len()` must be `64 * masks.len()` (checked).
#[target_feature(enable = "avx2")]
pub unsafe fn hit_masks(hashes: &[u64], query: u64, radius: u32, masks: &mut [u64]) {
    assert_eq!(hashes.len(), masks.len() * 64);
    #[rustfmt::skip]
    let lut = _mm256_setr_epi8(
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
    );
    let nibble = _mm256_set1_epi8(0x0f);
    let q = _mm256_set1_epi64x(query as i64);
    // d <= radius as a signed compare limit > d: distances are 0..=64, limit is at most 2^32.
    let limit = _mm256_set1_epi64x(i64::from(radius) + 1);
    let zero = _mm256_setzero_si256();
    for (block, mask) in hashes.chunks_exact(64).zip(masks.iter_mut()) {
        let mut m = 0u64;
        for k in 0..16 {
            // SAFETY: block has 64 elements, so the 4 at offset 4k are in bounds; loadu has
            // no alignment requirement.
            let v = unsafe { _mm256_loadu_si256(block.as_ptr().add(k * 4).cast()) };
            let x = _mm256_xor_si256(v, q);
            let lo = _mm256_and_si256(x, nibble);
            let hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), nibble);
            let bytes = _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
            let d = _mm256_sad_epu8(bytes, zero);
            let hit = _mm256_cmpgt_epi64(limit, d);
            m |= u64::from(_mm256_movemask_pd(_mm256_castsi256_pd(hit)) as u32) << (k * 4);
        }
        *mask = m;
    }
}
