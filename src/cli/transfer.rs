//! `export` and `import`: copy entries between the index at `--path` and
//! another index (a directory or a `milvus://` URI) in key order, in
//! batches, with a progress bar; a copy cut short resumes where it stopped
//! (see `engine::transfer`).

use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{finish, CliError, CliResult, Ctx};
use crate::engine::{IndexOptions, IsccIndex, MAX_EXPORT_BATCH};

#[derive(Debug, Args)]
pub(super) struct ExportArgs {
    /// The index to copy into: a directory or `milvus://[USER:PASSWORD@]HOST:PORT/NAME`
    /// (created when missing).
    #[arg(long)]
    to: std::path::PathBuf,
    #[command(flatten)]
    copy: CopyArgs,
}

#[derive(Debug, Args)]
pub(super) struct ImportArgs {
    /// The index to copy from: a directory or `milvus://…` URI.
    #[arg(long)]
    from: std::path::PathBuf,
    #[command(flatten)]
    copy: CopyArgs,
}

#[derive(Debug, Args)]
struct CopyArgs {
    /// Entries per batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Copy from the first entry even when the target records an earlier
    /// copy from this source.
    #[arg(long)]
    restart: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// `export --to TARGET`: this index into TARGET.
pub(super) fn export(ctx: &Ctx, args: &ExportArgs) -> CliResult {
    let source = ctx.open_reader()?;
    let target = IsccIndex::open(Some(&args.to), IndexOptions::default())?;
    let result = copy(&source, &target, &args.copy);
    let _ = source.close();
    finish(target, result)
}

/// `import --from SOURCE`: SOURCE into this index.
pub(super) fn import(ctx: &Ctx, args: &ImportArgs) -> CliResult {
    let source = IsccIndex::restore(&args.from, true)?;
    let target = ctx.open_writer()?;
    let result = copy(&source, &target, &args.copy);
    let _ = source.close();
    finish(target, result)
}

fn copy(source: &IsccIndex, target: &IsccIndex, args: &CopyArgs) -> CliResult {
    if args.batch == 0 || args.batch > MAX_EXPORT_BATCH {
        return Err(CliError::new(
            super::exit::USAGE,
            format!("--batch {}: expected 1 to {MAX_EXPORT_BATCH}", args.batch),
        ));
    }
    let bar = ProgressBar::new(source.size()?);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} entries (ETA {eta})",
    ) {
        bar.set_style(style);
    }
    // indicatif draws only when stderr is a terminal.
    bar.set_draw_target(if args.quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    bar.enable_steady_tick(Duration::from_millis(200));
    let report = source.export_to(target, args.batch, args.restart, &mut |done, _| {
        bar.set_position(done)
    });
    bar.finish_and_clear();
    let report = report?;
    target.save()?;
    println!(
        "{}",
        serde_json::json!({
            "copied": report.copied,
            "total": report.total,
            "resumed": report.resumed,
            "from": source.path().display().to_string(),
            "to": target.path().display().to_string(),
        })
    );
    Ok(())
}
