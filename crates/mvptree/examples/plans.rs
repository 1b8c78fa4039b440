//! Per-query time of each forced plan and of the planner's choice, at radii 12..20 on 1M
//! uniform hashes, with the kernel `IMGSCOUT_KERNEL` selects: the check behind `KERNELS.md`.
//!
//! `cargo run --release -p mvptree --example plans` (IMGSCOUT_BENCH_N for another size);
//! `-- --kernels` times the mask kernels alone, all in one process; `-- --wide` does both
//! for 256-bit codes (PDQ's width) at the radii PDQ uses; `-- --cold` times single
//! multi-index queries from memory the caches have lost, and again from warm caches;
//! `-- --knn` times batched k-nearest searches by plan.
//! Plans are timed in interleaved rounds and each keeps its fastest round, so a machine
//! shared with other work slows every plan alike instead of whichever ran during a burst.

use std::hint::black_box;
use std::time::Instant;

use mvptree::{Index, Plan};

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

const PLANS: [Plan; 3] = [Plan::Scan, Plan::MultiIndex, Plan::Auto];
const RADII: [u32; 7] = [8, 10, 12, 14, 16, 18, 20];
const ROUNDS: usize = 9;

/// ns per hash of each supported mask kernel on 1M hashes (from L2/L3) and on 4,096 (from
/// L1, the batched scan's case), fastest of interleaved rounds.
fn kernels() {
    use mvptree::{hit_masks_shift_in_place, hit_masks_with, Kernel};
    type Form = Box<dyn Fn(&[u64], u64, u32, &mut [u64])>;
    let mut rng = SplitMix(3);
    let hashes: Vec<u64> = (0..1 << 20).map(|_| rng.next()).collect();
    let mut forms: Vec<(&str, Form)> = vec![(
        "portable-shift-in-place",
        Box::new(|h: &[u64], q, r, m: &mut [u64]| hit_masks_shift_in_place(h, q, r, m)),
    )];
    for k in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
        forms.push((
            k.name(),
            Box::new(move |h: &[u64], q, r, m: &mut [u64]| hit_masks_with(k, h, q, r, m)),
        ));
    }
    let mut masks = vec![0u64; hashes.len() / 64];
    let mut best = vec![[f64::INFINITY; 2]; forms.len()];
    for _ in 0..30 {
        for (f, (_, form)) in forms.iter().enumerate() {
            let start = Instant::now();
            form(
                black_box(&hashes),
                black_box(0x0123_4567_89AB_CDEF),
                16,
                &mut masks,
            );
            let ns = start.elapsed().as_secs_f64() * 1e9 / hashes.len() as f64;
            best[f][0] = best[f][0].min(ns);
            let start = Instant::now();
            for _ in 0..256 {
                form(
                    black_box(&hashes[..4096]),
                    black_box(0x0123),
                    16,
                    &mut masks[..64],
                );
            }
            let ns = start.elapsed().as_secs_f64() * 1e9 / (256.0 * 4096.0);
            best[f][1] = best[f][1].min(ns);
        }
    }
    println!("| kernel | ns/hash, 1M hashes | ns/hash, 4,096 hashes (L1) |");
    println!("|---|---|---|");
    for ((name, _), b) in forms.iter().zip(&best) {
        println!("| {name} | {:.3} | {:.3} |", b[0], b[1]);
    }
    batched_kernels(&hashes[..2048]);
}

