//! The indexed (synced) entries: columns split into segments, each with its own MVP-tree and,
//! when large enough, multi-index tables.
//!
//! # Segments
//! A sync appends its batch as a new segment at the end of the columns. Segments are kept in
//! geometrically shrinking sizes: a new batch absorbs (is rebuilt together with) every trailing
//! segment holding fewer than [`MERGE_RATIO`] times its live entries. Rebuilding always touches
//! a suffix of the columns, so the columns stay contiguous, and each entry is rebuilt
//! O(log n) times over its life (a logarithmic method, as in Bentley & Saxe). Deletion marks a
//! slot dead; a segment more than half dead is rebuilt with the ones after it.
//!
//! Invariants: segments cover `0..columns.len()` in order without gaps; `dead` has a bit per
//! slot; `live` counts slots whose bit is clear; the id map points every live id at its slot.
//! The layout depends only on the sequence of operations, never on time or randomness.

use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::columns::{Columns, Ids};
use crate::hamming::Code;
use crate::idmap::{IdMap, Location};
use crate::mih::MultiIndex;
use crate::mvp::MvpTree;
use crate::plan::{self, Plan};

/// A segment absorbs the segments after it while they hold at least `1/MERGE_RATIO` of its
/// live entries.
pub const MERGE_RATIO: usize = 4;

/// What a rebuild makes and nothing changes afterwards: the entries in search order and
/// their structures. Shared (not copied) by every [`Store`] cloned from the one that built it,
/// so a reader can hold a consistent view while the index goes on changing.
#[derive(Debug)]
struct SegmentData<C: Code> {
    columns: Columns<C>,
    /// `None` while the segment waits for its structures to be built elsewhere (see
    /// [`BuildJob`]): it is scanned meanwhile.
    tree: Option<MvpTree<C>>,
    mih: Option<MultiIndex<C>>,
}

/// What a deferred build hands back: the search order and the structures over it.
#[derive(Debug)]
struct Built<C: Code> {
    order: Vec<u32>,
    tree: MvpTree<C>,
    mih: Option<MultiIndex<C>>,
}

type BuildSlot<C> = Mutex<Option<Built<C>>>;

/// The expensive half of a rebuild (the MVP-tree and the multi-index tables), split off so a
/// face can run it on another thread: [`BuildJob::run`] anywhere, then
/// [`crate::Index::install_builds`] where the index lives. Until then the new segment answers
/// by scanning, so answers never wait for it and never differ.
#[derive(Debug)]
pub struct BuildJob<C: Code = u64> {
    data: Arc<SegmentData<C>>,
    slot: Arc<BuildSlot<C>>,
    multi_index: bool,
}

impl<C: Code> BuildJob<C> {
    /// Entries the job builds over.
    pub fn len(&self) -> usize {
        self.data.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Builds the structures. Needs no lock on the index: the segment's entries are shared
    /// and immutable.
    pub fn run(self) {
        let hashes = &self.data.columns.hashes;
        let (tree, order) = MvpTree::build(hashes);
        let mih = self.multi_index.then(|| {
            let ordered: Vec<C> = order.iter().map(|&i| hashes[i as usize]).collect();
            MultiIndex::build(&ordered)
        });
        let built = Built { order, tree, mih };
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(built);
    }
}

/// A segment: shared immutable data plus its own deletion marks, copied on write when a
/// reader still holds the old ones (a bit per entry, so a delete copies at most `len / 8`
/// bytes).
///
/// Invariants: `dead_bits` has a bit per position, `dead` counts the set ones; `start` is the
/// slot of position 0 (the sum of the lengths of the segments before).
#[derive(Debug, Clone)]
pub struct Segment<C: Code> {
    pub(crate) start: usize,
    pub(crate) len: usize,
    pub(crate) dead: usize,
    data: Arc<SegmentData<C>>,
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
        &self.data.columns.hashes
    }

    #[inline]
    pub(crate) fn id(&self, p: usize) -> u64 {
        self.data.columns.id(p)
    }

    /// Every position's id, in position order.
    #[inline]
    pub(crate) fn ids(&self) -> &Ids {
        self.data.columns.ids()
    }

    pub(crate) fn mih(&self) -> Option<&MultiIndex<C>> {
        self.data.mih.as_ref()
    }

    pub(crate) fn tree(&self) -> Option<&MvpTree<C>> {
        self.data.tree.as_ref()
    }

    /// The plan a range query at `radius` takes here: `plan` when it is forced and this
    /// segment has the structure it needs, else the planner's pick.
    pub(crate) fn range_plan(&self, plan: Plan, radius: u32) -> Plan {
        plan::range_plan(plan, self.len, self.mih(), self.tree().is_some(), radius)
    }
}

