//! Typed metadata keys: a key's value type is fixed where the key is
//! declared (as heed fixes a database's types), not chosen at each call.

use std::marker::PhantomData;

/// A metadata key whose value is JSON of type `T`.
#[derive(Debug)]
pub struct MetaKey<T> {
    name: &'static str,
    _value: PhantomData<fn() -> T>,
}

impl<T> MetaKey<T> {
    /// Declare a key.
    pub const fn new(name: &'static str) -> MetaKey<T> {
        MetaKey {
            name,
            _value: PhantomData,
        }
    }

    /// The key as stored.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<T> Clone for MetaKey<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for MetaKey<T> {}

/// The last journal sequence number trimmed away: every change up to it is
/// in every saved unit index, and sequence numbers continue above it.
pub const JOURNAL_FLOOR: MetaKey<u64> = MetaKey::new("journal_floor");
