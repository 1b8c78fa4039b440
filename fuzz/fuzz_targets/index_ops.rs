//! An `mvptree::Index` driven by a sequence of operations decoded from the input (with the
//! `arbitrary` crate), every answer compared with a brute-force model of the same entries:
//! adds (one by one and in all-or-nothing batches, automatic and explicit ids, ids at and past
//! the limits), deletes, syncs, threshold changes, bounded and limited queries, kNN, the
//! self-join bounded and paged, entry pages, snapshots and serialization round trips.
//!
//! Sizes stay small (ids below 48, batches of at most 24, thresholds below 32) so that
//! collisions, duplicates and syncs are frequent; a flag in the input gives every segment
//! multi-index tables, so that plan is exercised on small data too. Cursor walks run both over
//! an unchanged index (exactly the answer, each row once) and interleaved with writes (rows
//! present for the whole walk exactly once, no row twice, every row true when returned), as
//! the `SCAN` semantics of `cursor.rs` promise. The property tests in
//! `crates/mvptree/tests/model.rs` check the same model with proptest.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use mvptree::{distance, Error, Index, Match, Pair, PairsCursor, Plan, Snapshot, MAX_ID};

const CENTERS: [u64; 4] = [0, u64::MAX, 0x0123_4567_89AB_CDEF, 0xF0F0_F0F0_0F0F_0F0F];

/// A hash near one of a few centers (so small radii have answers), or anywhere.
#[derive(Debug, Clone, Copy)]
struct Hash(u64);

impl<'a> Arbitrary<'a> for Hash {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let pick = u8::arbitrary(u)?;
        if pick >= 224 {
            return Ok(Hash(u64::arbitrary(u)?));
        }
        let mut h = CENTERS[(pick % 4) as usize];
        for _ in 0..(pick / 4) % 6 {
            h ^= 1 << u.int_in_range(0..=63u32)?;
        }
        Ok(Hash(h))
    }
}

/// No id (automatic), a small one, or one at the edges of the id range.
#[derive(Debug, Clone, Copy)]
struct Id(Option<u64>);

impl<'a> Arbitrary<'a> for Id {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Id(match u8::arbitrary(u)? {
            0..=127 => None,
            128..=243 => Some(u64::from(u.int_in_range(0..=47u8)?)),
            244..=246 => Some(MAX_ID),
            247..=249 => Some(MAX_ID - 1),
            250..=252 => Some(MAX_ID + 1),
            _ => Some(u64::MAX),
        }))
    }
}

#[derive(Debug, Clone)]
struct Title(Vec<u8>);

impl<'a> Arbitrary<'a> for Title {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = u.int_in_range(0..=8usize)?;
        Ok(Title(u.bytes(len)?.to_vec()))
    }
}

#[derive(Debug, Clone)]
struct Batch(Vec<(Hash, Title, Id)>);

impl<'a> Arbitrary<'a> for Batch {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = u.int_in_range(0..=24usize)?;
        (0..len)
            .map(|_| <(Hash, Title, Id)>::arbitrary(u))
            .collect::<arbitrary::Result<_>>()
            .map(Batch)
    }
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum AnyPlan {
    Auto,
    Scan,
    MultiIndex,
}

