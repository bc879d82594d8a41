"""Adversarial runs: real sockets that misbehave, a server killed mid-call, random cancels.

* Through a fault-injecting TCP proxy (`tcp_proxy.FaultyProxy`) that resets, truncates
  or stalls responses mid-body: `get_all_logs` streams every entry exactly once, in
  order; waits return the finished state of the job asked for; and with retries off,
  every failed call is a typed transport error, never a half-read body decoded.
* kill -9 of a server running as its own process (`nexus-async serve`, started as the
  benchmarks start it) in the middle of a mix of calls: each call ends, within its
  bound, with its answer (if it got one before the kill) or a typed `NexusError`.
* Random cancellations of a concurrent mix of every SDK call (the calls and checks of
  `test_cancellation`), many at once: each cancelled call returns promptly and no
  task or connection is left behind.

The figures the README's Reliability section quotes come from these parameters (see
`test_the_readme_quotes_these_figures`). Randomness is seeded: a failure replays.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from benchmarks._common import Server, serve
from nexus_async import Backoff, Batch, JobLogEntry, RetryPolicy, errors
from nexus_async.server import LocalNexus

from ..sdk.live import assert_pool_idle
from ..support import sdk_tasks
from . import test_bad_input as bad_input
from .support import CALLS, Ctx, batch_of, new_ctx, sdk_client
from .tcp_proxy import DRIP, FaultyProxy
from .test_cancellation import ALL_CALLS, LATENCY, PATIENT, PROMPT, _slow_down

README = Path(__file__).resolve().parents[2] / "README.md"
BACKENDS = 2  # every test here runs on asyncio and trio


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("adversarial")


# ------------------------------------------------------------------ the TCP proxy

PROXY_TIMEOUT = 0.5  # the client's per-request timeout: a stall costs this much
PROXY_RETRY = RetryPolicy(attempts=10, total_time=30.0, backoff=Backoff(initial=0.01, maximum=0.05))
LOG_ENTRIES = 1_200
LOG_PAGE = 50
LOG_TIES = 3  # entries per millisecond: page boundaries fall inside ties
LOG_SEEDS = (1, 2, 3)
LOG_RATE = 0.3
LOG_MIN_FAULTS = 5  # per seed: the run must really have been hit


async def _job_with_logs(nexus: LocalNexus, workdir: Path) -> Ctx:
    ctx = new_ctx(nexus, workdir)
    await CALLS["jobs.get"].setup(ctx)  # a job that never starts: its log only has ours
    nexus.seed_logs(ctx.job_id, LOG_ENTRIES, per_ms=LOG_TIES, start_time=1_000_000)
    return ctx


async def _all_logs(batch: Batch, job_id: str) -> list[JobLogEntry]:
    return [e async for e in batch.jobs.get_all_logs(job_id, {"max_entries": LOG_PAGE})]


@pytest.mark.parametrize("seed", LOG_SEEDS)
async def test_get_all_logs_through_resets_truncations_and_stalls_is_exact(
    nexus: LocalNexus, workdir: Path, seed: int
) -> None:
    ctx = await _job_with_logs(nexus, workdir)
    async with sdk_client(nexus.base_url, ctx.secret_key) as client:
        expected = await _all_logs(batch_of(client, ctx), ctx.job_id)
    assert len(expected) == LOG_ENTRIES

    proxy = FaultyProxy(nexus.base_url, rate=LOG_RATE, seed=seed)
    with anyio.fail_after(60):
        async with (
            proxy.serving() as url,
            sdk_client(url, ctx.secret_key, timeout=PROXY_TIMEOUT, retry=PROXY_RETRY) as client,
        ):
            got = await _all_logs(batch_of(client, ctx), ctx.job_id)
            assert_pool_idle(client)
    assert [e.id for e in got] == [e.id for e in expected]  # no entry lost or repeated
    assert got == expected  # and each one whole
    counts = proxy.counts
    assert counts.faults >= LOG_MIN_FAULTS, counts
    assert min(counts.reset, counts.truncate, counts.stall) >= 1, counts


TYPED_CALLS = 240
TYPED_RATE = 0.5
TYPED_SEED = 7
NO_RETRY = RetryPolicy(attempts=1)
# Longer than `PROXY_TIMEOUT`: with 16 calls at once on a loaded machine, only a stall
# may time a call out, or "one failure per fault" would not hold.
TYPED_TIMEOUT = 1.0

Check = Callable[[Batch, Ctx], Awaitable[None]]


async def _check_job(batch: Batch, ctx: Ctx) -> None:
    assert (await batch.jobs.get(ctx.job_id)).id == ctx.job_id


async def _check_jobs(batch: Batch, ctx: Ctx) -> None:
    assert [j.id for j in (await batch.jobs.list()).data] == [ctx.job_id]


async def _check_logs(batch: Batch, ctx: Ctx) -> None:
    page = await batch.jobs.get_logs(ctx.job_id, {"max_entries": LOG_PAGE})
    assert len({e.id for e in page.entries}) == LOG_PAGE


async def _check_dataset(batch: Batch, ctx: Ctx) -> None:
    assert (await batch.datasets.get(ctx.dataset_id)).id == ctx.dataset_id


async def _check_webhooks(batch: Batch, ctx: Ctx) -> None:
    assert [w.id for w in (await batch.webhooks.list()).data] == [ctx.webhook_id]


TYPED_CHECKS: tuple[Check, ...] = (
    _check_job,
    _check_jobs,
    _check_logs,
    _check_dataset,
    _check_webhooks,
)


async def test_without_retries_every_failure_through_the_proxy_is_a_typed_transport_error(
    nexus: LocalNexus, workdir: Path
) -> None:
    """A body cut short must fail as a transport error, never be decoded or escape raw."""
    ctx = await _job_with_logs(nexus, workdir)  # its setup made a dataset and a webhook too
    proxy = FaultyProxy(nexus.base_url, rate=TYPED_RATE, seed=TYPED_SEED)
    outcomes: dict[str, int] = {}
    limit = anyio.CapacityLimiter(16)

    async def one(check: Check, batch: Batch) -> None:
        async with limit:
            try:
                await check(batch, ctx)
                name = "ok"
            except errors.TransportError as exc:
                name = type(exc).__name__
            outcomes[name] = outcomes.get(name, 0) + 1

    with anyio.fail_after(60):
        async with (
            proxy.serving() as url,
            sdk_client(url, ctx.secret_key, timeout=TYPED_TIMEOUT, retry=NO_RETRY) as client,
        ):
            batch = batch_of(client, ctx)
            async with anyio.create_task_group() as tg:
                for i in range(TYPED_CALLS):
                    tg.start_soon(one, TYPED_CHECKS[i % len(TYPED_CHECKS)], batch)
            assert_pool_idle(client)
    assert sum(outcomes.values()) == TYPED_CALLS
    failed = TYPED_CALLS - outcomes.get("ok", 0)
    assert failed == proxy.counts.faults, (outcomes, proxy.counts)  # each fault failed one call
    assert outcomes.get("ok", 0) > 0, outcomes
    assert failed > 0, outcomes
    assert set(outcomes) <= {"ok", "NexusConnectionError", "RequestTimeoutError"}, outcomes


WAIT_JOBS = 4
WAIT_RATE = 0.3
WAIT_SEED = 11
WAIT_START_MS = 800  # the jobs start this long after creation: the waits poll meanwhile


async def test_waits_through_the_proxy_return_the_finished_state_of_the_jobs_asked_for(
    nexus: LocalNexus, workdir: Path
) -> None:
    ctx = new_ctx(nexus, workdir)
    await CALLS["jobs.create"].setup(ctx)
    async with sdk_client(nexus.base_url, ctx.secret_key) as client:
        jobs = batch_of(client, ctx).jobs
        start = int(time.time() * 1000) + WAIT_START_MS  # the server shares this clock
        ids = [
            (await jobs.create(f"wait-{i}", {**ctx.options, "start_at_time": start})).id
            for i in range(WAIT_JOBS)
        ]
    proxy = FaultyProxy(nexus.base_url, rate=WAIT_RATE, seed=WAIT_SEED)
    finished: dict[str, Any] = {}
    with anyio.fail_after(60):
        async with (
            proxy.serving() as url,
            sdk_client(url, ctx.secret_key, timeout=PROXY_TIMEOUT, retry=PROXY_RETRY) as client,
        ):
            jobs = batch_of(client, ctx).jobs

            async def one() -> None:
                finished["one"] = await jobs.wait_until_done(ids[0], interval=0.05, timeout=30)

            async def rest() -> None:
                finished["rest"] = await jobs.wait_all(ids[1:], interval=0.05, timeout=30)

            async with anyio.create_task_group() as tg:
                tg.start_soon(one)
                tg.start_soon(rest)
            assert_pool_idle(client)
    got = [finished["one"], *finished["rest"]]
    assert [job.id for job in got] == ids
    assert all(str(job.status.overview) == "Reached" for job in got), got
    assert proxy.counts.faults >= 1, proxy.counts


DRIP_TIMEOUT = 0.5
DRIP_RETRY = RetryPolicy(attempts=3, total_time=2.0, backoff=Backoff(initial=0.01, maximum=0.05))
DRIP_BOUND = DRIP_RETRY.total_time + DRIP_TIMEOUT + 1.5


async def test_a_dripping_answer_ends_within_the_calls_bound(
    nexus: LocalNexus, workdir: Path
) -> None:
    ctx = new_ctx(nexus, workdir)
    await CALLS["jobs.get"].setup(ctx)
    proxy = FaultyProxy(nexus.base_url, rate=1.0, seed=0, faults=(DRIP,))
    outcome = "still running"
    async with (
        proxy.serving() as url,
        sdk_client(url, ctx.secret_key, timeout=DRIP_TIMEOUT, retry=DRIP_RETRY) as client,
    ):
        with anyio.move_on_after(DRIP_BOUND):
            try:
                await batch_of(client, ctx).jobs.get(ctx.job_id)
                outcome = "ok"
            except errors.NexusError as exc:
                outcome = type(exc).__name__
        assert_pool_idle(client)
    assert proxy.counts.drip >= 1
    assert outcome == "RequestTimeoutError", f"{outcome} after {DRIP_BOUND} s"


# ------------------------------------------------------------------ kill -9

KILL_AFTER = (0.05, 0.3, 0.8)  # seconds after the calls start
KILL_LATENCY = 0.2  # the server's added latency per answer, so calls are in flight
KILL_TIMEOUT = 2.0
KILL_RETRY = RetryPolicy(attempts=4, total_time=2.0, backoff=Backoff(initial=0.05, maximum=0.2))
KILL_WAIT = 2.5  # the waits' own timeout
KILL_LOGS = 2_000  # 20 pages of 100 at 0.2 s each: still streaming at every kill point
# A request call ends at most one timeout past the retry budget; slack for a loaded machine.
REQUEST_BOUND = KILL_RETRY.total_time + KILL_TIMEOUT + 1.5


@attrs.define
class Killed:
    """One call of the mix run against the server that gets killed, and how it ended."""

    name: str
    invoke: Callable[[Batch], Awaitable[object]]
    bound: float  # seconds after the kill by which it must have ended
    outcome: str = "running"
    ended: float = 0.0


# How many of each call run at once against the server that gets killed.
KILL_MIX = {
    "jobs.get": 3,
    "jobs.list": 2,
    "jobs.get_logs": 2,
    "jobs.get_all_logs": 2,
    "jobs.wait_until_done": 2,
    "jobs.wait_all": 1,
    "jobs.create": 2,
    "datasets.get": 1,
    "datasets.list": 1,
    "datasets.create": 1,
    "webhooks.list": 1,
    "webhooks.create": 1,
}


def _kill_mix(job_ids: list[str], options: dict[str, Any], ndjson: Path) -> list[Killed]:
    quiet, other = job_ids
    dataset_id = options["dataset_id"]
    wait = KILL_WAIT + REQUEST_BOUND
    calls: dict[str, tuple[Callable[[Batch], Awaitable[object]], float]] = {
        "jobs.get": (lambda b: b.jobs.get(quiet), REQUEST_BOUND),
        "jobs.list": (lambda b: b.jobs.list(), REQUEST_BOUND),
        "jobs.get_logs": (lambda b: b.jobs.get_logs(quiet), REQUEST_BOUND),
        "jobs.get_all_logs": (
            lambda b: _consume(b.jobs.get_all_logs(quiet, {"max_entries": 100})),
            REQUEST_BOUND,
        ),
        "jobs.wait_until_done": (
            lambda b: b.jobs.wait_until_done(quiet, interval=0.05, timeout=KILL_WAIT),
            wait,
        ),
        "jobs.wait_all": (
            lambda b: b.jobs.wait_all([quiet, other], interval=0.05, timeout=KILL_WAIT),
            wait,
        ),
        "jobs.create": (lambda b: b.jobs.create("k", options), REQUEST_BOUND),
        "datasets.get": (lambda b: b.datasets.get(dataset_id), REQUEST_BOUND),
        "datasets.list": (lambda b: b.datasets.list(), REQUEST_BOUND),
        # create, upload and, on failure, a delete: three requests, each with its budget
        "datasets.create": (lambda b: b.datasets.create("k", str(ndjson)), 3 * REQUEST_BOUND),
        "webhooks.list": (lambda b: b.webhooks.list(), REQUEST_BOUND),
        "webhooks.create": (
            lambda b: b.webhooks.create("k", {"endpoint": "http://127.0.0.1:9/x"}),
            REQUEST_BOUND,
        ),
    }
    return [Killed(name, *calls[name]) for name, count in KILL_MIX.items() for _ in range(count)]


async def _consume(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


@pytest.fixture
def server_process() -> Iterator[Server]:
    """`nexus-async serve` as a child process, as the benchmarks run it."""
    with serve(latency=KILL_LATENCY) as server:
        yield server


@pytest.mark.parametrize("kill_after", KILL_AFTER)
async def test_kill_9_of_the_server_mid_call_ends_every_call_typed_within_its_bound(
    server_process: Server, workdir: Path, kill_after: float
) -> None:
    server = server_process
    # Seeding goes through the server's admin routes with a blocking client.
    options = await anyio.to_thread.run_sync(server.fast_job_options)
    ndjson = workdir / f"kill-{kill_after}.ndjson"
    ndjson.write_text('{"kind": "Image", "url": "https://images.test/1.png"}\n')
    async with sdk_client(
        server.base_url, server.secret_key, timeout=KILL_TIMEOUT, retry=KILL_RETRY
    ) as client:
        batch = client.get_project(server.project_id).batch
        far = {**options, "start_at_time": 10**13 - 1}
        job_ids = [(await batch.jobs.create(f"quiet-{i}", far)).id for i in range(2)]
        await anyio.to_thread.run_sync(server.seed_logs, job_ids[0], KILL_LOGS)
        mix = _kill_mix(job_ids, options, ndjson)

        async def run(call: Killed) -> None:
            try:
                await call.invoke(batch)
                call.outcome = "ok"
            except errors.NexusError as exc:
                call.outcome = type(exc).__name__
            except Exception as exc:  # what must never happen: recorded, then failed on
                call.outcome = f"raw {exc!r}"
            call.ended = anyio.current_time()

        with anyio.fail_after(3 * REQUEST_BOUND + KILL_WAIT + 10):
            async with anyio.create_task_group() as tg:
                for call in mix:
                    tg.start_soon(run, call)
                await anyio.sleep(kill_after)  # the kill point under test, not a wait
                pending = [c for c in mix if c.outcome == "running"]
                os.kill(server.pid, signal.SIGKILL)
                killed = anyio.current_time()
        assert_pool_idle(client)

    late = [(c.name, round(c.ended - killed, 2)) for c in mix if c.ended > killed + c.bound]
    assert late == []
    raw = [(c.name, c.outcome) for c in mix if c.outcome.startswith("raw")]
    assert raw == []
    failed = [c for c in mix if c.outcome != "ok"]
    assert all(c.ended >= killed for c in failed), "a call failed before the kill"
    # The long calls were in flight at every kill point, and each of them failed typed.
    long = [
        c for c in mix if c.name in ("jobs.get_all_logs", "jobs.wait_until_done", "jobs.wait_all")
    ]
    assert all(c in pending and c.outcome != "ok" for c in long), [
        (c.name, c.outcome) for c in long
    ]


FOLLOW_BOUND = KILL_WAIT + REQUEST_BOUND


async def test_kill_9_ends_follow_logs_typed_within_a_bound(server_process: Server) -> None:
    server = server_process
    async with sdk_client(
        server.base_url, server.secret_key, timeout=KILL_TIMEOUT, retry=KILL_RETRY
    ) as client:
        jobs = client.get_project(server.project_id).batch.jobs
        options = await anyio.to_thread.run_sync(server.fast_job_options)
        far = {**options, "start_at_time": 10**13 - 1}
        job = await jobs.create("follow", far)
        outcome = "still following"

        async def follow() -> None:
            nonlocal outcome
            with anyio.move_on_after(FOLLOW_BOUND + KILL_AFTER[1]):
                try:
                    async for _ in jobs.follow_logs(job.id, interval=0.05):
                        pass
                    outcome = "ended normally"
                except errors.NexusError as exc:
                    outcome = type(exc).__name__

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await anyio.sleep(KILL_AFTER[1])  # the kill point, not a wait
            os.kill(server.pid, signal.SIGKILL)
        assert_pool_idle(client)
    assert outcome not in ("still following", "ended normally"), outcome


# ------------------------------------------------------------ random cancellations

CANCEL_ROUNDS = 5
CANCEL_EACH = 8  # concurrent invocations of every call per round, each with its own cancel point
CANCEL_MAX_DELAY = 0.25
# Over a hundred calls share the loop (and a loaded machine): a little more than
# `test_cancellation.PROMPT`, which times one call alone.
CANCEL_PROMPT = 2 * PROMPT
STALL_TICK = 0.01  # how often the stall meter looks at the clock


class StallMeter:
    """How long the event loop could not run anything, over a stretch of time.

    A loaded machine (or the garbage collector) can hold the whole loop for a second,
    which delays every call at once; such a stall is the machine's, not the SDK's,
    so a call is late only by what remains after the stalls during it. (A stall the
    SDK itself caused would be discounted too: `test_cancellation` times each call
    alone, with no discount.)
    """

    def __init__(self) -> None:
        self.stalls: list[tuple[float, float]] = []  # (from, to) of each stall seen

    async def run(self) -> None:
        """Tick until cancelled; a tick that comes late records the gap as a stall."""
        last = anyio.current_time()
        while True:
            await anyio.sleep(STALL_TICK)
            now = anyio.current_time()
            if now - last > 5 * STALL_TICK:
                self.stalls.append((last + STALL_TICK, now))
            last = now

    def during(self, start: float, end: float) -> float:
        """Seconds of stall between `start` and `end`."""
        return sum(max(0.0, min(end, b) - max(start, a)) for a, b in self.stalls)


@pytest.mark.parametrize("round_", range(CANCEL_ROUNDS))
async def test_random_cancellations_of_a_concurrent_mix_leave_nothing_behind(
    nexus: LocalNexus, workdir: Path, round_: int
) -> None:
    rng = random.Random(round_)
    scenario = ("slow", "failing")[round_ % 2]
    ctxs = {name: new_ctx(nexus, workdir) for name in ALL_CALLS}

    async def setup(name: str) -> None:
        await ALL_CALLS[name].setup(ctxs[name])

    async with anyio.create_task_group() as tg:
        for name in ctxs:
            tg.start_soon(setup, name)
    late: list[tuple[str, float, float]] = []
    interrupted = 0
    # Every call sends a request, which takes `LATENCY` in the slow scenario: cancel
    # points before it fall mid-call. (Later ones let the fastest calls finish first,
    # the more often the faster the SDK.) Failing calls retry well past the maximum.
    longest = LATENCY if scenario == "slow" else CANCEL_MAX_DELAY
    meter = StallMeter()

    async def one(name: str, batch: Batch, ctx: Ctx, delay: float) -> None:
        nonlocal interrupted
        t0 = anyio.current_time()
        with anyio.move_on_after(delay) as scope, contextlib.suppress(errors.NexusError):
            await ALL_CALLS[name].invoke(batch, ctx)
        interrupted += scope.cancelled_caught
        now = anyio.current_time()
        took = now - t0
        if took - meter.during(t0, now) > delay + CANCEL_PROMPT:
            late.append((name, round(delay, 3), round(took, 3)))

    async with contextlib.AsyncExitStack() as stack:
        clients = {
            name: await stack.enter_async_context(
                sdk_client(nexus.base_url, ctx.secret_key, retry=PATIENT)
            )
            for name, ctx in ctxs.items()
        }
        for ctx in ctxs.values():
            _slow_down(nexus, ctx, scenario)
        try:
            with anyio.fail_after(60):
                async with anyio.create_task_group() as outer:
                    outer.start_soon(meter.run)
                    async with anyio.create_task_group() as tg:
                        for name, ctx in ctxs.items():
                            for _ in range(CANCEL_EACH):
                                delay = rng.uniform(0.0, longest)
                                tg.start_soon(one, name, batch_of(clients[name], ctx), ctx, delay)
                    outer.cancel_scope.cancel()  # every call returned: stop the meter
        finally:
            nexus.clear_faults()
        assert late == [], f"round {round_}: returned late after the cancel ({meter.stalls=})"
        await anyio.lowlevel.checkpoint()
        # Shared pollers and log prefetches are SDK tasks: none may outlive its callers.
        assert sdk_tasks() == [], "a task of a client outlived its calls"
        for client in clients.values():
            assert_pool_idle(client)
        with anyio.fail_after(10):  # every client still works
            for name, client in clients.items():
                await batch_of(client, ctxs[name]).jobs.list()
    # Nearly every cancel point falls mid-call: the calls outlast the delays.
    assert interrupted >= 0.9 * len(ALL_CALLS) * CANCEL_EACH, interrupted


# --------------------------------------------------------------- the README's figures


def figures() -> dict[str, int]:
    """What these suites run, as the README's Reliability section quotes it."""
    id_calls = len(bad_input.JOB_CALLS) + len(bad_input.DATASET_CALLS)
    id_calls += len(bad_input.WEBHOOK_CALLS)
    hostile_ids = id_calls * bad_input.SETTINGS.max_examples + bad_input.MANY.max_examples
    return {
        "log entries through the proxy": LOG_ENTRIES * len(LOG_SEEDS) * BACKENDS,
        "calls through the proxy without retries": TYPED_CALLS * BACKENDS,
        "waits through the proxy": WAIT_JOBS * BACKENDS,
        "kills": len(KILL_AFTER) * BACKENDS,
        "calls under kill": sum(KILL_MIX.values()) * len(KILL_AFTER) * BACKENDS,
        "random cancellations": CANCEL_ROUNDS * len(ALL_CALLS) * CANCEL_EACH * BACKENDS,
        "hostile ids": hostile_ids * BACKENDS,
    }


def test_the_readme_quotes_these_figures() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Reliability") :]
    section = section[: section.index("\n## ", 3)]
    quoted = {int(n.replace(",", "")) for n in re.findall(r"\b\d[\d,]*\b", section)}
    missing = {name: n for name, n in figures().items() if n not in quoted}
    assert missing == {}, f"the README's Reliability section is out of date: {missing}"
