//! Searches of one graph that want different `expansion_search` values.
//!
//! usearch keeps `expansion_search` in the index, not per call, and reads
//! it unsynchronised during a search. So a search with a value of its own
//! cannot run while another search walks with a different one. The gate
//! lets every search that wants the value the graph walks with now run
//! together, and changes the value only when no search is running.
//! Searches pass in the order they arrive (a ticket each): a run of
//! searches wanting the same value passes together, and a search wanting
//! another value waits only for the searches ahead of it, never for ones
//! that arrive after it. A graph searched with one value (the common case:
//! every caller uses the default) never waits here.
//!
//! A pass is held for one sequential graph walk, never across parallel
//! work.

use std::sync::{Condvar, Mutex};

use crate::sync::lock;

/// The gate of one graph (see the module docs).
#[derive(Default)]
pub(super) struct Gate {
    phase: Mutex<Phase>,
    turn: Condvar,
}

#[derive(Default)]
struct Phase {
    /// The value the graph walks with; `None` when unknown (never set
    /// through the gate, or changed outside it).
    ef: Option<usize>,
    /// Searches passed and not yet done.
    running: usize,
    /// The next ticket to hand out, and the ticket that may pass next.
    next: u64,
    serving: u64,
}

/// A search's permission to walk the graph (see [`Gate::enter`]).
pub(super) struct Pass<'a> {
    gate: &'a Gate,
}

impl Gate {
    /// Wait until a search walking with `ef` may run. When the graph's
    /// value must change, `set(ef)` is called first, while no search runs.
    pub(super) fn enter(&self, ef: usize, set: impl FnOnce(usize)) -> Pass<'_> {
        let mut phase = lock(&self.phase);
        let ticket = phase.next;
        phase.next += 1;
        while phase.serving != ticket || (phase.ef != Some(ef) && phase.running > 0) {
            phase = self
                .turn
                .wait(phase)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        if phase.ef != Some(ef) {
            set(ef);
            phase.ef = Some(ef);
        }
        phase.running += 1;
        phase.serving += 1;
        let waiting = phase.next != phase.serving;
        // Wake after unlocking: a waiter woken under the lock would only
        // block on it again.
        drop(phase);
        // The next ticket may pass beside this one.
        if waiting {
            self.turn.notify_all();
        }
        Pass { gate: self }
    }

    /// The graph's value was changed outside the gate (while no search
    /// could run): the next search sets its own.
    pub(super) fn forget(&self) {
        lock(&self.phase).ef = None;
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut phase = lock(&self.gate.phase);
        phase.running -= 1;
        let wake = phase.running == 0 && phase.next != phase.serving;
        drop(phase);
        if wake {
            self.gate.turn.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    #[test]
    fn no_walk_sees_another_searchs_value() {
        let gate = Arc::new(Gate::default());
        let value = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicUsize::new(0));
        let wrong = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(Barrier::new(6));
        let threads: Vec<_> = (0..6)
            .map(|t| {
                let (gate, value, running, wrong, start) = (
                    gate.clone(),
                    value.clone(),
                    running.clone(),
                    wrong.clone(),
                    start.clone(),
                );
                std::thread::spawn(move || {
                    start.wait();
                    for i in 0..200 {
                        // Four threads use the default, two switch often.
                        let ef = if t < 4 || i % 3 == 0 { 64 } else { 100 + t };
                        let _pass = gate.enter(ef, |ef| {
                            assert_eq!(running.load(Ordering::SeqCst), 0, "set while running");
                            value.store(ef, Ordering::SeqCst);
                        });
                        running.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(50));
                        if value.load(Ordering::SeqCst) != ef {
                            wrong.fetch_add(1, Ordering::SeqCst);
                        }
                        running.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(wrong.load(Ordering::SeqCst), 0, "a walk saw another value");
    }

    #[test]
    fn the_same_value_passes_beside_a_walk_and_a_later_arrival_does_not_overtake() {
        use std::sync::mpsc::channel;
        let gate = Arc::new(Gate::default());
        let held = gate.enter(64, |_| ());
        // Same value: passes while the first walk runs.
        let (tx, rx) = channel();
        let g = gate.clone();
        std::thread::spawn(move || {
            let _pass = g.enter(64, |_| ());
            tx.send(()).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("a search with the same value waited");
        // Another value waits for the walk; a later search with the
        // running value waits behind it.
        let order = Arc::new(Mutex::new(Vec::new()));
        let spawn = |ef: usize, name: &'static str| {
            let (g, order) = (gate.clone(), order.clone());
            std::thread::spawn(move || {
                let _pass = g.enter(ef, |_| ());
                order.lock().unwrap().push(name);
            })
        };
        let other = spawn(100, "other");
        while lock(&gate.phase).next < 3 {
            std::thread::yield_now();
        }
        let later = spawn(64, "later");
        while lock(&gate.phase).next < 4 {
            std::thread::yield_now();
        }
        assert!(
            order.lock().unwrap().is_empty(),
            "passed beside a walk with another value"
        );
        drop(held);
        other.join().unwrap();
        later.join().unwrap();
        assert_eq!(*order.lock().unwrap(), ["other", "later"]);
    }

    #[test]
    fn a_forgotten_value_is_set_again() {
        let gate = Gate::default();
        let mut sets = Vec::new();
        drop(gate.enter(64, |ef| sets.push(ef)));
        drop(gate.enter(64, |ef| sets.push(ef)));
        gate.forget();
        drop(gate.enter(64, |ef| sets.push(ef)));
        assert_eq!(sets, [64, 64]);
    }
}
