//! The batched scan of 64-bit codes in bit-sliced form: one logic instruction serves a bit of
//! 64 codes per vector lane, so a batch pays about 1.5 vector operations a code a query instead
//! of a popcount, a compare and a mask extraction per code.
//!
//! A block of codes is transposed once ([`transpose`]) into 64 bit planes, and every query of
//! the batch then runs over the planes ([`lane_masks`]): the planes xor-ed with the query's bits
//! are the differing bits, summed per code by carry-save adders into seven bit planes of
//! distance, then compared with the radius bit by bit. The transposition costs about as much
//! as four queries, so only batches of at least [`SLICED_MIN_QUERIES`] use it.
//!
//! The same source runs on every kernel: written over `[u64; L]` lanes and compiled once per
//! instruction set with `L` the vector width in words (2 for SSE, 4 for AVX2, 8 for AVX-512,
//! where the compiler also fuses the adders into `vpternlogq`). AVX2 batches do not take it:
//! that kernel's mask form is faster ([`sliced_serves`]).

use super::Kernel;

/// Fewest queries over one block for which the bit-sliced form beats the mask kernel on
/// every kernel (`examples/plans.rs --kernels` measures both: at 8 queries the mask kernel
/// is still faster, at 16 the bit-sliced form is, or level on the portable kernel).
pub const SLICED_MIN_QUERIES: usize = 16;

/// Widest radius the bit-sliced form serves. Its work is the same at every radius, but past
/// about 1% of the codes within the radius (r22 for uniform 64-bit codes) the hits cost more
/// than the form saves, and the mask kernel per query is faster: batches of 200 queries at
/// r24 on 1M codes took 1,050-1,071 µs a query bit-sliced and 956-971 with the mask kernel
/// (AVX2), 916-931 and 846-869 (AVX-512), in two runs; at r20-r22 and r26 both forms were
/// level, at r16 the bit-sliced one 7-16% faster.
pub const SLICED_MAX_RADIUS: u32 = 22;

/// Whether a group of `queries` 64-bit queries, none with a radius past `widest`, runs
/// bit-sliced with `kernel`: the rule the scan follows and the planner prices.
///
/// Not with AVX2: its mask kernel, once it loads each vector whole, beats the bit-sliced form
/// at every radius, end to end. 128 queries on 1M codes (`Plan::Scan`, AMD EPYC Zen 4 with
/// the AVX2 kernel forced), µs a query bit-sliced and by mask: r8 225-227 and 207, r16
/// 229-232 and 212-213, r20 314-316 and 290-291, r22 475 and 423-424; batched k-nearest,
/// k = 10, 246-248 and 231-232. With AVX-512 and the portable kernel the bit-sliced form
/// stays 15-25% faster up to r16.
pub fn sliced_serves(kernel: Kernel, queries: usize, widest: u32) -> bool {
    kernel != Kernel::Avx2 && queries >= SLICED_MIN_QUERIES && widest <= SLICED_MAX_RADIUS
}

/// A vector of 64-bit lanes and the logic the bit-sliced scan needs, one type per instruction
/// set.
///
/// # Safety
///
/// Values are made only by the unsafe constructors, whose callers vouch that the CPU has the
/// type's instructions; so an operation on a value that exists is sound to run.
unsafe trait Lanes: Copy {
    /// 64-bit lanes in a vector.
    const WORDS: usize;

    /// Every lane `x`.
    ///
    /// # Safety
    ///
    /// The CPU must have the type's instructions.
    unsafe fn splat(x: u64) -> Self;

    /// `WORDS` words from `p`.
    ///
    /// # Safety
    ///
    /// As [`Lanes::splat`], and `p` must point to `WORDS` readable words, aligned to the
    /// vector's size.
    unsafe fn load(p: *const u64) -> Self;

    /// The lanes into `WORDS` words at `p`.
    ///
    /// # Safety
    ///
    /// `p` must point to `WORDS` writable words, aligned to the vector's size.
    unsafe fn store(self, p: *mut u64);

