//! The multi-vantage-point tree (Bozkaya & Ozsoyoglu, SIGMOD 1997), built in one batch over a
//! segment's hashes.
//!
//! An internal node has two vantage points: its hashes are split into [`FANOUT`] groups by
//! distance to the first, and each group into [`FANOUT`] by distance to the second, giving up
//! to `FANOUT²` children. Each child records the distance intervals `[lo, hi]` of its hashes to
//! both of its parent's vantage points; a query at distance `d` from a vantage point can skip a
//! child when `d + r < lo` or `d > hi + r` (triangle inequality).
//!
//! A leaf holds at most [`LEAF_CAPACITY`] hashes, ordered by their precomputed distance to the
//! leaf's vantage point, so a query scans only the window of distances within `r` of its own.
//! (The paper also keeps a second leaf vantage point and `p` path distances per entry; in 64-bit
//! Hamming space one popcount costs less than checking them, so they are not stored.)
//!
//! Construction is deterministic: vantage points are chosen by a fixed rule (the hash farthest
//! from the first one, then the one farthest from that) and every sort is stable.
//!
//! Invariant: leaves cover the positions `0..len` as disjoint contiguous ranges, and the tree is
//! built together with the permutation that lays the segment out in that order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::hamming::scan;
use crate::hamming::Code;

pub const FANOUT: usize = 3;
pub const LEAF_CAPACITY: usize = 64;

#[derive(Debug, Clone)]
struct Node<C> {
    /// Distance intervals of this node's hashes to its parent's two vantage points.
    lo: [u16; 2],
    hi: [u16; 2],
    vantage: [C; 2],
    /// Internal node: `first..first + count` index `nodes`. Leaf: positions `first..first + count`.
    first: u32,
    count: u32,
    leaf: bool,
}

#[derive(Debug, Clone)]
pub struct MvpTree<C: Code> {
    nodes: Vec<Node<C>>,
    /// Per position: distance to its leaf's vantage point (ascending inside each leaf).
    leaf_distance: Vec<C::Distance>,
    depth: usize,
}

impl<C: Code> MvpTree<C> {
    /// Builds the tree over `hashes` and returns it with the layout order: position `p` of the
    /// segment holds input `order[p]`.
    pub fn build(hashes: &[C]) -> (MvpTree<C>, Vec<u32>) {
        let mut order: Vec<u32> = (0..hashes.len() as u32).collect();
        let mut tree = MvpTree {
            nodes: Vec::new(),
            leaf_distance: vec![C::Distance::default(); hashes.len()],
            depth: 0,
        };
        let mut scratch = Scratch::default();
        tree.nodes.push(Node {
            lo: [0, 0],
            hi: [C::BITS as u16; 2],
            vantage: [C::default(); 2],
            first: 0,
            count: 0,
            leaf: true,
        });
        if !hashes.is_empty() {
            tree.fill(0, hashes, &mut order, 0, 1, &mut scratch);
        }
        (tree, order)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    pub fn memory_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node<C>>()
            + self.leaf_distance.capacity() * std::mem::size_of::<C::Distance>()
    }

