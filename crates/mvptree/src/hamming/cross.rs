//! Every pair of two short lists of codes within a radius: the inner loop of the
//! multi-index self-join, which compares each code of one bucket with every code of another
//! (a dozen or so each at 1M entries, billions of pairs in all).
//!
//! The second list is taken [`LANES`] codes at a time into a window; each code of the first
//! list gets its distances to the whole window as bytes in one fixed-length loop, which the
//! compiler vectorizes given the target features (AVX-512's `vpopcntq`, AVX2's nibble
//! lookup), and a byte compare turns them into a mask of hits. Only hits cost a branch.
//! Compiled once per instruction set, as [`super::clipped_distances`] is.

use super::{Code, Kernel};

/// Codes of the second list compared at once.
#[cfg(target_arch = "x86_64")]
const LANES: usize = 16;

/// Largest radius the byte compare handles: a distance of 255 or more is clipped to 255, so
/// larger radii take the plain loop.
const BYTE_RADIUS_MAX: u32 = 254;

/// Calls `hit(i, k, distance)` for every `xs[i]` and `ys[k]` within `radius` of each other,
/// in no promised order, until `hit` returns `false`; returns `false` if it did. Computed with
/// `kernel`'s instructions (the portable loop where the CPU lacks them).
#[inline]
pub fn cross_hits<C: Code>(
    kernel: Kernel,
    xs: &[C],
    ys: &[C],
    radius: u32,
    hit: impl FnMut(usize, usize, u32) -> bool,
) -> bool {
    dispatch::<C, false>(kernel, xs, ys, radius, hit)
}

/// [`cross_hits`] of `xs` with itself, each unordered pair once: `hit(i, k, distance)` with
/// `i < k`.
#[inline]
pub fn hits_within<C: Code>(
    kernel: Kernel,
    xs: &[C],
    radius: u32,
    hit: impl FnMut(usize, usize, u32) -> bool,
) -> bool {
    dispatch::<C, true>(kernel, xs, xs, radius, hit)
}

/// The pairs of `xs` and `ys`, or with `TRIANGLE` (where `ys` is `xs`) those with `i < k`,
/// by `kernel`.
#[inline(always)]
fn dispatch<C: Code, const TRIANGLE: bool>(
    kernel: Kernel,
    xs: &[C],
    ys: &[C],
    radius: u32,
    hit: impl FnMut(usize, usize, u32) -> bool,
) -> bool {
    if radius > BYTE_RADIUS_MAX {
        return cross_plain::<C, TRIANGLE>(xs, ys, radius, hit);
    }
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 if kernel.is_supported() && super::distances::has_avx512_bw_vl() => {
            // SAFETY: the CPU has AVX-512F and VPOPCNTDQ (`is_supported`), BW and VL
            // (checked).
            unsafe { cross_avx512::<C, TRIANGLE>(xs, ys, radius, hit) }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 | Kernel::Avx512 if Kernel::Avx2.is_supported() => {
            // SAFETY: the CPU has AVX2 (checked by the guard).
            unsafe { cross_avx2::<C, TRIANGLE>(xs, ys, radius, hit) }
        }
        // Without AVX2 the compiler's vector popcount (a nibble lookup in 128-bit lanes) is
        // slower than POPCNT a code at a time: measured 2.8 s against 2.4 s for the 1M
        // self-join at r8.
        _ => cross_plain::<C, TRIANGLE>(xs, ys, radius, hit),
    }
}

/// [`dispatch`] one pair at a time: the portable kernel, and radii past a byte.
#[inline(always)]
fn cross_plain<C: Code, const TRIANGLE: bool>(
    xs: &[C],
    ys: &[C],
    radius: u32,
    mut hit: impl FnMut(usize, usize, u32) -> bool,
) -> bool {
    for (i, &x) in xs.iter().enumerate() {
        let first = if TRIANGLE { i + 1 } else { 0 };
        for (k, &y) in ys.iter().enumerate().skip(first) {
            let d = x.distance(y);
            if d <= radius && !hit(i, k, d) {
                return false;
            }
        }
    }
    true
}

/// [`dispatch`] a window of [`LANES`] codes of `ys` at a time (`radius` at most
/// [`BYTE_RADIUS_MAX`]).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn cross_windows<C: Code, const TRIANGLE: bool>(
    xs: &[C],
    ys: &[C],
    radius: u32,
    mut hit: impl FnMut(usize, usize, u32) -> bool,
) -> bool {
    debug_assert!(radius <= BYTE_RADIUS_MAX);
    let radius = radius as u8;
    for (w, chunk) in ys.chunks(LANES).enumerate() {
        let first_k = w * LANES;
        // A short last chunk is padded; its padding lanes are masked off.
        let mut window = [C::default(); LANES];
        window[..chunk.len()].copy_from_slice(chunk);
        let live = u16::MAX >> (LANES - chunk.len());
        // In a triangle, only the rows before the window's last code have pairs in it.
        let rows = if TRIANGLE {
            xs.len().min(first_k + chunk.len() - 1)
        } else {
            xs.len()
        };
        for (i, &x) in xs[..rows].iter().enumerate() {
            let mut distances = [0u8; LANES];
            for (d, &y) in distances.iter_mut().zip(&window) {
                *d = x.distance(y).min(255) as u8;
            }
            let mut mask = bytes_within(&distances, radius) & live;
            if TRIANGLE && i >= first_k {
                // Only the codes after `xs[i]`: `i - first_k` is below `chunk.len() - 1`.
                mask &= u16::MAX << (i - first_k + 1);
            }
            while mask != 0 {
                let k = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                if !hit(i, first_k + k, u32::from(distances[k])) {
                    return false;
                }
            }
        }
    }
    true
}

