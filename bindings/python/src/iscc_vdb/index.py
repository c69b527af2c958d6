"""``IsccIndex``: the spec's high-level index over libiscc_vdb's C ABI.

Every call goes to the engine as JSON in the engine's one grammar (entries,
search requests and open options), so this module decides nothing the
engine decides: defaults, limits and validation live there.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from typing import Any

from ._ffi import DEFINES, C
from ._handle import Closable, Handle, check, encode_json, take_json
from .errors import IsccVdbError, NotFoundError
from .matches import IsccBatchMatches, IsccMatches, rows_of

_search_columns = C.search_columns

#: Matches per query when a search does not say (the library's default).
DEFAULT_COUNT: int = DEFINES["IVDB_DEFAULT_COUNT"]


def _text(value: str, what: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return value.encode("utf-8")


def _request(
    iscc_codes: str | Sequence[str] | None,
    units: Sequence[str] | Sequence[Sequence[str]] | None,
    count: int | None,
    exact: bool,
) -> bytes:
    """A search request in the engine's grammar. The common case, one plain
    ISCC-CODE, is written directly (no JSON encoder on the hot path)."""
    if (
        units is None
        and isinstance(iscc_codes, str)
        and iscc_codes.isascii()
        and iscc_codes.isprintable()
        and '"' not in iscc_codes
        and "\\" not in iscc_codes
        and (count is None or type(count) is int)
    ):
        tail = "" if count is None else f',"count":{count}'
        return (
            f'{{"iscc_codes":"{iscc_codes}","exact":{"true" if exact else "false"}{tail}}}'.encode()
        )
    return encode_json(_request_object(iscc_codes, units, count, exact), "query")


def _request_object(
    iscc_codes: str | Sequence[str] | None,
    units: Sequence[str] | Sequence[Sequence[str]] | None,
    count: int | None,
    exact: bool,
) -> dict[str, Any]:
    """A search request object in the engine's grammar (before encoding)."""
    request: dict[str, Any] = {"exact": bool(exact)}
    if units is not None:
        # A str is passed on as it is: the engine says what is wrong.
        request["units"] = (
            units
            if isinstance(units, str)
            else [u if isinstance(u, str) else list(u) for u in units]
        )
    if iscc_codes is not None:
        request["iscc_codes"] = iscc_codes if isinstance(iscc_codes, str) else list(iscc_codes)
    if count is not None:
        request["count"] = count
    return request


