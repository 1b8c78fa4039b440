use crate::answer::{Entry, Match, Pair};
use crate::columns::Columns;
use crate::cursor::PairsCursor;
use crate::hamming::Code;
use crate::idmap::Location;
use crate::plan::Plan;
use crate::search::Snapshot;
use crate::store::{BuildJob, SegmentStats};
use crate::{Error, Result, DEFAULT_SYNC_THRESHOLD, MAX_ID, MAX_SYNC_THRESHOLD};
use std::sync::Arc;

/// A value in [`Stats::to_pairs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoValue {
    Int(u64),
    Text(String),
}

/// What [`Index::stats`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub entries: usize,
    pub pending: usize,
    pub next_id: u64,
    pub sync_threshold: usize,
    /// The width of the index's codes: 64, 128 or 256.
    pub bits: u32,
    /// Every byte the index holds on the heap, plus the index itself.
    pub memory_bytes: usize,
    pub segments: Vec<SegmentStats>,
    /// Segments whose multi-index tables are still being built on another thread (they are
    /// scanned meanwhile): 0 once every build is in place.
    pub builds_pending: usize,
    /// The plan a range query takes on the largest segment, at each radius 0..=bits.
    pub plans_by_radius: Vec<Plan>,
}

impl Stats {
    /// The figures as `(name, value)` pairs in a fixed order, for faces that print a map
    /// (Redis `imgscout.info`, Python `Index.info()`): they pass these through unchanged.
    pub fn to_pairs(&self) -> Vec<(&'static str, InfoValue)> {
        use InfoValue::{Int, Text};
        let largest = self.segments.iter().max_by_key(|s| s.len);
        let sizes: Vec<String> = self.segments.iter().map(|s| s.len.to_string()).collect();
        vec![
            ("entries", Int(self.entries as u64)),
            ("pending", Int(self.pending as u64)),
            ("next_id", Int(self.next_id)),
            ("sync_threshold", Int(self.sync_threshold as u64)),
            ("bits", Int(u64::from(self.bits))),
            ("memory_bytes", Int(self.memory_bytes as u64)),
            ("segments", Int(self.segments.len() as u64)),
            ("segment_sizes", Text(sizes.join(","))),
            (
                "deleted_slots",
                Int(self.segments.iter().map(|s| s.dead as u64).sum()),
            ),
            ("builds_pending", Int(self.builds_pending as u64)),
            (
                "multi_index_fields",
                Text(largest.map_or(String::new(), |s| {
                    let w: Vec<String> =
                        s.multi_index_fields.iter().map(|w| w.to_string()).collect();
                    w.join(",")
                })),
            ),
            ("plan", Text(describe_plans(&self.plans_by_radius))),
            ("kernel", Text(crate::hamming::kernel().name().to_string())),
        ]
    }
}

/// "multi-index r0-13, scan r14-64": the radius ranges of each plan.
fn describe_plans(plans: &[Plan]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut start = 0;
    for r in 1..=plans.len() {
        if r == plans.len() || plans[r] != plans[start] {
            parts.push(format!("{} r{}-{}", plans[start].name(), start, r - 1));
            start = r;
        }
    }
    parts.join(", ")
}

/// The index. See the crate documentation for the semantics.
///
/// Invariants: every id in `ids` is below `next_id` and points at its live store slot or its
/// pending queue position; the pending queue is shorter than `sync_threshold` between calls.
#[derive(Debug, Clone)]
pub struct Index<C: Code = u64> {
    sync_threshold: usize,
    next_id: u64,
    pending: Columns<C>,
    indexed: Snapshot<C>,
}

impl<C: Code> Default for Index<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Code> Index<C> {
    /// Bits in this index's codes.
    pub const BITS: u32 = C::BITS;

    pub fn new() -> Self {
        Index {
            sync_threshold: DEFAULT_SYNC_THRESHOLD,
            next_id: 1,
            pending: Columns::default(),
            indexed: Snapshot::default(),
        }
    }

    pub fn with_sync_threshold(threshold: usize) -> Result<Self> {
        let mut index = Self::new();
        index.set_sync_threshold(threshold)?;
        Ok(index)
    }

    pub fn sync_threshold(&self) -> usize {
        self.sync_threshold
    }

