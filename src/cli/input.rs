//! Reading JSON values (entries, queries) from a file or standard input:
//! a JSON array (read whole) or a stream of values (JSON Lines, or
//! pretty-printed objects one after another), each with the line it starts
//! on, so errors can name it. After malformed JSON the stream resumes on
//! the next line.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::Value;

use super::{exit, CliError};

/// Replace `{list}[i]` (the engine's name of the i-th item of a batch) in
/// `message` with the input's line of that item: `name: line N: …`.
pub(super) fn locate(message: &str, list: &str, name: &str, lines: &[usize]) -> String {
    let prefix = format!("{list}[");
    if let Some(start) = message.find(&prefix) {
        let rest = &message[start + prefix.len()..];
        if let Some(end) = rest.find(']') {
            if let Some(line) = rest[..end].parse::<usize>().ok().and_then(|i| lines.get(i)) {
                return format!(
                    "{name}: line {line}: {}{}",
                    &message[..start],
                    rest[end + 1..].trim_start_matches([':', ' ', '.'])
                );
            }
        }
    }
    format!("{name}: {message}")
}

/// An opened input: the reader, its name for messages, its size when it
/// is a regular file, and a counter of the bytes read so far.
pub(super) type Opened = (
    BufReader<Counting<Box<dyn Read>>>,
    String,
    Option<u64>,
    Arc<AtomicU64>,
);

/// Open `path` (`-`: standard input).
pub(super) fn open(path: &Path) -> Result<Opened, CliError> {
    let stdin = path.as_os_str() == "-";
    let name = if stdin {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    let (source, total): (Box<dyn Read>, Option<u64>) = if stdin {
        (Box::new(io::stdin().lock()), None)
    } else {
        let f = File::open(path).map_err(|e| read_error(&name, &e))?;
        let len = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
        (Box::new(f), len)
    };
    let read = Arc::new(AtomicU64::new(0));
    let reader = BufReader::new(Counting {
        inner: source,
        read: Arc::clone(&read),
    });
    Ok((reader, name, total, read))
}

/// Counts the bytes read, for the progress bar.
pub(super) struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A parsed entry and the line it starts on.
pub(super) struct Item {
    pub(super) line: usize,
    pub(super) value: Value,
}

/// Why the next entry could not be read.
pub(super) enum ReadError {
    /// The source failed (fatal).
    Fatal(CliError),
    /// Malformed JSON in the entry starting at `line`; the reader has moved
    /// past that line, so the load may go on.
    Syntax { line: usize, message: String },
}

/// Reads entries one at a time from either form.
pub(super) enum Entries<R: Read> {
    /// A JSON array, read whole (elements are numbered by position).
    Array(std::vec::IntoIter<Value>),
    /// JSON Lines or a sequence of objects, streamed.
    Stream(Stream<R>),
}

/// Streaming reader of whitespace-separated JSON values.
pub(super) struct Stream<R> {
    source: R,
    name: String,
    buf: Vec<u8>,
    pos: usize,
    line: usize,
    done: bool,
}

impl<R: Read> Stream<R> {
    /// Read another chunk (dropping what was consumed); false at the end.
    fn refill(&mut self) -> Result<bool, ReadError> {
        self.buf.drain(..self.pos);
        self.pos = 0;
        let mut chunk = vec![0u8; 1 << 20];
        let n = self.source.read(&mut chunk).map_err(|e| {
            ReadError::Fatal(CliError::new(exit::IO, format!("{}: {e}", self.name)))
        })?;
        self.buf.extend_from_slice(&chunk[..n]);
        self.done = n == 0;
        Ok(n > 0)
    }

    /// Skip to the line after the current one (after a syntax error).
    fn skip_line(&mut self) -> Result<(), ReadError> {
        loop {
            if let Some(nl) = self.buf[self.pos..].iter().position(|&b| b == b'\n') {
                self.pos += nl + 1;
                self.line += 1;
                return Ok(());
            }
            self.pos = self.buf.len();
            if !self.refill()? {
                return Ok(());
            }
        }
    }

    fn next(&mut self) -> Result<Option<Item>, ReadError> {
        loop {
            while self.pos < self.buf.len() && self.buf[self.pos].is_ascii_whitespace() {
                if self.buf[self.pos] == b'\n' {
                    self.line += 1;
                }
                self.pos += 1;
            }
            if self.pos < self.buf.len() {
                let rest = &self.buf[self.pos..];
                let mut it = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
                match it.next() {
                    // A scalar that ends with the buffer may go on in the
                    // next chunk: read more first.
                    Some(Ok(v))
                        if !v.is_object() && it.byte_offset() == rest.len() && !self.done => {}
                    Some(Ok(value)) => {
                        let used = it.byte_offset();
                        let start = self.line;
                        self.line += rest[..used].iter().filter(|&&b| b == b'\n').count();
                        self.pos += used;
                        return Ok(Some(Item { line: start, value }));
                    }
                    // An object cut by the buffer's end: read more.
                    Some(Err(e)) if e.is_eof() && !self.done => {}
                    Some(Err(e)) => {
                        let text = e.to_string();
                        let text = text
                            .rfind(" at line ")
                            .map_or(text.as_str(), |at| &text[..at]);
                        let err = ReadError::Syntax {
                            line: self.line,
                            message: format!(
                                "{}: line {}: invalid JSON: {text} (at line {}, column {})",
                                self.name,
                                self.line,
                                self.line + e.line() - 1,
                                e.column()
                            ),
                        };
                        self.skip_line()?;
                        return Err(err);
                    }
                    None => {}
                }
            } else if self.done {
                return Ok(None);
            }
            if !self.refill()? && self.buf[self.pos..].iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
        }
    }
}

impl<R: Read> Entries<R> {
    pub(super) fn new(mut source: R, name: &str) -> Result<Entries<R>, CliError> {
        // Peek at the first non-blank byte to tell an array from a stream.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = source
                .read(&mut chunk)
                .map_err(|e| CliError::new(exit::IO, format!("{name}: {e}")))?;
            buf.extend_from_slice(&chunk[..n]);
            if n == 0 || buf.iter().any(|b| !b.is_ascii_whitespace()) {
                break;
            }
        }
        let first = buf.iter().find(|b| !b.is_ascii_whitespace()).copied();
        if first == Some(b'[') {
            source
                .read_to_end(&mut buf)
                .map_err(|e| CliError::new(exit::IO, format!("{name}: {e}")))?;
            let all: Vec<Value> = serde_json::from_slice(&buf).map_err(|e| {
                CliError::new(exit::BAD_INPUT, format!("{name}: invalid JSON array: {e}"))
            })?;
            return Ok(Entries::Array(all.into_iter()));
        }
        Ok(Entries::Stream(Stream {
            source,
            name: name.to_string(),
            buf,
            pos: 0,
            line: 1,
            done: false,
        }))
    }

    /// The next entry, `None` at the end; `position` numbers array elements.
    pub(super) fn next(&mut self, position: usize) -> Result<Option<Item>, ReadError> {
        match self {
            Entries::Array(items) => Ok(items.next().map(|value| Item {
                line: position + 1,
                value,
            })),
            Entries::Stream(s) => s.next(),
        }
    }
}

