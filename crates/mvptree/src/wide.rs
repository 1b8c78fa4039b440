//! Wide range answers, written straight into their final columns in two passes.
//!
//! At a radius that finds a good share of the index (r27 and up on 64-bit codes), collecting
//! matches and sorting them costs far more than finding them: each row is written, grown,
//! counted, scattered and sorted again. Here every row is written once, in its final place:
//!
//! 1. each slot's distance to the query, clipped at `radius + 1`, goes into a byte per slot,
//!    and a histogram of those bytes gives each distance's share of the answer, so the answer's
//!    size is known (and refused if too large) before any of it is allocated;
//! 2. the slots are walked in order, and each live one within the radius has its id written
//!    at the next free place of its distance. A segment holds its entries in id order, and
//!    the segments' ids usually ascend from one to the next, so the rows come out sorted by
//!    distance, then id, with no sort. Where they do not, the id map is walked in id order
//!    instead, each id reading its slot's distance: the same rows, from reads all over the
//!    distance bytes (r32 on 1M codes, one query: 1.5 ms by slots, 2.3 ms by the id map with
//!    the slots in no order).
//!
//! Dead slots are in no id's location, so the id map's walk never visits them; the slots'
//! walk skips them by their marks, and the histogram takes them back out.

use std::mem::MaybeUninit;

use crate::batch::RangeRows;
use crate::columns::Ids;
use crate::hamming::{byte_mask_within, clipped_distances, kernel, Code};
use crate::idmap::slot_of_raw;
use crate::search::Snapshot;
use crate::threads::for_each_on_threads;

/// Buffers a thread reuses from one wide answer to the next.
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

/// Widest radius [`Snapshot::wide_rows`] answers: clipped distances must fit a byte.
pub(crate) const MAX_WIDE_RADIUS: u32 = 254;

/// Share of the index a radius must be expected to find for [`Snapshot::wide_rows`] to
/// answer it: below it, a scan that visits only its hits and sorts them is cheaper than two
/// passes over every entry (measured crossover at 1M 64-bit codes: 9-15%, r26-r27).
const WIDE_SHARE: f64 = 1.0 / 8.0;

impl<C: Code> Snapshot<C> {
    /// Whether range answers at `radius` are found by [`Snapshot::wide_rows`].
    pub(crate) fn answers_wide(&self, radius: u32) -> bool {
        radius <= MAX_WIDE_RADIUS && self.expected_rows(radius) >= WIDE_SHARE * self.len() as f64
    }

