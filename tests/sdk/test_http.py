"""The HTTP layer through a scripted transport: retries, error mapping, decoding, secrets."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx
import pytest

import nexus_async
from nexus_async import errors

from . import wire
from .mock import KEY, PROJECT, Script, body, error, ok

JOB_ID = wire.JOB["id"]
OPTIONS = {
    "dataset_id": "dataset_1",
    "webhook_id": "webhook_1",
    "deployment_id": "deploy_1",
}


def connect_error() -> httpx.ConnectError:
    return httpx.ConnectError("connection refused")


async def test_sends_auth_identity_and_json() -> None:
    script = Script(ok(wire.JOB))
    async with script.client() as client:
        job = await client.get_project(PROJECT).batch.jobs.create("n", OPTIONS)
    assert job.id == JOB_ID
    (request,) = script.requests
    assert request.method == "POST"
    assert request.url.path == f"/projects/{PROJECT}/batch/jobs"
    assert request.headers["Secret-Key"] == KEY
    assert request.headers["User-Agent"].startswith(f"nexus-async/{nexus_async.__version__}")
    assert request.headers["Content-Type"] == "application/json"
    assert body(request) == {
        "name": "n",
        "spec": {
            "datasetId": "dataset_1",
            "deployment": {"kind": "ExistingDeployment", "deploymentId": "deploy_1"},
            "resultDelivery": {"destinations": [{"kind": "Webhook", "webhookId": "webhook_1"}]},
        },
    }


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_get_retries_server_errors(status: int) -> None:
    script = Script(error(status), ok(wire.JOB))
    async with script.client() as client:
        job = await client.get_project(PROJECT).batch.jobs.get(JOB_ID)
    assert job.id == JOB_ID
    assert len(script.requests) == 2


async def test_get_retries_connection_errors_and_gives_up_typed() -> None:
    script = Script(*(httpx.ReadError("reset") for _ in range(4)))
    async with script.client() as client:
        with pytest.raises(errors.NexusConnectionError) as info:
            await client.get_project(PROJECT).batch.jobs.get(JOB_ID)
    assert info.value.attempts == 4
    assert len(script.requests) == 4
    assert isinstance(info.value.__cause__, httpx.ReadError)


async def test_429_honours_retry_after() -> None:
    script = Script(error(429, "slow down", **{"Retry-After": "0.3"}), ok(wire.JOB))
    async with script.client() as client:
        t0 = anyio.current_time()
        await client.get_project(PROJECT).batch.jobs.get(JOB_ID)
        waited = anyio.current_time() - t0
    assert len(script.requests) == 2
    assert waited >= 0.29


async def test_429_beyond_the_patience_is_raised_with_its_hint() -> None:
    script = Script(error(429, "slow down", **{"Retry-After": "3600"}))
    async with script.client() as client:
        with pytest.raises(errors.RateLimitedError) as info:
            await client.get_project(PROJECT).batch.jobs.get(JOB_ID)
    assert info.value.retry_after == 3600
    assert len(script.requests) == 1


@pytest.mark.parametrize("reply", [error(500), error(503), error(429), httpx.ReadTimeout("slow")])
async def test_create_that_reached_the_server_is_not_retried(reply: Any) -> None:
    script = Script(reply, ok(wire.JOB))
    async with script.client() as client:
        with pytest.raises(errors.NexusError):
            await client.get_project(PROJECT).batch.jobs.create("n", OPTIONS)
    assert len(script.requests) == 1


async def test_create_that_never_connected_is_retried() -> None:
    script = Script(connect_error(), httpx.ConnectTimeout("t"), ok(wire.JOB))
    async with script.client() as client:
        job = await client.get_project(PROJECT).batch.jobs.create("n", OPTIONS)
    assert job.id == JOB_ID
    assert len(script.requests) == 3


async def test_cancel_patch_is_retried_and_sends_stop_time() -> None:
    # Nothing answered yet: the job is read first, for the API's clock (its Date).
    date = {"Date": "Tue, 01 Dec 2026 10:00:00 GMT"}
    script = Script(ok(wire.JOB, headers=date), error(503), ok(wire.JOB))
    async with script.client() as client:
        await client.get_project(PROJECT).batch.jobs.cancel(JOB_ID)
    assert [r.method for r in script.requests] == ["GET", "PATCH", "PATCH"]
    sent = body(script.requests[1])
    assert set(sent) == {"spec"}
    assert set(sent["spec"]) == {"stopAtTime"}
    assert isinstance(sent["spec"]["stopAtTime"], int)
    assert 0 <= sent["spec"]["stopAtTime"] - 1_796_119_200_000 < 60_000  # that Date, in ms


async def test_delete_whose_first_answer_was_lost_reports_deleted() -> None:
    script = Script(error(502), error(404, "no such job"))
    async with script.client() as client:
        result = await client.get_project(PROJECT).batch.jobs.delete(JOB_ID)
    assert result.deleted
    assert result.id == JOB_ID


async def test_delete_of_a_missing_job_on_first_try_is_not_found() -> None:
    script = Script(error(404, "no such job"))
    async with script.client() as client:
        with pytest.raises(errors.NotFoundError):
            await client.get_project(PROJECT).batch.jobs.delete(JOB_ID)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (401, errors.UnauthorizedError),
        (403, errors.ForbiddenError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (413, errors.PayloadTooLargeError),
        (418, errors.APIStatusError),
        (500, errors.ServerError),
    ],
)
async def test_status_maps_to_its_class(status: int, cls: type[errors.APIStatusError]) -> None:
    replies = [error(status, "the server says no")] * (4 if status >= 500 else 1)
    script = Script(*replies)
    async with script.client() as client:
        with pytest.raises(cls) as info:
            await client.get_project(PROJECT).batch.jobs.get(JOB_ID)
    exc = info.value
    assert type(exc) is cls
    assert exc.status == status
    assert exc.message == "the server says no"
    assert exc.code == "E"
    assert exc.method == "GET"
    assert exc.url == f"http://nexus.test/projects/{PROJECT}/batch/jobs/{JOB_ID}"
    assert exc.response is not None
    assert exc.response.status_code == status
    assert "the server says no" in str(exc)


async def test_error_without_json_body_still_says_something() -> None:
    script = Script(httpx.Response(400, text="<html>bad gateway thing</html>"))
    async with script.client() as client:
        with pytest.raises(errors.BadRequestError, match="bad gateway thing"):
            await client.get_project(PROJECT).batch.jobs.get(JOB_ID)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="not json"),
        httpx.Response(200, text='{"id": "batchjob_1", "obj'),
        httpx.Response(200, json={"id": "batchjob_1"}),
        httpx.Response(200, json=[1, 2]),
        httpx.Response(200, json=wire.job(createDate="yesterday")),
    ],
)
async def test_bad_bodies_raise_decode_error(response: httpx.Response) -> None:
    script = Script(response)
    async with script.client() as client:
        with pytest.raises(errors.ResponseDecodeError) as info:
            await client.get_project(PROJECT).batch.jobs.get(JOB_ID)
    assert info.value.status == 200


async def test_secret_never_in_repr_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="nexus_async")
    script = Script(error(503), error(401, "bad key"))
    client = script.client()
    async with client:
        project = client.get_project(PROJECT)
        with pytest.raises(errors.UnauthorizedError) as info:
            await project.batch.jobs.get(JOB_ID)
        texts = [
            repr(client),
            str(client),
            repr(project),
            repr(project.batch),
            str(info.value),
            repr(info.value),
            caplog.text,
        ]
    assert caplog.records, "the retry should have been logged"
    for text in texts:
        assert KEY not in text


async def test_closed_client_refuses_work() -> None:
    script = Script()
    client = script.client()
    async with client:
        jobs = client.get_project(PROJECT).batch.jobs
    with pytest.raises(errors.ClientClosedError):
        await jobs.get(JOB_ID)
    with pytest.raises(errors.ClientClosedError):
        client.get_project(PROJECT)
    with pytest.raises(errors.ClientClosedError):
        async with client:
            pass
    assert script.requests == []


async def test_passed_in_http_client_is_not_closed() -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(Script(ok(wire.JOB))))
    async with nexus_async.AsyncClient(KEY, base_url="http://x", http_client=http) as client:
        await client.get_project(PROJECT).batch.jobs.get(JOB_ID)
    assert not http.is_closed
    await http.aclose()


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATATURE_SECRET_KEY", raising=False)
    with pytest.raises(errors.ValidationError, match="DATATURE_SECRET_KEY"):
        nexus_async.AsyncClient()


def test_key_and_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATATURE_SECRET_KEY", "k-from-env")
    monkeypatch.setenv("DATATURE_API_BASE_URL", "http://127.0.0.1:9/")
    client = nexus_async.AsyncClient()
    assert client.base_url == "http://127.0.0.1:9"
    monkeypatch.delenv("DATATURE_API_BASE_URL")
    assert nexus_async.AsyncClient().base_url == "https://api.datature.io"


def test_bare_project_id_gets_prefix() -> None:
    client = Script().client()
    assert client.get_project("abc123").project_id == "proj_abc123"
    assert client.get_project("proj_abc123").project_id == "proj_abc123"


async def test_exceptions_leave_the_client_block_unwrapped() -> None:
    with pytest.raises(errors.NotFoundError):
        async with Script(error(404)).client() as client:
            await client.get_project(PROJECT).batch.jobs.get(JOB_ID)
    with pytest.raises(KeyError):
        async with Script().client():
            raise KeyError("mine")


async def test_outer_cancel_passes_through_the_client_block() -> None:
    t0 = anyio.current_time()
    with anyio.move_on_after(0.1) as scope:
        async with Script().client():
            await anyio.sleep(5)
    assert scope.cancelled_caught
    assert anyio.current_time() - t0 < 1


async def test_a_429_too_long_to_honour_does_not_stall_other_calls() -> None:
    script = Script(error(429, "come back in an hour", **{"Retry-After": "3600"}), ok(wire.JOB))
    async with script.client() as client:
        jobs = client.get_project(PROJECT).batch.jobs
        with pytest.raises(errors.RateLimitedError):
            await jobs.get(JOB_ID)
        with anyio.fail_after(1):
            assert (await jobs.get(JOB_ID)).id == JOB_ID


async def test_a_429_pauses_the_whole_client() -> None:
    script = Script(error(429, "slow down", **{"Retry-After": "0.3"}), ok(wire.JOB), ok(wire.JOB))
    async with script.client() as client:
        jobs = client.get_project(PROJECT).batch.jobs
        finished: dict[str, float] = {}
        t0 = anyio.current_time()

        async def get(name: str, delay: float) -> None:
            await anyio.sleep(delay)
            await jobs.get(JOB_ID)
            finished[name] = anyio.current_time() - t0

        async with anyio.create_task_group() as tg:
            tg.start_soon(get, "rate-limited", 0)
            tg.start_soon(get, "bystander", 0.05)
    assert finished["bystander"] >= 0.29  # waited out the pause it did not trigger
    assert finished["rate-limited"] >= 0.29
