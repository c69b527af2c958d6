"""What the low-level index classes share: search results
(:class:`Matches`, :class:`BatchMatches`) and packing numpy vectors into
the library's buffers."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._ffi import C, Hits, Rows, SearchOptions


class Matches:
    """The hits of one query, nearest first: ``keys`` and ``distances``
    (NPHD 0.0-1.0, or Hamming bits); ``visited_members`` and
    ``computed_distances`` say what the search cost, as in usearch (rows
    or graph nodes looked at, distances computed)."""

    __slots__ = ("computed_distances", "distances", "keys", "visited_members")

    def __init__(
        self,
        keys: NDArray[Any],
        distances: NDArray[np.float32],
        visited_members: int = 0,
        computed_distances: int = 0,
    ) -> None:
        self.keys = keys
        self.distances = distances
        self.visited_members = visited_members
        self.computed_distances = computed_distances

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> tuple[Any, float]:
        return self._key(self.keys[i]), float(self.distances[i])

    @staticmethod
    def _key(k: Any) -> Any:
        return k.tobytes() if isinstance(k, np.void) else int(k)

    def to_list(self) -> list[tuple[Any, float]]:
        """``[(key, distance), ...]``."""
        return [self[i] for i in range(len(self))]

    def __repr__(self) -> str:
        return f"Matches({len(self)})"


class BatchMatches:
    """The hits of several queries: ``keys`` and ``distances`` of shape
    (queries, count), query ``i``'s first ``counts[i]`` valid (the rest: key
    0, distance ``inf``); ``visited_members`` and ``computed_distances``
    per query (their sums, as usearch gives them, by ``sum()``)."""

    __slots__ = ("computed", "counts", "distances", "keys", "visited")

    def __init__(
        self,
        keys: NDArray[Any],
        distances: NDArray[np.float32],
        counts: NDArray[np.uint64],
        visited: NDArray[np.uint64] | None = None,
        computed: NDArray[np.uint64] | None = None,
    ) -> None:
        self.keys = keys
        self.distances = distances
        self.counts = counts
        zeros = np.zeros(len(counts), dtype=np.uint64)
        self.visited = zeros if visited is None else visited
        self.computed = zeros if computed is None else computed

    @property
    def visited_members(self) -> int:
        """Members looked at over every query (usearch's total)."""
        return int(self.visited.sum())

    @property
    def computed_distances(self) -> int:
        """Distances computed over every query (usearch's total)."""
        return int(self.computed.sum())

    @classmethod
    def packed(
        cls,
        keys: NDArray[Any],
        distances: NDArray[np.float32],
        counts: NDArray[np.uint64],
        key_dtype: np.dtype[Any],
        visited: NDArray[np.uint64] | None = None,
        computed: NDArray[np.uint64] | None = None,
    ) -> BatchMatches:
        """From the library's flat hits: query ``i``'s ``counts[i]`` hits
        follow the previous queries' in ``keys`` and ``distances``."""
        q = len(counts)
        width = int(counts.max()) if q else 0
        kout = np.zeros((q, width), dtype=key_dtype)
        dout = np.full((q, width), np.inf, dtype=np.float32)
        at = 0
        for i, c in enumerate(counts):
            c = int(c)
            kout[i, :c] = keys[at : at + c]
            dout[i, :c] = distances[at : at + c]
            at += c
        return cls(kout, dout, counts, visited, computed)

    def __len__(self) -> int:
        return len(self.counts)

    def __getitem__(self, i: int) -> Matches:
        n = int(self.counts[i])
        return Matches(
            self.keys[i, :n],
            self.distances[i, :n],
            int(self.visited[i]),
            int(self.computed[i]),
        )

    def to_list(self) -> list[list[tuple[Any, float]]]:
        """Per query ``[(key, distance), ...]``."""
        return [self[i].to_list() for i in range(len(self))]

    def __repr__(self) -> str:
        return f"BatchMatches({len(self)} queries)"


def address(ptr: ctypes.c_void_p) -> int:
    """The address of a result the library wrote (never NULL on success)."""
    if not ptr.value:
        raise RuntimeError("iscc_vdb: the library returned no result (a bug)")
    return int(ptr.value)


def uint8(v: Any, what: str) -> NDArray[np.uint8]:
    if isinstance(v, bytes | bytearray | memoryview):
        return np.frombuffer(bytes(v), dtype=np.uint8)
    a = np.asarray(v)
    if a.dtype != np.uint8:
        raise TypeError(f"{what}: vectors must be numpy uint8 (packed bits), not {a.dtype}")
    return a


def packed(vectors: Any, what: str) -> tuple[bool, bytes, NDArray[np.uintp]]:
    """(single, concatenated bytes, lengths) of one vector, a 2-D batch or a
    list of vectors."""
    if isinstance(vectors, bytes | bytearray | memoryview):
        one = uint8(vectors, what)
        return True, one.tobytes(), np.array([one.size], dtype=np.uintp)
    if isinstance(vectors, np.ndarray) and vectors.ndim in (1, 2):
        a = uint8(vectors, what)
        if a.ndim == 1:
            return True, a.tobytes(), np.array([a.size], dtype=np.uintp)
        rows, width = a.shape
        return False, np.ascontiguousarray(a).tobytes(), np.full(rows, width, dtype=np.uintp)
    if isinstance(vectors, Sequence):
        parts = [uint8(v, what).ravel() for v in vectors]
        lengths = np.array([p.size for p in parts], dtype=np.uintp)
        return False, b"".join(p.tobytes() for p in parts), lengths
    raise TypeError(f"{what}: expected a uint8 vector, a 2-D uint8 array or a list of vectors")


def search_options(count: int, radius: float, exact: bool, expansion: int, nprobe: int = 0) -> Any:
    """The library's ``ivdb_search_options`` (ValueError for a count below 1
    or a negative ``expansion`` or ``nprobe``)."""
    if count < 1:
        raise ValueError(f"`count` must be >= 1 (got {count})")
    for name, value in (("expansion", expansion), ("nprobe", nprobe)):
        if int(value) < 0:
            raise ValueError(f"`{name}` must be >= 0 (got {value})")
    return SearchOptions(
        count=count,
        exact=1 if exact else -1,
        expansion=int(expansion),
        max_distance=-1.0 if radius == float("inf") else float(radius),
        nprobe=int(nprobe),
    )


def take_hits(ptr: ctypes.c_void_p, key_dtype: np.dtype[Any], single: bool) -> Any:
    """Decode and free an ``ivdb_hits``: :class:`Matches` for one query,
    else :class:`BatchMatches`."""
    try:
        h = Hits.from_address(address(ptr))
        q, total = int(h.queries), int(h.total)
        counts = np.frombuffer(ctypes.string_at(h.counts, q * 8), dtype=np.uint64).copy()
        raw = ctypes.string_at(h.keys, total * h.key_bytes)
        keys = np.frombuffer(raw, dtype=key_dtype, count=total).copy()
        dists = np.frombuffer(ctypes.string_at(h.distances, total * 4), dtype=np.float32).copy()
        visited = np.frombuffer(ctypes.string_at(h.visited, q * 8), dtype=np.uint64).copy()
        computed = np.frombuffer(ctypes.string_at(h.computed, q * 8), dtype=np.uint64).copy()
    finally:
        C.hits_free(ptr)
    if single:
        return Matches(keys, dists, int(visited[0]), int(computed[0]))
    return BatchMatches.packed(keys, dists, counts, key_dtype, visited, computed)


def take_rows(
    ptr: ctypes.c_void_p, key_dtype: np.dtype[Any]
) -> list[tuple[Any, NDArray[np.uint8] | None]]:
    """Decode and free an ``ivdb_rows``: (key, vector or None) per row."""
    try:
        r = Rows.from_address(address(ptr))
        n = int(r.len)
        raw = ctypes.string_at(r.keys, n * r.key_bytes) if n else b""
        keys = np.frombuffer(raw, dtype=key_dtype, count=n)
        lengths = np.frombuffer(ctypes.string_at(r.lengths, n * 8), dtype=np.uint64)
        data = ctypes.string_at(r.bytes, r.bytes_len) if r.bytes_len else b""
    finally:
        C.rows_free(ptr)
    out: list[tuple[Any, NDArray[np.uint8] | None]] = []
    at = 0
    for i in range(n):
        size = int(lengths[i])
        vec = np.frombuffer(data, dtype=np.uint8, count=size, offset=at).copy()
        out.append((keys[i], vec if size else None))
        at += size
    return out


def u64_keys(keys: Any) -> tuple[bool, NDArray[np.uint64]]:
    """(single, keys as a contiguous ``uint64`` array) of one int or many
    (ValueError for anything that is not an unsigned 64-bit integer)."""
    single = isinstance(keys, int | np.integer)
    try:
        arr = np.asarray([keys] if single else keys)
        if arr.size and arr.dtype.kind == "i" and (arr < 0).any():
            raise ValueError("keys must be unsigned 64-bit integers")
        if arr.size and arr.dtype.kind not in "ui":
            raise ValueError(f"keys must be unsigned 64-bit integers, not {arr.dtype}")
        return single, np.ascontiguousarray(arr, dtype=np.uint64).reshape(-1)
    except OverflowError:
        raise ValueError("keys must be unsigned 64-bit integers") from None


def add_generated(handle: Any, fn: Any, vectors: Any) -> NDArray[np.uint64]:
    """Add `vectors` through `fn` (an `ivdb_*_add_generated`): the keys the
    index chose, in order."""
    _, data, lengths = packed(vectors, "vectors")
    keys = np.zeros(len(lengths), dtype=np.uint64)
    handle.call(
        fn,
        data,
        lengths.ctypes.data,
        len(lengths),
        keys.ctypes.data_as(ctypes.POINTER(ctypes.c_uint64)),
    )
    return keys
