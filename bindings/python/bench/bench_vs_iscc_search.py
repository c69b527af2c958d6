"""Benchmark: iscc_vdb from Python, side by side with iscc-search 0.3.3 (the
ISCC Foundation's Python engine) on the same entries, in one run. Prints
figures and ends with a ``summary:`` line of name=value pairs; asserts
nothing (machines differ: compare the ratios).

    python -m venv v
    ISCC_VDB_LIB=$PWD/target/release/libiscc_vdb.so v/bin/pip install ./bindings/python
    v/bin/pip install iscc-search==0.3.3
    v/bin/python bindings/python/bench/bench_vs_iscc_search.py --n 100000

Data: ``--n`` entries in clusters of 8 near-duplicates (a few bits flipped
per member in META, CONTENT-TEXT and DATA; a fresh INSTANCE each): 64-bit
units and the ISCC-CODE iscc-core composes of them, seeded (``--seed``), with
ISCC-IDs both engines take as given. Before timing, both engines must find
the same share of queries' own entries (a sanity check printed beside the
figures), so neither is fast by indexing less. Both engines run without fsync per
commit (iscc-search's LMDB default; ``durable=False`` here) in temporary
directories. Measured: add entries/s (batches of 1,000), search q/s with one
query per call (count 10 and 100), batch search q/s (iscc_vdb only: one
call, many queries), and iscc_vdb's Python-side cost per search call on a
10-entry index: the wrapper's time minus the same request sent straight to
the C function it calls (``ivdb_search_columns``), bare and with keys and
distances read (best of 5 rounds of 5,000 calls).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import random
import tempfile
import time
from collections.abc import Callable
from typing import Any


def cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return platform.processor() or "unknown"
    name = next(
        (
            line.split(":", 1)[1].strip()
            for line in text.splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")),
        [],
    )
    simd = sorted(f for f in flags if f.startswith("avx512") or f in ("avx2", "popcnt"))
    return f"{name}, {os.cpu_count()} cores, {' '.join(simd)}"


def entries(n: int, seed: int) -> list[dict[str, Any]]:
    """n entries with ISCC-CODEs in clusters of 8 near-duplicates."""
    import iscc_core as ic

    rng = random.Random(seed)

    def unit(mt: int, st: int, body: int) -> str:
        return "ISCC:" + ic.encode_component(mt, st, ic.VS.V0, 64, body.to_bytes(8, "big"))

    def flip(x: int, bits: int) -> int:
        for _ in range(bits):
            x ^= 1 << rng.randrange(64)
        return x

    out = []
    base = (0, 0, 0)
    for i in range(n):
        if i % 8 == 0:
            base = (rng.getrandbits(64), rng.getrandbits(64), rng.getrandbits(64))
        meta, content, data = (flip(b, rng.randrange(0, 6)) for b in base)
        parts = [
            unit(ic.MT.META, ic.ST.NONE, meta),
            unit(ic.MT.CONTENT, ic.ST_CC.TEXT, content),
            unit(ic.MT.DATA, ic.ST.NONE, data),
            unit(ic.MT.INSTANCE, ic.ST.NONE, rng.getrandbits(64)),
        ]
        # Units too: iscc-search indexes an entry's `units` only (it does
        # not decompose `iscc_code` when adding); iscc_vdb uses them as well.
        out.append({"iscc_code": ic.gen_iscc_code_v0(parts)["iscc"], "units": parts})
    return out


def timed(f: Callable[[], Any]) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def run_iscc_vdb(
    data: list[dict[str, Any]], queries: list[str], query_ids: list[str], fig: dict[str, float]
) -> None:
    import iscc_vdb

    with tempfile.TemporaryDirectory() as d, iscc_vdb.IsccIndex(d + "/ix", durable=False) as ix:
        t = timed(lambda: [ix.add(data[i : i + 1000]) for i in range(0, len(data), 1000)])
        fig["vdb_add_per_s"] = len(data) / t
        ix.save()
        found = [ix.search(iscc_codes=q, count=10) for q in queries]
        fig["vdb_self_found"] = sum(
            want in list(m.keys) for m, want in zip(found, query_ids, strict=True)
        ) / len(queries)
        for count in (10, 100):
            t = timed(lambda c=count: [ix.search(iscc_codes=q, count=c) for q in queries])
            fig[f"vdb_search{count}_qps"] = len(queries) / t
            t = timed(lambda c=count: ix.search(iscc_codes=queries, count=c))
            fig[f"vdb_batch{count}_qps"] = len(queries) / t


def python_overhead(data: list[dict[str, Any]], fig: dict[str, float]) -> None:
    """iscc_vdb's Python-side cost per search call, on a 10-entry index (so
    the engine's own time is a few microseconds and the difference between
    two timings is not noise; every query returns 10 matches):
    the wrapper against the bare C call it makes (``ivdb_search_columns``
    with the same request, freed at once), and with keys and distances read
    (the spec's use)."""
    import iscc_vdb
    from iscc_vdb import _ffi

    small = data[:10]
    queries = [e["iscc_code"] for e in small] * 500
    with iscc_vdb.IsccIndex(durable=False) as ix:
        ix.add(small)
        handle = ix._h.handle
        requests = [json.dumps({"iscc_codes": q, "count": 10}).encode() for q in queries]

        def bare() -> None:
            out = ctypes.c_void_p()
            err = ctypes.c_void_p()
            for r in requests:
                _ffi.C.search_columns(handle, r, 0, False, ctypes.byref(out), ctypes.byref(err))
                _ffi.C.free_columns(out)

        def read() -> None:
            for q in queries:
                m = ix.search(iscc_codes=q, count=10)
                m.keys, m.distances  # noqa: B018 (read on purpose)

        wrapped, raw, reading = [], [], []
        for _ in range(5):
            wrapped.append(timed(lambda: [ix.search(iscc_codes=q, count=10) for q in queries]))
            raw.append(timed(bare))
            reading.append(timed(read))
        per = 1e6 / len(queries)
        fig["vdb_call_us"] = min(wrapped) * per
        fig["vdb_c_call_us"] = min(raw) * per
        fig["vdb_python_overhead_us"] = fig["vdb_call_us"] - fig["vdb_c_call_us"]
        fig["vdb_read_overhead_us"] = min(reading) * per - fig["vdb_c_call_us"]


def run_iscc_search(
    data: list[dict[str, Any]], queries: list[str], query_ids: list[str], fig: dict[str, float]
) -> None:
    from loguru import logger

    logger.remove()  # iscc-search logs every batch at DEBUG
    from iscc_search.indexes.usearch.index import UsearchIndex
    from iscc_search.schema import IsccEntry, IsccQuery

    with tempfile.TemporaryDirectory() as d:
        ix = UsearchIndex(d + "/ix")
        assets = [IsccEntry(**e) for e in data]
        t = timed(
            lambda: [ix.add_assets(assets[i : i + 1000]) for i in range(0, len(assets), 1000)]
        )
        fig["ref_add_per_s"] = len(data) / t
        ix.flush()
        qs = [IsccQuery(iscc_code=q) for q in queries]
        found = [ix.search_assets(q, limit=10) for q in qs]
        fig["ref_self_found"] = sum(
            want in [g.iscc_id for g in r.global_matches]
            for r, want in zip(found, query_ids, strict=True)
        ) / len(queries)
        for count in (10, 100):
            t = timed(lambda c=count: [ix.search_assets(q, limit=c) for q in qs])
            fig[f"ref_search{count}_qps"] = len(queries) / t
        ix.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="entries")
    ap.add_argument("--q", type=int, default=1_000, help="queries (codes of stored entries)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    import iscc_vdb

    raw = entries(args.n, args.seed)
    # ISCC-IDs from iscc_vdb's generator, given to both engines.
    with iscc_vdb.IsccIndex(durable=False) as scratch:
        ids = [i for k in range(0, len(raw), 5000) for i in scratch.add(raw[k : k + 5000])]
    data = [dict(e, iscc_id=i) for e, i in zip(raw, ids, strict=True)]
    rng = random.Random(args.seed + 1)
    picked = [data[rng.randrange(len(data))] for _ in range(args.q)]
    queries = [e["iscc_code"] for e in picked]
    query_ids = [e["iscc_id"] for e in picked]
    # The generated entries (the IDs come from the clock and differ per run).
    digest = __import__("hashlib").sha256(json.dumps(raw).encode()).hexdigest()

    print(f"cpu: {cpu()}")
    print(f"python {platform.python_version()}, iscc_vdb {iscc_vdb.version()}")
    print(f"data: {args.n} entries (seed {args.seed}), sha256 {digest[:16]}, {args.q} queries")
    fig: dict[str, float] = {}
    run_iscc_vdb(data, queries, query_ids, fig)
    run_iscc_search(data, queries, query_ids, fig)
    python_overhead(data, fig)
    print(
        f"queries finding their own entry in the top 10: iscc_vdb {fig['vdb_self_found']:.3f}, "
        f"iscc-search {fig['ref_self_found']:.3f}"
    )
    print(
        f"add entries/s:       iscc_vdb {fig['vdb_add_per_s']:>10,.0f}   "
        f"iscc-search {fig['ref_add_per_s']:>10,.0f}   "
        f"x{fig['vdb_add_per_s'] / fig['ref_add_per_s']:.1f}"
    )
    for c in (10, 100):
        v, r = fig[f"vdb_search{c}_qps"], fig[f"ref_search{c}_qps"]
        print(
            f"search q/s count {c:<3}: iscc_vdb {v:>10,.0f}   iscc-search {r:>10,.0f}   "
            f"x{v / r:.1f}   (iscc_vdb batch: {fig[f'vdb_batch{c}_qps']:,.0f} q/s)"
        )
    print(
        f"per search call (count 10, 10 entries): Python {fig['vdb_call_us']:.1f} us, "
        f"bare C call {fig['vdb_c_call_us']:.1f} us, "
        f"Python-side {fig['vdb_python_overhead_us']:.1f} us "
        f"({fig['vdb_read_overhead_us']:.1f} us with keys and distances read)"
    )
    fig["add_ratio"] = fig["vdb_add_per_s"] / fig["ref_add_per_s"]
    fig["search10_ratio"] = fig["vdb_search10_qps"] / fig["ref_search10_qps"]
    fig["search100_ratio"] = fig["vdb_search100_qps"] / fig["ref_search100_qps"]
    print("summary: " + " ".join(f"{k}={v:.2f}" for k, v in fig.items()))


if __name__ == "__main__":
    main()
