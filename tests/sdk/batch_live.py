"""Helpers for live dataset/webhook/receiver tests: a LocalNexus serving tiny PNGs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from nexus_async import AsyncClient, Batch
from nexus_async.server import LocalNexus

from ..support import FAST_RETRY, write_pngs

POLL = {"interval": 0.05, "timeout": 20.0}


def write_ndjson(path: Path, urls: Sequence[str]) -> Path:
    path.write_text("".join(json.dumps({"kind": "Image", "url": u}) + "\n" for u in urls))
    return path


@asynccontextmanager
async def live(tmp_path: Path, images: int = 0) -> AsyncIterator[tuple[LocalNexus, Batch]]:
    """A LocalNexus serving `images` PNGs from `tmp_path/static`, and a client's batch API."""
    static = tmp_path / "static"
    write_pngs(static, images)
    async with (
        LocalNexus(static_dir=static) as nexus,
        AsyncClient(nexus.secret_key, base_url=nexus.base_url, retry=FAST_RETRY) as client,
    ):
        yield nexus, client.get_project(nexus.project_id).batch
