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

/// One hash of a linear scan (xor, popcount, compare): with scalar POPCNT, and with
/// AVX-512's vector popcount, which reads hashes about as fast as the caches deliver them.
pub const SCAN_NS_PER_HASH: f64 = 0.41;
pub const VECTOR_SCAN_NS_PER_HASH: f64 = 0.09;
/// Starting on one bucket: two offset reads, usually a cache miss.
pub const BUCKET_NS: f64 = 6.0;
/// One candidate from a bucket: a random read of its hash (a cache miss on large segments),
/// then xor and popcount.
pub const CANDIDATE_NS: f64 = 11.0;
/// One candidate whose hash is stored in the bucket itself (field 0): read in sequence.
pub const INLINE_CANDIDATE_NS: f64 = 1.0;
/// A kNN search that chose the multi-index finishes with a scan once it has spent this many
/// times its estimated cost (the query was far from the data, so its neighbours are too).
pub const KNN_BUDGET_FACTOR: f64 = 2.0;
/// Segments smaller than this get no bucket tables: scanning them is as fast, and tables
/// would cost memory in every small Redis key.
pub const MULTI_INDEX_MIN_LEN: usize = 4096;

pub fn scan_cost(len: usize) -> f64 {
    len as f64
        * if crate::hamming::vector_popcount() {
            VECTOR_SCAN_NS_PER_HASH
        } else {
            SCAN_NS_PER_HASH
        }
}

/// One hash of a batched scan ([`crate::hamming::scan_many`]): the hashes come from L1.
pub const BATCH_SCAN_NS_PER_HASH: f64 = 0.3;
pub const VECTOR_BATCH_SCAN_NS_PER_HASH: f64 = 0.06;

pub fn batch_scan_cost(len: usize) -> f64 {
    len as f64
        * if crate::hamming::vector_popcount() {
            VECTOR_BATCH_SCAN_NS_PER_HASH
        } else {
            BATCH_SCAN_NS_PER_HASH
        }
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

/// Fraction of uniformly random 64-bit hashes within `radius` of a point.
fn uniform_fraction_within(radius: u32) -> f64 {
    (0..=radius.min(64))
        .map(|i| crate::mih::binomial(64, i))
        .sum::<f64>()
        / 2f64.powi(64)
}

/// The radius that holds `k` of `len` uniformly spread hashes: how far a kNN search is
/// expected to go (less on clustered data, where neighbours are nearer).
pub fn expected_knn_radius(len: usize, k: usize) -> u32 {
    (0..=64)
        .find(|&r| len as f64 * uniform_fraction_within(r) >= k as f64)
        .unwrap_or(64)
}

/// The plan [`Plan::Auto`] resolves to for a kNN search on a segment, with the cost budget
/// after which a multi-index search gives up and scans.
pub fn choose_knn(len: usize, mih: Option<&MultiIndex>, expected_radius: u32) -> (Plan, f64) {
    match mih {
        Some(mih) => {
            let estimate = multi_index_cost(mih, expected_radius as usize + 1);
            if estimate < scan_cost(len) {
                (Plan::MultiIndex, estimate * KNN_BUDGET_FACTOR)
            } else {
                (Plan::Scan, 0.0)
            }
        }
        None => (Plan::Scan, 0.0),
    }
}
