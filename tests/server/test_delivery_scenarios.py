"""Delivery scenarios: duplicated, delayed, reordered and dropped webhook deliveries."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nexus_async.server import LocalNexus, NexusCore

from .conftest import api_client
from .helpers import Receiver, all_logs, create_job, data_url, png_bytes, wait_terminal


def images(count: int) -> list[str]:
    """``count`` different small PNGs, so each item has a URL of its own."""
    return [data_url(png_bytes(box=(i % 8, 2, i % 8 + 5, 7), ink=i)) for i in range(count)]


@pytest.fixture
async def manual() -> AsyncIterator[LocalNexus]:
    async with LocalNexus(clock="manual", item_concurrency=8) as server:
        yield server


async def test_duplicated_deliveries_repeat_the_delivery_id(
    nexus: LocalNexus, receiver: Receiver
) -> None:
    nexus.duplicate_deliveries(2)
    webhook_id = nexus.seed_webhook(receiver.url("/ok"))
    async with api_client(nexus) as client:
        job = await create_job(
            client, nexus.seed_dataset(images(3)), [webhook_id], nexus.deployment_id
        )
        final = await wait_terminal(client, job["id"])
    assert final["status"]["items"]["Delivered"] == 3
    await receiver.wait_arrivals("/ok", 9)
    ids = [d.id for d in receiver.at("/ok")]
    assert len(ids) == 9
    assert sorted(ids.count(i) for i in set(ids)) == [3, 3, 3]
    assert len({d.json["item"]["url"] for d in receiver.at("/ok")}) == 3


async def test_dropped_deliveries_count_as_delivered_but_never_arrive(
    nexus: LocalNexus, receiver: Receiver
) -> None:
    nexus.drop_deliveries(every=2)
    webhook_id = nexus.seed_webhook(receiver.url("/ok"))
    async with api_client(nexus) as client:
        job = await create_job(
            client, nexus.seed_dataset(images(4)), [webhook_id], nexus.deployment_id
        )
        final = await wait_terminal(client, job["id"])
        nexus.normal_deliveries()
        again = await create_job(
            client, nexus.seed_dataset(images(1)), [webhook_id], nexus.deployment_id
        )
        await wait_terminal(client, again["id"])
    assert final["status"]["items"]["Delivered"] == 4
    await receiver.wait_arrivals("/ok", 3)  # 2 of the first job, then the second's one
    assert [d.json["jobId"] for d in receiver.at("/ok")].count(job["id"]) == 2


async def test_delayed_deliveries_wait_on_the_server_clock(
    manual: LocalNexus, receiver: Receiver
) -> None:
    manual.delay_deliveries(60)
    webhook_id = manual.seed_webhook(receiver.url("/ok"))
    start = manual.now_ms()
    async with api_client(manual) as client:
        job = await create_job(
            client, manual.seed_dataset(images(2)), [webhook_id], manual.deployment_id
        )
        await manual.advance(59.999)
        held = (await client.get(f"jobs/{job['id']}")).json()
        assert receiver.at("/ok") == []
        assert held["status"]["items"]["Delivered"] == 0
        await manual.advance(0.001)
        final = (await client.get(f"jobs/{job['id']}")).json()
        logs = await all_logs(client, job["id"])
    assert final["status"]["overview"] == "Reached"
    assert [e["createTime"] for e in logs if e["kind"] == "ItemDelivered"] == [start + 60_000] * 2
    assert len(receiver.at("/ok")) == 2


async def test_reordered_deliveries_arrive_after_their_random_holds(
    manual: LocalNexus, receiver: Receiver
) -> None:
    manual.reorder_deliveries(window=10, seed=3)
    draws = random.Random(3)
    holds = sorted(math.ceil(draws.uniform(0, 10) * 1000) for _ in range(6))
    webhook_id = manual.seed_webhook(receiver.url("/ok"))
    start = manual.now_ms()
    async with api_client(manual) as client:
        job = await create_job(
            client, manual.seed_dataset(images(6)), [webhook_id], manual.deployment_id
        )
        await manual.advance(10)
        final = (await client.get(f"jobs/{job['id']}")).json()
        logs = await all_logs(client, job["id"])
    assert final["status"]["items"]["Delivered"] == 6
    delivered = [e for e in logs if e["kind"] == "ItemDelivered"]
    assert sorted(e["createTime"] - start for e in delivered) == holds
    # The receiver saw them in the order of their holds, not of the dataset.
    arrival = [d.json["item"]["url"] for d in receiver.at("/ok")]
    by_hold = [e["item"] for e in sorted(delivered, key=lambda e: (e["createTime"], e["id"]))]
    assert arrival == by_hold


def test_bad_scenario_values_are_refused(static_dir: Path) -> None:
    core = NexusCore(static_dir=static_dir)
    with pytest.raises(ValueError, match=">= 0"):
        core.duplicate_deliveries(-1)
    with pytest.raises(ValueError, match=">= 0"):
        core.delay_deliveries(-1)
    with pytest.raises(ValueError, match=">= 0"):
        core.reorder_deliveries(-1)
    with pytest.raises(ValueError, match=">= 0"):
        core.drop_deliveries(-1)
