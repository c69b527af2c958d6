//! One column of a flat store: u64 words, one per row, shared by snapshots.
//!
//! Owned words live in chunks of [`CHUNK`] rows behind `Arc`s: cloning a
//! column (a writer's copy of a snapshot that searches still hold) shares
//! every chunk, and an edit copies only the chunks it touches — an add the
//! last one, a swap-remove the last and the hole's. So a write beside
//! running searches costs what it changes, not the size of the index.
//! Mapped words are one slice of a memory-mapped file (a read-only view);
//! an edit first copies them into chunks.
//!
//! Scans read a column run by run ([`Words::run_end_of`], [`Words::slice`]):
//! a run is one chunk, or the whole mapped slice. [`CHUNK`] equals the
//! scan's block, so runs cost the block loop nothing.

use std::sync::Arc;

use memmap2::Mmap;

/// Rows per chunk of an owned column (a power of two).
pub(crate) const CHUNK: usize = 8192;
const SHIFT: u32 = CHUNK.trailing_zeros();

/// A column of u64: chunks shared by snapshots, or a slice of a shared
/// memory map (see the module docs).
#[derive(Debug, Clone)]
pub(crate) enum Words {
    /// Every chunk but the last holds exactly [`CHUNK`] words; none is empty.
    Chunks(Vec<Arc<Vec<u64>>>),
    /// `len` words at byte `offset` of `map`.
    Mapped {
        map: Arc<Mmap>,
        offset: usize,
        len: usize,
    },
}

impl Default for Words {
    fn default() -> Words {
        Words::Chunks(Vec::new())
    }
}

impl FromIterator<u64> for Words {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Words {
        let mut chunks = Vec::new();
        let mut iter = iter.into_iter().peekable();
        while iter.peek().is_some() {
            let chunk: Vec<u64> = iter.by_ref().take(CHUNK).collect();
            chunks.push(Arc::new(chunk));
        }
        Words::Chunks(chunks)
    }
}

impl Words {
    /// Number of words.
    pub(crate) fn len(&self) -> usize {
        match self {
            Words::Chunks(chunks) => match chunks.last() {
                Some(last) => ((chunks.len() - 1) << SHIFT) + last.len(),
                None => 0,
            },
            Words::Mapped { len, .. } => *len,
        }
    }

    fn mapped(map: &Mmap, offset: usize, len: usize) -> &[u64] {
        let bytes = &map[offset..offset + len * 8];
        // SAFETY: the map is page-aligned and `offset` a multiple of 8
        // (checked when the view was opened), the range lies inside the
        // map (checked too), u64 has no invalid bit patterns, and the map
        // lives as long as the borrow of `self` through the Arc.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<u64>(), len) }
    }

    /// Word `i` (in bounds).
    #[inline]
    pub(crate) fn get(&self, i: usize) -> u64 {
        match self {
            Words::Chunks(chunks) => chunks[i >> SHIFT][i & (CHUNK - 1)],
            Words::Mapped { map, offset, len } => Words::mapped(map, *offset, *len)[i],
        }
    }

    /// The end of the run that holds word `start` of words that are `len`
    /// long (a chunk's end, or the length): `start..run_end_of(start, len)`
    /// is one slice. The caller knows the length (a group keeps it):
    /// reading it here would follow the pointer to the last chunk.
    #[inline]
    pub(crate) fn run_end_of(&self, start: usize, len: usize) -> usize {
        match self {
            Words::Chunks(_) => ((start >> SHIFT) + 1).saturating_mul(CHUNK).min(len),
            Words::Mapped { .. } => len,
        }
    }

    /// Words `start..end`, which lie in one run (`end <= run_end_of(start, len)`).
    #[inline]
    pub(crate) fn slice(&self, start: usize, end: usize) -> &[u64] {
        match self {
            Words::Chunks(chunks) => {
                let base = (start >> SHIFT) << SHIFT;
                &chunks[start >> SHIFT][start - base..end - base]
            }
            Words::Mapped { map, offset, len } => &Words::mapped(map, *offset, *len)[start..end],
        }
    }

