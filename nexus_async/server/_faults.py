"""Fault injection, added latency and the request log: the outermost ASGI layer.

``ControlMiddleware`` wraps the whole Starlette app, so it sees every request,
including ones no route matches. For each request that is not an admin call
(``/_nexus/...`` except uploads) it:

1. appends a ``RequestRecord`` to the request log (static files excepted, since the
   runner fetches items from there and would flood it),
2. takes the first matching ``Fault``, if any,
3. sleeps the server-wide ``latency`` (API and upload calls only) plus the fault's
   ``latency``, ending early if the client hangs up meanwhile (then nothing is answered),
4. applies the fault: answer with its ``status`` (``{"message": "injected fault",
   "code"}``, optional ``Retry-After``) or drop the connection; with ``after_handling``
   the real handler runs first and its answer is thrown away, which is how a test shows
   that a POST reached the server although the client saw an error.

Dropping really closes the TCP connection without any HTTP response. ASGI offers no way
to do that, so ``drop_connection`` finds the server-side socket of this connection
among the process's file descriptors by its (local, peer) address pair and shuts it down;
the client reads EOF before any status line (httpx: ``RemoteProtocolError``). Without a
socket (``httpx.ASGITransport``) it raises that same ``httpx.RemoteProtocolError`` from
the app, which the transport hands to the client.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._clock import new_id
from ._errors import Invalid
from ._responses import error_json

__all__ = [
    "ControlMiddleware",
    "Fault",
    "FaultBook",
    "RequestLog",
    "RequestRecord",
    "drop_connection",
    "is_admin_path",
]


def is_admin_path(path: str) -> bool:
    """Admin calls are never logged, delayed or faulted, so tests can always reach them."""
    return path.startswith("/_nexus/") and not path.startswith("/_nexus/uploads/")


@dataclass
class Fault:
    """One injected fault; see ``NexusCore.inject_fault`` for the meaning of each field."""

    method: str | None
    path: re.Pattern[str]
    status: int | None = 503
    times: int | None = 1
    retry_after: float | None = None
    latency: float | None = None
    drop: bool = False
    after_handling: bool = False
    id: str = field(default_factory=lambda: new_id("fault"))

    def __post_init__(self) -> None:
        if self.method is not None:
            self.method = self.method.upper()
            if self.method in ("*", "ANY"):
                self.method = None
        if self.status is not None and not 100 <= self.status <= 599:
            raise Invalid(f"status must be an HTTP status code (got {self.status})")
        if self.status is None and not self.drop and self.latency is None:
            raise Invalid("a fault needs a status, drop=True or a latency")
        if self.times is not None and self.times < 1:
            raise Invalid(f"times must be >= 1 or None for unlimited (got {self.times})")
        for name in ("retry_after", "latency"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise Invalid(f"{name} must be a finite number >= 0 (got {value})")

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and bool(self.path.search(path))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path.pattern,
            "status": self.status,
            "times": self.times,
            "retryAfter": self.retry_after,
            "latency": self.latency,
            "drop": self.drop,
            "afterHandling": self.after_handling,
        }


class FaultBook:
    """The pending faults, consumed first-added first."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def __len__(self) -> int:
        return len(self._faults)

    def add(self, fault: Fault) -> Fault:
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, counting one use of it."""
        for index, fault in enumerate(self._faults):
            if fault.matches(method, path):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        del self._faults[index]
                return fault
        return None


@dataclass
class RequestRecord:
    """One request as the server saw it.

    ``status`` is the status the client was sent: None while the request is in flight, when
    the connection was dropped, or when the client left before the answer. ``time`` is when
    it arrived and ``ended`` when the server was done with it (``time.time()``; ``ended`` is
    None while in flight). ``faulted`` tells that an injected fault matched it.
    """

    method: str
    path: str
    query: str
    time: float
    status: int | None = None
    faulted: bool = False
    ended: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "time": self.time,
            "ended": self.ended,
            "faulted": self.faulted,
        }


class RequestLog:
    """Requests in arrival order, bounded so a long-running server does not grow forever."""

    def __init__(self, limit: int = 100_000) -> None:
        self._records: list[RequestRecord] = []
        self._limit = limit

    def add(self, record: RequestRecord) -> None:
        self._records.append(record)
        if len(self._records) > self._limit:
            del self._records[: len(self._records) - self._limit]

    def snapshot(self) -> list[RequestRecord]:
        return list(self._records)

    def clear(self) -> None:
        self._records.clear()


def _fd_dir() -> str | None:
    for candidate in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(candidate):
            return candidate
    return None


def _shutdown_socket(local: tuple[str, int], peer: tuple[str, int]) -> bool:
    directory = _fd_dir()
    if directory is None:
        return False
    for name in os.listdir(directory):
        try:
            fd = int(name)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            candidate = socket.socket(fileno=os.dup(fd))
        except (ValueError, OSError):
            continue
        try:
            if (
                tuple(candidate.getsockname()[:2]) == local
                and tuple(candidate.getpeername()[:2]) == peer
            ):
                # shutdown acts on the connection, not on this duplicate descriptor.
                candidate.shutdown(socket.SHUT_RDWR)
                return True
        except OSError:
            continue
        finally:
            candidate.close()
    return False


async def drop_connection(scope: Scope, receive: Receive) -> None:
    """Close this request's TCP connection without sending any response."""
    server, client = scope.get("server"), scope.get("client")
    dropped = False
    if server and client and isinstance(server[1], int) and isinstance(client[1], int):
        dropped = _shutdown_socket((server[0], server[1]), (client[0], client[1]))
    if not dropped:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
    # Let the server notice the closed connection before this app returns, so it does
    # not try to send its own "app returned without a response" error.
    with anyio.move_on_after(2.0):
        while (await receive())["type"] != "http.disconnect":
            pass


