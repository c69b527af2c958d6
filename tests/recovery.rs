//! Every open checks the unit indexes against the store and repairs what
//! disagrees — on disk when writable, in memory when read-only — and says
//! so (`info().repairs`); nothing is ever silently empty or stale.

mod common;

use std::path::Path;

use iscc_vdb::engine::{
    ErrorKind, IndexOptions, IndexParams, IsccIndex, Query, SearchParams, ENGINE_FORMAT_VERSION,
};
use iscc_vdb::testing::store::{MetaKey, Store, StoreOptions};
use serde_json::Value;

fn fast() -> IndexOptions {
    IndexOptions {
        durable: false,
        params: IndexParams {
            shard_size: 256 << 10,
            ..IndexParams::default()
        },
        ..IndexOptions::default()
    }
}

fn add(idx: &IsccIndex, entries: &[Value]) {
    for chunk in entries.chunks(1000) {
        let refs: Vec<&Value> = chunk.iter().collect();
        idx.add(&refs).unwrap();
    }
}

fn query(entry: &Value) -> Query {
    // Similarity units only: an INSTANCE match would come from the store.
    let units: Vec<String> = entry["units"].as_array().unwrap()[..3]
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    Query::units(units)
}

fn exact() -> SearchParams {
    SearchParams {
        exact: true,
        count: 200,
        ..SearchParams::default()
    }
}

/// The entry is found with a perfect score.
fn found(idx: &IsccIndex, entry: &Value) -> bool {
    let id = entry["iscc_id"].as_str().unwrap();
    idx.search(&query(entry), &exact())
        .unwrap()
        .matches
        .iter()
        .any(|m| m.iscc_id == id && m.score == 1.0)
}

fn rows(idx: &IsccIndex, unit_type: &str) -> (usize, u64) {
    let info = idx.info().unwrap();
    let u = &info.units[unit_type];
    (u.len, u.entries)
}

#[test]
fn a_unit_index_without_its_manifest_is_rebuilt_never_silently_empty() {
    let dir = tempfile::tempdir().unwrap();
    let entries = common::generated_entries(3000);
    {
        let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
        add(&idx, &entries);
        idx.close().unwrap();
    }
    std::fs::remove_file(dir.path().join("content-text-v0/manifest.json")).unwrap();
    // Read-only: rebuilt in memory, nothing written to the directory.
    {
        let ro = IsccIndex::restore(dir.path(), true).unwrap();
        assert_eq!(rows(&ro, "CONTENT-TEXT-V0"), (3000, 3000));
        let repairs = ro.info().unwrap().repairs;
        assert!(
            repairs
                .iter()
                .any(|r| r.contains("CONTENT-TEXT-V0") && r.contains("in memory")),
            "{repairs:?}"
        );
        assert!(found(&ro, &entries[1234]));
        assert!(ro.unit_types().unwrap().contains(&"CONTENT-TEXT-V0".into()));
        ro.close().unwrap();
    }
    assert!(!dir.path().join("content-text-v0/manifest.json").exists());
    // Writable: rebuilt on disk, and the old files are not deleted by an
    // add that thinks the type is new.
    let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
    assert_eq!(rows(&idx, "CONTENT-TEXT-V0"), (3000, 3000));
    assert!(!idx.info().unwrap().repairs.is_empty());
    assert!(found(&idx, &entries[17]));
    idx.close().unwrap();
    drop(idx);
    let again = IsccIndex::open(Some(dir.path()), fast()).unwrap();
    assert_eq!(again.info().unwrap().repairs, Vec::<String>::new());
}

#[test]
fn a_unit_index_older_than_the_journal_floor_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let entries = common::generated_entries(2000);
    let old_copy = tempfile::tempdir().unwrap();
    {
        let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
        add(&idx, &entries[..1000]);
        idx.save().unwrap();
        // Keep the DATA index as saved now.
        let data = dir.path().join("data-none-v0");
        for e in std::fs::read_dir(&data).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), old_copy.path().join(e.file_name())).unwrap();
        }
        // Then change entries (same count of DATA units: only the bodies
        // change) and save, which trims the journal.
        let changed: Vec<Value> = entries[..500]
            .iter()
            .zip(&entries[1000..1500])
            .map(|(old, new)| {
                let mut e = old.clone();
                e["units"][2] = new["units"][2].clone();
                e
            })
            .collect();
        add(&idx, &changed);
        idx.close().unwrap();
    }
    // Put the old DATA index back (as a backup restore would).
    let data = dir.path().join("data-none-v0");
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::create_dir(&data).unwrap();
    for e in std::fs::read_dir(old_copy.path()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), data.join(e.file_name())).unwrap();
    }
    let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
    let repairs = idx.info().unwrap().repairs;
    assert!(
        repairs
            .iter()
            .any(|r| r.contains("DATA-NONE-V0") && r.contains("journal position")),
        "{repairs:?}"
    );
    // The changed DATA units are what the index finds.
    let id = entries[3]["iscc_id"].as_str().unwrap();
    let stored = idx.get_one(id).unwrap();
    assert!(found(&idx, &stored));
}

