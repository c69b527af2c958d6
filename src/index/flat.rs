//! The flat store: every row of a unit index, grouped by length and stored
//! word-major, for the exact scan, `get` and rebuilding the graph.
//!
//! Rows of 1, 2, 3 and 4 words (64–256 bits) live in four groups. Group `g`
//! holds `keys` and `g + 1` columns; column `w` is word `w` (little-endian
//! bytes `8w..8w+8` of the body) of every row. A query of `q` words compares
//! `min(q, g + 1)` words with group `g`, so the scan reads only the columns
//! that matter (see [`crate::metric::scan`]). Removal swaps the last row of
//! the group into the hole; `slots` maps each key to its place.
//!
//! Columns are either owned vectors or slices of a memory-mapped file
//! (read-only view); the file layout is the in-memory layout, so a view
//! opens without copying or parsing rows.

use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, OnceLock};

use memmap2::Mmap;

use crate::metric::scan::{Kernel, MANY};
use crate::metric::Row;

/// Rows scanned per block before the threshold is tightened (and, in
/// batch scans, the block all queries of a chunk visit while it is cached).
const BLOCK: usize = 8192;

/// A column of u64: owned, or a slice of a shared memory map.
#[derive(Debug, Clone)]
pub(crate) enum Words {
    Owned(Vec<u64>),
    Mapped {
        map: Arc<Mmap>,
        offset: usize,
        len: usize,
    },
}

impl Words {
    pub(crate) fn as_slice(&self) -> &[u64] {
        match self {
            Words::Owned(v) => v,
            Words::Mapped { map, offset, len } => {
                let bytes = &map[*offset..*offset + *len * 8];
                // SAFETY: the map is page-aligned and `offset` a multiple of
                // 8 (checked when the view was opened), the range lies inside
                // the map (checked too), u64 has no invalid bit patterns, and
                // the map lives as long as `self` through the Arc.
                unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<u64>(), *len) }
            }
        }
    }

    fn owned(&mut self) -> &mut Vec<u64> {
        if let Words::Mapped { .. } = self {
            *self = Words::Owned(self.as_slice().to_vec());
        }
        match self {
            Words::Owned(v) => v,
            Words::Mapped { .. } => unreachable!("converted above"),
        }
    }
}

/// Rows of one length: keys and `words` columns.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) keys: Words,
    pub(crate) cols: Vec<Words>,
}

impl Group {
    fn new(words: usize) -> Group {
        Group {
            keys: Words::Owned(Vec::new()),
            cols: (0..words).map(|_| Words::Owned(Vec::new())).collect(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.as_slice().len()
    }
}

/// One search hit: distance, then key (the order of results).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// NPHD in `[0, 1]`.
    pub distance: f32,
    /// The key.
    pub key: u64,
}

impl Eq for Hit {}

impl Ord for Hit {
    fn cmp(&self, other: &Hit) -> std::cmp::Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.key.cmp(&other.key))
    }
}

impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Hit) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A row filter: true keeps the key.
pub(crate) type Keep<'a> = &'a (dyn Fn(u64) -> bool + Sync);

/// Every row of an index, by length group.
#[derive(Debug, Clone)]
pub(crate) struct FlatStore {
    pub(crate) groups: [Group; 4],
    /// key -> (group, index); built on first use (a memory-mapped view
    /// opens without it).
    slots: OnceLock<HashMap<u64, (u8, u32)>>,
}

impl Default for FlatStore {
    fn default() -> FlatStore {
        FlatStore {
            groups: [Group::new(1), Group::new(2), Group::new(3), Group::new(4)],
            slots: OnceLock::from(HashMap::new()),
        }
    }
}

/// A prepared query: words, length in words.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanQuery {
    pub(crate) words: [u64; 4],
    pub(crate) len: usize,
}

impl ScanQuery {
    pub(crate) fn new(row: &Row) -> ScanQuery {
        ScanQuery {
            words: row.words(),
            len: row.len() / 8,
        }
    }
}

/// Top-k of one query's scan.
struct TopK {
    k: usize,
    max_distance: f32,
    heap: BinaryHeap<Hit>,
}

