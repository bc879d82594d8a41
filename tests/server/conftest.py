"""Server fixtures: a LocalNexus per test (on the test's backend) and raw HTTP clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from nexus_async.server import LocalNexus, serve_asgi

from ..support import raw_client
from .helpers import Receiver, png_bytes


@pytest.fixture
def static_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "static"
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "square.png").write_bytes(png_bytes())
    (folder / "img" / "broken.png").write_bytes(b"definitely not a png")
    return folder


@pytest.fixture
async def nexus(static_dir: Path) -> AsyncIterator[LocalNexus]:
    async with LocalNexus(static_dir=static_dir) as server:
        yield server


def api_client(
    nexus: LocalNexus, project_id: str | None = None, key: str | None = None
) -> httpx.AsyncClient:
    """A raw client whose relative URLs are under ``/projects/{id}/batch/``."""
    project = project_id or nexus.project_id
    return raw_client(
        base_url=f"{nexus.base_url}/projects/{project}/batch/",
        headers={"Secret-Key": key or nexus.secret_key},
        timeout=10.0,
    )


@pytest.fixture
async def client(nexus: LocalNexus) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(nexus) as c:
        yield c


@pytest.fixture
async def admin(nexus: LocalNexus) -> AsyncIterator[httpx.AsyncClient]:
    """A raw client for ``/_nexus/...`` with the first project's key."""
    async with raw_client(
        base_url=f"{nexus.base_url}/_nexus/",
        headers={"Secret-Key": nexus.secret_key},
        timeout=10.0,
    ) as c:
        yield c


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    async with serve_asgi(receiver.app()) as url:
        receiver.base_url = url
        yield receiver
