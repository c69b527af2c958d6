"""The low-level sharded vector index: iscc-usearch's ``ShardedNphdIndex``,
``ShardedNphdIndex128``, ``ShardedIndex`` and ``ShardedIndex128`` with their
names and call shapes, over the library's ``ivdb_sharded`` handle.

``from iscc_vdb import ShardedNphdIndex`` replaces
``from iscc_usearch import ShardedNphdIndex`` for the common calls: numpy
``uint8`` vectors (one, a 2-D batch, or a list of variable length) and
``uint64`` keys (``bytes`` of 16 / numpy ``V16`` for the 128 variants) in;
:class:`Matches` / :class:`BatchMatches` with ``keys``, ``distances`` and
``counts`` out. Where we differ on purpose:

* a vector is never truncated: an NPHD vector of more than ``max_dim / 8``
  bytes is an ``InvalidIsccError`` (the reference cuts longer vectors
  silently); vectors of any byte length up to that are compared over their
  common prefix of bytes, as in the reference;
* ``add`` is first-write-wins across every shard, as ``add_once`` (the
  reference's ``add`` checks only its active shard and leaves duplicates);
* ``add(None, …)`` (64-bit keys) generates keys live in no shard, counting
  up from ``len()`` (the reference takes its active shard's size, which
  repeats keys of sealed shards);
* a removed key stays removed (no resurrection after upsert + remove), and
  ``len`` is exact without ``compact``;
* rotated shards are visible to reads at once; a writer holds a lock on the
  directory (a second writer process gets ``LockedError``), and one object
  may be used from many threads;
* one live vector per key (``multi=True`` is refused), and a bloom filter is
  always kept (``bloom_filter=False`` is accepted and ignored).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._ffi import DEFINES, C
from ._handle import Closable, Handle, check, encode_json
from ._vectors import (
    BatchMatches,
    Matches,
    add_generated,
    packed,
    search_options,
    take_hits,
    take_rows,
    u64_keys,
    uint8,
)

#: The reference's default shard size (1 GiB).
DEFAULT_SHARD_SIZE = 1024 * 1024 * 1024
#: The numpy dtype of 128-bit keys (16 raw bytes), as iscc-usearch names it.
UUID_DTYPE = np.dtype("V16")
_ROWS_PER_CALL = 4096


def _exists(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a sharded index (its manifest)."""
    return os.path.isfile(os.path.join(os.fspath(path), "manifest.json"))


