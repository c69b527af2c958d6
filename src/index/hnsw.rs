//! A thin owner of one usearch HNSW index (`b1x8`, 264 bits) with the NPHD
//! metric installed.
//!
//! usearch forgets a custom metric on every `load`/`view`/buffer load, and a
//! forgotten metric silently turns NPHD into raw Hamming distances; every
//! path here that replaces the index contents installs the metric again.
//! usearch also needs a thread slot for each concurrent call: the owner of
//! this type guards calls with a semaphore of [`Hnsw::THREAD_SLOTS`] permits.

use std::sync::Arc;

use cxx::UniquePtr;
use memmap2::Mmap;
use usearch::ffi::{new_native_index, IndexOptions, MetricKind, NativeIndex, ScalarKind};

use crate::metric::{metric_calls, usearch_metric, ROW_BITS, ROW_BYTES};

/// Graph parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GraphParams {
    pub(crate) connectivity: usize,
    pub(crate) expansion_add: usize,
    pub(crate) expansion_search: usize,
}

/// The answer of a graph search and what it cost (see [`Hnsw::search`]).
pub(crate) struct GraphHits {
    pub(crate) keys: Vec<u64>,
    pub(crate) distances: Vec<f32>,
    pub(crate) visited: u64,
    pub(crate) computed: u64,
}

pub(crate) struct Hnsw {
    native: UniquePtr<NativeIndex>,
    /// The configured `expansion_search` (what [`Hnsw::params`] reports);
    /// usearch's own value may differ for a while (see
    /// [`Hnsw::set_walk_expansion`]).
    expansion_search: usize,
    /// The bytes a view points into; declared after `native`, so it is
    /// dropped after the index that reads it.
    backing: Option<Backing>,
}

/// Bytes usearch views: a mapped graph file, or a graph assembled in RAM
/// (a compact file's; a `Vec`'s heap block does not move with the `Vec`).
pub(crate) enum Backing {
    Map(Arc<Mmap>),
    Owned(Vec<u8>),
}

impl Backing {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Backing::Map(map) => map,
            Backing::Owned(bytes) => bytes,
        }
    }
}

// SAFETY: usearch's dense index supports concurrent `add`, `search`,
// `remove`, `contains` and `get` from many threads as long as each caller
// holds a thread slot (reserved with `reserve_capacity_and_threads`, and
// guarded by the owner's semaphore). Structural operations (reserve, load,
// view, reset, metric change) take `&mut self`, which the owner only gets
// under its exclusive lock.
unsafe impl Send for Hnsw {}
// SAFETY: see above.
unsafe impl Sync for Hnsw {}

/// A usearch error as text.
pub(crate) type NativeResult<T> = Result<T, String>;

fn native<T>(r: Result<T, cxx::Exception>) -> NativeResult<T> {
    r.map_err(|e| e.what().to_string())
}

impl Hnsw {
    /// Concurrent callers usearch can serve at once.
    pub(crate) const THREAD_SLOTS: usize = 64;

    pub(crate) fn new(params: GraphParams) -> NativeResult<Hnsw> {
        let options = IndexOptions {
            dimensions: ROW_BITS,
            metric: MetricKind::Hamming,
            quantization: ScalarKind::B1,
            connectivity: params.connectivity,
            expansion_add: params.expansion_add,
            expansion_search: params.expansion_search,
            multi: false,
        };
        let index = native(new_native_index(&options))?;
        let mut hnsw = Hnsw {
            native: index,
            expansion_search: params.expansion_search,
            backing: None,
        };
        hnsw.install_metric()?;
        native(
            hnsw.native
                .reserve_capacity_and_threads(0, Self::THREAD_SLOTS),
        )?;
        Ok(hnsw)
    }

    fn install_metric(&mut self) -> NativeResult<()> {
        let metric = usearch_metric() as usize;
        native(self.native.change_metric(metric, 0))
    }

    pub(crate) fn params(&self) -> GraphParams {
        GraphParams {
            connectivity: self.native.connectivity(),
            expansion_add: self.native.expansion_add(),
            expansion_search: self.expansion_search,
        }
    }

    pub(crate) fn set_expansion_search(&mut self, n: usize) {
        self.expansion_search = n;
        self.native.change_expansion_search(n);
    }

    /// Make the searches that follow walk with `expansion_search` `n`
    /// (usearch keeps it per index), leaving the configured value as it
    /// is.
    ///
    /// # Safety
    /// No search of this index may run at the same time: usearch reads the
    /// value during a search without synchronisation (a data race in C++).
    /// Adds and removes read `expansion_add` only and may run.
    pub(crate) unsafe fn set_walk_expansion(&self, n: usize) {
        self.native.change_expansion_search(n);
    }