impl TopK {
    fn new(k: usize, max_distance: Option<f32>) -> TopK {
        TopK {
            k,
            max_distance: max_distance.unwrap_or(f32::INFINITY),
            // A large `k` with a distance bound (a range search) mostly
            // stays far from full: grow as hits come, not all up front.
            heap: BinaryHeap::with_capacity(k.min(1024) + 1),
        }
    }

    /// The largest Hamming count that could still enter, for `bits` compared.
    fn threshold(&self, bits: u32) -> u32 {
        let worst = match self.heap.peek() {
            Some(w) if self.heap.len() >= self.k => w.distance.min(self.max_distance),
            _ => self.max_distance,
        };
        if worst >= 1.0 {
            return bits;
        }
        // The epsilon keeps exact ties (decided by key) despite rounding.
        ((worst * bits as f32) + 1e-3)
            .floor()
            .clamp(0.0, bits as f32) as u32
    }

    fn offer(&mut self, hit: Hit) {
        if hit.distance > self.max_distance {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(hit);
        } else if let Some(mut top) = self.heap.peek_mut() {
            if hit < *top {
                // Replace in place: one sift instead of a pop and a push.
                *top = hit;
            }
        }
    }

    fn into_sorted(self) -> Vec<Hit> {
        self.heap.into_sorted_vec()
    }
}

impl FlatStore {
    /// Number of rows.
    pub(crate) fn len(&self) -> usize {
        self.groups.iter().map(Group::len).sum()
    }

    /// The 64-bit words a scan by a query of `query_words` words reads at
    /// most: per row, the words the query and the row share. What a scan
    /// costs grows with it, not with the rows alone (a 64-bit index scans
    /// about four times cheaper per row than a 256-bit one).
    pub(crate) fn words(&self, query_words: usize) -> u64 {
        self.groups
            .iter()
            .map(|g| (g.len() * g.cols.len().min(query_words)) as u64)
            .sum()
    }

    fn build_slots(&self) -> HashMap<u64, (u8, u32)> {
        let mut map = HashMap::with_capacity(self.len());
        for (g, group) in self.groups.iter().enumerate() {
            for (i, key) in group.keys.as_slice().iter().enumerate() {
                map.insert(*key, (g as u8, i as u32));
            }
        }
        map
    }

    fn slots(&self) -> &HashMap<u64, (u8, u32)> {
        self.slots.get_or_init(|| self.build_slots())
    }

    fn slots_mut(&mut self) -> &mut HashMap<u64, (u8, u32)> {
        if self.slots.get().is_none() {
            let map = self.build_slots();
            self.slots = OnceLock::from(map);
        }
        self.slots.get_mut().expect("initialised above")
    }

    /// Forget the key map after the groups were replaced.
    pub(crate) fn reindex(&mut self) {
        self.slots = OnceLock::new();
    }

    /// Copy mapped columns into RAM.
    pub(crate) fn make_owned(&mut self) {
        for group in &mut self.groups {
            group.keys.owned();
            for col in &mut group.cols {
                col.owned();
            }
        }
    }

    /// True when the key is stored.
    pub(crate) fn contains(&self, key: u64) -> bool {
        self.slots().contains_key(&key)
    }

    /// The row of a key.
    pub(crate) fn get(&self, key: u64) -> Option<Row> {
        let &(g, i) = self.slots().get(&key)?;
        let group = &self.groups[usize::from(g)];
        let mut body = Vec::with_capacity(32);
        for col in &group.cols {
            body.extend_from_slice(&col.as_slice()[i as usize].to_le_bytes());
        }
        Row::new(&body).ok()
    }

    /// Insert a row for a key that is not stored.
    pub(crate) fn insert(&mut self, key: u64, row: &Row) {
        let g = row.len() / 8 - 1;
        let words = row.words();
        let group = &mut self.groups[g];
        let index = group.len() as u32;
        group.keys.owned().push(key);
        for (w, col) in group.cols.iter_mut().enumerate() {
            col.owned().push(words[w]);
        }
        self.slots_mut().insert(key, (g as u8, index));
    }

