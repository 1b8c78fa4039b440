//! The serialized-index reader, `mvptree::Index::read_from`, on arbitrary bytes. This is the
//! format of `crates/mvptree/src/format.rs`: what Python keeps in `.idx` files and what the
//! Redis module stores as its RDB payload (`rdb_save` / `rdb_load` in
//! `crates/redis-module/src/data_type.rs` pass these same bytes through), so this target also
//! covers a Redis server loading a corrupted or forged RDB file.
//!
//! Checked on every input:
//! - reading never panics, and allocates at most a fixed multiple of the input's size (a
//!   counting global allocator measures the peak; a forged count or length must not reserve
//!   memory it has no bytes for); libFuzzer's `-timeout` catches endless loops;
//! - when it returns `Ok`, the index holds exactly the entries the input spells out (parsed
//!   again here, independently), writing it back and reading that gives byte-identical output,
//!   and queries agree with `entries()`: `query(h, 64)` returns every indexed entry, each at
//!   its true distance, and a smaller radius the matching subset.
//!
//! A random mutation almost never keeps the trailing CRC-32 right, which would stop the fuzzer
//! at the checksum: input that fails to read is read a second time with its last 4 bytes
//! replaced by the checksum of the rest, so the checks past the checksum get fuzzed too.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;
use mvptree::format::AnyIndex;
use mvptree::{distance, Index, Match, MAX_ID};

/// Counts live heap bytes and their peak since the last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = System.realloc(p, layout, new_size);
        if !q.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap a read may use: the index keeps about 60 bytes per entry besides titles (an entry
/// takes 20 bytes of input), its id map up to twice that; building the search structures
/// needs scratch space of the same order. Generous, but linear: a forged length field that
/// reserved what it claims would blow far past it.
fn allowed_bytes(input_len: usize) -> usize {
    64 * input_len + (1 << 20)
}

/// Reads `bytes`, checking the allocation bound, and returns what `read_from` returned.
fn read_counted(bytes: &[u8]) -> mvptree::Result<Index> {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result = Index::<u64>::read_from(bytes);
    let used = PEAK.load(Ordering::Relaxed) - before;
    assert!(
        used <= allowed_bytes(bytes.len()),
        "reading {} bytes allocated {used} bytes at peak",
        bytes.len()
    );
    result
}

struct Parsed {
    threshold: u64,
    next_id: u64,
    /// (id, hash, title) of the indexed entries, then of the pending ones.
    parts: [Vec<(u64, u64, Vec<u8>)>; 2],
}

/// The layout of `format.rs`, parsed without the library, for input the library accepted.
fn parse(bytes: &[u8]) -> Parsed {
    let mut at = 0;
    let mut take = |n: usize| {
        let s = &bytes[at..at + n];
        at += n;
        s
    };
    let u64_at = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap());
    assert_eq!(take(8), b"IMGSCOUT");
    take(8); // version, flags
    let threshold = u64_at(take(8));
    let next_id = u64_at(take(8));
    let counts = [u64_at(take(8)), u64_at(take(8))];
    let mut parts = [Vec::new(), Vec::new()];
    for (part, count) in parts.iter_mut().zip(counts) {
        for _ in 0..count {
            let id = u64_at(take(8));
            let hash = u64_at(take(8));
            let len = u32::from_le_bytes(take(4).try_into().unwrap()) as usize;
            part.push((id, hash, take(len).to_vec()));
        }
    }
    Parsed {
        threshold,
        next_id,
        parts,
    }
}

fn write(index: &Index) -> Vec<u8> {
    let mut out = Vec::new();
    index.write_to(&mut out).expect("writing to memory");
    out
}

