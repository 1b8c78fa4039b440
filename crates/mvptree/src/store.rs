//! The indexed (synced) entries: columns split into segments, each in ascending id order
//! and, when large enough, with multi-index tables.
//!
//! # Segments
//! A sync appends its batch as a new segment at the end of the columns. Segments are kept in
//! geometrically shrinking sizes: a new batch absorbs (is rebuilt together with) every trailing
//! segment holding fewer than [`MERGE_RATIO`] times its live entries. Rebuilding always touches
//! a suffix of the columns, so the columns stay contiguous, and each entry is rebuilt
//! O(log n) times over its life (a logarithmic method, as in Bentley & Saxe). Deletion marks a
//! slot dead; a segment more than half dead is rebuilt with the ones after it.
//!
//! Invariants: segments cover `0..columns.len()` in order without gaps; each segment's
//! entries are in ascending id order; `dead` has a bit per slot; `live` counts slots whose
//! bit is clear; the id map points every live id at its slot. The layout depends only on the
//! sequence of operations, never on time or randomness.
//!
//! # Why id order
//! Every plan the cost model picks (scan, multi-index) reads a segment in any order, so the
//! order serves the answers instead: a wide answer's rows, sorted by distance then id, are
//! placed by walking the slots ([`crate::wide`]) rather than by reading each id's distance
//! from wherever its slot lies (r32 on 1M codes, one query: 2.3 ms with the slots in an
//! MVP-tree's order, 1.5 ms in id order, AVX-512 kernel). The segments once held an MVP-tree
//! (the old module's structure) and were laid out in its order; the planner never chose it
//! on any kernel or machine measured (1.5-2.3 ms a query at r8-r20 on 1M codes against
//! 0.08-0.17 ms for the scan), so it is no longer built.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::columns::{Columns, Ids};
use crate::hamming::Code;
use crate::idmap::{IdMap, Location};
use crate::mih::MultiIndex;
use crate::plan::{self, Plan};

/// A segment absorbs the segments after it while they hold at least `1/MERGE_RATIO` of its
/// live entries.
pub const MERGE_RATIO: usize = 4;

type BuildSlot<C> = Mutex<Option<MultiIndex<C>>>;

/// The expensive half of a rebuild (the multi-index tables), split off so a face can run it
/// on another thread: [`BuildJob::run`] anywhere, then [`crate::Index::install_builds`] where
/// the index lives. Until then the new segment answers by scanning, so answers never wait
/// for it and never differ.
#[derive(Debug)]
pub struct BuildJob<C: Code = u64> {
    columns: Arc<Columns<C>>,
    slot: Arc<BuildSlot<C>>,
}

impl<C: Code> BuildJob<C> {
    /// Entries the job builds over.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Builds the tables. Needs no lock on the index: the segment's entries are shared and
    /// immutable.
    pub fn run(self) {
        let mih = MultiIndex::build(&self.columns.hashes);
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(mih);
    }
}

/// A segment: shared immutable entries and tables plus its own deletion marks, copied on
/// write when a reader still holds the old ones (a bit per entry, so a delete copies at most
/// `len / 8` bytes).
///
/// Invariants: `dead_bits` has a bit per position, `dead` counts the set ones; `start` is the
/// slot of position 0 (the sum of the lengths of the segments before).
#[derive(Debug, Clone)]
pub struct Segment<C: Code> {
    pub(crate) start: usize,
    pub(crate) len: usize,
    pub(crate) dead: usize,
    /// The entries, in ascending id order.
    columns: Arc<Columns<C>>,
    /// `None` on a small segment, and on a large one while its tables are built elsewhere
    /// (see [`BuildJob`]): it is scanned meanwhile.
    mih: Option<Arc<MultiIndex<C>>>,
    dead_bits: Arc<Vec<u64>>,
    /// Where a deferred build of this segment's structures will land.
    build: Option<Arc<BuildSlot<C>>>,
}

impl<C: Code> Segment<C> {
    pub(crate) fn live(&self) -> usize {
        self.len - self.dead
    }

    #[inline]
    pub(crate) fn is_dead(&self, p: usize) -> bool {
        self.dead_bits[p / 64] >> (p % 64) & 1 == 1
    }

    /// The first live position at or after `p`.
    fn live_from(&self, mut p: usize) -> Option<usize> {
        while p < self.len && self.is_dead(p) {
            p += 1;
        }
        (p < self.len).then_some(p)
    }

