//! Query execution over the store: range, batch range, k-nearest and self-join searches,
//! segment by segment, each with the plan [`crate::plan`] picks for it. Nothing here changes
//! the store; every answer is exact whatever the plan.

use std::cell::Cell;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::answer::{
    merge_sorted_pairs, pack_pair, packed_id_bits, packed_pair_bits, sort_pairs, Match, Pair,
    PairRun,
};
use crate::columns::Ids;
use crate::hamming::Code;
use crate::hamming::{scan, scan_many, scan_many_by_block, SCAN_MANY_BLOCK};
use crate::mih::MultiIndex;
use crate::plan::{self, Plan};
use crate::prefetch::prefetch;
use crate::radix::sort_keys;
use crate::store::{Segment, Store};

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

/// Hits a scan collects, as positions, before it resolves their ids in one pass. Read among
/// the scan's own work, each id that misses the caches waits alone (a prefetch of each line
/// does not change that); read back to back in a loop of their own, many are in flight at
/// once. Measured on 1M codes (AMD EPYC, builds alternated): one query at r20 (1,800 rows)
/// 300-365 µs with ids read as hits come, 211-213 µs resolved in passes; at r24 (30,000 rows)
/// 1,060-1,140 against 910-980. Without reading ids at all r24 took 475 µs: the ids, 8 bytes
/// an entry in a column as large as the hashes, are most of a wide answer's cost.
///
/// Each hit also asks for its id's line as it is found, so that the line is on its way while
/// the scan goes on and is in cache by the time the pass reads it: one query at r24 on 1M
/// codes, alternated runs on a quiet machine, median of medians, 783 → 759 µs (AVX2), 1,102
/// → 1,054 (portable), AVX-512 level (675 → 674).
const RESOLVE_ROWS: usize = 1024;

/// A scan's hit; its id is read in a pass of its own.
#[derive(Clone, Copy)]
struct Hit {
    query: u32,
    distance: u32,
    position: usize,
    id: u64,
}

/// Scans segment `s` for `queries` (at most 64), handing each live hit to
/// `keep(query index, row)` until that returns false. Returns whether the scan ran to its end.
/// Hits wait in `hits` as positions until [`RESOLVE_ROWS`] of them have their ids read
/// together; `hits` is left empty.
fn scan_resolving_ids<C: Code>(
    s: &Segment<C>,
    queries: &[C],
    radius: u32,
    hits: &mut Vec<Hit>,
    mut keep: impl FnMut(usize, Match) -> bool,
) -> bool {
    // A segment with nothing deleted (the usual case) skips a bit test per row.
    let any_dead = s.dead > 0;
    let ids = s.ids();
    let mut resolve = |hits: &mut Vec<Hit>| {
        match ids {
            Ids::Narrow(ids) => hits
                .iter_mut()
                .for_each(|hit| hit.id = u64::from(ids[hit.position])),
            Ids::Wide(ids) => hits.iter_mut().for_each(|hit| hit.id = ids[hit.position]),
            &Ids::Run { first, step, .. } => hits
                .iter_mut()
                .for_each(|hit| hit.id = first + hit.position as u64 * step),
        }
        let mut going = true;
        for hit in hits.iter() {
            if !(any_dead && s.is_dead(hit.position)) {
                let row = Match {
                    distance: hit.distance,
                    id: hit.id,
                };
                going = keep(hit.query as usize, row);
                if !going {
                    break;
                }
            }
        }
        hits.clear();
        going
    };
    let mut complete = true;
    scan_many_by_block(
        s.hashes(),
        queries,
        radius,
        hits,
        |hits, qi, position, distance| {
            // A hint only: the pass below reads the id.
            match ids {
                Ids::Narrow(ids) => prefetch(&ids[position]),
                Ids::Wide(ids) => prefetch(&ids[position]),
                Ids::Run { .. } => {}
            }
            hits.push(Hit {
                query: qi as u32,
                distance,
                position,
                id: 0,
            })
        },
        |hits| {
            complete = hits.len() < RESOLVE_ROWS || resolve(hits);
            complete
        },
    );
    complete && resolve(hits)
}

/// Self-joins of fewer entries run on one thread: starting threads would cost more.
const PARALLEL_JOIN_MIN: usize = 20_000;

