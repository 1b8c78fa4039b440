//! A key holds codes of one width, fixed when the key is created: 64 bits (pHash, and every
//! key written before wider codes existed), 128 or 256 (PDQ). The core's index is generic over
//! the code; a key's value is [`AnyIndex`], and a handler reaches the index inside with
//! [`each_width!`], which compiles its body once per width.

use mvptree::format::AnyIndex;
use mvptree::Snapshot;

/// A snapshot of a key's index, of whatever width the key holds.
pub enum AnySnapshot {
    Bits64(Snapshot<u64>),
    Bits128(Snapshot<[u64; 2]>),
    Bits256(Snapshot<[u64; 4]>),
}

/// `each_width!(Kind, value, name => body)`: `body` with `name` bound to the index (or
/// snapshot) inside `value`, an [`AnyIndex`] or [`AnySnapshot`]; every arm must give the same
/// type.
macro_rules! each_width {
    ($kind:ident, $value:expr, $name:ident => $body:expr) => {
        match $value {
            $kind::Bits64($name) => $body,
            $kind::Bits128($name) => $body,
            $kind::Bits256($name) => $body,
        }
    };
}
pub(crate) use each_width;

pub fn snapshot(index: &AnyIndex) -> AnySnapshot {
    match index {
        AnyIndex::Bits64(index) => AnySnapshot::Bits64(index.snapshot()),
        AnyIndex::Bits128(index) => AnySnapshot::Bits128(index.snapshot()),
        AnyIndex::Bits256(index) => AnySnapshot::Bits256(index.snapshot()),
    }
}