    /// Range answers of every hash at `radius` (at most [`MAX_WIDE_RADIUS`]) as CSR rows, on
    /// up to `threads` threads, or `None` when they hold more than `max_rows` rows together.
    ///
    /// The rows are counted before any is written, so the columns are allocated once at
    /// their final size (a refused answer allocates nothing), and each query writes its rows
    /// straight into its own part of them. A batch pays for that with a second distance pass
    /// per query, cheaper than gathering parts and copying them together.
    pub(crate) fn wide_rows(
        &self,
        hashes: &[C],
        radius: u32,
        max_rows: usize,
        threads: usize,
    ) -> Option<RangeRows> {
        assert!(radius <= MAX_WIDE_RADIUS);
        let mut rows = RangeRows {
            lims: vec![0; hashes.len() + 1],
            ..RangeRows::default()
        };
        if let [query] = hashes {
            // One query: its counts come with the distances it writes from.
            let mut scratch = WideScratch::default();
            let counts = self.clipped_distances(*query, radius, &mut scratch.by_slot, true);
            let total: usize = counts[..=radius as usize].iter().sum();
            if total > max_rows {
                return None;
            }
            rows.ids = Vec::with_capacity(total);
            rows.distances = Vec::with_capacity(total);
            self.place_rows(
                radius,
                &counts,
                &scratch.by_slot,
                &mut scratch.sparse,
                &mut rows.ids.spare_capacity_mut()[..total],
                &mut rows.distances.spare_capacity_mut()[..total],
            );
            // SAFETY: place_rows returned, so it wrote every one of the first `total` rows
            // of both columns (it checks that each distance's rows filled their range, and the
            // ranges tile `0..total`).
            unsafe {
                rows.ids.set_len(total);
                rows.distances.set_len(total);
            }
            rows.lims[1] = total as u64;
            return Some(rows);
        }
        let mut counts = vec![[0usize; 256]; hashes.len()];
        for_each_on_threads(
            threads,
            hashes.iter().zip(counts.iter_mut()),
            |(&query, counts), scratch: &mut WideScratch| {
                *counts = self.clipped_distances(query, radius, &mut scratch.by_slot, true);
            },
        );
        let mut total = 0usize;
        for (lim, counts) in rows.lims[1..].iter_mut().zip(&counts) {
            total += counts[..=radius as usize].iter().sum::<usize>();
            if total > max_rows {
                return None;
            }
            *lim = total as u64;
        }
        rows.ids = Vec::with_capacity(total);
        rows.distances = Vec::with_capacity(total);
        let mut parts = Vec::with_capacity(hashes.len());
        let (mut ids, mut distances) = (
            &mut rows.ids.spare_capacity_mut()[..total],
            &mut rows.distances.spare_capacity_mut()[..total],
        );
        for (q, window) in rows.lims.windows(2).enumerate() {
            let len = (window[1] - window[0]) as usize;
            let (part_ids, rest_ids) = std::mem::take(&mut ids).split_at_mut(len);
            let (part_distances, rest_distances) = std::mem::take(&mut distances).split_at_mut(len);
            (ids, distances) = (rest_ids, rest_distances);
            parts.push((q, part_ids, part_distances));
        }
        for_each_on_threads(
            threads,
            parts,
            |(q, ids, distances), scratch: &mut WideScratch| {
                self.clipped_distances(hashes[q], radius, &mut scratch.by_slot, false);
                self.place_rows(
                    radius,
                    &counts[q],
                    &scratch.by_slot,
                    &mut scratch.sparse,
                    ids,
                    distances,
                );
            },
        );
        // SAFETY: every part's place_rows returned, so each wrote all the rows of its part
        // (it checks that), and the parts tile `0..total` of both columns.
        unsafe {
            rows.ids.set_len(total);
            rows.distances.set_len(total);
        }
        Some(rows)
    }

    /// Leaves in `by_slot[slot]` each slot's distance to `query` clipped at `radius + 1`, and
    /// returns how many live slots lie at each distance up to `radius` when `count` is set
    /// (zeros otherwise). One more byte follows the slots', at `radius + 1`: where ids with no
    /// slot look, so that walking the id map takes no branch per id.
    fn clipped_distances(
        &self,
        query: C,
        radius: u32,
        by_slot: &mut Vec<u8>,
        count: bool,
    ) -> [usize; 256] {
        let beyond = radius as u8 + 1;
        let kernel = kernel();
        let slots: usize = self.store.segments.iter().map(|s| s.len).sum();
        by_slot.resize(slots, 0);
        by_slot.push(beyond);
        let mut counts = [0usize; 256];
        for s in &self.store.segments {
            let by_slot = &mut by_slot[s.start..s.start + s.len];
            clipped_distances(kernel, s.hashes(), query, beyond, by_slot);
            if count {
                histogram_within(by_slot, radius as u8, &mut counts);
                for p in s.dead_positions().filter(|&p| by_slot[p] < beyond) {
                    counts[by_slot[p] as usize] -= 1;
                }
            }
        }
        counts
    }

