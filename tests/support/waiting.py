"""Waiting for a condition itself, woken by whoever changes it (never by a timer)."""

from __future__ import annotations

from collections.abc import Callable

import anyio


class Changes:
    """A wake-up call for waiters on state that callbacks or handlers update.

    Whoever changes the state calls `notify()`; `until(predicate)` re-checks the
    predicate after each change, so it returns at the first moment it holds.
    Create it inside the event loop (it holds an `anyio.Event`).
    """

    def __init__(self) -> None:
        self._changed = anyio.Event()

    def notify(self) -> None:
        """Wake every waiter to re-check its condition."""
        self._changed.set()
        self._changed = anyio.Event()

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Return once `predicate()` is true; `TimeoutError` after `timeout` seconds."""
        with anyio.fail_after(timeout):
            while not predicate():
                await self._changed.wait()
