"""The HTTP layer through a scripted transport: retries, error mapping, decoding, secrets."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from anyio.abc import ByteStream, SocketAttribute

import nexus_async
from nexus_async import HTTPStats, Job, TransportStats, errors
from nexus_async._http import HTTPCore, Retry

from . import wire
from .mock import FAST_RETRY, KEY, PROJECT, Script, body, error, ok

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
        with pytest.raises(errors.NexusError):  # the HTTP layer's rule, without the lookup
            await client.get_project(PROJECT).batch.jobs.create("n", OPTIONS, recover=False)
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


# ---------------------------------------------- a raw loopback server that misbehaves

Handler = Callable[[ByteStream], Awaitable[None]]


async def read_head(stream: ByteStream) -> bytes:
    """The request's head (up to the blank line); the body, if any, is left unread."""
    head = b""
    while b"\r\n\r\n" not in head:
        if len(head) > 65536:
            raise AssertionError("request head too long")
        head += await stream.receive(4096)
    return head


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """A loopback TCP server answering every connection with `handler`; yields its base URL."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)

    async def serve(stream: ByteStream) -> None:
        async with stream:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.EndOfStream):
                await handler(stream)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            tg.cancel_scope.cancel()


def raw_client(base_url: str, **kwargs: Any) -> nexus_async.AsyncClient:
    """The SDK's own transport (no http_client) pointed at a raw server."""
    kwargs.setdefault("retry", FAST_RETRY)
    return nexus_async.AsyncClient(KEY, base_url=base_url, **kwargs)


def _core(base_url: str, **kwargs: Any) -> HTTPCore:
    """The HTTP layer on its own, with the SDK's transport, for what needs no resource."""
    options: dict[str, Any] = {
        "secret_key": KEY,
        "base_url": base_url,
        "timeout": httpx.Timeout(5.0),
        "retry": FAST_RETRY,
        "http_client": None,
        "max_connections": 4,
        "max_in_flight": 4,
        **kwargs,
    }
    return HTTPCore(**options)


JOB_BODY = json.dumps(wire.JOB).encode()


async def drip_body(stream: ByteStream) -> None:
    """Headers at once, then the body a byte at a time, each well inside the read timeout."""
    await read_head(stream)
    await stream.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(JOB_BODY)
    )
    for byte in JOB_BODY:
        await stream.send(bytes([byte]))
        await anyio.sleep(0.1)


async def drip_head(stream: ByteStream) -> None:
    """The status line and headers a byte at a time."""
    await read_head(stream)
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"X-Pad: x\r\n" * 100
    for byte in head:
        await stream.send(bytes([byte]))
        await anyio.sleep(0.1)


async def stall_after_head(stream: ByteStream) -> None:
    """Headers promising a body that never comes."""
    await read_head(stream)
    await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    await anyio.sleep_forever()


@pytest.mark.parametrize(
    "handler", [drip_body, drip_head, stall_after_head], ids=["body", "headers", "stall"]
)
async def test_a_slow_drip_ends_within_the_call_bound(handler: Handler) -> None:
    """Each byte beats the 0.5 s read timeout; the exchange's own deadline still ends it."""
    policy = nexus_async.RetryPolicy(
        attempts=2, total_time=1.0, backoff=nexus_async.Backoff(initial=0.01, maximum=0.01)
    )
    async with raw_server(handler) as url, raw_client(url, timeout=0.5, retry=policy) as client:
        jobs = client.get_project(PROJECT).batch.jobs
        t0 = anyio.current_time()
        with anyio.fail_after(10), pytest.raises(errors.RequestTimeoutError) as info:
            await jobs.get(JOB_ID)
        took = anyio.current_time() - t0
    assert info.value.attempts == 2
    # The bound: the 1 s retry budget plus one 0.5 s exchange, and room for a loaded
    # machine. Before exchanges had a deadline, a drip took over 100 s here.
    assert took < 1.0 + 0.5 + 1.5


