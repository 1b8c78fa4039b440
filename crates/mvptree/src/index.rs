use std::collections::HashMap;
use std::io::{Read, Write};

use crate::{distance, Error, Result, DEFAULT_SYNC_THRESHOLD, MAX_ID, MAX_RADIUS, MAX_SYNC_THRESHOLD};

/// One query answer: an indexed entry and its Hamming distance to the query.
///
/// Ordering is by distance, then id: the order every query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Match {
    pub distance: u32,
    pub id: u64,
}

/// One answer of the self-join [`Index::pairs`]: `a < b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pair {
    pub a: u64,
    pub b: u64,
    pub distance: u32,
}

/// An entry as [`Index::entries`] yields it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub id: u64,
    pub hash: u64,
    pub title: &'a [u8],
    /// Still in the pending queue: `lookup` finds it, queries do not.
    pub pending: bool,
}

/// A value in [`Stats::to_pairs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoValue {
    Int(u64),
    Text(String),
}

/// What [`Index::stats`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub entries: usize,
    pub pending: usize,
    pub next_id: u64,
    pub sync_threshold: usize,
    pub memory_bytes: usize,
}

impl Stats {
    /// The figures as `(name, value)` pairs in a fixed order, for faces that print a map
    /// (Redis `imgscout.info`, Python `Index.info()`): they pass these through unchanged.
    pub fn to_pairs(&self) -> Vec<(&'static str, InfoValue)> {
        use InfoValue::Int;
        vec![
            ("entries", Int(self.entries as u64)),
            ("pending", Int(self.pending as u64)),
            ("next_id", Int(self.next_id)),
            ("sync_threshold", Int(self.sync_threshold as u64)),
            ("memory_bytes", Int(self.memory_bytes as u64)),
        ]
    }
}

#[derive(Debug, Clone)]
struct Item {
    id: u64,
    hash: u64,
    title: Box<[u8]>,
}

/// The index. See the crate documentation for the semantics.
#[derive(Debug, Clone)]
pub struct Index {
    sync_threshold: usize,
    next_id: u64,
    pending: Vec<Item>,
    indexed: Vec<Item>,
    /// id -> (pending?, position)
    locations: HashMap<u64, (bool, usize)>,
}

impl Default for Index {
    fn default() -> Self {
        Self::new()
    }
}

impl Index {
    pub fn new() -> Self {
        Index {
            sync_threshold: DEFAULT_SYNC_THRESHOLD,
            next_id: 1,
            pending: Vec::new(),
            indexed: Vec::new(),
            locations: HashMap::new(),
        }
    }

    pub fn with_sync_threshold(threshold: usize) -> Result<Self> {
        let mut index = Self::new();
        index.set_sync_threshold(threshold)?;
        Ok(index)
    }

    pub fn sync_threshold(&self) -> usize {
        self.sync_threshold
    }

    /// Changes the threshold; a pending queue already at or above it is synced now.
    pub fn set_sync_threshold(&mut self, threshold: usize) -> Result<()> {
        if threshold == 0 || threshold > MAX_SYNC_THRESHOLD {
            return Err(Error::InvalidSyncThreshold(threshold));
        }
        self.sync_threshold = threshold;
        if self.pending.len() >= threshold {
            self.sync();
        }
        Ok(())
    }

    /// The id the next `add` without an explicit id will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Moves the id counter forward to `next_id` (never back). For rebuilding an index
    /// from its entries, as an AOF rewrite does.
    pub fn advance_next_id(&mut self, next_id: u64) -> Result<()> {
        if next_id > MAX_ID + 1 {
            return Err(Error::IdOutOfRange(next_id));
        }
        self.next_id = self.next_id.max(next_id);
        Ok(())
    }

    pub fn add(&mut self, hash: u64, title: &[u8], id: Option<u64>) -> Result<u64> {
        let id = self.check_id(id)?;
        self.push_pending(id, hash, title);
        Ok(id)
    }

