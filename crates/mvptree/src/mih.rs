//! Multi-index hashing (Norouzi, Punjani & Fleet, CVPR 2012), exact.
//!
//! The code's bits are cut into `m` disjoint substrings ("fields"); field `j` has a bucket table
//! mapping each substring value to the positions whose hash carries it. If two hashes differ in
//! `d` bits, their field distances `d_0..d_m` add up to `d`.
//!
//! # Search schedule
//! Step `L` (0, 1, 2, ...) visits, in field `j = L % m`, every bucket at exactly `s = L / m`
//! flips of the query's substring. A hash `x` is *owned* by the step of its field
//! `j* = argmin_j (d_j, j)`: that step has index `d_{j*}·m + j* <= d` (since every other field
//! has `d_i >= d_{j*}`, and `> d_{j*}` for `i < j*`). So:
//! - steps `0..=r` find every hash within `r` (exactness), and
//! - reporting a hash only at its owner step reports it once, with no set of seen positions.

use crate::hamming::{cross_hits, hits_within, kernel, Code};
use crate::prefetch::{prefetch, prefetch_lines};
use crate::threads::for_each_on_threads;

/// Bucket tables over one segment's hashes. Positions are indexes into that segment.
#[derive(Debug, Clone)]
pub struct MultiIndex<C> {
    fields: Vec<Field<C>>,
    len: usize,
    /// The planner's estimate of steps `0..k` at index `k` (`k` up to the step count), filled
    /// by [`MultiIndex::step_cost_prefix`] on first use: a query is planned on every segment,
    /// and summing the steps' estimates each time cost as much as an exact lookup.
    step_costs: std::sync::OnceLock<Vec<f64>>,
}

#[derive(Debug, Clone)]
struct Field<C> {
    shift: u32,
    width: u32,
    /// `offsets[k]..offsets[k + 1]` are the positions in bucket `k`; `2^width + 1` entries.
    offsets: Vec<u32>,
    /// Positions, grouped by bucket, ascending inside a bucket (so reads go forward in memory).
    positions: Vec<u32>,
    /// Field 0 only: the hash at each entry of `positions`, so its buckets are verified by a
    /// sequential read instead of a cache miss per candidate. Field 0 has the most steps in
    /// the schedule (it goes first at every field distance), so it has most candidates: about
    /// two thirds of them at radii 8 to 12 with four fields. 64-bit codes only: a 256-bit
    /// index has 13 fields at 1M entries, field 0 holds a small share of the candidates, and
    /// the copy would cost 32 bytes an entry for no measurable gain.
    hashes: Vec<C>,
    /// Mean size of the bucket holding a random indexed hash, over the mean bucket size:
    /// 1 for uniform data, higher when near-duplicates crowd the same buckets. Queries are
    /// usually near indexed hashes, so the planner scales its candidate estimate by it.
    crowding: f64,
}

impl<C: Code> Field<C> {
    /// The field of bits `shift..shift + width` over `hashes`, with the hashes inline when
    /// `inline` is set.
    fn build(hashes: &[C], shift: u32, width: u32, inline: bool) -> Field<C> {
        let mut field = Field {
            shift,
            width,
            offsets: vec![0; (1usize << width) + 1],
            positions: vec![0; hashes.len()],
            hashes: Vec::new(),
            crowding: 1.0,
        };
        for &h in hashes {
            let k = field.key(h);
            field.offsets[k + 1] += 1;
        }
        for k in 1..field.offsets.len() {
            field.offsets[k] += field.offsets[k - 1];
        }
        let buckets = (1u64 << width) as f64;
        let n = hashes.len().max(1) as f64;
        let sum_squares: f64 = field
            .offsets
            .windows(2)
            .map(|w| f64::from(w[1] - w[0]).powi(2))
            .sum();
        field.crowding = (sum_squares / n / (n / buckets)).max(1.0);
        let mut cursor = field.offsets.clone();
        for (pos, &h) in hashes.iter().enumerate() {
            let k = field.key(h);
            field.positions[cursor[k] as usize] = pos as u32;
            cursor[k] += 1;
        }
        if inline {
            field.hashes = field
                .positions
                .iter()
                .map(|&p| hashes[p as usize])
                .collect();
        }
        field
    }

