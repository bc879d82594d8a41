"""Every job method against the local server over real HTTP, on asyncio and trio."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import anyio
import httpx
import pytest

from nexus_async import (
    AsyncClient,
    ConflictError,
    ExistingDeployment,
    ForbiddenError,
    Job,
    Jobs,
    JobStateError,
    JobStatusOverview,
    LogLevel,
    LogPagingError,
    NexusConnectionError,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    UnauthorizedError,
    WaitTimeoutError,
    WebhookDestination,
)
from nexus_async.server import LocalNexus

from ..support import until_sdk_tasks_end
from .conftest import FAST_RETRY
from .live import assert_pool_idle, create_jobs, job_options, png_data_url, quiet_job


async def test_create_get_list_delete(jobs: Jobs, nexus: LocalNexus) -> None:
    options = job_options(nexus, items=2)
    job = await jobs.create("first", options)
    assert job.id.startswith("batchjob_")
    assert job.name == "first"
    assert job.object == "batch_job"
    assert job.project_id == nexus.project_id
    assert job.spec.dataset_id == options["dataset_id"]
    assert job.spec.deployment == ExistingDeployment(deployment_id=nexus.deployment_id)
    assert job.spec.result_delivery.destinations == [
        WebhookDestination(webhook_id=str(options["webhook_id"]))
    ]
    assert job.spec.stop_at_time is not None
    assert job.spec.start_at_time is not None
    assert job.spec.stop_at_time > job.spec.start_at_time

    fetched = await jobs.get(job.id)
    assert fetched.id == job.id
    assert fetched["spec"]["dataset_id"] == options["dataset_id"]

    page = await jobs.list()
    assert [j.id for j in page.data] == [job.id]
    assert page["next_page"] is None

    deleted = await jobs.delete(job.id)
    assert deleted.id == job.id
    assert deleted.deleted is True
    with pytest.raises(NotFoundError):
        await jobs.get(job.id)


async def test_list_pages_and_iter(jobs: Jobs, nexus: LocalNexus) -> None:
    created = await create_jobs(jobs, nexus, 7)
    newest_first = [j.id for j in reversed(created)]
    seen: list[str] = []
    page = await jobs.list({"limit": 3})
    pages = 1
    seen += [j.id for j in page.data]
    while page.next_page is not None and pages < 10:
        page = await jobs.list({"limit": 3, "page": page.next_page})
        seen += [j.id for j in page.data]
        pages += 1
    assert seen == newest_first
    assert pages == 3
    assert [j.id async for j in jobs.iter(page_size=2)] == newest_first


async def test_wait_until_done_reaches_finished(jobs: Jobs, nexus: LocalNexus) -> None:
    job = await jobs.create("wait", job_options(nexus, items=4))
    snapshots: list[Job] = []
    with anyio.fail_after(30):
        final = await jobs.wait_until_done(job.id, interval=0.2, on_update=snapshots.append)
    assert final.status.overview is JobStatusOverview.REACHED
    assert final.status.message == "Finished"
    items = final.status.items
    assert items.gathered == 4
    assert items.predicted == 4
    assert items.failed_deliver == 4  # nobody listens at the webhook
    assert snapshots[-1] == final
    assert len({s.status for s in snapshots}) == len(snapshots)


async def test_cancel_ends_job_failed_and_wait_raises(jobs: Jobs, nexus: LocalNexus) -> None:
    in_an_hour = int(time.time() * 1000) + 3_600_000
    job = await jobs.create("later", job_options(nexus, start_at_time=in_an_hour))
    cancelled = await jobs.cancel(job.id)
    assert cancelled.id == job.id
    with anyio.fail_after(10), pytest.raises(JobStateError) as info:
        await jobs.wait_until_done(job.id, interval=0.1)
    final = info.value.job
    assert final.status.overview is JobStatusOverview.FAILED
    assert final.status.message == "Batch job cancelled"
    assert final.status.reason is not None
    assert "requested cancellation" in final.status.reason
    assert final.status.cancelled_at is not None
    again = await jobs.wait_until_done(job.id, raise_exception_if=None)
    assert again.status == final.status


async def test_wait_timeout_carries_the_last_snapshot(jobs: Jobs, nexus: LocalNexus) -> None:
    in_an_hour = int(time.time() * 1000) + 3_600_000
    job = await jobs.create("later", job_options(nexus, start_at_time=in_an_hour))
    t0 = anyio.current_time()
    with pytest.raises(WaitTimeoutError) as info:
        await jobs.wait_until_done(job.id, interval=0.1, timeout=0.5)
    assert anyio.current_time() - t0 < 2
    assert isinstance(info.value, TimeoutError)
    assert info.value.job is not None
    assert info.value.job.id == job.id
    assert info.value.job.status.overview is JobStatusOverview.WAITING


async def test_outer_cancel_of_wait_is_prompt_and_leaves_pool_idle(
    jobs: Jobs, nexus: LocalNexus, client: AsyncClient
) -> None:
    in_an_hour = int(time.time() * 1000) + 3_600_000
    job = await jobs.create("later", job_options(nexus, start_at_time=in_an_hour))
    nexus.inject_fault(
        method="GET", path=r"/batch/jobs/batchjob_", status=None, latency=5.0, times=1
    )
    t0 = anyio.current_time()
    with anyio.move_on_after(0.3) as scope:
        await jobs.wait_until_done(job.id)
    assert scope.cancelled_caught
    assert anyio.current_time() - t0 < 1.0
    assert_pool_idle(client)
    # The client still works after a cancelled call.
    assert (await jobs.get(job.id)).id == job.id


async def test_errors_from_the_server(jobs: Jobs, nexus: LocalNexus) -> None:
    options = job_options(nexus)
    with pytest.raises(NotFoundError, match="dataset"):
        await jobs.create("x", {**options, "dataset_id": "dataset_missing"})
    with pytest.raises(NotFoundError):
        await jobs.get("batchjob_00000000-0000-0000-0000-000000000000")
    other_project, other_key = nexus.add_project()
    async with AsyncClient(other_key, base_url=nexus.base_url) as other:
        with pytest.raises(ForbiddenError):
            await other.get_project(nexus.project_id).batch.jobs.list()
    async with AsyncClient("wrong-key", base_url=nexus.base_url) as wrong:
        with pytest.raises((UnauthorizedError, ForbiddenError)):
            await wrong.get_project(nexus.project_id).batch.jobs.list()
    assert other_project != nexus.project_id


async def test_conflict_for_a_dataset_not_uploaded(jobs: Jobs, nexus: LocalNexus) -> None:
    options = job_options(nexus)
    async with httpx.AsyncClient() as http:  # a dataset created but never uploaded
        response = await http.post(
            f"{nexus.base_url}/projects/{nexus.project_id}/batch/datasets",
            headers={"Secret-Key": nexus.secret_key},
            json={
                "name": "pending",
                "spec": {
                    "source": {
                        "kind": "UploadedNewlineDelimitedJsonFile",
                        "sizeBytes": 10,
                        "crc32c": "AAAAAA==",
                    }
                },
            },
        )
    assert response.status_code == 200, response.text
    with pytest.raises(ConflictError):
        await jobs.create("x", {**options, "dataset_id": response.json()["id"]})


async def test_retries_live(jobs: Jobs, nexus: LocalNexus) -> None:
    job = await jobs.create("r", job_options(nexus))
    nexus.inject_fault(method="GET", path=r"/batch/jobs/batchjob_", status=503, times=1)
    assert (await jobs.get(job.id)).id == job.id
    nexus.inject_fault(method="GET", path=r"/batch/jobs$", status=429, retry_after=0.2, times=1)
    t0 = anyio.current_time()
    assert len((await jobs.list()).data) == 1
    assert anyio.current_time() - t0 >= 0.19
    nexus.inject_fault(method="GET", path=r"/batch/jobs$", status=429, retry_after=600, times=1)
    with pytest.raises(RateLimitedError) as info:
        await jobs.list()
    assert info.value.retry_after == 600


async def test_create_that_reached_the_server_is_not_repeated(
    jobs: Jobs, nexus: LocalNexus
) -> None:
    options = job_options(nexus)
    nexus.clear_requests()
    nexus.inject_fault(
        method="POST", path=r"/batch/jobs$", status=500, times=3, after_handling=True
    )
    with pytest.raises(ServerError):
        await jobs.create("once", options, recover=False)
    posts = [r for r in nexus.requests if r.method == "POST"]
    assert len(posts) == 1
    assert [j.name for j in (await jobs.list()).data] == ["once"]


async def test_create_through_dropped_connection_is_not_repeated(
    jobs: Jobs, nexus: LocalNexus
) -> None:
    options = job_options(nexus)
    nexus.inject_fault(method="POST", path=r"/batch/jobs$", drop=True, times=1)
    with pytest.raises(NexusConnectionError):
        await jobs.create("once", options, recover=False)
    assert len([r for r in nexus.requests if r.method == "POST"]) == 1


async def test_read_timeout(nexus: LocalNexus) -> None:
    async with AsyncClient(
        nexus.secret_key, base_url=nexus.base_url, timeout=0.3, retry=FAST_RETRY
    ) as client:
        jobs = client.get_project(nexus.project_id).batch.jobs
        nexus.inject_fault(method="GET", path=r"/batch/jobs$", status=None, latency=3.0, times=10)
        t0 = anyio.current_time()
        with pytest.raises(RequestTimeoutError):
            await jobs.list()
        assert anyio.current_time() - t0 < 3.0


async def test_get_logs_filters(jobs: Jobs, nexus: LocalNexus) -> None:
    job = await quiet_job(jobs, nexus)
    now = int(time.time() * 1000)
    nexus.seed_logs(job.id, 30, per_ms=1, start_time=now - 100)
    nexus.seed_logs(job.id, 5, per_ms=1, start_time=now - 200, level="Error")
    logs = await jobs.get_logs(job.id, {"max_entries": 10})
    assert logs.object == "batch_job_log"
    assert len(logs.entries) == 10
    keys = [(e.create_time, e.id) for e in logs.entries]
    assert keys == sorted(keys, reverse=True)
    errors_only = await jobs.get_logs(job.id, {"min_level": "Error"})
    assert {e.level for e in errors_only.entries} == {LogLevel.ERROR}
    assert len(errors_only.entries) == 5
    window = await jobs.get_logs(job.id, {"after_time": now - 100, "before_time": now - 91})
    assert {e.create_time for e in window.entries} == set(range(now - 99, now - 90))


@pytest.mark.parametrize(("count", "per_ms"), [(2_500, 1), (2_500, 7), (3_000, 999), (1_998, 999)])
async def test_get_all_logs_exactly_once_with_ties(
    jobs: Jobs, nexus: LocalNexus, count: int, per_ms: int
) -> None:
    job = await quiet_job(jobs, nexus)
    nexus.seed_logs(job.id, count, per_ms=per_ms, start_time=1_000_000)
    with anyio.fail_after(30):
        entries = [e async for e in jobs.get_all_logs(job.id, {"min_level": "Info"})]
    synthetic = [e for e in entries if e.create_time < 2_000_000]
    assert len(synthetic) == count
    assert len({e.id for e in entries}) == len(entries)
    keys = [(e.create_time, e.id) for e in entries]
    assert keys == sorted(keys, reverse=True)


@pytest.mark.parametrize("group", [1_000, 1_500])
async def test_get_all_logs_refuses_a_tie_group_of_a_page_or_more(
    jobs: Jobs, nexus: LocalNexus, group: int
) -> None:
    """A full page at one millisecond cannot be told from a larger group: stop loudly."""
    job = await quiet_job(jobs, nexus)
    nexus.seed_logs(job.id, group, per_ms=group, start_time=1_000_000)
    seen = 0
    with anyio.fail_after(30), pytest.raises(LogPagingError) as info:
        async for _ in jobs.get_all_logs(job.id, {"before_time": 1_000_000}):
            seen += 1
    assert seen == 1_000
    assert info.value.create_time == 1_000_000


async def test_get_all_logs_small_pages_and_inline_mode(nexus: LocalNexus) -> None:
    client = AsyncClient(nexus.secret_key, base_url=nexus.base_url)  # not entered: no prefetch
    try:
        jobs = client.get_project(nexus.project_id).batch.jobs
        job = await quiet_job(jobs, nexus)
        nexus.seed_logs(job.id, 95, per_ms=4, start_time=1_000_000)
        got = [
            e
            async for e in jobs.get_all_logs(job.id, {"max_entries": 10, "before_time": 1_000_100})
        ]
        assert len(got) == 95
        assert len({e.id for e in got}) == 95
    finally:
        await client.aclose()


@pytest.mark.parametrize("entered", [True, False])
async def test_outer_cancel_of_get_all_logs_is_prompt(nexus: LocalNexus, entered: bool) -> None:
    client = AsyncClient(nexus.secret_key, base_url=nexus.base_url, retry=FAST_RETRY)
    if entered:
        await client.__aenter__()
    try:
        jobs = client.get_project(nexus.project_id).batch.jobs
        job = await quiet_job(jobs, nexus)
        nexus.seed_logs(job.id, 5_000, per_ms=3, start_time=1_000_000)
        nexus.inject_fault(method="GET", path=r"/logs$", status=None, latency=0.3, times=100)
        seen = 0
        t0 = anyio.current_time()
        with anyio.move_on_after(0.5) as scope:
            async for _ in jobs.get_all_logs(job.id):
                seen += 1
        assert scope.cancelled_caught
        assert anyio.current_time() - t0 < 1.5
        assert seen >= 1_000
        await until_sdk_tasks_end(timeout=1.0)  # the prefetch task saw its cancellation
        assert_pool_idle(client)
    finally:
        if entered:
            await client.__aexit__(None, None, None)
        else:
            await client.aclose()


async def test_breaking_out_of_get_all_logs_stops_prefetch(
    jobs: Jobs, nexus: LocalNexus, client: AsyncClient
) -> None:
    job = await quiet_job(jobs, nexus)
    nexus.seed_logs(job.id, 10_000, per_ms=1, start_time=1_000_000)
    nexus.clear_requests()
    logs = jobs.get_all_logs(job.id)
    async for _ in logs:
        break
    await logs.aclose()
    await until_sdk_tasks_end(timeout=1.0)  # no prefetch task is left to send more
    log_requests = [r for r in nexus.requests if r.path.endswith("/logs")]
    assert len(log_requests) <= 3  # the page consumed, at most two prefetched
    assert_pool_idle(client)


@pytest.mark.parametrize("first_call", ["list", "cancel"])
async def test_cancel_uses_the_servers_clock_not_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first_call: str
) -> None:
    """With this machine's clock 60 s ahead, a cancel still means "now" to the API.

    It used to send our clock as `stopAtTime`: a running job was not cancelled
    (its stop time only moved a minute on), a scheduled one failed with 400.
    """
    (tmp_path / "a.png").write_bytes(base64.b64decode(png_data_url().split(",", 1)[1]))
    async with LocalNexus(static_dir=tmp_path) as server:
        # Items whose fetch takes long, so the running job is still running when cancelled.
        server.inject_fault(method="GET", path="/static/", status=None, latency=30, times=None)
        running_options = job_options(server, urls=[server.static_url("a.png")] * 2)
        scheduled_options = job_options(server, start_at_time=10**13 - 1)
        async with AsyncClient(server.secret_key, base_url=server.base_url) as setup:
            jobs = setup.get_project(server.project_id).batch.jobs
            running = await jobs.create("running", running_options)
            scheduled = await jobs.create("scheduled", scheduled_options)
        real_time = time.time
        monkeypatch.setattr(time, "time", lambda: real_time() + 60)
        async with AsyncClient(server.secret_key, base_url=server.base_url) as client:
            jobs = client.get_project(server.project_id).batch.jobs
            if first_call == "list":  # the API's clock is known from an answer's Date
                await jobs.list()
            for job in (running, scheduled):
                await jobs.cancel(job.id)
                with anyio.fail_after(10):
                    final = await jobs.wait_until_done(
                        job.id, interval=0.05, raise_exception_if=None
                    )
                assert final.status.overview is JobStatusOverview.FAILED, job.name
                assert final.status.cancelled_at is not None, job.name
                assert final.status.cancelled_at <= int(real_time() * 1000)


@pytest.mark.parametrize("status", [503, 429])
async def test_delete_of_a_job_that_never_existed_is_not_found_after_a_refusal(
    jobs: Jobs, nexus: LocalNexus, status: int
) -> None:
    """A 503 or 429 says the first attempt was not carried out: the 404 is the truth."""
    never = "batchjob_00000000-0000-4000-8000-000000000000"
    nexus.inject_fault(method="DELETE", path=never, status=status, times=1)
    with pytest.raises(NotFoundError) as info:
        await jobs.delete(never)
    assert info.value.attempts == 2


@pytest.mark.parametrize("fault", ["dropped", "502"])
async def test_delete_whose_first_attempt_took_effect_reports_deleted(
    jobs: Jobs, nexus: LocalNexus, fault: str
) -> None:
    job = await quiet_job(jobs, nexus)
    if fault == "dropped":
        nexus.inject_fault(method="DELETE", path=job.id, drop=True, after_handling=True)
    else:
        nexus.inject_fault(method="DELETE", path=job.id, status=502, after_handling=True)
    deleted = await jobs.delete(job.id)
    assert deleted.deleted
    assert deleted.id == job.id
    with pytest.raises(NotFoundError):
        await jobs.get(job.id)
