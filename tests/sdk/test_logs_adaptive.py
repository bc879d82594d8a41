"""`get_all_logs` pages in parallel only when the caller waits on the network."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from nexus_async import LogCursor, LogsFilter, _logs
from nexus_async.server import LocalNexus

from .live import quiet_job
from .test_logs_parallel import entered, keys, read


def most_in_flight(nexus: LocalNexus) -> int:
    """The most log requests the server had in flight at once."""
    spans = [(r.time, r.ended) for r in nexus.requests if r.path.endswith("/logs")]
    marks = sorted([(a, 1) for a, b in spans] + [(b, -1) for a, b in spans if b is not None])
    most = now = 0
    for _, step in marks:
        now += step
        most = max(most, now)
    return most


@pytest.mark.parametrize("far", [False, True])
async def test_slices_are_paged_in_parallel_only_when_the_consumer_waits_on_the_network(
    nexus: LocalNexus, monkeypatch: pytest.MonkeyPatch, far: bool
) -> None:
    if not far:  # a consumer never kept waiting, as near a server that keeps up
        monkeypatch.setattr(_logs, "_IDLE_WAIT", float("inf"))
        monkeypatch.setattr(_logs, "_FAR_WAIT", float("inf"))
    async with entered(nexus) as client:
        jobs = client.get_project(nexus.project_id).batch.jobs
        job = await quiet_job(jobs, nexus)
        nexus.seed_logs(job.id, 12_000, per_ms=3, start_time=1_000_000)
        # 20 ms an answer: every wait of the consumer is mostly off the CPU.
        nexus.inject_fault("GET", r"/logs$", status=None, latency=0.02, times=None)
        nexus.clear_requests()
        with anyio.fail_after(60):
            got, _ = await read(jobs.get_all_logs(job.id, {"max_entries": 500}, concurrency=8))
    assert len(got) == 12_000
    assert keys(got) == sorted(keys(got), reverse=True)
    assert (most_in_flight(nexus) > 2) is far, most_in_flight(nexus)


def adaptive() -> _logs._Adaptive:
    async def fetch(flt: LogsFilter) -> Any:
        raise AssertionError("not called")

    url = "http://nexus.test/v1/projects/p/batch/jobs/batchjob_1/logs"
    return _logs._Adaptive(fetch, url, "batchjob_1", LogsFilter(), LogCursor(), 8)


MS = 0.001


@pytest.mark.parametrize(
    ("waits", "parallel"),
    [
        # Near the server: a few slow answers, each a 1 ms wait beside 3 ms of decoding.
        ([(2 * MS, 2 * MS)] + [(1 * MS, 4 * MS)] * 20, False),
        # Every wait short: the server keeps up.
        ([(0.1 * MS, 0.1 * MS)] + [(0.1 * MS, 3.1 * MS)] * 20, False),
        # On the network: 5 ms of each 8 ms cycle, three times in a row after the first.
        ([(5 * MS, 5 * MS)] + [(5 * MS, 8 * MS)] * 3, True),
        # Twice on the network, then a page that was ready: the run starts again.
        (
            [(5 * MS, 5 * MS)] + [(5 * MS, 8 * MS)] * 2 + [(0, 3 * MS)] + [(5 * MS, 8 * MS)] * 2,
            False,
        ),
        # A far server: one wait past `_FAR_WAIT`, the first one included.
        ([(15 * MS, 15 * MS)], True),
    ],
)
def test_the_walk_goes_parallel_once_the_consumer_waits_on_the_network(
    waits: list[tuple[float, float]], parallel: bool
) -> None:
    walk = adaptive()
    for idle, cycle in waits:
        walk.waited(idle, cycle)
    assert walk._waiting_on_network() is parallel
