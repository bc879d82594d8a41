"""An answer about another object than the one a request named is a `ResponseDecodeError`.

A transport in front of the real local server sends every request naming object A
to B's path instead, so the server answers (truthfully) about B: what a confused
proxy, cache or API would do. Callers file answers by the ID they asked for, so
accepting B's body as A's would be silently wrong.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from nexus_async import AsyncClient, Batch, ResponseDecodeError
from nexus_async.server import LocalNexus
from nexus_async.signing import generate_secret

from .conftest import FAST_RETRY
from .live import DEAD_ENDPOINT, job_options, png_data_url


class Swap(httpx.AsyncBaseTransport):
    """Sends requests for `wrong` to `right`'s path: the answer is about `right`."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.swaps: dict[str, str] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        for wrong, right in self.swaps.items():
            path = path.replace(f"/{wrong}", f"/{right}")
        request.url = request.url.copy_with(path=path)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
async def swapped(nexus: LocalNexus) -> AsyncIterator[tuple[Batch, Swap]]:
    swap = Swap()
    async with httpx.AsyncClient(transport=swap) as http:
        client = AsyncClient(
            nexus.secret_key, base_url=nexus.base_url, retry=FAST_RETRY, http_client=http
        )
        async with client:
            yield client.get_project(nexus.project_id).batch, swap


Call = Callable[[Batch, str], Awaitable[object]]

JOB_CALLS: dict[str, Call] = {
    "get": lambda b, i: b.jobs.get(i),
    "cancel": lambda b, i: b.jobs.cancel(i),
    "delete": lambda b, i: b.jobs.delete(i),
    "wait_until_done": lambda b, i: b.jobs.wait_until_done(i, interval=0.05, timeout=5),
    "wait_all": lambda b, i: b.jobs.wait_all([i], interval=0.05, timeout=5),
}
DATASET_CALLS: dict[str, Call] = {
    "get": lambda b, i: b.datasets.get(i),
    "delete": lambda b, i: b.datasets.delete(i),
    "wait_until_done": lambda b, i: b.datasets.wait_until_done(i, interval=0.05, timeout=5),
}
WEBHOOK_CALLS: dict[str, Call] = {
    "get": lambda b, i: b.webhooks.get(i),
    "update": lambda b, i: b.webhooks.update(i, {"endpoint": "https://hook.test/x"}),
    "update_secret": lambda b, i: b.webhooks.update_secret(i, generate_secret()),
    "delete": lambda b, i: b.webhooks.delete(i),
}


@pytest.mark.parametrize("name", list(JOB_CALLS))
async def test_jobs_reject_an_answer_about_another_job(
    swapped: tuple[Batch, Swap], nexus: LocalNexus, name: str
) -> None:
    batch, swap = swapped
    asked = await batch.jobs.create("asked", job_options(nexus, start_at_time=10**13 - 1))
    other = await batch.jobs.create("other", job_options(nexus, items=1))
    await batch.jobs.wait_until_done(other.id, interval=0.05, timeout=30)  # finished
    swap.swaps[asked.id] = other.id
    with pytest.raises(ResponseDecodeError, match=other.id):
        await JOB_CALLS[name](batch, asked.id)


@pytest.mark.parametrize("name", list(DATASET_CALLS))
async def test_datasets_reject_an_answer_about_another_dataset(
    swapped: tuple[Batch, Swap], nexus: LocalNexus, name: str
) -> None:
    batch, swap = swapped
    asked, other = (nexus.seed_dataset([png_data_url()], name=n) for n in ("asked", "other"))
    swap.swaps[asked] = other
    with pytest.raises(ResponseDecodeError, match=other):
        await DATASET_CALLS[name](batch, asked)


@pytest.mark.parametrize("name", list(WEBHOOK_CALLS))
async def test_webhooks_reject_an_answer_about_another_webhook(
    swapped: tuple[Batch, Swap], nexus: LocalNexus, name: str
) -> None:
    batch, swap = swapped
    asked, other = (nexus.seed_webhook(DEAD_ENDPOINT) for _ in range(2))
    swap.swaps[asked] = other
    with pytest.raises(ResponseDecodeError, match=other):
        await WEBHOOK_CALLS[name](batch, asked)
