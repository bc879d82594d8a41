"""The client's lifecycle: closing inside `async with`, and iterators outliving the client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from nexus_async import AsyncClient, ClientClosedError, Job, Jobs
from nexus_async.server import LocalNexus

from .conftest import FAST_RETRY
from .live import job_options, quiet_job


def new_client(nexus: LocalNexus) -> AsyncClient:
    return AsyncClient(nexus.secret_key, base_url=nexus.base_url, retry=FAST_RETRY)


async def test_aclose_inside_async_with_lets_the_block_go_on(nexus: LocalNexus) -> None:
    reached_end = False
    with anyio.fail_after(10):
        async with new_client(nexus) as client:
            jobs = client.get_project(nexus.project_id).batch.jobs
            job = await quiet_job(jobs, nexus)
            await client.aclose()
            await anyio.lowlevel.checkpoint()  # a cancelled block would end here
            with pytest.raises(ClientClosedError):
                await jobs.get(job.id)
            with pytest.raises(ClientClosedError):
                client.get_project(nexus.project_id)
            await client.aclose()  # twice is fine
            reached_end = True
    assert reached_end
    assert client.diagnostics().state == "closed"


async def test_aclose_inside_async_with_stops_background_work(nexus: LocalNexus) -> None:
    """A prefetcher and a shared poller are stopped; the block itself is not."""
    with anyio.fail_after(10):
        async with new_client(nexus) as client:
            jobs = client.get_project(nexus.project_id).batch.jobs
            job = await quiet_job(jobs, nexus)
            nexus.seed_logs(job.id, 3_000, per_ms=1, start_time=1_000_000)
            logs = jobs.get_all_logs(job.id)
            first = await logs.__anext__()
            assert first.create_time > 0
            polled = anyio.Event()
            waiter = jobs.as_completed([job.id], interval=0.05, on_update=lambda _: polled.set())
            async with anyio.create_task_group() as tg:
                outcome: dict[str, ClientClosedError] = {}

                async def wait() -> None:
                    try:
                        await waiter.__anext__()
                    except ClientClosedError as exc:
                        outcome["wait"] = exc

                tg.start_soon(wait)
                await polled.wait()  # the shared poller is running
                assert client.diagnostics().background_tasks >= 2
                await client.aclose()
            assert isinstance(outcome["wait"], ClientClosedError)
            with pytest.raises(ClientClosedError):
                async for _ in logs:
                    pass
            diagnostics = client.diagnostics()
            assert diagnostics.background_tasks == 0
            assert not any(p.running for p in diagnostics.pollers)


async def _consume(items: AsyncIterator[Any]) -> int:
    count = 0
    async for _ in items:
        count += 1
    return count


# Each gets a callback for its first sign of life (a polled snapshot), since
# `as_completed` yields nothing for a job that does not finish.
Start = Callable[[Jobs, Job, Callable[[Job], None]], AsyncIterator[Any]]

ITERATORS: dict[str, Start] = {
    "get_all_logs": lambda jobs, job, _: jobs.get_all_logs(job.id),
    "as_completed": lambda jobs, job, seen: jobs.as_completed(
        [job.id], interval=0.05, on_update=seen
    ),
    "watch": lambda jobs, job, _: jobs.watch(job.id, interval=0.05),
    "follow_logs": lambda jobs, job, _: jobs.follow_logs(job.id, interval=0.05),
}


@pytest.mark.parametrize("name", list(ITERATORS))
async def test_an_iterator_started_inside_raises_when_used_after_exit(
    nexus: LocalNexus, name: str
) -> None:
    with anyio.fail_after(10):
        async with new_client(nexus) as client:
            jobs = client.get_project(nexus.project_id).batch.jobs
            job = await quiet_job(jobs, nexus)
            nexus.seed_logs(job.id, 500, per_ms=1, start_time=1_000_000)
            items = ITERATORS[name](jobs, job, lambda _: None)
        with pytest.raises(ClientClosedError):
            await _consume(items)


@pytest.mark.parametrize("name", list(ITERATORS))
async def test_an_iterator_still_running_raises_when_the_client_exits(
    nexus: LocalNexus, name: str
) -> None:
    """The consumer runs outside the client's block, which ends under it."""
    outcome: dict[str, Any] = {}
    started = anyio.Event()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg, new_client(nexus) as client:
            jobs = client.get_project(nexus.project_id).batch.jobs
            # A job that will not finish, with more logs than a consumer reads at once.
            job = await jobs.create("slow", job_options(nexus, start_at_time=10**13 - 1))
            nexus.seed_logs(job.id, 5_000, per_ms=1, start_time=1_000_000)
            items = ITERATORS[name](jobs, job, lambda _: started.set())

            async def consume() -> None:
                count = 0
                try:
                    async for _ in items:
                        count += 1
                        if count == 1:
                            started.set()
                        await anyio.lowlevel.checkpoint()
                except ClientClosedError as exc:
                    outcome["error"] = exc
                outcome["count"] = count

            tg.start_soon(consume)
            await started.wait()  # mid-stream, or mid-wait
    assert "error" in outcome, f"ended normally after {outcome.get('count')} items"
