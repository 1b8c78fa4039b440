//! Exact Hamming-distance search over perceptual hashes of 64, 128 or 256 bits ([`Code`]).
//!
//! [`Index`] holds entries `(id, hash, title)`. New entries wait in a pending queue until
//! [`Index::sync`] (or the automatic sync when the queue reaches its threshold) moves them into
//! the searchable structures; queries see indexed entries only. Every answer is exact: the
//! structures only decide how much work a query does, never what it returns.
//!
//! Inside, indexed entries live in contiguous columns split into segments, each in id order
//! ([`store`]); a segment large enough has multi-index hash tables ([`mih`]), and a cost
//! model ([`plan`]) picks per segment and query between them and a plain scan ([`hamming`]). Answers wide enough to hold a good share of the index are written
//! straight into their final columns in two passes instead ([`wide`]).
//!
//! These docs describe the internals too: build them with
//! `cargo doc -p mvptree --document-private-items`, where links to private items resolve.
#![allow(rustdoc::private_intra_doc_links)]

mod answer;
mod batch;
pub mod calibrate;
mod columns;
mod cursor;
mod error;
mod exec;
pub mod format;
mod hamming;
mod idmap;
mod index;
mod mih;
pub mod plan;
mod prefetch;
mod probe_price;
mod radix;
mod search;
mod store;
pub mod text;
mod threads;
mod wide;

pub use answer::{Entry, Match, Pair};
pub use batch::{all_cores, KnnRows, PairRows, RangeRows};
pub use cursor::{parse_entries_cursor, PairsCursor};
pub use error::{Error, ErrorCode, Result};
pub use hamming::{distance, kernel, Code, Kernel, KERNEL_ENV};
/// The mask kernels, callable one by one for tests and benchmarks that compare them.
#[doc(hidden)]
pub use hamming::{hit_masks_256, hit_masks_shift_in_place, hit_masks_with, scan_many_sliced};
pub use index::{Index, InfoValue, Stats};
pub use plan::Plan;
pub use search::Snapshot;
pub use store::{BuildJob, SegmentStats};

/// Largest id an entry may carry: ids must fit a signed 64-bit Redis integer.
pub const MAX_ID: u64 = i64::MAX as u64;
/// 64-bit hashes differ in at most 64 bits, so larger radii act as this one (for wider codes
/// the bound is [`Code::BITS`]).
pub const MAX_RADIUS: u32 = 64;
/// The widest code an index may hold: what answers and cursors leave room for.
pub const MAX_CODE_BITS: u32 = 256;
/// Pending entries that trigger an automatic sync, unless an index is told otherwise.
pub const DEFAULT_SYNC_THRESHOLD: usize = 500;
/// Rows an in-process answer may hold unless its caller says otherwise: a cap against answers
/// that would exhaust memory (the self-join of 20,000 entries at radius 64 has 2·10^8 pairs),
/// well above any useful single answer; larger ones are asked for with a limit or a cursor.
/// (A server caps its replies lower: each row is written on its event loop.)
pub const DEFAULT_MAX_ROWS: usize = 10_000_000;
/// Rows per page of a cursor walk unless the caller says otherwise.
pub const DEFAULT_PAGE_ROWS: usize = 1000;
/// Largest sync threshold accepted.
pub const MAX_SYNC_THRESHOLD: usize = 10_000_000;
