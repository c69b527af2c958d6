"""The spec's Python examples (iscc-vdb-draft-spec.md), run as written with
real ISCCs in place of the elided ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import iscc_vdb
from iscc_vdb import IsccBatchMatches, IsccIndex, IsccMatches

CODE = "ISCC:KACYPXW445FTYNJ3CYSXHAFJMA2HUWULUNRFE3BLHRSCXYH2M5AEGQY"


def test_constructor_add_get_search_remove(tmp_path: Path, corpus: list[dict]) -> None:
    idx = IsccIndex(tmp_path / "index", max_dim=256, unit_threshold=0.75, durable=False)
    # Single entry, auto-generate ISCC-ID
    ids = idx.add({"iscc_code": CODE})
    assert len(ids) == 1 and ids[0].startswith("ISCC:")
    # Batch with explicit ISCC-IDs
    batch = [{"iscc_id": r["iscc_id"], "iscc_code": r["iscc_code"]} for r in corpus[:2]]
    assert idx.add(batch) == [r["iscc_id"] for r in corpus[:2]]
    # Pre-decomposed units (batch)
    with_units = [r for r in corpus if r.get("units")][:2]
    unit_ids = idx.add([{"units": r["units"]} for r in with_units])
    assert len(unit_ids) == 2
    # Copy from get() result
    entry = idx.get(ids[0])
    assert entry is not None and entry["iscc_id"] == ids[0] and entry["iscc_code"] == CODE
    idx2 = IsccIndex()
    assert idx2.add(entry) == [ids[0]]
    assert idx2.get(ids[0]) == entry
    idx2.close()
    # Batch lookup, None for the missing
    results = idx.get([ids[0], corpus[0]["iscc_id"], corpus[-1]["iscc_id"]])
    assert isinstance(results, list) and results[0] == entry and results[2] is None
    assert results[1] is not None and results[1]["iscc_id"] == corpus[0]["iscc_id"]

    # Single search
    matches = idx.search(iscc_codes=CODE, count=5)
    assert isinstance(matches, IsccMatches)
    assert matches.keys[0] == ids[0] and matches.distances[0] == 0.0
    assert matches.instance_matches == [ids[0]]
    assert isinstance(matches.keys, np.ndarray) and isinstance(matches.distances, np.ndarray)
    assert matches[0].iscc_id == ids[0] and matches.to_list()[0] == (ids[0], 0.0)
    # Batch search
    batch_m = idx.search(iscc_codes=[CODE, corpus[1]["iscc_code"]], count=10)
    assert isinstance(batch_m, IsccBatchMatches)
    assert batch_m.keys.shape == (2, 10)
    assert list(batch_m[0].keys) == list(matches.keys[: len(batch_m[0])])
    assert batch_m.counts[1] >= 1 and batch_m[1].keys[0] == corpus[1]["iscc_id"]
    # Pre-decomposed units search
    units_m = idx.search(units=with_units[0]["units"], count=3, exact=True)
    assert isinstance(units_m, IsccMatches) and units_m.distances[0] == 0.0
    assert unit_ids[0] in list(units_m.keys)

    # Remove single entry: META, SEMANTIC/CONTENT, DATA and INSTANCE mappings
    removed = idx.remove(ids[0])
    assert removed == 4
    assert idx.get(ids[0]) is None
    # Remove batch
    assert idx.remove([r["iscc_id"] for r in corpus[:2]]) > 0
    assert idx.size == 2
    idx.save()
    idx.close()


def test_rebuild_after_restore(tmp_path: Path, corpus: list[dict]) -> None:
    path = tmp_path / "index"
    with IsccIndex(path) as idx:
        idx.add(corpus[:300])
        before = idx.search(iscc_codes=corpus[7]["iscc_code"], count=5, exact=True).to_list()
    # Rebuild after corruption or to apply new parameters
    idx = IsccIndex.restore(path)
    assert idx is not None
    idx.rebuild()
    idx.save()
    assert idx.search(iscc_codes=corpus[7]["iscc_code"], count=5, exact=True).to_list() == before
    assert idx.size == 300 and "META-NONE-V0" in idx.unit_types
    idx.close()
    assert IsccIndex.restore(tmp_path / "nothing-here") is None


def test_batch_padding_counts_and_recall(corpus: list[dict]) -> None:
    with IsccIndex() as idx:
        idx.add({"iscc_code": CODE})
        b = idx.search(iscc_codes=[CODE, CODE], count=4)
        assert isinstance(b, IsccBatchMatches)
        assert b.counts.tolist() == [1, 1]
        assert b.keys[0, 1] == "" and np.isnan(b.distances[0, 1])
        assert b.mean_recall(b) == 1.0
        assert b.mean_recall([[corpus[-1]["iscc_id"]], []]) == pytest.approx(0.5)
        with pytest.raises(ValueError):
            b.mean_recall([[]])


def test_load_view_copy_and_compact(tmp_path: Path, corpus: list[dict]) -> None:
    path = tmp_path / "index"
    # Small shards, so removals leave tombstoned rows for compact().
    idx = IsccIndex(path, shard_size=16 << 10)
    ids = idx.add(corpus[:200])
    query = {"iscc_codes": corpus[9]["iscc_code"], "count": 5, "exact": True}
    before = idx.search(**query).to_list()
    # view(): read-only, memory-mapped; it sees everything added before.
    idx.view()
    assert idx.search(**query).to_list() == before and idx.size == 200
    with pytest.raises(iscc_vdb.ReadOnlyError):
        idx.add(corpus[200])
    # load(): writable again.
    idx.load()
    assert idx.add(corpus[200]) == [corpus[200]["iscc_id"]]
    # copy(): an independent in-memory index with the same entries.
    twin = idx.copy()
    assert twin.size == 201 and twin.search(**query).to_list() == before
    twin.remove(ids[:50])
    assert twin.size == 151 and idx.size == 201
    twin.close()
    # compact() after removals from sealed shards drops their rows.
    idx.add(corpus[201:1500])
    idx.save()
    dead = sum(u["tombstones"] for u in idx.info()["units"].values())
    assert dead == 0
    idx.remove([r["iscc_id"] for r in corpus[1000:1300]])
    dead = sum(u["tombstones"] for u in idx.info()["units"].values())
    assert dead > 0
    answer = idx.search(**query).to_list()
    assert idx.compact() > 0
    assert sum(u["tombstones"] for u in idx.info()["units"].values()) == 0
    assert idx.search(**query).to_list() == answer
    idx.close()
    with pytest.raises(ValueError):
        IsccIndex().view()
