"""Shared fixtures: every async test runs on both anyio backends.

`anyio_backend` is overridden with explicit names so that a missing trio fails the
run instead of being skipped silently.
"""

from __future__ import annotations

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
