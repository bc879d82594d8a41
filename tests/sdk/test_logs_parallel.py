"""Parallel `get_all_logs`: time slices in flight at once, merged into the sequential stream."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexus_async import (
    AsyncClient,
    JobLogEntry,
    Jobs,
    LogPagingError,
    LogStream,
    ValidationError,
    _logs,
)
from nexus_async.server import LocalNexus

from .conftest import FAST_RETRY
from .live import assert_pool_idle, quiet_job

LEVELS = ["Debug", "Info", "Warning", "Error"]


@pytest.fixture(autouse=True, params=["at once", "handed over"])
def parallel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Page in parallel however near the server is: from the start, or after two pages.

    `get_all_logs` stays sequential while the consumer never waits on the network,
    as with a server in this process; these tests are about the parallel walk, so
    the first round trip counts as a far server's ("at once"), or every later wait
    as one on the network ("handed over": sequential pages first, then the walk
    from their cursor). test_logs_adaptive.py tests the real rule.
    """
    if request.param == "at once":
        monkeypatch.setattr(_logs, "_FAR_WAIT", -1.0)
    else:
        monkeypatch.setattr(_logs, "_FAR_WAIT", float("inf"))
        monkeypatch.setattr(_logs, "_IDLE_WAIT", -1.0)


def keys(entries: list[JobLogEntry]) -> list[tuple[int, str]]:
    return [(e.create_time, e.id) for e in entries]


@contextlib.asynccontextmanager
async def entered(nexus: LocalNexus, **kwargs: object) -> AsyncIterator[AsyncClient]:
    kwargs.setdefault("retry", FAST_RETRY)
    async with AsyncClient(nexus.secret_key, base_url=nexus.base_url, **kwargs) as client:  # type: ignore[arg-type]
        yield client


async def read(stream: LogStream) -> tuple[list[JobLogEntry], LogPagingError | None]:
    got: list[JobLogEntry] = []
    try:
        async with contextlib.aclosing(stream):
            async for entry in stream:
                got.append(entry)
    except LogPagingError as exc:
        return got, exc
    return got, None


@pytest.mark.parametrize("bad", [0, -1, "8", True, 1.0, None, 65])
async def test_a_bad_concurrency_is_refused_before_any_request(
    client: AsyncClient, jobs: Jobs, bad: object
) -> None:
    sent = client.diagnostics().requests_sent
    with pytest.raises(ValidationError, match="concurrency"):
        jobs.get_all_logs("batchjob_1", concurrency=bad)  # type: ignore[arg-type]
    assert client.diagnostics().requests_sent == sent


