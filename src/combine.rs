//! Coalescing concurrent single requests into shared batches.
//!
//! An exact scan of one query reads every row from memory; a batch reads
//! each block of rows once for all its queries (see
//! `index::flat::FlatStore::search_many`), which is several times cheaper
//! per query once the rows are out of cache. Callers that each send one
//! query (REST handlers, C ABI, Go and Node threads) therefore go through a
//! [`Combiner`]:
//!
//! * At most `lanes` requests (one per core) run at once. A request that
//!   finds a free lane runs at once, taking with it every compatible
//!   request that is waiting; alone it takes the single-query path.
//! * A request that finds every lane busy waits; the next lane to free is
//!   taken by one of the waiting requests, which runs all compatible waiting
//!   requests as one batch and hands each its own result.
//!
//! Nothing changes for a caller alone: it finds a free lane and pays two
//! uncontended mutex operations. Under load, the queries that would have
//! queued for a core anyway share passes over the rows.
//!
//! **Deadlock rule.** Only threads outside the rayon pool wait. A leader's
//! batch may use the pool (a batch's chunks run in parallel); if pool
//! threads could wait for a lane, a leader could wait on pool threads that
//! wait on it. A pool thread that finds no free lane runs its request
//! alone instead.
//!
//! **Failure.** If a batch fails (or panics), every request in it runs
//! again alone, so each gets the error (or result) it would have had alone.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use crate::sync::{lock, wait};

/// The most requests one batch takes (bounds a leader's wait for its own
/// result).
pub(crate) const MAX_BATCH: usize = 256;

/// What a waiting request gets back.
enum Outcome<Q, T> {
    /// Its result from a batch.
    Ready(T),
    /// The batch failed: run alone.
    Alone(Q),
}

struct Queue<Q, T> {
    /// Lanes taken.
    leaders: usize,
    next_ticket: u64,
    /// Waiting requests, oldest first.
    pending: VecDeque<(u64, Q)>,
    /// Outcomes not yet collected by their waiting requests.
    done: HashMap<u64, Outcome<Q, T>>,
}

/// A combiner of requests `Q` answered by results `T` (see the module
/// documentation).
pub(crate) struct Combiner<Q, T> {
    lanes: usize,
    enabled: AtomicBool,
    queue: Mutex<Queue<Q, T>>,
    changed: Condvar,
    /// Batches of more than one request run, and the requests in them.
    batches: AtomicU64,
    batched: AtomicU64,
    /// Requests that found the lanes busy while batches did not pay.
    explored: AtomicU64,
    /// Whether batches pay (see [`Combiner::worth_waiting`]).
    pays: fn() -> Option<bool>,
}

/// One in this many requests that find every lane busy still waits for a
/// batch when batches were measured not to pay, so the measurement stays
/// current.
const EXPLORE: u64 = 16;

/// Counts of a combiner's work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoalesceStats {
    /// Batches of two or more requests.
    pub batches: u64,
    /// Requests answered by those batches.
    pub requests: u64,
}

impl<Q: Send, T: Send> Combiner<Q, T> {
    /// A combiner running at most `lanes` requests or batches at once,
    /// waiting for batches while `pays` does not say they cost more.
    pub(crate) fn new(lanes: usize, pays: fn() -> Option<bool>) -> Combiner<Q, T> {
        Combiner {
            lanes: lanes.max(1),
            enabled: AtomicBool::new(true),
            queue: Mutex::new(Queue {
                leaders: 0,
                next_ticket: 0,
                pending: VecDeque::new(),
                done: HashMap::new(),
            }),
            changed: Condvar::new(),
            batches: AtomicU64::new(0),
            batched: AtomicU64::new(0),
            explored: AtomicU64::new(0),
            pays,
        }
    }

    /// One lane per thread of the global rayon pool, waiting while exact
    /// batch scans are not measured dearer per query than single ones.
    pub(crate) fn per_core() -> Combiner<Q, T> {
        Combiner::new(
            rayon::current_num_threads(),
            crate::index::cost::coalescing_pays,
        )
    }

    /// Whether a request finding every lane busy should wait for a batch:
    /// when batches were measured cheaper per query (see
    /// [`crate::index::cost::coalescing_pays`]); before both were measured,
    /// and for one in [`EXPLORE`] requests after a "no" (so the measurement
    /// follows the machine's load), it waits.
    fn worth_waiting(&self) -> bool {
        match (self.pays)() {
            Some(false) => self
                .explored
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(EXPLORE),
            _ => true,
        }
    }