    #[inline(always)]
    fn key(&self, hash: C) -> usize {
        hash.bits(self.shift, self.width)
    }

    /// Bits of `diff` set in this field.
    #[inline(always)]
    fn ones(&self, diff: C) -> u32 {
        diff.bits(self.shift, self.width).count_ones()
    }

    #[inline(always)]
    fn bucket(&self, key: usize) -> std::ops::Range<usize> {
        self.offsets[key] as usize..self.offsets[key + 1] as usize
    }
}

/// What one step of the schedule is expected to cost, for the planner.
pub struct StepWork {
    pub buckets: f64,
    pub candidates: f64,
    /// Candidates are read in sequence from the bucket (field 0), not fetched at random.
    pub inline: bool,
    /// Bytes of the field's bucket offsets: a table past the caches costs a miss a bucket.
    pub table_bytes: f64,
}

/// Field count for `n` codes of `bits` bits: about `log2(n)` bits per field, so a bucket holds
/// about one hash; at least 3 fields, and fields of at most [`MAX_FIELD_WIDTH`] bits (wider
/// tables cost more memory than they save), and at most one field per 8 bits.
pub fn field_count_for(bits: u32, n: usize) -> usize {
    let log2 = (n.max(2) as f64).log2();
    let fewest = (bits.div_ceil(MAX_FIELD_WIDTH) as usize).max(3);
    ((f64::from(bits) / log2).ceil() as usize).clamp(fewest, bits as usize / 8)
}

/// Widest field: a table of 2^24 offsets is 64 MiB.
pub const MAX_FIELD_WIDTH: u32 = 24;

/// `n choose k` as a float (exact for the small values used here).
pub fn binomial(n: u32, k: u32) -> f64 {
    if k > n {
        return 0.0;
    }
    (0..k).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1))
}

