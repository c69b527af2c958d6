//! `add`: one entry from the options, or many from a file (a JSON array,
//! JSON Lines, or any sequence of JSON objects) or standard input, in
//! batches, with a progress bar on a terminal.
//!
//! Each batch is one durable engine transaction. A bad entry stops the load
//! with its line number (entries of earlier batches stay added, and the
//! message says how many); `--keep-going` instead adds the rest and reports
//! every bad line. Whatever stops a load (bad input, a full disk, an I/O
//! error), the ISCC-IDs acknowledged before it are printed on standard
//! output as a JSON array, and stderr says how many entries in how many
//! batches were kept and where the failing batch starts.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value};

use super::input::{self, Entries, Item, ReadError};
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
    /// The entry's granular features, from a JSON file (`-`: standard
    /// input): an `.iscc.json` or entry with `features` (or iscc-search's
    /// `simprints`), or a list of feature sets. (Entries of `--file` carry
    /// their own.)
    #[arg(long, conflicts_with = "file")]
    features: Option<PathBuf>,
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
    if let Some(path) = &args.features {
        let sets = input::read_features(path)?;
        let list = sets
            .iter()
            .map(crate::engine::FeatureSet::to_json)
            .collect();
        entry.insert("features".into(), Value::Array(list));
    }
    let index = ctx.open_writer()?;
    let result = index
        .add_values(&Value::Object(entry))
        .map_err(CliError::from)
        .and_then(|ids| ctx.print(&ids));
    finish(index, result)
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

struct Load<'a> {
    index: &'a IsccIndex,
    name: String,
    keep_going: bool,
    /// ISCC-IDs acknowledged (committed) so far, in input order.
    ids: Vec<String>,
    /// Batches committed so far.
    batches: usize,
    bad: usize,
}

impl Load<'_> {
    /// A failure that is not the input's (a full disk, an I/O error): what
    /// was kept, and where the failing batch starts.
    fn failed(&mut self, e: EngineError, first_line: usize) -> CliError {
        let status = super::status_of(e.kind());
        let mut message = e.to_string();
        if let EngineError::AfterCommit { ids, .. } = e {
            // That batch is stored: it counts as acknowledged.
            self.ids.extend(ids);
            self.batches += 1;
            message.push_str(&format!(
                "; {} entries in {} batches were added and are kept (their ISCC-IDs are on standard output)",
                self.ids.len(),
                self.batches
            ));
            return CliError::new(status, message);
        }
        message.push_str(&format!(
            "; {} entries in {} batches were added and are kept (their ISCC-IDs are on standard output); the failing batch starts at {}: line {first_line}",
            self.ids.len(),
            self.batches,
            self.name
        ));
        CliError::new(status, message)
    }

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
            Ok(ids) => {
                self.ids.extend(ids);
                self.batches += 1;
            }
            Err(e) if !is_input(&e) => return Err(self.failed(e, lines[0])),
            Err(e) if !self.keep_going => {
                return Err(CliError::new(
                    exit::BAD_INPUT,
                    format!(
                        "{}; {}",
                        input::locate(&e.to_string(), "entries", &self.name, &lines),
                        self.kept(lines[0])
                    ),
                ))
            }
            Err(_) => {
                for item in items.iter() {
                    match self.index.add(&[&item.value]) {
                        Ok(ids) => {
                            self.ids.extend(ids);
                            self.batches += 1;
                        }
                        Err(e) if is_input(&e) => {
                            self.bad += 1;
                            bar.suspend(|| {
                                eprintln!(
                                    "iscc-vdb: skipped {}",
                                    input::locate(
                                        &e.to_string(),
                                        "entries",
                                        &self.name,
                                        &[item.line]
                                    )
                                )
                            });
                        }
                        Err(e) => return Err(self.failed(e, item.line)),
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

fn add_file(ctx: &Ctx, args: &AddArgs, file: &Path) -> CliResult {
    let (source, name, total, read) = input::open(file)?;
    let mut entries = Entries::new(source, &name)?;
    let index = ctx.open_writer()?;
    let bar = progress_bar(total, args.no_progress);
    let mut load = Load {
        index: &index,
        name: name.clone(),
        keep_going: args.keep_going,
        ids: Vec::new(),
        batches: 0,
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
    if result.is_err() && !load.ids.is_empty() {
        // What was acknowledged before the failure, as valid JSON.
        ctx.print(&load.ids)?;
    }
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
