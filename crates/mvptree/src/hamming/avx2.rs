//! The mask kernel with AVX2: four hashes per instruction.

#![cfg(target_arch = "x86_64")]

use std::arch::asm;
use std::arch::x86_64::*;

/// The 32 bytes at `p` (unaligned) XOR `q`, in one instruction.
///
/// `_mm256_xor_si256(_mm256_loadu_si256(p), q)` would do, but LLVM's generic x86-64 tuning
/// (what a default build targets) splits every unaligned 32-byte load in two, `vmovdqu` of
/// the low half and `vinserti128` of the high one: right for Sandy Bridge, two extra µops per
/// vector on every CPU with AVX2. The scan is bound by µops: one query at r16 on 1M codes
/// took 253 µs with split loads, 230 with a whole load and its XOR apart, and 216 with the
/// load folded into the XOR as here (AMD EPYC Zen 4, AVX2 kernel forced; a whole build
/// without the split tuning gives 210).
///
/// # Safety
///
/// The CPU must support AVX2, and 32 bytes from `p` must be readable.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load_xor(p: *const u64, q: __m256i) -> __m256i {
    let v: __m256i;
    // SAFETY: the caller vouches for 32 readable bytes at `p`; `vpxor` with a memory operand
    // has no alignment requirement under VEX encoding and touches nothing else (no stack, no
    // flags).
    unsafe {
        asm!(
            "vpxor {v}, {q}, ymmword ptr [{p}]",
            p = in(reg) p,
            q = in(ymm_reg) q,
            v = lateout(ymm_reg) v,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    v
}

/// The set bits of each byte of `x`: AVX2 has no vector popcount, so two 16-entry table
/// lookups (`vpshufb`), one on the low and one on the high nibbles.
#[inline]
#[target_feature(enable = "avx2")]
fn byte_counts(x: __m256i) -> __m256i {
    #[rustfmt::skip]
    let lut = _mm256_setr_epi8(
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
    );
    let nibble = _mm256_set1_epi8(0x0f);
    let lo = _mm256_and_si256(x, nibble);
    let hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), nibble);
    _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi))
}

/// [`super::hit_masks_with`] with AVX2 (Intel Haswell and AMD Zen onwards).
///
/// Each byte's bits are counted by [`byte_counts`] and the eight byte counts of each hash
/// summed by `vpsadbw` against zero, which leaves each hash's distance in its own 64-bit lane,
/// ready for a 64-bit compare and `vmovmskpd`.
///
/// # Safety
///
/// The CPU must support AVX2. `hashes.len()` must be `64 * masks.len()` (checked).
#[target_feature(enable = "avx2")]
pub unsafe fn hit_masks(hashes: &[u64], query: u64, radius: u32, masks: &mut [u64]) {
    assert_eq!(hashes.len(), masks.len() * 64);
    let q = _mm256_set1_epi64x(query as i64);
    // d <= radius as a signed compare limit > d: distances are 0..=64, limit is at most 2^32.
    let limit = _mm256_set1_epi64x(i64::from(radius) + 1);
    let zero = _mm256_setzero_si256();
    for (block, mask) in hashes.chunks_exact(64).zip(masks.iter_mut()) {
        let mut m = 0u64;
        for k in 0..16 {
            // SAFETY: block has 64 elements, so the 4 at offset 4k are in bounds; the CPU has
            // AVX2 (this function's contract).
            let x = unsafe { load_xor(block.as_ptr().add(k * 4), q) };
            let d = _mm256_sad_epu8(byte_counts(x), zero);
            let hit = _mm256_cmpgt_epi64(limit, d);
            m |= u64::from(_mm256_movemask_pd(_mm256_castsi256_pd(hit)) as u32) << (k * 4);
        }
        *mask = m;
    }
}

/// [`hit_masks`] for 256-bit codes: one code per vector, four codes per round. Each code's
/// byte counts ([`byte_counts`]) are summed across its four words before one
/// `vpsadbw`: pairs of words across two codes (`unpacklo` + `unpackhi`), then halves across the
/// 128-bit lanes (`vperm2i128`), which leaves four codes' byte counts (at most 32 a byte) in
/// four lanes, so one `vpsadbw` gives the four distances in code order.
///
/// # Safety
///
/// The CPU must support AVX2. `hashes.len()` must be `64 * masks.len()` (checked).
#[target_feature(enable = "avx2")]
pub unsafe fn hit_masks_256(hashes: &[[u64; 4]], query: [u64; 4], radius: u32, masks: &mut [u64]) {
    assert_eq!(hashes.len(), masks.len() * 64);
    let [q0, q1, q2, q3] = query.map(|w| w as i64);
    let q = _mm256_setr_epi64x(q0, q1, q2, q3);
    // d <= radius as a signed compare limit > d: distances are 0..=256, limit at most 2^32.
    let limit = _mm256_set1_epi64x(i64::from(radius) + 1);
    let zero = _mm256_setzero_si256();
    let code_counts = |code: &[u64; 4]| {
        // SAFETY: `code` is 32 readable bytes; the CPU has AVX2 (this function's contract).
        byte_counts(unsafe { load_xor(code.as_ptr(), q) })
    };
    for (block, mask) in hashes.chunks_exact(64).zip(masks.iter_mut()) {
        let mut m = 0u64;
        for k in 0..16 {
            let [b0, b1, b2, b3] = [0, 1, 2, 3].map(|c| code_counts(&block[k * 4 + c]));
            // [b0 w0+w1, b1 w0+w1 | b0 w2+w3, b1 w2+w3], bytes at most 16.
            let u = _mm256_add_epi8(_mm256_unpacklo_epi64(b0, b1), _mm256_unpackhi_epi64(b0, b1));
            let w = _mm256_add_epi8(_mm256_unpacklo_epi64(b2, b3), _mm256_unpackhi_epi64(b2, b3));
            let per_code = _mm256_add_epi8(
                _mm256_permute2x128_si256::<0x20>(u, w),
                _mm256_permute2x128_si256::<0x31>(u, w),
            );
            let d = _mm256_sad_epu8(per_code, zero);
            let hit = _mm256_cmpgt_epi64(limit, d);
            m |= u64::from(_mm256_movemask_pd(_mm256_castsi256_pd(hit)) as u32) << (k * 4);
        }
        *mask = m;
    }
}
