#!/usr/bin/env python3
"""FAISS's binary indexes on the nphd-clusters dataset: the anchor our own
figures are compared with in the same run (issue 37).

Input: the file written by `ivdb-bench dataset FILE --n N --q Q` (N codes then
Q queries, 33-byte records: length in bytes, body zero-padded to 32 bytes).

FAISS indexes fixed-length codes, NPHD compares variable lengths, so two
honest views (say which next to every figure):

* `fixed256` — the 256-bit codes and 256-bit queries only. There NPHD is
  Hamming / 256, so FAISS answers exactly the question our index answers on
  the same subset: IndexBinaryFlat (exact), IndexBinaryIVF (nprobe sweep),
  IndexBinaryHNSW (efSearch sweep).
* `prefix64` — the first 64 bits of every code and query: FAISS proposes
  `--candidates` rows per query by prefix Hamming, numpy re-ranks them by
  exact NPHD over full lengths (what a user of FAISS would have to do).
  Recall is measured against exact NPHD over all codes.

Recall is tie-aware recall@10 (a returned row at a distance <= the true
10th distance counts) and the share of true top-10 neighbours within NPHD
0.25 that were returned. Queries/s are single queries (one per call): on 1
thread, and on 2 Python threads each looping over half the queries (FAISS
releases the GIL while it searches; its OpenMP pool is set to 1 thread so
the two do not oversubscribe the machine; the Python around each call,
and the numpy re-rank of `prefix64`, hold the GIL and count). Ends with a `summary:` line of name=value pairs.
"""
from __future__ import annotations

import argparse
import hashlib
import threading
import time
from typing import Callable

import faiss  # type: ignore[import-untyped]
import numpy as np

RECORD = 33


def load(path: str, n: int, q: int) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size != (n + q) * RECORD:
        raise SystemExit(f"{path}: {raw.size} bytes, expected {(n + q) * RECORD} for n={n} q={q}")
    raw = raw.reshape(-1, RECORD)
    return raw[:n], raw[n:]


def digest(codes: np.ndarray, queries: np.ndarray) -> str:
    sha = hashlib.sha256()
    for rec in (codes, queries):
        for row in rec:
            sha.update(row[1 : 1 + row[0]].tobytes())
    return sha.hexdigest()


def nphd_all(cw: np.ndarray, words: np.ndarray, qw: np.ndarray, qlen: int) -> np.ndarray:
    """NPHD of one query (qlen words) against every code."""
    m = np.minimum(words, qlen)
    x = np.bitwise_count(cw ^ qw).astype(np.int32)
    mask = np.arange(4, dtype=np.int64)[None, :] < m[:, None]
    return (x * mask).sum(1) / (64.0 * m)


def truth(cw: np.ndarray, words: np.ndarray, qws: np.ndarray, qlens: np.ndarray) -> list[np.ndarray]:
    """Exact NPHD distances of the true top-10 per query (sorted)."""
    out = []
    for qw, ql in zip(qws, qlens):
        d = nphd_all(cw, words, qw, int(ql))
        part = np.partition(d, 10)[:10]
        out.append(np.sort(part))
    return out


def recalls(true10: list[np.ndarray], got: list[np.ndarray]) -> tuple[float, float]:
    """Tie-aware recall@10 and recall of true neighbours within NPHD 0.25;
    `got` holds the exact distances of the returned rows."""
    hit = tot = near_hit = near_tot = 0
    for t, g in zip(true10, got):
        g = np.sort(g)[:10]
        hit += int((g <= t[-1] + 1e-9).sum())
        tot += len(t)
        near = int((t <= 0.25 + 1e-9).sum())
        near_tot += near
        near_hit += min(near, int((g <= 0.25 + 1e-9).sum()))
    return hit / max(tot, 1), near_hit / max(near_tot, 1)