impl<C: Code> MultiIndex<C> {
    /// Entries indexed.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn build(hashes: &[C]) -> MultiIndex<C> {
        Self::build_with(hashes, false)
    }

    /// `inline_all` stores the hashes in every field's buckets, not just field 0's: what the
    /// self-join wants (every candidate read in sequence), at 8 more bytes per entry and field.
    pub fn build_with(hashes: &[C], inline_all: bool) -> MultiIndex<C> {
        Self::build_on_threads(hashes, inline_all, 1)
    }

    /// [`MultiIndex::build_with`], its fields built on up to `threads` threads (each field
    /// is built from the hashes alone, so they need nothing from each other); the same index.
    pub fn build_on_threads(hashes: &[C], inline_all: bool, threads: usize) -> MultiIndex<C> {
        assert!(hashes.len() < u32::MAX as usize, "segment too large");
        let bits = C::BITS;
        let m = field_count_for(bits, hashes.len()) as u32;
        // Spread the bits as evenly as possible; earlier fields get the extra bits.
        let mut layout = Vec::with_capacity(m as usize);
        let mut shift = 0;
        for j in 0..m {
            let width = bits / m + u32::from(j < bits % m);
            let inline = (j == 0 && C::WORDS == 1) || inline_all;
            layout.push((shift, width, inline));
            shift += width;
        }
        debug_assert_eq!(shift, bits);
        let build =
            |&(shift, width, inline): &(u32, u32, bool)| Field::build(hashes, shift, width, inline);
        let mut built: Vec<Option<Field<C>>> = layout.iter().map(|_| None).collect();
        for_each_on_threads(
            threads.min(layout.len()),
            layout.iter().zip(built.iter_mut()),
            |(layout, slot), _: &mut ()| *slot = Some(build(layout)),
        );
        let fields = built
            .into_iter()
            .map(|f| f.expect("every field built"))
            .collect();
        MultiIndex {
            fields,
            len: hashes.len(),
            step_costs: std::sync::OnceLock::new(),
        }
    }

    /// The planner's prefix sums of step costs, computed by `compute` the first time. The
    /// estimates depend only on the index and on the kernel, fixed for the process, so the
    /// plans stay the same for the index's life.
    pub fn step_cost_prefix(&self, compute: impl FnOnce() -> Vec<f64>) -> &[f64] {
        self.step_costs.get_or_init(compute)
    }

    pub fn field_widths(&self) -> Vec<u32> {
        self.fields.iter().map(|f| f.width).collect()
    }

    pub fn memory_bytes(&self) -> usize {
        self.fields
            .iter()
            .map(|f| {
                (f.offsets.capacity() + f.positions.capacity()) * 4
                    + f.hashes.capacity() * std::mem::size_of::<C>()
            })
            .sum::<usize>()
            + self.fields.capacity() * std::mem::size_of::<Field<C>>()
    }

    /// Number of steps that have any bucket: past it, every hash has been reported.
    pub fn step_count(&self) -> usize {
        let m = self.fields.len();
        // Field j has steps for s = 0..=width_j, at indexes s*m + j.
        self.fields
            .iter()
            .enumerate()
            .map(|(j, f)| f.width as usize * m + j + 1)
            .max()
            .unwrap_or(0)
    }

    /// Buckets visited by step `step`, and the hashes expected in them for a query near the
    /// indexed hashes (uniform density; the query's own bucket scaled by the field's crowding).
    pub fn step_work(&self, step: usize) -> StepWork {
        let m = self.fields.len();
        let field = &self.fields[step % m];
        let s = (step / m) as u32;
        let buckets = binomial(field.width, s);
        // Crowding is the excess of a data point's own bucket: it applies to the query's own
        // bucket (s = 0) when the query is near the data; the buckets around it hold about
        // the uniform share.
        let crowding = if s == 0 { field.crowding } else { 1.0 };
        let expected = self.len as f64 * buckets / (1u64 << field.width) as f64 * crowding;
        StepWork {
            buckets,
            candidates: expected.min(self.len as f64),
            inline: !field.hashes.is_empty(),
            table_bytes: (1u64 << field.width) as f64 * std::mem::size_of::<u32>() as f64,
        }
    }

    /// Reports `(position, distance)` for every hash owned by step `step` (see the module
    /// documentation) within `max_distance` of the query.
    #[inline]
    pub fn step(
        &self,
        hashes: &[C],
        query: C,
        step: usize,
        max_distance: u32,
        mut hit: impl FnMut(usize, u32),
    ) {
        let m = self.fields.len();
        let j = step % m;
        let field = &self.fields[j];
        let s = (step / m) as u32;
        if s > field.width {
            return;
        }
        let key = field.key(query);
        if s == 0 {
            let bucket = field.bucket(key);
            return self.visit_bucket(hashes, query, (j, s), bucket, max_distance, &mut hit);
        }
        // The step's buckets are read in prefetched rounds, as in `range_many`.
        let mut round = Round::new();
        let mut hit = |_, p, d| hit(p, d);
        for_each_mask(field.width, s, &mut |flips| {
            if round.push(Probe {
                query: 0,
                field: j as u8,
                distance: s as u8,
                key: (key ^ flips) as u32,
            }) {
                self.read_round(hashes, &[query], max_distance, &mut round, &mut hit);
            }
        });
        self.read_round(hashes, &[query], max_distance, &mut round, &mut hit);
    }

    /// Reports `(position, distance)` for every hash of `bucket` (a range of field `j`'s
    /// positions, at field distance `s` from the query) within `max_distance` that this
    /// step owns.
    #[inline(always)]
    fn visit_bucket(
        &self,
        hashes: &[C],
        query: C,
        (j, s): (usize, u32),
        bucket: std::ops::Range<usize>,
        max_distance: u32,
        hit: &mut impl FnMut(usize, u32),
    ) {
        let field = &self.fields[j];
        // Most candidates are too far: test the distance first, ownership only for the rest.
        if field.hashes.is_empty() {
            for &pos in &field.positions[bucket] {
                let diff = hashes[pos as usize].xor(query);
                let d = diff.count_ones();
                if d <= max_distance && self.owns(diff, j, s) {
                    hit(pos as usize, d);
                }
            }
        } else {
            for (&h, &pos) in field.hashes[bucket.clone()]
                .iter()
                .zip(&field.positions[bucket])
            {
                let diff = h.xor(query);
                let d = diff.count_ones();
                if d <= max_distance && self.owns(diff, j, s) {
                    hit(pos as usize, d);
                }
            }
        }
    }

    /// True when field `j` at field distance `s` is the owner of a hash that differs from the
    /// query in the bits `diff`: every earlier field differs in more than `s` bits, every
    /// later one in at least `s`.
    #[inline(always)]
    fn owns(&self, diff: C, j: usize, s: u32) -> bool {
        self.fields.iter().enumerate().all(|(i, f)| {
            let di = f.ones(diff);
            match i.cmp(&j) {
                std::cmp::Ordering::Less => di > s,
                std::cmp::Ordering::Equal => true,
                std::cmp::Ordering::Greater => di >= s,
            }
        })
    }

    /// Index of the step that owns a hash differing from the query in the bits `diff`.
    #[inline]
    pub fn owner_step(&self, diff: C) -> usize {
        let m = self.fields.len();
        let (d, j) = self
            .fields
            .iter()
            .enumerate()
            .map(|(j, f)| (f.ones(diff), j))
            .min()
            .expect("at least one field");
        d as usize * m + j
    }

    /// Reports every position within `radius` of `query`, each once, in no particular order.
    pub fn range(&self, hashes: &[C], query: C, radius: u32, mut hit: impl FnMut(usize, u32)) {
        self.range_many(hashes, &[query], radius, |_, p, d| hit(p, d));
    }

    /// [`MultiIndex::range`] of every query: `hit(i, position, distance)` for each position
    /// within `radius` of `queries[i]`, each once per query, in no particular order.
    ///
    /// Every bucket the schedule visits is known from the query alone, so the buckets are
    /// listed first and read in rounds of [`PROBE_ROUND`], across queries when a query has
    /// fewer: each round asks for all its bucket bounds, then for every line of every bucket,
    /// then (in fields without inline hashes) for every candidate's hash, before it reads
    /// any of them. A query from cold memory then waits for a few overlapped misses a round
    /// instead of one miss after another (1M entries, r8, `examples/plans.rs --cold`: 27 ->
    /// 20 µs a query from flushed caches, 15 -> 11 µs from warm ones), and a batch of exact
    /// lookups overlaps the misses of 32 queries. A bucket of 15 inline hashes spans two or
    /// three lines: asking for its first line alone left the rest to miss one by one when
    /// the bucket was read (AVX2, 1M uniform codes, the two ways interleaved in one process:
    /// r10 29-36 -> 23-31 µs a query; `KERNELS.md` has the other radii).
    pub fn range_many(
        &self,
        hashes: &[C],
        queries: &[C],
        radius: u32,
        mut hit: impl FnMut(usize, usize, u32),
    ) {
        assert!(
            queries.len() <= u32::MAX as usize,
            "too many queries at once"
        );
        let last = (radius as usize).min(self.step_count().saturating_sub(1));
        let m = self.fields.len();
        let mut round = Round::new();
        for (qi, &query) in queries.iter().enumerate() {
            for step in 0..=last {
                let (j, s) = (step % m, (step / m) as u32);
                let field = &self.fields[j];
                let key = field.key(query);
                for_each_mask(field.width, s, &mut |flips| {
                    if round.push(Probe {
                        query: qi as u32,
                        field: j as u8,
                        distance: s as u8,
                        key: (key ^ flips) as u32,
                    }) {
                        self.read_round(hashes, queries, radius, &mut round, &mut hit);
                    }
                });
            }
        }
        self.read_round(hashes, queries, radius, &mut round, &mut hit);
    }

    /// Reads the buckets of `round` (see [`MultiIndex::range_many`]) and empties it.
    fn read_round(
        &self,
        hashes: &[C],
        queries: &[C],
        radius: u32,
        round: &mut Round,
        hit: &mut impl FnMut(usize, usize, u32),
    ) {
        let probes = &round.probes[..round.len];
        for p in probes {
            prefetch(&self.fields[p.field as usize].offsets[p.key as usize]);
        }
        for (p, bucket) in probes.iter().zip(&mut round.buckets) {
            let field = &self.fields[p.field as usize];
            *bucket = field.bucket(p.key as usize);
            if field.hashes.is_empty() {
                prefetch_lines(&field.positions[bucket.clone()]);
            } else {
                prefetch_lines(&field.hashes[bucket.clone()]);
            }
        }
        for (p, bucket) in probes.iter().zip(&round.buckets) {
            let field = &self.fields[p.field as usize];
            if field.hashes.is_empty() {
                for &pos in &field.positions[bucket.clone()] {
                    prefetch(&hashes[pos as usize]);
                }
            }
        }
        for (p, bucket) in probes.iter().zip(&round.buckets) {
            let (qi, j, s) = (p.query as usize, p.field as usize, u32::from(p.distance));
            let mut hit = |pos, d| hit(qi, pos, d);
            self.visit_bucket(
                hashes,
                queries[qi],
                (j, s),
                bucket.clone(),
                radius,
                &mut hit,
            );
        }
        round.len = 0;
    }
}

