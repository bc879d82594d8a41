"""Waiting on many jobs, and following logs, against the local server on both backends."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import pytest

from nexus_async import (
    AsyncClient,
    Backoff,
    Job,
    JobProgress,
    Jobs,
    JobStateError,
    RetryPolicy,
    TransportError,
    WaitTimeoutError,
)
from nexus_async.server import LocalNexus

from ..support import until_sdk_tasks_end
from .live import assert_pool_idle, create_jobs, job_options


def list_and_get_counts(nexus: LocalNexus) -> tuple[int, int]:
    lists = gets = 0
    for r in nexus.requests:
        if r.method != "GET":
            continue
        if r.path.endswith("/batch/jobs"):
            lists += 1
        elif "/batch/jobs/batchjob_" in r.path and not r.path.endswith("/logs"):
            gets += 1
    return lists, gets


async def test_as_completed_200_jobs_once_each_in_completion_order(
    jobs: Jobs, nexus: LocalNexus, client: AsyncClient
) -> None:
    created = await create_jobs(jobs, nexus, 200, items=1)
    nexus.clear_requests()
    finished: list[Job] = []
    with anyio.fail_after(90):
        async with jobs.as_completed([j.id for j in created], interval=0.5) as waiter:
            async for job in waiter:
                finished.append(job)
    assert sorted(j.id for j in finished) == sorted(j.id for j in created)
    assert all(j.is_finished for j in finished)
    order = [(j.status.update_date) for j in finished]
    assert order == sorted(order)
    lists, gets = list_and_get_counts(nexus)
    (poller,) = client.diagnostics().pollers
    assert poller.project_id == nexus.project_id
    # Coalesced: a tick costs one list page (200 jobs fit in one), or at most
    # three GETs once only that few jobs are left: never one request per job.
    assert 1 <= lists <= poller.ticks
    assert lists + gets <= 3 * poller.ticks
    assert lists + gets < 100


async def test_inline_mode_coalesces_too(nexus: LocalNexus) -> None:
    client = AsyncClient(nexus.secret_key, base_url=nexus.base_url)  # no task group
    try:
        jobs = client.get_project(nexus.project_id).batch.jobs
        created = await create_jobs(jobs, nexus, 20, items=1)
        nexus.clear_requests()
        with anyio.fail_after(60):
            finals = await jobs.wait_all([j.id for j in created], interval=0.3)
        assert [j.id for j in finals] == [j.id for j in created]
        lists, gets = list_and_get_counts(nexus)
        assert lists >= 1
        assert lists + gets < 3 * 20
    finally:
        await client.aclose()


async def test_two_waits_share_one_poller(
    jobs: Jobs, nexus: LocalNexus, client: AsyncClient
) -> None:
    created = await create_jobs(jobs, nexus, 10, items=1)
    ids = [j.id for j in created]
    nexus.clear_requests()
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            results: dict[str, list[Job]] = {}

            async def wait(name: str, subset: list[str]) -> None:
                results[name] = await jobs.wait_all(subset, interval=0.3)

            tg.start_soon(wait, "a", ids[:7])
            tg.start_soon(wait, "b", ids[3:])
    assert [j.id for j in results["a"]] == ids[:7]
    assert [j.id for j in results["b"]] == ids[3:]
    lists, gets = list_and_get_counts(nexus)
    (poller,) = client.diagnostics().pollers
    ticks = poller.ticks
    assert lists <= ticks
    assert lists + gets <= 3 * ticks


async def test_wait_all_fail_fast_and_collect(jobs: Jobs, nexus: LocalNexus) -> None:
    good = await create_jobs(jobs, nexus, 3, items=1)
    doomed = await jobs.create("doomed", job_options(nexus, start_at_time=10**13 - 1))
    await jobs.cancel(doomed.id)
    ids = [j.id for j in good] + [doomed.id]
    with anyio.fail_after(30), pytest.raises(JobStateError) as fast:
        await jobs.wait_all(ids, interval=0.2)
    assert fast.value.job.id == doomed.id
    with anyio.fail_after(30), pytest.raises(JobStateError) as collected:
        await jobs.wait_all(ids, interval=0.2, fail_fast=False)
    assert [j.id for j in collected.value.jobs] == [doomed.id]
    assert [j.id for j in collected.value.finished] == ids
    finals = await jobs.wait_all(ids, interval=0.2, raise_exception_if=None)
    assert [j.id for j in finals] == ids


async def test_as_completed_add_and_timeout(jobs: Jobs, nexus: LocalNexus) -> None:
    first, second = await create_jobs(jobs, nexus, 2, items=1)
    waiting = await jobs.create("later", job_options(nexus, start_at_time=10**13 - 1))
    got: list[str] = []
    with anyio.fail_after(30), pytest.raises(WaitTimeoutError) as info:
        async with jobs.as_completed([first.id], interval=0.2, timeout=3) as waiter:
            async for job in waiter:
                got.append(job.id)
                if job.id == first.id:
                    waiter.add(second.id)
                    waiter.add(waiting.id)
    assert got == [first.id, second.id]
    assert [j.id for j in info.value.pending] == [waiting.id]


async def test_progress_reports_counters_and_rate(jobs: Jobs, nexus: LocalNexus) -> None:
    job = await jobs.create("p", job_options(nexus, items=30))
    seen: list[JobProgress] = []
    with anyio.fail_after(60):
        await jobs.wait_all([job.id], interval=0.1, on_progress=seen.append, totals={job.id: 30})
    assert seen[-1].ended == 30
    assert seen[-1].total == 30
    assert seen[-1].eta_seconds == 0.0
    assert [p.ended for p in seen] == sorted(p.ended for p in seen)


async def test_outer_cancel_of_as_completed_is_prompt(
    jobs: Jobs, nexus: LocalNexus, client: AsyncClient
) -> None:
    waiting = await jobs.create("later", job_options(nexus, start_at_time=10**13 - 1))
    t0 = anyio.current_time()
    with anyio.move_on_after(0.5) as scope:
        await jobs.wait_all([waiting.id], interval=0.2)
    assert scope.cancelled_caught
    assert anyio.current_time() - t0 < 1.5
    await until_sdk_tasks_end(timeout=1.0)  # the shared poller's task ended
    (poller,) = client.diagnostics().pollers
    assert not poller.running, "the shared poller task should have ended"
    assert poller.watched_jobs == 0
    assert_pool_idle(client)


async def test_follow_logs_yields_every_entry_once(jobs: Jobs, nexus: LocalNexus) -> None:
    nexus.log_ties(3)
    job = await jobs.create("f", job_options(nexus, items=40))
    followed = []
    with anyio.fail_after(60):
        async for entry in jobs.follow_logs(job.id, interval=0.1):
            followed.append(entry)
    everything = [e async for e in jobs.get_all_logs(job.id)]
    assert [e.id for e in followed] == [e.id for e in reversed(everything)]
    assert len({e.id for e in followed}) == len(followed)
    kinds = {e.kind for e in followed}
    assert "JobFinished" in kinds


# A client whose retry budget is short: one second without a connection is an outage.
SHORT_BUDGET = RetryPolicy(attempts=3, total_time=1.0, backoff=Backoff(initial=0.01, maximum=0.05))

WAITS: dict[str, Callable[[Jobs, str], Awaitable[object]]] = {
    "wait_until_done": lambda jobs, i: jobs.wait_until_done(i, interval=0.05, timeout=30),
    "watch": lambda jobs, i: consume(jobs.watch(i, interval=0.05, timeout=30)),
    "wait_all": lambda jobs, i: jobs.wait_all([i], interval=0.05, timeout=30),
    "follow_logs": lambda jobs, i: consume(jobs.follow_logs(i, interval=0.05, timeout=30)),
}


async def consume(items: AsyncIterator[object]) -> list[object]:
    return [item async for item in items]


def outage_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "nexus_async"
        and r.levelno == logging.WARNING
        and "cannot reach the API" in r.getMessage()
    ]


@pytest.mark.parametrize("name", list(WAITS))
async def test_a_wait_on_an_unreachable_api_warns_once_and_ends_after_the_retry_budget(
    nexus: LocalNexus, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    """It used to poll a dead server silently until its (10-hour) timeout."""
    caplog.set_level(logging.INFO, logger="nexus_async")
    async with AsyncClient(nexus.secret_key, base_url=nexus.base_url, retry=SHORT_BUDGET) as c:
        jobs = c.get_project(nexus.project_id).batch.jobs
        job = await jobs.create("later", job_options(nexus, start_at_time=10**13 - 1))
        nexus.inject_fault(method="GET", path=job.id, drop=True, times=None)
        t0 = anyio.current_time()
        with anyio.fail_after(15), pytest.raises(TransportError):
            await WAITS[name](jobs, job.id)
        took = anyio.current_time() - t0
    assert 1.0 <= took < 10, took
    (warning,) = outage_warnings(caplog)
    assert job.id in warning.getMessage()
    assert nexus.secret_key not in caplog.text


async def test_a_short_outage_warns_once_and_the_wait_goes_on(
    nexus: LocalNexus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nexus_async")
    async with AsyncClient(nexus.secret_key, base_url=nexus.base_url, retry=SHORT_BUDGET) as c:
        jobs = c.get_project(nexus.project_id).batch.jobs
        job = await jobs.create("f", job_options(nexus, items=3, start_at_time=10**13 - 1))
        # Three dropped connections: one poll's attempts, then the API answers again.
        nexus.inject_fault(method="GET", path=job.id, drop=True, times=3)
        with anyio.fail_after(15), pytest.raises(WaitTimeoutError):
            await jobs.wait_until_done(job.id, interval=0.05, timeout=1.5)
    assert len(outage_warnings(caplog)) == 1


async def test_follow_logs_times_out_like_the_other_waits(jobs: Jobs, nexus: LocalNexus) -> None:
    job = await jobs.create("later", job_options(nexus, start_at_time=10**13 - 1))
    t0 = anyio.current_time()
    with anyio.fail_after(10), pytest.raises(WaitTimeoutError) as info:
        await consume(jobs.follow_logs(job.id, interval=0.05, timeout=0.5))
    assert 0.5 <= anyio.current_time() - t0 < 3
    assert info.value.job is not None
    assert info.value.job.id == job.id


async def test_follow_logs_after_time_is_exclusive(jobs: Jobs, nexus: LocalNexus) -> None:
    job = await jobs.create("later", job_options(nexus, start_at_time=10**13 - 1))
    nexus.seed_logs(job.id, 12, per_ms=3, start_time=1_000_000)  # 4 ms of 3 entries
    await jobs.cancel(job.id)  # finished, so following ends
    everything = [e async for e in jobs.follow_logs(job.id, interval=0.05, timeout=10)]
    seeded = sorted({e.create_time for e in everything if e.create_time < 2_000_000})
    assert len(seeded) == 4
    after = seeded[1]
    followed = [
        e async for e in jobs.follow_logs(job.id, interval=0.05, timeout=10, after_time=after)
    ]
    assert followed
    assert min(e.create_time for e in followed) > after
    assert [e.id for e in followed] == [e.id for e in everything if e.create_time > after]
