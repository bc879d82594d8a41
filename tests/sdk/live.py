"""Helpers for tests against the local server over real HTTP."""

from __future__ import annotations

from collections.abc import Sequence

from nexus_async import AsyncClient, Job, Jobs
from nexus_async.server import LocalNexus

from ..support import DEAD_ENDPOINT, png_data_url

__all__ = [
    "DEAD_ENDPOINT",
    "assert_pool_idle",
    "create_jobs",
    "job_options",
    "png_data_url",
    "pool_count",
    "quiet_job",
]


def job_options(
    nexus: LocalNexus,
    items: int = 3,
    *,
    urls: Sequence[str] | None = None,
    **times: int,
) -> dict[str, object]:
    """Options for a job over `items` tiny images whose deliveries fail fast."""
    dataset_id = nexus.seed_dataset(list(urls) if urls is not None else [png_data_url()] * items)
    webhook_id = nexus.seed_webhook(DEAD_ENDPOINT, max_retries=0, max_backoff_ms=1)
    return {
        "dataset_id": dataset_id,
        "webhook_id": webhook_id,
        "deployment_id": nexus.deployment_id,
        **times,
    }


async def create_jobs(jobs: Jobs, nexus: LocalNexus, count: int, items: int = 1) -> list[Job]:
    options = job_options(nexus, items)
    return [await jobs.create(f"job-{i}", options) for i in range(count)]


async def quiet_job(jobs: Jobs, nexus: LocalNexus) -> Job:
    """A job that starts in the far future, so it writes no log entries of its own."""
    return await jobs.create("quiet", job_options(nexus, start_at_time=10**13 - 1))


def pool_count(client: AsyncClient) -> int:
    """How many connection pools (of one connection each) the client's own transport opened."""
    transport = client.diagnostics().http.transport
    assert transport is not None, "the client was given an http_client"
    return transport.pools


def assert_pool_idle(client: AsyncClient) -> None:
    """No request is waiting for, or holding, a connection of the client's pools.

    With an `http_client` of the caller's, only the SDK's own counts are checked
    (requests waiting and on the wire); the pool is the caller's to inspect.
    """
    stats = client.diagnostics().http
    assert stats.in_flight == 0, f"a request is still in flight: {stats}"
    assert stats.waiting == 0, f"a call still waits to send: {stats}"
    if stats.transport is not None:
        assert stats.transport.in_flight == 0, f"a response is still open: {stats}"
