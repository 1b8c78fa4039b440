//! Each operation and each error of the public API, one at a time.

use mvptree::{
    Error, Index, Match, Pair, Plan, DEFAULT_SYNC_THRESHOLD, MAX_ID, MAX_SYNC_THRESHOLD,
};

fn m(distance: u32, id: u64) -> Match {
    Match { distance, id }
}

#[test]
fn ids_count_up_from_one_and_are_never_reused() {
    let mut index = Index::new();
    assert_eq!(index.sync_threshold(), DEFAULT_SYNC_THRESHOLD);
    assert_eq!(index.add(1, b"a", None).unwrap(), 1);
    assert_eq!(index.add(2, b"b", None).unwrap(), 2);
    index.delete(2).unwrap();
    assert_eq!(index.add(3, b"c", None).unwrap(), 3);
    assert_eq!(index.add(4, b"d", Some(100)).unwrap(), 100);
    assert_eq!(index.add(5, b"e", None).unwrap(), 101);
    // An explicit id below the counter is fine when free, and does not move the counter back.
    assert_eq!(index.add(6, b"f", Some(2)).unwrap(), 2);
    assert_eq!(index.next_id(), 102);
}

#[test]
fn id_errors() {
    let mut index = Index::new();
    index.add(0, b"a", Some(7)).unwrap();
    assert!(matches!(
        index.add(0, b"b", Some(7)),
        Err(Error::DuplicateId(7))
    ));
    index.sync();
    assert!(matches!(
        index.add(0, b"b", Some(7)),
        Err(Error::DuplicateId(7))
    ));
    assert!(matches!(
        index.add(0, b"b", Some(MAX_ID + 1)),
        Err(Error::IdOutOfRange(_))
    ));
    assert_eq!(index.add(0, b"max", Some(MAX_ID)).unwrap(), MAX_ID);
    assert!(matches!(index.add(0, b"b", None), Err(Error::IdsExhausted)));
    assert_eq!(index.add(0, b"zero", Some(0)).unwrap(), 0);
    assert!(matches!(index.delete(12345), Err(Error::NoSuchId(12345))));
    assert!(matches!(
        index.advance_next_id(MAX_ID + 2),
        Err(Error::IdOutOfRange(_))
    ));
}

#[test]
fn pending_entries_are_found_by_lookup_but_not_by_queries() {
    let mut index = Index::new();
    let id = index.add(0xFF, b"pending", None).unwrap();
    assert_eq!(index.lookup(id), Some(&b"pending"[..]));
    assert_eq!(index.hash_of(id), Some(0xFF));
    assert!(index.query(0xFF, 0).is_empty());
    assert_eq!((index.len(), index.pending_len()), (0, 1));
    index.sync();
    assert_eq!(index.query(0xFF, 0), vec![m(0, id)]);
    assert_eq!((index.len(), index.pending_len()), (1, 0));
}

#[test]
fn the_threshold_syncs_automatically() {
    let mut index = Index::with_sync_threshold(3).unwrap();
    index.add(1, b"", None).unwrap();
    index.add(2, b"", None).unwrap();
    assert_eq!(index.len(), 0);
    index.add(3, b"", None).unwrap();
    assert_eq!((index.len(), index.pending_len()), (3, 0));
    index.add(4, b"", None).unwrap();
    index.add(5, b"", None).unwrap();
    // Lowering the threshold under the queue length syncs at once.
    index.set_sync_threshold(2).unwrap();
    assert_eq!((index.len(), index.pending_len()), (5, 0));
    assert!(matches!(
        Index::<u64>::with_sync_threshold(0),
        Err(Error::InvalidSyncThreshold(0))
    ));
    assert!(matches!(
        index.set_sync_threshold(MAX_SYNC_THRESHOLD + 1),
        Err(Error::InvalidSyncThreshold(_))
    ));
}

