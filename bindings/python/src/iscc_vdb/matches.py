"""Search results: ``IsccMatches`` for one query, ``IsccBatchMatches`` for
several, with numpy views of keys and distances as the spec describes.

Results come from the library as columns (``ivdb_search_columns``): flat
arrays of ISCC-IDs, distances and per-unit-type distances for every row of
every query. They stay in the library's memory until the last result object
that uses them is gone, and every numpy array is made from them on first
read, so a search costs Python little more than the call itself.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ._ffi import ISCC_ID_LEN, C, Columns

_ID = f"S{ISCC_ID_LEN}"


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
        """A match from the engine's JSON form (one element of ``matches``)."""
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
class MatchedChunk:
    """One matched segment of a chunk match (with ``detail=True``)."""

    #: The query simprint (base64url).
    query: str
    #: The entry's matching simprint (base64url).
    match: str
    #: Their similarity (1 - Hamming distance / bits).
    score: float
    #: Entries matching the query simprint (its document frequency).
    freq: int
    #: Byte offset of the entry's segment, when the entry gave offsets.
    offset: int | None
    #: Byte size of the entry's segment, when the entry gave sizes.
    size: int | None
    #: Position of the query simprint in its feature set.
    query_chunk: int
    #: Position of the entry's chunk in its feature set.
    chunk: int


@dataclass(frozen=True)
class TypeChunkScore:
    """How an entry matched the query's simprints of one type."""

    #: IDF-weighted share of the type's query simprints matched.
    score: float
    #: Query simprints of the type the entry matched.
    matches: int
    #: Query simprints of the type.
    queried: int
    #: The matched segments (``detail=True``), else None.
    chunks: list[MatchedChunk] | None = None


@dataclass(frozen=True)
class ChunkMatch:
    """An entry sharing content segments with the query's granular features."""

    iscc_id: str
    #: IDF-weighted share of all query simprints matched (0-1).
    score: float
    #: Per simprint type (``CONTENT-TEXT-V0``, ...).
    types: dict[str, TypeChunkScore]

    @staticmethod
    def from_json(m: dict[str, Any]) -> ChunkMatch:
        """A chunk match from the engine's JSON form."""
        types = {}
        for name, t in m.get("types", {}).items():
            chunks = t.get("chunks")
            types[name] = TypeChunkScore(
                score=float(t["score"]),
                matches=int(t["matches"]),
                queried=int(t["queried"]),
                chunks=None if chunks is None else [MatchedChunk(**c) for c in chunks],
            )
        return ChunkMatch(iscc_id=m["iscc_id"], score=float(m["score"]), types=types)


@dataclass(frozen=True)
class UnitMatches:
    """The matches of one unit type within one query's results."""

    keys: npt.NDArray[np.str_]
    distances: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.keys)


