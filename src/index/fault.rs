//! Injected write failures, so tests can show what a crash in the middle
//! of writing a file leaves behind.
//!
//! A test arms a failure for paths containing a fragment; the next durable
//! write of such a path stops half-way with an I/O error, leaving its
//! temporary file behind exactly as a crash would. Unarmed, a check is one
//! uncontended lock and a length test.

use std::io;
use std::path::Path;
use std::sync::Mutex;

static ARMED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Make the next durable write of a file whose path contains `fragment`
/// fail half-way. For crash tests only.
#[doc(hidden)]
pub fn fail_next_write(fragment: &str) {
    ARMED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(fragment.to_string());
}

/// Fail (once) if a failure is armed for this path.
pub(crate) fn check(path: &Path) -> io::Result<()> {
    let mut armed = ARMED.lock().unwrap_or_else(|p| p.into_inner());
    if armed.is_empty() {
        return Ok(());
    }
    let text = path.to_string_lossy();
    match armed.iter().position(|f| text.contains(f.as_str())) {
        Some(i) => {
            armed.remove(i);
            Err(io::Error::other(format!(
                "injected write failure on {}",
                path.display()
            )))
        }
        None => Ok(()),
    }
}