impl AnyPlan {
    fn plan(self) -> Plan {
        match self {
            AnyPlan::Auto => Plan::Auto,
            AnyPlan::Scan => Plan::Scan,
            AnyPlan::MultiIndex => Plan::MultiIndex,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    Add(Hash, Title, Id),
    AddMany(Batch),
    Delete(u8),
    Sync,
    /// 0 and values past the maximum are refused.
    SetSyncThreshold(u8),
    Query(Hash, u8, AnyPlan),
    QueryBounded(Hash, u8, Option<u8>, u8),
    QueryLimit(Hash, u8, u8),
    KnnBounded(Hash, u8, u8),
    PairsBounded(u8, u8),
    /// A whole walk of `pairs_page` over the index as it is.
    PairsWalk(u8, u8),
    /// A whole walk of `entries_page` over the index as it is.
    EntriesWalk(u8),
    /// Starts (or restarts) a pairs walk that proceeds one page per `PairsStep`, with any
    /// other operations in between.
    PairsBegin(u8, u8),
    PairsStep,
    EntriesBegin(u8),
    EntriesStep,
    /// Keeps a snapshot, with the model's indexed entries at that moment.
    Snapshot,
    /// Queries a kept snapshot: it must answer as the index did when it was taken.
    QuerySnapshot(u8, Hash, u8),
    RoundTrip,
}

#[derive(Debug, Arbitrary)]
struct Input {
    threshold: u8,
    tables_everywhere: bool,
    ops: Vec<Op>,
}

/// The reference: entries by id, and which are pending, searched by brute force.
#[derive(Debug, Clone)]
struct Model {
    entries: BTreeMap<u64, (u64, Vec<u8>)>,
    /// Pending ids in queue order.
    pending: Vec<u64>,
    next_id: u64,
    threshold: usize,
}

impl Model {
    fn add(&mut self, hash: u64, title: &[u8], id: Option<u64>) -> Result<u64, &'static str> {
        let id = match id {
            Some(id) if id > MAX_ID => return Err("range"),
            Some(id) => id,
            None if self.next_id > MAX_ID => return Err("exhausted"),
            None => self.next_id,
        };
        if self.entries.contains_key(&id) {
            return Err("duplicate");
        }
        self.entries.insert(id, (hash, title.to_vec()));
        self.pending.push(id);
        self.next_id = self.next_id.max(id + 1);
        if self.pending.len() >= self.threshold {
            self.pending.clear();
        }
        Ok(id)
    }

    fn indexed(&self) -> BTreeMap<u64, u64> {
        self.entries
            .iter()
            .filter(|(id, _)| !self.pending.contains(id))
            .map(|(&id, &(hash, _))| (id, hash))
            .collect()
    }
}

fn query(indexed: &BTreeMap<u64, u64>, hash: u64, radius: u32) -> Vec<Match> {
    let mut out: Vec<Match> = indexed
        .iter()
        .map(|(&id, &h)| Match {
            distance: distance(h, hash),
            id,
        })
        .filter(|m| m.distance <= radius.min(64))
        .collect();
    out.sort_unstable();
    out
}

fn pairs(indexed: &BTreeMap<u64, u64>, radius: u32) -> Vec<Pair> {
    let all: Vec<(u64, u64)> = indexed.iter().map(|(&id, &h)| (id, h)).collect();
    let mut out = Vec::new();
    for (i, &(a, ha)) in all.iter().enumerate() {
        for &(b, hb) in &all[i + 1..] {
            let d = distance(ha, hb);
            if d <= radius.min(64) {
                out.push(Pair { a, b, distance: d });
            }
        }
    }
    out.sort_unstable_by_key(|p| (p.distance, p.a, p.b));
    out
}

fn kind(e: &Error) -> &'static str {
    match e {
        Error::DuplicateId(_) => "duplicate",
        Error::IdOutOfRange(_) => "range",
        Error::IdsExhausted => "exhausted",
        Error::NoSuchId(_) => "missing",
        Error::TooManyRows(_) => "too many rows",
        Error::InvalidSyncThreshold(_) => "threshold",
        _ => "other",
    }
}

/// Radii from the input: mostly small, sometimes past 64 (which acts as 64).
fn radius(r: u8) -> u32 {
    u32::from(r % 72)
}

/// A pairs walk in progress, with writes between its pages.
struct PairsWalk {
    radius: u32,
    count: usize,
    cursor: Option<PairsCursor>,
    /// Indexed entries present since the walk began (deleted ones leave).
    stable: BTreeMap<u64, u64>,
    seen: BTreeSet<(u64, u64)>,
    pages: usize,
}

