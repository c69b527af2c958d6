//! The coarse quantizer of the partitioned path: `nlist` 64-bit centroids
//! over the first word of every row, trained by binary k-modes (Lloyd's
//! iterations where a centroid's bit is the majority bit of its members).
//!
//! Why the first word: every whole-word row has one, and NPHD compares a
//! query and a row on the words they share, which always include the first;
//! so the first word is the one coordinate system all lengths have in
//! common (see `mod.rs` for how mixed lengths stay exact).
//!
//! Distances to all centroids are computed by one loop the compiler turns
//! into vector popcounts where the CPU has them (AVX-512 VPOPCNTDQ: eight
//! centroids per instruction): about half a microsecond for 4,096 centroids
//! here, so assigning a row costs an add little.

use rayon::prelude::*;

/// Centroids of the coarse quantizer (see the module docs), and how many
/// lists a search probes unless it says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Quantizer {
    centroids: Vec<u64>,
    nprobe: usize,
    /// Rows the index held when it measured `nprobe` itself (`None`: the
    /// number was given, or the file predates calibrated counts); an index
    /// measures again as its lists grow (`index::unit::retrain`).
    calibrated_rows: Option<usize>,
    /// Lists a search probes by default when its caller needs only the
    /// neighbours within a near distance (measured with `nprobe`; `None`:
    /// as many as `nprobe`).
    near_nprobe: Option<usize>,
}

/// Fill `out[i]` with the Hamming distance of `x` and `centroids[i]`;
/// returns the smallest (`u32::MAX` for no centroids). One loop, so the
/// minimum is taken in vector registers too.
#[inline(always)]
fn distances_generic(centroids: &[u64], x: u64, out: &mut [u32]) -> u32 {
    let mut min = u32::MAX;
    for (d, c) in out.iter_mut().zip(centroids) {
        let v = (c ^ x).count_ones();
        *d = v;
        min = min.min(v);
    }
    min
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
fn distances_avx512(centroids: &[u64], x: u64, out: &mut [u32]) -> u32 {
    distances_generic(centroids, x, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn distances_popcnt(centroids: &[u64], x: u64, out: &mut [u32]) -> u32 {
    distances_generic(centroids, x, out)
}

/// Which build of the distance loop this CPU runs (checked once).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Avx512,
    Popcnt,
    Portable,
}

fn flavour() -> Flavour {
    static FLAVOUR: std::sync::OnceLock<Flavour> = std::sync::OnceLock::new();
    *FLAVOUR.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            {
                return Flavour::Avx512;
            }
            if std::arch::is_x86_feature_detected!("popcnt") {
                return Flavour::Popcnt;
            }
        }
        Flavour::Portable
    })
}

