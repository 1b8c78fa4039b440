//! Id to location, in 4 bytes per id for the usual dense ids.

use std::collections::HashMap;

const ABSENT: u32 = u32::MAX;
/// Marks an encoded location as a pending queue position instead of a store slot.
const PENDING_BIT: u32 = 1 << 31;
const _: () = assert!(ABSENT & PENDING_BIT != 0, "slot_of_raw relies on it");
/// Slots and queue positions must stay below this to be encoded in 31 bits.
pub const MAX_LOCATIONS: usize = PENDING_BIT as usize - 1;

/// Where an id's entry lives: a slot of the store (indexed) or a position in the pending
/// queue. Encoded in 4 bytes inside the map; the encoding never leaves this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Slot(usize),
    Pending(usize),
}

impl Location {
    #[inline]
    fn encode(self) -> u32 {
        match self {
            Location::Slot(slot) => {
                assert!(slot < MAX_LOCATIONS, "store slot {slot} out of range");
                slot as u32
            }
            Location::Pending(position) => {
                assert!(position < MAX_LOCATIONS, "pending queue full");
                PENDING_BIT | position as u32
            }
        }
    }

    #[inline]
    fn decode(raw: u32) -> Location {
        if raw & PENDING_BIT != 0 {
            Location::Pending((raw & !PENDING_BIT) as usize)
        } else {
            Location::Slot(raw as usize)
        }
    }
}

/// The store slot a raw entry of [`IdMap::dense_raw`] names, if it names one.
///
/// `ABSENT` carries the pending bit, so it names no slot either.
#[inline(always)]
pub fn slot_of_raw(raw: u32) -> Option<usize> {
    (raw & PENDING_BIT == 0).then_some(raw as usize)
}

/// Maps ids to [`Location`]s.
///
/// Invariant: ids below `dense.len()` live in `dense` (`ABSENT` where there is none), every
/// other id in `sparse`. Automatic ids count up from 1, so they stay dense; the dense table
/// grows only while it stays within about twice the number of ids held, so a few huge explicit
/// ids cost a hash-map entry each instead of a huge table.
#[derive(Debug, Clone, Default)]
pub struct IdMap {
    dense: Vec<u32>,
    sparse: HashMap<u64, u32>,
    len: usize,
}

impl IdMap {
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn get(&self, id: u64) -> Option<Location> {
        self.get_raw(id).map(Location::decode)
    }

    #[inline]
    fn get_raw(&self, id: u64) -> Option<u32> {
        match self.dense.get(id as usize) {
            Some(&v) if v != ABSENT => Some(v),
            Some(_) => None,
            None => self.sparse.get(&id).copied(),
        }
    }

    /// The dense table undecoded, for walks over every id in id order that cannot afford to
    /// decode each entry: entry `id` is the slot of id `id` when [`slot_of_raw`] finds one
    /// (else the id is pending or absent). Ids past its end are [`IdMap::sparse_slots`].
    #[inline]
    pub fn dense_raw(&self) -> &[u32] {
        &self.dense
    }

