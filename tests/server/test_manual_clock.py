"""The manual clock: server time moves only by ``advance``, which runs what became due."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexus_async.server import LocalNexus, serve_asgi

from .conftest import api_client
from .helpers import TINY_PNG, all_logs, create_job

DAY_MS = 86_400_000


@pytest.fixture
async def manual() -> AsyncIterator[LocalNexus]:
    async with LocalNexus(clock="manual", item_concurrency=1) as server:
        yield server


async def test_time_stands_still_until_advanced(manual: LocalNexus) -> None:
    start = manual.now_ms()
    dataset_id = manual.seed_dataset([TINY_PNG])
    async with api_client(manual) as client:
        dataset = (await client.get(f"datasets/{dataset_id}")).json()
        assert dataset["createDate"] == start
        await manual.advance(90)
        assert manual.now_ms() == start + 90_000
        webhook_id = manual.seed_webhook("http://127.0.0.1:9/unused")
        webhook = (await client.get(f"webhooks/{webhook_id}")).json()
        assert webhook["createDate"] == start + 90_000
    with pytest.raises(ValueError, match="cannot go back"):
        await manual.advance_to(start)


async def test_real_clock_cannot_be_advanced() -> None:
    async with LocalNexus() as server:
        with pytest.raises(RuntimeError, match="manual"):
            await server.advance(1)


async def test_a_stop_time_three_days_ahead_fails_the_job(manual: LocalNexus) -> None:
    # Every delivery fails fast (nothing listens on port 9) and is retried for about
    # 7 hours of server time, so 12 items, one at a time, outlast the stop time.
    webhook_id = manual.seed_webhook(
        "http://127.0.0.1:9/down", max_retries=20, max_backoff_ms=3_600_000
    )
    dataset_id = manual.seed_dataset([TINY_PNG] * 12)
    stop = manual.now_ms() + 3 * DAY_MS
    async with api_client(manual) as client:
        job = await create_job(
            client, dataset_id, [webhook_id], manual.deployment_id, stopAtTime=stop
        )
        started = time.monotonic()
        await manual.advance(3 * 86_400 + 1)
        wall = time.monotonic() - started
        final = (await client.get(f"jobs/{job['id']}")).json()
        logs = await all_logs(client, job["id"])
    assert final["status"]["overview"] == "Failed"
    assert final["status"]["message"] == "Stop time reached"
    assert final["status"]["updateDate"] == stop  # it failed at the stop time, not later
    assert 0 < final["status"]["items"]["FailedDeliver"] < 12
    finished = [e for e in logs if e["kind"] == "JobFinished"]
    assert [e["createTime"] for e in finished] == [stop]
    assert wall < 10, f"advancing three days took {wall:.1f} s"


async def test_a_start_time_an_hour_ahead_waits_for_advance(manual: LocalNexus) -> None:
    dataset_id = manual.seed_dataset([TINY_PNG])
    webhook_id = manual.seed_webhook("http://127.0.0.1:9/unused", max_retries=0)
    start = manual.now_ms() + 3_600_000
    async with api_client(manual) as client:
        job = await create_job(
            client, dataset_id, [webhook_id], manual.deployment_id, startAtTime=start
        )
        await manual.advance(3599)
        waiting = (await client.get(f"jobs/{job['id']}")).json()
        assert waiting["status"]["message"] == "Waiting"
        await manual.advance(1)
        final = (await client.get(f"jobs/{job['id']}")).json()
        logs = await all_logs(client, job["id"])
    assert final["status"]["overview"] == "Reached"  # its one item failed delivery
    assert final["status"]["items"]["FailedDeliver"] == 1
    assert {e["createTime"] for e in logs} == {start}


async def test_a_webhook_retry_schedule_completes_by_advancing(manual: LocalNexus) -> None:
    seen: list[tuple[int, int]] = []  # (server time, webhook-timestamp) per attempt

    async def hook(request: Request) -> Response:
        await request.body()
        seen.append((manual.now_ms(), int(request.headers["webhook-timestamp"])))
        return Response(status_code=200 if len(seen) == 5 else 500)

    receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    async with serve_asgi(receiver) as url, api_client(manual) as client:
        webhook_id = manual.seed_webhook(f"{url}/hook", max_retries=4, max_backoff_ms=60_000)
        dataset_id = manual.seed_dataset([TINY_PNG])
        job = await create_job(client, dataset_id, [webhook_id], manual.deployment_id)
        await manual.advance(60)
        final = (await client.get(f"jobs/{job['id']}")).json()
        logs = await all_logs(client, job["id"])
    assert final["status"]["overview"] == "Reached"
    assert final["status"]["items"]["Delivered"] == 1
    first = seen[0][0]
    assert [at - first for at, _ in seen] == [0, 250, 750, 1750, 3750]  # 250 ms * 2**(k-1)
    assert [stamp for _, stamp in seen] == [at // 1000 for at, _ in seen]
    delivered = [e for e in logs if e["kind"] == "ItemDelivered"]
    assert [e["createTime"] for e in delivered] == [first + 3750]
    assert delivered[0]["timeMs"] == 3750  # the stage took the backoff, in server time


async def test_faults_and_real_clock_servers_are_unaffected() -> None:
    # A real-clock server beside a manual one keeps real time.
    async with LocalNexus(clock="manual") as manual, LocalNexus() as real:
        await manual.advance(DAY_MS / 1000)
        async with httpx.AsyncClient(trust_env=False) as raw:
            answer = await raw.get(f"{real.base_url}/_nexus/health")
        assert answer.status_code == 200
        assert abs(real.now_ms() - time.time() * 1000) < 60_000
        dataset_id = real.seed_dataset([TINY_PNG])
        async with api_client(real) as client:
            created = (await client.get(f"datasets/{dataset_id}")).json()["createDate"]
        assert abs(created - time.time() * 1000) < 60_000
        assert manual.now_ms() - created > DAY_MS - 60_000
