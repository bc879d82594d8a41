"""A minimal loopback HTTP/1.1 responder, so that a client benchmark measures the client.

The local server (Starlette on hypercorn, one core) answers a few hundred `jobs.get`
per second, below the 1,250 per second that 1,000 calls over 64 connections at
50 ms allow, so the fan-out benchmark's limit was out of reach whatever the client
did. This responder is an `asyncio.Protocol` that does next to nothing per request:
it finds the end of the request head, looks the path up among the bodies it was
given, and writes a prepared answer after the added latency (a timer, not a busy
wait). It speaks just enough HTTP/1.1 for keep-alive clients: `Content-Length`
bodies (read and ignored), pipelined requests answered in order, `Connection: close`
honoured. It is for benchmarks only, never for tests of the SDK's behaviour.

Run it in its own process with `python -m benchmarks._responder BODIES LATENCY`:
`BODIES` is a JSON file mapping paths to JSON bodies (answered 200; any other path is
a 404); it prints the port it listens on, then serves until terminated.
`responder()` does that for a benchmark, pinned like the local server.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = ["responder"]

_START_TIMEOUT = 30.0
_MAX_HEAD = 64 * 1024


class _Dates:
    """The `Date` header's value, formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def now(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._value = email.utils.formatdate(second, usegmt=True).encode()
        return self._value


def _answer(status: bytes, body: bytes, date: bytes, request_number: int) -> bytes:
    return b"".join(
        (
            b"HTTP/1.1 ",
            status,
            b"\r\ncontent-type: application/json\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\ndate: ",
            date,
            b"\r\nx-request-id: req_",
            str(request_number).encode(),
            b"\r\n\r\n",
            body,
        )
    )


class _Connection(asyncio.Protocol):
    def __init__(self, bodies: Mapping[bytes, bytes], latency: float, dates: _Dates) -> None:
        self._bodies = bodies
        self._latency = latency
        self._dates = dates
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._queue: deque[bytes] = deque()  # answers due, in request order (pipelining)
        self._close_after = False
        self._count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEAD and self._transport is not None:
                    self._transport.close()
                return
            head = self._buffer[:end]
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value.strip())
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            if len(self._buffer) < end + 4 + length:
                return  # the body is still coming
            self._buffer = self._buffer[end + 4 + length :]
            path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
            body = self._bodies.get(path.split(b"?", 1)[0])
            self._count += 1
            if body is None:
                status, body = b"404 Not Found", b'{"message":"not found","code":"NotFound"}'
            else:
                status = b"200 OK"
            answer = _answer(status, body, self._dates.now(), self._count)
            self._queue.append(answer)
            self._close_after = self._close_after or close
            self._loop.call_later(self._latency, self._write)

    def _write(self) -> None:
        # Timers due at the same moment may fire in any order: the oldest answer goes first.
        answer = self._queue.popleft()
        if self._transport is None:
            return
        self._transport.write(answer)
        if self._close_after and not self._queue:
            self._transport.close()


async def _serve(bodies: Mapping[bytes, bytes], latency: float) -> None:
    loop = asyncio.get_running_loop()
    dates = _Dates()
    server = await loop.create_server(
        lambda: _Connection(bodies, latency, dates), "127.0.0.1", 0, backlog=1024
    )
    print(server.sockets[0].getsockname()[1], flush=True)  # the parent waits for the port
    async with server:
        await server.serve_forever()


@contextmanager
def responder(
    bodies: Mapping[str, Any], *, latency: float, cpus: list[int] | None = None
) -> Iterator[str]:
    """Run the responder in a child process for the block; yields its base URL.

    Args:
        bodies: Path (e.g. `/projects/p/batch/jobs/j`) to the JSON value answered there.
        latency: Seconds added to every answer.
        cpus: Cores to pin the child to (the server's core), or None.
    """
    # Imported here: the child (`main`) stays free of httpx and the SDK.
    from ._common import stop_process

    with tempfile.TemporaryDirectory() as folder:
        bodies_file = os.path.join(folder, "bodies.json")
        with open(bodies_file, "w", encoding="utf-8") as out:
            json.dump(dict(bodies), out)
        command = [sys.executable, "-m", "benchmarks._responder", bodies_file, str(latency)]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            if cpus is not None:
                os.sched_setaffinity(proc.pid, cpus)
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], _START_TIMEOUT)
            port = proc.stdout.readline().strip() if ready else b""
            if not port.isdigit():
                raise RuntimeError(f"the responder did not start within {_START_TIMEOUT} s")
            yield f"http://127.0.0.1:{port.decode()}"
        finally:
            stop_process(proc)


def main(argv: list[str]) -> None:
    bodies_file, latency = argv[0], float(argv[1])
    with open(bodies_file, encoding="utf-8") as source:
        loaded: dict[str, Any] = json.load(source)
    bodies = {
        path.encode(): json.dumps(value, separators=(",", ":")).encode()
        for path, value in loaded.items()
    }
    asyncio.run(_serve(bodies, latency))


if __name__ == "__main__":
    main(sys.argv[1:])
