"""Fixtures for SDK tests against the local server (started per test, on the test's backend)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from nexus_async import AsyncClient, Jobs
from nexus_async.server import LocalNexus

from ..support import FAST_RETRY

__all__ = ["FAST_RETRY"]  # some tests import it from here


@pytest.fixture
async def nexus() -> AsyncIterator[LocalNexus]:
    async with LocalNexus() as server:
        yield server


@pytest.fixture
async def client(nexus: LocalNexus) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(nexus.secret_key, base_url=nexus.base_url, retry=FAST_RETRY) as c:
        yield c


@pytest.fixture
def jobs(client: AsyncClient, nexus: LocalNexus) -> Jobs:
    return client.get_project(nexus.project_id).batch.jobs
