//! Entries laid out column by column: no allocation per entry, hashes contiguous for scans.

use crate::hamming::Code;

/// Invariant: `hashes`, `ids` and `title_ends` have one element per entry; the title of entry
/// `i` is `titles[title_ends[i - 1]..title_ends[i]]` (from 0 for the first).
#[derive(Debug, Clone, Default)]
pub struct Columns<C> {
    pub hashes: Vec<C>,
    pub ids: Vec<u64>,
    title_ends: Vec<u64>,
    titles: Vec<u8>,
}

impl<C: Code> Columns<C> {
    #[inline]
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    pub fn push(&mut self, id: u64, hash: C, title: &[u8]) {
        self.hashes.push(hash);
        self.ids.push(id);
        self.titles.extend_from_slice(title);
        self.title_ends.push(self.titles.len() as u64);
    }

    #[inline]
    fn title_start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.title_ends[i - 1] as usize
        }
    }

    #[inline]
    pub fn title(&self, i: usize) -> &[u8] {
        &self.titles[self.title_start(i)..self.title_ends[i] as usize]
    }

    /// Removes entry `i`, keeping the order of the others. O(len + title bytes after `i`).
    pub fn remove(&mut self, i: usize) {
        let (start, end) = (self.title_start(i), self.title_ends[i] as usize);
        self.titles.drain(start..end);
        let removed = (end - start) as u64;
        for e in &mut self.title_ends[i + 1..] {
            *e -= removed;
        }
        self.title_ends.remove(i);
        self.hashes.remove(i);
        self.ids.remove(i);
    }

    /// Keeps the first `len` entries.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.titles.truncate(self.title_start(len));
            self.title_ends.truncate(len);
            self.hashes.truncate(len);
            self.ids.truncate(len);
        }
    }

    /// Moves the first `count` entries out into new columns.
    pub fn split_front(&mut self, count: usize) -> Columns<C> {
        let mut rest = Columns::default();
        for i in count..self.len() {
            rest.push(self.ids[i], self.hashes[i], self.title(i));
        }
        self.truncate(count);
        std::mem::replace(self, rest)
    }

    /// Empty columns with room for `len` entries and `title_bytes` bytes of titles: columns
    /// rebuilt at their final size, without the doubling reallocations of growing one push
    /// at a time (which leave an allocator with pages it cannot hand back).
    pub fn with_capacity(len: usize, title_bytes: usize) -> Columns<C> {
        Columns {
            hashes: Vec::with_capacity(len),
            ids: Vec::with_capacity(len),
            title_ends: Vec::with_capacity(len),
            titles: Vec::with_capacity(title_bytes),
        }
    }

    pub fn title_bytes(&self) -> usize {
        self.titles.len()
    }

    pub fn memory_bytes(&self) -> usize {
        self.hashes.capacity() * std::mem::size_of::<C>()
            + self.ids.capacity() * 8
            + self.title_ends.capacity() * 8
            + self.titles.capacity()
    }

    /// Shrinks capacity to at most 1/8 above the length, so long-lived columns do not keep the
    /// doubling slack of their growth.
    pub fn trim(&mut self) {
        fn trim<T>(v: &mut Vec<T>) {
            if v.capacity() > v.len() + v.len() / 8 + 16 {
                v.shrink_to(v.len() + v.len() / 16);
            }
        }
        trim(&mut self.hashes);
        trim(&mut self.ids);
        trim(&mut self.title_ends);
        trim(&mut self.titles);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_remove_truncate_keep_titles_aligned() {
        let mut c = Columns::<u64>::default();
        for i in 0..5u64 {
            c.push(i, i * 10, format!("t{i}").repeat(i as usize).as_bytes());
        }
        c.remove(2);
        assert_eq!(c.ids, vec![0, 1, 3, 4]);
        assert_eq!(c.title(0), b"");
        assert_eq!(c.title(2), b"t3t3t3");
        assert_eq!(c.title(3), b"t4t4t4t4");
        let front = c.split_front(1);
        assert_eq!(front.ids, vec![0]);
        assert_eq!(c.ids, vec![1, 3, 4]);
        assert_eq!(c.title(1), b"t3t3t3");
        c.truncate(1);
        assert_eq!(c.title(0), b"t1");
        assert_eq!(c.title_bytes(), 2);
    }
}