async def test_a_half_sent_upload_ends_within_the_call_bound() -> None:
    """The server takes the head, then stops reading: the body stalls mid-way."""

    async def stop_reading(stream: ByteStream) -> None:
        await read_head(stream)
        await anyio.sleep_forever()

    size = 32 << 20  # far more than the socket buffers hold
    chunk = b"x" * (1 << 20)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(size // len(chunk)):
            yield chunk

    policy = nexus_async.RetryPolicy(
        attempts=2, total_time=1.0, backoff=nexus_async.Backoff(initial=0.01, maximum=0.01)
    )
    async with raw_server(stop_reading) as url:
        http = _core(url, timeout=httpx.Timeout(0.5), retry=policy)
        t0 = anyio.current_time()
        with anyio.fail_after(10), pytest.raises(errors.RequestTimeoutError) as info:
            await http.upload(
                "PUT", url + "/upload?sig=s", headers={"Content-Length": str(size)}, content=body
            )
        took = anyio.current_time() - t0
        await http.aclose()
    assert info.value.attempts == 2
    assert "sig=" not in info.value.url
    assert took < 1.0 + 0.5 + 1.5


async def test_a_drip_within_the_deadline_is_fine() -> None:
    async def quick_drip(stream: ByteStream) -> None:
        await read_head(stream)
        await stream.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(JOB_BODY)
        )
        for start in range(0, len(JOB_BODY), 200):
            await stream.send(JOB_BODY[start : start + 200])
            await anyio.lowlevel.checkpoint()

    async with raw_server(quick_drip) as url, raw_client(url, timeout=2.0) as client:
        with anyio.fail_after(10):
            job = await client.get_project(PROJECT).batch.jobs.get(JOB_ID)
    assert job.id == JOB_ID


# ----------------------------------------------------------------- hostile bodies

DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE_INT = b'{"id": 1' + b"0" * 5000 + b"}"


@pytest.mark.parametrize("content", [DEEP, HUGE_INT], ids=["deep", "huge-int"])
async def test_a_hostile_body_fails_only_the_call_it_answers(content: bytes) -> None:
    other = "batchjob_other"

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(other):
            return ok(wire.job(id=other))
        return httpx.Response(200, content=content)

    script = Script(*[answer] * 2)
    results: dict[str, Any] = {}
    async with script.client() as client:
        jobs = client.get_project(PROJECT).batch.jobs

        async def get(job_id: str) -> None:
            try:
                results[job_id] = await jobs.get(job_id)
            except errors.NexusError as exc:
                results[job_id] = exc

        async with anyio.create_task_group() as tg:
            tg.start_soon(get, JOB_ID)
            tg.start_soon(get, other)
    assert isinstance(results[JOB_ID], errors.ResponseDecodeError)
    assert results[other].id == other


@pytest.mark.parametrize("status", [400, 503])
async def test_a_hostile_error_body_is_still_the_status_error(status: int) -> None:
    script = Script(*[httpx.Response(status, content=DEEP)] * 4)
    async with script.client() as client:
        with pytest.raises(errors.status_error_class(status)) as info:
            await client.get_project(PROJECT).batch.jobs.get(JOB_ID)
    assert info.value.status == status


async def test_a_hostile_body_fails_a_wait_typed() -> None:
    script = Script(httpx.Response(200, content=DEEP))
    async with script.client() as client:
        with pytest.raises(errors.ResponseDecodeError):
            await client.get_project(PROJECT).batch.jobs.wait_until_done(JOB_ID, interval=0.01)


async def test_a_body_declared_larger_than_the_limit_is_not_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("nexus_async._http.MAX_BODY_BYTES", 100)
    script = Script(ok(wire.JOB))
    async with script.client() as client:
        with pytest.raises(errors.ResponseDecodeError, match="larger than 100 bytes"):
            await client.get_project(PROJECT).batch.jobs.get(JOB_ID)


async def test_an_endless_undeclared_body_is_read_no_further_than_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("nexus_async._http.MAX_BODY_BYTES", 10_000)

    async def endless(stream: ByteStream) -> None:
        await read_head(stream)
        await stream.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"[" * 1000
        for _ in range(100_000):  # bounded; the client stops reading long before
            await stream.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    policy = nexus_async.RetryPolicy(attempts=1)
    async with raw_server(endless) as url, raw_client(url, timeout=5.0, retry=policy) as client:
        with anyio.fail_after(4), pytest.raises(errors.ResponseDecodeError, match="10000 bytes"):
            await client.get_project(PROJECT).batch.jobs.get(JOB_ID)


# ------------------------------------------------------- closing with calls under way


async def test_aclose_with_a_call_in_flight_raises_client_closed() -> None:
    arrived = anyio.Event()

    async def hang(stream: ByteStream) -> None:
        await read_head(stream)
        arrived.set()
        await anyio.sleep_forever()

    outcome: list[BaseException] = []
    async with raw_server(hang) as url:
        client = raw_client(url)
        jobs = client.get_project(PROJECT).batch.jobs

        async def get() -> None:
            try:
                await jobs.get(JOB_ID)
            except Exception as exc:
                outcome.append(exc)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(get)
                await arrived.wait()
                await client.aclose()
    assert len(outcome) == 1
    assert isinstance(outcome[0], errors.ClientClosedError), repr(outcome[0])


