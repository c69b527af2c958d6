"""What every handle of the library shares in Python: calls that count
themselves in and out (so ``close`` waits for calls in flight and later
calls raise :class:`~iscc_vdb.ClosedError`), the status check that turns a
failed call into its exception, and JSON in and out of the library."""

from __future__ import annotations

import ctypes
import json
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from ._ffi import STATUS, C, status_name, take_string
from .errors import closed, error_of

_OK = STATUS["IVDB_OK"]


def check(status: int, err: ctypes.c_void_p) -> None:
    """Raise the error of a failed call (and free its error object)."""
    if status == _OK:
        return
    message = ""
    if err.value:
        raw = C.error_message(err)
        message = raw.decode("utf-8", "replace") if raw else ""
        C.error_free(err)
    raise error_of(status, status_name(status), message)


def encode_json(value: Any, what: str) -> bytes:
    """``value`` as UTF-8 JSON for the library (TypeError when it has no
    JSON form)."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise TypeError(f"{what}: not representable as JSON: {e}") from None


def take_json(ptr: ctypes.c_void_p) -> Any:
    """Decode a JSON string the library handed over, then free it."""
    return json.loads(take_string(ptr))


class Handle:
    """A library handle shared by threads: ``call`` runs a function on it
    (the GIL is released inside), ``close`` waits for the calls in flight,
    then releases it with ``release(handle, err)``."""

    __slots__ = ("_calls", "_lock", "_release", "_waiting", "handle")

    def __init__(
        self, handle: ctypes.c_void_p, release: Callable[[ctypes.c_void_p, Any], int]
    ) -> None:
        self._lock = threading.Condition(threading.Lock())
        self._calls = 0
        # Threads waiting in close/replace for the calls in flight: a call
        # only notifies when someone waits (the common call pays no notify).
        self._waiting = 0
        self._release = release
        self.handle: ctypes.c_void_p | None = handle

    def enter(self) -> ctypes.c_void_p:
        """Count a call in; the live handle (ClosedError after close)."""
        with self._lock:
            handle = self.handle
            if handle is None:
                raise closed()
            self._calls += 1
            return handle

    def leave(self) -> None:
        """Count a call out."""
        with self._lock:
            self._calls -= 1
            if self._waiting and self._calls == 0:
                self._lock.notify_all()

    def _drain(self) -> None:
        """Wait (holding the lock) until no call is in flight."""
        self._waiting += 1
        try:
            while self._calls > 0:
                self._lock.wait()
        finally:
            self._waiting -= 1

    def call(self, fn: Any, *args: Any) -> None:
        """``fn(handle, *args, &err)``, raising its error."""
        handle = self.enter()
        try:
            err = ctypes.c_void_p()
            check(fn(handle, *args, ctypes.byref(err)), err)
        finally:
            self.leave()

    def json(self, fn: Any, *args: Any) -> Any:
        """``fn(handle, *args, &out, &err)`` with a JSON answer in ``out``."""
        out = ctypes.c_void_p()
        self.call(fn, *args, ctypes.byref(out))
        return take_json(out)

    def take(self) -> ctypes.c_void_p | None:
        """Wait for the calls in flight and take the handle out (None when
        already closed); later calls raise ClosedError."""
        with self._lock:
            handle, self.handle = self.handle, None
            if handle is None:
                return None
            self._drain()
            return handle

    def replace(self, reopen: Callable[[], ctypes.c_void_p]) -> None:
        """Release the handle after the calls in flight and put
        ``reopen()``'s in its place; calls made meanwhile wait for it. When
        releasing or reopening fails, the handle stays closed."""
        with self._lock:
            if self.handle is None:
                raise closed()
            self._drain()
            handle, self.handle = self.handle, None
            err = ctypes.c_void_p()
            check(self._release(handle, ctypes.byref(err)), err)
            self.handle = reopen()

    def close(self) -> None:
        """Release the handle after the calls in flight (twice is fine)."""
        handle = self.take()
        if handle is not None:
            err = ctypes.c_void_p()
            check(self._release(handle, ctypes.byref(err)), err)

    @property
    def closed(self) -> bool:
        return self.handle is None


_Self = TypeVar("_Self", bound="Closable")


class Closable:
    """The closing behaviour every handle owner shares: ``close`` (after
    the calls in flight; twice is fine), ``closed``, the context-manager
    protocol, and a close when a forgotten object is collected."""

    _h: Handle

    def close(self) -> None:
        """Release the handle after the calls in flight end (twice is
        fine); later calls raise :class:`~iscc_vdb.ClosedError`."""
        self._h.close()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._h.closed

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # A forgotten handle is closed when collected; errors cannot be
        # raised from here.
        try:
            if getattr(self, "_h", None) is not None:
                self.close()
        except Exception:
            pass
