"""The server's time: the real clock, or a manual one that tests move forward.

Every timestamp the server writes comes from ``now_ms()``, and every wait of the runner
(a job's start time, its stop time, webhook retry backoff, stage durations) goes
through the running server's ``Clock``. The clock in use is held in a context variable,
set by ``use_clock`` while a server runs, so its handlers and tasks (and the admin
methods, which set it too) see their own server's clock even when several servers
share a process; outside any server it is the real clock.

``ManualClock`` time moves only by ``advance_to``. It steps through what became due in
order (each sleeper wakes with the clock at its own due time), and after each step
waits until the runner's tracked tasks are all asleep on the clock or done, so that a
retry scheduled by a woken task is seen by the same ``advance``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec

import anyio

__all__ = [
    "Clock",
    "Idle",
    "ManualClock",
    "RealClock",
    "clock_seconds",
    "make_clock",
    "new_id",
    "now_ms",
    "use_clock",
]

logger = logging.getLogger("nexus_async.server")

P = ParamSpec("P")

SETTLE_TIMEOUT = 30.0
"""Wall seconds ``advance`` waits for woken work to settle before moving on anyway."""


class Clock:
    """The real clock: wall-clock timestamps, waits on the event loop's clock."""

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch, the spec's timestamp unit."""
        return time.time_ns() // 1_000_000

    def seconds(self) -> float:
        """A monotonic reading in seconds, for durations."""
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        await anyio.sleep(seconds)

    async def sleep_until_ms(self, wall_ms: int) -> None:
        """Wait until this clock reads ``wall_ms`` (at once if it has)."""
        delay = (wall_ms - self.now_ms()) / 1000.0
        if delay > 0:
            await self.sleep(delay)

    def scope_until_ms(self, wall_ms: int) -> anyio.CancelScope:
        """A cancel scope that cancels itself when this clock reads ``wall_ms``."""
        scope = anyio.CancelScope()
        self.move_scope(scope, wall_ms)
        return scope

    def move_scope(self, scope: anyio.CancelScope, wall_ms: int) -> None:
        """Make a scope of ``scope_until_ms`` cancel itself at ``wall_ms`` instead."""
        scope.deadline = anyio.current_time() + (wall_ms - self.now_ms()) / 1000.0

    def tracked(
        self, function: Callable[P, Coroutine[Any, Any, None]]
    ) -> Callable[P, Coroutine[Any, Any, None]]:
        """``function`` as a task whose work ``ManualClock.advance_to`` waits for."""
        return function

    @asynccontextmanager
    async def holding(self, limiter: anyio.CapacityLimiter) -> AsyncIterator[None]:
        """Hold a token of ``limiter``; the wait for it is not work ``advance`` waits for."""
        async with limiter:
            yield

    def scope_done(self, scope: anyio.CancelScope) -> None:
        """A scope of ``scope_until_ms`` was left: forget its timer."""

    @contextmanager
    def idle(self) -> Iterator[Idle]:
        """A stretch in which a tracked task only waits: for a token, or for the tasks it
        starts through the yielded ``Idle``."""
        yield Idle(self)


