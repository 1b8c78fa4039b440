//! Batches with array answers against the same searches one at a time and a brute force:
//! the same rows in the same order whatever the thread count, the row cap honoured.

use mvptree::{distance, Error, Index, KnnRows, Match, Pair, Plan};

/// A clustered index: copies near a few hundred originals, so answers have many rows.
fn clustered(n: usize) -> (Index, Vec<u64>) {
    clustered_from(n, 1)
}

/// [`clustered`] with ids `first_id..`.
fn clustered_from(n: usize, first_id: u64) -> (Index, Vec<u64>) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let originals: Vec<u64> = (0..300).map(|_| next()).collect();
    let mut index = Index::new();
    let mut hashes = Vec::new();
    for i in 0..n {
        let mut h = originals[i % originals.len()];
        for _ in 0..(next() % 6) {
            h ^= 1 << (next() % 64);
        }
        hashes.push(h);
        index.add(h, b"", Some(first_id + i as u64)).unwrap();
    }
    index.sync();
    (index, hashes)
}

fn brute_force(hashes: &[u64], query: u64, radius: u32) -> Vec<Match> {
    let mut found: Vec<Match> = hashes
        .iter()
        .enumerate()
        .map(|(i, &h)| Match {
            distance: distance(h, query),
            id: i as u64 + 1,
        })
        .filter(|m| m.distance <= radius)
        .collect();
    found.sort_unstable();
    found
}

#[test]
fn range_rows_equal_single_queries_and_brute_force_on_any_thread_count() {
    let (index, hashes) = clustered(20_000);
    let snapshot = index.snapshot();
    let queries: Vec<u64> = hashes.iter().step_by(37).map(|h| h ^ 0b101).collect();
    for radius in [0, 4, 8, 16] {
        let want: Vec<Vec<Match>> = queries
            .iter()
            .map(|&q| brute_force(&hashes, q, radius))
            .collect();
        for threads in [1, 2, 3, 8] {
            let rows = snapshot
                .query_rows(&queries, radius, None, usize::MAX, threads)
                .unwrap();
            assert_eq!(rows.queries(), queries.len());
            assert_eq!(*rows.lims.last().unwrap() as usize, rows.ids.len());
            for (i, want) in want.iter().enumerate() {
                assert_eq!(
                    &rows.row(i).collect::<Vec<_>>(),
                    want,
                    "r{radius} t{threads} q{i}"
                );
            }
            let limited = snapshot
                .query_rows(&queries, radius, Some(3), usize::MAX, threads)
                .unwrap();
            for (i, want) in want.iter().enumerate() {
                let firsts: Vec<Match> = want.iter().copied().take(3).collect();
                assert_eq!(limited.row(i).collect::<Vec<_>>(), firsts);
            }
        }
    }
}

#[test]
fn range_rows_of_many_chunks_join_in_query_order_on_any_thread_count() {
    // 400 queries of about 330 rows each: one thread appends every chunk to one answer,
    // several join their parts on several threads (more than 65,536 rows in all).
    let (index, hashes) = clustered(100_000);
    let snapshot = index.snapshot();
    let queries: Vec<u64> = hashes.iter().step_by(250).map(|h| h ^ 0b11).collect();
    let radius = 8;
    let want: Vec<Vec<Match>> = queries
        .iter()
        .map(|&q| brute_force(&hashes, q, radius))
        .collect();
    let total: usize = want.iter().map(Vec::len).sum();
    assert!(total > 1 << 16, "{total} rows");
    for threads in [1, 2, 3, 64] {
        let rows = snapshot
            .query_rows(&queries, radius, None, usize::MAX, threads)
            .unwrap();
        assert_eq!(rows.queries(), queries.len());
        assert_eq!(rows.ids.len(), total);
        for (i, want) in want.iter().enumerate() {
            assert_eq!(&rows.row(i).collect::<Vec<_>>(), want, "t{threads} q{i}");
        }
        assert!(snapshot
            .query_rows(&queries, radius, None, total, threads)
            .is_ok());
        assert!(matches!(
            snapshot.query_rows(&queries, radius, None, total - 1, threads),
            Err(Error::TooManyRows(_))
        ));
    }
}

#[test]
fn range_rows_refuse_more_rows_than_allowed_on_any_thread_count() {
    let (index, hashes) = clustered(5_000);
    let snapshot = index.snapshot();
    let queries = &hashes[..500];
    let total = snapshot
        .query_rows(queries, 8, None, usize::MAX, 1)
        .unwrap()
        .ids
        .len();
    for threads in [1, 2, 4] {
        assert!(snapshot
            .query_rows(queries, 8, None, total, threads)
            .is_ok());
        let refused = snapshot.query_rows(queries, 8, None, total - 1, threads);
        assert!(matches!(refused, Err(Error::TooManyRows(max)) if max == total - 1));
    }
}

