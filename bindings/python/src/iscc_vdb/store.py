"""``IsccStore``: the primary store of an index directory on its own.

The entries (the source of truth) and metadata, without the unit indexes:
the spec's ``IsccStore``. Writes go through the engine's own write path, so
a ``put`` or ``delete`` changes exactly what an :class:`~iscc_vdb.IsccIndex`
add or remove changes, journalled, and the next ``IsccIndex`` opened on the
directory brings its unit indexes in line with them.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from typing import Any

from ._ffi import C
from ._handle import Closable, Handle, check, encode_json
from .errors import NotFoundError

#: Entries read per library call while iterating.
_PAGE = 1000
_U64_MAX = (1 << 64) - 1


def iscc_id_key(iscc_id: str) -> int:
    """The 64-bit key of an ISCC-ID (what :class:`IsccStore` takes)."""
    if not isinstance(iscc_id, str):
        raise TypeError(f"iscc_id must be a str, not {type(iscc_id).__name__}")
    key = ctypes.c_uint64()
    err = ctypes.c_void_p()
    check(C.iscc_id_key(iscc_id.encode("utf-8"), ctypes.byref(key), ctypes.byref(err)), err)
    return int(key.value)


def _key(iscc_id: int) -> int:
    """A 64-bit ISCC-ID key (an int; bool is no key)."""
    if type(iscc_id) is not int:
        raise TypeError(
            f"iscc_id must be an int (the 64-bit ISCC-ID), not {type(iscc_id).__name__}"
        )
    if not 0 <= iscc_id <= _U64_MAX:
        raise ValueError(f"iscc_id {iscc_id} is not a 64-bit unsigned integer")
    return iscc_id


class IsccStore(Closable):
    """Durable LMDB storage of ISCC entries and metadata: the primary store
    (``primary.lmdb``) of the index directory ``path``.

    Entries are keyed by their ISCC-ID as a 64-bit integer and iterate in
    key order, which is time order. ``realm_id`` is the realm in which keys
    are read as ISCC-IDs (None: the stored realm, 0 for a new store; a
    store keeps its realm and refuses another). ``durable=False`` skips the
    fsync of each commit (for tests). A store holds the directory's writer
    lock: an ``IsccIndex`` or another ``IsccStore`` cannot write the
    directory meanwhile (:class:`~iscc_vdb.LockedError`). A store made in a
    new directory makes it an index directory with the default index
    parameters (``max_dim`` 256, …), which an ``IsccIndex`` opened there later
    keeps.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        realm_id: int | None = None,
        durable: bool = True,
        read_only: bool = False,
    ) -> None:
        """Open (or create, unless ``read_only``) the store of ``path``."""
        options: dict[str, Any] = {"durable": bool(durable), "read_only": bool(read_only)}
        if realm_id is not None:
            options["realm"] = realm_id
        handle = ctypes.c_void_p()
        err = ctypes.c_void_p()
        status = C.store_open(
            os.fsencode(os.fspath(path)),
            encode_json(options, "options"),
            ctypes.byref(handle),
            ctypes.byref(err),
        )
        check(status, err)
        self._h = Handle(handle, C.store_close)

    def put(self, iscc_id: int, entry: dict[str, Any]) -> None:
        """Store ``entry`` under ``iscc_id`` in one durable transaction,
        replacing what was there. The entry is validated as
        :meth:`IsccIndex.add` validates it (``iscc_code`` and/or ``units``;
        an ``iscc_id`` field must name the same key)."""
        key = _key(iscc_id)
        if not isinstance(entry, dict):
            raise TypeError(f"entry must be a dict, not {type(entry).__name__}")
        self._h.call(C.store_put_json, key, encode_json(entry, "entry"), None)

    def get(self, iscc_id: int) -> dict[str, Any] | None:
        """The stored entry of ``iscc_id``, or None."""
        key = _key(iscc_id)
        try:
            entry: dict[str, Any] = self._h.json(C.store_get_json, key)
            return entry
        except NotFoundError:
            return None

    def delete(self, iscc_id: int) -> bool:
        """Delete the entry of ``iscc_id``; False when there was none."""
        deleted = ctypes.c_bool()
        self._h.call(C.store_delete, _key(iscc_id), ctypes.byref(deleted))
        return bool(deleted.value)

    def iter_entries(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every (ISCC-ID key, entry) in key (time) order, read a page at a
        time (each page one consistent snapshot)."""
        start = 0
        while True:
            page: list[list[Any]] = self._h.json(C.store_entries_json, start, _PAGE)
            for key, entry in page:
                yield int(key), entry
            if len(page) < _PAGE or int(page[-1][0]) == _U64_MAX:
                return
            start = int(page[-1][0]) + 1

    def get_metadata(self, key: str) -> Any:
        """A metadata value (None when the key has none)."""
        try:
            return self._h.json(C.store_get_metadata_json, _text(key))
        except NotFoundError:
            return None

    def put_metadata(self, key: str, value: Any) -> None:
        """Set a metadata value (any JSON value) in one durable transaction.
        These keys live apart from the index's own and are the ones an
        index's metadata calls see."""
        self._h.call(C.store_put_metadata_json, _text(key), encode_json(value, "value"))

    def info(self) -> dict[str, Any]:
        """Figures: ``size``, ``realm``, ``journal_pending`` (changes the
        unit indexes will replay on the next index open), …"""
        info: dict[str, Any] = self._h.json(C.store_info_json)
        return info

    @property
    def realm_id(self) -> int | None:
        """The realm of the entries (None before the first)."""
        realm = self.info()["realm"]
        return None if realm is None else int(realm)

    def __len__(self) -> int:
        return int(self.info()["size"])

    def close(self) -> None:
        """Release the store and its lock after the calls in flight end
        (every write was committed when it returned). Closing twice is
        fine; later calls raise :class:`~iscc_vdb.ClosedError`."""
        self._h.close()

    def __repr__(self) -> str:
        return "IsccStore(closed)" if self.closed else f"IsccStore(size={len(self)})"


def _text(value: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"key must be a str, not {type(value).__name__}")
    return value.encode("utf-8")
