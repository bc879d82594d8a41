"""Decoding: a 1,000-job list page and a 1,000-entry log page into models.

The job page is also decoded along the reference's path, for comparison.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import anyio
import httpx

from nexus_async import AsyncClient
from nexus_async._convert import converters, structure
from nexus_async.models import Job, JobLogs, PaginationResponse

from ._common import (
    Report,
    Row,
    Server,
    Stopwatch,
    Target,
    alternate,
    bench_main,
    fmt_ratio,
    fmt_seconds,
    median,
    serve,
)

JOBS = 1000
ENTRIES = 1000


def _page_bytes(server: Server) -> bytes:
    """A real 1,000-job list page from the server: half existing, half ephemeral deployments."""

    async def create() -> None:
        async with AsyncClient(server.secret_key, base_url=server.base_url) as client:
            jobs = client.get_project(server.project_id).batch.jobs
            existing = server.fast_job_options(start_at_time=10**13 - 1)  # never start
            ephemeral = {
                **{k: v for k, v in existing.items() if k != "deployment_id"},
                "artifact_id": "artifact_bench",
                "deployment_metadata": {"name": "bench", "instance_id": "x1cpu-standard"},
            }
            limiter = anyio.Semaphore(32)

            async def one(index: int) -> None:
                async with limiter:
                    await jobs.create(f"decode-{index}", existing if index % 2 else ephemeral)

            async with anyio.create_task_group() as tg:
                for index in range(JOBS):
                    tg.start_soon(one, index)

    anyio.run(create)
    url = f"{server.base_url}/projects/{server.project_id}/batch/jobs"
    with httpx.Client(headers={"Secret-Key": server.secret_key}, trust_env=False) as client:
        response = client.get(url, params={"limit": JOBS})
        response.raise_for_status()
    assert len(response.json()["data"]) == JOBS
    return response.content


def _log_page_bytes(server: Server) -> bytes:
    """A real 1,000-entry page of a job's log from the server."""

    async def create() -> str:
        async with AsyncClient(server.secret_key, base_url=server.base_url) as client:
            jobs = client.get_project(server.project_id).batch.jobs
            options = server.fast_job_options(start_at_time=10**13 - 1)  # never starts
            return (await jobs.create("decode-logs", options)).id

    job_id = anyio.run(create)
    server.seed_logs(job_id, ENTRIES, per_ms=3)
    url = f"{server.base_url}/projects/{server.project_id}/batch/jobs/{job_id}/logs"
    with httpx.Client(headers={"Secret-Key": server.secret_key}, trust_env=False) as client:
        response = client.get(url, params={"maxEntries": ENTRIES})
        response.raise_for_status()
    assert len(response.json()["entries"]) == ENTRIES
    return response.content


def _reference_decoders(body: bytes) -> dict[str, Callable[[], Any]]:
    """The reference's path from body bytes to models, and msgspec's bare decode.

    The reference's requester parses a successful body three times with
    `requests.Response.json()` (once to check the status, once as an argument of a
    debug log call, which Python evaluates even when debug logging is off, and once to
    re-serialise it with `json.dumps`), then decodes that text with
    `msgspec.json.decode(..., type=PaginationResponse[Job])`.
    """
    import msgspec
    import requests
    from datature.nexus import models
    from datature.nexus.api.batch import models as batch_models

    page_type = models.PaginationResponse[batch_models.Job]
    response = requests.Response()
    response.status_code = 200
    response.raw = io.BytesIO(body)  # read once, into `content`, on first use
    response.headers["Content-Type"] = "application/json"
    decoder = msgspec.json.Decoder(page_type)

    def reference_path() -> Any:
        response.json()
        response.json()
        return msgspec.json.decode(json.dumps(response.json()), type=page_type)

    return {
        "reference: its requester's decode path": reference_path,
        "msgspec.json.Decoder on the bytes (C; a msgspec-only client)": lambda: decoder.decode(
            body
        ),
    }


def run(quick: bool) -> Report:
    """Decoding: structure a 1,000-job page vs the reference's msgspec path."""
    repeat, rounds, budget = (10, 5, 15.0) if quick else (20, 15, 45.0)
    with serve() as server:
        body = _page_bytes(server)
        log_body = _log_page_bytes(server)
    data = json.loads(body)
    page_type = PaginationResponse[Job]
    # The pages must decode on the fast path (its hand-written hooks): otherwise the
    # rows would time a fallback to the detailed converter, not the hot path.
    converters().fast.structure(data, page_type)
    converters().fast.structure(json.loads(log_body), JobLogs)

    def timed(decode: Callable[[], Any]) -> Callable[[], float]:
        def measure() -> float:
            with Stopwatch() as watch:
                for _ in range(repeat):
                    decode()
            return watch.timing.wall / repeat

        return measure

    reference = _reference_decoders(body)
    contenders: dict[str, Callable[[], Any]] = {
        "nexus_async: json.loads + structure (its decode path)": lambda: structure(
            json.loads(body), page_type
        ),
        "nexus_async: structure alone": lambda: structure(data, page_type),
        **reference,
        "nexus_async: json.loads + structure of a 1,000-entry log page": lambda: structure(
            json.loads(log_body), JobLogs
        ),
    }
    for decode in contenders.values():
        decode()  # build the hooks and decoders outside the timing
    samples = alternate(
        {name: timed(decode) for name, decode in contenders.items()},
        rounds=rounds,
        budget=budget,
    )
    times = {name: median(values) for name, values in samples.items()}
    ours, _, ref, _, logs = times.values()
    rows = [
        Row(
            name,
            f"{fmt_seconds(value)} per page",
            f"{value / (ENTRIES if 'log page' in name else JOBS) * 1e6:.1f} µs per "
            f"{'entry' if 'log page' in name else 'job'}; {len(samples[name])} rounds x {repeat}",
        )
        for name, value in times.items()
    ]
    per_job, per_entry = ours / JOBS * 1e6, logs / ENTRIES * 1e6
    rows[0].detail += f"; the reference takes {fmt_ratio(ref / ours)} as long"
    return Report(
        title="4. Decoding",
        setup=(
            f"one real {JOBS}-job list page ({len(body) / 1024:.0f} KiB, half existing, half "
            "ephemeral deployments) from the server, decoded in-process; the "
            "reference's path is what its requester does with a 2xx body."
        ),
        rows=rows,
        targets=[
            Target(
                "no slower than the reference", ours <= ref, f"{fmt_ratio(ours / ref)} its time"
            ),
            Target("json.loads + structure ≤ 20 µs per Job", per_job <= 20.0, f"{per_job:.1f} µs"),
            Target(
                "json.loads + structure ≤ 2.5 µs per JobLogEntry",
                per_entry <= 2.5,
                f"{per_entry:.2f} µs",
            ),
        ],
    )


if __name__ == "__main__":
    bench_main(run)
