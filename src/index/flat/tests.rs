use super::*;
use crate::metric::nphd;
use std::collections::HashMap;

fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 11
}

fn body(seed: &mut u64) -> Vec<u8> {
    let len = 8 * (1 + (lcg(seed) % 4) as usize);
    (0..len).map(|_| lcg(seed) as u8).collect()
}

#[test]
fn exact_search_equals_brute_force_with_key_ties() {
    let mut seed = 3;
    let mut store = FlatStore::default();
    let mut rows: Vec<(u64, Vec<u8>)> = Vec::new();
    for key in 0..3000u64 {
        // Many duplicates of few bodies make ties common.
        let b = if key % 3 == 0 && key > 0 {
            rows[(key as usize) / 2].1.clone()
        } else {
            body(&mut seed)
        };
        store.insert(key * 7 % 3001, &Row::new(&b).unwrap());
        rows.push((key * 7 % 3001, b));
    }
    for kernel in Kernel::available() {
        for _ in 0..20 {
            let q = body(&mut seed);
            let row = Row::new(&q).unwrap();
            for k in [1, 10, 100] {
                assert_eq!(
                    store.search(kernel, &ScanQuery::new(&row), k, None, None),
                    brute(&rows, &q, k, |_| true),
                    "{kernel:?}"
                );
            }
            let capped = store.search(kernel, &ScanQuery::new(&row), 50, Some(0.40), None);
            assert!(capped.iter().all(|h| h.distance <= 0.40));
        }
    }
}

