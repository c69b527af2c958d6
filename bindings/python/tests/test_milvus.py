"""A ``milvus://`` path through the C ABI: the same answers as a directory.

Runs against the server ``IVDB_MILVUS_URI=milvus://HOST:PORT`` names (the
README's test command starts one); skipped without it."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import add_all, query_of

import iscc_vdb
from iscc_vdb import IsccIndex, IsccMatch


def server() -> str:
    base = os.environ.get("IVDB_MILVUS_URI", "")
    if not base:
        pytest.skip("set IVDB_MILVUS_URI=milvus://HOST:PORT to run the Milvus tests")
    return base.rstrip("/")


def f32(m: IsccMatch) -> tuple[object, ...]:
    units = {t: (np.float32(u.score), np.float32(u.distance), u.kept) for t, u in m.units.items()}
    return (m.iscc_id, np.float32(m.score), units, m.instance)


def test_a_uri_answers_as_a_directory(tmp_path: Path, corpus: list[dict[str, Any]]) -> None:
    uri = f"{server()}/py_{os.getpid()}_{time.time_ns() % 10**9}"
    records = corpus[:200]
    local = IsccIndex(tmp_path / "idx", durable=False)
    remote = IsccIndex(uri)
    ids = add_all(local, records)
    assert add_all(remote, records) == ids
    assert remote.get(ids[3]) == local.get(ids[3])
    for r in records[:15]:
        a = local.search(**query_of(r), count=10, exact=True)
        b = remote.search(**query_of(r), count=10, exact=True)
        assert [f32(m) for m in a] == [f32(m) for m in b], r["iscc_id"]
    assert remote.remove(ids[0]) > 0
    remote.close()
    view = IsccIndex.restore(uri, view=True)
    assert view is not None and view.size == len(records) - 1
    with pytest.raises(iscc_vdb.ReadOnlyError):
        view.add(records[0])
    view.close()
    assert IsccIndex.restore(f"{uri}_none", view=True) is None
    # Dropped: its collections go, and it cannot be opened any more.
    assert iscc_vdb.drop_remote(uri) > 0
    assert iscc_vdb.drop_remote(uri) == 0
    assert IsccIndex.restore(uri, view=True) is None
    with pytest.raises(iscc_vdb.InvalidArgumentError, match="not a milvus"):
        iscc_vdb.drop_remote(str(tmp_path))


def test_a_server_that_does_not_answer_is_an_io_error() -> None:
    with pytest.raises(iscc_vdb.IoError, match=r"127\.0\.0\.1:1"):
        IsccIndex("milvus://ann:s3cret@127.0.0.1:1/x")
    with pytest.raises(iscc_vdb.InvalidArgumentError, match="index name") as e:
        IsccIndex("milvus://ann:s3cret@127.0.0.1:19530/bad-name")
    assert "s3cret" not in str(e.value)
