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

use std::cell::Cell;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::columns::Columns;
use crate::hamming::{scan, scan_many};
use crate::idmap::IdMap;
use crate::index::{Match, Pair};
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
struct SegmentData {
    columns: Columns,
    /// `None` while the segment waits for its structures to be built elsewhere (see
    /// [`BuildJob`]): it is scanned meanwhile.
    tree: Option<MvpTree>,
    mih: Option<MultiIndex>,
}

/// What a deferred build hands back: the search order and the structures over it.
#[derive(Debug)]
struct Built {
    order: Vec<u32>,
    tree: MvpTree,
    mih: Option<MultiIndex>,
}

type BuildSlot = Mutex<Option<Built>>;

/// The expensive half of a rebuild (the MVP-tree and the multi-index tables), split off so a
/// face can run it on another thread: [`BuildJob::run`] anywhere, then
/// [`crate::Index::install_builds`] where the index lives. Until then the new segment answers
/// by scanning, so answers never wait for it and never differ.
#[derive(Debug)]
pub struct BuildJob {
    data: Arc<SegmentData>,
    slot: Arc<BuildSlot>,
    multi_index: bool,
}

impl BuildJob {
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
            let ordered: Vec<u64> = order.iter().map(|&i| hashes[i as usize]).collect();
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
pub struct Segment {
    start: usize,
    len: usize,
    dead: usize,
    data: Arc<SegmentData>,
    dead_bits: Arc<Vec<u64>>,
    /// Where a deferred build of this segment's structures will land.
    build: Option<Arc<BuildSlot>>,
}

impl Segment {
    fn live(&self) -> usize {
        self.len - self.dead
    }

    #[inline]
    fn is_dead(&self, p: usize) -> bool {
        self.dead_bits[p / 64] >> (p % 64) & 1 == 1
    }

    #[inline]
    fn hashes(&self) -> &[u64] {
        &self.data.columns.hashes
    }

    #[inline]
    fn id(&self, p: usize) -> u64 {
        self.data.columns.ids[p]
    }

    fn mih(&self) -> Option<&MultiIndex> {
        self.data.mih.as_ref()
    }

    fn tree(&self) -> Option<&MvpTree> {
        self.data.tree.as_ref()
    }

