"""Errors of iscc_vdb: one base class carrying the C status, one subclass
per status. Bad input (a malformed ISCC, an entry without code and units, a
wrong realm, malformed JSON) is also a ``ValueError``, as the spec says."""

from __future__ import annotations

from ._ffi import STATUS


class IsccVdbError(Exception):
    """An error of the engine: ``status`` (the C status number) and ``code``
    (its name, e.g. ``"IVDB_LOCKED"``), and a message naming the problem."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.message = message


class InvalidArgumentError(IsccVdbError, ValueError):
    """A bad argument, option, entry or query."""


class InvalidIsccError(IsccVdbError, ValueError):
    """A malformed ISCC, or one of the wrong kind."""


class InvalidJsonError(IsccVdbError, ValueError):
    """Malformed JSON, or text that is not UTF-8."""


class WrongRealmError(IsccVdbError, ValueError):
    """An ISCC-ID of another realm than the index's."""


class NotFoundError(IsccVdbError, LookupError):
    """No such entry or index."""


class IoError(IsccVdbError, OSError):
    """A file could not be read or written."""


class DiskFullError(IoError):
    """The disk (or the store's map) is full."""


class LockedError(IsccVdbError):
    """Another process holds the index's writer lock."""


class IncompatibleFormatError(IsccVdbError):
    """Files of another on-disk format version."""


class ReadOnlyError(IsccVdbError, RuntimeError):
    """A write to an index opened read-only (a ``RuntimeError`` too, as
    iscc-usearch raises)."""


class ClosedError(IsccVdbError, RuntimeError):
    """A call on a closed index (a ``RuntimeError`` too, as iscc-usearch
    raises)."""


class CorruptError(IsccVdbError):
    """A damaged file that could not be rebuilt."""


class InternalError(IsccVdbError):
    """An unexpected failure inside the library (a bug; please report it)."""


_BY_CODE: dict[str, type[IsccVdbError]] = {
    "IVDB_INVALID_ARGUMENT": InvalidArgumentError,
    "IVDB_INVALID_ISCC": InvalidIsccError,
    "IVDB_INVALID_JSON": InvalidJsonError,
    "IVDB_NOT_FOUND": NotFoundError,
    "IVDB_IO": IoError,
    "IVDB_DISK_FULL": DiskFullError,
    "IVDB_LOCKED": LockedError,
    "IVDB_INCOMPATIBLE_FORMAT": IncompatibleFormatError,
    "IVDB_READ_ONLY": ReadOnlyError,
    "IVDB_PANIC": InternalError,
    "IVDB_INTERNAL": InternalError,
    "IVDB_WRONG_REALM": WrongRealmError,
    "IVDB_CLOSED": ClosedError,
    "IVDB_CORRUPT": CorruptError,
}

# Every status of the header has its class (a new status fails here, at
# import, until it has one).
_missing = set(STATUS) - set(_BY_CODE) - {"IVDB_OK"}
if _missing:
    raise ImportError(f"iscc_vdb: no error class for {sorted(_missing)}")


def error_of(status: int, code: str, message: str) -> IsccVdbError:
    """The exception of a failed call."""
    return _BY_CODE.get(code, IsccVdbError)(status, code, message)


def closed() -> ClosedError:
    """The exception of a call on a closed index."""
    return ClosedError(STATUS["IVDB_CLOSED"], "IVDB_CLOSED", "the index is closed")
