"""Where the examples get a project from: a local server started for them, or yours.

Without `DATATURE_SECRET_KEY` in the environment, each example starts the local Nexus
server in-process with a small dataset of generated images, so it runs offline as
it is: `.venv/bin/python examples/quickstart.py`.

With it set, the examples use that project: `DATATURE_API_BASE_URL`,
`DATATURE_PROJECT_ID` and `DATATURE_SECRET_KEY`, and the dataset, webhook and
deployment named by `NEXUS_DATASET_ID`, `NEXUS_WEBHOOK_ID` and `NEXUS_DEPLOYMENT_ID`.
`nexus-async serve` (in another terminal) prints all six as `export` lines, ids of a
ready dataset and webhook included; for your own project, set them yourself.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
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

    Locally, results go to a receiver started here that discards them; in your
    project, to the webhook `NEXUS_WEBHOOK_ID`. An example that receives results
    itself passes `webhook=(endpoint, secret)` to get a webhook of its own.
    """
    if os.environ.get("DATATURE_SECRET_KEY"):
        needed = (
            "DATATURE_PROJECT_ID",
            "NEXUS_DATASET_ID",
            "NEXUS_WEBHOOK_ID",
            "NEXUS_DEPLOYMENT_ID",
        )
        missing = [name for name in needed if not os.environ.get(name)]
        if missing:
            raise SystemExit(
                f"DATATURE_SECRET_KEY is set, so the examples use your project, but "
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not: run "
                "`nexus-async serve` and paste what it prints, or unset DATATURE_SECRET_KEY "
                "to run offline"
            )
        async with AsyncClient() as client:
            batch = client.get_project(os.environ["DATATURE_PROJECT_ID"]).batch
            if webhook is None:
                webhook_id = os.environ["NEXUS_WEBHOOK_ID"]
            else:  # the example receives results itself: a webhook of its own, removed after
                endpoint, signing_secret = webhook
                own = await batch.webhooks.create(
                    "example", {"endpoint": endpoint, "secret": {"contents": signing_secret}}
                )
                webhook_id = own.id
            try:
                yield Setup(
                    batch=batch,
                    dataset_id=os.environ["NEXUS_DATASET_ID"],
                    webhook_id=webhook_id,
                    deployment_id=os.environ["NEXUS_DEPLOYMENT_ID"],
                )
            finally:
                if webhook is not None:
                    with anyio.move_on_after(5, shield=True):
                        await batch.webhooks.delete(webhook_id)
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