#[test]
fn a_read_only_open_catches_up_in_memory_and_takes_no_lock() {
    let dir = tempfile::tempdir().unwrap();
    let entries = common::generated_entries(1500);
    {
        let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
        add(&idx, &entries[..1000]);
        idx.save().unwrap();
        add(&idx, &entries[1000..]);
        idx.remove(&[entries[0]["iscc_id"].as_str().unwrap()])
            .unwrap();
        // Dropped without close: the last adds live only in the journal,
        // as after a crash.
    }
    let ro = IsccIndex::restore(dir.path(), true).unwrap();
    let info = ro.info().unwrap();
    assert!(info.read_only);
    assert_eq!(
        info.journal_pending, 501,
        "the journal is left for the writer"
    );
    assert_eq!(rows(&ro, "CONTENT-TEXT-V0"), (1499, 1499));
    assert!(found(&ro, &entries[1499]), "journal-only entry found");
    assert!(!found(&ro, &entries[0]), "removed entry not found");
    assert_eq!(
        ro.add(&[&entries[0]]).unwrap_err().kind(),
        ErrorKind::ReadOnly
    );
    ro.close().unwrap();
    drop(ro);
    // The reader held no lock and wrote nothing: the writer replays.
    let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
    assert_eq!(idx.info().unwrap().journal_pending, 501);
    assert_eq!(rows(&idx, "CONTENT-TEXT-V0"), (1499, 1499));
    idx.save().unwrap();
    assert_eq!(idx.info().unwrap().journal_pending, 0);
}

#[test]
fn a_format_1_index_is_upgraded_and_read_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let entries = common::generated_entries(800);
    {
        let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
        add(&idx, &entries);
        idx.close().unwrap();
    }
    // Make it look as format 1 wrote it: no counts, no unit_dirs.
    {
        let store = Store::open(dir.path().join("primary.lmdb"), StoreOptions::default()).unwrap();
        let types = vec!["CONTENT-TEXT-V0", "DATA-NONE-V0", "META-NONE-V0"];
        store
            .write(|w| {
                w.set_counts(&Default::default())?;
                w.delete_meta(MetaKey::<Value>::new("unit_dirs"))?;
                w.put_meta("unit_types", &types)?;
                w.put_meta("format_version", &1u32)
            })
            .unwrap();
    }
    let ro = IsccIndex::restore(dir.path(), true).unwrap();
    assert_eq!(rows(&ro, "DATA-NONE-V0"), (800, 800));
    assert_eq!(ro.info().unwrap().repairs, Vec::<String>::new());
    assert!(found(&ro, &entries[5]));
    ro.close().unwrap();
    drop(ro);
    let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
    assert_eq!(rows(&idx, "META-NONE-V0"), (800, 800));
    assert_eq!(idx.info().unwrap().format_version, ENGINE_FORMAT_VERSION);
    assert!(found(&idx, &entries[700]));
}

#[test]
fn parameters_the_unit_index_refuses_are_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let options = IndexOptions {
        params: IndexParams {
            connectivity: 5000,
            ..IndexParams::default()
        },
        ..fast()
    };
    let err = IsccIndex::open(Some(dir.path()), options).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("connectivity 5000"), "{err}");
    // Nothing was created.
    assert!(!Path::new(&dir.path().join("content-text-v0")).exists());
}

#[test]
fn one_unit_type_is_rebuilt_alone() {
    let dir = tempfile::tempdir().unwrap();
    let entries = common::generated_entries(1200);
    let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
    add(&idx, &entries);
    idx.save().unwrap();
    let before = std::fs::read_dir(dir.path().join("meta-none-v0")).is_ok();
    idx.rebuild_unit_types(&["CONTENT-TEXT-V0"]).unwrap();
    assert!(
        before && dir.path().join("meta-none-v0").is_dir(),
        "other types untouched"
    );
    assert!(
        !dir.path().join("content-text-v0").exists(),
        "the old directory is gone"
    );
    assert_eq!(rows(&idx, "CONTENT-TEXT-V0"), (1200, 1200));
    assert!(found(&idx, &entries[600]));
    for (bad, kind) in [
        ("INSTANCE-NONE-V0", ErrorKind::InvalidArgument),
        ("NOPE", ErrorKind::InvalidIscc),
    ] {
        assert_eq!(
            idx.rebuild_unit_types(&[bad]).unwrap_err().kind(),
            kind,
            "{bad}"
        );
    }
    idx.close().unwrap();
    drop(idx);
    let again = IsccIndex::open(Some(dir.path()), fast()).unwrap();
    assert!(again.info().unwrap().repairs.is_empty());
    assert_eq!(rows(&again, "CONTENT-TEXT-V0"), (1200, 1200));
}
