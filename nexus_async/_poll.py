"""The one poll loop: watch a resource until it reaches a final state.

`watch_changes` is shared by `jobs.watch`/`jobs.wait_until_done` and
`datasets.wait_until_done`. It polls with `poll_backoff` (fast at first, slowing
to one poll per `interval` while nothing changes, quickening again on a change),
rides out `TRANSIENT` errors, which say "try again later" rather than "this will
never work", and yields a snapshot each time the watched state changes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

import anyio

from . import errors
from ._backoff import Backoff

__all__ = ["TRANSIENT", "check_timeout", "poll_backoff", "watch_changes"]

T = TypeVar("T")

logger = logging.getLogger("nexus_async")

# A wait may last hours: these errors are logged and the poll tried again.
TRANSIENT = (errors.TransportError, errors.RateLimitedError, errors.ServerError)


def poll_backoff(interval: float) -> Backoff:
    """The polling cadence: from 0.5 s (or `interval` if shorter) up to `interval` seconds."""
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0:
        raise errors.ValidationError(f"`interval` must be a number > 0 (got {interval!r})")
    return Backoff(initial=min(0.5, interval), maximum=interval, multiplier=1.5, jitter=0.2)


def check_timeout(timeout: float | None) -> float | None:
    """`timeout` if it is None or a number > 0, else `ValidationError`."""
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
    ):
        raise errors.ValidationError(f"`timeout` must be > 0 or None (got {timeout!r})")
    return timeout


async def watch_changes(
    fetch: Callable[[], Awaitable[T]],
    *,
    state: Callable[[T], object],
    finished: Callable[[T], bool],
    interval: float,
    timeout: float | None,
    timed_out: Callable[[T | None], BaseException],
    name: str,
) -> AsyncGenerator[T, None]:
    """Yield `fetch()`'s result each time `state(result)` changes, ending after a finished one.

    Args:
        fetch: One poll (a GET of the resource).
        state: The part of a snapshot whose change is worth yielding (e.g. its status).
        finished: True for a snapshot after which nothing changes any more.
        interval: Longest wait between two polls, in seconds (> 0).
        timeout: Seconds before `timed_out(last snapshot or None)` is raised; None
            waits without limit.
        timed_out: Builds the exception raised at the deadline.
        name: What is polled, for log lines.

    Raises:
        ValidationError: bad `interval` or `timeout`.
    """
    backoff = poll_backoff(interval)
    check_timeout(timeout)
    deadline = None if timeout is None else anyio.current_time() + timeout
    last: T | None = None
    step = 0
    while True:
        remaining = None if deadline is None else deadline - anyio.current_time()
        if remaining is not None and remaining <= 0:
            raise timed_out(last)
        snapshot: T | None = None
        # The cancel scope covers only the poll, never a `yield` (anyio's rule).
        with anyio.move_on_after(remaining if remaining is not None else float("inf")):
            try:
                snapshot = await fetch()
            except TRANSIENT as exc:
                logger.info("polling %s: %s; will poll again", name, exc)
        if snapshot is not None and (last is None or state(snapshot) != state(last)):
            step = max(0, step - 1)
            last = snapshot
            yield snapshot
            if finished(snapshot):
                return
        else:
            step += 1
        delay = backoff.delay(step)
        if deadline is not None:
            delay = min(delay, max(0.0, deadline - anyio.current_time()))
        await anyio.sleep(delay)
