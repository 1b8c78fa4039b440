//! Cursor text as clients send it back: `mvptree::PairsCursor` (`FromStr` / `Display`) and
//! `mvptree::parse_entries_cursor`. Parsing arbitrary text must never panic, must accept
//! exactly the documented grammar (checked against a separate implementation of it here), and
//! every accepted cursor must print back to text that parses to the same cursor; printing is
//! canonical, so text without leading zeros prints back unchanged.
//!
//! The first input byte picks the mode: text parsing (the rest of the input, as UTF-8), or a
//! cursor built from the input bytes that must survive `Display` then `FromStr`.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use mvptree::{parse_entries_cursor, PairsCursor, MAX_CODE_BITS};

/// Plain decimal digits that fit a u64, as the cursor grammar wants them.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut value: u64 = 0;
    for b in text.bytes() {
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

/// `ANCHOR` or `ANCHOR-DISTANCE-ID` with `DISTANCE <= 256` (the widest code).
fn expected_pairs_cursor(text: &str) -> Option<PairsCursor> {
    let parts: Vec<&str> = text.split('-').collect();
    match parts[..] {
        [anchor] => Some(PairsCursor {
            anchor: number(anchor)?,
            after: None,
        }),
        [anchor, distance, id] => {
            let distance = number(distance)?;
            if distance > u64::from(MAX_CODE_BITS) {
                return None;
            }
            Some(PairsCursor {
                anchor: number(anchor)?,
                after: Some((distance as u32, number(id)?)),
            })
        }
        _ => None,
    }
}

fn canonical(text: &str) -> bool {
    text.split('-').all(|n| n == "0" || !n.starts_with('0'))
}

fn check_text(text: &str) {
    let parsed = text.parse::<PairsCursor>().ok();
    assert_eq!(parsed, expected_pairs_cursor(text), "pairs cursor {text:?}");
    if let Some(cursor) = parsed {
        let printed = cursor.to_string();
        assert_eq!(
            printed.parse::<PairsCursor>().ok(),
            Some(cursor),
            "{text:?}"
        );
        if canonical(text) {
            assert_eq!(printed, text);
        }
        assert_eq!(cursor.is_start(), cursor == PairsCursor::START);
    }

    let parsed = parse_entries_cursor(text).ok();
    assert_eq!(parsed, number(text), "entries cursor {text:?}");
    if let Some(start) = parsed {
        assert_eq!(parse_entries_cursor(&start.to_string()).ok(), Some(start));
    }
}

fn check_built(data: &[u8]) -> arbitrary::Result<()> {
    let mut u = Unstructured::new(data);
    let anchor = u64::arbitrary(&mut u)?;
    let after = if bool::arbitrary(&mut u)? {
        Some((u.int_in_range(0..=MAX_CODE_BITS)?, u64::arbitrary(&mut u)?))
    } else {
        None
    };
    let cursor = PairsCursor { anchor, after };
    let text = cursor.to_string();
    assert_eq!(text.parse::<PairsCursor>().ok(), Some(cursor), "{text:?}");
    assert_eq!(parse_entries_cursor(&anchor.to_string()).ok(), Some(anchor));
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        check_text(&String::from_utf8_lossy(rest));
    } else {
        let _ = check_built(rest);
    }
});
