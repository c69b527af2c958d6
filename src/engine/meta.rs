//! The engine's metadata keys, each with its value type.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::IndexParams;
use serde_json::Value;

use crate::store::{MetaKey, Store, StoreError};

/// On-disk format version of the index directory.
pub(crate) const FORMAT_VERSION: MetaKey<u32> = MetaKey::new("format_version");
/// Parameters fixed at creation.
pub(crate) const PARAMS: MetaKey<IndexParams> = MetaKey::new("params");
/// `params.max_dim`, also readable on its own.
pub(crate) const MAX_DIM: MetaKey<usize> = MetaKey::new("max_dim");
/// When the index was created (ISO 8601).
pub(crate) const CREATED_AT: MetaKey<String> = MetaKey::new("created_at");
/// The realm of every ISCC-ID of the index, once fixed.
pub(crate) const REALM_ID: MetaKey<u8> = MetaKey::new("realm_id");
/// Format 1: the unit types with an index (directory = the type's
/// `dir_name`). Read only to upgrade to [`UNIT_DIRS`].
pub(crate) const LEGACY_UNIT_TYPES: MetaKey<Vec<String>> = MetaKey::new("unit_types");
/// The current directory of each unit type's index (by unit type name).
/// A rebuilt index gets a new directory; this key, changed in one store
/// transaction, is the commit point of the switch.
pub(crate) const UNIT_DIRS: MetaKey<BTreeMap<String, String>> = MetaKey::new("unit_dirs");
/// The current directory of each simprint type's similarity index (by
/// simprint type name); switched with [`UNIT_DIRS`] in one transaction.
pub(crate) const SIMPRINT_DIRS: MetaKey<BTreeMap<String, String>> = MetaKey::new("simprint_dirs");
/// The next directory generation a rebuild hands out.
pub(crate) const NEXT_DIR_GEN: MetaKey<u64> = MetaKey::new("next_dir_gen");
/// A rebuild in progress: recorded before it starts, cleared in the
/// transaction that commits it; found on a writable open, it is resumed.
pub(crate) const REBUILD: MetaKey<RebuildIntent> = MetaKey::new("rebuild");

/// What an unfinished rebuild was doing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RebuildIntent {
    /// Every unit type the entries have (a full rebuild).
    pub(crate) all: bool,
    /// The unit types to rebuild (by name), when not `all`.
    pub(crate) types: Vec<String>,
    /// The simprint types to rebuild (by name), when not `all`.
    #[serde(default)]
    pub(crate) simprints: Vec<String>,
}

/// The prefix of user metadata keys (kept apart from the engine's own).
fn user_key(key: &str) -> String {
    format!("user:{key}")
}

/// A user metadata value (what `LocalIndex` and `IsccStore` read alike).
pub(crate) fn get_user(store: &Store, key: &str) -> Result<Option<Value>, StoreError> {
    store.get_meta(&user_key(key))
}

/// Set a user metadata value in its own transaction.
pub(crate) fn put_user(store: &Store, key: &str, value: &Value) -> Result<(), StoreError> {
    store.put_meta(&user_key(key), value)
}
