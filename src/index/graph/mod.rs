//! The HNSW graph of a unit index — in RAM, or for a view memory-mapped on
//! first use — and its file, which usearch parses.
//!
//! usearch trusts the bytes it is given: a damaged graph file can crash the
//! process. So every graph file carries a checksum (xxh3-64, recorded in
//! the unit index's own header when it is saved) and is verified before
//! usearch sees it. A view maps the file when it is opened and keeps that
//! mapping, so a writer that later replaces or deletes the file (renames
//! only, never in-place writes) cannot pull it from under the reader, and a
//! failure to open the graph is never cached: a later call tries again.
//!
//! A graph file saved with rows is compact (see [`compact`]): it names the
//! flat store's rows instead of repeating them, and opening it assembles
//! usearch's form from the flat store saved beside it.

mod compact;

pub(crate) use compact::{compact, expand};

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use memmap2::Mmap;

use super::flat::FlatStore;
use super::hnsw::{Backing, GraphParams, Hnsw};
use super::IndexError;

/// The checksum of graph file bytes.
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// A graph file, mapped read-only and checked against its saved length and
/// checksum (older files without a checksum are checked by length only).
pub(crate) struct GraphFile {
    pub(crate) path: PathBuf,
    map: Arc<Mmap>,
    sum: Option<u64>,
    /// The file is compact (the format of the unit index says so).
    compact: bool,
}

impl GraphFile {
    /// Map `path` and check its length (the checksum is checked by
    /// [`GraphFile::verified`], when the bytes are first needed).
    pub(crate) fn open(
        path: &Path,
        len: u64,
        sum: Option<u64>,
        compact: bool,
    ) -> Result<GraphFile, IndexError> {
        let io = |source| IndexError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let actual = file.metadata().map_err(io)?.len();
        if actual != len {
            return Err(IndexError::Corrupt {
                path: path.to_path_buf(),
                why: format!("{actual} bytes, but {len} were saved"),
            });
        }
        // SAFETY: the file is opened read-only and graph files are only
        // ever replaced by rename, never modified in place, so the mapped
        // bytes do not change under us (a replaced file stays mapped).
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Ok(GraphFile {
            path: path.to_path_buf(),
            map: Arc::new(map),
            sum,
            compact,
        })
    }

    /// The bytes, once their checksum matches.
    fn verified(&self) -> Result<&Arc<Mmap>, IndexError> {
        if let Some(sum) = self.sum {
            let actual = checksum(&self.map);
            if actual != sum {
                return Err(IndexError::Corrupt {
                    path: self.path.clone(),
                    why: format!(
                        "checksum {actual:016x}, but {sum:016x} was saved: the graph file is \
                         damaged (rebuild the index from its store)"
                    ),
                });
            }
        }
        Ok(&self.map)
    }

    /// The verified bytes as usearch reads them: the mapping itself, or
    /// for a compact file the form assembled from `flat`.
    fn usearch_bytes(&self, flat: &FlatStore) -> Result<Backing, IndexError> {
        let map = self.verified()?;
        if !self.compact {
            return Ok(Backing::Map(Arc::clone(map)));
        }
        compact::expand(map, flat)
            .map(Backing::Owned)
            .map_err(|why| self.corrupt(why))
    }

    /// Read the verified graph into RAM.
    pub(crate) fn load(&self, params: GraphParams, flat: &FlatStore) -> Result<Hnsw, IndexError> {
        let bytes = self.usearch_bytes(flat)?;
        let mut hnsw = Hnsw::new(params).map_err(IndexError::Native)?;
        hnsw.load_buffer(bytes.bytes(), params)
            .map_err(|why| self.corrupt(why))?;
        Ok(hnsw)
    }

    /// View the verified graph in place (the bytes live as long as the
    /// graph).
    fn view(&self, params: GraphParams, flat: &FlatStore) -> Result<Hnsw, IndexError> {
        let bytes = self.usearch_bytes(flat)?;
        let mut hnsw = Hnsw::new(params).map_err(IndexError::Native)?;
        hnsw.view_buffer(bytes, params)
            .map_err(|why| self.corrupt(why))?;
        Ok(hnsw)
    }

    fn corrupt(&self, why: String) -> IndexError {
        IndexError::Corrupt {
            path: self.path.clone(),
            why,
        }
    }
}

/// The HNSW graph: in RAM, or — for a view — mapped on first use, so
/// opening a view costs only the flat store's mapping and indexes that are
/// searched exactly (small ones) never touch their graph at all.
pub(crate) enum Graph {
    Ready(Hnsw),
    Lazy(LazyGraph),
}

pub(crate) struct LazyGraph {
    pub(crate) file: GraphFile,
    pub(crate) params: GraphParams,
    pub(crate) rows: usize,
    pub(crate) cell: OnceLock<Hnsw>,
}

impl LazyGraph {
    fn open(&self, flat: &FlatStore) -> Result<Hnsw, IndexError> {
        let hnsw = self.file.view(self.params, flat)?;
        if hnsw.size() != self.rows {
            return Err(self.file.corrupt(format!(
                "{} rows, but the flat store has {}",
                hnsw.size(),
                self.rows
            )));
        }
        Ok(hnsw)
    }
}

impl Graph {
    /// The graph, mapped (or assembled from `flat`, the flat store saved
    /// with it) on first use.
    pub(crate) fn get(&self, flat: &FlatStore) -> Result<&Hnsw, IndexError> {
        match self {
            Graph::Ready(h) => Ok(h),
            Graph::Lazy(lazy) => {
                if let Some(h) = lazy.cell.get() {
                    return Ok(h);
                }
                // Not cached on failure: a later call tries again. Two
                // racing callers may both open; one result is kept.
                let hnsw = lazy.open(flat)?;
                let _ = lazy.cell.set(hnsw);
                lazy.cell
                    .get()
                    .ok_or_else(|| lazy.file.corrupt("graph not mapped".into()))
            }
        }
    }

    pub(crate) fn get_mut(&mut self, flat: &FlatStore) -> Result<&mut Hnsw, IndexError> {
        self.get(flat)?;
        match self {
            Graph::Ready(h) => Ok(h),
            Graph::Lazy(lazy) => {
                let error = lazy.file.corrupt("graph not mapped".into());
                lazy.cell.get_mut().ok_or(error)
            }
        }
    }

    /// The graph if it is in memory or already mapped.
    pub(crate) fn loaded(&self) -> Option<&Hnsw> {
        match self {
            Graph::Ready(h) => Some(h),
            Graph::Lazy(lazy) => lazy.cell.get(),
        }
    }

    pub(crate) fn set_expansion_search(&mut self, n: usize) {
        match self {
            Graph::Ready(h) => h.set_expansion_search(n),
            Graph::Lazy(lazy) => {
                lazy.params.expansion_search = n;
                if let Some(h) = lazy.cell.get_mut() {
                    h.set_expansion_search(n);
                }
            }
        }
    }
}
