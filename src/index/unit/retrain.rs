//! Partitioning chosen by measured cost, in the background (see
//! `index::ivf` and `lists.rs`).
//!
//! With `exact_threshold` and `partition` both `auto`, an index that
//! reaches [`MIN_ROWS`] rows — and again each time it has doubled since the
//! last attempt, while its lists hold more than twice the rows they were
//! trained for — is partitioned on a thread of its own from a snapshot of
//! its rows: a quantizer of one list per [`ROWS_PER_LIST`] rows is trained,
//! the rows are laid out list by list, and the index measures on its own
//! rows (stored rows searched for among the others, as a near duplicate
//! would be) how many lists a search must probe to reach tie-aware
//! recall@10 [`TARGET_RECALL`](super::TARGET_RECALL) and recall
//! [`NEAR_RECALL`](super::NEAR_RECALL) of the true top 10 within NPHD 0.25,
//! and what that probe — and the near one (below) — cost beside the exact
//! scan of the same rows (raced, see `calibration`). The layout is kept
//! only when the two probes cost at most half the scan on average (the
//! default search and the near one weighed alike: the engine's unit
//! searches are near ones); else the index stays as it was until it has
//! grown by a fifth ([`RECALIBRATE`]): a probe reads a smaller share of the
//! rows as lists grow in number (1M codes of the engine bench: 256 lists
//! for 640k rows read 36 % of them at 0.6 of the scan's cost and were
//! refused; 400 lists for 1M read 26 %), and an index refused at 640k rows
//! waited for 1.28M while it scanned. Weighing the default probe alone, one
//! engine build refused 14 attempts from 40k to 840k rows (at 840k: 0.51
//! of the scan, its near probe reading 60 of 336 lists) and scanned every
//! row at 1M. An index already partitioned is partitioned anew only when
//! the new lists' two probes cost no more than the old lists' at the same
//! recall on the same queries (the cost a new partition replaces; raced
//! likewise); else the old lists stay, with the `nprobe` just measured for
//! them.
//!
//! Between partitions the default `nprobe` is measured again, the same way,
//! each time the rows have grown or shrunk by a fifth since it was last
//! measured ([`RECALIBRATE`]): lists that grow hold a query's neighbours in
//! fewer of them (a fixed `nprobe` reads ever more rows for recall it does
//! not need), lists that shrink in more (a fixed `nprobe` loses recall).
//! A given `nprobe` (an explicit [`UnitIndex::partition`]) is never changed.
//!
//! Each measurement also finds the near `nprobe`: the fewest lists reaching
//! `NEAR_ONLY_RECALL` of the true top 10 within NPHD [`NEAR`](super::NEAR)
//! alone. A search whose caller needs only neighbours that near
//! (`recall_within`, as the engine's searches under its default unit
//! threshold) probes that many:
//! near duplicates sit in the lists nearest the query, while the far end of
//! a top 10 is what makes the default probe many more.
//!
//! A later writer's turn (the next write, a save, a search that finds the
//! writer idle, or [`UnitIndex::wait_partition`]) adopts a finished
//! partition: the keys written since the snapshot are replayed into it (a
//! write records its keys while a partition is being trained), and it is
//! published in one swap. The graph is dropped then: searches probe lists,
//! adds cost only the flat store. Nothing here writes a file; a save
//! writes the layout (format 4) like any other, and when the next attempt
//! is due (an attempt still running counts as not made), so a reopened
//! index resumes where it was. A sharded index's close waits for the
//! attempt under way (`ShardedIndex::settle`): one cut short by a close was
//! lost, and a process that closed right after a bulk load left its index
//! scanning every row. That settle ([`UnitIndex::settle`], also run on a
//! frozen shard and a merged one before they save) then measures the
//! `nprobe` again when the rows have changed by a twentieth since it was
//! measured ([`SETTLE`]): the engine bench closed at 1M entries with lists
//! measured at 840k rows, whose near `nprobe` (58 of 336 lists, 17 % of
//! the rows) was what those rows needed, not its own (the bench's clusters
//! fill up as it grows; measured at 928k: 42 of 371).
//!
//! The quantizer trained is the best of several seeds ([`lists::best`]):
//! the one whose near probe reads the smallest share of the rows.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use super::calibration::{calibrate, probe, race, scan, Calibration, Query, Start, Truth, ROUNDS};
use super::state::{GraphCell, State, Writer};
use super::{ExactThreshold, IndexError, Partition, UnitIndex};
use crate::index::flat::FlatStore;
use crate::index::graph::Graph;
use crate::index::hnsw::Hnsw;
use crate::index::ivf::Quantizer;
use crate::metric::scan::Kernel;
use crate::sync::lock;

