"""Benchmark: granular features (SIMPRINT chunk matching) in iscc_vdb from
Python, side by side with iscc-search 0.3.3 on the same documents, in one
run. Prints figures and ends with a ``summary:`` line of name=value pairs;
asserts nothing (machines differ: compare the ratios).

    python -m venv v
    ISCC_VDB_LIB=$PWD/target/release/libiscc_vdb.so v/bin/pip install ./bindings/python
    v/bin/pip install iscc-search==0.3.3
    v/bin/python bindings/python/bench/bench_features_vs_iscc_search.py --n 100000

Data (seeded, ``--seed``): ``--n`` documents (the entries of
``bench_vs_iscc_search.py``: 64-bit META, CONTENT-TEXT, DATA and INSTANCE
units with their ISCC-CODE) of ``--chunks`` 64-bit CONTENT_TEXT_V0 simprints
each, with offsets and sizes. A quarter of a document's chunks are segments
shared with other documents: drawn from a pool of ``n / 8`` segments, each
with 0-3 bits flipped; the rest are unique random simprints. Queries: the
simprints of ``--q`` stored documents, searched as features (not by
ISCC-ID), count 10. Before timing, both engines must rank the query's own
document first (printed beside the figures). Both engines run without fsync
per commit in temporary directories. Measured: add entries/s with features
(batches of 1,000), chunk-search q/s (one query per call), and the share of
each engine's top-10 chunk matches the other also returns.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import platform
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vs_iscc_search import cpu, entries, timed

TYPE = "CONTENT_TEXT_V0"


def b64(value: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(8, "big")).decode().rstrip("=")


def simprints(n: int, chunks: int, seed: int) -> list[list[dict[str, Any]]]:
    """Per document, its chunks as iscc-search's simprint objects."""
    rng = random.Random(seed)
    pool = [rng.getrandbits(64) for _ in range(max(1, n // 8))]
    out = []
    for _ in range(n):
        doc = []
        offset = 0
        for c in range(chunks):
            if c % 4 == 0:
                value = rng.choice(pool)
                for _ in range(rng.randrange(4)):
                    value ^= 1 << rng.randrange(64)
            else:
                value = rng.getrandbits(64)
            size = 500 + rng.randrange(1000)
            doc.append({"simprint": b64(value), "offset": offset, "size": size})
            offset += size
        out.append(doc)
    return out


def run_iscc_vdb(
    data: list[dict[str, Any]], queries: list[list[str]], query_ids: list[str], fig: dict[str, Any]
) -> list[list[str]]:
    import iscc_vdb

    with tempfile.TemporaryDirectory() as d, iscc_vdb.IsccIndex(d + "/ix", durable=False) as ix:
        t = timed(lambda: [ix.add(data[i : i + 1000]) for i in range(0, len(data), 1000)])
        fig["vdb_add_per_s"] = len(data) / t
        ix.save()
        info = ix.info()["simprints"]["CONTENT-TEXT-V0"]
        fig["vdb_chunks"] = info["chunks"]

        def one(q: list[str]) -> list[str]:
            found = ix.search(simprints={TYPE: [{"simprint": s} for s in q]}, count=10)
            return [c.iscc_id for c in found.chunk_matches]  # type: ignore[union-attr]

        results = [one(q) for q in queries]
        fig["vdb_self_first"] = sum(
            bool(r) and r[0] == want for r, want in zip(results, query_ids, strict=True)
        ) / len(queries)
        t = timed(lambda: [one(q) for q in queries])
        fig["vdb_chunk_search_qps"] = len(queries) / t
        return results


def run_iscc_search(
    data: list[dict[str, Any]], queries: list[list[str]], query_ids: list[str], fig: dict[str, Any]
) -> list[list[str]]:
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
        qs = [IsccQuery(simprints={TYPE: q}) for q in queries]

        def one(q: Any) -> list[str]:
            return [m.iscc_id for m in ix.search_assets(q, limit=10).chunk_matches]

        results = [one(q) for q in qs]
        fig["ref_self_first"] = sum(
            bool(r) and r[0] == want for r, want in zip(results, query_ids, strict=True)
        ) / len(queries)
        t = timed(lambda: [one(q) for q in qs])
        fig["ref_chunk_search_qps"] = len(queries) / t
        ix.close()
        return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="documents")
    ap.add_argument("--chunks", type=int, default=20, help="simprints per document")
    ap.add_argument("--q", type=int, default=1_000, help="queries (stored documents' simprints)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    import iscc_vdb

    raw = entries(args.n, args.seed)
    prints = simprints(args.n, args.chunks, args.seed + 2)
    with iscc_vdb.IsccIndex(durable=False) as scratch:
        ids = [i for k in range(0, len(raw), 5000) for i in scratch.add(raw[k : k + 5000])]
    data = [
        dict(e, iscc_id=i, simprints={TYPE: p}) for e, i, p in zip(raw, ids, prints, strict=True)
    ]
    rng = random.Random(args.seed + 1)
    picked = [rng.randrange(len(data)) for _ in range(args.q)]
    queries = [[c["simprint"] for c in prints[i]] for i in picked]
    query_ids = [ids[i] for i in picked]
    digest = hashlib.sha256(json.dumps([raw, prints]).encode()).hexdigest()

    print(f"cpu: {cpu()}")
    print(f"python {platform.python_version()}, iscc_vdb {iscc_vdb.version()}")
    print(
        f"data: {args.n} documents x {args.chunks} simprints (seed {args.seed}), "
        f"sha256 {digest[:16]}, {args.q} queries"
    )
    fig: dict[str, Any] = {}
    vdb = run_iscc_vdb(data, queries, query_ids, fig)
    ref = run_iscc_search(data, queries, query_ids, fig)
    overlap = [len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(vdb, ref, strict=True) if b]
    fig["top10_overlap"] = sum(overlap) / max(1, len(overlap))
    print(
        f"queries ranking their own document first: iscc_vdb {fig['vdb_self_first']:.3f}, "
        f"iscc-search {fig['ref_self_first']:.3f}; iscc-search's top 10 also in iscc_vdb's: "
        f"{fig['top10_overlap']:.3f}"
    )
    print(
        f"add entries/s:        iscc_vdb {fig['vdb_add_per_s']:>10,.0f}   "
        f"iscc-search {fig['ref_add_per_s']:>10,.0f}   "
        f"x{fig['vdb_add_per_s'] / fig['ref_add_per_s']:.1f}"
    )
    v, r = fig["vdb_chunk_search_qps"], fig["ref_chunk_search_qps"]
    print(f"chunk search q/s:     iscc_vdb {v:>10,.0f}   iscc-search {r:>10,.0f}   x{v / r:.1f}")
    fig["add_ratio"] = fig["vdb_add_per_s"] / fig["ref_add_per_s"]
    fig["search_ratio"] = v / r
    print(
        "summary: "
        + " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in fig.items())
    )


if __name__ == "__main__":
    main()
