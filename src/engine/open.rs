//! Opening an index: where it lives (a directory or a temporary one), the
//! writer lock, the store, its format and realm; then the self-checking
//! open of the unit indexes ([`super::recovery`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, OnceLock};

use super::{io, meta, recovery, EngineError, IndexOptions, IndexParams, LocalIndex};
use crate::codec::{IdGenerator, Realm};
use crate::index::{ShardedOptions, VectorKind};
use crate::lockfile::{DirLock, LockError};
use crate::store::{Store, StoreOptions};

impl LocalIndex {
    /// Open (or create) the index at `path`; `None` makes an in-memory index
    /// in a temporary directory (no fsync; removed on close or drop).
    ///
    /// Every open checks the unit indexes against the store and repairs
    /// what disagrees (see the module docs); a read-only open never writes
    /// to the index directory and takes no lock.
    pub fn open(path: Option<&Path>, options: IndexOptions) -> Result<LocalIndex, EngineError> {
        let (root, temp, durable) = place(path, &options)?;
        if let Some(r) = options.realm {
            Realm::new(r).map_err(|source| EngineError::Iscc {
                context: "option realm".into(),
                source,
            })?;
        }
        let lock = lock_dir(&root, options.read_only)?;
        let store = Store::open(
            root.join("primary.lmdb"),
            StoreOptions {
                durable,
                read_only: options.read_only,
                ..StoreOptions::default()
            },
        )?;
        let params = recovery::check_format(&store, &root, &options)?;
        let realm = stored_realm(&store, &root, options.realm)?;
        let ids =
            IdGenerator::new(options.hub_id, realm.unwrap_or(Realm::R0)).map_err(|source| {
                EngineError::Iscc {
                    context: "option hub_id".into(),
                    source,
                }
            })?;
        if let Some(last) = store.last_id()? {
            ids.advance_past(last);
        }
        let index = LocalIndex {
            root,
            temp: Mutex::new(temp),
            store,
            indexes: Default::default(),
            params,
            realm: realm.map(OnceLock::from).unwrap_or_default(),
            ids,
            options: IndexOptions { durable, ..options },
            writer: Mutex::new(()),
            closed: AtomicBool::new(false),
            unapplied: AtomicBool::new(false),
            lock: Mutex::new(lock),
            scratch: Mutex::new(None),
            legacy_counts: Mutex::new(None),
            repairs: Mutex::new(Vec::new()),
            seen: Mutex::new((0, 0)),
            combiner: crate::combine::Combiner::per_core(),
        };
        index.open_units()?;
        Ok(index)
    }

    /// Open an existing index: into RAM for writing, or with `view`
    /// read-only (unit indexes memory-mapped).
    pub fn restore(path: &Path, view: bool) -> Result<LocalIndex, EngineError> {
        if !path.join("primary.lmdb").exists() {
            return Err(EngineError::NotFound(format!(
                "index at {} (no primary.lmdb)",
                path.display()
            )));
        }
        LocalIndex::open(
            Some(path),
            IndexOptions {
                read_only: view,
                ..IndexOptions::default()
            },
        )
    }

    pub(super) fn check_params(p: &IndexParams) -> Result<(), EngineError> {
        if !crate::codec::INDEX_BITS.contains(&p.max_dim) {
            return Err(EngineError::Invalid(format!(
                "max_dim {} (expected 64, 128, 192 or 256)",
                p.max_dim
            )));
        }
        // The unit indexes' own checks, so no parameter passes here and
        // fails later, after entries were committed.
        Self::sharded_options(p)
            .validate()
            .map_err(|e| EngineError::Invalid(format!("invalid index parameters: {e}")))
    }

    pub(super) fn sharded_options(p: &IndexParams) -> ShardedOptions {
        ShardedOptions {
            vectors: VectorKind::Nphd { max_dim: p.max_dim },
            connectivity: p.connectivity,
            expansion_add: p.expansion_add,
            expansion_search: p.expansion_search,
            exact_threshold: p.exact_threshold,
            shard_size: p.shard_size,
            partition: p.partition,
            background_rotation: true,
            ..ShardedOptions::default()
        }
    }
}

/// Where the index lives: `path`, or a new temporary directory (removed on
/// close; never fsync'd) when there is none. Returns the directory, the
/// temporary directory's guard and whether commits are fsync'd.
fn place(
    path: Option<&Path>,
    options: &IndexOptions,
) -> Result<(PathBuf, Option<tempfile::TempDir>, bool), EngineError> {
    let placed = match path {
        Some(p) => (p.to_path_buf(), None, options.durable),
        None => {
            let t = tempfile::Builder::new()
                .prefix("iscc-vdb-")
                .tempdir()
                .map_err(io(Path::new("temporary directory")))?;
            (t.path().to_path_buf(), Some(t), false)
        }
    };
    if options.read_only && placed.1.is_some() {
        return Err(EngineError::Invalid(
            "an in-memory index cannot be opened read-only".into(),
        ));
    }
    Ok(placed)
}

/// The writer lock of a writable open (creating the directory); a
/// read-only open takes none but needs an existing store.
pub(super) fn lock_dir(root: &Path, read_only: bool) -> Result<Option<DirLock>, EngineError> {
    if read_only {
        if !root.join("primary.lmdb").exists() {
            return Err(EngineError::NotFound(format!(
                "index at {} (no primary.lmdb)",
                root.display()
            )));
        }
        return Ok(None);
    }
    std::fs::create_dir_all(root).map_err(io(root))?;
    DirLock::acquire(root).map(Some).map_err(|e| match e {
        LockError::Held => EngineError::Locked {
            path: root.to_path_buf(),
        },
        LockError::HeldHere => EngineError::OpenHere {
            path: root.to_path_buf(),
        },
        LockError::Io(source) => EngineError::Io {
            path: root.join("LOCK"),
            source,
        },
    })
}

/// The realm the store records (none before the first entry), which must
/// be the one the options ask for, if they ask.
pub(super) fn stored_realm(
    store: &Store,
    root: &Path,
    wanted: Option<u8>,
) -> Result<Option<Realm>, EngineError> {
    let stored = store.meta(meta::REALM_ID)?;
    if let (Some(s), Some(o)) = (stored, wanted) {
        if s != o {
            return Err(EngineError::Invalid(format!(
                "the index at {} holds realm {s}, but realm {o} was requested",
                root.display()
            )));
        }
    }
    stored
        .map(Realm::new)
        .transpose()
        .map_err(|source| EngineError::Iscc {
            context: "stored metadata realm_id".into(),
            source,
        })
}