/// Rows per list a partition is trained for: at 1M and 10M codes of the
/// bench dataset here, 2,500 read the fewest rows for recall@10 0.97-0.99
/// among 1,250-10,000 (docs/performance.md, partitioned search).
pub const ROWS_PER_LIST: usize = 2_500;

/// Fewest lists worth training: with fewer, a probe for the target recall
/// reads most of the rows anyway.
const MIN_LISTS: usize = 16;

/// Rows from which an index in `auto` mode tries a partition.
pub const MIN_ROWS: usize = MIN_LISTS * ROWS_PER_LIST;

/// The default `nprobe` is measured again when the rows have grown by this
/// share since it was measured, or shrunk by its inverse (fifths: 4 to 5).
pub const RECALIBRATE: (usize, usize) = (4, 5);

/// A settle ([`UnitIndex::settle`]) measures the `nprobe` again when the
/// rows have changed by this share since it was measured (twentieths).
pub const SETTLE: (usize, usize) = (19, 20);

/// A partition being trained (see the module docs).
pub(super) struct Retrain {
    handle: JoinHandle<Result<Trained, IndexError>>,
    cancel: Arc<AtomicBool>,
    /// Keys written since the snapshot it started from.
    touched: Vec<u64>,
    /// Rows from which an attempt was due before this one started: what a
    /// save records while it runs, so an index reopened after it was lost
    /// (a kill, a close that did not wait) tries again at once.
    due_before: usize,
}

/// When the next automatic attempt is due, as a save records it (see the
/// module docs): an index reopened resumes where it was, instead of trying
/// again at once what it refused (every reopen of a refused index used to
/// train and race lists anew on its first write).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct SavedAttempt {
    /// Rows from which the next attempt is due.
    pub(super) rows: usize,
    /// The last attempt was refused by its measurement.
    pub(super) refused: bool,
}

/// When the next attempt is due, in rows, and whether the last one was
/// refused by its measurement (see the module docs).
#[derive(Debug, Default)]
pub(super) struct NextAttempt {
    rows: AtomicUsize,
    refused: AtomicBool,
    last: std::sync::Mutex<Option<PartitionReport>>,
}

/// What the last automatic partition attempt of an index measured and
/// decided (see [`UnitIndex::last_partition`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PartitionReport {
    /// Rows of the snapshot it was trained on.
    pub rows: usize,
    /// Lists trained.
    pub lists: usize,
    /// The calibrated default `nprobe`.
    pub nprobe: usize,
    /// The calibrated `nprobe` of a search that needs only the neighbours
    /// within NPHD [`NEAR`](super::NEAR) (`None`: too few such neighbours
    /// among the calibration's answers to measure it; such searches probe
    /// `nprobe`).
    pub near_nprobe: Option<usize>,
    /// Tie-aware recall@10 at that `nprobe` on the index's own rows.
    pub recall: f64,
    /// Mean rows one calibration query probing `nprobe` lists reads.
    pub rows_read: f64,
    /// Mean nanoseconds of one calibration query probing `nprobe` lists,
    /// the fastest of the rounds of a race with what the new lists would
    /// replace (one round, timed alone, for a recalibration; 0 when not
    /// measured: `partition: always`).
    pub probe_ns: f64,
    /// Mean nanoseconds of the same query scanning every row (raced like
    /// `probe_ns` for an index not partitioned yet).
    pub scan_ns: f64,
    /// Mean nanoseconds of the same query probing the near `nprobe` (the
    /// default's when none was measured), raced like `probe_ns`; 0 for a
    /// recalibration.
    pub near_probe_ns: f64,
    /// Whether the layout was adopted (a refused one leaves the index as
    /// it was until it has grown again; see the module docs).
    pub kept: bool,
    /// Mean nanoseconds of the same query probing the lists the index had
    /// (at their own calibrated `nprobe`, raced like `probe_ns`) when it
    /// was partitioned already; 0 otherwise.
    pub previous_probe_ns: f64,
    /// Mean nanoseconds of the same query probing the near `nprobe` of the
    /// lists the index had (raced likewise); 0 otherwise.
    pub previous_near_probe_ns: f64,
    /// Mean rows the same query reads from the lists the index had; 0
    /// otherwise.
    pub previous_rows_read: f64,
    /// This was no new partition but the default `nprobe` of the lists
    /// measured again as the rows grew or shrank (see the module docs).
    pub recalibrated: bool,
    /// Seconds the training and calibration took (on their own thread).
    pub seconds: f64,
}

