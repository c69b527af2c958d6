//! Boundary machinery: the error object handed to C, the panic-catching
//! wrapper every exported function runs in, and pointer/string helpers.
//!
//! Conventions: every fallible function returns an `ivdb_status`; detail
//! goes to an optional `ivdb_error **err` (left untouched on success);
//! outputs are written only on success; no panic crosses the boundary.

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use super::status::*;
use crate::engine::EngineError;

/// An error: a status code and a UTF-8 message naming the problem. Made by
/// the library, read with `ivdb_error_code`/`ivdb_error_message`, freed
/// with `ivdb_error_free`.
pub struct ivdb_error {
    pub(crate) code: ivdb_status,
    pub(crate) message: CString,
}

/// An error on its way out.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: ivdb_status,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: ivdb_status, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn null(name: &str) -> Failure {
        Failure::new(IVDB_INVALID_ARGUMENT, format!("{name} is NULL"))
    }

    /// The same failure, its message prefixed with the argument it concerns.
    pub(crate) fn context(self, argument: &str) -> Failure {
        Failure::new(self.code, format!("{argument}: {}", self.message))
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Failure {
        Failure::new(status_of(e.kind()), e.to_string())
    }
}

/// Run `f`, catching panics; report a failure through `err` (when not NULL).
pub(crate) fn guard(
    err: *mut *mut ivdb_error,
    f: impl FnOnce() -> Result<(), Failure>,
) -> ivdb_status {
    let outcome = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(Failure::new(
            IVDB_PANIC,
            format!(
                "internal panic (a bug in iscc-vdb): {}",
                crate::sync::panic_message(&*payload)
            ),
        ))
    });
    match outcome {
        Ok(()) => IVDB_OK,
        Err(failure) => {
            let code = failure.code;
            if let Some(out) = opt_out_arg(err) {
                // Interior NULs cannot occur in our messages; replace to be sure.
                let message = CString::new(failure.message.replace('\0', " ")).unwrap_or_default();
                out.write(Box::into_raw(Box::new(ivdb_error { code, message })));
            }
            code
        }
    }
}

/// A borrowed UTF-8 string argument.
pub(crate) fn str_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: non-NULL, and by the API contract a NUL-terminated string that
    // stays valid for the call.
    let c = unsafe { CStr::from_ptr(ptr) };
    c.to_str()
        .map_err(|e| Failure::new(IVDB_INVALID_JSON, format!("{name} is not UTF-8: {e}")))
}

/// An optional borrowed UTF-8 string argument (NULL: `None`).
pub(crate) fn opt_str_arg<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        Ok(None)
    } else {
        str_arg(ptr, name).map(Some)
    }
}

/// Caller storage for one result, checked non-NULL: the only way a result
/// reaches an out-pointer. Made by [`out_arg`] (NULL is an error) or
/// [`opt_out_arg`] (NULL means "not wanted"); [`Out::write`] stores the value
/// without reading or dropping what was there (caller storage may be
/// uninitialised).
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// Store the result.
    pub(crate) fn write(self, value: T) {
        // SAFETY: non-NULL (checked when made) and, by every function's
        // contract, writable and aligned storage for one `T`; `write` does
        // not read or drop the old contents.
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// An output pointer the caller must provide.
pub(crate) fn out_arg<T>(ptr: *mut T, name: &str) -> Result<Out<T>, Failure> {
    NonNull::new(ptr)
        .map(Out)
        .ok_or_else(|| Failure::null(name))
}

/// An output pointer the caller may leave NULL.
pub(crate) fn opt_out_arg<T>(ptr: *mut T) -> Option<Out<T>> {
    NonNull::new(ptr).map(Out)
}

/// Caller storage for `n` results (NULL refused unless `n` is 0).
pub(crate) fn out_slice_arg<'a, T>(
    ptr: *mut T,
    n: usize,
    name: &str,
) -> Result<&'a mut [T], Failure> {
    if n == 0 {
        return Ok(&mut []);
    }
    let ptr = NonNull::new(ptr).ok_or_else(|| Failure::null(name))?;
    // SAFETY: non-NULL and, by every function's contract, writable and
    // aligned storage for `n` values of `T` that nothing else touches
    // during the call.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), n) })
}

/// A string handed to C (freed with `ivdb_free_string`).
pub(crate) fn c_string(s: String) -> *mut c_char {
    CString::new(s.replace('\0', " "))
        .unwrap_or_default()
        .into_raw()
}
