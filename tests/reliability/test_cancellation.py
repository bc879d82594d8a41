"""Cancelling any SDK call at any point is prompt and leaves nothing behind.

For every call, hypothesis picks when to cancel it (an outer `move_on_after`) while
the server is slow or failing; afterwards the call must have returned promptly, the
client's pool must hold no connection in use, no task of the client (log prefetch,
shared poller) may still run, and the client must still work. Then one client is
used by 1,000 coroutines at once, and never opens more connections than it is
allowed.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import warnings
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.lowlevel
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexus_async import AsyncClient, Backoff, Batch, RetryPolicy, errors, signing
from nexus_async._datasets import CHUNK_BYTES, _item_line
from nexus_async.server import LocalNexus

from ..sdk.live import assert_pool_idle, pool_count
from ..support import DEAD_ENDPOINT, png_data_url, sdk_tasks
from .support import CALLS, Call, Ctx, batch_of, new_ctx, sdk_client

PROMPT = 0.5  # seconds a cancelled call may take to return
LATENCY = 0.1  # seconds the server takes per request in the "slow" scenario
PATIENT = RetryPolicy(attempts=20, total_time=30.0, backoff=Backoff(initial=0.03, maximum=0.1))


async def _consume_all_logs(batch: Batch, ctx: Ctx) -> object:
    return [e async for e in batch.jobs.get_all_logs(ctx.job_id, {"max_entries": 5})]


async def _consume_iter(batch: Batch, ctx: Ctx) -> object:
    return [j async for j in batch.jobs.iter(page_size=1)]


async def _consume_watch(batch: Batch, ctx: Ctx) -> object:
    return [j async for j in batch.jobs.watch(ctx.job_id, interval=0.05, timeout=5)]


async def _consume_as_completed(batch: Batch, ctx: Ctx) -> object:
    async with batch.jobs.as_completed([ctx.job_id], interval=0.05, timeout=5) as finished:
        return [j async for j in finished]


async def _four_jobs(ctx: Ctx) -> None:
    """Enough jobs that the shared poller reads list pages rather than one GET each."""
    await CALLS["jobs.wait_until_done"].setup(ctx)
    async with sdk_client(ctx.nexus.base_url, ctx.secret_key) as client:
        jobs = batch_of(client, ctx).jobs
        ctx.job_ids = [ctx.job_id] + [
            (await jobs.create(f"j{i}", ctx.options)).id for i in range(3)
        ]


async def _wait_all(batch: Batch, ctx: Ctx) -> object:
    return await batch.jobs.wait_all(ctx.job_ids, interval=0.05, timeout=5)


async def _consume_follow(batch: Batch, ctx: Ctx) -> object:
    return [e async for e in batch.jobs.follow_logs(ctx.job_id, interval=0.05)]


async def _from_items(batch: Batch, ctx: Ctx) -> object:
    return await batch.datasets.create_from_items("cancel", [png_data_url()] * 3)


async def _dataset_wait(batch: Batch, ctx: Ctx) -> object:
    return await batch.datasets.wait_until_done(ctx.dataset_id, interval=0.05, timeout=5)


def _extra(name: str, setup_from: str, invoke: object) -> Call:
    base = CALLS[setup_from]
    return Call(name, base.method, base.path, base.setup, invoke, base.rule)  # type: ignore[arg-type]


EXTRA_CALLS = [
    _extra("jobs.iter", "jobs.list", _consume_iter),
    _extra("jobs.get_all_logs(consumed)", "jobs.get_all_logs", _consume_all_logs),
    _extra("jobs.watch", "jobs.wait_until_done", _consume_watch),
    _extra("jobs.as_completed", "jobs.wait_until_done", _consume_as_completed),
    Call("jobs.wait_all", "GET", CALLS["jobs.list"].path, _four_jobs, _wait_all, "poll"),
    _extra("jobs.follow_logs", "jobs.wait_until_done", _consume_follow),
    _extra("datasets.create_from_items", "datasets.create", _from_items),
    _extra("datasets.wait_until_done", "datasets.get", _dataset_wait),
    _extra("datasets.delete", "datasets.get", lambda b, c: b.datasets.delete(c.dataset_id)),
    _extra(
        "webhooks.update",
        "webhooks.get",
        lambda b, c: b.webhooks.update(c.webhook_id, {"endpoint": DEAD_ENDPOINT + "/v2"}),
    ),
    _extra(
        "webhooks.update_secret",
        "webhooks.get",
        lambda b, c: b.webhooks.update_secret(c.webhook_id, signing.generate_secret()),
    ),
    _extra("webhooks.delete", "webhooks.get", lambda b, c: b.webhooks.delete(c.webhook_id)),
]
ALL_CALLS: dict[str, Call] = {
    **{name: call for name, call in CALLS.items() if name != "datasets.upload"},
    **{call.name: call for call in EXTRA_CALLS},
}


def _slow_down(nexus: LocalNexus, ctx: Ctx, scenario: str) -> None:
    paths = f"^/projects/{ctx.project_id}/|^/_nexus/uploads/"
    if scenario == "slow":
        nexus.inject_fault(method=None, path=paths, status=None, latency=LATENCY, times=None)
    else:  # "failing": every request answers 503; idempotent ones are retried
        nexus.inject_fault(method=None, path=paths, status=503, times=None)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cancel")


@pytest.mark.parametrize("call_name", list(ALL_CALLS))
# Random delays on purpose: a failure here is a real race, and hypothesis prints the
# example that shows it. No example database, so runs do not depend on local state.
@settings(
    max_examples=4,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(delay=st.floats(0.0, 0.25), scenario=st.sampled_from(["slow", "failing"]))
async def test_cancelling_a_call_is_prompt_and_leaves_nothing_behind(
    nexus: LocalNexus, workdir: Path, call_name: str, delay: float, scenario: str
) -> None:
    call = ALL_CALLS[call_name]
    ctx = new_ctx(nexus, workdir)
    await call.setup(ctx)
    async with sdk_client(nexus.base_url, ctx.secret_key, retry=PATIENT) as client:
        _slow_down(nexus, ctx, scenario)
        try:
            t0 = anyio.current_time()
            with anyio.move_on_after(delay):
                with contextlib.suppress(errors.NexusError):
                    await call.invoke(batch_of(client, ctx), ctx)
            took = anyio.current_time() - t0
        finally:
            nexus.clear_faults()
        assert took <= delay + PROMPT, f"returned {took - delay:.3f} s after the cancel"
        await anyio.lowlevel.checkpoint()
        assert sdk_tasks() == [], "a task of the client outlived the call"
        assert not any(p.running for p in client.diagnostics().pollers), "a poller still runs"
        assert_pool_idle(client)
        # The client is still usable.
        with anyio.fail_after(5):
            await batch_of(client, ctx).jobs.list()


async def test_a_thousand_coroutines_share_max_connections(nexus: LocalNexus) -> None:
    limit = 8
    ctx = new_ctx(nexus, Path("."))
    await CALLS["jobs.get"].setup(ctx)
    peak_pool = peak_server = 0
    done = anyio.Event()

    async def watch() -> None:
        # The pool is sampled every few milliseconds; the kernel's table (4+ ms of CPU
        # per read) every tenth time: connections are kept alive, so one too many stays
        # in the table from the moment it is opened until the client closes.
        nonlocal peak_pool, peak_server
        for sample in itertools.count():
            peak_pool = max(peak_pool, pool_count(client))
            if sample % 10 == 0 or done.is_set():
                peak_server = max(peak_server, _established(port))
            if done.is_set():
                return
            await anyio.sleep(0.005)

    port = int(nexus.base_url.rsplit(":", 1)[1])
    nexus.inject_fault(
        method="GET", path=f"^/projects/{ctx.project_id}/", status=None, latency=0.005, times=None
    )
    results: list[str] = []
    # The SDK's own pool (no http_client passed): the configured limit is what it builds.
    async with AsyncClient(
        ctx.secret_key, base_url=nexus.base_url, max_connections=limit
    ) as client:
        jobs = batch_of(client, ctx).jobs

        async def one() -> None:
            results.append((await jobs.get(ctx.job_id)).id)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                async with anyio.create_task_group() as callers:
                    for _ in range(1000):
                        callers.start_soon(one)
                done.set()
        assert_pool_idle(client)
    assert results == [ctx.job_id] * 1000
    assert 1 <= peak_pool <= limit
    if peak_server >= 0:  # -1: the platform has no /proc/net/tcp to count with
        assert peak_server <= limit


def _established(port: int) -> int:
    """Established TCP connections to loopback `port` (server side), or -1 if unknown.

    Counted as distinct (local, peer) pairs: the kernel's table can change while it is
    read, and a line can then appear twice.
    """
    pairs: set[tuple[str, str]] = set()
    found = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            found = True
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    pairs.add((fields[1], fields[2]))
    return len(pairs) if found else -1


# ------------------------------------------------------------ regressions, deterministic


async def test_closing_get_all_logs_ends_its_prefetch_task_first(
    nexus: LocalNexus, workdir: Path
) -> None:
    """Closing the iterator used to return while the prefetch task still ran."""
    ctx = new_ctx(nexus, workdir)
    await CALLS["jobs.get_all_logs"].setup(ctx)
    async with sdk_client(nexus.base_url, ctx.secret_key) as client:
        nexus.inject_fault(method="GET", path="/logs$", status=None, latency=0.3, times=None)
        logs = batch_of(client, ctx).jobs.get_all_logs(ctx.job_id, {"max_entries": 5})
        try:
            with anyio.move_on_after(0.1):
                await logs.__anext__()
            assert sdk_tasks() == []  # the generator was closed by the cancellation
            assert_pool_idle(client)
        finally:
            await logs.aclose()


async def test_the_last_waiter_leaving_stops_the_shared_poller_mid_tick(
    nexus: LocalNexus, workdir: Path
) -> None:
    """The poller used to finish its tick (and its retries) for nobody."""
    ctx = new_ctx(nexus, workdir)
    await _four_jobs(ctx)
    async with sdk_client(nexus.base_url, ctx.secret_key, retry=PATIENT) as client:
        nexus.inject_fault(method="GET", path=ctx.project_id, status=503, times=None)
        t0 = anyio.current_time()
        with anyio.move_on_after(0.2):
            await batch_of(client, ctx).jobs.wait_all(ctx.job_ids, interval=0.05)
        assert anyio.current_time() - t0 < 0.2 + PROMPT
        assert sdk_tasks() == []
        assert not any(p.running for p in client.diagnostics().pollers)
        assert_pool_idle(client)


class _StallingUploads(httpx.AsyncBaseTransport):
    """Forwards API requests; of an upload, reads the first chunk and then stalls."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.stalled = anyio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and "/uploads/" in request.url.path:
            stream = request.stream
            assert isinstance(stream, httpx.AsyncByteStream)
            async for _ in stream:
                self.stalled.set()
                await anyio.sleep_forever()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class _CancellingItems:
    """Item URLs that cancel `scope` at the item that fills the first spool chunk.

    The next checkpoint is then the spool write, with the item iterator suspended.
    """

    def __init__(self, scope: anyio.CancelScope, count: int) -> None:
        self.scope = scope
        self.count = count
        self.line = len(_item_line(self.url(0), 0))

    @staticmethod
    def url(i: int) -> str:
        return f"https://images.test/{i:07}.png"

    def __iter__(self) -> Iterator[str]:
        fill = -(-CHUNK_BYTES // self.line)  # items up to the first full chunk
        for i in range(self.count):
            if i == fill - 1:
                self.scope.cancel()
            yield self.url(i)


@pytest.mark.parametrize("where", ["spooling", "uploading"])
async def test_a_cancelled_upload_leaves_no_generator_unclosed(
    nexus: LocalNexus, workdir: Path, where: str
) -> None:
    """Internal async generators left suspended used to warn (ResourceWarning) on trio."""
    ctx = new_ctx(nexus, workdir)
    transport = _StallingUploads()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with sdk_client(nexus.base_url, ctx.secret_key, transport=transport) as client:
            datasets = batch_of(client, ctx).datasets
            with anyio.CancelScope() as scope:
                if where == "spooling":
                    await datasets.create_from_items("big", _CancellingItems(scope, 40_000))
                else:
                    async with anyio.create_task_group() as tg:
                        items = [_CancellingItems.url(i) for i in range(40_000)]  # 2 chunks
                        tg.start_soon(datasets.create_from_items, "big", items)
                        await transport.stalled.wait()  # mid-body
                        scope.cancel()
            assert scope.cancelled_caught
        for _ in range(3):  # finalizers of collected generators run at checkpoints
            gc.collect()
            await anyio.lowlevel.checkpoint()
    unclosed = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert unclosed == [], [str(w.message) for w in unclosed]
