"""Adapter: iscc-search's own server tests against `iscc-vdb serve --root`.

The test files run unchanged. Their fixtures come from iscc-search's own
conftest (loaded as the plugin ``iscc_search_conftest``); two are replaced:

* ``test_client`` is an ``httpx.Client`` on a fresh ``iscc-vdb serve
  --root`` (an empty directory of indexes, a free loopback port);
* ``iscc_search.server.app``, which ``test_server_auth.py`` wraps in
  FastAPI's ``TestClient``, becomes an ASGI app that starts such a server
  when the test client starts (with the API key the test configured in
  ``iscc_search.options.search_opts.api_secret``) and forwards every
  request to it over HTTP.

Needs the ``iscc-search`` package (its models and fixtures), ``httpx`` and
``pytest``; the server binary is ``ISCC_VDB_BIN`` (the runner script,
``run_iscc_search_tests.sh``, sets it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import typing

import httpx
import iscc_search.options
import iscc_search.server
import pytest

pytest_plugins = ["iscc_search_conftest"]

VDB = os.environ.get("ISCC_VDB_BIN", "")
if not os.access(VDB, os.X_OK):
    raise RuntimeError(f"ISCC_VDB_BIN={VDB!r}: set it to the iscc-vdb binary")


class Server:
    """A running ``iscc-vdb serve --root`` on a fresh directory."""

    def __init__(self, api_key: str | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="iscc-vdb-root-")
        args = [VDB, "serve", "--root", os.path.join(self.dir, "indexes"), "--port", "0"]
        env = dict(os.environ)
        env.pop("ISCC_VDB_API_KEY", None)
        if api_key is not None:
            args += ["--api-key", api_key]
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=env)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        found = re.search(r"http://(\S+)", line)
        if not found:
            self.stop()
            raise RuntimeError(f"iscc-vdb serve did not start: {line!r}")
        self.url = f"http://{found.group(1)}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def test_client() -> typing.Iterator[httpx.Client]:
    """An HTTP client on a fresh server (replaces the FastAPI TestClient)."""
    server = Server()
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            yield client
    finally:
        server.stop()


class ForwardingApp:
    """An ASGI app that forwards to a server started at lifespan startup."""

    def __init__(self) -> None:
        self.server: Server | None = None

    async def __call__(self, scope: dict, receive: typing.Any, send: typing.Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: typing.Any, send: typing.Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.server = Server(iscc_search.options.search_opts.api_secret)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.server is not None:
                    self.server.stop()
                    self.server = None
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict, receive: typing.Any, send: typing.Any) -> None:
        if self.server is None:
            # A client used without `with`: one server for this app from now on.
            self.server = Server(iscc_search.options.search_opts.api_secret)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        # The server checks Host against its own names: let httpx set it.
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.lower() != b"host"
        ]
        url = self.server.url + scope["path"]
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        async with httpx.AsyncClient(timeout=120) as client:
            answer = await client.request(scope["method"], url, headers=headers, content=body)
        await send(
            {
                "type": "http.response.start",
                "status": answer.status_code,
                "headers": [
                    (k.encode("latin-1"), v.encode("latin-1"))
                    for k, v in answer.headers.items()
                    if k.lower() not in ("content-encoding", "transfer-encoding")
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer.content})


iscc_search.server.app = ForwardingApp()  # type: ignore[assignment]
