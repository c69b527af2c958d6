//! What a search costs on this machine, measured while searches run, so a
//! search is split across the thread pool only where that pays.
//!
//! Splitting one query's work (its unit types, a unit type's shards) over
//! rayon is nearly free on a pool thread, but a caller from outside the
//! pool — a C, Python, Go or Node thread, the REST server's blocking
//! threads — hands the work to the pool and sleeps until it is done: on a
//! 2-core machine that round trip cost a search of a small index from
//! Python 13 µs of its 29. So such a caller splits only when the time the
//! split saves (with `p` threads, all but `1/p` of the work) is estimated to
//! exceed the round trip; with one thread in the pool, never.
//!
//! Every figure is measured here, in this process: the round trip once (the
//! median of 15 `rayon::join`s from the calling thread, after one that
//! starts the pool), the cost of a scanned row and of a graph distance as
//! moving averages over the searches run so far. Until a kind of search has
//! been measured, its estimate is unknown and the search is split, as
//! before this module existed.
//!
//! The same figures choose between the exact scan and the graph where an
//! index's `exact_threshold` is `auto` ([`graph_pays`]): a graph search is
//! modelled from graphs measured in this process (their rows and
//! nanoseconds per search, see [`note_graph`]; before any, the calibration
//! of [`super::calibrate`]) by the power law through the two measured sizes
//! nearest the one asked for (one size: growth with the log of the rows),
//! linear in `expansion × connectivity`; a scan as rows × the measured cost
//! per row. A "yes" far beyond the largest measured graph is checked by a
//! trial on the index's own rows ([`super::calibrate::trial`]): a log
//! extrapolated from 8,192 rows priced a graph of 800,000 at less than half
//! its measured cost here and built a graph that did not pay.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Picoseconds per word read by an exact scan (moving average; 0: not measured).
static SCAN_PS_PER_WORD: AtomicU64 = AtomicU64::new(0);
/// Picoseconds per distance of a graph walk (moving average; 0: none yet).
static GRAPH_PS_PER_DISTANCE: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds of one hand-off to the pool and back, from outside it.
static HANDOFF_NS: OnceLock<f64> = OnceLock::new();
/// Picoseconds per word read by exact scans of at least [`LARGE_SCAN`] rows
/// (moving average; 0: none yet): the figure path choices use.
static LARGE_SCAN_PS_PER_WORD: AtomicU64 = AtomicU64::new(0);
/// Scans of this many rows or more measure the per-row cost: in smaller
/// ones the per-query work (the first heap fills, the result) weighs in,
/// and a per-row figure from them would overprice big scans.
pub(crate) const LARGE_SCAN: u64 = 32_768;
/// Graph search costs measured at real sizes (see [`note_graph`]), at most
/// one per power of two of rows, the latest kept.
static GRAPH_REFS: Mutex<Vec<GraphRef>> = Mutex::new(Vec::new());
/// The trial of [`super::calibrate::trial`] in this process: not run,
/// running (see [`TRIAL_RUNNING`]) or done.
static TRIAL: AtomicU8 = AtomicU8::new(TRIAL_NONE);
const TRIAL_NONE: u8 = 0;
/// While the trial runs (in the background, see [`run_trial`]), the model's
/// "yes" for rows beyond what was measured waits for it: [`graph_pays`]
/// says no, and a later write asks again.
const TRIAL_RUNNING: u8 = 1;
const TRIAL_DONE: u8 = 2;
/// How far past the largest measured graph a "the graph pays" of the
/// model is trusted without a trial: search cost grows faster than the log
/// of the rows once a graph outgrows the caches, so a model extrapolated
/// far underprices the graph — a "no" stays safe, a "yes" is checked.
/// (Measured here: a log from 8,192 rows priced 65,536 at 0.6 of its cost.)
const TRUSTED_REACH: f64 = 4.0;
/// How much cheaper than the scan a modelled graph search must be before
/// an index builds its graph. Near a tie the scan is the better index: the
/// graph costs a build (here ~100× an add per row), answers approximately
/// and takes ~7× the disk; and two runs of the model differed by 1.5× on
/// one machine (the trial's exponent 0.22 vs 0.33), which flipped a tie at
/// 300,000 rows into a graph that searched no faster than the scan. Each
/// side of the comparison is a measurement that varied by up to 1.5× between
/// runs here (a scan of the index's own rows priced 0.88 ns/row during a
/// bulk load and 0.53 in the searches after it; the trial's 8,192-row graph
/// 141 vs 184 µs), so a margin below their product (~2.25) still flipped
/// ties: with 2.0, a 1M index built two 500k graphs (adds fell from ~600k
/// to 8,700 codes/s) that searched at 0.86× its scan. Once a graph exists,
/// each search still takes whichever path is cheaper.
const GRAPH_MARGIN: f64 = 3.0;

