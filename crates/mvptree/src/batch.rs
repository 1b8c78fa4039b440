//! Batches of searches on a [`Snapshot`], split over threads, with array-shaped answers: the
//! layout FAISS users know (`range_search`'s CSR rows, `search`'s `n × k` matrices), built
//! without a per-answer allocation.
//!
//! Answers are the same as one search at a time, whatever the thread count: each query's
//! rows are sorted by distance, then id, and queries keep their order.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::answer::{Match, MatchSorter, PairRun};
use crate::hamming::Code;
use crate::plan::Plan;
use crate::search::Snapshot;
use crate::threads::for_each_on_threads;
use crate::{Error, Result};

/// Range answers in CSR layout: query `i`'s rows are `ids[lims[i]..lims[i + 1]]` with their
/// `distances`. Invariant: `lims` has one more entry than there are queries, starts at 0, never
/// decreases, and ends at `ids.len() == distances.len()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeRows {
    pub lims: Vec<u64>,
    pub ids: Vec<u64>,
    pub distances: Vec<u32>,
}

impl RangeRows {
    /// The rows of no query yet: `lims` holds its leading 0.
    fn empty() -> Self {
        RangeRows {
            lims: vec![0],
            ..RangeRows::default()
        }
    }

    pub fn queries(&self) -> usize {
        self.lims.len().saturating_sub(1)
    }

    /// The rows of query `i`, as matches.
    pub fn row(&self, i: usize) -> impl Iterator<Item = Match> + '_ {
        let (start, end) = (self.lims[i] as usize, self.lims[i + 1] as usize);
        (start..end).map(|r| Match {
            distance: self.distances[r],
            id: self.ids[r],
        })
    }
}

/// k-nearest answers as `n × k` row-major matrices; rows with fewer than `k` neighbours are
/// padded with [`KnnRows::NO_ID`] and [`KnnRows::NO_DISTANCE`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnnRows {
    pub k: usize,
    pub ids: Vec<i64>,
    pub distances: Vec<i32>,
}

impl KnnRows {
    /// The id in a padded slot: no entry has a negative id (FAISS pads labels with -1 too).
    pub const NO_ID: i64 = -1;
    /// The distance in a padded slot.
    pub const NO_DISTANCE: i32 = -1;
}

/// Self-join answers as three columns: pair `i` is `(a[i], b[i], distances[i])`, `a < b`,
/// sorted by distance, then ids (the order of [`crate::Index::pairs`]). Ids are signed, as
/// [`KnnRows`]'s are: the numpy faces take them as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairRows {
    pub a: Vec<i64>,
    pub b: Vec<i64>,
    pub distances: Vec<i32>,
}

/// Most queries per unit of work handed to a thread: a batched scan reads each hash once for
/// this many queries.
const CHUNK: usize = 64;
/// Fewest queries per unit of work: smaller batches are cut finer so every thread gets some.
const MIN_CHUNK: usize = 8;
/// Below this estimated cost a batch runs on the calling thread: starting threads costs tens
/// of microseconds.
const PARALLEL_MIN_NS: f64 = 200_000.0;

/// Unsorted matches a batch gathers before sorting them into rows: about 8 MiB of them, so
/// that wide answers (r32 on 64-bit codes finds half the index) are sorted while the caches
/// still hold them, instead of after every query of a chunk has added its own.
const GROUP_ROWS: f64 = (1 << 19) as f64;

/// Queries per group of a batch whose queries find `rows_per_query` rows each.
fn group_len(rows_per_query: f64) -> usize {
    ((GROUP_ROWS / rows_per_query.max(1.0)) as usize).clamp(1, CHUNK)
}

/// How many threads a batch of `queries` queries, each estimated at `per_query_ns`, should
/// use out of `threads`.
fn threads_for(threads: usize, queries: usize, per_query_ns: f64) -> usize {
    if per_query_ns * (queries as f64) < PARALLEL_MIN_NS {
        1
    } else {
        threads.clamp(1, queries.div_ceil(MIN_CHUNK).max(1))
    }
}

