//! A counting semaphore over usearch's thread slots: usearch gives each
//! concurrent search a slot of its own, and more searches than slots at once
//! would share one and corrupt its scratch space.

use std::sync::{Condvar, Mutex};

use crate::sync::{lock, wait};

/// A counting semaphore guarding usearch's thread slots.
pub(super) struct Slots {
    free: Mutex<usize>,
    cond: Condvar,
}

pub(super) struct SlotGuard<'a>(&'a Slots);

impl Slots {
    pub(super) fn new(n: usize) -> Slots {
        Slots {
            free: Mutex::new(n),
            cond: Condvar::new(),
        }
    }

    pub(super) fn acquire(&self) -> SlotGuard<'_> {
        let mut free = lock(&self.free);
        while *free == 0 {
            free = wait(&self.cond, free);
        }
        *free -= 1;
        SlotGuard(self)
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut free = lock(&self.0.free);
        *free += 1;
        self.0.cond.notify_one();
    }
}
