//! Entries laid out column by column: no allocation per entry, hashes contiguous for scans.

use crate::hamming::Code;

/// A column of `u64` values kept in 4 bytes each while every value fits in 32 bits, in 8
/// once one does not (widened then, never narrowed again); or, once [`U64Column::compact`]
/// found them evenly spaced, as the run they form, in no bytes at all.
#[derive(Debug, Clone)]
pub enum U64Column {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
    /// `first + i * step` at position `i`, for `i` in `0..len`.
    Run {
        first: u64,
        step: u64,
        len: usize,
    },
}

/// The ids of a column's entries. Ids an index assigns itself count up from 1, so nearly every
/// index keeps them narrow, and a segment whose ids have no gap keeps them as a run. Narrow
/// ids were measured when a segment's slots were in no id order and a wide answer read its
/// ids from all over the column: at r24 on 1M codes a query reads 30,000 of them, and half
/// the bytes kept more of the column and the hashes in the caches (one query, AMD EPYC,
/// builds alternated: 743-777 -> 728-739 µs with the AVX-512 kernel, 883-961 -> 813-843 with
/// AVX2, 1,150-1,214 -> 1,086-1,145 portable).
pub type Ids = U64Column;

impl Default for U64Column {
    fn default() -> Self {
        U64Column::Narrow(Vec::new())
    }
}

impl U64Column {
    fn with_capacity(len: usize) -> U64Column {
        U64Column::Narrow(Vec::with_capacity(len))
    }