/// Buckets whose reads are asked for together in [`MultiIndex::range_many`]: enough to keep
/// the core's outstanding misses busy, few enough that the first arrivals are still cached
/// when the round reads them.
const PROBE_ROUND: usize = 32;

/// One bucket of a query's schedule: bucket `key` of field `field`, at field distance
/// `distance` from the bucket of query `query`.
#[derive(Debug, Clone, Copy, Default)]
struct Probe {
    query: u32,
    field: u8,
    distance: u8,
    key: u32,
}

/// The buckets of one round, listed and then read.
struct Round {
    probes: [Probe; PROBE_ROUND],
    /// Each probe's range of positions, once its bounds are read.
    buckets: [std::ops::Range<usize>; PROBE_ROUND],
    len: usize,
}

impl Round {
    fn new() -> Round {
        Round {
            probes: [Probe::default(); PROBE_ROUND],
            buckets: std::array::from_fn(|_| 0..0),
            len: 0,
        }
    }

    /// Adds a probe; true when the round is full and must be read.
    fn push(&mut self, probe: Probe) -> bool {
        self.probes[self.len] = probe;
        self.len += 1;
        self.len == PROBE_ROUND
    }
}

impl<C: Code> MultiIndex<C> {
    /// The self-join: calls `emit(a, b, distance)` once for every unordered pair of positions
    /// within `radius`, until `emit` returns false. Needs every field inline
    /// ([`MultiIndex::build_with`]).
    ///
    /// A pair is reported at its owner step, like a query's candidate: at step `(j, s)` every
    /// bucket `k` of field `j` is joined with itself (`s = 0`) or with each bucket `k ^ mask`
    /// above it (`s > 0`, `mask` of `s` bits), so each unordered pair of buckets is read once,
    /// in sequence. Versus one query per entry this saves a bucket lookup per entry and step,
    /// and every random read.
    pub fn self_join(&self, radius: u32, emit: impl FnMut(usize, usize, u32) -> bool) {
        self.self_join_part(radius, 0, 1, emit);
    }

