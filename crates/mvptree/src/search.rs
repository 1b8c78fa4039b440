//! Searches over the indexed entries, on the index itself or on a [`Snapshot`] of it taken
//! for another thread. Every answer is sorted by distance, then id (pairs: distance, then
//! ids) and exact; the plans only decide the work.

use std::sync::Arc;

use crate::answer::{sort_matches, Match, Pair};
use crate::columns::Columns;
use crate::cursor::PairsCursor;
use crate::hamming::Code;
use crate::idmap::{IdMap, Location};
use crate::plan::Plan;
use crate::store::Store;
#[cfg(doc)]
use crate::Index;
use crate::{Error, Result};

/// The indexed entries and the id map, both shared until written: cloning is a pointer per
/// segment, and a clone keeps answering from the entries as they were.
#[derive(Debug, Clone, Default)]
pub struct Snapshot<C: Code = u64> {
    pub(crate) store: Store<C>,
    pub(crate) ids: Arc<IdMap>,
}

impl<C: Code> Snapshot<C> {
    /// Adds a batch of entries to the store (ids must be new).
    pub(crate) fn insert(&mut self, batch: Columns<C>) {
        self.store.insert(batch, Arc::make_mut(&mut self.ids));
    }

    /// Deletes the entry at `slot` (its id already gone from the id map).
    pub(crate) fn kill(&mut self, slot: usize) {
        self.store.kill(slot, Arc::make_mut(&mut self.ids));
    }