    /// Adds all entries or none: every id is checked before anything is added.
    pub fn add_many<'t, I>(&mut self, entries: I) -> Result<Vec<u64>>
    where
        I: IntoIterator<Item = (u64, &'t [u8], Option<u64>)>,
        I::IntoIter: Clone,
    {
        let entries = entries.into_iter();
        let mut counter = self.next_id;
        let mut seen = std::collections::HashSet::new();
        let mut ids = Vec::with_capacity(entries.size_hint().0);
        for (_, _, id) in entries.clone() {
            let id = match id {
                Some(id) => {
                    if id > MAX_ID {
                        return Err(Error::IdOutOfRange(id));
                    }
                    id
                }
                None => {
                    if counter > MAX_ID {
                        return Err(Error::IdsExhausted);
                    }
                    counter
                }
            };
            if self.locations.contains_key(&id) || !seen.insert(id) {
                return Err(Error::DuplicateId(id));
            }
            counter = counter.max(id + 1);
            ids.push(id);
        }
        for ((hash, title, _), &id) in entries.zip(&ids) {
            self.next_id = self.next_id.max(id + 1);
            self.push_pending(id, hash, title);
        }
        Ok(ids)
    }

    fn check_id(&self, id: Option<u64>) -> Result<u64> {
        let id = match id {
            Some(id) if id > MAX_ID => return Err(Error::IdOutOfRange(id)),
            Some(id) => id,
            None if self.next_id > MAX_ID => return Err(Error::IdsExhausted),
            None => self.next_id,
        };
        if self.locations.contains_key(&id) {
            return Err(Error::DuplicateId(id));
        }
        Ok(id)
    }

    fn push_pending(&mut self, id: u64, hash: u64, title: &[u8]) {
        self.next_id = self.next_id.max(id + 1);
        self.locations.insert(id, (true, self.pending.len()));
        self.pending.push(Item {
            id,
            hash,
            title: title.into(),
        });
        if self.pending.len() >= self.sync_threshold {
            self.sync();
        }
    }

    pub fn sync(&mut self) {
        for item in self.pending.drain(..) {
            self.locations.insert(item.id, (false, self.indexed.len()));
            self.indexed.push(item);
        }
    }

    pub fn query(&self, hash: u64, radius: u32) -> Vec<Match> {
        let radius = radius.min(MAX_RADIUS);
        let mut out: Vec<Match> = self
            .indexed
            .iter()
            .filter_map(|item| {
                let d = distance(item.hash, hash);
                (d <= radius).then_some(Match {
                    distance: d,
                    id: item.id,
                })
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// The first `limit` answers of [`Index::query`].
    pub fn query_limit(&self, hash: u64, radius: u32, limit: usize) -> Vec<Match> {
        let mut out = self.query(hash, radius);
        out.truncate(limit);
        out
    }

    pub fn query_many(&self, hashes: &[u64], radius: u32) -> Vec<Vec<Match>> {
        hashes.iter().map(|&h| self.query(h, radius)).collect()
    }

    pub fn knn(&self, hash: u64, k: usize) -> Vec<Match> {
        self.query_limit(hash, MAX_RADIUS, k)
    }

    pub fn pairs(&self, radius: u32) -> Vec<Pair> {
        let radius = radius.min(MAX_RADIUS);
        let mut out = Vec::new();
        for (i, x) in self.indexed.iter().enumerate() {
            for y in &self.indexed[i + 1..] {
                let d = distance(x.hash, y.hash);
                if d <= radius {
                    out.push(Pair {
                        a: x.id.min(y.id),
                        b: x.id.max(y.id),
                        distance: d,
                    });
                }
            }
        }
        out.sort_unstable_by_key(|p| (p.distance, p.a, p.b));
        out
    }

    fn item(&self, id: u64) -> Option<&Item> {
        self.locations.get(&id).map(|&(pending, at)| {
            if pending {
                &self.pending[at]
            } else {
                &self.indexed[at]
            }
        })
    }

    pub fn lookup(&self, id: u64) -> Option<&[u8]> {
        self.item(id).map(|item| &*item.title)
    }

    /// The hash of an indexed or pending entry.
    pub fn hash_of(&self, id: u64) -> Option<u64> {
        self.item(id).map(|item| item.hash)
    }

    pub fn contains(&self, id: u64) -> bool {
        self.locations.contains_key(&id)
    }

    /// Indexed entries (pending ones are not counted).
    pub fn len(&self) -> usize {
        self.indexed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indexed.is_empty()
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn delete(&mut self, id: u64) -> Result<()> {
        let (pending, at) = self.locations.remove(&id).ok_or(Error::NoSuchId(id))?;
        let list = if pending {
            &mut self.pending
        } else {
            &mut self.indexed
        };
        list.remove(at);
        for (i, item) in list.iter().enumerate().skip(at) {
            self.locations.insert(item.id, (pending, i));
        }
        Ok(())
    }

    /// Indexed entries in id order, then pending entries in the order they were added.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> + '_ {
        let mut indexed: Vec<&Item> = self.indexed.iter().collect();
        indexed.sort_unstable_by_key(|item| item.id);
        let indexed = indexed.into_iter().map(|item| Entry {
            id: item.id,
            hash: item.hash,
            title: &item.title,
            pending: false,
        });
        let pending = self.pending.iter().map(|item| Entry {
            id: item.id,
            hash: item.hash,
            title: &item.title,
            pending: true,
        });
        indexed.chain(pending)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            entries: self.len(),
            pending: self.pending_len(),
            next_id: self.next_id,
            sync_threshold: self.sync_threshold,
            memory_bytes: self.memory_bytes(),
        }
    }

    /// Bytes of memory the index holds, everything included.
    pub fn memory_bytes(&self) -> usize {
        let items = self.indexed.capacity() + self.pending.capacity();
        let titles: usize = self
            .indexed
            .iter()
            .chain(&self.pending)
            .map(|i| i.title.len())
            .sum();
        std::mem::size_of::<Self>()
            + items * std::mem::size_of::<Item>()
            + titles
            + self.locations.capacity() * 24
    }

    pub fn write_to<W: Write>(&self, writer: W) -> Result<()> {
        let _ = writer;
        Ok(())
    }

    pub fn read_from<R: Read>(reader: R) -> Result<Index> {
        let _ = reader;
        Err(Error::Format("not yet".into()))
    }
}
