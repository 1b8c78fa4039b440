//! Bit counting over contiguous hash slices: the floor every search plan stands on.

/// Number of differing bits between two hashes.
#[inline(always)]
pub fn distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// Calls `hit(position, distance)` for every hash in `hashes` within `radius` of `query`,
/// in position order.
///
/// The inner loop is branch-free: each block of 64 hashes is reduced to a bit mask of hits,
/// so the compiler can vectorise the distance computation and a miss costs no branch.
#[inline]
pub fn scan(hashes: &[u64], query: u64, radius: u32, mut hit: impl FnMut(usize, u32)) {
    let mut blocks = hashes.chunks_exact(64);
    let mut base = 0;
    for block in &mut blocks {
        let mut mask = 0u64;
        for (i, &h) in block.iter().enumerate() {
            mask |= u64::from(distance(h, query) <= radius) << i;
        }
        while mask != 0 {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            hit(base + i, distance(block[i], query));
        }
        base += 64;
    }
    for (i, &h) in blocks.remainder().iter().enumerate() {
        let d = distance(h, query);
        if d <= radius {
            hit(base + i, d);
        }
    }
}

/// Like [`scan`] for many queries at once: walks `hashes` in cache-sized blocks and runs every
/// query over a block before moving on, so memory is read once per batch instead of once per
/// query. Calls `hit(query_index, position, distance)`.
pub fn scan_many(
    hashes: &[u64],
    queries: &[u64],
    radius: u32,
    mut hit: impl FnMut(usize, usize, u32),
) {
    // 2,048 hashes are 16 KiB: half a typical L1 data cache.
    const BLOCK: usize = 2048;
    for (b, block) in hashes.chunks(BLOCK).enumerate() {
        for (qi, &q) in queries.iter().enumerate() {
            scan(block, q, radius, |i, d| hit(qi, b * BLOCK + i, d));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_exactly_the_hashes_within_radius() {
        let hashes: Vec<u64> = (0..300u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let q = hashes[17] ^ 0b1011;
        for radius in [0, 3, 20, 32, 64] {
            let mut got = Vec::new();
            scan(&hashes, q, radius, |i, d| got.push((i, d)));
            let want: Vec<(usize, u32)> = hashes
                .iter()
                .enumerate()
                .map(|(i, &h)| (i, distance(h, q)))
                .filter(|&(_, d)| d <= radius)
                .collect();
            assert_eq!(got, want, "radius {radius}");
        }
    }

    #[test]
    fn scan_many_agrees_with_scan() {
        let hashes: Vec<u64> = (0..5000u64)
            .map(|i| i.wrapping_mul(0xD1B5_4A32_D192_ED03))
            .collect();
        let queries = [hashes[3], hashes[4999] ^ 0xFF, 0, u64::MAX];
        let mut got = vec![Vec::new(); queries.len()];
        scan_many(&hashes, &queries, 24, |q, i, d| got[q].push((i, d)));
        for (qi, &q) in queries.iter().enumerate() {
            let mut want = Vec::new();
            scan(&hashes, q, 24, |i, d| want.push((i, d)));
            assert_eq!(got[qi], want);
        }
    }
}
