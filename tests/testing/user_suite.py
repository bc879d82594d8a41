"""A user's test file, as the README's "Testing your code" shows it.

It is run by tests/testing/test_plugin.py through pytester in a fresh pytest process,
with only the installed plugin: no conftest of this repository applies.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from nexus_async import AsyncClient
from nexus_async.testing import NexusProject, NexusReceiver


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def box_image(x: int) -> Image.Image:
    image = Image.new("L", (64, 64), 10)
    ImageDraw.Draw(image).rectangle((x, 8, x + 20, 28), fill=240)
    return image


@pytest.mark.anyio
async def test_a_job_delivers_every_item(
    nexus: NexusProject, nexus_client: AsyncClient, nexus_receiver: NexusReceiver
) -> None:
    batch = nexus_client.get_project(nexus.project_id).batch
    assert [job async for job in batch.jobs.iter()] == []  # a fresh project per test
    dataset_id = await nexus.dataset_from_images([box_image(x) for x in (0, 10, 20, 30)])
    job = await batch.jobs.create(
        "nightly",
        {
            "dataset_id": dataset_id,
            "webhook_id": nexus_receiver.webhook_id,
            "deployment_id": nexus.deployment_id,
        },
    )
    done = await batch.jobs.wait_until_done(job.id, timeout=60)
    assert done.status.overview == "Reached"
    assert done.status.items.delivered == 4
    deliveries = await nexus_receiver.wait_for(4)
    assert len(deliveries) == 4
    assert len({d.delivery_id for d in deliveries}) == 4
    assert len({d.item.url for d in deliveries}) == 4
    for delivery in deliveries:
        assert delivery.job_id == job.id
        assert delivery.project_id == nexus.project_id
        assert delivery.item.url.startswith("data:image/png;base64,")
        assert len(delivery.predictions) == 1


@pytest.mark.anyio
async def test_files_and_sdk_datasets(
    nexus: NexusProject, nexus_client: AsyncClient, tmp_path: Path
) -> None:
    paths = []
    for index in range(2):
        buffer = io.BytesIO()
        box_image(index * 20).save(buffer, format="PNG")
        path = tmp_path / f"{index}.png"
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    batch = nexus_client.get_project(nexus.project_id).batch
    dataset = await batch.datasets.get(await nexus.dataset_from_files(paths))
    assert dataset.status.overview == "Uploaded"
    assert dataset.status.item_count == 2
    webhook = await batch.webhooks.create("mine", {"endpoint": "http://127.0.0.1:9/none"})
    job = await batch.jobs.create(
        "no-receiver",
        {
            "dataset_id": dataset.id,
            "webhook_id": webhook.id,
            "deployment_id": nexus.deployment_id,
        },
    )
    assert [j.id async for j in batch.jobs.iter()] == [job.id]


@pytest.mark.anyio
async def test_duplicated_deliveries_reach_the_callback_once(
    nexus: NexusProject, nexus_client: AsyncClient, nexus_receiver: NexusReceiver
) -> None:
    nexus.duplicate_deliveries(2)
    batch = nexus_client.get_project(nexus.project_id).batch
    dataset_id = await nexus.dataset_from_images([box_image(5), box_image(25)])
    job = await batch.jobs.create(
        "twice",
        {
            "dataset_id": dataset_id,
            "webhook_id": nexus_receiver.webhook_id,
            "deployment_id": nexus.deployment_id,
        },
    )
    await batch.jobs.wait_until_done(job.id, timeout=60)
    deliveries = await nexus_receiver.wait_for(2)
    # Each delivery was sent 3 times, all before the job ended; each was handed on once.
    assert len({d.delivery_id for d in deliveries}) == 2
    assert len(nexus_receiver.deliveries) == 2


def test_sync_tests_get_a_project_too(nexus: NexusProject) -> None:
    assert nexus.project_id.startswith("proj_")
    assert nexus.deployment_id.startswith("deploy_")
    assert nexus.secret_key not in repr(nexus)
