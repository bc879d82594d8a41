"""Resumable log streams: `LogCursor` as a string, `resume_from`, errors carrying the cursor."""

from __future__ import annotations

import base64
import contextlib
import json

import anyio
import pytest

from nexus_async import (
    AsyncClient,
    JobLogEntry,
    Jobs,
    LogCursor,
    LogStream,
    ServerError,
    ValidationError,
)
from nexus_async.server import LocalNexus

from .conftest import FAST_RETRY
from .live import assert_pool_idle, quiet_job

START = 1_000_000


def client_for(nexus: LocalNexus, **kwargs: object) -> AsyncClient:
    kwargs.setdefault("retry", FAST_RETRY)
    return AsyncClient(nexus.secret_key, base_url=nexus.base_url, **kwargs)  # type: ignore[arg-type]


def keys(entries: list[JobLogEntry]) -> list[tuple[int, str]]:
    return [(e.create_time, e.id) for e in entries]


def test_a_cursor_round_trips_through_its_string() -> None:
    for cursor in [
        LogCursor.newest_first(),
        LogCursor.newest_first(123),
        LogCursor(time=5, seen=frozenset({"b", "a", "000000000000000000000001"})),
        LogCursor.oldest_first(),
        LogCursor.oldest_first(99),
        LogCursor(time=7, seen=frozenset({"x"}), forward=True),
    ]:
        text = str(cursor)
        assert text.startswith("nxlc1.")
        assert text.isascii()
        assert "=" not in text
        assert LogCursor.parse(text) == cursor
    assert len(str(LogCursor(time=1_700_000_000_000, seen=frozenset({"a" * 24})))) < 80


def _encoded(payload: object) -> str:
    raw = json.dumps(payload).encode()
    return "nxlc1." + base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "nxlc1.",
        "nxlc1.!!!!",
        "nxlc2." + str(LogCursor.newest_first(5))[6:],  # another format version
        "eyJhbGciOiJIUzI1NiJ9.e30.sig",  # someone else's token
        _encoded({"time": 5}),
        _encoded(["b", 5]),
        _encoded(["x", 5, []]),
        _encoded(["b", True, []]),
        _encoded(["b", -1, []]),
        _encoded(["b", 1.5, []]),
        _encoded(["b", 5, [1, 2]]),
        _encoded(["b", None, ["a"]]),
        _encoded(["b", 5, [], "extra"]),
        123,
        None,
    ],
)
def test_a_malformed_or_foreign_cursor_string_is_a_validation_error(text: object) -> None:
    with pytest.raises(ValidationError):
        LogCursor.parse(text)  # type: ignore[arg-type]


async def test_resume_from_is_checked_before_any_request(nexus: LocalNexus) -> None:
    async with client_for(nexus) as client:
        jobs = client.get_project(nexus.project_id).batch.jobs
        sent = client.diagnostics().requests_sent
        with pytest.raises(ValidationError):
            jobs.get_all_logs("batchjob_1", resume_from="nope")
        with pytest.raises(ValidationError):
            jobs.get_all_logs("batchjob_1", resume_from=LogCursor.oldest_first(3))
        with pytest.raises(ValidationError):
            jobs.follow_logs("batchjob_1", resume_from=LogCursor.newest_first(3))
        with pytest.raises(ValidationError):
            jobs.follow_logs("batchjob_1", after_time=3, resume_from=LogCursor.oldest_first(3))
        with pytest.raises(ValidationError):
            jobs.get_all_logs("batchjob_1", resume_from=3)  # type: ignore[arg-type]
        assert client.diagnostics().requests_sent == sent


async def _read(stream: LogStream, limit: int | None = None) -> list[JobLogEntry]:
    got: list[JobLogEntry] = []
    async with contextlib.aclosing(stream):
        async for entry in stream:
            got.append(entry)
            if len(got) == limit:
                break
    return got