#[test]
fn add_many_is_all_or_nothing_and_syncs_like_single_adds() {
    let mut index = Index::with_sync_threshold(4).unwrap();
    index.add(1, b"x", None).unwrap();
    let bad: Vec<(u64, &[u8], Option<u64>)> = vec![(1, b"a", None), (2, b"b", Some(3))];
    // The first entry would get id 2, the second... 3 (fine), but add a clash with id 1:
    assert!(matches!(
        index.add_many(vec![(5, &b"a"[..], None), (6, &b"b"[..], Some(1))]),
        Err(Error::DuplicateId(1))
    ));
    // Auto id 2 then explicit 2 clash inside the batch.
    assert!(matches!(
        index.add_many(vec![(5, &b"a"[..], None), (6, &b"b"[..], Some(2))]),
        Err(Error::DuplicateId(2))
    ));
    assert_eq!(
        (index.len(), index.pending_len(), index.next_id()),
        (0, 1, 2)
    );
    let ids = index.add_many(bad).unwrap();
    assert_eq!(ids, vec![2, 3]);
    let more: Vec<(u64, &[u8], Option<u64>)> = (0..6).map(|i| (i, &b"m"[..], None)).collect();
    index.add_many(more).unwrap();
    // 3 queued + 6 = 9 adds: syncs at 4 and 8 leave 1 pending.
    assert_eq!((index.len(), index.pending_len()), (8, 1));
}

#[test]
fn queries_are_sorted_by_distance_then_id_and_radius_saturates() {
    let mut index = Index::new();
    let a = index.add(0b0000, b"a", None).unwrap();
    let b = index.add(0b0011, b"b", None).unwrap();
    let c = index.add(0b0001, b"c", None).unwrap();
    let d = index.add(0b0010, b"d", None).unwrap();
    let e = index.add(u64::MAX, b"e", None).unwrap();
    index.sync();
    assert_eq!(index.query(0, 1), vec![m(0, a), m(1, c), m(1, d)]);
    assert_eq!(index.query_limit(0, 1, 2), vec![m(0, a), m(1, c)]);
    assert_eq!(index.query(0, 1000).last(), Some(&m(64, e)));
    assert_eq!(index.query(0, 1000).len(), 5);
    assert_eq!(index.knn(0b0011, 2), vec![m(0, b), m(1, c)]);
    assert!(index.knn(0, 0).is_empty());
    assert_eq!(index.knn(0, 99).len(), 5);
    assert_eq!(
        index.query_many(&[0, u64::MAX], 0),
        vec![vec![m(0, a)], vec![m(0, e)]]
    );
    assert_eq!(
        index.pairs(1),
        vec![
            Pair {
                a,
                b: c,
                distance: 1
            },
            Pair {
                a,
                b: d,
                distance: 1
            },
            Pair {
                a: b,
                b: c,
                distance: 1
            },
            Pair {
                a: b,
                b: d,
                distance: 1
            },
        ]
    );
}

#[test]
fn delete_works_on_pending_and_indexed_entries() {
    let mut index = Index::new();
    let a = index.add(1, b"a", None).unwrap();
    index.sync();
    let b = index.add(1, b"b", None).unwrap();
    index.delete(b).unwrap();
    index.sync();
    assert_eq!(index.query(1, 0), vec![m(0, a)]);
    index.delete(a).unwrap();
    assert!(index.query(1, 0).is_empty());
    assert_eq!(index.lookup(a), None);
    assert!(matches!(index.delete(a), Err(Error::NoSuchId(_))));
    assert!(index.is_empty());
}

