"""Fixtures of the reliability suites: one local server per module and backend.

Starting a `LocalNexus` costs tens of milliseconds of CPU, and these suites run hundreds
of cases, so the backend and the server are module-scoped (anyio runs module-scoped
async fixtures when `anyio_backend` has the same scope). Each case isolates itself
in a fresh project (`nexus.add_project()`), and every fault is cleared after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from nexus_async.server import LocalNexus


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
async def nexus(anyio_backend: str) -> AsyncIterator[LocalNexus]:
    async with LocalNexus() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_leftover_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "nexus" in request.fixturenames:
        request.getfixturevalue("nexus").clear_faults()
