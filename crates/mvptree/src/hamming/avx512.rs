//! The mask kernel with AVX-512 VPOPCNTDQ: eight hashes per instruction.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// [`super::hit_masks_with`] with AVX-512's vector popcount (Intel Ice Lake and AMD Zen 4
/// onwards): reads hashes about as fast as the caches deliver them.
///
/// # Safety
///
/// The CPU must support AVX-512F and AVX-512 VPOPCNTDQ. `hashes.len()` must be
/// `64 * masks.len()` (checked).
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
pub unsafe fn hit_masks(hashes: &[u64], query: u64, radius: u32, masks: &mut [u64]) {
    assert_eq!(hashes.len(), masks.len() * 64);
    let q = _mm512_set1_epi64(query as i64);
    let r = _mm512_set1_epi64(i64::from(radius));
    for (block, mask) in hashes.chunks_exact(64).zip(masks.iter_mut()) {
        let mut m = 0u64;
        for k in 0..8 {
            // SAFETY: block has 64 elements, so the 8 at offset 8k are in bounds; loadu has
            // no alignment requirement.
            let v = unsafe { _mm512_loadu_si512(block.as_ptr().add(k * 8).cast()) };
            let d = _mm512_popcnt_epi64(_mm512_xor_si512(v, q));
            m |= u64::from(_mm512_cmple_epu64_mask(d, r)) << (k * 8);
        }
        *mask = m;
    }
}

/// [`hit_masks`] for 256-bit codes: two codes per vector. After the vector popcount each code's
/// four word counts are summed in two adds: pairs of words across two vectors (`unpacklo` +
/// `unpackhi`), then halves across 128-bit lanes (`shuffle_i64x2`), which leaves eight codes'
/// distances in one vector, in the order a fixed permutation undoes.
///
/// # Safety
///
/// The CPU must support AVX-512F and AVX-512 VPOPCNTDQ. `hashes.len()` must be
/// `64 * masks.len()` (checked).
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
pub unsafe fn hit_masks_256(hashes: &[[u64; 4]], query: [u64; 4], radius: u32, masks: &mut [u64]) {
    assert_eq!(hashes.len(), masks.len() * 64);
    let [q0, q1, q2, q3] = query.map(|w| w as i64);
    let q = _mm512_setr_epi64(q0, q1, q2, q3, q0, q1, q2, q3);
    let r = _mm512_set1_epi64(i64::from(radius));
    // The sums come out as codes [0, 2, 1, 3, 4, 6, 5, 7]; this swaps them back.
    let order = _mm512_setr_epi64(0, 2, 1, 3, 4, 6, 5, 7);
    for (block, mask) in hashes.chunks_exact(64).zip(masks.iter_mut()) {
        let mut m = 0u64;
        for k in 0..8 {
            let base = block[k * 8..].as_ptr().cast::<u64>();
            // SAFETY: the block has 64 codes, so codes 8k..8k + 8 (64 words from `base`) are
            // in bounds; loadu has no alignment requirement.
            let [v0, v1, v2, v3] =
                [0, 8, 16, 24].map(|w| unsafe { _mm512_loadu_si512(base.add(w).cast()) });
            let [p0, p1, p2, p3] =
                [v0, v1, v2, v3].map(|v| _mm512_popcnt_epi64(_mm512_xor_si512(v, q)));
            let s = _mm512_add_epi64(_mm512_unpacklo_epi64(p0, p1), _mm512_unpackhi_epi64(p0, p1));
            let t = _mm512_add_epi64(_mm512_unpacklo_epi64(p2, p3), _mm512_unpackhi_epi64(p2, p3));
            let halves0 = _mm512_shuffle_i64x2::<0b10_00_10_00>(s, t);
            let halves1 = _mm512_shuffle_i64x2::<0b11_01_11_01>(s, t);
            let d = _mm512_permutexvar_epi64(order, _mm512_add_epi64(halves0, halves1));
            m |= u64::from(_mm512_cmple_epu64_mask(d, r)) << (k * 8);
        }
        *mask = m;
    }
}