    fn range_plan(&self, plan: Plan, radius: u32) -> Plan {
        match (plan, self.mih()) {
            (Plan::Auto, mih) => plan::choose_range(self.len, mih, radius),
            (Plan::MultiIndex, None) => Plan::Scan,
            (Plan::Tree, _) if self.tree().is_none() => Plan::Scan,
            (forced, _) => forced,
        }
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
pub struct Store {
    segments: Vec<Segment>,
    live: usize,
    multi_index_min_len: usize,
    /// Rebuilds of at least this many entries leave their structures to a [`BuildJob`]
    /// (`usize::MAX`: never).
    deferred_build_min_len: usize,
    /// Jobs made and not yet taken by [`Store::take_build_jobs`].
    jobs: Vec<BuildJob>,
}

impl Clone for Store {
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

impl Default for Store {
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

/// The best `k` matches seen so far within `max_distance`: a max-heap on `(distance, id)`.
///
/// Invariant: the heap holds at most `k` matches, all within `max_distance`.
pub(crate) struct TopK {
    k: usize,
    max_distance: u32,
    heap: BinaryHeap<Match>,
}

impl TopK {
    pub(crate) fn new(k: usize, max_distance: u32) -> TopK {
        TopK {
            k,
            max_distance,
            heap: BinaryHeap::with_capacity(k.min(1 << 16) + 1),
        }
    }

    fn full(&self) -> bool {
        self.heap.len() >= self.k
    }

    /// Largest distance that can still enter.
    #[inline]
    fn bound(&self) -> u32 {
        if self.full() {
            self.heap.peek().map_or(0, |m| m.distance)
        } else {
            self.max_distance
        }
    }

    #[inline]
    pub(crate) fn offer(&mut self, candidate: Match) {
        if candidate.distance > self.max_distance {
            return;
        }
        if !self.full() {
            self.heap.push(candidate);
        } else if self.heap.peek().is_some_and(|worst| candidate < *worst) {
            self.heap.pop();
            self.heap.push(candidate);
        }
    }

    pub(crate) fn into_sorted(self) -> Vec<Match> {
        self.heap.into_sorted_vec()
    }
}

/// Collects matches for a range query up to a row cap: past `max_rows` it stops growing and
/// remembers that the answer overflowed, so no answer can grow memory past the cap.
struct Capped<'a> {
    out: &'a mut Vec<Match>,
    max_rows: usize,
    overflowed: bool,
}

impl Capped<'_> {
    #[inline]
    fn push(&mut self, m: Match) {
        if self.out.len() < self.max_rows {
            self.out.push(m);
        } else {
            self.overflowed = true;
        }
    }
}

impl Store {
    pub fn len(&self) -> usize {
        self.live
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
    pub fn take_build_jobs(&mut self) -> Vec<BuildJob> {
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
                    ids.set(old.ids[i], (segment.start + p) as u32);
                }
                columns.push(old.ids[i], old.hashes[i], old.title(i));
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
    fn locate(&self, slot: usize) -> (&Segment, usize) {
        let at = self.segments.partition_point(|s| s.start + s.len <= slot);
        let segment = &self.segments[at];
        (segment, slot - segment.start)
    }

    #[inline]
    pub fn hash(&self, slot: usize) -> u64 {
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
    pub fn insert(&mut self, batch: Columns, ids: &mut IdMap) {
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
    fn rebuild_from(&mut self, first: usize, batch: Columns, ids: &mut IdMap) {
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
            merged.push(batch.ids[i], batch.hashes[i], batch.title(i));
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
        let multi_index = len >= self.multi_index_min_len;
        let (data, build) = if len >= self.deferred_build_min_len {
            // Laid out as merged, searched by scanning, until a job builds the rest.
            for (p, &id) in merged.ids.iter().enumerate() {
                ids.set(id, (start + p) as u32);
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
                ids.set(merged.ids[i], (start + columns.len()) as u32);
                columns.push(merged.ids[i], merged.hashes[i], merged.title(i));
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

    /// Appends every live entry within `radius` (unsorted). Returns false, with `out` holding
    /// `max_rows` of them, when there are more than `max_rows`.
    pub fn range(
        &self,
        query: u64,
        radius: u32,
        plan: Plan,
        max_rows: usize,
        out: &mut Vec<Match>,
    ) -> bool {
        let mut sink = Capped {
            out,
            max_rows,
            overflowed: false,
        };
        for s in &self.segments {
            let hashes = s.hashes();
            let hit = |p: usize, distance: u32| {
                if !s.is_dead(p) {
                    sink.push(Match {
                        distance,
                        id: s.id(p),
                    });
                }
            };
            match s.range_plan(plan, radius) {
                Plan::MultiIndex => s
                    .mih()
                    .expect("plan checked")
                    .range(hashes, query, radius, hit),
                Plan::Tree => s
                    .tree()
                    .expect("plan checked")
                    .range(hashes, query, radius, hit),
                _ => scan(hashes, query, radius, hit),
            }
            if sink.overflowed {
                return false;
            }
        }
        true
    }

    /// Range queries for many hashes; `out[i]` gets the answers for `queries[i]` (unsorted).
    /// Returns false as soon as the answers together hold more than `max_rows` rows (the
    /// answers are then incomplete and memory stayed within the cap).
    pub fn range_many(
        &self,
        queries: &[u64],
        radius: u32,
        plan: Plan,
        max_rows: usize,
        out: &mut [Vec<Match>],
    ) -> bool {
        let rows = Cell::new(0usize);
        let overflowed = Cell::new(false);
        for s in &self.segments {
            let hashes = s.hashes();
            let chosen = match (plan, s.mih()) {
                (Plan::Auto, Some(mih))
                    if plan::multi_index_cost(mih, radius as usize + 1)
                        >= plan::batch_scan_cost(s.len) =>
                {
                    Plan::Scan
                }
                _ => s.range_plan(plan, radius),
            };
            let record = |out: &mut [Vec<Match>], qi: usize, p: usize, distance: u32| {
                if !s.is_dead(p) {
                    if rows.get() < max_rows {
                        rows.set(rows.get() + 1);
                        out[qi].push(Match {
                            distance,
                            id: s.id(p),
                        });
                    } else {
                        overflowed.set(true);
                    }
                }
            };
            if chosen == Plan::Scan {
                // In slices of queries, so that an overflow stops the work soon.
                for (c, group) in queries.chunks(64).enumerate() {
                    scan_many(hashes, group, radius, |qi, p, distance| {
                        record(out, c * 64 + qi, p, distance)
                    });
                    if overflowed.get() {
                        return false;
                    }
                }
                continue;
            }
            for (qi, &q) in queries.iter().enumerate() {
                let hit = |p: usize, distance: u32| record(&mut *out, qi, p, distance);
                match chosen {
                    Plan::MultiIndex => {
                        s.mih().expect("plan checked").range(hashes, q, radius, hit)
                    }
                    _ => s
                        .tree()
                        .expect("plan checked")
                        .range(hashes, q, radius, hit),
                }
                if overflowed.get() {
                    return false;
                }
            }
        }
        true
    }

    /// The `k` nearest live entries within `max_distance` that `accept` lets through, sorted.
    /// A bounded range query (`LIMIT`) is this search: the bound shrinks as the best `k` fill
    /// in, so its work falls with `k` and its memory is `k` rows.
    pub fn knn(
        &self,
        query: u64,
        k: usize,
        max_distance: u32,
        plan: Plan,
        accept: impl Fn(&Match) -> bool,
    ) -> Vec<Match> {
        let mut top = TopK::new(k, max_distance);
        if k == 0 {
            return Vec::new();
        }
        // Largest segments first: they fill the heap, and smaller ones only need to beat it.
        let mut order: Vec<&Segment> = self.segments.iter().collect();
        order.sort_by_key(|s| std::cmp::Reverse(s.live()));
        for s in order {
            let hashes = s.hashes();
            let offer = |top: &mut TopK, p: usize, distance: u32| {
                if !s.is_dead(p) {
                    let m = Match {
                        distance,
                        id: s.id(p),
                    };
                    if accept(&m) {
                        top.offer(m);
                    }
                }
            };
            // Auto probes the multi-index, for near neighbours only, while that stays cheap:
            // near queries (the usual case for duplicate search) finish there. Then it decides
            // once: finish probing if the k found so far are all near and the rest is cheaper
            // than a scan, else scan.
            let (chosen, mut budget) = match (plan, s.mih()) {
                (Plan::Auto, Some(_)) => (Plan::MultiIndex, plan::knn_probe_budget(s.len)),
                (Plan::Auto, None) | (Plan::MultiIndex, None) => (Plan::Scan, 0.0),
                (Plan::Tree, _) if s.tree().is_none() => (Plan::Scan, 0.0),
                (forced, _) => (forced, f64::INFINITY),
            };
            match chosen {
                Plan::MultiIndex => {
                    let mih = s.mih().expect("plan checked");
                    // While probing, hashes farther than the cap are not offered; the decision
                    // below accounts for them.
                    // A search bounded by a radius (a LIMIT query, a page of pairs) offers
                    // every candidate within it: the heap never sees farther ones anyway.
                    let mut cap = if !budget.is_finite() {
                        crate::MAX_RADIUS
                    } else if max_distance < crate::MAX_RADIUS {
                        max_distance.max(plan::KNN_PROBE_RADIUS)
                    } else {
                        plan::KNN_PROBE_RADIUS
                    };
                    let mut spent = 0.0;
                    for step in 0..mih.step_count() {
                        // Steps 0..step found every entry within step - 1 of the query, and
                        // while probing, every entry within the cap was offered.
                        if top.bound() < step as u32 && top.bound() <= cap {
                            break;
                        }
                        if spent > budget {
                            let finish = plan::multi_index_cost_between(mih, step, top.bound());
                            // Entries skipped for the cap lie beyond it, so beyond the k-th
                            // (or beyond `max_distance`, the bound of a heap not yet full).
                            if top.bound() <= cap && finish < plan::scan_cost(s.len) {
                                budget = f64::INFINITY;
                            } else {
                                // Finish with a scan: what the steps did not report, either
                                // because a later step owns it or because it lay past the cap.
                                for (b, block) in hashes.chunks(1024).enumerate() {
                                    let bound = top.bound();
                                    scan(block, query, bound, |p, d| {
                                        let p = b * 1024 + p;
                                        if d > cap || mih.owner_step(hashes[p] ^ query) >= step {
                                            offer(&mut top, p, d)
                                        }
                                    });
                                }
                                break;
                            }
                            cap = crate::MAX_RADIUS;
                        }
                        let bound = top.bound().min(cap);
                        mih.step(hashes, query, step, bound, |p, d| offer(&mut top, p, d));
                        spent += plan::multi_index_cost_of_step(mih, step);
                    }
                }
                Plan::Tree => {
                    let mut visitor = TreeKnn {
                        top: &mut top,
                        hashes,
                        query,
                        offer: &offer,
                    };
                    s.tree()
                        .expect("plan checked")
                        .best_first(hashes, query, &mut visitor);
                }
                _ => {
                    for (b, block) in hashes.chunks(1024).enumerate() {
                        let bound = top.bound();
                        scan(block, query, bound, |p, d| offer(&mut top, b * 1024 + p, d));
                    }
                }
            }
        }
        top.into_sorted()
    }

    /// Every unordered pair of live entries within `radius` (unsorted, `a < b`), or `None` as
    /// soon as there are more than `max_rows` of them: the join stops there, so neither its
    /// time nor its memory grows with the pairs it would have found.
    ///
    /// Joins all segments at once: their live hashes are gathered into one array, then joined
    /// by a temporary multi-index ([`MultiIndex::self_join`]) or, when a scan is cheaper (small
    /// indexes, wide radii) or forced, by a blocked scan of every pair. [`Plan::Tree`] queries
    /// each entry's segment tree instead (for testing that structure; it is never faster).
    pub fn pairs(&self, radius: u32, plan: Plan, max_rows: usize) -> Option<Vec<Pair>> {
        let slots: Vec<usize> = self.live_slots().collect();
        let hashes: Vec<u64> = slots.iter().map(|&s| self.hash(s)).collect();
        let mut out = Vec::new();
        let overflowed = Cell::new(false);
        let mut emit = |a: usize, b: usize, distance: u32| {
            if out.len() >= max_rows {
                overflowed.set(true);
                return false;
            }
            let (x, y) = (self.id(slots[a]), self.id(slots[b]));
            out.push(Pair {
                a: x.min(y),
                b: x.max(y),
                distance,
            });
            true
        };
        let chosen = match plan {
            Plan::Auto if hashes.len() < self.multi_index_min_len => Plan::Scan,
            Plan::Auto => {
                let mih = MultiIndex::build_with(&hashes, true);
                // Half of one query per entry (each pair is read once), candidates read in
                // sequence, against half a scan per entry.
                let per_entry: f64 = (0..=radius as usize)
                    .map(|s| mih.step_work(s).candidates * plan::INLINE_CANDIDATE_NS)
                    .sum();
                if per_entry < plan::batch_scan_cost(hashes.len()) {
                    mih.self_join(radius, &mut emit);
                    return (!overflowed.get()).then_some(out);
                }
                Plan::Scan
            }
            forced => forced,
        };
        match chosen {
            Plan::MultiIndex => MultiIndex::build_with(&hashes, true).self_join(radius, &mut emit),
            Plan::Tree => {
                'anchors: for (qa, &slot) in slots.iter().enumerate() {
                    let q = self.hash(slot);
                    let mut found = Vec::new();
                    for t in &self.segments {
                        let mut keep = |tp: usize, d: u32| {
                            if !t.is_dead(tp) {
                                found.push((t.start + tp, d))
                            }
                        };
                        match t.tree() {
                            Some(tree) => tree.range(t.hashes(), q, radius, keep),
                            None => scan(t.hashes(), q, radius, &mut keep),
                        }
                    }
                    for (other, d) in found {
                        if other > slot {
                            let qb = slots.partition_point(|&s| s < other);
                            if !emit(qa, qb, d) {
                                break 'anchors;
                            }
                        }
                    }
                }
            }
            _ => {
                // In slices of anchors, so that an overflow stops the work soon.
                const SLICE: usize = 64;
                for (c, group) in hashes.chunks(SLICE).enumerate() {
                    let first = c * SLICE;
                    scan_many(&hashes[first..], group, radius, |qi, p, d| {
                        if p > qi && !overflowed.get() {
                            emit(first + qi, first + p, d);
                        }
                    });
                    if overflowed.get() {
                        break;
                    }
                }
            }
        }
        (!overflowed.get()).then_some(out)
    }

    pub fn segment_stats(&self) -> Vec<SegmentStats> {
        self.segments
            .iter()
            .map(|s| SegmentStats {
                len: s.len,
                dead: s.dead,
                tree_nodes: s.tree().map_or(0, MvpTree::node_count),
                tree_depth: s.tree().map_or(0, MvpTree::depth),
                multi_index_fields: s.mih().map_or(Vec::new(), |m| m.field_widths()),
            })
            .collect()
    }

    /// Estimated nanoseconds of a range query at `radius` on this machine (the planner's
    /// figures, summed over the segments): for a face deciding whether a search is worth
    /// moving off its event loop, never for the answer.
    pub fn range_cost_ns(&self, radius: u32) -> f64 {
        self.segments
            .iter()
            .map(|s| match (s.range_plan(Plan::Auto, radius), s.mih()) {
                (Plan::MultiIndex, Some(mih)) => plan::multi_index_cost(mih, radius as usize + 1),
                _ => plan::scan_cost(s.len),
            })
            .sum()
    }

    /// Estimated nanoseconds of scanning every segment: the most a k-nearest search costs
    /// before it offers its candidates.
    pub fn scan_cost_ns(&self) -> f64 {
        self.segments.iter().map(|s| plan::scan_cost(s.len)).sum()
    }

    /// For the largest segment: the plan [`Plan::Auto`] takes at each radius 0..=64.
    pub fn plans_by_radius(&self) -> Vec<Plan> {
        let largest = self.segments.iter().max_by_key(|s| s.len);
        (0..=crate::MAX_RADIUS)
            .map(|r| largest.map_or(Plan::Scan, |s| s.range_plan(Plan::Auto, r)))
            .collect()
    }

    /// Bytes held, counting shared segment data as this store's own (a snapshot still
    /// holding replaced segments keeps them alive, and Redis counts that memory too).
    pub fn memory_bytes(&self) -> usize {
        self.segments.capacity() * std::mem::size_of::<Segment>()
            + self
                .segments
                .iter()
                .map(|s| {
                    std::mem::size_of::<SegmentData>()
                        + s.data.columns.memory_bytes()
                        + s.dead_bits.capacity() * 8
                        + s.tree().map_or(0, MvpTree::memory_bytes)
                        + s.mih().map_or(0, |m| m.memory_bytes())
                })
                .sum::<usize>()
    }
}

struct TreeKnn<'a, F> {
    top: &'a mut TopK,
    hashes: &'a [u64],
    query: u64,
    offer: &'a F,
}

impl<F: Fn(&mut TopK, usize, u32)> crate::mvp::LeafVisitor for TreeKnn<'_, F> {
    fn bound(&self) -> u32 {
        self.top.bound()
    }

    fn visit(&mut self, start: usize, end: usize) {
        let bound = self.top.bound();
        let (top, offer) = (&mut *self.top, self.offer);
        scan(&self.hashes[start..end], self.query, bound, |p, d| {
            offer(top, start + p, d)
        });
    }
}