    /// Changes the threshold; a pending queue already at or above it is synced now.
    pub fn set_sync_threshold(&mut self, threshold: usize) -> Result<()> {
        if threshold == 0 || threshold > MAX_SYNC_THRESHOLD {
            return Err(Error::InvalidSyncThreshold(threshold));
        }
        self.sync_threshold = threshold;
        if self.pending.len() >= threshold {
            self.sync();
        }
        Ok(())
    }

    /// Gives every segment multi-index tables, however small (normally only segments of
    /// [`crate::plan::MULTI_INDEX_MIN_LEN`] entries or more get them). For tests that must
    /// exercise every plan on small data; takes effect as segments are rebuilt.
    #[doc(hidden)]
    pub fn set_multi_index_min_len(&mut self, len: usize) {
        self.indexed.store.set_multi_index_min_len(len);
    }

    /// From now on, a segment rebuilt with at least `len` entries (by a sync, an automatic
    /// sync, a merge or a compaction) gets its search structures later: the rebuild only
    /// lays its entries out (O(len) copying) and leaves a [`BuildJob`] for
    /// [`Index::take_build_jobs`], to run on another thread; [`Index::install_builds`] puts
    /// the result in place. Meanwhile that segment is scanned. Answers never change, only
    /// the work. `usize::MAX` (the default) builds everything in place.
    pub fn set_deferred_build_min_len(&mut self, len: usize) {
        self.indexed.store.set_deferred_build_min_len(len);
    }

    /// The deferred builds made since the last call (see
    /// [`Index::set_deferred_build_min_len`]); each is handed out once.
    pub fn take_build_jobs(&mut self) -> Vec<BuildJob<C>> {
        self.indexed.store.take_build_jobs()
    }

    /// Whether a deferred build has finished and [`Index::install_builds`] would use it.
    pub fn builds_ready(&self) -> bool {
        self.indexed.store.builds_ready()
    }

    /// Whether deferred builds wait to be taken by [`Index::take_build_jobs`].
    pub fn has_build_jobs(&self) -> bool {
        self.indexed.store.has_build_jobs()
    }

    /// Segments still waiting for their structures.
    pub fn builds_pending(&self) -> usize {
        self.indexed.store.builds_pending()
    }

    /// Puts every finished deferred build in place. O(tables of those segments).
    pub fn install_builds(&mut self) {
        if self.builds_ready() {
            self.indexed.store.install_builds();
        }
    }

    /// The id the next `add` without an explicit id will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Moves the id counter forward to `next_id` (never back). For rebuilding an index
    /// from its entries, as an AOF rewrite does.
    pub fn advance_next_id(&mut self, next_id: u64) -> Result<()> {
        if next_id > MAX_ID + 1 {
            return Err(Error::IdOutOfRange(next_id));
        }
        self.next_id = self.next_id.max(next_id);
        Ok(())
    }

    /// Queues an entry and returns its id (the next automatic one unless `id` is given).
    pub fn add(&mut self, hash: C, title: &[u8], id: Option<u64>) -> Result<u64> {
        let id = match id {
            Some(id) if id > MAX_ID => return Err(Error::IdOutOfRange(id)),
            Some(id) => id,
            None if self.next_id > MAX_ID => return Err(Error::IdsExhausted),
            None => self.next_id,
        };
        if self.indexed.ids.get(id).is_some() {
            return Err(Error::DuplicateId(id));
        }
        self.push_pending(id, hash, title);
        if self.pending.len() >= self.sync_threshold {
            self.sync();
        }
        Ok(id)
    }

