//! Property tests: random operation sequences on an `Index` and on a brute-force model, every
//! answer compared.

use std::collections::BTreeMap;

use mvptree::{distance, Error, Index, Match, Pair, PairsCursor, Plan, MAX_ID};
use proptest::prelude::*;

/// The reference: a map from id to (hash, title, pending), searched by brute force.
#[derive(Debug, Clone)]
struct Model {
    entries: BTreeMap<u64, (u64, Vec<u8>)>,
    /// Pending ids in queue order.
    pending: Vec<u64>,
    next_id: u64,
    threshold: usize,
}

impl Model {
    fn new(threshold: usize) -> Model {
        Model {
            entries: BTreeMap::new(),
            pending: Vec::new(),
            next_id: 1,
            threshold,
        }
    }

    fn check_id(&self, id: Option<u64>, counter: u64) -> Result<u64, &'static str> {
        let id = match id {
            Some(id) if id > MAX_ID => return Err("range"),
            Some(id) => id,
            None if counter > MAX_ID => return Err("exhausted"),
            None => counter,
        };
        if self.entries.contains_key(&id) {
            return Err("duplicate");
        }
        Ok(id)
    }

    fn push(&mut self, id: u64, hash: u64, title: &[u8]) {
        self.entries.insert(id, (hash, title.to_vec()));
        self.pending.push(id);
        self.next_id = self.next_id.max(id + 1);
        if self.pending.len() >= self.threshold {
            self.pending.clear();
        }
    }

    fn add(&mut self, hash: u64, title: &[u8], id: Option<u64>) -> Result<u64, &'static str> {
        let id = self.check_id(id, self.next_id)?;
        self.push(id, hash, title);
        Ok(id)
    }

    fn add_many(
        &mut self,
        batch: &[(u64, Vec<u8>, Option<u64>)],
    ) -> Result<Vec<u64>, &'static str> {
        let mut trial = self.clone();
        let mut ids = Vec::new();
        for (hash, title, id) in batch {
            ids.push(trial.add(*hash, title, *id)?);
        }
        *self = trial;
        Ok(ids)
    }

    fn indexed(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.entries
            .iter()
            .filter(|(id, _)| !self.pending.contains(id))
            .map(|(&id, &(hash, _))| (id, hash))
    }

    fn query(&self, hash: u64, radius: u32) -> Vec<Match> {
        let mut out: Vec<Match> = self
            .indexed()
            .map(|(id, h)| Match {
                distance: distance(h, hash),
                id,
            })
            .filter(|m| m.distance <= radius.min(64))
            .collect();
        out.sort();
        out
    }

    fn knn(&self, hash: u64, k: usize) -> Vec<Match> {
        let mut out = self.query(hash, 64);
        out.truncate(k);
        out
    }

    fn pairs(&self, radius: u32) -> Vec<Pair> {
        let all: Vec<(u64, u64)> = self.indexed().collect();
        let mut out = Vec::new();
        for (i, &(a, ha)) in all.iter().enumerate() {
            for &(b, hb) in &all[i + 1..] {
                let d = distance(ha, hb);
                if d <= radius.min(64) {
                    out.push(Pair {
                        a: a.min(b),
                        b: a.max(b),
                        distance: d,
                    });
                }
            }
        }
        out.sort_by_key(|p| (p.distance, p.a, p.b));
        out
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add(u64, Vec<u8>, Option<u64>),
    AddMany(Vec<(u64, Vec<u8>, Option<u64>)>),
    Delete(u64),
    Sync,
    SetThreshold(usize),
    Query(u64, u32, Plan),
    QueryMany(Vec<u64>, u32, Plan),
    Knn(u64, usize, Plan),
    KnnMany(Vec<u64>, usize, Plan),
    Pairs(u32, Plan),
    /// A query with a limit, and one under a row cap.
    Bounded(u64, u32, Option<usize>, usize),
    /// The self-join under a row cap, and walked page by page.
    PairsPaged(u32, usize, usize),
    /// The entries walked page by page.
    EntriesPaged(usize),
    /// Runs the deferred builds taken so far (every one, or every other) and installs them.
    Builds(bool),
    Lookup(u64),
    RoundTrip,
}

/// Hashes near a few fixed centers (so small radii have answers), or anywhere.
fn hash() -> impl Strategy<Value = u64> {
    const CENTERS: [u64; 4] = [0, u64::MAX, 0x0123_4567_89AB_CDEF, 0xF0F0_F0F0_0F0F_0F0F];
    prop_oneof![
        3 => (0..CENTERS.len(), prop::collection::vec(0u32..64, 0..6)).prop_map(|(c, flips)| {
            flips.iter().fold(CENTERS[c], |h, &b| h ^ (1 << b))
        }),
        1 => any::<u64>(),
    ]
}

fn id() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![
        6 => Just(None),
        3 => (0u64..40).prop_map(Some),
        1 => prop_oneof![Just(MAX_ID), Just(MAX_ID - 1), Just(MAX_ID + 1), Just(u64::MAX)].prop_map(Some),
    ]
}

