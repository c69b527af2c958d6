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

use std::sync::{
    Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError,
};

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
        if rayon::current_thread_index().is_some() {
            return on_pool_thread(|| self.try_read());
        }
        self.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write_or_recover(&self) -> RwLockWriteGuard<'_, T> {
        if rayon::current_thread_index().is_some() {
            return on_pool_thread(|| self.try_write());
        }
        self.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// [`Mutex::lock`], recovering the guard of a poisoned mutex.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    if rayon::current_thread_index().is_some() {
        return on_pool_thread(|| m.try_lock());
    }
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Take a lock on a thread of a rayon pool without blocking that thread:
/// while the lock is unavailable, run the pool's pending work.
///
/// A pool thread blocked on a lock can deadlock the process. A caller
/// outside the pool holds a read guard of an index while its search runs in
/// parallel on the pool; a writer waits for the write guard (std's locks
/// then refuse new readers, so writers are not starved); a pool thread,
/// running another caller's search, asks for a read guard of the same index
/// and blocks — and the first caller's parallel work, which would end its
/// read, waits for that pool thread forever. Seen as a hang of 8 C threads
/// searching beside a writer (`tests/c/ffi_smoke.c`, about 1 run in 100
/// under load). Running pending work instead lets the first caller finish;
/// `try_*` still refuses readers while a writer waits.
fn on_pool_thread<G>(mut attempt: impl FnMut() -> Result<G, TryLockError<G>>) -> G {
    let mut idle = 0u32;
    loop {
        match attempt() {
            Ok(guard) => return guard,
            Err(TryLockError::Poisoned(p)) => return p.into_inner(),
            Err(TryLockError::WouldBlock) => match rayon::yield_now() {
                Some(rayon::Yield::Executed) => idle = 0,
                _ if idle < 64 => {
                    idle += 1;
                    std::thread::yield_now();
                }
                // Nothing to run for a while: the holder is busy outside
                // the pool; poll gently.
                _ => std::thread::sleep(std::time::Duration::from_micros(50)),
            },
        }
    }
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

    /// The deadlock of [`on_pool_thread`]'s docs, made to happen: a reader
    /// outside the pool needs the pool's only thread, which asks for a read
    /// guard while a writer waits. With blocking reads on pool threads this
    /// never finishes.
    #[test]
    fn a_pool_thread_waiting_for_a_lock_runs_the_work_its_holder_waits_for() {
        use std::sync::mpsc;
        use std::time::Duration;

        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let lock = Arc::new(RwLock::new(0u32));
        let (done_tx, done_rx) = mpsc::channel::<&str>();
        let scenario = {
            let lock = Arc::clone(&lock);
            let done = done_tx.clone();
            std::thread::spawn(move || {
                let held = lock.read_or_recover();
                let writer = {
                    let (lock, done) = (Arc::clone(&lock), done.clone());
                    std::thread::spawn(move || {
                        *lock.write_or_recover() += 1;
                        let _ = done.send("writer");
                    })
                };
                // Until the writer waits (new readers are then refused).
                while lock.try_read().is_ok() {
                    std::thread::yield_now();
                }
                let (started_tx, started_rx) = mpsc::channel();
                {
                    let (lock, done) = (Arc::clone(&lock), done.clone());
                    pool.spawn(move || {
                        let _ = started_tx.send(());
                        drop(lock.read_or_recover());
                        let _ = done.send("reader");
                    });
                }
                started_rx.recv().unwrap();
                std::thread::sleep(Duration::from_millis(20));
                // Work on the pool while holding the read guard: the pool's
                // one thread is inside the job above, asking for the lock.
                let sum = pool.install(|| (1..=10).sum::<u32>());
                drop(held);
                let _ = writer.join();
                let _ = done.send(if sum == 55 { "holder" } else { "bad sum" });
                drop(pool);
            })
        };
        let mut seen: Vec<&str> = (0..3)
            .map(|_| {
                done_rx
                    .recv_timeout(Duration::from_secs(20))
                    .expect("deadlocked")
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, ["holder", "reader", "writer"]);
        scenario.join().unwrap();
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
