"""Request ids, raw responses, `with_options` views, `on_retry`, and one client per event loop.

Against the local server over real HTTP, on both anyio backends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from nexus_async import (
    AsyncClient,
    Backoff,
    EventLoopError,
    Jobs,
    NotFoundError,
    RequestTimeoutError,
    RetryEvent,
    RetryPolicy,
    ServerError,
    ValidationError,
)
from nexus_async.server import LocalNexus

from .conftest import FAST_RETRY

MISSING_JOB = "batchjob_00000000-0000-0000-0000-000000000000"


# ---------------------------------------------------------------- request ids, raw responses


async def test_not_found_carries_the_servers_request_id(jobs: Jobs) -> None:
    with pytest.raises(NotFoundError) as caught:
        await jobs.get(MISSING_JOB)
    error = caught.value
    assert error.response is not None
    assert error.request_id == error.response.headers["X-Request-Id"]
    assert error.request_id.startswith("req_")


async def test_every_answer_has_its_own_request_id(jobs: Jobs, nexus: LocalNexus) -> None:
    # An injected fault is answered by the server's outer layer: it has an id too.
    nexus.inject_fault("GET", "/batch/jobs$", status=503, times=None)
    with pytest.raises(ServerError) as caught:
        await jobs.list()
    assert caught.value.attempts == FAST_RETRY.attempts
    assert caught.value.request_id is not None
    nexus.clear_faults()
    first = await jobs.with_raw_response.list()
    second = await jobs.with_raw_response.list()
    ids = {caught.value.request_id, first[1].headers["X-Request-Id"]}
    ids.add(second[1].headers["X-Request-Id"])
    assert len(ids) == 3


async def test_raw_response_returns_the_model_and_its_response(jobs: Jobs) -> None:
    page, response = await jobs.with_raw_response.list({"limit": 5})
    assert page.data == []
    assert response.status_code == 200
    assert response.json()["data"] == []
    assert response.headers["X-Request-Id"].startswith("req_")
    assert response.request.headers["Secret-Key"] == "[redacted]"


async def test_raw_response_only_wraps_calls_with_one_answer(jobs: Jobs) -> None:
    with pytest.raises(AttributeError):
        jobs.with_raw_response.iter  # noqa: B018 (an async generator, many answers)
    with pytest.raises(AttributeError):
        jobs.with_raw_response._fetch  # noqa: B018
    # Errors pass through unchanged.
    with pytest.raises(NotFoundError):
        await jobs.with_raw_response.get(MISSING_JOB)


# ------------------------------------------------------------------ with_options, on_retry


async def test_a_views_timeout_applies_to_its_calls_only(
    client: AsyncClient, nexus: LocalNexus
) -> None:
    nexus.inject_fault("GET", "/batch/jobs$", status=None, latency=1.0, times=None)
    quick = client.with_options(timeout=0.2).get_project(nexus.project_id).batch.jobs
    with anyio.fail_after(10):
        with pytest.raises(RequestTimeoutError):
            await quick.list()
        page = await client.get_project(nexus.project_id).batch.jobs.list()
    assert page.data == []
    # One pool and one set of counts: the view's attempts are the client's.
    assert client.diagnostics().requests_sent == FAST_RETRY.attempts + 1


async def test_a_view_queues_under_the_clients_connection_limit(nexus: LocalNexus) -> None:
    nexus.inject_fault("GET", "/batch/jobs$", status=None, latency=0.3, times=None)
    async with AsyncClient(
        nexus.secret_key, base_url=nexus.base_url, retry=FAST_RETRY, max_connections=1
    ) as client:
        view = client.with_options(timeout=10)
        calls = [
            client.get_project(nexus.project_id).batch.jobs.list,
            view.get_project(nexus.project_id).batch.jobs.list,
        ]
        started = anyio.current_time()
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for call in calls:
                    tg.start_soon(call)
        took = anyio.current_time() - started
    # One connection for both client objects: the second answer's 0.3 s began after the first.
    assert took >= 0.6 - 0.05
    assert client.diagnostics().requests_sent == 2


async def test_a_view_shares_the_parents_lifecycle(client: AsyncClient, nexus: LocalNexus) -> None:
    view = client.with_options(retry=RetryPolicy(attempts=1))
    assert view.base_url == client.base_url
    with pytest.raises(ValidationError, match="parent"):
        await view.aclose()
    with pytest.raises(ValidationError, match="parent"):
        async with view:
            pass
    await client.aclose()
    with pytest.raises(Exception, match="closed"):
        await view.get_project(nexus.project_id).batch.jobs.list()


@pytest.mark.parametrize(
    ("options", "named"),
    [({"timeout": -1}, "timeout"), ({"timeout": "5"}, "timeout"), ({"retry": 3}, "retry")],
)
async def test_view_options_are_validated(
    client: AsyncClient, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValidationError, match=named):
        client.with_options(**options)


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def test_many_views_grow_no_memory(client: AsyncClient, nexus: LocalNexus) -> None:
    def make(count: int) -> None:
        for _ in range(count):
            client.with_options(timeout=5).get_project(nexus.project_id)

    make(5_000)  # warm caches and allocator pools
    gc.collect()
    before = _rss_bytes()
    make(100_000)
    gc.collect()
    grown = _rss_bytes() - before
    assert grown < 5 * 1024 * 1024, f"RSS grew by {grown / 1e6:.1f} MB"


def test_on_retry_must_be_callable() -> None:
    with pytest.raises(ValidationError, match="on_retry"):
        RetryPolicy(on_retry="print")  # type: ignore[arg-type]


@pytest.mark.parametrize("is_async", [False, True])
async def test_on_retry_is_told_each_retry(
    client: AsyncClient, nexus: LocalNexus, is_async: bool
) -> None:
    events: list[RetryEvent] = []

    async def record_async(event: RetryEvent) -> None:
        events.append(event)

    policy = RetryPolicy(
        attempts=4,
        backoff=Backoff(initial=0.01, maximum=0.02, jitter=0),
        on_retry=record_async if is_async else events.append,
    )
    nexus.inject_fault("GET", "/batch/jobs$", status=503, times=2)
    page = await client.with_options(retry=policy).get_project(nexus.project_id).batch.jobs.list()
    assert page.data == []
    assert [(e.attempt, e.reason, e.method) for e in events] == [
        (1, "HTTP 503", "GET"),
        (2, "HTTP 503", "GET"),
    ]
    assert [e.delay for e in events] == [pytest.approx(0.01), pytest.approx(0.02)]
    assert all(isinstance(e.error, ServerError) and "?" not in e.url for e in events)


# ----------------------------------------------------------------- one client, one loop


@pytest.fixture(params=["asyncio", "trio"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[BlockingPortal, LocalNexus]]:
    """A local server on its own thread's event loop (the tests' loops come and go)."""
    with start_blocking_portal(request.param) as portal:
        nexus = LocalNexus()
        with portal.wrap_async_context_manager(nexus):
            yield portal, nexus


def _client(nexus: LocalNexus) -> AsyncClient:
    return AsyncClient(nexus.secret_key, base_url=nexus.base_url, retry=FAST_RETRY)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_client_used_on_a_second_loop_says_so(
    server: tuple[BlockingPortal, LocalNexus], backend: str
) -> None:
    _, nexus = server
    client = _client(nexus)

    async def list_jobs() -> None:
        await client.get_project(nexus.project_id).batch.jobs.list()

    anyio.run(list_jobs, backend=backend)
    with pytest.raises(EventLoopError, match="one AsyncClient per event loop"):
        anyio.run(list_jobs, backend=backend)
    # Cleanup is refused elsewhere too: it would run on a loop the pool does not belong to.
    with pytest.raises(EventLoopError):
        anyio.run(client.aclose, backend=backend)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_client_used_from_another_thread_says_so(
    server: tuple[BlockingPortal, LocalNexus], backend: str
) -> None:
    _, nexus = server
    with start_blocking_portal(backend) as home:
        client = home.call(_client, nexus)
        jobs = client.get_project(nexus.project_id).batch.jobs
        home.call(jobs.list)
        caught: list[BaseException] = []

        def elsewhere() -> None:
            try:
                anyio.run(jobs.list, backend=backend)
            except BaseException as exc:
                caught.append(exc)

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert len(caught) == 1
        assert isinstance(caught[0], EventLoopError)
        # On its own loop the client still works, and closes cleanly.
        assert home.call(jobs.list).data == []
        home.call(client.aclose)


async def test_an_open_client_is_bound_to_its_loop(nexus: LocalNexus) -> None:
    # Entering binds it: its task group lives on this loop.
    async with _client(nexus) as client:
        assert client._http._shared.loop is not None  # the loop it was entered on
        await client.get_project(nexus.project_id).batch.jobs.list()


def test_an_unused_client_is_bound_to_no_loop() -> None:
    client = AsyncClient("sk_unused", base_url="http://127.0.0.1:9")
    assert client._http._shared.loop is None
    anyio.run(client.aclose)  # nothing ran anywhere: closing is fine on any loop