/// The thread count meaning "every core": what [`std::thread::available_parallelism`] says,
/// 1 where it cannot tell.
pub fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Queries per chunk of a batch of `n` on `threads` threads. When the chunk's queries share
/// a scan (`shared_scan`), chunks are of equal size, as large as [`CHUNK`] allows with the
/// same number for every thread: a chunk of fewer queries pays each block's transposition
/// for fewer of them (at r16 on 1M, 25 queries a chunk cost 10% more a query than 50; 200
/// queries as 64, 64, 64 and 8 left the last 8 to pay a whole scan's transposition).
/// Otherwise one thread takes [`CHUNK`] at a time, and several get about four chunks each,
/// to balance queries of unequal cost.
fn chunk_len(n: usize, threads: usize, shared_scan: bool) -> usize {
    let threads = threads.max(1);
    if shared_scan {
        equal_chunk_len(n, threads, CHUNK)
    } else if threads == 1 {
        CHUNK
    } else {
        n.div_ceil(threads * 4).clamp(MIN_CHUNK, CHUNK)
    }
}

/// Most queries of a k-nearest batch per unit of work: they share one scan, its blocks
/// transposed once for all of them (the transposition costs about four queries' scans), and
/// each keeps only its `k` best. On 1M codes with AVX2, k = 10, 200 queries scanned took
/// 286 µs a query in chunks of 25, 251 in chunks of 50, 223 in one.
const KNN_CHUNK: usize = 512;

/// Queries per chunk when `n` queries are cut into equal chunks of at most `most`, the same
/// number of chunks for every one of `threads` threads.
fn equal_chunk_len(n: usize, threads: usize, most: usize) -> usize {
    // An empty batch still gets a chunk length (of no chunks): never divide by zero.
    let chunks = n.div_ceil(most).next_multiple_of(threads.max(1)).max(1);
    n.div_ceil(chunks).max(MIN_CHUNK)
}

/// Runs `work` on every chunk of `0..n`, `len` queries each, over `threads` threads and
/// returns the chunks' results in order; stops handing out chunks once `stop` is set.
fn chunked<T: Send>(
    n: usize,
    threads: usize,
    len: usize,
    stop: &AtomicBool,
    work: impl Fn(std::ops::Range<usize>) -> T + Sync,
) -> Vec<Option<T>> {
    let chunks = n.div_ceil(len);
    let range = |c: usize| c * len..((c + 1) * len).min(n);
    if threads <= 1 {
        let mut out = Vec::with_capacity(chunks);
        for c in 0..chunks {
            if stop.load(Ordering::Relaxed) {
                out.push(None);
            } else {
                out.push(Some(work(range(c))));
            }
        }
        return out;
    }
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<T>> = (0..chunks).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let c = next.fetch_add(1, Ordering::Relaxed);
                        if c >= chunks || stop.load(Ordering::Relaxed) {
                            return done;
                        }
                        done.push((c, work(range(c))));
                    }
                })
            })
            .collect();
        for handle in handles {
            // A panic in a worker is a bug: re-raise it on the calling thread.
            let done = handle
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            for (c, result) in done {
                slots[c] = Some(result);
            }
        }
    });
    slots
}

/// Rows a query of a group is expected to find for its rows to go straight into a vector of
/// its own ([`Gathered::gather_by_query`]) rather than be tagged and grouped afterwards
/// ([`Gathered::gather`]). Grouping writes and reads every row twice more: at r24 on 1M codes
/// (30,000 rows a query) batches took 1,280 µs a query that way and 820 with a vector per
/// query. For answers of a row or two a vector per query costs an allocation each: batches
/// of 4,096 queries at r0 took 0.082-0.101 µs a query that way against 0.068-0.072 grouped.
const BY_QUERY_ROWS: f64 = 256.0;

/// The unsorted rows of one group of a batch's queries, reused from group to group: either a
/// slice per query, `rows[starts[i]..starts[i + 1]]`, or a vector per query, `by_query[i]`
/// (cleared, its capacity kept), as the last gather left them.
#[derive(Default)]
struct Gathered {
    /// Rows as the search hands them over, tagged with their query.
    tagged: Vec<(u32, Match)>,
    rows: Vec<Match>,
    starts: Vec<usize>,
    by_query: Vec<Vec<Match>>,
    in_by_query: bool,
}

