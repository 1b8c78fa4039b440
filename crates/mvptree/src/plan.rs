//! The cost model that picks, per segment and query, how to search.
//!
//! Costs are nanoseconds on a 2020s x86-64 server core, fitted to per-query times of forced
//! plans on 1M entries (`examples/plans.rs`) on a 2.6 GHz Intel Xeon and a 2.6 GHz AMD EPYC,
//! every kernel forced in turn, divided by the hashes, buckets and candidates each plan
//! touches at radii 10 to 20, where the plans cross. A scan's cost depends on the mask kernel
//! the process runs ([`scan_cost_of`]) and, past a core's own caches, on the machine's memory,
//! which the process measures once ([`crate::calibrate`]). The multi-index does no bulk bit
//! counting: its prices were within 15% on both machines and are one table, but a Zen 5 EPYC
//! probes in half their time, so the same measurement times probes too and scales the table
//! for segments like its own ([`probe_scale`]). They only choose between exact plans, so a
//! poor estimate costs time, never an answer.

use crate::calibrate::calibration;
use crate::hamming::Code;
use crate::hamming::{kernel, sliced_serves, Kernel};
use crate::mih::MultiIndex;
pub use crate::probe_price::{
    fitted_step_cost, BUCKET_MISS_NS, BUCKET_NS, CACHED_CANDIDATE_NS, CACHED_TABLE_BYTES,
    CANDIDATE_NS, CANDIDATE_WORD_NS, PROBED_INLINE_CANDIDATE_NS, SHARED_CACHE_CODE_BYTES,
};

/// How to search: [`Plan::Auto`] lets the cost model choose per segment; the others force one
/// structure (a segment without multi-index tables falls back to a scan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Plan {
    Auto,
    Scan,
    MultiIndex,
}

impl Plan {
    pub fn name(self) -> &'static str {
        match self {
            Plan::Auto => "auto",
            Plan::Scan => "scan",
            Plan::MultiIndex => "multi-index",
        }
    }
}

/// What a scan costs with one mask kernel, per hash, from the core's own caches: a table, as
/// the kernels' rates differ little between CPUs that have them; the memory's rate, which
/// differs a lot, is measured ([`crate::calibrate`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanCost {
    /// One hash of a linear scan (xor, popcount, compare) streamed from memory.
    pub ns_per_hash: f64,
    /// One hash of a batched scan ([`crate::hamming::scan_many`]): the hashes come from L1.
    pub batch_ns_per_hash: f64,
}

/// [`ScanCost`] of each [`Kernel`], measured with the kernel forced by `IMGSCOUT_KERNEL`
/// (`examples/plans.rs`, figures in `KERNELS.md`): single scans from the kernels' own time
/// per hash from L1 plus the walk over the hits; batches from the batched scan of 1M hashes
/// (bit-sliced, 64 queries a block, where [`sliced_serves`] lets the kernel run it). A single
/// scan past a core's caches is priced at the rate the process measured ([`scan_cost`]).
pub fn scan_cost_of(kernel: Kernel) -> ScanCost {
    match kernel {
        Kernel::Portable => ScanCost {
            ns_per_hash: 0.45,
            batch_ns_per_hash: 0.36,
        },
        // Batches run the mask kernel per query ([`sliced_serves`]), at its single rate.
        Kernel::Avx2 => ScanCost {
            ns_per_hash: 0.22,
            batch_ns_per_hash: 0.22,
        },
        Kernel::Avx512 => ScanCost {
            ns_per_hash: 0.15,
            batch_ns_per_hash: 0.10,
        },
    }
}