fn check_loaded(bytes: &[u8], index: &Index) {
    let mut parsed = parse(bytes);
    assert_eq!(index.sync_threshold() as u64, parsed.threshold);
    assert_eq!(index.next_id(), parsed.next_id);
    assert!(parsed.next_id <= MAX_ID + 1);
    // A queue at or above its threshold (never written by the crate) is synced on load.
    let synced_on_load = parsed.parts[1].len() as u64 >= parsed.threshold;
    if synced_on_load {
        let pending = std::mem::take(&mut parsed.parts[1]);
        parsed.parts[0].extend(pending);
    }
    assert_eq!(index.len(), parsed.parts[0].len());
    assert_eq!(index.pending_len(), parsed.parts[1].len());
    assert_eq!(index.total_len(), index.entries().count());

    // entries(): indexed ones in id order, then pending ones in input order.
    let mut want = parsed.parts[0].clone();
    want.sort_unstable_by_key(|e| e.0);
    want.extend(parsed.parts[1].iter().cloned());
    let got: Vec<(u64, u64, Vec<u8>)> = index
        .entries()
        .map(|e| (e.id, e.hash, e.title.to_vec()))
        .collect();
    assert_eq!(got, want);
    for (k, e) in index.entries().enumerate() {
        assert_eq!(e.pending, k >= parsed.parts[0].len());
        assert!(e.id < parsed.next_id);
        assert_eq!(index.lookup(e.id), Some(e.title));
        assert_eq!(index.hash_of(e.id), Some(e.hash));
    }

    // Writing back and reading that again is byte-identical.
    let first = write(index);
    let again = Index::<u64>::read_from(first.as_slice()).expect("reading what was written");
    assert_eq!(write(&again), first, "round trip changed the bytes");
    // Input already in canonical order is written back as it was.
    if !synced_on_load && parsed.parts[0].windows(2).all(|w| w[0].0 < w[1].0) {
        assert_eq!(first, bytes, "canonical input written back differently");
    }

    // Queries agree with entries(): radius 64 returns every indexed entry.
    let indexed: Vec<(u64, u64)> = index
        .entries()
        .filter(|e| !e.pending)
        .map(|e| (e.id, e.hash))
        .collect();
    let probes = [0, u64::MAX]
        .into_iter()
        .chain(indexed.iter().take(4).map(|&(_, h)| h))
        .chain(parsed.parts[1].iter().take(2).map(|e| e.1));
    for probe in probes {
        let mut all: Vec<Match> = indexed
            .iter()
            .map(|&(id, h)| Match {
                distance: distance(h, probe),
                id,
            })
            .collect();
        all.sort_unstable();
        assert_eq!(index.query(probe, 64), all, "query({probe:#x}, 64)");
        for radius in [0, 3, 10, 32] {
            let want: Vec<Match> = all
                .iter()
                .copied()
                .filter(|m| m.distance <= radius)
                .collect();
            assert_eq!(
                index.query(probe, radius),
                want,
                "query({probe:#x}, {radius})"
            );
        }
        assert_eq!(index.knn(probe, 3), all[..all.len().min(3)].to_vec());
    }
}

/// Wider codes: whatever the reader of any width accepts writes back to bytes it reads as the
/// same index, within the same allocation bound; 64-bit input reads as the 64-bit reader does.
fn check_any_width(bytes: &[u8]) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result = AnyIndex::read_from(bytes);
    assert!(PEAK.load(Ordering::Relaxed) - before <= allowed_bytes(bytes.len()));
    let written = |any: &AnyIndex| {
        let mut out = Vec::new();
        match any {
            AnyIndex::Bits64(i) => i.write_to(&mut out),
            AnyIndex::Bits128(i) => i.write_to(&mut out),
            AnyIndex::Bits256(i) => i.write_to(&mut out),
        }
        .expect("writing to memory");
        out
    };
    match result {
        Ok(any) => {
            let first = written(&any);
            let again = AnyIndex::read_from(first.as_slice()).expect("reading what was written");
            assert_eq!(again.bits(), any.bits());
            assert_eq!(written(&again), first, "round trip changed the bytes");
            assert_eq!(any.bits() == 64, Index::<u64>::read_from(bytes).is_ok());
        }
        Err(_) => assert!(Index::<u64>::read_from(bytes).is_err()),
    }
}

fuzz_target!(|data: &[u8]| {
    check_any_width(data);
    if let Ok(index) = read_counted(data) {
        check_loaded(data, &index);
        return;
    }
    // The same bytes with a correct checksum, to get past it.
    if data.len() >= 4 {
        let mut fixed = data.to_vec();
        let body = fixed.len() - 4;
        let crc = crc32fast::hash(&fixed[..body]);
        fixed[body..].copy_from_slice(&crc.to_le_bytes());
        check_any_width(&fixed);
        if let Ok(index) = read_counted(&fixed) {
            check_loaded(&fixed, &index);
        }
    }
});
