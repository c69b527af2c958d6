//! Where each key's row is (list, group, index), in about 11 bytes per key.
//!
//! The map stores places, not keys: a key is read back from the store's
//! keys column at its place (the caller passes `key_of`), so an entry costs
//! its 8-byte [`Place`] and a 1-byte tag of the key's hash. A hash map of
//! `u64 -> Place` held 36 bytes per key at a million keys (16-byte entries
//! at a load of 0.44-0.875) — more than the rows themselves, and what kept
//! a writer above 40 bytes per code.
//!
//! Each of [`PARTS`] parts is an open-addressing table with linear probing,
//! sized to any number of slots (not a power of two: the load stays within
//! [`MIN_LOAD`]..[`MAX_LOAD`]); a removed entry leaves a tombstone that a
//! later insert reuses or a rebuild drops. Parts sit behind `Arc`s like the
//! columns (see `words.rs`): a writer's copy of a snapshot shares every
//! part and an edit copies only the parts it touches.
//!
//! Contract: every place in the map is a valid place of the store that
//! `key_of` reads, whenever a method that takes `key_of` runs. So a row is
//! added to the store before its place is inserted, removed from the map
//! before the store's row is, and a row moved by the store is
//! [`KeyMap::relocate`]d (which reads no key).

use std::sync::Arc;

/// Parts of a map (a power of two).
const PARTS: usize = 256;

/// A part is rebuilt before its live and removed entries fill more than
/// this share of its slots (linear probing slows sharply beyond).
const MAX_LOAD: f64 = 0.875;

/// The load a rebuild of a part that outgrew its slots leaves: it grows
/// again after about 25 % more keys.
const MIN_LOAD: f64 = 0.7;

/// The load a map reserved for a known number of keys starts at (a
/// loaded store's map: ~11 bytes per key).
const RESERVED_LOAD: f64 = 0.85;

/// A slot's tag: never used.
const EMPTY: u8 = 0;
/// A slot's tag: its entry was removed.
const GONE: u8 = 1;

/// A key's place: its list, its group in that list and its index in that
/// group, in eight bytes (list and group share a word: lists up to 2^29).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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

/// A key's hash, cut into its part, its tag and its position in a part.
#[derive(Clone, Copy)]
struct Hashed {
    part: usize,
    tag: u8,
    mix: u64,
}

impl Hashed {
    /// Multiplicative hashes, so sequential keys and keys sharing high bits
    /// spread evenly: the part and the tag from the top bits of one, the
    /// slot from the top bits of another (by multiplication, so a part of
    /// any size).
    #[inline]
    fn of(key: u64) -> Hashed {
        let h = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let m = (key ^ (key >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        Hashed {
            part: (h >> (64 - PARTS.trailing_zeros())) as usize,
            tag: 2 + ((h >> 40) as u8 % 254),
            mix: m ^ (m >> 29),
        }
    }

    /// The first slot to look at in a part of `slots` slots.
    #[inline]
    fn home(self, slots: usize) -> usize {
        ((u128::from(self.mix) * slots as u128) >> 64) as usize
    }
}

/// One part: a tag and a place per slot, in two parallel vectors (a probe
/// reads the tags, 64 to a cache line, and a place only on a tag match).
#[derive(Debug, Clone, Default)]
struct Table {
    tags: Vec<u8>,
    places: Vec<Place>,
    /// Entries.
    live: usize,
    /// Entries and tombstones.
    used: usize,
}

impl Table {
    /// The slots from `hashed`'s home on (every slot at most once; a table
    /// always has an empty slot, so a probe ends before it wraps around).
    fn probe(&self, hashed: Hashed) -> impl Iterator<Item = usize> {
        let n = self.tags.len();
        let home = hashed.home(n.max(1));
        (home..n).chain(0..home)
    }

    /// The slot holding `key`.
    fn find(
        &self,
        key: u64,
        hashed: Hashed,
        key_of: &dyn Fn(Place) -> Option<u64>,
    ) -> Option<usize> {
        for i in self.probe(hashed) {
            match self.tags[i] {
                EMPTY => return None,
                t if t == hashed.tag && key_of(self.places[i]) == Some(key) => return Some(i),
                _ => {}
            }
        }
        None
    }

    /// Put an entry for a key known to be absent (no key is read).
    fn put(&mut self, hashed: Hashed, place: Place) {
        for i in self.probe(hashed) {
            let tag = self.tags[i];
            if tag == EMPTY || tag == GONE {
                self.tags[i] = hashed.tag;
                self.places[i] = place;
                self.live += 1;
                self.used += usize::from(tag == EMPTY);
                return;
            }
        }
        unreachable!("a table keeps an empty slot (MAX_LOAD < 1)");
    }

    /// Make room for `extra` more entries, rebuilding at load `load` if
    /// they would fill it past [`MAX_LOAD`] (tombstones are dropped then).
    fn room(&mut self, extra: usize, load: f64, key_of: &dyn Fn(Place) -> Option<u64>) {
        let slots = self.tags.len();
        if ((self.used + extra) as f64) < MAX_LOAD * slots as f64 {
            return;
        }
        let want = (((self.live + extra) as f64 / load).ceil() as usize).max(8);
        let mut fresh = Table {
            tags: vec![EMPTY; want],
            places: vec![Place::default(); want],
            live: 0,
            used: 0,
        };
        for (&tag, &place) in self.tags.iter().zip(&self.places) {
            if tag == EMPTY || tag == GONE {
                continue;
            }
            // Every place is valid (the module's contract); one that is
            // not would be an entry no lookup can confirm: drop it.
            if let Some(key) = key_of(place) {
                fresh.put(Hashed::of(key), place);
            } else {
                debug_assert!(false, "a key map entry at an invalid place {place:?}");
            }
        }
        *self = fresh;
    }
}

/// key -> [`Place`], in parts (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct KeyMap {
    parts: Vec<Arc<Table>>,
}

impl Default for KeyMap {
    fn default() -> KeyMap {
        // One empty part shared by every slot until a slot is written
        // (on its first write, `Arc::make_mut` gives it its own).
        let empty = Arc::new(Table::default());
        KeyMap {
            parts: (0..PARTS).map(|_| Arc::clone(&empty)).collect(),
        }
    }
}

impl KeyMap {
    /// The place of a key.
    #[inline]
    pub(crate) fn get(&self, key: u64, key_of: &dyn Fn(Place) -> Option<u64>) -> Option<Place> {
        let hashed = Hashed::of(key);
        let table = &self.parts[hashed.part];
        table.find(key, hashed, key_of).map(|i| table.places[i])
    }