/// ns per hash per query of a batched scan's block (2,048 hashes, the queries of a batch over
/// it) by each supported kernel: the mask kernel per query, and the bit-sliced form, whose
/// one transposition per block is shared by the batch's queries.
fn batched_kernels(block: &[u64]) {
    use mvptree::{hit_masks_with, scan_many_sliced, Kernel};
    let mut rng = SplitMix(5);
    let queries: Vec<u64> = (0..64).map(|_| rng.next()).collect();
    let kernels: Vec<Kernel> = Kernel::ALL
        .into_iter()
        .filter(|k| k.is_supported())
        .collect();
    let batch_sizes = [4usize, 8, 16, 64];
    // [kernel][0 = mask kernel, 1.. = sliced at each batch size]
    let mut best = vec![vec![f64::INFINITY; 1 + batch_sizes.len()]; kernels.len()];
    let mut masks = vec![0u64; block.len() / 64];
    let mut hits = 0usize;
    for _ in 0..30 {
        for (k, &kernel) in kernels.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..8 {
                for &q in &queries {
                    hit_masks_with(kernel, black_box(block), q, 16, &mut masks);
                    hits += masks.iter().map(|m| m.count_ones() as usize).sum::<usize>();
                }
            }
            let ns = start.elapsed().as_secs_f64() * 1e9 / (8.0 * 64.0 * block.len() as f64);
            best[k][0] = best[k][0].min(ns);
            for (b, &size) in batch_sizes.iter().enumerate() {
                let start = Instant::now();
                for _ in 0..8 {
                    for group in queries.chunks(size) {
                        scan_many_sliced(kernel, black_box(block), group, &|_| 16, |_, _, _| {
                            hits += 1
                        });
                    }
                }
                let ns = start.elapsed().as_secs_f64() * 1e9 / (8.0 * 64.0 * block.len() as f64);
                best[k][1 + b] = best[k][1 + b].min(ns);
            }
        }
    }
    black_box(hits);
    println!();
    println!("Batched, r16, 2,048 hashes a block: ns per hash per query");
    println!();
    print!("| kernel | mask kernel |");
    for size in batch_sizes {
        print!(" bit-sliced, {size} queries |");
    }
    println!();
    println!("|---|---|{}", "---|".repeat(batch_sizes.len()));
    for (kernel, b) in kernels.iter().zip(&best) {
        print!("| {} |", kernel.name());
        for ns in b {
            print!(" {ns:.3} |");
        }
        println!();
    }
}

/// `--wide`: ns per code of each 256-bit mask kernel on 1M codes, then forced plans against
/// the planner's choice on 1M uniform 256-bit codes, with the kernel `IMGSCOUT_KERNEL` picks.
fn wide() {
    use mvptree::{hit_masks_256, Kernel};
    let mut rng = SplitMix(5);
    let mut code = || [rng.next(), rng.next(), rng.next(), rng.next()];
    let n = 1 << 20;
    let codes: Vec<[u64; 4]> = (0..n).map(|_| code()).collect();
    let query = code();
    let kernels: Vec<Kernel> = Kernel::ALL
        .into_iter()
        .filter(|k| k.is_supported())
        .collect();
    let mut masks = vec![0u64; n / 64];
    let mut best = vec![f64::INFINITY; kernels.len()];
    for _ in 0..20 {
        for (k, &kernel) in kernels.iter().enumerate() {
            let start = Instant::now();
            hit_masks_256(kernel, black_box(&codes), black_box(query), 52, &mut masks);
            best[k] = best[k].min(start.elapsed().as_secs_f64() * 1e9 / n as f64);
        }
    }
    println!("| kernel | ns/code, 1M 256-bit codes |");
    println!("|---|---|");
    for (kernel, ns) in kernels.iter().zip(&best) {
        println!("| {} | {ns:.3} |", kernel.name());
    }

    let mut index = Index::<[u64; 4]>::with_sync_threshold(mvptree::MAX_SYNC_THRESHOLD).unwrap();
    index
        .add_many(codes[..1_000_000].iter().map(|&c| (c, &b""[..], None)))
        .unwrap();
    index.sync();
    let queries: Vec<[u64; 4]> = (0..32)
        .map(|i| {
            let mut q = codes[(i * 7919) % 1_000_000];
            if i % 2 == 1 {
                q = [rng.next(), rng.next(), rng.next(), rng.next()];
            } else {
                q[0] ^= rng.next() & rng.next() & rng.next();
            }
            q
        })
        .collect();
    let auto = index.stats().plans_by_radius;
    println!(
        "kernel {} on 1M uniform 256-bit codes (µs per query, fastest of {ROUNDS} rounds)",
        mvptree::kernel().name()
    );
    const WIDE_RADII: [u32; 6] = [24, 31, 40, 52, 64, 80];
    const WIDE_PLANS: [Plan; 3] = [Plan::Scan, Plan::MultiIndex, Plan::Auto];
    // Columns: single queries by plan, then a batch of all queries by plan (per query).
    let mut best = vec![[f64::INFINITY; 6]; WIDE_RADII.len()];
    for _ in 0..ROUNDS {
        for (ri, &r) in WIDE_RADII.iter().enumerate() {
            for (pi, &plan) in WIDE_PLANS.iter().enumerate() {
                let start = Instant::now();
                for &q in &queries {
                    black_box(index.query_with(q, r, plan));
                }
                let us = start.elapsed().as_secs_f64() * 1e6 / queries.len() as f64;
                best[ri][pi] = best[ri][pi].min(us);
                let start = Instant::now();
                black_box(index.query_many_with(&queries, r, plan));
                let us = start.elapsed().as_secs_f64() * 1e6 / queries.len() as f64;
                best[ri][3 + pi] = best[ri][3 + pi].min(us);
            }
        }
    }
    println!(
        "| r | scan | multi-index | auto (plan) | chosen / best | batch scan | batch multi-index | batch auto | batch auto / best |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (ri, &r) in WIDE_RADII.iter().enumerate() {
        let b = &best[ri];
        let chosen = auto[r as usize];
        let column = WIDE_PLANS.iter().position(|&p| p == chosen).unwrap_or(0);
        println!(
            "| {r} | {:.0} | {:.0} | {:.0} ({}) | {:.2} | {:.0} | {:.0} | {:.0} | {:.2} |",
            b[0],
            b[1],
            b[2],
            chosen.name(),
            b[column] / b[0].min(b[1]),
            b[3],
            b[4],
            b[5],
            b[5] / b[3].min(b[4]),
        );
    }
}

