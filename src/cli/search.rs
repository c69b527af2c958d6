//! `search`: one query (an ISCC-CODE or units), a batch (several codes),
//! or every query of a file.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;

use super::input::{self, Entries, ReadError};
use super::{exit, ignore_broken_pipe, CliError, CliResult, Ctx, Format};
use crate::engine::{IsccIndex, IsccMatches, Query, SearchParams, DEFAULT_COUNT, MAX_SEARCH_COUNT};

/// Queries searched per batch when reading a file.
const FILE_BATCH: usize = 1000;

#[derive(Debug, Args)]
pub(super) struct SearchArgs {
    /// ISCC-CODE(s) to search; several make a batch (the output is then an
    /// array, one result per code).
    #[arg(long, num_args = 1.., conflicts_with = "units")]
    iscc_code: Vec<String>,
    /// ISCC-UNITs of one query (any length 64–256 bits).
    #[arg(long, num_args = 1.., conflicts_with = "file")]
    units: Vec<String>,
    /// Queries from a file (`-`: standard input): JSON objects with
    /// `iscc_code` or `units` (other fields are ignored, so an entries file
    /// works), as a JSON array or JSON Lines. Prints an array, one result
    /// per query, in order.
    #[arg(long, conflicts_with = "iscc_code")]
    file: Option<PathBuf>,
    /// Matches wanted per query.
    #[arg(long, default_value_t = DEFAULT_COUNT as u64,
          value_parser = clap::value_parser!(u64).range(1..=MAX_SEARCH_COUNT as u64))]
    count: u64,
    /// Exhaustive search in every unit index (no HNSW approximation).
    #[arg(long)]
    exact: bool,
    /// Unit scores below this are ignored (default: the index's, 0.75).
    #[arg(long)]
    unit_threshold: Option<f32>,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
}

pub(super) fn run(ctx: &Ctx, args: &SearchArgs) -> CliResult {
    if args.iscc_code.is_empty() && args.units.is_empty() && args.file.is_none() {
        return Err(CliError::new(
            exit::USAGE,
            "search needs --iscc-code, --units or --file",
        ));
    }
    let params = SearchParams {
        count: args.count as usize,
        exact: args.exact,
        unit_threshold: args.unit_threshold,
    };
    let index = ctx.open_reader()?;
    if let Some(file) = &args.file {
        return search_file(ctx, args, &index, file, &params);
    }
    let (labels, results): (Vec<String>, Vec<IsccMatches>) = if !args.units.is_empty() {
        let m = index.search(&Query::units(args.units.iter().cloned()), &params)?;
        (vec![args.units.join(" ")], vec![m])
    } else if args.iscc_code.len() == 1 {
        let m = index.search(&Query::code(args.iscc_code[0].clone()), &params)?;
        (args.iscc_code.clone(), vec![m])
    } else {
        let queries: Vec<Query> = args.iscc_code.iter().cloned().map(Query::code).collect();
        let b = index.search_batch(&queries, &params)?;
        (args.iscc_code.clone(), b.queries)
    };
    match args.format {
        Format::Json if results.len() == 1 && args.iscc_code.len() <= 1 => ctx.print(&results[0]),
        Format::Json => ctx.print(&results),
        Format::Table => {
            let mut out = String::new();
            for (label, m) in labels.iter().zip(&results) {
                out.push_str(&table(label, m));
            }
            print!("{out}");
            Ok(())
        }
    }
}

/// One query's matches as aligned text: rank, ISCC-ID, score, then the
/// per-unit-type scores (`*` marks an INSTANCE match).
fn table(label: &str, m: &IsccMatches) -> String {
    let mut out = format!("query {label}: {} matches\n", m.len());
    if m.is_empty() {
        return out;
    }
    out.push_str(&format!(
        "{:>4}  {:<24} {:>6}  unit scores\n",
        "rank", "iscc_id", "score"
    ));
    for (i, hit) in m.matches.iter().enumerate() {
        let units: Vec<String> = hit
            .units
            .iter()
            .map(|(t, s)| {
                let mark = if s.kept { "" } else { " (dropped)" };
                format!("{t} {:.3}{mark}", s.score)
            })
            .collect();
        let instance = if hit.instance { " INSTANCE*" } else { "" };
        out.push_str(&format!(
            "{:>4}  {:<24} {:>6.3}  {}{instance}\n",
            i + 1,
            hit.iscc_id,
            hit.score,
            units.join(", ")
        ));
    }
    out
}

/// Search every query of a file in batches, printing results as they come
/// (a JSON array, or one table per query).
fn search_file(
    ctx: &Ctx,
    args: &SearchArgs,
    index: &IsccIndex,
    file: &std::path::Path,
    params: &SearchParams,
) -> CliResult {
    let (source, name, _, _) = input::open(file)?;
    let mut entries = Entries::new(source, &name)?;
    let mut out = io::stdout().lock();
    let mut first = true;
    let mut seen = 0usize;
    let write = |out: &mut io::StdoutLock, text: &str| out.write_all(text.as_bytes());
    // The results printed before a failure stay valid JSON: the array is
    // closed whatever stops the loop.
    let result = (|| -> CliResult {
        loop {
            let mut lines = Vec::with_capacity(FILE_BATCH);
            let mut queries = Vec::with_capacity(FILE_BATCH);
            while queries.len() < FILE_BATCH {
                let item = match entries.next(seen) {
                    Ok(Some(item)) => item,
                    Ok(None) => break,
                    Err(ReadError::Fatal(e)) => return Err(e),
                    Err(ReadError::Syntax { message, .. }) => {
                        return Err(CliError::new(exit::BAD_INPUT, message))
                    }
                };
                seen += 1;
                let query = Query::of_entry(&item.value).map_err(|e| {
                    CliError::new(
                        exit::BAD_INPUT,
                        format!("{name}: line {}: not a query: {e}", item.line),
                    )
                })?;
                lines.push(item.line);
                queries.push(query);
            }
            if queries.is_empty() {
                break;
            }
            let batch = index.search_batch(&queries, params).map_err(|e| {
                CliError::new(
                    super::status_of(e.kind()),
                    input::locate(&e.to_string(), "queries", &name, &lines),
                )
            })?;
            if first && args.format == Format::Json {
                // Opened only now, so a failing first batch prints nothing.
                write(&mut out, "[").or_else(ignore_broken_pipe)?;
            }
            for (line, m) in lines.iter().zip(&batch.queries) {
                let text = match args.format {
                    Format::Table => table(&format!("line {line}"), m),
                    Format::Json => {
                        let json = if ctx.pretty {
                            serde_json::to_string_pretty(m)
                        } else {
                            serde_json::to_string(m)
                        }
                        .map_err(|e| CliError::new(exit::INTERNAL, e.to_string()))?;
                        let sep = if first { "\n" } else { ",\n" };
                        format!("{sep}{json}")
                    }
                };
                first = false;
                write(&mut out, &text).or_else(ignore_broken_pipe)?;
            }
        }
        Ok(())
    })();
    if args.format == Format::Json && (result.is_ok() || !first) {
        let close = if first { "[]\n" } else { "\n]\n" };
        write(&mut out, close).or_else(ignore_broken_pipe)?;
    }
    out.flush().or_else(ignore_broken_pipe)?;
    result
}
