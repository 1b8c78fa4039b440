use std::io::{Read, Write};

use crate::columns::Columns;
use crate::idmap::IdMap;
use crate::plan::Plan;
use crate::store::{SegmentStats, Store};
use crate::{Error, Result, DEFAULT_SYNC_THRESHOLD, MAX_ID, MAX_RADIUS, MAX_SYNC_THRESHOLD};

/// One query answer: an indexed entry and its Hamming distance to the query.
///
/// Ordering is by distance, then id: the order every query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Match {
    pub distance: u32,
    pub id: u64,
}

/// One answer of the self-join [`Index::pairs`]: `a < b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pair {
    pub a: u64,
    pub b: u64,
    pub distance: u32,
}

/// An entry as [`Index::entries`] yields it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub id: u64,
    pub hash: u64,
    pub title: &'a [u8],
    /// Still in the pending queue: `lookup` finds it, queries do not.
    pub pending: bool,
}

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
    /// Every byte the index holds on the heap, plus the index itself.
    pub memory_bytes: usize,
    pub segments: Vec<SegmentStats>,
    /// The plan a range query takes on the largest segment, at each radius 0..=64.
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
            ("memory_bytes", Int(self.memory_bytes as u64)),
            ("segments", Int(self.segments.len() as u64)),
            ("segment_sizes", Text(sizes.join(","))),
            (
                "deleted_slots",
                Int(self.segments.iter().map(|s| s.dead as u64).sum()),
            ),
            (
                "tree_nodes",
                Int(self.segments.iter().map(|s| s.tree_nodes as u64).sum()),
            ),
            (
                "tree_depth",
                Int(self
                    .segments
                    .iter()
                    .map(|s| s.tree_depth as u64)
                    .max()
                    .unwrap_or(0)),
            ),
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

/// Sorts by distance, then id. Wide radii return a large share of the index, and a
/// comparison sort of hundreds of thousands of matches costs more than the scan that found
/// them: a counting sort on the distance (65 values) leaves only short runs to sort by id.
fn sort_matches(matches: &mut Vec<Match>) {
    if matches.len() < 1024 {
        matches.sort_unstable();
        return;
    }
    let mut starts = [0usize; MAX_RADIUS as usize + 2];
    for m in matches.iter() {
        starts[m.distance as usize + 1] += 1;
    }
    for d in 1..starts.len() {
        starts[d] += starts[d - 1];
    }
    let bounds = starts;
    let mut sorted = vec![Match { distance: 0, id: 0 }; matches.len()];
    for &m in matches.iter() {
        sorted[starts[m.distance as usize]] = m;
        starts[m.distance as usize] += 1;
    }
    for run in bounds.windows(2) {
        sorted[run[0]..run[1]].sort_unstable_by_key(|m| m.id);
    }
    *matches = sorted;
}

/// Location of an id in the id map: a slot of the store, or `PENDING | queue position`.
const PENDING: u32 = 1 << 31;

/// The index. See the crate documentation for the semantics.
///
/// Invariants: every id in `ids` is below `next_id` and points at its live store slot or its
/// pending queue position; the pending queue is shorter than `sync_threshold` between calls.
#[derive(Debug, Clone)]
pub struct Index {
    sync_threshold: usize,
    next_id: u64,
    pending: Columns,
    store: Store,
    ids: IdMap,
}

impl Default for Index {
    fn default() -> Self {
        Self::new()
    }
}