/// Segments of more code bytes than this (a core's L2) are scanned at the rate the process
/// measured past its caches ([`crate::calibrate`]).
pub const CACHED_CODE_BYTES: f64 = 2.0 * 1024.0 * 1024.0;
/// One candidate of a self-join whose hash is stored in the bucket itself: the join reads
/// each bucket's candidates in sequence, against each other.
pub const INLINE_CANDIDATE_NS: f64 = 1.0;
/// A kNN search probes the multi-index for up to this fraction of a scan's cost before it
/// weighs finishing there against scanning.
pub const KNN_PROBE_FRACTION: f64 = 0.1;
/// [`KNN_PROBE_FRACTION`] for a search of a batch, whose scan is shared. Measured on 1M codes
/// (AVX2, 200 queries, half near an entry, half random), k = 10: 0.1 took 252-258 µs a query
/// on uniform codes and 156-159 on clustered ones, 0.03 took 229-230 and 144-146 (0.01:
/// 223-226 and 149-153). Single searches keep 0.1: at 0.03 they took longer on both.
pub const KNN_BATCH_PROBE_FRACTION: f64 = 0.03;

/// What the scan that finishes a k-nearest search of `len` entries costs: a batched scan's
/// share when the search is one of a batch ([`crate::Snapshot::knn_many`]), else a scan.
pub fn knn_scan_cost<C: Code>(len: usize, batched: bool) -> f64 {
    if batched {
        batch_scan_cost::<C>(len)
    } else {
        scan_cost::<C>(len)
    }
}

/// The median distance of a query's `k`-th nearest among `len` codes of `C` spread
/// uniformly: the least `d` whose ball is expected to hold `λ ≥ k − 1/3` of them, with
/// `λ = len · P(Binomial(C::BITS, ½) ≤ d)` (the count in the ball is about Poisson, whose
/// median is about `λ + 1/3`); `C::BITS` if none.
pub fn median_kth_distance<C: Code>(len: usize, k: usize) -> u32 {
    let bits = C::BITS;
    let all = 2f64.powi(bits as i32);
    // `within`: codes at distance `d` or less, of all `2^bits`; `here`: those at exactly `d`.
    let (mut within, mut here) = (0.0, 1.0);
    for d in 0..bits {
        within += here;
        if len as f64 * within / all >= k as f64 - 1.0 / 3.0 {
            return d;
        }
        here = here * f64::from(bits - d) / f64::from(d + 1);
    }
    bits
}

pub fn knn_probe_budget<C: Code>(len: usize, batched: bool) -> f64 {
    let fraction = if batched {
        KNN_BATCH_PROBE_FRACTION
    } else {
        KNN_PROBE_FRACTION
    };
    knn_scan_cost::<C>(len, batched) * fraction
}

/// Estimated cost of multi-index steps `first..=last_distance` (the steps still needed to find
/// every hash within `last_distance`).
pub fn multi_index_cost_between<C: Code>(
    mih: &MultiIndex<C>,
    first: usize,
    last_distance: u32,
) -> f64 {
    let last = (last_distance as usize).min(mih.step_count().saturating_sub(1));
    (first..=last)
        .map(|s| multi_index_cost_of_step(mih, s))
        .sum()
}

/// Segments smaller than this get no bucket tables: scanning them is as fast, and tables
/// would cost memory in every small Redis key.
pub const MULTI_INDEX_MIN_LEN: usize = 4096;

/// [`ScanCost`] of codes of `C` with the kernel that counts them in this process: 64-bit
/// codes by [`scan_cost_of`], 256-bit ones by their own measured figures
/// ([`scan_cost_256`]), 128-bit ones (always the portable kernel) by the 64-bit figure once
/// per word (each word is one more count, and one more eighth of a cache line streamed).
pub fn scan_cost_for<C: Code>() -> ScanCost {
    let kernel = C::scan_kernel(kernel());
    if C::WORDS == 4 {
        return scan_cost_256(kernel);
    }
    let per_word = scan_cost_of(kernel);
    let words = C::WORDS as f64;
    ScanCost {
        ns_per_hash: per_word.ns_per_hash * words,
        batch_ns_per_hash: per_word.batch_ns_per_hash * words,
    }
}

