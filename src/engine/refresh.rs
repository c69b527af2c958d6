//! A read-only open that follows its writer: [`LocalIndex::refresh`] brings
//! the unit indexes up to the store's current state — the writer's new
//! commits replayed in memory, or, after the writer saved (or rebuilt), its
//! saved unit indexes opened afresh. Nothing is written.

use super::features::SimprintType;
use super::index_set::IndexType;
use super::{EngineError, LocalIndex};
use crate::codec::UnitType;
use crate::sync::lock;

impl LocalIndex {
    /// For a read-only open: catch up with the writer. Cheap when nothing
    /// changed (one store read). When only new commits came in, they are
    /// replayed into memory; when the writer saved or rebuilt since (the
    /// journal floor or the unit index directories changed), the unit
    /// indexes are opened again from their new files and checked like on
    /// open, into a new index set published in one swap (see
    /// `index_set.rs`): no search answers from a half-reopened set. Returns
    /// whether anything changed. A writable index is always current:
    /// `Ok(false)`.
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
                UnitType::recorded(r)?,
                SimprintType::recorded(r)?,
            ))
        })?;
        let (seen_floor, seen_last) = *lock(&self.seen);
        let current = self.indexes();
        if floor == seen_floor && dirs == current.units.dirs && sim_dirs == current.sims.dirs {
            if last == seen_last {
                return Ok(false);
            }
            // Only new commits: replay them (idempotent) into the indexes
            // in place, like a writer's adds.
            let (changed, last) = self.journaled_after(Some(seen_last))?;
            self.change_indexes(|set| {
                self.replay(set, &changed, &Default::default(), &Default::default())
            })?;
            *lock(&self.seen) = (floor, last);
            return Ok(true);
        }
        self.open_units_read_only()?;
        Ok(true)
    }
}
