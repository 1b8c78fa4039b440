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
