//! Keys and their rows: the key map's glue (see `key_map.rs`), `get`,
//! `insert` and `remove`.

use std::sync::OnceLock;

use super::key_map::{KeyMap, Place};
use super::odd::OddRows;
use super::{FlatStore, List, ODD};
use crate::metric::{whole_words, Row};

/// The key at a place of a store's lists and byte-granular rows (`None`:
/// no row there), as the key map reads it (see `key_map`).
fn key_at(lists: &[List], odd: &OddRows, place: Place) -> Option<u64> {
    let i = place.index as usize;
    if place.group() == ODD {
        return odd.keys.get(i).copied();
    }
    let group = lists
        .get(place.list())?
        .groups
        .get(usize::from(place.group()))?;
    (i < group.len()).then(|| group.key(i))
}

impl FlatStore {
    pub(super) fn build_slots(&self) -> KeyMap {
        let key_of = |p: Place| key_at(&self.lists, &self.odd, p);
        let mut map = KeyMap::default();
        map.reserve(self.len(), &key_of);
        for (l, list) in self.lists.iter().enumerate() {
            for (g, group) in list.groups.iter().enumerate() {
                for (i, key) in group.keys().iter().enumerate() {
                    map.insert_new(key, Place::new(l, g as u8, i as u32), &key_of);
                }
            }
        }
        for (i, key) in self.odd.keys.iter().enumerate() {
            map.insert_new(*key, Place::new(0, ODD, i as u32), &key_of);
        }
        map
    }

    /// Build the key map now if it is not built yet (it is built on
    /// first use otherwise): lets a thread other than the first writer pay
    /// for it.
    pub(crate) fn build_key_map(&self) {
        self.slots();
    }

    pub(super) fn slots(&self) -> &KeyMap {
        self.slots.get_or_init(|| self.build_slots())
    }

    /// Build the key map if it is not built yet (before an edit).
    fn ensure_slots(&mut self) {
        if self.slots.get().is_none() {
            let map = self.build_slots();
            self.slots = OnceLock::from(map);
        }
    }

    /// Forget the key map after the groups were replaced.
    pub(crate) fn reindex(&mut self) {
        self.slots = OnceLock::new();
    }

    /// True when the key is stored.
    pub(crate) fn contains(&self, key: u64) -> bool {
        self.place(key).is_some()
    }

    /// The place of a key's row.
    pub(super) fn place(&self, key: u64) -> Option<Place> {
        self.slots()
            .get(key, &|p| key_at(&self.lists, &self.odd, p))
    }

    /// The list holding a key's row: `Some(None)` for a byte-granular row
    /// (no list holds those: every search reads them), `None` when the key
    /// is not stored.
    pub(crate) fn list_of_key(&self, key: u64) -> Option<Option<usize>> {
        let place = self.place(key)?;
        Some((place.group() != ODD).then(|| place.list()))
    }

    /// The row of a key.
    pub(crate) fn get(&self, key: u64) -> Option<Row> {
        let place = self.place(key)?;
        let i = place.index as usize;
        if place.group() == ODD {
            return self.odd.rows.get(i).copied();
        }
        Some(self.lists[place.list()].groups[usize::from(place.group())].row(i))
    }

    /// Insert a row for a key that is not stored.
    pub(crate) fn insert(&mut self, key: u64, row: &Row) {
        self.ensure_slots();
        let place = if !whole_words(row.len()) {
            let index = self.odd.len() as u32;
            self.odd.push(key, *row);
            Place::new(0, ODD, index)
        } else {
            let g = row.len() / 8 - 1;
            let words = row.words();
            let l = self.list_of(&words);
            let group = &mut self.lists[l].groups[g];
            let index = group.len() as u32;
            group.push(key, &words);
            self.rows += 1;
            Place::new(l, g as u8, index)
        };
        // The row is in the store before its place is in the map (the
        // map reads keys at its places: see `key_map`).
        let (lists, odd) = (&self.lists, &self.odd);
        if let Some(map) = self.slots.get_mut() {
            map.insert_new(key, place, &|p| key_at(lists, odd, p));
        }
    }

    /// Remove a key's row; false when absent.
    pub(crate) fn remove(&mut self, key: u64) -> bool {
        self.ensure_slots();
        let (lists, odd) = (&self.lists, &self.odd);
        // Out of the map first, while every place in it is still valid.
        let Some(place) = self
            .slots
            .get_mut()
            .and_then(|map| map.remove(key, &|p| key_at(lists, odd, p)))
        else {
            return false;
        };
        let (l, g, i) = (place.list(), place.group(), place.index as usize);
        let (moved, last) = if g == ODD {
            let last = self.odd.len() - 1;
            (self.odd.swap_remove(i), Place::new(0, ODD, last as u32))
        } else {
            let group = &mut self.lists[l].groups[usize::from(g)];
            let last = group.len() - 1;
            self.rows -= 1;
            (group.swap_remove(i), Place::new(l, g, last as u32))
        };
        // The store moved its last row into the hole: its entry follows.
        if let (Some(moved), Some(map)) = (moved, self.slots.get_mut()) {
            let relocated = map.relocate(moved, last, place);
            debug_assert!(relocated, "key {moved} had no entry at {last:?}");
        }
        true
    }
}
