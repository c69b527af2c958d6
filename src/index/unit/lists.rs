//! Partitioning a unit index into lists (see `index::ivf`): a coarse
//! quantizer trained on the rows' first words, the flat store rebuilt list
//! by list, published in one swap. Searches that do not ask for an exact
//! scan then probe the lists nearest their query.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::calibration::Truth;

use super::state::Writer;
use super::{IndexError, UnitIndex};
use crate::index::flat::FlatStore;
use crate::index::ivf::Quantizer;

/// Rows per list the quantizer is trained on, at most (FAISS's rule of
/// thumb; more buys little).
const TRAIN_ROWS_PER_LIST: usize = 64;

/// k-modes rounds, at most (training stops when no centroid moves).
const TRAIN_ROUNDS: usize = 10;

/// Centroid sets an automatic partition trains, at most, of which it keeps
/// the one whose near probe reads the fewest rows ([`best`]): eight seeds
/// at 840k rows of the engine bench read 17.6-20.3 % of the rows.
const SEEDS: usize = 8;

/// Lists times seeds trained per attempt, at most: training one set costs
/// about 40 ms at 1M rows (400 lists, eight seeds) and grows with the
/// square of the lists (one seed from 8,000 lists on).
const SEED_LISTS: usize = 8_000;

/// The seed of an explicit partition ([`UnitIndex::partition`]).
const SEED: u64 = 0x1ff;

/// Whole-word rows' first words, every so many rows, for training `nlist`
/// lists.
fn sample(flat: &FlatStore, nlist: usize) -> Vec<u64> {
    let step = (flat.len() / (TRAIN_ROWS_PER_LIST * nlist.max(1))).max(1);
    flat.rows_every(step)
        .into_iter()
        .filter(|(_, row)| crate::metric::whole_words(row.len()))
        .map(|(_, row)| row.words()[0])
        .collect()
}

/// `flat`'s rows partitioned by a quantizer of `nlist` lists (fewer when
/// there are fewer distinct first words) trained on a sample of them,
/// probing `nprobe` by default. Reads `flat`, changes nothing: a snapshot
/// may be partitioned beside searches and writes.
pub(super) fn trained(flat: &FlatStore, nlist: usize, nprobe: usize) -> FlatStore {
    let quantizer = Quantizer::train(&sample(flat, nlist), nlist, TRAIN_ROUNDS, SEED);
    flat.partitioned(Arc::new(quantizer.with_nprobe(nprobe)))
}

/// [`trained`] with the best of [`SEEDS`] quantizers: the one whose near
/// probe reads the smallest share of the rows on `truth`'s queries (see
/// [`Truth::near_share`]; the first seed when there is too little to
/// measure). `None` when cancelled.
pub(super) fn best(
    flat: &FlatStore,
    nlist: usize,
    truth: &Truth,
    cancel: &AtomicBool,
) -> Option<FlatStore> {
    let sample = sample(flat, nlist);
    let mut best: Option<(f64, Quantizer)> = None;
    for seed in 0..(SEED_LISTS / nlist.max(1)).clamp(1, SEEDS) as u64 {
        if cancel.load(Ordering::Relaxed) {
            return None;
        }
        let quantizer = Quantizer::train(&sample, nlist, TRAIN_ROUNDS, SEED + seed);
        let mut sizes = vec![0usize; quantizer.lists()];
        for &word in &sample {
            sizes[quantizer.nearest(word)] += 1;
        }
        let share = truth
            .near_share(&quantizer, &sizes)
            .unwrap_or(f64::INFINITY);
        if best.as_ref().is_none_or(|(b, _)| share < *b) {
            best = Some((share, quantizer));
        }
    }
    let (_, quantizer) = best?;
    Some(flat.partitioned(Arc::new(quantizer.with_nprobe(1))))
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