#[test]
fn many_queries_in_one_pass_equal_one_at_a_time() {
    let mut seed = 5;
    let mut store = FlatStore::default();
    for key in 0..20_000u64 {
        store.insert(key, &Row::new(&body(&mut seed)).unwrap());
    }
    // More queries than one kernel pass takes, of every length, some
    // rows' own bodies (distance 0) among them.
    let queries: Vec<ScanQuery> = (0..2 * MANY as u64 + 3)
        .map(|i| {
            let row = if i % 5 == 0 {
                store.get(i * 97).unwrap()
            } else {
                Row::new(&body(&mut seed)).unwrap()
            };
            ScanQuery::new(&row)
        })
        .collect();
    let odd = |key: u64| key % 2 == 1;
    for kernel in Kernel::available() {
        for (k, cap, keep) in [
            (10, None, None),
            (1, None, Some(&odd as Keep<'_>)),
            (100, Some(0.3), None),
        ] {
            let many = store.search_many(kernel, &queries, k, cap, keep);
            for (q, got) in queries.iter().zip(&many) {
                assert_eq!(
                    got,
                    &store.search(kernel, q, k, cap, keep),
                    "{kernel:?} k={k}"
                );
                assert!(got.len() <= k);
                assert!(keep.is_none() || got.iter().all(|h| h.key % 2 == 1));
            }
        }
    }
}

#[test]
fn a_sample_of_every_step_th_row_spans_the_groups() {
    let mut seed = 9;
    let mut store = FlatStore::default();
    for key in 0..1000u64 {
        store.insert(key, &Row::new(&body(&mut seed)).unwrap());
    }
    let all = store.all_rows();
    assert_eq!(all.len(), 1000);
    let sample = store.rows_every(7);
    // Every 7th row of the concatenated groups, lengths in proportion.
    let want: Vec<(u64, Row)> = all.iter().copied().step_by(7).collect();
    assert_eq!(sample, want);
    let lengths: std::collections::HashSet<usize> = sample.iter().map(|(_, r)| r.len()).collect();
    assert_eq!(lengths.len(), 4);
    assert_eq!(store.rows_every(0), all);
}

#[test]
fn words_counts_what_a_query_of_each_length_reads() {
    let mut store = FlatStore::default();
    // 3 rows of 64 bits, 2 of 128, 1 of 256.
    for (key, bytes) in [(1, 8), (2, 8), (3, 8), (4, 16), (5, 16), (6, 32)] {
        store.insert(key, &Row::new(&vec![0xA5; bytes]).unwrap());
    }
    assert_eq!(store.words(1), 6);
    assert_eq!(store.words(2), 3 + 2 * 2 + 2);
    assert_eq!(store.words(4), 3 + 2 * 2 + 4);
    assert_eq!(FlatStore::default().words(4), 0);
}

#[test]
fn insert_remove_get_keep_slots_consistent() {
    let mut seed = 11;
    let mut store = FlatStore::default();
    let mut model = HashMap::new();
    for step in 0..5000u64 {
        let key = lcg(&mut seed) % 500;
        if step % 3 == 0 {
            assert_eq!(store.remove(key), model.remove(&key).is_some());
        } else if let std::collections::hash_map::Entry::Vacant(slot) = model.entry(key) {
            let b = body(&mut seed);
            store.insert(key, &Row::new(&b).unwrap());
            slot.insert(b);
        }
    }
    assert_eq!(store.len(), model.len());
    for (key, b) in &model {
        assert_eq!(store.get(*key).unwrap().body(), &b[..]);
    }
    let mut listed: Vec<u64> = store.keys().collect();
    listed.sort();
    let mut keys: Vec<u64> = model.keys().copied().collect();
    keys.sort();
    assert_eq!(listed, keys);
}

/// Any whole number of bytes, 1–32 (a quarter of them whole words).
fn any_body(seed: &mut u64) -> Vec<u8> {
    let len = 1 + (lcg(seed) % 32) as usize;
    (0..len).map(|_| lcg(seed) as u8).collect()
}

fn brute(rows: &[(u64, Vec<u8>)], q: &[u8], k: usize, keep: impl Fn(u64) -> bool) -> Vec<Hit> {
    let mut want: Vec<Hit> = rows
        .iter()
        .filter(|(key, _)| keep(*key))
        .map(|(key, b)| Hit {
            distance: nphd(q, b).unwrap(),
            key: *key,
        })
        .collect();
    want.sort();
    want.truncate(k);
    want
}

#[test]
fn byte_granular_rows_and_queries_equal_the_reference() {
    let mut seed = 11;
    let mut store = FlatStore::default();
    let mut rows: Vec<(u64, Vec<u8>)> = Vec::new();
    for key in 0..3000u64 {
        // Prefixes of earlier rows make exact ties across lengths common.
        let b = if key % 4 == 0 && key > 0 {
            let src = &rows[(key as usize) / 3].1;
            src[..1 + (lcg(&mut seed) as usize % src.len())].to_vec()
        } else {
            any_body(&mut seed)
        };
        store.insert(key, &Row::new(&b).unwrap());
        rows.push((key, b));
    }
    assert!(store.odd.len() > 1000 && store.odd.len() < store.len());
    let even = |key: u64| key.is_multiple_of(2);
    let queries: Vec<Vec<u8>> = (0..40)
        .map(|i| {
            if i % 4 == 0 {
                rows[i * 31].1.clone()
            } else {
                any_body(&mut seed)
            }
        })
        .collect();
    let prepared: Vec<ScanQuery> = queries
        .iter()
        .map(|q| ScanQuery::new(&Row::new(q).unwrap()))
        .collect();
    for kernel in Kernel::available() {
        for (q, sq) in queries.iter().zip(&prepared) {
            for k in [1, 10, 100] {
                assert_eq!(
                    store.search(kernel, sq, k, None, None),
                    brute(&rows, q, k, |_| true),
                    "{kernel:?}, query of {} bytes",
                    q.len()
                );
            }
            let kept = store.search(kernel, sq, 10, None, Some(&even));
            assert_eq!(kept, brute(&rows, q, 10, even));
        }
        // Whole-word and byte-granular queries in one pass.
        let many = store.search_many(kernel, &prepared, 10, Some(0.3), None);
        for (q, found) in queries.iter().zip(many) {
            let mut want = brute(&rows, q, 10, |_| true);
            want.retain(|h| h.distance <= 0.3);
            assert_eq!(found, want);
        }
    }
    // get, remove, keys and samples see the byte-granular rows.
    for (key, b) in rows.iter().step_by(7) {
        assert_eq!(store.get(*key).unwrap().body(), &b[..]);
    }
    for (key, _) in rows.iter().filter(|(k, _)| k % 3 == 0) {
        assert!(store.remove(*key));
    }
    rows.retain(|(k, _)| k % 3 != 0);
    assert_eq!(store.len(), rows.len());
    for (key, b) in &rows {
        assert_eq!(store.get(*key).unwrap().body(), &b[..], "key {key}");
    }
    let mut keys: Vec<u64> = store.keys().collect();
    keys.sort();
    assert_eq!(keys, rows.iter().map(|(k, _)| *k).collect::<Vec<_>>());
    let mut sampled: Vec<u64> = store.all_rows().into_iter().map(|(k, _)| k).collect();
    sampled.sort();
    assert_eq!(sampled, keys);
    // Pages of 97 cover every row once, bodies as stored.
    let mut paged: Vec<(u64, Vec<u8>)> = (0..store.len().div_ceil(97))
        .flat_map(|p| store.page(p * 97, 97))
        .collect();
    paged.sort();
    assert_eq!(paged, rows);
    let q = &queries[1];
    assert_eq!(
        store.search(Kernel::available()[0], &prepared[1], 10, None, None),
        brute(&rows, q, 10, |_| true)
    );
}

/// Rows in clusters (near-duplicates of a few centres, of every length, with
/// exact duplicates for key ties), so a query's top-k is tight and shared
/// bounds prune: the case where a wrong bound would drop true neighbours.
fn clustered(seed: &mut u64, n: u64, first_key: u64) -> Vec<(u64, Vec<u8>)> {
    let centres: Vec<Vec<u8>> = (0..40)
        .map(|_| (0..32).map(|_| lcg(seed) as u8).collect())
        .collect();
    (0..n)
        .map(|i| {
            let mut b = centres[(lcg(seed) % 40) as usize].clone();
            for _ in 0..lcg(seed) % 12 {
                let bit = (lcg(seed) % 256) as usize;
                b[bit / 8] ^= 1 << (bit % 8);
            }
            b.truncate(8 * (1 + (lcg(seed) % 4) as usize));
            if i % 97 == 5 {
                // A byte-granular row (compared in part 0 only).
                b.truncate(b.len() - 3);
            }
            (first_key + i, b)
        })
        .collect()
}

#[test]
fn split_scans_with_a_shared_bound_equal_one_scan() {
    let mut seed = 17;
    let rows = clustered(&mut seed, 30_000, 0);
    let mut store = FlatStore::default();
    for (key, b) in &rows {
        store.insert(*key, &Row::new(b).unwrap());
    }
    let third = |key: u64| !key.is_multiple_of(3);
    for kernel in Kernel::available() {
        for i in 0..24 {
            let q = if i % 3 == 0 {
                rows[i * 1000].1.clone()
            } else {
                clustered(&mut seed, 1, 0).pop().unwrap().1
            };
            let sq = ScanQuery::new(&Row::new(&q).unwrap());
            for (k, cap, keep) in [
                (1, None, None),
                (10, None, None),
                (100, None, Some(&third as Keep<'_>)),
                (10, Some(0.1), None),
            ] {
                let want = store.search(kernel, &sq, k, cap, keep);
                let mut brute_want = brute(&rows, &q, k, |key| keep.is_none_or(|f| f(key)));
                brute_want.retain(|h| cap.is_none_or(|c| h.distance <= c));
                assert_eq!(want, brute_want, "{kernel:?} k={k}");
                for parts in [2, 3, 7] {
                    let scan = Scan {
                        kernel,
                        k,
                        max_distance: cap,
                        keep,
                        lists: None,
                    };
                    let (got, _) = store.search_split(&sq, scan, None, parts);
                    assert_eq!(got, want, "{kernel:?} k={k} parts={parts}");
                }
            }
        }
    }
}

#[test]
fn stores_sharing_one_bound_find_the_global_top_k() {
    // Two "shards" of one query: each scan prunes by the other's k-th
    // distance; their union, merged, is the top-k of all rows.
    let mut seed = 23;
    let a_rows = clustered(&mut seed, 12_000, 0);
    let b_rows = clustered(&mut seed, 12_000, 1_000_000);
    let build = |rows: &[(u64, Vec<u8>)]| {
        let mut s = FlatStore::default();
        for (key, b) in rows {
            s.insert(*key, &Row::new(b).unwrap());
        }
        s
    };
    let (a, b) = (build(&a_rows), build(&b_rows));
    let all: Vec<(u64, Vec<u8>)> = a_rows.iter().chain(&b_rows).cloned().collect();
    let kernel = Kernel::detect();
    let mut pruned_somewhere = false;
    for i in 0..30 {
        let q = all[i * 797].1.clone();
        let sq = ScanQuery::new(&Row::new(&q).unwrap());
        for k in [1, 10, 50] {
            let bound = SharedBound::default();
            // One after the other, so the second certainly starts with the
            // first one's bound (in parallel they interleave).
            let scan = Scan {
                kernel,
                k,
                max_distance: None,
                keep: None,
                lists: None,
            };
            let (mut got, _) = a.search_split(&sq, scan, Some(&bound), 1);
            let (second, _) = b.search_split(&sq, scan, Some(&bound), 2);
            let alone = b.search(kernel, &sq, k, None, None);
            pruned_somewhere |= second.len() < alone.len();
            got.extend(second);
            got.sort();
            got.truncate(k);
            assert_eq!(got, brute(&all, &q, k, |_| true), "query {i} k={k}");
        }
    }
    assert!(
        pruned_somewhere,
        "the bound never kept a row of the second store out of its heap"
    );
}
