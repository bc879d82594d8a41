"""Receive batch results in a Starlette service, appending each to an NDJSON file.

Run as is, it serves itself on loopback until Ctrl-C:

    .venv/bin/python examples/receiver_starlette.py      # port $NEXUS_RECEIVER_PORT or 8000

With no `NEXUS_WEBHOOK_SECRET` it makes a fresh secret and prints it. Point a webhook
at it with that secret, for example in the project `nexus-async serve` prints:

    echo "$NEXUS_WEBHOOK_SECRET" > hook.secret
    nexus-async webhooks create mine http://127.0.0.1:8000/webhooks/nexus --secret-file hook.secret
    nexus-async jobs create nightly --dataset-id "$NEXUS_DATASET_ID" \
        --webhook-id <the new webhook> --deployment-id "$NEXUS_DEPLOYMENT_ID"

In production, serve `app` with any ASGI server, from this folder:

    NEXUS_WEBHOOK_SECRET=<secret> hypercorn receiver_starlette:app --bind 0.0.0.0:8000

Every delivery is verified (signature, timestamp), duplicates of one `deliveryId` are
dropped, and the API gets its 200 at once; `store` then runs in the receiver's worker
tasks. While rotating the secret, set NEXUS_WEBHOOK_SECRET to "new,old".
"""

from __future__ import annotations

import json
import os
import sys

import anyio

from nexus_async import Delivery, DeliveryReceiver, unstructure
from nexus_async.signing import generate_secret

RESULTS = anyio.Path(os.environ.get("NEXUS_RESULTS_FILE", "results.ndjson"))


async def store(delivery: Delivery) -> None:
    """Append the result as one JSON line.

    The delivery was acknowledged before this runs, so keep it quick and durable;
    heavy processing belongs to a job queue fed from here.
    """
    line = json.dumps(unstructure(delivery), separators=(",", ":")) + "\n"
    async with await anyio.open_file(RESULTS, "a") as results:
        await results.write(line)  # one small O_APPEND write per line: lines never interleave


secret = os.environ.get("NEXUS_WEBHOOK_SECRET", "")
if not secret:  # run as is: a fresh secret, for the webhook that is to deliver here
    secret = generate_secret()
    print(f"NEXUS_WEBHOOK_SECRET is not set; this run's secret: {secret}", file=sys.stderr)
receiver = DeliveryReceiver(secret.split(","), store)
app = receiver.app("/webhooks/nexus")


async def main(port: int) -> None:
    """Serve `app` on loopback until cancelled (Ctrl-C)."""
    from nexus_async.server import serve_asgi

    async with serve_asgi(app, port=port) as url:
        print(f"receiving deliveries at {url}/webhooks/nexus into {RESULTS}", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    try:
        anyio.run(main, int(os.environ.get("NEXUS_RECEIVER_PORT", "8000")))
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
