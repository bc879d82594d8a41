"""Per-call overhead: sequential `jobs.get` against raw httpx and the reference SDK.

Against the local server (wall time includes its own) and, for the client's share
alone, against the minimal responder (`benchmarks._responder`, no added latency), where
raw httpcore is the floor: there the rows compare each client's CPU per call.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable

import anyio
import httpcore
import httpx

from nexus_async import AsyncClient

from ._common import (
    Report,
    Row,
    Server,
    Stopwatch,
    Target,
    Timing,
    _split_cpus,
    alternate,
    bench_main,
    fmt_ratio,
    fmt_seconds,
    median,
    reference_project,
    serve,
)
from ._responder import responder

WARMUP = 20


def _ours(
    server: Server,
    job_id: str,
    calls: int,
    *,
    backend: str = "asyncio",
    uvloop: bool = False,
    base_url: str | None = None,
) -> Callable[[], Timing]:
    async def go() -> Timing:
        async with AsyncClient(server.secret_key, base_url=base_url or server.base_url) as client:
            jobs = client.get_project(server.project_id).batch.jobs
            for _ in range(WARMUP):
                await jobs.get(job_id)
            with Stopwatch() as watch:
                for _ in range(calls):
                    await jobs.get(job_id)
            return watch.timing.per(calls)

    options = {"use_uvloop": True} if uvloop else {}
    return lambda: anyio.run(go, backend=backend, backend_options=options)


def _raw_httpx(
    server: Server, job_id: str, calls: int, base_url: str | None = None
) -> Callable[[], Timing]:
    url = f"{base_url or server.base_url}/projects/{server.project_id}/batch/jobs/{job_id}"

    async def go() -> Timing:
        headers = {"Secret-Key": server.secret_key}
        async with httpx.AsyncClient(headers=headers) as client:
            for _ in range(WARMUP):
                json.loads((await client.get(url)).content)
            with Stopwatch() as watch:
                for _ in range(calls):
                    response = await client.get(url)
                    response.raise_for_status()
                    json.loads(response.content)
            return watch.timing.per(calls)

    return lambda: anyio.run(go)


def _raw_httpcore(base_url: str, server: Server, job_id: str, calls: int) -> Callable[[], Timing]:
    url = f"{base_url}/projects/{server.project_id}/batch/jobs/{job_id}"
    headers = [(b"Secret-Key", server.secret_key.encode()), (b"Accept", b"application/json")]

    async def go() -> Timing:
        async with httpcore.AsyncConnectionPool(max_connections=1) as pool:
            for _ in range(WARMUP):
                json.loads((await pool.request("GET", url, headers=headers)).content)
            with Stopwatch() as watch:
                for _ in range(calls):
                    response = await pool.request("GET", url, headers=headers)
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}")
                    json.loads(response.content)
            return watch.timing.per(calls)

    return lambda: anyio.run(go)


def _reference(
    server: Server, job_id: str, calls: int, base_url: str | None = None
) -> Callable[[], Timing]:
    def go() -> Timing:
        url = base_url or server.base_url
        jobs = reference_project(url, server.secret_key, server.project_id).batch.jobs
        for _ in range(WARMUP):
            jobs.get(job_id)
        with Stopwatch() as watch:
            for _ in range(calls):
                jobs.get(job_id)
        return watch.timing.per(calls)

    return go


def run(quick: bool) -> Report:
    """Per-call overhead: sequential jobs.get vs raw httpx + json.loads vs the reference."""
    calls, rounds, budget = (300, 3, 25.0) if quick else (1000, 7, 90.0)
    with serve() as server:

        async def make_job() -> str:
            async with AsyncClient(server.secret_key, base_url=server.base_url) as client:
                jobs = client.get_project(server.project_id).batch.jobs
                options = server.fast_job_options(start_at_time=10**13 - 1)  # never starts
                return (await jobs.create("overhead", options)).id

        job_id = anyio.run(make_job)
        contenders = {
            "raw httpx GET + json.loads (the limit)": _raw_httpx(server, job_id, calls),
            "nexus_async `jobs.get`": _ours(server, job_id, calls),
            "reference `jobs.get`": _reference(server, job_id, calls),
            "nexus_async `jobs.get` on trio (for information)": _ours(
                server, job_id, calls, backend="trio"
            ),
        }
        if importlib.util.find_spec("uvloop") is not None:
            contenders["nexus_async `jobs.get` on asyncio + uvloop (for information)"] = _ours(
                server, job_id, calls, uvloop=True
            )
        samples = alternate(contenders, rounds=rounds, budget=budget)
        path = f"/projects/{server.project_id}/batch/jobs/{job_id}"
        answer = httpx.get(
            server.base_url + path, headers={"Secret-Key": server.secret_key}, trust_env=False
        )
        split = _split_cpus()  # the responder goes where the server is pinned
        cpus = None if split is None else split[1]
        with responder({path: answer.raise_for_status().json()}, latency=0.0, cpus=cpus) as url:
            fast = alternate(
                {
                    "raw httpcore": _raw_httpcore(url, server, job_id, calls),
                    "raw httpx": _raw_httpx(server, job_id, calls, base_url=url),
                    "nexus_async": _ours(server, job_id, calls, base_url=url),
                    "reference": _reference(server, job_id, calls, base_url=url),
                },
                rounds=rounds,
                budget=budget,
            )
    wall = {name: median([t.wall for t in values]) for name, values in samples.items()}
    cpu = {name: median([t.cpu for t in values]) for name, values in samples.items()}
    raw, ours, ref = list(wall.values())[:3]
    raw_cpu, ours_cpu, ref_cpu = list(cpu.values())[:3]
    rows = [
        Row(
            name,
            f"{fmt_seconds(wall[name])} per call",
            f"client CPU {fmt_seconds(cpu[name])} per call; {len(values)} rounds x {calls} calls",
        )
        for name, values in samples.items()
    ]
    rows[1].detail += (
        f"; wall {fmt_ratio(ours / raw)} raw httpx; the reference takes "
        f"{fmt_ratio(ref / ours)} our wall time and {fmt_ratio(ref_cpu / ours_cpu)} our CPU"
    )
    fast_wall = {name: median([t.wall for t in values]) for name, values in fast.items()}
    fast_cpu = {name: median([t.cpu for t in values]) for name, values in fast.items()}
    floor = fast_cpu["raw httpcore"]
    for name, values in fast.items():
        rows.append(
            Row(
                f"responder: {name}",
                f"{fmt_seconds(fast_cpu[name])} CPU per call",
                f"{fmt_ratio(fast_cpu[name] / floor)} raw httpcore's CPU, "
                f"{fmt_ratio(fast_cpu[name] / fast_cpu['raw httpx'])} raw httpx's; wall "
                f"{fmt_seconds(fast_wall[name])} per call; {len(values)} rounds x {calls} calls",
            )
        )
    return Report(
        title="1. Per-call overhead",
        setup=(
            "one job fetched sequentially over one keep-alive connection from the server "
            "process (no added latency); each round a fresh client, "
            f"{WARMUP} warm-up calls, then {calls} timed calls; contenders alternate. "
            "Wall time per call includes the server's own time; client CPU is this "
            "process's CPU time per call. 'responder' rows: the same calls against the "
            "minimal responder (`benchmarks/_responder.py`, the server's JSON of the job), "
            "where the server's share is next to nothing; raw httpcore and raw httpx "
            "json.loads the body."
        ),
        rows=rows,
        targets=[
            Target(
                "within 1.25x of raw httpx",
                ours <= 1.25 * raw,
                f"wall {fmt_ratio(ours / raw)}, client CPU {fmt_ratio(ours_cpu / raw_cpu)}",
            ),
            Target(
                "faster than the reference",
                ours < ref,
                f"ours {fmt_ratio(ours / ref)} the reference's wall time, "
                f"{fmt_ratio(ours_cpu / ref_cpu)} its CPU; raw httpx (the limit) "
                f"{fmt_ratio(raw / ref)} its wall time",
            ),
        ],
    )


if __name__ == "__main__":
    bench_main(run)
