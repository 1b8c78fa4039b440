//! Every search at every code width, on every plan, against a brute force: the same rules hold
//! for 64-, 128- and 256-bit codes.

use mvptree::{Code, Index, Match, Pair, PairsCursor, Plan};
use proptest::prelude::*;

const PLANS: [Plan; 3] = [Plan::Auto, Plan::Scan, Plan::MultiIndex];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn code<C: Code>(&mut self) -> C {
        let words: Vec<u64> = (0..C::WORDS).map(|_| self.next()).collect();
        C::from_words(&words).unwrap()
    }

    /// `code` with up to `flips` random bits flipped.
    fn near<C: Code>(&mut self, code: C, flips: u32) -> C {
        let mut words: Vec<u64> = (0..C::WORDS).map(|i| code.word(i)).collect();
        for _ in 0..self.next() % u64::from(flips + 1) {
            let bit = (self.next() % u64::from(C::BITS)) as usize;
            words[bit / 64] ^= 1 << (bit % 64);
        }
        C::from_words(&words).unwrap()
    }
}

/// Clusters of near copies around a few originals, ids 1..=n in order.
fn clustered<C: Code>(n: usize, originals: usize, flips: u32, seed: u64) -> Vec<C> {
    let mut rng = Rng(seed | 1);
    let centres: Vec<C> = (0..originals).map(|_| rng.code()).collect();
    (0..n)
        .map(|i| rng.near(centres[i % originals], flips))
        .collect()
}

/// `hashes[i]` carries id `i + 1`; `None` marks a deleted entry.
fn brute_force<C: Code>(hashes: &[Option<C>], query: C, radius: u32) -> Vec<Match> {
    let mut found: Vec<Match> = hashes
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            h.map(|h| Match {
                distance: h.distance(query),
                id: i as u64 + 1,
            })
        })
        .filter(|m| m.distance <= radius)
        .collect();
    found.sort_unstable();
    found
}

fn brute_pairs<C: Code>(hashes: &[Option<C>], radius: u32) -> Vec<Pair> {
    let mut out = Vec::new();
    for (a, x) in hashes.iter().enumerate() {
        for (b, y) in hashes.iter().enumerate().skip(a + 1) {
            if let (Some(x), Some(y)) = (x, y) {
                let distance = x.distance(*y);
                if distance <= radius {
                    out.push(Pair {
                        a: a as u64 + 1,
                        b: b as u64 + 1,
                        distance,
                    });
                }
            }
        }
    }
    out.sort_unstable_by_key(|p| (p.distance, p.a, p.b));
    out
}

/// An index over `hashes` with every plan's structures on every segment, a few deletions,
/// and several segments (a sync between batches).
fn build<C: Code>(hashes: &[C]) -> (Index<C>, Vec<Option<C>>) {
    let mut index = Index::<C>::with_sync_threshold(hashes.len().max(1)).unwrap();
    index.set_multi_index_min_len(0);
    let mut live: Vec<Option<C>> = hashes.iter().copied().map(Some).collect();
    for chunk in hashes.chunks(hashes.len().div_ceil(3).max(1)) {
        index
            .add_many(chunk.iter().map(|&h| (h, &b""[..], None)))
            .unwrap();
        index.sync();
    }
    for id in (1..=hashes.len() as u64).step_by(11) {
        index.delete(id).unwrap();
        live[id as usize - 1] = None;
    }
    (index, live)
}

