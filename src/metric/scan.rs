//! Exact-scan kernels: Hamming distances of one query against many rows,
//! keeping only rows at or under a threshold.
//!
//! Rows are stored word-major ("columns"): column `w` holds word `w` (bytes
//! `8w..8w+8`, little-endian) of every row of one length group, so a query
//! that compares `m` words reads exactly `m` columns — the least memory
//! traffic an exact scan can have. A kernel XORs `m` columns with the query
//! words, popcounts, sums per row and reports the rows whose sum is at most
//! `threshold`; the caller keeps the top-k and tightens the threshold between
//! blocks. Kernels are chosen at run time from what the CPU has.

/// One exact-scan kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// AVX-512F + VPOPCNTDQ: 8 rows per instruction.
    Avx512,
    /// AVX2: 4 rows per instruction, nibble-table popcount.
    Avx2,
    /// Scalar with the POPCNT instruction.
    Popcnt,
    /// Scalar, any CPU.
    Portable,
}

impl Kernel {
    /// The fastest kernel this CPU runs (`IVDB_KERNEL=avx512|avx2|popcnt|portable`
    /// overrides, for benchmarks; an unavailable choice falls back).
    pub fn detect() -> Kernel {
        let available = Kernel::available();
        if let Ok(name) = std::env::var("IVDB_KERNEL") {
            if let Some(k) = available.iter().find(|k| k.name() == name) {
                return *k;
            }
        }
        available[0]
    }

    /// Every kernel this CPU runs, fastest first.
    pub fn available() -> Vec<Kernel> {
        let mut out = Vec::with_capacity(4);
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            {
                out.push(Kernel::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                out.push(Kernel::Avx2);
            }
            if std::arch::is_x86_feature_detected!("popcnt") {
                out.push(Kernel::Popcnt);
            }
        }
        out.push(Kernel::Portable);
        out
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Avx512 => "avx512",
            Kernel::Avx2 => "avx2",
            Kernel::Popcnt => "popcnt",
            Kernel::Portable => "portable",
        }
    }

    /// For rows `0..n` of `cols` (each column `n` long, `1..=4` columns),
    /// push `(row, hamming)` for every row whose Hamming distance to
    /// `query[..cols.len()]` is at most `threshold`.
    pub fn filter(
        self,
        cols: &[&[u64]],
        query: &[u64; 4],
        threshold: u32,
        out: &mut Vec<(u32, u32)>,
    ) {
        let m = cols.len();
        assert!((1..=4).contains(&m), "1 to 4 columns");
        let n = cols[0].len();
        assert!(cols.iter().all(|c| c.len() == n), "columns of one length");
        assert!(n <= u32::MAX as usize, "at most 2^32 rows per group");
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `available()` only lists Avx512 when the CPU has
            // AVX-512F and VPOPCNTDQ; column lengths were checked above.
            Kernel::Avx512 if has_avx512() => unsafe {
                x86::filter_avx512(cols, query, threshold, out)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, for AVX2.
            Kernel::Avx2 if std::arch::is_x86_feature_detected!("avx2") => unsafe {
                x86::filter_avx2(cols, query, threshold, out)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, for POPCNT.
            Kernel::Popcnt if std::arch::is_x86_feature_detected!("popcnt") => unsafe {
                x86::filter_popcnt(cols, query, threshold, 0, out)
            },
            _ => filter_portable(cols, query, threshold, 0, out),
        }
    }
}