/// Rows a join thread finds before it adds them to the shared row count. One count that
/// every thread bumps on every row is a cache line the cores keep taking from each other:
/// it held the two-thread join of 1M clustered hashes to 1.6x one thread. A thread may so
/// hold this many rows past the cap before it stops; the answer is refused all the same.
const COUNT_BATCH: usize = 1024;

impl<C: Code> Store<C> {
    /// Appends every live entry within `radius` (unsorted). Returns false, with `out` holding
    /// `max_rows` of them, when there are more than `max_rows`.
    pub fn range(
        &self,
        query: C,
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
        // Scan hits waiting for their ids: one buffer for every segment.
        let mut hits = Vec::new();
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
                _ => {
                    scan_resolving_ids(s, &[query], radius, &mut hits, |_, m| {
                        sink.push(m);
                        !sink.overflowed
                    });
                }
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
        queries: &[C],
        radius: u32,
        plan: Plan,
        max_rows: usize,
        out: &mut [Vec<Match>],
    ) -> bool {
        self.range_many_into(queries, radius, plan, max_rows, &mut |qi, m| {
            out[qi].push(m)
        })
    }

    /// [`Store::range_many`] handing each answer row to `sink(query index, row)`, in no
    /// particular order: a caller that lays the rows out itself needs no vector per query.
    pub fn range_many_into<S: FnMut(usize, Match)>(
        &self,
        queries: &[C],
        radius: u32,
        plan: Plan,
        max_rows: usize,
        sink: &mut S,
    ) -> bool {
        let rows = Cell::new(0usize);
        let overflowed = Cell::new(false);
        // Scan hits waiting for their ids: one buffer for every segment and slice.
        let mut hits = Vec::new();
        for s in &self.segments {
            let hashes = s.hashes();
            // Scans and probes below take the queries 64 at a time.
            let group = queries.len().min(64);
            let chosen = plan::batch_range_plan(plan, s.len, s.mih(), radius, group);
            // Takes live rows only.
            let record = |sink: &mut S, qi: usize, m: Match| {
                if rows.get() < max_rows {
                    rows.set(rows.get() + 1);
                    sink(qi, m);
                } else {
                    overflowed.set(true);
                }
            };
            let record_live = |sink: &mut S, qi: usize, p: usize, distance: u32| {
                if !s.is_dead(p) {
                    let id = s.id(p);
                    record(sink, qi, Match { distance, id });
                }
            };
            if chosen == Plan::Scan {
                // In slices of queries, so that an overflow stops the work soon.
                for (c, group) in queries.chunks(64).enumerate() {
                    let complete = scan_resolving_ids(s, group, radius, &mut hits, |qi, m| {
                        record(sink, c * 64 + qi, m);
                        !overflowed.get()
                    });
                    if !complete {
                        return false;
                    }
                }
                continue;
            }
            // Probed (the plan's only other pick): queries probe together so that their
            // bucket reads overlap; in slices, so that an overflow stops the work soon.
            let mih = s.mih().expect("plan checked");
            for (c, group) in queries.chunks(64).enumerate() {
                mih.range_many(hashes, group, radius, |qi, p, distance| {
                    record_live(&mut *sink, c * 64 + qi, p, distance)
                });
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
        query: C,
        k: usize,
        max_distance: u32,
        plan: Plan,
        accept: impl Fn(&Match) -> bool,
    ) -> Vec<Match> {
        let mut top = TopK::new(k, max_distance);
        if k == 0 {
            return Vec::new();
        }
        for s in self.segments_largest_first() {
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
            let rest = knn_probe(s, query, &mut top, plan, false, &offer);
            if rest == Remaining::Nothing {
                continue;
            }
            for (b, block) in hashes.chunks(1024).enumerate() {
                let bound = top.bound();
                scan(block, query, bound, |p, d| {
                    let p = b * 1024 + p;
                    if rest.wants(s.mih(), hashes[p].xor(query)) {
                        offer(&mut top, p, d)
                    }
                });
            }
        }
        top.into_sorted()
    }

    /// [`Store::knn`] of every query (within [`Code::BITS`], every live entry accepted):
    /// `answers[i]` is what `knn(queries[i], ..)` gives. The queries a segment's probe leaves
    /// unfinished share one blocked scan of it, each with its own shrinking bound, so the
    /// segment is read once for all of them (bit-sliced for 64-bit codes).
    pub fn knn_many(&self, queries: &[C], k: usize, plan: Plan) -> Vec<Vec<Match>> {
        if k == 0 {
            return vec![Vec::new(); queries.len()];
        }
        let mut tops: Vec<TopK> = queries.iter().map(|_| TopK::new(k, C::BITS)).collect();
        for s in self.segments_largest_first() {
            let hashes = s.hashes();
            let offer = |top: &mut TopK, p: usize, distance: u32| {
                if !s.is_dead(p) {
                    top.offer(Match {
                        distance,
                        id: s.id(p),
                    });
                }
            };
            let mut pending: Vec<(usize, Remaining)> = Vec::new();
            for (qi, (&q, top)) in queries.iter().zip(&mut tops).enumerate() {
                let rest = knn_probe(s, q, top, plan, true, &offer);
                if rest != Remaining::Nothing {
                    pending.push((qi, rest));
                }
            }
            if pending.is_empty() {
                continue;
            }
            let pending_queries: Vec<C> = pending.iter().map(|&(qi, _)| queries[qi]).collect();
            // Each query's bound as its heap last left it: read before each block.
            let bounds: Vec<Cell<u32>> = pending
                .iter()
                .map(|&(qi, _)| Cell::new(tops[qi].bound()))
                .collect();
            // A short first block: a heap the probe left empty takes every hash of its first
            // block, so that block is kept small for the bounds to fall early.
            let first_len = hashes.len().min(SCAN_MANY_BLOCK / 8);
            let blocks = std::iter::once(0..first_len).chain(
                (first_len..hashes.len())
                    .step_by(SCAN_MANY_BLOCK)
                    .map(|b| b..(b + SCAN_MANY_BLOCK).min(hashes.len())),
            );
            for range in blocks {
                let (first, block) = (range.start, &hashes[range]);
                C::scan_block_many(
                    crate::hamming::kernel(),
                    block,
                    &pending_queries,
                    |j| bounds[j].get(),
                    &mut |j, i, d| {
                        let (qi, rest) = pending[j];
                        let p = first + i;
                        if rest.wants(s.mih(), hashes[p].xor(queries[qi])) {
                            offer(&mut tops[qi], p, d);
                            bounds[j].set(tops[qi].bound());
                        }
                    },
                );
            }
        }
        tops.into_iter().map(TopK::into_sorted).collect()
    }

    /// Largest segments first: for a k-nearest search they fill the heap, and smaller ones
    /// only need to beat it.
    fn segments_largest_first(&self) -> Vec<&Segment<C>> {
        let mut order: Vec<&Segment<C>> = self.segments.iter().collect();
        order.sort_by_key(|s| std::cmp::Reverse(s.live()));
        order
    }

    /// The multi-index self-join split over `threads` threads (the calling one alone when
    /// `threads` is 1): a sorted run per thread, of packed keys while the ids fit.
    fn multi_index_join(
        &self,
        mih: &MultiIndex<C>,
        ids: &[u64],
        radius: u32,
        max_rows: usize,
        threads: usize,
    ) -> Option<Vec<PairRun>> {
        let rows = AtomicUsize::new(0);
        let overflowed = AtomicBool::new(false);
        let id_bits = packed_id_bits(ids.iter().copied().max().unwrap_or(0));
        let join = |part: usize| {
            // The row cap, shared by every thread: false once it is passed. Each thread adds
            // its rows to the shared count a batch at a time.
            let mut unflushed = 0;
            let mut take_row = || {
                unflushed += 1;
                if unflushed < COUNT_BATCH {
                    return true;
                }
                let taken = rows.fetch_add(unflushed, Ordering::Relaxed) + unflushed <= max_rows
                    && !overflowed.load(Ordering::Relaxed);
                unflushed = 0;
                if !taken {
                    overflowed.store(true, Ordering::Relaxed);
                }
                taken
            };
            let pair = |a: usize, b: usize, distance: u32| {
                let (x, y) = (ids[a], ids[b]);
                Pair {
                    a: x.min(y),
                    b: x.max(y),
                    distance,
                }
            };
            // Each thread sorts its own rows: the merge then only interleaves.
            match id_bits {
                Some(id_bits) => {
                    let mut keys = Vec::new();
                    mih.self_join_part(radius, part, threads, |a, b, distance| {
                        take_row() && {
                            keys.push(pack_pair(id_bits, pair(a, b, distance)));
                            true
                        }
                    });
                    sort_keys(&mut keys, &mut Vec::new(), packed_pair_bits(id_bits));
                    PairRun::Packed { keys, id_bits }
                }
                None => {
                    let mut out = Vec::new();
                    mih.self_join_part(radius, part, threads, |a, b, distance| {
                        take_row() && {
                            out.push(pair(a, b, distance));
                            true
                        }
                    });
                    sort_pairs(&mut out);
                    PairRun::Rows(out)
                }
            }
        };
        let runs: Vec<PairRun> = if threads <= 1 {
            vec![join(0)]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|part| scope.spawn(move || join(part)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            })
        };
        let found: usize = runs.iter().map(PairRun::len).sum();
        if overflowed.load(Ordering::Relaxed) || found > max_rows {
            return None;
        }
        Some(runs)
    }

    /// Every unordered pair of live entries within `radius` (`a < b`), sorted by distance,
    /// then ids ([`sort_pairs`]), or `None` as soon as there are more than `max_rows` of them: the join stops there, so neither its
    /// time nor its memory grows with the pairs it would have found.
    ///
    /// Joins all segments at once: their live hashes are gathered into one array, then joined
    /// by a temporary multi-index ([`MultiIndex::self_join`]) or, when a scan is cheaper (small
    /// indexes, wide radii) or forced, by a blocked scan of every pair.
    pub fn pairs(&self, radius: u32, plan: Plan, max_rows: usize) -> Option<Vec<Pair>> {
        self.pairs_on_threads(radius, plan, max_rows, 1)
    }

    /// [`Store::pairs`] on up to `threads` threads; the same answer.
    pub fn pairs_on_threads(
        &self,
        radius: u32,
        plan: Plan,
        max_rows: usize,
        threads: usize,
    ) -> Option<Vec<Pair>> {
        self.pairs_runs(radius, plan, max_rows, threads)
            .map(merge_sorted_pairs)
    }

    /// The rows of [`Store::pairs`] as runs, each in its order, that together hold each pair
    /// once: the multi-index join split over up to `threads` threads (its buckets
    /// interleaved, see [`MultiIndex::self_join_part`]), a run per thread; the other plans
    /// run on the calling thread, in one run. The row cap is shared: the threads stop once
    /// they found one row more.
    pub fn pairs_runs(
        &self,
        radius: u32,
        plan: Plan,
        max_rows: usize,
        threads: usize,
    ) -> Option<Vec<PairRun>> {
        let slots: Vec<usize> = self.live_slots().collect();
        let hashes: Vec<C> = slots.iter().map(|&s| self.hash(s)).collect();
        // Looked up once per entry, not twice per pair: a pair count can be many times the
        // entry count, and each lookup searches the segments.
        let ids: Vec<u64> = slots.iter().map(|&s| self.id(s)).collect();
        if plan != Plan::Scan {
            let threads = if slots.len() >= PARALLEL_JOIN_MIN {
                threads
            } else {
                1
            };
            let mih = (plan == Plan::MultiIndex || hashes.len() >= self.multi_index_min_len)
                .then(|| MultiIndex::build_on_threads(&hashes, true, threads))
                .filter(|mih| {
                    plan == Plan::MultiIndex
                        || plan::self_join_by_multi_index(mih, radius, hashes.len())
                });
            if let Some(mih) = mih {
                return self.multi_index_join(&mih, &ids, radius, max_rows, threads);
            }
        }
        let mut out = Vec::new();
        let overflowed = Cell::new(false);
        let mut emit = |a: usize, b: usize, distance: u32| {
            if out.len() >= max_rows {
                overflowed.set(true);
                return false;
            }
            let (x, y) = (ids[a], ids[b]);
            out.push(Pair {
                a: x.min(y),
                b: x.max(y),
                distance,
            });
            true
        };
        // The multi-index join returned above when it was forced or cheaper.
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
        if overflowed.get() {
            return None;
        }
        sort_pairs(&mut out);
        Some(vec![PairRun::Rows(out)])
    }

    /// Whether a batch of `queries` range queries at `radius` scans the largest segment once
    /// for all of them, rather than probing it query by query.
    pub fn batch_scans(&self, radius: u32, queries: usize) -> bool {
        self.segments.iter().max_by_key(|s| s.len).is_some_and(|s| {
            let group = queries.min(64);
            plan::batch_range_plan(Plan::Auto, s.len, s.mih(), radius, group) == Plan::Scan
        })
    }

    /// Estimated nanoseconds of a range query at `radius` on this machine (the planner's
    /// figures, summed over the segments): for a face deciding whether a search is worth
    /// moving off its event loop, never for the answer.
    pub fn range_cost_ns(&self, radius: u32) -> f64 {
        self.segments
            .iter()
            .map(|s| match (s.range_plan(Plan::Auto, radius), s.mih()) {
                (Plan::MultiIndex, Some(mih)) => plan::multi_index_cost(mih, radius as usize + 1),
                _ => plan::scan_cost::<C>(s.len),
            })
            .sum()
    }

    /// Estimated nanoseconds of scanning every segment: the most a k-nearest search costs
    /// before it offers its candidates.
    pub fn scan_cost_ns(&self) -> f64 {
        self.segments
            .iter()
            .map(|s| plan::scan_cost::<C>(s.len))
            .sum()
    }

    /// For the largest segment: the plan [`Plan::Auto`] takes at each radius 0..=[`Code::BITS`].
    pub fn plans_by_radius(&self) -> Vec<Plan> {
        let largest = self.segments.iter().max_by_key(|s| s.len);
        (0..=C::BITS)
            .map(|r| largest.map_or(Plan::Scan, |s| s.range_plan(Plan::Auto, r)))
            .collect()
    }
}

/// What a k-nearest search of one segment leaves for a scan of it to offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Remaining {
    /// Nothing: the probe finished the segment.
    Nothing,
    /// Every entry: nothing was offered yet.
    Everything,
    /// What probing steps `0..step` did not report: entries a later step owns.
    Unprobed { step: usize },
}

