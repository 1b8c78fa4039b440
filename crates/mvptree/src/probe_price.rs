//! The fitted prices of multi-index probe steps: nanoseconds a bucket and a candidate, by
//! where they are read from, fitted to forced probes of 1M entries on a Xeon and a Zen 4
//! EPYC (`examples/plans.rs`, `KERNELS.md`). The planner ([`crate::plan`]) scales them by
//! what the process measures ([`crate::calibrate`]); the calibration prices its own probes
//! by them, so they live apart from both.

use crate::hamming::Code;
use crate::mih::MultiIndex;

/// Starting on one bucket: two offset reads, from a table that fits the core's caches (the
/// 16-bit fields of 64-bit codes at 1M entries: 256 KiB).
pub const BUCKET_NS: f64 = 6.0;
/// Starting on one bucket of a table past [`CACHED_TABLE_BYTES`] (the 20-bit fields of 256-bit
/// codes at 1M entries: 4 MiB each, 13 of them): the offset read misses. Fitted to forced
/// multi-index queries at r31..r64 on 1M 256-bit codes (`examples/plans.rs --wide`).
pub const BUCKET_MISS_NS: f64 = 30.0;
/// The largest bucket table priced at [`BUCKET_NS`].
pub const CACHED_TABLE_BYTES: f64 = 1024.0 * 1024.0;
/// One candidate from a bucket: a random read of its hash (a miss to memory on segments
/// past [`SHARED_CACHE_CODE_BYTES`]), then xor and popcount.
pub const CANDIDATE_NS: f64 = 11.0;
/// [`CANDIDATE_NS`] on a segment whose codes fit the shared cache: the read mostly hits it.
/// Fitted with [`PROBED_INLINE_CANDIDATE_NS`] to forced multi-index queries at r12..r18 on
/// 1M 64-bit codes on both machines (`examples/plans.rs`; within 7% of each).
pub const CACHED_CANDIDATE_NS: f64 = 5.8;
/// One candidate of a query's probe whose hash is stored in its bucket (field 0 of 64-bit
/// codes): no second read, but the bucket's lines still arrive from a random place, and
/// at 15 candidates a bucket (1M codes) that costs most of a cached candidate.
pub const PROBED_INLINE_CANDIDATE_NS: f64 = 3.7;
/// The largest code array whose candidates are priced at [`CACHED_CANDIDATE_NS`].
pub const SHARED_CACHE_CODE_BYTES: f64 = 16.0 * 1024.0 * 1024.0;
/// Each further 64-bit word of a wider candidate: its popcount and, past 64 bits, the
/// ownership test over more fields.
pub const CANDIDATE_WORD_NS: f64 = 2.0;

/// Step `step`'s price by the fitted constants alone: buckets at [`BUCKET_NS`] (or
/// [`BUCKET_MISS_NS`]), candidates at the rate of where they are read from.
pub fn fitted_step_cost<C: Code>(mih: &MultiIndex<C>, step: usize) -> f64 {
    let work = mih.step_work(step);
    let code_bytes = (mih.len() * std::mem::size_of::<C>()) as f64;
    let per_candidate = if work.inline {
        PROBED_INLINE_CANDIDATE_NS
    } else if code_bytes <= SHARED_CACHE_CODE_BYTES {
        CACHED_CANDIDATE_NS + (C::WORDS - 1) as f64 * CANDIDATE_WORD_NS
    } else {
        CANDIDATE_NS + (C::WORDS - 1) as f64 * CANDIDATE_WORD_NS
    };
    let per_bucket = if work.table_bytes > CACHED_TABLE_BYTES {
        BUCKET_MISS_NS
    } else {
        BUCKET_NS
    };
    work.buckets * per_bucket + work.candidates * per_candidate
}