/// [`ScanCost`] of 256-bit codes by kernel, measured from L1 in a batch of 32 queries on 1M
/// codes (`examples/plans.rs --wide`): four times a 64-bit code's figure would halve AVX-512's
/// and AVX2's, whose 256-bit kernels sum each code's four word counts across lanes. A single
/// query's scan of a large segment is bound by memory instead (see [`scan_cost`]).
fn scan_cost_256(kernel: Kernel) -> ScanCost {
    let ns = match kernel {
        Kernel::Portable => 1.13,
        Kernel::Avx2 => 1.02,
        Kernel::Avx512 => 0.47,
    };
    ScanCost {
        ns_per_hash: ns,
        batch_ns_per_hash: ns,
    }
}

/// A scan of `len` codes with the process's kernel; past the caches, at the rate the
/// process measured for 64-bit codes, and for wider ones at least the time the memory takes
/// to deliver them.
pub fn scan_cost<C: Code>(len: usize) -> f64 {
    let bytes = len as f64 * (C::WORDS * 8) as f64;
    let compute = len as f64 * scan_cost_for::<C>().ns_per_hash;
    if bytes <= CACHED_CODE_BYTES {
        return compute;
    }
    let measured = calibration();
    if C::WORDS == 1 {
        len as f64 * measured.scan_ns_per_code
    } else {
        compute.max(bytes * measured.stream_ns_per_byte)
    }
}

/// A scan of `len` codes shared by a group of `queries` (each block read once for all of
/// them), per query. One query's is [`scan_cost`], bound by memory on a large segment. Groups
/// of 64-bit codes that [`sliced_serves`] run bit-sliced ([`batch_scan_cost`]); other groups
/// run the mask kernel per query over blocks the caches hold, and share the stream, never at
/// more than a single query's scan.
pub fn shared_scan_cost<C: Code>(len: usize, queries: usize, radius: u32) -> f64 {
    if queries <= 1 {
        return scan_cost::<C>(len);
    }
    let compute = len as f64 * scan_cost_for::<C>().ns_per_hash;
    let bytes = len as f64 * (C::WORDS * 8) as f64;
    let shared = if bytes > CACHED_CODE_BYTES {
        compute.max(bytes * calibration().stream_ns_per_byte / queries as f64)
    } else {
        compute
    };
    // The group could always scan as separate queries.
    let by_mask = shared.min(scan_cost::<C>(len));
    if C::WORDS == 1 && sliced_serves(kernel(), queries, radius) {
        // Both prices are measured past the caches, in separate passes: where the noise
        // put the single scan below the bit-sliced one, a larger group would otherwise be
        // priced above a smaller one, which the bit-sliced form never is.
        return batch_scan_cost::<C>(len).min(by_mask);
    }
    by_mask
}

/// A batched scan of `len` codes, per query, with the process's kernel: the table's rate,
/// and for 64-bit segments past a core's L2 the rate the process measured
/// ([`crate::calibrate::Calibration::batch_ns_per_code`]), as for a single scan.
pub fn batch_scan_cost<C: Code>(len: usize) -> f64 {
    let bytes = len as f64 * (C::WORDS * 8) as f64;
    if C::WORDS == 1 && bytes > CACHED_CODE_BYTES {
        len as f64 * calibration().batch_ns_per_code
    } else {
        len as f64 * scan_cost_for::<C>().batch_ns_per_hash
    }
}

/// Estimated cost of multi-index step `step`: the fitted table's price
/// ([`fitted_step_cost`]) times the process's measured probe scale where the calibration
/// measured it ([`probe_scale`]).
pub fn multi_index_cost_of_step<C: Code>(mih: &MultiIndex<C>, step: usize) -> f64 {
    fitted_step_cost(mih, step) * probe_scale::<C>(mih.len())
}