impl Gathered {
    /// Runs `search` (a search appending each row with its query's index, false when it
    /// stopped at the row cap) for `queries` queries and groups its rows by query with a
    /// counting sort: no vector per query. The rows found, None at the cap.
    fn gather(
        &mut self,
        queries: usize,
        search: impl FnOnce(&mut Vec<(u32, Match)>) -> bool,
    ) -> Option<usize> {
        assert!(
            queries <= u32::MAX as usize,
            "too many queries in one group"
        );
        self.in_by_query = false;
        let tagged = &mut self.tagged;
        tagged.clear();
        if !search(tagged) {
            return None;
        }
        self.starts.clear();
        self.starts.resize(queries + 1, 0);
        for &(qi, _) in tagged.iter() {
            self.starts[qi as usize + 1] += 1;
        }
        // Summed in a register: summed in place, each start waited for the store before it.
        let mut total = 0;
        for start in self.starts.iter_mut() {
            total += *start;
            *start = total;
        }
        self.rows.clear();
        self.rows.resize(tagged.len(), Match { distance: 0, id: 0 });
        // Each query's next free slot: its start, moved along as rows land.
        let mut next = self.starts[..queries].to_vec();
        for &(qi, m) in tagged.iter() {
            self.rows[next[qi as usize]] = m;
            next[qi as usize] += 1;
        }
        Some(self.rows.len())
    }

    /// [`Gathered::gather`] with `search` handing each row straight to its query's vector.
    fn gather_by_query(
        &mut self,
        queries: usize,
        search: impl FnOnce(&mut [Vec<Match>]) -> bool,
    ) -> Option<usize> {
        if self.by_query.len() < queries {
            self.by_query.resize_with(queries, Vec::new);
        }
        let by_query = &mut self.by_query[..queries];
        by_query.iter_mut().for_each(Vec::clear);
        self.in_by_query = true;
        if !search(by_query) {
            return None;
        }
        Some(by_query.iter().map(Vec::len).sum())
    }

    /// Takes one finished answer per query (None: a query stopped at the row cap).
    fn set_answers(&mut self, answers: Option<Vec<Vec<Match>>>) -> Option<usize> {
        let answers = answers?;
        self.in_by_query = false;
        self.rows.clear();
        self.starts.clear();
        self.starts.push(0);
        for answer in answers {
            self.rows.extend(answer);
            self.starts.push(self.rows.len());
        }
        Some(self.rows.len())
    }

    fn answer(&mut self, query: usize) -> &mut [Match] {
        if self.in_by_query {
            &mut self.by_query[query]
        } else {
            &mut self.rows[self.starts[query]..self.starts[query + 1]]
        }
    }
}

/// What a thread filling range rows reuses from group to group.
#[derive(Default)]
struct RowWork {
    sorter: MatchSorter,
    gathered: Gathered,
}

/// Rows below which [`join_parts`] copies on the calling thread: starting a thread costs
/// tens of microseconds, copying a row a few nanoseconds.
const PARALLEL_COPY_ROWS: usize = 1 << 16;

