"""Shared fixtures: every async test runs on both anyio backends.

`anyio_backend` is overridden with explicit names so that a missing trio fails the
run instead of being skipped silently.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a long test, started first (see below)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the `slow` tests first: the run's parallel workers then never end on one.

    The sort is stable, so every other test keeps its order (and its module's fixtures).
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
