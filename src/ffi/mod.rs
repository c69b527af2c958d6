//! The C ABI (`extern "C"` functions, `ivdb_*`), exported from
//! `libiscc_vdb.so`/`.a`; its header `include/iscc_vdb.h` is generated from
//! this module by cbindgen (see `build.rs`).

use std::ffi::c_char;

/// Version of the C ABI. Bumped on every incompatible change; bindings
/// refuse a library whose `ivdb_abi_version()` differs from the header's.
pub const IVDB_ABI_VERSION: u32 = 1;

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
