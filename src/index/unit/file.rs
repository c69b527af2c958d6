//! The on-disk format of a unit index: `path` holds a magic, the format
//! version, a JSON header (parameters, rows per length group, the graph
//! file's size and xxh3) and the flat store laid out as in memory (so `view`
//! maps it without copying), then the byte-granular rows (format 2 only: a
//! key word and a row padded to five words each, copied into RAM on open);
//! `path.hnsw` holds the usearch graph — compact (format 3: the flat
//! store's rows are not repeated in it, see `index::graph`) when it has
//! rows. Both are replaced durably (see `index::durable`), and the main
//! file's rename is the one commit point of a save: the new graph is first
//! committed beside the old one as `path.hnsw.next`, then the main file,
//! then `path.hnsw.next` is renamed over `path.hnsw`. A save cut anywhere
//! leaves a main file whose graph (named by length and checksum in its
//! header) is one of the two graph files, and open picks that one.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use super::error::io_err;
use super::retrain::SavedAttempt;
use super::state::Writer;
use super::{IndexError, State, UnitIndex, UnitIndexOptions};
use crate::index::durable;
use crate::index::flat::{FlatStore, Group, List, Words};
use crate::index::graph::{Graph, GraphFile, LazyGraph};
use crate::index::ivf::Quantizer;
use crate::metric::{whole_words, Row, ROW_BYTES};

/// File magic of a saved unit index.
const MAGIC: &[u8; 8] = b"IVDBUNIT";
/// On-disk format version; bump on any incompatible change. A file is
/// written in the oldest format that holds it, so earlier readers open what
/// they can and refuse the rest by its number rather than misread it: 1
/// without byte-granular rows or graph rows (every scan-only index of ISCC
/// units), 2 with byte-granular rows, 3 with a compact graph, 4 with the
/// rows partitioned into lists (see `index::ivf`).
pub const FORMAT_VERSION: u32 = 4;
/// Files whose graph file is compact (and no lists).
const FORMAT_COMPACT: u32 = 3;
/// Files without byte-granular rows or a compact graph.
const FORMAT_WHOLE_WORDS: u32 = 1;
/// Files with byte-granular rows and a graph file in usearch's own form.
const FORMAT_BYTE_GRANULAR: u32 = 2;
/// Words per byte-granular row on disk: the key, then the 33-byte row
/// zero-padded to 40 bytes.
pub(super) const ODD_ROW_WORDS: usize = 6;

/// The JSON header of a saved unit index.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct FileHeader {
    pub(super) format: u32,
    pub(super) options: UnitIndexOptions,
    /// Rows per group (64, 128, 192, 256 bits).
    pub(super) groups: [usize; 4],
    /// Size of the graph file written with it.
    pub(super) graph_bytes: u64,
    /// The graph is deferred (empty): see the module docs.
    #[serde(default)]
    pub(super) deferred: bool,
    /// xxh3-64 of the graph file, verified before usearch reads it
    /// (absent in files written before checksums were kept).
    #[serde(default)]
    pub(super) graph_xxh3: Option<u64>,
    /// Byte-granular rows after the groups (format 2).
    #[serde(default)]
    pub(super) odd: usize,
    /// Format 4: the graph file is compact.
    #[serde(default)]
    pub(super) compact_graph: bool,
    /// Format 4: rows per group of each list, list by list (the groups of
    /// list 0, then of list 1, ... follow the header in that order).
    #[serde(default)]
    pub(super) lists: Vec<[usize; 4]>,
    /// Format 4: the quantizer's centroids, one per list.
    #[serde(default)]
    pub(super) centroids: Vec<u64>,
    /// Format 4: lists a search probes by default.
    #[serde(default)]
    pub(super) nprobe: usize,
    /// Format 4: rows the index held when it measured `nprobe` itself
    /// (absent: given, or saved before counts were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) calibrated_rows: Option<usize>,
    /// Format 4: lists a search that needs only near neighbours probes by
    /// default, when measured (absent: as many as `nprobe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) near_nprobe: Option<usize>,
    /// When the next automatic partition attempt is due (see
    /// `retrain.rs`; absent in older files: judged afresh on open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) next_attempt: Option<SavedAttempt>,
}