class ShardedIndex(Closable):
    """A sharded index of fixed-length bit vectors (``ndim`` bits, Hamming
    distance in bits) under 64-bit keys, in the directory ``path``; see the
    module docs for what differs from iscc-usearch's ``ShardedIndex`` (which
    also takes float vectors: this one stores bits only)."""

    _wide = False

    def __init__(
        self,
        *,
        ndim: int | None = None,
        metric: Any = None,
        dtype: Any = None,
        connectivity: int | None = None,
        expansion_add: int | None = None,
        expansion_search: int | None = None,
        multi: bool = False,
        path: str | os.PathLike[str],
        shard_size: int = DEFAULT_SHARD_SIZE,
        bloom_filter: bool = True,
        read_only: bool = False,
        background_rotation: bool = False,
        max_pending_rotations: int = 2,
        partition: str | None = None,
    ) -> None:
        for name, value, allowed in (("metric", metric, "hamming"), ("dtype", dtype, "b1")):
            if value is not None and not str(value).lower().endswith(allowed):
                raise ValueError(f"{name} {value}: this index stores bit vectors ({allowed})")
        vectors = None
        if ndim is not None:
            vectors = {"kind": "hamming", "bits": int(ndim)}
        elif not read_only and not _exists(path):
            raise ValueError("ndim is required for a new index")
        self._open(
            path, vectors, connectivity, expansion_add, expansion_search, multi,
            shard_size, read_only, background_rotation, max_pending_rotations, partition,
        )  # fmt: skip

    def _open(
        self,
        path: str | os.PathLike[str],
        vectors: dict[str, Any] | None,
        connectivity: int | None,
        expansion_add: int | None,
        expansion_search: int | None,
        multi: bool,
        shard_size: int,
        read_only: bool,
        background_rotation: bool,
        max_pending_rotations: int,
        partition: str | None,
    ) -> None:
        if multi:
            raise ValueError("multi=True: this index keeps one live vector per key")
        options: dict[str, Any] = {
            "keys": "u128" if self._wide else "u64",
            "read_only": bool(read_only),
            "shard_size": int(shard_size),
            "background_rotation": bool(background_rotation),
            "max_pending_rotations": int(max_pending_rotations),
        }
        for name, value in (
            ("vectors", vectors),
            ("connectivity", connectivity),
            ("expansion_add", expansion_add),
            ("expansion_search", expansion_search),
            ("partition", partition),
        ):
            if value is not None:
                options[name] = value
        self._path = os.fspath(path)
        handle = ctypes.c_void_p()
        err = ctypes.c_void_p()
        check(
            C.sharded_open(
                os.fsencode(self._path),
                encode_json(options, "options"),
                ctypes.byref(handle),
                ctypes.byref(err),
            ),
            err,
        )
        self._h = Handle(handle, C.sharded_close)
        self._read_only = bool(read_only)

    # ---- keys -----------------------------------------------------------

    @property
    def _key_dtype(self) -> np.dtype[Any]:
        return UUID_DTYPE if self._wide else np.dtype(np.uint64)

    def _is_single_key(self, keys: Any) -> bool:
        if self._wide:
            return isinstance(keys, bytes | bytearray)
        return isinstance(keys, int | np.integer)

    def _keys(self, keys: Any) -> tuple[bool, NDArray[Any]]:
        """(single, keys as a contiguous array of the key dtype)."""
        single = self._is_single_key(keys)
        if self._wide:
            items = [keys] if single else keys
            if isinstance(items, np.ndarray) and items.dtype == UUID_DTYPE:
                return single, np.ascontiguousarray(items)
            if not isinstance(items, Iterable):
                items = [items]
            out = []
            for k in items:
                # bytes(n) of an int would be n zero bytes: refuse ints.
                if not isinstance(k, bytes | bytearray | memoryview | np.void):
                    kind = type(k).__name__
                    raise ValueError(
                        f"key {k!r}: a 128-bit key must be bytes of length 16, not {kind}"
                    )
                b = k.tobytes() if isinstance(k, np.void) else bytes(k)
                if len(b) != 16:
                    raise ValueError(
                        f"key {k!r}: a 128-bit key must be bytes of length 16 (exactly 16 bytes), "
                        f"not {len(b)}"
                    )
                out.append(b)
            return single, np.frombuffer(b"".join(out), dtype=UUID_DTYPE)
        return u64_keys(keys)

    # ---- writes ---------------------------------------------------------

    def _write(self, fn: Any, keys: Any, vectors: Any) -> tuple[bool, NDArray[Any], int]:
        if keys is None:
            raise ValueError("Auto-key generation not supported: this index requires explicit keys")
        single, karr = self._keys(keys)
        vsingle, data, lengths = packed(vectors, "vectors")
        if len(karr) != len(lengths):
            raise ValueError(f"{len(karr)} keys for {len(lengths)} vectors: the counts must match")
        done = ctypes.c_size_t()
        self._h.call(
            fn,
            karr.ctypes.data,
            data,
            lengths.ctypes.data,
            len(karr),
            ctypes.byref(done),
        )
        return single and vsingle, karr, int(done.value)

    def add(self, keys: Any, vectors: Any, **_ignored: Any) -> Any:
        """Add vectors under keys not live anywhere in the index (first
        write wins, across every shard); returns the keys given, as an array
        (one key: shape 1), as iscc-usearch does.

        ``keys=None`` (64-bit keys only) lets the index choose them:
        counting up from ``len()`` and skipping keys live in any shard
        (iscc-usearch takes the active shard's size, which repeats keys of
        sealed shards); returns the chosen keys."""
        if keys is None and self._key_dtype == np.dtype(np.uint64):
            return add_generated(self._h, C.sharded_add_generated, vectors)
        _, karr, _ = self._write(C.sharded_add, keys, vectors)
        return karr

    def add_once(self, keys: Any, vectors: Any, **_ignored: Any) -> Any:
        """:meth:`add` returning what was added: the array of added keys, or
        None for one key that was not added (judged just before the write:
        exact while this object is the only writer, as the reference
        requires)."""
        if keys is None:
            raise ValueError(
                "add_once: Auto-key generation not supported: this index requires explicit keys"
            )
        single, karr = self._keys(keys)
        before = self.contains(karr)
        _, first = np.unique(karr, return_index=True)
        fresh = np.zeros(len(karr), dtype=bool)
        fresh[first] = True
        fresh &= ~np.asarray(before, dtype=bool)
        self._write(C.sharded_add, karr, vectors if not single else [uint8(vectors, "vectors")])
        if single and not bool(fresh[0]):
            return None
        return karr[fresh]

    def upsert(self, keys: Any, vectors: Any, **_ignored: Any) -> Any:
        """Insert or replace (last write wins); returns the keys given."""
        single, karr, _ = self._write(C.sharded_upsert, keys, vectors)
        return keys if single else karr

    def remove(self, keys: Any, *, compact: bool = False) -> int:
        """Remove keys; returns how many were live."""
        _, karr = self._keys(keys)
        removed = ctypes.c_size_t()
        self._h.call(C.sharded_remove, karr.ctypes.data, len(karr), ctypes.byref(removed))
        if compact:
            self.compact()
        return int(removed.value)

    def __delitem__(self, keys: Any) -> None:
        self.remove(keys)

    # ---- reads ----------------------------------------------------------

    def _rows(self, ptr: ctypes.c_void_p) -> list[tuple[Any, NDArray[np.uint8] | None]]:
        return take_rows(ptr, self._key_dtype)

    def get(self, keys: Any, dtype: Any = None) -> Any:
        """The vector of a key (None when absent), or for several keys a list
        with None for each absent one."""
        single, karr = self._keys(keys)
        out = ctypes.c_void_p()
        self._h.call(C.sharded_get, karr.ctypes.data, len(karr), ctypes.byref(out))
        vecs = [v if v is None or dtype is None else v.astype(dtype) for _, v in self._rows(out)]
        return vecs[0] if single else vecs

    def count(self, keys: Any) -> Any:
        """Live vectors per key (0 or 1): an int for one key, else an array."""
        single, karr = self._keys(keys)
        counts = np.zeros(len(karr), dtype=np.uintp)
        self._h.call(
            C.sharded_count,
            karr.ctypes.data,
            len(karr),
            counts.ctypes.data_as(ctypes.POINTER(ctypes.c_size_t)),
        )
        return int(counts[0]) if single else counts.astype(np.uint64)

    def contains(self, keys: Any) -> Any:
        """Whether each key is live: a bool for one key, else an array."""
        c = self.count(keys)
        return bool(c) if isinstance(c, int) else c > 0

    def __contains__(self, keys: Any) -> Any:
        return self.contains(keys)

    def search(
        self,
        vectors: Any,
        count: int = 10,
        *,
        radius: float = float("inf"),
        threads: int = 0,
        exact: bool = False,
        expansion: int = 0,
        nprobe: int = 0,
        **_ignored: Any,
    ) -> Matches | BatchMatches:
        """The ``count`` nearest vectors of one query (:class:`Matches`) or
        of each of a batch (:class:`BatchMatches`); ``exact`` scans every
        row, else the index chooses by measured cost; ``radius`` keeps hits
        at most that far; ``nprobe``: lists each partitioned shard probes
        (0: the shard's calibrated default)."""
        single, data, lengths = packed(vectors, "vectors")
        opts = search_options(count, radius, exact, expansion, nprobe)
        out = ctypes.c_void_p()
        self._h.call(
            C.sharded_search,
            data,
            lengths.ctypes.data,
            len(lengths),
            ctypes.byref(opts),
            ctypes.byref(out),
        )
        hits: Matches | BatchMatches = take_hits(out, self._key_dtype, single)
        return hits

    # ---- size, figures, iteration ----------------------------------------

    @property
    def size(self) -> int:
        """Live vectors (exact)."""
        n = ctypes.c_size_t()
        self._h.call(C.sharded_len, ctypes.byref(n))
        return int(n.value)

    def __len__(self) -> int:
        return self.size

    def stats(self) -> dict[str, Any]:
        """The library's figures of the index (vectors, shards, sizes, dirty
        count, tombstones, bloom filter, parameters)."""
        stats: dict[str, Any] = self._h.json(C.sharded_stats_json)
        return stats

    @property
    def dirty(self) -> int:
        """Changes since the last save (0 when read-only)."""
        return int(self.stats().get("dirty", 0))

    @property
    def tombstone_count(self) -> int:
        """Keys removed or replaced whose old rows still sit in sealed
        shards (until ``compact`` or a merge drops them)."""
        return int(self.stats().get("tombstones", 0))

    @property
    def read_only(self) -> bool:
        """Opened read-only (writes raise ``ReadOnlyError``)."""
        return self._read_only

    @property
    def path(self) -> str:
        """The index directory."""
        return self._path

    @property
    def ndim(self) -> int:
        """Bits per vector (NPHD: the longest, ``max_dim``)."""
        return int(self.stats()["dimensions"])

    def _walk(self) -> Iterator[tuple[Any, NDArray[np.uint8]]]:
        it = ctypes.c_void_p()
        self._h.call(C.sharded_iter_new, ctypes.byref(it))
        try:
            while True:
                out = ctypes.c_void_p()
                err = ctypes.c_void_p()
                check(
                    C.sharded_iter_next(it, _ROWS_PER_CALL, ctypes.byref(out), ctypes.byref(err)),
                    err,
                )
                rows = self._rows(out)
                if not rows:
                    return
                for k, v in rows:
                    if v is not None:
                        yield k, v
        finally:
            C.sharded_iter_free(it)

    @property
    def keys(self) -> ShardedIndexedKeys:
        """Every live key, lazily: an int, or 16 bytes for 128-bit keys
        (iterate, index, slice, ``len``, ``np.asarray``)."""
        return ShardedIndexedKeys(self)

    @property
    def vectors(self) -> ShardedIndexedVectors:
        """Every live vector, lazily, in the order of :attr:`keys`."""
        return ShardedIndexedVectors(self)

    @property
    def shard_count(self) -> int:
        """Shards: sealed ones plus the active one, if any."""
        st = self.stats()
        return int(st["view_shards"]) + (1 if st["active_shard_vectors"] else 0)

    def __repr__(self) -> str:
        if self.closed:
            return f"{type(self).__name__}(closed, path={self._path!r})"
        return (
            f"{type(self).__name__}({len(self)} vectors, {self._dims_text()}, "
            f"shards={self.shard_count}, path={self._path!r})"
        )

    def _dims_text(self) -> str:
        return f"ndim={self.ndim}"

    # ---- maintenance ------------------------------------------------------

    def _task(self, task: str) -> int:
        n = ctypes.c_size_t()
        self._h.call(C.sharded_maintain, DEFINES[f"IVDB_SHARDED_{task}"], ctypes.byref(n))
        return int(n.value)

    def save(self, *_ignored: Any, **_kw: Any) -> None:
        """Write everything durably and commit it with one manifest swap."""
        self._task("SAVE")

    def compact(self) -> int:
        """Rewrite shards without removed and replaced rows; returns how
        many rows were dropped."""
        return self._task("COMPACT")

    def reset(self) -> int:
        """Remove every key, durably at once (one manifest commit, then the
        old shard files are deleted); returns how many keys were removed.

        Differs on purpose from iscc-usearch, whose ``reset`` empties only
        memory and keeps the files, so the rows come back on the next open.
        """
        return self._task("RESET")

    def rebuild_bloom(self, save: bool = True, log_progress: bool = False) -> int:
        """Rebuild the bloom filter from the live keys (and save it);
        returns how many keys it holds."""
        return self._task("REBUILD_BLOOM")

    def drain_rotations(self, timeout: float | None = None) -> None:
        """Wait for background rotations and merges (a failed one raises)."""
        self._task("DRAIN")


