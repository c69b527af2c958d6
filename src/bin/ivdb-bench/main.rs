//! `ivdb-bench`: benchmarks that print figures (never pass/fail).
//!
//! `ivdb-bench unit --n 1000000` generates the dataset of
//! `shared/spec/bench-dataset.md`, prints its SHA-256, and measures the unit
//! index: add rate (1 and 2 threads), exact-scan and HNSW search rates
//! (single query and batch, 1 and 2 threads), recall@10 (tie-aware and ids)
//! against the exact scan, the expansion_search curve, bytes per code on
//! disk, peak RSS, load and view times. `ivdb-bench crossover` measures where
//! the exact scan stops beating HNSW.
//!
//! Files: `support.rs` (timing, recall, digests, RSS), one file per
//! scenario (`unit.rs` with `crossover` and `bloom`, `ivf.rs`, `sharded.rs`,
//! `engine.rs`, `features.rs`, `serve_load.rs`).

mod engine;
mod features;
mod ivf;
#[cfg(feature = "milvus")]
mod milvus;
mod serve_load;
mod sharded;
mod support;
mod unit;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use iscc_vdb::index::{SearchOptions, UnitIndex};
use iscc_vdb::testing::dataset::Dataset;

use self::engine::EngineArgs;
use self::features::FeaturesArgs;
use self::serve_load::ServeLoadArgs;
use self::sharded::ShardedArgs;
use self::support::peak_rss_mb;
use self::unit::UnitArgs;

#[derive(Parser)]
#[command(name = "ivdb-bench", about = "iscc-vdb benchmarks (print figures)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The unit index on the nphd-clusters dataset.
    Unit(UnitArgs),
    /// The partitioned (IVF) path of the unit index (no graph: minutes at 10M).
    Ivf(self::ivf::IvfArgs),
    /// The REST server (`iscc-vdb serve` as a child process) under
    /// concurrent `/search` load on loopback.
    ServeLoad(ServeLoadArgs),
    /// Exact scan vs HNSW q/s at growing index sizes.
    Crossover {
        #[arg(long, default_value_t = 500)]
        q: usize,
    },
    /// The scalable bloom filter: insert rate, contains misses/s, false positives.
    Bloom {
        #[arg(long, default_value_t = 1_000_000)]
        n: u64,
    },
    /// The ISCC index (engine): whole entries with META, CONTENT-TEXT, DATA
    /// and INSTANCE units.
    Engine(EngineArgs),
    /// The ISCC index with granular features: add and chunk search.
    Features(FeaturesArgs),
    /// The sharded index on the nphd-clusters dataset.
    Sharded(ShardedArgs),
    /// Open a saved sharded index (read-only), search Q dataset queries,
    /// print peak RSS (MB).
    ShardedOpen {
        path: PathBuf,
        #[arg(long, default_value_t = 1_000)]
        q: usize,
        #[arg(long, default_value_t = 1_000_000)]
        n: usize,
    },
    /// Write the nphd-clusters dataset to a file for other tools (the FAISS
    /// anchor, `scripts/bench/faiss_anchor.py`): N codes then Q queries,
    /// each a 33-byte record (length in bytes, then the body padded with
    /// zeros to 32 bytes).
    Dataset {
        out: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        n: usize,
        #[arg(long, default_value_t = 1_000)]
        q: usize,
    },
    /// Open a saved unit index, search Q dataset queries, print peak RSS (MB).
    Open {
        path: PathBuf,
        #[arg(long)]
        view: bool,
        #[arg(long, default_value_t = 1_000)]
        q: usize,
        /// N of the dataset the queries come from.
        #[arg(long, default_value_t = 1_000_000)]
        n: usize,
    },
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Unit(args) => unit::unit(&args),
        Command::Ivf(args) => ivf::ivf(&args),
        Command::Crossover { q } => unit::crossover(q),
        Command::Bloom { n } => unit::bloom(n),
        Command::Sharded(args) => sharded::sharded(&args),
        Command::Engine(args) => engine::engine(&args),
        Command::Features(args) => features::features(&args),
        Command::ServeLoad(args) => serve_load::serve_load(&args),
        Command::Dataset { out, n, q } => write_dataset(&out, n, q),
        Command::ShardedOpen { path, q, n } => {
            let idx = iscc_vdb::index::ShardedIndex::<u64>::open_read_only(&path).expect("open");
            search_then_print_rss(n, q, |qs, o| {
                idx.search_batch(qs, o).expect("search");
            });
        }
        Command::Open { path, view, q, n } => {
            let idx = UnitIndex::restore(&path, view).expect("open");
            search_then_print_rss(n, q, |qs, o| {
                idx.search_batch(qs, o).expect("search");
            });
        }
    }
}

/// See [`Command::Dataset`].
fn write_dataset(out: &std::path::Path, n: usize, q: usize) {
    use std::io::Write;
    let data = support::dataset_with_digest(n, q);
    let file = std::fs::File::create(out).expect("create the dataset file");
    let mut w = std::io::BufWriter::new(file);
    for body in data.codes.iter().chain(data.queries.iter()) {
        let mut record = [0u8; 33];
        record[0] = body.len() as u8;
        record[1..1 + body.len()].copy_from_slice(body);
        w.write_all(&record).expect("write the dataset file");
    }
    w.flush().expect("write the dataset file");
    println!("wrote {n} codes and {q} queries to {}", out.display());
}

/// Search the dataset's Q queries approximately (`search`), then print this
/// process's peak RSS in MB (read by [`support::child_peak_rss_mb`]).
fn search_then_print_rss(n: usize, q: usize, search: impl Fn(&[Vec<u8>], &SearchOptions)) {
    let queries = Dataset::queries(n, q, 42);
    let approx = SearchOptions {
        exact: Some(false),
        ..SearchOptions::count(10)
    };
    search(&queries, &approx);
    println!("{:.1}", peak_rss_mb());
}
