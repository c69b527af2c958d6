//! Locking: the one place that decides what a poisoned lock means, the rule
//! for holding a lock near rayon's pool, and how a background thread's panic
//! reaches those waiting for it ([`catch_panic`]).
//!
//! The rule: **no guard is held across parallel work.** A pool thread that
//! blocks on a lock may be the very thread the holder's parallel work waits
//! for (a stolen job), and std's reader-writer lock queues new readers
//! behind a waiting writer, so a read guard held across `par_iter` /
//! `rayon::join` / `install` can deadlock against any writer. Searches
//! therefore clone a snapshot (an `Arc`) under a short guard and run with
//! none held (see `index::unit::state`, `engine::view`); every guard of
//! ours covers a short sequential section. `tests/lock_rule.rs` checks the
//! source for guards named next to parallel calls.
//!
//! A panic while a lock is held poisons it. The C ABI and the server catch
//! panics at their boundary and keep the index open, so a poisoned lock must
//! not turn every later call into a second panic. Every structure guarded
//! here is left consistent by its writers at each point that can panic (a
//! write either finished its in-memory step or did not start it; what
//! reaches disk goes through the store or a durable rename), so taking the
//! guard of a poisoned lock is sound.

use std::sync::{Condvar, Mutex, MutexGuard, RwLockReadGuard, RwLockWriteGuard};

pub(crate) use std::sync::RwLockReadGuard as ReadGuard;
pub(crate) use std::sync::RwLockWriteGuard as WriteGuard;

/// std's reader-writer lock whose guards are taken whatever a panic left
/// (see the module docs for what a poisoned lock means here, and the rule
/// for holding its guards).
#[derive(Debug, Default)]
pub(crate) struct RwLock<T: ?Sized>(std::sync::RwLock<T>);

impl<T> RwLock<T> {
    /// A lock holding `value`.
    pub(crate) fn new(value: T) -> RwLock<T> {
        RwLock(std::sync::RwLock::new(value))
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Shared access, for a short sequential section.
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        read_lock(&self.0)
    }

    /// Exclusive access, for a short sequential section.
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        write_lock(&self.0)
    }
}

/// [`Mutex::lock`], recovering the guard of a poisoned mutex. No mutex of
/// ours is held across parallel work (see the module docs).
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// [`std::sync::RwLock::read`], recovering the guard of a poisoned lock. Hold it only
/// for a short sequential section: never across parallel work (a pool
/// thread waiting for it could be the work its holder waits for, and std's
/// lock queues readers behind a waiting writer).
pub(crate) fn read_lock<T: ?Sized>(l: &std::sync::RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

/// [`std::sync::RwLock::write`], recovering the guard of a poisoned lock; the same
/// rule as [`read_lock`].
pub(crate) fn write_lock<T: ?Sized>(l: &std::sync::RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// [`Condvar::wait`], recovering the guard of a poisoned mutex.
pub(crate) fn wait<'a, T>(cond: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cond.wait(guard).unwrap_or_else(|p| p.into_inner())
}

/// Run `f`, turning a panic into `Err` with its message. For work on a
/// thread of our own that others wait for: a panic there must become an
/// error they are told of, never a counter or flag left set that makes them
/// wait forever.
pub(crate) fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| panic_message(&*p))
}

/// The text of a panic's payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_poisoned_lock_still_gives_its_guard_and_a_panic_releases_it() {
        let m = Arc::new(Mutex::new(1));
        let rw = Arc::new(RwLock::new(2));
        let (m2, rw2) = (Arc::clone(&m), Arc::clone(&rw));
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            let _w = rw2.write();
            panic!("poison both");
        })
        .join();
        assert!(m.is_poisoned());
        *lock(&m) += 1;
        *rw.write() += 1;
        assert_eq!((*lock(&m), *rw.read()), (2, 3));
    }

    #[test]
    fn a_caught_panic_is_its_message() {
        assert_eq!(catch_panic(|| 5), Ok(5));
        let n = 3;
        let caught = catch_panic(|| -> u8 { panic!("shard {n} exploded") });
        assert_eq!(caught, Err("shard 3 exploded".to_string()));
        assert_eq!(
            catch_panic(|| -> u8 { panic!("static") }),
            Err("static".into())
        );
    }
}
