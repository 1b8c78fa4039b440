//! Serialized input that is truncated, corrupted or forged gives errors, never panics.

use mvptree::{Error, Index};

fn sample() -> Vec<u8> {
    let mut index = Index::with_sync_threshold(4).unwrap();
    for i in 0..10u64 {
        index
            .add(
                i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
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

fn format_error(bytes: &[u8]) -> String {
    match Index::read_from(bytes) {
        Err(Error::Format(why)) => why,
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn round_trip_keeps_everything() {
    let bytes = sample();
    let index = Index::read_from(bytes.as_slice()).unwrap();
    // 10 adds with threshold 4: synced at 4 and 8, then id 3 deleted.
    assert_eq!(index.len(), 7);
    assert_eq!(index.pending_len(), 2);
    assert_eq!(index.next_id(), 11);
    assert_eq!(index.sync_threshold(), 4);
    assert_eq!(index.lookup(10), Some(&b"photo-9.jpg"[..]));
    assert_eq!(index.lookup(3), None);
    assert_eq!(index.lookup(4), Some(&b"photo-3.jpg"[..]));
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = sample();
    for len in 0..bytes.len() {
        let why = format_error(&bytes[..len]);
        assert!(
            why.contains("truncated") || why.contains("checksum"),
            "cut at {len}: {why}"
        );
    }
}

#[test]
fn every_flipped_byte_is_an_error() {
    let bytes = sample();
    for at in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut bad = bytes.clone();
            bad[at] ^= bit;
            format_error(&bad);
        }
    }
}

#[test]
fn foreign_and_future_input_is_named() {
    assert!(format_error(b"PNG\x89 not an index at all......").contains("bad magic"));
    let mut future = sample();
    future[8] = 2;
    assert!(format_error(&future).contains("version 2"));
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
