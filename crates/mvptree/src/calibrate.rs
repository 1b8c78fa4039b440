//! What this machine's memory does to a scan, measured once per process.
//!
//! A scan of a segment that fits a core's own caches runs at the kernel's rate, which the
//! tables in [`crate::plan`] give per kernel. Past them, it runs at whatever rate the shared
//! cache or the memory delivers codes, and that differs more between machines than between
//! kernels: 1M 64-bit codes (8 MiB) scan in 0.32 ns a code with AVX-512 on a Xeon whose
//! shared cache streams about 25 GB/s to one core, and in 0.13 ns on an EPYC whose 32 MiB
//! L3 streams about 60 GB/s. A table fitted on one would place the other's crossover between
//! scan and multi-index several radii off. So the first time a process prices a scan of a
//! segment past a core's L2 (smaller ones never ask), it measures both rates on a buffer of
//! [`CALIBRATION_CODES`] codes and keeps them for the life of the process: plans stay the
//! same from call to call, and answers never depend on them.
//!
//! A multi-index probe is bound by the latency of random reads from the shared cache, which
//! differs between machines too: its fitted prices ([`crate::probe_price::fitted_step_cost`]) were
//! within 15% of forced probes on a Xeon and a Zen 4 EPYC, and twice a Zen 5 EPYC's times,
//! where they put the AVX2 crossover at r14 with the probe taking half the scan's time. So the
//! same measurement builds a multi-index over the buffer and times probes at the radii where
//! plans cross, against the fitted prices of the same probes: the ratio scales the prices of
//! segments like it ([`crate::plan::probe_scale`]).
//!
//! A batched scan of 64-bit codes runs bit-sliced on some kernels and by mask on others
//! ([`crate::hamming::sliced_serves`]), from blocks the core's caches hold; its rate is the
//! kernel's, but the bit-sliced form's differs between CPUs as much as the scan's does (0.077
//! ns a code a query on a Zen 5 EPYC with AVX-512, against the 0.10 measured on a Xeon). So
//! the same passes time a batch of [`BATCH_QUERIES`] over a share of the buffer as well: its
//! rate prices the batched scans of segments past a core's L2 ([`crate::plan::batch_scan_cost`]).

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Instant;

use crate::hamming::{scan, scan_many};
use crate::mih::MultiIndex;
use crate::probe_price::fitted_step_cost;

/// Codes in the calibration buffer: 8 MiB, past any core's private caches, and the size of
/// the 1M-entry segments where plans cross.
pub const CALIBRATION_CODES: usize = 1 << 20;
/// Timed passes over the buffer after one warm-up pass; the fastest counts, so a burst of
/// other work on the machine during one pass does not skew the figures.
const PASSES: usize = 5;
/// The radius of the timed scan: a crossover radius, with a few hits per million codes.
const CALIBRATION_RADIUS: u32 = 16;
/// Radii of the timed probes: on 1M codes, where the multi-index and the scan cross with
/// one kernel or another (r12 to r17), and where its two kinds of step, the inline field 0
/// and the others, each hold a good share of the candidates.
const PROBE_RADII: [u32; 2] = [10, 14];
/// What an index's probe costs over the calibration's probe of the same work: the
/// calibration's multi-index has the caches to itself, where an index's shares them with its
/// columns and id map, and its hits are resolved and sorted. Forced probes of a 1M index at
/// r12-r16 (`examples/plans.rs`, Zen 5 EPYC, every kernel) took 0.52-0.73 of their fitted
/// price where the calibration measured 0.35-0.65 on the same machine: 1.3 between them.
const INDEX_PROBE_OVERHEAD: f64 = 1.3;
/// Queries of the timed batched scan: the bit-sliced form's group.
const BATCH_QUERIES: usize = 64;
/// Codes of the timed batched scan, a share of the buffer: its rate is the kernel's over
/// cached blocks, not the memory's, and the share keeps a pass of the portable kernel under
/// 3 ms.
const BATCH_CODES: usize = 1 << 17;
/// Probes a pass at each radius, half near a code of the buffer, half anywhere, as queries
/// come: about 2 ms a pass.
const PROBE_QUERIES: usize = 16;