    /// Every word, run by run.
    pub(crate) fn runs(&self) -> impl Iterator<Item = &[u64]> + '_ {
        let (chunks, mapped): (&[Arc<Vec<u64>>], Option<&[u64]>) = match self {
            Words::Chunks(chunks) => (chunks, None),
            Words::Mapped { map, offset, len } => (&[], Some(Words::mapped(map, *offset, *len))),
        };
        chunks.iter().map(|c| c.as_slice()).chain(mapped)
    }

    /// Every word in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.runs().flat_map(|run| run.iter().copied())
    }

    /// The chunks, copying mapped words into them first.
    fn chunks_mut(&mut self) -> &mut Vec<Arc<Vec<u64>>> {
        if let Words::Mapped { .. } = self {
            *self = self.iter().collect();
        }
        match self {
            Words::Chunks(chunks) => chunks,
            Words::Mapped { .. } => unreachable!("copied into chunks above"),
        }
    }

    /// Copy mapped words into owned chunks (owned words are left as they
    /// are).
    pub(crate) fn make_owned(&mut self) {
        self.chunks_mut();
    }

    /// Append a word (copies the last chunk if a snapshot shares it).
    pub(crate) fn push(&mut self, word: u64) {
        let chunks = self.chunks_mut();
        match chunks.last_mut() {
            Some(last) if last.len() < CHUNK => Arc::make_mut(last).push(word),
            _ => chunks.push(Arc::new(vec![word])),
        }
    }

    /// Remove word `i` (in bounds), moving the last word into its place.
    pub(crate) fn swap_remove(&mut self, i: usize) {
        let Some(last) = self.len().checked_sub(1) else {
            return;
        };
        let word = self.get(last);
        let chunks = self.chunks_mut();
        if let Some(tail) = chunks.last_mut() {
            Arc::make_mut(tail).pop();
            if tail.is_empty() {
                chunks.pop();
            }
        }
        if i < last {
            Arc::make_mut(&mut chunks[i >> SHIFT])[i & (CHUNK - 1)] = word;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk_ptrs(w: &Words) -> Vec<*const Vec<u64>> {
        match w {
            Words::Chunks(c) => c.iter().map(Arc::as_ptr).collect(),
            Words::Mapped { .. } => Vec::new(),
        }
    }

    #[test]
    fn pushes_and_swap_removes_match_a_vec_across_chunk_edges() {
        let mut w = Words::default();
        let mut v: Vec<u64> = Vec::new();
        for i in 0..(2 * CHUNK + 5) as u64 {
            w.push(i);
            v.push(i);
        }
        assert_eq!(
            (w.len(), w.iter().collect::<Vec<_>>()),
            (v.len(), v.clone())
        );
        // Holes in the first chunk, at a chunk edge, at the end, and
        // enough removals to empty the last chunk.
        // (usize::MAX: the last word.)
        for i in [0, 17, CHUNK - 1, CHUNK, usize::MAX, 3, 3, 3, 3, 3, 3, 3] {
            let i = i.min(v.len() - 1);
            w.swap_remove(i);
            v.swap_remove(i);
            assert_eq!(w.len(), v.len());
        }
        assert_eq!(w.iter().collect::<Vec<_>>(), v);
        for i in 0..v.len() {
            assert_eq!(w.get(i), v[i]);
            let end = w.run_end_of(i, w.len());
            assert!(end > i && end <= v.len() && (end == v.len() || end % CHUNK == 0));
            assert_eq!(w.slice(i, end), &v[i..end]);
        }
        while w.len() > 0 {
            w.swap_remove(0);
            v.swap_remove(0);
        }
        assert!(v.is_empty() && w.runs().next().is_none());
    }

    #[test]
    fn a_clone_shares_chunks_and_an_edit_copies_only_what_it_touches() {
        let mut w: Words = (0..(3 * CHUNK) as u64).collect();
        let held = w.clone();
        w.push(1);
        let (a, b) = (chunk_ptrs(&held), chunk_ptrs(&w));
        assert_eq!(&a[..], &b[..3], "full chunks stay shared");
        assert_eq!(b.len(), 4);
        w.swap_remove(5);
        let c = chunk_ptrs(&w);
        assert_ne!(c[0], a[0], "the hole's chunk is copied");
        assert_eq!(&c[1..3], &a[1..3]);
        // The held snapshot still reads what it had.
        assert_eq!(
            held.iter().collect::<Vec<_>>(),
            (0..(3 * CHUNK) as u64).collect::<Vec<_>>()
        );
        assert_eq!((w.get(5), w.len()), (1, 3 * CHUNK));
    }
}