/// [`distances_generic`] built for this CPU.
fn distances(centroids: &[u64], x: u64, out: &mut [u32]) -> u32 {
    match flavour() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `flavour` chose Avx512 only after detecting AVX-512F and
        // VPOPCNTDQ on this CPU.
        Flavour::Avx512 => unsafe { distances_avx512(centroids, x, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, for POPCNT.
        Flavour::Popcnt => unsafe { distances_popcnt(centroids, x, out) },
        _ => distances_generic(centroids, x, out),
    }
}

/// The squared Hamming distance (k-means++ weights).
fn sq(a: u64, b: u64) -> u64 {
    let d = u64::from((a ^ b).count_ones());
    d * d
}

/// A small deterministic generator (training must give the same lists for
/// the same rows, so a rebuilt index equals the one it replaces).
fn next(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    crate::index::bloom::mix64(*seed)
}

impl Quantizer {
    /// A quantizer of the given centroids (at least one), probing
    /// `nprobe` lists by default (at least 1).
    pub(crate) fn from_centroids(centroids: Vec<u64>, nprobe: usize) -> Option<Quantizer> {
        (!centroids.is_empty()).then_some(Quantizer {
            centroids,
            nprobe: nprobe.max(1),
            calibrated_rows: None,
            near_nprobe: None,
        })
    }

    /// Rows the index held when it calibrated the default `nprobe` itself
    /// (`None` when it was given).
    pub(crate) fn calibrated_rows(&self) -> Option<usize> {
        self.calibrated_rows
    }

    /// The same centroids probing `nprobe` lists by default (`near` for a
    /// search that needs only near neighbours, when measured), numbers the
    /// index measured on its own `rows` rows.
    pub(crate) fn calibrated(
        mut self,
        nprobe: usize,
        near: Option<usize>,
        rows: usize,
    ) -> Quantizer {
        self.nprobe = nprobe.max(1);
        self.near_nprobe = near.map(|n| n.clamp(1, self.nprobe));
        self.calibrated_rows = Some(rows);
        self
    }

    /// Lists a search probes by default.
    pub(crate) fn nprobe(&self) -> usize {
        self.nprobe
    }

    /// Lists a search that needs only near neighbours probes by default
    /// (see `index::unit::retrain`): at most [`Quantizer::nprobe`], since
    /// `calibrated` clamps it and `with_nprobe` clears it.
    pub(crate) fn near_nprobe(&self) -> usize {
        self.near_nprobe.unwrap_or(self.nprobe)
    }

    /// The near `nprobe` as measured (`None`: none was, see
    /// [`Quantizer::near_nprobe`]).
    pub(crate) fn measured_near_nprobe(&self) -> Option<usize> {
        self.near_nprobe
    }

    /// The same centroids probing `nprobe` lists by default, a number
    /// given (not measured by the index).
    pub(crate) fn with_nprobe(mut self, nprobe: usize) -> Quantizer {
        self.nprobe = nprobe.max(1);
        self.calibrated_rows = None;
        self.near_nprobe = None;
        self
    }

    /// The centroids, list by list.
    pub(crate) fn centroids(&self) -> &[u64] {
        &self.centroids
    }

    /// Number of lists.
    pub(crate) fn lists(&self) -> usize {
        self.centroids.len()
    }

    /// Train `nlist` centroids (at most the number of distinct words) on
    /// `sample` by `iterations` rounds of k-modes, seeded by `seed`.
    /// Centroids start by k-means++ seeding (each next one drawn with
    /// probability growing with the square of its distance to those
    /// chosen, see `seed_plus_plus`) over up to 8 words per list; a list left empty by a round
    /// takes the word farthest from its own centroid.
    pub(crate) fn train(sample: &[u64], nlist: usize, iterations: usize, seed: u64) -> Quantizer {
        let mut distinct: Vec<u64> = sample.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.is_empty() {
            return Quantizer {
                centroids: vec![0],
                nprobe: 1,
                calibrated_rows: None,
                near_nprobe: None,
            };
        }
        let nlist = nlist.clamp(1, distinct.len());
        let mut seed = seed ^ 0x1f_c0a5_e5ed;
        // A shuffled seeding pool of up to 8 words per list.
        let pool_len = distinct.len().min(8 * nlist);
        for i in 0..pool_len {
            let j = i + (next(&mut seed) % (distinct.len() - i) as u64) as usize;
            distinct.swap(i, j);
        }
        let pool = &distinct[..pool_len];
        let mut q = Quantizer {
            centroids: Self::seed_plus_plus(pool, nlist, &mut seed),
            nprobe: nlist,
            calibrated_rows: None,
            near_nprobe: None,
        };
        for _ in 0..iterations {
            if !q.refine(sample) {
                break;
            }
        }
        q
    }

    /// Greedy k-means++ seeding of `nlist` distinct centroids from `pool`
    /// (distinct words, at least `nlist`): each step draws `2 + ln nlist`
    /// candidates with probability growing with the square of their
    /// distance to the centroids so far and keeps the one that brings the
    /// pool nearest to its centroids (plain k-means++ left two centroids
    /// in one planted cluster often enough to matter in the tests).
    fn seed_plus_plus(pool: &[u64], nlist: usize, seed: &mut u64) -> Vec<u64> {
        let tries = 2 + (nlist as f64).ln().max(0.0) as usize;
        let mut centroids = Vec::with_capacity(nlist);
        centroids.push(pool[0]);
        let mut dist: Vec<u64> = pool.iter().map(|&x| sq(x, pool[0])).collect();
        let mut trial = vec![0u64; pool.len()];
        let mut best = vec![0u64; pool.len()];
        while centroids.len() < nlist {
            let total: u64 = dist.iter().sum();
            if total == 0 {
                // Cannot happen with distinct words and nlist <= pool.
                break;
            }
            let mut chosen: Option<(u64, u64)> = None;
            for _ in 0..tries {
                let mut r = next(seed) % total;
                let pick = dist
                    .iter()
                    .position(|&d| {
                        if r < d {
                            true
                        } else {
                            r -= d;
                            false
                        }
                    })
                    .unwrap_or(0);
                let c = pool[pick];
                let mut potential = 0u64;
                for ((t, &d), &x) in trial.iter_mut().zip(&dist).zip(pool) {
                    *t = d.min(sq(x, c));
                    potential += *t;
                }
                if chosen.is_none_or(|(p, _)| potential < p) {
                    chosen = Some((potential, c));
                    std::mem::swap(&mut best, &mut trial);
                }
            }
            let Some((_, c)) = chosen else { break };
            centroids.push(c);
            std::mem::swap(&mut dist, &mut best);
        }
        centroids
    }

    /// One k-modes round over `sample`; false when no centroid moved.
    fn refine(&mut self, sample: &[u64]) -> bool {
        let nlist = self.lists();
        // Per list: member count and, per bit, how many members have it set.
        let tally = || {
            (
                vec![0u32; nlist],
                vec![0u32; nlist * 64],
                (0u32, 0u64, 0usize),
            )
        };
        let (counts, bits, far) = sample
            .par_chunks(4096)
            .fold(tally, |(mut counts, mut bits, mut far), chunk| {
                let mut d = vec![0u32; nlist];
                for &x in chunk {
                    let (list, dist) = self.nearest_with(x, &mut d);
                    counts[list] += 1;
                    let row = &mut bits[list * 64..list * 64 + 64];
                    for (b, slot) in row.iter_mut().enumerate() {
                        *slot += ((x >> b) & 1) as u32;
                    }
                    if dist > far.0 {
                        far = (dist, x, list);
                    }
                }
                (counts, bits, far)
            })
            .reduce(tally, |(mut c1, mut b1, f1), (c2, b2, f2)| {
                c1.iter_mut().zip(&c2).for_each(|(a, b)| *a += b);
                b1.iter_mut().zip(&b2).for_each(|(a, b)| *a += b);
                (c1, b1, if f2.0 > f1.0 { f2 } else { f1 })
            });
        let mut moved = false;
        let mut reseeded = false;
        for list in 0..nlist {
            let n = counts[list];
            let old = self.centroids[list];
            let new = if n == 0 {
                // One reseed per round: the farthest word found this round.
                if reseeded || far.0 == 0 {
                    old
                } else {
                    reseeded = true;
                    far.1
                }
            } else {
                let mut c = 0u64;
                for b in 0..64 {
                    let ones = 2 * bits[list * 64 + b];
                    // A tie keeps the old bit (the round must settle).
                    let bit = if ones == n {
                        (old >> b) & 1
                    } else {
                        u64::from(ones > n)
                    };
                    c |= bit << b;
                }
                c
            };
            moved |= new != old;
            self.centroids[list] = new;
        }
        moved
    }

    /// The list of `x` and its distance to the list's centroid (the
    /// smallest list number on a tie); `scratch` holds `lists()` values.
    pub(crate) fn nearest_with(&self, x: u64, scratch: &mut [u32]) -> (usize, u32) {
        let d = &mut scratch[..self.centroids.len()];
        let min = distances(&self.centroids, x, d);
        // The first list at the minimum: whole blocks compared at once
        // (a branch per centroid cost more than the distances at 4,000
        // lists, measured as the add rate of a partitioned index).
        const STEP: usize = 16;
        for (b, block) in d.chunks(STEP).enumerate() {
            if block.iter().fold(false, |hit, &v| hit | (v == min)) {
                let i = block.iter().position(|&v| v == min).unwrap_or(0);
                return (b * STEP + i, min);
            }
        }
        (0, min)
    }

    /// The list of `x` (see [`Quantizer::nearest_with`]).
    pub(crate) fn nearest(&self, x: u64) -> usize {
        // A scratch buffer per thread: an add assigns rows one by one.
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => {
                let want = scratch.len().max(self.lists());
                scratch.resize(want, 0);
                self.nearest_with(x, &mut scratch).0
            }
            Err(_) => self.nearest_with(x, &mut vec![0u32; self.lists()]).0,
        })
    }

    /// The `nprobe` lists nearest to `x`, nearest first (list number
    /// breaks ties), with their distances.
    pub(crate) fn probe(&self, x: u64, nprobe: usize) -> Vec<(u32, u32)> {
        let mut d = vec![0u32; self.lists()];
        distances(&self.centroids, x, &mut d);
        let mut order: Vec<(u32, u32)> =
            d.iter().enumerate().map(|(i, &v)| (v, i as u32)).collect();
        let nprobe = nprobe.clamp(1, order.len());
        if nprobe < order.len() {
            order.select_nth_unstable(nprobe - 1);
            order.truncate(nprobe);
        }
        order.sort_unstable();
        order.into_iter().map(|(dist, list)| (list, dist)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(n: usize, seed: u64) -> Vec<u64> {
        let mut s = seed;
        (0..n).map(|_| next(&mut s)).collect()
    }

    #[test]
    fn the_vector_loop_equals_plain_popcounts() {
        let c = words(4099, 1);
        let mut out = vec![0u32; c.len()];
        for x in words(20, 2) {
            let min = distances(&c, x, &mut out);
            let plain: Vec<u32> = c.iter().map(|c| (c ^ x).count_ones()).collect();
            assert_eq!(out, plain);
            assert_eq!(Some(&min), plain.iter().min());
            // The nearest is the first list at the minimum.
            let q = Quantizer::from_centroids(c.clone(), 1).expect("centroids");
            let first = plain.iter().position(|&v| v == min).expect("a minimum");
            assert_eq!(q.nearest(x), first);
        }
    }

    #[test]
    fn training_finds_planted_clusters() {
        // 64 centres, 200 members each within 4 bits of their centre.
        let centres = words(64, 3);
        let mut s = 9u64;
        let sample: Vec<u64> = (0..64 * 200)
            .map(|i| {
                let mut x = centres[i % 64];
                for _ in 0..(next(&mut s) % 5) {
                    x ^= 1 << (next(&mut s) % 64);
                }
                x
            })
            .collect();
        let q = Quantizer::train(&sample, 64, 20, 7);
        assert_eq!(q.lists(), 64);
        // Nearly every centre is a centroid's word within 2 bits, with all
        // its members in that centroid's list (k-modes may still settle
        // with two centroids in one cluster and one over two clusters).
        let recovered = centres
            .iter()
            .enumerate()
            .filter(|&(c, &centre)| {
                let list = q.nearest(centre);
                (q.centroids()[list] ^ centre).count_ones() <= 2
                    && sample
                        .iter()
                        .skip(c)
                        .step_by(64)
                        .all(|&x| q.nearest(x) == list)
            })
            .count();
        assert!(recovered >= 60, "{recovered} of 64 clusters recovered");
    }

    #[test]
    fn training_is_deterministic_and_bounded_by_distinct_words() {
        let sample = words(5000, 4);
        assert_eq!(
            Quantizer::train(&sample, 100, 5, 1),
            Quantizer::train(&sample, 100, 5, 1)
        );
        let few = [1u64, 1, 2, 3, 3];
        assert_eq!(Quantizer::train(&few, 10, 5, 1).lists(), 3);
        assert_eq!(Quantizer::train(&[], 10, 5, 1).lists(), 1);
    }

    #[test]
    fn probe_lists_the_nearest_centroids_in_order() {
        let q = Quantizer::from_centroids(vec![0, u64::MAX, 0b1111, 0b1], 1).expect("centroids");
        let got = q.probe(0b11, 3);
        // 0b11 is 1 bit from 0b1, 2 from 0 and from 0b1111, 62 from all ones.
        assert_eq!(got, vec![(3, 1), (0, 2), (2, 2)]);
        assert_eq!(q.probe(0b11, 99).len(), 4);
        assert_eq!(q.nearest(0b11), 3);
    }
}
