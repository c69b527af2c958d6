//! A unit index as one buffer in memory (iscc-usearch's `save()` without a
//! path and `restore(buffer)`): the bytes `save` writes to `path`, then
//! the bytes of `path.hnsw`. The main file's header names the graph's
//! length and checksum, so the buffer splits and checks itself.

use std::path::Path;

use super::file::SavedGraph;
use super::{IndexError, State, UnitIndex};
use crate::index::graph::{checksum, expand, Graph};
use crate::index::hnsw::Hnsw;

/// The name errors give a buffer.
const BUFFER: &str = "<buffer>";

impl UnitIndex {
    /// The whole index as one buffer (see the module docs); the dirty count
    /// is left as it is (nothing was written anywhere).
    pub fn to_bytes(&self) -> Result<Vec<u8>, IndexError> {
        let writer = super::state::Writer::new(self);
        let state = writer.state();
        let graph = SavedGraph::of(&state)?;
        let mut out = Vec::new();
        let attempt = self.saved_attempt();
        Self::write_main(&mut out, &state, &graph, attempt).map_err(|source| IndexError::Io {
            path: BUFFER.into(),
            source,
        })?;
        for part in graph.parts() {
            out.extend_from_slice(part);
        }
        Ok(out)
    }

    /// An index from a buffer made by [`UnitIndex::to_bytes`], read into
    /// RAM (the buffer is not kept). A damaged or cut buffer is
    /// [`IndexError::Corrupt`] saying what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<UnitIndex, IndexError> {
        let path = Path::new(BUFFER);
        let corrupt = |why: String| IndexError::Corrupt {
            path: path.to_path_buf(),
            why,
        };
        let (header, offset, main_len) = Self::read_header(path, bytes)?;
        let expected = (main_len as u64).saturating_add(header.graph_bytes);
        if bytes.len() as u64 != expected {
            return Err(corrupt(format!(
                "{} bytes, expected {expected} (truncated or padded)",
                bytes.len()
            )));
        }
        let (main, graph) = bytes.split_at(main_len);
        if let Some(sum) = header.graph_xxh3 {
            let actual = checksum(graph);
            if actual != sum {
                return Err(corrupt(format!(
                    "graph checksum {actual:016x}, expected {sum:016x}"
                )));
            }
        }
        let flat = Self::flat_from(path, &header, offset, main, None)?;
        let params = header.options.graph();
        let mut hnsw = Hnsw::new(params).map_err(IndexError::Native)?;
        if header.graph_is_compact() {
            let full = expand(graph, &flat).map_err(corrupt)?;
            hnsw.load_buffer(&full, params).map_err(corrupt)?;
        } else {
            hnsw.load_buffer(graph, params).map_err(corrupt)?;
        }
        let graph_rows = if header.deferred { 0 } else { flat.len() };
        if hnsw.size() != graph_rows {
            return Err(corrupt(format!(
                "a graph of {} rows, but the flat store has {graph_rows}",
                hnsw.size()
            )));
        }
        let index = UnitIndex::from_state(State::new(
            Graph::Ready(hnsw),
            flat,
            header.options,
            false,
            header.deferred,
        ));
        index.restart_partitions(header.next_attempt);
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use crate::index::{UnitIndex, UnitIndexOptions};

    #[test]
    fn a_buffer_gives_back_rows_answers_and_refuses_damage() {
        for graph in [false, true] {
            let index = UnitIndex::new(UnitIndexOptions {
                exact_threshold: if graph { 0 } else { 1_000 }.into(),
                ..UnitIndexOptions::default()
            })
            .unwrap();
            for k in 0..300u64 {
                // Whole words and byte-granular rows.
                let len = if k % 5 == 0 {
                    3
                } else {
                    8 * (1 + k as usize % 4)
                };
                let body: Vec<u8> = (0..len).map(|i| (k * 31 + i as u64 * 7) as u8).collect();
                index.add(k, &body).unwrap();
            }
            let bytes = index.to_bytes().unwrap();
            let back = UnitIndex::from_bytes(&bytes).unwrap();
            assert_eq!(back.rows(0, 1_000), index.rows(0, 1_000));
            assert_eq!(back.graph_deferred(), !graph);
            for k in (0..300).step_by(13) {
                let body = index.get(k).unwrap();
                assert_eq!(
                    back.search(&body, 5).unwrap(),
                    index.search(&body, 5).unwrap()
                );
            }
            // Cut, padded, or a flipped graph byte: refused with the reason.
            for bad in [
                bytes[..bytes.len() - 1].to_vec(),
                [&bytes[..], &[0u8]].concat(),
                {
                    let mut b = bytes.clone();
                    let last = b.len() - 1;
                    b[last] ^= 0x40;
                    b
                },
            ] {
                let err = UnitIndex::from_bytes(&bad).unwrap_err().to_string();
                assert!(
                    err.contains("truncated") || err.contains("checksum"),
                    "{err}"
                );
            }
            assert!(UnitIndex::from_bytes(b"IVDB").is_err());
        }
    }
}
