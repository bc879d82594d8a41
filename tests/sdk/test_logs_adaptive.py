"""`get_all_logs` pages in parallel only when the caller waits on the network."""

from __future__ import annotations

import anyio
import pytest

from nexus_async import _logs
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