#[test]
fn knn_rows_equal_single_searches_and_pad_short_rows() {
    let (index, hashes) = clustered(3_000);
    let snapshot = index.snapshot();
    let queries: Vec<u64> = hashes.iter().step_by(11).copied().collect();
    for k in [1, 10] {
        for threads in [1, 2, 5] {
            let rows = snapshot.knn_rows(&queries, k, usize::MAX, threads).unwrap();
            assert_eq!(rows.ids.len(), queries.len() * k);
            for (i, &q) in queries.iter().enumerate() {
                let want = snapshot.knn(q, k);
                let got: Vec<Match> = (0..k)
                    .map(|j| Match {
                        distance: rows.distances[i * k + j] as u32,
                        id: rows.ids[i * k + j] as u64,
                    })
                    .collect();
                assert_eq!(got, want);
            }
        }
    }
    let (small, _) = clustered(3);
    let rows = small
        .snapshot()
        .knn_rows(&[0, 1], 5, usize::MAX, 2)
        .unwrap();
    assert_eq!(rows.ids.len(), 10);
    assert_eq!(&rows.ids[3..5], &[KnnRows::NO_ID; 2]);
    assert_eq!(&rows.distances[8..10], &[KnnRows::NO_DISTANCE; 2]);
    assert!(matches!(
        small.snapshot().knn_rows(&[0, 1], 5, 9, 1),
        Err(Error::TooManyRows(9))
    ));
}

/// Every pair within `radius` of `hashes` (ids `first_id..`), sorted as the self-join sorts.
fn brute_pairs(hashes: &[u64], first_id: u64, radius: u32) -> Vec<Pair> {
    let mut pairs = Vec::new();
    for (i, &x) in hashes.iter().enumerate() {
        for (k, &y) in hashes.iter().enumerate().skip(i + 1) {
            let d = distance(x, y);
            if d <= radius {
                pairs.push(Pair {
                    a: first_id + i as u64,
                    b: first_id + k as u64,
                    distance: d,
                });
            }
        }
    }
    pairs.sort_unstable_by_key(|p| (p.distance, p.a, p.b));
    pairs
}

/// The self-join on any thread count, as rows and as columns, against a brute force: with
/// small ids (packed into one sort key a row) and with ids too large to pack.
#[test]
fn pairs_on_threads_and_as_columns_equal_a_brute_force_and_keep_the_cap() {
    for first_id in [1, 1 << 40] {
        let (index, hashes) = clustered_from(30_000, first_id);
        let snapshot = index.snapshot();
        for radius in [0, 3, 6] {
            let want = brute_pairs(&hashes, first_id, radius);
            assert!(!want.is_empty());
            assert_eq!(snapshot.pairs_bounded(radius, usize::MAX).unwrap(), want);
            for threads in [1, 2, 3] {
                let at = format!("r{radius} t{threads}, ids from {first_id}");
                let columns = snapshot.pairs_rows(radius, usize::MAX, threads).unwrap();
                let rows: Vec<Pair> = (0..columns.a.len())
                    .map(|i| Pair {
                        a: columns.a[i] as u64,
                        b: columns.b[i] as u64,
                        distance: columns.distances[i] as u32,
                    })
                    .collect();
                assert_eq!(rows, want, "columns, {at}");
                assert!(matches!(
                    snapshot.pairs_rows(radius, want.len() - 1, threads),
                    Err(Error::TooManyRows(_))
                ));
                let got = snapshot
                    .pairs_on_threads(radius, usize::MAX, threads)
                    .unwrap();
                assert_eq!(got, want, "{at}");
                assert!(snapshot
                    .pairs_on_threads(radius, want.len(), threads)
                    .is_ok());
                // Caps below, within and past a thread's batch of uncounted rows.
                for cap in [0, 1, want.len() / 2, want.len() - 1] {
                    assert!(
                        matches!(
                            snapshot.pairs_on_threads(radius, cap, threads),
                            Err(Error::TooManyRows(_))
                        ),
                        "cap {cap}, {at}"
                    );
                }
            }
        }
    }
}

/// Batched k-nearest searches on an index with multi-index tables, on every plan: near
/// queries the probe finishes and far ones it leaves to the shared scan, each row what a
/// brute force gives.
#[test]
fn knn_many_equals_brute_force_on_every_plan() {
    let (index, hashes) = clustered(30_000);
    let snapshot = index.snapshot();
    let mut x = 0x5555_1234u64;
    let queries: Vec<u64> = (0..40)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 2 == 0 {
                hashes[i * 701] ^ (1 << (i % 64))
            } else {
                x
            }
        })
        .collect();
    for k in [1, 10, 50] {
        let want: Vec<Vec<Match>> = queries
            .iter()
            .map(|&q| {
                let mut all = brute_force(&hashes, q, 64);
                all.truncate(k);
                all
            })
            .collect();
        for plan in [Plan::Auto, Plan::Scan, Plan::MultiIndex] {
            for batch in [3, 16, 40] {
                let got: Vec<Vec<Match>> = queries
                    .chunks(batch)
                    .flat_map(|group| snapshot.knn_many_with(group, k, plan))
                    .collect();
                assert_eq!(got, want, "k {k} {plan:?} batch {batch}");
            }
        }
    }
}

