"""Benchmark: iscc_vdb's ShardedNphdIndex beside iscc-usearch 0.8.1's on the
bench dataset ("nphd-clusters", ``shared/spec/bench-dataset.md``, generated
here with numpy and checked against the spec's SHA-256), in one run. Prints
figures and ends with a ``summary:`` line; asserts nothing.

    python -m venv v
    ISCC_VDB_LIB=$PWD/target/release/libiscc_vdb.so v/bin/pip install ./bindings/python
    v/bin/pip install iscc-usearch==0.8.1
    v/bin/python bindings/python/bench/bench_sharded_vs_iscc_usearch.py --n 100000

Measured for each engine, in a temporary directory, one thread of Python:
add (batches of ``--batch``), save, reopen (open plus one search), exact
search (``exact=True``) and default search q/s (one query per call, count
10), and recall@10 of each search against the exact NPHD top 10 computed
here with numpy (tie-aware: a key counts when its true distance is at most
the true 10th best); then the reference's graph at larger ``expansion_search``
values (``--ef``), to compare the two at equal recall.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vs_iscc_search import cpu

M = (1 << 64) - 1
SPEC_SHA = {
    (100_000, 1_000): "64bf323cf8397c7a17e9da6c92fef2d274b6f8604b7be25c67751335a83a002e",
    (1_000_000, 1_000): "18fe1dbe8e21e62262a95780349544d90cd5fda637ca539967c0e1785aa76a43",
}


def mix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def rand(seed: int, stream: int, i: np.ndarray) -> np.ndarray:
    base = np.uint64((((seed << 16) | stream) * 0xD1B54A32D192ED03) & M)
    with np.errstate(over="ignore"):
        return mix64(base + (i.astype(np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15))


def draw(
    seed: int, n: int, clusters: int, centres: np.ndarray, lens: np.ndarray, s_cl: int, s_draw: int
) -> list[np.ndarray]:
    """Codes (or queries) of the spec: a centre XOR up to 25 bit flips, cut."""
    idx = np.arange(n, dtype=np.uint64)
    cl = (rand(seed, s_cl, idx) % np.uint64(clusters)).astype(np.int64)
    d = rand(seed, s_draw, (idx[:, None] * np.uint64(32) + np.arange(32, dtype=np.uint64)))
    k = (d[:, 0] % np.uint64(26)).astype(np.int64)
    masks = np.zeros((n, 32), dtype=np.uint8)
    for t in range(25):
        pos = (d[:, 3 + t] % np.uint64(256)).astype(np.int64)
        on = t < k
        rows = np.nonzero(on)[0]
        masks[rows, pos[rows] // 8] |= (1 << (7 - pos[rows] % 8)).astype(np.uint8)
    codes = centres[cl] ^ masks
    lc = lens[cl]
    short = ((d[:, 1] % np.uint64(4)) == 0) & (lc > 8)
    alt = 8 * (1 + (d[:, 2] % np.maximum(lc // 8 - 1, 1).astype(np.uint64)).astype(np.int64))
    length = np.where(short, alt, lc)
    return [codes[j, : length[j]].copy() for j in range(n)]


def dataset(n: int, q: int, seed: int = 42) -> tuple[list[np.ndarray], list[np.ndarray]]:
    clusters = max(1, n // 10)
    c = np.arange(clusters, dtype=np.uint64)
    words = rand(seed, 1, (c[:, None] * np.uint64(4) + np.arange(4, dtype=np.uint64)))
    centres = words.astype("<u8").view(np.uint8).reshape(clusters, 32)
    lens = (8 * (1 + rand(seed, 2, c) % np.uint64(4))).astype(np.int64)
    return draw(seed, n, clusters, centres, lens, 3, 4), draw(
        seed, q, clusters, centres, lens, 5, 6
    )


def truth(codes: list[np.ndarray], queries: list[np.ndarray], k: int = 10) -> list[float]:
    """Per query, the true NPHD of its k-th nearest code (bytes XORed, popcounted by table)."""
    padded = np.zeros((len(codes), 32), dtype=np.uint8)
    lens = np.array([c.size for c in codes])
    for j, c in enumerate(codes):
        padded[j, : c.size] = c
    ones = np.array([bin(b).count("1") for b in range(256)], dtype=np.uint16)
    out = []
    for qv in queries:
        m = np.minimum(lens, qv.size)
        diff = ones[padded[:, : qv.size] ^ qv[None, :]]
        # Only the common prefix counts: bytes past a code's length are cut.
        diff[np.arange(qv.size)[None, :] >= m[:, None]] = 0
        dist = diff.sum(axis=1) / (8 * m)
        out.append(float(np.partition(dist, k - 1)[k - 1]))
    return out


def nphd(a: np.ndarray, b: np.ndarray) -> float:
    m = min(a.size, b.size)
    return float(np.unpackbits(a[:m] ^ b[:m]).sum()) / (8 * m)


def recall(
    codes: list[np.ndarray], queries: list[np.ndarray], kth: list[float], found: list[list[int]]
) -> float:
    hits = 0
    for qv, t, keys in zip(queries, kth, found, strict=True):
        hits += sum(nphd(qv, codes[key]) <= t + 1e-9 for key in keys[:10])
    return hits / (10 * len(queries))


def timed(f: Callable[[], Any]) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def run(
    name: str,
    make: Callable[[Path], Any],
    codes: list[np.ndarray],
    queries: list[np.ndarray],
    kth: list[float],
    batch: int,
    fig: dict[str, float],
    expansions: tuple[int, ...] = (),
) -> None:
    keys = np.arange(len(codes), dtype=np.uint64)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "ix"
        idx = make(path)

        def add() -> None:
            for i in range(0, len(codes), batch):
                idx.add(keys[i : i + batch], codes[i : i + batch])

        fig[f"{name}_add_per_s"] = len(codes) / timed(add)
        fig[f"{name}_save_s"] = timed(idx.save)
        idx.close()
        t = time.perf_counter()
        idx = make(path)
        idx.search(queries[0], count=10)
        fig[f"{name}_open_s"] = time.perf_counter() - t
        for mode, exact in (("exact", True), ("default", False)):
            found: list[list[int]] = []

            def search(exact: bool = exact, found: list[list[int]] = found) -> None:
                for qv in queries:
                    found.append([int(k) for k in idx.search(qv, count=10, exact=exact).keys])

            fig[f"{name}_{mode}_qps"] = len(queries) / timed(search)
            fig[f"{name}_{mode}_recall"] = recall(codes, queries, kth, found)
        # The graph at larger expansions (where the index has one to walk):
        # the speed each pays for its recall, to compare at equal recall.
        for ef in expansions:
            idx.expansion_search = ef
            found = []

            def walk(found: list[list[int]] = found) -> None:
                for qv in queries:
                    found.append([int(k) for k in idx.search(qv, count=10).keys])

            fig[f"{name}_ef{ef}_qps"] = len(queries) / timed(walk)
            fig[f"{name}_ef{ef}_recall"] = recall(codes, queries, kth, found)
        idx.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="codes")
    ap.add_argument("--q", type=int, default=1_000, help="queries")
    ap.add_argument("--batch", type=int, default=10_000, help="codes per add call")
    ap.add_argument(
        "--ef",
        type=int,
        nargs="*",
        default=[512, 2048],
        help="iscc-usearch's expansion_search values also measured (recall against speed)",
    )
    args = ap.parse_args()

    import iscc_usearch
    from loguru import logger

    import iscc_vdb

    logger.remove()  # iscc-usearch logs every save and rotation

    codes, queries = dataset(args.n, args.q)
    h = hashlib.sha256()
    for v in codes + queries:
        h.update(v.tobytes())
    digest = h.hexdigest()
    spec = SPEC_SHA.get((args.n, args.q))
    print(f"cpu: {cpu()}")
    print(f"python {platform.python_version()}, iscc_vdb {iscc_vdb.version()}, iscc-usearch 0.8.1")
    print(
        f"dataset nphd-clusters N={args.n} Q={args.q} sha256 {digest}"
        + ("" if spec is None else (" (= spec)" if spec == digest else " (DIFFERS from spec)"))
    )
    kth = truth(codes, queries)
    fig: dict[str, float] = {}
    run(
        "vdb",
        lambda p: iscc_vdb.ShardedNphdIndex(max_dim=256, path=p),
        codes,
        queries,
        kth,
        args.batch,
        fig,
    )
    run(
        "ref",
        lambda p: iscc_usearch.ShardedNphdIndex(max_dim=256, path=p),
        codes,
        queries,
        kth,
        args.batch,
        fig,
        tuple(args.ef),
    )
    for what in ("add_per_s", "exact_qps", "default_qps"):
        v, r = fig[f"vdb_{what}"], fig[f"ref_{what}"]
        fig[f"{what}_ratio"] = v / r
        print(f"{what:12} iscc_vdb {v:>12,.1f}   iscc-usearch {r:>12,.1f}   x{v / r:.2f}")
    for what in ("open_s", "save_s"):
        v, r = fig[f"vdb_{what}"], fig[f"ref_{what}"]
        print(f"{what:12} iscc_vdb {v:>12.3f}   iscc-usearch {r:>12.3f}   x{r / max(v, 1e-9):.2f}")
    for mode in ("exact", "default"):
        print(
            f"recall@10 {mode}: iscc_vdb {fig[f'vdb_{mode}_recall']:.3f}, "
            f"iscc-usearch {fig[f'ref_{mode}_recall']:.3f}"
        )
    for ef in args.ef:
        r = fig[f"ref_ef{ef}_qps"]
        print(
            f"iscc-usearch expansion_search {ef}: {r:,.1f} q/s at recall@10 "
            f"{fig[f'ref_ef{ef}_recall']:.3f} (iscc_vdb default: x{fig['vdb_default_qps'] / r:.2f})"
        )
    print("summary: " + " ".join(f"{k}={v:.4g}" for k, v in fig.items()))


if __name__ == "__main__":
    main()