fn plan() -> impl Strategy<Value = Plan> {
    prop_oneof![Just(Plan::Auto), Just(Plan::Scan), Just(Plan::MultiIndex)]
}

fn title() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..12)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => (hash(), title(), id()).prop_map(|(h, t, i)| Op::Add(h, t, i)),
        3 => prop::collection::vec((hash(), title(), id()), 0..40).prop_map(Op::AddMany),
        4 => (0u64..60).prop_map(Op::Delete),
        3 => Just(Op::Sync),
        1 => (1usize..30).prop_map(Op::SetThreshold),
        6 => (hash(), 0u32..70, plan()).prop_map(|(h, r, p)| Op::Query(h, r, p)),
        // Up to 20 hashes: batches of 16 and more take the bit-sliced scan.
        2 => (prop::collection::vec(hash(), 0..20), 0u32..70, plan()).prop_map(|(h, r, p)| Op::QueryMany(h, r, p)),
        3 => (hash(), 0usize..30, plan()).prop_map(|(h, k, p)| Op::Knn(h, k, p)),
        2 => (prop::collection::vec(hash(), 0..20), 0usize..30, plan()).prop_map(|(h, k, p)| Op::KnnMany(h, k, p)),
        2 => (0u32..20, plan()).prop_map(|(r, p)| Op::Pairs(r, p)),
        3 => (0u64..60).prop_map(Op::Lookup),
        3 => (hash(), 0u32..70, prop::option::of(0usize..12), 0usize..40).prop_map(|(h, r, l, m)| Op::Bounded(h, r, l, m)),
        2 => (0u32..70, 1usize..8, 0usize..60).prop_map(|(r, c, m)| Op::PairsPaged(r, c, m)),
        1 => (1usize..8).prop_map(Op::EntriesPaged),
        3 => any::<bool>().prop_map(Op::Builds),
        1 => Just(Op::RoundTrip),
    ]
}

fn kind(e: &Error) -> &'static str {
    match e {
        Error::DuplicateId(_) => "duplicate",
        Error::IdOutOfRange(_) => "range",
        Error::IdsExhausted => "exhausted",
        Error::NoSuchId(_) => "missing",
        Error::TooManyRows(_) => "too many rows",
        _ => "other",
    }
}

