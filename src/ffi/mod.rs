//! The C ABI (`extern "C"` functions, `ivdb_*`), exported from
//! `libiscc_vdb.so`/`.a`; its header `include/iscc_vdb.h` is generated from
//! this module by cbindgen (see `build.rs`).
//!
//! Conventions (DESIGN §8): every fallible function returns an
//! `ivdb_status` (`IVDB_OK` = 0) and reports detail through an optional
//! `ivdb_error **err`; outputs are written only on success; every body runs
//! inside one panic-catching wrapper (`boundary::guard`); what the library
//! allocates the library frees (`ivdb_free_string`, `ivdb_error_free`,
//! `ivdb_close`); inputs are borrowed for the call only.

#![allow(non_camel_case_types)]

mod boundary;
mod chunk_columns;
mod columns;
mod index;
mod lowlevel;
mod maintain;
mod matches;
mod status;
mod store;

use std::ffi::{c_char, CString};

pub use self::boundary::ivdb_error;
use self::boundary::{c_string, guard, out_arg, str_arg, Failure};
pub use self::chunk_columns::ivdb_chunk_columns;
pub use self::columns::*;
pub use self::index::*;
pub use self::lowlevel::*;
pub use self::maintain::*;
pub use self::matches::{ivdb_match, ivdb_matches, ivdb_unit_score};
pub use self::status::*;
pub use self::store::*;

/// Version of the C ABI. Bumped on every incompatible change; bindings
/// refuse a library whose `ivdb_abi_version()` differs from the header's.
/// (2: `ivdb_search_options` gained `nprobe`.)
pub const IVDB_ABI_VERSION: u32 = 2;

/// Matches per query when a search passes `count` 0 (the library's
/// default; bindings show it as their default).
pub const IVDB_DEFAULT_COUNT: usize = 10;
// The header needs a literal; this keeps it the engine's value.
const _: () = assert!(IVDB_DEFAULT_COUNT == crate::engine::DEFAULT_COUNT);

/// The library version (`Cargo.toml`), NUL-terminated.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library version as a static NUL-terminated UTF-8 string, e.g. "0.1.0".
///
/// The string is owned by the library and valid for the life of the process;
/// do not free it.
#[no_mangle]
pub extern "C" fn ivdb_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

/// The C ABI version of the library (compare with `IVDB_ABI_VERSION`).
#[no_mangle]
pub extern "C" fn ivdb_abi_version() -> u32 {
    IVDB_ABI_VERSION
}

/// The name of a status code (e.g. "IVDB_INVALID_ISCC"); a static string,
/// do not free it. Unknown codes give "IVDB_UNKNOWN_STATUS".
#[no_mangle]
pub extern "C" fn ivdb_status_str(status: ivdb_status) -> *const c_char {
    status_name(status).as_ptr().cast()
}

/// The status code of an error (`IVDB_INVALID_ARGUMENT` for NULL).
///
/// # Safety
/// `err` is NULL or an error from this library not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ivdb_error_code(err: *const ivdb_error) -> ivdb_status {
    if err.is_null() {
        return IVDB_INVALID_ARGUMENT;
    }
    // SAFETY: non-NULL and live by the contract.
    unsafe { (*err).code }
}

/// The UTF-8 message of an error, owned by the error (valid until
/// `ivdb_error_free`); an empty string for NULL.
///
/// # Safety
/// `err` is NULL or an error from this library not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ivdb_error_message(err: *const ivdb_error) -> *const c_char {
    if err.is_null() {
        return c"".as_ptr();
    }
    // SAFETY: non-NULL and live by the contract.
    unsafe { (*err).message.as_ptr() }
}

/// Free an error. NULL is a no-op.
///
/// # Safety
/// `err` is NULL or an error from this library, freed only once.
#[no_mangle]
pub unsafe extern "C" fn ivdb_error_free(err: *mut ivdb_error) {
    if !err.is_null() {
        // SAFETY: the caller hands back ownership of a live error.
        drop(unsafe { Box::from_raw(err) });
    }
}

/// Free a string returned by this library. NULL is a no-op.
///
/// # Safety
/// `s` is NULL or a string from this library (`*_json` outputs), freed only
/// once.
#[no_mangle]
pub unsafe extern "C" fn ivdb_free_string(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: the string was made by `CString::into_raw` here.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// Explain an ISCC (any kind: code, unit, ID, sequence) as JSON: kind,
/// canonical form, header fields, units. Bad input gives
/// `IVDB_INVALID_ISCC` with a message naming the problem. Free `*out_json`
/// with `ivdb_free_string`.
///
/// # Safety
/// `iscc` is a NUL-terminated string; `out_json` writable; `err` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_explain_json(
    iscc: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let input = str_arg(iscc, "iscc")?;
        let out = out_arg(out_json, "out_json")?;
        let parsed = crate::codec::Iscc::parse(input)
            .map_err(|e| Failure::new(IVDB_INVALID_ISCC, e.to_string()))?;
        let json = crate::codec::explain(input, &parsed).to_string();
        out.write(c_string(json));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn a_panic_inside_the_wrapper_becomes_ivdb_panic() {
        let mut err: *mut ivdb_error = std::ptr::null_mut();
        let status = guard(&mut err, || panic!("forced"));
        assert_eq!(status, IVDB_PANIC);
        // SAFETY: `err` was set by `guard`.
        unsafe {
            assert_eq!(ivdb_error_code(err), IVDB_PANIC);
            let msg = CStr::from_ptr(ivdb_error_message(err)).to_str().unwrap();
            assert!(msg.contains("forced"), "{msg}");
            ivdb_error_free(err);
        }
        // A NULL err slot is fine too.
        assert_eq!(guard(std::ptr::null_mut(), || panic!("again")), IVDB_PANIC);
    }

    #[test]
    fn null_arguments_are_invalid_and_outputs_untouched() {
        let mut out: *mut c_char = std::ptr::dangling_mut::<c_char>();
        let mut err: *mut ivdb_error = std::ptr::null_mut();
        // SAFETY: NULL input with a writable output and error slot.
        let status = unsafe { ivdb_explain_json(std::ptr::null(), &mut out, &mut err) };
        assert_eq!(status, IVDB_INVALID_ARGUMENT);
        assert_eq!(
            out,
            std::ptr::dangling_mut::<c_char>(),
            "output written on failure"
        );
        // SAFETY: err set by the call.
        unsafe {
            let msg = CStr::from_ptr(ivdb_error_message(err)).to_str().unwrap();
            assert!(msg.contains("iscc is NULL"), "{msg}");
            ivdb_error_free(err);
        }
        // SAFETY: static strings.
        let name = unsafe { CStr::from_ptr(ivdb_status_str(IVDB_LOCKED)) };
        assert_eq!(name.to_str().unwrap(), "IVDB_LOCKED");
        let name = unsafe { CStr::from_ptr(ivdb_status_str(999)) };
        assert_eq!(name.to_str().unwrap(), "IVDB_UNKNOWN_STATUS");
    }
}
