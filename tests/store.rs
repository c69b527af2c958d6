//! `IsccStore`, the primary store of an index directory on its own: what it
//! writes is what an index add or remove writes (journalled), so an
//! `IsccIndex` opened afterwards searches it; locking against an index
//! writer; realms; bad input writes nothing.

mod common;

use iscc_vdb::codec::IsccId;
use iscc_vdb::engine::{ErrorKind, IndexOptions, IsccIndex, IsccStore, Query, SearchParams};
use serde_json::{json, Value};

use common::corpus;

fn fast() -> IndexOptions {
    IndexOptions {
        durable: false,
        ..IndexOptions::default()
    }
}

fn key_of(record: &Value) -> u64 {
    IsccId::parse(record["iscc_id"].as_str().unwrap())
        .unwrap()
        .value()
}

/// Entries put through the store are found by an index opened afterwards
/// (its unit indexes are built from the journal), and deletions through the
/// store take them out of every derived index.
#[test]
fn an_index_opened_after_store_writes_searches_them() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Value> = corpus().into_iter().take(300).collect();
    let store = IsccStore::open(dir.path(), fast()).unwrap();
    for r in &records {
        let id = store.put(key_of(r), r).unwrap();
        assert_eq!(id.to_string(), r["iscc_id"].as_str().unwrap());
    }
    assert_eq!(store.len().unwrap(), 300);
    assert_eq!(store.info().unwrap().journal_pending, 300);
    // Keys iterate in ascending (time) order, across pages.
    let mut keys = Vec::new();
    let mut from = 0;
    loop {
        let page = store.entries(from, 64).unwrap();
        let Some((last, _)) = page.last() else { break };
        from = last + 1;
        keys.extend(page.iter().map(|(k, _)| *k));
    }
    let mut want: Vec<u64> = records.iter().map(key_of).collect();
    want.sort_unstable();
    assert_eq!(keys, want);
    let gone = key_of(&records[7]);
    assert!(store.delete(gone).unwrap());
    assert!(!store.delete(gone).unwrap(), "deleted twice");
    assert_eq!(store.get(gone).unwrap(), None);
    store.close();
    drop(store);

    let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
    assert_eq!(idx.size().unwrap(), 299);
    let info = idx.info().unwrap();
    for (t, u) in &info.units {
        assert_eq!(
            u.len as u64, u.entries,
            "{t}: unit index rows vs store counts"
        );
    }
    for r in &records {
        let id = r["iscc_id"].as_str().unwrap();
        let query = match r["units"].as_array() {
            Some(units) => Query::units(units.iter().map(|u| u.as_str().unwrap().to_string())),
            None => Query::code(r["iscc_code"].as_str().unwrap()),
        };
        let hits = idx.search(&query, &SearchParams::default()).unwrap();
        if key_of(r) == gone {
            assert!(!hits.keys().contains(&id), "deleted {id} still found");
            assert!(!hits.instance_matches.contains(&id.to_string()));
            assert_eq!(idx.get(id).unwrap(), None);
        } else {
            assert!(hits.keys().contains(&id), "{id} not found by its own code");
        }
    }
    idx.close().unwrap();
    drop(idx);
    // The index's save trimmed the journal the store wrote.
    let store = IsccStore::open(dir.path(), fast()).unwrap();
    assert_eq!(store.info().unwrap().journal_pending, 0);
}

#[test]
fn store_and_index_writers_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let store = IsccStore::open(dir.path(), fast()).unwrap();
    let e = IsccIndex::open(Some(dir.path()), fast()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Locked, "{e}");
    let e = IsccStore::open(dir.path(), fast()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Locked, "{e}");
    store.close();
    drop(store);
    let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
    let e = IsccStore::open(dir.path(), fast()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Locked, "{e}");
    idx.close().unwrap();
}

#[test]
fn bad_input_writes_nothing_and_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let store = IsccStore::open(dir.path(), fast()).unwrap();
    let r = &corpus()[0];
    let key = key_of(r);
    let cases: Vec<(Value, ErrorKind, &str)> = vec![
        (
            json!({"name": "x"}),
            ErrorKind::InvalidArgument,
            "neither iscc_code nor units",
        ),
        (
            json!({"units": []}),
            ErrorKind::InvalidArgument,
            "empty units",
        ),
        (
            json!({"iscc_code": "ISCC:XYZ"}),
            ErrorKind::InvalidIscc,
            "entry.iscc_code",
        ),
        (
            json!([1, 2]),
            ErrorKind::InvalidArgument,
            "must be a JSON object",
        ),
        (
            json!({"iscc_id": corpus()[1]["iscc_id"], "iscc_code": r["iscc_code"]}),
            ErrorKind::InvalidArgument,
            "is not the key",
        ),
    ];
    for (entry, kind, says) in cases {
        let e = store.put(key, &entry).unwrap_err();
        assert_eq!(e.kind(), kind, "{entry}: {e}");
        assert!(e.to_string().contains(says), "{entry}: {e}");
    }
    assert_eq!(store.len().unwrap(), 0);
    assert_eq!(store.info().unwrap().journal_pending, 0);
    // The LMDB directory itself is no index directory.
    store.put(key, r).unwrap();
    store.close();
    drop(store);
    let e = IsccStore::open(&dir.path().join("primary.lmdb"), fast()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("open its directory"), "{e}");
}

#[test]
fn realm_reads_keys_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let opts = |realm| IndexOptions {
        realm: Some(realm),
        ..fast()
    };
    let store = IsccStore::open(dir.path(), opts(1)).unwrap();
    let r = &corpus()[0];
    let key = key_of(r);
    let code = r["iscc_code"].as_str().unwrap();
    let id = store.put(key, &json!({"iscc_code": code})).unwrap();
    assert_eq!(id.realm().id(), 1);
    assert_eq!(store.get(key).unwrap().unwrap()["iscc_id"], id.to_string());
    // A realm-0 ISCC-ID is refused in a realm-1 store.
    let e = store
        .put(key, &json!({"iscc_id": r["iscc_id"], "iscc_code": code}))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongRealm, "{e}");
    store.put_metadata("owner", &json!({"name": "me"})).unwrap();
    store.close();
    drop(store);
    let e = IsccStore::open(dir.path(), opts(0)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
    assert_eq!(idx.info().unwrap().realm, Some(1));
    assert_eq!(
        idx.get_metadata("owner").unwrap(),
        Some(json!({"name": "me"}))
    );
    let hits = idx
        .search(&Query::code(code), &SearchParams::default())
        .unwrap();
    assert_eq!(hits.keys(), vec![id.to_string().as_str()]);
    idx.close().unwrap();
}

#[test]
fn read_only_store_reads_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
    let r = &corpus()[3];
    idx.add(&[r]).unwrap();
    // LMDB opens an environment once per process: the writer goes first.
    idx.close().unwrap();
    drop(idx);
    let ro = IsccStore::open(
        dir.path(),
        IndexOptions {
            read_only: true,
            ..fast()
        },
    )
    .unwrap();
    let got = ro.get(key_of(r)).unwrap().unwrap();
    assert_eq!(got["iscc_id"], r["iscc_id"]);
    let e = ro.put(key_of(r), r).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ReadOnly);
    let e = ro.delete(key_of(r)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ReadOnly);
    ro.close();
    assert_eq!(ro.len().unwrap_err().kind(), ErrorKind::Closed);
}
