"""Serve a local Nexus for the Schemathesis run in ``.ci/run``, until SIGTERM or SIGINT.

Usage: ``python tests/server/serve_for_fuzzing.py STATE_DIR``. The server listens on a
free loopback port with a fresh project, seeds an uploaded dataset and a webhook, and
then writes, in this order, ``STATE_DIR/schemathesis.toml`` (the key as a header, the
project id for every path, and the seeded ids in job bodies, so that fuzzed jobs get
past "unknown dataset" and really run) and ``STATE_DIR/url`` (its base URL: ready).

Whatever the fuzzer asks for, the server reaches nothing but loopback:
``allowed_hosts`` refuses every other host before any DNS lookup or connection.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import anyio

from nexus_async.server import LocalNexus

TINY_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


def _config(nexus: LocalNexus, dataset_id: str, webhook_id: str) -> str:
    destination = f'{{ kind = "Webhook", webhookId = {json.dumps(webhook_id)} }}'
    return "\n".join(
        [
            "# Written by tests/server/serve_for_fuzzing.py for one run.",
            f"headers = {{ Secret-Key = {json.dumps(nexus.secret_key)} }}",
            "",
            "[parameters]",
            f'"path.projectId" = {json.dumps(nexus.project_id)}',
            f'"body.spec.datasetId" = {json.dumps(dataset_id)}',
            f'"body.spec.deployment.deploymentId" = {json.dumps(nexus.deployment_id)}',
            f'"body.spec.resultDelivery.destinations" = [{destination}]',
            "",
        ]
    )


async def serve(state: Path) -> None:
    async with LocalNexus(
        allowed_hosts=("127.0.0.1",),
        delivery_timeout=2.0,
        gather_timeout=2.0,
    ) as nexus:
        dataset_id = nexus.seed_dataset([TINY_GIF], name="fuzzing")
        webhook_id = nexus.seed_webhook("http://127.0.0.1:9/fuzzing", max_retries=0)
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            config = _config(nexus, dataset_id, webhook_id)
            await anyio.Path(state / "schemathesis.toml").write_text(config)
            await anyio.Path(state / "url").write_text(nexus.base_url)
            async for _ in signals:
                return


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    anyio.run(serve, Path(sys.argv[1]))
