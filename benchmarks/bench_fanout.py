"""Fan-out: 1,000 concurrent `jobs.get` against the reference SDK on 32 threads, 50 ms latency."""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import anyio

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


def _reference(server: Server, job_ids: list[str], calls: int) -> Callable[[], Timing]:
    def go() -> Timing:
        jobs = server.reference_project().batch.jobs
        ids = [job_ids[index % len(job_ids)] for index in range(calls)]
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(jobs.get, ids[:THREADS]))  # warm-up: start the threads
            with Stopwatch() as watch:
                list(pool.map(jobs.get, ids))
        return watch.timing

    return go


def run(quick: bool) -> Report:
    """Fan-out: 1,000 concurrent jobs.get vs the reference on a 32-thread pool, 50 ms latency."""
    calls = 1000
    rounds, budget = (2, 20.0) if quick else (5, 60.0)
    limit = math.ceil(calls / MAX_CONNECTIONS) * LATENCY
    with serve(latency=LATENCY) as server:

        async def make_jobs() -> list[str]:
            async with AsyncClient(server.secret_key, base_url=server.base_url) as client:
                jobs = client.get_project(server.project_id).batch.jobs
                options = server.fast_job_options(start_at_time=10**13 - 1)  # never start
                return [(await jobs.create(f"fan-out-{i}", options)).id for i in range(20)]

        job_ids = anyio.run(make_jobs)
        samples = alternate(
            {
                f"nexus_async, {calls} tasks, max_connections={MAX_CONNECTIONS}": _ours(
                    server, job_ids, calls
                ),
                f"reference, {THREADS}-thread pool": _reference(server, job_ids, calls),
            },
            rounds=rounds,
            budget=budget,
        )
    (ours_name, ours_t), (ref_name, ref_t) = samples.items()
    ours = median([t.wall for t in ours_t])
    ref = median([t.wall for t in ref_t])
    rows = [
        Row(
            f"limit: ⌈{calls} / {MAX_CONNECTIONS}⌉ x {LATENCY * 1000:.0f} ms",
            fmt_seconds(limit),
            f"{calls / limit:.0f} calls/s",
        ),
        Row(
            ours_name,
            fmt_seconds(ours),
            f"{calls / ours:.0f} calls/s; {fmt_ratio(ours / limit)} the limit; "
            f"client CPU {fmt_seconds(median([t.cpu for t in ours_t]))}; {len(ours_t)} rounds",
        ),
        Row(
            ref_name,
            fmt_seconds(ref),
            f"{calls / ref:.0f} calls/s; client CPU {fmt_seconds(median([t.cpu for t in ref_t]))}"
            f"; {len(ref_t)} rounds",
        ),
    ]
    return Report(
        title="2. Fan-out",
        setup=(
            f"{calls} `jobs.get` of 20 jobs, all issued at once; the server adds "
            f"{LATENCY * 1000:.0f} ms to every answer; each round a fresh client whose "
            "connections are opened by a warm-up burst first; the reference shares one "
            f"project object across a {THREADS}-thread pool (its `requests.Session` pools "
            "10 connections per host and discards extra ones)."
        ),
        rows=rows,
        targets=[
            Target("≥ 3x the reference's throughput", ref >= 3 * ours, fmt_ratio(ref / ours)),
            Target("within 1.2x of the limit", ours <= 1.2 * limit, fmt_ratio(ours / limit)),
        ],
    )


if __name__ == "__main__":
    bench_main(run)
