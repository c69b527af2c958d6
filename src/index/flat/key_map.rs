//! Where each key's row is (group, index), shared by snapshots like the
//! columns (see `words.rs`): the map is cut into [`PARTS`] hash maps behind
//! `Arc`s by a hash of the key, so a writer's copy of a snapshot shares
//! every part and an edit copies only the parts it touches (at a million
//! keys, one part holds about 4,000).

use std::collections::HashMap;
use std::sync::Arc;

/// Parts of a map (a power of two).
const PARTS: usize = 256;

/// A key's place: its list, its group in that list and its index in that
/// group, in eight bytes (list and group share a word: lists up to 2^29).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place {
    list_group: u32,
    /// The row's index in its group.
    pub(crate) index: u32,
}

impl Place {
    /// The place of row `index` of group `group` (0–4) of list `list`.
    pub(crate) fn new(list: usize, group: u8, index: u32) -> Place {
        debug_assert!(list < 1 << 29 && group < 8);
        Place {
            list_group: ((list as u32) << 3) | u32::from(group),
            index,
        }
    }

    /// The list.
    pub(crate) fn list(self) -> usize {
        (self.list_group >> 3) as usize
    }

    /// The group in the list.
    pub(crate) fn group(self) -> u8 {
        (self.list_group & 7) as u8
    }
}

/// key -> [`Place`], in parts (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct KeyMap {
    parts: Vec<Arc<HashMap<u64, Place>>>,
}

impl Default for KeyMap {
    fn default() -> KeyMap {
        // One empty part shared by every slot until a slot is written
        // (on its first write, `Arc::make_mut` gives it its own).
        let empty = Arc::new(HashMap::new());
        KeyMap {
            parts: (0..PARTS).map(|_| Arc::clone(&empty)).collect(),
        }
    }
}

/// The part of a key: the top bits of a multiplicative hash, so
/// sequential keys and keys sharing high bits spread evenly.
#[inline]
fn part(key: u64) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - PARTS.trailing_zeros())) as usize
}

impl KeyMap {
    /// The place of a key.
    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<Place> {
        self.parts[part(key)].get(&key).copied()
    }

    /// True when the key has a place.
    pub(crate) fn contains_key(&self, key: u64) -> bool {
        self.parts[part(key)].contains_key(&key)
    }

    /// Set a key's place.
    pub(crate) fn insert(&mut self, key: u64, place: Place) {
        Arc::make_mut(&mut self.parts[part(key)]).insert(key, place);
    }

    /// Remove a key; its place, if it had one.
    pub(crate) fn remove(&mut self, key: u64) -> Option<Place> {
        let slot = &mut self.parts[part(key)];
        if !slot.contains_key(&key) {
            // Absent: do not copy a shared part to find nothing.
            return None;
        }
        Arc::make_mut(slot).remove(&key)
    }

    /// Room for `n` keys in all (spread over the parts).
    pub(crate) fn reserve(&mut self, n: usize) {
        let each = n.div_ceil(PARTS);
        for slot in &mut self.parts {
            Arc::make_mut(slot).reserve(each);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_copies_one_part_and_a_clone_keeps_its_keys() {
        let mut map = KeyMap::default();
        map.reserve(10_000);
        for k in 0..10_000u64 {
            map.insert(k, Place::new(0, 0, k as u32));
        }
        let used = map.parts.iter().filter(|p| !p.is_empty()).count();
        assert!(used > PARTS * 9 / 10, "sequential keys spread: {used}");
        let held = map.clone();
        map.insert(20_000, Place::new(5, 1, 7));
        assert_eq!(map.remove(3), Some(Place::new(0, 0, 3)));
        assert_eq!(map.remove(3), None);
        let copied = (0..PARTS)
            .filter(|&p| !Arc::ptr_eq(&map.parts[p], &held.parts[p]))
            .count();
        assert!(copied <= 2, "{copied} parts copied");
        assert_eq!(
            (held.get(3), held.get(20_000)),
            (Some(Place::new(0, 0, 3)), None)
        );
        let moved = map.get(20_000).expect("inserted");
        assert_eq!((moved.list(), moved.group(), moved.index), (5, 1, 7));
        assert_eq!(map.get(3), None);
        assert!(map.contains_key(9_999) && !map.contains_key(10_000));
    }
}