/// Bit `k` set where `bytes[k] <= radius`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn bytes_within(bytes: &[u8; LANES], radius: u8) -> u16 {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of every x86-64 CPU; the load reads the 16 bytes.
    unsafe {
        let v = _mm_loadu_si128(bytes.as_ptr().cast());
        // Unsigned d <= radius as min(d, radius) == d: SSE2 compares bytes signed.
        let within = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(radius as i8)), v);
        _mm_movemask_epi8(within) as u16
    }
}

/// # Safety
///
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn cross_avx2<C: Code, const TRIANGLE: bool>(
    xs: &[C],
    ys: &[C],
    radius: u32,
    hit: impl FnMut(usize, usize, u32) -> bool,
) -> bool {
    cross_windows::<C, TRIANGLE>(xs, ys, radius, hit)
}

/// # Safety
///
/// The CPU must support AVX-512F, BW, VL and VPOPCNTDQ.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq")]
unsafe fn cross_avx512<C: Code, const TRIANGLE: bool>(
    xs: &[C],
    ys: &[C],
    radius: u32,
    hit: impl FnMut(usize, usize, u32) -> bool,
) -> bool {
    cross_windows::<C, TRIANGLE>(xs, ys, radius, hit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(n: usize, seed: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            })
            .collect()
    }

    fn all_hits<C: Code>(
        kernel: Kernel,
        xs: &[C],
        ys: &[C],
        radius: u32,
    ) -> Vec<(usize, usize, u32)> {
        let mut got = Vec::new();
        assert!(cross_hits(kernel, xs, ys, radius, |i, k, d| {
            got.push((i, k, d));
            true
        }));
        got.sort_unstable();
        got
    }

    fn all_hits_within<C: Code>(kernel: Kernel, xs: &[C], radius: u32) -> Vec<(usize, usize, u32)> {
        let mut got = Vec::new();
        assert!(hits_within(kernel, xs, radius, |i, k, d| {
            got.push((i, k, d));
            true
        }));
        got.sort_unstable();
        got
    }

    fn brute<C: Code>(xs: &[C], ys: &[C], radius: u32) -> Vec<(usize, usize, u32)> {
        let mut want = Vec::new();
        for (i, &x) in xs.iter().enumerate() {
            for (k, &y) in ys.iter().enumerate() {
                let d = x.distance(y);
                if d <= radius {
                    want.push((i, k, d));
                }
            }
        }
        want
    }

    /// `xs` against `ys`, and `ys` against itself (pairs `i < k`), as the brute force finds.
    fn check<C: Code>(kernel: Kernel, xs: &[C], ys: &[C], radius: u32, what: &str) {
        assert_eq!(
            all_hits(kernel, xs, ys, radius),
            brute(xs, ys, radius),
            "{kernel:?} {what} r{radius}"
        );
        let triangle: Vec<_> = brute(ys, ys, radius)
            .into_iter()
            .filter(|&(i, k, _)| i < k)
            .collect();
        assert_eq!(
            all_hits_within(kernel, ys, radius),
            triangle,
            "{kernel:?} {what}, within, r{radius}"
        );
    }

    #[test]
    fn every_kernel_finds_exactly_the_pairs_within() {
        // Near copies of a few codes, so that every radius has hits and misses.
        let base = codes(8, 3);
        let noise = codes(200, 5);
        let near: Vec<u64> = noise
            .iter()
            .enumerate()
            .map(|(i, &n)| base[i % 8] ^ (n & n >> 7 & n >> 13))
            .collect();
        let wide: Vec<[u64; 4]> = near
            .chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect();
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
            // Lengths around the window's: empty, short, one window, a window and a bit.
            for (xs_len, ys_len) in [
                (0, 5),
                (5, 0),
                (1, 1),
                (7, 15),
                (16, 16),
                (13, 17),
                (40, 100),
            ] {
                let (xs, ys) = (&near[..xs_len], &near[100..100 + ys_len]);
                for radius in [0, 3, 8, 20, 64] {
                    check(kernel, xs, ys, radius, &format!("{xs_len}x{ys_len}"));
                }
            }
            let (xs, ys) = (&wide[..20], &wide[20..50]);
            for radius in [0, 40, 100, 128, 254, 255, 256] {
                check(kernel, xs, ys, radius, "256-bit");
            }
        }
    }

    #[test]
    fn a_false_from_hit_stops_the_walk() {
        let xs = codes(30, 9);
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
            let mut seen = 0;
            let finished = cross_hits(kernel, &xs, &xs, 64, |_, _, _| {
                seen += 1;
                seen < 10
            });
            assert!(!finished);
            assert_eq!(seen, 10, "{kernel:?}");
        }
    }
}
