//! The Milvus backend on a cluster (`scripts/milvus-cluster.sh`): the local
//! engine's exact results with segments on both query nodes, and every
//! search of a stream answering, unchanged, while one query node is killed.
//!
//! Behind a flag: `IVDB_MILVUS_CLUSTER_URI=milvus://127.0.0.1:19540` with
//! the cluster started by the script (`IVDB_MILVUS_CLUSTER_DIR`, default
//! `target/milvus-cluster`, is where the script keeps its processes). The
//! test kills query node 1 with the script and starts it again at the end.
#![cfg(feature = "milvus")]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::corpus;
use common::milvus::{add_all, assert_same_results, comparable, local, query_by_units, Remote};
use iscc_vdb::engine::{IndexOptions, IsccIndex, SearchParams};
use serde_json::Value;

/// Metrics ports of the script's query nodes 1 and 2.
const QUERY_NODE_METRICS: [u16; 2] = [9146, 9147];

fn cluster(test: &str) -> Option<String> {
    match std::env::var("IVDB_MILVUS_CLUSTER_URI") {
        Ok(uri) if !uri.is_empty() => Some(uri.trim_end_matches('/').to_string()),
        _ => {
            eprintln!("{test}: not run (start scripts/milvus-cluster.sh, set IVDB_MILVUS_CLUSTER_URI=milvus://127.0.0.1:19540)");
            None
        }
    }
}

fn script(args: &[&str]) {
    let dir = std::env::var("IVDB_MILVUS_CLUSTER_DIR")
        .unwrap_or_else(|_| "target/milvus-cluster".to_string());
    let status = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/milvus-cluster.sh"
        ))
        .args(args)
        .arg(dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "milvus-cluster.sh {args:?}: {status}");
}

/// Segments a query node serves, from its Prometheus metrics (the sum of
/// `milvus_querynode_segment_num`); `None` when it does not answer.
fn segments_on(port: u16) -> Option<f64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(
        body.lines()
            .filter(|l| l.starts_with("milvus_querynode_segment_num"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

#[test]
fn a_cluster_answers_as_locally_and_survives_a_query_node() {
    let Some(base) = cluster("a_cluster_answers_as_locally_and_survives_a_query_node") else {
        return;
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    // Two in-memory replicas, one on each query node; a lost answer is
    // given up on (and asked again) after 10 s.
    let name = Remote {
        uri: format!(
            "{base}/c_failover_{}_{nanos}?replicas=2&timeout_s=10",
            std::process::id()
        ),
    };
    IsccIndex::drop_remote(&name.uri).unwrap();
    let remote = IsccIndex::open(Some(name.uri.as_ref()), IndexOptions::default()).unwrap();
    let records = corpus();
    let local = local();
    assert_eq!(add_all(&local, &records), add_all(&remote, &records));
    let queries: Vec<_> = records.iter().filter_map(query_by_units).collect();
    let params = SearchParams {
        exact: true,
        ..SearchParams::default()
    };
    assert_same_results(&local, &remote, &queries, &params, "cluster, count 10");

    // Segments on both query nodes (growing ones count: nothing was flushed).
    for port in QUERY_NODE_METRICS {
        let n = segments_on(port).unwrap_or(0.0);
        assert!(n > 0.0, "query node on :{port} serves no segment");
        eprintln!("query node :{port} serves {n} segments");
    }

    // A stream of searches while query node 1 dies: each must answer as
    // before. Batches of 50 queries, one after another, on 2 threads.
    let probe: Vec<_> = queries.iter().take(100).cloned().collect();
    let expected: Vec<Value> = remote
        .search_batch(&probe, &params)
        .unwrap()
        .queries
        .iter()
        .map(comparable)
        .collect();
    let stop_at = Instant::now() + Duration::from_secs(90);
    let killed_at = Instant::now() + Duration::from_secs(5);
    let (answered, failures) = std::thread::scope(|s| {
        let workers: Vec<_> = probe
            .chunks(50)
            .zip(expected.chunks(50))
            .map(|(qs, want)| {
                let remote = &remote;
                let params = &params;
                s.spawn(move || {
                    let (mut ok, mut failed) = (0usize, Vec::new());
                    let mut slowest = Duration::ZERO;
                    while Instant::now() < stop_at {
                        let t = Instant::now();
                        let answer = remote.search_batch(qs, params);
                        slowest = slowest.max(t.elapsed());
                        match answer {
                            Ok(got) => {
                                let got: Vec<Value> = got.queries.iter().map(comparable).collect();
                                assert_eq!(got, want, "a result changed while a node died");
                                ok += 1;
                            }
                            Err(e) => failed.push(format!("{:.1?}: {e}", Instant::now())),
                        }
                    }
                    eprintln!("slowest batch of this worker: {slowest:.1?}");
                    (ok, failed)
                })
            })
            .collect();
        std::thread::sleep(killed_at.saturating_duration_since(Instant::now()));
        script(&["kill-querynode", "1"]);
        eprintln!("query node 1 killed");
        workers.into_iter().map(|w| w.join().unwrap()).fold(
            (0, Vec::new()),
            |(n, mut f), (ok, failed)| {
                f.extend(failed);
                (n + ok, f)
            },
        )
    });
    script(&["start-querynode", "1"]);
    eprintln!("{answered} batches answered during the failover");
    assert!(
        failures.is_empty(),
        "{} of {} searches failed while a query node died: {:?}",
        failures.len(),
        failures.len() + answered,
        &failures[..failures.len().min(5)]
    );
    assert!(answered > 10, "the stream ran ({answered} batches)");
    // After the failover, the whole corpus still answers as locally.
    assert_same_results(&local, &remote, &queries, &params, "after the failover");
}
