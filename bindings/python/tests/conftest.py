"""Shared fixtures: the sample corpus of ../shared/testdata and temporary
index directories."""

from __future__ import annotations

import json
import os
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