/// An entries walk in progress, with writes between its pages.
struct EntriesWalk {
    count: usize,
    next: Option<u64>,
    /// Ids present (indexed or pending) since the walk began.
    stable: BTreeSet<u64>,
    seen: BTreeSet<u64>,
    pages: usize,
}

fn step_pairs(walk: &mut PairsWalk, index: &Index, model: &Model) -> bool {
    let Some(cursor) = walk.cursor else {
        return true;
    };
    let (page, next) = index.pairs_page(walk.radius, cursor, walk.count);
    assert!(page.len() <= walk.count);
    let indexed = model.indexed();
    for p in &page {
        assert!(p.a < p.b, "{p:?}");
        assert!(p.a >= cursor.anchor, "{p:?} before {cursor}");
        let (ha, hb) = (indexed[&p.a], indexed[&p.b]);
        assert_eq!(p.distance, distance(ha, hb), "{p:?}");
        assert!(p.distance <= walk.radius.min(64), "{p:?}");
        assert!(walk.seen.insert((p.a, p.b)), "{p:?} returned twice");
    }
    walk.pages += 1;
    assert!(walk.pages <= 4096, "the walk does not end");
    // Cursors travel as text.
    walk.cursor = next.map(|c| c.to_string().parse().expect("a cursor the index made"));
    walk.cursor.is_none()
}

fn finish_pairs(walk: &PairsWalk) {
    for p in pairs(&walk.stable, walk.radius) {
        assert!(
            walk.seen.contains(&(p.a, p.b)),
            "{p:?} present for the whole walk was never returned"
        );
    }
}

fn step_entries(walk: &mut EntriesWalk, index: &Index, model: &Model) -> bool {
    let Some(start) = walk.next else {
        return true;
    };
    let (page, next) = index.entries_page(start, walk.count);
    assert!(page.len() <= walk.count);
    for e in &page {
        assert!(e.id >= start);
        let (hash, title) = &model.entries[&e.id];
        assert_eq!((e.hash, e.title), (*hash, title.as_slice()));
        assert_eq!(e.pending, model.pending.contains(&e.id));
        assert!(walk.seen.insert(e.id), "entry {} returned twice", e.id);
    }
    if let (Some(last), Some(next)) = (page.last(), next) {
        assert!(next > last.id);
    }
    walk.pages += 1;
    assert!(walk.pages <= 4096, "the walk does not end");
    walk.next = next;
    next.is_none()
}

fn finish_entries(walk: &EntriesWalk) {
    for id in &walk.stable {
        assert!(
            walk.seen.contains(id),
            "entry {id} present for the whole walk missed"
        );
    }
}

fn write(index: &Index) -> Vec<u8> {
    let mut out = Vec::new();
    index.write_to(&mut out).expect("writing to memory");
    out
}

