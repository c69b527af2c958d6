//! `search`: one query (an ISCC-CODE or units) or a batch (several codes).

use clap::Args;

use super::{exit, CliError, CliResult, Ctx, Format};
use crate::engine::{IsccMatches, Query, SearchParams};

#[derive(Debug, Args)]
pub(super) struct SearchArgs {
    /// ISCC-CODE(s) to search; several make a batch (the output is then an
    /// array, one result per code).
    #[arg(long, num_args = 1.., conflicts_with = "units")]
    iscc_code: Vec<String>,
    /// ISCC-UNITs of one query (any length 64–256 bits).
    #[arg(long, num_args = 1..)]
    units: Vec<String>,
    /// Matches wanted per query.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100_000))]
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
    if args.iscc_code.is_empty() && args.units.is_empty() {
        return Err(CliError::new(
            exit::USAGE,
            "search needs --iscc-code or --units",
        ));
    }
    if let Some(t) = args.unit_threshold {
        if !(0.0..=1.0).contains(&t) {
            return Err(CliError::new(
                exit::USAGE,
                format!("--unit-threshold {t}: expected a number from 0 to 1"),
            ));
        }
    }
    let params = SearchParams {
        count: args.count as usize,
        exact: args.exact,
        unit_threshold: args.unit_threshold,
    };
    let index = ctx.open_reader()?;
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
