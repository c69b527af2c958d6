//! Checks shared by the kill tests of unit indexes: what a killed child
//! saved opens as one completed save, no older than it acknowledged.

use std::path::Path;

use iscc_vdb::index::UnitIndex;

/// Rows a child saves: `bulk` first, then steps of `step`, up to `max`.
pub struct Saves {
    pub bulk: usize,
    pub step: usize,
    pub max: usize,
}

/// Open the unit index a killed child saved at `file` (into RAM), having
/// acknowledged the save of `acked` rows, and check that it holds exactly
/// rows `0..len` of `codes` (key `k` = code `k`) for a completed save at
/// or after the acknowledged one. `None` when no save was acknowledged and
/// no file was left; panics, naming `label`, on anything else.
pub fn open_completed(
    file: &Path,
    acked: Option<usize>,
    codes: &[Vec<u8>],
    saves: &Saves,
    label: &str,
) -> Option<UnitIndex> {
    let index = match UnitIndex::restore(file, false) {
        Ok(index) => index,
        Err(e) => {
            assert!(
                acked.is_none() && !file.exists(),
                "{label}: the saved file does not open ({e}) though {acked:?} rows were saved"
            );
            return None;
        }
    };
    let rows = index.len();
    let floor = acked.unwrap_or(saves.bulk);
    assert!(
        rows >= floor && rows <= saves.max && (rows - saves.bulk).is_multiple_of(saves.step),
        "{label}: {rows} rows is no completed save at or after the acknowledged {acked:?}"
    );
    for key in 0..rows as u64 {
        assert_eq!(
            index.get(key).as_deref(),
            Some(&codes[key as usize][..]),
            "{label}: row {key} is missing or wrong"
        );
    }
    assert!(
        !index.contains(rows as u64),
        "{label}: an unsaved row is present"
    );
    Some(index)
}