fn run(
    threshold: usize,
    tables_everywhere: bool,
    deferred: Option<usize>,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let mut index = Index::with_sync_threshold(threshold).unwrap();
    if tables_everywhere {
        index.set_multi_index_min_len(0);
    }
    if let Some(len) = deferred {
        index.set_deferred_build_min_len(len);
    }
    // Jobs taken and not yet run: builds may finish long after, and in any order.
    let mut jobs: Vec<mvptree::BuildJob> = Vec::new();
    let mut model = Model::new(threshold);
    for op in ops {
        match op {
            Op::Add(h, t, i) => {
                let got = index.add(h, &t, i).map_err(|e| kind(&e));
                prop_assert_eq!(got, model.add(h, &t, i));
            }
            Op::AddMany(batch) => {
                let got = index
                    .add_many(batch.iter().map(|(h, t, i)| (*h, t.as_slice(), *i)))
                    .map_err(|e| kind(&e));
                prop_assert_eq!(got, model.add_many(&batch));
            }
            Op::Delete(id) => {
                let got = index.delete(id).map_err(|e| kind(&e));
                let want = match model.entries.remove(&id) {
                    Some(_) => {
                        model.pending.retain(|&p| p != id);
                        Ok(())
                    }
                    None => Err("missing"),
                };
                prop_assert_eq!(got, want);
            }
            Op::Sync => {
                index.sync();
                model.pending.clear();
            }
            Op::SetThreshold(t) => {
                index.set_sync_threshold(t).unwrap();
                model.threshold = t;
                if model.pending.len() >= t {
                    model.pending.clear();
                }
            }
            Op::Query(h, r, p) => prop_assert_eq!(index.query_with(h, r, p), model.query(h, r)),
            Op::QueryMany(hs, r, p) => {
                let want: Vec<Vec<Match>> = hs.iter().map(|&h| model.query(h, r)).collect();
                prop_assert_eq!(index.query_many_with(&hs, r, p), want);
            }
            Op::Knn(h, k, p) => prop_assert_eq!(index.knn_with(h, k, p), model.knn(h, k)),
            Op::KnnMany(hs, k, p) => {
                let want: Vec<Vec<Match>> = hs.iter().map(|&h| model.knn(h, k)).collect();
                prop_assert_eq!(index.knn_many_with(&hs, k, p), want);
            }
            Op::Pairs(r, p) => prop_assert_eq!(index.pairs_with(r, p), model.pairs(r)),
            Op::Bounded(h, r, limit, max_rows) => {
                let mut want = model.query(h, r);
                if let Some(limit) = limit {
                    prop_assert_eq!(
                        index.query_limit(h, r, limit),
                        want[..limit.min(want.len())].to_vec()
                    );
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
                prop_assert_eq!(got, want);
                let k = limit.unwrap_or(3);
                let want = if k.min(index.len()) > max_rows {
                    Err("too many rows")
                } else {
                    Ok(model.knn(h, k))
                };
                prop_assert_eq!(
                    index.knn_bounded(h, k, max_rows).map_err(|e| kind(&e)),
                    want
                );
                let hs = [h, !h, h ^ 1];
                let all: Vec<Vec<Match>> = hs.iter().map(|&q| model.query(q, r)).collect();
                let rows: usize = all.iter().map(Vec::len).sum();
                let want = if rows > max_rows {
                    Err("too many rows")
                } else {
                    Ok(all)
                };
                prop_assert_eq!(
                    index
                        .query_many_bounded(&hs, r, max_rows)
                        .map_err(|e| kind(&e)),
                    want
                );
            }
            Op::PairsPaged(r, count, max_rows) => {
                let want = model.pairs(r);
                let bounded = if want.len() > max_rows {
                    Err("too many rows")
                } else {
                    Ok(want.clone())
                };
                prop_assert_eq!(
                    index.pairs_bounded(r, max_rows).map_err(|e| kind(&e)),
                    bounded
                );
                let mut got = Vec::new();
                let mut cursor = PairsCursor::START;
                let mut pages = 0;
                loop {
                    let (page, next) = index.pairs_page(r, cursor, count);
                    prop_assert!(page.len() <= count);
                    got.extend(page);
                    pages += 1;
                    prop_assert!(pages <= 2 + want.len() + index.len(), "the walk must end");
                    match next {
                        Some(next) => cursor = next.to_string().parse().unwrap(),
                        None => break,
                    }
                }
                got.sort_unstable_by_key(|p| (p.distance, p.a, p.b));
                prop_assert_eq!(got, want);
            }
            Op::EntriesPaged(count) => {
                let mut got = Vec::new();
                let mut start = 0;
                loop {
                    let (page, next) = index.entries_page(start, count);
                    prop_assert!(page.len() <= count);
                    got.extend(
                        page.iter()
                            .map(|e| (e.id, e.hash, e.title.to_vec(), e.pending)),
                    );
                    match next {
                        Some(next) => start = next,
                        None => break,
                    }
                }
                let want: Vec<(u64, u64, Vec<u8>, bool)> = model
                    .entries
                    .iter()
                    .map(|(&id, (h, t))| (id, *h, t.clone(), model.pending.contains(&id)))
                    .collect();
                prop_assert_eq!(got, want);
            }
            Op::Builds(all) => {
                jobs.extend(index.take_build_jobs());
                let mut kept = Vec::new();
                for (n, job) in jobs.drain(..).enumerate() {
                    if all || n % 2 == 0 {
                        job.run();
                    } else {
                        kept.push(job);
                    }
                }
                jobs = kept;
                index.install_builds();
            }
            Op::Lookup(id) => {
                let want = model.entries.get(&id).map(|(_, t)| t.as_slice());
                prop_assert_eq!(index.lookup(id), want);
                prop_assert_eq!(index.hash_of(id), model.entries.get(&id).map(|e| e.0));
            }
            Op::RoundTrip => {
                let mut bytes = Vec::new();
                index.write_to(&mut bytes).unwrap();
                let mut loaded = Index::read_from(bytes.as_slice()).unwrap();
                if tables_everywhere {
                    loaded.set_multi_index_min_len(0);
                }
                if let Some(len) = deferred {
                    loaded.set_deferred_build_min_len(len);
                }
                let mut again = Vec::new();
                loaded.write_to(&mut again).unwrap();
                prop_assert_eq!(&bytes, &again);
                index = loaded;
            }
        }
        prop_assert_eq!(index.len(), model.entries.len() - model.pending.len());
        prop_assert_eq!(index.pending_len(), model.pending.len());
        prop_assert_eq!(index.next_id(), model.next_id);
    }
    // Entries come out indexed-by-id, then pending in queue order.
    let got: Vec<(u64, bool)> = index.entries().map(|e| (e.id, e.pending)).collect();
    let mut want: Vec<(u64, bool)> = model
        .entries
        .keys()
        .filter(|id| !model.pending.contains(id))
        .map(|&id| (id, false))
        .collect();
    want.extend(model.pending.iter().map(|&id| (id, true)));
    prop_assert_eq!(got, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(3000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn index_matches_brute_force_model(
        threshold in 1usize..25,
        tables_everywhere in any::<bool>(),
        deferred in prop::option::of(0usize..40),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        run(threshold, tables_everywhere, deferred, ops)?;
    }
}

/// Larger sequences, so segments get merged and compacted several times.
#[test]
fn long_sequences_with_merges_and_compactions() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 40,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &(
                1usize..8,
                prop::option::of(0usize..200),
                prop::collection::vec(op(), 400..900),
            ),
            |(threshold, deferred, ops)| run(threshold, true, deferred, ops),
        )
        .unwrap();
}
