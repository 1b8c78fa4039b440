use std::fmt;

/// Everything that can go wrong in the index. Each variant is a caller's mistake or bad input,
/// never a broken invariant: those are bugs and panic.
#[derive(Debug)]
pub enum Error {
    /// `add` with an id that an indexed or pending entry already has.
    DuplicateId(u64),
    /// `delete` (or another id-addressed call) with an id no entry has.
    NoSuchId(u64),
    /// An explicit id above [`crate::MAX_ID`].
    IdOutOfRange(u64),
    /// The automatic id counter passed [`crate::MAX_ID`]; only explicit ids can still be added.
    IdsExhausted,
    /// A sync threshold of 0 or above [`crate::MAX_SYNC_THRESHOLD`].
    InvalidSyncThreshold(usize),
    /// An answer would hold more rows than the caller allows (its `max_rows`): detected while
    /// the answer is gathered, before it grows past that many rows.
    TooManyRows(usize),
    /// A cursor that no call of this index produced.
    InvalidCursor,
    /// Serialized input that is truncated, corrupted, from a newer version or not an index.
    Format(String),
    /// The reader or writer failed.
    Io(std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::DuplicateId(id) => write!(f, "id already exists: {id}"),
            Error::NoSuchId(id) => write!(f, "no such id: {id}"),
            Error::IdOutOfRange(id) => {
                write!(f, "id out of range: {id} (ids are 0..={})", crate::MAX_ID)
            }
            Error::IdsExhausted => write!(f, "automatic ids exhausted; pass an explicit id"),
            Error::InvalidSyncThreshold(n) => write!(
                f,
                "invalid sync threshold: {n} (must be 1..={})",
                crate::MAX_SYNC_THRESHOLD
            ),
            Error::TooManyRows(max) => write!(
                f,
                "answer has more than {max} rows; ask for fewer with a limit or page through it with a cursor"
            ),
            Error::InvalidCursor => write!(f, "invalid cursor"),
            Error::Format(why) => write!(f, "invalid index data: {why}"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}
