//! Multi-index vs scan vs the planner's choice, at radii 0..20, on 1M uniform and 1M
//! clustered hashes; and each mask kernel this CPU supports, in ns per hash.
//! `cargo bench -p mvptree` (set IMGSCOUT_BENCH_N for another size, IMGSCOUT_KERNEL to force
//! the kernel the searches use; `cargo bench -p mvptree -- kernels` for the kernels alone).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mvptree::{Index, Kernel, Plan};

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn flips(&mut self, mut h: u64, n: u32) -> u64 {
        for _ in 0..n {
            h ^= 1 << (self.next() % 64);
        }
        h
    }
}

fn datasets(n: usize) -> Vec<(&'static str, Vec<u64>)> {
    let mut rng = SplitMix(42);
    let uniform: Vec<u64> = (0..n).map(|_| rng.next()).collect();
    // Groups of ~10 near-duplicates (up to 6 bits apart) around random centers.
    let centers: Vec<u64> = (0..n / 10).map(|_| rng.next()).collect();
    let clustered: Vec<u64> = (0..n)
        .map(|i| {
            let c = centers[i % centers.len()];
            let k = (rng.next() % 7) as u32;
            rng.flips(c, k)
        })
        .collect();
    vec![("uniform", uniform), ("clustered", clustered)]
}

fn build(hashes: &[u64]) -> Index {
    let mut index = Index::with_sync_threshold(mvptree::MAX_SYNC_THRESHOLD).unwrap();
    index
        .add_many(hashes.iter().map(|&h| (h, &b""[..], None)))
        .unwrap();
    index.sync();
    index
}

fn queries(hashes: &[u64], radius: u32) -> Vec<u64> {
    let mut rng = SplitMix(7);
    (0..256)
        .map(|i| {
            if i % 2 == 0 {
                let h = hashes[(rng.next() % hashes.len() as u64) as usize];
                let k = (rng.next() % (u64::from(radius) + 1)) as u32;
                rng.flips(h, k)
            } else {
                rng.next()
            }
        })
        .collect()
}

fn search(c: &mut Criterion) {
    let n = std::env::var("IMGSCOUT_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    for (name, hashes) in datasets(n) {
        let index = build(&hashes);
        let mut group = c.benchmark_group(format!("range/{name}/{n}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2));
        for radius in [0u32, 4, 8, 12, 14, 16, 18, 20] {
            let qs = queries(&hashes, radius);
            for plan in [Plan::Scan, Plan::MultiIndex, Plan::Auto] {
                group.bench_with_input(BenchmarkId::new(plan.name(), radius), &radius, |b, &r| {
                    let mut i = 0;
                    b.iter(|| {
                        i = (i + 1) % qs.len();
                        black_box(index.query_with(qs[i], r, plan))
                    })
                });
            }
        }
        group.finish();
        let mut group = c.benchmark_group(format!("knn/{name}/{n}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2));
        let qs = queries(&hashes, 4);
        for k in [1usize, 10, 100] {
            for plan in [Plan::Scan, Plan::MultiIndex, Plan::Auto] {
                group.bench_with_input(BenchmarkId::new(plan.name(), k), &k, |b, &k| {
                    let mut i = 0;
                    b.iter(|| {
                        i = (i + 1) % qs.len();
                        black_box(index.knn_with(qs[i], k, plan))
                    })
                });
            }
        }
        group.finish();
    }
}

/// Masks of 1M hashes (8 MB: from L2/L3) and of 4,096 (32 KiB: from L1), per kernel, plus the
/// portable kernel's other forms. Throughput is in hashes, so criterion's elements/s is the
/// inverse of ns per hash.
fn kernels(c: &mut Criterion) {
    type Form = fn(&[u64], u64, u32, &mut [u64]);
    let mut rng = SplitMix(3);
    let all: Vec<u64> = (0..1 << 20).map(|_| rng.next()).collect();
    let mut forms: Vec<(String, Form)> = vec![(
        "portable-shift-in-place".into(),
        mvptree::hit_masks_shift_in_place,
    )];
    for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
        let f: Form = match kernel {
            Kernel::Portable => |h, q, r, m| mvptree::hit_masks_with(Kernel::Portable, h, q, r, m),
            Kernel::Avx2 => |h, q, r, m| mvptree::hit_masks_with(Kernel::Avx2, h, q, r, m),
            Kernel::Avx512 => |h, q, r, m| mvptree::hit_masks_with(Kernel::Avx512, h, q, r, m),
        };
        forms.push((kernel.name().into(), f));
    }
    for len in [4096usize, all.len()] {
        let hashes = &all[..len];
        let mut masks = vec![0u64; len / 64];
        let mut group = c.benchmark_group(format!("kernels/{len}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2))
            .throughput(criterion::Throughput::Elements(len as u64));
        for (name, form) in &forms {
            group.bench_function(name.as_str(), |b| {
                b.iter(|| {
                    form(
                        black_box(hashes),
                        black_box(0x0123_4567_89AB_CDEF),
                        16,
                        &mut masks,
                    )
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, kernels, search);
criterion_main!(benches);