/// A graph search cost measured on a real graph.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GraphRef {
    /// Rows of the graph.
    pub(crate) rows: f64,
    /// Nanoseconds per search.
    pub(crate) ns: f64,
    /// `max(expansion_search, count) × connectivity` of those searches.
    pub(crate) work: f64,
}

impl GraphRef {
    /// Nanoseconds per unit of walk.
    fn per_work(&self) -> f64 {
        self.ns / self.work
    }
}

/// Modelled nanoseconds of a search of `rows` rows walking `work`, from
/// measured graphs `refs` (sorted by rows, non-empty): a power law
/// `ns ∝ rows^a` through the two measured sizes nearest to `rows` (the
/// exponent bounded to `[0.05, 1]`), or with one size, growth with the log
/// of the rows.
fn model(refs: &[GraphRef], rows: f64, work: f64) -> f64 {
    let log = |n: f64| n.max(2.0).ln();
    // The nearest measured size at or below `rows` (else the smallest).
    let base = refs.iter().rposition(|r| r.rows <= rows).unwrap_or(0);
    let b = refs[base];
    // A second size at least twice apart: the next larger when `rows` lies
    // between, else the largest smaller one.
    let other = refs[base + 1..]
        .iter()
        .find(|r| r.rows >= 2.0 * b.rows && rows > b.rows)
        .or_else(|| refs[..base].iter().rev().find(|r| r.rows * 2.0 <= b.rows))
        .or_else(|| refs[base + 1..].iter().find(|r| r.rows >= 2.0 * b.rows));
    let scale = match other {
        Some(o) => {
            let a = (o.per_work() / b.per_work()).ln() / (o.rows / b.rows).ln();
            let a = if a.is_finite() {
                a.clamp(0.05, 1.0)
            } else {
                1.0
            };
            (rows / b.rows).powf(a)
        }
        None => log(rows) / log(b.rows),
    };
    b.per_work() * work * scale
}

/// Record a graph search cost measured at a graph's real size: later
/// choices model graphs from the measured ones instead of the calibration.
pub(crate) fn note_graph(reference: GraphRef) {
    if !(reference.rows >= 2.0 && reference.ns > 0.0 && reference.work > 0.0) {
        return;
    }
    if !reference.ns.is_finite() {
        return;
    }
    let mut refs = crate::sync::lock(&GRAPH_REFS);
    let bucket = |r: &GraphRef| r.rows.log2().round() as i64;
    refs.retain(|r| bucket(r) != bucket(&reference));
    refs.push(reference);
    refs.sort_by(|a, b| a.rows.total_cmp(&b.rows));
}

/// True when `IVDB_DEBUG_COST` is set: path decisions and calibrations are
/// printed on stderr (read once; graph decisions run on every deferred add).
pub(crate) fn debug_cost() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("IVDB_DEBUG_COST").is_some())
}

/// Nanoseconds an exact scan spends per 64-bit word it reads (measured,
/// else calibrated; see `FlatStore::words`).
pub(crate) fn scan_ns_per_word() -> f64 {
    // Only scans of LARGE_SCAN rows or more (see there).
    match LARGE_SCAN_PS_PER_WORD.load(Ordering::Relaxed) {
        0 => super::calibrate::prior().scan_ns_per_word,
        ps => ps as f64 / 1000.0,
    }
}

/// Modelled nanoseconds of one graph search over `rows` rows, walking
/// `work` = `max(expansion, count) × connectivity`.
pub(crate) fn graph_search_ns(rows: usize, work: usize) -> f64 {
    let refs = crate::sync::lock(&GRAPH_REFS).clone();
    if refs.is_empty() {
        let prior = super::calibrate::prior().graph;
        return model(&[prior], rows as f64, work as f64);
    }
    model(&refs, rows as f64, work as f64)
}

/// Rows of the largest graph measured in this process (before any, the
/// calibration's graph).
fn largest_measured() -> f64 {
    let largest = crate::sync::lock(&GRAPH_REFS).last().map(|r| r.rows);
    largest.unwrap_or_else(|| super::calibrate::prior().graph.rows)
}