/// Median µs of single multi-index queries at small radii on 1M uniform hashes: first each
/// query of a fresh set right after 640 MB of other writes have flushed the caches (a query
/// arriving at a process busy with other work), then the same queries again (warm).
fn cold() {
    let mut rng = SplitMix(42);
    let n = 1_000_000;
    let hashes: Vec<u64> = (0..n).map(|_| rng.next()).collect();
    let mut index = Index::with_sync_threshold(mvptree::MAX_SYNC_THRESHOLD).unwrap();
    index
        .add_many(hashes.iter().map(|&h| (h, &b""[..], None)))
        .unwrap();
    index.sync();
    let mut flush = vec![0u64; 80 << 20];
    println!("kernel {} on {n} uniform hashes", mvptree::kernel().name());
    println!("| r | cold µs | warm µs |");
    println!("|---|---|---|");
    for radius in [4u32, 8, 12] {
        let (mut cold, mut warm) = (Vec::new(), Vec::new());
        for round in 0..5u64 {
            let queries: Vec<u64> = (0..200)
                .map(|i| {
                    if i % 2 == 0 {
                        hashes[(rng.next() % n as u64) as usize]
                            ^ (rng.next() & rng.next() & rng.next())
                    } else {
                        rng.next()
                    }
                })
                .collect();
            for (i, word) in flush.iter_mut().enumerate().step_by(8) {
                *word = word.wrapping_add(i as u64 ^ round);
            }
            for times in [&mut cold, &mut warm] {
                for &q in &queries {
                    let start = Instant::now();
                    black_box(index.query_with(q, radius, Plan::MultiIndex));
                    times.push(start.elapsed().as_secs_f64() * 1e6);
                }
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "| {radius} | {:.1} | {:.1} |",
            median(&mut cold),
            median(&mut warm)
        );
    }
    black_box(flush);
}

/// `--knn`: µs per query of batched k-nearest searches (`knn_many`) by each forced plan and
/// by the planner, on 1M uniform hashes, for near queries and random ones apart: a random
/// hash's nearest lies at distance 12-14, where probing and the shared scan cost alike.
fn knn() {
    let mut rng = SplitMix(42);
    let n = 1_000_000;
    let hashes: Vec<u64> = (0..n).map(|_| rng.next()).collect();
    let mut index = Index::with_sync_threshold(mvptree::MAX_SYNC_THRESHOLD).unwrap();
    index
        .add_many(hashes.iter().map(|&h| (h, &b""[..], None)))
        .unwrap();
    index.sync();
    let near: Vec<u64> = (0..64)
        .map(|_| hashes[(rng.next() % n as u64) as usize] ^ (rng.next() & rng.next() & rng.next()))
        .collect();
    let random: Vec<u64> = (0..64).map(|_| rng.next()).collect();
    const KNN_PLANS: [Plan; 3] = [Plan::Scan, Plan::MultiIndex, Plan::Auto];
    let cases = [
        (1usize, &near, "near"),
        (1, &random, "random"),
        (10, &near, "near"),
        (10, &random, "random"),
    ];
    let mut best = vec![[f64::INFINITY; 3]; cases.len()];
    for _ in 0..ROUNDS {
        for (c, &(k, queries, _)) in cases.iter().enumerate() {
            for (p, &plan) in KNN_PLANS.iter().enumerate() {
                let start = Instant::now();
                black_box(index.knn_many_with(queries, k, plan));
                let us = start.elapsed().as_secs_f64() * 1e6 / queries.len() as f64;
                best[c][p] = best[c][p].min(us);
            }
        }
    }
    println!(
        "kernel {} on {n} uniform hashes: batched k-nearest, µs per query (fastest of {ROUNDS} rounds); multi-index probes priced at {:.2} of their fitted price",
        mvptree::kernel().name(),
        mvptree::calibrate::calibration().probe_scale,
    );
    println!("| k | queries | scan | multi-index | auto | auto / best |");
    println!("|---|---|---|---|---|---|");
    for (&(k, _, what), b) in cases.iter().zip(&best) {
        println!(
            "| {k} | {what} | {:.1} | {:.1} | {:.1} | {:.2} |",
            b[0],
            b[1],
            b[2],
            b[2] / b[0].min(b[1])
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--knn") {
        knn();
        return;
    }
    if std::env::args().any(|a| a == "--cold") {
        cold();
        return;
    }
    if std::env::args().any(|a| a == "--kernels") {
        kernels();
        return;
    }
    if std::env::args().any(|a| a == "--wide") {
        wide();
        return;
    }
    let n = std::env::var("IMGSCOUT_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut rng = SplitMix(42);
    let hashes: Vec<u64> = (0..n).map(|_| rng.next()).collect();
    let mut index = Index::with_sync_threshold(mvptree::MAX_SYNC_THRESHOLD).unwrap();
    index
        .add_many(hashes.iter().map(|&h| (h, &b""[..], None)))
        .unwrap();
    index.sync();
    // Half near an indexed hash, half anywhere, as in the criterion benchmark.
    let queries: Vec<u64> = (0..64)
        .map(|i| {
            if i % 2 == 0 {
                hashes[(rng.next() % n as u64) as usize] ^ (rng.next() & rng.next() & rng.next())
            } else {
                rng.next()
            }
        })
        .collect();
    let auto = index.stats().plans_by_radius;
    let stats = index.stats().to_pairs();
    let plan = stats.iter().find(|p| p.0 == "plan").map(|p| &p.1);
    let measured = mvptree::calibrate::calibration();
    println!(
        "kernel {} on {n} uniform hashes; plans: {plan:?}; calibration: scan {:.3} ns a hash past the caches, read {:.1} GB/s, a batch {:.3} ns a hash and query, probes at {:.2} of their fitted price",
        mvptree::kernel().name(),
        measured.scan_ns_per_code,
        1.0 / measured.stream_ns_per_byte,
        measured.batch_ns_per_code,
        measured.probe_scale,
    );
    // best[r][p]: fastest round's µs per query; the last three columns are a batch of all
    // queries by scan, multi-index and auto.
    const BATCH_PLANS: [Plan; 3] = [Plan::Scan, Plan::MultiIndex, Plan::Auto];
    let mut best = vec![[f64::INFINITY; PLANS.len() + BATCH_PLANS.len()]; RADII.len()];
    for _ in 0..ROUNDS {
        for (ri, &r) in RADII.iter().enumerate() {
            for (pi, &plan) in PLANS.iter().enumerate() {
                let start = Instant::now();
                for &q in &queries {
                    black_box(index.query_with(q, r, plan));
                }
                let us = start.elapsed().as_secs_f64() * 1e6 / queries.len() as f64;
                best[ri][pi] = best[ri][pi].min(us);
            }
            for (bi, plan) in BATCH_PLANS.into_iter().enumerate() {
                let start = Instant::now();
                black_box(index.query_many_with(&queries, r, plan));
                let us = start.elapsed().as_secs_f64() * 1e6 / queries.len() as f64;
                let col = PLANS.len() + bi;
                best[ri][col] = best[ri][col].min(us);
            }
        }
    }
    // "estimate": the planner's µs for the plan it picks.
    // "chosen / best" compares forced plans only: auto runs the same code as the plan it
    // picks, so this is the planner's loss without auto's own timing noise.
    println!(
        "| r | scan | multi-index | auto (plan) | estimate | auto / best | chosen / best | batch scan | batch multi-index | batch auto | batch auto / best |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (ri, &r) in RADII.iter().enumerate() {
        let b = &best[ri];
        let fastest = b[..2].iter().copied().fold(f64::INFINITY, f64::min);
        let chosen = auto[r as usize];
        println!(
            "| {r} | {:.0} | {:.0} | {:.0} ({}) | {:.0} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} | {:.2} |",
            b[0],
            b[1],
            b[2],
            chosen.name(),
            index.range_cost_ns(r) / 1e3,
            b[2] / fastest,
            b[PLANS.iter().position(|&p| p == chosen).unwrap()] / fastest,
            b[3],
            b[4],
            b[5],
            b[5] / b[3].min(b[4]),
        );
    }
}
