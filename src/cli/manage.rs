//! `get`, `remove`, `save`, `rebuild`, `compact`, `info`.

use clap::Args;

use super::{display, exit, finish, CliError, CliResult, Ctx, Format};
use crate::engine::{EngineError, IndexInfo, IsccIndex};

#[derive(Debug, Args)]
pub(super) struct GetArgs {
    /// ISCC-IDs. One prints the entry; several print an array with `null`
    /// where an ID is unknown (exit status 4 when any is).
    #[arg(required = true)]
    iscc_ids: Vec<String>,
}

pub(super) fn get(ctx: &Ctx, args: &GetArgs) -> CliResult {
    let index = ctx.open_reader()?;
    let ids: Vec<&str> = args.iscc_ids.iter().map(String::as_str).collect();
    let entries = index.get_many(&ids)?;
    let missing: Vec<&str> = ids
        .iter()
        .zip(&entries)
        .filter(|(_, e)| e.is_none())
        .map(|(id, _)| *id)
        .collect();
    if ids.len() == 1 {
        if let Some(entry) = &entries[0] {
            ctx.print(entry)?;
        }
    } else {
        ctx.print(&entries)?;
    }
    not_found(&missing)
}

fn not_found(missing: &[&str]) -> CliResult {
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CliError::new(
            exit::NOT_FOUND,
            format!("not found: {}", missing.join(", ")),
        ))
    }
}

#[derive(Debug, Args)]
pub(super) struct RemoveArgs {
    /// ISCC-IDs to remove. Prints `{removed, not_found, mappings}`; exit
    /// status 4 when any ID was not in the index (the others are removed).
    #[arg(required = true)]
    iscc_ids: Vec<String>,
}

pub(super) fn remove(ctx: &Ctx, args: &RemoveArgs) -> CliResult {
    let index = ctx.open_writer()?;
    let ids: Vec<&str> = args.iscc_ids.iter().map(String::as_str).collect();
    let result = index
        .remove_report(&ids)
        .map_err(|e| match &e {
            EngineError::AfterCommit { ids, .. } => {
                // Removed from the store: say which.
                let _ = ctx.print(ids);
                CliError::from(e)
            }
            _ => {
                let mut err = CliError::from(e);
                err.message.push_str("; no entry was removed");
                err
            }
        })
        .and_then(|report| {
            ctx.print(&report)?;
            let missing: Vec<&str> = report.not_found.iter().map(String::as_str).collect();
            not_found(&missing)
        });
    finish(index, result)
}

pub(super) fn save(ctx: &Ctx) -> CliResult {
    maintain(ctx, IsccIndex::save)
}

#[derive(Debug, Args)]
pub(super) struct RebuildArgs {
    /// Rebuild only this unit type's index (e.g. CONTENT-TEXT-V0; may be
    /// repeated). Without it: every derived index.
    #[arg(long = "unit-type")]
    unit_types: Vec<String>,
}

pub(super) fn rebuild(ctx: &Ctx, args: &RebuildArgs) -> CliResult {
    if args.unit_types.is_empty() {
        return maintain(ctx, IsccIndex::rebuild);
    }
    let types: Vec<&str> = args.unit_types.iter().map(String::as_str).collect();
    maintain(ctx, |index| index.rebuild_unit_types(&types))
}

pub(super) fn compact(ctx: &Ctx) -> CliResult {
    maintain(ctx, |index| index.compact().map(|_| ()))
}

/// Run `op` on an existing index as its writer, then print its info.
fn maintain(ctx: &Ctx, op: impl FnOnce(&IsccIndex) -> Result<(), EngineError>) -> CliResult {
    ctx.require_index()?;
    let index = ctx.open_writer()?;
    let result = op(&index).and_then(|_| index.info());
    match result {
        Ok(info) => finish(index, ctx.print(&info)),
        Err(e) => finish(index, Err(e.into())),
    }
}

#[derive(Debug, Args)]
pub(super) struct InfoArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
}

pub(super) fn info(ctx: &Ctx, args: &InfoArgs) -> CliResult {
    let index = ctx.open_reader()?;
    let info = index.info()?;
    match args.format {
        Format::Json => ctx.print(&info),
        Format::Table => {
            print!("{}", info_table(&info));
            Ok(())
        }
    }
}

/// `info` as aligned text.
fn info_table(info: &IndexInfo) -> String {
    let mut out = String::new();
    let realm = info
        .realm
        .map(|r| r.to_string())
        .unwrap_or_else(|| "-".into());
    let rows = [
        ("path", display(&info.path)),
        ("entries", info.size.to_string()),
        ("realm", realm),
        ("max_dim", info.max_dim.to_string()),
        ("read_only", info.read_only.to_string()),
        ("journal_pending", info.journal_pending.to_string()),
        ("store_bytes", info.store_bytes.to_string()),
        ("format_version", info.format_version.to_string()),
    ];
    for (k, v) in rows {
        out.push_str(&format!("{k:<16} {v}\n"));
    }
    if !info.units.is_empty() {
        out.push_str(&format!(
            "\n{:<24} {:>12} {:>7} {:>11}\n",
            "unit type", "units", "shards", "tombstones"
        ));
        for (t, u) in &info.units {
            out.push_str(&format!(
                "{t:<24} {:>12} {:>7} {:>11}\n",
                u.len, u.shards, u.tombstones
            ));
        }
    }
    if !info.simprints.is_empty() {
        out.push_str(&format!(
            "\n{:<24} {:>5} {:>12} {:>12} {:>12} {:>7}\n",
            "simprint type", "bits", "entries", "chunks", "index rows", "shards"
        ));
        for (t, s) in &info.simprints {
            out.push_str(&format!(
                "{t:<24} {:>5} {:>12} {:>12} {:>12} {:>7}\n",
                s.bits, s.entries, s.chunks, s.rows, s.shards
            ));
        }
    }
    out
}
