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

/// Read `buf.len()` bytes at `offset` (no shared file position: racing
/// readers of one file do not disturb each other).
#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match file.seek_read(&mut buf[done..], offset + done as u64)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => done += n,
        }
    }
    Ok(())
}

/// The checksum of graph file bytes.
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// A graph file, checked against its saved length and checksum (older
/// files without a checksum are checked by length only) before usearch
/// sees it. A file in usearch's form is mapped (usearch views it in place);
/// a compact one is kept open and read once, into the form usearch reads.
/// Either way the file is held from `open` on, so a writer that replaces
/// or deletes it later (by rename) cannot pull it from under the reader.
pub(crate) struct GraphFile {
    pub(crate) path: PathBuf,
    source: Source,
    len: u64,
    sum: Option<u64>,
}

enum Source {
    Mapped(Arc<Mmap>),
    /// A compact file (the format of the unit index says so).
    Compact(File),
}

impl GraphFile {
    /// Open `path` and check its length (the checksum is checked when the
    /// bytes are first needed).
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
        let source = if compact {
            Source::Compact(file)
        } else {
            // SAFETY: the file is opened read-only and graph files are only
            // ever replaced by rename, never modified in place, so the
            // mapped bytes do not change under us (a replaced file stays
            // mapped).
            let map = unsafe { Mmap::map(&file) }.map_err(io)?;
            Source::Mapped(Arc::new(map))
        };
        Ok(GraphFile {
            path: path.to_path_buf(),
            source,
            len,
            sum,
        })
    }

    /// Compare a checksum with the saved one.
    fn check(&self, actual: u64) -> Result<(), String> {
        match self.sum {
            Some(sum) if sum != actual => Err(format!(
                "checksum {actual:016x}, but {sum:016x} was saved: the graph file is damaged \
                 (rebuild the index from its store)"
            )),
            _ => Ok(()),
        }
    }

    /// The verified bytes as usearch reads them: the mapping itself, or
    /// for a compact file the form assembled from `flat`.
    fn usearch_bytes(&self, flat: &FlatStore) -> Result<Backing, IndexError> {
        let file = match &self.source {
            Source::Mapped(map) => {
                self.check(checksum(map)).map_err(|why| self.corrupt(why))?;
                return Ok(Backing::Map(Arc::clone(map)));
            }
            Source::Compact(file) => file,
        };
        let io = |source| IndexError::Io {
            path: self.path.clone(),
            source,
        };
        let mut head = [0u8; compact::PREFIX_HEAD];
        read_at(file, &mut head, 0).map_err(io)?;
        let tail_at = compact::tail_offset(&head).map_err(|why| self.corrupt(why))?;
        let tail_len = usize::try_from(self.len)
            .ok()
            .and_then(|len| len.checked_sub(tail_at))
            .ok_or_else(|| self.corrupt(format!("{} bytes: cut before the graph", self.len)))?;
        let mut prefix = vec![0u8; tail_at];
        read_at(file, &mut prefix, 0).map_err(io)?;
        let mut failed_read = None;
        let full = compact::expand_with(
            &prefix,
            tail_len,
            |tail| {
                read_at(file, tail, tail_at as u64).map_err(|e| {
                    let why = e.to_string();
                    failed_read = Some(e);
                    why
                })?;
                let mut h = xxhash_rust::xxh3::Xxh3Default::new();
                h.update(&prefix);
                h.update(tail);
                self.check(h.digest())
            },
            flat,
        );
        match (full, failed_read) {
            (_, Some(e)) => Err(io(e)),
            (Ok(full), None) => Ok(Backing::Owned(full)),
            (Err(why), None) => Err(self.corrupt(why)),
        }
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
