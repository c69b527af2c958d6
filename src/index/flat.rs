//! The flat store: every row of a unit index, grouped by length and stored
//! word-major, for the exact scan, `get` and rebuilding the graph.
//!
//! Rows of 1, 2, 3 and 4 words (64–256 bits) live in four groups. Group `g`
//! holds `keys` and `g + 1` columns; column `w` is word `w` (little-endian
//! bytes `8w..8w+8` of the body) of every row. A query of `q` words compares
//! `min(q, g + 1)` words with group `g`, so the scan reads only the columns
//! that matter (see [`crate::metric::scan`]). Removal swaps the last row of
//! the group into the hole; `slots` maps each key to its place. Rows and
//! queries of other byte lengths (low-level indexes only) are compared
//! byte-exactly (see [`odd`]).
//!
//! Columns are either owned vectors or slices of a memory-mapped file
//! (read-only view); the file layout is the in-memory layout, so a view
//! opens without copying or parsing rows.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::metric::scan::{Kernel, MANY};
use crate::metric::{whole_words, Row};

mod group;
mod key_map;
mod lists;
mod odd;
mod order;
mod places;
mod topk;
mod words;
use super::ivf::Quantizer;
pub(crate) use group::Group;
use key_map::KeyMap;
use odd::OddRows;
pub(crate) use order::Order;
pub(crate) use topk::SharedBound;
use topk::TopK;
pub(crate) use words::Words;

/// Rows scanned per block before the threshold is tightened (and, in
/// batch scans, the block all queries of a chunk visit while it is cached).
const BLOCK: usize = 8192;

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

/// What a scan of one query asks for: the kernel, how many rows, the
/// largest distance taken, the row filter, and the lists scanned (`None`:
/// every row, the exact scan; see `lists.rs`).
#[derive(Clone, Copy)]
pub(crate) struct Scan<'a> {
    pub(crate) kernel: Kernel,
    pub(crate) k: usize,
    pub(crate) max_distance: Option<f32>,
    pub(crate) keep: Option<Keep<'a>>,
    pub(crate) lists: Option<&'a [u32]>,
}

/// The rows of one list (see the module docs), by length group.
#[derive(Debug, Clone)]
pub(crate) struct List {
    pub(crate) groups: [Group; 4],
}

impl Default for List {
    fn default() -> List {
        List {
            groups: [Group::new(1), Group::new(2), Group::new(3), Group::new(4)],
        }
    }
}

impl List {
    /// Rows in the list.
    pub(crate) fn len(&self) -> usize {
        self.groups.iter().map(Group::len).sum()
    }
}

/// Every row of an index, by list, then by length group.
#[derive(Debug, Clone)]
pub(crate) struct FlatStore {
    /// One list, or one per centroid of `quantizer`.
    pub(crate) lists: Vec<List>,
    /// Assigns a whole-word row to its list by its first word; `None`: one
    /// list holds every row.
    pub(crate) quantizer: Option<Arc<Quantizer>>,
    /// Rows whose length is not a whole number of words (see [`odd`]).
    pub(crate) odd: OddRows,
    /// Whole-word rows over all lists, kept here: summing the lists'
    /// groups reads every list, and every search asks whether the store
    /// is empty (4,000 lists at 10M rows).
    rows: usize,
    /// key -> place (group [`ODD`] of list 0 for `odd`); built on first
    /// use (a memory-mapped view opens without it).
    slots: OnceLock<KeyMap>,
}

/// The group number of [`FlatStore::odd`] in `slots`.
const ODD: u8 = 4;

impl Default for FlatStore {
    fn default() -> FlatStore {
        FlatStore {
            lists: vec![List::default()],
            quantizer: None,
            odd: OddRows::default(),
            rows: 0,
            slots: OnceLock::from(KeyMap::default()),
        }
    }
}

/// A prepared query: words, length in words (a partial last word counts),
/// length in bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanQuery {
    pub(crate) words: [u64; 4],
    pub(crate) len: usize,
    pub(crate) bytes: usize,
}

impl ScanQuery {
    pub(crate) fn new(row: &Row) -> ScanQuery {
        ScanQuery {
            words: row.words(),
            len: row.len().div_ceil(8),
            bytes: row.len(),
        }
    }

    /// True when the word kernels can compare it (whole words).
    fn whole(&self) -> bool {
        whole_words(self.bytes)
    }
}

impl FlatStore {
    /// A store of these lists (assigned by `quantizer`, one list when
    /// `None`) and no byte-granular rows; its key map is built on first
    /// use.
    pub(crate) fn of_lists(lists: Vec<List>, quantizer: Option<Arc<Quantizer>>) -> FlatStore {
        FlatStore {
            rows: lists.iter().map(List::len).sum(),
            lists,
            quantizer,
            odd: OddRows::default(),
            slots: OnceLock::new(),
        }
    }

    /// Number of rows.
    pub(crate) fn len(&self) -> usize {
        self.rows + self.odd.len()
    }

