use iscc_vdb::index::dataset::Dataset;
use iscc_vdb::index::{SearchOptions, ShardedIndex};
use std::time::Instant;
fn main() {
    let root = std::path::Path::new("/tmp/bench/eng/engine-durable");
    let data = Dataset::generate(100_000, 1000, 42);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    for t in ["content-text-v0", "data-none-v0", "meta-none-v0"] {
        let idx = ShardedIndex::<u64>::open_read_only(root.join(t)).unwrap();
        for k in [20usize, 200] {
            let o = SearchOptions::count(k);
            pool.install(|| {
                let t0 = Instant::now();
                for q in &data.queries {
                    std::hint::black_box(idx.search(q, &o).unwrap());
                }
                println!(
                    "{t} k={k}: {:.0} q/s (shards {}, len {})",
                    1000.0 / t0.elapsed().as_secs_f64(),
                    idx.shard_count(),
                    idx.len()
                );
            });
        }
    }
}
