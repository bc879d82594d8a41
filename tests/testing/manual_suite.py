"""A user's tests on the manual clock: conftest-style settings override, then advance."""

from __future__ import annotations

import pytest
from PIL import Image

from nexus_async import AsyncClient
from nexus_async.server import ServerSettings
from nexus_async.testing import NexusProject

DAY_MS = 86_400_000


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def nexus_settings() -> ServerSettings:
    return ServerSettings(clock="manual")


@pytest.mark.anyio
async def test_a_job_reaches_its_stop_time(nexus: NexusProject, nexus_client: AsyncClient) -> None:
    batch = nexus_client.get_project(nexus.project_id).batch
    dataset_id = await nexus.dataset_from_images([Image.new("L", (16, 16), 99)])
    webhook_id = await nexus.webhook("http://127.0.0.1:9/nobody", max_retries=2)
    start = nexus.now_ms() + DAY_MS
    job = await batch.jobs.create(
        "tomorrow",
        {
            "dataset_id": dataset_id,
            "webhook_id": webhook_id,
            "deployment_id": nexus.deployment_id,
            "start_at_time": start,
            "stop_at_time": start + 1,
        },
    )
    await nexus.advance_to(start - 1)
    assert (await batch.jobs.get(job.id)).status.overview == "Waiting"
    await nexus.advance(3 * 86_400)
    final = await batch.jobs.get(job.id)
    # It started on time; its item's delivery retries outlasted the one-millisecond window.
    assert final.status.overview == "Failed"
    assert final.status.message == "Stop time reached"
    assert final.status.update_date == start + 1