    /// Give a key that has no place its place (the store already holds
    /// the row there).
    pub(crate) fn insert_new(
        &mut self,
        key: u64,
        place: Place,
        key_of: &dyn Fn(Place) -> Option<u64>,
    ) {
        debug_assert!(self.get(key, key_of).is_none(), "key {key} already placed");
        let hashed = Hashed::of(key);
        let table = Arc::make_mut(&mut self.parts[hashed.part]);
        table.room(1, MIN_LOAD, key_of);
        table.put(hashed, place);
    }

    /// Remove a key (before the store removes its row); its place, if it
    /// had one.
    pub(crate) fn remove(
        &mut self,
        key: u64,
        key_of: &dyn Fn(Place) -> Option<u64>,
    ) -> Option<Place> {
        let hashed = Hashed::of(key);
        // Absent: do not copy a shared part to find nothing.
        let i = self.parts[hashed.part].find(key, hashed, key_of)?;
        let table = Arc::make_mut(&mut self.parts[hashed.part]);
        table.tags[i] = GONE;
        table.live -= 1;
        Some(table.places[i])
    }

    /// Move a key's entry from place `from` to `to` (after the store moved
    /// its row: `from` may no longer be valid, so the entry is found by
    /// its place, and no key is read). False when it had no entry there.
    pub(crate) fn relocate(&mut self, key: u64, from: Place, to: Place) -> bool {
        let hashed = Hashed::of(key);
        let table = &self.parts[hashed.part];
        let found = table
            .probe(hashed)
            .take_while(|&i| table.tags[i] != EMPTY)
            .find(|&i| table.tags[i] == hashed.tag && table.places[i] == from);
        let Some(i) = found else {
            return false;
        };
        Arc::make_mut(&mut self.parts[hashed.part]).places[i] = to;
        true
    }

    /// Room for `n` keys in all, spread over the parts (a map built for a
    /// store of `n` rows starts at [`RESERVED_LOAD`]).
    pub(crate) fn reserve(&mut self, n: usize, key_of: &dyn Fn(Place) -> Option<u64>) {
        // A part's share, with room for the spread of a multiplicative
        // hash over the parts (3 standard deviations of a binomial).
        let each = n / PARTS;
        let each = each + 3 * (each as f64).sqrt().ceil() as usize;
        for slot in &mut self.parts {
            Arc::make_mut(slot).room(each, RESERVED_LOAD, key_of);
        }
    }

