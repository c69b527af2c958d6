"""Shared fixtures: the sample corpus of ../shared/testdata and temporary
index directories."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]


def testdata(name: str) -> Path:
    base = os.environ.get("IVDB_TESTDATA") or str(REPO.parent / "shared" / "testdata")
    path = Path(base) / name
    if not path.is_file():
        pytest.fail(
            f"test data {path} missing: "
            "check out ../shared beside the repository or set IVDB_TESTDATA"
        )
    return path


@pytest.fixture(scope="session")
def corpus() -> list[dict[str, Any]]:
    lines = testdata("corpus.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def query_of(record: dict[str, Any]) -> dict[str, Any]:
    """search() arguments of a corpus record: its units, else its code."""
    if record.get("units"):
        return {"units": record["units"]}
    return {"iscc_codes": record["iscc_code"]}


def add_all(ix: Any, records: list[dict[str, Any]]) -> list[str]:
    ids: list[str] = []
    for i in range(0, len(records), 500):
        ids.extend(ix.add(records[i : i + 500]))
    return ids


def kill_after(script: str, args: list[str], after: int) -> list[str]:
    """Run ``script`` in a child Python that prints one acknowledged ID a
    line (then ``done``), SIGKILL it once ``after`` were read; the IDs."""
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert child.stdout is not None
    acknowledged: list[str] = []
    for line in child.stdout:
        if line.strip() == "done":
            break
        acknowledged.append(line.strip())
        if len(acknowledged) >= after:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    return acknowledged