    /// Remove a key's row; false when absent.
    pub(crate) fn remove(&mut self, key: u64) -> bool {
        let Some((g, i)) = self.slots_mut().remove(&key) else {
            return false;
        };
        let group = &mut self.groups[usize::from(g)];
        let i = i as usize;
        let keys = group.keys.owned();
        keys.swap_remove(i);
        let moved = keys.get(i).copied();
        for col in group.cols.iter_mut() {
            col.owned().swap_remove(i);
        }
        if let Some(moved) = moved {
            self.slots_mut().insert(moved, (g, i as u32));
        }
        true
    }

    /// Every (key, row), group by group.
    pub(crate) fn all_rows(&self) -> Vec<(u64, Row)> {
        self.rows_every(1)
    }

    /// Every `step`-th (key, row) in group order (a sample proportional
    /// to the groups' sizes; `step` 0 counts as 1).
    pub(crate) fn rows_every(&self, step: usize) -> Vec<(u64, Row)> {
        let step = step.max(1);
        let mut out = Vec::with_capacity(self.len() / step + 1);
        let mut skip = 0;
        for group in &self.groups {
            let cols: Vec<&[u64]> = group.cols.iter().map(Words::as_slice).collect();
            let keys = group.keys.as_slice();
            let mut i = skip;
            while i < keys.len() {
                let mut body = [0u8; 32];
                for (w, col) in cols.iter().enumerate() {
                    body[8 * w..8 * w + 8].copy_from_slice(&col[i].to_le_bytes());
                }
                if let Ok(row) = Row::new(&body[..8 * cols.len()]) {
                    out.push((keys[i], row));
                }
                i += step;
            }
            // Carry the stride across groups.
            skip = i - keys.len();
        }
        out
    }

