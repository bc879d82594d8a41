"""Receive batch results in a FastAPI service.

FastAPI is not a dependency of nexus_async: install it yourself. Then, from this folder:

    NEXUS_WEBHOOK_SECRET=<secret> uvicorn receiver_fastapi:app --port 8000

The receiver's worker tasks run in the app's lifespan. If your app already has a
lifespan, enter `receiver.running()` inside it instead of passing `receiver.lifespan`.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI, Request
from starlette.responses import Response

from nexus_async import Delivery, DeliveryReceiver

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


receiver = DeliveryReceiver(os.environ["NEXUS_WEBHOOK_SECRET"].split(","), store)
app = FastAPI(lifespan=receiver.lifespan)


async def nexus_results(request: Request) -> Response:
    """Verified, de-duplicated deliveries of batch results (401/400 otherwise)."""
    return await receiver.endpoint(request)


app.add_api_route("/webhooks/nexus", nexus_results, methods=["POST"], include_in_schema=False)