/// A finished attempt: the layout when kept, and what was measured
/// (`None`: cancelled).
pub(super) struct Trained {
    flat: Option<FlatStore>,
    report: Option<PartitionReport>,
    /// Without a new layout: the lists of this quantizer with the default
    /// `nprobe` measured for them.
    nprobe_for: Option<(Arc<Quantizer>, Quantizer)>,
}

impl Trained {
    const CANCELLED: Trained = Trained {
        flat: None,
        report: None,
        nprobe_for: None,
    };
}

/// True when the index partitions itself (see the module docs).
pub(super) fn auto(state: &State) -> bool {
    state.options.partition != Partition::Off
        && state.options.exact_threshold == ExactThreshold::Auto
        && !state.read_only
}

impl UnitIndex {
    /// True when an attempt is due for this state (see the module docs).
    pub(super) fn retrain_due(&self, state: &State) -> bool {
        let rows = state.flat.len();
        if !auto(state) || rows < MIN_ROWS || rows < self.next_attempt.rows.load(Ordering::Relaxed)
        {
            return false;
        }
        match &state.flat.quantizer {
            None => true,
            Some(q) => rows > 2 * ROWS_PER_LIST * q.lists(),
        }
    }

    /// Whether the graph may be built or trialled for this state: not in
    /// `auto` mode once partitioned, nor from [`MIN_ROWS`] rows unless the
    /// last partition was refused by its measurement (lists are preferred:
    /// seconds to build, not minutes, and adds cost no graph insert).
    pub(super) fn graph_allowed(&self, state: &State) -> bool {
        !auto(state)
            || (state.flat.quantizer.is_none()
                && !self.partition_pending()
                && (state.flat.len() < MIN_ROWS
                    || self.next_attempt.refused.load(Ordering::Relaxed)))
    }

    /// Whether the default `nprobe` of this state's lists is due to be
    /// measured again (see the module docs).
    fn recalibration_due(&self, state: &State) -> bool {
        self.drifted(state, RECALIBRATE)
    }

    /// Whether this state's rows have grown or shrunk by the share `by`
    /// (`a` to `b`) since its lists' `nprobe` was measured, in `auto` mode.
    fn drifted(&self, state: &State, (a, b): (usize, usize)) -> bool {
        let Some(at) = state
            .flat
            .quantizer
            .as_ref()
            .and_then(|q| q.calibrated_rows())
        else {
            return false;
        };
        let rows = state.flat.len();
        auto(state)
            && rows >= MIN_ROWS / 4
            && (rows.saturating_mul(a) >= at.saturating_mul(b)
                || rows.saturating_mul(b) <= at.saturating_mul(a))
    }

    /// In the writer's turn: adopt a finished partition, and start one (or
    /// a new measurement of `nprobe`) when due and none is in progress.
    pub(super) fn retrain_turn(&self, writer: &mut Writer<'_>) -> Result<(), IndexError> {
        self.adopt_partition(writer, false)?;
        let state = writer.state();
        if lock(&self.retrain).is_some() {
            return Ok(());
        }
        let basis = Arc::clone(&state.flat);
        let kernel = self.kernel;
        let due_before = self.next_attempt.rows.load(Ordering::Relaxed);
        if self.retrain_due(&state) {
            let rows = state.flat.len();
            self.next_attempt
                .rows
                .store(rows.saturating_mul(2), Ordering::Relaxed);
            let measured = state.options.partition == Partition::Auto;
            drop(state);
            let nlist = (rows / ROWS_PER_LIST).max(MIN_LISTS);
            self.start_job(due_before, move |cancel| {
                train(&basis, nlist, kernel, measured, cancel)
            })
        } else if self.recalibration_due(&state) {
            drop(state);
            self.start_job(due_before, move |cancel| {
                recalibrate(&basis, kernel, cancel)
            })
        } else {
            Ok(())
        }
    }

