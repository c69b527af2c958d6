"""``ScalableBloomFilter``: iscc-usearch's chained bloom filter with its
names and call shapes, over the library's ``ivdb_bloom`` handle (the same
filter every sharded index keeps).

Keys are ``int`` (0 to 2**64 - 1) or ``bytes`` of any length (16 bytes:
UUIDs, 128-bit keys, the same keys as a sharded index's).
Where we differ on purpose: ``growth_factor`` must be a whole number (links
grow by whole multiples), ``count`` counts the keys the filter took as new
(a repeat, or a key it already answers "maybe" for, is not counted twice),
and the file is the library's format (``IVDBBLOM``, checksummed), not the
reference's ``ISBF``.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from ._ffi import C
from ._handle import Closable, Handle, check, encode_json


def _free(handle: ctypes.c_void_p, err: Any) -> int:
    """Release a bloom handle (nothing is saved; it cannot fail)."""
    C.bloom_free(handle)
    return 0


def _packed(keys: Iterable[Any]) -> list[tuple[int, bytes, Any, int]]:
    """Runs of (key_bytes, packed keys, lengths, count), in order: ints as
    native ``uint64`` (key_bytes 8), bytes of any length with their lengths
    (key_bytes 0; 16 bytes are the same key as a 128-bit key)."""
    runs: list[tuple[int, bytes, Any, int]] = []
    lengths: list[list[int]] = []
    for k in keys:
        if isinstance(k, bytes | bytearray | memoryview | np.void):
            raw = k.tobytes() if isinstance(k, np.void) else bytes(k)
            width = 0
        else:
            value = int(k)
            if not 0 <= value < 1 << 64:
                raise ValueError(f"key {value} is outside 0 to 2**64 - 1")
            raw, width = np.uint64(value).tobytes(), 8
        if runs and runs[-1][0] == width:
            w, data, _, n = runs[-1]
            runs[-1] = (w, data + raw, None, n + 1)
            lengths[-1].append(len(raw))
        else:
            runs.append((width, raw, None, 1))
            lengths.append([len(raw)])
    return [
        (w, data, None if w else np.array(lens, dtype=np.uintp), n)
        for (w, data, _, n), lens in zip(runs, lengths, strict=True)
    ]


def _lengths(lens: Any) -> Any:
    """The lengths argument: NULL for fixed-width keys."""
    return None if lens is None else lens.ctypes.data


class ScalableBloomFilter(Closable):
    """A scalable bloom filter: "certainly not added" or "maybe added" per
    key, a false positive rate under ``fpr`` however many keys come (a new
    link, ``growth_factor`` times larger, when the last is full)."""

    def __init__(
        self,
        initial_capacity: int = 100_000,
        fpr: float = 0.01,
        growth_factor: float = 2.0,
    ) -> None:
        if float(growth_factor) != int(growth_factor):
            raise ValueError(f"growth_factor {growth_factor}: must be a whole number")
        options = {
            "initial_capacity": int(initial_capacity),
            "error_rate": float(fpr),
            "growth": int(growth_factor),
        }
        handle = ctypes.c_void_p()
        err = ctypes.c_void_p()
        check(
            C.bloom_new(encode_json(options, "options"), ctypes.byref(handle), ctypes.byref(err)),
            err,
        )
        self._h = Handle(handle, _free)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ScalableBloomFilter:
        """The filter saved at ``path`` (``CorruptError`` when the file is
        not one)."""
        handle = ctypes.c_void_p()
        err = ctypes.c_void_p()
        check(
            C.bloom_load(os.fsencode(os.fspath(path)), ctypes.byref(handle), ctypes.byref(err)), err
        )
        bloom = cls.__new__(cls)
        bloom._h = Handle(handle, _free)
        return bloom

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to ``path``, replaced atomically and durably."""
        self._h.call(C.bloom_save, os.fsencode(os.fspath(path)))

    def _stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._h.json(C.bloom_stats_json)
        return stats

    def add(self, key: Any) -> None:
        """Add one key."""
        self.add_batch([key])

    def add_batch(self, keys: Iterable[Any]) -> None:
        """Add keys (every key is checked before any is added)."""
        for width, data, lens, n in _packed(keys):
            self._h.call(C.bloom_add, data, width, _lengths(lens), n)

    def contains(self, key: Any) -> bool:
        """False: certainly never added; True: maybe added."""
        return self.contains_batch([key])[0]

    def contains_batch(self, keys: Iterable[Any]) -> list[bool]:
        """:meth:`contains` of each key."""
        out: list[bool] = []
        for width, data, lens, n in _packed(keys):
            found = (ctypes.c_bool * n)()
            self._h.call(C.bloom_contains, data, width, _lengths(lens), n, found)
            out.extend(bool(f) for f in found)
        return out

    def __contains__(self, key: Any) -> bool:
        return self.contains(key)

    def clear(self) -> None:
        """Forget every key (one empty link of the first link's size)."""
        self._h.call(C.bloom_clear)

    @property
    def count(self) -> int:
        """Keys added (distinct as far as the filter can tell)."""
        return int(self._stats()["count"])

    def __len__(self) -> int:
        return self.count

    @property
    def filter_count(self) -> int:
        """Links in the chain."""
        return int(self._stats()["filters"])

    @property
    def initial_capacity(self) -> int:
        """Keys of the first link."""
        return int(self._stats()["initial_capacity"])

    @property
    def fpr(self) -> float:
        """The compound false positive rate asked for."""
        return float(self._stats()["error_rate"])

    @property
    def growth_factor(self) -> float:
        """How much larger each link is than the one before."""
        return float(self._stats()["growth"])

    @property
    def current_capacity(self) -> int:
        """Keys the chain holds before it adds a link."""
        return int(self._stats()["capacity"])

    def __repr__(self) -> str:
        if self.closed:
            return "ScalableBloomFilter(closed)"
        s = self._stats()
        return (
            f"ScalableBloomFilter(count={s['count']}, filters={s['filters']}, "
            f"capacity={s['capacity']}, error_rate={s['error_rate']})"
        )
