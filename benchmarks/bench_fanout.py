"""Fan-out: 1,000 concurrent `jobs.get` at 50 ms latency, and the client CPU each costs.

Two servers. The minimal responder (`benchmarks._responder`, its own process on the
server's core) answers as fast as the limit needs, so the rows against it measure the
clients: the SDK, the reference SDK on 32 threads, and raw httpcore and raw httpx
clients of 64 connections each (one pool per connection, the cheapest way to drive
them, plus, in the full run, one httpx pool of 64 connections). Against the local
server (full run only) the SDK and the reference meet the server's own limit, a few
hundred answers per second on one core.

"CPU per request" is this process's CPU time (`time.process_time()`, all threads)
over the 1,000 calls, divided by 1,000: what each client spends per answer, with
the server's CPU in another process.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

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

LATENCY = 0.05
CALLS = 1000
MAX_CONNECTIONS = 64  # AsyncClient's default
THREADS = 32
CPU_TARGET = 1.25  # the SDK's CPU per request, at most this times raw httpcore's


class _Target:
    """Where the contenders send: a base URL, a key and a project with jobs."""

    def __init__(self, base_url: str, secret_key: str, project_id: str, job_ids: list[str]):
        self.base_url = base_url
        self.secret_key = secret_key
        self.project_id = project_id
        self.job_ids = job_ids

    def job_url(self, job_id: str) -> str:
        return f"{self.base_url}/projects/{self.project_id}/batch/jobs/{job_id}"

    def ids(self) -> list[str]:
        return [self.job_ids[index % len(self.job_ids)] for index in range(CALLS)]


async def _fan_out(get: Callable[[str], Coroutine[Any, Any, object]], job_ids: list[str]) -> None:
    async with anyio.create_task_group() as tg:
        for job_id in job_ids:
            tg.start_soon(get, job_id)


def _timed(
    target: _Target, make: Callable[[], Any], get_with: Callable[[Any], Callable[[str], Any]]
) -> Callable[[], Timing]:
    """A fresh client per round (an async context manager), warmed up, then timed."""

    async def go() -> Timing:
        async with make() as client:
            get = get_with(client)
            await _fan_out(get, target.ids()[:MAX_CONNECTIONS])  # open the connections
            with Stopwatch() as watch:
                await _fan_out(get, target.ids())
            return watch.timing

    return lambda: anyio.run(go)


def _ours(target: _Target) -> Callable[[], Timing]:
    return _timed(
        target,
        lambda: AsyncClient(target.secret_key, base_url=target.base_url),
        lambda client: client.get_project(target.project_id).batch.jobs.get,
    )


class _Spread:
    """`count` raw clients of one connection each; a call takes a free one.

    The cheapest way to drive httpcore or httpx with many connections: no pool
    ever holds more than one, so none of them scans its connections.
    """

    def __init__(self, clients: list[Any]) -> None:
        self.clients = clients
        self.free = list(clients)
        self.slots = anyio.Semaphore(len(clients))

    async def __aenter__(self) -> _Spread:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self.clients:
            await client.aclose()


def _raw_httpcore(target: _Target) -> Callable[[], Timing]:
    headers = {"Secret-Key": target.secret_key, "Accept": "application/json"}

    def make() -> _Spread:
        return _Spread([httpcore.AsyncConnectionPool(max_connections=1) for _ in range(64)])

    def get_with(spread: _Spread) -> Callable[[str], Awaitable[None]]:
        async def get(job_id: str) -> None:
            async with spread.slots:
                pool = spread.free.pop()
                try:
                    response = await pool.request("GET", target.job_url(job_id), headers=headers)
                finally:
                    spread.free.append(pool)
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")
                json.loads(response.content)

        return get

    return _timed(target, make, get_with)


def _raw_httpx(target: _Target) -> Callable[[], Timing]:
    headers = {"Secret-Key": target.secret_key, "Accept": "application/json"}
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    def make() -> _Spread:
        return _Spread(
            [httpx.AsyncClient(headers=headers, limits=one, trust_env=False) for _ in range(64)]
        )

    def get_with(spread: _Spread) -> Callable[[str], Awaitable[None]]:
        async def get(job_id: str) -> None:
            async with spread.slots:
                client = spread.free.pop()
                try:
                    response = await client.get(target.job_url(job_id))
                finally:
                    spread.free.append(client)
                json.loads(response.raise_for_status().content)

        return get

    return _timed(target, make, get_with)


def _raw_httpx_one_pool(target: _Target) -> Callable[[], Timing]:
    headers = {"Secret-Key": target.secret_key, "Accept": "application/json"}
    limits = httpx.Limits(
        max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
    )

    def make() -> httpx.AsyncClient:
        return httpx.AsyncClient(headers=headers, limits=limits, timeout=60.0, trust_env=False)

    def get_with(client: httpx.AsyncClient) -> Callable[[str], Awaitable[None]]:
        async def get(job_id: str) -> None:
            json.loads((await client.get(target.job_url(job_id))).raise_for_status().content)

        return get

    return _timed(target, make, get_with)


def _reference(target: _Target) -> Callable[[], Timing]:
    def go() -> Timing:
        project = reference_project(target.base_url, target.secret_key, target.project_id)
        jobs = project.batch.jobs
        ids = target.ids()
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


def _make_jobs(server: Server, count: int) -> list[str]:
    async def make() -> list[str]:
        async with AsyncClient(server.secret_key, base_url=server.base_url) as client:
            jobs = client.get_project(server.project_id).batch.jobs
            options = server.fast_job_options(start_at_time=10**13 - 1)  # never start
            return [(await jobs.create(f"fan-out-{i}", options)).id for i in range(count)]

    return anyio.run(make)


def _bodies(server: Server, job_id: str, count: int) -> tuple[dict[str, Any], list[str]]:
    """`count` jobs for the responder: the local server's JSON of one job, under new IDs."""
    path = f"/projects/{server.project_id}/batch/jobs/{job_id}"
    answer = httpx.get(
        server.base_url + path, headers={"Secret-Key": server.secret_key}, trust_env=False
    )
    template: dict[str, Any] = answer.raise_for_status().json()
    bodies: dict[str, Any] = {}
    ids = []
    for index in range(count):
        new_id = f"batchjob_{uuid.uuid4()}"
        ids.append(new_id)
        bodies[f"/projects/{server.project_id}/batch/jobs/{new_id}"] = {
            **template,
            "id": new_id,
            "name": f"fan-out-{index}",
        }
    return bodies, ids


