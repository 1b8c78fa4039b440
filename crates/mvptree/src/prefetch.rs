//! A hint to the memory system that a value is about to be read.
//!
//! A query's multi-index probe reads a few hundred buckets at addresses it knows before it
//! reads any of them; asked for one after another, each read waits for the memory behind the
//! one before. Asking for all of them first lets the misses overlap.

/// Starts bringing the cache line that holds `value` towards the core. Never faults and never
/// changes what any read returns: only when the line arrives.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    prefetch_address((value as *const T).cast());
}

/// [`prefetch`] of every cache line `values` covers, up to [`MAX_LINES_ASKED`]: a bucket of 15
/// inline hashes spans two or three lines, and asking for the first alone left the others to
/// miss when read.
#[inline(always)]
pub fn prefetch_lines<T>(values: &[T]) {
    let start = values.as_ptr().cast::<u8>();
    for offset in line_offsets(start as usize, std::mem::size_of_val(values)).take(MAX_LINES_ASKED)
    {
        prefetch_address(start.wrapping_add(offset));
    }
}

/// Lines [`prefetch_lines`] asks for at most. A crowded bucket (near-identical images share
/// one; flat ones can fill most of an index) is read in sequence, which the hardware
/// prefetcher follows on its own; asking for all of it would cost a hint per eight hashes and
/// push its first lines out of L1 before they are read.
const MAX_LINES_ASKED: usize = 8;

/// Assumed cache line size (x86-64 and most aarch64 cores).
const LINE: usize = 64;

/// Offsets into `bytes` bytes at address `start`, one in each cache line they cover: the first
/// byte, then the start of each later line.
fn line_offsets(start: usize, bytes: usize) -> impl Iterator<Item = usize> {
    let first = start / LINE;
    // One past the last byte's line; no lines at all when there are no bytes.
    let end = if bytes == 0 {
        first
    } else {
        (start + bytes).div_ceil(LINE)
    };
    (first..end).map(move |line| (line * LINE).saturating_sub(start))
}

/// The prefetch itself, of any address: the hint never faults, so no address is unsafe.
#[inline(always)]
fn prefetch_address(address: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it does not fault on any address and has no
    // architectural effect.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(address.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_offsets_name_each_covered_line_once() {
        for start in [0usize, 1, 8, 60, 63, 64, 100, 4096 + 56] {
            for bytes in [0usize, 1, 4, 8, 60, 64, 65, 120, 128, 129, 1000] {
                let offsets: Vec<usize> = line_offsets(start, bytes).collect();
                let lines: Vec<usize> = offsets.iter().map(|o| (start + o) / LINE).collect();
                let want: Vec<usize> = (start..start + bytes)
                    .map(|a| a / LINE)
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                assert_eq!(lines, want, "start {start}, {bytes} bytes");
                assert!(
                    offsets.iter().all(|&o| o < bytes),
                    "start {start}, {bytes} bytes"
                );
            }
        }
    }
}