/// Bytes per entry at 1M entries, titles (5 bytes) excluded.
fn bytes_per_entry(multi_index: bool) -> (f64, Index) {
    const N: u64 = 1_000_000;
    let mut index = Index::new();
    if !multi_index {
        index.set_multi_index_min_len(usize::MAX);
    }
    let empty = index.stats().memory_bytes;
    let entries: Vec<(u64, &[u8], Option<u64>)> = (0..N)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15), &b"title"[..], None))
        .collect();
    index.add_many(entries).unwrap();
    index.sync();
    assert_eq!(index.stats().entries, N as usize);
    let per_entry = (index.stats().memory_bytes - empty) as f64 / N as f64 - 5.0;
    (per_entry, index)
}

#[test]
fn memory_per_entry_stays_within_budget() {
    // The columns and the id map alone: a code (8 bytes) and the id's slot (4); ids that
    // count up by one and titles of one length (as here) are kept as runs, in no bytes, and
    // otherwise take 4 bytes each while they fit.
    let (columns_only, _) = bytes_per_entry(false);
    println!("{columns_only:.1} bytes per entry at 1M without multi-index tables");
    assert!(columns_only <= 13.0, "{columns_only} bytes per entry");
    // Everything, multi-index tables included: 64.
    let (all, index) = bytes_per_entry(true);
    println!("{all:.1} bytes per entry at 1M with every structure");
    assert!(all <= 64.0, "{all} bytes per entry");
    assert!(
        all > columns_only + 16.0,
        "the tables hold four 4-byte positions per entry"
    );
    let pairs = index.stats().to_pairs();
    let names: Vec<&str> = pairs.iter().map(|p| p.0).collect();
    assert_eq!(
        &names[..6],
        [
            "entries",
            "pending",
            "next_id",
            "sync_threshold",
            "bits",
            "memory_bytes"
        ]
    );
    let kernel = pairs.iter().find(|p| p.0 == "kernel").unwrap();
    assert_eq!(
        kernel.1,
        mvptree::InfoValue::Text(mvptree::kernel().name().into())
    );
    let plan = pairs.iter().find(|p| p.0 == "plan").unwrap();
    assert!(
        format!("{:?}", plan.1).contains("multi-index r0-"),
        "{plan:?}"
    );
}

#[test]
fn same_operations_give_the_same_structure() {
    let build = || {
        let mut index = Index::with_sync_threshold(50).unwrap();
        for i in 0..5000u64 {
            index
                .add(i.wrapping_mul(0xD1B5_4A32_D192_ED03), b"", None)
                .unwrap();
            if i % 7 == 0 && i > 0 {
                index.delete(i).unwrap();
            }
        }
        index.stats()
    };
    assert_eq!(build(), build());
}

/// Wide queries return thousands of matches, sorted by a different path than small answers.
#[test]
fn large_answers_are_sorted_by_distance_then_id() {
    let mut index = Index::new();
    let mut hashes = Vec::new();
    for i in 0..6000u64 {
        let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0xFFFF_0000_FFFF;
        hashes.push((h, index.add(h, b"", Some(6000 - i)).unwrap()));
    }
    index.sync();
    for radius in [20, 64] {
        let mut want: Vec<Match> = hashes
            .iter()
            .map(|&(h, id)| m(mvptree::distance(h, 0), id))
            .filter(|x| x.distance <= radius)
            .collect();
        want.sort();
        assert!(want.len() > 1024);
        assert_eq!(index.query(0, radius), want);
        assert_eq!(index.query_many(&[0], radius), vec![want]);
    }
}

