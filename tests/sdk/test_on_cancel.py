"""Cancellation-aware waits (issue #15): `on_cancel="cancel"` stops the jobs of a cancelled wait."""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import pytest

from nexus_async import Job, Jobs, ValidationError
from nexus_async.server import LocalNexus

from .live import job_options

FAR_FUTURE = 10**13 - 1  # a job that stays scheduled: unfinished until cancelled


def _cancels(nexus: LocalNexus) -> list[str]:
    """The job IDs the server was asked to cancel (the cancel PATCH)."""
    return [r.path.rsplit("/", 1)[-1] for r in nexus.requests if r.method == "PATCH"]


def _setter(event: anyio.Event) -> Callable[[Job], None]:
    return lambda _: event.set()


async def _cancel_when(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def test_cancelled_wait_until_done_cancels_the_job(jobs: Jobs, nexus: LocalNexus) -> None:
    job = await jobs.create("long", job_options(nexus, start_at_time=FAR_FUTURE))
    polled = anyio.Event()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            outer = tg.cancel_scope

            async def wait() -> None:
                await jobs.wait_until_done(
                    job.id, interval=0.2, on_update=lambda _: polled.set(), on_cancel="cancel"
                )

            tg.start_soon(wait)
            await polled.wait()  # the wait is under way
            cancelled_at = anyio.current_time()
            outer.cancel()
    assert anyio.current_time() - cancelled_at < 2.0
    final = await jobs.get(job.id)
    assert final.status.cancelled_at is not None
    assert "cancellation" in (final.status.reason or final.status.message)
    assert _cancels(nexus) == [job.id]


async def test_leave_keeps_the_job(jobs: Jobs, nexus: LocalNexus) -> None:
    job = await jobs.create("long", job_options(nexus, start_at_time=FAR_FUTURE))
    for on_cancel in ("leave", None):
        polled = anyio.Event()
        with anyio.fail_after(10), anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_cancel_when, polled, scope)
                if on_cancel is None:  # the default
                    await jobs.wait_until_done(job.id, interval=0.2, on_update=_setter(polled))
                else:
                    await jobs.wait_until_done(
                        job.id, interval=0.2, on_update=_setter(polled), on_cancel=on_cancel
                    )
        assert scope.cancelled_caught
    final = await jobs.get(job.id)
    assert final.status.cancelled_at is None
    assert not final.is_finished
    assert _cancels(nexus) == []


async def test_wait_all_of_20_cancels_exactly_the_unfinished(jobs: Jobs, nexus: LocalNexus) -> None:
    quick = [await jobs.create(f"quick-{i}", job_options(nexus, items=1)) for i in range(12)]
    slow_options = job_options(nexus, start_at_time=FAR_FUTURE)
    slow = [await jobs.create(f"slow-{i}", slow_options) for i in range(8)]
    quick_ids = {j.id for j in quick}
    finished: set[str] = set()
    all_quick_done = anyio.Event()

    def seen(job: Job) -> None:
        if job.is_finished:
            finished.add(job.id)
        if quick_ids <= finished:
            all_quick_done.set()

    with anyio.fail_after(60), anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_when, all_quick_done, scope)
            ids = [j.id for j in quick + slow]
            await jobs.wait_all(ids, interval=0.2, on_update=seen, on_cancel="cancel")
    assert scope.cancelled_caught
    assert finished == quick_ids
    assert sorted(_cancels(nexus)) == sorted(j.id for j in slow)
    for job in quick:
        assert (await jobs.get(job.id)).status.cancelled_at is None
    for job in slow:
        assert (await jobs.get(job.id)).status.cancelled_at is not None


async def test_as_completed_cancel_without_async_with(jobs: Jobs, nexus: LocalNexus) -> None:
    job = await jobs.create("long", job_options(nexus, start_at_time=FAR_FUTURE))
    polled = anyio.Event()
    waiter = jobs.as_completed(
        [job.id], interval=0.2, on_update=lambda _: polled.set(), on_cancel="cancel"
    )
    with anyio.fail_after(10), anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_when, polled, scope)
            async for _ in waiter:
                pass
    assert scope.cancelled_caught
    await waiter.aclose()
    assert _cancels(nexus) == [job.id]


async def test_a_failing_cancel_is_logged_not_raised(
    jobs: Jobs, nexus: LocalNexus, caplog: pytest.LogCaptureFixture
) -> None:
    job = await jobs.create("long", job_options(nexus, start_at_time=FAR_FUTURE))
    nexus.inject_fault("PATCH", job.id, status=500, times=None)
    polled = anyio.Event()
    caplog.set_level(logging.WARNING, logger="nexus_async")
    with anyio.fail_after(10), anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_when, polled, scope)
            await jobs.wait_until_done(
                job.id, interval=0.2, on_update=lambda _: polled.set(), on_cancel="cancel"
            )
    assert scope.cancelled_caught  # the cancellation went on, no ServerError instead
    assert any(f"could not cancel job {job.id}" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("bad", ["stop", "", None, True, "Cancel"])
async def test_bad_on_cancel_is_a_validation_error(
    jobs: Jobs, nexus: LocalNexus, bad: object
) -> None:
    job_id = "batchjob_00000000-0000-0000-0000-000000000000"
    nexus.clear_requests()
    with pytest.raises(ValidationError, match="on_cancel"):
        await jobs.wait_until_done(job_id, on_cancel=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="on_cancel"):
        await jobs.wait_all([job_id], on_cancel=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="on_cancel"):
        jobs.as_completed([job_id], on_cancel=bad)  # type: ignore[arg-type]
    assert nexus.requests == []
