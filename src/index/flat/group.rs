//! One length group of a list: keys and word columns, and where their
//! first run starts, kept inline.
//!
//! A column's words sit behind three pointers (the column's chunk vector,
//! the chunk's `Arc`, the chunk's `Vec`), each a cache miss when a search
//! probes a list it has not touched lately; profiles of 1M-row searches
//! probing 64 of 400 lists spent a fifth of their time following them, for
//! groups of a few hundred rows. So a group keeps the start of each
//! column's first run ([`Heads`]) beside its length: a scan of a group that
//! fits in one run (every list of a partitioned store: a run is 8,192
//! rows) reads its rows straight from there. The fields are private so
//! that every edit goes through a method that refreshes the heads.

use super::Words;
use crate::metric::{Row, ROW_BYTES};

/// Words of each column a prefetch asks for into L1 (see
/// [`Group::prefetch`]).
const PREFETCH_WORDS: usize = 16;

/// Words of the first two word columns a prefetch asks for into L2 (a
/// list's group holds a few hundred rows; 32 KiB each at most).
const PREFETCH_REST_WORDS: usize = 4096;

/// The start of the first run of the keys and of each column, and the
/// run's length (see the module docs).
#[derive(Debug, Clone, Copy)]
struct Heads {
    /// Keys, then words 0 to 3 (null past the group's columns, and all
    /// null while `len` is 0).
    starts: [*const u64; 5],
    /// Words from each start that lie in one run of its column.
    len: usize,
}

// SAFETY: the pointers only read words that the group holding them owns
// (through `Arc`s or a shared memory map), and those are never written
// while shared: a `Words` edit needs `&mut`, copies a shared chunk first
// (`Arc::make_mut`), and every edit of a group refreshes its heads. So
// sharing or sending heads shares or sends nothing more than `&[u64]`
// into the group's own columns would.
unsafe impl Send for Heads {}
// SAFETY: as above.
unsafe impl Sync for Heads {}

impl Default for Heads {
    fn default() -> Heads {
        Heads {
            starts: [std::ptr::null(); 5],
            len: 0,
        }
    }
}

/// Rows of one length: keys and `words` columns (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct Group {
    keys: Words,
    cols: Vec<Words>,
    /// Rows (the keys' length, kept here: reading it from the columns
    /// follows their pointers).
    rows: usize,
    heads: Heads,
}

impl Group {
    /// An empty group of rows of `words` words.
    pub(super) fn new(words: usize) -> Group {
        Group::with(
            Words::default(),
            (0..words).map(|_| Words::default()).collect(),
        )
    }

    /// A group of these keys and columns (each as long as the keys).
    pub(crate) fn with(keys: Words, cols: Vec<Words>) -> Group {
        let rows = keys.len();
        debug_assert!(cols.iter().all(|c| c.len() == rows));
        debug_assert!(cols.len() <= 4);
        let mut group = Group {
            keys,
            cols,
            rows,
            heads: Heads::default(),
        };
        group.refresh();
        group
    }

    /// Point the heads at the columns as they are now (after every edit).
    fn refresh(&mut self) {
        let len = self.columns_run_end(0);
        let mut heads = Heads::default();
        if len > 0 {
            heads.len = len;
            heads.starts[0] = self.keys.slice(0, len).as_ptr();
            for (start, col) in heads.starts[1..].iter_mut().zip(&self.cols) {
                *start = col.slice(0, len).as_ptr();
            }
        }
        self.heads = heads;
    }