    /// Turn coalescing on or off (off: every request runs alone at once).
    pub(crate) fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// What the combiner did so far.
    pub(crate) fn stats(&self) -> CoalesceStats {
        CoalesceStats {
            batches: self.batches.load(Ordering::Relaxed),
            requests: self.batched.load(Ordering::Relaxed),
        }
    }

    /// Answer `request`: alone through `solo`, or as part of a batch
    /// answered by `batch` (results in the order of the requests given;
    /// `None` when the batch failed). `same` tells which requests may share
    /// a batch (the same options).
    pub(crate) fn run(
        &self,
        request: Q,
        same: impl Fn(&Q, &Q) -> bool,
        solo: impl Fn(Q) -> T,
        batch: impl FnOnce(&[Q]) -> Option<Vec<T>>,
    ) -> T {
        if !self.enabled.load(Ordering::Relaxed) {
            return solo(request);
        }
        let mut q = lock(&self.queue);
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        let own = if q.leaders < self.lanes {
            request
        } else if rayon::current_thread_index().is_some() || !self.worth_waiting() {
            // A pool thread never waits (the deadlock rule above).
            drop(q);
            return solo(request);
        } else {
            q.pending.push_back((ticket, request));
            loop {
                q = wait(&self.changed, q);
                match q.done.remove(&ticket) {
                    Some(Outcome::Ready(result)) => return result,
                    Some(Outcome::Alone(request)) => {
                        drop(q);
                        return solo(request);
                    }
                    None => {}
                }
                if q.leaders < self.lanes {
                    if let Some(at) = q.pending.iter().position(|(t, _)| *t == ticket) {
                        if let Some((_, request)) = q.pending.remove(at) {
                            break request;
                        }
                    }
                }
            }
        };
        // This request leads: take the compatible waiting requests along.
        q.leaders += 1;
        let mut lead = Lead {
            combiner: self,
            tickets: Vec::new(),
            requests: vec![own],
        };
        let mut at = 0;
        while at < q.pending.len() && lead.requests.len() < MAX_BATCH {
            if same(&lead.requests[0], &q.pending[at].1) {
                if let Some((t, r)) = q.pending.remove(at) {
                    lead.tickets.push(t);
                    lead.requests.push(r);
                }
            } else {
                at += 1;
            }
        }
        drop(q);
        if lead.tickets.is_empty() {
            // Alone: the single-query path, holding the lane until done.
            if let Some(own) = lead.requests.pop() {
                let result = solo(own);
                drop(lead);
                return result;
            }
        }
        let n = lead.requests.len();
        let results = batch(&lead.requests).filter(|r| r.len() == n);
        match lead.finish(results) {
            Outcome::Ready(result) => {
                self.batches.fetch_add(1, Ordering::Relaxed);
                self.batched.fetch_add(n as u64, Ordering::Relaxed);
                result
            }
            Outcome::Alone(request) => solo(request),
        }
    }
}

/// A leader's lane and the requests it took: released, and every follower
/// answered, when dropped (a batch that panics sends each follower back to
/// run alone).
struct Lead<'a, Q, T> {
    combiner: &'a Combiner<Q, T>,
    /// The followers' tickets, in the order of `requests[1..]`.
    tickets: Vec<u64>,
    /// The leader's request first, then the followers'.
    requests: Vec<Q>,
}

impl<Q, T> Lead<'_, Q, T> {
    /// Release the lane, answering the followers from `results` (one per
    /// request, the leader's first) or, without results, sending them to
    /// run alone; the leader's own outcome is returned.
    fn finish(mut self, results: Option<Vec<T>>) -> Outcome<Q, T> {
        let mut requests = std::mem::take(&mut self.requests).into_iter();
        let tickets = std::mem::take(&mut self.tickets);
        let mut q = lock(&self.combiner.queue);
        let own = match results {
            Some(results) => {
                let mut results = results.into_iter();
                let own = results.next();
                for (ticket, result) in tickets.into_iter().zip(results) {
                    q.done.insert(ticket, Outcome::Ready(result));
                }
                own.map(Outcome::Ready)
            }
            None => {
                let own = requests.next();
                for (ticket, request) in tickets.into_iter().zip(requests) {
                    q.done.insert(ticket, Outcome::Alone(request));
                }
                own.map(Outcome::Alone)
            }
        };
        drop(q);
        // Drop releases the lane and wakes the followers.
        drop(self);
        own.expect("the leader's own request")
    }
}