/// kNN on an index large enough for multi-index tables, with near and far queries, so that
/// the automatic plan takes each of its paths: probe and finish, probe then scan.
#[test]
fn knn_is_exact_on_every_automatic_path() {
    let mut x = 0x1234_5678u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut index = Index::new();
    let mut hashes = Vec::new();
    // 1M entries: only there is finishing the probe cheaper than a scan while the k-th
    // neighbour found so far lies beyond the probe's radius.
    for _ in 0..100_000 {
        let center = next();
        for _ in 0..10 {
            let h = center ^ (1 << (next() % 64)) ^ (1 << (next() % 64));
            hashes.push((h, index.add(h, b"", None).unwrap()));
        }
    }
    index.sync();
    let brute = |q: u64, k: usize| {
        let mut all: Vec<Match> = hashes
            .iter()
            .map(|&(h, id)| m(mvptree::distance(h, q), id))
            .collect();
        if k < all.len() {
            all.select_nth_unstable(k);
            all.truncate(k);
        }
        all.sort();
        all
    };
    for i in 0..60 {
        let q = if i % 2 == 0 {
            hashes[i * 97].0 ^ 0b101
        } else {
            next()
        };
        for k in [1, 10, 100, 1000] {
            assert_eq!(index.knn(q, k), brute(q, k), "query {i}, k {k}");
        }
    }
    // The same queries as one batch: the probe-then-scan ones share the segment's scan.
    let queries: Vec<u64> = (0..60)
        .map(|i| {
            if i % 2 == 0 {
                hashes[i * 97].0 ^ 0b101
            } else {
                next()
            }
        })
        .collect();
    for k in [1, 10, 100] {
        let want: Vec<Vec<Match>> = queries.iter().map(|&q| brute(q, k)).collect();
        assert_eq!(index.knn_many(&queries, k), want, "k {k}");
    }
}

/// A scan reads the ids of its hits a thousand or so at a time, after their positions: answers
/// of thousands of rows, with ids in no relation to positions and dead entries among the hits,
/// come out whole and exact, and a cap one row short of an answer refuses it.
#[test]
fn scans_with_many_hits_resolve_every_id() {
    let hashes: Vec<u64> = (0..50_000u64)
        .map(|i| (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17))
        .collect();
    let mut index = Index::with_sync_threshold(MAX_SYNC_THRESHOLD).unwrap();
    let ids: Vec<u64> = (0..hashes.len() as u64)
        .map(|i| (i * 7_919) % 1_000_003 + 1)
        .collect();
    index
        .add_many(
            hashes
                .iter()
                .zip(&ids)
                .map(|(&h, &id)| (h, &b""[..], Some(id))),
        )
        .unwrap();
    index.sync();
    for &id in ids.iter().step_by(7) {
        index.delete(id).unwrap();
    }
    let radius = 26;
    let brute = |q: u64| {
        let mut want: Vec<Match> = hashes
            .iter()
            .zip(&ids)
            .enumerate()
            .filter(|(i, _)| i % 7 != 0)
            .map(|(_, (&h, &id))| m((h ^ q).count_ones(), id))
            .filter(|r| r.distance <= radius)
            .collect();
        want.sort();
        want
    };
    let queries = [hashes[1], hashes[2], !hashes[3]];
    let wants: Vec<Vec<Match>> = queries.iter().map(|&q| brute(q)).collect();
    assert!(
        wants.iter().all(|w| w.len() > 3_000),
        "answers span many id passes"
    );
    for (&q, want) in queries.iter().zip(&wants) {
        assert_eq!(&index.query_with(q, radius, Plan::Scan), want);
        assert_eq!(
            &index.query_bounded(q, radius, None, want.len()).unwrap(),
            want
        );
        assert!(matches!(
            index.query_bounded(q, radius, None, want.len() - 1),
            Err(Error::TooManyRows(_))
        ));
        // One query's rows take their own path: no query tags to group them by.
        let snapshot = index.snapshot();
        let one = snapshot
            .query_rows(&[q], radius, None, want.len(), 1)
            .unwrap();
        assert_eq!(one.lims, [0, want.len() as u64]);
        assert_eq!(one.ids, want.iter().map(|r| r.id).collect::<Vec<_>>());
        assert_eq!(
            one.distances,
            want.iter().map(|r| r.distance).collect::<Vec<_>>()
        );
        assert!(matches!(
            snapshot.query_rows(&[q], radius, None, want.len() - 1, 1),
            Err(Error::TooManyRows(_))
        ));
    }
    assert_eq!(index.query_many_with(&queries, radius, Plan::Scan), wants);
    let total: usize = wants.iter().map(Vec::len).sum();
    let rows = index
        .snapshot()
        .query_rows(&queries, radius, None, total, 1)
        .unwrap();
    let flat: Vec<Match> = wants.concat();
    assert_eq!(rows.ids, flat.iter().map(|r| r.id).collect::<Vec<_>>());
    assert_eq!(
        rows.distances,
        flat.iter().map(|r| r.distance).collect::<Vec<_>>()
    );
    assert!(matches!(
        index
            .snapshot()
            .query_rows(&queries, radius, None, total - 1, 1),
        Err(Error::TooManyRows(_))
    ));
}

