//! The indexes a server serves by name (iscc-search's `/indexes/{name}`).
//!
//! * `serve --path DIR`: one index, named [`DEFAULT_NAME`]; it cannot be
//!   created or deleted over HTTP.
//! * `serve --root DIR`: every index directory `DIR/<name>` (names as
//!   iscc-search allows them: `^[a-z][a-z0-9]*$`, at most 32 characters).
//!   Each is an ordinary [`IsccIndex`] with its own lock, journal and
//!   crash safety. Indexes are opened on first use and kept in a
//!   least-recently-used set of at most `max_open`; an index pushed out is
//!   saved and closed once no request uses it (checked at every later
//!   lookup; one still in use is handed to the next request that asks for
//!   it, never opened twice).
//!
//! Creating and deleting are crash-atomic by rename: an index is created in
//! `DIR/.creating-<name>` and renamed into place once opened and saved; a
//! deleted one is renamed to `DIR/.deleting-<name>-<n>` before its files
//! are removed. Leftovers of either (a crash midway) are swept when the
//! catalog opens, so a name is either a whole index or absent.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::envelope::{ApiError, ServerCode};
use crate::engine::{ErrorKind, IndexOptions, IsccIndex};

/// The name of the one index of a `serve --path` server.
pub const DEFAULT_NAME: &str = "default";

/// The file that marks a directory as an index (its LMDB store).
const STORE_FILE: &str = "primary.lmdb";

/// Longest index name.
const MAX_NAME: usize = 32;

/// Why `name` is not an index name, if it is not one.
pub(crate) fn name_error(name: &str) -> Option<String> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
    if name.is_empty() {
        Some("index name: empty".into())
    } else if name.len() > MAX_NAME {
        Some(format!(
            "index name {name:?}: longer than {MAX_NAME} characters"
        ))
    } else if !first_ok || !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
        Some(format!(
            "index name {name:?}: expected a lower-case letter, then lower-case letters and digits (^[a-z][a-z0-9]*$)"
        ))
    } else {
        None
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::of_kind(ErrorKind::NotFound, format!("Index '{name}' not found"))
}

fn io_error(what: String, e: &std::io::Error) -> ApiError {
    let kind = crate::kind::io_kind_at(e, Path::new(""));
    ApiError::of_kind(kind, format!("{what}: {e}"))
}

/// Where the named indexes live (see the module docs).
pub(crate) enum Catalog {
    /// `serve --path`: the one index.
    One(Arc<IsccIndex>),
    /// `serve --root`: the directories under a root.
    Root(Root),
}

/// The named indexes under one directory.
pub(crate) struct Root {
    dir: PathBuf,
    read_only: bool,
    max_open: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    /// The open indexes, least recently used first (a handful: a list is
    /// faster than a map and keeps the order).
    recent: Vec<(String, Arc<IsccIndex>)>,
    /// Indexes pushed out of `recent` while requests still used them:
    /// closed (saved) by a later call once only this list holds them, or
    /// taken back into `recent` when asked for again.
    leaving: Vec<(String, Arc<IsccIndex>)>,
    /// Numbers the `.deleting-` directories of this process.
    deleted: u64,
}

impl Catalog {
    /// The catalog of the indexes under `dir` (created when missing),
    /// after sweeping what a crash left of creations and deletions.
    pub(crate) fn root(dir: &Path, read_only: bool, max_open: usize) -> Result<Catalog, ApiError> {
        if !read_only {
            std::fs::create_dir_all(dir)
                .map_err(|e| io_error(format!("creating {}", dir.display()), &e))?;
        }
        let listing = std::fs::read_dir(dir)
            .map_err(|e| io_error(format!("reading {}", dir.display()), &e))?;
        if !read_only {
            for item in listing.flatten() {
                let file = item.file_name();
                let file = file.to_string_lossy();
                if file.starts_with(".creating-") || file.starts_with(".deleting-") {
                    std::fs::remove_dir_all(item.path())
                        .map_err(|e| io_error(format!("removing {}", item.path().display()), &e))?;
                }
            }
        }
        Ok(Catalog::Root(Root {
            dir: dir.to_path_buf(),
            read_only,
            max_open: max_open.max(1),
            open: Mutex::new(Open::default()),
        }))
    }

