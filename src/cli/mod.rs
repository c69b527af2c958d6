//! The `iscc-vdb` command-line tool (feature `cli`).
//!
//! Every command works on the index directory given by `--path` (or
//! `ISCC_VDB_PATH`, default `./iscc-vdb-index`), prints JSON to stdout
//! (`--pretty` to indent; `--format table` for `search` and `info`) and a
//! message naming the problem to stderr on failure. Exit statuses (stable,
//! see [`exit`]): 0 success, 1 internal error, 2 usage error, 3 bad input,
//! 4 not found, 5 I/O failure, 6 index busy (locked by another writer, or
//! read-only).
//!
//! Writing commands (`add`, `remove`, `save`, `rebuild`, `compact`) take the
//! index's writer lock and save on exit. Reading commands (`get`, `search`,
//! `info`) open the index read-only — no lock, nothing written — so they
//! also work while `iscc-vdb serve` owns it (they see its committed entries;
//! unit indexes as last saved plus its journal, replayed in memory).

mod add;
mod explain;
mod input;
mod manage;
mod search;
#[cfg(feature = "server")]
mod serve;
mod transfer;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::engine::{EngineError, ErrorKind, IndexOptions, IsccIndex};

/// Exit statuses of the `iscc-vdb` command.
pub mod exit {
    /// An unexpected failure (a bug).
    pub const INTERNAL: u8 = 1;
    /// Bad command-line usage (reported by the argument parser).
    pub const USAGE: u8 = 2;
    /// Bad input: a malformed ISCC, JSON or entry, a wrong realm.
    pub const BAD_INPUT: u8 = 3;
    /// An ISCC-ID or the index itself was not found.
    pub const NOT_FOUND: u8 = 4;
    /// A file could not be read or written (also a full disk, a damaged or
    /// incompatible index).
    pub const IO: u8 = 5;
    /// Another process holds the writer lock, or the index is read-only.
    pub const BUSY: u8 = 6;
}

/// iscc-vdb: nearest-neighbour search for ISCC codes.
#[derive(Debug, Parser)]
#[command(name = "iscc-vdb", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Index directory.
    #[arg(
        long,
        global = true,
        env = "ISCC_VDB_PATH",
        default_value = "iscc-vdb-index"
    )]
    path: PathBuf,
    /// Indent JSON output.
    #[arg(long, global = true)]
    pretty: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add entries (one from the options, or many from a JSON/JSON Lines file).
    Add(add::AddArgs),
    /// Print stored entries by ISCC-ID.
    Get(manage::GetArgs),
    /// Find entries similar to an ISCC-CODE or to ISCC-UNITs.
    Search(search::SearchArgs),
    /// Remove entries by ISCC-ID.
    Remove(manage::RemoveArgs),
    /// Persist the unit indexes (and trim the journal).
    Save,
    /// Rebuild derived indexes from the primary store (crash-atomic).
    Rebuild(manage::RebuildArgs),
    /// Rewrite the unit indexes without rows of removed or updated entries.
    Compact,
    /// Show index figures (size, unit types, shards, parameters).
    Info(manage::InfoArgs),
    /// Copy this index's entries into another index (a directory or a
    /// `milvus://` URI), in batches, resumable.
    Export(transfer::ExportArgs),
    /// Copy the entries of another local index into this one, likewise.
    Import(transfer::ImportArgs),
    /// Decode ISCCs (codes, units, sequences, ISCC-IDs) and print them as JSON.
    Explain(explain::ExplainArgs),
    /// Serve the index over HTTP (REST, JSON envelope).
    #[cfg(feature = "server")]
    Serve(serve::ServeArgs),
}

/// Output format of `search` and `info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Json,
    Table,
}

/// A failure: the message for stderr and the exit status.
#[derive(Debug)]
struct CliError {
    status: u8,
    message: String,
}

impl CliError {
    fn new(status: u8, message: impl Into<String>) -> CliError {
        CliError {
            status,
            message: message.into(),
        }
    }
}

