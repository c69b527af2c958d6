"""Granular features: entries sharing content segments with a query's
simprints come back as chunk matches, with their segments on request."""

from __future__ import annotations

from typing import Any

import pytest

import iscc_vdb
from iscc_vdb import ChunkMatch, IsccBatchMatches, IsccIndex, IsccMatches


def _features(*simprints: str, offsets: list[int] | None = None) -> list[dict[str, Any]]:
    fs: dict[str, Any] = {"maintype": "content", "subtype": "text", "simprints": list(simprints)}
    if offsets is not None:
        fs["offsets"] = offsets
    return [fs]


def test_chunk_matches_segments_batches_and_more_like_this(corpus: list[dict]) -> None:
    entries = [dict(r) for r in corpus[:3]]
    entries[0]["features"] = _features("AAAAAAAAAAE", "AAAAAAAAAAc", offsets=[0, 50])
    # iscc-search's form of the same shared chunk.
    entries[1]["simprints"] = {"CONTENT_TEXT_V0": [{"simprint": "AAAAAAAAAAc", "offset": 100}]}
    entries[2]["features"] = _features("__________8")
    with IsccIndex(None, durable=False) as idx:
        idx.add(entries)
        found = idx.search(features=_features("AAAAAAAAAAc"), simprint_threshold=0.99, detail=True)
        assert isinstance(found, IsccMatches)
        assert len(found) == 0  # no units asked
        chunks = found.chunk_matches
        assert all(isinstance(c, ChunkMatch) for c in chunks)
        offsets = {c.iscc_id: c.types["CONTENT-TEXT-V0"].chunks[0].offset for c in chunks}  # type: ignore[index]
        assert offsets == {entries[0]["iscc_id"]: 50, entries[1]["iscc_id"]: 100}
        assert all(c.score == 1.0 for c in chunks)
        first = chunks[0].types["CONTENT-TEXT-V0"]
        assert (first.matches, first.queried) == (1, 1)
        assert first.chunks is not None and first.chunks[0].freq == 2
        # Beside a code: unit matches and chunk matches together.
        both = idx.search(entries[0]["iscc_code"], features=_features("AAAAAAAAAAc"))
        assert isinstance(both, IsccMatches)
        assert entries[0]["iscc_id"] in list(both.keys)
        assert len(both.chunk_matches) >= 2
        assert both.chunk_matches[0].types["CONTENT-TEXT-V0"].chunks is None
        # "More like this": entry 0's units and features, entry 0 left out.
        like = idx.search(iscc_id=entries[0]["iscc_id"], simprint_threshold=0.99)
        assert isinstance(like, IsccMatches)
        assert [c.iscc_id for c in like.chunk_matches] == [entries[1]["iscc_id"]]
        assert entries[0]["iscc_id"] not in list(like.keys)
        # A batch of codes with chunk options is a batch.
        batch = idx.search([r["iscc_code"] for r in entries], detail=True)
        assert isinstance(batch, IsccBatchMatches)
        assert batch.chunk_matches == [[], [], []]
        # Bad features: an exception naming the field.
        with pytest.raises(iscc_vdb.InvalidArgumentError, match=r"features\[0\]"):
            idx.search(features=_features("AAAA"))
        # iscc_id takes precedence over other query fields (as in iscc-search).
        over = idx.search(
            entries[0]["iscc_code"], iscc_id=entries[0]["iscc_id"], simprint_threshold=0.99
        )
        assert [c.iscc_id for c in over.chunk_matches] == [entries[1]["iscc_id"]]  # type: ignore[union-attr]
        assert idx.info()["simprints"]["CONTENT-TEXT-V0"]["rows"] == 4
