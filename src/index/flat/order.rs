//! Positions of a flat store's rows in storage order (the order of a saved
//! file's rows): how compact graph files refer to rows by position.

use super::{FlatStore, ODD};
use crate::metric::Row;

/// Positions of rows in storage order (see [`FlatStore::order`]).
pub(crate) struct Order<'a> {
    pub(super) flat: &'a FlatStore,
    /// Where each group of [`FlatStore::groups`] starts, and the end.
    pub(super) starts: Vec<usize>,
}

impl Order<'_> {
    /// The position of a key's row.
    pub(crate) fn position(&self, key: u64) -> Option<usize> {
        let place = self.flat.place(key)?;
        let i = place.index as usize;
        if place.group() == ODD {
            return Some(self.starts[self.starts.len() - 1] + i);
        }
        Some(self.starts[4 * place.list() + usize::from(place.group())] + i)
    }

    /// The key and row at position `pos`.
    #[inline]
    pub(crate) fn entry_at(&self, pos: usize) -> Option<(u64, Row)> {
        let end = self.starts[self.starts.len() - 1];
        if pos >= end {
            let i = pos - end;
            return Some((*self.flat.odd.keys.get(i)?, *self.flat.odd.rows.get(i)?));
        }
        // The last group starting at or before `pos` (empty groups share
        // their start with the next one: take the last of them).
        let g = self.starts.partition_point(|&s| s <= pos) - 1;
        let group = &self.flat.lists[g / 4].groups[g % 4];
        let i = pos - self.starts[g];
        Some((group.key(i), group.row(i)))
    }
}