    /// Adds all entries or none: every id is checked before anything is added. The result is
    /// the same as adding them one by one (automatic syncs included).
    pub fn add_many<'t, I>(&mut self, entries: I) -> Result<Vec<u64>>
    where
        I: IntoIterator<Item = (C, &'t [u8], Option<u64>)>,
        I::IntoIter: Clone,
    {
        let entries = entries.into_iter();
        let mut counter = self.next_id;
        let mut batch_ids = std::collections::HashSet::new();
        let mut ids = Vec::with_capacity(entries.size_hint().0);
        for (_, _, id) in entries.clone() {
            let id = match id {
                Some(id) if id > MAX_ID => return Err(Error::IdOutOfRange(id)),
                Some(id) => id,
                None if counter > MAX_ID => return Err(Error::IdsExhausted),
                None => counter,
            };
            if self.indexed.ids.get(id).is_some() || !batch_ids.insert(id) {
                return Err(Error::DuplicateId(id));
            }
            counter = counter.max(id + 1);
            ids.push(id);
        }
        drop(batch_ids);
        for ((hash, title, _), &id) in entries.zip(&ids) {
            self.push_pending(id, hash, title);
        }
        // Adding one by one would have synced each time the queue reached the threshold:
        // sync the same entries, in one batch.
        let due = self.pending.len() - self.pending.len() % self.sync_threshold;
        if due == self.pending.len() {
            self.sync();
        } else if due > 0 {
            let batch = self.pending.split_front(due);
            for i in 0..self.pending.len() {
                Arc::make_mut(&mut self.indexed.ids).set(self.pending.id(i), Location::Pending(i));
            }
            self.indexed.insert(batch);
        }
        Ok(ids)
    }

    fn push_pending(&mut self, id: u64, hash: C, title: &[u8]) {
        self.next_id = self.next_id.max(id + 1);
        Arc::make_mut(&mut self.indexed.ids).set(id, Location::Pending(self.pending.len()));
        self.pending.push(id, hash, title);
    }

    /// Moves every pending entry into the searchable structures.
    pub fn sync(&mut self) {
        if !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.pending);
            self.indexed.insert(batch);
        }
    }

    /// A read-only view of the indexed entries as they are now: searches on it answer as
    /// this index does now, whatever is written to the index afterwards. Cheap (a pointer
    /// per segment): meant for searching on another thread while writes go on.
    pub fn snapshot(&self) -> Snapshot<C> {
        self.indexed.clone()
    }

    /// Every indexed entry within `radius` (inclusive; above [`Code::BITS`] acts as it), sorted by
    /// distance, then id.
    pub fn query(&self, hash: C, radius: u32) -> Vec<Match> {
        self.indexed.query(hash, radius)
    }

    /// [`Index::query`] with a forced plan (for tests and benchmarks; answers never differ).
    pub fn query_with(&self, hash: C, radius: u32, plan: Plan) -> Vec<Match> {
        self.indexed.query_with(hash, radius, plan)
    }

    /// The first `limit` answers of [`Index::query`]. The search is bounded by the limit: it
    /// keeps the best `limit` so far and narrows the radius as they fill in, so `limit` 1 at
    /// a wide radius costs about one nearest-neighbour search, not the whole answer.
    pub fn query_limit(&self, hash: C, radius: u32, limit: usize) -> Vec<Match> {
        self.indexed.query_limit(hash, radius, limit)
    }

    /// Estimated nanoseconds of a range query at `radius` (the planner's figure): for a face
    /// deciding whether a search is short enough to run without releasing its lock or
    /// interpreter, never for the answer.
    pub fn range_cost_ns(&self, radius: u32) -> f64 {
        self.indexed.range_cost_ns(radius)
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
        self.indexed.query_bounded(hash, radius, limit, max_rows)
    }

    /// [`Index::query`] for each hash: batches scan the index once for all of them when a
    /// scan is the cheaper plan.
    pub fn query_many(&self, hashes: &[C], radius: u32) -> Vec<Vec<Match>> {
        self.indexed.query_many(hashes, radius)
    }

    pub fn query_many_with(&self, hashes: &[C], radius: u32, plan: Plan) -> Vec<Vec<Match>> {
        self.indexed.query_many_with(hashes, radius, plan)
    }

    /// [`Index::query_many`], refusing answers that hold more than `max_rows` rows together.
    pub fn query_many_bounded(
        &self,
        hashes: &[C],
        radius: u32,
        max_rows: usize,
    ) -> Result<Vec<Vec<Match>>> {
        self.indexed.query_many_bounded(hashes, radius, max_rows)
    }

    /// The `k` nearest indexed entries, sorted by distance, then id.
    pub fn knn(&self, hash: C, k: usize) -> Vec<Match> {
        self.indexed.knn(hash, k)
    }

    pub fn knn_with(&self, hash: C, k: usize, plan: Plan) -> Vec<Match> {
        self.indexed.knn_with(hash, k, plan)
    }

    /// [`Index::knn`] of every hash, with one shared scan per segment for the hashes the
    /// probe leaves unfinished.
    pub fn knn_many(&self, hashes: &[C], k: usize) -> Vec<Vec<Match>> {
        self.indexed.knn_many(hashes, k)
    }

    pub fn knn_many_with(&self, hashes: &[C], k: usize, plan: Plan) -> Vec<Vec<Match>> {
        self.indexed.knn_many_with(hashes, k, plan)
    }

    /// [`Index::knn`], refused before any work when the answer would hold more than
    /// `max_rows` rows (it holds `min(k, len)`).
    pub fn knn_bounded(&self, hash: C, k: usize, max_rows: usize) -> Result<Vec<Match>> {
        self.indexed.knn_bounded(hash, k, max_rows)
    }

    /// Every unordered pair of indexed entries within `radius`, as (smaller id, larger id,
    /// distance), sorted by distance, then ids.
    pub fn pairs(&self, radius: u32) -> Vec<Pair> {
        self.indexed.pairs(radius)
    }

    pub fn pairs_with(&self, radius: u32, plan: Plan) -> Vec<Pair> {
        self.indexed.pairs_with(radius, plan)
    }

    /// [`Index::pairs`], refusing an answer of more than `max_rows` pairs: the join stops as
    /// soon as it finds one more, so neither time nor memory grows with the whole answer.
    pub fn pairs_bounded(&self, radius: u32, max_rows: usize) -> Result<Vec<Pair>> {
        self.indexed.pairs_bounded(radius, max_rows)
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
        self.indexed.pairs_page(radius, cursor, count)
    }

    /// One page of the entries, indexed and pending alike, in id order: at most `count`
    /// entries with ids at or above `start`, and the first id of the next page (`None` at the
    /// end). O(count) for the usual dense ids.
    pub fn entries_page(&self, start: u64, count: usize) -> (Vec<Entry<'_, C>>, Option<u64>) {
        let count = count.max(1);
        let mut found = self.indexed.ids.ids_from(start, count + 1);
        let next = (found.len() > count).then(|| found[count].0);
        found.truncate(count);
        let page = found
            .into_iter()
            .map(|(id, at)| self.entry_at(id, at))
            .collect();
        (page, next)
    }

    fn entry_at(&self, id: u64, at: Location) -> Entry<'_, C> {
        match at {
            Location::Pending(i) => Entry {
                id,
                hash: self.pending.hashes[i],
                title: self.pending.title(i),
                pending: true,
            },
            Location::Slot(slot) => Entry {
                id,
                hash: self.indexed.store.hash(slot),
                title: self.indexed.store.title(slot),
                pending: false,
            },
        }
    }

    /// Indexed and pending entries together.
    pub fn total_len(&self) -> usize {
        self.len() + self.pending_len()
    }

    /// The title of an indexed or pending entry.
    pub fn lookup(&self, id: u64) -> Option<&[u8]> {
        self.indexed.ids.get(id).map(|at| match at {
            Location::Pending(i) => self.pending.title(i),
            Location::Slot(slot) => self.indexed.store.title(slot),
        })
    }

    /// The hash of an indexed or pending entry.
    pub fn hash_of(&self, id: u64) -> Option<C> {
        self.indexed.ids.get(id).map(|at| match at {
            Location::Pending(i) => self.pending.hashes[i],
            Location::Slot(slot) => self.indexed.store.hash(slot),
        })
    }

    pub fn contains(&self, id: u64) -> bool {
        self.indexed.ids.get(id).is_some()
    }

    /// Indexed entries (pending ones are not counted).
    pub fn len(&self) -> usize {
        self.indexed.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indexed.store.len() == 0
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Removes an indexed or pending entry.
    pub fn delete(&mut self, id: u64) -> Result<()> {
        let at = Arc::make_mut(&mut self.indexed.ids)
            .remove(id)
            .ok_or(Error::NoSuchId(id))?;
        match at {
            Location::Pending(i) => {
                self.pending.remove(i);
                for j in i..self.pending.len() {
                    Arc::make_mut(&mut self.indexed.ids)
                        .set(self.pending.id(j), Location::Pending(j));
                }
            }
            Location::Slot(slot) => self.indexed.kill(slot),
        }
        Ok(())
    }

    /// Indexed entries in id order, then pending entries in the order they were added.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_, C>> + '_ {
        let store = &self.indexed.store;
        // Ids read once per entry: sorting by a key that looked each slot up again cost a
        // segment search per comparison (most of a DEBUG DIGEST-VALUE on a large index).
        let mut slots: Vec<(u64, usize)> = store.live_slots().map(|s| (store.id(s), s)).collect();
        slots.sort_unstable();
        let indexed = slots.into_iter().map(|(id, s)| Entry {
            id,
            hash: self.indexed.store.hash(s),
            title: self.indexed.store.title(s),
            pending: false,
        });
        let pending = (0..self.pending.len()).map(|i| Entry {
            id: self.pending.id(i),
            hash: self.pending.hashes[i],
            title: self.pending.title(i),
            pending: true,
        });
        indexed.chain(pending)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            entries: self.len(),
            pending: self.pending_len(),
            next_id: self.next_id,
            sync_threshold: self.sync_threshold,
            bits: C::BITS,
            memory_bytes: self.memory_bytes(),
            segments: self.indexed.store.segment_stats(),
            builds_pending: self.indexed.store.builds_pending(),
            plans_by_radius: self.indexed.store.plans_by_radius(),
        }
    }

    /// A fingerprint of the logical content: every entry (id, hash, title, pending or not),
    /// the order of the pending queue, the id counter and the threshold. Indexes with the same
    /// content have the same fingerprint whatever their layout (segments, merges, deferred
    /// builds); it is for comparing copies (Redis `DEBUG DIGEST-VALUE`), not a cryptographic
    /// hash. One pass, no sort: the entries are combined by wrapping sums of mixed values.
    pub fn content_digest(&self) -> [u64; 4] {
        fn mix(mut x: u64) -> u64 {
            // splitmix64's finalizer.
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        }
        fn entry<C: Code>(id: u64, hash: C, title: &[u8], pending: bool) -> u64 {
            let title = u64::from(crc32fast::hash(title)) | (title.len() as u64) << 32;
            // A 64-bit code mixes in as it always did, so digests of 64-bit keys are unchanged.
            let hash = (1..C::WORDS).fold(hash.word(0), |h, i| mix(h) ^ hash.word(i));
            mix(mix(mix(id) ^ hash) ^ title) ^ u64::from(pending)
        }
        let store = &self.indexed.store;
        let (mut sum, mut spread) = (0u64, 0u64);
        for slot in store.live_slots() {
            let e = entry(store.id(slot), store.hash(slot), store.title(slot), false);
            sum = sum.wrapping_add(e);
            spread = spread.wrapping_add(mix(e));
        }
        let mut queue = 0u64;
        for i in 0..self.pending.len() {
            let e = entry(
                self.pending.id(i),
                self.pending.hashes[i],
                self.pending.title(i),
                true,
            );
            sum = sum.wrapping_add(e);
            spread = spread.wrapping_add(mix(e));
            queue = mix(queue ^ e);
        }
        let counts =
            mix(self.next_id) ^ mix(self.sync_threshold as u64 ^ (self.total_len() as u64) << 32);
        [sum, spread, queue, counts]
    }

    /// Bytes of memory the index holds, everything included.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.pending.memory_bytes()
            + self.indexed.store.memory_bytes()
            + self.indexed.ids.memory_bytes()
    }

    /// Rebuilds an index from its parts (used by the reader): `indexed` entries are synced in
    /// one batch, `pending` ones queued.
    pub(crate) fn from_parts(
        sync_threshold: usize,
        next_id: u64,
        indexed: Columns<C>,
        pending: Columns<C>,
    ) -> Result<Index<C>> {
        let mut index = Index::new();
        index.set_sync_threshold(sync_threshold)?;
        for part in [&indexed, &pending] {
            for id in part.ids().iter() {
                if id > MAX_ID {
                    return Err(Error::Format(format!("id {id} out of range")));
                }
                if id >= next_id {
                    return Err(Error::Format(format!(
                        "id {id} not below next id {next_id}"
                    )));
                }
                if index.indexed.ids.get(id).is_some() {
                    return Err(Error::Format(format!("duplicate id {id}")));
                }
                Arc::make_mut(&mut index.indexed.ids).set(id, Location::Slot(0));
            }
        }
        index.next_id = next_id;
        index.indexed.insert(indexed);
        for i in 0..pending.len() {
            Arc::make_mut(&mut index.indexed.ids).set(pending.id(i), Location::Pending(i));
        }
        index.pending = pending;
        // Never written by this crate, but a foreign or forged file may hold a queue at or
        // above its threshold: sync it, as set_sync_threshold does, so the invariant holds.
        if index.pending.len() >= index.sync_threshold {
            index.sync();
        }
        Ok(index)
    }
}