class ShardedIndex128(ShardedIndex):
    """:class:`ShardedIndex` under 128-bit keys (16 ``bytes`` / numpy ``V16``)."""

    _wide = True


class ShardedNphdIndex(ShardedIndex):
    """A sharded index of vectors of 1 to ``max_dim / 8`` bytes (ISCC unit
    bodies: 8, 16, 24 or 32; mixed lengths, NPHD over the common prefix of
    bytes) under 64-bit keys, in the directory ``path``. ``max_dim`` None:
    the index's own (256 for a new one). See the module docs for what
    differs from iscc-usearch."""

    def __init__(
        self,
        *,
        max_dim: int | None = None,
        path: str | os.PathLike[str],
        shard_size: int = DEFAULT_SHARD_SIZE,
        connectivity: int | None = None,
        expansion_add: int | None = None,
        expansion_search: int | None = None,
        read_only: bool = False,
        background_rotation: bool = False,
        max_pending_rotations: int = 2,
        multi: bool = False,
        bloom_filter: bool = True,
        key_kind: str | None = None,
        partition: str | None = None,
    ) -> None:
        # iscc-usearch's key_kind: accepted when it names this class's keys.
        if key_kind is not None and key_kind != ("uuid" if self._wide else "uint64"):
            raise ValueError(f"key_kind {key_kind!r} does not match {type(self).__name__}")
        vectors = None if max_dim is None else {"kind": "nphd", "max_dim": int(max_dim)}
        if max_dim is None and not read_only and not _exists(path):
            raise ValueError("max_dim is required for a new index")
        self._open(
            path, vectors, connectivity, expansion_add, expansion_search, multi,
            shard_size, read_only, background_rotation, max_pending_rotations, partition,
        )  # fmt: skip

    @property
    def max_dim(self) -> int:
        """Longest code in bits."""
        return int(self.stats()["dimensions"])

    @property
    def max_bytes(self) -> int:
        """Longest code in bytes."""
        return self.max_dim // 8

    @property
    def ndim(self) -> int:
        """``max_dim + 8``, as in iscc-usearch: the bits of a stored row,
        the length byte and the code."""
        return self.max_dim + 8

    @property
    def vectors(self) -> ShardedNphdIndexedVectors:
        """Every live code, unpadded, lazily, in the order of :attr:`keys`."""
        return ShardedNphdIndexedVectors(self)

    def _dims_text(self) -> str:
        return f"max_dim={self.max_dim}"


