//! Every code's distance to a query, one byte each: the first pass of a wide answer
//! (`crate::wide`), where most codes are hits and a mask per 64 would be read back for
//! nearly every bit anyway.
//!
//! One plain loop, compiled once per instruction set: the compiler vectorizes it (AVX-512's
//! `vpopcntq`, AVX2's nibble lookup) given the target features, so there is nothing to write
//! by hand.

use super::{Code, Kernel};

/// `out[i] = min(distance(hashes[i], query), cap)`, computed with `kernel`'s instructions
/// (the portable loop where the CPU lacks them).
///
/// # Panics
///
/// If `out` and `hashes` differ in length.
pub fn clipped_distances<C: Code>(kernel: Kernel, hashes: &[C], query: C, cap: u8, out: &mut [u8]) {
    assert_eq!(hashes.len(), out.len());
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 if kernel.is_supported() && has_avx512_bw_vl() => {
            // SAFETY: the CPU has AVX-512F and VPOPCNTDQ (`is_supported`), BW and VL
            // (checked).
            unsafe { clipped_avx512(hashes, query, cap, out) }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 | Kernel::Avx512 if Kernel::Avx2.is_supported() => {
            // SAFETY: the CPU has AVX2 (checked by the guard).
            unsafe { clipped_avx2(hashes, query, cap, out) }
        }
        _ => clipped(hashes, query, cap, out),
    }
}

/// Byte and 256-bit-lane forms of AVX-512, which the compiler uses to narrow distances to
/// bytes: every CPU with VPOPCNTDQ has them, but nothing promises it.
#[cfg(target_arch = "x86_64")]
pub(super) fn has_avx512_bw_vl() -> bool {
    std::is_x86_feature_detected!("avx512bw") && std::is_x86_feature_detected!("avx512vl")
}

#[inline(always)]
fn clipped<C: Code>(hashes: &[C], query: C, cap: u8, out: &mut [u8]) {
    let cap = u32::from(cap);
    for (d, &h) in out.iter_mut().zip(hashes) {
        *d = h.distance(query).min(cap) as u8;
    }
}

/// # Safety
///
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn clipped_avx2<C: Code>(hashes: &[C], query: C, cap: u8, out: &mut [u8]) {
    clipped(hashes, query, cap, out);
}

/// # Safety
///
/// The CPU must support AVX-512F, BW, VL and VPOPCNTDQ.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq")]
unsafe fn clipped_avx512<C: Code>(hashes: &[C], query: C, cap: u8, out: &mut [u8]) {
    clipped(hashes, query, cap, out);
}

/// Bit `i` set where `bytes[i] <= radius`, for 64 bytes.
#[inline]
pub fn byte_mask_within(bytes: &[u8; 64], radius: u8) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let mut mask = 0u64;
        // SAFETY: SSE2 is part of every x86-64 CPU; each load reads 16 of the 64 bytes.
        unsafe {
            let limit = _mm_set1_epi8(radius as i8);
            for k in 0..4 {
                let v = _mm_loadu_si128(bytes.as_ptr().add(16 * k).cast());
                // Unsigned d <= radius as min(d, radius) == d: SSE2 compares bytes signed.
                let within = _mm_cmpeq_epi8(_mm_min_epu8(v, limit), v);
                mask |= u64::from(_mm_movemask_epi8(within) as u16) << (16 * k);
            }
        }
        mask
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut mask = 0u64;
        for (i, &b) in bytes.iter().enumerate() {
            mask |= u64::from(b <= radius) << i;
        }
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_gives_the_portable_bytes() {
        let mut x = 0x1234_5678_9ABC_DEF1u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let narrow: Vec<u64> = (0..1000).map(|_| next()).collect();
        let wide: Vec<[u64; 4]> = (0..1000)
            .map(|_| [next(), next(), next(), next()])
            .collect();
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
            for cap in [0u8, 20, 32, 65, 255] {
                let mut got = vec![0u8; narrow.len()];
                clipped_distances(kernel, &narrow, narrow[0], cap, &mut got);
                let want: Vec<u8> = narrow
                    .iter()
                    .map(|h| (h ^ narrow[0]).count_ones().min(u32::from(cap)) as u8)
                    .collect();
                assert_eq!(got, want, "{kernel:?}, 64-bit, cap {cap}");
                let mut got = vec![0u8; wide.len()];
                clipped_distances(kernel, &wide, wide[0], cap, &mut got);
                let want: Vec<u8> = wide
                    .iter()
                    .map(|h| h.distance(wide[0]).min(u32::from(cap)) as u8)
                    .collect();
                assert_eq!(got, want, "{kernel:?}, 256-bit, cap {cap}");
            }
        }
    }

    #[test]
    fn byte_masks_mark_the_bytes_within() {
        let bytes: [u8; 64] = std::array::from_fn(|i| (i * 37 % 256) as u8);
        for radius in [0u8, 1, 127, 128, 200, 255] {
            let want = (0..64).fold(0u64, |m, i| m | u64::from(bytes[i] <= radius) << i);
            assert_eq!(byte_mask_within(&bytes, radius), want, "radius {radius}");
        }
    }
}