    pub(crate) fn set_expansion_add(&mut self, n: usize) {
        self.native.change_expansion_add(n);
    }

    pub(crate) fn size(&self) -> usize {
        self.native.size()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.native.capacity()
    }

    /// Make room for `additional` more rows (never the usearch capacity error
    /// for callers).
    pub(crate) fn ensure_capacity(&mut self, additional: usize) -> NativeResult<()> {
        let needed = self.size() + additional;
        if needed > self.capacity() {
            let target = needed.max(self.capacity() * 2).max(1024);
            native(
                self.native
                    .reserve_capacity_and_threads(target, Self::THREAD_SLOTS),
            )?;
        }
        Ok(())
    }

    pub(crate) fn add(&self, key: u64, row: &[u8; ROW_BYTES]) -> NativeResult<()> {
        native(self.native.add_b1x8(key, row))
    }

    pub(crate) fn contains(&self, key: u64) -> bool {
        self.native.contains(key)
    }

    pub(crate) fn remove(&self, key: u64) -> NativeResult<usize> {
        native(self.native.remove(key))
    }

    /// Search, visiting only keys for which `keep` is true (usearch skips
    /// the others while walking the graph, so `count` live results come
    /// back even when many rows are filtered out). Also returns what the
    /// walk cost: graph nodes taken into its candidate set (usearch asks
    /// the filter once for each) and NPHD computations (counted by the
    /// metric on this thread, where the whole walk runs).
    pub(crate) fn search(
        &self,
        row: &[u8; ROW_BYTES],
        count: usize,
        keep: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> NativeResult<GraphHits> {
        struct Filter<'a> {
            keep: Option<&'a (dyn Fn(u64) -> bool + Sync)>,
            asked: std::cell::Cell<u64>,
        }
        extern "C" fn trampoline(key: u64, state: usize) -> bool {
            // SAFETY: `state` is the address of the `Filter` below, which
            // outlives the native call that invokes this function on this
            // thread.
            let filter = unsafe { &*(state as *const Filter<'_>) };
            filter.asked.set(filter.asked.get() + 1);
            match filter.keep {
                None => true,
                // A panic must not unwind into C++: treat it as "skip".
                Some(keep) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| keep(key)))
                    .unwrap_or(false),
            }
        }
        let filter = Filter {
            keep,
            asked: std::cell::Cell::new(0),
        };
        let state = &filter as *const Filter<'_> as usize;
        let before = metric_calls();
        let m = native(self.native.filtered_search_b1x8(
            row,
            count,
            trampoline as *const () as usize,
            state,
        ))?;
        Ok(GraphHits {
            keys: m.keys,
            distances: m.distances,
            visited: filter.asked.get(),
            computed: metric_calls().wrapping_sub(before),
        })
    }

    pub(crate) fn serialized_length(&self) -> usize {
        self.native.serialized_length()
    }

    pub(crate) fn memory_usage(&self) -> usize {
        self.native.memory_usage()
    }

    /// The graph serialized into bytes (what `save` writes to a file).
    pub(crate) fn to_bytes(&self) -> NativeResult<Vec<u8>> {
        let mut buffer = vec![0u8; self.serialized_length()];
        native(self.native.save_to_buffer(&mut buffer))?;
        Ok(buffer)
    }

    /// Load a saved graph from bytes into RAM (metric re-installed).
    pub(crate) fn load_buffer(&mut self, bytes: &[u8], params: GraphParams) -> NativeResult<()> {
        native(self.native.load_from_buffer(bytes))?;
        self.backing = None;
        self.after_replace(params)
    }

    /// View a saved graph in mapped bytes, which this graph keeps alive.
    pub(crate) fn view_buffer(&mut self, bytes: Backing, params: GraphParams) -> NativeResult<()> {
        // usearch reads `bytes` for as long as the view lives: they are
        // kept in `self.backing` until the index is dropped (after the
        // native index, by field order) or replaced by another load, and
        // mapped graph files are never modified in place.
        native(self.native.view_from_buffer(bytes.bytes()))?;
        self.backing = Some(bytes);
        self.after_replace(params)
    }

    fn after_replace(&mut self, params: GraphParams) -> NativeResult<()> {
        self.install_metric()?;
        self.set_expansion_add(params.expansion_add);
        self.set_expansion_search(params.expansion_search);
        native(
            self.native
                .reserve_capacity_and_threads(self.size(), Self::THREAD_SLOTS),
        )
    }

    /// A deep copy through usearch's serialization.
    pub(crate) fn copy(&self) -> NativeResult<Hnsw> {
        let params = self.params();
        let buffer = self.to_bytes()?;
        let mut copy = Hnsw::new(params)?;
        native(copy.native.load_from_buffer(&buffer))?;
        copy.after_replace(params)?;
        Ok(copy)
    }
}