    /// Writes the rows `by_slot` (as [`Snapshot::clipped_distances`] left it) holds within
    /// `radius` into `ids` and `distances`, sorted by distance then id: every one of their
    /// slots, or it panics. `counts` are the rows at each distance; `ids` and `distances` hold
    /// exactly their sum.
    fn place_rows(
        &self,
        radius: u32,
        counts: &[usize; 256],
        by_slot: &[u8],
        sparse: &mut Vec<(u64, u8)>,
        ids: &mut [MaybeUninit<u64>],
        distances: &mut [MaybeUninit<u32>],
    ) {
        let beyond = radius as u8 + 1;
        // `next[d]`: where the next row at distance `d` goes; `ends[d]`, past its last.
        let mut next = [0usize; 256];
        let mut ends = [0usize; 256];
        let mut at = 0;
        for (d, &count) in counts[..beyond as usize].iter().enumerate() {
            next[d] = at;
            for slot in &mut distances[at..at + count] {
                slot.write(d as u32);
            }
            at += count;
            ends[d] = at;
        }
        assert_eq!(at, ids.len(), "the columns hold exactly the rows counted");
        assert_eq!(
            at,
            distances.len(),
            "the columns hold exactly the rows counted"
        );
        if self.store.ids_ascend_across_segments() {
            for s in &self.store.segments {
                let by_position = &by_slot[s.start..s.start + s.len];
                let dead = |w: usize| if s.dead > 0 { s.dead_word(w) } else { 0 };
                match s.ids() {
                    Ids::Narrow(column) => {
                        let id = |p: usize| u64::from(column[p]);
                        place_positions(by_position, radius as u8, dead, id, &mut next, ids);
                    }
                    Ids::Wide(column) => {
                        let id = |p: usize| column[p];
                        place_positions(by_position, radius as u8, dead, id, &mut next, ids);
                    }
                    &Ids::Run { first, step, .. } => {
                        let id = |p: usize| first + p as u64 * step;
                        place_positions(by_position, radius as u8, dead, id, &mut next, ids);
                    }
                }
            }
        } else {
            self.place_by_id_map(by_slot, radius as u8, sparse, &mut next, ids);
        }
        // Each distance's rows are written one after another from its first slot, so a cursor
        // at its end means that distance's range is full: with every cursor there, every slot
        // holds a row, which the callers' `set_len` relies on.
        assert!(
            next[..beyond as usize] == ends[..beyond as usize],
            "every counted row was placed: the id map and the store agree"
        );
    }

    /// The rows of `by_slot` within `radius` in id order by the id map, whatever the slots'
    /// order: [`place_dense_ids`], then the ids outside the dense table.
    fn place_by_id_map(
        &self,
        by_slot: &[u8],
        radius: u8,
        sparse: &mut Vec<(u64, u8)>,
        next: &mut [usize; 256],
        ids: &mut [MaybeUninit<u64>],
    ) {
        let beyond = radius + 1;
        place_dense_ids(self.ids.dense_raw(), by_slot, radius, next, ids);
        // Ids past the dense table are larger than every id in it.
        sparse.clear();
        sparse.extend(
            self.ids
                .sparse_slots()
                .map(|(id, slot)| (id, by_slot[slot]))
                .filter(|&(_, d)| d < beyond),
        );
        sparse.sort_unstable();
        for &(id, d) in sparse.iter() {
            ids[next[d as usize]].write(id);
            next[d as usize] += 1;
        }
    }
}

/// Writes the id (`id(position)`) of each position of one segment whose distance in
/// `by_position` lies within `radius` and which is not dead (`dead(w)`: the marks of positions
/// `64 * w..64 * w + 64`) at `ids[next[d]]` for its distance `d`, advancing `next[d]`:
/// positions are walked in order, so a segment in id order gives each distance's ids sorted.
fn place_positions(
    by_position: &[u8],
    radius: u8,
    dead: impl Fn(usize) -> u64,
    id: impl Fn(usize) -> u64,
    next: &mut [usize; 256],
    ids: &mut [MaybeUninit<u64>],
) {
    for (w, block) in by_position.chunks(64).enumerate() {
        let mut within = match <&[u8; 64]>::try_from(block) {
            Ok(block) => byte_mask_within(block, radius),
            Err(_) => block
                .iter()
                .enumerate()
                .filter(|&(_, &d)| d <= radius)
                .fold(0, |mask, (i, _)| mask | 1 << i),
        };
        within &= !dead(w);
        while within != 0 {
            let i = within.trailing_zeros() as usize;
            within &= within - 1;
            let d = block[i] as usize;
            ids[next[d]].write(id(64 * w + i));
            next[d] += 1;
        }
    }
}

