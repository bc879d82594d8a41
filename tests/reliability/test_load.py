"""Load on the local server: many clients at once while big jobs run, everything accounted for.

`MAIN_JOBS` jobs of `ITEMS` distinct tiny images deliver to a real `DeliveryReceiver`
served over loopback, while `CLIENTS` clients at once create, list, poll and delete
small jobs of their own (a third of those deleted while they run). Every snapshot
any client sees must satisfy the spec's counter invariants. Afterwards every finished
job has all its items ended; every item of a finished job reached the receiver's
callback exactly once (by delivery ID, and per job and item URL), and the receiver
saw as many distinct deliveries as the job counted delivered; and each finished
job's log holds exactly one entry per stage outcome.

Sizes: 20 jobs of 500 items (10,000 items), about 30 s on asyncio and 40 s on trio
on an otherwise idle 2-core machine (the local pipeline moves roughly 250-350 items
per second), and several times that when other processes share the cores: trio's took
over 240 s with the load average at 6.
`NEXUS_LOAD_ITEMS` sets another size, e.g. 100 for a quick local run.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping

import anyio
import pytest

from nexus_async import (
    AsyncClient,
    Backoff,
    Delivery,
    DeliveryReceiver,
    Job,
    Jobs,
    RetryPolicy,
    signing,
)
from nexus_async.receiver import ReceiverResponse
from nexus_async.server import LocalNexus, serve_asgi

from ..support import Changes, distinct_pngs

MAIN_JOBS = 20
ITEMS = int(os.environ.get("NEXUS_LOAD_ITEMS", "500"))
CLIENTS = 50
ROUNDS = 2
CLIENT_ITEMS = 4
LIMIT = 420.0  # seconds for the whole run, per backend: a guard against a hang, not a target

RETRY = RetryPolicy(attempts=5, total_time=30.0, backoff=Backoff(initial=0.05, maximum=0.5))
STAGE_KINDS = {
    "ItemGathered": "gathered",
    "ItemPreprocessed": "preprocessed",
    "ItemPredicted": "predicted",
    "ItemDelivered": "delivered",
}


def check_invariants(job: Job, totals: Mapping[str, int]) -> None:
    """The spec's counter invariants, at any instant; all items ended once Reached."""
    c = job.status.items
    total = totals.get(job.spec.dataset_id)
    if total is not None:
        assert c.gathered + c.failed_gather <= total, job
    assert c.preprocessed + c.failed_process <= c.gathered, job
    assert c.predicted + c.failed_predict <= c.preprocessed, job
    assert c.delivered + c.failed_deliver <= c.predicted, job
    if str(job.status.overview) == "Reached" and total is not None:
        assert c.gathered + c.failed_gather == total, job
        assert c.preprocessed + c.failed_process == c.gathered, job
        assert c.predicted + c.failed_predict == c.preprocessed, job
        assert c.delivered + c.failed_deliver == c.predicted, job


class Recording(DeliveryReceiver):
    """A receiver that also remembers every answer it gave."""

    def __init__(self, secret: str, on_delivery: Callable[[Delivery], Awaitable[None]]) -> None:
        super().__init__(secret, on_delivery, max_pending=5000)
        self.answers: Counter[int] = Counter()

    def handle(self, body: bytes, headers: Mapping[str, str]) -> ReceiverResponse:
        answer = super().handle(body, headers)
        self.answers[answer.status] += 1
        return answer


async def check_logs(jobs: Jobs, job: Job) -> None:
    """One log entry per stage outcome, one JobStarted and one JobFinished."""
    kinds = Counter([e.kind async for e in jobs.get_all_logs(job.id)])
    c = job.status.items
    for kind, counter in STAGE_KINDS.items():
        assert kinds[kind] == getattr(c, counter), (job.id, kind, kinds)
    failed = c.failed_gather + c.failed_process + c.failed_predict + c.failed_deliver
    assert kinds["ItemFailed"] == failed, (job.id, kinds)
    assert kinds["JobStarted"] == 1
    assert kinds["JobFinished"] == 1


