"""Fixtures of the CLI tests: one local server per module, in a thread of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from anyio.from_thread import start_blocking_portal

from nexus_async.server import LocalNexus

from .helpers import Server


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with start_blocking_portal() as portal:
        nexus = LocalNexus()
        with portal.wrap_async_context_manager(nexus):
            yield portal, nexus


@pytest.fixture
def env(server: Server, monkeypatch: pytest.MonkeyPatch) -> LocalNexus:
    """The server's key, URL and project in the environment the command reads."""
    _, nexus = server
    monkeypatch.setenv("DATATURE_SECRET_KEY", nexus.secret_key)
    monkeypatch.setenv("DATATURE_API_BASE_URL", nexus.base_url)
    monkeypatch.setenv("DATATURE_PROJECT_ID", nexus.project_id)
    return nexus