impl Kernel {
    /// [`Kernel::filter`] for up to [`MANY`] queries in one pass over the
    /// rows. With AVX-512 each 8 rows of a column are loaded once and
    /// compared with every query while in a register, and a row's later
    /// words are read only while some query can still reach it: measured
    /// on 1M rows out of cache, 8 queries per pass cost 0.2–0.6 ns per row
    /// and query against 0.5–0.9 for one query per pass (in cache, about
    /// the same). Other kernels run one pass per query. Query `j` compares
    /// `queries[j][..cols.len()]` against `thresholds[j]` and appends to
    /// `outs[j]`.
    pub fn filter_many(
        self,
        cols: &[&[u64]],
        queries: &[[u64; 4]],
        thresholds: &[u32],
        outs: &mut [Vec<(u32, u32)>],
    ) {
        let m = cols.len();
        assert!((1..=4).contains(&m), "1 to 4 columns");
        let n = cols[0].len();
        assert!(cols.iter().all(|c| c.len() == n), "columns of one length");
        assert!(n <= u32::MAX as usize, "at most 2^32 rows per group");
        let q = queries.len();
        assert!(q <= MANY, "at most {MANY} queries per pass");
        assert!(
            thresholds.len() == q && outs.len() == q,
            "one threshold and output per query"
        );
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Avx512 is only listed when the CPU has AVX-512F and
            // VPOPCNTDQ (checked again here); lengths were checked above.
            Kernel::Avx512 if has_avx512() => unsafe {
                match m {
                    1 => x86::many_avx512::<1>(cols, queries, thresholds, outs),
                    2 => x86::many_avx512::<2>(cols, queries, thresholds, outs),
                    3 => x86::many_avx512::<3>(cols, queries, thresholds, outs),
                    _ => x86::many_avx512::<4>(cols, queries, thresholds, outs),
                }
            },
            // The other kernels compare one query at a time: measured here,
            // an AVX2 or scalar pass comparing several queries per load was
            // slower than one pass per query (register pressure).
            _ => {
                for ((query, &threshold), out) in
                    queries.iter().zip(thresholds).zip(outs.iter_mut())
                {
                    self.filter(cols, query, threshold, out);
                }
            }
        }
    }
}

/// Most queries [`Kernel::filter_many`] compares in one pass (their words
/// and thresholds stay in registers).
pub const MANY: usize = 8;