    /// The ids outside the dense table that name store slots, with their slots, in no order.
    pub fn sparse_slots(&self) -> impl Iterator<Item = (u64, usize)> + '_ {
        self.sparse
            .iter()
            .filter_map(|(&id, &raw)| slot_of_raw(raw).map(|slot| (id, slot)))
    }

    /// Inserts or replaces.
    pub fn set(&mut self, id: u64, location: Location) {
        let location = location.encode();
        if (id as usize) >= self.dense.len() {
            let limit = 2 * (self.len as u64 + 1) + 1024;
            if id < limit {
                // Grow by a quarter: a doubling table would waste up to 4 bytes per id.
                let grown = self.dense.len() as u64 + self.dense.len() as u64 / 4;
                self.grow_dense((id + 1).max(grown).min(limit));
            }
        }
        let slot = match self.dense.get_mut(id as usize) {
            Some(slot) => slot,
            None => {
                if self.sparse.insert(id, location).is_none() {
                    self.len += 1;
                }
                return;
            }
        };
        if *slot == ABSENT {
            self.len += 1;
        }
        *slot = location;
    }

    pub fn remove(&mut self, id: u64) -> Option<Location> {
        let old = match self.dense.get_mut(id as usize) {
            Some(slot) if *slot != ABSENT => Some(std::mem::replace(slot, ABSENT)),
            Some(_) => None,
            None => self.sparse.remove(&id),
        };
        if old.is_some() {
            self.len -= 1;
        }
        old.map(Location::decode)
    }

    /// The `n` smallest ids at or above `start`, in order, with their locations: a page of an
    /// id-ordered walk. O(n + gaps in the dense table + sparse ids).
    pub fn ids_from(&self, start: u64, n: usize) -> Vec<(u64, Location)> {
        let mut out = Vec::with_capacity(n.min(1 << 16));
        if let Ok(first) = usize::try_from(start) {
            for (offset, &location) in self.dense.get(first..).unwrap_or(&[]).iter().enumerate() {
                if out.len() == n {
                    return out;
                }
                if location != ABSENT {
                    out.push(((first + offset) as u64, Location::decode(location)));
                }
            }
        }
        let mut sparse: Vec<(u64, u32)> = self
            .sparse
            .iter()
            .filter(|&(&id, _)| id >= start)
            .map(|(&id, &location)| (id, location))
            .collect();
        let wanted = n - out.len();
        if sparse.len() > wanted {
            sparse.select_nth_unstable(wanted);
            sparse.truncate(wanted);
        }
        sparse.sort_unstable();
        out.extend(
            sparse
                .into_iter()
                .map(|(id, raw)| (id, Location::decode(raw))),
        );
        out
    }

    fn grow_dense(&mut self, new_len: u64) {
        let old_len = self.dense.len() as u64;
        self.dense
            .reserve_exact(new_len as usize - self.dense.len());
        self.dense.resize(new_len as usize, ABSENT);
        if !self.sparse.is_empty() {
            let moved: Vec<u64> = self
                .sparse
                .keys()
                .copied()
                .filter(|&id| id >= old_len && id < new_len)
                .collect();
            for id in moved {
                self.dense[id as usize] = self.sparse.remove(&id).expect("key just listed");
            }
        }
    }

    pub fn memory_bytes(&self) -> usize {
        // hashbrown: one control byte per bucket plus the (key, value) pair, padded.
        self.dense.capacity() * 4 + self.sparse.capacity() * (16 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_sparse_ids_behave_alike() {
        let mut m = IdMap::default();
        let ids = [1u64, 2, 3, 5000, 1 << 40, 0, i64::MAX as u64, 4, 2000];
        for (k, &id) in ids.iter().enumerate() {
            m.set(id, Location::Slot(k));
        }
        assert_eq!(m.len(), ids.len());
        for (k, &id) in ids.iter().enumerate() {
            assert_eq!(m.get(id), Some(Location::Slot(k)), "id {id}");
        }
        assert_eq!(m.get(6), None);
        assert_eq!(m.get(1 << 41), None);
        m.set(3, Location::Pending(99));
        assert_eq!(m.get(3), Some(Location::Pending(99)));
        assert_eq!(m.len(), ids.len());
        assert_eq!(m.remove(1 << 40), Some(Location::Slot(4)));
        assert_eq!(m.remove(1 << 40), None);
        assert_eq!(m.remove(2), Some(Location::Slot(1)));
        assert_eq!(m.get(2), None);
        assert_eq!(m.len(), ids.len() - 2);
        // growing the dense table pulls sparse ids into it
        for id in 6..3000 {
            m.set(id, Location::Slot(id as usize));
        }
        assert_eq!(m.get(5000), Some(Location::Slot(3)));
        assert_eq!(m.get(2000), Some(Location::Slot(2000)));
    }

    #[test]
    fn ids_from_walks_dense_and_sparse_ids_in_order() {
        let mut m = IdMap::default();
        let ids = [9u64, 1, 3, 1 << 40, 7, i64::MAX as u64, 1 << 50, 0];
        for (k, &id) in ids.iter().enumerate() {
            m.set(id, Location::Slot(k));
        }
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        for start in [0, 1, 2, 8, 10, 1 << 40, (1 << 40) + 1, u64::MAX] {
            for n in 0..=ids.len() + 1 {
                let got: Vec<u64> = m.ids_from(start, n).iter().map(|&(id, _)| id).collect();
                let want: Vec<u64> = sorted
                    .iter()
                    .copied()
                    .filter(|&id| id >= start)
                    .take(n)
                    .collect();
                assert_eq!(got, want, "start {start} n {n}");
            }
        }
        assert_eq!(m.ids_from(7, 1), vec![(7, Location::Slot(4))]);
    }
}
