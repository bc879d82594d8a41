"""The one poll loop: watch a resource until it reaches a final state.

`watch_changes` is shared by `jobs.watch`/`jobs.wait_until_done` and
`datasets.wait_until_done`. It polls with `poll_backoff` (fast at first, slowing
to one poll per `interval` while nothing changes, quickening again on a change),
rides out `TRANSIENT` errors, which say "try again later" rather than "this will
never work", and yields a snapshot each time the watched state changes.

Every poll loop (this one, `follow_logs` and the shared job poller) notes its
failures in an `Outage`: a stretch of polls that cannot reach the API is logged
once as a WARNING, and given up (the transport error raised) once it has lasted
the client's retry budget, so a wait never polls a dead server forever.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

import anyio

from . import _otel, errors
from ._backoff import Backoff

__all__ = ["TRANSIENT", "Outage", "check_timeout", "poll_backoff", "watch_changes"]

T = TypeVar("T")

logger = logging.getLogger("nexus_async")

# A wait may last hours: these errors are logged and the poll tried again.
TRANSIENT = (errors.TransportError, errors.RateLimitedError, errors.ServerError)


class Outage:
    """Failed polls of one wait: a stretch without a connection is warned about and bounded.

    Args:
        name: What is polled, for log lines.
        budget: Seconds a stretch of connection failures may last before its error
            is raised (the client's `RetryPolicy.total_time`); None: no bound.
    """

    def __init__(self, name: str, budget: float | None) -> None:
        self._name = name
        self._budget = budget
        self._since: float | None = None  # when the current stretch's first failed poll began

    def failed(self, exc: errors.NexusError, started: float) -> None:
        """Note that the poll begun at `started` failed with a `TRANSIENT` error.

        Raises:
            TransportError: `exc`, once the API has been unreachable for the budget.
        """
        if not isinstance(exc, errors.TransportError):  # the API answers, if unhappily
            logger.info("polling %s: %s; will poll again", self._name, exc)
            return
        if self._since is None:
            self._since = started
            logger.warning(
                "polling %s: cannot reach the API (%s); still trying%s",
                self._name,
                exc,
                "" if self._budget is None else f" for up to {self._budget:g} s",
            )
        else:
            logger.info("polling %s: %s; will poll again", self._name, exc)
        if self._budget is not None and anyio.current_time() - self._since >= self._budget:
            raise exc

    def succeeded(self) -> None:
        """Note an answered poll: the stretch, if any, is over."""
        if self._since is not None:
            logger.info(
                "polling %s: the API answers again after %.1f s",
                self._name,
                anyio.current_time() - self._since,
            )
            self._since = None


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
    outage_budget: float | None = None,
    pause: Callable[[float], Awaitable[None]] | None = None,
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
        outage_budget: Seconds without a connection after which the transport
            error is raised (see `Outage`); None rides it out until `timeout`.
        pause: Waits between polls, given the delay; it may return early (a
            delivery for a job, see `_waiting.Wakeups`). Default `anyio.sleep`.

    Raises:
        ValidationError: bad `interval` or `timeout`.
        TransportError: the API was unreachable for `outage_budget` seconds.
    """
    backoff = poll_backoff(interval)
    check_timeout(timeout)
    deadline = None if timeout is None else anyio.current_time() + timeout
    last: T | None = None
    outage = Outage(name, outage_budget)
    step = 0
    while True:
        remaining = None if deadline is None else deadline - anyio.current_time()
        if remaining is not None and remaining <= 0:
            raise timed_out(last)
        snapshot: T | None = None
        # The cancel scope covers only the poll, never a `yield` (anyio's rule).
        with anyio.move_on_after(remaining if remaining is not None else float("inf")):
            started = anyio.current_time()
            try:
                snapshot = await fetch()
            except TRANSIENT as exc:
                _otel.poll_failed(exc)
                outage.failed(exc, started)
            else:
                _otel.polled(snapshot)
                outage.succeeded()
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
        await (anyio.sleep if pause is None else pause)(delay)
