//! Locking: the one place that decides what a poisoned lock means, how a
//! reader-writer lock treats rayon's pool threads ([`rwlock`]), and how a
//! background thread's panic reaches those waiting for it ([`catch_panic`]).
//!
//! A panic while a lock is held poisons it. The C ABI and the server catch
//! panics at their boundary and keep the index open, so a poisoned lock must
//! not turn every later call into a second panic. Every structure guarded
//! here is left consistent by its writers at each point that can panic (a
//! write either finished its in-memory step or did not start it; what
//! reaches disk goes through the store or a durable rename), so taking the
//! guard of a poisoned lock is sound.

use std::sync::{Condvar, Mutex, MutexGuard, RwLockReadGuard, RwLockWriteGuard};

mod rwlock;
pub(crate) use rwlock::{ReadGuard, RwLock, WriteGuard};

/// [`Mutex::lock`], recovering the guard of a poisoned mutex. No mutex of
/// ours is held across parallel work (a pool thread blocked on it could be
/// the work its holder waits for: see [`rwlock`]).
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
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_poisoned_mutex_still_gives_its_guard_and_a_panic_releases_a_lock() {
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

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// The first `n` outcomes sent, sorted; a deadlock fails after 20 s.
    fn outcomes(finished: &mpsc::Receiver<&'static str>, n: usize) -> Vec<&'static str> {
        let mut seen: Vec<&str> = (0..n)
            .map(|_| {
                finished
                    .recv_timeout(Duration::from_secs(20))
                    .expect("deadlocked")
            })
            .collect();
        seen.sort_unstable();
        seen
    }

    /// Wait until `lock` has a writer waiting (and `readers` readers).
    fn until_writer_waits<T>(lock: &RwLock<T>, readers: usize) {
        for _ in 0..10_000 {
            if lock.counts() == (readers, 1) {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("no writer waiting: {:?}", lock.counts());
    }

    /// Spawn a writer that increments `lock`, sending "writer" when done.
    fn writer(lock: &Arc<RwLock<u32>>, done: &mpsc::Sender<&'static str>) {
        let (lock, done) = (Arc::clone(lock), done.clone());
        std::thread::spawn(move || {
            *lock.write() += 1;
            let _ = done.send("writer");
        });
    }

    /// The deadlock of the `rwlock` module's docs, holder outside the pool:
    /// a reader holds the lock while its work runs on the pool's only
    /// thread, a writer waits, and that thread first runs a job that asks
    /// for a read guard. With std's RwLock this never finishes.
    #[test]
    fn a_pool_reader_is_admitted_beside_a_holder_outside_the_pool() {
        let pool = pool(1);
        let lock = Arc::new(RwLock::new(0u32));
        let (done, finished) = mpsc::channel::<&str>();
        {
            let (lock, done) = (Arc::clone(&lock), done.clone());
            std::thread::spawn(move || {
                let held = lock.read();
                writer(&lock, &done);
                until_writer_waits(&lock, 1);
                let (started_tx, started) = mpsc::channel();
                {
                    let (lock, done) = (Arc::clone(&lock), done.clone());
                    pool.spawn(move || {
                        let _ = started_tx.send(());
                        drop(lock.read());
                        let _ = done.send("pool reader");
                    });
                }
                started.recv().unwrap();
                let sum = pool.install(|| (1..=10).sum::<u32>());
                drop(held);
                let _ = done.send(if sum == 55 { "holder" } else { "bad sum" });
            });
        }
        assert_eq!(outcomes(&finished, 3), ["holder", "pool reader", "writer"]);
        assert_eq!(*lock.read(), 1);
    }

    /// Holder on a pool thread: the work it waits for asks for the lock on
    /// a pool thread (here the same one, as a stolen job would) while a
    /// writer waits; a reader outside the pool queues behind the writer.
    #[test]
    fn a_pool_reader_is_admitted_beside_a_pool_holder_and_others_queue() {
        let pool = pool(2);
        let lock = Arc::new(RwLock::new(0u32));
        let (done, finished) = mpsc::channel::<&str>();
        {
            let (lock, done) = (Arc::clone(&lock), done.clone());
            std::thread::spawn(move || {
                pool.install(|| {
                    let held = lock.read();
                    writer(&lock, &done);
                    until_writer_waits(&lock, 1);
                    // Outside the pool: waits for the writer.
                    let outside = {
                        let (lock, done) = (Arc::clone(&lock), done.clone());
                        std::thread::spawn(move || {
                            let value = *lock.read();
                            let _ = done.send(if value == 1 {
                                "outside after writer"
                            } else {
                                "outside early"
                            });
                        })
                    };
                    std::thread::sleep(Duration::from_millis(20));
                    let (a, b) = rayon::join(|| *lock.read(), || *lock.read());
                    assert_eq!((a, b), (0, 0), "pool readers saw the writer");
                    drop(held);
                    let _ = done.send("holder");
                    outside
                })
                .join()
                .unwrap();
            });
        }
        assert_eq!(
            outcomes(&finished, 3),
            ["holder", "outside after writer", "writer"]
        );
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
