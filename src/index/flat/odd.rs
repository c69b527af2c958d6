//! Byte-granular rows and queries: bodies whose length is not a whole
//! number of 64-bit words (1–31 bytes; iscc-usearch's low-level indexes
//! take any byte length, ISCC units never have one).
//!
//! The word kernels compare whole words, and masking a partial last word
//! per row would cost every scan of ISCC units a mask load per group; so
//! such rows live in a list of their own, compared byte-exactly here, and
//! such a query is compared byte-exactly with every row. Distances equal
//! the scalar reference [`crate::metric::nphd`] bit for bit (the same
//! integer count over the same divisor).

use crate::metric::{prefix_mask, Row};

use super::{Group, Hit, Keep, ScanQuery, TopK};

/// Differing bits of the first `bytes` bytes of two word arrays.
#[inline]
fn diff(a: &[u64; 4], b: &[u64; 4], bytes: usize) -> u32 {
    (0..bytes.div_ceil(8))
        .map(|w| ((a[w] ^ b[w]) & prefix_mask(bytes, w)).count_ones())
        .sum()
}

/// The hit of a row for a query of `query_bytes`, the row having `row_bytes`.
#[inline]
fn hit(query: &ScanQuery, words: &[u64; 4], row_bytes: usize, key: u64) -> Hit {
    let bytes = query.bytes.min(row_bytes);
    Hit {
        distance: diff(&query.words, words, bytes) as f32 / (8 * bytes) as f32,
        key,
    }
}

/// Rows whose length is not a multiple of 8 bytes, in insertion order
/// (removal swaps the last row into the hole, as in a group).
#[derive(Debug, Clone, Default)]
pub(crate) struct OddRows {
    pub(crate) keys: Vec<u64>,
    pub(crate) rows: Vec<Row>,
}

impl OddRows {
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn push(&mut self, key: u64, row: Row) {
        self.keys.push(key);
        self.rows.push(row);
    }

    /// Remove row `i`; returns the key moved into its place, if any.
    pub(crate) fn swap_remove(&mut self, i: usize) -> Option<u64> {
        self.keys.swap_remove(i);
        self.rows.swap_remove(i);
        self.keys.get(i).copied()
    }

    /// Words a query of `query_words` words reads here at most.
    pub(crate) fn words(&self, query_words: usize) -> u64 {
        self.rows
            .iter()
            .map(|r| r.len().div_ceil(8).min(query_words) as u64)
            .sum()
    }

    /// Offer every row to a query's top-k.
    pub(super) fn scan(&self, query: &ScanQuery, top: &mut TopK, keep: Option<Keep<'_>>) {
        for (&key, row) in self.keys.iter().zip(&self.rows) {
            if keep.is_none_or(|keep| keep(key)) {
                top.offer_unfiltered(hit(query, &row.words(), row.len(), key));
            }
        }
    }
}

/// Offer every row of the word groups to a byte-granular query's top-k.
pub(super) fn scan_groups<'g>(
    groups: impl Iterator<Item = &'g Group>,
    query: &ScanQuery,
    top: &mut TopK,
    keep: Option<Keep<'_>>,
) {
    for group in groups {
        let cols = group.cols();
        let row_bytes = 8 * cols.len();
        for (i, key) in group.keys().iter().enumerate() {
            if keep.is_some_and(|keep| !keep(key)) {
                continue;
            }
            let mut words = [0u64; 4];
            for (w, col) in words.iter_mut().zip(cols) {
                *w = col.get(i);
            }
            top.offer_unfiltered(hit(query, &words, row_bytes, key));
        }
    }
}