/// The exit status of an engine error kind.
fn status_of(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidArgument
        | ErrorKind::InvalidIscc
        | ErrorKind::InvalidJson
        | ErrorKind::WrongRealm => exit::BAD_INPUT,
        ErrorKind::NotFound => exit::NOT_FOUND,
        ErrorKind::Io
        | ErrorKind::DiskFull
        | ErrorKind::Corrupt
        | ErrorKind::IncompatibleFormat => exit::IO,
        ErrorKind::Locked | ErrorKind::ReadOnly => exit::BUSY,
        ErrorKind::Closed | ErrorKind::Internal => exit::INTERNAL,
    }
}

impl From<EngineError> for CliError {
    fn from(e: EngineError) -> CliError {
        CliError::new(status_of(e.kind()), e.to_string())
    }
}

type CliResult = Result<(), CliError>;

/// Shared command context.
struct Ctx {
    path: PathBuf,
    pretty: bool,
}

impl Ctx {
    /// Open (or create) the index for writing.
    fn open_writer(&self) -> Result<IsccIndex, CliError> {
        IsccIndex::open(Some(&self.path), IndexOptions::default()).map_err(|e| {
            if e.kind() == ErrorKind::Locked {
                CliError::new(
                    exit::BUSY,
                    format!("{e} (is `iscc-vdb serve` running on it? use its REST API)"),
                )
            } else {
                e.into()
            }
        })
    }

    /// NOT_FOUND unless `path` holds an index (so nothing is created there).
    fn require_index(&self) -> CliResult {
        // A Milvus index's open says itself when it does not exist.
        if crate::engine::is_milvus_uri(&self.path) || self.path.join("primary.lmdb").exists() {
            return Ok(());
        }
        Err(CliError::new(
            exit::NOT_FOUND,
            format!(
                "no index at {} (set --path or ISCC_VDB_PATH, or create one with `iscc-vdb add`)",
                self.path.display()
            ),
        ))
    }

    /// Open an existing index for reading: read-only, without the writer
    /// lock and without writing a byte; journal records a dead writer left
    /// are replayed in memory (the engine checks every unit index against
    /// the store on open).
    fn open_reader(&self) -> Result<IsccIndex, CliError> {
        self.require_index()?;
        Ok(IsccIndex::restore(&self.path, true)?)
    }

    /// Print `value` as JSON on stdout.
    fn print<T: Serialize + ?Sized>(&self, value: &T) -> CliResult {
        let mut out = io::stdout().lock();
        let written = if self.pretty {
            serde_json::to_writer_pretty(&mut out, value)
        } else {
            serde_json::to_writer(&mut out, value)
        };
        written
            .map_err(io::Error::other)
            .and_then(|_| writeln!(out))
            .and_then(|_| out.flush())
            .or_else(ignore_broken_pipe)
    }
}

/// A closed stdout (`| head`) is not an error worth reporting.
fn ignore_broken_pipe(e: io::Error) -> CliResult {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(CliError::new(exit::IO, format!("cannot write output: {e}")))
    }
}

/// Close a writer, reporting a failed save; `result` wins when both fail.
fn finish(index: IsccIndex, result: CliResult) -> CliResult {
    let closed = index.close().map_err(CliError::from);
    result.and(closed)
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Run the CLI with the process arguments.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = Ctx {
        path: cli.path,
        pretty: cli.pretty,
    };
    let result = match cli.command {
        Command::Explain(args) => return explain::run(&args),
        Command::Add(args) => add::run(&ctx, &args),
        Command::Get(args) => manage::get(&ctx, &args),
        Command::Search(args) => search::run(&ctx, &args),
        Command::Remove(args) => manage::remove(&ctx, &args),
        Command::Save => manage::save(&ctx),
        Command::Rebuild(args) => manage::rebuild(&ctx, &args),
        Command::Compact => manage::compact(&ctx),
        Command::Info(args) => manage::info(&ctx, &args),
        Command::Export(args) => transfer::export(&ctx, &args),
        Command::Import(args) => transfer::import(&ctx, &args),
        #[cfg(feature = "server")]
        Command::Serve(args) => serve::run(&ctx, &args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iscc-vdb: {}", e.message);
            ExitCode::from(e.status)
        }
    }
}
