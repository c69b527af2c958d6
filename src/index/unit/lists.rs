//! Partitioning a unit index into lists (see `index::ivf`): a coarse
//! quantizer trained on the rows' first words, the flat store rebuilt list
//! by list, published in one swap. Searches that do not ask for an exact
//! scan then probe the lists nearest their query.

use std::sync::Arc;

use super::state::Writer;
use super::{IndexError, UnitIndex};
use crate::index::flat::FlatStore;
use crate::index::ivf::Quantizer;

/// Rows per list the quantizer is trained on, at most (FAISS's rule of
/// thumb; more buys little).
const TRAIN_ROWS_PER_LIST: usize = 64;

/// k-modes rounds, at most (training stops when no centroid moves).
const TRAIN_ROUNDS: usize = 10;

/// `flat`'s rows partitioned by a quantizer of `nlist` lists (fewer when
/// there are fewer distinct first words) trained on a sample of them,
/// probing `nprobe` by default. Reads `flat`, changes nothing: a snapshot
/// may be partitioned beside searches and writes.
pub(super) fn trained(flat: &FlatStore, nlist: usize, nprobe: usize) -> FlatStore {
    let step = (flat.len() / (TRAIN_ROWS_PER_LIST * nlist)).max(1);
    let sample: Vec<u64> = flat
        .rows_every(step)
        .into_iter()
        .filter(|(_, row)| crate::metric::whole_words(row.len()))
        .map(|(_, row)| row.words()[0])
        .collect();
    let quantizer = Quantizer::train(&sample, nlist, TRAIN_ROUNDS, 0x1ff).with_nprobe(nprobe);
    flat.partitioned(Arc::new(quantizer))
}

impl UnitIndex {
    /// Partition the rows into `nlist` lists (fewer when there are fewer
    /// distinct first words), each search probing `nprobe` of them unless
    /// it asks for another number ([`SearchOptions::nprobe`]) or for an
    /// exact scan. Rows added later go to the list of their nearest
    /// centroid. `nlist` 1 makes the index unpartitioned again.
    ///
    /// [`SearchOptions::nprobe`]: super::SearchOptions::nprobe
    pub fn partition(&self, nlist: usize, nprobe: usize) -> Result<(), IndexError> {
        if nlist == 0 || nprobe == 0 {
            return Err(IndexError::Option(format!(
                "nlist {nlist}, nprobe {nprobe}: both must be at least 1"
            )));
        }
        let mut writer = self.writable()?;
        // An explicit layout replaces one being trained.
        self.cancel_partition();
        let state = writer.state();
        let flat = if nlist == 1 {
            state.flat.unpartitioned()
        } else {
            let flat = trained(&state.flat, nlist, nprobe);
            flat.build_key_map();
            flat
        };
        drop(state);
        Self::swap_flat(&mut writer, flat);
        // The saved file no longer has this layout.
        self.dirty
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Publish `flat` as the rows of the next state.
    fn swap_flat(writer: &mut Writer<'_>, flat: FlatStore) {
        let flat = Arc::new(flat);
        writer.edit(usize::MAX, |state| state.flat = flat);
    }

    /// Lists of the partition (1 when not partitioned) and the lists a
    /// search probes by default.
    pub fn lists(&self) -> (usize, usize) {
        self.snapshot().flat.layout()
    }

    /// Lists a search whose caller needs only near neighbours probes by
    /// default (see [`SearchOptions::recall_within`](super::SearchOptions);
    /// 1 when not partitioned).
    pub fn near_nprobe(&self) -> usize {
        self.snapshot()
            .flat
            .quantizer
            .as_ref()
            .map_or(1, |q| q.near_nprobe())
    }
}