    /// Makes node `at` cover `order` (positions `start..start + order.len()`).
    fn fill(
        &mut self,
        at: usize,
        hashes: &[C],
        order: &mut [u32],
        start: usize,
        depth: usize,
        scratch: &mut Scratch,
    ) {
        self.depth = self.depth.max(depth);
        let n = order.len();
        // First vantage point: the hash farthest from the first one.
        let first = hashes[order[0] as usize];
        let vp1 = order
            .iter()
            .map(|&i| hashes[i as usize])
            .max_by_key(|&h| (h.distance(first), Reverse(h)))
            .unwrap_or(first);
        scratch.sort_by_distance(order, hashes, vp1);
        if n <= LEAF_CAPACITY {
            for (p, &i) in order.iter().enumerate() {
                self.leaf_distance[start + p] = C::narrow(hashes[i as usize].distance(vp1));
            }
            let node = &mut self.nodes[at];
            node.vantage = [vp1, vp1];
            node.first = start as u32;
            node.count = n as u32;
            node.leaf = true;
            return;
        }
        // Second vantage point: the hash farthest from the first (the last after the sort).
        let vp2 = hashes[order[n - 1] as usize];
        let mut groups = Vec::with_capacity(FANOUT * FANOUT);
        for outer in split(0, n, FANOUT) {
            scratch.sort_by_distance(&mut order[outer.clone()], hashes, vp2);
            for inner in split(outer.start, outer.end, FANOUT) {
                if !inner.is_empty() {
                    groups.push(inner);
                }
            }
        }
        let first_child = self.nodes.len();
        for g in &groups {
            let (mut lo, mut hi) = ([u16::MAX; 2], [0u16; 2]);
            for &i in &order[g.clone()] {
                let h = hashes[i as usize];
                for (k, vp) in [vp1, vp2].into_iter().enumerate() {
                    let d = h.distance(vp) as u16;
                    lo[k] = lo[k].min(d);
                    hi[k] = hi[k].max(d);
                }
            }
            self.nodes.push(Node {
                lo,
                hi,
                vantage: [C::default(); 2],
                first: 0,
                count: 0,
                leaf: true,
            });
        }
        let node = &mut self.nodes[at];
        node.vantage = [vp1, vp2];
        node.first = first_child as u32;
        node.count = groups.len() as u32;
        node.leaf = false;
        for (c, g) in groups.into_iter().enumerate() {
            let child_start = start + g.start;
            self.fill(
                first_child + c,
                hashes,
                &mut order[g],
                child_start,
                depth + 1,
                scratch,
            );
        }
    }

    /// Reports `(position, distance)` for every hash within `radius`, each once.
    pub fn range(&self, hashes: &[C], query: C, radius: u32, mut hit: impl FnMut(usize, u32)) {
        if hashes.is_empty() {
            return;
        }
        let mut stack = vec![0usize];
        while let Some(at) = stack.pop() {
            let node = &self.nodes[at];
            if node.leaf {
                let (a, b) = self.leaf_window(node, query, radius);
                scan(&hashes[a..b], query, radius, |p, d| hit(a + p, d));
                continue;
            }
            let d = node.vantage.map(|vp| vp.distance(query));
            for c in node.first..node.first + node.count {
                if lower_bound(&self.nodes[c as usize], d) <= radius {
                    stack.push(c as usize);
                }
            }
        }
    }

    /// The positions of a leaf whose distance to its vantage point is within `radius` of the
    /// query's.
    #[inline]
    fn leaf_window(&self, leaf: &Node<C>, query: C, radius: u32) -> (usize, usize) {
        let dq = leaf.vantage[0].distance(query);
        let (start, end) = (leaf.first as usize, (leaf.first + leaf.count) as usize);
        let ds = &self.leaf_distance[start..end];
        let a = ds.partition_point(|&d| Into::<u32>::into(d) + radius < dq);
        let b = ds.partition_point(|&d| Into::<u32>::into(d) <= dq + radius);
        (start + a, start + b.max(a))
    }

    /// Visits leaves best-first (smallest lower bound first), handing `visitor` each leaf's
    /// window for its current bound, and stops when no leaf can hold anything within it.
    pub fn best_first(&self, hashes: &[C], query: C, visitor: &mut impl LeafVisitor) {
        if hashes.is_empty() {
            return;
        }
        let mut heap = BinaryHeap::new();
        heap.push(Reverse((0u32, 0usize)));
        while let Some(Reverse((lb, at))) = heap.pop() {
            let limit = visitor.bound();
            if lb > limit {
                break;
            }
            let node = &self.nodes[at];
            if node.leaf {
                let (a, b) = self.leaf_window(node, query, limit);
                visitor.visit(a, b);
                continue;
            }
            let d = node.vantage.map(|vp| vp.distance(query));
            for c in node.first..node.first + node.count {
                let lb = lower_bound(&self.nodes[c as usize], d);
                if lb <= limit {
                    heap.push(Reverse((lb, c as usize)));
                }
            }
        }
    }
}