def run(quick: bool) -> Report:
    """Fan-out: 1,000 concurrent jobs.get at 50 ms; throughput and client CPU per request."""
    rounds, budget = (1, 30.0) if quick else (3, 150.0)
    limit = math.ceil(CALLS / MAX_CONNECTIONS) * LATENCY
    ours = f"nexus_async, {CALLS} tasks, max_connections={MAX_CONNECTIONS} (default)"
    ref = f"reference, {THREADS}-thread pool"
    core = f"raw httpcore, {MAX_CONNECTIONS} pools of one connection, {CALLS} tasks"
    raw = f"raw httpx, {MAX_CONNECTIONS} clients of one connection, {CALLS} tasks"
    one_pool = f"raw httpx, one pool of {MAX_CONNECTIONS} connections, {CALLS} tasks"
    with serve(latency=LATENCY) as server:
        local_ids = _make_jobs(server, 20)
        bodies, responder_ids = _bodies(server, local_ids[0], CALLS)
        split = _split_cpus()  # the responder goes where the server is pinned
        with responder(
            bodies, latency=LATENCY, cpus=None if split is None else split[1]
        ) as base_url:
            fast = _Target(base_url, server.secret_key, server.project_id, responder_ids)
            contenders = {
                ours: _ours(fast),
                ref: _reference(fast),
                core: _raw_httpcore(fast),
                raw: _raw_httpx(fast),
            }
            if not quick:  # slow (httpcore's pool bookkeeping), so only in the full run
                contenders[one_pool] = _raw_httpx_one_pool(fast)
            samples = alternate(contenders, rounds=rounds, budget=budget)
        local: dict[str, list[Timing]] = {}
        if not quick:
            slow = _Target(server.base_url, server.secret_key, server.project_id, local_ids)
            local = alternate(
                {ours: _ours(slow), ref: _reference(slow)}, rounds=rounds, budget=budget / 2
            )
    wall = {name: median([t.wall for t in values]) for name, values in samples.items()}
    cpu = {name: median([t.cpu for t in values]) / CALLS for name, values in samples.items()}
    rows = [
        Row(
            f"limit: ⌈{CALLS} / {MAX_CONNECTIONS}⌉ x {LATENCY * 1000:.0f} ms",
            fmt_seconds(limit),
            f"{CALLS / limit:.0f} calls/s",
        )
    ]
    for name, values in samples.items():
        rows.append(
            Row(
                f"responder: {name}",
                fmt_seconds(wall[name]),
                f"{CALLS / wall[name]:.0f} calls/s; {fmt_ratio(wall[name] / limit)} the limit; "
                f"client CPU {fmt_seconds(cpu[name] * CALLS)}; {len(values)} round(s)",
            )
        )
    for name in (core, raw, ours, ref):
        rows.append(
            Row(
                f"CPU per request: {name.split(',')[0]}",
                fmt_seconds(cpu[name]),
                f"{fmt_ratio(cpu[name] / cpu[core])} raw httpcore's (responder rows)",
            )
        )
    for name, values in local.items():
        local_wall = median([t.wall for t in values])
        local_cpu = median([t.cpu for t in values])
        rows.append(
            Row(
                f"local server: {name}",
                fmt_seconds(local_wall),
                f"{CALLS / local_wall:.0f} calls/s; {fmt_ratio(local_wall / limit)} the limit; "
                f"client CPU {fmt_seconds(local_cpu)}; {len(values)} round(s)",
            )
        )
    return Report(
        title="2. Fan-out",
        setup=(
            f"{CALLS} `jobs.get` issued at once, {LATENCY * 1000:.0f} ms added to every "
            "answer; each round a fresh client whose connections are opened by a warm-up "
            "burst first; contenders alternate. 'responder' rows: a minimal asyncio "
            "HTTP/1.1 server in its own process on the server's core "
            f"(`benchmarks/_responder.py`), answering {CALLS} distinct jobs (the local "
            "server's JSON of a job under new IDs), so the limit is reachable and the "
            "client is what is measured. The raw rows drive 64 connections the cheapest "
            "way (one pool per connection, a call takes a free one) and json.loads the "
            "body; the one-pool httpx row shows httpcore's pool bookkeeping, which the "
            "SDK's transport avoids (`nexus_async/_transport.py`). CPU per request: this "
            f"process's CPU time over the {CALLS} calls / {CALLS}. The reference shares "
            f"one project object across a {THREADS}-thread pool (its `requests.Session` "
            "pools 10 connections per host and discards extra ones). 'local server' rows: "
            "the same calls of 20 jobs against `nexus-async serve` on one core."
        ),
        rows=rows,
        targets=[
            Target(
                "≥ 3x the reference's throughput (responder)",
                wall[ref] >= 3 * wall[ours],
                f"{fmt_ratio(wall[ref] / wall[ours])}",
            ),
            Target(
                "within 1.2x of the limit (responder)",
                wall[ours] <= 1.2 * limit,
                f"{fmt_ratio(wall[ours] / limit)}",
            ),
            Target(
                f"client CPU per `jobs.get` ≤ {CPU_TARGET}x raw httpcore's",
                cpu[ours] <= CPU_TARGET * cpu[core],
                f"{fmt_ratio(cpu[ours] / cpu[core])} ({fmt_seconds(cpu[ours])} vs "
                f"{fmt_seconds(cpu[core])}; raw httpx {fmt_ratio(cpu[raw] / cpu[core])})",
            ),
        ],
    )


if __name__ == "__main__":
    bench_main(run)
