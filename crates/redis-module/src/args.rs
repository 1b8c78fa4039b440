//! Command arguments, read by the core's grammar ([`mvptree::text`]); every error becomes a
//! reply with the core's text ([`reply_error`]), so the module and the other faces word and
//! code each error alike.

use mvptree::{text, Code, Error, ErrorCode, MAX_CODE_BITS};
use redis_module::RedisError;

/// The reply for a core error: `ERR` and the core's message. An answer over the reply cap
/// names the setting that caps it and the command forms that avoid it.
pub fn reply_error(error: Error) -> RedisError {
    match error {
        Error::TooManyRows(max) => RedisError::String(format!(
            "ERR {} {max} rows (imgscout.max-reply-rows); ask for fewer with LIMIT or page \
             through it with CURSOR",
            ErrorCode::TooManyRows.stem()
        )),
        other => RedisError::String(format!("ERR {other}")),
    }
}

pub fn syntax_error() -> RedisError {
    reply_error(Error::Invalid(ErrorCode::Syntax))
}

/// A hash for a key of codes `C`; one of another width is an error naming both widths.
pub fn code<C: Code>(value: &[u8]) -> Result<C, RedisError> {
    text::parse_code(value).map_err(reply_error)
}

/// The width of a hash of any width (the width a missing key is created with).
pub fn hash_bits(value: &[u8]) -> Result<u32, RedisError> {
    text::hash_text_bits(value).ok_or_else(|| reply_error(Error::Invalid(ErrorCode::InvalidHash)))
}

/// A radius, read before the key's width is known: the core acts on anything above the
/// width as the width.
pub fn radius(value: &[u8]) -> Result<u32, RedisError> {
    text::parse_radius_up_to(value, MAX_CODE_BITS).map_err(reply_error)
}

pub fn bits(value: &[u8]) -> Result<u32, RedisError> {
    text::parse_bits(value).map_err(reply_error)
}

pub fn id(value: &[u8]) -> Result<u64, RedisError> {
    text::parse_id(value).map_err(reply_error)
}

pub fn next_id(value: &[u8]) -> Result<u64, RedisError> {
    text::parse_next_id(value).map_err(reply_error)
}

pub fn knn_k(value: &[u8]) -> Result<usize, RedisError> {
    text::parse_k(value).map_err(reply_error)
}

pub fn limit(value: &[u8]) -> Result<usize, RedisError> {
    text::parse_limit(value).map_err(reply_error)
}

pub fn count(value: &[u8]) -> Result<usize, RedisError> {
    text::parse_count(value).map_err(reply_error)
}

pub fn sync_threshold(value: &[u8]) -> Result<usize, RedisError> {
    text::parse_sync_threshold(value).map_err(reply_error)
}

/// Case-insensitive keyword match, as Redis options are.
pub fn is_keyword(value: &[u8], keyword: &str) -> bool {
    value.eq_ignore_ascii_case(keyword.as_bytes())
}
