//! The `iscc-vdb` command-line tool (feature `cli`).
//!
//! Each command writes JSON to stdout and a one-line message to stderr on
//! failure; the exit status is 0 on success, 1 when some input was rejected,
//! 2 on usage errors (from clap).

mod explain;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// iscc-vdb: nearest-neighbour search for ISCC codes.
#[derive(Debug, Parser)]
#[command(name = "iscc-vdb", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode ISCCs (codes, units, sequences, ISCC-IDs) and print them as JSON.
    Explain(explain::ExplainArgs),
}

/// Run the CLI with the process arguments.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Explain(args) => explain::run(&args),
    }
}
