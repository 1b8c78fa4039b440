//! Parsing of command arguments into core values, with the protocol's exact error replies.
//!
//! Everything here is strict on purpose: the old module read junk hash values as 0 and
//! indexed them silently.

use mvptree::{MAX_ID, MAX_RADIUS, MAX_SYNC_THRESHOLD};
use redis_module::RedisError;

pub const INVALID_HASH: RedisError = RedisError::Str("ERR invalid hash value");
pub const INVALID_RADIUS: RedisError = RedisError::Str("ERR invalid radius");
pub const INVALID_ID: RedisError = RedisError::Str("ERR invalid id");
pub const INVALID_K: RedisError = RedisError::Str("ERR invalid k");
pub const INVALID_LIMIT: RedisError = RedisError::Str("ERR invalid limit");
pub const INVALID_SYNC_THRESHOLD: RedisError = RedisError::Str("ERR invalid sync threshold");
pub const INVALID_COUNT: RedisError = RedisError::Str("ERR invalid count");
pub const SYNTAX_ERROR: RedisError = RedisError::Str("ERR syntax error");

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

/// Like [`parse_decimal`] but a number too large for `u64` becomes `u64::MAX`: for counts
/// (k, LIMIT) a huge value just means "all of them".
fn parse_saturating_count(text: &[u8]) -> Option<u64> {
    all_digits(text).then(|| parse_decimal(text).unwrap_or(u64::MAX))
}

/// A 64-bit hash: unsigned decimal, or `0x` followed by 1 to 16 hex digits.
pub fn hash_value(text: &[u8]) -> Result<u64, RedisError> {
    let parsed = match text.strip_prefix(b"0x") {
        Some(hex) if (1..=16).contains(&hex.len()) && hex.iter().all(u8::is_ascii_hexdigit) => {
            std::str::from_utf8(hex)
                .ok()
                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        }
        Some(_) => None,
        None => parse_decimal(text),
    };
    parsed.ok_or(INVALID_HASH)
}

/// A radius: non-negative integer or decimal (the old client sent `5.000000`); the fraction is
/// dropped and anything above 64 acts as 64.
pub fn radius(text: &[u8]) -> Result<u32, RedisError> {
    let (whole, fraction) = match text.iter().position(|&c| c == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &[][..]),
    };
    let fraction_ok = fraction.iter().all(u8::is_ascii_digit);
    let has_digits = !whole.is_empty() || !fraction.is_empty();
    let whole_ok = whole.is_empty() || all_digits(whole);
    if !(fraction_ok && has_digits && whole_ok) {
        return Err(INVALID_RADIUS);
    }
    let whole = if whole.is_empty() {
        0
    } else {
        parse_saturating_count(whole).ok_or(INVALID_RADIUS)?
    };
    Ok(whole.min(u64::from(MAX_RADIUS)) as u32)
}

/// An entry id: 0..=9223372036854775807.
pub fn id(text: &[u8]) -> Result<u64, RedisError> {
    parse_decimal(text)
        .filter(|&id| id <= MAX_ID)
        .ok_or(INVALID_ID)
}

/// The id counter for `CONFIG ... NEXT_ID`: one past the largest id is allowed (it means the
/// automatic ids are used up).
pub fn next_id(text: &[u8]) -> Result<u64, RedisError> {
    parse_decimal(text)
        .filter(|&id| id <= MAX_ID + 1)
        .ok_or(INVALID_ID)
}

pub fn knn_k(text: &[u8]) -> Result<usize, RedisError> {
    parse_saturating_count(text)
        .map(|k| usize::try_from(k).unwrap_or(usize::MAX))
        .ok_or(INVALID_K)
}

pub fn limit(text: &[u8]) -> Result<usize, RedisError> {
    parse_saturating_count(text)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .ok_or(INVALID_LIMIT)
}

/// A page size for the `CURSOR` forms: a positive integer; like `SCAN`'s, a bound rather
/// than a promise, so a larger one than a page may hold just means a full page.
pub fn count(text: &[u8]) -> Result<usize, RedisError> {
    parse_saturating_count(text)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .filter(|&n| n > 0)
        .ok_or(INVALID_COUNT)
}

pub fn sync_threshold(text: &[u8]) -> Result<usize, RedisError> {
    parse_decimal(text)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (1..=MAX_SYNC_THRESHOLD).contains(n))
        .ok_or(INVALID_SYNC_THRESHOLD)
}

/// Case-insensitive keyword match, as Redis options are.
pub fn is_keyword(text: &[u8], keyword: &str) -> bool {
    text.eq_ignore_ascii_case(keyword.as_bytes())
}
