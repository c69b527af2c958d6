//! Upkeep of an open index over the C ABI: save, rebuild (all unit types
//! or some), compact, refresh a read-only handle, and copy into memory.
//! Each is the engine's operation of the same name; see `IsccIndex`.

use std::ffi::c_char;

use super::boundary::{guard, ivdb_error, opt_out_arg, out_arg};
use super::index::{index, ivdb_index, strings};
use super::status::ivdb_status;

/// Persist the unit indexes (entries are durable on every add already).
///
/// # Safety
/// `index` is a live handle; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_save(
    index: *const ivdb_index,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || Ok(self::index(index)?.save()?))
}

/// Recreate every derived index from the stored entries, crash-atomically,
/// then save.
///
/// # Safety
/// `index` is a live handle; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_rebuild(
    index: *const ivdb_index,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || Ok(self::index(index)?.rebuild()?))
}

/// Rebuild the unit indexes of the `len` named unit types only (e.g.
/// `"CONTENT-TEXT-V0"`), crash-atomically, then save. A name that is no
/// unit type gives `IVDB_INVALID_ISCC` naming it, and nothing is rebuilt.
///
/// # Safety
/// `index` is a live handle; `unit_types` holds `len` NUL-terminated
/// strings (or is NULL when `len` is 0); `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_rebuild_unit_types(
    index: *const ivdb_index,
    unit_types: *const *const c_char,
    len: usize,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let idx = self::index(index)?;
        let types = strings(unit_types, len, "unit_types")?;
        Ok(idx.rebuild_unit_types(&types)?)
    })
}

/// Rewrite every unit index without its dead rows (left by updates and
/// removals), then save. `*out_dropped` (may be NULL) receives the number
/// of rows dropped.
///
/// # Safety
/// `index` is a live handle; `out_dropped` NULL or writable; `err` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_compact(
    index: *const ivdb_index,
    out_dropped: *mut usize,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let dropped = self::index(index)?.compact()?;
        if let Some(out) = opt_out_arg(out_dropped) {
            out.write(dropped);
        }
        Ok(())
    })
}

/// Bring a read-only handle up to date with what the writer committed and
/// saved since it was opened (a writable handle is always current).
/// `*out_changed` (may be NULL) receives whether anything changed.
///
/// # Safety
/// `index` is a live handle; `out_changed` NULL or writable; `err` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_refresh(
    index: *const ivdb_index,
    out_changed: *mut bool,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let changed = self::index(index)?.refresh()?;
        if let Some(out) = opt_out_arg(out_changed) {
            out.write(changed);
        }
        Ok(())
    })
}

/// A new in-memory index (removed on close) with the same parameters, realm
/// and entries. `*out` receives its handle; release it with `ivdb_close`.
///
/// # Safety
/// `index` is a live handle; `out` writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_copy(
    index: *const ivdb_index,
    out: *mut *mut ivdb_index,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let idx = self::index(index)?;
        let out = out_arg(out, "out")?;
        let inner = idx.copy()?;
        out.write(Box::into_raw(Box::new(ivdb_index { inner })));
        Ok(())
    })
}
