//! The argument grammar every face reads: hashes, radii, ids and counts as text (Redis
//! arguments, Python strings, CLI options). `docs/spec.md` states the same rules with
//! examples; the faces call these functions instead of restating them.
//!
//! Everything here is strict on purpose: no sign, no surrounding space, no junk read as 0.

use crate::{
    Code, Error, ErrorCode, Result, MAX_CODE_BITS, MAX_ID, MAX_RADIUS, MAX_SYNC_THRESHOLD,
};

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

/// The width of a well-formed hash text, of any width an index may hold: for a wide code
/// exactly `bits / 4` hex digits of either case (PDQ's text form), optionally after `0x`/`0X`;
/// 64 for every other form of [`parse_hash`]. `None` when the text is no hash of any width.
///
/// The forms overlap only in 32 or 64 decimal digits, which read as a wide code here (PDQ
/// text without a letter) and as decimal at 64 bits in [`parse_code`], where an index's width
/// decides.
pub fn hash_text_bits(text: &[u8]) -> Option<u32> {
    wide_text_bits(text).or_else(|| parse_hash(text).is_ok().then_some(64))
}

/// `Some(bits)` when `text` is the hex text of a 128- or 256-bit code.
fn wide_text_bits(text: &[u8]) -> Option<u32> {
    let digits = strip_hex_prefix(text);
    let bits = u32::try_from(digits.len() * 4).ok()?;
    (matches!(bits, 128 | 256) && digits.iter().all(u8::is_ascii_hexdigit)).then_some(bits)
}

fn strip_hex_prefix(text: &[u8]) -> &[u8] {
    text.strip_prefix(b"0x")
        .or_else(|| text.strip_prefix(b"0X"))
        .unwrap_or(text)
}

/// A hash for an index of codes `C`: the forms of [`hash_text_bits`] at `C`'s width. A
/// well-formed hash of another width is [`Error::WrongWidth`], which names both widths.
pub fn parse_code<C: Code>(text: &[u8]) -> Result<C> {
    if C::BITS == 64 {
        if let Ok(hash) = parse_hash(text) {
            return Ok(C::from_words(&[hash]).expect("a 64-bit code is one word"));
        }
    } else if wide_text_bits(text) == Some(C::BITS) {
        // Checked: bits / 4 ASCII hex digits, 16 per word, first word first.
        let words: Vec<u64> = strip_hex_prefix(text)
            .chunks_exact(HASH_HEX_DIGITS)
            .map(|word| parse_hex(word).expect("16 hex digits"))
            .collect();
        return Ok(C::from_words(&words).expect("one word per 16 hex digits"));
    }
    match hash_text_bits(text) {
        Some(given) if given != C::BITS => Err(Error::WrongWidth {
            text: shortened(text),
            given,
            held: C::BITS,
        }),
        _ => Err(Error::Invalid(ErrorCode::InvalidHash)),
    }
}

/// A hash as the faces write it back (`entries`, the AOF): decimal for a 64-bit code, as the
/// old module did and its AOF files hold; lowercase hex text of `bits / 4` digits for a wide
/// one. [`parse_code`] reads either back as the same code.
pub fn format_code<C: Code>(code: C) -> String {
    if C::BITS == 64 {
        return code.word(0).to_string();
    }
    (0..C::WORDS)
        .map(|i| format!("{:016x}", code.word(i)))
        .collect()
}

/// At most 80 characters of a client's text, for an error message.
fn shortened(text: &[u8]) -> String {
    const MAX: usize = 80;
    let shown = String::from_utf8_lossy(&text[..text.len().min(MAX)]).into_owned();
    if text.len() > MAX {
        shown + "…"
    } else {
        shown
    }
}

/// A code width: `64`, `128` or `256`.
pub fn parse_bits(text: &[u8]) -> Result<u32> {
    parse_decimal(text)
        .and_then(|bits| u32::try_from(bits).ok())
        .filter(|bits| matches!(bits, 64 | 128 | 256))
        .ok_or(Error::Invalid(ErrorCode::InvalidBits))
}

