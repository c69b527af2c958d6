"""``ScalableBloomFilter`` over ``ivdb_bloom``: iscc-usearch's call shapes,
growth, 64- and 128-bit keys, save / load, and errors."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from iscc_vdb import CorruptError, InvalidArgumentError, ScalableBloomFilter


def test_keys_growth_persistence_and_clear(tmp_path: Path) -> None:
    bloom = ScalableBloomFilter(initial_capacity=100, fpr=0.01, growth_factor=4.0)
    assert (bloom.initial_capacity, bloom.fpr, bloom.growth_factor) == (100, 0.01, 4.0)
    assert (bloom.count, bloom.filter_count) == (0, 1)
    ints = list(range(0, 3000, 3))
    wide = [uuid.UUID(int=i * 7919).bytes for i in range(200)]
    bloom.add_batch(ints + wide)
    bloom.add(2**64 - 1)
    # Bytes of any length, the empty key too; 16 bytes are one key however
    # they come (bytes or a numpy V16 item).
    texts = [b"", b"i", b"iscc", bytes(range(100))]
    bloom.add_batch(texts)
    assert all(bloom.contains_batch(texts))
    assert np.array([wide[3]], dtype="V16")[0] in bloom
    # No false negatives, across links and both key widths.
    assert all(bloom.contains_batch(ints + wide)) and 2**64 - 1 in bloom
    assert bloom.filter_count > 1 and bloom.current_capacity >= 100 + 400
    # Never added: mostly absent (the rate is a bound, not an exact figure).
    absent = bloom.contains_batch(range(1, 30000, 3))
    assert sum(absent) < 0.03 * len(absent)
    assert 1_205 * 0.95 < bloom.count <= 1_205
    assert f"filters={bloom.filter_count}" in repr(bloom)
    path = tmp_path / "keys.bloom"
    bloom.save(path)
    with ScalableBloomFilter.load(path) as back:
        assert back.contains_batch(ints + wide + list(range(1, 300, 3))) == bloom.contains_batch(
            ints + wide + list(range(1, 300, 3))
        )
        assert (back.count, back.filter_count) == (bloom.count, bloom.filter_count)
    bloom.clear()
    assert (bloom.count, bloom.filter_count, bloom.current_capacity) == (0, 1, 100)
    assert 3 not in bloom
    bloom.close()
    assert "closed" in repr(bloom)


def test_bad_input_is_refused(tmp_path: Path) -> None:
    bloom = ScalableBloomFilter(initial_capacity=10)
    with pytest.raises(ValueError, match="2\\*\\*64"):
        bloom.add_batch([1, -1])
    assert bloom.count == 0, "a refused batch adds nothing"
    with pytest.raises(ValueError, match="whole number"):
        ScalableBloomFilter(growth_factor=1.5)
    with pytest.raises(InvalidArgumentError, match="error rate"):
        ScalableBloomFilter(fpr=1.0)
    with pytest.raises(InvalidArgumentError, match="initial_capacity 0"):
        ScalableBloomFilter(initial_capacity=0)
    bad = tmp_path / "bad.bloom"
    bad.write_bytes(b"XXXX" + b"\x00" * 100)
    with pytest.raises(CorruptError, match="magic"):
        ScalableBloomFilter.load(bad)
