"""Receivers on several replicas (issue #15): a shared dedupe store, a real redis-server.

The big test runs three `DeliveryReceiver` replicas behind a round-robin proxy of
the test's own on loopback, the local server delivering a 500-item job through it;
the proxy replaces 20% of first answers with a 500 (after the replica handled the
delivery) and one replica is stopped mid-run. RedisDedupe uses redis-py's asyncio
client, so its cases run on asyncio; MemoryDedupe (three replicas in one process
sharing it) runs the same test on both backends.
"""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexus_async import AsyncClient, Delivery, DeliveryReceiver
from nexus_async.receiver import Claim, DedupeStore, MemoryDedupe, RedisDedupe
from nexus_async.server import LocalNexus, serve_asgi

from .conftest import FAST_RETRY
from .live import png_data_url
from .redis_server import redis_server

SECRET = base64.b64encode(bytes(range(40, 72))).decode()
ITEMS = 500
REPLICAS = 3
STOP_AFTER = 150  # deliveries handled before one replica is stopped


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


def _prefix() -> str:
    return f"test:{uuid.uuid4().hex}:"


# ----------------------------------------------------------------- the store's contract


async def _check_store_contract(store: DedupeStore, lease: float) -> None:
    assert await store.claim("d1", "a", lease) is Claim.NEW
    assert await store.claim("d1", "b", lease) is Claim.HELD
    await store.release("d1", "b")  # not b's claim: nothing happens
    assert await store.claim("d1", "b", lease) is Claim.HELD
    await store.release("d1", "a")
    assert await store.claim("d1", "b", lease) is Claim.NEW  # released: taken again
    await store.done("d1", 30.0)
    assert await store.claim("d1", "c", lease) is Claim.DONE


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_redis_store_contract_and_lapsing_lease(redis_client: Redis) -> None:
    store = RedisDedupe(redis_client, prefix=_prefix())
    await _check_store_contract(store, lease=5.0)
    # A replica that dies holding a claim: its lease lapses on Redis's own clock, so
    # waiting out the lease is the condition itself.
    assert await store.claim("dead", "a", 0.2) is Claim.NEW
    assert await store.claim("dead", "b", 0.2) is Claim.HELD
    await anyio.sleep(0.3)
    assert await store.claim("dead", "b", 0.2) is Claim.NEW
    await store.done("short", 0.2)
    assert await store.claim("short", "x", 5.0) is Claim.DONE
    await anyio.sleep(0.3)
    assert await store.claim("short", "x", 5.0) is Claim.NEW


async def test_memory_store_contract_and_expiry() -> None:
    now = [0.0]
    store = MemoryDedupe(clock=lambda: now[0])
    await _check_store_contract(store, lease=5.0)
    assert await store.claim("dead", "a", 2.0) is Claim.NEW
    now[0] += 1.9
    assert await store.claim("dead", "b", 2.0) is Claim.HELD
    now[0] += 0.2
    assert await store.claim("dead", "b", 2.0) is Claim.NEW
    await store.done("old", 10.0)
    now[0] += 10.1
    assert await store.claim("old", "x", 2.0) is Claim.NEW


# ----------------------------------------------------------------- three replicas


class _Proxy:
    """Round-robin over the replicas; 20% of first answers replaced by a 500."""

    def __init__(self, replicas: list[str]) -> None:
        self.replicas = replicas
        self._next = 0
        self._seen: set[str] = set()
        self._rng = random.Random(15)
        self._client = httpx.AsyncClient(timeout=30.0)
        self.lost_answers = 0
        self.refused = 0

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
        headers["content-type"] = "application/json"
        first = headers["webhook-id"] not in self._seen
        self._seen.add(headers["webhook-id"])
        target = self.replicas[self._next % len(self.replicas)]
        self._next += 1
        try:
            answer = await self._client.post(f"{target}/hook", content=body, headers=headers)
        except httpx.TransportError:
            self.refused += 1  # the stopped replica
            return Response(b'{"message":"bad gateway"}', status_code=502)
        if first and self._rng.random() < 0.2:
            self.lost_answers += 1
            return Response(b'{"message":"lost"}', status_code=500)
        return Response(answer.content, status_code=answer.status_code)

    async def aclose(self) -> None:
        await self._client.aclose()