class ShardedNphdIndex128(ShardedNphdIndex):
    """:class:`ShardedNphdIndex` under 128-bit keys."""

    _wide = True


class _Lazy:
    """A lazy view over an index's live rows: iterate (one walk), ``len``,
    index and slice (a walk up to the item), ``np.asarray``."""

    _index: ShardedIndex

    def __init__(self, index: ShardedIndex) -> None:
        self._index = index

    def _item(self, key: Any, vector: NDArray[np.uint8]) -> Any:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Any]:
        return (self._item(k, v) for k, v in self._index._walk())

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int | slice) -> Any:
        n = len(self)
        if isinstance(i, slice):
            wanted = range(n)[i]
            if not wanted:
                return []
            items = list(islice(iter(self), max(wanted) + 1))
            return [items[j] for j in wanted]
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise IndexError(f"index out of range: {i} of {n} rows")
        return next(islice(iter(self), j, None))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(count={len(self)})"


class ShardedIndexedKeys(_Lazy):
    """The live keys of a sharded index, lazily; a slice or ``np.asarray``
    gives an array of the index's key dtype (``uint64`` or ``V16``)."""

    def _item(self, key: Any, vector: NDArray[np.uint8]) -> Any:
        return Matches._key(key)

    def _stack(self, keys: list[Any]) -> NDArray[Any]:
        return np.array(keys, dtype=self._index._key_dtype).reshape(-1)

    def __getitem__(self, i: int | slice) -> Any:
        got = super().__getitem__(i)
        return self._stack(got) if isinstance(i, slice) else got

    def __array__(self, dtype: Any = None, copy: Any = None) -> NDArray[Any]:
        out = self._stack([k for k, _ in self._index._walk()])
        return out if dtype is None else out.astype(dtype)


