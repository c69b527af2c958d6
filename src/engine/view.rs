//! One set of unit indexes per search, without a lock held while it runs.
//!
//! A read-only open's [`refresh`] replays the writer's commits into its unit
//! indexes or swaps in freshly opened ones; a search (its unit types in
//! parallel on rayon's pool) must see the set before or after, never half
//! of each. A lock held by the search across its parallel work would let a
//! pool thread wait for the refresh while the refresh waits for the search.
//! Instead a refresh counts a generation up before and after it changes the
//! set (odd while it runs), and a search reads the generation before and
//! after: when it changed, or was odd, the search runs again. Refreshes are
//! rare and short, so a search runs twice at most in practice. A search
//! that meets a refresh in progress waits for it by helping the pool (on a
//! pool thread: `rayon::yield_now`) or sleeping briefly (elsewhere), never
//! by blocking on something the refresh may need.
//!
//! [`refresh`]: super::IsccIndex::refresh

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The generation of a set of unit indexes (see the module docs).
#[derive(Debug, Default)]
pub(super) struct View {
    generation: AtomicU64,
}

/// Counts the generation up again when the change ends, even by a panic.
struct Changing<'a>(&'a AtomicU64);

impl Drop for Changing<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl View {
    /// `f`'s result from one set of unit indexes: `f` runs again while a
    /// change overlapped it. `f` must have no effect beyond its result.
    pub(super) fn consistent<T>(&self, mut f: impl FnMut() -> T) -> T {
        loop {
            let before = self.generation.load(Ordering::SeqCst);
            if before % 2 == 1 {
                Self::pause();
                continue;
            }
            let out = f();
            if self.generation.load(Ordering::SeqCst) == before {
                return out;
            }
        }
    }

    /// Run `f`, which changes the set (callers serialise changes).
    pub(super) fn changing<T>(&self, f: impl FnOnce() -> T) -> T {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let _end = Changing(&self.generation);
        f()
    }

    /// Let a change in progress go on: run pool work if this is a pool
    /// thread with some to run, else sleep a moment.
    fn pause() {
        if let Some(rayon::Yield::Executed) = rayon::yield_now() {
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[test]
    fn a_reader_overlapping_a_change_runs_again_and_sees_it_whole() {
        let view = Arc::new(View::default());
        // Two halves that a change moves together: a reader must never see
        // them differ.
        let halves = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (view, halves, done) = (Arc::clone(&view), Arc::clone(&halves), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(Ordering::SeqCst) {
                    let (a, b) = view.consistent(|| {
                        let a = halves.0.load(Ordering::SeqCst);
                        std::thread::yield_now();
                        (a, halves.1.load(Ordering::SeqCst))
                    });
                    assert_eq!(a, b, "a read saw half a change");
                    reads += 1;
                }
                reads
            })
        };
        for i in 1..=2_000 {
            view.changing(|| {
                halves.0.store(i, Ordering::SeqCst);
                std::thread::yield_now();
                halves.1.store(i, Ordering::SeqCst);
            });
        }
        done.store(true, Ordering::SeqCst);
        assert!(reader.join().unwrap() > 0);
        // A panicking change still ends.
        let _ = std::panic::catch_unwind(|| view.changing(|| panic!("change failed")));
        assert_eq!(view.consistent(|| 7), 7);
    }
}
