//! The error vocabulary every face shares: one [`Error`] per failure, each with a stable
//! [`ErrorCode`] that faces dispatch on (a Python exception type, a client's translation of a
//! server reply) and a message that starts with the code's fixed [`ErrorCode::stem`].

use std::fmt;

/// The stable identity of an error, independent of its wording: `docs/spec.md` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidHash,
    InvalidRadius,
    InvalidId,
    InvalidK,
    InvalidLimit,
    InvalidCount,
    InvalidMaxRows,
    InvalidThreads,
    InvalidBits,
    InvalidSyncThreshold,
    InvalidCursor,
    InvalidTitle,
    Syntax,
    NoSuchId,
    IdExists,
    IdsExhausted,
    TooManyRows,
    InvalidData,
    Io,
}

impl ErrorCode {
    /// Every code, in the order `docs/spec.md` lists them.
    pub const ALL: [ErrorCode; 19] = [
        ErrorCode::InvalidHash,
        ErrorCode::InvalidRadius,
        ErrorCode::InvalidId,
        ErrorCode::InvalidK,
        ErrorCode::InvalidLimit,
        ErrorCode::InvalidCount,
        ErrorCode::InvalidMaxRows,
        ErrorCode::InvalidThreads,
        ErrorCode::InvalidBits,
        ErrorCode::InvalidSyncThreshold,
        ErrorCode::InvalidCursor,
        ErrorCode::InvalidTitle,
        ErrorCode::Syntax,
        ErrorCode::NoSuchId,
        ErrorCode::IdExists,
        ErrorCode::IdsExhausted,
        ErrorCode::TooManyRows,
        ErrorCode::InvalidData,
        ErrorCode::Io,
    ];