async def test_aclose_between_retries_raises_client_closed_at_once() -> None:
    first = anyio.Event()

    def unavailable(request: httpx.Request) -> httpx.Response:
        first.set()
        return error(503)

    slow_retry = nexus_async.RetryPolicy(
        attempts=3, total_time=60.0, backoff=nexus_async.Backoff(initial=30.0, maximum=30.0)
    )
    script = Script(unavailable, ok(wire.JOB))
    client = script.client(retry=slow_retry)
    outcome: list[BaseException] = []

    async def get() -> None:
        try:
            await client.get_project(PROJECT).batch.jobs.get(JOB_ID)
        except Exception as exc:
            outcome.append(exc)

    with anyio.fail_after(5):  # the backoff alone would sleep 22.5 s or more
        async with anyio.create_task_group() as tg:
            tg.start_soon(get)
            await first.wait()
            await client.aclose()
    assert len(outcome) == 1
    assert isinstance(outcome[0], errors.ClientClosedError), repr(outcome[0])
    assert len(script.requests) == 1


async def test_aclose_of_the_own_transport_between_retries_is_client_closed() -> None:
    """The SDK's own httpx client is closed by aclose(): the next attempt must not use it."""
    served = anyio.Event()

    async def unavailable(stream: ByteStream) -> None:
        await read_head(stream)
        await stream.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        served.set()
        await anyio.sleep_forever()

    slow_retry = nexus_async.RetryPolicy(
        attempts=3, total_time=60.0, backoff=nexus_async.Backoff(initial=0.3, maximum=0.3)
    )
    outcome: list[BaseException] = []
    async with raw_server(unavailable) as url:
        client = raw_client(url, retry=slow_retry)

        async def get() -> None:
            try:
                await client.get_project(PROJECT).batch.jobs.get(JOB_ID)
            except Exception as exc:
                outcome.append(exc)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(get)
                await served.wait()
                await client.aclose()
    assert len(outcome) == 1
    assert isinstance(outcome[0], errors.ClientClosedError), repr(outcome[0])


# ------------------------------------------------------------------------ diagnostics


async def test_stats_count_what_is_sent_in_flight_and_pooled() -> None:
    arrived, release = anyio.Event(), anyio.Event()

    async def held(stream: ByteStream) -> None:
        await read_head(stream)
        arrived.set()
        await release.wait()
        await stream.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(JOB_BODY), JOB_BODY)
        )

    async with raw_server(held) as url:
        http = _core(url)
        assert http.stats() == HTTPStats(
            requests_sent=0, waiting=0, in_flight=0, transport=TransportStats(0, 0, 0)
        )
        got: list[Job] = []

        async def get() -> None:
            got.append(await http.request("GET", "/x", into=Job, retry=Retry.IDEMPOTENT))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(get)
                await arrived.wait()
                during = http.stats()
                release.set()
        await http.aclose()
    assert during == HTTPStats(
        requests_sent=1, waiting=0, in_flight=1, transport=TransportStats(1, 1, 1)
    )
    assert http.stats() == HTTPStats(
        requests_sent=1, waiting=0, in_flight=0, transport=TransportStats(1, 0, 1)
    )
    assert got[0].id == JOB_ID


async def test_stats_count_calls_waiting_for_the_in_flight_limit() -> None:
    arrived, release = anyio.Event(), anyio.Event()

    async def held(stream: ByteStream) -> None:
        await read_head(stream)
        arrived.set()
        await release.wait()
        await stream.send(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(JOB_BODY), JOB_BODY)
        )

    async with raw_server(held) as url:
        http = _core(url, max_connections=1, max_in_flight=1)

        async def get() -> None:
            await http.request("GET", "/x", into=Job, retry=Retry.IDEMPOTENT)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(get)
                await arrived.wait()
                tg.start_soon(get)
                tg.start_soon(get)
                for _ in range(100):  # let both reach the limit (bounded)
                    if http.stats().waiting == 2:
                        break
                    await anyio.lowlevel.checkpoint()
                waiting = http.stats().waiting
                release.set()
        await http.aclose()
    assert waiting == 2
    assert http.stats().requests_sent == 3
    assert http.stats().waiting == 0