impl FileHeader {
    /// The graph file is compact (format 3, or 4 saying so).
    pub(super) fn graph_is_compact(&self) -> bool {
        self.format == FORMAT_COMPACT || (self.format >= FORMAT_LISTS && self.compact_graph)
    }
}

/// Files whose rows are partitioned into lists.
const FORMAT_LISTS: u32 = 4;

/// `path` + ".hnsw": the usearch graph beside the main file.
pub fn graph_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".hnsw");
    PathBuf::from(p)
}

/// `path` + ".hnsw.next": a save's new graph between its commits (see the
/// module docs); absent once a save completes.
pub(crate) fn next_graph_path(path: &Path) -> PathBuf {
    let mut p = graph_path(path).into_os_string();
    p.push(".next");
    PathBuf::from(p)
}

/// The graph file the main file at `path` was saved with: `path.hnsw`,
/// unless a save was cut after committing its graph as `path.hnsw.next`
/// and that file is the one the header names (by length and checksum).
fn saved_graph_path(path: &Path, header: &FileHeader) -> Result<PathBuf, IndexError> {
    let graph = graph_path(path);
    let next = next_graph_path(path);
    // Files without a checksum were written before `.next` existed: a
    // `.next` beside one is a later cut save's, never this file's graph.
    let Some(sum) = header.graph_xxh3 else {
        return Ok(graph);
    };
    match std::fs::metadata(&next) {
        Ok(m) if m.len() == header.graph_bytes => {}
        Ok(_) => return Ok(graph),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(graph),
        Err(e) => return Err(io_err(&next)(e)),
    }
    let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
    let mut file = File::open(&next).map_err(io_err(&next))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = io::Read::read(&mut file, &mut buf).map_err(io_err(&next))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(if hasher.digest() == sum { next } else { graph })
}

fn u64s_as_bytes(words: &[u64]) -> &[u8] {
    // SAFETY: u64 has no padding; the byte view covers exactly the slice,
    // and u8 has alignment 1.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), std::mem::size_of_val(words)) }
}

/// The graph as it is saved: compact when it has rows and usearch's layout
/// is the one this build knows (else in usearch's form, which every format
/// reads).
pub(super) struct SavedGraph {
    full: Vec<u8>,
    /// The compact file's prefix, and where usearch's tail starts in `full`.
    compact: Option<(Vec<u8>, usize)>,
}

impl SavedGraph {
    pub(super) fn of(state: &State) -> Result<SavedGraph, IndexError> {
        let (full, size) = state
            .graph
            .with(&state.flat, |g| (g.to_bytes(), g.size()))?;
        let full = full.map_err(IndexError::Native)?;
        let compact = if size > 0 {
            crate::index::graph::compact(&full, &state.flat)
                .ok()
                .map(|c| (c.prefix, full.len() - c.tail.len()))
        } else {
            None
        };
        Ok(SavedGraph { full, compact })
    }

    /// The graph in usearch's form, as files of formats 1 and 2 hold it.
    #[cfg(test)]
    pub(super) fn usearch_form(state: &State) -> Result<SavedGraph, IndexError> {
        let full = state
            .graph
            .with(&state.flat, crate::index::hnsw::Hnsw::to_bytes)?
            .map_err(IndexError::Native)?;
        Ok(SavedGraph {
            full,
            compact: None,
        })
    }

    pub(super) fn is_compact(&self) -> bool {
        self.compact.is_some()
    }

    /// The file's bytes, in two parts.
    pub(super) fn parts(&self) -> [&[u8]; 2] {
        match &self.compact {
            Some((prefix, tail)) => [prefix, &self.full[*tail..]],
            None => [&[], &self.full],
        }
    }

    pub(super) fn len(&self) -> u64 {
        self.parts().iter().map(|p| p.len() as u64).sum()
    }

    pub(super) fn checksum(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3Default::new();
        for part in self.parts() {
            h.update(part);
        }
        h.digest()
    }
}