    /// The positions marked dead, in order.
    pub(crate) fn dead_positions(&self) -> impl Iterator<Item = usize> + '_ {
        self.dead_bits
            .iter()
            .enumerate()
            .filter(|&(_, &word)| word != 0)
            .flat_map(|(w, &word)| {
                let mut bits = word;
                std::iter::from_fn(move || {
                    (bits != 0).then(|| {
                        let p = w * 64 + bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        p
                    })
                })
            })
    }

    #[inline]
    pub(crate) fn hashes(&self) -> &[C] {
        &self.columns.hashes
    }

    #[inline]
    pub(crate) fn id(&self, p: usize) -> u64 {
        self.columns.id(p)
    }

    /// Every position's id, in position order.
    #[inline]
    pub(crate) fn ids(&self) -> &Ids {
        self.columns.ids()
    }

    pub(crate) fn mih(&self) -> Option<&MultiIndex<C>> {
        self.mih.as_deref()
    }

    /// The deletion marks of positions `64 * w..64 * w + 64`, a bit each.
    #[inline]
    pub(crate) fn dead_word(&self, w: usize) -> u64 {
        self.dead_bits[w]
    }

    /// The plan a range query at `radius` takes here: `plan` when it is forced and this
    /// segment has the structure it needs, else the planner's pick.
    pub(crate) fn range_plan(&self, plan: Plan, radius: u32) -> Plan {
        plan::range_plan(plan, self.len, self.mih(), radius)
    }
}

/// Statistics of one segment, for `info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentStats {
    pub len: usize,
    pub dead: usize,
    pub multi_index_fields: Vec<u32>,
}

/// The indexed entries. Cloning is cheap (a pointer per segment): the clone is a snapshot
/// that later writes to the original do not change.
#[derive(Debug)]
pub struct Store<C: Code> {
    pub(crate) segments: Vec<Segment<C>>,
    live: usize,
    pub(crate) multi_index_min_len: usize,
    /// Rebuilds of at least this many entries leave their structures to a [`BuildJob`]
    /// (`usize::MAX`: never).
    deferred_build_min_len: usize,
    /// Jobs made and not yet taken by [`Store::take_build_jobs`].
    jobs: Vec<BuildJob<C>>,
}

impl<C: Code> Clone for Store<C> {
    /// A clone shares the segments, deferred builds included (whichever copy installs a
    /// finished build first gets it; the other scans that segment until its next rebuild);
    /// jobs not yet taken stay with the original.
    fn clone(&self) -> Self {
        Store {
            segments: self.segments.clone(),
            live: self.live,
            multi_index_min_len: self.multi_index_min_len,
            deferred_build_min_len: self.deferred_build_min_len,
            jobs: Vec::new(),
        }
    }
}

impl<C: Code> Default for Store<C> {
    fn default() -> Self {
        Store {
            segments: Vec::new(),
            live: 0,
            multi_index_min_len: plan::MULTI_INDEX_MIN_LEN,
            deferred_build_min_len: usize::MAX,
            jobs: Vec::new(),
        }
    }
}
impl<C: Code> Store<C> {
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether a segment of `len` entries, in a store of `total` live entries, gets
    /// multi-index tables: at `multi_index_min_len` entries; or, once the store holds
    /// [`MERGE_RATIO`] times that, at a quarter of it. The segments a merge leaves behind
    /// a large one are small, and every query pays for each: scanning the last 4,000 entries of
    /// a 1M index cost as much as probing all the larger segments' tables, while tables there
    /// cost the index well under 1% of its memory. A small key still gets no tables.
    fn wants_multi_index(&self, len: usize, total: usize) -> bool {
        let min = self.multi_index_min_len;
        len >= min || (len >= min / 4 && total >= min.saturating_mul(MERGE_RATIO))
    }

    /// Gives segments of any size multi-index tables (tests use 0 to exercise them on small
    /// data). Takes effect at the next rebuild of each segment.
    pub fn set_multi_index_min_len(&mut self, len: usize) {
        self.multi_index_min_len = len;
    }

    /// Rebuilds of at least `len` entries from now on leave their structures to a
    /// [`BuildJob`] (`usize::MAX`, the default: build everything in place).
    pub fn set_deferred_build_min_len(&mut self, len: usize) {
        self.deferred_build_min_len = len;
    }

    /// The builds waiting to be run, handed over once each.
    pub fn take_build_jobs(&mut self) -> Vec<BuildJob<C>> {
        std::mem::take(&mut self.jobs)
    }