class _Rows:
    """All rows of one search (one query or a batch), read from the
    library's columns on demand; the columns are released with this."""

    __slots__ = ("_address", "_c", "_cache", "batch", "queries", "rows")

    def __init__(self, address: int) -> None:
        self._address = address
        c = Columns.from_address(address)
        self._c = c
        self.batch: bool = c.batch
        self.queries: int = c.queries
        self.rows: int = c.rows
        self._cache: dict[str, Any] = {}

    def __del__(self, _free: Any = C.free_columns) -> None:
        # Every array read from the columns is a copy, so the library's
        # memory can go with the last object that reads from it (the
        # default argument keeps the function reachable at shutdown).
        _free(self._address)

    def _array(self, name: str, ctype: Any, dtype: Any, count: int) -> Any:
        if name not in self._cache:
            address = getattr(self._c, name)
            size = count * ctypes.sizeof(ctype)
            raw = ctypes.string_at(address, size) if count else b""
            self._cache[name] = np.frombuffer(raw, dtype=dtype)
        return self._cache[name]

    def offsets(self, q: int) -> tuple[int, int]:
        if self.queries == 1:
            return 0, self.rows
        offsets = self._array("offsets", ctypes.c_size_t, np.uintp, self.queries + 1)
        return int(offsets[q]), int(offsets[q + 1])

    def ids(self) -> npt.NDArray[np.str_]:
        if "ids" not in self._cache:
            raw = ctypes.string_at(self._c.iscc_ids, self.rows * ISCC_ID_LEN) if self.rows else b""
            self._cache["ids"] = np.frombuffer(raw, dtype=_ID).astype(np.str_)
        ids: npt.NDArray[np.str_] = self._cache["ids"]
        return ids

    def distances(self) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = self._array(
            "distances", ctypes.c_float, np.float32, self.rows
        )
        return out

    def scores(self) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = self._array("scores", ctypes.c_float, np.float32, self.rows)
        return out

    def instance(self) -> npt.NDArray[np.bool_]:
        out: npt.NDArray[np.bool_] = self._array("instance", ctypes.c_bool, np.bool_, self.rows)
        return out

    def unit_types(self) -> list[str]:
        if "names" not in self._cache:
            names = self._c.unit_type_names
            self._cache["names"] = [names[i].decode() for i in range(self._c.unit_types)]
        types: list[str] = self._cache["names"]
        return types

    def unit_columns(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        shape = (self.rows, self._c.unit_types)
        n = shape[0] * shape[1]
        d = self._array("unit_distances", ctypes.c_float, np.float32, n).reshape(shape)
        k = self._array("unit_kept", ctypes.c_bool, np.bool_, n).reshape(shape)
        return d, k

    def counters(self, q: int) -> tuple[int, int]:
        """(visited_members, computed_distances) of query ``q``."""
        visited = self._array("visited_members", ctypes.c_uint64, np.uint64, self.queries)
        computed = self._array("computed_distances", ctypes.c_uint64, np.uint64, self.queries)
        return int(visited[q]), int(computed[q])

    def instance_ids(self, q: int) -> list[str]:
        offsets = self._array("instance_offsets", ctypes.c_size_t, np.uintp, self.queries + 1)
        lo, hi = int(offsets[q]), int(offsets[q + 1])
        if lo == hi:
            return []
        raw = ctypes.string_at(self._c.instance_ids + lo * ISCC_ID_LEN, (hi - lo) * ISCC_ID_LEN)
        return [raw[i : i + ISCC_ID_LEN].decode() for i in range(0, len(raw), ISCC_ID_LEN)]


class IsccMatches:
    """The results of one query, best first. Arrays and :class:`IsccMatch`
    objects are made when first read."""

    __slots__ = (
        "_chunk_matches",
        "_counters_json",
        "_hi",
        "_instance_json",
        "_lo",
        "_matches",
        "_q",
        "_rows",
        "_unit_matches",
    )

    def __init__(self, rows: _Rows | list[IsccMatch], q: int = 0) -> None:
        self._matches: list[IsccMatch] | None = None
        self._unit_matches: dict[str, UnitMatches] | None = None
        self._instance_json: list[str] = []
        self._chunk_matches: list[ChunkMatch] = []
        self._counters_json = (0, 0)
        if isinstance(rows, list):
            self._rows: _Rows | None = None
            self._matches = rows
            self._lo, self._hi, self._q = 0, len(rows), 0
        else:
            self._rows = rows
            self._q = q
            self._lo, self._hi = rows.offsets(q)

    @staticmethod
    def from_json(value: dict[str, Any]) -> IsccMatches:
        """Results from the engine's JSON form (``ivdb_search_json``)."""
        out = IsccMatches([IsccMatch.from_json(m) for m in value.get("matches", [])])
        out._instance_json = list(value.get("instance_matches", []))
        out._counters_json = (
            int(value.get("visited_members", 0)),
            int(value.get("computed_distances", 0)),
        )
        out._chunk_matches = [ChunkMatch.from_json(c) for c in value.get("chunk_matches", [])]
        return out

    @property
    def chunk_matches(self) -> list[ChunkMatch]:
        """Entries sharing segments with the query's granular features, best
        first (empty for a query without features)."""
        return self._chunk_matches

    @property
    def keys(self) -> npt.NDArray[np.str_]:
        """ISCC-IDs of the matches (a numpy array of str)."""
        if self._rows is None:
            return np.array([m.iscc_id for m in self.matches], dtype=np.str_)
        return self._rows.ids()[self._lo : self._hi]

    @property
    def distances(self) -> npt.NDArray[np.float32]:
        """Combined distances (numpy float32)."""
        if self._rows is None:
            return np.array([m.distance for m in self.matches], dtype=np.float32)
        return self._rows.distances()[self._lo : self._hi]

    @property
    def instance_matches(self) -> list[str]:
        """ISCC-IDs whose INSTANCE unit matched exactly or by prefix."""
        if self._rows is None:
            return list(self._instance_json)
        return self._rows.instance_ids(self._q)

    @property
    def visited_members(self) -> int:
        """Members the search looked at over every unit type and shard: rows
        of exact scans plus graph nodes the HNSW walks took into their
        candidate sets (counted by the engine as it searched)."""
        if self._rows is None:
            return self._counters_json[0]
        return self._rows.counters(self._q)[0]

    @property
    def computed_distances(self) -> int:
        """Distances the search computed: rows of exact scans plus the NPHD
        computations of HNSW walks."""
        if self._rows is None:
            return self._counters_json[1]
        return self._rows.counters(self._q)[1]

    @property
    def matches(self) -> list[IsccMatch]:
        """The matches as :class:`IsccMatch` objects."""
        if self._matches is None:
            assert self._rows is not None
            r, lo, hi = self._rows, self._lo, self._hi
            types = r.unit_types()
            ud, uk = r.unit_columns()
            ids, scores, dists, inst = r.ids(), r.scores(), r.distances(), r.instance()
            self._matches = [
                IsccMatch(
                    iscc_id=str(ids[i]),
                    score=float(scores[i]),
                    distance=float(dists[i]),
                    units={
                        # The engine's unit score, 1 - distance in f32.
                        t: UnitScore(
                            float(np.float32(1.0) - ud[i, j]), float(ud[i, j]), bool(uk[i, j])
                        )
                        for j, t in enumerate(types)
                        if not np.isnan(ud[i, j])
                    },
                    instance=bool(inst[i]),
                )
                for i in range(lo, hi)
            ]
        return self._matches

    @property
    def unit_matches(self) -> dict[str, UnitMatches]:
        """Per unit type, the entries that matched by a unit of that type."""
        if self._unit_matches is None:
            by_type: dict[str, tuple[list[str], list[float]]] = {}
            for m in self.matches:
                for t, u in m.units.items():
                    keys, dists = by_type.setdefault(t, ([], []))
                    keys.append(m.iscc_id)
                    dists.append(u.distance)
            self._unit_matches = {
                t: UnitMatches(np.array(k, dtype=np.str_), np.array(d, dtype=np.float32))
                for t, (k, d) in sorted(by_type.items())
            }
        return self._unit_matches

    def __len__(self) -> int:
        return self._hi - self._lo

    def __getitem__(self, index: int) -> IsccMatch:
        return self.matches[index]

    def __iter__(self) -> Iterator[IsccMatch]:
        return iter(self.matches)

    def to_list(self) -> list[tuple[str, float]]:
        """The matches as (ISCC-ID, distance) pairs."""
        return [(str(k), float(d)) for k, d in zip(self.keys, self.distances, strict=True)]

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
        #: ISCC-IDs, shape (queries, k); padding is "".
        self.keys: npt.NDArray[np.str_] = np.full((n, k), "", dtype=f"<U{ISCC_ID_LEN}")
        #: Distances, shape (queries, k); padding is NaN.
        self.distances: npt.NDArray[np.float32] = np.full((n, k), np.nan, dtype=np.float32)
        for i, q in enumerate(self._queries):
            if len(q):
                self.keys[i, : len(q)] = q.keys
                self.distances[i, : len(q)] = q.distances

    @staticmethod
    def of_rows(rows: _Rows, width: int | None = None) -> IsccBatchMatches:
        """The batch of a columns result."""
        return IsccBatchMatches([IsccMatches(rows, q) for q in range(rows.queries)], width)

    @property
    def instance_matches(self) -> list[list[str]]:
        """Per query, its INSTANCE matches."""
        return [q.instance_matches for q in self._queries]

    @property
    def chunk_matches(self) -> list[list[ChunkMatch]]:
        """Per query, its chunk matches."""
        return [q.chunk_matches for q in self._queries]

    @property
    def visited_members(self) -> int:
        """Members looked at, summed over the queries."""
        return sum(q.visited_members for q in self._queries)

    @property
    def computed_distances(self) -> int:
        """Distances computed, summed over the queries."""
        return sum(q.computed_distances for q in self._queries)

    @property
    def unit_matches(self) -> dict[str, list[UnitMatches]]:
        """Per unit type, one ``UnitMatches`` per query (empty where none)."""
        types = sorted({t for q in self._queries for t in q.unit_matches})
        empty = UnitMatches(np.array([], dtype=np.str_), np.array([], dtype=np.float32))
        return {t: [q.unit_matches.get(t, empty) for q in self._queries] for t in types}

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
            [[str(k) for k in q.keys] for q in expected]
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
            keys = [str(k) for k in q.keys]
            got = set(keys[:count] if count is not None else keys)
            total += 1.0 if not want else len(got.intersection(want)) / len(want)
        return total / len(truth)

    def __repr__(self) -> str:
        return f"IsccBatchMatches({len(self)} queries, counts={self.counts.tolist()})"


def rows_of(address: int) -> _Rows:
    """Take ownership of columns the library returned."""
    return _Rows(address)
