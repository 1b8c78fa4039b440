//! Wide range answers, written straight into their final columns in two passes.
//!
//! At a radius that finds a good share of the index (r24 and up on 64-bit codes), collecting
//! matches and sorting them costs far more than finding them: each row is written, grown,
//! counted, scattered and sorted again. Here every row is written once, in its final place:
//!
//! 1. each slot's distance to the query, clipped at `radius + 1`, goes into a byte per slot,
//!    and a histogram of those bytes gives each distance's share of the answer, so the answer's
//!    size is known (and refused if too large) before any of it is allocated;
//! 2. the id map is walked in id order, and each id within the radius is written at the next
//!    free place of its distance. Rows come out sorted by distance, then id, with no sort.
//!
//! Dead slots are in no id's location, so the walk never visits them; only the histogram
//! takes them back out.

use crate::hamming::{byte_mask_within, clipped_distances, kernel, Code};
use crate::idmap::slot_of_raw;
use crate::search::Snapshot;

/// Buffers one wide answer after another reuses.
#[derive(Debug, Default)]
pub(crate) struct WideScratch {
    /// Each slot's clipped distance to the query.
    by_slot: Vec<u8>,
    /// Sparse ids in the answer: (id, distance), sorted before they are placed.
    sparse: Vec<(u64, u8)>,
}

/// Ids per step of the id-order walk: their distances are gathered into a buffer that stays
/// in L1 while it is read back.
const WALK_IDS: usize = 4096;

/// Widest radius [`Snapshot::range_columns`] answers: clipped distances must fit a byte.
pub(crate) const MAX_WIDE_RADIUS: u32 = 254;

/// Share of the index a radius must be expected to find for [`Snapshot::range_columns`] to
/// answer it: below it, a scan that visits only its hits and sorts them is cheaper than two
/// passes over every entry (measured crossover at 1M 64-bit codes: 9-15%, r26-r27).
const WIDE_SHARE: f64 = 1.0 / 8.0;

impl<C: Code> Snapshot<C> {
    /// Whether range answers at `radius` are found by [`Snapshot::range_columns`].
    pub(crate) fn answers_wide(&self, radius: u32) -> bool {
        radius <= MAX_WIDE_RADIUS && self.expected_rows(radius) >= WIDE_SHARE * self.len() as f64
    }

    /// Appends every live entry within `radius` (at most [`MAX_WIDE_RADIUS`]) to `ids` and
    /// `distances`, sorted by distance then id. Returns the rows appended, or `None` (having
    /// appended nothing) when there are more than `max_rows`.
    pub(crate) fn range_columns(
        &self,
        query: C,
        radius: u32,
        max_rows: usize,
        scratch: &mut WideScratch,
        ids: &mut Vec<u64>,
        distances: &mut Vec<u32>,
    ) -> Option<usize> {
        assert!(radius <= MAX_WIDE_RADIUS);
        let beyond = radius as u8 + 1;
        let kernel = kernel();
        let slots: usize = self.store.segments.iter().map(|s| s.len).sum();
        scratch.by_slot.resize(slots, 0);
        let mut counts = [0usize; 256];
        for s in &self.store.segments {
            let by_slot = &mut scratch.by_slot[s.start..s.start + s.len];
            clipped_distances(kernel, s.hashes(), query, beyond, by_slot);
            histogram_within(by_slot, radius as u8, &mut counts);
            for p in s.dead_positions().filter(|&p| by_slot[p] < beyond) {
                counts[by_slot[p] as usize] -= 1;
            }
        }
        let total: usize = counts[..beyond as usize].iter().sum();
        if total > max_rows {
            return None;
        }
        // `next[d]`: where the next row at distance `d` goes.
        let base = ids.len();
        let mut next = [0usize; 256];
        let mut at = base;
        for (slot, &count) in next.iter_mut().zip(&counts[..beyond as usize]) {
            *slot = at;
            at += count;
        }
        ids.resize(base + total, 0);
        // A slot past every real one, at distance `beyond`: where ids with no slot look, so the
        // walk takes no branch per id.
        let outside = slots;
        scratch.by_slot.push(beyond);
        let by_slot = &scratch.by_slot;
        let radius = radius as u8;
        let mut by_id = [beyond; WALK_IDS];
        for (c, raws) in self.ids.dense_raw().chunks(WALK_IDS).enumerate() {
            // Gathered first, in a loop whose loads do not wait on each other: the slots
            // are in no order, so each is a cache miss to overlap with the others.
            for (d, &raw) in by_id.iter_mut().zip(raws) {
                *d = by_slot[slot_of_raw(raw).unwrap_or(outside)];
            }
            by_id[raws.len()..].fill(beyond);
            let first_id = c * WALK_IDS;
            for (b, block) in by_id[..raws.len().next_multiple_of(64)]
                .chunks_exact(64)
                .enumerate()
            {
                let block: &[u8; 64] = block.try_into().expect("64 bytes");
                let mut within = byte_mask_within(block, radius);
                while within != 0 {
                    let i = within.trailing_zeros() as usize;
                    within &= within - 1;
                    let d = block[i] as usize;
                    ids[next[d]] = (first_id + 64 * b + i) as u64;
                    next[d] += 1;
                }
            }
        }
        // Ids past the dense table are larger than every id in it.
        scratch.sparse.clear();
        scratch.sparse.extend(
            self.ids
                .sparse_slots()
                .map(|(id, slot)| (id, by_slot[slot]))
                .filter(|&(_, d)| d < beyond),
        );
        scratch.sparse.sort_unstable();
        for &(id, d) in &scratch.sparse {
            ids[next[d as usize]] = id;
            next[d as usize] += 1;
        }
        distances.reserve(total);
        for (d, &count) in counts[..beyond as usize].iter().enumerate() {
            distances.extend(std::iter::repeat_n(d as u32, count));
        }
        Some(total)
    }
}

/// Adds to `counts[d]` the bytes of `bytes` equal to `d`, for every `d` up to `radius`: the
/// others are skipped a 64-byte block at a time, so a narrow answer costs little more than a
/// read of the bytes.
fn histogram_within(bytes: &[u8], radius: u8, counts: &mut [usize; 256]) {
    let mut blocks = bytes.chunks_exact(64);
    for block in &mut blocks {
        let block: &[u8; 64] = block.try_into().expect("64 bytes");
        let mut within = byte_mask_within(block, radius);
        while within != 0 {
            counts[block[within.trailing_zeros() as usize] as usize] += 1;
            within &= within - 1;
        }
    }
    for &b in blocks.remainder().iter().filter(|&&b| b <= radius) {
        counts[b as usize] += 1;
    }
}