/// The rows of `parts` (each starting at its own row 0, in query order) as one answer for
/// `queries` queries and `rows` rows, copied on up to `threads` threads: the copy writes
/// memory that faults its pages in afresh, which costs as much as the copy itself.
fn join_parts(parts: Vec<RangeRows>, queries: usize, rows: usize, threads: usize) -> RangeRows {
    let mut out = RangeRows {
        lims: Vec::with_capacity(queries + 1),
        // Zeroed by the allocator's fresh pages, not written: each copy writes its range.
        ids: vec![0; rows],
        distances: vec![0; rows],
    };
    out.lims.push(0);
    for part in &parts {
        let base = *out.lims.last().expect("lims starts at 0");
        out.lims
            .extend(part.lims[1..].iter().map(|&end| base + end));
    }
    assert_eq!(
        out.lims.last().copied(),
        Some(rows as u64),
        "parts hold every row"
    );
    let threads = if rows < PARALLEL_COPY_ROWS {
        1
    } else {
        threads.max(1)
    };
    // Contiguous runs of parts of about equal rows, one a thread, with their output ranges.
    let mut jobs = Vec::with_capacity(threads);
    let (mut ids, mut distances) = (&mut out.ids[..], &mut out.distances[..]);
    let mut first = 0;
    let mut copied = 0;
    for t in 1..=threads {
        let goal = rows * t / threads;
        let mut last = first;
        let mut run_rows = 0;
        while last < parts.len() && (copied + run_rows < goal || t == threads) {
            run_rows += parts[last].ids.len();
            last += 1;
        }
        let (run_ids, rest) = std::mem::take(&mut ids).split_at_mut(run_rows);
        ids = rest;
        let (run_distances, rest) = std::mem::take(&mut distances).split_at_mut(run_rows);
        distances = rest;
        jobs.push((&parts[first..last], run_ids, run_distances));
        copied += run_rows;
        first = last;
    }
    let copy = |(run, mut ids, mut distances): (&[RangeRows], &mut [u64], &mut [u32])| {
        for part in run {
            let (head, rest) = ids.split_at_mut(part.ids.len());
            head.copy_from_slice(&part.ids);
            ids = rest;
            let (head, rest) = distances.split_at_mut(part.distances.len());
            head.copy_from_slice(&part.distances);
            distances = rest;
        }
    };
    if jobs.len() == 1 {
        jobs.into_iter().for_each(copy);
    } else {
        std::thread::scope(|scope| {
            for job in jobs {
                scope.spawn(move || copy(job));
            }
        });
    }
    out
}

impl<C: Code> Snapshot<C> {
    /// Range queries for every hash (within `radius`, the first `limit` rows of each if
    /// given), as CSR rows, on up to `threads` threads. More than `max_rows` rows together
    /// are refused with [`Error::TooManyRows`]; each thread stops at the cap, so memory stays
    /// within `threads × max_rows` rows while the batch runs.
    pub fn query_rows(
        &self,
        hashes: &[C],
        radius: u32,
        limit: Option<usize>,
        max_rows: usize,
        threads: usize,
    ) -> Result<RangeRows> {
        let radius = radius.min(C::BITS);
        let rows = AtomicUsize::new(0);
        let overflow = AtomicBool::new(false);
        let threads = threads_for(threads, hashes.len(), self.range_cost_ns(radius));
        if limit.is_none() && self.answers_wide(radius) {
            return self
                .wide_rows(hashes, radius, max_rows, threads)
                .ok_or(Error::TooManyRows(max_rows));
        }
        let shared_scan = limit.is_none() && self.batch_scans(radius, hashes.len());
        // Appends the rows of `queries` to `part`; false once the batch passed its cap.
        // `later` queries will follow into the same part.
        let fill = |queries: &[C], later: usize, part: &mut RangeRows, work: &mut RowWork| {
            let after = |group_end: usize| queries.len() - group_end;
            // Queries gathered before their rows are sorted away: as many as keep about
            // `GROUP_ROWS` unsorted matches in flight, first by what uniform codes would
            // give, then by what these queries found so far.
            let mut rows_per_query = self.expected_rows(radius);
            let mut group = group_len(rows_per_query);
            let mut start = 0;
            while start < queries.len() {
                let end = (start + group).min(queries.len());
                let queries = &queries[start..end];
                let budget = max_rows.saturating_sub(rows.load(Ordering::Relaxed));
                let gathered = &mut work.gathered;
                let found = match limit {
                    Some(limit) => {
                        let answers = queries
                            .iter()
                            .map(|&q| self.query_bounded(q, radius, Some(limit), budget))
                            .collect::<Result<Vec<_>>>();
                        gathered.set_answers(answers.ok())
                    }
                    None if rows_per_query >= BY_QUERY_ROWS || queries.len() == 1 => {
                        let store = &self.store;
                        gathered.gather_by_query(queries.len(), |rows| {
                            let mut sink = |qi: usize, m| rows[qi].push(m);
                            store.range_many_into(queries, radius, Plan::Auto, budget, &mut sink)
                        })
                    }
                    None => {
                        let store = &self.store;
                        gathered.gather(queries.len(), |tagged| {
                            let mut sink = |qi: usize, m| tagged.push((qi as u32, m));
                            store.range_many_into(queries, radius, Plan::Auto, budget, &mut sink)
                        })
                    }
                };
                let Some(found) = found else {
                    overflow.store(true, Ordering::Relaxed);
                    return false;
                };
                let rows_now = rows.fetch_add(found, Ordering::Relaxed) + found;
                if rows_now > max_rows {
                    overflow.store(true, Ordering::Relaxed);
                    return false;
                }
                // Room for every row still to come at this group's rate, so the columns
                // are not grown (and copied) again and again; within the cap, and only
                // memory that is written is ever faulted in.
                let rate = found as f64 / queries.len() as f64;
                let to_come = (rate * (later + after(end)) as f64) as usize;
                let room = found + to_come.min(max_rows - rows_now);
                part.lims.reserve(queries.len());
                part.ids.reserve(room);
                part.distances.reserve(room);
                for qi in 0..queries.len() {
                    let answer = gathered.answer(qi);
                    work.sorter
                        .sort_into_columns(answer, &mut part.ids, &mut part.distances);
                    part.lims.push(part.ids.len() as u64);
                }
                rows_per_query = rate;
                group = group_len(rows_per_query);
                start = end;
            }
            true
        };
        if threads <= 1 {
            // Every chunk's rows appended to one answer, reserved ahead at the rate found so
            // far: parts joined at the end would be copied once more, into memory that
            // faults its pages in afresh (r24 on 1M, one thread, a batch of 200 queries:
            // 1,160 -> 950 µs a query; of 65 queries, a chunk and one more: 1,510 -> 810).
            let mut out = RangeRows::empty();
            let mut work = RowWork::default();
            let len = chunk_len(hashes.len(), 1, shared_scan);
            for (c, queries) in hashes.chunks(len).enumerate() {
                let later = hashes.len() - (c * len + queries.len());
                if !fill(queries, later, &mut out, &mut work) {
                    return Err(Error::TooManyRows(max_rows));
                }
            }
            return Ok(out);
        }
        let len = chunk_len(hashes.len(), threads, shared_scan);
        let chunks = chunked(hashes.len(), threads, len, &overflow, |queries| {
            let mut part = RangeRows::empty();
            fill(&hashes[queries], 0, &mut part, &mut RowWork::default()).then_some(part)
        });
        if overflow.load(Ordering::Relaxed) {
            return Err(Error::TooManyRows(max_rows));
        }
        let mut parts: Vec<RangeRows> = chunks.into_iter().flatten().flatten().collect();
        if parts.len() == 1 {
            return Ok(parts.pop().expect("one part"));
        }
        Ok(join_parts(
            parts,
            hashes.len(),
            rows.load(Ordering::Relaxed),
            threads,
        ))
    }

