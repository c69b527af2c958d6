"""The low-level sharded index from Python: iscc-usearch's class names and
call shapes (numpy in, Matches / BatchMatches out), and where we differ on
purpose (no truncation, first write wins across shards, exact len)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import iscc_vdb
from iscc_vdb import (
    BatchMatches,
    InvalidArgumentError,
    InvalidIsccError,
    LockedError,
    Matches,
    ReadOnlyError,
    ShardedIndex128,
    ShardedNphdIndex,
    ShardedNphdIndex128,
)


def codes(n: int, nbytes: int = 8, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, nbytes), dtype=np.uint8)


def nphd(a: np.ndarray, b: np.ndarray) -> float:
    m = min(a.size, b.size)
    return float(np.unpackbits(a[:m] ^ b[:m]).sum()) / (8 * m)


def test_add_search_get_count_remove_like_iscc_usearch(tmp_path: Path) -> None:
    vecs = codes(500)
    keys = np.arange(1, 501, dtype=np.uint64)
    with ShardedNphdIndex(max_dim=256, path=tmp_path / "ix", shard_size=64 * 1024) as idx:
        idx.add(keys, vecs)
        assert len(idx) == 500 and idx.size == 500
        # A single query: Matches, nearest first, its own vector at 0.
        m = idx.search(vecs[41], count=5, exact=True)
        assert isinstance(m, Matches) and len(m) == 5
        assert int(m.keys[0]) == 42 and m.distances[0] == 0.0
        assert list(m.distances) == sorted(m.distances)
        # Distances are true NPHD.
        for k, d in m.to_list():
            assert d == pytest.approx(nphd(vecs[41], vecs[k - 1]))
        # A batch of mixed lengths: a 256-bit query matches the 64-bit code
        # it starts with at 0 (common prefix).
        long_q = np.concatenate([vecs[9], codes(1, 24, seed=9)[0]])
        b = idx.search([vecs[3], long_q], count=3, exact=True)
        assert isinstance(b, BatchMatches) and len(b) == 2
        assert b.keys.shape == (2, 3) and list(b.counts) == [3, 3]
        assert int(b.keys[0, 0]) == 4 and int(b[1].keys[0]) == 10
        assert b.distances[1, 0] == 0.0
        # get / count / contains, one key and several.
        assert np.array_equal(idx.get(7), vecs[6])
        got = idx.get(np.array([7, 9999], dtype=np.uint64))
        assert np.array_equal(got[0], vecs[6]) and got[1] is None
        assert idx.count(7) == 1 and idx.contains(9999) is False
        assert list(idx.contains(np.array([1, 2, 9999], dtype=np.uint64))) == [True, True, False]
        assert 7 in idx
        # First write wins across every shard; add_once reports what it added.
        idx.add(np.array([7], dtype=np.uint64), codes(1, seed=5))
        assert np.array_equal(idx.get(7), vecs[6])
        added = idx.add_once(np.array([7, 600, 600], dtype=np.uint64), codes(3, seed=6))
        assert list(added) == [600]
        assert idx.add_once(601, codes(1, seed=7)[0]).tolist() == [601]
        assert idx.add_once(601, codes(1, seed=8)[0]) is None
        # upsert replaces; remove counts live keys; len stays exact.
        new = codes(1, seed=11)[0]
        idx.upsert(7, new)
        assert np.array_equal(idx.get(7), new)
        assert idx.remove(np.array([7, 8, 99999], dtype=np.uint64)) == 2
        assert len(idx) == 500 and 7 not in idx
        idx.upsert(8, new)
        assert idx.remove(8) == 1 and 8 not in idx
        idx.save()
        assert idx.dirty == 0
        # One active shard holds every row: removals there are immediate,
        # so compaction has no sealed shard to rewrite.
        assert idx.shard_count == 1 and idx.compact() == 0
        assert idx.rebuild_bloom() == len(idx)
        assert sorted(int(k) for k in idx.keys) == sorted(
            [k for k in range(1, 501) if k not in (7, 8)] + [600, 601]
        )
        assert all(v.dtype == np.uint8 and v.size == 8 for v in idx.vectors)
        assert idx.max_dim == 256 and idx.stats()["total_vectors"] == len(idx)
    # Reopened without max_dim: the index's own; read-only refuses writes.
    ro = ShardedNphdIndex(path=tmp_path / "ix", read_only=True)
    assert len(ro) == 500 and ro.max_dim == 256
    with pytest.raises(ReadOnlyError):
        ro.add(1234, codes(1)[0])
    ro.close()


def test_compact_drops_exactly_the_removed_rows_of_sealed_shards(tmp_path: Path) -> None:
    with ShardedNphdIndex(max_dim=256, path=tmp_path / "ix", shard_size=4096) as idx:
        vecs = codes(400, seed=3)
        idx.add(np.arange(1, 401, dtype=np.uint64), vecs)
        assert idx.shard_count >= 2
        # The first keys went to the first (sealed) shard.
        assert idx.remove(np.arange(1, 51, dtype=np.uint64)) == 50
        idx.save()
        assert idx.compact() == 50
        assert idx.compact() == 0
        assert len(idx) == 350 and 1 not in idx and 50 not in idx
        assert np.array_equal(idx.get(51), vecs[50])
        # Still found by search after the rewrite, at distance 0.
        assert int(idx.search(vecs[399], count=1).keys[0]) == 400


def test_reset_empties_the_index_durably_at_once(tmp_path: Path) -> None:
    path = tmp_path / "ix"
    with ShardedNphdIndex(max_dim=256, path=path, shard_size=4096) as idx:
        vecs = codes(300, seed=5)
        idx.add(np.arange(1, 301, dtype=np.uint64), vecs)
        idx.upsert(7, codes(1, seed=6)[0])
        assert idx.shard_count >= 2 and idx.dirty == 302  # the upsert: a removal and an add
        assert idx.reset() == 300
        assert len(idx) == 0 and idx.dirty == 0 and 1 not in idx and idx.get(1) is None
        assert idx.search(vecs[0], count=5).keys.size == 0
        assert not list(path.glob("shard_*"))
        idx.add(1000, vecs[0])
    # Reopened: only what came after the reset (iscc-usearch's rows return).
    with ShardedNphdIndex(max_dim=256, path=path) as idx:
        assert len(idx) == 1 and 1000 in idx and 1 not in idx
    with (
        ShardedNphdIndex(max_dim=256, path=path, read_only=True) as ro,
        pytest.raises(ReadOnlyError),
    ):
        ro.reset()


def test_vectors_of_any_byte_length_compare_over_their_common_prefix(
    tmp_path: Path,
) -> None:
    """Vectors of 1-32 bytes, as iscc-usearch takes them (its tests use 2-,
    4- and 6-byte vectors): exact search equals NPHD over the common bytes,
    through small shards, after reopening, and approximately."""
    rng = np.random.default_rng(7)
    vecs = [rng.integers(0, 256, size=int(n), dtype=np.uint8) for n in rng.integers(1, 33, 300)]
    path = tmp_path / "ix"
    with ShardedNphdIndex(max_dim=256, path=path, shard_size=256) as idx:
        for k, v in enumerate(vecs):
            idx.add(k, v)
        assert len(idx) == 300
        assert idx.get(5).tolist() == vecs[5].tolist()
    with ShardedNphdIndex(path=path) as idx:
        assert idx.stats()["view_shards"] > 1
        assert (idx.max_dim, idx.max_bytes, idx.ndim) == (256, 32, 264)
        for q in (vecs[0], vecs[17][:3], np.array([1, 2], dtype=np.uint8)):
            want = sorted((nphd(q, v), k) for k, v in enumerate(vecs))[:10]
            m = idx.search(q, count=10, exact=True)
            assert [(float(d), int(k)) for d, k in zip(m.distances, m.keys, strict=True)] == [
                (pytest.approx(d), k) for d, k in want
            ]
            approx = idx.search(q, count=10)
            for d, k in zip(approx.distances, approx.keys, strict=True):
                assert float(d) == pytest.approx(nphd(q, vecs[int(k)]))


def test_bad_input_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    with ShardedNphdIndex(max_dim=128, path=tmp_path / "ix") as idx:
        # Never truncated: a 256-bit code in a 128-bit index, a 33-byte one.
        with pytest.raises(InvalidIsccError, match="exceeds this index's max_dim"):
            idx.add(np.array([1, 2], dtype=np.uint64), [codes(1)[0], codes(1, 32)[0]])
        with pytest.raises(InvalidIsccError, match="264 bits"):
            idx.add(3, np.zeros(33, dtype=np.uint8))
        assert len(idx) == 0
        with pytest.raises(TypeError, match="uint8"):
            idx.add(4, np.zeros(8, dtype=np.int64))
        with pytest.raises(ValueError, match="keys"):
            idx.upsert(None, codes(1)[0])
        with pytest.raises(ValueError, match="unsigned"):
            idx.add(-1, codes(1)[0])
        with pytest.raises(ValueError, match="2 keys for 1 vectors"):
            idx.add(np.array([1, 2], dtype=np.uint64), codes(1))
        with pytest.raises(ValueError, match="count"):
            idx.search(codes(1)[0], count=0)
        with pytest.raises(ValueError, match="nprobe"):
            idx.search(codes(1)[0], nprobe=-1)
        assert len(idx) == 0
        # A second writer of the directory is locked out.
        with pytest.raises(LockedError):
            ShardedNphdIndex(path=tmp_path / "ix")
    with pytest.raises(
        InvalidArgumentError, match=r'partition "sometimes" \(expected "auto", "always" or "off"\)'
    ):
        ShardedNphdIndex(max_dim=64, path=tmp_path / "part", partition="sometimes")
    with pytest.raises(InvalidArgumentError, match='option "expansion_search": invalid type'):
        ShardedNphdIndex(max_dim=64, path=tmp_path / "part", expansion_search="many")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="max_dim 100"):
        ShardedNphdIndex(max_dim=100, path=tmp_path / "other")
    with pytest.raises(ValueError, match="multi"):
        ShardedNphdIndex(max_dim=64, path=tmp_path / "multi", multi=True)
    with pytest.raises(iscc_vdb.ClosedError):
        idx.search(codes(1)[0])


def test_128_bit_keys_and_hamming_vectors(tmp_path: Path) -> None:
    ids = [bytes([i]) * 16 for i in range(1, 4)]
    with ShardedNphdIndex128(max_dim=64, path=tmp_path / "n") as idx:
        idx.add(np.frombuffer(b"".join(ids), dtype="V16"), codes(3))
        m = idx.search(codes(3)[1], count=1, exact=True)
        assert m.to_list() == [(ids[1], 0.0)]
        assert idx.contains(ids[2]) is True and idx.get(b"\0" * 16) is None
        with pytest.raises(ValueError, match="16 bytes"):
            idx.add([b"short"], codes(1))
        # An int is no 128-bit key (bytes(16) would be 16 zero bytes).
        for bad in (16, [16]):
            with pytest.raises(ValueError, match="not int"):
                idx.add(bad, codes(1))
        assert sorted(idx.keys) == ids
    with ShardedIndex128(ndim=32, metric="hamming", path=tmp_path / "h") as idx:
        # Fixed-length vectors stack: empty is (0, 4), a slice a 2-D array.
        assert np.asarray(idx.vectors).shape == (0, 4) and idx.vectors[:5].shape == (0, 4)
        vecs = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [255, 255, 255, 255]], dtype=np.uint8)
        idx.add(ids, vecs)
        assert idx.vectors[:2].shape == (2, 4) and np.asarray(idx.vectors).shape == (3, 4)
        assert idx.keys[:2].dtype == np.dtype("V16") and len(idx.keys[:2]) == 2
        m = idx.search(vecs[0], count=3, exact=True)
        assert list(m.distances) == [0.0, 1.0, 32.0] and m[1][0] == ids[1]
        with pytest.raises(InvalidIsccError, match="40 bits"):
            idx.add(ids[0], np.zeros(5, dtype=np.uint8))
    with pytest.raises(ValueError, match="bit vectors"):
        ShardedIndex128(ndim=32, metric="cos", path=tmp_path / "f")


def test_lazy_views_repr_and_reference_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_dim is required"):
        ShardedNphdIndex(path=tmp_path / "new")
    idx = ShardedNphdIndex(max_dim=192, path=tmp_path / "ix", shard_size=4096)
    vecs = codes(1000)
    for i in range(0, 1000, 10):
        idx.add(np.arange(i, i + 10, dtype=np.uint64), vecs[i : i + 10])
    assert idx.max_bytes == 24 and idx.shard_count >= 2
    assert repr(idx).startswith("ShardedNphdIndex(1000 vectors, max_dim=192, shards=")
    keys = idx.keys
    assert len(keys) == 1000 and isinstance(keys[0], int)
    assert np.asarray(keys).dtype == np.uint64 and sorted(np.asarray(keys)) == list(range(1000))
    assert keys[-1] == list(keys)[-1] and len(keys[10:20]) == 10
    vectors = idx.vectors
    assert repr(vectors) == "ShardedNphdIndexedVectors(count=1000)"
    by_key = dict(zip(keys, vectors, strict=True))
    assert all(np.array_equal(by_key[k], vecs[k]) for k in range(1000))
    assert np.asarray(vectors).shape == (1000, 8)
    idx.add(5000, codes(1, 16)[0])
    with pytest.raises(ValueError, match="different lengths"):
        np.asarray(idx.vectors)
    with pytest.raises(IndexError):
        idx.keys[1001]
    idx.close()
    # As the reference: closed and read-only are RuntimeErrors.
    with pytest.raises(RuntimeError, match="index is closed"):
        idx.add_once(2, codes(1)[0])
    ro = ShardedNphdIndex(path=tmp_path / "ix", read_only=True)
    with pytest.raises(RuntimeError, match="read-only"):
        ro.remove(1)
    ro.close()


def test_keys_none_generates_keys_unused_in_every_shard(tmp_path: Path) -> None:
    with ShardedNphdIndex(max_dim=64, path=tmp_path / "g", shard_size=1) as idx:
        idx.add([1, 2, 3], codes(3))
        got = idx.add(None, codes(3, seed=2))
        # From len() = 3 up: 3 is live in a sealed shard, so 4, 5, 6.
        assert got.dtype == np.uint64 and got.tolist() == [4, 5, 6]
        assert np.array_equal(idx.get(3), codes(3)[2])
        assert len(idx) == 6
    with (
        ShardedNphdIndex128(max_dim=64, path=tmp_path / "w") as wide,
        pytest.raises(ValueError, match="requires explicit keys"),
    ):
        wide.add(None, codes(1)[0])
