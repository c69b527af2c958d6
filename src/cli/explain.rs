//! `iscc-vdb explain`: decode ISCCs and print what they hold.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use clap::Args;
use serde_json::{json, Value};

use crate::codec::{explain, Iscc};

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// ISCCs to explain (ISCC-CODE, unit, unit sequence or ISCC-ID). With
    /// none, or `-`, one ISCC per line is read from standard input.
    iscc: Vec<String>,
    /// Print one compact JSON object per line instead of a JSON array.
    #[arg(long)]
    lines: bool,
}

/// Explain one input: the codec's description, or `{input, error}`.
pub fn explain_one(input: &str) -> (Value, bool) {
    match Iscc::parse(input) {
        Ok(iscc) => (explain(input, &iscc), true),
        Err(e) => (json!({ "input": input, "error": e.to_string() }), false),
    }
}

pub fn run(args: &ExplainArgs) -> ExitCode {
    let mut inputs = Vec::new();
    for arg in &args.iscc {
        if arg == "-" {
            if let Err(e) = read_stdin(&mut inputs) {
                eprintln!("iscc-vdb explain: cannot read standard input: {e}");
                return ExitCode::from(super::exit::IO);
            }
        } else {
            inputs.push(arg.clone());
        }
    }
    if args.iscc.is_empty() {
        if let Err(e) = read_stdin(&mut inputs) {
            eprintln!("iscc-vdb explain: cannot read standard input: {e}");
            return ExitCode::from(super::exit::IO);
        }
    }
    let mut all_ok = true;
    let results: Vec<Value> = inputs
        .iter()
        .map(|input| {
            let (value, ok) = explain_one(input);
            if !ok {
                eprintln!(
                    "iscc-vdb explain: {}",
                    value["error"].as_str().unwrap_or("")
                );
            }
            all_ok &= ok;
            value
        })
        .collect();
    let mut out = io::stdout().lock();
    let written = if args.lines {
        results.iter().try_for_each(|v| writeln!(out, "{v}"))
    } else {
        serde_json::to_writer_pretty(&mut out, &results)
            .map_err(io::Error::other)
            .and_then(|_| writeln!(out))
    };
    if let Err(e) = written.and_then(|_| out.flush()) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("iscc-vdb explain: cannot write output: {e}");
            return ExitCode::from(super::exit::IO);
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::exit::BAD_INPUT)
    }
}

/// One ISCC per non-empty line; surrounding whitespace is trimmed here (the
/// codec itself accepts none).
fn read_stdin(inputs: &mut Vec<String>) -> io::Result<()> {
    for line in io::stdin().lock().lines() {
        let line = line?;
        let trimmed = line.trim();
        if !trimmed.is_empty() {
            inputs.push(trimmed.to_string());
        }
    }
    Ok(())
}
