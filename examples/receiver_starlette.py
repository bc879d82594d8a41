"""Receive batch results in a Starlette service.

Run it with any ASGI server, from this folder:

    NEXUS_WEBHOOK_SECRET=<secret> hypercorn receiver_starlette:app --bind 0.0.0.0:8000

and point a webhook at it:

    webhook = await batch.webhooks.create("results", {"endpoint": "https://<host>/webhooks/nexus"})
    print(webhook.secret)  # the API never shows it again: this is NEXUS_WEBHOOK_SECRET

Every delivery is verified (signature, timestamp), duplicates of one `deliveryId` are
dropped, and the API gets its 200 at once; `store` then runs in the receiver's worker
tasks. While rotating the secret, set NEXUS_WEBHOOK_SECRET to "new,old".
"""

from __future__ import annotations

import json
import os

import anyio

from nexus_async import Delivery, DeliveryReceiver, unstructure

RESULTS = anyio.Path(os.environ.get("NEXUS_RESULTS_FILE", "results.ndjson"))


async def store(delivery: Delivery) -> None:
    """Append the result as one JSON line.

    The delivery was acknowledged before this runs, so keep it quick and durable;
    heavy processing belongs to a job queue fed from here.
    """
    line = json.dumps(unstructure(delivery), separators=(",", ":")) + "\n"
    async with await anyio.open_file(RESULTS, "a") as results:
        await results.write(line)  # one small O_APPEND write per line: lines never interleave


receiver = DeliveryReceiver(os.environ["NEXUS_WEBHOOK_SECRET"].split(","), store)
app = receiver.app("/webhooks/nexus")