fn run(input: Input) {
    let threshold = usize::from(input.threshold % 32).max(1);
    let mut index = Index::<u64>::with_sync_threshold(threshold).unwrap();
    if input.tables_everywhere {
        index.set_multi_index_min_len(0);
    }
    let mut model = Model {
        entries: BTreeMap::new(),
        pending: Vec::new(),
        next_id: 1,
        threshold,
    };
    let mut snapshots: Vec<(Snapshot, BTreeMap<u64, u64>)> = Vec::new();
    let mut pairs_walk: Option<PairsWalk> = None;
    let mut entries_walk: Option<EntriesWalk> = None;

    for op in input.ops {
        match op {
            Op::Add(Hash(h), Title(t), Id(id)) => {
                let got = index.add(h, &t, id).map_err(|e| kind(&e));
                assert_eq!(got, model.add(h, &t, id));
            }
            Op::AddMany(Batch(batch)) => {
                let got = index
                    .add_many(batch.iter().map(|(h, t, id)| (h.0, t.0.as_slice(), id.0)))
                    .map_err(|e| kind(&e));
                let mut trial = model.clone();
                let want = batch
                    .iter()
                    .map(|(h, t, id)| trial.add(h.0, &t.0, id.0))
                    .collect::<Result<Vec<u64>, _>>();
                if want.is_ok() {
                    model = trial;
                }
                assert_eq!(got, want);
            }
            Op::Delete(id) => {
                let id = u64::from(id % 56);
                let got = index.delete(id).map_err(|e| kind(&e));
                let want = match model.entries.remove(&id) {
                    Some(_) => {
                        model.pending.retain(|&p| p != id);
                        Ok(())
                    }
                    None => Err("missing"),
                };
                assert_eq!(got, want);
                if let Some(walk) = &mut pairs_walk {
                    walk.stable.remove(&id);
                }
                if let Some(walk) = &mut entries_walk {
                    walk.stable.remove(&id);
                }
            }
            Op::Sync => {
                index.sync();
                model.pending.clear();
            }
            Op::SetSyncThreshold(t) => {
                let t = if t == 255 {
                    mvptree::MAX_SYNC_THRESHOLD + 1
                } else {
                    usize::from(t % 32)
                };
                let got = index.set_sync_threshold(t).map_err(|e| kind(&e));
                if t == 0 || t > mvptree::MAX_SYNC_THRESHOLD {
                    assert_eq!(got, Err("threshold"));
                } else {
                    assert_eq!(got, Ok(()));
                    model.threshold = t;
                    if model.pending.len() >= t {
                        model.pending.clear();
                    }
                }
            }
            Op::Query(Hash(h), r, plan) => {
                let r = radius(r);
                assert_eq!(
                    index.query_with(h, r, plan.plan()),
                    query(&model.indexed(), h, r)
                );
            }
            Op::QueryBounded(Hash(h), r, limit, max_rows) => {
                let r = radius(r);
                let limit = limit.map(|l| usize::from(l % 16));
                let max_rows = usize::from(max_rows % 48);
                let mut want = query(&model.indexed(), h, r);
                if let Some(limit) = limit {
                    want.truncate(limit);
                }
                let want = if want.len() > max_rows {
                    Err("too many rows")
                } else {
                    Ok(want)
                };
                let got = index
                    .query_bounded(h, r, limit, max_rows)
                    .map_err(|e| kind(&e));
                assert_eq!(got, want);
            }
            Op::QueryLimit(Hash(h), r, limit) => {
                let r = radius(r);
                let limit = usize::from(limit % 24);
                let mut want = query(&model.indexed(), h, r);
                want.truncate(limit);
                assert_eq!(index.query_limit(h, r, limit), want);
            }
            Op::KnnBounded(Hash(h), k, max_rows) => {
                let k = usize::from(k % 32);
                let max_rows = usize::from(max_rows % 48);
                let indexed = model.indexed();
                let want = if k.min(indexed.len()) > max_rows {
                    Err("too many rows")
                } else {
                    let mut all = query(&indexed, h, 64);
                    all.truncate(k);
                    Ok(all)
                };
                assert_eq!(
                    index.knn_bounded(h, k, max_rows).map_err(|e| kind(&e)),
                    want
                );
            }
            Op::PairsBounded(r, max_rows) => {
                let r = radius(r);
                let max_rows = usize::from(max_rows);
                let want = pairs(&model.indexed(), r);
                let want = if want.len() > max_rows {
                    Err("too many rows")
                } else {
                    Ok(want)
                };
                assert_eq!(index.pairs_bounded(r, max_rows).map_err(|e| kind(&e)), want);
            }
            Op::PairsWalk(r, count) => {
                let indexed = model.indexed();
                let mut walk = PairsWalk {
                    radius: radius(r),
                    count: usize::from(count % 8).max(1),
                    cursor: Some(PairsCursor::START),
                    stable: indexed.clone(),
                    seen: BTreeSet::new(),
                    pages: 0,
                };
                while !step_pairs(&mut walk, &index, &model) {}
                let want: BTreeSet<(u64, u64)> = pairs(&indexed, walk.radius)
                    .iter()
                    .map(|p| (p.a, p.b))
                    .collect();
                assert_eq!(walk.seen, want);
            }
            Op::EntriesWalk(count) => {
                let mut walk = EntriesWalk {
                    count: usize::from(count % 8).max(1),
                    next: Some(0),
                    stable: model.entries.keys().copied().collect(),
                    seen: BTreeSet::new(),
                    pages: 0,
                };
                while !step_entries(&mut walk, &index, &model) {}
                assert_eq!(walk.seen, walk.stable);
            }
            Op::PairsBegin(r, count) => {
                pairs_walk = Some(PairsWalk {
                    radius: radius(r),
                    count: usize::from(count % 8).max(1),
                    cursor: Some(PairsCursor::START),
                    stable: model.indexed(),
                    seen: BTreeSet::new(),
                    pages: 0,
                });
            }
            Op::PairsStep => {
                if let Some(walk) = &mut pairs_walk {
                    if step_pairs(walk, &index, &model) {
                        finish_pairs(walk);
                        pairs_walk = None;
                    }
                }
            }
            Op::EntriesBegin(count) => {
                entries_walk = Some(EntriesWalk {
                    count: usize::from(count % 8).max(1),
                    next: Some(0),
                    stable: model.entries.keys().copied().collect(),
                    seen: BTreeSet::new(),
                    pages: 0,
                });
            }
            Op::EntriesStep => {
                if let Some(walk) = &mut entries_walk {
                    if step_entries(walk, &index, &model) {
                        finish_entries(walk);
                        entries_walk = None;
                    }
                }
            }
            Op::Snapshot => {
                if snapshots.len() == 4 {
                    snapshots.remove(0);
                }
                snapshots.push((index.snapshot(), model.indexed()));
            }
            Op::QuerySnapshot(which, Hash(h), r) => {
                if !snapshots.is_empty() {
                    let (snapshot, indexed) = &snapshots[usize::from(which) % snapshots.len()];
                    let r = radius(r);
                    assert_eq!(snapshot.len(), indexed.len());
                    assert_eq!(snapshot.query(h, r), query(indexed, h, r));
                    let mut all = query(indexed, h, 64);
                    all.truncate(3);
                    assert_eq!(snapshot.knn(h, 3), all);
                    assert_eq!(snapshot.pairs(r.min(12)), pairs(indexed, r.min(12)));
                    for (&id, _) in indexed.iter().take(3) {
                        assert!(snapshot.title(id).is_some());
                    }
                }
            }
            Op::RoundTrip => {
                let bytes = write(&index);
                let mut loaded =
                    Index::<u64>::read_from(bytes.as_slice()).expect("reading a written index");
                if input.tables_everywhere {
                    loaded.set_multi_index_min_len(0);
                }
                assert_eq!(write(&loaded), bytes);
                index = loaded;
            }
        }
        assert_eq!(index.len(), model.entries.len() - model.pending.len());
        assert_eq!(index.pending_len(), model.pending.len());
        assert_eq!(index.next_id(), model.next_id);
        assert_eq!(index.sync_threshold(), model.threshold);
    }

    // Entries come out indexed by id, then pending in queue order, each findable.
    let got: Vec<(u64, bool)> = index.entries().map(|e| (e.id, e.pending)).collect();
    let mut want: Vec<(u64, bool)> = model.indexed().keys().map(|&id| (id, false)).collect();
    want.extend(model.pending.iter().map(|&id| (id, true)));
    assert_eq!(got, want);
    for (id, (hash, title)) in &model.entries {
        assert_eq!(index.lookup(*id), Some(title.as_slice()));
        assert_eq!(index.hash_of(*id), Some(*hash));
    }
    for (snapshot, indexed) in &snapshots {
        assert_eq!(snapshot.query(0, 64), query(indexed, 0, 64));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) {
        run(input);
    }
});