/// The feature sets of a `--features` file: an object holding `features`
/// or `simprints` (an entry, an `.iscc.json`), or a list of feature sets.
pub(super) fn read_features(
    path: &std::path::Path,
) -> Result<Vec<crate::engine::FeatureSet>, CliError> {
    let name = path.display().to_string();
    let bad = |msg: String| CliError::new(exit::BAD_INPUT, format!("{name}: {msg}"));
    let text = if path.as_os_str() == "-" {
        io::read_to_string(io::stdin().lock())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| read_error(&name, &e))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let holder = match value {
        serde_json::Value::Object(map) => map,
        list @ serde_json::Value::Array(_) => {
            serde_json::Map::from_iter([("features".to_string(), list)])
        }
        _ => {
            return Err(bad(
                "expected a JSON object or a list of feature sets".into()
            ))
        }
    };
    let features = crate::engine::features::features_of(&holder, "features")
        .map_err(|e| bad(e.to_string()))?;
    if features.is_empty() {
        return Err(bad("no `features` or `simprints` in it".into()));
    }
    Ok(features)
}

/// A file that cannot be read: exit status NOT_FOUND when it is missing,
/// IO otherwise, and a line naming it.
fn read_error(name: &str, e: &io::Error) -> CliError {
    let status = if e.kind() == io::ErrorKind::NotFound {
        exit::NOT_FOUND
    } else {
        exit::IO
    };
    CliError::new(status, format!("{name}: {e}"))
}
