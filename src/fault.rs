//! Injected write failures (feature `testing`), so tests can show what a crash in the middle
//! of writing a file leaves behind.
//!
//! A test arms a failure for paths containing a fragment; the next durable
//! write of such a path stops half-way with an I/O error, leaving its
//! temporary file behind exactly as a crash would. Unarmed, a check is one
//! uncontended lock and a length test.

use std::io;
use std::path::Path;
#[cfg(feature = "testing")]
use std::sync::Mutex;

/// Armed failures: a path fragment and the OS error to fail with (`None`:
/// a plain injected I/O error).
#[cfg(feature = "testing")]
static ARMED: Mutex<Vec<(String, Option<i32>)>> = Mutex::new(Vec::new());

/// Make the next durable write of a file whose path contains `fragment`
/// fail half-way. For crash tests only.
#[cfg(feature = "testing")]
pub fn fail_next_write(fragment: &str) {
    crate::sync::lock(&ARMED).push((fragment.to_string(), None));
}

/// [`fail_next_write`] with the OS error `errno` (e.g. `libc::ENOSPC`, as a
/// full disk would). For tests only.
#[cfg(feature = "testing")]
pub fn fail_next_write_with(fragment: &str, errno: i32) {
    crate::sync::lock(&ARMED).push((fragment.to_string(), Some(errno)));
}

/// Fail (once) if a failure is armed for this path.
#[cfg(feature = "testing")]
pub(crate) fn check(path: &Path) -> io::Result<()> {
    let mut armed = crate::sync::lock(&ARMED);
    if armed.is_empty() {
        return Ok(());
    }
    let text = path.to_string_lossy();
    match armed.iter().position(|(f, _)| text.contains(f.as_str())) {
        Some(i) => match armed.remove(i).1 {
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => Err(io::Error::other(format!(
                "injected write failure on {}",
                path.display()
            ))),
        },
        None => Ok(()),
    }
}

/// Without the `testing` feature nothing can be armed: a check is free.
#[cfg(not(feature = "testing"))]
#[inline(always)]
pub(crate) fn check(_path: &Path) -> io::Result<()> {
    Ok(())
}