/// Answers wide enough that a chunk gathers its queries a few at a time (about 34,000 rows a
/// query here), against the brute force, on one thread and several.
#[test]
fn wide_range_rows_gathered_in_groups_equal_brute_force() {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let hashes: Vec<u64> = (0..40_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
        .collect();
    let mut index = Index::new();
    for &h in &hashes {
        index.add(h, b"", None).unwrap();
    }
    index.sync();
    let snapshot = index.snapshot();
    let queries: Vec<u64> = hashes.iter().step_by(400).map(|h| h ^ 0xF0).collect();
    for radius in [36, 64] {
        for threads in [1, 3] {
            let rows = snapshot
                .query_rows(&queries, radius, None, usize::MAX, threads)
                .unwrap();
            for (i, &q) in queries.iter().enumerate() {
                let got: Vec<Match> = rows.row(i).collect();
                assert_eq!(
                    got,
                    brute_force(&hashes, q, radius),
                    "r{radius} t{threads} q{i}"
                );
            }
        }
    }
}

/// Radii that find a large share of the index take the two-pass path that writes rows in id
/// order: it must agree with a brute force when segments hold ids out of order, ids sit
/// outside the dense id table, deleted ids come back on other entries, and entries still
/// wait unsynced.
#[test]
fn wide_range_rows_agree_with_brute_force_whatever_the_ids() {
    let mut x = 0x8F1B_BCDC_3A2D_4E21u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut index = Index::with_sync_threshold(100_000).unwrap();
    let mut live: std::collections::BTreeMap<u64, u64> = Default::default();
    let add = |index: &mut Index,
               id: Option<u64>,
               live: &mut std::collections::BTreeMap<u64, u64>,
               h: u64| {
        let id = index.add(h, b"", id).unwrap();
        live.insert(id, h);
    };
    for _ in 0..3000 {
        add(&mut index, None, &mut live, next());
    }
    index.sync();
    // Explicit ids in falling order, and ids far past the dense table.
    for id in (20_000..22_000u64).rev() {
        add(&mut index, Some(id), &mut live, next());
    }
    for k in 0..300u64 {
        add(&mut index, Some((1 << 40) + 977 * k), &mut live, next());
    }
    index.sync();
    for id in (1..3000u64).step_by(7).chain((20_000..22_000).step_by(13)) {
        index.delete(id).unwrap();
        live.remove(&id);
    }
    index.sync();
    // Deleted ids back on new entries, in a segment of their own.
    for id in (1..3000u64).step_by(14) {
        add(&mut index, Some(id), &mut live, next());
    }
    index.sync();
    // Pending: queries do not see these yet.
    for _ in 0..50 {
        index.add(next(), b"", None).unwrap();
    }
    assert!(index.pending_len() > 0);
    let snapshot = index.snapshot();
    let queries: Vec<u64> = (0..9).map(|_| next()).collect();
    for radius in [28, 32, 40, 64] {
        let want: Vec<Vec<Match>> = queries
            .iter()
            .map(|&q| {
                let mut found: Vec<Match> = live
                    .iter()
                    .map(|(&id, &h)| Match {
                        distance: distance(h, q),
                        id,
                    })
                    .filter(|m| m.distance <= radius)
                    .collect();
                found.sort_unstable();
                found
            })
            .collect();
        for threads in [1, 2] {
            let rows = snapshot
                .query_rows(&queries, radius, None, usize::MAX, threads)
                .unwrap();
            assert_eq!(rows.queries(), queries.len());
            for (i, want) in want.iter().enumerate() {
                assert_eq!(
                    &rows.row(i).collect::<Vec<_>>(),
                    want,
                    "r{radius} t{threads} q{i}"
                );
            }
            let total: usize = want.iter().map(Vec::len).sum();
            assert!(snapshot
                .query_rows(&queries, radius, None, total, threads)
                .is_ok());
            let refused = snapshot.query_rows(&queries, radius, None, total - 1, threads);
            assert!(
                matches!(refused, Err(Error::TooManyRows(max)) if max == total - 1),
                "r{radius} t{threads}: one row too many is refused"
            );
        }
    }
}

#[test]
fn empty_batches_answer_no_rows_on_any_thread_count_and_radius() {
    let (index, _) = clustered(2_000);
    let snapshot = index.snapshot();
    for threads in [1, 2, 8] {
        for radius in [0, 8, 24, 64] {
            for limit in [None, Some(3)] {
                let rows = snapshot
                    .query_rows(&[], radius, limit, usize::MAX, threads)
                    .unwrap();
                assert_eq!(rows.queries(), 0);
                assert_eq!(rows.lims, vec![0]);
                assert!(rows.ids.is_empty() && rows.distances.is_empty());
            }
            assert!(index.query_many(&[], radius).is_empty());
        }
        for k in [1, 10] {
            let rows = snapshot.knn_rows(&[], k, usize::MAX, threads).unwrap();
            assert!(rows.ids.is_empty() && rows.distances.is_empty());
            assert!(index.knn_many(&[], k).is_empty());
        }
    }
}
