//! Granular features in the store: every chunk's simprint is indexed in the
//! entry's own transaction — exact collisions and document frequencies,
//! one bit length per simprint type — and follows updates, identical
//! re-adds, removals, rebuilds, reopens and the upgrade from format 2.

use std::collections::BTreeMap;

use data_encoding::BASE64URL_NOPAD;
use iscc_vdb::engine::{
    ChunkRef, ErrorKind, IndexOptions, IsccIndex, SimprintCollisions, SimprintTypeInfo,
};
use iscc_vdb::testing::store::{Store, StoreOptions};
use serde_json::{json, Value};

fn b64(bytes: &[u8]) -> String {
    BASE64URL_NOPAD.encode(bytes)
}

/// A 64-bit simprint from a number.
fn sp(n: u64) -> String {
    b64(&n.to_be_bytes())
}

fn id(n: u64) -> String {
    // ISCC-IDs of realm 0 with increasing timestamps.
    iscc_vdb::codec::IsccId::from_parts(1_700_000_000_000_000 + n, 0, iscc_vdb::codec::Realm::R0)
        .unwrap()
        .to_string()
}

const CODE: &str = "ISCC:KACYPXW445FTYNJ3CYSXHAFJMA2HUWULUNRFE3BLHRSCXYH2M5AEGQY";

/// An entry with a SEMANTIC-TEXT-V0 feature set of 64-bit simprints
/// (the ISCC tools' form).
fn entry(n: u64, simprints: &[u64]) -> Value {
    json!({
        "iscc_id": id(n),
        "iscc_code": CODE,
        "features": [{
            "maintype": "semantic", "subtype": "text", "version": 0,
            "simprints": simprints.iter().map(|s| sp(*s)).collect::<Vec<_>>(),
            "offsets": (0..simprints.len() as u64).map(|i| i * 100).collect::<Vec<_>>(),
            "sizes": simprints.iter().map(|_| 100).collect::<Vec<_>>(),
        }]
    })
}

fn add(idx: &IsccIndex, entries: &[Value]) -> Result<Vec<String>, iscc_vdb::engine::EngineError> {
    let refs: Vec<&Value> = entries.iter().collect();
    idx.add(&refs)
}

fn chunks(idx: &IsccIndex, s: u64) -> SimprintCollisions {
    idx.simprint_collisions("SEMANTIC-TEXT-V0", &sp(s)).unwrap()
}

fn refs(list: &[(u64, u32)]) -> Vec<ChunkRef> {
    list.iter()
        .map(|(n, chunk)| ChunkRef {
            iscc_id: id(*n),
            chunk: *chunk,
        })
        .collect()
}

fn types(list: &[(&str, u64, u64, u64)]) -> BTreeMap<String, SimprintTypeInfo> {
    list.iter()
        .map(|(k, bits, entries, chunks)| {
            // Every chunk is a row of the type's similarity index (one
            // shard: the active one).
            let info = SimprintTypeInfo {
                bits: *bits,
                entries: *entries,
                chunks: *chunks,
                rows: *chunks,
                shards: 1,
            };
            (k.to_string(), info)
        })
        .collect()
}

fn fast() -> IndexOptions {
    IndexOptions {
        durable: false,
        ..IndexOptions::default()
    }
}