@pytest.mark.slow
@pytest.mark.timeout(LIMIT + 60)
async def test_many_clients_while_big_jobs_run() -> None:
    received: list[Delivery] = []
    arrived = Changes()

    async def on_delivery(delivery: Delivery) -> None:
        received.append(delivery)
        arrived.notify()

    secret = signing.generate_secret()
    receiver = Recording(secret, on_delivery)
    main_urls = distinct_pngs(ITEMS)
    finished: dict[str, Job] = {}  # every job seen Reached, by id
    deleted_running: list[str] = []
    waited: list[str] = []  # the clients' jobs waited for until they finished
    seen_snapshots = 0

    with anyio.fail_after(LIMIT):
        async with (
            LocalNexus(job_concurrency=MAIN_JOBS + CLIENTS, item_concurrency=8) as nexus,
            serve_asgi(receiver.app("/hook")) as receiver_url,
        ):
            webhook_id = nexus.seed_webhook(
                receiver_url + "/hook", secret=secret, max_retries=10, max_backoff_ms=1000
            )
            main_dataset = nexus.seed_dataset(main_urls)
            totals = {main_dataset: ITEMS}

            def options(dataset_id: str) -> dict[str, object]:
                return {
                    "dataset_id": dataset_id,
                    "webhook_id": webhook_id,
                    "deployment_id": nexus.deployment_id,
                }

            def observe(job: Job) -> None:
                nonlocal seen_snapshots
                seen_snapshots += 1
                check_invariants(job, totals)
                if str(job.status.overview) == "Reached":
                    finished[job.id] = job

            async with AsyncClient(nexus.secret_key, base_url=nexus.base_url, retry=RETRY) as owner:
                jobs = owner.get_project(nexus.project_id).batch.jobs
                main_ids = [
                    (await jobs.create(f"main-{i}", options(main_dataset))).id
                    for i in range(MAIN_JOBS)
                ]

                async def churn(n: int) -> None:
                    async with AsyncClient(
                        nexus.secret_key, base_url=nexus.base_url, retry=RETRY
                    ) as client:
                        mine = client.get_project(nexus.project_id).batch.jobs
                        for round_ in range(ROUNDS):
                            salt = ITEMS + (n * ROUNDS + round_) * CLIENT_ITEMS
                            dataset_id = nexus.seed_dataset(distinct_pngs(CLIENT_ITEMS, salt))
                            totals[dataset_id] = CLIENT_ITEMS
                            job = await mine.create(f"churn-{n}-{round_}", options(dataset_id))
                            for listed in (await mine.list({"limit": 25})).data:
                                observe(listed)
                            if (n + round_) % 3 == 0:
                                await mine.delete(job.id)  # cancels it while it runs
                                deleted_running.append(job.id)
                                continue
                            final = await mine.wait_until_done(
                                job.id, interval=0.3, timeout=LIMIT, on_update=observe
                            )
                            waited.append(final.id)
                            await check_logs(mine, final)
                            await mine.delete(job.id)

                async def watch_main() -> None:
                    async with jobs.as_completed(main_ids, interval=0.5, on_update=observe) as done:
                        async for job in done:
                            assert str(job.status.overview) == "Reached", job

                async with anyio.create_task_group() as tg:
                    tg.start_soon(watch_main)
                    for n in range(CLIENTS):
                        tg.start_soon(churn, n)

                for job_id in main_ids:
                    await check_logs(jobs, finished[job_id])

                # The callback runs just after the 200 that the counter follows: let it catch up.
                def caught_up() -> bool:
                    counts = Counter(d.job_id for d in received)
                    return all(
                        counts[job_id] >= job.status.items.delivered
                        for job_id, job in finished.items()
                    )

                try:
                    await arrived.until(caught_up, timeout=10)
                except TimeoutError:
                    raise AssertionError("counted deliveries never reached the callback") from None

    assert seen_snapshots > MAIN_JOBS + CLIENTS
    assert len(deleted_running) + len(waited) == CLIENTS * ROUNDS
    assert set(main_ids) | set(waited) <= set(finished)

    by_job: dict[str, list[Delivery]] = {}
    for delivery in received:
        by_job.setdefault(delivery.job_id, []).append(delivery)
    # Every delivery reached the callback once, whatever its job's fate.
    assert len({d.delivery_id for d in received}) == len(received)
    assert len({(d.job_id, d.item.url) for d in received}) == len(received)
    for job_id, job in finished.items():
        c = job.status.items
        assert c.failed_gather == c.failed_process == c.failed_predict == c.failed_deliver == 0
        got = by_job.get(job_id, [])
        assert len(got) == c.delivered == totals[job.spec.dataset_id], job_id
    for job_id in main_ids:
        assert sorted(d.item.url for d in by_job[job_id]) == sorted(main_urls)
    assert receiver.answers[401] == receiver.answers[400] == 0
    assert set(by_job) <= set(finished) | set(deleted_running)