    /// [`Snapshot::pairs_on_threads`] as three columns: the threads' runs are merged
    /// straight into them, a distance at a time on every thread, with no row list between.
    pub fn pairs_rows(&self, radius: u32, max_rows: usize, threads: usize) -> Result<PairRows> {
        let runs = self
            .store
            .pairs_runs(radius.min(C::BITS), Plan::Auto, max_rows, threads)
            .ok_or(Error::TooManyRows(max_rows))?;
        Ok(merge_into_columns(&runs, threads))
    }

    /// The `k` nearest indexed entries of every hash, as `n × k` matrices (padded where the
    /// index holds fewer than `k`), on up to `threads` threads. Refused before any work when
    /// the matrices would hold more than `max_rows` cells.
    pub fn knn_rows(
        &self,
        hashes: &[C],
        k: usize,
        max_rows: usize,
        threads: usize,
    ) -> Result<KnnRows> {
        if k.saturating_mul(hashes.len()) > max_rows {
            return Err(Error::TooManyRows(max_rows));
        }
        let never = AtomicBool::new(false);
        let threads = threads_for(threads, hashes.len(), self.knn_cost_ns(k));
        // Queries the probe does not finish share a scan.
        let len = equal_chunk_len(hashes.len(), threads, KNN_CHUNK);
        let chunks = chunked(hashes.len(), threads, len, &never, |range| {
            self.knn_many(&hashes[range], k)
        });
        let mut out = KnnRows {
            k,
            ids: Vec::with_capacity(k * hashes.len()),
            distances: Vec::with_capacity(k * hashes.len()),
        };
        for answer in chunks.into_iter().flatten().flatten() {
            out.ids.extend(answer.iter().map(|m| m.id as i64));
            out.distances
                .extend(answer.iter().map(|m| m.distance as i32));
            for _ in answer.len()..k {
                out.ids.push(KnnRows::NO_ID);
                out.distances.push(KnnRows::NO_DISTANCE);
            }
        }
        Ok(out)
    }
}

