"""The logs call over HTTP: filters, ordering, caps, tie groups, and a million entries."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from nexus_async.server import LocalNexus

from .helpers import assert_log_entry_shape, idle_job


@pytest.fixture
async def job_id(nexus: LocalNexus, client: httpx.AsyncClient) -> str:
    """A job that never starts (so only seeded entries are in its log)."""
    return str((await idle_job(nexus, client))["id"])


async def logs(client: httpx.AsyncClient, job_id: str, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(f"jobs/{job_id}/logs", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "batch_job_log"
    assert body["id"] == "batchjoblog_" + job_id.removeprefix("batchjob_")
    assert body["projectId"].startswith("proj_")
    entries: list[dict[str, Any]] = body["entries"]
    return entries


async def test_filters_and_order(nexus: LocalNexus, client: httpx.AsyncClient, job_id: str) -> None:
    nexus.seed_logs(job_id, 30, per_ms=1, start_time=1_000_000)
    nexus.seed_logs(job_id, 5, per_ms=1, start_time=1_000_010, level="Error")
    everything = await logs(client, job_id)
    assert len(everything) == 35
    for entry in everything:
        assert_log_entry_shape(entry)
    keys = [(e["createTime"], e["id"]) for e in everything]
    assert keys == sorted(keys, reverse=True)
    assert len({e["id"] for e in everything}) == 35

    before = await logs(client, job_id, beforeTime=1_000_010)
    assert max(e["createTime"] for e in before) == 1_000_010  # inclusive
    assert len(before) == 11 + 1
    after = await logs(client, job_id, afterTime=1_000_020)
    assert min(e["createTime"] for e in after) == 1_000_021  # exclusive
    assert len(after) == 9
    window = await logs(client, job_id, afterTime=1_000_009, beforeTime=1_000_011)
    assert sorted(e["createTime"] for e in window) == [1_000_010] * 2 + [1_000_011] * 2
    errors = await logs(client, job_id, minLevel="Error")
    assert [e["level"] for e in errors] == ["Error"] * 5
    assert len(await logs(client, job_id, minLevel="warning")) == 5
    assert len(await logs(client, job_id, minLevel="Debug")) == 35
    assert [e["id"] for e in await logs(client, job_id, maxEntries=3)] == [
        e["id"] for e in everything[:3]
    ]
    assert await logs(client, job_id, afterTime=1_000_030, beforeTime=1_000_000) == []


async def test_max_entries_default_and_cap(
    nexus: LocalNexus, client: httpx.AsyncClient, job_id: str
) -> None:
    nexus.seed_logs(job_id, 1500, per_ms=3, start_time=1_000_000)
    assert len(await logs(client, job_id)) == 1000
    assert len(await logs(client, job_id, maxEntries=5000)) == 1000
    assert len(await logs(client, job_id, maxEntries=1)) == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"maxEntries": 0}, "`maxEntries` must be >= 1"),
        ({"maxEntries": "many"}, "`maxEntries` must be an integer"),
        ({"minLevel": "Fatal"}, "`minLevel` must be one of Debug, Info, Warning, Error"),
        ({"beforeTime": "yesterday"}, "`beforeTime` must be an integer"),
        ({"afterTime": -1}, "`afterTime` must be >= 0"),
    ],
)
async def test_bad_parameters(
    client: httpx.AsyncClient, job_id: str, params: dict[str, Any], message: str
) -> None:
    response = await client.get(f"jobs/{job_id}/logs", params=params)
    assert response.status_code == 400
    assert message in response.json()["message"]


async def test_tie_group_larger_than_a_page(
    nexus: LocalNexus, client: httpx.AsyncClient, job_id: str
) -> None:
    """beforeTime is inclusive: a client paging by time gets the boundary group again.

    Groups: t0 = 1200 entries, t1 = 1200 entries, t2 = 100 entries.
    """
    nexus.seed_logs(job_id, 2500, per_ms=1200, start_time=5_000)
    first = await logs(client, job_id)
    assert [e["createTime"] for e in first[:100]] == [5_002] * 100
    assert {e["createTime"] for e in first[100:]} == {5_001}
    second = await logs(client, job_id, beforeTime=first[-1]["createTime"])
    # The same millisecond again, from its newest entry: 900 repeats and 100 new ones.
    assert {e["createTime"] for e in second} == {5_001}
    seen = {e["id"] for e in first}
    assert sum(e["id"] in seen for e in second) == 900
    # Stepping below the tie group continues without gaps.
    third = await logs(client, job_id, beforeTime=5_000)
    assert len(third) == 1000
    assert {e["createTime"] for e in third} == {5_000}


async def test_a_million_entries_page_quickly(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, job_id: str
) -> None:
    started = anyio.current_time()
    seeded = await admin.post(
        "seed/logs", json={"jobId": job_id, "count": 1_000_000, "perMs": 1, "startTime": 10_000_000}
    )
    assert seeded.status_code == 200, seeded.text
    assert anyio.current_time() - started < 10
    before: int | None = None
    seen: list[str] = []
    started = anyio.current_time()
    for _ in range(5):
        params = {} if before is None else {"beforeTime": before}
        page = await logs(client, job_id, **params)
        assert len(page) == 1000
        seen += [e["id"] for e in page]
        before = page[-1]["createTime"] - 1
    elapsed = anyio.current_time() - started
    assert len(set(seen)) == 5000
    assert before == 10_000_000 + 1_000_000 - 5000 - 1
    assert elapsed < 5, elapsed  # a page is O(log n + page), not O(n)
    deep = await logs(client, job_id, beforeTime=10_000_499, minLevel="Info", maxEntries=10)
    assert [e["createTime"] for e in deep] == list(range(10_000_499, 10_000_489, -1))