    fn xor(self, other: Self) -> Self;
    fn and(self, other: Self) -> Self;
    fn or(self, other: Self) -> Self;
    /// `self & !other`.
    fn and_not(self, other: Self) -> Self;
    fn not(self) -> Self;
    /// Each lane shifted right by `J`.
    fn shr<const J: i32>(self) -> Self;
    /// Each lane shifted left by `J`.
    fn shl<const J: i32>(self) -> Self;

    /// A carry-save adder: `(carry, sum)` of three bit planes, lane by lane.
    #[inline(always)]
    fn csa(a: Self, b: Self, c: Self) -> (Self, Self) {
        let u = a.xor(b);
        (a.and(b).or(u.and(c)), u.xor(c))
    }
}

/// Fallback lanes for targets other than x86-64: one word.
#[cfg(not(target_arch = "x86_64"))]
// SAFETY: plain integers need no instructions beyond the baseline.
unsafe impl Lanes for u64 {
    const WORDS: usize = 1;
    #[inline(always)]
    unsafe fn splat(x: u64) -> Self {
        x
    }
    #[inline(always)]
    unsafe fn load(p: *const u64) -> Self {
        // SAFETY: the caller vouches that `p` points to a readable word.
        unsafe { p.read_unaligned() }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut u64) {
        // SAFETY: the caller vouches that `p` points to a writable word.
        unsafe { p.write(self) }
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        self ^ o
    }
    #[inline(always)]
    fn and(self, o: Self) -> Self {
        self & o
    }
    #[inline(always)]
    fn or(self, o: Self) -> Self {
        self | o
    }
    #[inline(always)]
    fn and_not(self, o: Self) -> Self {
        self & !o
    }
    #[inline(always)]
    fn not(self) -> Self {
        !self
    }
    #[inline(always)]
    fn shr<const J: i32>(self) -> Self {
        self >> J
    }
    #[inline(always)]
    fn shl<const J: i32>(self) -> Self {
        self << J
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Lanes;

    /// Implements [`Lanes`] for one vector type from its intrinsics (`$not_mask` is the
    /// all-ones vector's constructor).
    macro_rules! lanes {
        ($ty:ty, $words:literal, $set1:ident, $load:ident, $store:ident,
         $xor:ident, $and:ident, $or:ident, $andnot:ident, $srli:ident, $slli:ident) => {
            // SAFETY: values come only from `splat` and `load`, whose callers vouch for the
            // CPU feature (the trait's contract).
            unsafe impl Lanes for $ty {
                const WORDS: usize = $words;
                #[inline(always)]
                unsafe fn splat(x: u64) -> Self {
                    // SAFETY: the caller vouches for the CPU feature.
                    unsafe { $set1(x as i64) }
                }
                #[inline(always)]
                unsafe fn load(p: *const u64) -> Self {
                    // SAFETY: the caller vouches for the CPU feature and `WORDS` readable,
                    // aligned words at `p`.
                    unsafe { $load(p.cast()) }
                }
                #[inline(always)]
                unsafe fn store(self, p: *mut u64) {
                    // SAFETY: the caller vouches for `WORDS` writable, aligned words at `p`;
                    // a value exists, so the CPU has the feature.
                    unsafe { $store(p.cast(), self) }
                }
                #[inline(always)]
                fn xor(self, o: Self) -> Self {
                    // SAFETY: a value exists, so the CPU has the feature.
                    unsafe { $xor(self, o) }
                }
                #[inline(always)]
                fn and(self, o: Self) -> Self {
                    // SAFETY: as `xor`.
                    unsafe { $and(self, o) }
                }
                #[inline(always)]
                fn or(self, o: Self) -> Self {
                    // SAFETY: as `xor`.
                    unsafe { $or(self, o) }
                }
                #[inline(always)]
                fn and_not(self, o: Self) -> Self {
                    // SAFETY: as `xor`; the intrinsic computes `!first & second`.
                    unsafe { $andnot(o, self) }
                }
                #[inline(always)]
                fn not(self) -> Self {
                    // SAFETY: as `xor`.
                    unsafe { $xor(self, $set1(-1)) }
                }
                #[inline(always)]
                fn shr<const J: i32>(self) -> Self {
                    // SAFETY: as `xor`.
                    unsafe { $srli::<J>(self) }
                }
                #[inline(always)]
                fn shl<const J: i32>(self) -> Self {
                    // SAFETY: as `xor`.
                    unsafe { $slli::<J>(self) }
                }
            }
        };
    }

    // SSE2 is part of every x86-64 CPU: the portable kernel's lanes.
    lanes!(
        __m128i,
        2,
        _mm_set1_epi64x,
        _mm_load_si128,
        _mm_store_si128,
        _mm_xor_si128,
        _mm_and_si128,
        _mm_or_si128,
        _mm_andnot_si128,
        _mm_srli_epi64,
        _mm_slli_epi64
    );
    lanes!(
        __m256i,
        4,
        _mm256_set1_epi64x,
        _mm256_load_si256,
        _mm256_store_si256,
        _mm256_xor_si256,
        _mm256_and_si256,
        _mm256_or_si256,
        _mm256_andnot_si256,
        _mm256_srli_epi64,
        _mm256_slli_epi64
    );

    /// AVX-512F lanes, whose adders are two `vpternlogq` each.
    #[derive(Clone, Copy)]
    pub struct Zmm(__m512i);

    // SAFETY: values come only from `splat` and `load`, whose callers vouch for AVX-512F
    // (the trait's contract).
    unsafe impl Lanes for Zmm {
        const WORDS: usize = 8;
        #[inline(always)]
        unsafe fn splat(x: u64) -> Self {
            // SAFETY: the caller vouches for AVX-512F.
            Zmm(unsafe { _mm512_set1_epi64(x as i64) })
        }
        #[inline(always)]
        unsafe fn load(p: *const u64) -> Self {
            // SAFETY: the caller vouches for AVX-512F and 8 readable, aligned words at `p`.
            Zmm(unsafe { _mm512_load_si512(p.cast()) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut u64) {
            // SAFETY: the caller vouches for 8 writable, aligned words at `p`; a value exists,
            // so the CPU has AVX-512F.
            unsafe { _mm512_store_si512(p.cast(), self.0) }
        }
        #[inline(always)]
        fn xor(self, o: Self) -> Self {
            // SAFETY: a value exists, so the CPU has AVX-512F.
            Zmm(unsafe { _mm512_xor_si512(self.0, o.0) })
        }
        #[inline(always)]
        fn and(self, o: Self) -> Self {
            // SAFETY: as `xor`.
            Zmm(unsafe { _mm512_and_si512(self.0, o.0) })
        }
        #[inline(always)]
        fn or(self, o: Self) -> Self {
            // SAFETY: as `xor`.
            Zmm(unsafe { _mm512_or_si512(self.0, o.0) })
        }
        #[inline(always)]
        fn and_not(self, o: Self) -> Self {
            // SAFETY: as `xor`; the intrinsic computes `!first & second`.
            Zmm(unsafe { _mm512_andnot_si512(o.0, self.0) })
        }
        #[inline(always)]
        fn not(self) -> Self {
            // SAFETY: as `xor`; truth table 0x55 is `!c`.
            Zmm(unsafe { _mm512_ternarylogic_epi64::<0x55>(self.0, self.0, self.0) })
        }
        #[inline(always)]
        fn shr<const J: i32>(self) -> Self {
            // SAFETY: as `xor`.
            Zmm(unsafe { _mm512_srl_epi64(self.0, _mm_set_epi64x(0, J as i64)) })
        }
        #[inline(always)]
        fn shl<const J: i32>(self) -> Self {
            // SAFETY: as `xor`.
            Zmm(unsafe { _mm512_sll_epi64(self.0, _mm_set_epi64x(0, J as i64)) })
        }
        #[inline(always)]
        fn csa(a: Self, b: Self, c: Self) -> (Self, Self) {
            // SAFETY: as `xor`; truth table 0xE8 is the majority of a, b, c (the carry),
            // 0x96 their parity (the sum).
            unsafe {
                (
                    Zmm(_mm512_ternarylogic_epi64::<0xE8>(a.0, b.0, c.0)),
                    Zmm(_mm512_ternarylogic_epi64::<0x96>(a.0, b.0, c.0)),
                )
            }
        }
    }
}

/// 64 rows of `W` words (`W` = a vector's lanes): row `i` lane `g` holds code `W * i + g`
/// before [`transpose`], and bit `i` of lane `g` of plane `b` is bit `b` of that code after.
/// Aligned so that every row is one aligned vector load: unaligned 256-bit loads are split in
/// two by builds tuned for generic x86-64.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Planes<const W: usize>([[u64; W]; 64]);

/// Eight words, aligned for any vector's store.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Words([u64; 8]);

/// Each bit of a query as a word of that bit: what a plane is xor-ed with.
#[inline(always)]
fn query_bits(query: u64) -> [u64; 64] {
    std::array::from_fn(|b| (query >> b & 1).wrapping_neg())
}

/// One round of [`transpose`]: swaps the off-diagonal `J × J` blocks of every `2J × 2J`
/// block on the diagonal (`m` selects the low `J` bits of each `2J`).
///
/// # Safety
///
/// The CPU must have `V`'s instructions, and `V::WORDS` must be `W`.
#[inline(always)]
unsafe fn swap_blocks<V: Lanes, const W: usize, const J: i32>(planes: &mut Planes<W>, m: u64) {
    // SAFETY: the caller vouches for the CPU.
    let m = unsafe { V::splat(m) };
    for k in (0..64).filter(|k| k & J as usize == 0) {
        let (lo, hi) = (
            planes.0[k].as_mut_ptr(),
            planes.0[k | J as usize].as_mut_ptr(),
        );
        // SAFETY: each row holds `W == V::WORDS` words, aligned to the vector (rows are
        // `8 W` bytes apart from a 64-byte boundary).
        unsafe {
            let (a, b) = (V::load(lo), V::load(hi));
            let t = a.shr::<J>().xor(b).and(m);
            a.xor(t.shl::<J>()).store(lo);
            b.xor(t).store(hi);
        }
    }
}

/// Transposes each lane's 64 × 64 bit matrix in place (Hacker's Delight's recursive block
/// swap: quadrants of 32, then 16, down to single bits), so that `planes[b][g]` bit `i`
/// becomes bit `b` of the word `planes[i][g]` held.
///
/// # Safety
///
/// As [`swap_blocks`].
#[inline(always)]
unsafe fn transpose<V: Lanes, const W: usize>(planes: &mut Planes<W>) {
    // SAFETY: the caller's guarantees are the rounds' own.
    unsafe {
        swap_blocks::<V, W, 32>(planes, 0x0000_0000_FFFF_FFFF);
        swap_blocks::<V, W, 16>(planes, 0x0000_FFFF_0000_FFFF);
        swap_blocks::<V, W, 8>(planes, 0x00FF_00FF_00FF_00FF);
        swap_blocks::<V, W, 4>(planes, 0x0F0F_0F0F_0F0F_0F0F);
        swap_blocks::<V, W, 2>(planes, 0x3333_3333_3333_3333);
        swap_blocks::<V, W, 1>(planes, 0x5555_5555_5555_5555);
    }
}

/// For each lane `g`, bit `i` of the result = whether code `W * i + g` of `planes` is within
/// `radius` (below 64) of the query whose [`query_bits`] are `query`.
///
/// # Safety
///
/// As [`swap_blocks`].
#[inline(always)]
unsafe fn lane_masks<V: Lanes, const W: usize>(
    planes: &Planes<W>,
    query: &[u64; 64],
    radius: u32,
) -> Words {
    // SAFETY: the caller vouches for the CPU; each row holds `W == V::WORDS` aligned words.
    let x = |b: usize| unsafe { V::load(planes.0[b].as_ptr()).xor(V::splat(query[b])) };
    // SAFETY: the caller vouches for the CPU.
    let zero = unsafe { V::splat(0) };
    // Harley–Seal: the distance so far is ones + 2 twos + 4 fours + 8 eights + 16 × the
    // sixteens counted in (s16, s32, s64), each a bit plane.
    let (mut ones, mut twos, mut fours, mut eights) = (zero, zero, zero, zero);
    let (mut s16, mut s32, mut s64) = (zero, zero, zero);
    for base in [0, 16, 32, 48] {
        let (twos_a, o) = V::csa(ones, x(base), x(base + 1));
        let (twos_b, o) = V::csa(o, x(base + 2), x(base + 3));
        let (fours_a, t) = V::csa(twos, twos_a, twos_b);
        let (twos_a, o) = V::csa(o, x(base + 4), x(base + 5));
        let (twos_b, o) = V::csa(o, x(base + 6), x(base + 7));
        let (fours_b, t) = V::csa(t, twos_a, twos_b);
        let (eights_a, f) = V::csa(fours, fours_a, fours_b);
        let (twos_a, o) = V::csa(o, x(base + 8), x(base + 9));
        let (twos_b, o) = V::csa(o, x(base + 10), x(base + 11));
        let (fours_a, t) = V::csa(t, twos_a, twos_b);
        let (twos_a, o) = V::csa(o, x(base + 12), x(base + 13));
        let (twos_b, o) = V::csa(o, x(base + 14), x(base + 15));
        let (fours_b, t) = V::csa(t, twos_a, twos_b);
        let (eights_b, f) = V::csa(f, fours_a, fours_b);
        let (sixteens, e) = V::csa(eights, eights_a, eights_b);
        (ones, twos, fours, eights) = (o, t, f, e);
        let carry = s16.and(sixteens);
        s16 = s16.xor(sixteens);
        s64 = s64.or(s32.and(carry));
        s32 = s32.xor(carry);
    }
    let distance = [ones, twos, fours, eights, s16, s32, s64];
    // distance > radius, from the top bit down: greater once a bit is set where the radius
    // has none and every bit above agreed.
    let mut greater = zero;
    let mut equal = zero.not();
    for bit in (0..7).rev() {
        if radius >> bit & 1 == 1 {
            equal = equal.and(distance[bit]);
        } else {
            greater = greater.or(equal.and(distance[bit]));
            equal = equal.and_not(distance[bit]);
        }
    }
    let mut out = Words::default();
    // SAFETY: `out` is 8 aligned words.
    unsafe { greater.not().store(out.0.as_mut_ptr()) };
    out
}

/// Calls `hit(query_index, position, distance)` for every code of `block` (a whole number of
/// `64 × W` codes) within `radius(query_index)` of each of `queries`. Hits of one query come
/// out grouped by lane, not in position order.
///
/// # Safety
///
/// As [`swap_blocks`].
#[inline(always)]
unsafe fn scan_block<V: Lanes, const W: usize>(
    block: &[u64],
    queries: &[u64],
    radius: &impl Fn(usize) -> u32,
    hit: &mut impl FnMut(usize, usize, u32),
) {
    debug_assert_eq!(V::WORDS, W);
    debug_assert_eq!(block.len() % (64 * W), 0);
    let mut sets: Vec<Planes<W>> = Vec::with_capacity(block.len() / (64 * W));
    for set in block.chunks_exact(64 * W) {
        let mut planes = Planes([[0; W]; 64]);
        for (row, codes) in planes.0.iter_mut().zip(set.chunks_exact(W)) {
            row.copy_from_slice(codes);
        }
        // SAFETY: the caller's guarantees.
        unsafe { transpose::<V, W>(&mut planes) };
        sets.push(planes);
    }
    for (qi, &q) in queries.iter().enumerate() {
        let bits = query_bits(q);
        // Seven bits of distance: radii past 64 act as 64.
        let radius = radius(qi).min(64);
        for (s, planes) in sets.iter().enumerate() {
            // SAFETY: the caller's guarantees.
            let masks = unsafe { lane_masks::<V, W>(planes, &bits, radius) };
            let base = s * 64 * W;
            for (g, &mask) in masks.0[..W].iter().enumerate() {
                let mut mask = mask;
                while mask != 0 {
                    let p = base + W * mask.trailing_zeros() as usize + g;
                    mask &= mask - 1;
                    hit(qi, p, (block[p] ^ q).count_ones());
                }
            }
        }
    }
}

/// Codes per transposed set with `kernel`: the prefix of a block [`scan_many_sliced`] takes
/// is a multiple of this.
pub fn set_len(kernel: Kernel) -> usize {
    64 * match kernel {
        #[cfg(not(target_arch = "x86_64"))]
        _ => 1,
        #[cfg(target_arch = "x86_64")]
        Kernel::Portable => 2,
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => 4,
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => 8,
    }
}

/// The bit-sliced batched scan over `block[..n]`, `n` the largest multiple of
/// [`set_len`]`(kernel)` in `block`, by `kernel`; returns `n` (the caller scans the rest).
/// Query `i` is searched within `radius(i)`. Hits of one query come in no particular order.
///
/// # Panics
///
/// If this CPU lacks `kernel`'s instructions ([`Kernel::is_supported`]).
pub fn scan_many_sliced(
    kernel: Kernel,
    block: &[u64],
    queries: &[u64],
    radius: &impl Fn(usize) -> u32,
    mut hit: impl FnMut(usize, usize, u32),
) -> usize {
    assert!(
        kernel.is_supported(),
        "this CPU lacks the {} kernel",
        kernel.name()
    );
    let n = block.len() / set_len(kernel) * set_len(kernel);
    let block = &block[..n];
    #[cfg(target_arch = "x86_64")]
    match kernel {
        // SAFETY: SSE2 is part of every x86-64 CPU.
        Kernel::Portable => unsafe {
            scan_block::<std::arch::x86_64::__m128i, 2>(block, queries, radius, &mut hit)
        },
        // SAFETY: the CPU has AVX2 (checked above).
        Kernel::Avx2 => unsafe { scan_block_avx2(block, queries, radius, &mut hit) },
        // SAFETY: the CPU has AVX-512F (checked above: `is_supported` tests it).
        Kernel::Avx512 => unsafe { scan_block_avx512(block, queries, radius, &mut hit) },
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: plain words need nothing beyond the baseline.
    unsafe {
        scan_block::<u64, 1>(block, queries, radius, &mut hit)
    };
    n
}

/// [`scan_block`] on AVX2 vectors, compiled for AVX2.
///
/// Searches no longer reach it ([`sliced_serves`] sends AVX2 batches to the mask kernel); it
/// stays for [`scan_many_sliced`] with the kernel named, which `examples/plans.rs --kernels`
/// times, so that the comparison can be made again on other AVX2 CPUs (Intel's run
/// `vpsadbw` on one port, which may favour the bit-sliced form there).
///
/// # Safety
///
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_block_avx2(
    block: &[u64],
    queries: &[u64],
    radius: &impl Fn(usize) -> u32,
    hit: &mut impl FnMut(usize, usize, u32),
) {
    // SAFETY: the caller vouches for AVX2.
    unsafe { scan_block::<std::arch::x86_64::__m256i, 4>(block, queries, radius, hit) }
}

/// [`scan_block`] on AVX-512 vectors, compiled for AVX-512F.
///
/// # Safety
///
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn scan_block_avx512(
    block: &[u64],
    queries: &[u64],
    radius: &impl Fn(usize) -> u32,
    hit: &mut impl FnMut(usize, usize, u32),
) {
    // SAFETY: the caller vouches for AVX-512F.
    unsafe { scan_block::<x86::Zmm, 8>(block, queries, radius, hit) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sliced_form_serves_large_groups_up_to_its_widest_radius_but_not_with_avx2() {
        for kernel in [Kernel::Portable, Kernel::Avx512] {
            assert!(sliced_serves(kernel, SLICED_MIN_QUERIES, 0));
            assert!(sliced_serves(kernel, 64, SLICED_MAX_RADIUS));
            assert!(!sliced_serves(kernel, SLICED_MIN_QUERIES - 1, 0));
            assert!(!sliced_serves(kernel, 64, SLICED_MAX_RADIUS + 1));
            assert!(!sliced_serves(kernel, 64, 64));
        }
        assert!(!sliced_serves(Kernel::Avx2, 64, 0));
    }

    fn codes(n: usize, seed: u64) -> Vec<u64> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            })
            .collect()
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn transpose_moves_bit_b_of_code_i_to_bit_i_of_plane_b() {
        let input = codes(64 * 2, 7);
        let mut planes = Planes([[0; 2]; 64]);
        for (row, c) in planes.0.iter_mut().zip(input.chunks_exact(2)) {
            row.copy_from_slice(c);
        }
        // SAFETY: SSE2 is part of every x86-64 CPU.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            transpose::<std::arch::x86_64::__m128i, 2>(&mut planes)
        };
        for (i, rows) in input.chunks_exact(2).enumerate() {
            for (g, &code) in rows.iter().enumerate() {
                for (b, plane) in planes.0.iter().enumerate() {
                    assert_eq!(
                        plane[g] >> i & 1,
                        code >> b & 1,
                        "code {i} lane {g} bit {b}"
                    );
                }
            }
        }
    }

    /// Every kernel's sliced scan finds exactly the codes within the radius, at every radius,
    /// with their distances, for queries near and far, and leaves the tail to the caller.
    #[test]
    fn sliced_scan_follows_the_definition() {
        let mut block = codes(2048 + 37, 11);
        // Codes near the first queries, at every distance up to 64.
        let queries: Vec<u64> = codes(9, 5).into_iter().chain([0, u64::MAX]).collect();
        let low_bits = |d: usize| u64::MAX.checked_shr(64 - d as u32).unwrap_or(0);
        for d in 0..=64 {
            block[d * 13] = queries[d % 3] ^ low_bits(d);
            block[d * 13 + 1] = queries[0] ^ low_bits(d).rotate_left(d as u32 * 7);
        }
        block[5] = 0;
        block[6] = u64::MAX;
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
            for radius in 0..=65 {
                let mut got = vec![Vec::new(); queries.len()];
                let n = scan_many_sliced(kernel, &block, &queries, &|_| radius, |q, p, d| {
                    got[q].push((p, d))
                });
                assert_eq!(n, 2048, "{kernel:?}");
                for (qi, &q) in queries.iter().enumerate() {
                    got[qi].sort_unstable();
                    let want: Vec<(usize, u32)> = block[..n]
                        .iter()
                        .enumerate()
                        .map(|(p, &h)| (p, (h ^ q).count_ones()))
                        .filter(|&(_, d)| d <= radius)
                        .collect();
                    assert_eq!(got[qi], want, "{kernel:?} r{radius} query {qi}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn sliced_scan_agrees_with_the_definition_on_random_data(
            seed: u64,
            query: u64,
            radius in 0u32..=66,
            flips in proptest::collection::vec(0u64..u64::MAX, 0..40),
        ) {
            let mut block = codes(1024, seed);
            for (i, f) in flips.iter().enumerate() {
                // Near the query: a few bits of a random word flipped.
                block[i * 23 % 1024] = query ^ (f & f.rotate_left(17) & f.rotate_left(33));
            }
            for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
                let mut got = Vec::new();
                let n = scan_many_sliced(kernel, &block, &[query], &|_| radius, |_, p, d| {
                    got.push((p, d))
                });
                got.sort_unstable();
                let want: Vec<(usize, u32)> = block[..n]
                    .iter()
                    .enumerate()
                    .map(|(p, &h)| (p, (h ^ query).count_ones()))
                    .filter(|&(_, d)| d <= radius)
                    .collect();
                proptest::prop_assert_eq!(got, want, "{:?}", kernel);
            }
        }
    }
}