    /// Whether a deferred build has finished and waits for [`Store::install_builds`].
    pub fn builds_ready(&self) -> bool {
        self.segments.iter().any(|s| {
            s.build.as_ref().is_some_and(|slot| {
                slot.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_some()
            })
        })
    }

    pub fn has_build_jobs(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// Segments still waiting for their structures.
    pub fn builds_pending(&self) -> usize {
        self.segments.iter().filter(|s| s.build.is_some()).count()
    }

    /// Puts finished builds in place. O(tables): the expensive part ran in [`BuildJob::run`].
    pub fn install_builds(&mut self) {
        for segment in &mut self.segments {
            let Some(slot) = &segment.build else {
                continue;
            };
            let Some(built) = slot.lock().unwrap_or_else(PoisonError::into_inner).take() else {
                continue;
            };
            // Copied here rather than moved: whatever the build allocated (results and
            // scratch alike) is then freed together, where it was allocated, instead of
            // pinning part of that thread's allocator arena for the life of the index. With
            // the moved structures a server's RSS grew by about 70 bytes an entry.
            segment.mih = Some(Arc::new(built.clone()));
            drop(built);
            segment.build = None;
        }
    }

    /// Whether every id of each segment is smaller than every id of the next, dead entries'
    /// included: then walking the slots in order visits the ids in order. True unless ids
    /// came in out of order across syncs (explicit ids, or an id deleted and added again).
    pub(crate) fn ids_ascend_across_segments(&self) -> bool {
        self.segments
            .windows(2)
            .all(|w| w[0].id(w[0].len - 1) < w[1].id(0))
    }

    /// Slots in use, dead ones included: the end of the last segment.
    fn slot_count(&self) -> usize {
        self.segments.last().map_or(0, |s| s.start + s.len)
    }

    /// The segment holding `slot`, and the position there.
    #[inline]
    fn locate(&self, slot: usize) -> (&Segment<C>, usize) {
        let at = self.segments.partition_point(|s| s.start + s.len <= slot);
        let segment = &self.segments[at];
        (segment, slot - segment.start)
    }

    #[inline]
    pub fn hash(&self, slot: usize) -> C {
        let (s, p) = self.locate(slot);
        s.hashes()[p]
    }

    #[inline]
    pub fn id(&self, slot: usize) -> u64 {
        let (s, p) = self.locate(slot);
        s.id(p)
    }

    #[inline]
    pub fn title(&self, slot: usize) -> &[u8] {
        let (s, p) = self.locate(slot);
        s.columns.title(p)
    }

    /// Live slots, in slot order.
    pub fn live_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.segments
            .iter()
            .flat_map(|s| (0..s.len).filter(|&p| !s.is_dead(p)).map(|p| s.start + p))
    }

    /// The `n` live entries with the smallest ids at or above `start`, as `(id, slot)` in id
    /// order, from the store alone (so a read that holds only the store can walk it). Each
    /// segment's ids ascend, so this is a merge of one run per segment, each from its first
    /// id at or above `start` (a binary search): O(segments · log len + (n + dead slots
    /// passed) · log segments), where a pass over every id cost a page of a 1M-entry walk
    /// milliseconds.
    pub fn live_ids_from(&self, start: u64, n: usize) -> Vec<(u64, usize)> {
        let mut out = Vec::with_capacity(n.min(1 << 16));
        if n == 0 {
            return out;
        }
        // The head of each segment's run: (id, segment, position), smallest id first.
        let mut heads = BinaryHeap::with_capacity(self.segments.len());
        for (k, segment) in self.segments.iter().enumerate() {
            let (mut low, mut high) = (0, segment.len);
            while low < high {
                let mid = low + (high - low) / 2;
                if segment.id(mid) < start {
                    low = mid + 1;
                } else {
                    high = mid;
                }
            }
            if let Some(p) = segment.live_from(low) {
                heads.push(Reverse((segment.id(p), k, p)));
            }
        }
        while out.len() < n {
            let Some(Reverse((id, k, p))) = heads.pop() else {
                break;
            };
            let segment = &self.segments[k];
            out.push((id, segment.start + p));
            if let Some(next) = segment.live_from(p + 1) {
                heads.push(Reverse((segment.id(next), k, next)));
            }
        }
        out
    }

    /// Adds a batch of entries (ids must be new) and points their ids at their slots.
    pub fn insert(&mut self, batch: Columns<C>, ids: &mut IdMap) {
        if batch.is_empty() {
            return;
        }
        let mut first = self.segments.len();
        let mut size = batch.len();
        while first > 0 && self.segments[first - 1].live() < MERGE_RATIO * size {
            first -= 1;
            size += self.segments[first].live();
        }
        self.rebuild_from(first, batch, ids);
    }

