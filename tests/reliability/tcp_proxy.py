"""A fault-injecting TCP proxy on loopback, between an HTTP/1.1 client and a server.

Unlike `support.FaultProxy` (an `httpx.MockTransport` handler, which fakes what httpx
would report), this one sits on a real socket: the client's own connection pool,
parser and timeouts meet the faults. It relays bytes both ways and reads the server's
answers just enough to find each response's header block and `content-length`; a
response drawn for a fault is cut at a random point of its body and then

* ``reset``: the client's socket is closed with an RST (SO_LINGER 0), as after a crash
  or from a middlebox;
* ``truncate``: the client's socket is closed cleanly, as by a server that died
  between two writes;
* ``stall``: nothing more is sent, until the client gives up and closes (bounded by
  ``max_stall``);
* ``drip`` (drawn only when asked for): the rest of the body is sent one byte every
  ``drip_interval`` seconds, so that no single read ever waits long.

The draws come from a seeded `random.Random`, so a run can be replayed.
"""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import anyio
import anyio.abc
import attrs
import httpx

FAULTS = ("reset", "truncate", "stall")
DRIP = "drip"

# What a relay sees when either peer goes away.
_GONE = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
_HEAD_LIMIT = 64 * 1024


@attrs.define
class Counts:
    """What the proxy did: responses seen, and the faults it inflicted mid-body."""

    responses: int = 0
    reset: int = 0
    truncate: int = 0
    stall: int = 0
    drip: int = 0

    @property
    def faults(self) -> int:
        return self.reset + self.truncate + self.stall + self.drip


class _Reader:
    """Buffered reads from the server's side of one connection."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self._stream = stream
        self._buf = bytearray()

    async def head(self) -> bytes:
        """The next response's status line and headers, up to the blank line."""
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            if len(self._buf) > _HEAD_LIMIT:
                raise anyio.BrokenResourceError("response head too large")
            self._buf += await self._stream.receive()
        head = bytes(self._buf[: end + 4])
        del self._buf[: end + 4]
        return head

    async def relay(self, count: int, out: anyio.abc.ByteStream) -> None:
        """Forward exactly `count` bytes to `out`."""
        while count > 0:
            if not self._buf:
                self._buf += await self._stream.receive()
            piece = bytes(self._buf[:count])
            del self._buf[: len(piece)]
            count -= len(piece)
            await out.send(piece)

    async def relay_rest(self, out: anyio.abc.ByteStream) -> None:
        if self._buf:
            await out.send(bytes(self._buf))
            self._buf.clear()
        async for chunk in self._stream:
            await out.send(chunk)


def _content_length(head: bytes) -> int | None:
    """The body length the head announces; None when it is chunked or runs to the close."""
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            length = int(value.strip())
    return length


class FaultyProxy:
    """Relays loopback TCP to `upstream`, cutting a share `rate` of responses mid-body.

    Args:
        upstream: The server's base URL (``http://host:port``).
        rate: Chance that a response with a body suffers a fault.
        seed: Seed of the draws (which response, which fault, where in the body).
        faults: The faults to draw from (see the module docstring).
        max_stall: Longest a stalled connection is held open, in seconds.
        drip_interval: Seconds between two bytes of a dripping body.
    """

    def __init__(
        self,
        upstream: str,
        *,
        rate: float,
        seed: int,
        faults: tuple[str, ...] = FAULTS,
        max_stall: float = 30.0,
        drip_interval: float = 0.05,
    ) -> None:
        url = httpx.URL(upstream)
        assert url.host, upstream
        assert url.port, upstream
        self._host, self._port = url.host, url.port
        self.rate = rate
        self.faults = faults
        self.max_stall = max_stall
        self.drip_interval = drip_interval
        self._rng = random.Random(seed)
        self.counts = Counts()
        self.enabled = True

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        """Listen on a free loopback port for the block; yield the proxy's base URL."""
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, self._relay, tg)
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                tg.cancel_scope.cancel()

    def _draw(self) -> str | None:
        if not self.enabled or self._rng.random() >= self.rate:
            return None
        return self._rng.choice(self.faults)

    async def _relay(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            try:
                upstream = await anyio.connect_tcp(self._host, self._port)
            except OSError:
                return  # the client sees its connection closed
            async with upstream, anyio.create_task_group() as tg:
                tg.start_soon(self._requests, client, upstream, tg.cancel_scope)
                with suppress(*_GONE):
                    await self._responses(_Reader(upstream), client)
                tg.cancel_scope.cancel()

    async def _requests(
        self,
        client: anyio.abc.SocketStream,
        upstream: anyio.abc.SocketStream,
        relay: anyio.CancelScope,
    ) -> None:
        with suppress(*_GONE):
            async for chunk in client:
                await upstream.send(chunk)
        relay.cancel()  # the client left (after a stall, that is the end of it)

    async def _responses(self, reader: _Reader, client: anyio.abc.SocketStream) -> None:
        while True:
            head = await reader.head()
            self.counts.responses += 1
            await client.send(head)
            length = _content_length(head)
            if length is None:
                await reader.relay_rest(client)
                return
            fault = self._draw() if length > 0 else None
            if fault is None:
                await reader.relay(length, client)
                continue
            cut = self._rng.randrange(length)
            await reader.relay(cut, client)
            setattr(self.counts, fault, getattr(self.counts, fault) + 1)
            if fault == DRIP:
                for _ in range(length - cut):
                    await anyio.sleep(self.drip_interval)
                    await reader.relay(1, client)
                continue
            if fault == "reset":
                raw = client.extra(anyio.abc.SocketAttribute.raw_socket)
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif fault == "stall":
                await anyio.sleep(self.max_stall)  # ended early by `_requests`
            return  # leaving closes both sockets
