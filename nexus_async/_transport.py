"""The transport under the client's own httpx client: one connection per small pool.

httpcore's connection pool re-scans every connection whenever a request starts or
ends, comparing idle connections with each other, and can hand one idle connection
to several waiting requests, which then go round again. With dozens of connections
and hundreds of requests in flight (the fan-out this SDK is for) that bookkeeping
costs more CPU than the requests themselves: 1,000 concurrent `jobs.get` took about
12x the time their latency allows. Here each connection lives in a pool of its own
and a request goes to the least busy pool, so httpcore never has more than one
connection to scan. The client's in-flight limit (`max_connections`) keeps at most
one request per pool, so requests never queue inside httpcore.

Pools are created on first use and share one SSL context (building one per pool
would load the CA bundle each time). Proxies from the environment still apply:
httpx routes proxied URLs to its own proxy transports before this one is asked.
Pass `http_client=` to use any other transport.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    # httpx imports httpcore only when a transport is built; so do we (import time).
    import httpcore

__all__ = ["SpreadTransport"]


class _Tracked(httpx.AsyncByteStream):
    """A response body that frees its pool's slot once closed."""

    def __init__(self, stream: httpx.AsyncByteStream, owner: SpreadTransport, pool: int) -> None:
        self._stream = stream
        self._owner = owner
        self._pool = pool
        self._open = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._open:
                self._open = False
                self._owner.busy[self._pool] -= 1


class SpreadTransport(httpx.AsyncBaseTransport):
    """`pools` httpx transports of one connection each; each request to the least busy."""

    def __init__(self, pools: int) -> None:
        self.pools: list[httpx.AsyncHTTPTransport | None] = [None] * pools
        self.busy = [0] * pools
        self._ssl: ssl.SSLContext | None = None

    def _pool(self, index: int) -> httpx.AsyncHTTPTransport:
        pool = self.pools[index]
        if pool is None:
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            pool = httpx.AsyncHTTPTransport(
                verify=self._ssl,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
            self.pools[index] = pool
        return pool

    def connections(self) -> list[httpcore.AsyncConnectionInterface]:
        """Every open-or-idle connection of every pool (for tests and diagnostics)."""
        return [c for pool in self.pools if pool is not None for c in pool._pool.connections]

    def queued(self) -> int:
        """Requests waiting for, or holding, a connection inside the pools."""
        return sum(len(pool._pool._requests) for pool in self.pools if pool is not None)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self.busy)), key=self.busy.__getitem__)
        pool = self._pool(index)
        self.busy[index] += 1
        try:
            response = await pool.handle_async_request(request)
        except BaseException:
            self.busy[index] -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Tracked(response.stream, self, index),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for pool in self.pools:
            if pool is not None:
                await pool.aclose()
