use iscc_vdb::index::dataset::Dataset;
use iscc_vdb::index::{SearchOptions, ShardedIndex};
use std::time::Instant;
fn main() {
    let dir = std::path::Path::new("/tmp/bench/s1m");
    let qs = Dataset::queries(1_000_000, 1000, 42);
    let exact = SearchOptions {
        exact: Some(true),
        ..SearchOptions::count(10)
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let idx = ShardedIndex::<u64>::open_read_only(dir).unwrap();
    let truth = idx.search_batch(&qs, &exact).unwrap();
    pool.install(|| {
        for ef in [16, 24, 32, 48, 64, 128] {
            let o = SearchOptions {
                exact: Some(false),
                expansion_search: Some(ef),
                ..SearchOptions::count(10)
            };
            let t = Instant::now();
            let got: Vec<_> = qs.iter().map(|q| idx.search(q, &o).unwrap()).collect();
            let qps = qs.len() as f64 / t.elapsed().as_secs_f64();
            let mut hit = 0;
            let mut tot = 0;
            for (t, g) in truth.iter().zip(&got) {
                let w = t.last().unwrap().distance;
                tot += t.len();
                hit += g.iter().filter(|m| m.distance <= w).count().min(t.len());
            }
            println!(
                "ef {ef}: {qps:.0} q/s recall {:.4}",
                hit as f64 / tot as f64
            );
        }
    });
}
