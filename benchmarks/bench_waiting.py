"""Waiting on 500 jobs: naive per-job `wait_until_done` against coalesced `wait_all`.

A third row runs `wait_all` with a `DeliveryReceiver` connected to the client
(`receiver.connect(client)`), the jobs delivering their results to it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from nexus_async import AsyncClient, Delivery, DeliveryReceiver, Job, signing
from nexus_async.server import serve_asgi

from ._common import (
    Report,
    Row,
    Server,
    Target,
    alternate,
    bench_main,
    fmt_ratio,
    median,
    serve,
)

JOBS = 500
# A sparse batch, as most services see one: jobs finish seconds apart, so a delivery
# can tell a waiter about each finish long before its next poll would.
SPARSE_JOBS = 20
SPREAD_MS = 10_000  # start times spread over this long
LEAD_MS = 3_000  # the first job starts this long after creation began
INTERVAL = 5.0  # the SDK's default longest wait between polls
TIMEOUT = 120.0


@dataclass
class Outcome:
    requests: int
    rounds: int  # poll rounds: poller ticks, or the most polls one naive waiter made
    peak_per_second: int
    delays_ms: list[float]  # when the caller learned of each finish - its updateDate
    seconds: float

    @property
    def per_round(self) -> float:
        return self.requests / max(1, self.rounds)


async def _create(
    server: Server, client: AsyncClient, webhook_id: str | None, count: int
) -> list[str]:
    """`count` one-item jobs starting at staggered times over SPREAD_MS."""
    jobs = client.get_project(server.project_id).batch.jobs
    options = server.fast_job_options()
    if webhook_id is not None:
        options["webhook_id"] = webhook_id
    start = int(time.time() * 1000) + LEAD_MS
    ids: list[str] = [""] * count
    limiter = anyio.Semaphore(32)

    async def one(index: int) -> None:
        at = start + index * SPREAD_MS // count
        async with limiter:
            ids[index] = (await jobs.create(f"wait-{index}", {**options, "start_at_time": at})).id

    async with anyio.create_task_group() as tg:
        for index in range(count):
            tg.start_soon(one, index)
    return ids


def _learned(seen: dict[str, float]) -> Callable[[Job], None]:
    def record(job: Job) -> None:
        if job.status.is_finished and job.id not in seen:
            seen[job.id] = time.time() * 1000 - job.status.update_date

    return record


async def _ignore(delivery: Delivery) -> None:
    pass


def _measure(
    server: Server, coalesced: bool, woken: bool = False, count: int = JOBS
) -> Callable[[], Outcome]:
    async def go() -> Outcome:
        secret = signing.generate_secret()
        receiver = DeliveryReceiver(secret, _ignore)
        async with (
            AsyncClient(server.secret_key, base_url=server.base_url) as client,
            serve_asgi(receiver.app("/hook")) as url,
        ):
            webhook_id = None
            if woken:
                receiver.connect(client)
                webhook_id = server.seed_webhook(
                    f"{url}/hook", max_retries=0, max_backoff_ms=1, secret=secret
                )
            jobs = client.get_project(server.project_id).batch.jobs
            ids = await _create(server, client, webhook_id, count)
            server.clear_requests()
            sent = client.diagnostics().requests_sent
            delays: dict[str, float] = {}
            record = _learned(delays)
            started = time.monotonic()
            if coalesced:
                await jobs.wait_all(
                    ids,
                    interval=INTERVAL,
                    timeout=TIMEOUT,
                    raise_exception_if=None,
                    on_update=record,
                )
                (poller,) = client.diagnostics().pollers
                rounds = poller.ticks
            else:

                async def wait_one(job_id: str) -> None:
                    record(
                        await jobs.wait_until_done(
                            job_id, interval=INTERVAL, timeout=TIMEOUT, raise_exception_if=None
                        )
                    )

                async with anyio.create_task_group() as tg:
                    for job_id in ids:
                        tg.start_soon(wait_one, job_id)
                rounds = 0
            seconds = time.monotonic() - started
            requests = client.diagnostics().requests_sent - sent
        log = server.requests()
        if not coalesced:
            rounds = max(Counter(r["path"] for r in log if r["method"] == "GET").values())
        per_second = Counter(int(r["time"]) for r in log)
        return Outcome(
            requests=requests,
            rounds=rounds,
            peak_per_second=max(per_second.values(), default=0),
            delays_ms=[delays[job_id] for job_id in ids],
            seconds=seconds,
        )

    return lambda: anyio.run(go)


def run(quick: bool) -> Report:
    """Waiting: 500 naive wait_until_done coroutines vs one coalesced wait_all."""
    rounds = 1 if quick else 2
    with serve() as server:
        samples = alternate(
            {
                f"{JOBS} x `wait_until_done` (one poll loop per job)": _measure(server, False),
                "`wait_all` (one coalescing poller)": _measure(server, True),
                "`wait_all`, a receiver connected (`receiver.connect(client)`)": _measure(
                    server, True, woken=True
                ),
                f"{SPARSE_JOBS} jobs: `wait_all`, polling alone": _measure(
                    server, True, count=SPARSE_JOBS
                ),
                f"{SPARSE_JOBS} jobs: `wait_all`, a receiver connected": _measure(
                    server, True, woken=True, count=SPARSE_JOBS
                ),
            },
            rounds=rounds,
            budget=60.0,
        )
    rows = []
    summary: dict[str, tuple[float, float, float]] = {}
    for name, outcomes in samples.items():
        requests = median([o.requests for o in outcomes])
        mean_delay = median([sum(o.delays_ms) / len(o.delays_ms) for o in outcomes])
        max_delay = median([max(o.delays_ms) for o in outcomes])
        summary[name] = (requests, mean_delay, max_delay)
        rows.append(
            Row(
                name,
                f"{requests:,.0f} requests",
                f"{median([o.rounds for o in outcomes]):.0f} poll rounds, "
                f"{median([o.per_round for o in outcomes]):.1f} requests per round, peak "
                f"{median([o.peak_per_second for o in outcomes]):.0f} requests/s; detection "
                f"delay mean {mean_delay / 1000:.2f} s, max {max_delay / 1000:.2f} s; "
                f"{median([o.seconds for o in outcomes]):.1f} s in all; {len(outcomes)} run(s)",
            )
        )
    (
        (naive_req, naive_mean, _),
        (ours_req, ours_mean, _),
        (woken_req, woken_mean, _),
        (sparse_req, sparse_mean, _),
        (sparse_woken_req, sparse_woken_mean, _),
    ) = summary.values()
    return Report(
        title="5. Waiting on many jobs",
        setup=(
            f"{JOBS} one-item jobs whose start times are spread over {SPREAD_MS / 1000:.0f} s "
            f"(each finishes soon after it starts); interval={INTERVAL:g} s (the default) for "
            "both; detection delay = when the caller learned a job had finished minus the "
            "job's `status.updateDate`; requests counted by the client, rounds and peak "
            "rate from the server's request log. The receiver row's jobs deliver to a "
            "`DeliveryReceiver` in the benchmark process, connected to the client. The "
            f"last two rows: {SPARSE_JOBS} such jobs over the same {SPREAD_MS / 1000:.0f} s."
        ),
        rows=rows,
        targets=[
            Target(
                "`wait_all` ≥ 20x fewer requests",
                naive_req >= 20 * ours_req,
                f"{fmt_ratio(naive_req / ours_req)} fewer",
            ),
            Target(
                "mean detection delay no worse",
                ours_mean <= naive_mean,
                f"{ours_mean / 1000:.2f} s vs {naive_mean / 1000:.2f} s",
            ),
            Target(
                "a connected receiver: no more requests than polling alone",
                woken_req <= ours_req,
                f"{woken_req:.0f} vs {ours_req:.0f}; mean delay {woken_mean / 1000:.2f} s vs "
                f"{ours_mean / 1000:.2f} s",
            ),
            Target(
                f"{SPARSE_JOBS} jobs, a connected receiver: mean delay < 0.2 s, "
                "no more requests than polling alone",
                sparse_woken_mean < 200 and sparse_woken_req <= sparse_req,
                f"{sparse_woken_mean / 1000:.2f} s vs {sparse_mean / 1000:.2f} s; "
                f"{sparse_woken_req:.0f} vs {sparse_req:.0f} requests",
            ),
        ],
    )


if __name__ == "__main__":
    bench_main(run)
