"""Where the examples get a project from: your own, or a local server started for them.

With `DATATURE_SECRET_KEY` set, the examples use that project (and the dataset,
webhook and deployment named by `NEXUS_DATASET_ID`, `NEXUS_WEBHOOK_ID`,
`NEXUS_DEPLOYMENT_ID`). Without it, they start the local Nexus server with a small
dataset of generated images, so that every example runs offline as it is.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs

from nexus_async import AsyncClient, Batch
from nexus_async.models import Delivery


@attrs.frozen
class Setup:
    """A project's batch API and the ids a job needs."""

    batch: Batch
    dataset_id: str
    webhook_id: str
    deployment_id: str

    def job_options(self) -> dict[str, str]:
        return {
            "dataset_id": self.dataset_id,
            "webhook_id": self.webhook_id,
            "deployment_id": self.deployment_id,
        }


def _write_images(folder: Path, count: int) -> list[str]:
    from PIL import Image, ImageDraw

    names = []
    for index in range(count):
        image = Image.new("L", (48, 48), 20)
        ImageDraw.Draw(image).rectangle((index % 20, 8, index % 20 + 16, 30), fill=230)
        name = f"image-{index:03d}.png"
        image.save(folder / name, format="PNG")
        names.append(name)
    return names


@asynccontextmanager
async def project(items: int = 20, webhook: tuple[str, str] | None = None) -> AsyncIterator[Setup]:
    """Yield a `Setup`: the user's project if configured, else a local server's.

    Locally, results go to a receiver started here that discards them, unless
    `webhook` names another `(endpoint, secret)`.
    """
    if os.environ.get("DATATURE_SECRET_KEY"):
        async with AsyncClient() as client:
            yield Setup(
                batch=client.get_project(os.environ["DATATURE_PROJECT_ID"]).batch,
                dataset_id=os.environ["NEXUS_DATASET_ID"],
                webhook_id=os.environ["NEXUS_WEBHOOK_ID"],
                deployment_id=os.environ["NEXUS_DEPLOYMENT_ID"],
            )
        return

    from nexus_async.receiver import DeliveryReceiver
    from nexus_async.server import LocalNexus, serve_asgi
    from nexus_async.signing import generate_secret

    async def discard(delivery: Delivery) -> None:
        pass  # a real service would store delivery.predictions

    secret = generate_secret()
    receiver = DeliveryReceiver(secret, discard)
    with tempfile.TemporaryDirectory() as folder:
        names = _write_images(Path(folder), items)
        async with (
            LocalNexus(static_dir=folder) as nexus,
            serve_asgi(receiver.app("/results")) as receiver_url,
            AsyncClient(nexus.secret_key, base_url=nexus.base_url) as client,
        ):
            batch = client.get_project(nexus.project_id).batch
            dataset = await batch.datasets.create_from_items(
                "example", [nexus.static_url(name) for name in names]
            )
            endpoint, signing_secret = webhook or (f"{receiver_url}/results", secret)
            created = await batch.webhooks.create(
                "example", {"endpoint": endpoint, "secret": {"contents": signing_secret}}
            )
            yield Setup(
                batch=batch,
                dataset_id=dataset.id,
                webhook_id=created.id,
                deployment_id=nexus.deployment_id,
            )