/// The factor the process applies to the fitted multi-index prices of a segment of `len`
/// codes of `C`: the calibration's measured [`crate::calibrate::Calibration::probe_scale`]
/// for 64-bit segments past a core's L2 whose codes fit the shared cache (the calibration's
/// own multi-index is one: 1M codes, 8 MiB), 1 elsewhere. Smaller segments are priced by the
/// tables on both sides, as their scans are, and never make the process measure; larger
/// ones and wider codes miss to memory, which the calibration does not time.
pub fn probe_scale<C: Code>(len: usize) -> f64 {
    let code_bytes = (len * std::mem::size_of::<C>()) as f64;
    if C::WORDS == 1 && code_bytes > CACHED_CODE_BYTES && code_bytes <= SHARED_CACHE_CODE_BYTES {
        calibration().probe_scale
    } else {
        1.0
    }
}

/// Estimated cost of multi-index steps `0..steps`, assuming uniformly spread hashes.
pub fn multi_index_cost<C: Code>(mih: &MultiIndex<C>, steps: usize) -> f64 {
    let prefix = mih.step_cost_prefix(|| {
        let mut total = 0.0;
        std::iter::once(0.0)
            .chain((0..mih.step_count()).map(|s| {
                total += multi_index_cost_of_step(mih, s);
                total
            }))
            .collect()
    });
    prefix[steps.min(prefix.len() - 1)]
}

/// The plan a range query of `radius` takes on a segment of `len` entries: `forced` unless
/// it is [`Plan::Auto`] or the segment lacks the tables it needs (then a scan).
pub fn range_plan<C: Code>(
    forced: Plan,
    len: usize,
    mih: Option<&MultiIndex<C>>,
    radius: u32,
) -> Plan {
    match (forced, mih) {
        (Plan::Auto, mih) => choose_range(len, mih, radius),
        (Plan::MultiIndex, None) => Plan::Scan,
        (forced, _) => forced,
    }
}

/// The plan a group of `queries` range queries takes on a segment: as [`range_plan`], except
/// that a scan the group shares is priced per query ([`shared_scan_cost`]; a group of one is
/// priced as a single query).
pub fn batch_range_plan<C: Code>(
    forced: Plan,
    len: usize,
    mih: Option<&MultiIndex<C>>,
    radius: u32,
    queries: usize,
) -> Plan {
    match (forced, mih) {
        (Plan::Auto, Some(mih))
            if multi_index_cost(mih, radius as usize + 1)
                >= shared_scan_cost::<C>(len, queries, radius) =>
        {
            Plan::Scan
        }
        _ => range_plan(forced, len, mih, radius),
    }
}

/// The plan a k-nearest search starts with on a segment, and the work (ns) it may spend
/// probing the multi-index before deciding how to finish (infinite: never reconsider).
/// Auto probes the multi-index for near neighbours only, while that stays cheap: near queries
/// (the usual case for duplicate search) finish there.
pub fn knn_plan<C: Code>(
    forced: Plan,
    len: usize,
    mih: Option<&MultiIndex<C>>,
    batched: bool,
) -> (Plan, f64) {
    match (forced, mih) {
        (Plan::Auto, Some(_)) => (Plan::MultiIndex, knn_probe_budget::<C>(len, batched)),
        (Plan::Auto, None) | (Plan::MultiIndex, None) => (Plan::Scan, 0.0),
        (forced, _) => (forced, f64::INFINITY),
    }
}

/// Once a k-nearest probe has spent its budget at `step`: whether finishing on the
/// multi-index (up to distance `bound`) is cheaper than scanning the segment's `len` entries
/// (in a batch's shared scan if `batched`).
pub fn knn_finish_by_probing<C: Code>(
    mih: &MultiIndex<C>,
    step: usize,
    bound: u32,
    len: usize,
    batched: bool,
) -> bool {
    multi_index_cost_between(mih, step, bound) < knn_scan_cost::<C>(len, batched)
}