/// A radius: a non-negative integer or decimal (the old client sent `5.000000`); the fraction
/// is dropped and anything above [`MAX_RADIUS`] (64) acts as it.
pub fn parse_radius(text: &[u8]) -> Result<u32> {
    parse_radius_up_to(text, MAX_RADIUS)
}

/// A radius as [`parse_radius`] reads it, for codes of `bits` (at most [`MAX_CODE_BITS`]):
/// anything above `bits` acts as `bits`, since no two codes differ in more.
pub fn parse_radius_up_to(text: &[u8], bits: u32) -> Result<u32> {
    let ceiling = bits.min(MAX_CODE_BITS);
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
    Ok(whole.min(u64::from(ceiling)) as u32)
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

    #[test]
    fn wide_code_forms_round_trip() {
        let text = "ffd8e0c0c0e0f0f800000000000000000000000000000000000000000000000a";
        let code: [u64; 4] = parse_code(text.as_bytes()).unwrap();
        assert_eq!(code, [0xffd8e0c0c0e0f0f8, 0, 0, 10]);
        assert_eq!(format_code(code), text);
        let upper = format!("0X{}", text.to_uppercase());
        assert_eq!(parse_code::<[u64; 4]>(upper.as_bytes()).unwrap(), code);
        let half: [u64; 2] = parse_code(&text.as_bytes()[..32]).unwrap();
        assert_eq!(format_code(half), &text[..32]);
        assert_eq!(parse_code::<u64>(b"0xff").unwrap(), 255);
        assert_eq!(format_code(255u64), "255");
        assert_eq!(hash_text_bits(b"12345"), Some(64));
        assert_eq!(hash_text_bits(text.as_bytes()), Some(256));
        assert_eq!(hash_text_bits(&text.as_bytes()[..48]), None);
        assert_eq!(hash_text_bits(b"0x"), None);
        // 64 decimal digits: PDQ text without a letter, or a zero-padded decimal.
        let digits = "0".repeat(63) + "7";
        assert_eq!(hash_text_bits(digits.as_bytes()), Some(256));
        assert_eq!(
            parse_code::<[u64; 4]>(digits.as_bytes()).unwrap(),
            [0, 0, 0, 7]
        );
        assert_eq!(parse_code::<u64>(digits.as_bytes()).unwrap(), 7);
    }

    #[test]
    fn a_hash_of_another_width_names_both() {
        let wide = "ab".repeat(32);
        let error = parse_code::<u64>(wide.as_bytes()).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidHash);
        assert_eq!(
            error.to_string(),
            format!(
                "invalid hash value: '{wide}' is a 256-bit hash; this index holds 64-bit hashes"
            )
        );
        let error = parse_code::<[u64; 4]>(b"ffd8e0c0c0e0f0f8").unwrap_err();
        assert!(error
            .to_string()
            .ends_with("is a 64-bit hash; this index holds 256-bit hashes"));
        let error = parse_code::<[u64; 2]>(wide.as_bytes()).unwrap_err();
        assert!(error
            .to_string()
            .contains("256-bit hash; this index holds 128-bit"));
        for junk in [&b""[..], b"xyz", b"0x", &wide.as_bytes()[..63]] {
            assert!(matches!(
                parse_code::<[u64; 4]>(junk),
                Err(Error::Invalid(ErrorCode::InvalidHash))
            ));
        }
    }

    #[test]
    fn widths_and_wide_radii() {
        assert_eq!(parse_bits(b"256").ok(), Some(256));
        for bad in [&b"32"[..], b"0", b"", b"+64", b"99999999999999999999999"] {
            assert!(parse_bits(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_radius_up_to(b"100", 256).ok(), Some(100));
        assert_eq!(parse_radius_up_to(b"1000", 256).ok(), Some(256));
        assert_eq!(parse_radius_up_to(b"200", 128).ok(), Some(128));
        assert_eq!(parse_radius(b"100").ok(), Some(64));
    }
}
