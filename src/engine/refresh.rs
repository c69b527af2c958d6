//! A read-only open that follows its writer: [`IsccIndex::refresh`] brings
//! the unit indexes up to the store's current state — the writer's new
//! commits replayed in memory, or, after the writer saved (or rebuilt), its
//! saved unit indexes opened afresh. Nothing is written.

use std::collections::BTreeSet;

use super::recovery::recorded_dirs;
use super::simprint_index as sims;
use super::{EngineError, IsccIndex};
use crate::sync::lock;

impl IsccIndex {
    /// For a read-only open: catch up with the writer. Cheap when nothing
    /// changed (one store read). When only new commits came in, they are
    /// replayed into memory; when the writer saved or rebuilt since (the
    /// journal floor or the unit index directories changed), the unit
    /// indexes are opened again from their new files and checked like on
    /// open. A search that overlapped the change runs again (see
    /// `view.rs`), so none answers from a half-refreshed set. Returns whether anything changed. A writable
    /// index is always current: `Ok(false)`.
    pub fn refresh(&self) -> Result<bool, EngineError> {
        self.check_open()?;
        if !self.options.read_only {
            return Ok(false);
        }
        // Serialise refreshes (the writer lock is otherwise unused here).
        let _w = lock(&self.writer);
        let (floor, last, dirs, sim_dirs) = self.store.read(|r| {
            Ok((
                r.journal_floor()?,
                r.journal_last()?,
                recorded_dirs(r)?,
                sims::recorded_dirs(r)?,
            ))
        })?;
        let (seen_floor, seen_last) = *lock(&self.seen);
        if floor == seen_floor && dirs == *lock(&self.dirs) && sim_dirs == *lock(&self.sims.dirs) {
            if last == seen_last {
                return Ok(false);
            }
            // Only new commits: replay them (idempotent).
            let (changed, last) = self.store.read(|r| {
                let mut seen = BTreeSet::new();
                let mut out = Vec::new();
                for (_, key) in r.journal_after(seen_last)? {
                    if seen.insert(key) {
                        out.push((key, r.get_entry(key)?));
                    }
                }
                Ok((out, r.journal_last()?))
            })?;
            self.view
                .changing(|| self.replay(&changed, &Default::default(), &Default::default()))?;
            *lock(&self.seen) = (floor, last);
            return Ok(true);
        }
        self.view.changing(|| self.open_units_read_only())?;
        Ok(true)
    }
}
