"""Threads share one index (the GIL is released inside every library call),
and a SIGKILLed writer loses no acknowledged entry."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import conftest
import pytest
from conftest import add_all, kill_after, query_of

from iscc_vdb import IsccIndex, IsccMatches


def run_all(threads: list[threading.Thread]) -> float:
    """Start the threads, wait for all; the wall time in seconds."""
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def test_eight_searchers_beside_a_writer(corpus: list[dict]) -> None:
    with IsccIndex(durable=False) as ix:
        add_all(ix, corpus[:1000])
        errors: list[BaseException] = []

        def search(offset: int) -> None:
            try:
                for i in range(offset, 1000, 8):
                    # Groups hold up to 8 near-duplicates: 20 always reach it.
                    m = ix.search(**query_of(corpus[i]), count=20)
                    assert isinstance(m, IsccMatches) and corpus[i]["iscc_id"] in list(m.keys)
            except BaseException as e:  # reported below
                errors.append(e)

        def write() -> None:
            try:
                for i in range(1000, 2000, 100):
                    ix.add(corpus[i : i + 100])
            except BaseException as e:
                errors.append(e)

        searchers = [threading.Thread(target=search, args=(k,)) for k in range(8)]
        parallel = run_all([*searchers, threading.Thread(target=write)])
        assert not errors, errors
        assert ix.size == 2000
        # Figures only (tests assert no timings): the same searches in one
        # thread, and in 8 threads with no writer.
        start = time.perf_counter()
        for i in range(1000):
            ix.search(**query_of(corpus[i]), count=20)
        one = time.perf_counter() - start
        eight = run_all([threading.Thread(target=search, args=(k,)) for k in range(8)])
        assert not errors, errors
        print(
            f"\n1,000 searches on {os.cpu_count()} cores: one thread {one:.3f} s, "
            f"8 threads {eight:.3f} s ({one / eight:.2f}x), "
            f"8 threads beside a writer adding 1,000 entries {parallel:.3f} s"
        )


def test_another_thread_runs_while_a_search_is_inside_the_library(corpus: list[dict]) -> None:
    """Proof of the released GIL without timing: with a switch interval far
    longer than the call, another thread gets to run during the call only if
    the call gives the GIL up."""
    with IsccIndex() as ix:
        add_all(ix, corpus)
        queries = [r["iscc_code"] for r in corpus if r.get("iscc_code")]
        state = {"in_call": False, "seen": False, "stop": False}
        ready = threading.Event()

        def watch() -> None:
            ready.set()
            while not state["stop"]:
                if state["in_call"]:
                    state["seen"] = True
                    return
                time.sleep(0.0001)

        old = sys.getswitchinterval()
        sys.setswitchinterval(30.0)
        try:
            watcher = threading.Thread(target=watch)
            watcher.start()
            ready.wait()
            state["in_call"] = True
            ix.search(iscc_codes=queries, count=50, exact=True)
            state["in_call"] = False
            state["stop"] = True
            watcher.join()
        finally:
            sys.setswitchinterval(old)
        assert state["seen"], "no other thread ran during the search: the GIL was held"


CHILD = """
import sys
from iscc_vdb import IsccIndex
import json
records = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8") if l.strip()]
ix = IsccIndex(sys.argv[1])
for i in range(0, len(records), 50):
    for iscc_id in ix.add(records[i : i + 50]):
        print(iscc_id, flush=True)
print("done", flush=True)
import time
time.sleep(60)
"""


@pytest.mark.parametrize("after", [60, 700, 1500])
def test_sigkill_after_adds_loses_no_acknowledged_entry(
    tmp_path: Path, after: int, corpus: list[dict]
) -> None:
    path = tmp_path / "index"
    acknowledged = kill_after(CHILD, [str(path), str(conftest.testdata("corpus.jsonl"))], after)
    assert len(acknowledged) >= after
    with IsccIndex(path) as ix:
        found = ix.get(acknowledged)
        assert isinstance(found, list)
        missing = [i for i, f in zip(acknowledged, found, strict=True) if f is None]
        assert not missing, f"{len(missing)} acknowledged entries lost"
        # And the derived indexes agree with the store: each finds itself.
        for iscc_id in acknowledged[:: max(1, len(acknowledged) // 20)]:
            record = corpus[[r["iscc_id"] for r in corpus].index(iscc_id)]
            m = ix.search(**query_of(record), count=20)
            assert iscc_id in list(m.keys)