    /// Bytes the map holds (its tables' slots).
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.parts
            .iter()
            .map(|t| t.tags.capacity() + t.places.capacity() * std::mem::size_of::<Place>())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A store stand-in: the key at each place.
    #[derive(Default)]
    struct Store(HashMap<Place, u64>);

    impl Store {
        fn key_of(&self) -> impl Fn(Place) -> Option<u64> + '_ {
            |p| self.0.get(&p).copied()
        }
    }

    #[test]
    fn an_edit_copies_one_part_and_a_clone_keeps_its_keys() {
        let mut store = Store::default();
        let mut map = KeyMap::default();
        for k in 0..10_000u64 {
            store.0.insert(Place::new(0, 0, k as u32), k);
        }
        map.reserve(10_000, &store.key_of());
        for k in 0..10_000u64 {
            map.insert_new(k, Place::new(0, 0, k as u32), &store.key_of());
        }
        let used = map.parts.iter().filter(|p| p.live > 0).count();
        assert!(used > PARTS * 9 / 10, "sequential keys spread: {used}");
        let held = map.clone();
        store.0.insert(Place::new(5, 1, 7), 20_000);
        map.insert_new(20_000, Place::new(5, 1, 7), &store.key_of());
        assert_eq!(map.remove(3, &store.key_of()), Some(Place::new(0, 0, 3)));
        assert_eq!(map.remove(3, &store.key_of()), None);
        let copied = (0..PARTS)
            .filter(|&p| !Arc::ptr_eq(&map.parts[p], &held.parts[p]))
            .count();
        assert!(copied <= 2, "{copied} parts copied");
        assert_eq!(
            (
                held.get(3, &store.key_of()),
                held.get(20_000, &store.key_of())
            ),
            (Some(Place::new(0, 0, 3)), None)
        );
        let moved = map.get(20_000, &store.key_of()).expect("inserted");
        assert_eq!((moved.list(), moved.group(), moved.index), (5, 1, 7));
        assert_eq!(map.get(3, &store.key_of()), None);
        assert!(map.get(9_999, &store.key_of()).is_some());
        assert!(map.get(10_000, &store.key_of()).is_none());
    }

    /// Random inserts, removes and moves (as a store's swap-remove makes)
    /// against a `HashMap` model, through growth and tombstones; and the
    /// bytes per key the RAM budget counts on.
    #[test]
    fn random_edits_match_a_model_and_cost_about_eleven_bytes_per_key() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // Rows of one group in a vector; keys drawn from a small range so
        // removes and re-adds of the same key are common.
        let mut rows: Vec<u64> = Vec::new();
        let mut model: HashMap<u64, u32> = HashMap::new();
        let mut map = KeyMap::default();
        for step in 0..200_000 {
            let key = next() % 60_000;
            let key_of = |p: Place| rows.get(p.index as usize).copied();
            if let Some(&i) = model.get(&key) {
                if step % 3 == 0 {
                    continue;
                }
                assert_eq!(map.remove(key, &key_of), Some(Place::new(0, 0, i)));
                model.remove(&key);
                rows.swap_remove(i as usize);
                if let Some(&moved) = rows.get(i as usize) {
                    let last = rows.len() as u32;
                    assert!(map.relocate(moved, Place::new(0, 0, last), Place::new(0, 0, i)));
                    model.insert(moved, i);
                }
            } else {
                rows.push(key);
                let i = rows.len() as u32 - 1;
                let key_of = |p: Place| rows.get(p.index as usize).copied();
                map.insert_new(key, Place::new(0, 0, i), &key_of);
                model.insert(key, i);
            }
        }
        let key_of = |p: Place| rows.get(p.index as usize).copied();
        for key in 0..60_000u64 {
            let want = model.get(&key).map(|&i| Place::new(0, 0, i));
            assert_eq!(map.get(key, &key_of), want, "key {key}");
        }
        assert_eq!(map.parts.iter().map(|t| t.live).sum::<usize>(), model.len());
        // A map built for a known number of keys.
        let n = 1_000_000u64;
        let keys: Vec<u64> = (0..n).map(|_| next()).collect();
        let key_of = |p: Place| keys.get(p.index as usize).copied();
        let mut built = KeyMap::default();
        built.reserve(n as usize, &key_of);
        for (i, &key) in keys.iter().enumerate() {
            built.insert_new(key, Place::new(0, 0, i as u32), &key_of);
        }
        let per_key = built.bytes() as f64 / n as f64;
        assert!((9.0..13.0).contains(&per_key), "{per_key} bytes per key");
        assert!(keys
            .iter()
            .step_by(997)
            .all(|&k| built.get(k, &key_of).is_some()));
    }
}
