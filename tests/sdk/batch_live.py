"""Helpers for live dataset/webhook/receiver tests: a LocalNexus serving tiny PNGs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from PIL import Image, ImageDraw

from nexus_async import AsyncClient, Backoff, Batch, RetryPolicy
from nexus_async.server import LocalNexus

FAST_RETRY = RetryPolicy(attempts=4, total_time=10.0, backoff=Backoff(initial=0.01, maximum=0.05))
POLL = {"interval": 0.05, "timeout": 20.0}


def write_pngs(folder: Path, count: int) -> list[str]:
    """`count` 24x24 PNGs, each with a white square somewhere else; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index in range(count):
        image = Image.new("L", (24, 24), 0)
        offset = index % 12
        ImageDraw.Draw(image).rectangle((offset, offset, offset + 8, offset + 8), fill=255)
        name = f"item-{index}.png"
        image.save(folder / name, format="PNG")
        names.append(name)
    return names


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