impl<Q, T> Drop for Lead<'_, Q, T> {
    fn drop(&mut self) {
        let mut q = lock(&self.combiner.queue);
        q.leaders -= 1;
        let followers = self.requests.drain(..).skip(1);
        for (ticket, request) in self.tickets.drain(..).zip(followers) {
            q.done.insert(ticket, Outcome::Alone(request));
        }
        drop(q);
        self.combiner.changed.notify_all();
    }
}

#[cfg(test)]
impl<Q, T> Combiner<Q, T> {
    /// Requests waiting now.
    fn waiting(&self) -> usize {
        lock(&self.queue).pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Wait (at most 10 s) until `n` requests are waiting.
    fn until_waiting<Q: Send, T: Send>(c: &Combiner<Q, T>, n: usize) {
        let start = Instant::now();
        while c.waiting() < n {
            assert!(start.elapsed() < Duration::from_secs(10), "no {n} waiting");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// What every request got, the batch sizes seen, the stats.
    type Scenario = (Vec<((u32, u32), u64)>, Vec<usize>, CoalesceStats);

    /// A leader held inside its solo call while `followers` requests
    /// queue behind it; returns what every request got and the batch sizes
    /// the batch function saw.
    fn scenario(followers: Vec<(u32, u32)>, fail_batch: bool) -> Scenario {
        let c: Arc<Combiner<(u32, u32), u64>> = Arc::new(Combiner::new(1, || None));
        let release = Arc::new(AtomicBool::new(false));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let answer = |(group, x): (u32, u32)| u64::from(group) * 1000 + u64::from(x) * 2;
        let run = {
            let (c, release, sizes) = (Arc::clone(&c), Arc::clone(&release), Arc::clone(&sizes));
            move |r: (u32, u32)| {
                c.run(
                    r,
                    |a, b| a.0 == b.0,
                    |r| {
                        // The first request (x = 0) holds the only lane.
                        while r.1 == 0 && !release.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        answer(r)
                    },
                    |batch| {
                        lock(&sizes).push(batch.len());
                        (!fail_batch).then(|| batch.iter().map(|r| answer(*r)).collect())
                    },
                )
            }
        };
        let n = followers.len();
        let mut handles = Vec::new();
        let lead = {
            let run = run.clone();
            std::thread::spawn(move || ((0, 0), run((0, 0))))
        };
        // The leader holds the lane before anyone queues.
        while lock(&c.queue).leaders == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        for (i, f) in followers.into_iter().enumerate() {
            let run = run.clone();
            handles.push(std::thread::spawn(move || (f, run(f))));
            until_waiting(&c, i + 1);
        }
        assert_eq!(c.waiting(), n);
        release.store(true, Ordering::SeqCst);
        let mut got = vec![lead.join().expect("leader")];
        got.extend(handles.into_iter().map(|h| h.join().expect("follower")));
        let sizes = lock(&sizes).clone();
        assert_eq!(c.waiting(), 0);
        assert_eq!(lock(&c.queue).leaders, 0);
        assert!(lock(&c.queue).done.is_empty());
        (got, sizes, c.stats())
    }

    /// Every request got the answer of its own request.
    fn each_got_its_own(got: &[((u32, u32), u64)]) {
        for ((group, x), result) in got {
            assert_eq!(*result, u64::from(*group) * 1000 + u64::from(*x) * 2);
        }
    }

    #[test]
    fn waiting_requests_are_answered_together_each_with_its_own_result() {
        let (got, sizes, stats) = scenario(vec![(0, 1), (0, 2), (0, 3)], false);
        each_got_its_own(&got);
        // The three queued behind the leader ran as one batch.
        assert_eq!(sizes, vec![3]);
        assert_eq!(
            stats,
            CoalesceStats {
                batches: 1,
                requests: 3
            }
        );
    }

    #[test]
    fn only_compatible_requests_share_a_batch() {
        let (got, sizes, stats) = scenario(vec![(1, 1), (2, 2), (1, 3), (2, 4), (1, 5)], false);
        each_got_its_own(&got);
        let mut sorted = sizes.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![2, 3], "group 1 and group 2 each one batch");
        assert_eq!(stats.requests, 5);
    }

    #[test]
    fn a_failed_batch_runs_every_request_alone() {
        let (got, sizes, stats) = scenario(vec![(0, 1), (0, 2), (0, 3)], true);
        each_got_its_own(&got);
        assert_eq!(sizes, vec![3]);
        assert_eq!(stats, CoalesceStats::default());
    }

    #[test]
    fn a_panicking_batch_sends_followers_to_run_alone_and_frees_the_lane() {
        let c: Arc<Combiner<u32, u32>> = Arc::new(Combiner::new(1, || None));
        let release = Arc::new(AtomicBool::new(false));
        let solos = Arc::new(AtomicUsize::new(0));
        let run = {
            let (c, release, solos) = (Arc::clone(&c), Arc::clone(&release), Arc::clone(&solos));
            move |r: u32| {
                c.run(
                    r,
                    |_, _| true,
                    |r| {
                        while r == 0 && !release.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        solos.fetch_add(1, Ordering::SeqCst);
                        r + 100
                    },
                    |_| panic!("batch failed"),
                )
            }
        };
        let lead = {
            let run = run.clone();
            std::thread::spawn(move || run(0))
        };
        while lock(&c.queue).leaders == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let followers: Vec<_> = (1..=3)
            .map(|r| {
                let run = run.clone();
                let h = std::thread::spawn(move || std::panic::catch_unwind(|| run(r)));
                until_waiting(&c, r as usize);
                h
            })
            .collect();
        release.store(true, Ordering::SeqCst);
        assert_eq!(lead.join().expect("leader"), 100);
        let results: Vec<Result<u32, _>> = followers
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect();
        // One follower led the batch and its panic reached it; the others
        // ran alone.
        let panicked = results.iter().filter(|r| r.is_err()).count();
        assert_eq!(panicked, 1);
        let mut fine: Vec<u32> = results.into_iter().filter_map(Result::ok).collect();
        fine.sort_unstable();
        assert_eq!(fine.len(), 2);
        assert!(fine.iter().all(|r| (101..=103).contains(r)));
        assert_eq!(solos.load(Ordering::SeqCst), 3);
        // The lane is free again: a new request runs at once.
        assert_eq!(run(7), 107);
        assert_eq!(lock(&c.queue).leaders, 0);
    }

    #[test]
    fn when_batches_do_not_pay_busy_lanes_run_alone_but_one_in_16_still_waits() {
        let c: Arc<Combiner<u32, u32>> = Arc::new(Combiner::new(1, || Some(false)));
        let release = Arc::new(AtomicBool::new(false));
        let run = {
            let (c, release) = (Arc::clone(&c), Arc::clone(&release));
            move |r: u32| {
                c.run(
                    r,
                    |_, _| true,
                    |r| {
                        while r == 0 && !release.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        r + 100
                    },
                    |batch| Some(batch.iter().map(|r| r + 100).collect()),
                )
            }
        };
        let lead = {
            let run = run.clone();
            std::thread::spawn(move || run(0))
        };
        while lock(&c.queue).leaders == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        // The first request to find the lane busy explores: it waits.
        let explorer = {
            let run = run.clone();
            std::thread::spawn(move || run(1))
        };
        until_waiting(&c, 1);
        // The next fifteen run alone at once, the lane still held.
        for r in 2..17 {
            assert_eq!(run(r), r + 100);
        }
        assert_eq!(c.waiting(), 1);
        // The sixteenth after the explorer waits again.
        let second = {
            let run = run.clone();
            std::thread::spawn(move || run(17))
        };
        until_waiting(&c, 2);
        release.store(true, Ordering::SeqCst);
        assert_eq!(lead.join().expect("leader"), 100);
        assert_eq!(explorer.join().expect("explorer"), 101);
        assert_eq!(second.join().expect("second"), 117);
    }

    #[test]
    fn disabled_runs_alone_at_once() {
        let c: Combiner<u32, u32> = Combiner::new(1, || None);
        c.set_enabled(false);
        assert_eq!(c.run(5, |_, _| true, |r| r * 3, |_| None), 15);
        assert_eq!(c.stats(), CoalesceStats::default());
    }
}
