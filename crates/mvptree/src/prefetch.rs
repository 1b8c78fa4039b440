//! A hint to the memory system that a value is about to be read.
//!
//! A query's multi-index probe reads a few hundred buckets at addresses it knows before it
//! reads any of them; asked for one after another, each read waits for the memory behind the
//! one before. Asking for all of them first lets the misses overlap.

/// Starts bringing the cache line that holds `value` towards the core. Never faults and never
/// changes what any read returns: only when the line arrives.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it does not fault on any address and has no
    // architectural effect; the address comes from a live reference besides.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
