"""`nexus-async serve`: the local Nexus batch server in the foreground, until Ctrl-C.

So that a job can be created at once (by `nexus-async jobs create`, the examples or
your own code), the server starts with a project holding a ready dataset of small
generated images and a webhook whose deliveries go to a receiver run here, which
verifies and counts them. It prints the environment a client needs, ids included,
as `export` lines to paste into another terminal.
"""

from __future__ import annotations

import argparse
import base64
import io
import random
from typing import Any

import anyio

from ._base import Exit, Usage

__all__ = ["register"]

SEEDED_ITEMS = 20


def _images(count: int) -> list[str]:
    """`count` small PNGs (a bright box on a dark ground) as data: URLs."""
    from PIL import Image, ImageDraw

    rng = random.Random(11)
    urls = []
    for _ in range(count):
        image = Image.new("L", (48, 48), rng.randint(0, 40))
        x, y = rng.randint(0, 24), rng.randint(0, 24)
        ImageDraw.Draw(image).rectangle((x, y, x + 16, y + 16), fill=rng.randint(200, 255))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        urls.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    return urls


def _serve(args: argparse.Namespace) -> int:
    try:
        from .. import Delivery, DeliveryReceiver
        from ..server import LocalNexus, serve_asgi
        from ..signing import generate_secret
    except ImportError:
        raise Usage(
            "the local server needs the `server` extra: pip install 'nexus-async[server]'"
        ) from None

    received = 0

    async def count(delivery: Delivery) -> None:
        nonlocal received
        received += 1

    async def run() -> None:
        secret = generate_secret()
        receiver = DeliveryReceiver(secret, count)
        async with (
            LocalNexus(
                host=args.host,
                port=args.port,
                secret_key=args.secret_key,
                project_id=args.project_id,
                latency=args.latency,
            ) as nexus,
            serve_asgi(receiver.app("/results")) as receiver_url,
        ):
            dataset_id = nexus.seed_dataset(_images(SEEDED_ITEMS), name="sample")
            webhook_id = nexus.seed_webhook(f"{receiver_url}/results", secret, name="sample")
            print(f"Local Nexus batch server at {nexus.base_url}")
            print(f"  project id:    {nexus.project_id}")
            print(f"  deployment id: {nexus.deployment_id}")
            print(f"  dataset id:    {dataset_id} ({SEEDED_ITEMS} images, ready)")
            print(f"  webhook id:    {webhook_id} (to a receiver here: {receiver_url}/results)")
            print("Point a client, or the examples, at it with:")
            for name, value in (
                ("DATATURE_API_BASE_URL", nexus.base_url),
                ("DATATURE_PROJECT_ID", nexus.project_id),
                ("DATATURE_SECRET_KEY", nexus.secret_key),
                ("NEXUS_DATASET_ID", dataset_id),
                ("NEXUS_WEBHOOK_ID", webhook_id),
                ("NEXUS_DEPLOYMENT_ID", nexus.deployment_id),
            ):
                print(f"  export {name}={value}")
            print("Ctrl-C stops it.", flush=True)
            await anyio.sleep_forever()

    try:
        anyio.run(run)
    finally:
        print(f"stopped; the receiver verified {received} deliveries", flush=True)
    return Exit.OK


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the `serve` command."""
    serve = commands.add_parser(
        "serve",
        help="run the local Nexus batch server",
        description="Run the local Nexus batch server, with a ready dataset and webhook, "
        "and print the environment a client needs.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    serve.add_argument("--port", type=int, default=0, help="default: a free port")
    serve.add_argument("--secret-key", help="default: a fresh random key")
    serve.add_argument("--project-id", help="default: a fresh project id")
    serve.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to answers (default: 0)"
    )
    serve.set_defaults(run=_serve)