async def _send_error(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]]
) -> None:
    """Answer with the spec's error body, from plain ASGI."""
    payload = json.dumps(error_json(message, status)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _retry_after_text(seconds: float) -> str:
    # Whole seconds are the standard form; fractions are a testing convenience.
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


class ControlMiddleware:
    """The outermost layer: request log, latency and faults (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        faults: FaultBook,
        requests: RequestLog,
        latency: Callable[[], float],
    ) -> None:
        self.app = app
        self.faults = faults
        self.requests = requests
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_admin_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        static = path.startswith("/static/") or path == "/static"
        record = RequestRecord(
            method=method,
            path=path,
            query=scope.get("query_string", b"").decode("latin-1"),
            time=time.time(),
        )
        if not static:
            self.requests.add(record)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = int(message["status"])
            await send(message)

        try:
            await self._handle(scope, receive, recording_send, record, static)
        finally:
            record.ended = time.time()

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, record: RequestRecord, static: bool
    ) -> None:
        delay = 0.0 if static else self.latency()
        fault = self.faults.take(record.method, record.path)
        if fault is not None:
            record.faulted = True
            delay += fault.latency or 0.0
        if delay > 0:
            receive, gone = await _wait(delay, receive)
            if gone:  # the client gave up while we were slow: nobody to answer
                return
        if fault is None or (fault.status is None and not fault.drop):
            await self.app(scope, receive, send)
            return
        if fault.after_handling:
            await self.app(scope, receive, _discard)
        if fault.drop:
            record.status = None
            await drop_connection(scope, receive)
            return
        assert fault.status is not None
        headers = []
        if fault.retry_after is not None:
            headers.append((b"retry-after", _retry_after_text(fault.retry_after).encode()))
        await _send_error(send, fault.status, "injected fault", headers)


async def _wait(seconds: float, receive: Receive) -> tuple[Receive, bool]:
    """Sleep ``seconds``, ending early if the client disconnects.

    Returns a ``receive`` that replays the body messages read meanwhile, and whether the
    client went away. Watching for the disconnect keeps a slow request from outliving its
    client (and from holding up server shutdown).
    """
    buffered: list[Message] = []
    gone = False
    with anyio.move_on_after(seconds):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone = True
                break
            buffered.append(message)

    async def replay() -> Message:
        return buffered.pop(0) if buffered else await receive()

    return replay, gone


async def _discard(message: Message) -> None:
    """A ``send`` that throws the real answer away (``after_handling`` faults)."""
