"""The client's lifecycle: open or closed, its background tasks, its per-project pollers.

One `Runtime` per `AsyncClient`, handed to every resource next to the HTTP layer
and the project ID. Inside `async with AsyncClient()` it owns an anyio task group
in which prefetching (`get_all_logs`) and the shared pollers run. Each of those
tasks runs in a cancel scope of its own, so that `aclose()` inside the block can
stop them without cancelling the block itself (the group's own scope encloses the
caller's code). For the same reason nothing a background task raises reaches the
group: a bug is logged and ends the task, and a stray cancellation just ends it;
the task's consumers see it end (a closed stream, a woken waiter).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel
import attrs
from anyio.abc import TaskGroup

from . import errors
from ._create import CreateLedger
from ._http import HTTPStats
from ._waiting import JobSource, Poller, Wakeups

__all__ = ["Diagnostics", "PollerDiagnostics", "Runtime"]

logger = logging.getLogger("nexus_async")

_CLOSED_MESSAGE = "this AsyncClient is closed; create a new one"


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


@attrs.frozen
class PollerDiagnostics:
    """One project's shared poller, as `AsyncClient.diagnostics()` reports it.

    Attributes:
        project_id: The project it polls.
        running: Whether its polling task is alive.
        watched_jobs: Jobs its waiters still wait for.
        ticks: Polls done so far (each costs about a list page).
    """

    project_id: str
    running: bool
    watched_jobs: int
    ticks: int


@attrs.frozen
class Diagnostics:
    """What a client has going on, for tests and debugging; see `AsyncClient.diagnostics()`.

    Attributes:
        state: "unopened", "opened" (inside `async with`) or "closed".
        background_tasks: Tasks of the client running (prefetchers, pollers).
        pollers: The shared pollers, one per project that waited on many jobs.
        requests_sent: Request attempts sent so far (retries count).
        http: The HTTP layer's counts (requests waiting and in flight, the transport's).
    """

    state: str
    background_tasks: int
    pollers: tuple[PollerDiagnostics, ...]
    requests_sent: int
    http: HTTPStats


class Runtime:
    """Open/closed state, the background task group and the shared pollers of one client."""

    def __init__(self) -> None:
        self._state = _State.UNOPENED
        self._task_group: TaskGroup | None = None
        self._scopes: set[anyio.CancelScope] = set()
        self._pollers: dict[str, Poller] = {}
        self.creates = CreateLedger()  # the claims of exactly-once creates (`_create`)
        self.wakeups = Wakeups()  # deliveries of connected receivers, for the waits

    @property
    def state(self) -> str:
        return self._state.value

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    @property
    def in_background(self) -> bool:
        """True while background tasks can be started (inside `async with`, not closed)."""
        return self._task_group is not None and self._state is _State.OPENED

    def check_open(self) -> None:
        """Raise `ClientClosedError` once the client is closed."""
        if self._state is _State.CLOSED:
            raise errors.ClientClosedError(_CLOSED_MESSAGE)

    def check_unopened(self) -> None:
        """Raise `ClientClosedError` unless the client was never opened: it opens once."""
        if self._state is not _State.UNOPENED:
            raise errors.ClientClosedError(
                "an AsyncClient can be entered once; it is "
                + ("already open" if self._state is _State.OPENED else "closed")
            )

    async def open(self) -> None:
        """Start the task group (`async with AsyncClient()`)."""
        self.check_unopened()
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._state = _State.OPENED

    def close(self) -> None:
        """Mark the client closed: stop every background task and wake every waiter.

        The task group itself stays until `exit()`: it encloses the caller's block,
        which goes on after an `aclose()` inside it.
        """
        self._state = _State.CLOSED
        for scope in self._scopes:
            scope.cancel()
        for poller in self._pollers.values():
            poller.shutdown()

    async def exit(self) -> None:
        """End the task group (the end of `async with`), after `close()`."""
        self.close()
        task_group, self._task_group = self._task_group, None
        if task_group is not None:
            # The body's exception is not handed to the group: it would come out
            # wrapped in an ExceptionGroup. Our tasks never raise, so the group has
            # nothing to add.
            task_group.cancel_scope.cancel()
            try:
                await task_group.__aexit__(None, None, None)
            except anyio.get_cancelled_exc_class():
                # Seen on trio, rarely: the cancellation `close()` gave a task reached
                # the group's exit as a Cancelled of its own. It is ours to absorb
                # unless the caller is being cancelled too, which the checkpoint
                # re-raises.
                await anyio.lowlevel.checkpoint_if_cancelled()

    def start_soon(self, func: Callable[[], Awaitable[None]]) -> None:
        """Run `func` as a background task, in a cancel scope `close()` cancels.

        Raises:
            ClientClosedError: the client is closed (or was never opened with `async with`).
        """
        self.check_open()
        task_group = self._task_group
        if task_group is None:
            raise errors.ClientClosedError("background work needs `async with AsyncClient()`")

        async def run() -> None:
            with anyio.CancelScope() as scope:
                self._scopes.add(scope)
                if self.closed:  # closed before the task got to run: let it clean up
                    scope.cancel()
                try:
                    await func()
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:
                    # Nothing a background task raises may reach the task group: the
                    # group encloses the caller's own code, and a child's error (even
                    # a Cancelled that outlived the scope it was meant for, as anyio
                    # raises on trio when a cancelled scope's inner group unwinds)
                    # would cancel that code. The task just ends; its consumers see
                    # its end (a closed stream, a woken waiter).
                    if not isinstance(exc, anyio.get_cancelled_exc_class()):
                        logger.error("a background task of the client failed", exc_info=exc)
                finally:
                    self._scopes.discard(scope)

        task_group.start_soon(run)

    def poller(
        self, project_id: str, source: JobSource, *, outage_budget: float | None
    ) -> Poller | None:
        """The shared poller of a project, or None when waits must poll inline."""
        self.check_open()
        if not self.in_background:
            return None
        poller = self._pollers.get(project_id)
        if poller is None:
            poller = self._pollers[project_id] = Poller(
                source, spawn=self.start_soon, outage_budget=outage_budget, wakeups=self.wakeups
            )
        return poller

    def diagnostics(self, http: HTTPStats) -> Diagnostics:
        return Diagnostics(
            state=self.state,
            background_tasks=len(self._scopes),
            pollers=tuple(
                PollerDiagnostics(
                    project_id=project_id,
                    running=poller.running,
                    watched_jobs=poller.watched_jobs,
                    ticks=poller.ticks,
                )
                for project_id, poller in sorted(self._pollers.items())
            ),
            requests_sent=http.requests_sent,
            http=http,
        )
