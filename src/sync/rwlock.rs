//! A reader-writer lock that cannot deadlock rayon's pool.
//!
//! std's `RwLock` refuses new readers while a writer waits (so writers are
//! not starved). With parallel searches that is a deadlock: a search holds
//! an index's read guard while its work runs on the pool; a writer starts
//! waiting; a pool thread running part of that work (or work stolen while
//! it waits) asks for a read guard of the same index and is refused; the
//! holder waits for that pool thread, the writer for the holder. Seen as a
//! hang of 8 C threads searching beside a writer (`tests/c/ffi_smoke.c`,
//! 1 run in 15 to 1 in 100 under load: the CI timeout of 2026-12-03).
//!
//! Here a reader on a pool thread is admitted while other readers hold the
//! lock even when a writer waits — it may be the work those readers wait
//! for; readers outside the pool still queue behind a waiting writer. The
//! writer gets the lock as soon as the readers it waits for are done: pool
//! readers are admitted only while the lock is already read-held, and every
//! read ends when its search does. No lock of ours is held across work
//! that waits for a writer, so writers never hold up the pool this way.
//!
//! The lock cannot be poisoned: a guard released by a panic leaves the
//! value as the panicking code left it, which the callers of [`super`]
//! accept (see its docs).

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct Count {
    readers: usize,
    writer: bool,
    writers_waiting: usize,
}

/// A reader-writer lock (see the module documentation).
pub(crate) struct RwLock<T: ?Sized> {
    count: Mutex<Count>,
    readers_cv: Condvar,
    writers_cv: Condvar,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out `&T` to several threads at once only under
// read guards and `&mut T` to one thread only under the write guard
// (`count` is the single source of truth, changed under its mutex), exactly
// as std's RwLock, whose bounds these are.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above; shared `&T` across threads needs `T: Sync`, moving the
// value out through a write guard's `&mut T` needs `T: Send`.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

impl<T> RwLock<T> {
    /// A lock holding `value`.
    pub(crate) fn new(value: T) -> RwLock<T> {
        RwLock {
            count: Mutex::new(Count::default()),
            readers_cv: Condvar::new(),
            writers_cv: Condvar::new(),
            value: UnsafeCell::new(value),
        }
    }
}

impl<T: ?Sized> RwLock<T> {
    fn count(&self) -> MutexGuard<'_, Count> {
        // Held only for a few instructions that cannot panic.
        self.count.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Shared access (see the module documentation for who waits).
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        let on_pool = rayon::current_thread_index().is_some();
        let mut c = self.count();
        while c.writer || (c.writers_waiting > 0 && !(on_pool && c.readers > 0)) {
            c = self.readers_cv.wait(c).unwrap_or_else(|p| p.into_inner());
        }
        c.readers += 1;
        ReadGuard { lock: self }
    }

    /// Exclusive access.
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        let mut c = self.count();
        c.writers_waiting += 1;
        while c.writer || c.readers > 0 {
            c = self.writers_cv.wait(c).unwrap_or_else(|p| p.into_inner());
        }
        c.writers_waiting -= 1;
        c.writer = true;
        WriteGuard { lock: self }
    }

    /// Readers holding the lock and writers waiting (for tests).
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (usize, usize) {
        let c = self.count();
        (c.readers, c.writers_waiting)
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T: ?Sized> std::fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RwLock").finish_non_exhaustive()
    }
}

/// Shared access to the value of an [`RwLock`]; released when dropped.
pub(crate) struct ReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

impl<T: ?Sized> Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard counts as a reader, so no write guard exists
        // until it is dropped.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        let mut c = self.lock.count();
        c.readers -= 1;
        let wake_writer = c.readers == 0 && c.writers_waiting > 0;
        drop(c);
        if wake_writer {
            self.lock.writers_cv.notify_one();
        }
    }
}

/// Exclusive access to the value of an [`RwLock`]; released when dropped.
pub(crate) struct WriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

impl<T: ?Sized> Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the one writer; no other guard exists.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`; `&mut self` makes the borrow unique.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T: ?Sized> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        let mut c = self.lock.count();
        c.writer = false;
        let writers = c.writers_waiting > 0;
        drop(c);
        if writers {
            self.lock.writers_cv.notify_one();
        }
        // Readers that queued behind this writer (those outside the pool
        // keep waiting while further writers wait).
        self.lock.readers_cv.notify_all();
    }
}
