"""An experiment for the fan-out comparison: one connection limit spread over several pools.

httpcore 1.0.9's pool re-scans its connections whenever a request starts or ends,
checking every idle connection against every other (`_assign_requests_to_connections`),
and hands one idle connection to several waiting requests, all but one of which then
go round again (encode/httpcore#1035 is the open fix). With 64 connections and 1,000
requests at once, that bookkeeping costs the client more CPU than the requests
themselves. Giving each of the 64 connections its own pool, and choosing the least busy
pool here, leaves httpcore nothing to scan and no connection to hand out twice. This
transport does that, as an `http_client=` a user could pass today; it measures what
such a change to the SDK's HTTP layer would buy. It is not part of the SDK.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

__all__ = ["ShardedTransport"]


class _Released(httpx.AsyncByteStream):
    """A response body that gives its pool's slot back when closed."""

    def __init__(self, stream: httpx.AsyncByteStream, owner: ShardedTransport, shard: int) -> None:
        self._stream = stream
        self._owner = owner
        self._shard = shard
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
                self._owner.busy[self._shard] -= 1


class ShardedTransport(httpx.AsyncBaseTransport):
    """`max_connections` spread evenly over `shards` httpx transports; least busy first."""

    def __init__(self, max_connections: int, shards: int) -> None:
        per_shard = max(1, max_connections // shards)
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        self.shards = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(shards)]
        self.busy = [0] * shards

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        shard = min(range(len(self.shards)), key=self.busy.__getitem__)
        self.busy[shard] += 1
        try:
            response = await self.shards[shard].handle_async_request(request)
        except BaseException:
            self.busy[shard] -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Released(response.stream, self, shard),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for shard in self.shards:
            await shard.aclose()