impl UnitIndex {
    /// Save to `path` and `path.hnsw` (atomic replace, fsync'd: a save cut
    /// at any point leaves the previous save or this one, see the module
    /// docs); resets `dirty`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), IndexError> {
        let path = path.as_ref();
        // The writer's turn: the graph then holds exactly the state's rows
        // (a compact graph names them), and `dirty` counts what came after.
        let mut writer = Writer::new(self);
        // A finished background build is saved with the rest; a failed one
        // leaves the graph deferred (the next add that wants it starts
        // another), which is saved as such.
        let _ = self.adopt_build(&mut writer, false);
        // A finished partition likewise (a failed one changes nothing).
        let _ = self.adopt_partition(&mut writer, false);
        let state = writer.state();
        let (graph, next) = (graph_path(path), next_graph_path(path));
        let saved = SavedGraph::of(&state)?;
        let graph_tmp = durable::write_beside(&next, |f| {
            saved.parts().iter().try_for_each(|part| f.write_all(part))
        })
        .map_err(io_err(&graph))?;
        let attempt = self.saved_attempt();
        let tmp = durable::write_beside(path, |f| Self::write_main(f, &state, &saved, attempt))
            .map_err(io_err(path))?;
        // The new graph beside the old, the main file that names it (the
        // commit), then the new graph under its name.
        durable::commit(&graph_tmp, &next).map_err(io_err(&next))?;
        durable::commit(&tmp, path).map_err(io_err(path))?;
        durable::commit(&next, &graph).map_err(io_err(&graph))?;
        self.dirty.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Write the main file (magic, version, JSON header, flat store) for
    /// the graph saved as `graph`; `attempt` is when the next automatic
    /// partition attempt is due.
    pub(super) fn write_main<W: Write>(
        f: &mut W,
        state: &State,
        graph: &SavedGraph,
        attempt: SavedAttempt,
    ) -> io::Result<()> {
        let flat = &state.flat;
        let odd = &flat.odd;
        let partitioned = flat.quantizer.is_some();
        let format = if partitioned {
            FORMAT_LISTS
        } else if graph.is_compact() {
            FORMAT_COMPACT
        } else if odd.len() > 0 {
            FORMAT_BYTE_GRANULAR
        } else {
            FORMAT_WHOLE_WORDS
        };
        let (graph_bytes, graph_xxh3) = (graph.len(), graph.checksum());
        let header = FileHeader {
            format,
            options: state.options,
            groups: std::array::from_fn(|g| flat.len_of_group(g)),
            graph_bytes,
            deferred: state.deferred,
            graph_xxh3: Some(graph_xxh3),
            odd: odd.len(),
            compact_graph: partitioned && graph.is_compact(),
            lists: if partitioned {
                flat.lists
                    .iter()
                    .map(|l| std::array::from_fn(|g| l.groups[g].len()))
                    .collect()
            } else {
                Vec::new()
            },
            centroids: flat
                .quantizer
                .as_ref()
                .map_or_else(Vec::new, |q| q.centroids().to_vec()),
            nprobe: flat.quantizer.as_ref().map_or(0, |q| q.nprobe()),
            calibrated_rows: flat.quantizer.as_ref().and_then(|q| q.calibrated_rows()),
            near_nprobe: flat
                .quantizer
                .as_ref()
                .and_then(|q| q.measured_near_nprobe()),
            next_attempt: Some(attempt),
        };
        let json = serde_json::to_vec(&header).map_err(io::Error::other)?;
        let mut head = Vec::with_capacity(16 + json.len() + 8);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&format.to_le_bytes());
        head.extend_from_slice(&(json.len() as u32).to_le_bytes());
        head.extend_from_slice(&json);
        head.resize(head.len().next_multiple_of(8), b' ');
        f.write_all(&head)?;
        for group in flat.groups() {
            for run in group.keys().runs() {
                f.write_all(u64s_as_bytes(run))?;
            }
            for col in group.cols() {
                for run in col.runs() {
                    f.write_all(u64s_as_bytes(run))?;
                }
            }
        }
        for (key, row) in odd.keys.iter().zip(&odd.rows) {
            let mut rec = [0u8; ODD_ROW_WORDS * 8];
            rec[..8].copy_from_slice(&key.to_le_bytes());
            rec[8..8 + row.0.len()].copy_from_slice(&row.0);
            f.write_all(&rec)?;
        }
        Ok(())
    }

    /// Read and check the header; returns it, the data offset and the
    /// length of the main file.
    pub(super) fn read_header(
        path: &Path,
        bytes: &[u8],
    ) -> Result<(FileHeader, usize, usize), IndexError> {
        let corrupt = |why: &str| IndexError::Corrupt {
            path: path.to_path_buf(),
            why: why.to_string(),
        };
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(corrupt("missing IVDBUNIT magic"));
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if !(FORMAT_WHOLE_WORDS..=FORMAT_VERSION).contains(&version) {
            return Err(IndexError::IncompatibleFormat {
                path: path.to_path_buf(),
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let json_len = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
        let json = bytes
            .get(16..16 + json_len)
            .ok_or_else(|| corrupt("truncated header"))?;
        let header: FileHeader =
            serde_json::from_slice(json).map_err(|e| corrupt(&format!("bad header: {e}")))?;
        header.options.validate()?;
        if header.format != version || (version == FORMAT_WHOLE_WORDS && header.odd > 0) {
            return Err(corrupt("header and format version disagree"));
        }
        let partitioned = !header.lists.is_empty();
        if partitioned != (version >= FORMAT_LISTS)
            || header.centroids.len() != header.lists.len()
            || (partitioned
                && (0..4)
                    .any(|g| header.lists.iter().map(|l| l[g]).sum::<usize>() != header.groups[g]))
        {
            return Err(corrupt("the lists disagree with the format or the groups"));
        }
        if !cfg!(target_endian = "little") {
            return Err(corrupt("unit index files are little-endian"));
        }
        let offset = (16 + json_len).next_multiple_of(8);
        let words: usize = header
            .groups
            .iter()
            .enumerate()
            .map(|(g, n)| n * (g + 2))
            .sum::<usize>()
            + header.odd * ODD_ROW_WORDS;
        Ok((header, offset, offset + words * 8))
    }

    /// The flat store over a main file's `bytes` (checked to be as long as
    /// the header says): owned copies, or slices of `mapped` (the map that
    /// holds `bytes`).
    pub(super) fn flat_from(
        path: &Path,
        header: &FileHeader,
        offset: usize,
        bytes: &[u8],
        mapped: Option<&Arc<Mmap>>,
    ) -> Result<FlatStore, IndexError> {
        let mut pos = offset;
        let mut take = |len: usize| {
            let words = if let Some(map) = mapped {
                Words::Mapped {
                    map: Arc::clone(map),
                    offset: pos,
                    len,
                }
            } else {
                let bytes = &bytes[pos..pos + len * 8];
                bytes
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect::<Words>()
            };
            pos += len * 8;
            words
        };
        let counts = if header.lists.is_empty() {
            vec![header.groups]
        } else {
            header.lists.clone()
        };
        let lists = counts
            .iter()
            .map(|counts| List {
                groups: std::array::from_fn(|g| {
                    let keys = take(counts[g]);
                    let cols = (0..=g).map(|_| take(counts[g])).collect();
                    Group::with(keys, cols)
                }),
            })
            .collect();
        let quantizer = if header.centroids.is_empty() {
            None
        } else {
            Quantizer::from_centroids(header.centroids.clone(), header.nprobe)
                .map(|q| match header.calibrated_rows {
                    Some(rows) => q.calibrated(header.nprobe, header.near_nprobe, rows),
                    None => q,
                })
                .map(Arc::new)
        };
        let mut flat = FlatStore::of_lists(lists, quantizer);
        for rec in bytes[pos..pos + header.odd * ODD_ROW_WORDS * 8].chunks_exact(ODD_ROW_WORDS * 8)
        {
            let mut key = [0u8; 8];
            key.copy_from_slice(&rec[..8]);
            let mut row = Row([0u8; ROW_BYTES]);
            row.0.copy_from_slice(&rec[8..8 + ROW_BYTES]);
            // A row must read back as it was written: a length of 1–31
            // bytes, not whole words, zeros past it.
            let len = usize::from(row.0[0]);
            if len == 0 || len >= 32 || whole_words(len) || row.0[1 + len..].iter().any(|&b| b != 0)
            {
                return Err(IndexError::Corrupt {
                    path: path.to_path_buf(),
                    why: format!("a byte-granular row of length byte {len}"),
                });
            }
            flat.odd.push(u64::from_le_bytes(key), row);
        }
        flat.reindex();
        Ok(flat)
    }

    /// The state saved at `path`, and when its next partition attempt is
    /// due.
    fn open_file(path: &Path, view: bool) -> Result<(State, Option<SavedAttempt>), IndexError> {
        let file = File::open(path).map_err(io_err(path))?;
        // SAFETY: the file is opened read-only and files are only ever
        // replaced by rename, never modified in place, so the mapping's
        // contents do not change under us.
        let map = Arc::new(unsafe { Mmap::map(&file) }.map_err(io_err(path))?);
        let (header, offset, main_len) = Self::read_header(path, &map)?;
        if map.len() != main_len {
            return Err(IndexError::Corrupt {
                path: path.to_path_buf(),
                why: format!(
                    "{} bytes, expected {main_len} (truncated or padded)",
                    map.len()
                ),
            });
        }
        let flat = Self::flat_from(path, &header, offset, &map, view.then_some(&map))?;
        let graph_rows = if header.deferred { 0 } else { flat.len() };
        let file = GraphFile::open(
            &saved_graph_path(path, &header)?,
            header.graph_bytes,
            header.graph_xxh3,
            header.graph_is_compact(),
        )?;
        let graph = if view {
            Graph::Lazy(LazyGraph {
                file,
                params: header.options.graph(),
                rows: graph_rows,
                cell: std::sync::OnceLock::new(),
            })
        } else {
            let hnsw = file.load(header.options.graph(), &flat)?;
            if hnsw.size() != graph_rows {
                return Err(IndexError::Corrupt {
                    path: file.path.clone(),
                    why: format!(
                        "{} rows, but the flat store has {}",
                        hnsw.size(),
                        graph_rows
                    ),
                });
            }
            Graph::Ready(hnsw)
        };
        let state = State::new(graph, flat, header.options, view, header.deferred);
        Ok((state, header.next_attempt))
    }

    /// Replace this index with the one saved at `path`, read into RAM.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<(), IndexError> {
        let (state, attempt) = Self::open_file(path.as_ref(), false)?;
        self.cancel_build();
        self.restart_partitions(attempt);
        Writer::new(self).publish(state);
        self.dirty.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Replace this index with the one saved at `path`, memory-mapped
    /// read-only (writes then return [`IndexError::ReadOnly`]).
    pub fn view(&self, path: impl AsRef<Path>) -> Result<(), IndexError> {
        let (state, attempt) = Self::open_file(path.as_ref(), true)?;
        self.cancel_build();
        self.restart_partitions(attempt);
        Writer::new(self).publish(state);
        self.dirty.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Open a saved index: into RAM, or memory-mapped read-only with `view`.
    /// Needs no parameters: they come from the file.
    pub fn restore(path: impl AsRef<Path>, view: bool) -> Result<UnitIndex, IndexError> {
        let (state, attempt) = Self::open_file(path.as_ref(), view)?;
        let index = UnitIndex::from_state(state);
        index.restart_partitions(attempt);
        Ok(index)
    }

    /// A deep, writable copy in RAM (dirty 0).
    pub fn copy(&self) -> Result<UnitIndex, IndexError> {
        let writer = Writer::new(self);
        let state = writer.state();
        let mut flat = FlatStore::clone(&state.flat);
        flat.make_owned();
        let hnsw = state
            .graph
            .with(&state.flat, crate::index::hnsw::Hnsw::copy)?
            .map_err(IndexError::Native)?;
        Ok(UnitIndex::from_state(State::new(
            Graph::Ready(hnsw),
            flat,
            state.options,
            false,
            state.deferred,
        )))
    }
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