    /// The code's name, as faces expose it (`error.code` in Python).
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::InvalidHash => "invalid-hash",
            ErrorCode::InvalidRadius => "invalid-radius",
            ErrorCode::InvalidId => "invalid-id",
            ErrorCode::InvalidK => "invalid-k",
            ErrorCode::InvalidLimit => "invalid-limit",
            ErrorCode::InvalidCount => "invalid-count",
            ErrorCode::InvalidMaxRows => "invalid-max-rows",
            ErrorCode::InvalidThreads => "invalid-threads",
            ErrorCode::InvalidBits => "invalid-bits",
            ErrorCode::InvalidSyncThreshold => "invalid-sync-threshold",
            ErrorCode::InvalidCursor => "invalid-cursor",
            ErrorCode::InvalidTitle => "invalid-title",
            ErrorCode::Syntax => "syntax",
            ErrorCode::NoSuchId => "no-such-id",
            ErrorCode::IdExists => "id-exists",
            ErrorCode::IdsExhausted => "ids-exhausted",
            ErrorCode::TooManyRows => "too-many-rows",
            ErrorCode::InvalidData => "invalid-data",
            ErrorCode::Io => "io",
        }
    }

    /// The fixed start of every message with this code; details, if any, follow after
    /// `": "` (or, for [`ErrorCode::TooManyRows`], the row count and advice).
    pub fn stem(self) -> &'static str {
        match self {
            ErrorCode::InvalidHash => "invalid hash value",
            ErrorCode::InvalidRadius => "invalid radius",
            ErrorCode::InvalidId => "invalid id",
            ErrorCode::InvalidK => "invalid k",
            ErrorCode::InvalidLimit => "invalid limit",
            ErrorCode::InvalidCount => "invalid count",
            ErrorCode::InvalidMaxRows => "invalid max_rows",
            ErrorCode::InvalidThreads => "invalid threads",
            ErrorCode::InvalidBits => "invalid code width",
            ErrorCode::InvalidSyncThreshold => "invalid sync threshold",
            ErrorCode::InvalidCursor => "invalid cursor",
            ErrorCode::InvalidTitle => "invalid title",
            ErrorCode::Syntax => "syntax error",
            ErrorCode::NoSuchId => "no such id",
            ErrorCode::IdExists => "id already exists",
            ErrorCode::IdsExhausted => "automatic ids exhausted",
            ErrorCode::TooManyRows => "answer has more than",
            ErrorCode::InvalidData => "invalid index data",
            ErrorCode::Io => "i/o error",
        }
    }

    /// The code of a message a face received as text (a server's error reply without its
    /// `ERR ` prefix): the code whose stem starts it, if any.
    pub fn of_message(message: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|code| {
            message
                .strip_prefix(code.stem())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', ';', ' ']))
        })
    }

    /// Whether this is a bad argument (the caller's value is malformed or out of range), as
    /// opposed to a state the index is in.
    pub fn is_invalid_argument(self) -> bool {
        matches!(
            self,
            ErrorCode::InvalidHash
                | ErrorCode::InvalidRadius
                | ErrorCode::InvalidId
                | ErrorCode::InvalidK
                | ErrorCode::InvalidLimit
                | ErrorCode::InvalidCount
                | ErrorCode::InvalidMaxRows
                | ErrorCode::InvalidThreads
                | ErrorCode::InvalidBits
                | ErrorCode::InvalidSyncThreshold
                | ErrorCode::InvalidCursor
                | ErrorCode::InvalidTitle
                | ErrorCode::Syntax
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can go wrong in the index. Each variant is a caller's mistake or bad input,
/// never a broken invariant: those are bugs and panic.
#[derive(Debug)]
pub enum Error {
    /// An argument that does not parse or is out of range; the code says which argument.
    Invalid(ErrorCode),
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
    /// A well-formed hash of another width than the index's: `text` (shortened) is the hash
    /// as given, `given` its width, `held` the index's.
    WrongWidth { text: String, given: u32, held: u32 },
    /// A width asked of an index that already has another one: widths are fixed at creation.
    WidthFixed { asked: u32, held: u32 },
    /// Serialized input that is truncated, corrupted, from a newer version or not an index.
    Format(String),
    /// The reader or writer failed.
    Io(std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Invalid(code) => *code,
            Error::DuplicateId(_) => ErrorCode::IdExists,
            Error::NoSuchId(_) => ErrorCode::NoSuchId,
            Error::IdOutOfRange(_) => ErrorCode::InvalidId,
            Error::IdsExhausted => ErrorCode::IdsExhausted,
            Error::InvalidSyncThreshold(_) => ErrorCode::InvalidSyncThreshold,
            Error::TooManyRows(_) => ErrorCode::TooManyRows,
            Error::InvalidCursor => ErrorCode::InvalidCursor,
            Error::WrongWidth { .. } => ErrorCode::InvalidHash,
            Error::WidthFixed { .. } => ErrorCode::InvalidBits,
            Error::Format(_) => ErrorCode::InvalidData,
            Error::Io(_) => ErrorCode::Io,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stem = self.code().stem();
        match self {
            Error::Invalid(_) | Error::InvalidCursor => f.write_str(stem),
            Error::DuplicateId(id) | Error::NoSuchId(id) => write!(f, "{stem}: {id}"),
            Error::IdOutOfRange(id) => write!(f, "{stem}: {id} (ids are 0..={})", crate::MAX_ID),
            Error::IdsExhausted => write!(f, "{stem}; pass an explicit id"),
            Error::InvalidSyncThreshold(n) => {
                write!(f, "{stem}: {n} (must be 1..={})", crate::MAX_SYNC_THRESHOLD)
            }
            Error::TooManyRows(max) => write!(
                f,
                "{stem} {max} rows; ask for fewer with a limit or page through it with a cursor"
            ),
            Error::WrongWidth { text, given, held } => write!(
                f,
                "{stem}: '{text}' is a {given}-bit hash; this index holds {held}-bit hashes"
            ),
            Error::WidthFixed { asked, held } => write!(
                f,
                "{stem}: {asked} asked, but this index holds {held}-bit codes (a width is fixed \
                 when the index is created)"
            ),
            Error::Format(why) => write!(f, "{stem}: {why}"),
            Error::Io(e) => write!(f, "{stem}: {e}"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_starts_with_its_stem_and_maps_back_to_its_code() {
        let errors = [
            Error::Invalid(ErrorCode::InvalidHash),
            Error::Invalid(ErrorCode::Syntax),
            Error::DuplicateId(5),
            Error::NoSuchId(7),
            Error::IdOutOfRange(u64::MAX),
            Error::IdsExhausted,
            Error::InvalidSyncThreshold(0),
            Error::TooManyRows(30),
            Error::InvalidCursor,
            Error::Format("file is truncated".into()),
            Error::Io(std::io::Error::other("disk gone")),
        ];
        for error in errors {
            let text = error.to_string();
            assert!(text.starts_with(error.code().stem()), "{text}");
            assert_eq!(ErrorCode::of_message(&text), Some(error.code()), "{text}");
        }
    }

    #[test]
    fn codes_have_distinct_names_and_unambiguous_stems() {
        for a in ErrorCode::ALL {
            assert_eq!(ErrorCode::of_message(a.stem()), Some(a));
            for b in ErrorCode::ALL {
                if a != b {
                    assert_ne!(a.name(), b.name());
                }
            }
        }
        assert_eq!(ErrorCode::of_message("invalid hashes"), None);
        assert_eq!(ErrorCode::of_message("WRONGTYPE Operation"), None);
    }
}