/// Whether an index of `rows` rows searches clearly faster by a graph than
/// by the scan (by [`GRAPH_MARGIN`]; `work` as in [`graph_search_ns`]). A graph walk computes up to
/// `2 × work` distances, each dearer than a scanned row, so an index of
/// fewer rows always scans, and nothing is calibrated for it.
///
/// When the model says yes for `rows` far beyond every graph measured so
/// far, `sample` (rows of the index, see [`super::calibrate::trial`]) is
/// asked for once per process and graphs of its rows are measured at two
/// sizes; the answer is then modelled from those.
pub(crate) fn graph_pays(
    rows: usize,
    words: u64,
    work: usize,
    connectivity: usize,
    expansion_search: usize,
    sample: &dyn Fn(usize) -> Vec<crate::metric::Row>,
    scan_price: &dyn Fn() -> Option<f64>,
) -> bool {
    if rows <= 2 * work {
        return false;
    }
    let scan = words as f64 * scan_ns_per_word();
    let graph = graph_search_ns(rows, work);
    if debug_cost() {
        eprintln!("ivdb: {rows} rows: scan {scan:.0} ns, graph {graph:.0} ns (modelled)");
    }
    if graph * GRAPH_MARGIN >= scan {
        return false;
    }
    if beyond_measured(rows) {
        if TRIAL.load(Ordering::Acquire) == TRIAL_RUNNING {
            return false;
        }
        let rows_wanted = rows.min(super::calibrate::TRIAL_ROWS);
        if run_trial(
            &sample(rows_wanted),
            scan_price(),
            connectivity,
            expansion_search,
        ) {
            let scan = words as f64 * scan_ns_per_word();
            return graph_search_ns(rows, work) * GRAPH_MARGIN < scan;
        }
    }
    true
}

/// True when the graph model is trusted no further than `rows / 4`
/// ([`TRUSTED_REACH`]) and the once-per-process trial has not finished.
fn beyond_measured(rows: usize) -> bool {
    largest_measured() * TRUSTED_REACH < rows as f64 && TRIAL.load(Ordering::Acquire) != TRIAL_DONE
}

/// Whether [`graph_pays`] for an index of `rows` rows would run the trial:
/// a writer asks before it takes its index's writer turn and starts the
/// trial in the background ([`run_trial`]), so a trial (seconds) never
/// blocks the index nor the write.
pub(crate) fn trial_due(rows: usize, words: u64, work: usize) -> bool {
    if rows <= 2 * work || !beyond_measured(rows) {
        return false;
    }
    graph_search_ns(rows, work) * GRAPH_MARGIN < words as f64 * scan_ns_per_word()
}

/// Measure graphs of `sample`'s rows (see [`super::calibrate::trial`]) and
/// add them to the model, once per process: false when a trial already ran
/// (or runs) elsewhere.
///
/// `scan` is the index's own scan price (see
/// `UnitIndex::scan_price`): it becomes the large-scan price unless real
/// large scans were measured already. Neither the calibration's random rows
/// nor a sample of the index price it: a query's near neighbours tighten
/// the early termination of a scan, and only the whole index has them all
/// (measured here: calibration 0.62–0.83, a 65,536-row sample 0.81, the
/// whole 1M index 0.51 ns/row).
pub(crate) fn run_trial(
    sample: &[crate::metric::Row],
    scan: Option<f64>,
    connectivity: usize,
    expansion_search: usize,
) -> bool {
    if !claim_trial() {
        return false;
    }
    claimed_trial(sample, scan, connectivity, expansion_search);
    true
}

