"""``NphdIndex`` (one in-memory unit index over ``ivdb_unit``) from Python:
iscc-usearch's call shapes, save / load / view / restore / copy, and bad
input refused without a trace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from iscc_vdb import (
    BatchMatches,
    InvalidIsccError,
    IsccVdbError,
    Matches,
    NphdIndex,
    ReadOnlyError,
)
from iscc_vdb.nphd import pad_vectors, unpad_vectors


def codes(n: int, nbytes: int = 8, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, nbytes), dtype=np.uint8)


def nphd(a: np.ndarray, b: np.ndarray) -> float:
    m = min(a.size, b.size)
    return float(np.unpackbits(a[:m] ^ b[:m]).sum()) / (8 * m)


def test_add_search_and_the_file_operations(tmp_path: Path) -> None:
    idx = NphdIndex(max_dim=128)
    short, long = codes(300), codes(100, 16, seed=4)
    idx.add(np.arange(300, dtype=np.uint64), short)
    idx.add(np.arange(300, 400, dtype=np.uint64), list(long))
    assert len(idx) == 400 and idx.max_dim == 128 and idx.max_bytes == 16
    m = idx.search(short[5], count=4, exact=True)
    assert isinstance(m, Matches) and int(m.keys[0]) == 5 and m.distances[0] == 0.0
    for k, d in m.to_list():
        stored = short[k] if k < 300 else long[k - 300]
        assert d == pytest.approx(nphd(short[5], stored))
    # A 64-bit prefix of a stored 128-bit code finds it at 0.
    b = idx.search([long[7][:8], short[9]], count=2, exact=True)
    assert isinstance(b, BatchMatches) and int(b.keys[0, 0]) == 307 and int(b[1].keys[0]) == 9
    assert np.array_equal(idx.get(307), long[7]) and idx.get(999) is None
    assert idx.count(5) == 1 and list(idx.contains(np.array([5, 999], dtype=np.uint64))) == [
        True,
        False,
    ]
    # add skips stored keys; upsert replaces; remove counts stored keys.
    idx.add(5, codes(1, seed=9)[0])
    assert np.array_equal(idx.get(5), short[5])
    idx.upsert(5, codes(1, seed=9)[0])
    assert np.array_equal(idx.get(5), codes(1, seed=9)[0])
    assert idx.remove(np.array([5, 999], dtype=np.uint64)) == 1 and len(idx) == 399
    assert idx.dirty > 0
    path = tmp_path / "unit.ivdb"
    idx.save(path)
    assert idx.dirty == 0
    # restore, view (read-only), copy (writable), load, reset.
    again = NphdIndex.restore(path)
    assert len(again) == 399 and sorted(again.keys) == sorted(idx.keys)
    viewed = NphdIndex.restore(path, view=True)
    with pytest.raises(ReadOnlyError):
        viewed.add(1000, short[0])
    with pytest.raises(RuntimeError):
        viewed.remove(1)
    copy = viewed.copy()
    copy.add(1000, short[0])
    assert len(copy) == 400 and len(viewed) == 399
    idx.reset()
    assert len(idx) == 0
    idx.load(path)
    assert len(idx) == 399 and all(v.size in (8, 16) for v in idx.vectors)
    idx.view(path)
    with pytest.raises(ReadOnlyError):
        idx.upsert(1, short[0])
    for i in (idx, again, viewed, copy):
        i.close()
    assert "closed" in repr(idx)


def test_bad_input_is_refused_and_writes_nothing() -> None:
    idx = NphdIndex(max_dim=64)
    with pytest.raises(InvalidIsccError, match="exceeds"):
        idx.add(np.array([1, 2], dtype=np.uint64), [codes(1)[0], codes(1, 16)[0]])
    with pytest.raises(InvalidIsccError, match="264 bits"):
        idx.add(3, np.zeros(33, dtype=np.uint8))
    assert len(idx) == 0
    with pytest.raises(TypeError, match="ndim"):
        NphdIndex(max_dim=64, ndim=72)
    with pytest.raises(ValueError, match="keys"):
        idx.upsert(None, codes(1)[0])
    with pytest.raises(ValueError, match="unsigned"):
        idx.add(-3, codes(1)[0])
    with pytest.raises(ValueError, match="count"):
        idx.search(codes(1)[0], count=0)
    with pytest.raises(IsccVdbError, match="nonexistent"):
        NphdIndex.restore("/nonexistent/unit.ivdb")
    idx.close()


def test_iscc_usearch_shapes_bytes_counters_and_rows() -> None:
    """What iscc-usearch's own tests ask of ``NphdIndex`` beyond search:
    any byte length, ``add`` returning a key array, usearch's cost counters,
    ``ndim``, ``max_dim`` in whole bytes and its row layout helpers."""
    idx = NphdIndex(max_dim=32, connectivity=8, expansion_add=40, expansion_search=50)
    assert (idx.max_dim, idx.max_bytes, idx.ndim) == (32, 4, 40)
    assert (idx.connectivity, idx.expansion_add, idx.expansion_search) == (8, 40, 50)
    assert idx.copy().connectivity == 8
    added = idx.add(7, np.array([1, 2, 3], dtype=np.uint8))
    assert isinstance(added, np.ndarray) and added.dtype == np.uint64 and added.tolist() == [7]
    idx.add([8, 9], [np.array([1, 2], dtype=np.uint8), np.array([0, 2, 3, 4], dtype=np.uint8)])
    with pytest.raises(InvalidIsccError, match="exceeds"):
        idx.add(10, np.zeros(5, dtype=np.uint8))
    m = idx.search(np.array([1, 2, 3, 4], dtype=np.uint8), count=3, exact=True)
    assert [(int(k), float(d)) for k, d in m.to_list()] == [(7, 0.0), (8, 0.0), (9, 1 / 32)]
    assert m.visited_members >= 3 and m.computed_distances >= 3
    b = idx.search([np.array([1, 2], dtype=np.uint8), np.array([255], dtype=np.uint8)], count=2)
    assert b.visited_members == int(b.visited.sum()) >= 4
    assert b[0].visited_members == int(b.visited[0])
    for bad, match in ((264, "must be <= 256"), (100, "multiple of 8")):
        with pytest.raises(ValueError, match=match):
            NphdIndex(max_dim=bad)
    rows = pad_vectors([np.array([9, 8], dtype=np.uint8), np.array([7], dtype=np.uint8)], nbytes=3)
    assert rows.tolist() == [[2, 9, 8, 0], [1, 7, 0, 0]]
    assert [v.tolist() for v in unpad_vectors(rows)] == [[9, 8], [7]]
    with pytest.raises(ValueError, match="never truncated"):
        pad_vectors([np.zeros(4, dtype=np.uint8)], nbytes=3)


def test_a_buffer_in_memory_round_trips_and_damage_is_refused() -> None:
    """``save()`` without a path gives the index as bytes; ``restore``,
    ``load`` and ``view`` take them back (read into memory)."""
    idx = NphdIndex(max_dim=128)
    vecs = [codes(1, n, seed=n)[0] for n in (3, 8, 16)]
    idx.add([1, 2, 3], vecs)
    data = idx.save()
    assert isinstance(data, bytes) and len(data) > 0
    back = NphdIndex.restore(data)
    assert len(back) == 3 and back.get(1).tolist() == vecs[0].tolist()
    assert back.search(vecs[2], count=1).to_list() == [(3, 0.0)]
    other = NphdIndex(max_dim=64)
    other.view(bytearray(data))
    assert other.max_dim == 128 and len(other) == 3
    other.add(4, vecs[1])  # read into memory: writable
    with pytest.raises(IsccVdbError, match="truncated"):
        other.load(data[:-1])
    assert len(other) == 4, "a failed load leaves the contents as they were"


def test_keys_none_generates_keys_that_never_collide() -> None:
    idx = NphdIndex(max_dim=64)
    assert idx.add(None, codes(1)[0]).tolist() == [0]
    idx.add(100, codes(1, seed=4)[0])
    got = idx.add(None, codes(2, seed=5))
    assert got.dtype == np.uint64 and got.tolist() == [2, 3]
    # After a removal len() names a stored key: skipped, never overwritten.
    idx.remove(0)
    stored = idx.get(3)
    assert idx.add(None, codes(1, seed=6)[0]).tolist() == [4]
    assert np.array_equal(idx.get(3), stored)
    assert len(idx) == 4
    # A bad vector anywhere: an error, nothing added.
    with pytest.raises(InvalidIsccError):
        idx.add(None, [codes(1)[0], np.zeros(9, dtype=np.uint8)])
    assert len(idx) == 4


def test_an_index_partitions_itself_and_nprobe_is_chosen_per_call() -> None:
    # 48,000 rows pass the size from which an index partitions itself;
    # "always" skips the cost check, so the layout does not depend on timing.
    n = 48_000
    short = codes(n - 2_000, 8, seed=11)
    long = codes(2_000, 16, seed=12)
    keys = np.arange(n, dtype=np.uint64)
    idx = NphdIndex(max_dim=128, partition="always")
    idx.add(keys[: n - 2_000], short)
    idx.add(keys[n - 2_000 :], long)
    idx.wait_partition()
    s = idx.stats()
    assert s["options"]["partition"] == "always"
    assert not s["partition_pending"]
    lists, nprobe = s["lists"], s["nprobe"]
    assert lists > 1 and 1 <= nprobe <= lists
    report = s["last_partition"]
    assert report["kept"] and report["lists"] == lists and report["nprobe"] == nprobe
    assert 0 < report["rows"] <= n and 0.0 <= report["recall"] <= 1.0

    queries = [short[5], short[700], long[3], long[1_500], short[9][:4]]
    exact = idx.search(queries, 10, exact=True)
    every = idx.search(queries, 10, nprobe=lists)
    assert isinstance(every, BatchMatches)
    np.testing.assert_array_equal(every.counts, exact.counts)
    np.testing.assert_array_equal(every.distances, exact.distances)
    np.testing.assert_array_equal(every.keys, exact.keys)

    # One list: a stored row is still found (it sits in its nearest list),
    # and far fewer distances are computed than when every list is probed.
    one = idx.search(short[700], 10, nprobe=1)
    assert isinstance(one, Matches)
    assert one[0] == (700, 0.0)
    all_lists = idx.search(short[700], 10, nprobe=lists)
    assert one.computed_distances * 2 < all_lists.computed_distances

    with pytest.raises(ValueError, match="nprobe"):
        idx.search(short[0], 10, nprobe=-1)
    idx.close()


def test_a_bad_partition_mode_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r'partition "sometimes" \(expected "auto", "always" or "off"\)'
    ):
        NphdIndex(max_dim=64, partition="sometimes")
    idx = NphdIndex(max_dim=64, partition="off")
    idx.add(1, codes(1)[0])
    idx.wait_partition()  # none due: returns at once
    assert idx.stats()["options"]["partition"] == "off"
    assert idx.stats()["last_partition"] is None
    idx.close()