# A log made of segments, oldest first: each `count` entries at `per_ms` a
# millisecond, at one level, after a gap; the first may be far older than the job.
segment = st.tuples(
    st.integers(1, 600),  # count
    st.sampled_from([1, 1, 2, 7, 40, 999]),  # per_ms: ties up to 999 in one millisecond
    st.sampled_from(LEVELS),
    st.integers(0, 3_000),  # gap before it, in ms
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    segments=st.lists(segment, min_size=1, max_size=8),
    page_size=st.sampled_from([None, 1000, 999, 300, 57]),
    min_level=st.sampled_from([None, *LEVELS]),
    concurrency=st.integers(2, 16),
    cut=st.sampled_from([None, 0.3, 0.7]),  # before_time within the log
)
async def test_the_parallel_stream_equals_the_sequential_one(
    nexus: LocalNexus,
    segments: list[tuple[int, int, str, int]],
    page_size: int | None,
    min_level: str | None,
    concurrency: int,
    cut: float | None,
) -> None:
    async with entered(nexus) as client:
        jobs = client.get_project(nexus.project_id).batch.jobs
        job = await quiet_job(jobs, nexus)
        start = 1_000_000
        for count, per_ms, level, gap in segments:
            start += gap
            nexus.seed_logs(job.id, count, per_ms=per_ms, start_time=start, level=level)
            start += -(-count // per_ms)  # the next segment starts a millisecond later
        flt: dict[str, object] = {"max_entries": page_size, "min_level": min_level}
        flt["before_time"] = 2_000_000 if cut is None else int(1_000_000 + cut * (start - 1e6))
        with anyio.fail_after(60):
            oracle, oracle_error = await read(jobs.get_all_logs(job.id, flt, concurrency=1))
            got, error = await read(jobs.get_all_logs(job.id, flt, concurrency=concurrency))
        if oracle_error is None:
            assert error is None
            assert keys(got) == keys(oracle)
        else:  # a page or more in one millisecond: both stop there, loudly
            assert error is not None
            assert error.create_time == oracle_error.create_time
            newer = [k for k in keys(oracle) if k[0] > oracle_error.create_time]
            assert keys(got)[: len(newer)] == newer
            at = keys(got)[len(newer) :]
            assert all(k[0] == error.create_time for k in at)
            assert len(set(at)) == len(at)
        assert_pool_idle(client)


async def test_request_count_stays_near_the_sequential_one(nexus: LocalNexus) -> None:
    async with entered(nexus) as client:
        jobs = client.get_project(nexus.project_id).batch.jobs
        job = await quiet_job(jobs, nexus)
        nexus.seed_logs(job.id, 60_000, per_ms=7, start_time=1_000_000)
        flt = {"before_time": 2_000_000}
        counts = {}
        with anyio.fail_after(60):
            for concurrency in (1, 8):
                before = client.diagnostics().requests_sent
                got, _ = await read(jobs.get_all_logs(job.id, flt, concurrency=concurrency))
                assert len(got) == 60_000
                counts[concurrency] = client.diagnostics().requests_sent - before
        assert counts[1] == 61
        assert counts[8] <= 1.15 * counts[1]
        # A log of at most one page costs at most two requests.
        small = await quiet_job(jobs, nexus)
        nexus.seed_logs(small.id, 1_000, per_ms=3, start_time=1_000_000)
        before = client.diagnostics().requests_sent
        got, _ = await read(jobs.get_all_logs(small.id, flt, concurrency=16))
        assert len(got) == 1_000
        assert client.diagnostics().requests_sent - before <= 2


async def test_a_tie_group_of_a_page_mid_log_still_raises(nexus: LocalNexus) -> None:
    async with entered(nexus) as client:
        jobs = client.get_project(nexus.project_id).batch.jobs
        job = await quiet_job(jobs, nexus)
        nexus.seed_logs(job.id, 5_000, per_ms=2, start_time=1_000_000)
        nexus.seed_logs(job.id, 1_000, per_ms=1_000, start_time=1_010_000)
        nexus.seed_logs(job.id, 5_000, per_ms=2, start_time=1_010_001)
        with anyio.fail_after(30):
            got, error = await read(
                jobs.get_all_logs(job.id, {"before_time": 2_000_000}, concurrency=8)
            )
        assert error is not None
        assert error.create_time == 1_010_000
        assert len(got) == 5_000 + 1_000  # everything newer, then the page at that ms


@pytest.mark.parametrize("concurrency", [1, 3, 16])
async def test_breaking_out_at_a_random_point_leaves_nothing_behind(
    nexus: LocalNexus, concurrency: int
) -> None:
    rng = random.Random(concurrency)
    async with entered(nexus) as client:
        jobs = client.get_project(nexus.project_id).batch.jobs
        job = await quiet_job(jobs, nexus)
        nexus.seed_logs(job.id, 20_000, per_ms=5, start_time=1_000_000)
        nexus.inject_fault("GET", r"/logs$", status=None, latency=0.01, times=None)
        with anyio.fail_after(60):
            for _ in range(4):
                stop = rng.randrange(0, 20_000)
                seen = 0
                stream = jobs.get_all_logs(
                    job.id, {"before_time": 2_000_000}, concurrency=concurrency
                )
                async with contextlib.aclosing(stream):
                    async for _entry in stream:
                        if seen == stop:
                            break
                        seen += 1
                assert client.diagnostics().background_tasks == 0
                assert_pool_idle(client)
            # Cancelled from outside while requests are in flight.
            with anyio.move_on_after(0.05):
                async for _entry in jobs.get_all_logs(job.id, concurrency=concurrency):
                    pass
            assert client.diagnostics().background_tasks == 0
            assert_pool_idle(client)


# Bursts and long gaps: a page may cover a few milliseconds in a burst and many
# seconds across a gap, so slices are split far from where the entries are.
burst = st.tuples(
    st.integers(1, 2_500),  # count
    st.sampled_from([1, 3, 50, 90]),  # per_ms, under the smallest page
    st.sampled_from([0, 1, 40, 5_000, 20_000, 600_000]),  # gap before it, in ms
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    bursts=st.lists(burst, min_size=1, max_size=10),
    page_size=st.sampled_from([None, 250, 97]),
    concurrency=st.sampled_from([2, 4, 8, 16]),
)
async def test_a_bursty_log_with_gaps_streams_as_the_sequential_one(
    nexus: LocalNexus,
    bursts: list[tuple[int, int, int]],
    page_size: int | None,
    concurrency: int,
) -> None:
    async with entered(nexus) as client:
        jobs = client.get_project(nexus.project_id).batch.jobs
        job = await quiet_job(jobs, nexus)
        start = 1_000_000
        for count, per_ms, gap in bursts:
            start += gap
            nexus.seed_logs(job.id, count, per_ms=per_ms, start_time=start)
            start += -(-count // per_ms)
        flt = {"max_entries": page_size, "before_time": start + 10}
        with anyio.fail_after(60):
            oracle, oracle_error = await read(jobs.get_all_logs(job.id, flt, concurrency=1))
            got, error = await read(jobs.get_all_logs(job.id, flt, concurrency=concurrency))
        assert oracle_error is None
        assert error is None
        assert keys(got) == keys(oracle)
        assert len(got) == sum(count for count, _, _ in bursts)
        assert_pool_idle(client)


# Oldest segment first: (entries, per millisecond, gap after it in ms), repeated; on
# pages of 250 entries, so 25,000 entries are 100 pages, as in bench_logs.
BURSTY = [(500, 50, 5_000), (125, 1, 20_000)]  # bench_logs' bursty log, scaled to the page
RECENT_SPARSE = [(17_500, 50, 0), (7_500, 1, 0)]  # a dense past, one entry a ms since
RECENT_DENSE = [(7_500, 1, 0), (17_500, 50, 0)]


# Bounds with room for timing (the answers' order decides where slices are split):
# a guard against a walk that falls into the gaps, not a benchmark.
@pytest.mark.parametrize("shape", [BURSTY, RECENT_SPARSE, RECENT_DENSE])
async def test_requests_on_uneven_logs_stay_near_the_sequential_count(
    nexus: LocalNexus, shape: list[tuple[int, int, int]]
) -> None:
    async with entered(nexus) as client:
        jobs = client.get_project(nexus.project_id).batch.jobs
        job = await quiet_job(jobs, nexus)
        start, left = 1_000_000, 25_000
        while left > 0:
            for count, per_ms, gap in shape:
                count = min(count, left)
                nexus.seed_logs(job.id, count, per_ms=per_ms, start_time=start)
                start += -(-count // per_ms) + gap
                left -= count
        # Answers take a few milliseconds, so requests overlap as they would remotely.
        nexus.inject_fault("GET", r"/logs$", status=None, latency=0.005, times=None)
        flt = {"before_time": start + 10, "max_entries": 250}
        counts = {}
        with anyio.fail_after(60):
            for concurrency in (1, 8):
                before = client.diagnostics().requests_sent
                got, _ = await read(jobs.get_all_logs(job.id, flt, concurrency=concurrency))
                assert len(got) == 25_000
                counts[concurrency] = client.diagnostics().requests_sent - before
        assert counts[8] <= 1.5 * counts[1], counts