fn check_width<C: Code>(seed: u64) {
    let flips = C::BITS / 8;
    let hashes = clustered::<C>(900, 40, flips, seed);
    let (index, live) = build(&hashes);
    let mut rng = Rng(seed ^ 0xABCD);
    let queries: Vec<C> = (0..12)
        .map(|i| {
            if i % 3 == 0 {
                rng.code()
            } else {
                rng.near(hashes[(i * 71) % hashes.len()], flips)
            }
        })
        .collect();
    let radii = [
        0,
        1,
        C::BITS / 16,
        C::BITS / 8,
        C::BITS / 4,
        C::BITS / 2,
        C::BITS,
    ];
    for &radius in &radii {
        let want: Vec<Vec<Match>> = queries
            .iter()
            .map(|&q| brute_force(&live, q, radius))
            .collect();
        for plan in PLANS {
            for (q, want) in queries.iter().zip(&want) {
                assert_eq!(
                    &index.query_with(*q, radius, plan),
                    want,
                    "{} bits, r{radius}, {plan:?}",
                    C::BITS
                );
            }
            assert_eq!(
                index.query_many_with(&queries, radius, plan),
                want,
                "{} bits, r{radius}, batch {plan:?}",
                C::BITS
            );
        }
        let rows = index
            .snapshot()
            .query_rows(&queries, radius, None, usize::MAX, 2)
            .unwrap();
        for (i, want) in want.iter().enumerate() {
            assert_eq!(&rows.row(i).collect::<Vec<_>>(), want);
        }
        for (q, want) in queries.iter().zip(&want) {
            for limit in [1, 5] {
                let got = index.query_limit(*q, radius, limit);
                assert_eq!(got[..], want[..want.len().min(limit)], "limit {limit}");
            }
        }
        assert_eq!(
            index.query(queries[0], radius + 1000),
            brute_force(&live, queries[0], C::BITS),
            "a radius above the width acts as the width"
        );
    }
    for k in [1, 10, 2000] {
        for plan in PLANS {
            for &q in &queries {
                let want = brute_force(&live, q, C::BITS);
                let got = index.knn_with(q, k, plan);
                assert_eq!(got[..], want[..want.len().min(k)], "k {k} {plan:?}");
            }
        }
    }
    for radius in [0, C::BITS / 16, C::BITS / 8] {
        let want = brute_pairs(&live, radius);
        for plan in PLANS {
            assert_eq!(
                index.pairs_with(radius, plan),
                want,
                "pairs r{radius} {plan:?}"
            );
        }
        let mut walked = Vec::new();
        let mut cursor = PairsCursor::default();
        loop {
            let (page, next) = index.pairs_page(radius, cursor, 37);
            walked.extend(page);
            match next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        walked.sort_unstable_by_key(|p| (p.distance, p.a, p.b));
        assert_eq!(walked, want, "paged pairs r{radius}");
    }
}

#[test]
fn every_search_is_exact_at_64_bits() {
    check_width::<u64>(1);
}

#[test]
fn every_search_is_exact_at_128_bits() {
    check_width::<[u64; 2]>(2);
}

#[test]
fn every_search_is_exact_at_256_bits() {
    check_width::<[u64; 4]>(3);
}

/// Large enough for the automatic plans' own choices (multi-index tables from their usual
/// size, scans in blocks), with the answers still checked one by one.
#[test]
fn automatic_plans_are_exact_on_a_large_256_bit_index() {
    let hashes = clustered::<[u64; 4]>(30_000, 3000, 24, 9);
    let mut index = Index::<[u64; 4]>::new();
    index
        .add_many(hashes.iter().map(|&h| (h, &b""[..], None)))
        .unwrap();
    index.sync();
    let live: Vec<Option<[u64; 4]>> = hashes.iter().copied().map(Some).collect();
    let stats = index.stats();
    assert!(
        stats
            .segments
            .iter()
            .any(|s| s.multi_index_fields.len() > 8),
        "256-bit codes get more, narrower fields: {:?}",
        stats.segments
    );
    let mut rng = Rng(77);
    let queries: Vec<[u64; 4]> = (0..20)
        .map(|i| rng.near(hashes[i * 997 % hashes.len()], 16))
        .collect();
    for radius in [0, 8, 16, 31, 40, 64, 256] {
        for &q in &queries {
            assert_eq!(
                index.query(q, radius),
                brute_force(&live, q, radius),
                "r{radius}"
            );
        }
    }
    for &q in &queries[..5] {
        let want = brute_force(&live, q, 256);
        assert_eq!(index.knn(q, 10)[..], want[..10]);
    }
    assert_eq!(
        index.stats().plans_by_radius.len(),
        257,
        "a plan for each radius 0..=256"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random 256-bit codes near a few centres, random queries: every plan agrees with the
    /// brute force at every radius.
    #[test]
    fn random_256_bit_indexes_answer_exactly(
        seed in 1u64..u64::MAX,
        n in 1usize..400,
        radius in 0u32..=256,
    ) {
        let hashes = clustered::<[u64; 4]>(n, 1 + n / 20, 40, seed);
        let (index, live) = build(&hashes);
        let mut rng = Rng(seed.rotate_left(7) | 1);
        for _ in 0..4 {
            let at = (rng.next() % n as u64) as usize;
            let q = rng.near(hashes[at], 40);
            let want = brute_force(&live, q, radius);
            for plan in PLANS {
                prop_assert_eq!(&index.query_with(q, radius, plan), &want);
            }
            let knn = index.knn(q, 3);
            let all = brute_force(&live, q, 256);
            prop_assert_eq!(&knn[..], &all[..all.len().min(3)]);
        }
    }
}

proptest! {
    /// The hash grammar at every width: the text `format_code` writes reads back as the same
    /// code, and any text either parses at the width `hash_text_bits` names or is refused.
    #[test]
    fn code_text_round_trips_and_never_panics(
        words in prop::array::uniform4(any::<u64>()),
        junk in "[0-9a-fA-FxX ]{0,70}",
    ) {
        use mvptree::text::{format_code, hash_text_bits, parse_code};
        prop_assert_eq!(parse_code::<[u64; 4]>(format_code(words).as_bytes()).ok(), Some(words));
        let half = [words[0], words[1]];
        prop_assert_eq!(parse_code::<[u64; 2]>(format_code(half).as_bytes()).ok(), Some(half));
        prop_assert_eq!(parse_code::<u64>(format_code(words[0]).as_bytes()).ok(), Some(words[0]));
        let text = junk.as_bytes();
        let accepted = [
            parse_code::<u64>(text).is_ok().then_some(64),
            parse_code::<[u64; 2]>(text).is_ok().then_some(128),
            parse_code::<[u64; 4]>(text).is_ok().then_some(256),
        ];
        match hash_text_bits(text) {
            None => prop_assert_eq!(accepted, [None, None, None]),
            // 32 or 64 decimal digits are a wide code's text and a 64-bit decimal alike.
            Some(bits) => prop_assert!(accepted.contains(&Some(bits))),
        }
    }
}

/// Wide answers (rows placed in two passes) on several segments, with deleted entries, whose
/// ids ascend from one segment to the next (the rows are placed by walking the slots) or do
/// not (by walking the id map): ids given out of order across syncs, ids deleted and added
/// again, ids past the dense id table. Rows must come out sorted by distance, then id, either
/// way.
#[test]
fn wide_answers_are_sorted_whatever_order_the_ids_came_in() {
    for ascending in [true, false] {
        check_wide_answers_across_segments(ascending);
    }
}

fn check_wide_answers_across_segments(ascending: bool) {
    let mut rng = Rng(0x5EED);
    let mut index = Index::<u64>::with_sync_threshold(1 << 20).unwrap();
    let mut live: std::collections::BTreeMap<u64, u64> = Default::default();
    let add = |index: &mut Index<u64>,
               live: &mut std::collections::BTreeMap<u64, u64>,
               rng: &mut Rng,
               ids: &[u64]| {
        let entries: Vec<(u64, u64)> = ids.iter().map(|&id| (rng.code(), id)).collect();
        index
            .add_many(entries.iter().map(|&(h, id)| (h, &b""[..], Some(id))))
            .unwrap();
        index.sync();
        live.extend(entries.iter().map(|&(h, id)| (id, h)));
    };
    // A large segment, given its ids in descending order, then a small one after it (a
    // batch under a quarter of it stays a segment of its own).
    let first: Vec<u64> = (1..=2000).rev().collect();
    add(&mut index, &mut live, &mut rng, &first);
    for id in (1..=2000u64).step_by(7) {
        index.delete(id).unwrap();
        live.remove(&id);
    }
    let second: Vec<u64> = if ascending {
        (2001..=2100)
            .chain([1 << 40, (1 << 40) + 3, 1 << 50])
            .collect()
    } else {
        // Deleted ids again, and huge ones, which interleave with the first segment's.
        (1..=2000u64)
            .step_by(21)
            .chain([1 << 40, 1 << 50])
            .collect()
    };
    add(&mut index, &mut live, &mut rng, &second);
    let sizes: Vec<usize> = index.stats().segments.iter().map(|s| s.len).collect();
    assert_eq!(sizes.len(), 2, "two segments: {sizes:?}");
    let snapshot = index.snapshot();
    let queries: Vec<u64> = (0..5).map(|_| rng.code()).collect();
    for radius in [30, 34, 40, 64] {
        let rows = snapshot
            .query_rows(&queries, radius, None, usize::MAX, 1)
            .unwrap();
        let one = snapshot
            .query_rows(&queries[..1], radius, None, usize::MAX, 1)
            .unwrap();
        for (i, &q) in queries.iter().enumerate() {
            let mut want: Vec<Match> = live
                .iter()
                .map(|(&id, &h)| Match {
                    distance: (h ^ q).count_ones(),
                    id,
                })
                .filter(|m| m.distance <= radius)
                .collect();
            want.sort_unstable();
            let label = format!("ascending {ascending} r{radius} q{i}");
            assert_eq!(rows.row(i).collect::<Vec<_>>(), want, "{label}");
            if i == 0 {
                assert_eq!(one.row(0).collect::<Vec<_>>(), want, "{label} alone");
            }
        }
    }
}