    /// Indexed entries.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.len() == 0
    }

    /// Estimated nanoseconds of [`Snapshot::query`] at `radius` (see
    /// [`Store::range_cost_ns`]).
    pub fn range_cost_ns(&self, radius: u32) -> f64 {
        self.store.range_cost_ns(radius.min(C::BITS))
    }

    /// Whether a batch of `queries` at `radius` scans the index once for all of them (see
    /// [`Store::batch_scans`]).
    pub(crate) fn batch_scans(&self, radius: u32, queries: usize) -> bool {
        self.store.batch_scans(radius.min(C::BITS), queries)
    }

    /// Estimated nanoseconds of [`Snapshot::knn`] for `k` neighbours: at most a scan, plus
    /// the heap of `k`.
    pub fn knn_cost_ns(&self, k: usize) -> f64 {
        const HEAP_NS_PER_ROW: f64 = 20.0;
        self.store.scan_cost_ns() + k.min(self.len()) as f64 * HEAP_NS_PER_ROW
    }

    /// The title of an indexed entry (`None` for an id that was pending or absent when the
    /// snapshot was taken): what a search answer's ids are resolved with.
    pub fn title(&self, id: u64) -> Option<&[u8]> {
        self.ids.get(id).and_then(|at| match at {
            Location::Slot(slot) => Some(self.store.title(slot)),
            Location::Pending(_) => None,
        })
    }

    /// Every indexed entry within `radius` (inclusive; above [`Code::BITS`] acts as it), sorted by
    /// distance, then id.
    pub fn query(&self, hash: C, radius: u32) -> Vec<Match> {
        self.query_with(hash, radius, Plan::Auto)
    }

    /// [`Index::query`] with a forced plan (for tests and benchmarks; answers never differ).
    pub fn query_with(&self, hash: C, radius: u32, plan: Plan) -> Vec<Match> {
        let mut out = Vec::new();
        self.store
            .range(hash, radius.min(C::BITS), plan, usize::MAX, &mut out);
        sort_matches(&mut out);
        out
    }

    /// The first `limit` answers of [`Index::query`]. The search is bounded by the limit: it
    /// keeps the best `limit` so far and narrows the radius as they fill in, so `limit` 1 at
    /// a wide radius costs about one nearest-neighbour search, not the whole answer.
    pub fn query_limit(&self, hash: C, radius: u32, limit: usize) -> Vec<Match> {
        self.store
            .knn(hash, limit, radius.min(C::BITS), Plan::Auto, |_| true)
    }

    /// [`Index::query`] or, with `limit`, [`Index::query_limit`], refusing an answer of more
    /// than `max_rows` rows with [`Error::TooManyRows`] before it grows past that.
    pub fn query_bounded(
        &self,
        hash: C,
        radius: u32,
        limit: Option<usize>,
        max_rows: usize,
    ) -> Result<Vec<Match>> {
        let radius = radius.min(C::BITS);
        match limit {
            Some(limit) if limit <= max_rows => Ok(self.query_limit(hash, radius, limit)),
            Some(limit) => {
                // More rows asked for than allowed: find one more than allowed, to know.
                let found = self.query_limit(hash, radius, max_rows.saturating_add(1));
                if found.len() > max_rows {
                    return Err(Error::TooManyRows(max_rows));
                }
                Ok(found.into_iter().take(limit).collect())
            }
            None => {
                let mut out = Vec::new();
                if !self
                    .store
                    .range(hash, radius, Plan::Auto, max_rows, &mut out)
                {
                    return Err(Error::TooManyRows(max_rows));
                }
                sort_matches(&mut out);
                Ok(out)
            }
        }
    }

    /// [`Index::query`] for each hash: batches scan the index once for all of them when a
    /// scan is the cheaper plan.
    pub fn query_many(&self, hashes: &[C], radius: u32) -> Vec<Vec<Match>> {
        self.query_many_with(hashes, radius, Plan::Auto)
    }

    pub fn query_many_with(&self, hashes: &[C], radius: u32, plan: Plan) -> Vec<Vec<Match>> {
        let mut out = vec![Vec::new(); hashes.len()];
        self.store
            .range_many(hashes, radius.min(C::BITS), plan, usize::MAX, &mut out);
        for answers in &mut out {
            sort_matches(answers);
        }
        out
    }

    /// [`Index::query_many`], refusing answers that hold more than `max_rows` rows together.
    pub fn query_many_bounded(
        &self,
        hashes: &[C],
        radius: u32,
        max_rows: usize,
    ) -> Result<Vec<Vec<Match>>> {
        let mut out = self.query_many_unsorted(hashes, radius, max_rows)?;
        for answers in &mut out {
            sort_matches(answers);
        }
        Ok(out)
    }

    /// [`Snapshot::query_many_bounded`] with each answer left in search order, for a caller
    /// that sorts them into its own layout.
    /// Rows a range query of `radius` finds on uniformly spread codes: the snapshot's size
    /// times the chance that a random code lies within `radius`. Near-duplicate data finds
    /// more for queries near it; this only sizes work, never an answer.
    pub(crate) fn expected_rows(&self, radius: u32) -> f64 {
        // P(Binomial(BITS, 1/2) <= radius), term by term from 2^-BITS (representable for
        // every width up to 256).
        let n = C::BITS;
        let mut term = 0.5f64.powi(n as i32);
        let mut within = 0.0;
        for k in 0..=radius.min(n) {
            within += term;
            term *= f64::from(n - k) / f64::from(k + 1);
        }
        self.len() as f64 * within.min(1.0)
    }

    pub(crate) fn query_many_unsorted(
        &self,
        hashes: &[C],
        radius: u32,
        max_rows: usize,
    ) -> Result<Vec<Vec<Match>>> {
        let mut out = vec![Vec::new(); hashes.len()];
        if !self
            .store
            .range_many(hashes, radius.min(C::BITS), Plan::Auto, max_rows, &mut out)
        {
            return Err(Error::TooManyRows(max_rows));
        }
        Ok(out)
    }

    /// The `k` nearest indexed entries, sorted by distance, then id.
    pub fn knn(&self, hash: C, k: usize) -> Vec<Match> {
        self.knn_with(hash, k, Plan::Auto)
    }

    pub fn knn_with(&self, hash: C, k: usize, plan: Plan) -> Vec<Match> {
        self.store.knn(hash, k, C::BITS, plan, |_| true)
    }

    /// [`Snapshot::knn`] of every hash: the same answers, found by one shared scan per
    /// segment for the hashes whose probe does not finish them.
    pub fn knn_many(&self, hashes: &[C], k: usize) -> Vec<Vec<Match>> {
        self.knn_many_with(hashes, k, Plan::Auto)
    }

    pub fn knn_many_with(&self, hashes: &[C], k: usize, plan: Plan) -> Vec<Vec<Match>> {
        self.store.knn_many(hashes, k, plan)
    }

    /// [`Index::knn`], refused before any work when the answer would hold more than
    /// `max_rows` rows (it holds `min(k, len)`).
    pub fn knn_bounded(&self, hash: C, k: usize, max_rows: usize) -> Result<Vec<Match>> {
        if k.min(self.len()) > max_rows {
            return Err(Error::TooManyRows(max_rows));
        }
        Ok(self.knn(hash, k))
    }

    /// Every unordered pair of indexed entries within `radius`, as (smaller id, larger id,
    /// distance), sorted by distance, then ids.
    pub fn pairs(&self, radius: u32) -> Vec<Pair> {
        self.pairs_with(radius, Plan::Auto)
    }

    pub fn pairs_with(&self, radius: u32, plan: Plan) -> Vec<Pair> {
        self.store
            .pairs(radius.min(C::BITS), plan, usize::MAX)
            .expect("no row cap")
    }

    /// [`Index::pairs`], refusing an answer of more than `max_rows` pairs: the join stops as
    /// soon as it finds one more, so neither time nor memory grows with the whole answer.
    pub fn pairs_bounded(&self, radius: u32, max_rows: usize) -> Result<Vec<Pair>> {
        self.pairs_on_threads(radius, max_rows, 1)
    }

    /// [`Snapshot::pairs_bounded`] on up to `threads` threads; the same answer.
    pub fn pairs_on_threads(
        &self,
        radius: u32,
        max_rows: usize,
        threads: usize,
    ) -> Result<Vec<Pair>> {
        self.store
            .pairs_on_threads(radius.min(C::BITS), Plan::Auto, max_rows, threads)
            .ok_or(Error::TooManyRows(max_rows))
    }

    /// One page of [`Index::pairs`]: at most `count` pairs, from at most `count` anchors (the
    /// smaller id of a pair), walking anchors in id order and each anchor's pairs in
    /// `(distance, other id)` order; returns the cursor of the next page, `None` at the end.
    /// The pages of a walk over an unchanged index are exactly the pairs of
    /// [`Index::pairs`], each once (in another order). A page costs one bounded search per
    /// anchor it visits, so its work is proportional to `count`.
    pub fn pairs_page(
        &self,
        radius: u32,
        cursor: PairsCursor,
        count: usize,
    ) -> (Vec<Pair>, Option<PairsCursor>) {
        let radius = radius.min(C::BITS);
        let count = count.max(1);
        let anchors = self.store.live_ids_from(cursor.anchor, count + 1);
        let mut out = Vec::new();
        let mut after = cursor
            .after
            .filter(|_| anchors.first().is_some_and(|&(id, _)| id == cursor.anchor));
        for &(anchor, slot) in anchors.iter().take(count) {
            let wanted = count - out.len();
            let resume = after.take();
            let found = self.store.knn(
                self.store.hash(slot),
                wanted,
                radius,
                Plan::Auto,
                |m: &Match| {
                    m.id > anchor && resume.is_none_or(|(d, id)| (m.distance, m.id) > (d, id))
                },
            );
            let full = found.len() == wanted;
            out.extend(found.iter().map(|m| Pair {
                a: anchor,
                b: m.id,
                distance: m.distance,
            }));
            if full {
                let last = found.last().expect("wanted is at least 1");
                let next = PairsCursor {
                    anchor,
                    after: Some((last.distance, last.id)),
                };
                return (out, Some(next));
            }
        }
        let next = anchors.get(count).map(|&(anchor, _)| PairsCursor {
            anchor,
            after: None,
        });
        (out, next)
    }
}
