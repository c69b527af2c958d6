"""Benchmark: iscc_vdb from Python beside the Rust engine's own benchmark
(``ivdb-bench engine``) on the same entries and queries, in one run. Prints
figures and ends with a ``summary:`` line of name=value pairs; asserts
nothing (compare the ratios, not absolutes from another day).

    cargo build --release --features bench --bin ivdb-bench
    ISCC_VDB_LIB=$PWD/target/release/libiscc_vdb.so v/bin/pip install ./bindings/python
    v/bin/python bindings/python/bench/bench_vs_ivdb_bench.py --n 100000

``ivdb-bench engine --export DIR`` generates the data (CONTENT-TEXT and DATA
bodies from the bench dataset of ``shared/spec/bench-dataset.md``, META and
INSTANCE units; its SHA-256 is printed), measures the engine from Rust and
writes the entries and queries as JSON lines. This script then adds the
same entries from Python (non-durable, batches of 1,000, as ivdb-bench's
non-durable build) and runs the same queries under the same thread counts:
single-query q/s on one engine thread (``RAYON_NUM_THREADS=1``, as
ivdb-bench's 1-thread pool; median of 3 rounds) and one batch call on two
(as ivdb-bench's 2-thread pool). Each Python configuration runs in its own
child process, since the engine's thread pool is fixed at its first use.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def measure(export: Path, threads: int, counts: list[int]) -> dict[str, float]:
    """Child: index the exported entries from Python and search them."""
    import iscc_vdb

    entries = [json.loads(line) for line in (export / "entries.jsonl").open(encoding="utf-8")]
    queries = [json.loads(line) for line in (export / "queries.jsonl").open(encoding="utf-8")]
    units = [q["units"] for q in queries]
    fig: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d, iscc_vdb.IsccIndex(d + "/ix", durable=False) as ix:
        start = time.perf_counter()
        for i in range(0, len(entries), 1000):
            ix.add(entries[i : i + 1000])
        fig["add_per_s"] = len(entries) / (time.perf_counter() - start)
        ix.save()
        for count in counts:
            if threads == 1:
                rounds = []
                for _ in range(3):
                    start = time.perf_counter()
                    for u in units:
                        ix.search(units=u, count=count)
                    rounds.append(len(units) / (time.perf_counter() - start))
                fig[f"search{count}_qps"] = statistics.median(rounds)
            else:
                start = time.perf_counter()
                ix.search(units=units, count=count)
                fig[f"batch{count}_qps"] = len(units) / (time.perf_counter() - start)
    return fig


def child(export: Path, threads: int) -> dict[str, float]:
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(export), "--threads", str(threads)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fig: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return fig


def summary(text: str) -> dict[str, float]:
    line = next(ln for ln in text.splitlines() if ln.startswith("summary: "))
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", line)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="entries")
    ap.add_argument("--q", type=int, default=1_000, help="queries")
    ap.add_argument(
        "--ivdb-bench",
        default=str(REPO / "target" / "release" / "ivdb-bench"),
        help="the ivdb-bench binary (cargo build --release --features bench)",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    counts = [10, 100]
    if args.child:
        print(json.dumps(measure(Path(args.child), args.threads, counts)))
        return

    import iscc_vdb

    with tempfile.TemporaryDirectory() as d:
        export = Path(d) / "data"
        rust = subprocess.run(
            [
                args.ivdb_bench,
                "engine",
                "--n",
                str(args.n),
                "--q",
                str(args.q),
                "--no-durable",
                "--dir",
                d,
                "--export",
                str(export),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for line in rust.splitlines():
            if line.startswith(("cpu features", "entries sha256", "# ivdb-bench")):
                print(line)
        r = summary(rust)
        single = child(export, 1)
        batch = child(export, 2)
    print(f"python {sys.version.split()[0]}, iscc_vdb {iscc_vdb.version()}")
    fig: dict[str, float] = {}
    p = {**single, **batch}
    rows: list[tuple[str, str]] = [("add_per_s", "add entries/s (non-durable)")]
    for c in counts:
        rows.append((f"search{c}_qps", f"single-query q/s count {c} (1 thread)"))
        rows.append((f"batch{c}_qps", f"batch q/s count {c} (2 threads)"))
    for key, label in rows:
        py = single["add_per_s"] if key == "add_per_s" else p[key]
        ratio = py / r[key]
        print(f"{label:<40} Rust {r[key]:>10,.0f}   Python {py:>10,.0f}   Python/Rust {ratio:.3f}")
        fig[f"rust_{key}"] = r[key]
        fig[f"py_{key}"] = py
        fig[f"ratio_{key}"] = ratio
    for c in counts:
        # What a single search costs Python beyond the engine's own time.
        fig[f"py_extra_us_search{c}"] = 1e6 / p[f"search{c}_qps"] - 1e6 / r[f"search{c}_qps"]
        print(f"Python-side time per search (count {c}): {fig[f'py_extra_us_search{c}']:.1f} us")
    print("summary: " + " ".join(f"{k}={v:.3f}" for k, v in fig.items()))


if __name__ == "__main__":
    main()