class IsccIndex(Closable):
    """An ISCC index: the entries (the LMDB store, the truth), an INSTANCE
    index and one similarity index per unit type.

    ``path=None`` makes an in-memory index, removed on :meth:`close`. The
    index is safe to share between threads: every library call releases the
    GIL, searches run in parallel, writes are serialised inside the engine.
    :meth:`close` waits for calls in flight; later calls raise
    :class:`~iscc_vdb.ClosedError`.
    """

    _h: Handle

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        realm_id: int | None = None,
        max_dim: int = 256,
        **kwargs: Any,
    ) -> None:
        """Open (or create) the index in directory ``path``.

        ``realm_id`` (0 or 1) fixes the realm of a new index (None: the
        realm of its first ISCC-ID, 0 when IDs are generated; an existing
        index keeps its own and refuses another). ``max_dim`` and the
        keyword arguments are the engine's open options (``unit_threshold``,
        ``connectivity``, ``expansion_add``, ``expansion_search``,
        ``exact_threshold`` ("auto" or a row count), ``shard_size``,
        ``partition`` ("auto", "always" or "off"), ``durable``, ``hub_id``; the
        parameters apply to a new index only). An unknown keyword raises
        ``TypeError``.
        """
        options: dict[str, Any] = {"max_dim": max_dim, **kwargs}
        if realm_id is not None:
            options["realm"] = realm_id
        read_only = bool(options.pop("read_only", False))
        self._path = path
        self._options = options
        self._h = Handle(self._open(read_only), C.close)

    def _open(self, read_only: bool) -> ctypes.c_void_p:
        """A handle on this index's path (or a new in-memory index)."""
        handle = ctypes.c_void_p()
        err = ctypes.c_void_p()
        path = self._path
        cpath = None if path is None else os.fsencode(os.fspath(path))
        if read_only:
            if cpath is None:
                raise ValueError("an in-memory index cannot be opened read-only")
            status = C.open_read_only(cpath, ctypes.byref(handle), ctypes.byref(err))
        else:
            options = encode_json(self._options, "options")
            status = C.open(cpath, options, ctypes.byref(handle), ctypes.byref(err))
        try:
            check(status, err)
        except IsccVdbError as e:
            # The engine's options grammar refuses unknown fields: in Python
            # that is an unexpected keyword argument.
            if e.code == "IVDB_INVALID_JSON" and "unknown field" in e.message:
                raise TypeError(f"IsccIndex(): unexpected keyword argument ({e.message})") from None
            raise
        return handle

    @staticmethod
    def restore(
        path: str | os.PathLike[str], view: bool = False, **kwargs: Any
    ) -> IsccIndex | None:
        """Open an existing index: writable (``view=False``) or read-only
        with its unit indexes memory-mapped (``view=True``). ``None`` when
        ``path`` holds no index."""
        remote = os.fspath(path).startswith("milvus://")
        if not remote and not os.path.isdir(os.path.join(os.fspath(path), "primary.lmdb")):
            return None
        try:
            return IsccIndex(path, read_only=view, **kwargs)
        except NotFoundError:
            return None

    # ---- the spec's API ----------------------------------------------------

    def add(self, entries: dict[str, Any] | Sequence[dict[str, Any]]) -> list[str]:
        """Add one entry (a dict) or several (a list of dicts); returns their
        ISCC-IDs in order. An entry has ``iscc_code`` and/or ``units``
        (units win when not empty), optionally ``iscc_id`` and any other
        fields; what :meth:`get` returns can be added as it is."""
        ids: list[str] = self._h.json(C.add_json, encode_json(entries, "entries"))
        return ids

    def get(
        self, iscc_ids: str | Sequence[str]
    ) -> dict[str, Any] | list[dict[str, Any] | None] | None:
        """The stored entry of an ISCC-ID (``None`` when absent), or for a
        list of ISCC-IDs a list with ``None`` for each missing one."""
        if isinstance(iscc_ids, str):
            return self._get_one(iscc_ids)
        return [self._get_one(i) for i in iscc_ids]

    def _get_one(self, iscc_id: str) -> dict[str, Any] | None:
        try:
            entry: dict[str, Any] = self._h.json(C.get_json, _text(iscc_id, "iscc_id"))
            return entry
        except NotFoundError:
            return None

    def search(
        self,
        iscc_codes: str | Sequence[str] | None = None,
        units: Sequence[str] | Sequence[Sequence[str]] | None = None,
        count: int = DEFAULT_COUNT,
        exact: bool = False,
        *,
        features: Sequence[dict[str, Any]] | None = None,
        simprints: dict[str, Any] | None = None,
        iscc_id: str | None = None,
        simprint_threshold: float | None = None,
        detail: bool = False,
    ) -> IsccMatches | IsccBatchMatches:
        """Find the entries most similar to the query.

        ``iscc_codes`` is one ISCC-CODE (an :class:`IsccMatches` comes back)
        or a list of them (an :class:`IsccBatchMatches`); ``units`` is one
        query's ISCC-UNITs or a list of such lists, and wins over
        ``iscc_codes``. ``count`` matches per query (default
        ``DEFAULT_COUNT``, the library's: 10); ``exact`` searches exhaustively.

        Granular features: ``features`` (the ISCC tools' feature sets) or
        ``simprints`` (iscc-search's ``{TYPE: [{simprint, offset, size}]}``)
        of one query, alone or beside one code or unit list; ``iscc_id``
        asks for "more like this" (that entry's units and features, the
        entry left out) and takes precedence over the other query fields.
        Entries sharing segments come back in
        :attr:`IsccMatches.chunk_matches`, a chunk matching at
        ``simprint_threshold`` (default 0.75) similarity or more; ``detail``
        lists the matched segments.
        """
        if (
            features is not None
            or simprints is not None
            or iscc_id is not None
            or simprint_threshold is not None
            or detail
        ):
            return self._search_granular(
                iscc_codes,
                units,
                count,
                exact,
                {
                    "features": features,
                    "simprints": simprints,
                    "iscc_id": iscc_id,
                    "simprint_threshold": simprint_threshold,
                    "detail": detail,
                },
            )
        request = _request(iscc_codes, units, count, exact)
        out = ctypes.c_void_p()
        err = ctypes.c_void_p()
        # The hot path, written out: one count in, the call (GIL released),
        # one count out.
        h = self._h
        handle = h.enter()
        try:
            status = _search_columns(
                handle, request, 0, False, ctypes.byref(out), ctypes.byref(err)
            )
        finally:
            h.leave()
        if status:
            check(status, err)
        rows = rows_of(out.value or 0)
        if rows.batch:
            return IsccBatchMatches.of_rows(rows, count)
        return IsccMatches(rows)

    def _search_granular(
        self,
        iscc_codes: str | Sequence[str] | None,
        units: Sequence[str] | Sequence[Sequence[str]] | None,
        count: int,
        exact: bool,
        extra: dict[str, Any],
    ) -> IsccMatches | IsccBatchMatches:
        """A search with granular fields, through the engine's JSON form
        (the columns result carries no chunk matches)."""
        request = _request_object(iscc_codes, units, count, exact)
        request.update({k: v for k, v in extra.items() if v is not None})
        found = self._h.json(C.search_json, encode_json(request, "query"), 0, False)
        if isinstance(found, list):
            return IsccBatchMatches([IsccMatches.from_json(m) for m in found], count)
        return IsccMatches.from_json(found)

    def remove(self, iscc_ids: str | Sequence[str]) -> int:
        """Remove entries; returns the number of index mappings removed
        (unknown ISCC-IDs remove nothing)."""
        ids = [iscc_ids] if isinstance(iscc_ids, str) else list(iscc_ids)
        array = (ctypes.c_char_p * len(ids))(*[_text(i, "iscc_ids[]") for i in ids])
        removed = ctypes.c_size_t()
        self._h.call(C.remove, array, len(ids), ctypes.byref(removed))
        return int(removed.value)

    def rebuild(self) -> None:
        """Recreate every derived index from the stored entries, then save."""
        self._h.call(C.rebuild)

    def save(self) -> None:
        """Persist the unit indexes (entries are durable on every add)."""
        self._h.call(C.save)

    def info(self) -> dict[str, Any]:
        """Figures of the index: size, unit types, per-type counts, realm, …"""
        info: dict[str, Any] = self._h.json(C.info_json)
        return info

    @property
    def size(self) -> int:
        """The number of entries."""
        return int(self.info()["size"])

    @property
    def unit_types(self) -> list[str]:
        """The unit types indexed (e.g. ``["META-NONE-V0", "CONTENT-TEXT-V0"]``)."""
        return list(self.info()["unit_types"])

    def load(self) -> None:
        """Open this index's directory again, writable, with its unit indexes
        read into RAM (after a :meth:`view`, or to drop what a read-only
        handle saw). An in-memory index has no files: ``ValueError``."""
        self._reopen(read_only=False)

    def view(self) -> None:
        """Open this index's directory again read-only, with its unit indexes
        memory-mapped (a writable handle is saved and closed first, so the
        view sees everything added). An in-memory index: ``ValueError``. If
        the directory cannot be opened again, the index is left closed."""
        self._reopen(read_only=True)

    def _reopen(self, read_only: bool) -> None:
        if self._path is None:
            raise ValueError("an in-memory index has no files to load or view")
        self._h.replace(lambda: self._open(read_only))

    def copy(self) -> IsccIndex:
        """A new in-memory index with the same parameters, realm and entries
        (removed when closed)."""
        out = ctypes.c_void_p()
        self._h.call(C.copy, ctypes.byref(out))
        twin = IsccIndex.__new__(IsccIndex)
        twin._path = None
        twin._options = dict(self._options)
        twin._h = Handle(out, C.close)
        return twin

    def compact(self) -> int:
        """Rewrite the unit indexes without the rows left by updates and
        removals, then save; returns the rows dropped."""
        dropped = ctypes.c_size_t()
        self._h.call(C.compact, ctypes.byref(dropped))
        return int(dropped.value)

    def close(self) -> None:
        """Save (when writable) and release the index, after the calls in
        flight end. Closing twice is fine; later calls raise
        :class:`~iscc_vdb.ClosedError`."""
        self._h.close()

    def __repr__(self) -> str:
        return "IsccIndex(closed)" if self.closed else f"IsccIndex(size={self.size})"


def drop_remote(uri: str) -> int:
    """Delete the Milvus index a ``milvus://HOST:PORT/NAME`` URI names (every
    collection it has); the number of collections dropped (0 when it had
    none). A local index is a directory: remove it with ``shutil``."""
    dropped = ctypes.c_size_t()
    err = ctypes.c_void_p()
    check(C.drop_remote(_text(uri, "uri"), ctypes.byref(dropped), ctypes.byref(err)), err)
    return int(dropped.value)


def explain(iscc: str) -> dict[str, Any]:
    """Decode any ISCC (code, unit, ISCC-ID) into its fields."""
    out = ctypes.c_void_p()
    err = ctypes.c_void_p()
    check(C.explain_json(_text(iscc, "iscc"), ctypes.byref(out), ctypes.byref(err)), err)
    value: dict[str, Any] = take_json(out)
    return value


def version() -> str:
    """The library version."""
    raw: bytes = C.version()
    return raw.decode("ascii")
