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

Pools are created on first use and share one SSL context per process (building one
per pool, or per client, would load the CA bundle each time). Proxies from the
environment still apply: httpx routes proxied URLs to its own proxy transports before
this one is asked. Pass `http_client=` to use any other transport.

The transport counts what it does itself (pools opened, requests in flight, requests
handled) rather than reading httpcore's pool internals; `stats()` reports it.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Callable

import attrs
import httpx

__all__ = ["SpreadTransport", "TransportStats"]


@attrs.frozen
class TransportStats:
    """What the SDK's own transport holds, as counted by it.

    Args:
        pools: Connection pools opened so far; each holds at most one connection.
        in_flight: Requests handed to a pool whose response is not closed yet.
        handled: Requests handed to a pool since the transport was made.
    """

    pools: int
    in_flight: int
    handled: int


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # httpx's default context (certifi's CA bundle); safe to share, costly to build.
    return httpx.create_ssl_context()


class _Tracked(httpx.AsyncByteStream):
    """A response body that frees its pool's slot once closed."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release = release
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
                self._release()


class SpreadTransport(httpx.AsyncBaseTransport):
    """`pools` httpx transports of one connection each; each request to the least busy."""

    def __init__(self, pools: int) -> None:
        self._pools: list[httpx.AsyncHTTPTransport | None] = [None] * pools
        self._busy = [0] * pools
        self._handled = 0

    def stats(self) -> TransportStats:
        """Pools opened, requests in flight and requests handled (for diagnostics and tests)."""
        return TransportStats(
            pools=sum(pool is not None for pool in self._pools),
            in_flight=sum(self._busy),
            handled=self._handled,
        )

    def _pool(self, index: int) -> httpx.AsyncHTTPTransport:
        pool = self._pools[index]
        if pool is None:
            pool = httpx.AsyncHTTPTransport(
                verify=_ssl_context(),
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
            self._pools[index] = pool
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._busy)), key=self._busy.__getitem__)
        pool = self._pool(index)
        self._busy[index] += 1
        self._handled += 1
        try:
            response = await pool.handle_async_request(request)
        except BaseException:
            self._release(index)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Tracked(response.stream, functools.partial(self._release, index)),
            extensions=response.extensions,
        )

    def _release(self, index: int) -> None:
        self._busy[index] -= 1

    async def aclose(self) -> None:
        for pool in self._pools:
            if pool is not None:
                await pool.aclose()