/// An answer past the row cap is refused, and finding that out stops the work: the self-join
/// of 20,000 entries at radius 64 (2·10^8 pairs) or of 20,000 identical hashes (one bucket
/// holding every pair) ends as soon as the cap is passed.
#[test]
fn oversized_answers_are_refused_while_they_are_gathered() {
    let spread: Vec<u64> = (0..20_000u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    for hashes in [spread, vec![0xABCD; 20_000]] {
        let mut index = Index::new();
        index
            .add_many(hashes.iter().map(|&h| (h, &b""[..], None)))
            .unwrap();
        index.sync();
        assert!(matches!(
            index.pairs_bounded(64, 100_000),
            Err(Error::TooManyRows(100_000))
        ));
        assert!(matches!(
            index.query_bounded(hashes[0], 64, None, 1000),
            Err(Error::TooManyRows(1000))
        ));
        assert!(matches!(
            index.query_many_bounded(&hashes[..50], 64, 1000),
            Err(Error::TooManyRows(1000))
        ));
        assert!(matches!(
            index.knn_bounded(hashes[0], 20_000, 19_999),
            Err(Error::TooManyRows(19_999))
        ));
        assert_eq!(index.query_bounded(hashes[0], 64, Some(3), 2).unwrap_err().to_string(),
            "answer has more than 2 rows; ask for fewer with a limit or page through it with a cursor");
        assert_eq!(
            index
                .query_bounded(hashes[0], 64, Some(2), 2)
                .unwrap()
                .len(),
            2
        );
    }
}

/// A snapshot answers from the entries as they were when it was taken, while the index goes
/// on with adds, syncs (merging segments), deletes (copying deletion marks) and compactions.
#[test]
fn snapshots_keep_answering_as_the_index_was() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<mvptree::Snapshot>();

    let hashes: Vec<u64> = (0..6000u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (i % 3))
        .collect();
    let mut index = Index::with_sync_threshold(700).unwrap();
    index.set_multi_index_min_len(0);
    for (i, &h) in hashes[..3000].iter().enumerate() {
        index.add(h, format!("t{i}").as_bytes(), None).unwrap();
    }
    let snapshot = index.snapshot();
    let queries: Vec<u64> = hashes.iter().step_by(397).map(|&h| h ^ 0b1001).collect();
    let before: Vec<Vec<Match>> = queries.iter().map(|&q| index.query(q, 20)).collect();
    let pairs_before = index.pairs(12);
    let titles_before: Vec<Option<Vec<u8>>> = (0..3001)
        .map(|id| snapshot.title(id).map(<[u8]>::to_vec))
        .collect();

    for &h in &hashes[3000..] {
        index.add(h, b"later", None).unwrap();
    }
    for id in (1..3000).step_by(2) {
        index.delete(id).unwrap();
    }
    index.sync();

    for (q, want) in queries.iter().zip(&before) {
        assert_eq!(&snapshot.query(*q, 20), want);
        assert_ne!(index.query(*q, 64).len(), snapshot.query(*q, 64).len());
    }
    assert_eq!(snapshot.pairs(12), pairs_before);
    let titles_after: Vec<Option<Vec<u8>>> = (0..3001)
        .map(|id| snapshot.title(id).map(<[u8]>::to_vec))
        .collect();
    assert_eq!(titles_after, titles_before);
    // 2,800 were indexed when it was taken (the rest pending); now 4,500 are.
    assert_eq!(snapshot.len(), 2800);
    assert_eq!(index.len(), 4500);
}

