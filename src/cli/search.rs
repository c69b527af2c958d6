//! `search`: one query (an ISCC-CODE, units and/or granular features, or
//! an indexed entry for "more like this"), a batch (several codes), or
//! every query of a file.

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
    /// Granular features of one query, from a JSON file (`-`: standard
    /// input): an entry or `.iscc.json` with `features` (or iscc-search's
    /// `simprints`), or a list of feature sets. Entries sharing segments
    /// are listed as chunk matches.
    #[arg(long, conflicts_with = "file")]
    features: Option<PathBuf>,
    /// "More like this": the units and features of this indexed entry
    /// (ISCC-ID) are the query; the entry itself is left out.
    #[arg(long, conflicts_with_all = ["iscc_code", "units", "features", "file"])]
    like: Option<String>,
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
    /// A stored chunk matches a query simprint when their similarity is at
    /// least this (default 0.75).
    #[arg(long)]
    simprint_threshold: Option<f32>,
    /// List each chunk match's matched segments (query and stored simprint,
    /// offset, size, score, frequency).
    #[arg(long)]
    detail: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
}

pub(super) fn run(ctx: &Ctx, args: &SearchArgs) -> CliResult {
    if args.iscc_code.is_empty()
        && args.units.is_empty()
        && args.file.is_none()
        && args.features.is_none()
        && args.like.is_none()
    {
        return Err(CliError::new(
            exit::USAGE,
            "search needs --iscc-code, --units, --features, --like or --file",
        ));
    }
    if args.features.is_some() && args.iscc_code.len() > 1 {
        return Err(CliError::new(
            exit::USAGE,
            "--features goes with one query (one --iscc-code or --units)",
        ));
    }
    let params = SearchParams {
        count: args.count as usize,
        exact: args.exact,
        unit_threshold: args.unit_threshold,
        simprint_threshold: args.simprint_threshold,
        detail: args.detail,
    };
    let features = match &args.features {
        Some(path) => input::read_features(path)?,
        None => Vec::new(),
    };
    let index = ctx.open_reader()?;
    if let Some(file) = &args.file {
        return search_file(ctx, args, &index, file, &params);
    }
    let one = |query: Query, label: String| -> Result<(Vec<String>, Vec<IsccMatches>), CliError> {
        let query = Query {
            features: features.clone(),
            ..query
        };
        Ok((vec![label], vec![index.search(&query, &params)?]))
    };
    let (labels, results): (Vec<String>, Vec<IsccMatches>) = if let Some(id) = &args.like {
        one(Query::like(id.clone()), format!("like {id}"))?
    } else if !args.units.is_empty() {
        one(
            Query::units(args.units.iter().cloned()),
            args.units.join(" "),
        )?
    } else if args.iscc_code.len() == 1 {
        one(
            Query::code(args.iscc_code[0].clone()),
            args.iscc_code[0].clone(),
        )?
    } else if args.iscc_code.is_empty() {
        let label = args
            .features
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        one(Query::default(), format!("features {label}"))?
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
    out.push_str(&chunk_table(m));
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

/// The chunk matches of a query: rank, ISCC-ID, score, per simprint type
/// its score and matched/queried simprints; with `--detail` a line per
/// matched segment.
fn chunk_table(m: &IsccMatches) -> String {
    if m.chunk_matches.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "{} chunk matches\n{:>4}  {:<24} {:>6}  simprint types (score matched/queried)\n",
        m.chunk_matches.len(),
        "rank",
        "iscc_id",
        "score"
    );
    for (i, c) in m.chunk_matches.iter().enumerate() {
        let types: Vec<String> = c
            .types
            .iter()
            .map(|(t, s)| format!("{t} {:.3} {}/{}", s.score, s.matches, s.queried))
            .collect();
        out.push_str(&format!(
            "{:>4}  {:<24} {:>6.3}  {}\n",
            i + 1,
            c.iscc_id,
            c.score,
            types.join(", ")
        ));
        for (t, s) in &c.types {
            for ch in s.chunks.iter().flatten() {
                let segment = match (ch.offset, ch.size) {
                    (Some(o), Some(z)) => format!("bytes {o}+{z}"),
                    (Some(o), None) => format!("bytes {o}+?"),
                    _ => "segment unknown".to_string(),
                };
                out.push_str(&format!(
                    "        {t} query chunk {} ~ chunk {} ({segment}) score {:.3} freq {}\n",
                    ch.query_chunk, ch.chunk, ch.score, ch.freq
                ));
            }
        }
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