class ShardedIndexedVectors(_Lazy):
    """The live vectors of a sharded index, lazily; a slice or
    ``np.asarray`` gives a 2-D ``uint8`` array (``(0, ndim / 8)`` when
    empty), as iscc-usearch's."""

    def _item(self, key: Any, vector: NDArray[np.uint8]) -> Any:
        return vector

    def _width(self) -> int | None:
        """Bytes per vector, when every vector has the same length."""
        return self._index.ndim // 8

    def _stack(self, vecs: list[NDArray[np.uint8]]) -> NDArray[np.uint8]:
        if not vecs:
            width = self._width()
            return np.zeros((0,) if width is None else (0, width), dtype=np.uint8)
        if len({v.size for v in vecs}) > 1:
            raise ValueError("vectors of different lengths: no 2-D array")
        return np.array(vecs, dtype=np.uint8).reshape(len(vecs), -1)

    def __getitem__(self, i: int | slice) -> Any:
        got = super().__getitem__(i)
        return self._stack(got) if isinstance(i, slice) else got

    def __array__(self, dtype: Any = None, copy: Any = None) -> NDArray[Any]:
        out = self._stack(list(self))
        return out if dtype is None else out.astype(dtype)


class ShardedNphdIndexedVectors(ShardedIndexedVectors):
    """The live codes of a sharded NPHD index, unpadded, lazily: codes of
    many lengths, so a slice is a list and an empty index converts to shape
    ``(0,)`` (no width to tell), as iscc-usearch's."""

    def _width(self) -> int | None:
        return None

    def __getitem__(self, i: int | slice) -> Any:
        return _Lazy.__getitem__(self, i)