/// What [`MvpTree::best_first`] reports leaves to.
pub trait LeafVisitor {
    /// The largest distance still of interest.
    fn bound(&self) -> u32;
    /// Positions `start..end` may hold hashes within the bound.
    fn visit(&mut self, start: usize, end: usize);
}

/// Smallest distance from the query to any hash of `child`, given the query's distances `d` to
/// the parent's vantage points (triangle inequality on each).
#[inline(always)]
fn lower_bound<C>(child: &Node<C>, d: [u32; 2]) -> u32 {
    let gap = |k: usize| {
        let (lo, hi) = (u32::from(child.lo[k]), u32::from(child.hi[k]));
        lo.saturating_sub(d[k]).max(d[k].saturating_sub(hi))
    };
    gap(0).max(gap(1))
}

/// `parts` contiguous near-equal ranges covering `start..end`.
fn split(start: usize, end: usize, parts: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let n = end - start;
    (0..parts).map(move |k| start + n * k / parts..start + n * (k + 1) / parts)
}

#[derive(Default)]
struct Scratch {
    buf: Vec<u32>,
}

impl Scratch {
    /// Stable counting sort of `order` by distance of its hashes to `vp`.
    fn sort_by_distance<C: Code>(&mut self, order: &mut [u32], hashes: &[C], vp: C) {
        let mut counts = [0usize; 258];
        let counts = &mut counts[..C::BITS as usize + 2];
        for &i in order.iter() {
            counts[hashes[i as usize].distance(vp) as usize + 1] += 1;
        }
        for k in 1..counts.len() {
            counts[k] += counts[k - 1];
        }
        self.buf.clear();
        self.buf.resize(order.len(), 0);
        for &i in order.iter() {
            let d = hashes[i as usize].distance(vp) as usize;
            self.buf[counts[d]] = i;
            counts[d] += 1;
        }
        order.copy_from_slice(&self.buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hamming::distance;

    fn laid_out(hashes: &[u64]) -> (MvpTree<u64>, Vec<u64>) {
        let (tree, order) = MvpTree::build(hashes);
        let laid: Vec<u64> = order.iter().map(|&i| hashes[i as usize]).collect();
        (tree, laid)
    }

    #[test]
    fn order_is_a_permutation_and_range_is_exact() {
        let mut hashes: Vec<u64> = (0..2000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17))
            .collect();
        let near: Vec<u64> = (0..300).map(|i| hashes[i] ^ (1 << (i % 64))).collect();
        hashes.extend(near);
        hashes.extend(std::iter::repeat_n(42, 200)); // many equal hashes
        let (tree, laid) = laid_out(&hashes);
        let mut sorted = laid.clone();
        sorted.sort_unstable();
        let mut want_sorted = hashes.clone();
        want_sorted.sort_unstable();
        assert_eq!(sorted, want_sorted);
        assert!(tree.depth() > 1);
        for &q in &[hashes[5], hashes[2100] ^ 3, 42, 0, u64::MAX] {
            for radius in [0, 1, 3, 8, 16, 32, 64] {
                let mut got = Vec::new();
                tree.range(&laid, q, radius, |p, d| got.push((p, d)));
                got.sort_unstable();
                let want: Vec<(usize, u32)> = laid
                    .iter()
                    .enumerate()
                    .map(|(p, &h)| (p, distance(h, q)))
                    .filter(|&(_, d)| d <= radius)
                    .collect();
                assert_eq!(got, want, "radius {radius}");
            }
        }
    }

    #[test]
    fn construction_is_deterministic() {
        let hashes: Vec<u64> = (0..1000u64)
            .map(|i| i.wrapping_mul(0xD1B5_4A32_D192_ED03))
            .collect();
        let (a, oa) = MvpTree::build(&hashes);
        let (b, ob) = MvpTree::build(&hashes);
        assert_eq!(oa, ob);
        assert_eq!(a.leaf_distance, b.leaf_distance);
        assert_eq!(a.node_count(), b.node_count());
    }
}