impl Remaining {
    /// Whether an entry differing from the query by `diff` is still to be offered. An entry
    /// a probing step skipped for lying past the heap's bound is left out too: the bound only
    /// falls, so it could never enter.
    #[inline]
    fn wants<C: Code>(self, mih: Option<&MultiIndex<C>>, diff: C) -> bool {
        match self {
            Remaining::Nothing => false,
            Remaining::Everything => true,
            Remaining::Unprobed { step } => mih.is_some_and(|mih| mih.owner_step(diff) >= step),
        }
    }
}

/// The first part of a k-nearest search of segment `s`: the multi-index probe, when its plan
/// picks it, offering what it finds to `top`; returns what a scan must still
/// offer. `batched`: that scan is shared with a batch's other queries, and so cheaper.
fn knn_probe<C: Code>(
    s: &Segment<C>,
    query: C,
    top: &mut TopK,
    plan: Plan,
    batched: bool,
    offer: &impl Fn(&mut TopK, usize, u32),
) -> Remaining {
    let hashes = s.hashes();
    // Probes up to its budget before it weighs the rest against a scan.
    let (chosen, budget) = plan::knn_plan(plan, s.len, s.mih(), batched);
    match chosen {
        Plan::MultiIndex => {
            let mih = s.mih().expect("plan checked");
            // Where the k-th nearest likely lies, were the segment's codes spread uniformly:
            // the bound the heap reaches once probing is done, long before it gets there.
            let likely = plan::median_kth_distance::<C>(s.len, top.k);
            let mut spent = 0.0;
            for step in 0..mih.step_count() {
                // Steps 0..step found every entry within step - 1 of the query.
                if top.bound() < step as u32 {
                    return Remaining::Nothing;
                }
                // Once the budget is spent, each step weighs finishing here against a scan,
                // priced to the likely bound until the search has passed it without finding
                // its k, and then to the heap's own bound.
                if spent > budget {
                    let until = if step as u32 <= likely {
                        top.bound().min(likely)
                    } else {
                        top.bound()
                    };
                    if !plan::knn_finish_by_probing(mih, step, until, s.len, batched) {
                        // The scan offers what the steps did not report: what later steps own.
                        return Remaining::Unprobed { step };
                    }
                }
                mih.step(hashes, query, step, top.bound(), |p, d| offer(top, p, d));
                spent += plan::multi_index_cost_of_step(mih, step);
            }
            Remaining::Nothing
        }
        _ => Remaining::Everything,
    }
}
