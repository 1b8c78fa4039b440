//! The mask kernel in plain Rust, for every CPU.

use super::distance;
use super::Code;

/// The kernel as it was first written (`m |= bit << i`): kept to measure the others against.
#[doc(hidden)]
#[inline]
pub fn hit_masks_shift_in_place(hashes: &[u64], query: u64, radius: u32, masks: &mut [u64]) {
    for (block, mask) in hashes.chunks_exact(64).zip(masks.iter_mut()) {
        let mut m = 0u64;
        for (i, &h) in block.iter().enumerate() {
            m |= u64::from(distance(h, query) <= radius) << i;
        }
        *mask = m;
    }
}

/// [`super::hit_masks_with`] for any CPU: scalar POPCNT on x86-64-v2 builds.
///
/// Hits go to bytes first, a loop with no dependence between hashes, then each eight bytes
/// become eight bits by one multiply: measured faster than shifting each hit into its bit
/// (`m |= bit << i`), whose chain of ors serialises the block (figures in `KERNELS.md`).
#[inline]
pub fn hit_masks(hashes: &[u64], query: u64, radius: u32, masks: &mut [u64]) {
    for (block, mask) in hashes.chunks_exact(64).zip(masks.iter_mut()) {
        let mut bytes = [0u8; 64];
        for (b, &h) in bytes.iter_mut().zip(block) {
            *b = u8::from(distance(h, query) <= radius);
        }
        *mask = pack_bytes(&bytes);
    }
}

/// [`hit_masks`] for codes of any width.
#[inline]
pub fn hit_masks_generic<C: Code>(hashes: &[C], query: C, radius: u32, masks: &mut [u64]) {
    for (block, mask) in hashes.chunks_exact(64).zip(masks.iter_mut()) {
        let mut bytes = [0u8; 64];
        for (b, &h) in bytes.iter_mut().zip(block) {
            *b = u8::from(h.distance(query) <= radius);
        }
        *mask = pack_bytes(&bytes);
    }
}

/// Sixty-four 0/1 bytes as the bits of one word, byte `i` to bit `i`.
#[inline(always)]
fn pack_bytes(bytes: &[u8; 64]) -> u64 {
    let mut m = 0u64;
    for (k, eight) in bytes.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(eight.try_into().unwrap());
        // Byte j's low bit lands on bit 56 + j; the other products land on distinct bits
        // that never carry into the top byte.
        m |= (x.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * k);
    }
    m
}