/// Writes each id of the dense id table whose slot lies within `radius` (by `by_slot`, as
/// [`Snapshot::clipped_distances`] left it) at `ids[next[d]]` for its distance `d`, advancing
/// `next[d]`: ids are walked in order, so each distance's ids come out sorted.
fn place_dense_ids(
    raws: &[u32],
    by_slot: &[u8],
    radius: u8,
    next: &mut [usize; 256],
    ids: &mut [MaybeUninit<u64>],
) {
    let beyond = radius + 1;
    let outside = by_slot.len() - 1;
    let mut by_id = [beyond; WALK_IDS];
    for (c, raws) in raws.chunks(WALK_IDS).enumerate() {
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
                ids[next[d]].write((first_id + 64 * b + i) as u64);
                next[d] += 1;
            }
        }
    }
}

/// Adds to `counts[d]` the bytes of `bytes` equal to `d`, for every `d` up to `radius`: the
/// others are skipped a 64-byte block at a time, so a narrow answer costs little more than a
/// read of the bytes.
///
/// A block mostly within the radius counts all its bytes, into four tables in turn added up
/// at the end: a wide answer's distances crowd a few values, so with one table neighbouring
/// bytes would often bump one counter, each waiting for the previous one's store, and a
/// branch per hit would cost more than counting the misses too (r32 on 1M codes: the
/// histogram's share of the answer's time fell by about a quarter).
fn histogram_within(bytes: &[u8], radius: u8, counts: &mut [usize; 256]) {
    let mut tables = [[0usize; 256]; 4];
    let mut blocks = bytes.chunks_exact(64);
    for block in &mut blocks {
        let block: &[u8; 64] = block.try_into().expect("64 bytes");
        let mut within = byte_mask_within(block, radius);
        if within.count_ones() >= 32 {
            // Mostly within: counting every byte takes no branch per byte. Bytes past the
            // radius land in counts that are never read.
            for quad in block.chunks_exact(4) {
                for (table, &b) in tables.iter_mut().zip(quad) {
                    table[b as usize] += 1;
                }
            }
            continue;
        }
        while within != 0 {
            tables[0][block[within.trailing_zeros() as usize] as usize] += 1;
            within &= within - 1;
        }
    }
    for &b in blocks.remainder().iter().filter(|&&b| b <= radius) {
        tables[0][b as usize] += 1;
    }
    for (d, count) in counts.iter_mut().enumerate().take(radius as usize + 1) {
        *count += tables.iter().map(|t| t[d]).sum::<usize>();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_counts_every_byte_within_the_radius_and_adds_to_the_counts() {
        // Lengths around the 64-byte block, bytes of every value, and runs of one value.
        for len in [0usize, 1, 63, 64, 65, 200, 4099] {
            let bytes: Vec<u8> = (0..len)
                .map(|i| if i % 7 < 3 { 30 } else { (i * 37 % 256) as u8 })
                .collect();
            for radius in [0u8, 30, 31, 128, 254, 255] {
                let mut counts = [1usize; 256];
                histogram_within(&bytes, radius, &mut counts);
                for d in 0..=255u8 {
                    let expected = 1 + if d <= radius {
                        bytes.iter().filter(|&&b| b == d).count()
                    } else {
                        0
                    };
                    assert_eq!(counts[d as usize], expected, "len {len} r{radius} d{d}");
                }
            }
        }
    }
}