@pytest.mark.parametrize("entered", [True, False])
async def test_get_all_logs_resumed_after_every_kth_entry_yields_exactly_the_rest(
    nexus: LocalNexus, entered: bool
) -> None:
    """5,000 entries, 3 per ms (ties straddle page boundaries): every resume is exact."""
    async with client_for(nexus) as client:
        jobs = client.get_project(nexus.project_id).batch.jobs
        job = await quiet_job(jobs, nexus)
        nexus.seed_logs(job.id, 5_000, per_ms=3, start_time=START)
        flt = {"before_time": START + 10_000, "max_entries": 700}
        with anyio.fail_after(60):
            stream = jobs.get_all_logs(job.id, flt)
            assert stream.cursor == LogCursor.newest_first(START + 10_000)
            full: list[JobLogEntry] = []
            cursors: list[str] = []
            async for entry in stream:
                full.append(entry)
                cursors.append(str(stream.cursor))
    assert len(full) == 5_000
    k = 613  # lands both inside a millisecond's ties and on page boundaries' far side
    positions = [*range(k - 1, 5_000, k), 699, 700, 1_399, 4_999]
    with anyio.fail_after(120):
        for index in positions:
            fresh = client_for(nexus)
            try:
                if entered:
                    await fresh.__aenter__()
                fresh_jobs: Jobs = fresh.get_project(nexus.project_id).batch.jobs
                rest = await _read(fresh_jobs.get_all_logs(job.id, flt, resume_from=cursors[index]))
            finally:
                if entered:
                    await fresh.__aexit__(None, None, None)
                else:
                    await fresh.aclose()
            assert keys(rest) == keys(full[index + 1 :]), index


async def test_an_exhausted_retry_policy_raises_with_the_cursor_to_resume_from(
    nexus: LocalNexus,
) -> None:
    async with client_for(nexus) as client:
        jobs = client.get_project(nexus.project_id).batch.jobs
        job = await quiet_job(jobs, nexus)
        nexus.seed_logs(job.id, 3_000, per_ms=7, start_time=START)
        flt = {"before_time": START + 10_000}
        expected = await _read(jobs.get_all_logs(job.id, flt))
        got: list[JobLogEntry] = []
        stream = jobs.get_all_logs(job.id, flt)
        with anyio.fail_after(30), pytest.raises(ServerError) as info:
            async with contextlib.aclosing(stream):
                async for entry in stream:
                    got.append(entry)
                    if len(got) == 1_000:  # the API goes down mid-stream, for good
                        nexus.inject_fault("GET", r"/logs$", status=503, times=None)
        assert 1_000 <= len(got) < 3_000
        assert info.value.cursor == stream.cursor
        nexus.clear_faults()
        assert_pool_idle(client)
    async with client_for(nexus) as again:
        rest = await _read(
            again.get_project(nexus.project_id).batch.jobs.get_all_logs(
                job.id, flt, resume_from=info.value.cursor
            )
        )
    assert keys(got + rest) == keys(expected)


@pytest.mark.parametrize(
    "fault",
    [
        {"drop": True, "times": 2},
        {"status": 503, "times": 2},
        {"status": None, "latency": 2.0, "times": 1},  # beyond the client's timeout
    ],
)
async def test_transport_faults_mid_stream_are_absorbed(
    nexus: LocalNexus, fault: dict[str, object]
) -> None:
    async with client_for(nexus, timeout=0.5) as client:
        jobs = client.get_project(nexus.project_id).batch.jobs
        job = await quiet_job(jobs, nexus)
        nexus.seed_logs(job.id, 4_000, per_ms=7, start_time=START)
        flt = {"before_time": START + 10_000}
        expected = await _read(jobs.get_all_logs(job.id, flt))
        got: list[JobLogEntry] = []
        with anyio.fail_after(30):
            async for entry in jobs.get_all_logs(job.id, flt):
                got.append(entry)
                if len(got) == 1_500:
                    nexus.inject_fault("GET", r"/logs$", **fault)  # type: ignore[arg-type]
        assert keys(got) == keys(expected)
        assert_pool_idle(client)


async def test_follow_logs_resumes_exactly_after_its_cursor(nexus: LocalNexus) -> None:
    async with client_for(nexus) as client:
        jobs = client.get_project(nexus.project_id).batch.jobs
        job = await quiet_job(jobs, nexus)
        nexus.seed_logs(job.id, 2_500, per_ms=3, start_time=START)
        await jobs.cancel(job.id)  # finished: a follow ends after one poll
        with anyio.fail_after(30):
            stream = jobs.follow_logs(job.id, interval=0.05)
            full: list[JobLogEntry] = []
            cursors: list[str] = []
            async for entry in stream:
                full.append(entry)
                cursors.append(str(stream.cursor))
    created = [e for e in full if e.create_time < 2 * START]
    assert len(created) == 2_500
    assert keys(full) == sorted(keys(full))
    with anyio.fail_after(60):
        for index in [0, 1, 2, 999, 1_000, 1_001, 2_498, len(full) - 1]:
            async with client_for(nexus) as fresh:
                rest = await _read(
                    fresh.get_project(nexus.project_id).batch.jobs.follow_logs(
                        job.id, interval=0.05, resume_from=LogCursor.parse(cursors[index])
                    )
                )
            assert keys(rest) == keys(full[index + 1 :]), index