impl Index {
    pub fn new() -> Self {
        Index {
            sync_threshold: DEFAULT_SYNC_THRESHOLD,
            next_id: 1,
            pending: Columns::default(),
            store: Store::default(),
            ids: IdMap::default(),
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
        self.store.set_multi_index_min_len(len);
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
    pub fn add(&mut self, hash: u64, title: &[u8], id: Option<u64>) -> Result<u64> {
        let id = match id {
            Some(id) if id > MAX_ID => return Err(Error::IdOutOfRange(id)),
            Some(id) => id,
            None if self.next_id > MAX_ID => return Err(Error::IdsExhausted),
            None => self.next_id,
        };
        if self.ids.get(id).is_some() {
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
        I: IntoIterator<Item = (u64, &'t [u8], Option<u64>)>,
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
            if self.ids.get(id).is_some() || !batch_ids.insert(id) {
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
                self.ids.set(self.pending.ids[i], PENDING | i as u32);
            }
            self.store.insert(batch, &mut self.ids);
        }
        Ok(ids)
    }

    fn push_pending(&mut self, id: u64, hash: u64, title: &[u8]) {
        assert!(self.pending.len() < PENDING as usize, "pending queue full");
        self.next_id = self.next_id.max(id + 1);
        self.ids.set(id, PENDING | self.pending.len() as u32);
        self.pending.push(id, hash, title);
    }

    /// Moves every pending entry into the searchable structures.
    pub fn sync(&mut self) {
        if !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.pending);
            self.store.insert(batch, &mut self.ids);
        }
    }

    /// Every indexed entry within `radius` (inclusive; above 64 acts as 64), sorted by
    /// distance, then id.
    pub fn query(&self, hash: u64, radius: u32) -> Vec<Match> {
        self.query_with(hash, radius, Plan::Auto)
    }

    /// [`Index::query`] with a forced plan (for tests and benchmarks; answers never differ).
    pub fn query_with(&self, hash: u64, radius: u32, plan: Plan) -> Vec<Match> {
        let mut out = Vec::new();
        self.store
            .range(hash, radius.min(MAX_RADIUS), plan, &mut out);
        sort_matches(&mut out);
        out
    }

    /// The first `limit` answers of [`Index::query`].
    pub fn query_limit(&self, hash: u64, radius: u32, limit: usize) -> Vec<Match> {
        let mut out = self.query(hash, radius);
        out.truncate(limit);
        out
    }

    /// [`Index::query`] for each hash: batches scan the index once for all of them when a
    /// scan is the cheaper plan.
    pub fn query_many(&self, hashes: &[u64], radius: u32) -> Vec<Vec<Match>> {
        self.query_many_with(hashes, radius, Plan::Auto)
    }

    pub fn query_many_with(&self, hashes: &[u64], radius: u32, plan: Plan) -> Vec<Vec<Match>> {
        let mut out = vec![Vec::new(); hashes.len()];
        self.store
            .range_many(hashes, radius.min(MAX_RADIUS), plan, &mut out);
        for answers in &mut out {
            sort_matches(answers);
        }
        out
    }

    /// The `k` nearest indexed entries, sorted by distance, then id.
    pub fn knn(&self, hash: u64, k: usize) -> Vec<Match> {
        self.knn_with(hash, k, Plan::Auto)
    }

    pub fn knn_with(&self, hash: u64, k: usize, plan: Plan) -> Vec<Match> {
        self.store.knn(hash, k, plan)
    }

    /// Every unordered pair of indexed entries within `radius`, as (smaller id, larger id,
    /// distance), sorted by distance, then ids.
    pub fn pairs(&self, radius: u32) -> Vec<Pair> {
        self.pairs_with(radius, Plan::Auto)
    }

    pub fn pairs_with(&self, radius: u32, plan: Plan) -> Vec<Pair> {
        let mut out = self.store.pairs(radius.min(MAX_RADIUS), plan);
        out.sort_unstable_by_key(|p| (p.distance, p.a, p.b));
        out
    }

    /// The title of an indexed or pending entry.
    pub fn lookup(&self, id: u64) -> Option<&[u8]> {
        self.ids.get(id).map(|at| {
            if at & PENDING != 0 {
                self.pending.title((at & !PENDING) as usize)
            } else {
                self.store.title(at as usize)
            }
        })
    }

    /// The hash of an indexed or pending entry.
    pub fn hash_of(&self, id: u64) -> Option<u64> {
        self.ids.get(id).map(|at| {
            if at & PENDING != 0 {
                self.pending.hashes[(at & !PENDING) as usize]
            } else {
                self.store.hash(at as usize)
            }
        })
    }

    pub fn contains(&self, id: u64) -> bool {
        self.ids.get(id).is_some()
    }

    /// Indexed entries (pending ones are not counted).
    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.len() == 0
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Removes an indexed or pending entry.
    pub fn delete(&mut self, id: u64) -> Result<()> {
        let at = self.ids.remove(id).ok_or(Error::NoSuchId(id))?;
        if at & PENDING != 0 {
            let i = (at & !PENDING) as usize;
            self.pending.remove(i);
            for j in i..self.pending.len() {
                self.ids.set(self.pending.ids[j], PENDING | j as u32);
            }
        } else {
            self.store.kill(at as usize, &mut self.ids);
        }
        Ok(())
    }

    /// Indexed entries in id order, then pending entries in the order they were added.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> + '_ {
        let mut slots: Vec<usize> = self.store.live_slots().collect();
        slots.sort_unstable_by_key(|&s| self.store.id(s));
        let indexed = slots.into_iter().map(|s| Entry {
            id: self.store.id(s),
            hash: self.store.hash(s),
            title: self.store.title(s),
            pending: false,
        });
        let pending = (0..self.pending.len()).map(|i| Entry {
            id: self.pending.ids[i],
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
            memory_bytes: self.memory_bytes(),
            segments: self.store.segment_stats(),
            plans_by_radius: self.store.plans_by_radius(),
        }
    }

    /// Bytes of memory the index holds, everything included.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.pending.memory_bytes()
            + self.store.memory_bytes()
            + self.ids.memory_bytes()
    }

    /// Writes the whole index (entries, pending queue, id counter, threshold) in the format
    /// described in [`crate::format`].
    pub fn write_to<W: Write>(&self, writer: W) -> Result<()> {
        crate::format::write(self, writer)
    }

    /// Reads an index written by [`Index::write_to`]. Truncated, corrupted or foreign input is
    /// an [`Error::Format`].
    pub fn read_from<R: Read>(reader: R) -> Result<Index> {
        crate::format::read(reader)
    }

    /// Rebuilds an index from its parts (used by the reader): `indexed` entries are synced in
    /// one batch, `pending` ones queued.
    pub(crate) fn from_parts(
        sync_threshold: usize,
        next_id: u64,
        indexed: Columns,
        pending: Columns,
    ) -> Result<Index> {
        let mut index = Index::new();
        index.set_sync_threshold(sync_threshold)?;
        for part in [&indexed, &pending] {
            for &id in &part.ids {
                if id > MAX_ID {
                    return Err(Error::Format(format!("id {id} out of range")));
                }
                if id >= next_id {
                    return Err(Error::Format(format!(
                        "id {id} not below next id {next_id}"
                    )));
                }
                if index.ids.get(id).is_some() {
                    return Err(Error::Format(format!("duplicate id {id}")));
                }
                index.ids.set(id, 0);
            }
        }
        index.next_id = next_id;
        index.store.insert(indexed, &mut index.ids);
        for i in 0..pending.len() {
            index.ids.set(pending.ids[i], PENDING | i as u32);
        }
        index.pending = pending;
        Ok(index)
    }
}
