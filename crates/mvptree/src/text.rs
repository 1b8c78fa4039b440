//! The argument grammar every face reads: hashes, radii, ids and counts as text (Redis
//! arguments, Python strings, CLI options). `docs/spec.md` states the same rules with
//! examples; the faces call these functions instead of restating them.
//!
//! Everything here is strict on purpose: no sign, no surrounding space, no junk read as 0.

use crate::{Error, ErrorCode, Result, MAX_ID, MAX_RADIUS, MAX_SYNC_THRESHOLD};

/// Hex digits in the text form of a hash: 64 bits, as `str(imagehash.phash(image))` prints.
pub const HASH_HEX_DIGITS: usize = 16;

fn all_digits(text: &[u8]) -> bool {
    !text.is_empty() && text.iter().all(u8::is_ascii_digit)
}

/// Unsigned decimal without sign or spaces; `None` when empty, junk or above `u64::MAX`.
fn parse_decimal(text: &[u8]) -> Option<u64> {
    if !all_digits(text) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty()
        || digits.len() > HASH_HEX_DIGITS
        || !digits.iter().all(u8::is_ascii_hexdigit)
    {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// Like [`parse_decimal`] but a number too large for `u64` becomes `u64::MAX`: for counts
/// (k, LIMIT) a huge value just means "all of them".
fn parse_saturating_count(text: &[u8]) -> Option<u64> {
    all_digits(text).then(|| parse_decimal(text).unwrap_or(u64::MAX))
}

/// A 64-bit hash, in the first of these forms that matches the whole text:
/// 1. decimal digits only (leading zeros allowed, a value at most `u64::MAX`): the form
///    the old module documented and every AOF file it wrote holds;
/// 2. `0x` or `0X` and 1 to 16 hex digits of either case;
/// 3. exactly 16 hex digits of either case: the form imagehash prints.
///
/// A 16-digit text made only of decimal digits is therefore read as decimal; imagehash text
/// that happens to hold no letter must be given with `0x` (or as the hash object itself).
pub fn parse_hash(text: &[u8]) -> Result<u64> {
    let parsed = if all_digits(text) {
        parse_decimal(text)
    } else if let Some(hex) = text
        .strip_prefix(b"0x")
        .or_else(|| text.strip_prefix(b"0X"))
    {
        parse_hex(hex)
    } else if text.len() == HASH_HEX_DIGITS {
        parse_hex(text)
    } else {
        None
    };
    parsed.ok_or(Error::Invalid(ErrorCode::InvalidHash))
}

/// A radius: a non-negative integer or decimal (the old client sent `5.000000`); the fraction
/// is dropped and anything above [`MAX_RADIUS`] acts as it.
pub fn parse_radius(text: &[u8]) -> Result<u32> {
    let invalid = Error::Invalid(ErrorCode::InvalidRadius);
    let (whole, fraction) = match text.iter().position(|&c| c == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &[][..]),
    };
    let fraction_ok = fraction.iter().all(u8::is_ascii_digit);
    let has_digits = !whole.is_empty() || !fraction.is_empty();
    let whole_ok = whole.is_empty() || all_digits(whole);
    if !(fraction_ok && has_digits && whole_ok) {
        return Err(invalid);
    }
    let whole = if whole.is_empty() {
        0
    } else {
        parse_saturating_count(whole).ok_or(invalid)?
    };
    Ok(whole.min(u64::from(MAX_RADIUS)) as u32)
}

/// An entry id: decimal, 0 to [`MAX_ID`].
pub fn parse_id(text: &[u8]) -> Result<u64> {
    parse_decimal(text)
        .filter(|&id| id <= MAX_ID)
        .ok_or(Error::Invalid(ErrorCode::InvalidId))
}

/// The id counter (`NEXT_ID`): one past the largest id is allowed (it means the automatic ids
/// are used up).
pub fn parse_next_id(text: &[u8]) -> Result<u64> {
    parse_decimal(text)
        .filter(|&id| id <= MAX_ID + 1)
        .ok_or(Error::Invalid(ErrorCode::InvalidId))
}

fn saturating_usize(text: &[u8], code: ErrorCode) -> Result<usize> {
    parse_saturating_count(text)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .ok_or(Error::Invalid(code))
}

/// `k` of a k-nearest search: any non-negative integer; more than there are entries means all.
pub fn parse_k(text: &[u8]) -> Result<usize> {
    saturating_usize(text, ErrorCode::InvalidK)
}

/// A `LIMIT`: any non-negative integer; 0 asks for no rows.
pub fn parse_limit(text: &[u8]) -> Result<usize> {
    saturating_usize(text, ErrorCode::InvalidLimit)
}

/// A page size for the cursor forms: a positive integer; like `SCAN`'s, a bound rather than a
/// promise, so a larger one than a page may hold just means a full page.
pub fn parse_count(text: &[u8]) -> Result<usize> {
    saturating_usize(text, ErrorCode::InvalidCount)
        .ok()
        .filter(|&n| n > 0)
        .ok_or(Error::Invalid(ErrorCode::InvalidCount))
}

/// A sync threshold: 1 to [`MAX_SYNC_THRESHOLD`].
pub fn parse_sync_threshold(text: &[u8]) -> Result<usize> {
    parse_decimal(text)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (1..=MAX_SYNC_THRESHOLD).contains(n))
        .ok_or(Error::Invalid(ErrorCode::InvalidSyncThreshold))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_forms() {
        let ok: &[(&str, u64)] = &[
            ("0", 0),
            ("18446744073709551615", u64::MAX),
            ("00000000000000000000042", 42),
            ("1234567890123456", 1_234_567_890_123_456),
            ("0x1234567890123456", 0x1234_5678_9012_3456),
            ("0XFF", 0xff),
            ("0xffffffffffffffff", u64::MAX),
            ("ffd8e0c0c0e0f0f8", 0xffd8_e0c0_c0e0_f0f8),
            ("FFD8E0C0C0E0F0F8", 0xffd8_e0c0_c0e0_f0f8),
            ("000000000000000a", 10),
        ];
        for &(text, want) in ok {
            assert_eq!(parse_hash(text.as_bytes()).ok(), Some(want), "{text}");
        }
        let bad = [
            "",
            " 1",
            "1 ",
            "+1",
            "-1",
            "0x",
            "0x1g",
            "0x",
            "0x00000000000000001",
            "ffd8",
            "ffd8e0c0c0e0f0f8a",
            "18446744073709551616",
            "1_000",
            "0b101",
            "ﬀd8e0c0c0e0f0f8",
            "x1",
            "1e3",
        ];
        for text in bad {
            assert_eq!(
                parse_hash(text.as_bytes()).map_err(|e| e.code()).err(),
                Some(ErrorCode::InvalidHash),
                "{text:?}"
            );
        }
    }

    #[test]
    fn radius_id_and_count_forms() {
        assert_eq!(parse_radius(b"5.000000").ok(), Some(5));
        assert_eq!(parse_radius(b".5").ok(), Some(0));
        assert_eq!(
            parse_radius(b"99999999999999999999999").ok(),
            Some(MAX_RADIUS)
        );
        for bad in [&b""[..], b".", b"-1", b"1e2", b" 1", b"nan"] {
            assert!(parse_radius(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_id(b"9223372036854775807").ok(), Some(MAX_ID));
        assert!(parse_id(b"9223372036854775808").is_err());
        assert_eq!(parse_next_id(b"9223372036854775808").ok(), Some(MAX_ID + 1));
        assert_eq!(parse_k(b"99999999999999999999999").ok(), Some(usize::MAX));
        assert_eq!(parse_limit(b"0").ok(), Some(0));
        assert!(parse_count(b"0").is_err());
        assert_eq!(parse_count(b"7").ok(), Some(7));
        assert!(parse_sync_threshold(b"0").is_err());
        assert_eq!(
            parse_sync_threshold(b"10000000").ok(),
            Some(MAX_SYNC_THRESHOLD)
        );
        assert!(parse_sync_threshold(b"10000001").is_err());
    }
}
