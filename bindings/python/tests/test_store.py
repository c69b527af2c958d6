"""``IsccStore``: the spec's store API, its agreement with an ``IsccIndex``
opened on the same directory, its errors, and a SIGKILLed store writer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import conftest
import pytest
from conftest import kill_after, query_of

from iscc_vdb import (
    ClosedError,
    InvalidArgumentError,
    InvalidIsccError,
    IsccIndex,
    IsccStore,
    LockedError,
    ReadOnlyError,
    WrongRealmError,
    explain,
    iscc_id_key,
)


def key(record: dict[str, Any]) -> int:
    k = iscc_id_key(record["iscc_id"])
    # The same key the codec's explain gives.
    assert k == int(explain(record["iscc_id"])["iscc_id"]["u64"])
    return k


def test_spec_methods_and_an_index_that_follows(tmp_path: Path, corpus: list[dict]) -> None:
    records = corpus[:200]
    with IsccStore(tmp_path, realm_id=0, durable=False) as store:
        for r in records:
            assert store.put(key(r), r) is None
        assert len(store) == 200
        r0 = records[0]
        got = store.get(key(r0))
        assert got is not None and got["iscc_id"] == r0["iscc_id"]
        assert got["group"] == r0["group"]
        assert store.get(12345) is None
        # Iteration: every entry once, ascending keys (time order).
        keys = [k for k, _ in store.iter_entries()]
        assert keys == sorted(key(r) for r in records)
        assert all(isinstance(e, dict) for _, e in store.iter_entries())
        assert store.delete(key(records[1])) is True
        assert store.delete(key(records[1])) is False
        store.put_metadata("source", {"name": "corpus", "n": 200})
        assert store.get_metadata("source") == {"name": "corpus", "n": 200}
        assert store.get_metadata("absent") is None
        assert store.info()["journal_pending"] == 201
        assert store.realm_id == 0
    with IsccIndex(tmp_path) as ix:
        assert ix.size == 199
        for r in records[::10]:
            m = ix.search(**query_of(r), count=20)
            assert r["iscc_id"] in list(m.keys)
        assert ix.get(records[1]["iscc_id"]) is None
    # The index's save brought the unit indexes in line and trimmed the journal.
    with IsccStore(tmp_path, read_only=True) as ro:
        assert ro.info()["journal_pending"] == 0
        with pytest.raises(ReadOnlyError):
            ro.put(key(records[0]), records[0])


def test_errors_from_bad_input(tmp_path: Path, corpus: list[dict]) -> None:
    r = corpus[0]
    with IsccStore(tmp_path / "s", durable=False) as store:
        with pytest.raises(InvalidArgumentError, match="neither iscc_code nor units"):
            store.put(key(r), {"title": "x"})
        with pytest.raises(InvalidArgumentError, match="empty units"):
            store.put(key(r), {"units": []})
        with pytest.raises(ValueError, match=r"entry\.iscc_code"):
            store.put(key(r), {"iscc_code": "ISCC:NOTACODE"})
        with pytest.raises(InvalidIsccError):
            store.put(key(r), {"units": ["ISCC:AAA"]})
        with pytest.raises(InvalidArgumentError, match="is not the key"):
            store.put(key(corpus[1]), r)
        with pytest.raises(WrongRealmError):
            store.put(key(r), {**r, "iscc_id": "ISCC:MEIGGGMBT3LBUEH7"})
        with pytest.raises(TypeError):
            store.put("ISCC:MAIGGGMBT3LBUEH7", r)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            store.put(True, r)
        with pytest.raises(InvalidIsccError):
            iscc_id_key("ISCC:AAA")
        with pytest.raises(ValueError, match="64-bit"):
            store.get(-1)
        with pytest.raises(ValueError, match="64-bit"):
            store.get(1 << 64)
        with pytest.raises(TypeError):
            store.put_metadata("k", {1, 2})
        assert len(store) == 0
        with pytest.raises(LockedError):
            IsccIndex(tmp_path / "s")
    store.close()
    with pytest.raises(ClosedError):
        store.get(1)
    with pytest.raises(ValueError, match="open its directory"):
        IsccStore(tmp_path / "s" / "primary.lmdb")


CHILD = """
import json, sys, time
from iscc_vdb import IsccStore, iscc_id_key
records = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8") if l.strip()]
store = IsccStore(sys.argv[1])
for r in records:
    store.put(iscc_id_key(r["iscc_id"]), r)
    print(r["iscc_id"], flush=True)
print("done", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("after", [5, 300])
def test_sigkill_of_a_store_writer_loses_nothing_acknowledged(
    tmp_path: Path, after: int, corpus: list[dict]
) -> None:
    path = tmp_path / "index"
    acknowledged = kill_after(CHILD, [str(path), str(conftest.testdata("corpus.jsonl"))], after)
    assert len(acknowledged) >= after
    by_id = {r["iscc_id"]: r for r in corpus}
    with IsccIndex(path) as ix:
        found = ix.get(acknowledged)
        assert isinstance(found, list) and all(f is not None for f in found)
        for iscc_id in acknowledged[:: max(1, len(acknowledged) // 10)]:
            m = ix.search(**query_of(by_id[iscc_id]), count=20)
            assert iscc_id in list(m.keys)
