//! Tests of `file.rs` (saving, loading, viewing unit indexes), a child
//! module of it kept in its own file.

use super::*;

/// Bodies of every stored length (64–256 bits), deterministic.
fn bodies(n: usize) -> Vec<(u64, Vec<u8>)> {
    (0..n as u64)
        .map(|k| {
            // Every seventh row byte-granular (format 2).
            let len = if k % 7 == 3 {
                1 + (k as usize % 31)
            } else {
                8 * (1 + (k as usize % 4))
            };
            let body = (0..len)
                .map(|i| (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (i % 8 * 8)) as u8 ^ i as u8)
                .collect();
            (k, body)
        })
        .collect()
}

fn filled(graph: bool) -> UnitIndex {
    let options = UnitIndexOptions {
        exact_threshold: if graph { 0 } else { 1_000 }.into(),
        ..UnitIndexOptions::default()
    };
    let index = UnitIndex::new(options).unwrap();
    for (k, b) in bodies(200) {
        assert!(index.add(k, &b).unwrap());
    }
    index
}

#[test]
fn save_then_load_and_view_give_back_every_row_and_the_same_answers() {
    for graph in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unit.ivdb");
        let index = filled(graph);
        index.save(&path).unwrap();
        assert_eq!(index.dirty(), 0);
        for view in [false, true] {
            let back = UnitIndex::restore(&path, view).unwrap();
            assert_eq!(back.options(), index.options());
            assert_eq!(back.graph_deferred(), !graph);
            assert_eq!(back.is_read_only(), view);
            assert_eq!(back.rows(0, 1_000), index.rows(0, 1_000));
            assert_eq!(back.rows(0, 1_000).len(), 200);
            for (k, b) in bodies(200).iter().step_by(17) {
                assert_eq!(back.get(*k).as_deref(), Some(&b[..]));
                assert_eq!(back.search(b, 5).unwrap(), index.search(b, 5).unwrap());
            }
        }
        // No temporary file remains after a save.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["unit.ivdb", "unit.ivdb.hnsw"]);
    }
}

#[test]
fn files_of_whole_word_rows_keep_format_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unit.ivdb");
    let index = UnitIndex::new(UnitIndexOptions::default()).unwrap();
    for (k, b) in bodies(100).into_iter().filter(|(_, b)| b.len() % 8 == 0) {
        index.add(k, &b).unwrap();
    }
    index.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes[8..12], FORMAT_WHOLE_WORDS.to_le_bytes());
    let back = UnitIndex::restore(&path, true).unwrap();
    assert_eq!(back.rows(0, 1_000), index.rows(0, 1_000));
}

#[test]
fn damaged_files_are_refused_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unit.ivdb");
    filled(true).save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let refused = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        UnitIndex::restore(&path, false).unwrap_err()
    };
    let mut magic = good.clone();
    magic[0] ^= 1;
    assert!(matches!(refused(&magic), IndexError::Corrupt { why, .. } if why.contains("magic")));
    let mut version = good.clone();
    version[8] = 9;
    assert!(matches!(
        refused(&version),
        IndexError::IncompatibleFormat {
            found: 9,
            expected: FORMAT_VERSION,
            ..
        }
    ));
    let err = refused(&good[..good.len() - 8]);
    assert!(
        matches!(&err, IndexError::Corrupt { why, .. } if why.contains("truncated")),
        "{err}"
    );
    // Byte-granular rows make a format 2 file; one labelled 1 is refused,
    // and so is a row that does not read back as written.
    assert_eq!(good[8..12], FORMAT_COMPACT.to_le_bytes());
    let mut relabelled = good.clone();
    relabelled[8..12].copy_from_slice(&FORMAT_WHOLE_WORDS.to_le_bytes());
    let err = refused(&relabelled);
    assert!(
        matches!(&err, IndexError::Corrupt { why, .. } if why.contains("disagree")),
        "{err}"
    );
    let mut row = good.clone();
    let at = row.len() - ODD_ROW_WORDS * 8 + 8;
    row[at] = 8;
    let err = refused(&row);
    assert!(
        matches!(&err, IndexError::Corrupt { why, .. } if why.contains("length byte 8")),
        "{err}"
    );
    std::fs::write(&path, &good).unwrap();
    let graph = graph_path(&path);
    let mut g = std::fs::read(&graph).unwrap();
    let last = g.len() - 1;
    g[last] ^= 0xff;
    std::fs::write(&graph, &g).unwrap();
    let err = UnitIndex::restore(&path, false).unwrap_err();
    assert_eq!(err.kind(), crate::kind::ErrorKind::Corrupt, "{err}");
}
