//! Id to location, in 4 bytes per id for the usual dense ids.

use std::collections::HashMap;

const ABSENT: u32 = u32::MAX;

/// Maps ids to `u32` locations.
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
    pub fn get(&self, id: u64) -> Option<u32> {
        match self.dense.get(id as usize) {
            Some(&v) if v != ABSENT => Some(v),
            Some(_) => None,
            None => self.sparse.get(&id).copied(),
        }
    }

    /// Inserts or replaces.
    pub fn set(&mut self, id: u64, location: u32) {
        debug_assert_ne!(location, ABSENT);
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

    pub fn remove(&mut self, id: u64) -> Option<u32> {
        let old = match self.dense.get_mut(id as usize) {
            Some(slot) if *slot != ABSENT => Some(std::mem::replace(slot, ABSENT)),
            Some(_) => None,
            None => self.sparse.remove(&id),
        };
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// The `n` smallest ids at or above `start`, in order, with their locations: a page of an
    /// id-ordered walk. O(n + gaps in the dense table + sparse ids).
    pub fn ids_from(&self, start: u64, n: usize) -> Vec<(u64, u32)> {
        let mut out = Vec::with_capacity(n.min(1 << 16));
        if let Ok(first) = usize::try_from(start) {
            for (offset, &location) in self.dense.get(first..).unwrap_or(&[]).iter().enumerate() {
                if out.len() == n {
                    return out;
                }
                if location != ABSENT {
                    out.push(((first + offset) as u64, location));
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
        out.extend(sparse);
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
            m.set(id, k as u32);
        }
        assert_eq!(m.len(), ids.len());
        for (k, &id) in ids.iter().enumerate() {
            assert_eq!(m.get(id), Some(k as u32), "id {id}");
        }
        assert_eq!(m.get(6), None);
        assert_eq!(m.get(1 << 41), None);
        m.set(3, 99);
        assert_eq!(m.get(3), Some(99));
        assert_eq!(m.len(), ids.len());
        assert_eq!(m.remove(1 << 40), Some(4));
        assert_eq!(m.remove(1 << 40), None);
        assert_eq!(m.remove(2), Some(1));
        assert_eq!(m.get(2), None);
        assert_eq!(m.len(), ids.len() - 2);
        // growing the dense table pulls sparse ids into it
        for id in 6..3000 {
            m.set(id, id as u32);
        }
        assert_eq!(m.get(5000), Some(3));
        assert_eq!(m.get(2000), Some(2000));
    }

    #[test]
    fn ids_from_walks_dense_and_sparse_ids_in_order() {
        let mut m = IdMap::default();
        let ids = [9u64, 1, 3, 1 << 40, 7, i64::MAX as u64, 1 << 50, 0];
        for (k, &id) in ids.iter().enumerate() {
            m.set(id, k as u32);
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
        assert_eq!(m.ids_from(7, 1), vec![(7, 4)]);
    }
}
