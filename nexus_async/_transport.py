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

It is an httpx transport (`httpx.AsyncClient(transport=...)`), and it talks to
httpcore's pools itself rather than through one `httpx.AsyncHTTPTransport` per pool:
that saves a second response object per request, and lets a pool that only ever
sees `http://` URLs go without a TLS context (httpx builds one with every transport,
loading the CA bundle, 20-50 ms of CPU). The verifying context (`_ssl_context`, httpx's
own, honouring `SSL_CERT_FILE`) is built once per process, when the first `https://`
request is sent; `https://` requests go to pools of their own that use it. httpcore's
exceptions come out as httpx's, as from httpx's transport.

Pools are created on first use. httpx ignores the environment's proxy variables for a
client given its own transport, so the SDK's client connects directly; pass
`http_client=` to use a proxy or any other transport.

The transport counts what it does itself (pools opened, requests in flight, requests
handled) rather than reading httpcore's pool internals; `stats()` reports it.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
import httpx

if TYPE_CHECKING:  # imported on first use, as httpx does: `import nexus_async` stays light
    import httpcore

__all__ = ["SpreadTransport", "TransportStats"]

# httpx's defaults (`httpx.Limits()`): idle connections are dropped after 5 s.
_KEEPALIVE_EXPIRY = 5.0
# (scheme, host, port, target) of a request, as httpcore takes them.
Target = tuple[bytes, bytes, "int | None", bytes]


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


@functools.cache
def _errors() -> tuple[tuple[type[Exception], type[httpx.HTTPError]], ...]:
    """httpcore's exceptions and the httpx ones they become, most specific first."""
    import httpcore

    return (
        (httpcore.ConnectTimeout, httpx.ConnectTimeout),
        (httpcore.ReadTimeout, httpx.ReadTimeout),
        (httpcore.WriteTimeout, httpx.WriteTimeout),
        (httpcore.PoolTimeout, httpx.PoolTimeout),
        (httpcore.TimeoutException, httpx.TimeoutException),
        (httpcore.ConnectError, httpx.ConnectError),
        (httpcore.ReadError, httpx.ReadError),
        (httpcore.WriteError, httpx.WriteError),
        (httpcore.NetworkError, httpx.NetworkError),
        (httpcore.ProxyError, httpx.ProxyError),
        (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
        (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
        (httpcore.LocalProtocolError, httpx.LocalProtocolError),
        (httpcore.ProtocolError, httpx.ProtocolError),
    )


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    """httpcore's exceptions raised as the httpx ones they stand for (as httpx's transport does)."""
    try:
        yield
    except Exception as exc:
        for error, becomes in _errors():
            if isinstance(exc, error):
                raise becomes(str(exc)) from exc
        raise


class _Body(httpx.AsyncByteStream):
    """A response body from httpcore: its errors as httpx's; closing frees the pool."""

    __slots__ = ("_index", "_open", "_stream", "_transport")

    def __init__(
        self, stream: AsyncIterable[bytes], transport: SpreadTransport, index: int
    ) -> None:
        self._stream = stream
        self._transport = transport
        self._index = index
        self._open = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        try:
            close = getattr(self._stream, "aclose", None)
            if close is not None:
                with _as_httpx_errors():
                    await close()
        finally:
            if self._open:
                self._open = False
                self._transport.release(self._index)


class SpreadTransport(httpx.AsyncBaseTransport):
    """`pools` httpcore pools of one connection each; each request to the least busy."""

    def __init__(self, pools: int) -> None:
        # Plain and TLS pools of one index share its busy count: the in-flight limit
        # keeps at most one request per index.
        self._plain: list[httpcore.AsyncConnectionPool | None] = [None] * pools
        self._tls: list[httpcore.AsyncConnectionPool | None] = [None] * pools
        self._busy = [0] * pools
        self._handled = 0

    def stats(self) -> TransportStats:
        """Pools opened, requests in flight and requests handled (for diagnostics and tests)."""
        opened = sum(pool is not None for pool in self._plain + self._tls)
        return TransportStats(pools=opened, in_flight=sum(self._busy), handled=self._handled)

    def _pool(self, index: int, tls: bool) -> httpcore.AsyncConnectionPool:
        pools = self._tls if tls else self._plain
        pool = pools[index]
        if pool is None:
            import httpcore

            pool = pools[index] = httpcore.AsyncConnectionPool(
                ssl_context=_ssl_context() if tls else None,
                max_connections=1,
                max_keepalive_connections=1,
                keepalive_expiry=_KEEPALIVE_EXPIRY,
            )
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        assert isinstance(request.stream, AsyncIterable)
        answer = await self.open(
            request.method,
            (url.raw_scheme, url.raw_host, url.port, url.raw_path),
            request.headers.raw,
            request.stream,
            request.extensions,
        )
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=answer.stream,  # type: ignore[arg-type]  # a `_Body`, an httpx stream
            extensions=answer.extensions,
        )

    async def open(
        self,
        method: str,
        target: Target,
        headers: Sequence[tuple[bytes, bytes]],
        content: bytes | AsyncIterable[bytes] | None,
        extensions: dict[str, Any],
    ) -> httpcore.Response:
        """Send a request to the least busy pool; the answer's body is not read yet.

        The HTTP layer sends API calls here directly, past httpx's request and response
        objects. The answer's `stream` raises httpx's exceptions, and closing it frees
        the pool.
        """
        import httpcore

        scheme, host, port, path = target
        request = httpcore.Request(
            method,
            httpcore.URL(scheme=scheme, host=host, port=port, target=path),
            headers=headers,
            content=content,
            extensions=extensions,
        )
        busy = self._busy
        index = busy.index(min(busy))
        # Another scheme goes to a plain pool, which refuses it (`UnsupportedProtocol`).
        pool = self._pool(index, scheme == b"https")
        busy[index] += 1
        self._handled += 1
        try:
            with _as_httpx_errors():
                answer = await pool.handle_async_request(request)
        except BaseException:
            self.release(index)
            raise
        assert isinstance(answer.stream, AsyncIterable)
        answer.stream = _Body(answer.stream, self, index)
        return answer

    def release(self, index: int) -> None:
        """A request of pool `index` is over (its response closed, or it failed)."""
        self._busy[index] -= 1

    async def aclose(self) -> None:
        for pool in self._plain + self._tls:
            if pool is not None:
                await pool.aclose()