async def _three_replicas(nexus: LocalNexus, store: DedupeStore) -> None:
    handled: list[str] = []
    stop_one = anyio.Event()

    async def on_delivery(delivery: Delivery) -> None:
        await anyio.sleep(0.002)  # some work; a stopped replica's is cut off here
        handled.append(delivery.delivery_id)
        if len(handled) >= STOP_AFTER:
            stop_one.set()

    async def replica(index: int, urls: list[str], ready: anyio.Event, stop: anyio.Event) -> None:
        receiver = DeliveryReceiver(SECRET, on_delivery, dedupe=store, lease=2.0, drain_timeout=0.5)
        async with serve_asgi(receiver.app("/hook")) as url:
            urls[index] = url
            ready.set()
            await stop.wait()

    urls = [""] * REPLICAS
    never = anyio.Event()
    proxy = _Proxy(urls)
    app = Starlette(routes=[Route("/hook", proxy.endpoint, methods=["POST"])])
    with anyio.fail_after(180):
        async with anyio.create_task_group() as tg:
            for index in range(REPLICAS):
                ready = anyio.Event()
                tg.start_soon(replica, index, urls, ready, stop_one if index == 1 else never)
                await ready.wait()
            async with (
                serve_asgi(app) as proxy_url,
                AsyncClient(nexus.secret_key, base_url=nexus.base_url, retry=FAST_RETRY) as client,
            ):
                dataset = nexus.seed_dataset([png_data_url()] * ITEMS)
                webhook = nexus.seed_webhook(
                    f"{proxy_url}/hook", SECRET, max_retries=40, max_backoff_ms=300
                )
                jobs = client.get_project(nexus.project_id).batch.jobs
                job = await jobs.create(
                    "replicas",
                    {
                        "dataset_id": dataset,
                        "webhook_id": webhook,
                        "deployment_id": nexus.deployment_id,
                    },
                )
                final = await jobs.wait_until_done(job.id, interval=0.5, timeout=170)
            await proxy.aclose()
            never.set()
    assert stop_one.is_set(), "the replica was stopped mid-run"
    assert proxy.lost_answers > 0.1 * ITEMS
    assert proxy.refused > 0
    assert final.status.items.delivered == ITEMS  # none lost
    assert final.status.items.failed_deliver == 0
    assert len(handled) == ITEMS  # each handed to user code once
    assert len(set(handled)) == ITEMS


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_three_replicas_on_redis_hand_each_delivery_over_once(
    nexus: LocalNexus, redis_client: Redis
) -> None:
    await _three_replicas(nexus, RedisDedupe(redis_client, prefix=_prefix()))


async def test_three_replicas_sharing_memory_hand_each_delivery_over_once(
    nexus: LocalNexus,
) -> None:
    await _three_replicas(nexus, MemoryDedupe())


async def test_a_failing_callback_releases_the_claim_and_the_retry_is_handled(
    nexus: LocalNexus,
) -> None:
    store = MemoryDedupe()
    calls: list[str] = []

    async def flaky(delivery: Delivery) -> None:
        calls.append(delivery.delivery_id)
        if calls.count(delivery.delivery_id) == 1:
            raise RuntimeError("first attempt fails")

    receiver = DeliveryReceiver(SECRET, flaky, dedupe=store)
    with anyio.fail_after(60):
        async with (
            serve_asgi(receiver.app("/hook")) as url,
            AsyncClient(nexus.secret_key, base_url=nexus.base_url, retry=FAST_RETRY) as client,
        ):
            dataset = nexus.seed_dataset([png_data_url()] * 5)
            webhook = nexus.seed_webhook(f"{url}/hook", SECRET, max_retries=5, max_backoff_ms=50)
            jobs = client.get_project(nexus.project_id).batch.jobs
            job = await jobs.create(
                "flaky",
                {
                    "dataset_id": dataset,
                    "webhook_id": webhook,
                    "deployment_id": nexus.deployment_id,
                },
            )
            final = await jobs.wait_until_done(job.id, interval=0.2, timeout=50)
    assert final.status.items.delivered == 5
    assert len(calls) == 10  # each failed once, then was handled by the retry
    assert len(set(calls)) == 5