/// The content fingerprint ignores the layout (merges, compactions, deferred builds) and sees
/// every part of the content.
#[test]
fn content_digest_depends_on_content_only() {
    let hashes: Vec<u64> = (0..3000u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let mut one_by_one = Index::with_sync_threshold(7).unwrap();
    let mut batched = Index::with_sync_threshold(7).unwrap();
    batched.set_deferred_build_min_len(100);
    for (i, &h) in hashes.iter().enumerate() {
        one_by_one.add(h, format!("t{i}").as_bytes(), None).unwrap();
    }
    let titles: Vec<String> = (0..hashes.len()).map(|i| format!("t{i}")).collect();
    batched
        .add_many(
            hashes
                .iter()
                .zip(&titles)
                .map(|(&h, t)| (h, t.as_bytes(), None)),
        )
        .unwrap();
    assert_ne!(one_by_one.stats().segments, batched.stats().segments);
    assert_eq!(one_by_one.content_digest(), batched.content_digest());

    let base = one_by_one.content_digest();
    let mut changed = one_by_one.clone();
    changed.delete(17).unwrap();
    assert_ne!(changed.content_digest(), base);
    let mut retitled = changed.clone();
    retitled.add(hashes[16], b"other", Some(17)).unwrap();
    let mut same = changed.clone();
    same.add(hashes[16], b"t16", Some(17)).unwrap();
    assert_ne!(retitled.content_digest(), same.content_digest());
    let mut synced = same.clone();
    synced.sync();
    assert_ne!(
        synced.content_digest(),
        same.content_digest(),
        "pending or not counts"
    );
    let mut threshold = one_by_one.clone();
    threshold.set_sync_threshold(9).unwrap();
    assert_ne!(threshold.content_digest(), base);
}

/// Segment sizes and whether each has multi-index tables, after adding `batches` in turn,
/// each followed by a sync.
fn segments_after(batches: &[u64], min_len: Option<usize>) -> Vec<(usize, bool)> {
    let mut index = Index::new();
    if let Some(len) = min_len {
        index.set_multi_index_min_len(len);
    }
    let mut next = 0u64;
    for &n in batches {
        let entries: Vec<(u64, &[u8], Option<u64>)> = (next..next + n)
            .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15), &b""[..], None))
            .collect();
        next += n;
        index.add_many(entries).unwrap();
        index.sync();
    }
    let probe = 5u64.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    assert_eq!(index.query(probe, 0), vec![m(0, 6)]);
    index
        .stats()
        .segments
        .iter()
        .map(|s| (s.len, !s.multi_index_fields.is_empty()))
        .collect()
}

#[test]
fn small_segments_behind_a_large_one_get_tables_and_small_keys_do_not() {
    // Behind 20,000 entries, a 2,000-entry segment is probed, not scanned; 500 entries are not
    // worth tables.
    assert_eq!(
        segments_after(&[20_000, 2_000], None),
        [(20_000, true), (2_000, true)]
    );
    assert_eq!(
        segments_after(&[20_000, 500], None),
        [(20_000, true), (500, false)]
    );
    // A key of fewer than 4 × 4,096 entries in all keeps its small segments plain scans.
    assert_eq!(segments_after(&[2_000], None), [(2_000, false)]);
    assert_eq!(
        segments_after(&[12_000, 2_000], None),
        [(12_000, true), (2_000, false)]
    );
    // Turning tables off still turns them all off.
    assert_eq!(
        segments_after(&[20_000, 2_000], Some(usize::MAX)),
        [(20_000, false), (2_000, false)]
    );
}