    /// The share of [`MultiIndex::self_join`] that `part` of `parts` runs: the buckets whose
    /// key is `part` modulo `parts` (each unordered pair of buckets is read from its smaller
    /// key, so the parts report disjoint pairs, together all of them). Interleaved keys keep
    /// the parts' work alike when a few buckets are crowded.
    pub fn self_join_part(
        &self,
        radius: u32,
        part: usize,
        parts: usize,
        mut emit: impl FnMut(usize, usize, u32) -> bool,
    ) {
        let last = (radius as usize).min(self.step_count().saturating_sub(1));
        let m = self.fields.len();
        // Checked in the innermost loops: one bucket of identical hashes (flat images) can
        // hold most of the index, and its pairs alone the square of that.
        let stopped = std::cell::Cell::new(false);
        let kernel = kernel();
        let (mut partners, mut buckets) = (Vec::new(), Vec::new());
        for step in 0..=last {
            let j = step % m;
            let s = (step / m) as u32;
            let field = &self.fields[j];
            if s > field.width {
                continue;
            }
            assert_eq!(
                field.hashes.len(),
                self.len,
                "self_join needs inline hashes"
            );
            // A pair is reported by the step that owns it; returns whether to go on.
            let mut report = |x: C, px: u32, y: C, py: u32, d: u32| {
                if self.owns(x.xor(y), j, s) && !emit(px as usize, py as usize, d) {
                    stopped.set(true);
                    return false;
                }
                true
            };
            for key in (part..(1usize << field.width)).step_by(parts.max(1)) {
                let a = field.bucket(key);
                if a.is_empty() {
                    continue;
                }
                let (ha, pa) = (&field.hashes[a.clone()], &field.positions[a]);
                if s == 0 {
                    hits_within(kernel, ha, radius, |i, k, d| {
                        report(ha[i], pa[i], ha[k], pa[k], d)
                    });
                } else {
                    // The partner buckets are known before any is read: their bounds, then
                    // their hashes are asked for first, so the misses overlap.
                    partners.clear();
                    for_each_mask(field.width, s, &mut |mask| {
                        let other = key ^ mask;
                        if other > key {
                            prefetch(&field.offsets[other]);
                            partners.push(other);
                        }
                    });
                    buckets.clear();
                    buckets.extend(partners.iter().map(|&other| {
                        let b = field.bucket(other);
                        if let Some(h) = field.hashes.get(b.start) {
                            prefetch(h);
                        }
                        b
                    }));
                    for b in &buckets {
                        if stopped.get() {
                            break;
                        }
                        let (hb, pb) = (&field.hashes[b.clone()], &field.positions[b.clone()]);
                        cross_hits(kernel, ha, hb, radius, |i, k, d| {
                            report(ha[i], pa[i], hb[k], pb[k], d)
                        });
                    }
                }
                if stopped.get() {
                    return;
                }
            }
        }
    }
}

