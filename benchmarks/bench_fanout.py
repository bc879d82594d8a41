"""Fan-out: 1,000 concurrent `jobs.get` against the reference SDK on 32 threads, 50 ms latency."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx

from nexus_async import AsyncClient

from ._common import (
    Report,
    Row,
    Server,
    Stopwatch,
    Target,
    Timing,
    alternate,
    bench_main,
    fmt_ratio,
    fmt_seconds,
    median,
    serve,
)

LATENCY = 0.05
MAX_CONNECTIONS = 64  # AsyncClient's default
THREADS = 32


def _ours(server: Server, job_ids: list[str], calls: int) -> Callable[[], Timing]:
    async def go() -> Timing:
        async with AsyncClient(server.secret_key, base_url=server.base_url) as client:
            jobs = client.get_project(server.project_id).batch.jobs

            async def fan_out(count: int) -> None:
                async with anyio.create_task_group() as tg:
                    for index in range(count):
                        tg.start_soon(jobs.get, job_ids[index % len(job_ids)])

            await fan_out(MAX_CONNECTIONS)  # warm-up: open the pool's connections
            with Stopwatch() as watch:
                await fan_out(calls)
            return watch.timing

    return lambda: anyio.run(go)


def _raw_httpx(server: Server, job_ids: list[str], calls: int) -> Callable[[], Timing]:
    base = f"{server.base_url}/projects/{server.project_id}/batch/jobs/"

    async def go() -> Timing:
        limits = httpx.Limits(
            max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
        )
        headers = {"Secret-Key": server.secret_key}
        async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60.0) as client:

            async def get(job_id: str) -> None:
                json.loads((await client.get(base + job_id)).raise_for_status().content)

            async def fan_out(count: int) -> None:
                async with anyio.create_task_group() as tg:
                    for index in range(count):
                        tg.start_soon(get, job_ids[index % len(job_ids)])

            await fan_out(MAX_CONNECTIONS)
            with Stopwatch() as watch:
                await fan_out(calls)
            return watch.timing

    return lambda: anyio.run(go)


def _reference(server: Server, job_ids: list[str], calls: int) -> Callable[[], Timing]:
    def go() -> Timing:
        jobs = server.reference_project().batch.jobs
        ids = [job_ids[index % len(job_ids)] for index in range(calls)]
        pool = ThreadPoolExecutor(THREADS)
        try:
            list(pool.map(jobs.get, ids[:THREADS]))  # warm-up: start the threads
            with Stopwatch() as watch:
                list(pool.map(jobs.get, ids))
        finally:
            # Never wait here for a hung call: stopping the server ends it.
            pool.shutdown(wait=False, cancel_futures=True)
        return watch.timing

    return go


def run(quick: bool) -> Report:
    """Fan-out: 1,000 concurrent jobs.get vs the reference on a 32-thread pool, 50 ms latency."""
    calls = 1000
    rounds, budget = (1, 20.0) if quick else (3, 90.0)
    limit = math.ceil(calls / MAX_CONNECTIONS) * LATENCY
    ours_name = f"nexus_async, {calls} tasks, max_connections={MAX_CONNECTIONS} (default)"
    ref_name = f"reference, {THREADS}-thread pool"
    raw_name = f"raw httpx.AsyncClient, {MAX_CONNECTIONS} connections, {calls} tasks"
    with serve(latency=LATENCY) as server:

        async def make_jobs() -> list[str]:
            async with AsyncClient(server.secret_key, base_url=server.base_url) as client:
                jobs = client.get_project(server.project_id).batch.jobs
                options = server.fast_job_options(start_at_time=10**13 - 1)  # never start
                return [(await jobs.create(f"fan-out-{i}", options)).id for i in range(20)]

        job_ids = anyio.run(make_jobs)
        contenders = {
            ours_name: _ours(server, job_ids, calls),
            ref_name: _reference(server, job_ids, calls),
        }
        if not quick:  # slow (httpcore's pool bookkeeping), so only in the full run
            contenders[raw_name] = _raw_httpx(server, job_ids, calls)
        samples = alternate(contenders, rounds=rounds, budget=budget)
    wall = {name: median([t.wall for t in values]) for name, values in samples.items()}
    cpu = {name: median([t.cpu for t in values]) for name, values in samples.items()}
    ours, ref = wall[ours_name], wall[ref_name]
    rows = [
        Row(
            f"limit: ⌈{calls} / {MAX_CONNECTIONS}⌉ x {LATENCY * 1000:.0f} ms",
            fmt_seconds(limit),
            f"{calls / limit:.0f} calls/s",
        )
    ]
    for name, values in samples.items():
        rows.append(
            Row(
                name,
                fmt_seconds(wall[name]),
                f"{calls / wall[name]:.0f} calls/s; {fmt_ratio(wall[name] / limit)} the limit; "
                f"client CPU {fmt_seconds(cpu[name])}; {len(values)} round(s)",
            )
        )
    return Report(
        title="2. Fan-out",
        setup=(
            f"{calls} `jobs.get` of 20 jobs, all issued at once; the server adds "
            f"{LATENCY * 1000:.0f} ms to every answer; each round a fresh client whose "
            "connections are opened by a warm-up burst first; the reference shares one "
            f"project object across a {THREADS}-thread pool (its `requests.Session` pools "
            "10 connections per host and discards extra ones). The raw httpx row uses one "
            "httpx pool of 64 connections, which the SDK's transport avoids (see "
            "`nexus_async/_transport.py`)."
        ),
        rows=rows,
        targets=[
            Target(
                "≥ 3x the reference's throughput",
                ref >= 3 * ours,
                f"{fmt_ratio(ref / ours)}",
            ),
            Target(
                "within 1.2x of the limit",
                ours <= 1.2 * limit,
                f"{fmt_ratio(ours / limit)}",
            ),
        ],
    )


if __name__ == "__main__":
    bench_main(run)