    /// Ask the CPU to start loading the first rows of the keys and every
    /// column into L1, and the rest of the first two word columns (up to
    /// [`PREFETCH_REST_WORDS`]), which the filter reads for nearly every
    /// row, into L2: a scan about to visit this group hides the misses
    /// behind the scan of the group before it. The hardware prefetcher
    /// only ramps up after a few misses of each column, too late for
    /// groups of a few hundred rows; at 1M rows in 400 lists, asking for
    /// the whole columns made a probe of 37 lists 1.2x as fast (three
    /// pairs alternated in one process: 11,253 against 9,399 q/s).
    #[inline]
    pub(crate) fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        if self.heads.len > 0 {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0, _MM_HINT_T1};
            let lines = self.heads.len.min(PREFETCH_WORDS).div_ceil(8);
            for &start in &self.heads.starts[..=self.cols.len()] {
                for line in 0..lines {
                    // SAFETY: a prefetch is a hint that never faults; the
                    // address lies within the run anyway.
                    unsafe { _mm_prefetch(start.wrapping_add(8 * line).cast::<i8>(), _MM_HINT_T0) };
                }
            }
            let all = self.heads.len.min(PREFETCH_REST_WORDS).div_ceil(8);
            for &start in &self.heads.starts[1..=self.cols.len().min(2)] {
                for line in lines..all {
                    // SAFETY: as above.
                    unsafe { _mm_prefetch(start.wrapping_add(8 * line).cast::<i8>(), _MM_HINT_T1) };
                }
            }
        }
    }

    /// Rows.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    /// The keys.
    pub(crate) fn keys(&self) -> &Words {
        &self.keys
    }

    /// The word columns (one per word of its rows).
    pub(crate) fn cols(&self) -> &[Words] {
        &self.cols
    }

    /// Words per row.
    #[inline]
    pub(crate) fn words(&self) -> usize {
        self.cols.len()
    }

    /// The end of the run holding row `start`: rows `start..end` of every
    /// column are one slice ([`Group::run`]).
    #[inline]
    pub(crate) fn run_end_of(&self, start: usize) -> usize {
        if start < self.heads.len {
            return self.heads.len;
        }
        self.columns_run_end(start)
    }

    /// The end of the run holding row `start` in the keys and every column,
    /// asked of the columns themselves (following their pointers).
    fn columns_run_end(&self, start: usize) -> usize {
        let n = self.rows;
        self.cols
            .iter()
            .fold(self.keys.run_end_of(start, n), |end, c| {
                end.min(c.run_end_of(start, n))
            })
    }

    /// Rows `start..end` (within one run: `end <= run_end_of(start)`) of
    /// the keys (`c` 0) or of word `c - 1`.
    #[inline]
    pub(crate) fn run(&self, c: usize, start: usize, end: usize) -> &[u64] {
        if end <= self.heads.len && start <= end && c <= self.cols.len() {
            // SAFETY: while `heads.len` > 0, `starts[c]` for the keys and
            // each column points at `heads.len` words of one run of that
            // column, owned by `self` and unchanged since the last refresh
            // (every edit takes `&mut self` and refreshes; see `Heads`);
            // `start <= end <= heads.len`, so the range lies inside.
            return unsafe {
                std::slice::from_raw_parts(self.heads.starts[c].add(start), end - start)
            };
        }
        match c {
            0 => self.keys.slice(start, end),
            _ => self.cols[c - 1].slice(start, end),
        }
    }

    /// Row `i` (in bounds) as stored: its words, little-endian.
    #[inline]
    pub(crate) fn row(&self, i: usize) -> Row {
        let mut row = Row([0; ROW_BYTES]);
        row.0[0] = (8 * self.cols.len()) as u8;
        for (w, col) in self.cols.iter().enumerate() {
            row.0[1 + 8 * w..9 + 8 * w].copy_from_slice(&col.get(i).to_le_bytes());
        }
        row
    }

    /// The key of row `i` (in bounds).
    #[inline]
    pub(crate) fn key(&self, i: usize) -> u64 {
        self.keys.get(i)
    }

    /// Append a row: its key and its words (the first `words()` of them).
    pub(crate) fn push(&mut self, key: u64, words: &[u64; 4]) {
        self.keys.push(key);
        for (col, &word) in self.cols.iter_mut().zip(words) {
            col.push(word);
        }
        self.rows += 1;
        self.refresh();
    }

    /// Remove row `i` (in bounds), moving the last row into its place; the
    /// key moved, if any.
    pub(crate) fn swap_remove(&mut self, i: usize) -> Option<u64> {
        self.keys.swap_remove(i);
        for col in self.cols.iter_mut() {
            col.swap_remove(i);
        }
        self.rows -= 1;
        let moved = (i < self.rows).then(|| self.keys.get(i));
        self.refresh();
        moved
    }

    /// Copy mapped columns into RAM.
    pub(crate) fn make_owned(&mut self) {
        self.keys.make_owned();
        for col in &mut self.cols {
            col.make_owned();
        }
        self.refresh();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::flat::words::CHUNK;

    /// The heads follow every edit: after pushes across a chunk edge,
    /// swap-removes, a clone edited apart from its original and a copy of
    /// shared chunks, every run read through them equals the columns.
    #[test]
    fn runs_read_through_the_heads_equal_the_columns_after_every_edit() {
        let check = |g: &Group| {
            let mut start = 0;
            while start < g.len() {
                let end = g.run_end_of(start);
                assert!(end > start && end <= g.len());
                for c in 0..=g.words() {
                    let col = if c == 0 { g.keys() } else { &g.cols()[c - 1] };
                    let want: Vec<u64> = (start..end).map(|i| col.get(i)).collect();
                    assert_eq!(g.run(c, start, end), &want[..], "column {c} at {start}");
                }
                start = end;
            }
        };
        let mut g = Group::new(3);
        check(&g);
        for i in 0..(CHUNK + 100) as u64 {
            g.push(1_000_000 + i, &[i, i * 3, i * 7, 0]);
            if i % 1_000 == 0 || i as usize >= CHUNK - 1 && i as usize <= CHUNK + 1 {
                check(&g);
            }
        }
        let held = g.clone();
        for i in [0, 17, CHUNK - 1, 5] {
            assert!(g.swap_remove(i).is_some());
            check(&g);
        }
        // The clone still reads its own (shared, then unshared) chunks.
        check(&held);
        assert_eq!(held.run(0, 0, 1), &[1_000_000]);
        assert_ne!(g.run(0, 0, 1), &[1_000_000]);
        while g.len() > 0 {
            g.swap_remove(g.len() - 1);
        }
        check(&g);
        check(&held);
    }
}
