//! The cost model that picks, per segment and query, how to search.
//!
//! Costs are nanoseconds on a 2020s x86-64 core, measured with `cargo bench -p mvptree`
//! (benches/search.rs prints the per-hash and per-bucket figures these constants come from).
//! They only choose between exact plans, so a poor estimate costs time, never an answer.

use crate::mih::MultiIndex;

/// How to search: [`Plan::Auto`] lets the cost model choose per segment; the others force one
/// structure (a segment without multi-index tables falls back to a scan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Plan {
    Auto,
    Scan,
    Tree,
    MultiIndex,
}

impl Plan {
    pub fn name(self) -> &'static str {
        match self {
            Plan::Auto => "auto",
            Plan::Scan => "scan",
            Plan::Tree => "tree",
            Plan::MultiIndex => "multi-index",
        }
    }
}

/// One hash of a linear scan (xor, popcount, compare; memory-bound at this rate).
pub const SCAN_NS_PER_HASH: f64 = 0.55;
/// Starting on one bucket: two offset reads, usually a cache miss.
pub const BUCKET_NS: f64 = 6.0;
/// One candidate from a bucket: a random read of its hash (a cache miss on large segments),
/// then xor and popcount.
pub const CANDIDATE_NS: f64 = 20.0;
/// One candidate whose hash is stored in the bucket itself (field 0): read in sequence.
pub const INLINE_CANDIDATE_NS: f64 = 1.0;
/// A kNN search walks multi-index steps until it has spent this fraction of a scan's cost,
/// then finishes with a scan.
pub const KNN_PROBE_BUDGET: f64 = 0.3;
/// Segments smaller than this get no bucket tables: scanning them is as fast, and tables
/// would cost memory in every small Redis key.
pub const MULTI_INDEX_MIN_LEN: usize = 4096;

pub fn scan_cost(len: usize) -> f64 {
    len as f64 * SCAN_NS_PER_HASH
}

/// One hash of a batched scan ([`crate::hamming::scan_many`]): the hashes come from L1.
pub const BATCH_SCAN_NS_PER_HASH: f64 = 0.3;

pub fn batch_scan_cost(len: usize) -> f64 {
    len as f64 * BATCH_SCAN_NS_PER_HASH
}

pub fn multi_index_cost_of_step(mih: &MultiIndex, step: usize) -> f64 {
    let work = mih.step_work(step);
    let per_candidate = if work.inline {
        INLINE_CANDIDATE_NS
    } else {
        CANDIDATE_NS
    };
    work.buckets * BUCKET_NS + work.candidates * per_candidate
}

/// Estimated cost of multi-index steps `0..steps`, assuming uniformly spread hashes.
pub fn multi_index_cost(mih: &MultiIndex, steps: usize) -> f64 {
    (0..steps.min(mih.step_count()))
        .map(|s| multi_index_cost_of_step(mih, s))
        .sum()
}

/// The plan [`Plan::Auto`] resolves to for a range query of `radius` on a segment.
pub fn choose_range(len: usize, mih: Option<&MultiIndex>, radius: u32) -> Plan {
    match mih {
        Some(mih) if multi_index_cost(mih, radius as usize + 1) < scan_cost(len) => {
            Plan::MultiIndex
        }
        _ => Plan::Scan,
    }
}
