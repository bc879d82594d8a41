"""Receive batch results in a FastAPI service.

FastAPI is not a dependency of nexus_async: install it yourself. Run as is, it
serves itself on loopback until Ctrl-C (with a fresh secret, printed, when
`NEXUS_WEBHOOK_SECRET` is not set; see `receiver_starlette.py` for pointing a
webhook at it):

    .venv/bin/python examples/receiver_fastapi.py       # port $NEXUS_RECEIVER_PORT or 8000

In production, from this folder:

    NEXUS_WEBHOOK_SECRET=<secret> uvicorn receiver_fastapi:app --port 8000

The receiver's worker tasks run in the app's lifespan. If your app already has a
lifespan, enter `receiver.running()` inside it instead of passing `receiver.lifespan`.
"""

from __future__ import annotations

import logging
import os
import sys

import anyio
from fastapi import FastAPI, Request
from starlette.responses import Response

from nexus_async import Delivery, DeliveryReceiver
from nexus_async.signing import generate_secret

logger = logging.getLogger("results")


async def store(delivery: Delivery) -> None:
    """Hand the result on (a database, a queue). It was already acknowledged: be quick."""
    for prediction in delivery.predictions:
        logger.info(
            "%s: %s (%.2f) at %s",
            delivery.item.url,
            prediction.tag.name,
            prediction.confidence,
            prediction.bound,
        )


secret = os.environ.get("NEXUS_WEBHOOK_SECRET", "")
if not secret:  # run as is: a fresh secret, for the webhook that is to deliver here
    secret = generate_secret()
    print(f"NEXUS_WEBHOOK_SECRET is not set; this run's secret: {secret}", file=sys.stderr)
receiver = DeliveryReceiver(secret.split(","), store)
app = FastAPI(lifespan=receiver.lifespan)


async def nexus_results(request: Request) -> Response:
    """Verified, de-duplicated deliveries of batch results (401/400 otherwise)."""
    return await receiver.endpoint(request)


app.add_api_route("/webhooks/nexus", nexus_results, methods=["POST"], include_in_schema=False)


async def main(port: int) -> None:
    """Serve `app` on loopback until cancelled (Ctrl-C)."""
    from nexus_async.server import serve_asgi

    async with serve_asgi(app, port=port) as url:
        print(f"receiving deliveries at {url}/webhooks/nexus", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        anyio.run(main, int(os.environ.get("NEXUS_RECEIVER_PORT", "8000")))
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