/// Scalar [`Kernel::filter_many`] from row `start` (the AVX-512 tail).
#[inline(always)]
fn many_scalar(
    cols: &[&[u64]],
    queries: &[[u64; 4]],
    thresholds: &[u32],
    start: usize,
    outs: &mut [Vec<(u32, u32)>],
) {
    for ((query, &threshold), out) in queries.iter().zip(thresholds).zip(outs.iter_mut()) {
        filter_scalar(cols, query, threshold, start, out);
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
}

/// Scalar kernel from row `start`: the reference the SIMD kernels are
/// tested against, and their tail loop.
#[inline(always)]
fn filter_scalar(
    cols: &[&[u64]],
    query: &[u64; 4],
    threshold: u32,
    start: usize,
    out: &mut Vec<(u32, u32)>,
) {
    let n = cols[0].len();
    match cols.len() {
        1 => {
            let q0 = query[0];
            for (i, word) in cols[0].iter().enumerate().skip(start) {
                let h = (word ^ q0).count_ones();
                if h <= threshold {
                    out.push((i as u32, h));
                }
            }
        }
        2 => {
            let (c0, c1) = (cols[0], cols[1]);
            for i in start..n {
                let h = (c0[i] ^ query[0]).count_ones() + (c1[i] ^ query[1]).count_ones();
                if h <= threshold {
                    out.push((i as u32, h));
                }
            }
        }
        _ => {
            for i in start..n {
                let h: u32 = cols
                    .iter()
                    .zip(query)
                    .map(|(c, q)| (c[i] ^ q).count_ones())
                    .sum();
                if h <= threshold {
                    out.push((i as u32, h));
                }
            }
        }
    }
}

fn filter_portable(
    cols: &[&[u64]],
    query: &[u64; 4],
    threshold: u32,
    start: usize,
    out: &mut Vec<(u32, u32)>,
) {
    filter_scalar(cols, query, threshold, start, out)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::filter_scalar;

    /// Push `(row, sum)` for each set lane of `mask`; `sums` are the lane
    /// sums of rows `first..`.
    #[inline(always)]
    fn push_lanes(mut mask: u32, sums: &[u64], first: usize, out: &mut Vec<(u32, u32)>) {
        while mask != 0 {
            let lane = mask.trailing_zeros() as usize;
            out.push(((first + lane) as u32, sums[lane] as u32));
            mask &= mask - 1;
        }
    }

    /// # Safety
    /// The CPU must have POPCNT; all columns must be equally long.
    #[target_feature(enable = "popcnt")]
    pub(super) unsafe fn filter_popcnt(
        cols: &[&[u64]],
        query: &[u64; 4],
        threshold: u32,
        start: usize,
        out: &mut Vec<(u32, u32)>,
    ) {
        filter_scalar(cols, query, threshold, start, out)
    }

    /// # Safety
    /// The CPU must have AVX-512F and AVX-512 VPOPCNTDQ; all columns must be
    /// equally long.
    #[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
    pub(super) unsafe fn filter_avx512(
        cols: &[&[u64]],
        query: &[u64; 4],
        threshold: u32,
        out: &mut Vec<(u32, u32)>,
    ) {
        let n = cols[0].len();
        let m = cols.len();
        let lanes = n / 8 * 8;
        let thr = _mm512_set1_epi64(i64::from(threshold));
        let q: [__m512i; 4] = [
            _mm512_set1_epi64(query[0] as i64),
            _mm512_set1_epi64(query[1] as i64),
            _mm512_set1_epi64(query[2] as i64),
            _mm512_set1_epi64(query[3] as i64),
        ];
        let mut i = 0;
        while i < lanes {
            let mut acc = _mm512_setzero_si512();
            let mut mask = 0;
            for w in 0..m {
                // SAFETY: i + 8 <= n = cols[w].len(); unaligned load.
                let v = unsafe { _mm512_loadu_si512(cols[w].as_ptr().add(i).cast()) };
                acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(v, q[w])));
                // Early termination per word column: sums only grow, so
                // once all 8 rows are over the threshold the later columns
                // of these rows are not read.
                mask = _mm512_cmple_epu64_mask(acc, thr);
                if mask == 0 {
                    break;
                }
            }
            if mask != 0 {
                let mut h = [0u64; 8];
                // SAFETY: h has room for 8 u64.
                unsafe { _mm512_storeu_si512(h.as_mut_ptr().cast(), acc) };
                push_lanes(u32::from(mask), &h, i, out);
            }
            i += 8;
        }
        filter_scalar(cols, query, threshold, lanes, out);
    }

    /// # Safety
    /// The CPU must have AVX-512F and VPOPCNTDQ; `cols` must hold `M`
    /// equally long columns, `queries`, `thresholds` and `outs` at most
    /// [`super::MANY`] entries each, equally many.
    #[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
    pub(super) unsafe fn many_avx512<const M: usize>(
        cols: &[&[u64]],
        queries: &[[u64; 4]],
        thresholds: &[u32],
        outs: &mut [Vec<(u32, u32)>],
    ) {
        let n = cols[0].len();
        let lanes = n / 8 * 8;
        let q = queries.len();
        let thr: [__m512i; super::MANY] = std::array::from_fn(|j| {
            _mm512_set1_epi64(i64::from(thresholds.get(j).copied().unwrap_or(0)))
        });
        let mut i = 0;
        while i < lanes {
            let mut acc = [_mm512_setzero_si512(); super::MANY];
            let mut live = 0u32;
            for w in 0..M {
                // SAFETY: i + 8 <= n = cols[w].len(); unaligned load.
                let v = unsafe { _mm512_loadu_si512(cols[w].as_ptr().add(i).cast()) };
                live = 0;
                for j in 0..q {
                    let x = _mm512_xor_si512(v, _mm512_set1_epi64(queries[j][w] as i64));
                    acc[j] = _mm512_add_epi64(acc[j], _mm512_popcnt_epi64(x));
                    if _mm512_cmple_epu64_mask(acc[j], thr[j]) != 0 {
                        live |= 1 << j;
                    }
                }
                // Early termination per word column for all queries at once.
                if live == 0 {
                    break;
                }
            }
            while live != 0 {
                let j = live.trailing_zeros() as usize;
                live &= live - 1;
                let mask = _mm512_cmple_epu64_mask(acc[j], thr[j]);
                let mut h = [0u64; 8];
                // SAFETY: h has room for 8 u64.
                unsafe { _mm512_storeu_si512(h.as_mut_ptr().cast(), acc[j]) };
                push_lanes(u32::from(mask), &h, i, &mut outs[j]);
            }
            i += 8;
        }
        super::many_scalar(cols, queries, thresholds, lanes, outs);
    }

    /// Per-64-bit-lane popcount of a 256-bit vector (Muła's nibble table).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn popcnt_epi64_avx2(v: __m256i) -> __m256i {
        let table = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2,
            3, 3, 4,
        );
        let low = _mm256_set1_epi8(0x0F);
        let lo = _mm256_and_si256(v, low);
        let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
        let counts = _mm256_add_epi8(
            _mm256_shuffle_epi8(table, lo),
            _mm256_shuffle_epi8(table, hi),
        );
        _mm256_sad_epu8(counts, _mm256_setzero_si256())
    }

    /// # Safety
    /// The CPU must have AVX2; all columns must be equally long.
    #[target_feature(enable = "avx2,popcnt")]
    pub(super) unsafe fn filter_avx2(
        cols: &[&[u64]],
        query: &[u64; 4],
        threshold: u32,
        out: &mut Vec<(u32, u32)>,
    ) {
        let n = cols[0].len();
        let m = cols.len();
        let lanes = n / 4 * 4;
        // Sums are at most 256, so a signed compare is exact.
        let thr = _mm256_set1_epi64x(i64::from(threshold));
        let q: [__m256i; 4] = [
            _mm256_set1_epi64x(query[0] as i64),
            _mm256_set1_epi64x(query[1] as i64),
            _mm256_set1_epi64x(query[2] as i64),
            _mm256_set1_epi64x(query[3] as i64),
        ];
        let mut i = 0;
        if m == 1 {
            // One word per row (64-bit codes, simprints): 16 rows per step
            // and one branch for all of them, since almost every row is out
            // of reach (1.5x fewer cycles per row than the general loop).
            // SAFETY: AVX2 as the caller guarantees; i + 16 <= n.
            i = unsafe { filter_avx2_one_word(cols[0], q[0], thr, out) };
        }
        while i < lanes {
            let mut acc = _mm256_setzero_si256();
            let mut mask = 0;
            for w in 0..m {
                // SAFETY: i + 4 <= n = cols[w].len(); unaligned load.
                let v = unsafe { _mm256_loadu_si256(cols[w].as_ptr().add(i).cast()) };
                acc = _mm256_add_epi64(acc, popcnt_epi64_avx2(_mm256_xor_si256(v, q[w])));
                let over = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(acc, thr)));
                // Early termination per word column, as in the AVX-512 kernel.
                mask = !over & 0xF;
                if mask == 0 {
                    break;
                }
            }
            if mask != 0 {
                let mut h = [0u64; 4];
                // SAFETY: h has room for 4 u64.
                unsafe { _mm256_storeu_si256(h.as_mut_ptr().cast(), acc) };
                push_lanes(mask as u32, &h, i, out);
            }
            i += 4;
        }
        filter_scalar(cols, query, threshold, lanes, out);
    }

    /// [`filter_avx2`] over one column, 16 rows per step; returns the rows
    /// done (a multiple of 16), the caller finishes the rest. The hit test
    /// of a step keeps everything in registers; the (rare) step with a row
    /// in reach is recomputed row group by row group.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2,popcnt")]
    unsafe fn filter_avx2_one_word(
        col: &[u64],
        q: __m256i,
        thr: __m256i,
        out: &mut Vec<(u32, u32)>,
    ) -> usize {
        let table = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2,
            3, 3, 4,
        );
        let low = _mm256_set1_epi8(0x0F);
        let zero = _mm256_setzero_si256();
        // Per-lane popcount of `v ^ q` (Muła's nibble table, constants held).
        let count = |v: __m256i| {
            let x = _mm256_xor_si256(v, q);
            let lo = _mm256_and_si256(x, low);
            let hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low);
            let bytes = _mm256_add_epi8(
                _mm256_shuffle_epi8(table, lo),
                _mm256_shuffle_epi8(table, hi),
            );
            _mm256_sad_epu8(bytes, zero)
        };
        let steps = col.len() / 16 * 16;
        let p = col.as_ptr();
        let mut i = 0;
        while i < steps {
            // SAFETY: i + 16 <= col.len(); unaligned loads.
            let load = |k: usize| unsafe { _mm256_loadu_si256(p.add(i + 4 * k).cast()) };
            let over = _mm256_and_si256(
                _mm256_and_si256(
                    _mm256_cmpgt_epi64(count(load(0)), thr),
                    _mm256_cmpgt_epi64(count(load(1)), thr),
                ),
                _mm256_and_si256(
                    _mm256_cmpgt_epi64(count(load(2)), thr),
                    _mm256_cmpgt_epi64(count(load(3)), thr),
                ),
            );
            if _mm256_movemask_pd(_mm256_castsi256_pd(over)) != 0xF {
                for k in 0..4 {
                    let sums = count(load(k));
                    let far = _mm256_cmpgt_epi64(sums, thr);
                    let mask = !_mm256_movemask_pd(_mm256_castsi256_pd(far)) & 0xF;
                    if mask != 0 {
                        let mut h = [0u64; 4];
                        // SAFETY: h has room for 4 u64.
                        unsafe { _mm256_storeu_si256(h.as_mut_ptr().cast(), sums) };
                        push_lanes(mask as u32, &h, i + 4 * k, out);
                    }
                }
            }
            i += 16;
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed ^ (*seed >> 29)
    }

    #[test]
    fn every_kernel_equals_the_scalar_reference() {
        let mut seed = 7;
        for n in [0usize, 1, 3, 4, 7, 8, 9, 31, 100, 1000] {
            let cols_owned: Vec<Vec<u64>> = (0..4)
                .map(|_| (0..n).map(|_| lcg(&mut seed)).collect())
                .collect();
            let query = [
                lcg(&mut seed),
                lcg(&mut seed),
                lcg(&mut seed),
                lcg(&mut seed),
            ];
            for m in 1..=4 {
                let cols: Vec<&[u64]> = cols_owned[..m].iter().map(|c| c.as_slice()).collect();
                for threshold in [0, 20, 32 * m as u32, 64 * m as u32] {
                    let mut want = Vec::new();
                    filter_portable(&cols, &query, threshold, 0, &mut want);
                    for kernel in Kernel::available() {
                        let mut got = Vec::new();
                        kernel.filter(&cols, &query, threshold, &mut got);
                        assert_eq!(got, want, "{kernel:?} n={n} m={m} thr={threshold}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_many_query_kernels_equal_one_query_at_a_time() {
        let mut seed = 11;
        for n in [0usize, 1, 5, 8, 13, 64, 1001] {
            let cols_owned: Vec<Vec<u64>> = (0..4)
                .map(|_| (0..n).map(|_| lcg(&mut seed)).collect())
                .collect();
            for q in [1usize, 3, MANY] {
                let queries: Vec<[u64; 4]> = (0..q)
                    .map(|_| std::array::from_fn(|_| lcg(&mut seed)))
                    .collect();
                for m in 1..=4 {
                    let cols: Vec<&[u64]> = cols_owned[..m].iter().map(|c| c.as_slice()).collect();
                    // Thresholds from none to all rows, differing per query.
                    let thresholds: Vec<u32> = (0..q)
                        .map(|j| (j as u32 * 37) % (64 * m as u32 + 1))
                        .collect();
                    let want: Vec<Vec<(u32, u32)>> = queries
                        .iter()
                        .zip(&thresholds)
                        .map(|(query, &t)| {
                            let mut v = Vec::new();
                            filter_portable(&cols, query, t, 0, &mut v);
                            v
                        })
                        .collect();
                    for kernel in Kernel::available() {
                        let mut got = vec![Vec::new(); q];
                        kernel.filter_many(&cols, &queries, &thresholds, &mut got);
                        assert_eq!(got, want, "{kernel:?} n={n} q={q} m={m}");
                    }
                }
            }
        }
    }
}