    #[inline]
    pub fn len(&self) -> usize {
        match self {
            U64Column::Narrow(values) => values.len(),
            U64Column::Wide(values) => values.len(),
            U64Column::Run { len, .. } => *len,
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> u64 {
        match self {
            U64Column::Narrow(values) => u64::from(values[i]),
            U64Column::Wide(values) => values[i],
            &U64Column::Run { first, step, len } => {
                assert!(i < len, "position {i} out of a run of {len}");
                first + i as u64 * step
            }
        }
    }

    /// Keeps the values as the run they form, if they are evenly spaced (a segment's ids
    /// when they count up by one, title ends when the titles are of one length, empty ones
    /// included). For columns that stay as they are: any change but a push that continues
    /// the run writes the values out again.
    fn compact(&mut self) {
        if self.len() < 2 || matches!(self, U64Column::Run { .. }) {
            return;
        }
        let (first, second) = (self.get(0), self.get(1));
        let Some(step) = second.checked_sub(first) else {
            return;
        };
        let len = self.len();
        let mut expected = first;
        for i in 0..len {
            if self.get(i) != expected {
                return;
            }
            expected = expected.wrapping_add(step);
        }
        *self = U64Column::Run { first, step, len };
    }

    /// A run's values written out, in 4 bytes each if they fit; other columns unchanged.
    fn write_out(&mut self) {
        if let &mut U64Column::Run { first, step, len } = self {
            let last = first + len.saturating_sub(1) as u64 * step;
            *self = if u32::try_from(last).is_ok() {
                U64Column::Narrow((0..len).map(|i| (first + i as u64 * step) as u32).collect())
            } else {
                U64Column::Wide((0..len).map(|i| first + i as u64 * step).collect())
            };
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    fn push(&mut self, value: u64) {
        if let U64Column::Run { first, step, len } = self {
            if value == *first + *len as u64 * *step {
                *len += 1;
                return;
            }
            self.write_out();
        }
        match self {
            U64Column::Narrow(values) => match u32::try_from(value) {
                Ok(value) => values.push(value),
                Err(_) => {
                    let mut wide = Vec::with_capacity(values.capacity().max(values.len() + 1));
                    wide.extend(values.iter().map(|&v| u64::from(v)));
                    wide.push(value);
                    *self = U64Column::Wide(wide);
                }
            },
            U64Column::Wide(values) => values.push(value),
            U64Column::Run { .. } => unreachable!("written out above"),
        }
    }

    /// Subtracts `amount` from every value from position `from` on; each must be at least
    /// `amount`. Values only shrink, so a narrow column stays narrow.
    fn subtract_from(&mut self, from: usize, amount: u64) {
        self.write_out();
        match self {
            U64Column::Narrow(values) => {
                let amount = u32::try_from(amount).expect("no narrow value exceeds u32");
                values[from..].iter_mut().for_each(|v| *v -= amount);
            }
            U64Column::Wide(values) => values[from..].iter_mut().for_each(|v| *v -= amount),
            U64Column::Run { .. } => unreachable!("written out above"),
        }
    }

    fn trim(&mut self) {
        match self {
            U64Column::Narrow(values) => trim(values),
            U64Column::Wide(values) => trim(values),
            U64Column::Run { .. } => {}
        }
    }

    fn remove(&mut self, i: usize) {
        self.write_out();
        match self {
            U64Column::Narrow(values) => drop(values.remove(i)),
            U64Column::Wide(values) => drop(values.remove(i)),
            U64Column::Run { .. } => unreachable!("written out above"),
        }
    }

    fn truncate(&mut self, len: usize) {
        match self {
            U64Column::Narrow(values) => values.truncate(len),
            U64Column::Wide(values) => values.truncate(len),
            U64Column::Run { len: run, .. } => *run = len.min(*run),
        }
    }

    fn memory_bytes(&self) -> usize {
        match self {
            U64Column::Narrow(values) => values.capacity() * 4,
            U64Column::Wide(values) => values.capacity() * 8,
            U64Column::Run { .. } => 0,
        }
    }
}

/// Invariant: `hashes`, `ids` and `title_ends` have one element per entry; the title of entry
/// `i` is `titles[title_ends[i - 1]..title_ends[i]]` (from 0 for the first). Title ends stay
/// in 4 bytes while the titles together hold under 4 GiB.
#[derive(Debug, Clone, Default)]
pub struct Columns<C> {
    pub hashes: Vec<C>,
    ids: Ids,
    title_ends: U64Column,
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

    /// Entry `i`'s id.
    #[inline]
    pub fn id(&self, i: usize) -> u64 {
        self.ids.get(i)
    }

    pub fn ids(&self) -> &Ids {
        &self.ids
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
            self.title_ends.get(i - 1) as usize
        }
    }

    #[inline]
    pub fn title(&self, i: usize) -> &[u8] {
        &self.titles[self.title_start(i)..self.title_ends.get(i) as usize]
    }

    /// Removes entry `i`, keeping the order of the others. O(len + title bytes after `i`).
    pub fn remove(&mut self, i: usize) {
        let (start, end) = (self.title_start(i), self.title_ends.get(i) as usize);
        self.titles.drain(start..end);
        let removed = (end - start) as u64;
        self.title_ends.subtract_from(i + 1, removed);
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
            rest.push(self.id(i), self.hashes[i], self.title(i));
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
            ids: Ids::with_capacity(len),
            title_ends: U64Column::with_capacity(len),
            titles: Vec::with_capacity(title_bytes),
        }
    }

    pub fn title_bytes(&self) -> usize {
        self.titles.len()
    }

    pub fn memory_bytes(&self) -> usize {
        self.hashes.capacity() * std::mem::size_of::<C>()
            + self.ids.memory_bytes()
            + self.title_ends.memory_bytes()
            + self.titles.capacity()
    }

    /// Shrinks capacity to at most 1/8 above the length, so long-lived columns do not keep the
    /// doubling slack of their growth.
    pub fn trim(&mut self) {
        trim(&mut self.hashes);
        self.ids.trim();
        self.title_ends.trim();
        trim(&mut self.titles);
    }

    /// [`Columns::trim`], and ids and title ends kept as runs where they are evenly spaced
    /// ([`U64Column::compact`]): for columns built once and then only read, as a segment's
    /// are. Ids that count up by one then take no memory and no cache miss to read: a wide
    /// answer reads one per row from all over the column.
    pub fn compact(&mut self) {
        self.ids.compact();
        self.title_ends.compact();
        self.trim();
    }
}

/// Shrinks `v`'s capacity to at most 1/8 above its length (see [`Columns::trim`]).
fn trim<T>(v: &mut Vec<T>) {
    if v.capacity() > v.len() + v.len() / 8 + 16 {
        v.shrink_to(v.len() + v.len() / 16);
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
        assert_eq!(c.ids.iter().collect::<Vec<_>>(), vec![0, 1, 3, 4]);
        assert_eq!(c.title(0), b"");
        assert_eq!(c.title(2), b"t3t3t3");
        assert_eq!(c.title(3), b"t4t4t4t4");
        let front = c.split_front(1);
        assert_eq!(front.ids.iter().collect::<Vec<_>>(), vec![0]);
        assert_eq!(c.ids.iter().collect::<Vec<_>>(), vec![1, 3, 4]);
        assert_eq!(c.title(1), b"t3t3t3");
        c.truncate(1);
        assert_eq!(c.title(0), b"t1");
        assert_eq!(c.title_bytes(), 2);
    }

    #[test]
    fn evenly_spaced_values_are_kept_as_a_run_and_written_out_on_any_other_change() {
        let column = |values: &[u64]| {
            let mut c = U64Column::with_capacity(values.len());
            values.iter().for_each(|&v| c.push(v));
            c
        };
        // Runs of any step, zero (empty titles) included, and past 32 bits.
        for values in [
            vec![5u64, 6, 7, 8],
            vec![0, 0, 0],
            vec![3, 10, 17],
            vec![1 << 40, (1 << 40) + 1],
        ] {
            let mut c = column(&values);
            c.compact();
            assert!(matches!(c, U64Column::Run { .. }), "{values:?}");
            assert_eq!(c.memory_bytes(), 0);
            assert_eq!(c.iter().collect::<Vec<_>>(), values);
            // A push that continues the run keeps it.
            let next = values[1] - values[0] + values[values.len() - 1];
            c.push(next);
            assert!(matches!(c, U64Column::Run { .. }));
            assert_eq!(c.get(values.len()), next);
        }
        // Uneven values, a single value and a descending pair stay written out.
        for values in [vec![1u64, 2, 4], vec![9], vec![4, 2]] {
            let mut c = column(&values);
            c.compact();
            assert!(!matches!(c, U64Column::Run { .. }), "{values:?}");
            assert_eq!(c.iter().collect::<Vec<_>>(), values);
        }
        // Any other change writes the run out first, narrow or wide as its values need.
        let mut c = column(&[10, 20, 30, 40]);
        c.compact();
        c.push(41);
        assert!(matches!(c, U64Column::Narrow(_)));
        assert_eq!(c.iter().collect::<Vec<_>>(), vec![10, 20, 30, 40, 41]);
        let mut c = column(&[10, 20, 30, 40]);
        c.compact();
        c.remove(1);
        assert_eq!(c.iter().collect::<Vec<_>>(), vec![10, 30, 40]);
        let mut c = column(&[10, 20, 30, 40]);
        c.compact();
        c.subtract_from(2, 5);
        assert_eq!(c.iter().collect::<Vec<_>>(), vec![10, 20, 25, 35]);
        let mut c = column(&[10, 20, 30, 40]);
        c.compact();
        c.truncate(2);
        assert!(matches!(c, U64Column::Run { .. }));
        assert_eq!(c.iter().collect::<Vec<_>>(), vec![10, 20]);
        let mut c = column(&[1 << 40, (1 << 40) + 1]);
        c.compact();
        c.push(3);
        assert!(matches!(c, U64Column::Wide(_)));
        assert_eq!(
            c.iter().collect::<Vec<_>>(),
            vec![1 << 40, (1 << 40) + 1, 3]
        );
    }

    #[test]
    #[should_panic(expected = "out of a run")]
    fn a_run_refuses_a_position_past_its_end() {
        let mut c = U64Column::with_capacity(2);
        c.push(1);
        c.push(2);
        c.compact();
        c.get(2);
    }

    #[test]
    fn ids_widen_when_one_does_not_fit_in_32_bits() {
        let mut c = Columns::<u64>::with_capacity(4, 0);
        c.push(u64::from(u32::MAX), 1, b"");
        assert!(matches!(c.ids(), U64Column::Narrow(_)));
        // A hash, a narrow id and a narrow title end per entry.
        assert_eq!(c.memory_bytes(), 4 * (8 + 4 + 4));
        c.push(1 << 40, 2, b"a");
        c.push(7, 3, b"");
        assert!(matches!(c.ids(), U64Column::Wide(_)));
        assert_eq!(
            c.ids().iter().collect::<Vec<_>>(),
            vec![u64::from(u32::MAX), 1 << 40, 7]
        );
        c.remove(0);
        assert_eq!(c.id(0), 1 << 40);
        assert_eq!(c.title(0), b"a");
        let front = c.split_front(1);
        // Entries moved into new columns are narrow again where their ids allow.
        assert!(matches!(front.ids(), U64Column::Wide(_)));
        assert!(matches!(c.ids(), U64Column::Narrow(_)));
        assert_eq!(c.id(0), 7);
    }

    #[test]
    fn a_column_widens_past_32_bits_and_subtracts_in_either_width() {
        // Title ends are such a column: 4 GiB of titles cannot be made in a test, so the
        // column is driven directly with the values those ends would take.
        let mut ends = U64Column::with_capacity(3);
        ends.push(10);
        ends.push(u64::from(u32::MAX));
        assert!(matches!(ends, U64Column::Narrow(_)));
        ends.subtract_from(1, 5);
        assert_eq!(
            ends.iter().collect::<Vec<_>>(),
            vec![10, u64::from(u32::MAX) - 5]
        );
        ends.push(1 << 33);
        assert!(matches!(ends, U64Column::Wide(_)));
        assert_eq!(ends.memory_bytes(), ends.len().max(3) * 8);
        ends.subtract_from(2, 1 << 32);
        assert_eq!(
            ends.iter().collect::<Vec<_>>(),
            vec![10, u64::from(u32::MAX) - 5, 1 << 32]
        );
        ends.remove(0);
        ends.truncate(1);
        assert_eq!(
            ends.iter().collect::<Vec<_>>(),
            vec![u64::from(u32::MAX) - 5]
        );
    }
}