    /// Run `job` on a thread of its own as the partition in progress.
    fn start_job(
        &self,
        due_before: usize,
        job: impl FnOnce(&AtomicBool) -> Trained + Send + 'static,
    ) -> Result<(), IndexError> {
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cancel);
        let handle = std::thread::Builder::new()
            .name("ivdb-partition".into())
            .spawn(move || Ok(job(&flag)))
            .map_err(|e| IndexError::Native(format!("cannot start a partition: {e}")))?;
        *lock(&self.retrain) = Some(Retrain {
            handle,
            cancel,
            touched: Vec::new(),
            due_before,
        });
        Ok(())
    }

    /// Note keys a write changes while a partition is trained (called in
    /// the writer's turn, before the write is published).
    pub(super) fn note_written(&self, keys: impl Iterator<Item = u64>) {
        if let Some(job) = lock(&self.retrain).as_mut() {
            job.touched.extend(keys);
        }
    }

    /// The index's rows were replaced (load, view, reset): forget a
    /// partition in progress and what the attempts so far decided, so the
    /// new rows are judged on their own (an attempt cut short by a load
    /// used to leave the next one due only at twice its size) — or, from a
    /// file, as its save recorded them (`saved`).
    pub(super) fn restart_partitions(&self, saved: Option<SavedAttempt>) {
        self.cancel_partition();
        let saved = saved.unwrap_or(SavedAttempt {
            rows: 0,
            refused: false,
        });
        self.next_attempt.rows.store(saved.rows, Ordering::Relaxed);
        self.next_attempt
            .refused
            .store(saved.refused, Ordering::Relaxed);
    }

    /// When the next attempt is due, for a save to record: an attempt in
    /// progress counts as not made (it is lost unless adopted first).
    pub(super) fn saved_attempt(&self) -> SavedAttempt {
        let rows = match lock(&self.retrain).as_ref() {
            Some(job) => job.due_before,
            None => self.next_attempt.rows.load(Ordering::Relaxed),
        };
        SavedAttempt {
            rows,
            refused: self.next_attempt.refused.load(Ordering::Relaxed),
        }
    }

    /// Forget a partition in progress (its thread stops soon).
    pub(super) fn cancel_partition(&self) {
        if let Some(job) = lock(&self.retrain).take() {
            job.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a partition has finished and waits to be adopted.
    pub(super) fn partition_finished(&self) -> bool {
        lock(&self.retrain)
            .as_ref()
            .is_some_and(|j| j.handle.is_finished())
    }

    /// In the writer's turn: adopt a finished partition (with `wait`, wait
    /// for one in progress); see the module docs.
    pub(super) fn adopt_partition(
        &self,
        writer: &mut Writer<'_>,
        wait: bool,
    ) -> Result<(), IndexError> {
        let job = {
            let mut pending = lock(&self.retrain);
            match pending.as_ref() {
                Some(j) if wait || j.handle.is_finished() => pending.take(),
                _ => None,
            }
        };
        let Some(job) = job else {
            return Ok(());
        };
        let trained = job
            .handle
            .join()
            .unwrap_or_else(|_| Err(IndexError::Native("the partition thread panicked".into())))?;
        if let Some(report) = trained.report {
            self.next_attempt
                .refused
                .store(!report.kept, Ordering::Relaxed);
            if !report.kept && writer.state().flat.quantizer.is_none() {
                // The index's first partition refused: tried again at a
                // fifth more rows, not twice as many (see the module docs).
                let (a, b) = RECALIBRATE;
                let due = report.rows.saturating_mul(b) / a;
                self.next_attempt.rows.fetch_min(due, Ordering::Relaxed);
            }
            *lock(&self.next_attempt.last) = Some(report);
        }
        let Some(mut flat) = trained.flat else {
            if let Some((old, measured)) = trained.nprobe_for {
                self.set_nprobe(writer, &old, measured);
            }
            return Ok(());
        };
        let state = writer.state();
        let mut seen = HashSet::with_capacity(job.touched.len());
        for key in job.touched {
            if seen.insert(key) {
                flat.remove(key);
                if let Some(row) = state.flat.get(key) {
                    flat.insert(key, &row);
                }
            }
        }
        let options = state.options;
        drop(state);
        self.cancel_build();
        let hnsw = Hnsw::new(options.graph()).map_err(IndexError::Native)?;
        let flat = Arc::new(flat);
        writer.edit(usize::MAX, |state| {
            state.flat = flat;
            state.graph = Arc::new(GraphCell::new(Graph::Ready(hnsw)));
            state.deferred = true;
        });
        // The saved file no longer has this layout.
        self.dirty.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Publish the defaults of `measured` (the lists of `quantizer`, with
    /// the numbers measured for them) if those are still the index's lists.
    fn set_nprobe(&self, writer: &mut Writer<'_>, quantizer: &Arc<Quantizer>, measured: Quantizer) {
        let state = writer.state();
        if !state
            .flat
            .quantizer
            .as_ref()
            .is_some_and(|q| Arc::ptr_eq(q, quantizer))
        {
            return;
        }
        let changed = quantizer.nprobe() != measured.nprobe()
            || quantizer.measured_near_nprobe() != measured.measured_near_nprobe();
        // A clone shares the rows' chunks and the key map's parts.
        let mut flat = FlatStore::clone(&state.flat);
        drop(state);
        flat.quantizer = Some(Arc::new(measured));
        let flat = Arc::new(flat);
        writer.edit(usize::MAX, |state| state.flat = flat);
        if changed {
            // The saved file no longer has this default.
            self.dirty.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Wait for a partition in progress, if any, and publish it (see the
    /// module docs). Searches and writes need not call this; it serves
    /// callers that want the layout now (tests, benchmarks, a merge about to
    /// save).
    /// An attempt that came due while the last one was trained (no write
    /// since to start it) is made now.
    pub fn wait_partition(&self) -> Result<(), IndexError> {
        let mut writer = Writer::new(self);
        self.adopt_partition(&mut writer, true)?;
        self.retrain_turn(&mut writer)?;
        self.adopt_partition(&mut writer, true)
    }

    /// [`UnitIndex::wait_partition`], then measure the `nprobe` of the
    /// lists again, and wait for it, when the rows have changed by
    /// [`SETTLE`](crate::index::SETTLE) since it was measured: what a close, a frozen shard and a
    /// merged one do before they save (see the module docs).
    pub fn settle(&self) -> Result<(), IndexError> {
        self.wait_partition()?;
        let mut writer = Writer::new(self);
        let state = writer.state();
        if lock(&self.retrain).is_none() && self.drifted(&state, SETTLE) {
            let basis = Arc::clone(&state.flat);
            let kernel = self.kernel;
            let due_before = self.next_attempt.rows.load(Ordering::Relaxed);
            drop(state);
            self.start_job(due_before, move |cancel| {
                recalibrate(&basis, kernel, cancel)
            })?;
        } else {
            drop(state);
        }
        self.adopt_partition(&mut writer, true)
    }

    /// What the last automatic partition attempt measured and decided
    /// (`None` before the first finished; see the module docs).
    pub fn last_partition(&self) -> Option<PartitionReport> {
        *lock(&self.next_attempt.last)
    }

    /// True while a partition is being trained or waits to be adopted.
    pub fn partition_pending(&self) -> bool {
        lock(&self.retrain).is_some()
    }
}

/// Train a partition of `basis` into `nlist` lists and calibrate its
/// `nprobe`; the layout is dropped when (`measured`) probing does not pay
/// (see the module docs).
fn train(
    basis: &FlatStore,
    nlist: usize,
    kernel: Kernel,
    measured: bool,
    cancel: &AtomicBool,
) -> Trained {
    train_or_cancel(basis, nlist, kernel, measured, cancel).unwrap_or(Trained::CANCELLED)
}

/// [`train`]; `None` when cancelled.
fn train_or_cancel(
    basis: &FlatStore,
    nlist: usize,
    kernel: Kernel,
    measured: bool,
    cancel: &AtomicBool,
) -> Option<Trained> {
    let t = Instant::now();
    let truth = Truth::of(basis, kernel, cancel)?;
    let mut flat = super::lists::best(basis, nlist, &truth, cancel)?;
    let lists = flat.quantizer.as_ref()?.lists();
    let c = calibrate(&truth, &flat, kernel, Start::FRESH, cancel)?;
    // The lists the index has now, at the same recall on the same queries.
    let previous = match basis.quantizer.as_ref() {
        Some(q) if measured => Some((
            Arc::clone(q),
            calibrate(&truth, basis, kernel, Start::after(q), cancel)?,
        )),
        _ => None,
    };
    // The new lists' probes raced against what they would replace: the old
    // lists' probes, or the exact scan (see `calibration`). Both kinds of
    // search are weighed alike: the default (a top k) and the near one
    // (neighbours within NEAR only, as the engine's unit searches ask).
    let near_of = |c: &Calibration| c.near_nprobe.unwrap_or(c.nprobe);
    let new = |q: &Query| probe(&flat, kernel, q, c.nprobe);
    let new_near = |q: &Query| probe(&flat, kernel, q, near_of(&c));
    let [probe_ns, near_probe_ns, rival_ns, rival_near_ns] = match &previous {
        _ if !measured => [0.0; 4],
        Some((_, p)) => {
            let old = |q: &Query| probe(basis, kernel, q, p.nprobe);
            let old_near = |q: &Query| probe(basis, kernel, q, near_of(p));
            race(
                &truth.queries,
                [&new, &new_near, &old, &old_near],
                ROUNDS,
                cancel,
            )?
        }
        None => {
            let exact = |q: &Query| scan(basis, kernel, q);
            let [new, new_near, exact] =
                race(&truth.queries, [&new, &new_near, &exact], ROUNDS, cancel)?;
            [new, new_near, exact, exact]
        }
    };
    let kept = match &previous {
        _ if !measured => true,
        Some(_) => probe_ns + near_probe_ns <= rival_ns + rival_near_ns,
        // The two probes at half the scan on average: a partition costs
        // the searches that scan every row (an exact scan runs list by
        // list).
        None => probe_ns + near_probe_ns <= rival_ns,
    };
    let report = PartitionReport {
        rows: basis.len(),
        lists,
        nprobe: c.nprobe,
        near_nprobe: c.near_nprobe,
        recall: c.recall,
        rows_read: c.rows_read,
        probe_ns,
        scan_ns: match previous {
            None if measured => rival_ns,
            _ => truth.scan_ns,
        },
        near_probe_ns,
        kept,
        previous_probe_ns: previous.as_ref().map_or(0.0, |_| rival_ns),
        previous_near_probe_ns: previous.as_ref().map_or(0.0, |_| rival_near_ns),
        previous_rows_read: previous.as_ref().map_or(0.0, |(_, p)| p.rows_read),
        recalibrated: false,
        seconds: t.elapsed().as_secs_f64(),
    };
    if !kept {
        return Some(Trained {
            flat: None,
            report: Some(report),
            nprobe_for: previous.map(|(q, p)| {
                let measured =
                    Quantizer::clone(&q).calibrated(p.nprobe, p.near_nprobe, basis.len());
                (q, measured)
            }),
        });
    }
    if let Some(q) = flat.quantizer.as_deref() {
        flat.quantizer = Some(Arc::new(q.clone().calibrated(
            c.nprobe,
            c.near_nprobe,
            basis.len(),
        )));
    }
    flat.build_key_map();
    Some(Trained {
        flat: Some(flat),
        report: Some(report),
        nprobe_for: None,
    })
}

/// Measure the default `nprobe` of `basis`'s lists again (see the module
/// docs). Without a measurement (no neighbours to find) the number stays,
/// counted as measured at these rows, so the next is due only after the
/// rows have changed by a fifth again.
fn recalibrate(basis: &FlatStore, kernel: Kernel, cancel: &AtomicBool) -> Trained {
    let t = Instant::now();
    let Some(quantizer) = basis.quantizer.clone() else {
        return Trained::CANCELLED;
    };
    let rows = basis.len();
    let measurement = Truth::of(basis, kernel, cancel).and_then(|truth| {
        let c = calibrate(&truth, basis, kernel, Start::after(&quantizer), cancel)?;
        let new = |q: &Query| probe(basis, kernel, q, c.nprobe);
        // One round: the time is reported, it decides nothing.
        let [probe_ns] = race(&truth.queries, [&new], 1, cancel)?;
        Some((c, probe_ns, truth.scan_ns))
    });
    if cancel.load(Ordering::Relaxed) {
        return Trained::CANCELLED;
    }
    let report = measurement
        .as_ref()
        .map(|(c, probe_ns, scan_ns)| PartitionReport {
            rows,
            lists: quantizer.lists(),
            nprobe: c.nprobe,
            near_nprobe: c.near_nprobe,
            recall: c.recall,
            rows_read: c.rows_read,
            probe_ns: *probe_ns,
            scan_ns: *scan_ns,
            near_probe_ns: 0.0,
            kept: true,
            previous_probe_ns: 0.0,
            previous_near_probe_ns: 0.0,
            previous_rows_read: 0.0,
            recalibrated: true,
            seconds: t.elapsed().as_secs_f64(),
        });
    let measured = match measurement {
        Some((c, ..)) => Quantizer::clone(&quantizer).calibrated(c.nprobe, c.near_nprobe, rows),
        None => Quantizer::clone(&quantizer).calibrated(
            quantizer.nprobe(),
            quantizer.measured_near_nprobe(),
            rows,
        ),
    };
    Trained {
        flat: None,
        report,
        nprobe_for: Some((quantizer, measured)),
    }
}