/// What one core's scan costs on this machine past its private caches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// ns per code of a single query's scan ([`crate::hamming::scan`] with the process's
    /// kernel) over 64-bit codes streamed from past the core's caches.
    pub scan_ns_per_code: f64,
    /// ns per byte of reading codes in sequence from there: the floor under a scan of
    /// wider codes, and under a scan a group of queries shares.
    pub stream_ns_per_byte: f64,
    /// ns per code and query of a batched scan of [`BATCH_QUERIES`] 64-bit queries
    /// ([`crate::hamming::scan_many`], bit-sliced where the kernel runs it so).
    pub batch_ns_per_code: f64,
    /// Measured time of multi-index probes over [`CALIBRATION_CODES`] codes over their
    /// fitted price, times [`INDEX_PROBE_OVERHEAD`]: what the planner multiplies the fitted
    /// prices of such segments by.
    pub probe_scale: f64,
}

/// The process's calibration: measured by the first call, the same for every later one.
pub fn calibration() -> Calibration {
    static MEASURED: OnceLock<Calibration> = OnceLock::new();
    *MEASURED.get_or_init(|| bounded(measure()))
}

/// Bounds that keep a measurement gone wrong (a stalled timer, a preempted pass) from
/// steering every plan: a scan between 270 and 0.8 GB/s of codes, a read between a fast
/// shared cache's 200 GB/s and a slow memory's 5 GB/s, a batched scan between 0.01 and 10
/// ns a code and query, probes between a fifth and five times their fitted price.
fn bounded(measured: Calibration) -> Calibration {
    Calibration {
        scan_ns_per_code: measured.scan_ns_per_code.clamp(0.03, 10.0),
        stream_ns_per_byte: measured.stream_ns_per_byte.clamp(0.005, 0.2),
        batch_ns_per_code: measured.batch_ns_per_code.clamp(0.01, 10.0),
        probe_scale: measured.probe_scale.clamp(0.2, 5.0),
    }
}