/// The rows of `runs` (each sorted by distance, then ids) as one sorted [`PairRows`]. Each
/// distance's rows go to their own range of the columns, so the distances are merged on up
/// to `threads` threads at once.
fn merge_into_columns(runs: &[PairRun], threads: usize) -> PairRows {
    let distances = runs
        .iter()
        .filter(|run| !run.is_empty())
        .map(|run| run.get(run.len() - 1).distance as usize + 1)
        .max()
        .unwrap_or(0);
    // `starts[r][d]`: run `r`'s first row at distance `d` or more.
    let starts: Vec<Vec<usize>> = runs
        .iter()
        .map(|run| {
            (0..=distances)
                .map(|d| run.distance_start(d as u32))
                .collect()
        })
        .collect();
    let total = runs.iter().map(PairRun::len).sum();
    let mut rows = PairRows {
        a: vec![0; total],
        b: vec![0; total],
        distances: vec![0; total],
    };
    let mut work = Vec::with_capacity(distances);
    let (mut a, mut b, mut ds) = (&mut rows.a[..], &mut rows.b[..], &mut rows.distances[..]);
    for d in 0..distances {
        // Each run's rows at distance `d`, as (run, next row, end).
        let sources: Vec<(&PairRun, usize, usize)> = runs
            .iter()
            .zip(&starts)
            .map(|(run, starts)| (run, starts[d], starts[d + 1]))
            .filter(|&(_, start, end)| start < end)
            .collect();
        let len = sources.iter().map(|&(_, start, end)| end - start).sum();
        let (here_a, rest_a) = std::mem::take(&mut a).split_at_mut(len);
        let (here_b, rest_b) = std::mem::take(&mut b).split_at_mut(len);
        let (here_d, rest_d) = std::mem::take(&mut ds).split_at_mut(len);
        (a, b, ds) = (rest_a, rest_b, rest_d);
        here_d.fill(d as i32);
        work.push((sources, here_a, here_b));
    }
    for_each_on_threads(threads, work, |(mut sources, a, b), _: &mut ()| {
        if let [(run, start, _)] = sources[..] {
            for (i, (a, b)) in a.iter_mut().zip(b.iter_mut()).enumerate() {
                let p = run.get(start + i);
                (*a, *b) = (p.a as i64, p.b as i64);
            }
            return;
        }
        // A pick among the runs' heads per row: there are as many runs as threads.
        for (a, b) in a.iter_mut().zip(b.iter_mut()) {
            let (r, p) = sources
                .iter()
                .enumerate()
                .filter(|(_, &(_, next, end))| next < end)
                .map(|(r, &(run, next, _))| (r, run.get(next)))
                .min_by_key(|(_, p)| (p.a, p.b))
                .expect("as many rows in the runs as in the columns");
            (*a, *b) = (p.a as i64, p.b as i64);
            sources[r].1 += 1;
        }
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_of_a_shared_scan_are_large_and_even_across_threads() {
        for threads in 1..=8 {
            for n in 1..3000 {
                let len = chunk_len(n, threads, true);
                assert!((1..=CHUNK).contains(&len), "n {n} t {threads}: {len}");
                let chunks = n.div_ceil(len);
                if threads > 1 && n >= threads * MIN_CHUNK {
                    // Every thread gets as many chunks.
                    assert_eq!(chunks % threads, 0, "n {n} t {threads}: chunks of {len}");
                    // No smaller than the even split into chunks of at most CHUNK.
                    assert!(len >= n.div_ceil(n.div_ceil(CHUNK).next_multiple_of(threads)));
                }
                let other = chunk_len(n, threads, false);
                assert!((MIN_CHUNK..=CHUNK).contains(&other) || threads == 1 && other == CHUNK);
            }
        }
    }
}
