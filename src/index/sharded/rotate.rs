//! Rotation: freezing the active shard, writing it (inline or on the
//! background worker, with back-pressure) and swapping in its mapped copy.

use super::key::ShardKey;
use super::shard::Shard;
use super::{io_at, ShardedError, ShardedIndex};
use crate::sync::{catch_panic, lock, wait};
use std::sync::{mpsc, Arc};

impl<K: ShardKey> ShardedIndex<K> {
    /// Freeze the active shard, start a new one, and write the frozen one
    /// (inline or on the background thread).
    pub(super) fn rotate(&self) -> Result<(), ShardedError> {
        let background = self.inner.options.background_rotation;
        if background {
            // Back-pressure: wait while too many rotations are in flight.
            let mut pending = lock(&self.inner.pending);
            while *pending >= self.inner.options.max_pending_rotations {
                pending = wait(&self.inner.pending_done, pending);
            }
        }
        let frozen = {
            let mut st = self.write();
            let old = st.active.take().ok_or(ShardedError::ReadOnly)?;
            let next = match Shard::new(old.id + 1, self.inner.kind, self.inner.options.unit()) {
                Ok(s) => s,
                Err(e) => {
                    st.active = Some(old);
                    return Err(e);
                }
            };
            st.active = Some(Arc::new(next));
            st.sealed.push(Arc::clone(&old));
            st.active_bytes = 0;
            st.since_measure = usize::MAX / 2;
            old
        };
        if background {
            *lock(&self.inner.pending) += 1;
            let mut worker = lock(&self.worker);
            if worker.is_none() {
                let (tx, rx) = mpsc::channel::<Arc<Shard>>();
                let inner = Arc::clone(&self.inner);
                let handle = std::thread::Builder::new()
                    .name("ivdb-rotation".into())
                    .spawn(move || {
                        for shard in rx {
                            let id = shard.id;
                            // A panic must still count the shard done
                            // (drain waits for the count) and keep its rows
                            // in memory for the next save to retry.
                            let result =
                                catch_panic(|| inner.persist(&shard)).unwrap_or_else(|message| {
                                    Err(ShardedError::Panicked {
                                        task: "rotation writer",
                                        message,
                                    })
                                });
                            if let Err(e) = result {
                                let mut st = inner.state.write();
                                st.rotation_error = Some(ShardedError::Rotation {
                                    id,
                                    source: Box::new(e),
                                });
                            }
                            let mut pending = lock(&inner.pending);
                            *pending -= 1;
                            inner.pending_done.notify_all();
                            drop(pending);
                            // The shard is durable now: it may complete a tier.
                            inner.wake_merger();
                        }
                    })
                    .map_err(io_at(&self.inner.dir))?;
                *worker = Some((tx, handle));
            }
            let sent = worker
                .as_ref()
                .is_some_and(|(tx, _)| tx.send(Arc::clone(&frozen)).is_ok());
            drop(worker);
            if sent {
                return self.after_rotation();
            }
            *lock(&self.inner.pending) -= 1;
        }
        self.inner
            .persist(&frozen)
            .map_err(|e| ShardedError::Rotation {
                id: frozen.id,
                source: Box::new(e),
            })?;
        self.after_rotation()
    }

    /// Wait for background rotations, then write any frozen shard that is
    /// still only in memory (a failed rotation is retried here).
    pub fn drain_rotations(&self) -> Result<(), ShardedError> {
        self.check_open()?;
        {
            let mut pending = lock(&self.inner.pending);
            while *pending > 0 {
                pending = wait(&self.inner.pending_done, pending);
            }
        }
        if self.inner.read_only {
            return Ok(());
        }
        let unwritten: Vec<Arc<Shard>> = self
            .read()
            .sealed
            .iter()
            .filter(|s| !s.is_durable())
            .cloned()
            .collect();
        for s in unwritten {
            self.inner.persist(&s)?;
        }
        self.write().rotation_error = None;
        Ok(())
    }

    /// Pending background rotations.
    pub fn pending_rotations(&self) -> usize {
        *lock(&self.inner.pending)
    }

    pub(super) fn stop_worker(&self) {
        if let Some((tx, handle)) = lock(&self.worker).take() {
            drop(tx);
            let _ = handle.join();
        }
    }
}