/// Mark the trial running; false when it ran or runs elsewhere.
fn claim_trial() -> bool {
    TRIAL
        .compare_exchange(
            TRIAL_NONE,
            TRIAL_RUNNING,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok()
}

/// The trial's work, once claimed (see [`run_trial`]).
fn claimed_trial(
    sample: &[crate::metric::Row],
    scan: Option<f64>,
    connectivity: usize,
    expansion_search: usize,
) {
    // Done even if the trial panics: a retry would only panic again.
    struct Done;
    impl Drop for Done {
        fn drop(&mut self) {
            TRIAL.store(TRIAL_DONE, Ordering::Release);
        }
    }
    let _done = Done;
    for r in super::calibrate::trial(sample, connectivity, expansion_search) {
        note_graph(r);
    }
    // Real scans of real queries, where there were any, price better.
    if let Some(ns) = scan {
        let ps = (ns * 1000.0).round().max(1.0) as u64;
        let _ =
            LARGE_SCAN_PS_PER_WORD.compare_exchange(0, ps, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// [`run_trial`] on a thread of its own: the caller goes on at once, and
/// graph decisions beyond what was measured wait for it (see
/// [`TRIAL_RUNNING`]). `prepare` (run on that thread, and only when this
/// call claims the trial) gives the sample rows and the measured scan
/// price: at 1M rows measuring takes a few hundred milliseconds the caller
/// should not spend.
pub(crate) fn start_trial<F>(prepare: F, connectivity: usize, expansion_search: usize)
where
    F: FnOnce() -> (Vec<crate::metric::Row>, Option<f64>) + Send + 'static,
{
    if !claim_trial() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("ivdb-graph-trial".into())
        .spawn(move || {
            let (sample, scan) = prepare();
            claimed_trial(&sample, scan, connectivity, expansion_search)
        });
    if spawned.is_err() {
        // No thread: the model's answer stands unchecked, as after a trial
        // that measured nothing.
        TRIAL.store(TRIAL_DONE, Ordering::Release);
    }
}

/// The kind of work a unit-index search did.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Work {
    /// An exact scan of `rows` rows reading `words` 64-bit words at most
    /// (see `FlatStore::words`; the price is per word).
    Scan { rows: u64, words: u64 },
    /// A graph walk that computed this many distances.
    Graph(u64),
}

fn slot(work: Work) -> (&'static AtomicU64, u64) {
    match work {
        Work::Scan { words, .. } => (&SCAN_PS_PER_WORD, words),
        Work::Graph(n) => (&GRAPH_PS_PER_DISTANCE, n),
    }
}

/// Fold one measured search into the averages (weight 1/8 for the new one;
/// concurrent updates may lose one another, which an average can afford).
pub(crate) fn record(work: Work, elapsed: Duration) {
    if let Work::Scan { rows, words } = work {
        if rows >= LARGE_SCAN {
            fold(&LARGE_SCAN_PS_PER_WORD, words, elapsed);
        }
    }
    let (cell, n) = slot(work);
    fold(cell, n, elapsed);
}

fn fold(cell: &AtomicU64, n: u64, elapsed: Duration) {
    if n == 0 {
        return;
    }
    let ps = (elapsed.as_nanos().saturating_mul(1000) / u128::from(n)).max(1);
    let ps = u64::try_from(ps).unwrap_or(u64::MAX);
    let old = cell.load(Ordering::Relaxed);
    let new = if old == 0 { ps } else { old - old / 8 + ps / 8 };
    cell.store(new.max(1), Ordering::Relaxed);
}

/// Estimated nanoseconds of `work`, when that kind was measured.
pub(crate) fn estimate_ns(work: Work) -> Option<f64> {
    let (cell, n) = slot(work);
    match cell.load(Ordering::Relaxed) {
        0 => None,
        ps => Some(ps as f64 * n as f64 / 1000.0),
    }
}

/// The hand-off round trip from outside the pool (measured on first use).
fn handoff_ns() -> f64 {
    *HANDOFF_NS.get_or_init(|| {
        rayon::join(|| (), || ());
        let mut rounds: Vec<f64> = (0..15)
            .map(|_| {
                let t = Instant::now();
                rayon::join(|| (), || ());
                t.elapsed().as_nanos() as f64
            })
            .collect();
        rounds.sort_by(f64::total_cmp);
        rounds[rounds.len() / 2]
    })
}

/// Whether to split `pieces` independent pieces of search work, estimated
/// by `estimate_ns` in all (`None`: not yet measured), over the pool. The
/// estimate is asked for only where the answer depends on it (not for one
/// piece, a one-thread pool or a caller inside the pool).
pub(crate) fn worth_splitting(pieces: usize, estimate_ns: impl FnOnce() -> Option<f64>) -> bool {
    // At most this many pieces run at once.
    let p = pieces.min(rayon::current_num_threads());
    if p < 2 {
        return false;
    }
    if rayon::current_thread_index().is_some() {
        // Inside the pool the pieces are stolen, not handed over.
        return true;
    }
    // Split over p threads, work w takes w/p + the round trip: a gain when
    // w (1 - 1/p) exceeds the round trip.
    let p = p as f64;
    estimate_ns().is_none_or(|ns| ns * (1.0 - 1.0 / p) > handoff_ns())
}

/// Run `f` on a thread of the pool: directly on one, else handed to the
/// pool once, the caller sleeping until it is done. For work that will split
/// itself over the pool many times (a granular search: one batch per
/// simprint type and shard): from outside the pool each split is a hand-off,
/// and between splits the caller's own work (store reads, scoring) competes
/// for the cores with pool threads spinning for more — measured on 2 cores,
/// chunk search from outside the pool ran at 0.82 of the rate from inside.
pub(crate) fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() || rayon::current_num_threads() < 2 {
        f()
    } else {
        rayon::scope(|_| f())
    }
}

/// The sum of estimates (unknown when any is).
pub(crate) fn sum(estimates: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    estimates.into_iter().sum()
}

// ---- coalescing -------------------------------------------------------------

/// CPU picoseconds per word read by large single-query scans, and by
/// large scans of several queries at once (moving averages; 0: none yet).
/// CPU time of the scanning thread, not wall time: under load (when
/// coalescing is in question) threads are preempted mid-scan, and wall time
/// would price a scan by the queue it waited in.
static SOLO_CPU_PS: AtomicU64 = AtomicU64::new(0);
static BATCH_CPU_PS: AtomicU64 = AtomicU64::new(0);
/// A batch must be this much cheaper per query than single scans for
/// concurrent queries to wait for one.
const COALESCE_MARGIN: f64 = 0.9;

/// The CPU time this thread has used (`None` where the clock is missing).
pub(crate) fn thread_cpu() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration;
    // CLOCK_THREAD_CPUTIME_ID needs no other state.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// Record the CPU time a scan of `rows` rows for `queries` queries took,
/// reading `words` words in all
/// (only scans of at least [`LARGE_SCAN`] rows: small ones are dominated by
/// per-query work).
pub(crate) fn record_scan_cpu(rows: u64, words: u64, queries: usize, started: Option<Duration>) {
    let (Some(start), Some(end)) = (started, thread_cpu()) else {
        return;
    };
    if rows < LARGE_SCAN || queries == 0 {
        return;
    }
    let cell = if queries == 1 {
        &SOLO_CPU_PS
    } else {
        &BATCH_CPU_PS
    };
    // Per word read: queries of other lengths read other amounts.
    fold(cell, words, end.saturating_sub(start));
}

/// Whether concurrent exact queries should wait to share a batch: a
/// batch's scan measured cheaper per query than single scans in this
/// process (`None` until both were measured). On a CPU whose single scan
/// stops early per word and has the rows in a large cache, a batch can
/// cost as much per query as a single scan, and waiting for it only loses
/// parallelism (measured here: 0.85 of the throughput at 8 client threads).
pub(crate) fn coalescing_pays() -> Option<bool> {
    let solo = SOLO_CPU_PS.load(Ordering::Relaxed);
    let batch = BATCH_CPU_PS.load(Ordering::Relaxed);
    if solo == 0 || batch == 0 {
        return None;
    }
    Some((batch as f64) < solo as f64 * COALESCE_MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_piece_is_never_split_and_estimates_follow_measurements() {
        assert!(!worth_splitting(1, || None));
        assert!(!worth_splitting(0, || Some(1e12)));
        // One piece never asks for an estimate.
        assert!(!worth_splitting(1, || unreachable!(
            "estimate asked for one piece"
        )));
        record(Work::Graph(1000), Duration::from_micros(50));
        let ns = estimate_ns(Work::Graph(2000)).unwrap();
        assert!(ns > 0.0, "{ns}");
        // Work far beyond any hand-off is split; none at all is not.
        assert!(worth_splitting(2, || Some(1e12)));
        assert!(!worth_splitting(2, || Some(0.0)));
        assert_eq!(sum([Some(1.0), None]), None);
        assert_eq!(sum([Some(1.0), Some(2.0)]), Some(3.0));
    }

    #[test]
    fn the_graph_model_follows_measured_sizes() {
        let r = |rows: f64, ns: f64| GraphRef {
            rows,
            ns,
            work: 2048.0,
        };
        // One size: growth with the log of the rows, linear in the walk.
        let one = [r(8192.0, 100.0)];
        assert!((model(&one, 8192.0, 2048.0) - 100.0).abs() < 1e-9);
        assert!((model(&one, 8192.0, 4096.0) - 200.0).abs() < 1e-9);
        let want = 100.0 * (65536f64).ln() / (8192f64).ln();
        assert!((model(&one, 65536.0, 2048.0) - want).abs() < 1e-9);
        // Two sizes: the power law through them, beyond and between.
        let two = [r(8192.0, 100.0), r(65536.0, 200.0)];
        assert!((model(&two, 65536.0, 2048.0) - 200.0).abs() < 1e-9);
        assert!((model(&two, 524288.0, 2048.0) - 400.0).abs() < 1e-6);
        let mid = model(&two, 23170.0, 2048.0);
        assert!(mid > 140.0 && mid < 143.0, "{mid}");
        // Below every size: from the smallest, by the same exponent.
        assert!((model(&two, 1024.0, 2048.0) - 50.0).abs() < 1e-6);
        // A cheaper larger graph does not make graphs shrink with rows.
        let odd = [r(8192.0, 100.0), r(65536.0, 50.0)];
        assert!(model(&odd, 524288.0, 2048.0) >= 50.0);
    }
}
