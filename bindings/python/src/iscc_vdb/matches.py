"""Search results: ``IsccMatches`` for one query, ``IsccBatchMatches`` for
several, with numpy views of keys and distances as the spec describes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class UnitScore:
    """The best match of one unit type for one entry."""

    #: Similarity 0.0 to 1.0 (1 - distance).
    score: float
    #: NPHD of the best unit match.
    distance: float
    #: False when the score fell below the unit threshold (not counted).
    kept: bool


@dataclass(frozen=True)
class IsccMatch:
    """One matching entry."""

    iscc_id: str
    #: Combined similarity 0.0 to 1.0.
    score: float
    #: Combined distance (1 - score).
    distance: float
    #: Per unit type, the best unit match.
    units: dict[str, UnitScore] = field(default_factory=dict)
    #: True when the entry's INSTANCE unit matched the query's.
    instance: bool = False

    @staticmethod
    def from_json(m: dict[str, Any]) -> IsccMatch:
        return IsccMatch(
            iscc_id=m["iscc_id"],
            score=float(m["score"]),
            distance=float(m["distance"]),
            units={
                t: UnitScore(float(u["score"]), float(u["distance"]), bool(u["kept"]))
                for t, u in m.get("units", {}).items()
            },
            instance=bool(m.get("instance", False)),
        )


@dataclass(frozen=True)
class UnitMatches:
    """The matches of one unit type within one query's results."""

    keys: npt.NDArray[np.str_]
    distances: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.keys)


class IsccMatches:
    """The results of one query, best first."""

    def __init__(self, matches: Sequence[IsccMatch], instance_matches: Sequence[str]) -> None:
        self._matches = list(matches)
        #: ISCC-IDs of the matches (a numpy array of str).
        self.keys: npt.NDArray[np.str_] = np.array(
            [m.iscc_id for m in self._matches], dtype=np.str_
        )
        #: Combined distances (numpy float32).
        self.distances: npt.NDArray[np.float32] = np.array(
            [m.distance for m in self._matches], dtype=np.float32
        )
        #: ISCC-IDs whose INSTANCE unit matched exactly or by prefix.
        self.instance_matches: list[str] = list(instance_matches)
        types = sorted({t for m in self._matches for t in m.units})
        #: Per unit type, the entries that matched by a unit of that type.
        self.unit_matches: dict[str, UnitMatches] = {
            t: UnitMatches(
                np.array([m.iscc_id for m in self._matches if t in m.units], dtype=np.str_),
                np.array(
                    [m.units[t].distance for m in self._matches if t in m.units],
                    dtype=np.float32,
                ),
            )
            for t in types
        }

    @staticmethod
    def from_json(value: dict[str, Any]) -> IsccMatches:
        return IsccMatches(
            [IsccMatch.from_json(m) for m in value.get("matches", [])],
            value.get("instance_matches", []),
        )

    def __len__(self) -> int:
        return len(self._matches)

    def __getitem__(self, index: int) -> IsccMatch:
        return self._matches[index]

    def __iter__(self) -> Iterator[IsccMatch]:
        return iter(self._matches)

    def to_list(self) -> list[tuple[str, float]]:
        """The matches as (ISCC-ID, distance) pairs."""
        return [(m.iscc_id, m.distance) for m in self._matches]

    def __repr__(self) -> str:
        return f"IsccMatches({self.to_list()!r}, instance_matches={self.instance_matches!r})"


class IsccBatchMatches:
    """The results of several queries: 2-D keys and distances (one row per
    query, padded to the longest row or the requested count with ``""``
    and NaN; ``counts`` says how many are real)."""

    def __init__(self, queries: Sequence[IsccMatches], width: int | None = None) -> None:
        self._queries = list(queries)
        k = max([len(q) for q in self._queries] + [width or 0])
        n = len(self._queries)
        #: Real results per query.
        self.counts: npt.NDArray[np.int64] = np.array(
            [len(q) for q in self._queries], dtype=np.int64
        )
        longest = max((len(m.iscc_id) for q in self._queries for m in q), default=1)
        #: ISCC-IDs, shape (queries, k); padding is "".
        self.keys: npt.NDArray[np.str_] = np.full((n, k), "", dtype=f"<U{longest}")
        #: Distances, shape (queries, k); padding is NaN.
        self.distances: npt.NDArray[np.float32] = np.full((n, k), np.nan, dtype=np.float32)
        for i, q in enumerate(self._queries):
            self.keys[i, : len(q)] = q.keys
            self.distances[i, : len(q)] = q.distances
        #: Per query, its INSTANCE matches.
        self.instance_matches: list[list[str]] = [q.instance_matches for q in self._queries]
        types = sorted({t for q in self._queries for t in q.unit_matches})
        #: Per unit type, one ``UnitMatches`` per query (empty where none).
        self.unit_matches: dict[str, list[UnitMatches]] = {
            t: [
                q.unit_matches.get(
                    t, UnitMatches(np.array([], dtype=np.str_), np.array([], dtype=np.float32))
                )
                for q in self._queries
            ]
            for t in types
        }

    def __len__(self) -> int:
        return len(self._queries)

    def __getitem__(self, index: int) -> IsccMatches:
        return self._queries[index]

    def __iter__(self) -> Iterator[IsccMatches]:
        return iter(self._queries)

    def to_list(self) -> list[list[tuple[str, float]]]:
        """Per query, its (ISCC-ID, distance) pairs."""
        return [q.to_list() for q in self._queries]

    def mean_recall(
        self, expected: IsccBatchMatches | Sequence[Sequence[str]], count: int | None = None
    ) -> float:
        """Mean over queries of the share of the expected top-``count``
        ISCC-IDs found in this result's top-``count`` (all when ``count`` is
        None). Queries with nothing expected count as fully recalled."""
        truth = (
            [list(q.keys) for q in expected]
            if isinstance(expected, IsccBatchMatches)
            else [list(e) for e in expected]
        )
        if len(truth) != len(self._queries):
            raise ValueError(
                f"expected holds {len(truth)} queries, this result {len(self._queries)}"
            )
        if not truth:
            return 1.0
        total = 0.0
        for q, want in zip(self._queries, truth, strict=True):
            want = want[:count] if count is not None else want
            got = set(list(q.keys)[:count] if count is not None else list(q.keys))
            total += 1.0 if not want else len(got.intersection(want)) / len(want)
        return total / len(truth)

    def __repr__(self) -> str:
        return f"IsccBatchMatches({len(self)} queries, counts={self.counts.tolist()})"