    /// Every key, group by group.
    pub(crate) fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.groups
            .iter()
            .flat_map(|group| group.keys.as_slice().iter().copied())
    }

    /// Exact top-`k` of one query, ordered by distance then key.
    pub(crate) fn search(
        &self,
        kernel: Kernel,
        query: &ScanQuery,
        k: usize,
        max_distance: Option<f32>,
        keep: Option<Keep<'_>>,
    ) -> Vec<Hit> {
        let mut results =
            self.search_many(kernel, std::slice::from_ref(query), k, max_distance, keep);
        results.pop().unwrap_or_default()
    }

    /// Exact top-`k` of several queries in one pass: each block of rows is
    /// visited by every query while it is in cache.
    pub(crate) fn search_many(
        &self,
        kernel: Kernel,
        queries: &[ScanQuery],
        k: usize,
        max_distance: Option<f32>,
        keep: Option<Keep<'_>>,
    ) -> Vec<Vec<Hit>> {
        let mut tops: Vec<TopK> = queries.iter().map(|_| TopK::new(k, max_distance)).collect();
        if k == 0 {
            return tops.into_iter().map(TopK::into_sorted).collect();
        }
        // Candidate buffers per thread, reused across searches (a fresh
        // 64 KiB allocation per query showed in profiles of small indexes).
        thread_local! {
            static CANDIDATES: std::cell::RefCell<Vec<Vec<(u32, u32)>>> =
                std::cell::RefCell::new((0..MANY).map(|_| Vec::with_capacity(BLOCK)).collect());
        }
        CANDIDATES.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => self.scan_groups(kernel, queries, &mut tops, keep, &mut buf),
            Err(_) => self.scan_groups(
                kernel,
                queries,
                &mut tops,
                keep,
                &mut vec![Vec::new(); MANY],
            ),
        });
        tops.into_iter().map(TopK::into_sorted).collect()
    }

    /// The block loop of [`FlatStore::search_many`]: per block of rows, the
    /// queries comparing the same number of words are compared together,
    /// [`MANY`] at a time (one query alone takes the single-query kernel,
    /// which stops reading a row's later words once it is out of reach).
    fn scan_groups(
        &self,
        kernel: Kernel,
        queries: &[ScanQuery],
        tops: &mut [TopK],
        keep: Option<Keep<'_>>,
        candidates: &mut [Vec<(u32, u32)>],
    ) {
        let k = tops.iter().map(|t| t.k).max().unwrap_or(0);
        // Queries by the words they compare with this group.
        let mut by_words: [Vec<usize>; 4] = Default::default();
        for group in &self.groups {
            let n = group.len();
            if n == 0 {
                continue;
            }
            let keys = group.keys.as_slice();
            let cols: Vec<&[u64]> = group.cols.iter().map(Words::as_slice).collect();
            for list in by_words.iter_mut() {
                list.clear();
            }
            for (j, query) in queries.iter().enumerate() {
                let m = query.len.min(cols.len());
                if m > 0 && tops[j].k > 0 {
                    by_words[m - 1].push(j);
                }
            }
            let mut start = 0;
            while start < n {
                // While a heap is not full its threshold admits every row:
                // scan a short block first, so the threshold tightens
                // before the long blocks (each row offered costs a heap
                // comparison; a full first block of 8,192 offers dominated
                // small indexes).
                let filling = tops.iter().any(|t| t.heap.len() < t.k);
                let step = if filling {
                    (k * 4).clamp(64, BLOCK)
                } else {
                    BLOCK
                };
                let end = (start + step).min(n);
                for (w, list) in by_words.iter().enumerate() {
                    if list.is_empty() {
                        continue;
                    }
                    let m = w + 1;
                    let bits = 64 * m as u32;
                    let mut block: [&[u64]; 4] = [&[]; 4];
                    for (b, c) in block.iter_mut().zip(&cols[..m]) {
                        *b = &c[start..end];
                    }
                    for chunk in list.chunks(MANY) {
                        let mut words = [[0u64; 4]; MANY];
                        let mut thresholds = [0u32; MANY];
                        for (slot, &j) in chunk.iter().enumerate() {
                            words[slot] = queries[j].words;
                            thresholds[slot] = tops[j].threshold(bits);
                        }
                        let outs = &mut candidates[..chunk.len()];
                        for out in outs.iter_mut() {
                            out.clear();
                        }
                        if chunk.len() == 1 {
                            kernel.filter(&block[..m], &words[0], thresholds[0], &mut outs[0]);
                        } else {
                            kernel.filter_many(
                                &block[..m],
                                &words[..chunk.len()],
                                &thresholds[..chunk.len()],
                                outs,
                            );
                        }
                        for (out, &j) in outs.iter().zip(chunk) {
                            let top = &mut tops[j];
                            for &(i, h) in out {
                                let key = keys[start + i as usize];
                                if keep.is_none_or(|keep| keep(key)) {
                                    top.offer(Hit {
                                        distance: h as f32 / bits as f32,
                                        key,
                                    });
                                }
                            }
                        }
                    }
                }
                start = end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::nphd;

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 11
    }

    fn body(seed: &mut u64) -> Vec<u8> {
        let len = 8 * (1 + (lcg(seed) % 4) as usize);
        (0..len).map(|_| lcg(seed) as u8).collect()
    }

    #[test]
    fn exact_search_equals_brute_force_with_key_ties() {
        let mut seed = 3;
        let mut store = FlatStore::default();
        let mut rows: Vec<(u64, Vec<u8>)> = Vec::new();
        for key in 0..3000u64 {
            // Many duplicates of few bodies make ties common.
            let b = if key % 3 == 0 && key > 0 {
                rows[(key as usize) / 2].1.clone()
            } else {
                body(&mut seed)
            };
            store.insert(key * 7 % 3001, &Row::new(&b).unwrap());
            rows.push((key * 7 % 3001, b));
        }
        for kernel in Kernel::available() {
            for _ in 0..20 {
                let q = body(&mut seed);
                let row = Row::new(&q).unwrap();
                for k in [1, 10, 100] {
                    let mut want: Vec<Hit> = rows
                        .iter()
                        .map(|(key, b)| Hit {
                            distance: nphd(&q, b).unwrap(),
                            key: *key,
                        })
                        .collect();
                    want.sort();
                    want.truncate(k);
                    assert_eq!(
                        store.search(kernel, &ScanQuery::new(&row), k, None, None),
                        want,
                        "{kernel:?}"
                    );
                }
                let capped = store.search(kernel, &ScanQuery::new(&row), 50, Some(0.40), None);
                assert!(capped.iter().all(|h| h.distance <= 0.40));
            }
        }
    }

    #[test]
    fn many_queries_in_one_pass_equal_one_at_a_time() {
        let mut seed = 5;
        let mut store = FlatStore::default();
        for key in 0..20_000u64 {
            store.insert(key, &Row::new(&body(&mut seed)).unwrap());
        }
        // More queries than one kernel pass takes, of every length, some
        // rows' own bodies (distance 0) among them.
        let queries: Vec<ScanQuery> = (0..2 * MANY as u64 + 3)
            .map(|i| {
                let row = if i % 5 == 0 {
                    store.get(i * 97).unwrap()
                } else {
                    Row::new(&body(&mut seed)).unwrap()
                };
                ScanQuery::new(&row)
            })
            .collect();
        let odd = |key: u64| key % 2 == 1;
        for kernel in Kernel::available() {
            for (k, cap, keep) in [
                (10, None, None),
                (1, None, Some(&odd as Keep<'_>)),
                (100, Some(0.3), None),
            ] {
                let many = store.search_many(kernel, &queries, k, cap, keep);
                for (q, got) in queries.iter().zip(&many) {
                    assert_eq!(
                        got,
                        &store.search(kernel, q, k, cap, keep),
                        "{kernel:?} k={k}"
                    );
                    assert!(got.len() <= k);
                    assert!(keep.is_none() || got.iter().all(|h| h.key % 2 == 1));
                }
            }
        }
    }

    #[test]
    fn a_sample_of_every_step_th_row_spans_the_groups() {
        let mut seed = 9;
        let mut store = FlatStore::default();
        for key in 0..1000u64 {
            store.insert(key, &Row::new(&body(&mut seed)).unwrap());
        }
        let all = store.all_rows();
        assert_eq!(all.len(), 1000);
        let sample = store.rows_every(7);
        // Every 7th row of the concatenated groups, lengths in proportion.
        let want: Vec<(u64, Row)> = all.iter().copied().step_by(7).collect();
        assert_eq!(sample, want);
        let lengths: std::collections::HashSet<usize> =
            sample.iter().map(|(_, r)| r.len()).collect();
        assert_eq!(lengths.len(), 4);
        assert_eq!(store.rows_every(0), all);
    }

    #[test]
    fn words_counts_what_a_query_of_each_length_reads() {
        let mut store = FlatStore::default();
        // 3 rows of 64 bits, 2 of 128, 1 of 256.
        for (key, bytes) in [(1, 8), (2, 8), (3, 8), (4, 16), (5, 16), (6, 32)] {
            store.insert(key, &Row::new(&vec![0xA5; bytes]).unwrap());
        }
        assert_eq!(store.words(1), 6);
        assert_eq!(store.words(2), 3 + 2 * 2 + 2);
        assert_eq!(store.words(4), 3 + 2 * 2 + 4);
        assert_eq!(FlatStore::default().words(4), 0);
    }

    #[test]
    fn insert_remove_get_keep_slots_consistent() {
        let mut seed = 11;
        let mut store = FlatStore::default();
        let mut model = HashMap::new();
        for step in 0..5000u64 {
            let key = lcg(&mut seed) % 500;
            if step % 3 == 0 {
                assert_eq!(store.remove(key), model.remove(&key).is_some());
            } else if let std::collections::hash_map::Entry::Vacant(slot) = model.entry(key) {
                let b = body(&mut seed);
                store.insert(key, &Row::new(&b).unwrap());
                slot.insert(b);
            }
        }
        assert_eq!(store.len(), model.len());
        for (key, b) in &model {
            assert_eq!(store.get(*key).unwrap().body(), &b[..]);
        }
        let mut listed: Vec<u64> = store.keys().collect();
        listed.sort();
        let mut keys: Vec<u64> = model.keys().copied().collect();
        keys.sort();
        assert_eq!(listed, keys);
    }
}
