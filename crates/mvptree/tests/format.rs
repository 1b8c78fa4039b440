//! Serialized input that is truncated, corrupted or forged gives errors, never panics.

use mvptree::format::AnyIndex;
use mvptree::{Code, Error, Index};

/// Ten entries (id 3 deleted, two pending) of `C`, serialized.
fn sample_of<C: Code>() -> Vec<u8> {
    let mut index = Index::<C>::with_sync_threshold(4).unwrap();
    for i in 0..10u64 {
        let words: Vec<u64> = (0..C::WORDS as u64)
            .map(|w| (i + 11 * w).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        index
            .add(
                C::from_words(&words).unwrap(),
                format!("photo-{i}.jpg").as_bytes(),
                None,
            )
            .unwrap();
    }
    index.delete(3).unwrap();
    let mut bytes = Vec::new();
    index.write_to(&mut bytes).unwrap();
    bytes
}

fn sample() -> Vec<u8> {
    sample_of::<u64>()
}

fn format_error_of<C: Code>(bytes: &[u8]) -> String {
    match Index::<C>::read_from(bytes) {
        Err(Error::Format(why)) => why,
        other => panic!("expected a format error, got {other:?}"),
    }
}

fn format_error(bytes: &[u8]) -> String {
    format_error_of::<u64>(bytes)
}

#[test]
fn round_trip_keeps_everything() {
    let bytes = sample();
    let index = Index::<u64>::read_from(bytes.as_slice()).unwrap();
    // 10 adds with threshold 4: synced at 4 and 8, then id 3 deleted.
    assert_eq!(index.len(), 7);
    assert_eq!(index.pending_len(), 2);
    assert_eq!(index.next_id(), 11);
    assert_eq!(index.sync_threshold(), 4);
    assert_eq!(index.lookup(10), Some(&b"photo-9.jpg"[..]));
    assert_eq!(index.lookup(3), None);
    assert_eq!(index.lookup(4), Some(&b"photo-3.jpg"[..]));
}

fn every_truncation_is_an_error_of<C: Code>() {
    let bytes = sample_of::<C>();
    for len in 0..bytes.len() {
        let why = format_error_of::<C>(&bytes[..len]);
        assert!(
            why.contains("truncated") || why.contains("checksum"),
            "{} bits, cut at {len}: {why}",
            C::BITS
        );
    }
}

#[test]
fn every_truncation_is_an_error() {
    every_truncation_is_an_error_of::<u64>();
    every_truncation_is_an_error_of::<[u64; 2]>();
    every_truncation_is_an_error_of::<[u64; 4]>();
}

fn every_flipped_byte_is_an_error_of<C: Code>() {
    let bytes = sample_of::<C>();
    for at in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut bad = bytes.clone();
            bad[at] ^= bit;
            format_error_of::<C>(&bad);
            assert!(AnyIndex::read_from(bad.as_slice()).is_err(), "byte {at}");
        }
    }
}

#[test]
fn every_flipped_byte_is_an_error() {
    every_flipped_byte_is_an_error_of::<u64>();
    every_flipped_byte_is_an_error_of::<[u64; 2]>();
    every_flipped_byte_is_an_error_of::<[u64; 4]>();
}

/// 64-bit indexes keep the first format byte for byte (older builds read them); wider ones
/// name their width, load only at it, and come back whole.
#[test]
fn widths_are_recorded_and_checked() {
    let narrow = sample();
    assert_eq!(&narrow[8..16], &[1, 0, 0, 0, 0, 0, 0, 0]);
    let wide = sample_of::<[u64; 4]>();
    assert_eq!(&wide[8..20], &[2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(
        wide.len() - narrow.len(),
        4 + 9 * 24,
        "the width, and 24 bytes per live entry"
    );
    let why = format_error_of::<u64>(&wide);
    assert!(why.contains("256-bit codes, not 64-bit"), "{why}");
    let why = format_error_of::<[u64; 4]>(&narrow);
    assert!(why.contains("64-bit codes, not 256-bit"), "{why}");
    let back = Index::<[u64; 4]>::read_from(wide.as_slice()).unwrap();
    let mut again = Vec::new();
    back.write_to(&mut again).unwrap();
    assert_eq!(again, wide);
    assert_eq!((back.len(), back.pending_len(), back.next_id()), (7, 2, 11));
    for (bytes, bits) in [(narrow, 64), (sample_of::<[u64; 2]>(), 128), (wide, 256)] {
        assert_eq!(AnyIndex::read_from(bytes.as_slice()).unwrap().bits(), bits);
    }
    let mut odd = sample_of::<[u64; 4]>();
    odd[16..20].copy_from_slice(&192u32.to_le_bytes());
    assert!(format_error_of::<[u64; 4]>(&odd).contains("width 192"));
}

#[test]
fn foreign_and_future_input_is_named() {
    assert!(format_error(b"PNG\x89 not an index at all......").contains("bad magic"));
    let mut future = sample();
    future[8] = 3;
    assert!(format_error(&future).contains("version 3"));
    let mut trailing = sample();
    trailing.push(0);
    assert!(format_error(&trailing).contains("trailing"));
}

/// A header that announces 2^64-1 entries, or a 4 GiB title, must not make the reader allocate
/// for them: it fails at the end of the input.
#[test]
fn huge_length_fields_fail_without_allocating() {
    let mut forged = sample();
    forged[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(format_error(&forged).contains("truncated"));
    let mut forged = sample();
    // First entry's title length: after the 48-byte header, id (8) and hash (8).
    forged[64..68].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(format_error(&forged).contains("truncated"));
}

/// Well-formed but inconsistent content (valid checksum) is rejected too.
#[test]
fn inconsistent_content_with_a_valid_checksum_is_rejected() {
    let reseal = |mut body: Vec<u8>| {
        body.truncate(body.len() - 4);
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        body
    };
    let mut dup = sample();
    // Make the second entry's id equal the first's.
    let first_id = dup[48..56].to_vec();
    let second = 48 + 8 + 8 + 4 + "photo-0.jpg".len();
    dup[second..second + 8].copy_from_slice(&first_id);
    assert!(format_error(&reseal(dup)).contains("duplicate id"));
    let mut low_next = sample();
    low_next[24..32].copy_from_slice(&2u64.to_le_bytes());
    assert!(format_error(&reseal(low_next)).contains("next id"));
    let mut zero_threshold = sample();
    zero_threshold[16..24].copy_from_slice(&0u64.to_le_bytes());
    assert!(format_error(&reseal(zero_threshold)).contains("sync threshold"));
}
