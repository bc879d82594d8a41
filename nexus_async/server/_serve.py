"""Serve an ASGI app with hypercorn on the running anyio backend.

Hypercorn (not uvicorn) because it runs on trio as well as asyncio; the backend is picked
with ``sniffio``. We bind the listening socket ourselves and hand hypercorn a duplicate of
its descriptor (``fd://N``): the port is known before serving starts (``port=0`` picks a
free one with no race), and connections that arrive early wait in the kernel's backlog.

Shutdown is always graceful: the serve task is shielded from outside cancellation and
stopped through hypercorn's ``shutdown_trigger``, with a hard deadline as a backstop, so
that cancelling the owner (a test's ``fail_after``, Ctrl-C) still closes every connection
instead of orphaning hypercorn's asyncio tasks.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import httpx
import sniffio
from hypercorn.config import Config
from starlette.types import ASGIApp

from ._egress import tls_context

__all__ = ["bind_socket", "serve_asgi"]

GRACEFUL_TIMEOUT = 1.0
_READY_TIMEOUT = 10.0


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: any free port)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@functools.cache
def _patch_trio_send() -> None:
    """Make hypercorn's trio server treat a send that races its own close as a closed peer.

    hypercorn (0.18) closes a connection with `send_eof()` outside the lock its
    sends take, so a response written at that moment (an error answer to a client
    that is going away, as when clients are cancelled mid-request) finds the socket
    busy and raises `trio.BusyResourceError`. Uncaught, that ends the whole server,
    and with `LocalNexus` entered in the caller's task it cancels the caller too.
    The peer is leaving either way: the send is dropped as for a broken connection.
    Applied once (cached), when a local server first runs on trio.
    """
    import trio
    from hypercorn.events import Closed, Event
    from hypercorn.trio.tcp_server import TCPServer

    original = TCPServer.protocol_send

    async def protocol_send(self: TCPServer, event: Event) -> None:
        try:
            await original(self, event)
        except trio.BusyResourceError:
            await self.protocol.handle(Closed())

    TCPServer.protocol_send = protocol_send  # type: ignore[method-assign]


class _Server:
    def __init__(self, app: ASGIApp, sock: socket.socket) -> None:
        self.config = Config()
        self.config.bind = [f"fd://{os.dup(sock.fileno())}"]
        self.config.graceful_timeout = GRACEFUL_TIMEOUT
        self.config.accesslog = None
        self.config.errorlog = logging.getLogger("nexus_async.server.http")
        self.app = app
        self.stopping = anyio.Event()
        self.scope: anyio.CancelScope | None = None

    async def run(self) -> None:
        with anyio.CancelScope(shield=True) as scope:
            self.scope = scope
            if sniffio.current_async_library() == "trio":
                from hypercorn.trio import serve as trio_serve

                _patch_trio_send()
                await trio_serve(self.app, self.config, shutdown_trigger=self.stopping.wait)  # type: ignore[arg-type]
            else:
                from hypercorn.asyncio import serve as asyncio_serve

                await asyncio_serve(self.app, self.config, shutdown_trigger=self.stopping.wait)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.stopping.set()
        if self.scope is not None:
            self.scope.deadline = anyio.current_time() + GRACEFUL_TIMEOUT + 5.0


async def _wait_ready(base_url: str) -> None:
    """Return once the server answers anything over HTTP."""
    async with httpx.AsyncClient(trust_env=False, verify=tls_context()) as client:
        with anyio.fail_after(_READY_TIMEOUT):
            while True:
                try:
                    await client.get(base_url + "/_nexus/health")
                    return
                except httpx.TransportError:
                    await anyio.sleep(0.01)


@asynccontextmanager
async def serve_asgi(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` for the duration of the block; yield its base URL.

    Args:
        app: any ASGI app (e.g. a test's webhook receiver).
        host: interface to listen on.
        port: TCP port; 0 picks a free one, known before serving starts.

    Yields:
        The base URL, ``http://host:port``, once the server answers.

    Example:
        ```python
        async with serve_asgi(receiver_app) as url:
            ...  # POST to url
        ```
    """
    sock = bind_socket(host, port)
    try:
        base_url = f"http://{_url_host(host)}:{sock.getsockname()[1]}"
        server = _Server(app, sock)
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.run, name=f"nexus_async.server.http {base_url}")
            try:
                await _wait_ready(base_url)
                yield base_url
            finally:
                server.stop()
    finally:
        sock.close()