class Idle:
    """A tracked task's wait for the tasks it starts; see ``Clock.idle``."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._members = 0
        self.handed_back = False

    def tracked(
        self, function: Callable[P, Coroutine[Any, Any, None]]
    ) -> Callable[P, Coroutine[Any, Any, None]]:
        """``function`` as a tracked task; when the last such task ends, the waiting task
        counts as working again at that instant (not later, once it is scheduled)."""
        clock = self._clock
        if not isinstance(clock, ManualClock):
            return function
        self._members += 1
        clock.busy_add(1)

        async def run(*args: P.args, **kwargs: P.kwargs) -> None:
            try:
                await function(*args, **kwargs)
            finally:
                self._members -= 1
                if self._members == 0:
                    self.handed_back = True  # its count passes to the waiting task
                else:
                    clock.busy_add(-1)

        return run


RealClock = Clock


class ManualClock(Clock):
    """A clock that moves only when told to (``advance_to``); starts at the real time."""

    def __init__(self, start_ms: int | None = None) -> None:
        self._now = time.time_ns() // 1_000_000 if start_ms is None else start_ms
        # (due ms, order, action): a sleeper's event to set, or a callback to call.
        self._timers: list[tuple[int, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._busy = 0  # tracked tasks not asleep on this clock
        self._settled = anyio.Event()
        self._scopes: dict[int, int] = {}  # id(scope) -> the order of its live timer
        self._unwinding: set[int] = set()  # scopes cancelled by their timer, not yet left

    def now_ms(self) -> int:
        return self._now

    def seconds(self) -> float:
        return self._now / 1000.0

    def _at(self, due_ms: int, action: Callable[[], None]) -> int:
        order = next(self._order)
        heapq.heappush(self._timers, (due_ms, order, action))
        return order

    def busy_add(self, count: int) -> None:
        """Count ``count`` more (or fewer) tracked tasks as working."""
        self._busy += count
        if self._busy == 0:
            self._settled.set()
            self._settled = anyio.Event()

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until_ms(self._now + math.ceil(seconds * 1000.0))

    async def sleep_until_ms(self, wall_ms: int) -> None:
        if wall_ms <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        woken = anyio.Event()
        fired = False

        def wake() -> None:
            nonlocal fired
            fired = True
            self.busy_add(1)  # counted from the moment it is woken, before it runs
            woken.set()

        order = self._at(wall_ms, wake)
        self.busy_add(-1)
        try:
            await woken.wait()
        finally:
            if not fired:  # cancelled while asleep: it runs again, uncounted by wake
                self._timers = [t for t in self._timers if t[1] != order]
                heapq.heapify(self._timers)
                self.busy_add(1)

    def move_scope(self, scope: anyio.CancelScope, wall_ms: int) -> None:
        key = id(scope)

        def expire() -> None:
            if self._scopes.get(key) == order:
                del self._scopes[key]
                # Counted as work until the scope is left: its tasks only wake later.
                self._unwinding.add(key)
                self.busy_add(1)
                scope.cancel()

        order = self._at(wall_ms, expire)  # an earlier timer of the scope becomes a no-op
        self._scopes[key] = order

    def scope_done(self, scope: anyio.CancelScope) -> None:
        key = id(scope)
        self._scopes.pop(key, None)
        if key in self._unwinding:
            self._unwinding.discard(key)
            self.busy_add(-1)

    def tracked(
        self, function: Callable[P, Coroutine[Any, Any, None]]
    ) -> Callable[P, Coroutine[Any, Any, None]]:
        self.busy_add(1)  # counted when handed to a task group, before it starts

        async def run(*args: P.args, **kwargs: P.kwargs) -> None:
            try:
                await function(*args, **kwargs)
            finally:
                self.busy_add(-1)

        return run

    @asynccontextmanager
    async def holding(self, limiter: anyio.CapacityLimiter) -> AsyncIterator[None]:
        try:
            limiter.acquire_nowait()  # a free token is no wait: no idle moment to settle in
        except anyio.WouldBlock:
            with self.idle():
                await limiter.acquire()
        try:
            yield
        finally:
            limiter.release()

    @contextmanager
    def idle(self) -> Iterator[Idle]:
        idle = Idle(self)
        self.busy_add(-1)
        try:
            yield idle
        finally:
            if not idle.handed_back:
                self.busy_add(1)

    async def _settle(self) -> None:
        with anyio.move_on_after(SETTLE_TIMEOUT) as waited:
            while self._busy > 0:
                await self._settled.wait()
            await anyio.lowlevel.checkpoint()
        if waited.cancelled_caught:
            logger.warning(
                "advance: %d task(s) still working after %.0f s; moving the clock on",
                self._busy,
                SETTLE_TIMEOUT,
            )

    async def advance_to(self, wall_ms: int) -> None:
        """Move to ``wall_ms``, running what becomes due on the way, in order.

        Raises:
            ValueError: ``wall_ms`` is in this clock's past.
        """
        if wall_ms < self._now:
            raise ValueError(f"the clock cannot go back (now {self._now}, asked {wall_ms})")
        await self._settle()
        while self._timers and self._timers[0][0] <= wall_ms:
            due = self._timers[0][0]
            self._now = max(self._now, due)
            while self._timers and self._timers[0][0] == due:
                heapq.heappop(self._timers)[2]()
            await self._settle()
        self._now = wall_ms


def make_clock(kind: str) -> Clock:
    """The clock a ``ServerSettings.clock`` names: ``"real"`` or ``"manual"``."""
    return ManualClock() if kind == "manual" else Clock()


_REAL = Clock()
_current: ContextVar[Clock] = ContextVar("nexus_async_server_clock", default=_REAL)


@contextmanager
def use_clock(clock: Clock) -> Iterator[None]:
    """Make ``clock`` the one ``now_ms`` reads, in this context and the tasks it starts."""
    token = _current.set(clock)
    try:
        yield
    finally:
        _current.reset(token)


def now_ms() -> int:
    """Milliseconds since the Unix epoch, by the running server's clock."""
    return _current.get().now_ms()


def clock_seconds() -> float:
    """A monotonic reading in seconds by the running server's clock (for durations)."""
    return _current.get().seconds()


def new_id(prefix: str) -> str:
    """A fresh id with the spec's prefix, e.g. ``batchjob_<uuid4>``."""
    return f"{prefix}_{uuid.uuid4()}"