    /// The names of the indexes, sorted.
    pub(crate) fn names(&self) -> Result<Vec<String>, ApiError> {
        let root = match self {
            Catalog::One(_) => return Ok(vec![DEFAULT_NAME.to_string()]),
            Catalog::Root(root) => root,
        };
        let listing = std::fs::read_dir(&root.dir)
            .map_err(|e| io_error(format!("reading {}", root.dir.display()), &e))?;
        let mut names: Vec<String> = listing
            .flatten()
            .filter_map(|item| item.file_name().into_string().ok())
            .filter(|name| {
                name_error(name).is_none() && root.dir.join(name).join(STORE_FILE).exists()
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// The index `name` (400 for a name that cannot be one, 404 when
    /// there is none).
    pub(crate) fn get(&self, name: &str) -> Result<Arc<IsccIndex>, ApiError> {
        if let Some(e) = name_error(name) {
            return Err(ApiError::invalid(e));
        }
        match self {
            Catalog::One(index) if name == DEFAULT_NAME => Ok(Arc::clone(index)),
            Catalog::One(_) => Err(not_found(name)),
            Catalog::Root(root) => root.get(name),
        }
    }

    /// Create the empty index `name` (409 when it exists or the server
    /// cannot create indexes).
    pub(crate) fn create(&self, name: &str) -> Result<Arc<IsccIndex>, ApiError> {
        if let Some(e) = name_error(name) {
            return Err(ApiError::invalid(e));
        }
        match self {
            Catalog::One(_) => Err(ApiError::server(
                ServerCode::Conflict,
                format!("cannot create index '{name}': this server serves one index (--path); serve a directory of indexes with --root"),
            )),
            Catalog::Root(root) => root.create(name),
        }
    }

    /// Delete the index `name` and its files.
    pub(crate) fn delete(&self, name: &str) -> Result<(), ApiError> {
        if let Some(e) = name_error(name) {
            return Err(ApiError::invalid(e));
        }
        match self {
            Catalog::One(_) if name == DEFAULT_NAME => Err(ApiError::server(
                ServerCode::Conflict,
                format!("cannot delete index '{name}': this server serves one index (--path)"),
            )),
            Catalog::One(_) => Err(not_found(name)),
            Catalog::Root(root) => root.delete(name),
        }
    }

    /// Save and close every open index (at shutdown).
    pub(crate) fn close_all(&self) -> Result<(), crate::engine::EngineError> {
        let Catalog::Root(root) = self else {
            return Ok(());
        };
        let mut open = root.lock();
        let mut result = Ok(());
        for (_, index) in open.recent.drain(..) {
            let closed = index.close();
            if result.is_ok() {
                result = closed;
            }
        }
        for (_, index) in open.leaving.drain(..) {
            let closed = index.close();
            if result.is_ok() {
                result = closed;
            }
        }
        result
    }
}

/// Close the pushed-out indexes no request holds any more. Nobody can take
/// one without the catalog's lock; a failed save loses nothing (the store
/// is the truth, the journal re-indexes on the next open).
fn sweep(open: &mut Open) {
    open.leaving.retain(|(_, index)| {
        if Arc::strong_count(index) > 1 {
            return true;
        }
        let _ = index.close();
        false
    });
}

impl Root {
    fn lock(&self) -> MutexGuard<'_, Open> {
        // A panic while holding the lock leaves the lists consistent (each
        // change is one push or remove): go on with them.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn options(&self) -> IndexOptions {
        IndexOptions {
            read_only: self.read_only,
            ..IndexOptions::default()
        }
    }

    fn get(&self, name: &str) -> Result<Arc<IsccIndex>, ApiError> {
        let index = self.lookup(name)?;
        if self.read_only {
            // Follow the writer beside this server (cheap when unchanged).
            index.refresh().map_err(ApiError::from)?;
        }
        Ok(index)
    }

    /// The open index `name`, opened now if need be.
    fn lookup(&self, name: &str) -> Result<Arc<IsccIndex>, ApiError> {
        let mut open = self.lock();
        sweep(&mut open);
        if let Some(at) = open.recent.iter().position(|(n, _)| n == name) {
            let item = open.recent.remove(at);
            let index = Arc::clone(&item.1);
            open.recent.push(item);
            return Ok(index);
        }
        let back = open.leaving.iter().position(|(n, _)| n == name);
        let index = match back {
            Some(at) => open.leaving.remove(at).1,
            None => {
                let path = self.dir.join(name);
                if !path.join(STORE_FILE).exists() {
                    return Err(not_found(name));
                }
                Arc::new(IsccIndex::open(Some(&path), self.options()).map_err(ApiError::from)?)
            }
        };
        self.admit(&mut open, name, Arc::clone(&index));
        Ok(index)
    }

    /// Put `index` into the open set, pushing out the least recently used
    /// beyond the cap: closed now when no request holds it, else left to
    /// the requests that do (and found again by the next `get`).
    fn admit(&self, open: &mut Open, name: &str, index: Arc<IsccIndex>) {
        open.recent.push((name.to_string(), index));
        while open.recent.len() > self.max_open {
            let item = open.recent.remove(0);
            open.leaving.push(item);
        }
        sweep(open);
    }

    /// 409 `READ_ONLY` on a read-only server.
    fn writable(&self, what: &str, name: &str) -> Result<(), ApiError> {
        if self.read_only {
            return Err(ApiError::of_kind(
                ErrorKind::ReadOnly,
                format!("cannot {what} index '{name}': the server is read-only"),
            ));
        }
        Ok(())
    }

    /// Rename `from` to `to` under the root and make it durable.
    fn rename(&self, from: &Path, to: &Path, what: String) -> Result<(), ApiError> {
        std::fs::rename(from, to)
            .and_then(|()| crate::index::durable::sync_dir(&self.dir))
            .map_err(|e| io_error(what, &e))
    }

    fn create(&self, name: &str) -> Result<Arc<IsccIndex>, ApiError> {
        self.writable("create", name)?;
        let mut open = self.lock();
        let path = self.dir.join(name);
        if path.join(STORE_FILE).exists() {
            return Err(ApiError::server(
                ServerCode::Conflict,
                format!("Index '{name}' already exists"),
            ));
        }
        if path.exists() {
            return Err(ApiError::server(
                ServerCode::Conflict,
                format!("Index '{name}' cannot be created: a directory that holds no index already exists under that name"),
            ));
        }
        let building = self.dir.join(format!(".creating-{name}"));
        let _ = std::fs::remove_dir_all(&building);
        let made = IsccIndex::open(Some(&building), self.options()).map_err(ApiError::from)?;
        // The index is renamed into place closed: an open one would save
        // its derived files under the old path.
        made.close().map_err(ApiError::from)?;
        drop(made);
        self.rename(&building, &path, format!("creating index '{name}'"))?;
        let index = Arc::new(IsccIndex::open(Some(&path), self.options()).map_err(ApiError::from)?);
        self.admit(&mut open, name, Arc::clone(&index));
        Ok(index)
    }

    fn delete(&self, name: &str) -> Result<(), ApiError> {
        self.writable("delete", name)?;
        let mut open = self.lock();
        let path = self.dir.join(name);
        if !path.join(STORE_FILE).exists() {
            return Err(not_found(name));
        }
        // Requests still using the index see it closed (409 CLOSED); its
        // files go once renamed away, so no request writes into the name.
        if let Some(at) = open.recent.iter().position(|(n, _)| n == name) {
            let (_, index) = open.recent.remove(at);
            let _ = index.close();
        }
        if let Some(at) = open.leaving.iter().position(|(n, _)| n == name) {
            let _ = open.leaving.remove(at).1.close();
        }
        open.deleted += 1;
        let gone = self.dir.join(format!(
            ".deleting-{name}-{}-{}",
            std::process::id(),
            open.deleted
        ));
        self.rename(&path, &gone, format!("deleting index '{name}'"))?;
        drop(open);
        std::fs::remove_dir_all(&gone)
            .map_err(|e| io_error(format!("removing the files of index '{name}'"), &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn names_follow_iscc_search() {
        for ok in ["a", "default", "index1", "abcdefghijklmnopqrstuvwxyz012345"] {
            assert_eq!(name_error(ok), None, "{ok}");
        }
        for bad in [
            "",
            "Test",
            "test-name",
            "test_name",
            "123test",
            "abcdefghijklmnopqrstuvwxyz0123456",
            ".creating-x",
            "ä",
        ] {
            assert!(name_error(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn create_list_evict_delete_and_sweep() {
        let dir = tempfile::tempdir().unwrap();
        // Leftovers of a crash midway are swept.
        std::fs::create_dir_all(dir.path().join(".creating-x/sub")).unwrap();
        std::fs::create_dir_all(dir.path().join(".deleting-y-1-1")).unwrap();
        std::fs::create_dir_all(dir.path().join("notanindex")).unwrap();
        let catalog = Catalog::root(dir.path(), false, 2).unwrap();
        assert!(!dir.path().join(".creating-x").exists());
        assert!(!dir.path().join(".deleting-y-1-1").exists());
        assert_eq!(catalog.names().unwrap(), Vec::<String>::new());
        for name in ["a", "b", "c"] {
            catalog.create(name).unwrap();
        }
        let e = catalog.create("b").err().unwrap();
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert!(e.message.contains("already exists"));
        assert_eq!(catalog.names().unwrap(), ["a", "b", "c"]);
        // "a" was pushed out (cap 2) and closed; held "b" survives eviction
        // and is handed out again, not opened a second time (its lock).
        let b = catalog.get("b").unwrap();
        let entry = serde_json::json!({"iscc_code": "ISCC:AAA6W4BIM6M3PCXU"});
        b.add_values(&entry).unwrap();
        catalog.get("a").unwrap();
        catalog.get("c").unwrap();
        let again = catalog.get("b").unwrap();
        assert!(Arc::ptr_eq(&b, &again));
        assert_eq!(again.info().unwrap().size, 1);
        drop((b, again));
        // Pushed out while held, then let go: closed at the next lookup.
        let held = catalog.get("b").unwrap();
        catalog.get("a").unwrap();
        catalog.get("c").unwrap();
        let watch = Arc::downgrade(&held);
        drop(held);
        assert!(watch.upgrade().is_some(), "kept until a lookup");
        catalog.get("a").unwrap();
        assert!(watch.upgrade().is_none(), "closed and released");
        assert_eq!(
            catalog.get("nope").err().unwrap().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            catalog.get("No").err().unwrap().status,
            StatusCode::BAD_REQUEST
        );
        catalog.delete("b").unwrap();
        assert_eq!(catalog.names().unwrap(), ["a", "c"]);
        assert_eq!(
            catalog.get("b").err().unwrap().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            catalog.delete("b").err().unwrap().status,
            StatusCode::NOT_FOUND
        );
        catalog.close_all().unwrap();
        // Reopened: the names are still there, and read-only refuses changes.
        let ro = Catalog::root(dir.path(), true, 4).unwrap();
        assert_eq!(ro.names().unwrap(), ["a", "c"]);
        assert_eq!(ro.create("d").err().unwrap().status, StatusCode::CONFLICT);
        assert_eq!(ro.delete("a").err().unwrap().status, StatusCode::CONFLICT);
        assert_eq!(ro.get("a").unwrap().info().unwrap().size, 0);
    }
}
