//! Tests of the primary store.

use super::*;

fn open(dir: &Path) -> Store {
    Store::open(
        dir,
        StoreOptions {
            durable: false,
            map_size: 1 << 20,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn entries_meta_and_journal() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.write(|w| {
        w.put_entry(5, b"{\"a\":1}")?;
        w.put_entry(u64::MAX, b"{}")?;
        w.put_entry(1 << 40, b"{}")?;
        w.put_meta("realm_id", &1)?;
        w.journal(5)?;
        w.journal(7)
    })
    .unwrap();
    assert_eq!(s.get_entry(5).unwrap().unwrap(), b"{\"a\":1}");
    assert_eq!(s.get_meta::<u8>("realm_id").unwrap(), Some(1));
    let ids: Vec<u64> = s
        .entries_from(0, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(ids, vec![5, 1 << 40, u64::MAX], "numeric order");
    assert_eq!(s.last_id().unwrap(), Some(u64::MAX));
    assert_eq!(s.journal().unwrap(), vec![(1, 5), (2, 7)]);
    s.trim_journal(1).unwrap();
    assert_eq!(s.journal().unwrap(), vec![(2, 7)]);
    assert_eq!(
        (s.journal_last().unwrap(), s.journal_len().unwrap()),
        (2, 1)
    );
    assert_eq!(s.len().unwrap(), 3);
}

#[test]
fn instance_prefix_matches_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let long: Vec<u8> = (0..32).collect();
    s.write(|w| {
        w.add_instance(&long, 1)?;
        w.add_instance(&long[..8], 2)?;
        w.add_instance(&long[..16], 3)?;
        w.add_instance(&[9u8; 8], 4)?;
        w.add_instance(&long, 5)
    })
    .unwrap();
    let ids = |q: &[u8]| {
        let mut v: Vec<u64> = s
            .instance_matches(q)
            .unwrap()
            .into_iter()
            .map(|m| m.0)
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&long[..8]), vec![1, 2, 3, 5]);
    assert_eq!(ids(&long[..24]), vec![1, 2, 3, 5]);
    assert_eq!(ids(&long), vec![1, 2, 3, 5]);
    let mut other = long.clone();
    other[12] ^= 1;
    assert_eq!(ids(&other), vec![2], "only the 64-bit prefix is shared");
    s.write(|w| w.remove_instance(&long, 1)).unwrap();
    assert_eq!(ids(&long), vec![2, 3, 5]);
}

#[test]
fn the_map_grows_when_full() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let before = s.map_size();
    let blob = vec![7u8; 100_000];
    for i in 0..100u64 {
        s.write(|w| w.put_entry(i, &blob)).unwrap();
    }
    assert!(s.map_size() > before);
    assert_eq!(s.len().unwrap(), 100);
    // One transaction larger than the whole map also succeeds.
    s.write(|w| {
        for i in 100..200u64 {
            w.put_entry(i, &blob)?;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(s.len().unwrap(), 200);
}

#[test]
fn read_only_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let ro = Store::open(
        dir.path(),
        StoreOptions {
            read_only: true,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    assert!(matches!(ro.put_meta("x", &1), Err(StoreError::ReadOnly)));
    assert!(Store::open(
        dir.path().join("missing"),
        StoreOptions {
            read_only: true,
            ..StoreOptions::default()
        }
    )
    .is_err());
}

#[test]
fn journal_sequence_numbers_never_repeat_after_a_full_trim() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    assert_eq!(s.journal_last().unwrap(), 0);
    let (a, b) = s.write(|w| Ok((w.journal(10)?, w.journal(11)?))).unwrap();
    assert_eq!((a, b), (1, 2));
    assert_eq!(s.trim_journal(2).unwrap(), 2);
    assert_eq!(s.journal_len().unwrap(), 0);
    assert_eq!(s.read(|r| r.journal_floor()).unwrap(), 2);
    assert_eq!(s.journal_last().unwrap(), 2, "the floor is the last seq");
    let c = s.write(|w| w.journal(12)).unwrap();
    assert_eq!(c, 3, "numbering continues above the floor");
    // Trimming below the floor never lowers it.
    s.trim_journal(1).unwrap();
    assert_eq!(s.read(|r| r.journal_floor()).unwrap(), 2);
}

#[test]
fn counts_follow_their_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.write(|w| {
        w.add_count("CONTENT-TEXT-V0", 3)?;
        w.add_count("DATA-NONE-V0", 1)
    })
    .unwrap();
    // An aborted transaction leaves the counts alone.
    let failed: Result<(), StoreError> = s.write(|w| {
        w.add_count("CONTENT-TEXT-V0", 5)?;
        Err(StoreError::ReadOnly)
    });
    assert!(failed.is_err());
    s.write(|w| w.add_count("DATA-NONE-V0", -1)).unwrap();
    let counts = s.read(|r| r.counts()).unwrap().unwrap();
    assert_eq!(counts.len(), 1, "a count of zero is dropped: {counts:?}");
    assert_eq!(counts["CONTENT-TEXT-V0"], 3);
    let below = s.write(|w| w.add_count("DATA-NONE-V0", -1));
    assert!(matches!(below, Err(StoreError::Corrupt { .. })));
    let mut all = std::collections::BTreeMap::new();
    all.insert("META-NONE-V0".to_string(), 7u64);
    s.write(|w| w.set_counts(&all)).unwrap();
    assert_eq!(s.read(|r| r.counts()).unwrap().unwrap(), all);
}

#[test]
fn store_errors_have_kinds() {
    use crate::kind::ErrorKind;
    let full = StoreError::Lmdb {
        path: PathBuf::from("/x"),
        source: heed::Error::Mdb(heed::MdbError::MapFull),
    };
    assert_eq!(full.kind(), ErrorKind::DiskFull);
    assert!(full.to_string().starts_with("disk full"), "{full}");
    let nospace = StoreError::Lmdb {
        path: PathBuf::from("/x"),
        source: heed::Error::Io(std::io::Error::from_raw_os_error(libc::ENOSPC)),
    };
    assert_eq!(nospace.kind(), ErrorKind::DiskFull);
    assert_eq!(StoreError::ReadOnly.kind(), ErrorKind::ReadOnly);
    let corrupt = StoreError::Corrupt {
        path: PathBuf::from("/x"),
        why: "bad".into(),
    };
    assert_eq!(corrupt.kind(), ErrorKind::Corrupt);
}