    /// Marks the entry at `slot` deleted (its id must already be gone from the id map).
    pub fn kill(&mut self, slot: usize, ids: &mut IdMap) {
        let at = self.segments.partition_point(|s| s.start + s.len <= slot);
        let segment = &mut self.segments[at];
        let p = slot - segment.start;
        debug_assert!(!segment.is_dead(p));
        Arc::make_mut(&mut segment.dead_bits)[p / 64] |= 1 << (p % 64);
        segment.dead += 1;
        self.live -= 1;
        if segment.dead * 2 > segment.len {
            self.rebuild_from(at, Columns::default(), ids);
        }
    }

    /// Rebuilds segments `first..` together with `batch` into one new segment.
    fn rebuild_from(&mut self, first: usize, batch: Columns<C>, ids: &mut IdMap) {
        let start = self
            .segments
            .get(first)
            .map_or(self.slot_count(), |s| s.start);
        let (len, title_bytes) = self.segments[first..]
            .iter()
            .fold((batch.len(), batch.title_bytes()), |(n, t), s| {
                (n + s.len, t + s.columns.title_bytes())
            });
        let mut merged = Columns::with_capacity(len, title_bytes);
        for s in &self.segments[first..] {
            for p in (0..s.len).filter(|&p| !s.is_dead(p)) {
                merged.push(s.id(p), s.hashes()[p], s.columns.title(p));
            }
        }
        for i in 0..batch.len() {
            merged.push(batch.id(i), batch.hashes[i], batch.title(i));
        }
        drop(batch);
        for s in self.segments.drain(first..) {
            self.live -= s.live();
        }
        if merged.is_empty() {
            return;
        }
        assert!(
            start + merged.len() < (1 << 31),
            "an index holds at most 2^31 entries"
        );
        let mut merged = in_id_order(merged);
        for (p, id) in merged.ids().iter().enumerate() {
            ids.set(id, Location::Slot(start + p));
        }
        merged.compact();
        let len = merged.len();
        let columns = Arc::new(merged);
        let multi_index = self.wants_multi_index(len, self.live + len);
        let (mih, build) = if multi_index && len >= self.deferred_build_min_len {
            // Searched by scanning until a job builds the tables.
            let slot = Arc::new(Mutex::new(None));
            self.jobs.push(BuildJob {
                columns: columns.clone(),
                slot: slot.clone(),
            });
            (None, Some(slot))
        } else {
            let mih = multi_index.then(|| Arc::new(MultiIndex::build(&columns.hashes)));
            (mih, None)
        };
        self.segments.push(Segment {
            start,
            len,
            dead: 0,
            columns,
            mih,
            dead_bits: Arc::new(vec![0; len.div_ceil(64)]),
            build,
        });
        self.live += len;
    }

    pub fn segment_stats(&self) -> Vec<SegmentStats> {
        self.segments
            .iter()
            .map(|s| SegmentStats {
                len: s.len,
                dead: s.dead,
                multi_index_fields: s.mih().map_or(Vec::new(), |m| m.field_widths()),
            })
            .collect()
    }

    /// Bytes held, counting shared segment data as this store's own (a snapshot still
    /// holding replaced segments keeps them alive, and Redis counts that memory too).
    pub fn memory_bytes(&self) -> usize {
        self.segments.capacity() * std::mem::size_of::<Segment<C>>()
            + self
                .segments
                .iter()
                .map(|s| {
                    std::mem::size_of::<Columns<C>>()
                        + s.columns.memory_bytes()
                        + s.dead_bits.capacity() * 8
                        + s.mih().map_or(0, |m| m.memory_bytes())
                })
                .sum::<usize>()
    }
}

/// `columns` with its entries in ascending id order; as given when they already are (a
/// merge of segments and a batch of new ids usually is).
fn in_id_order<C: Code>(columns: Columns<C>) -> Columns<C> {
    let ids = columns.ids();
    if (1..columns.len()).all(|i| ids.get(i - 1) < ids.get(i)) {
        return columns;
    }
    let mut order: Vec<u32> = (0..columns.len() as u32).collect();
    // Ids are unique, so an unstable sort gives the one order.
    order.sort_unstable_by_key(|&i| ids.get(i as usize));
    let mut sorted = Columns::with_capacity(columns.len(), columns.title_bytes());
    for &i in &order {
        let i = i as usize;
        sorted.push(columns.id(i), columns.hashes[i], columns.title(i));
    }
    sorted
}