/// Whether a self-join of `n` entries at `radius` runs on a temporary multi-index `mih` over
/// them (else a blocked scan of every pair): half of one query per entry (each pair is read
/// once), candidates read in sequence, against half a scan per entry.
pub fn self_join_by_multi_index<C: Code>(mih: &MultiIndex<C>, radius: u32, n: usize) -> bool {
    let per_entry: f64 = (0..=radius as usize)
        .map(|s| mih.step_work(s).candidates * INLINE_CANDIDATE_NS)
        .sum();
    per_entry < batch_scan_cost::<C>(n)
}

/// The plan [`Plan::Auto`] resolves to for a range query of `radius` on a segment.
pub fn choose_range<C: Code>(len: usize, mih: Option<&MultiIndex<C>>, radius: u32) -> Plan {
    match mih {
        Some(mih) if multi_index_cost(mih, radius as usize + 1) < scan_cost::<C>(len) => {
            Plan::MultiIndex
        }
        _ => Plan::Scan,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hamming::{SLICED_MAX_RADIUS, SLICED_MIN_QUERIES};

    #[test]
    fn median_kth_distance_is_the_least_ball_likely_to_hold_k_of_a_uniform_index() {
        // Exact counts for 64-bit codes: the ball of radius d holds sum C(64, i) of 2^64.
        let mut ball = [0u128; 65];
        let mut here = 1u128;
        for d in 0..=64u32 {
            ball[d as usize] = here + d.checked_sub(1).map_or(0, |p| ball[p as usize]);
            here = here * u128::from(64 - d) / u128::from(d + 1);
        }
        for len in [1usize, 1000, 4096, 1_000_000, 100_000_000] {
            for k in [1usize, 10, 100, 10_000] {
                let want = (0..=64u32)
                    .find(|&d| {
                        3 * len as u128 * ball[d as usize] >= (3 * k as u128 - 1) * (1u128 << 64)
                    })
                    .unwrap_or(64);
                let got = median_kth_distance::<u64>(len, k);
                // Past 56 bits the ball holds all but 2^-40 of the space, which f64 rounds.
                if want < 56 {
                    assert_eq!(got, want, "n {len} k {k}");
                } else {
                    assert!(got >= 56, "n {len} k {k}: {got}");
                }
            }
        }
        // 1M codes: 0.94 expected within 13, 12.2 within 15.
        assert_eq!(median_kth_distance::<u64>(1_000_000, 1), 13);
        assert_eq!(median_kth_distance::<u64>(1_000_000, 10), 15);
        // Wider codes lie farther apart; an index smaller than k never holds them.
        assert!(median_kth_distance::<[u64; 4]>(1_000_000, 1) > 80);
        assert_eq!(median_kth_distance::<u64>(5, 10), 64);
    }

    #[test]
    fn a_group_of_one_is_planned_as_a_single_query_and_larger_groups_share_the_scan() {
        for len in [5_000usize, 1_000_000, 20_000_000] {
            for radius in [0, 16, SLICED_MAX_RADIUS, SLICED_MAX_RADIUS + 1, 64] {
                assert_eq!(
                    shared_scan_cost::<u64>(len, 1, radius),
                    scan_cost::<u64>(len)
                );
                assert_eq!(
                    shared_scan_cost::<[u64; 4]>(len, 1, radius),
                    scan_cost::<[u64; 4]>(len)
                );
                let mut last = f64::INFINITY;
                for queries in 1..=128 {
                    let cost = shared_scan_cost::<u64>(len, queries, radius);
                    assert!(
                        cost <= last,
                        "n {len} r{radius}: {queries} queries cost more than one fewer"
                    );
                    last = cost;
                }
            }
            // Bit-sliced up to its widest radius where the kernel has it (never above the
            // mask kernel's shared price), the mask kernel's shared price past it.
            if sliced_serves(kernel(), SLICED_MIN_QUERIES, SLICED_MAX_RADIUS) {
                let by_mask = shared_scan_cost::<u64>(len, SLICED_MIN_QUERIES, 64);
                assert_eq!(
                    shared_scan_cost::<u64>(len, SLICED_MIN_QUERIES, SLICED_MAX_RADIUS),
                    batch_scan_cost::<u64>(len).min(by_mask)
                );
            } else {
                // A kernel without it (AVX2) prices every radius as the mask kernel's.
                assert_eq!(
                    shared_scan_cost::<u64>(len, SLICED_MIN_QUERIES, 0),
                    shared_scan_cost::<u64>(len, SLICED_MIN_QUERIES, 64)
                );
            }
            // Past it the price no longer depends on the radius, as the mask kernel's does not.
            assert_eq!(
                shared_scan_cost::<u64>(len, SLICED_MIN_QUERIES, SLICED_MAX_RADIUS + 1),
                shared_scan_cost::<u64>(len, SLICED_MIN_QUERIES, 64)
            );
        }
        // On a 1M segment a group of one takes a single query's plan at every radius, and a
        // full group probes only where probing beats its share of the bit-sliced scan.
        let hashes: Vec<u64> = (0..1_000_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let mih = MultiIndex::build(&hashes);
        let n = hashes.len();
        let mut group_scans_first = None;
        for radius in 0..=64 {
            assert_eq!(
                batch_range_plan(Plan::Auto, n, Some(&mih), radius, 1),
                range_plan(Plan::Auto, n, Some(&mih), radius),
                "r{radius}"
            );
            let probe = multi_index_cost(&mih, radius as usize + 1);
            let group = batch_range_plan(Plan::Auto, n, Some(&mih), radius, 64);
            assert_eq!(
                group == Plan::Scan,
                probe >= shared_scan_cost::<u64>(n, 64, radius)
            );
            if group == Plan::Scan {
                group_scans_first.get_or_insert(radius);
            }
        }
        // A group scans from some radius on, and never later than a single query does.
        let single_scans_first = (0..=64)
            .find(|&r| range_plan(Plan::Auto, n, Some(&mih), r) == Plan::Scan)
            .expect("a single query scans at r64");
        assert!(group_scans_first.expect("a group scans at r64") <= single_scans_first);
    }

    #[test]
    fn measured_probe_scale_prices_only_segments_like_the_calibrations() {
        // Within a core's L2, past the shared cache, or wider than 64 bits: the fitted price.
        assert_eq!(probe_scale::<u64>(200_000), 1.0);
        assert_eq!(probe_scale::<u64>(4_000_000), 1.0);
        assert_eq!(probe_scale::<[u64; 4]>(200_000), 1.0);
        // Between them, as the calibration's own 1M codes: its measured scale, on every step.
        let measured = calibration().probe_scale;
        assert_eq!(probe_scale::<u64>(1_000_000), measured);
        let hashes: Vec<u64> = (0..1_000_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let mih = MultiIndex::build(&hashes);
        for step in 0..mih.step_count() {
            assert_eq!(
                multi_index_cost_of_step(&mih, step),
                fitted_step_cost(&mih, step) * measured
            );
        }
        let small = MultiIndex::build(&hashes[..200_000]);
        for step in 0..small.step_count() {
            assert_eq!(
                multi_index_cost_of_step(&small, step),
                fitted_step_cost(&small, step)
            );
        }
    }

    #[test]
    fn cached_multi_index_cost_is_the_sum_of_its_steps() {
        let hashes: Vec<u64> = (0..20_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let mih = MultiIndex::build(&hashes);
        // Asked for twice: the second answer comes from the cache the first one filled.
        for _ in 0..2 {
            for steps in 0..=mih.step_count() + 3 {
                let direct: f64 = (0..steps.min(mih.step_count()))
                    .map(|s| multi_index_cost_of_step(&mih, s))
                    .sum();
                let cached = multi_index_cost(&mih, steps);
                assert!(
                    (cached - direct).abs() <= direct * 1e-12,
                    "{steps} steps: cached {cached}, summed {direct}"
                );
            }
        }
    }
}