/// Calls `visit` with every `width`-bit mask that has exactly `ones` bits set.
#[inline]
fn for_each_mask(width: u32, ones: u32, visit: &mut impl FnMut(usize)) {
    if ones == 0 {
        visit(0);
        return;
    }
    if ones > width {
        return;
    }
    let limit = 1u64 << width;
    let mut v: u64 = (1u64 << ones) - 1;
    while v < limit {
        visit(v as usize);
        // Gosper's hack: the next larger integer with the same number of set bits.
        let t = v | (v - 1);
        v = (t + 1) | (((!t & (t + 1)) - 1) >> (v.trailing_zeros() + 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hamming::distance;

    fn sample(n: usize, seed: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                // splitmix64
                x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            })
            .collect()
    }

    #[test]
    fn masks_are_all_combinations() {
        let mut seen = Vec::new();
        for_each_mask(5, 2, &mut |m| seen.push(m));
        assert_eq!(seen.len(), 10);
        assert!(seen.iter().all(|m| m.count_ones() == 2 && *m < 32));
        let mut zero = Vec::new();
        for_each_mask(16, 0, &mut |m| zero.push(m));
        assert_eq!(zero, vec![0]);
    }

    #[test]
    fn range_is_exact_and_reports_each_hash_once() {
        let mut hashes = sample(3000, 7);
        // near-duplicates, so small radii have answers
        for i in 0..500 {
            let h = hashes[i] ^ (1 << (i % 64)) ^ (1 << ((i * 7) % 64));
            hashes.push(h);
        }
        let mi = MultiIndex::build(&hashes);
        for (qi, &q) in [hashes[0], hashes[2999] ^ 0xF0F0, 0, u64::MAX]
            .iter()
            .enumerate()
        {
            for radius in [0, 1, 2, 5, 9, 16, 30, 64] {
                let mut got = Vec::new();
                mi.range(&hashes, q, radius, |p, d| got.push((p, d)));
                got.sort_unstable();
                let want: Vec<(usize, u32)> = hashes
                    .iter()
                    .enumerate()
                    .map(|(p, &h)| (p, distance(h, q)))
                    .filter(|&(_, d)| d <= radius)
                    .collect();
                assert_eq!(got, want, "query {qi} radius {radius}");
            }
        }
    }

    /// Queries probed together share rounds of bucket reads (at r0 a query has one bucket, so
    /// a round holds 32 queries): each query must still get exactly its own answer.
    #[test]
    fn range_many_gives_each_query_its_own_exact_answer() {
        let mut hashes = sample(6000, 11);
        for i in 0..1000 {
            hashes.push(hashes[i] ^ (1 << (i % 64)));
        }
        let mi = MultiIndex::build(&hashes);
        let queries: Vec<u64> = (0..150)
            .map(|i| match i % 3 {
                0 => hashes[i * 7],
                1 => hashes[i * 5] ^ (0b11 << (i % 60)),
                _ => sample(1, i as u64 + 100)[0],
            })
            .collect();
        for radius in [0, 1, 3, 8, 20] {
            let mut got = vec![Vec::new(); queries.len()];
            mi.range_many(&hashes, &queries, radius, |qi, p, d| got[qi].push((p, d)));
            for (qi, &q) in queries.iter().enumerate() {
                got[qi].sort_unstable();
                let want: Vec<(usize, u32)> = hashes
                    .iter()
                    .enumerate()
                    .map(|(p, &h)| (p, distance(h, q)))
                    .filter(|&(_, d)| d <= radius)
                    .collect();
                assert_eq!(got[qi], want, "query {qi} radius {radius}");
            }
        }
    }

    #[test]
    fn self_join_reports_each_pair_within_radius_once() {
        let mut hashes = sample(2000, 5);
        let near: Vec<u64> = (0..600).map(|i| hashes[i] ^ (0b101 << (i % 60))).collect();
        hashes.extend(near);
        hashes.extend([7, 7, 7]);
        let mi = MultiIndex::build_with(&hashes, true);
        for radius in [0, 2, 3, 8, 17] {
            let mut got = Vec::new();
            mi.self_join(radius, |a, b, d| {
                got.push((a.min(b), a.max(b), d));
                true
            });
            got.sort_unstable();
            let mut want = Vec::new();
            for a in 0..hashes.len() {
                for b in a + 1..hashes.len() {
                    let d = distance(hashes[a], hashes[b]);
                    if d <= radius {
                        want.push((a, b, d));
                    }
                }
            }
            assert_eq!(got, want, "radius {radius}");
        }
    }

    #[test]
    fn all_steps_report_every_hash_exactly_once() {
        let hashes = sample(200, 3);
        let mi = MultiIndex::build(&hashes);
        let mut count = vec![0; hashes.len()];
        for step in 0..mi.step_count() + 3 {
            mi.step(&hashes, 12345, step, 64, |p, _| count[p] += 1);
        }
        assert!(count.iter().all(|&c| c == 1));
    }
}