    /// Every group of every list, in storage order (list by list).
    pub(crate) fn groups(&self) -> impl Iterator<Item = &Group> + '_ {
        self.lists.iter().flat_map(|list| list.groups.iter())
    }

    /// Rows of group `g` (64, 128, 192 or 256 bits for 0–3) over all lists.
    pub(crate) fn len_of_group(&self, g: usize) -> usize {
        self.lists.iter().map(|list| list.groups[g].len()).sum()
    }

    /// The 64-bit words a scan by a query of `query_words` words reads at
    /// most: per row, the words the query and the row share. What a scan
    /// costs grows with it, not with the rows alone (a 64-bit index scans
    /// about four times cheaper per row than a 256-bit one).
    pub(crate) fn words(&self, query_words: usize) -> u64 {
        self.groups()
            .map(|g| (g.len() * g.words().min(query_words)) as u64)
            .sum::<u64>()
            + self.odd.words(query_words)
    }

    /// Copy mapped columns into RAM.
    pub(crate) fn make_owned(&mut self) {
        for group in self.lists.iter_mut().flat_map(|l| l.groups.iter_mut()) {
            group.make_owned();
        }
    }

    /// Positions of rows in storage order (the order of
    /// [`FlatStore::all_rows`] and of a saved file's rows).
    pub(crate) fn order(&self) -> Order<'_> {
        let mut starts = Vec::with_capacity(4 * self.lists.len() + 1);
        let mut at = 0;
        for group in self.groups() {
            starts.push(at);
            at += group.len();
        }
        starts.push(at);
        Order { flat: self, starts }
    }

    /// The list a whole-word row belongs in.
    pub(crate) fn list_of(&self, words: &[u64; 4]) -> usize {
        self.quantizer.as_ref().map_or(0, |q| q.nearest(words[0]))
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
        for group in self.groups() {
            let n = group.len();
            let mut i = skip;
            while i < n {
                out.push((group.key(i), group.row(i)));
                i += step;
            }
            // Carry the stride across groups.
            skip = i - n;
        }
        out.extend(
            (skip..self.odd.len())
                .step_by(step)
                .map(|i| (self.odd.keys[i], self.odd.rows[i])),
        );
        out
    }

    /// Rows `start..start + n` in group order, then the byte-granular ones,
    /// as (key, body) (a page of [`FlatStore::all_rows`] without building
    /// it whole).
    pub(crate) fn page(&self, start: usize, n: usize) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::with_capacity(n.min(self.len().saturating_sub(start)));
        let mut skip = start;
        for group in self.groups() {
            let len = group.len();
            if skip >= len {
                skip -= len;
                continue;
            }
            for (i, key) in group.keys().iter().enumerate().skip(skip) {
                if out.len() == n {
                    return out;
                }
                out.push((key, group.row(i).body().to_vec()));
            }
            skip = 0;
        }
        let odd = &self.odd;
        let room = n - out.len();
        out.extend(
            (skip.min(odd.len())..odd.len())
                .take(room)
                .map(|i| (odd.keys[i], odd.rows[i].body().to_vec())),
        );
        out
    }

    /// Every key, group by group.
    pub(crate) fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.groups()
            .flat_map(|group| group.keys().iter())
            .chain(self.odd.keys.iter().copied())
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
        let scan = Scan {
            kernel,
            k,
            max_distance,
            keep,
            lists: None,
        };
        self.search_split(query, scan, None, 1).0
    }

    /// Exact top-`k` of one query, its rows cut into `parts` ranges scanned
    /// in parallel on the thread pool; the scans share one bound (`shared`,
    /// or one of their own), so together they read about what one scan
    /// reads. Results equal [`FlatStore::search`]'s (see [`SharedBound`]).
    /// Also returns the time the parts took together (the work, not the
    /// wait: what the scan costs a loaded machine).
    pub(crate) fn search_split(
        &self,
        query: &ScanQuery,
        scan: Scan<'_>,
        shared: Option<&SharedBound>,
        parts: usize,
    ) -> (Vec<Hit>, Duration) {
        let queries = std::slice::from_ref(query);
        let part = |p: usize, bound: Option<&SharedBound>| {
            let t = Instant::now();
            let top = TopK::shared(scan.k, scan.max_distance, bound);
            let hits = self
                .search_part(
                    scan.kernel,
                    queries,
                    vec![top],
                    (scan.keep, scan.lists),
                    (p, parts.max(1)),
                )
                .pop()
                .unwrap_or_default();
            (hits, t.elapsed())
        };
        if parts <= 1 {
            return part(0, shared);
        }
        let own = SharedBound::default();
        let bound = shared.unwrap_or(&own);
        let (found, times): (Vec<Vec<Hit>>, Vec<Duration>) = (0..parts)
            .into_par_iter()
            .map(|p| part(p, Some(bound)))
            .unzip();
        let mut hits: Vec<Hit> = found.into_iter().flatten().collect();
        hits.sort_unstable();
        hits.truncate(scan.k);
        (hits, times.into_iter().sum())
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
        let tops = queries.iter().map(|_| TopK::new(k, max_distance)).collect();
        self.search_part(kernel, queries, tops, (keep, None), (0, 1))
    }

    /// Part `part.0` of `part.1` equal row ranges of every group of the
    /// chosen lists (all when `None`), scanned for each query into its
    /// `tops` (byte-granular rows and queries, compared elsewhere, go with
    /// part 0).
    fn search_part(
        &self,
        kernel: Kernel,
        queries: &[ScanQuery],
        mut tops: Vec<TopK<'_>>,
        (keep, lists): (Option<Keep<'_>>, Option<&[u32]>),
        part: (usize, usize),
    ) -> Vec<Vec<Hit>> {
        if tops.iter().all(|t| t.k == 0) {
            return tops.into_iter().map(TopK::into_sorted).collect();
        }
        // Candidate buffers per thread, reused across searches (a fresh
        // 64 KiB allocation per query showed in profiles of small indexes).
        thread_local! {
            static CANDIDATES: std::cell::RefCell<Vec<Vec<(u32, u32)>>> =
                std::cell::RefCell::new((0..MANY).map(|_| Vec::with_capacity(BLOCK)).collect());
        }
        CANDIDATES.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => {
                self.scan_groups(kernel, queries, &mut tops, (keep, lists), part, &mut buf)
            }
            Err(_) => self.scan_groups(
                kernel,
                queries,
                &mut tops,
                (keep, lists),
                part,
                &mut vec![Vec::new(); MANY],
            ),
        });
        // Byte-granular rows and queries (none in an index of ISCC units).
        if part.0 == 0 {
            for (query, top) in queries.iter().zip(tops.iter_mut()) {
                if !query.whole() {
                    odd::scan_groups(self.groups(), query, top, keep);
                }
                if self.odd.len() > 0 {
                    self.odd.scan(query, top, keep);
                }
                top.publish();
            }
        }
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
        tops: &mut [TopK<'_>],
        (keep, lists): (Option<Keep<'_>>, Option<&[u32]>),
        (part, parts): (usize, usize),
        candidates: &mut [Vec<(u32, u32)>],
    ) {
        let k = tops.iter().map(|t| t.k).max().unwrap_or(0);
        // Byte-granular queries are compared elsewhere (see `odd`).
        let whole = |j: usize| queries[j].whole();
        // Queries by the words they compare with this group.
        let mut by_words: [Vec<usize>; 4] = Default::default();
        let chosen: Box<dyn Iterator<Item = &List> + '_> = match lists {
            None => Box::new(self.lists.iter()),
            Some(lists) => Box::new(lists.iter().filter_map(|&l| self.lists.get(l as usize))),
        };
        let mut chosen = chosen.peekable();
        // Group by group, the next list's first rows asked for meanwhile
        // (a probe visits lists in no order memory could predict).
        let groups = std::iter::from_fn(|| {
            let list = chosen.next()?;
            if let Some(next) = chosen.peek() {
                next.groups.iter().for_each(Group::prefetch);
            }
            Some(list.groups.iter())
        })
        .flatten();
        for group in groups {
            let n = group.len();
            if n == 0 {
                continue;
            }
            let words = group.words();
            for list in by_words.iter_mut() {
                list.clear();
            }
            for (j, query) in queries.iter().enumerate() {
                let m = query.len.min(words);
                if m > 0 && tops[j].k > 0 && whole(j) {
                    by_words[m - 1].push(j);
                }
            }
            let (mut start, stop) = (n * part / parts, n * (part + 1) / parts);
            while start < stop {
                // While a heap is not full its threshold admits every row:
                // scan a short block first, so the threshold tightens
                // before the long blocks (each row offered costs a heap
                // comparison; a full first block of 8,192 offers dominated
                // small indexes).
                let filling = (0..tops.len()).any(|j| whole(j) && tops[j].filling());
                let step = if filling {
                    (k * 4).clamp(64, BLOCK)
                } else {
                    BLOCK
                };
                // A block lies in one run of every column (see `words.rs`,
                // `group.rs`).
                let end = (start + step).min(stop).min(group.run_end_of(start));
                let keys = group.run(0, start, end);
                for (w, list) in by_words.iter().enumerate() {
                    if list.is_empty() {
                        continue;
                    }
                    let m = w + 1;
                    let bits = 64 * m as u32;
                    let mut block: [&[u64]; 4] = [&[]; 4];
                    for (c, b) in block[..m].iter_mut().enumerate() {
                        *b = group.run(c + 1, start, end);
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
                                let key = keys[i as usize];
                                if keep.is_none_or(|keep| keep(key)) {
                                    top.offer(Hit {
                                        distance: h as f32 / bits as f32,
                                        key,
                                    });
                                }
                            }
                            top.publish();
                        }
                    }
                }
                start = end;
            }
        }
    }
}

#[cfg(test)]
mod tests;