/// Statistics of one segment, for `info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentStats {
    pub len: usize,
    pub dead: usize,
    pub tree_nodes: usize,
    pub tree_depth: usize,
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

    /// Puts finished builds in place: each such segment is laid out again in its search
    /// order, its deletion marks and its ids' slots moved along. O(segment) with no search
    /// structure built: the expensive part ran in [`BuildJob::run`].
    pub fn install_builds(&mut self, ids: &mut IdMap) {
        for segment in &mut self.segments {
            let Some(slot) = &segment.build else {
                continue;
            };
            let Some(built) = slot.lock().unwrap_or_else(PoisonError::into_inner).take() else {
                continue;
            };
            let old = &segment.data.columns;
            let mut columns = Columns::with_capacity(old.len(), old.title_bytes());
            let mut dead_bits = vec![0u64; segment.len.div_ceil(64)];
            for (p, &i) in built.order.iter().enumerate() {
                let i = i as usize;
                if segment.is_dead(i) {
                    dead_bits[p / 64] |= 1 << (p % 64);
                } else {
                    ids.set(old.id(i), Location::Slot(segment.start + p));
                }
                columns.push(old.id(i), old.hashes[i], old.title(i));
            }
            columns.trim();
            // Copied here rather than moved: whatever the build allocated (results and
            // scratch alike) is then freed together, where it was allocated, instead of
            // pinning part of that thread's allocator arena for the life of the index. With
            // the moved structures a server's RSS grew by about 70 bytes an entry.
            segment.data = Arc::new(SegmentData {
                columns,
                tree: Some(built.tree.clone()),
                mih: built.mih.clone(),
            });
            drop(built);
            segment.dead_bits = Arc::new(dead_bits);
            segment.build = None;
        }
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
        s.data.columns.title(p)
    }

    /// Live slots, in slot order.
    pub fn live_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.segments
            .iter()
            .flat_map(|s| (0..s.len).filter(|&p| !s.is_dead(p)).map(|p| s.start + p))
    }

    /// The `n` live entries with the smallest ids at or above `start`, as `(id, slot)` in id
    /// order. One pass over the ids and a heap of `n`: O(len · log n), from the store alone,
    /// so a read that holds only the store can walk it.
    pub fn live_ids_from(&self, start: u64, n: usize) -> Vec<(u64, usize)> {
        let mut best: BinaryHeap<(u64, usize)> = BinaryHeap::with_capacity(n.min(1 << 16) + 1);
        if n == 0 {
            return Vec::new();
        }
        for slot in self.live_slots() {
            let id = self.id(slot);
            if id < start {
                continue;
            }
            if best.len() < n {
                best.push((id, slot));
            } else if best.peek().is_some_and(|&(worst, _)| id < worst) {
                best.pop();
                best.push((id, slot));
            }
        }
        best.into_sorted_vec()
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
                (n + s.len, t + s.data.columns.title_bytes())
            });
        let mut merged = Columns::with_capacity(len, title_bytes);
        for s in &self.segments[first..] {
            for p in (0..s.len).filter(|&p| !s.is_dead(p)) {
                merged.push(s.id(p), s.hashes()[p], s.data.columns.title(p));
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
        let len = merged.len();
        let multi_index = self.wants_multi_index(len, self.live + len);
        let (data, build) = if len >= self.deferred_build_min_len {
            // Laid out as merged, searched by scanning, until a job builds the rest.
            for (p, id) in merged.ids().iter().enumerate() {
                ids.set(id, Location::Slot(start + p));
            }
            merged.trim();
            let data = Arc::new(SegmentData {
                columns: merged,
                tree: None,
                mih: None,
            });
            let slot = Arc::new(Mutex::new(None));
            self.jobs.push(BuildJob {
                data: data.clone(),
                slot: slot.clone(),
                multi_index,
            });
            (data, Some(slot))
        } else {
            let (tree, order) = MvpTree::build(&merged.hashes);
            let mut columns = Columns::with_capacity(merged.len(), merged.title_bytes());
            for &i in &order {
                let i = i as usize;
                ids.set(merged.id(i), Location::Slot(start + columns.len()));
                columns.push(merged.id(i), merged.hashes[i], merged.title(i));
            }
            drop(merged);
            columns.trim();
            let mih = multi_index.then(|| MultiIndex::build(&columns.hashes));
            let tree = Some(tree);
            (Arc::new(SegmentData { columns, tree, mih }), None)
        };
        self.segments.push(Segment {
            start,
            len,
            dead: 0,
            data,
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
                tree_nodes: s.tree().map_or(0, |t| t.node_count()),
                tree_depth: s.tree().map_or(0, |t| t.depth()),
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
                    std::mem::size_of::<SegmentData<C>>()
                        + s.data.columns.memory_bytes()
                        + s.dead_bits.capacity() * 8
                        + s.tree().map_or(0, |t| t.memory_bytes())
                        + s.mih().map_or(0, |m| m.memory_bytes())
                })
                .sum::<usize>()
    }
}
