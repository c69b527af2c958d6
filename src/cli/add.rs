//! `add`: one entry from the options, or many from a file (a JSON array,
//! JSON Lines, or any sequence of JSON objects) or standard input, in
//! batches, with a progress bar on a terminal.
//!
//! Each batch is one durable engine transaction. A bad entry stops the load
//! with its line number (entries of earlier batches stay added, and the
//! message says how many); `--keep-going` instead adds the rest and reports
//! every bad line.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value};

use super::{exit, finish, CliError, CliResult, Ctx};
use crate::engine::{EngineError, IsccIndex};

#[derive(Debug, Args)]
pub(super) struct AddArgs {
    /// The entry's ISCC-CODE.
    #[arg(long, conflicts_with = "file")]
    iscc_code: Option<String>,
    /// The entry's ISCC-ID (generated when absent).
    #[arg(long, conflicts_with = "file")]
    iscc_id: Option<String>,
    /// The entry's ISCC-UNITs (win over --iscc-code).
    #[arg(long, num_args = 1.., conflicts_with = "file")]
    units: Vec<String>,
    /// Entries from a file: a JSON array, JSON Lines or a sequence of JSON
    /// objects; `-` reads standard input.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Entries per transaction when reading a file.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch_size: u64,
    /// Skip bad entries (each reported on stderr; exit status 3 at the end)
    /// instead of stopping at the first.
    #[arg(long)]
    keep_going: bool,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

pub(super) fn run(ctx: &Ctx, args: &AddArgs) -> CliResult {
    match &args.file {
        Some(file) => add_file(ctx, args, file),
        None => add_one(ctx, args),
    }
}

fn add_one(ctx: &Ctx, args: &AddArgs) -> CliResult {
    if args.iscc_code.is_none() && args.units.is_empty() {
        return Err(CliError::new(
            exit::USAGE,
            "add needs --iscc-code, --units or --file",
        ));
    }
    let mut entry = Map::new();
    if let Some(id) = &args.iscc_id {
        entry.insert("iscc_id".into(), Value::from(id.as_str()));
    }
    if let Some(code) = &args.iscc_code {
        entry.insert("iscc_code".into(), Value::from(code.as_str()));
    }
    if !args.units.is_empty() {
        entry.insert("units".into(), Value::from(args.units.clone()));
    }
    let index = ctx.open_writer()?;
    let result = index
        .add_values(&Value::Object(entry))
        .map_err(CliError::from)
        .and_then(|ids| ctx.print(&ids));
    finish(index, result)
}

/// Counts the bytes read, for the progress bar.
struct Counting<R> {
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
struct Item {
    line: usize,
    value: Value,
}

/// Why the next entry could not be read.
enum ReadError {
    /// The source failed (fatal).
    Fatal(CliError),
    /// Malformed JSON in the entry starting at `line`; the reader has moved
    /// past that line, so the load may go on.
    Syntax { line: usize, message: String },
}

/// Reads entries one at a time from either form.
enum Entries<R: Read> {
    /// A JSON array, read whole (elements are numbered by position).
    Array(std::vec::IntoIter<Value>),
    /// JSON Lines or a sequence of objects, streamed.
    Stream(Stream<R>),
}

/// Streaming reader of whitespace-separated JSON values.
struct Stream<R> {
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
    fn new(mut source: R, name: &str) -> Result<Entries<R>, CliError> {
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
    fn next(&mut self, position: usize) -> Result<Option<Item>, ReadError> {
        match self {
            Entries::Array(items) => Ok(items.next().map(|value| Item {
                line: position + 1,
                value,
            })),
            Entries::Stream(s) => s.next(),
        }
    }
}

fn progress_bar(total: Option<u64>, hidden: bool) -> ProgressBar {
    let bar = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::new_spinner(),
    };
    let template = if total.is_some() {
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} (ETA {eta})"
    } else {
        "{spinner} [{elapsed_precise}] {bytes} {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    // indicatif draws only when stderr is a terminal.
    bar.set_draw_target(if hidden {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Replace the engine's `entries[i]` with the input's line of that entry.
fn locate(e: &EngineError, name: &str, lines: &[usize]) -> String {
    let msg = e.to_string();
    if let Some(start) = msg.find("entries[") {
        let rest = &msg[start + 8..];
        if let Some(end) = rest.find(']') {
            if let Ok(i) = rest[..end].parse::<usize>() {
                if let Some(line) = lines.get(i) {
                    return format!(
                        "{name}: line {line}: {}{}",
                        &msg[..start],
                        rest[end + 1..].trim_start_matches([':', ' ', '.'])
                    );
                }
            }
        }
    }
    format!("{name}: {msg}")
}

struct Load<'a> {
    index: &'a IsccIndex,
    name: String,
    keep_going: bool,
    ids: Vec<String>,
    bad: usize,
}

impl Load<'_> {
    /// What a stopped load leaves behind.
    fn kept(&self, from_line: usize) -> String {
        format!(
            "{} entries before line {from_line} were added and are kept, none from line {from_line} on",
            self.ids.len()
        )
    }

    /// Add one batch; on a bad entry stop, or (keep-going) add its entries
    /// one by one, reporting each bad one.
    fn batch(&mut self, items: &mut Vec<Item>, bar: &ProgressBar) -> CliResult {
        if items.is_empty() {
            return Ok(());
        }
        let values: Vec<&Value> = items.iter().map(|i| &i.value).collect();
        let lines: Vec<usize> = items.iter().map(|i| i.line).collect();
        match self.index.add(&values) {
            Ok(ids) => self.ids.extend(ids),
            Err(e) if !is_input(&e) => return Err(e.into()),
            Err(e) if !self.keep_going => {
                return Err(CliError::new(
                    exit::BAD_INPUT,
                    format!(
                        "{}; {}",
                        locate(&e, &self.name, &lines),
                        self.kept(lines[0])
                    ),
                ))
            }
            Err(_) => {
                for item in items.iter() {
                    match self.index.add(&[&item.value]) {
                        Ok(ids) => self.ids.extend(ids),
                        Err(e) if is_input(&e) => {
                            self.bad += 1;
                            bar.suspend(|| {
                                eprintln!(
                                    "iscc-vdb: skipped {}",
                                    locate(&e, &self.name, &[item.line])
                                )
                            });
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        items.clear();
        Ok(())
    }
}

fn is_input(e: &EngineError) -> bool {
    super::status_of(e.kind()) == exit::BAD_INPUT
}

fn add_file(ctx: &Ctx, args: &AddArgs, file: &PathBuf) -> CliResult {
    let stdin = file.as_os_str() == "-";
    let name = if stdin {
        "<stdin>".to_string()
    } else {
        file.display().to_string()
    };
    let (source, total): (Box<dyn Read>, Option<u64>) = if stdin {
        (Box::new(io::stdin().lock()), None)
    } else {
        let f = File::open(file).map_err(|e| {
            let status = if e.kind() == io::ErrorKind::NotFound {
                exit::NOT_FOUND
            } else {
                exit::IO
            };
            CliError::new(status, format!("{name}: {e}"))
        })?;
        let len = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
        (Box::new(f), len)
    };
    let read = Arc::new(AtomicU64::new(0));
    let source = BufReader::new(Counting {
        inner: source,
        read: Arc::clone(&read),
    });
    let mut entries = Entries::new(source, &name)?;
    let index = ctx.open_writer()?;
    let bar = progress_bar(total, args.no_progress);
    let mut load = Load {
        index: &index,
        name: name.clone(),
        keep_going: args.keep_going,
        ids: Vec::new(),
        bad: 0,
    };
    let started = std::time::Instant::now();
    let result = (|| {
        let mut batch: Vec<Item> = Vec::with_capacity(args.batch_size as usize);
        let mut seen = 0usize;
        loop {
            let item = match entries.next(seen) {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(ReadError::Fatal(e)) => return Err(e),
                Err(ReadError::Syntax { message, .. }) if load.keep_going => {
                    load.bad += 1;
                    bar.suspend(|| eprintln!("iscc-vdb: skipped {message}"));
                    continue;
                }
                Err(ReadError::Syntax { line, message }) => {
                    let from = batch.first().map_or(line, |i| i.line);
                    return Err(CliError::new(
                        exit::BAD_INPUT,
                        format!("{message}; {}", load.kept(from)),
                    ));
                }
            };
            seen += 1;
            batch.push(item);
            if batch.len() as u64 == args.batch_size {
                load.batch(&mut batch, &bar)?;
                bar.set_position(read.load(Ordering::Relaxed));
                let rate = load.ids.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!("{} entries, {rate:.0}/s", load.ids.len()));
            }
        }
        load.batch(&mut batch, &bar)
    })();
    bar.finish_and_clear();
    let result = result.and_then(|_| {
        if load.ids.is_empty() && load.bad == 0 {
            return Err(CliError::new(
                exit::BAD_INPUT,
                format!("{name}: no entries"),
            ));
        }
        ctx.print(&load.ids)?;
        if load.bad > 0 {
            return Err(CliError::new(
                exit::BAD_INPUT,
                format!(
                    "{name}: {} bad entries skipped, {} added",
                    load.bad,
                    load.ids.len()
                ),
            ));
        }
        Ok(())
    });
    finish(index, result)
}
