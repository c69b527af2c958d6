//! Poison-tolerant locking: the one place that decides what a poisoned lock
//! means.
//!
//! A panic while a lock is held poisons it. The C ABI and the server catch
//! panics at their boundary and keep the index open, so a poisoned lock must
//! not turn every later call into a second panic. Every structure guarded
//! here is left consistent by its writers at each point that can panic (a
//! write either finished its in-memory step or did not start it; what
//! reaches disk goes through the store or a durable rename), so taking the
//! guard of a poisoned lock is sound.

use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// [`RwLock::read`]/[`RwLock::write`] that recover the guard of a
/// poisoned lock.
pub(crate) trait RwLockExt<T: ?Sized> {
    /// Shared access.
    fn read_or_recover(&self) -> RwLockReadGuard<'_, T>;
    /// Exclusive access.
    fn write_or_recover(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RwLockExt<T> for RwLock<T> {
    fn read_or_recover(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write_or_recover(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// [`Mutex::lock`], recovering the guard of a poisoned mutex.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// [`Condvar::wait`], recovering the guard of a poisoned mutex.
pub(crate) fn wait<'a, T>(cond: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cond.wait(guard).unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_poisoned_lock_still_gives_its_guard() {
        let m = Arc::new(Mutex::new(1));
        let rw = Arc::new(RwLock::new(2));
        let (m2, rw2) = (Arc::clone(&m), Arc::clone(&rw));
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            let _w = rw2.write().unwrap();
            panic!("poison both");
        })
        .join();
        assert!(m.is_poisoned() && rw.is_poisoned());
        *lock(&m) += 1;
        *rw.write_or_recover() += 1;
        assert_eq!((*lock(&m), *rw.read_or_recover()), (2, 3));
    }
}
