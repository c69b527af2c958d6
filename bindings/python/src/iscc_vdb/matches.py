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


_NO_KEYS: npt.NDArray[np.str_] = np.array([], dtype=np.str_)
_NO_DISTANCES: npt.NDArray[np.float32] = np.array([], dtype=np.float32)


class IsccMatches:
    """The results of one query, best first.

    Built lazily from the engine's answer: ``keys``, ``distances``,
    ``unit_matches`` and the :class:`IsccMatch` objects are made when first
    read, so a caller who needs only some of them pays only for those.
    """

    __slots__ = ("_distances", "_keys", "_matches", "_raw", "_unit_matches", "instance_matches")

    def __init__(self, raw: Sequence[dict[str, Any]], instance_matches: Sequence[str]) -> None:
        self._raw = raw
        self._matches: list[IsccMatch] | None = None
        self._keys: npt.NDArray[np.str_] | None = None
        self._distances: npt.NDArray[np.float32] | None = None
        self._unit_matches: dict[str, UnitMatches] | None = None
        #: ISCC-IDs whose INSTANCE unit matched exactly or by prefix.
        self.instance_matches: list[str] = list(instance_matches)

    @staticmethod
    def from_json(value: dict[str, Any]) -> IsccMatches:
        return IsccMatches(value.get("matches", []), value.get("instance_matches", []))

    @property
    def keys(self) -> npt.NDArray[np.str_]:
        """ISCC-IDs of the matches (a numpy array of str)."""
        if self._keys is None:
            self._keys = (
                np.array([m["iscc_id"] for m in self._raw], dtype=np.str_)
                if self._raw
                else _NO_KEYS
            )
        return self._keys

    @property
    def distances(self) -> npt.NDArray[np.float32]:
        """Combined distances (numpy float32)."""
        if self._distances is None:
            self._distances = np.fromiter(
                (m["distance"] for m in self._raw), dtype=np.float32, count=len(self._raw)
            )
        return self._distances

    @property
    def matches(self) -> list[IsccMatch]:
        """The matches as :class:`IsccMatch` objects."""
        if self._matches is None:
            self._matches = [IsccMatch.from_json(m) for m in self._raw]
        return self._matches

    @property
    def unit_matches(self) -> dict[str, UnitMatches]:
        """Per unit type, the entries that matched by a unit of that type."""
        if self._unit_matches is None:
            by_type: dict[str, tuple[list[str], list[float]]] = {}
            for m in self._raw:
                for t, u in m.get("units", {}).items():
                    keys, dists = by_type.setdefault(t, ([], []))
                    keys.append(m["iscc_id"])
                    dists.append(u["distance"])
            self._unit_matches = {
                t: UnitMatches(np.array(k, dtype=np.str_), np.array(d, dtype=np.float32))
                for t, (k, d) in sorted(by_type.items())
            }
        return self._unit_matches

    def __len__(self) -> int:
        return len(self._raw)

    def __getitem__(self, index: int) -> IsccMatch:
        return self.matches[index]

    def __iter__(self) -> Iterator[IsccMatch]:
        return iter(self.matches)

    def to_list(self) -> list[tuple[str, float]]:
        """The matches as (ISCC-ID, distance) pairs."""
        return [(m["iscc_id"], float(m["distance"])) for m in self._raw]

    def _key_list(self) -> list[str]:
        return [m["iscc_id"] for m in self._raw]

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
        longest = max((len(k) for q in self._queries for k in q._key_list()), default=1)
        #: ISCC-IDs, shape (queries, k); padding is "".
        self.keys: npt.NDArray[np.str_] = np.full((n, k), "", dtype=f"<U{longest}")
        #: Distances, shape (queries, k); padding is NaN.
        self.distances: npt.NDArray[np.float32] = np.full((n, k), np.nan, dtype=np.float32)
        for i, q in enumerate(self._queries):
            if len(q):
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
