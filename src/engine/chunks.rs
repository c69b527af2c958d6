//! What the store knows of granular features: the simprint types it holds
//! and the exact collisions of a simprint (every stored chunk with exactly
//! those bits), with its document frequency. Near matches come from the
//! per-type similarity indexes (issue 18's next step) and are scored with
//! these frequencies.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::features::{decode, SimprintType};
use super::{EngineError, LocalIndex};
use crate::codec::IsccId;

/// One simprint type as the index holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SimprintTypeInfo {
    /// Bits of every simprint of the type.
    pub bits: u64,
    /// Entries with simprints of the type.
    pub entries: u64,
    /// Chunks (simprints) of the type over all entries.
    pub chunks: u64,
    /// Rows of the type's similarity index (equal to `chunks` once the
    /// index is in line with the store).
    pub rows: u64,
    /// Shards of the type's similarity index.
    pub shards: usize,
}

/// A stored chunk: the entry and the chunk's position in its feature set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChunkRef {
    /// ISCC-ID of the entry.
    pub iscc_id: String,
    /// Chunk number (position of the simprint in the entry's feature set).
    pub chunk: u32,
}

/// The exact collisions of one simprint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SimprintCollisions {
    /// Every stored chunk of the type with exactly this simprint, by
    /// ISCC-ID then chunk.
    pub chunks: Vec<ChunkRef>,
    /// Entries among them (the simprint's document frequency).
    pub freq: u64,
}

impl LocalIndex {
    /// The simprint types of the index: bit length, entries and chunks.
    pub fn simprint_types(&self) -> Result<BTreeMap<String, SimprintTypeInfo>, EngineError> {
        self.check_open()?;
        let set = self.indexes();
        Ok(self
            .store
            .read(|r| r.simprint_types())?
            .into_iter()
            .map(|(kind, row)| {
                let stats = SimprintType::parse(&kind)
                    .ok()
                    .and_then(|k| set.simprint(&k))
                    .map(|i| i.stats());
                let info = SimprintTypeInfo {
                    bits: row.bits,
                    entries: row.entries,
                    chunks: row.chunks,
                    rows: stats.as_ref().map_or(0, |s| s.total_vectors as u64),
                    shards: stats
                        .as_ref()
                        .map_or(0, |s| s.view_shards + usize::from(!s.read_only)),
                };
                (kind, info)
            })
            .collect())
    }

    /// Every stored chunk whose simprint of type `kind` (`SEMANTIC-TEXT-V0`,
    /// or iscc-search's `SEMANTIC_TEXT_V0`) is exactly `simprint`
    /// (headerless base64url), and in how many entries.
    pub fn simprint_collisions(
        &self,
        kind: &str,
        simprint: &str,
    ) -> Result<SimprintCollisions, EngineError> {
        self.check_open()?;
        let kind = SimprintType::parse(kind).map_err(EngineError::Invalid)?;
        let bytes =
            decode(simprint).map_err(|why| EngineError::Invalid(format!("simprint: {why}")))?;
        let found = self
            .store
            .read(|r| r.simprint_matches(&kind.to_string(), &bytes))?;
        let realm = self.realm();
        let freq = found
            .iter()
            .map(|(id, _)| *id)
            .collect::<BTreeSet<_>>()
            .len() as u64;
        Ok(SimprintCollisions {
            chunks: found
                .into_iter()
                .map(|(id, chunk)| ChunkRef {
                    iscc_id: IsccId::from_u64(id, realm).to_string(),
                    chunk,
                })
                .collect(),
            freq,
        })
    }
}
