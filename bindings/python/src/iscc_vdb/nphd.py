"""``NphdIndex``: iscc-usearch's single in-memory NPHD index with its names and
call shapes, over the library's ``ivdb_unit`` handle.

Vectors of 1 to ``max_dim / 8`` bytes (mixed lengths, compared over the
common prefix of bytes; ISCC unit bodies are 8, 16, 24 or 32) under 64-bit
keys; ``save`` / ``load`` / ``view`` / ``restore`` / ``copy`` as in
iscc-usearch. Where we differ on purpose: a vector is never truncated
(longer than ``max_dim / 8`` bytes is an ``InvalidIsccError``), ``add``
skips keys already stored (one vector per key; ``upsert`` replaces), a
viewed index refuses writes with ``ReadOnlyError`` (a ``RuntimeError``), and
``add(None, …)`` generates keys that never collide with stored ones (from
``len()`` up, skipping keys in use; iscc-usearch's keys from the current size
repeat a stored key after a removal).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._ffi import DEFINES, Buffer, C
from ._handle import Closable, Handle, check, encode_json
from ._vectors import (
    BatchMatches,
    Matches,
    add_generated,
    address,
    packed,
    search_options,
    take_hits,
    take_rows,
    u64_keys,
)

_ROWS_PER_CALL = 4096

_Buffer = bytes | bytearray | memoryview
_BUFFERS = (bytes, bytearray, memoryview)


def _from_buffer(data: _Buffer) -> ctypes.c_void_p:
    """A new unit handle from a buffer made by ``ivdb_unit_to_buffer``."""
    raw = bytes(data)
    handle = ctypes.c_void_p()
    err = ctypes.c_void_p()
    check(C.unit_from_buffer(raw, len(raw), ctypes.byref(handle), ctypes.byref(err)), err)
    return handle


def _take_buffer(ptr: ctypes.c_void_p) -> bytes:
    """Copy and free an ``ivdb_buffer``."""
    try:
        b = Buffer.from_address(address(ptr))
        return ctypes.string_at(b.bytes, b.len) if b.len else b""
    finally:
        C.buffer_free(ptr)


def pad_vectors(vectors: Any, nbytes: int) -> NDArray[np.uint8]:
    """Rows as iscc-usearch lays them out (and as the library stores them):
    a length byte, then the vector, zero-padded to ``nbytes``; shape
    ``(n, nbytes + 1)``. A vector longer than ``nbytes`` is a ``ValueError``
    (iscc-usearch cuts it and keeps the longer length byte)."""
    if isinstance(vectors, np.ndarray) and vectors.ndim == 2:
        items = list(vectors)
    else:
        items = [np.asarray(v, dtype=np.uint8).reshape(-1) for v in vectors]
    out = np.zeros((len(items), nbytes + 1), dtype=np.uint8)
    for i, v in enumerate(items):
        if v.size > min(nbytes, 255):
            raise ValueError(
                f"vectors[{i}] has {v.size} bytes, more than {nbytes} (never truncated)"
            )
        out[i, 0] = v.size
        out[i, 1 : 1 + v.size] = v
    return out


def unpad_vectors(padded: NDArray[np.uint8]) -> list[NDArray[np.uint8]]:
    """The vectors of rows made by :func:`pad_vectors`: each row's first
    ``length byte`` bytes after it."""
    rows = np.asarray(padded, dtype=np.uint8)
    return [row[1 : 1 + int(row[0])].copy() for row in rows]


def _u64p(a: NDArray[np.uint64]) -> Any:
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_uint64))


def _rows(ptr: ctypes.c_void_p) -> list[tuple[int, NDArray[np.uint8] | None]]:
    return [(int(k), v) for k, v in take_rows(ptr, np.dtype(np.uint64))]


def _free(handle: ctypes.c_void_p, err: Any) -> int:
    """Release a unit handle (nothing is saved; it cannot fail)."""
    C.unit_free(handle)
    return 0


class NphdIndex(Closable):
    """One in-memory index of ISCC unit bodies under 64-bit keys (see the
    module docs for what differs from iscc-usearch's ``NphdIndex``)."""

    def __init__(
        self,
        max_dim: int = 256,
        connectivity: int | None = None,
        expansion_add: int | None = None,
        expansion_search: int | None = None,
        *,
        partition: str | None = None,
        **kwargs: Any,
    ) -> None:
        # iscc-usearch's words, so code that catches them keeps working.
        for bad, why in (
            ("ndim", "`ndim` is calculated from `max_dim`"),
            ("metric", "`metric` is set automatically"),
            ("dtype", "`dtype` is set automatically"),
        ):
            if bad in kwargs:
                raise TypeError(f"{why}; do not pass it")
        if kwargs.pop("multi", False):
            raise ValueError("multi=True: this index keeps one vector per key")
        options: dict[str, Any] = {"max_dim": int(max_dim)}
        for name, value in (
            ("connectivity", connectivity),
            ("expansion_add", expansion_add),
            ("expansion_search", expansion_search),
        ):
            if value is not None:
                options[name] = int(value)
        if partition is not None:
            # "auto" (default), "always" or "off"; the library names a bad one.
            options["partition"] = partition
        handle = ctypes.c_void_p()
        err = ctypes.c_void_p()
        check(
            C.unit_new(encode_json(options, "options"), ctypes.byref(handle), ctypes.byref(err)),
            err,
        )
        self._adopt(handle)

    def _adopt(self, handle: ctypes.c_void_p) -> None:
        self._h = Handle(handle, _free)

    @staticmethod
    def restore(path: str | os.PathLike[str] | _Buffer, view: bool = False) -> NphdIndex:
        """The index saved at ``path``: read into memory, or memory-mapped
        read-only with ``view``; or the index in a buffer made by
        :meth:`save` without a path (always read into memory: a Python
        buffer cannot be mapped). A missing or damaged file is an error,
        never None."""
        if isinstance(path, _BUFFERS):
            handle = _from_buffer(path)
        else:
            handle = ctypes.c_void_p()
            err = ctypes.c_void_p()
            check(
                C.unit_restore(
                    os.fsencode(os.fspath(path)),
                    bool(view),
                    ctypes.byref(handle),
                    ctypes.byref(err),
                ),
                err,
            )
        idx = NphdIndex.__new__(NphdIndex)
        idx._adopt(handle)
        return idx

    # ---- writes -----------------------------------------------------------

    def _write(self, fn: Any, keys: Any, vectors: Any, out: Any) -> tuple[bool, NDArray[Any]]:
        if keys is None:
            raise ValueError("Auto-key generation not supported: this index requires explicit keys")
        single, karr = u64_keys(keys)
        vsingle, data, lengths = packed(vectors, "vectors")
        if len(karr) != len(lengths):
            raise ValueError(f"{len(karr)} keys for {len(lengths)} vectors: the counts must match")
        args = [_u64p(karr), data, lengths.ctypes.data, len(karr)]
        if out is not None:
            args.append(ctypes.byref(out))
        self._h.call(fn, *args)
        return single and vsingle, karr

    def add(self, keys: Any, vectors: Any, **_ignored: Any) -> Any:
        """Add vectors under keys not stored yet (others are skipped);
        returns the keys given, as a ``uint64`` array (one key: shape 1).

        ``keys=None`` lets the index choose them: counting up from ``len()``
        and skipping keys in use (iscc-usearch takes the current size, which
        repeats a stored key after a removal); returns the chosen keys."""
        if keys is None:
            return add_generated(self._h, C.unit_add_generated, vectors)
        _, karr = self._write(C.unit_add, keys, vectors, ctypes.c_size_t())
        return karr

    def upsert(self, keys: Any, vectors: Any, **_ignored: Any) -> Any:
        """Insert or replace (last write wins); returns the keys given."""
        single, karr = self._write(C.unit_upsert, keys, vectors, None)
        return keys if single else karr

    def remove(self, keys: Any, **_ignored: Any) -> int:
        """Remove keys; returns how many were stored."""
        _, karr = u64_keys(keys)
        removed = ctypes.c_size_t()
        self._h.call(C.unit_remove, _u64p(karr), len(karr), ctypes.byref(removed))
        return int(removed.value)

    def reset(self) -> None:
        """Remove every vector (the parameters stay)."""
        self._h.call(C.unit_reset)

    # ---- reads ------------------------------------------------------------

    def get(self, keys: Any, dtype: Any = None) -> Any:
        """The vector of a key (None when absent), or a list for several."""
        single, karr = u64_keys(keys)
        out = ctypes.c_void_p()
        self._h.call(C.unit_get, _u64p(karr), len(karr), ctypes.byref(out))
        vecs = [v if v is None or dtype is None else v.astype(dtype) for _, v in _rows(out)]
        return vecs[0] if single else vecs

    def count(self, keys: Any) -> Any:
        """Vectors per key (0 or 1): an int for one key, else an array."""
        single, karr = u64_keys(keys)
        counts = np.zeros(len(karr), dtype=np.uintp)
        self._h.call(
            C.unit_count,
            _u64p(karr),
            len(karr),
            counts.ctypes.data_as(ctypes.POINTER(ctypes.c_size_t)),
        )
        return int(counts[0]) if single else counts.astype(np.uint64)

    def contains(self, keys: Any) -> Any:
        """Whether each key is stored: a bool for one key, else an array."""
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
        exact: bool = False,
        expansion: int = 0,
        nprobe: int = 0,
        **_ignored: Any,
    ) -> Matches | BatchMatches:
        """The ``count`` nearest vectors of one query (:class:`Matches`) or of
        each of a batch (:class:`BatchMatches`). ``nprobe``: lists a
        partitioned index probes for this call (0: its calibrated default;
        at least its ``stats()["lists"]``: the exact scan's answer)."""
        single, data, lengths = packed(vectors, "vectors")
        opts = search_options(count, radius, exact, expansion, nprobe)
        out = ctypes.c_void_p()
        self._h.call(
            C.unit_search,
            data,
            lengths.ctypes.data,
            len(lengths),
            ctypes.byref(opts),
            ctypes.byref(out),
        )
        hits: Matches | BatchMatches = take_hits(out, np.dtype(np.uint64), single)
        return hits

    @property
    def size(self) -> int:
        """Vectors stored."""
        n = ctypes.c_size_t()
        self._h.call(C.unit_len, ctypes.byref(n))
        return int(n.value)

    def __len__(self) -> int:
        return self.size

    def stats(self) -> dict[str, Any]:
        """The library's figures of the index (with ``lists`` / ``nprobe``
        of its partition and ``last_partition``, what its last automatic
        partition attempt measured and decided, or None)."""
        stats: dict[str, Any] = self._h.json(C.unit_stats_json)
        return stats

    def wait_partition(self) -> None:
        """Wait for a partition the index trains by itself (``partition``
        "auto" or "always") to be adopted; returns at once when none is
        due. Searches and writes never need to wait for one."""
        self._h.call(C.unit_wait_partition)

    @property
    def dirty(self) -> int:
        """Changes since the last save, load or view."""
        return int(self.stats()["dirty"])

    @property
    def max_dim(self) -> int:
        """Longest code in bits."""
        return int(self.stats()["options"]["max_dim"])

    @property
    def max_bytes(self) -> int:
        """Longest code in bytes."""
        return self.max_dim // 8

    @property
    def connectivity(self) -> int:
        """Graph connectivity (M)."""
        return int(self.stats()["options"]["connectivity"])

    @property
    def expansion_add(self) -> int:
        """Graph expansion while adding."""
        return int(self.stats()["options"]["expansion_add"])

    @property
    def expansion_search(self) -> int:
        """Graph expansion of a search (a call may pass its own)."""
        return int(self.stats()["options"]["expansion_search"])

    @property
    def ndim(self) -> int:
        """``max_dim + 8``, as in iscc-usearch: the bits of a stored row,
        the length byte and the code."""
        return self.max_dim + 8

    def _walk(self) -> Iterator[tuple[int, NDArray[np.uint8]]]:
        start = 0
        while True:
            out = ctypes.c_void_p()
            self._h.call(C.unit_rows, start, _ROWS_PER_CALL, ctypes.byref(out))
            rows = _rows(out)
            if not rows:
                return
            start += len(rows)
            for k, v in rows:
                if v is not None:
                    yield k, v

    @property
    def keys(self) -> list[int]:
        """Every key (a snapshot)."""
        return [k for k, _ in self._walk()]

    @property
    def vectors(self) -> list[NDArray[np.uint8]]:
        """Every vector, unpadded, in the order of :attr:`keys` (a snapshot)."""
        return [v for _, v in self._walk()]

    # ---- files ------------------------------------------------------------

    def _file(self, op: str, path: str | os.PathLike[str]) -> None:
        self._h.call(C.unit_file, DEFINES[f"IVDB_UNIT_{op}"], os.fsencode(os.fspath(path)))

    def save(self, path: str | os.PathLike[str] | None = None) -> bytes | None:
        """Write to ``path`` (and ``path.hnsw``), atomically and durably; or
        without a path, return the whole index as one ``bytes`` buffer (the
        two files' bytes, for :meth:`restore` / :meth:`load`)."""
        if path is None:
            out = ctypes.c_void_p()
            self._h.call(C.unit_to_buffer, ctypes.byref(out))
            return _take_buffer(out)
        self._file("SAVE", path)
        return None

    def load(self, path: str | os.PathLike[str] | _Buffer) -> None:
        """Replace the contents with the index saved at ``path`` (or in a
        buffer from :meth:`save`), in memory. When it cannot be read, the
        contents stay as they were."""
        if isinstance(path, _BUFFERS):
            handle = _from_buffer(path)
            self._h.replace(lambda: handle)
            return
        self._file("LOAD", path)

    def view(self, path: str | os.PathLike[str] | _Buffer) -> None:
        """Replace the contents with the index saved at ``path``,
        memory-mapped read-only; a buffer from :meth:`save` is read into
        memory instead (and stays writable: nothing is mapped)."""
        if isinstance(path, _BUFFERS):
            self.load(path)
            return
        self._file("VIEW", path)

    def copy(self) -> NphdIndex:
        """A deep, writable copy in memory."""
        handle = ctypes.c_void_p()
        self._h.call(C.unit_copy, ctypes.byref(handle))
        idx = NphdIndex.__new__(NphdIndex)
        idx._adopt(handle)
        return idx

    def __repr__(self) -> str:
        if self.closed:
            return "NphdIndex(closed)"
        return f"NphdIndex({len(self)} vectors, max_dim={self.max_dim})"
