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

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Instant;

use crate::hamming::scan;

/// Codes in the calibration buffer: 8 MiB, past any core's private caches, and the size of
/// the 1M-entry segments where plans cross.
pub const CALIBRATION_CODES: usize = 1 << 20;
/// Timed passes over the buffer after one warm-up pass; the fastest counts, so a burst of
/// other work on the machine during one pass does not skew the figures.
const PASSES: usize = 5;
/// The radius of the timed scan: a crossover radius, with a few hits per million codes.
const CALIBRATION_RADIUS: u32 = 16;

/// What one core's scan costs on this machine past its private caches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// ns per code of a single query's scan ([`crate::hamming::scan`] with the process's
    /// kernel) over 64-bit codes streamed from past the core's caches.
    pub scan_ns_per_code: f64,
    /// ns per byte of reading codes in sequence from there: the floor under a scan of
    /// wider codes, and under a scan a group of queries shares.
    pub stream_ns_per_byte: f64,
}

/// The process's calibration: measured by the first call, the same for every later one.
pub fn calibration() -> Calibration {
    static MEASURED: OnceLock<Calibration> = OnceLock::new();
    *MEASURED.get_or_init(|| bounded(measure()))
}

/// Bounds that keep a measurement gone wrong (a stalled timer, a preempted pass) from
/// steering every plan: a scan between 270 and 0.8 GB/s of codes, a read between a fast
/// shared cache's 200 GB/s and a slow memory's 5 GB/s.
fn bounded(measured: Calibration) -> Calibration {
    Calibration {
        scan_ns_per_code: measured.scan_ns_per_code.clamp(0.03, 10.0),
        stream_ns_per_byte: measured.stream_ns_per_byte.clamp(0.005, 0.2),
    }
}

/// One measurement, before [`bounded`].
fn measure() -> Calibration {
    // Distinct, unordered codes: a constant buffer could let a future kernel skip work.
    let codes: Vec<u64> = (0..CALIBRATION_CODES as u64)
        .map(|i| (i ^ 0x5DEE_CE66_D1CE_4E5B).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let query = 0x0123_4567_89AB_CDEF;
    let mut best_scan = f64::INFINITY;
    let mut best_read = f64::INFINITY;
    for pass in 0..=PASSES {
        let start = Instant::now();
        let mut hits = 0usize;
        scan(&codes, query, CALIBRATION_RADIUS, |_, _| hits += 1);
        black_box(hits);
        let scan_ns = start.elapsed().as_secs_f64() * 1e9;
        let start = Instant::now();
        black_box(sum_words(black_box(&codes)));
        let read_ns = start.elapsed().as_secs_f64() * 1e9;
        if pass > 0 {
            best_scan = best_scan.min(scan_ns);
            best_read = best_read.min(read_ns);
        }
    }
    Calibration {
        scan_ns_per_code: best_scan / CALIBRATION_CODES as f64,
        stream_ns_per_byte: best_read / (CALIBRATION_CODES * 8) as f64,
    }
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
        };
        assert_eq!(
            bounded(wild),
            Calibration {
                scan_ns_per_code: 10.0,
                stream_ns_per_byte: 0.005,
            }
        );
        let sane = Calibration {
            scan_ns_per_code: 0.3,
            stream_ns_per_byte: 0.04,
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