def qps(search: Callable[[int], object], nq: int, threads: int) -> float:
    """Single queries per second: `threads` OS threads, each looping over
    its share of the queries (a pool taking one query per task measured
    slower on 2 threads than on 1: its per-task overhead holds the GIL)."""
    faiss.omp_set_num_threads(1)

    def run(part: int) -> None:
        for i in range(part, nq, threads):
            search(i)

    t = time.perf_counter()
    if threads == 1:
        run(0)
    else:
        workers = [threading.Thread(target=run, args=(p,)) for p in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    return nq / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--q", type=int, default=1_000)
    ap.add_argument("--truth-q", type=int, default=1_000, help="queries with exact truth (recall)")
    ap.add_argument("--view", choices=["fixed256", "prefix64"], default="fixed256")
    ap.add_argument("--nlist", type=int, default=0, help="IVF lists (0: 4*sqrt(n))")
    ap.add_argument("--nprobe", default="1,2,4,8,16,32,64,128")
    ap.add_argument("--ef", default="16,32,64,128,256")
    ap.add_argument("--candidates", type=int, default=100, help="prefix64: rows re-ranked")
    ap.add_argument("--threads", default="1,2")
    a = ap.parse_args()
    codes, queries = load(a.data, a.n, a.q)
    print(f"dataset sha256: {digest(codes, queries)} (n={a.n}, q={a.q})")
    print(f"faiss {faiss.__version__}, numpy {np.__version__}, view {a.view}")
    threads = [int(t) for t in a.threads.split(",")]
    summary: dict[str, float] = {}
    cw = codes[:, 1:].copy().view("<u8")
    words = codes[:, 0].astype(np.int64) // 8
    qws = queries[:, 1:].copy().view("<u8")
    qlens = queries[:, 0].astype(np.int64) // 8
    if a.view == "fixed256":
        sel = np.nonzero(words == 4)[0]
        qsel = np.nonzero(qlens == 4)[0]
        xb = np.ascontiguousarray(codes[sel, 1:])
        xq = np.ascontiguousarray(queries[qsel, 1:])
        d_bits = 256
        print(f"fixed256: {len(sel)} codes, {len(qsel)} queries")
        t = time.perf_counter()
        true10 = truth(cw[sel], words[sel], qws[qsel][: a.truth_q], qlens[qsel][: a.truth_q])
        print(f"truth in {time.perf_counter() - t:.1f} s")
        rerank = None
    else:
        xb = np.ascontiguousarray(codes[:, 1:9])
        xq = np.ascontiguousarray(queries[:, 1:9])
        qsel = np.arange(len(queries))
        d_bits = 64
        t = time.perf_counter()
        true10 = truth(cw, words, qws[: a.truth_q], qlens[: a.truth_q])
        print(f"truth in {time.perf_counter() - t:.1f} s")

        def rerank(i: int, ids: np.ndarray) -> np.ndarray:
            ids = ids[ids >= 0]
            return np.sort(nphd_all(cw[ids], words[ids], qws[i], int(qlens[i])))[:10]

    k = 10 if a.view == "fixed256" else a.candidates
    nq = len(xq)
    ntruth = min(a.truth_q, nq)

    def measure(name: str, index: faiss.IndexBinary) -> None:
        def one(i: int) -> np.ndarray:
            dist, ids = index.search(xq[i : i + 1], k)
            if rerank is not None:
                return rerank(int(qsel[i]), ids[0])
            return dist[0][dist[0] >= 0] / d_bits

        got = [one(i) for i in range(ntruth)]
        r10, r25 = recalls(true10, got)
        line = f"{name}: recall@10(tie) {r10:.4f}, within 0.25 {r25:.4f}"
        summary[f"{name}_recall"] = round(r10, 4)
        for th in threads:
            v = qps(one, nq, th)
            line += f", {v:,.0f} q/s on {th} thread(s)"
            summary[f"{name}_qps_t{th}"] = round(v, 1)
        print(line, flush=True)

    t = time.perf_counter()
    flat = faiss.IndexBinaryFlat(d_bits)
    flat.add(xb)
    print(f"IndexBinaryFlat added in {time.perf_counter() - t:.2f} s")
    measure("faiss_flat", flat)
    nlist = a.nlist or int(4 * np.sqrt(len(xb)))
    quant = faiss.IndexBinaryFlat(d_bits)
    ivf = faiss.IndexBinaryIVF(quant, d_bits, nlist)
    faiss.omp_set_num_threads(2)
    t = time.perf_counter()
    ivf.train(xb[np.random.default_rng(1).choice(len(xb), min(len(xb), 64 * nlist), replace=False)])
    ivf.add(xb)
    build = time.perf_counter() - t
    print(f"IndexBinaryIVF nlist={nlist}: trained and added in {build:.1f} s ({len(xb) / build:,.0f} codes/s)")
    summary["faiss_ivf_build_s"] = round(build, 2)
    for nprobe in [int(x) for x in a.nprobe.split(",")]:
        ivf.nprobe = nprobe
        measure(f"faiss_ivf_nprobe{nprobe}", ivf)
    faiss.omp_set_num_threads(2)
    hnsw = faiss.IndexBinaryHNSW(d_bits, 16)
    t = time.perf_counter()
    hnsw.add(xb)
    build = time.perf_counter() - t
    print(f"IndexBinaryHNSW M=16: added in {build:.1f} s ({len(xb) / build:,.0f} codes/s)")
    summary["faiss_hnsw_build_s"] = round(build, 2)
    for ef in [int(x) for x in a.ef.split(",")]:
        hnsw.hnsw.efSearch = ef
        measure(f"faiss_hnsw_ef{ef}", hnsw)
    print("summary: " + " ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