/// One measurement, before [`bounded`]. Each pass times the scan, the read and the probes
/// one after another, so a spell of other work on the machine slows all of them alike, and
/// their ratios (which place the crossovers) stay put when the fastest pass of each is kept.
fn measure() -> Calibration {
    // Distinct, unordered codes: a constant buffer could let a future kernel skip work.
    let codes: Vec<u64> = (0..CALIBRATION_CODES as u64)
        .map(|i| (i ^ 0x5DEE_CE66_D1CE_4E5B).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let mih = MultiIndex::build(&codes);
    let probes = probe_queries(&codes);
    let query = 0x0123_4567_89AB_CDEF;
    let batch: Vec<u64> = (0..BATCH_QUERIES as u64)
        .map(|i| query ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let mut best_scan = f64::INFINITY;
    let mut best_read = f64::INFINITY;
    let mut best_batch = f64::INFINITY;
    let mut best_probe = [f64::INFINITY; PROBE_RADII.len()];
    for pass in 0..=PASSES {
        let scan_ns = timed(|| {
            let mut hits = 0usize;
            scan(&codes, query, CALIBRATION_RADIUS, |_, _| hits += 1);
            hits
        });
        let read_ns = timed(|| sum_words(black_box(&codes)));
        let batch_ns = timed(|| {
            let mut hits = 0usize;
            scan_many(
                &codes[..BATCH_CODES],
                &batch,
                CALIBRATION_RADIUS,
                |_, _, _| hits += 1,
            );
            hits
        });
        // Each pass and radius probes queries of its own: buckets a pass before had read
        // would come from the cache, as a user's next query's do not.
        let probe_ns: [f64; PROBE_RADII.len()] = std::array::from_fn(|r| {
            let set = pass * PROBE_RADII.len() + r;
            let queries = &probes[set * PROBE_QUERIES..(set + 1) * PROBE_QUERIES];
            timed(|| {
                let mut hits = 0usize;
                for &probe in queries {
                    mih.range(&codes, probe, PROBE_RADII[r], |_, _| hits += 1);
                }
                hits
            })
        });
        if pass > 0 {
            best_scan = best_scan.min(scan_ns);
            best_read = best_read.min(read_ns);
            best_batch = best_batch.min(batch_ns);
            for (best, ns) in best_probe.iter_mut().zip(probe_ns) {
                *best = best.min(ns);
            }
        }
    }
    let fitted: f64 = PROBE_RADII
        .iter()
        .map(|&radius| {
            let last = (radius as usize).min(mih.step_count() - 1);
            (0..=last).map(|s| fitted_step_cost(&mih, s)).sum::<f64>()
        })
        .sum();
    let measured: f64 = best_probe.iter().sum::<f64>() / PROBE_QUERIES as f64;
    Calibration {
        scan_ns_per_code: best_scan / CALIBRATION_CODES as f64,
        stream_ns_per_byte: best_read / (CALIBRATION_CODES * 8) as f64,
        batch_ns_per_code: best_batch / (BATCH_CODES * BATCH_QUERIES) as f64,
        probe_scale: INDEX_PROBE_OVERHEAD * measured / fitted,
    }
}

/// Nanoseconds `work` takes (its result kept from the optimizer).
fn timed<T>(work: impl FnOnce() -> T) -> f64 {
    let start = Instant::now();
    black_box(work());
    start.elapsed().as_secs_f64() * 1e9
}

/// [`PROBE_QUERIES`] queries for each pass and radius of the probes: half near a code of
/// `codes` (about 8 of 64 bits flipped, a near-duplicate's distance), half anywhere.
fn probe_queries(codes: &[u64]) -> Vec<u64> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        // xorshift64*: any spread of bits will do.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    (0..PROBE_QUERIES * PROBE_RADII.len() * (PASSES + 1))
        .map(|i| {
            if i % 2 == 0 {
                codes[next() as usize % codes.len()] ^ (next() & next() & next())
            } else {
                next()
            }
        })
        .collect()
}

/// The wrapping sum of `words` in eight lanes: a read the compiler vectorizes, so it runs at
/// the rate the memory delivers rather than at an adder's.
fn sum_words(words: &[u64]) -> u64 {
    let mut lanes = [0u64; 8];
    let chunks = words.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &w) in lanes.iter_mut().zip(chunk) {
            *lane = lane.wrapping_add(w);
        }
    }
    lanes
        .iter()
        .chain(rest)
        .fold(0u64, |total, &w| total.wrapping_add(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_measurement_is_sane_without_its_bounds_and_kept_for_the_process() {
        // The raw figures, not the clamped ones: a broken timer or unit would land outside.
        let raw = measure();
        assert!((0.03..=10.0).contains(&raw.scan_ns_per_code), "{raw:?}");
        assert!((0.005..=0.2).contains(&raw.stream_ns_per_byte), "{raw:?}");
        assert!((0.01..=10.0).contains(&raw.batch_ns_per_code), "{raw:?}");
        // Sharing its blocks among 64 queries, a batch costs a query no more than a scan
        // of its own does (and a fifth more, for the noise between passes).
        assert!(
            raw.batch_ns_per_code <= 1.2 * raw.scan_ns_per_code,
            "{raw:?}"
        );
        assert!((0.2..=5.0).contains(&raw.probe_scale), "{raw:?}");
        // A scan reads each code's 8 bytes and counts them too: it cannot outrun a plain
        // read of the same bytes by much (half, for the noise between passes).
        assert!(
            raw.scan_ns_per_code >= 0.5 * 8.0 * raw.stream_ns_per_byte,
            "{raw:?}"
        );
        let kept = calibration();
        assert_eq!(calibration(), kept);
    }

    #[test]
    fn a_measurement_gone_wrong_is_held_to_the_bounds() {
        let wild = Calibration {
            scan_ns_per_code: 1e6,
            stream_ns_per_byte: 0.0,
            batch_ns_per_code: -1.0,
            probe_scale: f64::INFINITY,
        };
        assert_eq!(
            bounded(wild),
            Calibration {
                scan_ns_per_code: 10.0,
                stream_ns_per_byte: 0.005,
                batch_ns_per_code: 0.01,
                probe_scale: 5.0,
            }
        );
        let sane = Calibration {
            scan_ns_per_code: 0.3,
            stream_ns_per_byte: 0.04,
            batch_ns_per_code: 0.1,
            probe_scale: 0.6,
        };
        assert_eq!(bounded(sane), sane);
    }

    #[test]
    fn the_read_sums_every_word() {
        let words: Vec<u64> = (1..=21).collect();
        assert_eq!(sum_words(&words), 231);
        assert_eq!(sum_words(&[u64::MAX, 2]), 1);
    }
}
