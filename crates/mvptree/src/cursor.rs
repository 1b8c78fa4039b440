//! Cursors for answers paged in the Redis manner (`SCAN`): a call takes a cursor and returns
//! one page plus the cursor of the next, `0` to start and `0` again when the walk is done.
//!
//! A cursor names where the walk stands in terms of the entries themselves (ids, distances),
//! never positions in the layout, so it stays meaningful while the index changes between
//! pages: entries present for the whole walk are returned exactly once, as `SCAN` promises.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result, MAX_CODE_BITS};

/// Where a walk of [`crate::Index::pairs_page`] stands: anchors (the smaller id of each pair)
/// are visited in id order; within an anchor, its pairs in `(distance, other id)` order.
///
/// Text form: `0` (the start), `ANCHOR` (start at that anchor) or `ANCHOR-DISTANCE-ID` (on
/// that anchor, after the pair at that distance with that other id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PairsCursor {
    pub anchor: u64,
    pub after: Option<(u32, u64)>,
}

impl PairsCursor {
    pub const START: PairsCursor = PairsCursor {
        anchor: 0,
        after: None,
    };

    pub fn is_start(&self) -> bool {
        *self == Self::START
    }
}

impl fmt::Display for PairsCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.after {
            None => write!(f, "{}", self.anchor),
            Some((distance, id)) => write!(f, "{}-{}-{}", self.anchor, distance, id),
        }
    }
}

fn number(text: &str) -> Result<u64> {
    // Plain decimal digits only: no sign, no space, no leading `+`.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidCursor);
    }
    text.parse().map_err(|_| Error::InvalidCursor)
}

impl FromStr for PairsCursor {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split('-').collect();
        match parts[..] {
            [anchor] => Ok(PairsCursor {
                anchor: number(anchor)?,
                after: None,
            }),
            [anchor, distance, id] => {
                let distance = number(distance)?;
                if distance > u64::from(MAX_CODE_BITS) {
                    return Err(Error::InvalidCursor);
                }
                Ok(PairsCursor {
                    anchor: number(anchor)?,
                    after: Some((distance as u32, number(id)?)),
                })
            }
            _ => Err(Error::InvalidCursor),
        }
    }
}

/// Parses an entries cursor: the next id of the walk, `0` to start.
pub fn parse_entries_cursor(text: &str) -> Result<u64> {
    number(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_cursors_round_trip_through_text() {
        for cursor in [
            PairsCursor::START,
            PairsCursor {
                anchor: 17,
                after: None,
            },
            PairsCursor {
                anchor: 0,
                after: Some((0, 5)),
            },
            PairsCursor {
                anchor: i64::MAX as u64,
                after: Some((64, u64::MAX)),
            },
        ] {
            assert_eq!(cursor.to_string().parse::<PairsCursor>().unwrap(), cursor);
        }
        assert_eq!("0".parse::<PairsCursor>().unwrap(), PairsCursor::START);
    }

    #[test]
    fn malformed_cursors_are_refused() {
        for text in [
            "",
            "-",
            "1-2",
            "1-2-3-4",
            "a",
            "+1",
            " 1",
            "1-257-3",
            "1--3",
            "99999999999999999999",
        ] {
            assert!(text.parse::<PairsCursor>().is_err(), "{text:?}");
        }
        assert!(parse_entries_cursor("-1").is_err());
        assert_eq!(parse_entries_cursor("42").unwrap(), 42);
    }
}
