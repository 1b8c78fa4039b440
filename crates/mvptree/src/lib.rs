//! Exact Hamming-distance search over 64-bit perceptual hashes.
//!
//! [`Index`] holds entries `(id, hash, title)`. New entries wait in a pending queue until
//! [`Index::sync`] (or the automatic sync at the threshold) moves them into the searchable
//! structures; queries see indexed entries only. Every answer is exact: the structures only
//! decide how much work a query does, never what it returns.

mod error;
mod index;

pub use error::{Error, Result};
pub use index::{Entry, Index, InfoValue, Match, Pair, Stats};

/// Largest id an entry may carry: ids must fit a signed 64-bit Redis integer.
pub const MAX_ID: u64 = i64::MAX as u64;
/// Hashes have 64 bits, so no two differ in more; larger radii act as this one.
pub const MAX_RADIUS: u32 = 64;
/// Pending entries that trigger an automatic sync, unless an index is told otherwise.
pub const DEFAULT_SYNC_THRESHOLD: usize = 500;
/// Largest sync threshold accepted (a pending queue is scanned linearly by `lookup`-free paths
/// only, but it is held in memory twice during sync).
pub const MAX_SYNC_THRESHOLD: usize = 10_000_000;

/// Number of differing bits between two hashes.
#[inline(always)]
pub fn distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}