#[test]
fn shared_chunks_are_exact_collisions_with_their_document_frequency() {
    let idx = IsccIndex::open(None, fast()).unwrap();
    add(
        &idx,
        &[
            entry(1, &[10, 11, 12, 10]),
            entry(2, &[20, 11]),
            // iscc-search's form, its spelling of the type.
            json!({"iscc_id": id(3), "iscc_code": CODE, "simprints": {"SEMANTIC_TEXT_V0": [
                {"simprint": sp(11), "offset": 0, "size": 50},
                {"simprint": sp(30), "offset": 50, "size": 50}]}}),
            json!({"iscc_id": id(4), "iscc_code": CODE}),
        ],
    )
    .unwrap();
    // 11 is shared by three entries; 10 occurs twice in entry 1 (one
    // document); 30 only in entry 3.
    let shared = chunks(&idx, 11);
    assert_eq!(shared.chunks, refs(&[(1, 1), (2, 1), (3, 0)]));
    assert_eq!(shared.freq, 3);
    let twice = chunks(&idx, 10);
    assert_eq!(twice.chunks, refs(&[(1, 0), (1, 3)]));
    assert_eq!(twice.freq, 1);
    assert_eq!(chunks(&idx, 30).chunks, refs(&[(3, 1)]));
    assert_eq!(chunks(&idx, 99), SimprintCollisions::default());
    // Either spelling, any case, finds the same.
    assert_eq!(
        idx.simprint_collisions("semantic_text_v0", &sp(11))
            .unwrap(),
        shared
    );
    assert_eq!(
        idx.simprint_types().unwrap(),
        types(&[("SEMANTIC-TEXT-V0", 64, 3, 8)])
    );
    assert_eq!(idx.info().unwrap().simprints, idx.simprint_types().unwrap());
    // Bad lookups are errors that say what is wrong.
    let e = idx.simprint_collisions("SEMANTIC", &sp(1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = idx
        .simprint_collisions("SEMANTIC-TEXT-V0", "AAAA")
        .unwrap_err();
    assert!(e.to_string().contains("24 bits"), "{e}");
}

#[test]
fn updates_identical_re_adds_and_removals_keep_the_rows_exact() {
    let idx = IsccIndex::open(None, fast()).unwrap();
    add(&idx, &[entry(1, &[1, 2, 3]), entry(2, &[3, 4])]).unwrap();
    // An identical re-add changes nothing.
    add(&idx, &[entry(1, &[1, 2, 3])]).unwrap();
    assert_eq!(chunks(&idx, 3).chunks, refs(&[(1, 2), (2, 0)]));
    assert_eq!(
        idx.simprint_types().unwrap(),
        types(&[("SEMANTIC-TEXT-V0", 64, 2, 5)])
    );
    // An update replaces the old simprints.
    add(&idx, &[entry(1, &[5, 3])]).unwrap();
    assert_eq!(chunks(&idx, 1).chunks, vec![]);
    assert_eq!(chunks(&idx, 3).chunks, refs(&[(1, 1), (2, 0)]));
    assert_eq!(chunks(&idx, 5).chunks, refs(&[(1, 0)]));
    assert_eq!(
        idx.simprint_types().unwrap(),
        types(&[("SEMANTIC-TEXT-V0", 64, 2, 4)])
    );
    // An update keeping a chunk in place (its row deleted and put again in
    // one transaction: the row changes apply in order) keeps it.
    add(&idx, &[entry(1, &[5, 6, 3]), entry(3, &[6, 5])]).unwrap();
    assert_eq!(chunks(&idx, 5).chunks, refs(&[(1, 0), (3, 1)]));
    assert_eq!(chunks(&idx, 6).chunks, refs(&[(1, 1), (3, 0)]));
    assert_eq!(chunks(&idx, 3).chunks, refs(&[(1, 2), (2, 0)]));
    add(&idx, &[entry(1, &[5, 3]), entry(3, &[])]).unwrap();
    assert_eq!(chunks(&idx, 5).chunks, refs(&[(1, 0)]));
    assert_eq!(chunks(&idx, 6).chunks, vec![]);
    assert_eq!(chunks(&idx, 3).chunks, refs(&[(1, 1), (2, 0)]));
    // An update without features drops them.
    add(
        &idx,
        &[json!({"iscc_id": id(2), "iscc_code": CODE, "name": "no features"})],
    )
    .unwrap();
    assert_eq!(chunks(&idx, 3).chunks, refs(&[(1, 1)]));
    assert_eq!(chunks(&idx, 4).chunks, vec![]);
    // Removing the last entry with the type removes the type.
    idx.remove(&[id(1).as_str()]).unwrap();
    assert_eq!(chunks(&idx, 5).chunks, vec![]);
    assert_eq!(idx.simprint_types().unwrap(), BTreeMap::new());
    // The type's bit length is free again.
    let wide = json!({"iscc_id": id(7), "iscc_code": CODE, "features": [{
        "maintype": "semantic", "subtype": "text", "version": 0,
        "simprints": [b64(&[7u8; 16])]}]});
    add(&idx, &[wide]).unwrap();
    assert_eq!(
        idx.simprint_types().unwrap(),
        types(&[("SEMANTIC-TEXT-V0", 128, 1, 1)])
    );
}

#[test]
fn one_bit_length_per_type_and_a_mismatch_writes_nothing() {
    let idx = IsccIndex::open(None, fast()).unwrap();
    add(&idx, &[entry(1, &[1, 2])]).unwrap();
    let wide = |n: u64| {
        json!({"iscc_id": id(n), "iscc_code": CODE, "features": [{
            "maintype": "semantic", "subtype": "text", "version": 0,
            "simprints": [b64(&[n as u8; 16])]}]})
    };
    // Against the index.
    let e = add(&idx, &[entry(2, &[3]), wide(3)]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let msg = e.to_string();
    assert!(
        msg.contains("entries[1]") && msg.contains("128 bits") && msg.contains("64-bit"),
        "{msg}"
    );
    assert_eq!(idx.size().unwrap(), 1, "nothing of the batch was written");
    assert_eq!(chunks(&idx, 3).chunks, vec![]);
    // Within one batch, for a new type.
    let image = |n: u64, bytes: usize| {
        json!({"iscc_id": id(n), "iscc_code": CODE, "features": [{
            "maintype": "content", "subtype": "image", "version": 0,
            "simprints": [b64(&vec![1u8; bytes])]}]})
    };
    let e = add(&idx, &[image(4, 8), image(5, 24)]).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("entries[1]") && msg.contains("entries[0] has"),
        "{msg}"
    );
    assert_eq!(idx.size().unwrap(), 1);
    // Other types keep their own lengths.
    add(&idx, &[image(4, 24)]).unwrap();
    assert_eq!(
        idx.simprint_types().unwrap(),
        types(&[
            ("CONTENT-IMAGE-V0", 192, 1, 1),
            ("SEMANTIC-TEXT-V0", 64, 1, 2)
        ])
    );
}

#[test]
fn rebuild_reopen_and_the_format_2_upgrade_keep_every_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<Value> = (1..=50u64)
        .map(|n| entry(n, &[n, n % 7 + 1000, n % 3 + 2000]))
        .collect();
    let want = |idx: &IsccIndex| {
        assert_eq!(
            idx.simprint_types().unwrap(),
            types(&[("SEMANTIC-TEXT-V0", 64, 50, 150)])
        );
        assert_eq!(chunks(idx, 2000).freq, 16);
        assert_eq!(chunks(idx, 1003).freq, 7);
        assert_eq!(chunks(idx, 17).chunks, refs(&[(17, 0)]));
    };
    {
        let idx = IsccIndex::open(Some(dir.path()), IndexOptions::default()).unwrap();
        add(&idx, &entries).unwrap();
        want(&idx);
        idx.rebuild().unwrap();
        want(&idx);
        idx.close().unwrap();
    }
    {
        let idx = IsccIndex::open(Some(dir.path()), IndexOptions::default()).unwrap();
        want(&idx);
        idx.close().unwrap();
    }
    // Make it look as format 2 wrote it: no simprint rows.
    {
        let store = Store::open(dir.path().join("primary.lmdb"), StoreOptions::default()).unwrap();
        store
            .write(|w| {
                w.clear_simprints()?;
                w.put_meta("format_version", &2u32)
            })
            .unwrap();
    }
    {
        let ro = IsccIndex::restore(dir.path(), true).unwrap();
        assert_eq!(ro.simprint_types().unwrap(), BTreeMap::new());
        ro.close().unwrap();
    }
    let idx = IsccIndex::open(Some(dir.path()), IndexOptions::default()).unwrap();
    want(&idx);
    assert_eq!(
        idx.info().unwrap().format_version,
        iscc_vdb::engine::ENGINE_FORMAT_VERSION
    );
}
