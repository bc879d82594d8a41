"""Exactly-once creates (issue #15): a lost answer is resolved, never a duplicate or an error."""

from __future__ import annotations

import random

import anyio
import pytest

from nexus_async import AsyncClient, Jobs, RequestTimeoutError, ServerError
from nexus_async.server import LocalNexus

from .conftest import FAST_RETRY
from .live import DEAD_ENDPOINT, job_options

CREATES = 200
GROUPS = 10  # creates share a name (and spec) in groups, so claims must tell them apart
CONCURRENCY = 20
FAR_FUTURE = 10**13 - 1  # jobs that never start: the test measures creates, not runs


def _posts(nexus: LocalNexus, suffix: str) -> int:
    return sum(1 for r in nexus.requests if r.method == "POST" and r.path.endswith(suffix))


def _lists(nexus: LocalNexus, suffix: str) -> int:
    return sum(1 for r in nexus.requests if r.method == "GET" and r.path.endswith(suffix))


async def test_200_creates_with_30_percent_of_answers_lost(jobs: Jobs, nexus: LocalNexus) -> None:
    options = job_options(nexus, items=1, start_at_time=FAR_FUTURE)
    rng = random.Random(15)
    lose = [rng.random() < 0.3 for _ in range(CREATES)]
    nexus.clear_requests()
    made: dict[int, str] = {}
    slots = anyio.Semaphore(CONCURRENCY)

    async def create(i: int) -> None:
        async with slots:
            if lose[i]:
                # Taken by the next create to arrive: the job is made, then its answer
                # is dropped (half the time) or replaced by a 500.
                if i % 2:
                    nexus.inject_fault("POST", r"/batch/jobs$", drop=True, after_handling=True)
                else:
                    nexus.inject_fault("POST", r"/batch/jobs$", status=500, after_handling=True)
            job = await jobs.create(f"nightly-{i % GROUPS}", options)
            made[i] = job.id

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            for i in range(CREATES):
                tg.start_soon(create, i)

    lookups = _lists(nexus, "/batch/jobs")
    faults = sum(lose)
    assert 0.25 * CREATES < faults < 0.35 * CREATES
    assert len(made) == CREATES  # every call returned a job, none raised
    assert len(set(made.values())) == CREATES  # ... a job of its own
    on_server = [job async for job in jobs.iter()]
    assert len(on_server) == CREATES
    assert {job.id for job in on_server} == set(made.values())
    for group in range(GROUPS):
        assert sum(job.name == f"nightly-{group}" for job in on_server) == CREATES // GROUPS
    assert _posts(nexus, "/batch/jobs") == CREATES  # nothing was sent twice
    # Bounded cost: a list page per lost answer, a second only where more than
    # `LIST_PAGE` jobs were created during the attempt.
    assert faults <= lookups <= 2 * faults


async def test_a_create_provably_not_made_is_sent_again(jobs: Jobs, nexus: LocalNexus) -> None:
    options = job_options(nexus, start_at_time=FAR_FUTURE)
    nexus.clear_requests()
    nexus.inject_fault("POST", r"/batch/jobs$", status=500)  # before handling: no job
    job = await jobs.create("retried", options)
    assert [j.id for j in (await jobs.list()).data] == [job.id]
    assert _posts(nexus, "/batch/jobs") == 2
    assert _lists(nexus, "/batch/jobs") == 2  # the lookup, and the list above


async def test_opt_out_raises_as_before(jobs: Jobs, nexus: LocalNexus) -> None:
    options = job_options(nexus, start_at_time=FAR_FUTURE)
    nexus.clear_requests()
    nexus.inject_fault("POST", r"/batch/jobs$", status=500, after_handling=True)
    with pytest.raises(ServerError):
        await jobs.create("plain", options, recover=False)
    assert _lists(nexus, "/batch/jobs") == 0
    assert len((await jobs.list()).data) == 1


async def test_a_job_made_before_the_attempt_is_not_taken(jobs: Jobs, nexus: LocalNexus) -> None:
    """An identical job from before the attempt's window is not this call's job."""
    options = job_options(nexus, start_at_time=FAR_FUTURE)
    older = await jobs.create("same", options)
    # The window may reach a second (the `Date` header's step) before the attempt began:
    # step past that, so the older job is outside it.
    await anyio.sleep(2.1)
    nexus.inject_fault("POST", r"/batch/jobs$", status=500)  # nothing made
    job = await jobs.create("same", options)
    assert job.id != older.id
    assert len((await jobs.list()).data) == 2


async def test_a_timeout_with_nothing_listed_is_raised(nexus: LocalNexus) -> None:
    """The attempt may still be under way on the server: its absence proves nothing."""
    async with AsyncClient(
        nexus.secret_key, base_url=nexus.base_url, timeout=0.3, retry=FAST_RETRY
    ) as client:
        jobs = client.get_project(nexus.project_id).batch.jobs
        options = job_options(nexus, start_at_time=FAR_FUTURE)
        nexus.inject_fault("POST", r"/batch/jobs$", status=None, latency=2.0)
        with pytest.raises(RequestTimeoutError):
            await jobs.create("slow", options)


async def test_datasets_and_webhooks_recover_lost_answers(
    client: AsyncClient, nexus: LocalNexus
) -> None:
    batch = client.get_project(nexus.project_id).batch
    nexus.clear_requests()
    for _ in range(2):
        nexus.inject_fault("POST", r"/batch/webhooks$", drop=True, after_handling=True)
    first = await batch.webhooks.create("hook", {"endpoint": DEAD_ENDPOINT})
    second = await batch.webhooks.create("hook", {"endpoint": DEAD_ENDPOINT})
    assert first.id != second.id
    assert {w.id for w in (await batch.webhooks.list()).data} == {first.id, second.id}
    assert _posts(nexus, "/batch/webhooks") == 2

    nexus.inject_fault("POST", r"/batch/datasets$", status=502, after_handling=True)
    dataset = await batch.datasets.create_from_items("cams", ["https://cdn.example/1.jpg"])
    ready = await batch.datasets.wait_until_done(dataset.id, interval=0.2, timeout=30)
    assert ready.status.item_count == 1
    assert [d.id for d in (await batch.datasets.list()).data if d.name == "cams"] == [dataset.id]
    assert _posts(nexus, "/batch/datasets") == 1
