"""`get_all_logs` overlaps the network with decoding: the next request is in flight meanwhile."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from nexus_async import AsyncClient, JobLogEntry, _logs
from nexus_async._convert import decode_log_entry
from nexus_async.server import LocalNexus

from .conftest import FAST_RETRY
from .live import assert_pool_idle, quiet_job

START = 1_000_000


@pytest.mark.parametrize("entered", [True, False])
async def test_the_next_request_is_in_flight_while_a_page_is_decoded(
    nexus: LocalNexus, monkeypatch: pytest.MonkeyPatch, entered: bool
) -> None:
    client = AsyncClient(nexus.secret_key, base_url=nexus.base_url, retry=FAST_RETRY)
    in_flight_at_decode: list[int] = []  # at each entry's decoding

    def watched(raw: Any, _: Any = None) -> JobLogEntry:
        in_flight_at_decode.append(client.diagnostics().http.in_flight)
        return decode_log_entry(raw)

    monkeypatch.setattr(_logs, "decode_log_entry", watched)
    if entered:
        await client.__aenter__()
    try:
        jobs = client.get_project(nexus.project_id).batch.jobs
        job = await quiet_job(jobs, nexus)
        nexus.seed_logs(job.id, 1_000, per_ms=3, start_time=START)
        # Each answer takes a while, so a request sent ahead is still out at decode time.
        nexus.inject_fault("GET", r"/logs$", status=None, latency=0.05, times=None)
        flt = {"before_time": START + 10_000, "max_entries": 200}
        with anyio.fail_after(30):
            got = [e async for e in jobs.get_all_logs(job.id, flt, concurrency=1)]
        assert len(got) == len(in_flight_at_decode) == 1_000
        if entered:  # page n+1's request was written before page n was decoded
            last = in_flight_at_decode.index(0)  # the last page's first entry
            assert 800 <= last < 1_000  # 200 a page: the last page holds at most 200
            assert in_flight_at_decode == [1] * last + [0] * (1_000 - last)
        else:  # strictly one thing at a time
            assert in_flight_at_decode == [0] * 1_000
        assert_pool_idle(client)
    finally:
        if entered:
            await client.__aexit__(None, None, None)
        else:
            await client.aclose()
