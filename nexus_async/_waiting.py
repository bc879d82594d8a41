"""Waiting on jobs: `watch`, `wait_until_done`, `as_completed`, `wait_all`, and progress.

A single job is watched by the one poll loop (`_poll.watch_changes`). For many
jobs, polling each on its own costs one GET per job per tick (500 jobs, 500
requests) and invites rate limits. Here a *poller* refreshes a whole set of jobs
per tick through list pages (newest first), and falls back to `get` only for
jobs those pages did not contain, so a tick costs about as many requests as
pages needed. Its cadence is the same adaptive backoff as `wait_until_done`:
quick while jobs move, slowing to `interval` while nothing changes.

Inside `async with AsyncClient()`, all waits of a project share one poller,
run as a background task of the client (see `_runtime`): two `as_completed`
loops over overlapping jobs cost one set of requests. Waiters hold their
subscription weakly from the poller's side, so an abandoned iterator stops being
polled. Without `async with`, each waiter drives its own poller inline. When the
client closes, the shared poller wakes its waiters, which raise `ClientClosedError`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

import anyio
import attrs

from . import _otel, errors
from ._poll import TRANSIENT, Outage, check_timeout, poll_backoff, watch_changes
from ._validate import check_id, check_int, check_str
from .models import Job, JobStatusOverview, PaginationResponse
from .options import MAX_PAGE, Pagination

__all__ = [
    "ON_CANCEL",
    "AsCompleted",
    "JobProgress",
    "JobSource",
    "OnJob",
    "OnProgress",
    "Poller",
    "ProgressTracker",
    "Wakeups",
    "as_completed",
    "wait_all",
    "wait_until_done",
    "watch",
]

# Below this many jobs, one GET each is cheaper than a list page.
_GET_THRESHOLD = 3
# At most this many fallback GETs of one tick run at once.
_GET_CONCURRENCY = 16
# Longest wait, when the last waiter leaves, for the polling task to end.
_STOP_SECONDS = 5.0

# Longest time the jobs of a cancelled wait with `on_cancel="cancel"` are given to stop.
_CANCEL_SECONDS = 5.0
ON_CANCEL = ("leave", "cancel")
"""What a cancelled wait does with the jobs not finished yet: leave them running or cancel them."""

logger = logging.getLogger("nexus_async")

Spawn = Callable[[Callable[[], Awaitable[None]]], None]
# After a delivery for a job, the API records it and may finish the job: look this
# much later, and again this much after the job's latest delivery if more arrive.
WAKE_SETTLE = 0.1


class Wakeups:
    """Deliveries seen for jobs, waking the waits of one client that watch those jobs.

    A `DeliveryReceiver` connected to the client (`receiver.connect(client)`) calls
    `notify` for every verified delivery. A waiter then refreshes the job
    `WAKE_SETTLE` seconds after its latest delivery (deliveries of a running job
    keep pushing that back). Polling stays the source of truth: a delivery never
    finishes a wait by itself. While a receiver is connected, the shared poller's
    own cadence stays at `interval`, since deliveries tell it when to look sooner.
    """

    def __init__(self) -> None:
        self.receivers = 0
        self._pollers: weakref.WeakSet[Poller] = weakref.WeakSet()
        self._single: dict[str, set[anyio.Event]] = {}  # job -> single-job waits sleeping

    def add(self, poller: Poller) -> None:
        self._pollers.add(poller)

    def notify(self, job_id: str) -> None:
        """A verified delivery for `job_id` arrived."""
        for poller in list(self._pollers):
            poller.wake(job_id)
        for event in self._single.get(job_id, ()):
            event.set()

    async def pause(self, job_id: str, seconds: float) -> None:
        """Sleep `seconds`, or until `WAKE_SETTLE` after a delivery for the job."""
        with anyio.move_on_after(seconds):
            event = anyio.Event()
            waiting = self._single.setdefault(job_id, set())
            waiting.add(event)
            try:
                await event.wait()
            finally:
                waiting.discard(event)
                if not waiting:
                    del self._single[job_id]
            await anyio.sleep(WAKE_SETTLE)


class JobSource(Protocol):
    """What waiting reads jobs through (`Jobs` is one): a GET and a list page."""

    async def get(self, job_id: str) -> Job: ...

    async def list(self, pagination: Pagination) -> PaginationResponse[Job]: ...

    async def cancel(self, job_id: str) -> Job: ...


@attrs.frozen
class JobProgress:
    """A job's progress as a waiter observed it.

    Attributes:
        job: The snapshot this progress is computed from.
        ended: Items that left the pipeline (delivered or failed at any stage).
        total: Items in the job's dataset, when known.
        items_per_second: Recent rate at which items ended (None until two snapshots).
        eta_seconds: Estimated seconds left, from that rate (None when unknown).
    """

    job: Job
    ended: int
    total: int | None
    items_per_second: float | None
    eta_seconds: float | None


class ProgressTracker:
    """Turns successive snapshots of jobs into `JobProgress`, with a smoothed rate.

    The rate is an exponentially weighted average of items ended per second
    between snapshots, so one slow or bursty tick does not swing the estimate.
    """

    def __init__(self, totals: dict[str, int] | None = None, smoothing: float = 0.3) -> None:
        self._totals = dict(totals or {})
        self._smoothing = smoothing
        self._last: dict[str, tuple[float, int]] = {}
        self._rate: dict[str, float] = {}

    def update(self, job: Job) -> JobProgress:
        now = anyio.current_time()
        ended = job.status.items.ended
        previous = self._last.get(job.id)
        self._last[job.id] = (now, ended)
        rate = self._rate.get(job.id)
        if previous is not None and now > previous[0]:
            sample = (ended - previous[1]) / (now - previous[0])
            rate = sample if rate is None else rate + self._smoothing * (sample - rate)
            self._rate[job.id] = rate
        total = self._totals.get(job.id)
        eta: float | None = None
        if job.is_finished:
            eta = 0.0
        elif total is not None and rate:
            eta = max(0.0, total - ended) / rate
        return JobProgress(
            job=job, ended=ended, total=total, items_per_second=rate, eta_seconds=eta
        )


class _Subscription:
    """One waiter's view of the poller: the jobs it still waits for and unread news."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.pending: set[str] = set()
        self.updates: dict[str, Job] = {}
        self.failures: dict[str, errors.NexusError] = {}
        self.wake = anyio.Event()

    def deliver(self, snapshots: dict[str, Job], failures: dict[str, errors.NexusError]) -> None:
        news = False
        for job_id in self.pending & snapshots.keys():
            self.updates[job_id] = snapshots[job_id]
            news = True
        for job_id in self.pending & failures.keys():
            self.failures[job_id] = failures[job_id]
            news = True
        if news:
            self.wake.set()

    def take(self) -> tuple[dict[str, Job], dict[str, errors.NexusError]]:
        updates, self.updates = self.updates, {}
        failures, self.failures = self.failures, {}
        if self.wake.is_set():
            self.wake = anyio.Event()
        return updates, failures


class Poller:
    """Refreshes the jobs of all its subscriptions, one coalesced tick at a time.

    With `spawn` (the client's background task starter) it polls in a task of its
    own for every subscriber; without it, a waiter calls `tick()` itself. Ticks
    that reach the API for none of the jobs count toward an `Outage` of at most
    `outage_budget` seconds, after which every waiter gets the transport error.
    """

    def __init__(
        self,
        source: JobSource,
        *,
        spawn: Spawn | None = None,
        outage_budget: float | None = None,
        wakeups: Wakeups | None = None,
    ) -> None:
        self.source = source
        self._wakeups = wakeups
        self._woken: dict[str, float] = {}  # job -> when to refresh it (anyio clock)
        self._poll_now = True
        if wakeups is not None:
            wakeups.add(self)
        self._spawn = spawn
        self._outage = Outage("jobs", outage_budget)
        self._subscriptions: weakref.WeakSet[_Subscription] = weakref.WeakSet()
        self._known: dict[str, Job] = {}
        self.running = False
        self.closed = False
        self._ended = anyio.Event()
        self._scope: anyio.CancelScope | None = None  # the tick in flight
        self._kick = anyio.Event()
        self._step = 0
        self.ticks = 0

    @property
    def shared(self) -> bool:
        """True if it polls in a background task for several waiters."""
        return self._spawn is not None

    @property
    def watched_jobs(self) -> int:
        """How many distinct jobs its waiters still wait for."""
        return len(set().union(*(s.pending for s in self._subscriptions)))

    def subscribe(self, subscription: _Subscription) -> None:
        """Start serving `subscription` (starting the polling task if needed).

        Raises:
            ClientClosedError: the client is closed.
        """
        if self.closed:
            raise errors.ClientClosedError("this AsyncClient is closed; create a new one")
        self._subscriptions.add(subscription)
        if self._spawn is None:
            return
        if self.running:
            self._kick.set()  # poll the newcomer now, not at the end of a long sleep
        else:
            self._spawn(self._run)  # raises before marking us running if closed
            self.running = True
            self._ended = anyio.Event()

    def unsubscribe(self, subscription: _Subscription) -> None:
        self._subscriptions.discard(subscription)
        self._kick.set()  # lets the task end now if it has nobody left to poll for
        if not self._subscriptions and self._scope is not None:
            self._scope.cancel()  # nobody waits for the tick in flight any more

    def shutdown(self) -> None:
        """The client closed: wake every waiter (they raise `ClientClosedError`)."""
        self.closed = True
        for subscription in list(self._subscriptions):
            subscription.wake.set()

    async def wait_ended(self) -> None:
        """Return once the polling task has ended, if nobody is subscribed (bounded)."""
        if self._subscriptions or not self.running or self.closed:
            return
        with anyio.move_on_after(_STOP_SECONDS, shield=True):
            await self._ended.wait()

    def kick(self) -> None:
        """Poll now (a newcomer, or a waiter left)."""
        self._poll_now = True
        self._kick.set()

    def wake(self, job_id: str) -> None:
        """A delivery for `job_id`: refresh it `WAKE_SETTLE` seconds after its latest one."""
        if self.running and any(job_id in s.pending for s in self._subscriptions):
            self._woken[job_id] = anyio.current_time() + WAKE_SETTLE
            self._kick.set()

    async def _run(self) -> None:
        _otel.without_parent()  # serves every waiter: the first one's span is not its parent
        try:
            # When the next tick is due, and the soonest a delivery may bring it forward.
            regular = allowed = anyio.current_time()
            while self._subscriptions and not self.closed:
                with anyio.CancelScope() as self._scope:
                    now = anyio.current_time()
                    woken = any(t <= now for t in self._woken.values())
                    if self._poll_now or now >= regular or (woken and now >= allowed):
                        # One tick refreshes every watched job (about a list page), so
                        # all jobs woken by then are looked at together.
                        self._poll_now = False
                        self._woken = {j: t for j, t in self._woken.items() if t > now}
                        changed = await self.tick()
                        # Polling alone would wait `gap`: woken ticks come no sooner, so a
                        # receiver adds no requests. With one connected, the poller's own
                        # ticks keep to `interval`; deliveries say when to look sooner.
                        gap = self.next_delay(changed)
                        allowed = anyio.current_time() + gap
                        regular = allowed if not self._connected else now + self._interval()
                    wake_at = min([regular, *(max(t, allowed) for t in self._woken.values())])
                    with anyio.move_on_after(max(0.0, wake_at - anyio.current_time())):
                        await self._kick.wait()
                self._scope = None
                self._kick = anyio.Event()
        finally:
            self._scope = None
            self.running = False
            self._ended.set()

    @property
    def _connected(self) -> bool:
        return self._wakeups is not None and self._wakeups.receivers > 0

    def _interval(self) -> float:
        return min((s.interval for s in self._subscriptions), default=5.0)

    def next_delay(self, changed: bool) -> float:
        """The shared backoff: quicker after a change, slower after a quiet tick."""
        self._step = max(0, self._step - 1) if changed else self._step + 1
        return poll_backoff(self._interval()).delay(self._step)

    async def tick(self) -> bool:
        """Refresh every pending job once and deliver the news; True if any status changed."""
        wanted = set().union(*(s.pending for s in self._subscriptions))
        if not wanted:
            return False
        self.ticks += 1
        started = anyio.current_time()
        snapshots, failures, unreachable = await self._refresh(wanted)
        if unreachable is not None and not snapshots:
            try:
                self._outage.failed(unreachable, started)
            except errors.TransportError as exc:  # given up: every waiter learns why
                failures = dict.fromkeys(wanted, exc)
        else:
            self._outage.succeeded()
        changed = False
        for job_id, job in snapshots.items():
            before = self._known.get(job_id)
            if before is None or before.status != job.status:
                changed = True
        self._known.update(snapshots)
        for job_id in failures:
            self._known.pop(job_id, None)
        for subscription in list(self._subscriptions):
            subscription.deliver(snapshots, failures)
        # Forget jobs nobody waits for any more, so memory follows the watch set.
        for job_id in self._known.keys() - wanted:
            del self._known[job_id]
        return changed

    async def _refresh(
        self, wanted: set[str]
    ) -> tuple[dict[str, Job], dict[str, errors.NexusError], errors.TransportError | None]:
        """Snapshots and failures by job ID, and a transport error if one was ridden out."""
        found: dict[str, Job] = {}
        failures: dict[str, errors.NexusError] = {}
        unreachable: errors.TransportError | None = None
        if len(wanted) > _GET_THRESHOLD:
            try:
                await self._scan_pages(wanted, found)
            except TRANSIENT as exc:  # ride it out; the fallback GETs below retry
                if isinstance(exc, errors.TransportError):
                    unreachable = exc
            except errors.NexusError as exc:
                return found, dict.fromkeys(wanted, exc), None
        missing = sorted(wanted - found.keys())
        if missing:
            limiter = anyio.Semaphore(_GET_CONCURRENCY)

            async def get_one(job_id: str) -> None:
                nonlocal unreachable
                async with limiter:
                    try:
                        # `get` checks that the answer is about `job_id`: waiters
                        # file snapshots by the ID they asked for.
                        found[job_id] = await self.source.get(job_id)
                    except TRANSIENT as exc:
                        if isinstance(exc, errors.TransportError):
                            unreachable = exc
                    except errors.NexusError as exc:
                        failures[job_id] = exc

            async with anyio.create_task_group() as tg:
                for job_id in missing:
                    tg.start_soon(get_one, job_id)
        return found, failures, unreachable

    async def _scan_pages(self, wanted: set[str], found: dict[str, Job]) -> None:
        """Read list pages, newest first, until every wanted job was seen or cannot be."""
        limit = min(MAX_PAGE, max(100, 4 * len(wanted)))
        max_pages = math.ceil(len(wanted) / limit) + 1
        # Once every wanted job's creation date is known, pages older than the
        # oldest of them cannot hold any of them.
        dates = [self._known[j].create_date for j in wanted if j in self._known]
        oldest = min(dates) if len(dates) == len(wanted) else None
        cursor: str | None = None
        for _ in range(max_pages):
            page = await self.source.list(Pagination(limit=limit, page=cursor))
            for job in page.data:
                if job.id in wanted:
                    found[job.id] = job
            if len(found) == len(wanted) or page.next_page is None or not page.data:
                return
            if oldest is not None and page.data[-1].create_date < oldest:
                return
            cursor = page.next_page


OnJob = Callable[[Job], "Awaitable[None] | None"]
OnProgress = Callable[[JobProgress], "Awaitable[None] | None"]


def check_callback(value: object, name: str) -> None:
    """`ValidationError` unless `value` is None or callable."""
    if value is not None and not callable(value):
        raise errors.ValidationError(
            f"`{name}` must be a function or None (got a {type(value).__name__})"
        )


def check_totals(value: Mapping[str, int] | None) -> dict[str, int] | None:
    """`totals` as a dict of job ID -> item count (>= 0), or `ValidationError`."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise errors.ValidationError(
            f"`totals` must be a dict of job ID -> item count (got a {type(value).__name__})"
        )
    for job_id, count in value.items():
        check_id(job_id, "batchjob_", "totals key")
        check_int(count, f"totals[{job_id!r}]", minimum=0)
    return dict(value)


def check_job_ids(job_ids: Iterable[str]) -> list[str]:
    """`job_ids` as a list, every ID checked, or `ValidationError`."""
    if isinstance(job_ids, (str, bytes)) or not isinstance(job_ids, Iterable):
        raise errors.ValidationError(
            f"`job_ids` must be an iterable of job IDs (got a {type(job_ids).__name__})"
        )
    ids = list(job_ids)
    for job_id in ids:
        check_id(job_id, "batchjob_", "job_id")
    return ids


def check_on_cancel(value: object) -> bool:
    """Whether a cancelled wait cancels its unfinished jobs; `ValidationError` for a bad value."""
    if not isinstance(value, str) or value not in ON_CANCEL:
        raise errors.ValidationError(f'`on_cancel` must be "leave" or "cancel" (got {value!r})')
    return value == "cancel"


async def cancel_jobs(source: JobSource, job_ids: Iterable[str]) -> None:
    """Cancel the jobs of a cancelled wait: shielded, bounded, errors logged and not raised.

    It runs while the caller's task is being cancelled, so nothing here may raise
    over that cancellation, nor keep the caller much longer than `_CANCEL_SECONDS`.
    """
    ids = sorted(job_ids)
    if not ids:
        return

    async def cancel_one(job_id: str) -> None:
        try:
            await source.cancel(job_id)
        except errors.NexusError as exc:
            logger.warning("could not cancel job %s after its wait was cancelled: %s", job_id, exc)

    with anyio.move_on_after(_CANCEL_SECONDS, shield=True) as scope:
        async with anyio.create_task_group() as tg:
            for job_id in ids:
                tg.start_soon(cancel_one, job_id)
    if scope.cancelled_caught:
        logger.warning("cancelling %d job(s) took over %g s; gave up", len(ids), _CANCEL_SECONDS)
    else:
        logger.info("cancelled %d unfinished job(s) of a cancelled wait", len(ids))


def ended_message(job: Job) -> str:
    status = job.status
    reason = f" ({status.reason})" if status.reason else ""
    return f"job {job.id} ended {status.overview}: {status.message}{reason}"


async def _call(callback: Callable[[Any], Any] | None, value: Any) -> None:
    if callback is not None:
        result = callback(value)
        if inspect.isawaitable(result):
            await result


class AsCompleted:
    """Async iterator over jobs as they finish; see `Jobs.as_completed`.

    Use it in `async with` (or call `aclose()`) to stop polling as soon as you
    stop iterating; `add()` puts more jobs in the watch set while it runs.
    """

    def __init__(
        self,
        source: JobSource,
        job_ids: Iterable[str],
        *,
        poller: Poller | None,
        interval: float,
        timeout: float | None,
        on_update: OnJob | None,
        on_progress: OnProgress | None,
        totals: Mapping[str, int] | None,
        outage_budget: float | None = None,
        on_cancel: str = "leave",
    ) -> None:
        self._cancel_jobs = check_on_cancel(on_cancel)
        poll_backoff(interval)  # validates
        check_timeout(timeout)
        check_callback(on_update, "on_update")
        check_callback(on_progress, "on_progress")
        checked_totals = check_totals(totals)
        self._poller = poller if poller is not None else Poller(source, outage_budget=outage_budget)
        self._subscription = _Subscription(interval)
        self._timeout = timeout
        self._deadline: float | None = None
        self._ready: list[Job] = []
        self._last: dict[str, Job] = {}
        self._on_update = on_update
        self._on_progress = on_progress
        self._progress = ProgressTracker(checked_totals) if on_progress is not None else None
        self._subscribed = False
        self._closed = False
        self._ticked = False
        self._changed = False
        self._span = _otel.WaitSpan.idle()
        for job_id in check_job_ids(job_ids):
            self.add(job_id)

    @property
    def pending(self) -> frozenset[str]:
        """IDs of the jobs not yet finished."""
        return frozenset(self._subscription.pending)

    def add(self, job_id: str) -> None:
        """Watch one more job (no-op if already watched or already yielded)."""
        check_id(job_id, "batchjob_", "job_id")
        if self._closed:
            raise errors.ValidationError("cannot add jobs to a closed as_completed iterator")
        if job_id in self._last and self._last[job_id].is_finished:
            return
        self._subscription.pending.add(job_id)
        if self._subscribed:
            self._poller.kick()

    def __aiter__(self) -> AsCompleted:
        return self

    async def __aenter__(self) -> AsCompleted:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, *rest: object
    ) -> None:
        try:
            if exc_type is not None and issubclass(exc_type, anyio.get_cancelled_exc_class()):
                await self._cancelled()
        finally:
            self._span.end(exc)
            await self.aclose()

    async def _cancelled(self) -> None:
        """The awaiting task is being cancelled: with `on_cancel="cancel"`, so are the jobs."""
        if self._cancel_jobs and self._subscription.pending:
            pending, self._cancel_jobs = set(self._subscription.pending), False  # once
            await cancel_jobs(self._poller.source, pending)

    async def aclose(self) -> None:
        """Stop watching; the poller drops this waiter's jobs.

        When this was the poller's last waiter, return only once its task has
        ended, so that no request of ours is left in flight behind the caller.
        """
        self._closed = True
        self._span.end()
        self._poller.unsubscribe(self._subscription)
        await self._poller.wait_ended()

    async def __anext__(self) -> Job:
        if not self._subscribed:
            self._poller.subscribe(self._subscription)
            self._subscribed = True
            self._span = _otel.WaitSpan.start("as_completed", jobs=len(self.pending))
            if self._timeout is not None:
                self._deadline = anyio.current_time() + self._timeout
        while not self._ready:
            if self._closed or not self._subscription.pending:
                await self.aclose()
                raise StopAsyncIteration
            remaining = None if self._deadline is None else self._deadline - anyio.current_time()
            if remaining is not None and remaining <= 0:
                raise self._timeout_error()
            try:
                with anyio.move_on_after(math.inf if remaining is None else remaining):
                    if self._poller.shared:
                        await self._subscription.wake.wait()
                    else:
                        # Driving our own poller: wait out the backoff between ticks.
                        if self._ticked:
                            await anyio.sleep(self._poller.next_delay(self._changed))
                        self._changed = await self._poller.tick()
                        self._ticked = True
            except anyio.get_cancelled_exc_class():
                await self._cancelled()  # iterated without `async with`, too
                raise
            if self._poller.closed:
                raise errors.ClientClosedError(
                    "the AsyncClient closed while waiting for "
                    f"{len(self._subscription.pending)} job(s)"
                )
            await self._absorb()
        return self._ready.pop(0)

    async def _absorb(self) -> None:
        updates, failures = self._subscription.take()
        if failures:
            job_id, exc = next(iter(failures.items()))
            self._subscription.pending.discard(job_id)
            raise exc
        finished: list[Job] = []
        for job_id, job in updates.items():
            previous = self._last.get(job_id)
            if previous is not None and previous.status == job.status:
                continue
            self._last[job_id] = job
            await _call(self._on_update, job)
            if self._progress is not None:
                await _call(self._on_progress, self._progress.update(job))
            if job.is_finished:
                self._subscription.pending.discard(job_id)
                finished.append(job)
        self._span.poll(updated=len(updates), finished=len(finished), pending=len(self.pending))
        # Jobs seen finished in the same tick come out in the order they finished.
        finished.sort(key=lambda job: (job.status.update_date, job.id))
        self._ready.extend(finished)

    def _timeout_error(self) -> errors.WaitTimeoutError:
        pending = sorted(self._subscription.pending)
        return errors.WaitTimeoutError(
            f"{len(pending)} job(s) not finished after {self._timeout} s: "
            + ", ".join(pending[:5])
            + (", ..." if len(pending) > 5 else ""),
            job=self._last.get(pending[0]) if pending else None,
            pending=[self._last[j] for j in pending if j in self._last],
        )


def as_completed(
    source: JobSource,
    job_ids: Iterable[str],
    *,
    poller: Poller | None,
    interval: float = 5.0,
    timeout: float | None = None,
    on_update: OnJob | None = None,
    on_progress: OnProgress | None = None,
    totals: Mapping[str, int] | None = None,
    outage_budget: float | None = None,
    on_cancel: str = "leave",
) -> AsCompleted:
    """An `AsCompleted` over `job_ids`, on the shared `poller` if there is one; see `Jobs`."""
    return AsCompleted(
        source,
        job_ids,
        poller=poller,
        interval=interval,
        timeout=timeout,
        on_update=on_update,
        on_progress=on_progress,
        totals=totals,
        outage_budget=outage_budget,
        on_cancel=on_cancel,
    )


async def wait_all(
    source: JobSource,
    job_ids: Iterable[str],
    *,
    poller: Poller | None,
    interval: float = 5.0,
    timeout: float | None = 36_000.0,
    raise_exception_if: JobStatusOverview | str | None = JobStatusOverview.FAILED,
    fail_fast: bool = True,
    on_update: OnJob | None = None,
    on_progress: OnProgress | None = None,
    totals: Mapping[str, int] | None = None,
    outage_budget: float | None = None,
    on_cancel: str = "leave",
) -> list[Job]:
    """Every job's final snapshot, in the order given; see `Jobs.wait_all`."""
    ids = list(dict.fromkeys(check_job_ids(job_ids)))
    bad_state = None if raise_exception_if is None else str(raise_exception_if)
    finals: dict[str, Job] = {}
    failed: list[Job] = []
    with _otel.wait_span("wait_all", jobs=len(ids)):
        waiter = as_completed(
            source,
            ids,
            poller=poller,
            interval=interval,
            timeout=timeout,
            on_update=on_update,
            on_progress=on_progress,
            totals=totals,
            outage_budget=outage_budget,
            on_cancel=on_cancel,
        )
        async with waiter:
            async for job in waiter:
                finals[job.id] = job
                if bad_state is not None and str(job.status.overview) == bad_state:
                    if fail_fast:
                        raise errors.JobStateError(ended_message(job), job=job)
                    failed.append(job)
        ordered = [finals[job_id] for job_id in ids]
        if failed:
            raise errors.JobStateError(
                f"{len(failed)} of {len(ids)} jobs ended {bad_state}; first: "
                + ended_message(failed[0]),
                job=failed[0],
                jobs=failed,
                finished=ordered,
            )
        return ordered


async def watch(
    source: JobSource,
    job_id: str,
    *,
    interval: float = 5.0,
    timeout: float | None = 36_000.0,
    outage_budget: float | None = None,
    wakeups: Wakeups | None = None,
) -> AsyncGenerator[Job, None]:
    """A snapshot of the job at each status change, ending after the terminal one."""
    check_id(job_id, "batchjob_", "job_id")  # checked before the first poll
    pause = None if wakeups is None else functools.partial(wakeups.pause, job_id)
    snapshots = watch_changes(
        lambda: source.get(job_id),
        state=lambda job: job.status,
        finished=lambda job: job.status.is_finished,
        interval=interval,
        timeout=timeout,
        timed_out=lambda last: wait_timeout_error(job_id, timeout, last),
        name=job_id,
        outage_budget=outage_budget,
        pause=pause,
    )
    async with contextlib.aclosing(snapshots):
        async for job in snapshots:
            yield job


async def wait_until_done(
    source: JobSource,
    job_id: str,
    *,
    interval: float = 5.0,
    timeout: float | None = 36_000.0,
    raise_exception_if: JobStatusOverview | str | None = JobStatusOverview.FAILED,
    on_update: OnJob | None = None,
    outage_budget: float | None = None,
    on_cancel: str = "leave",
    wakeups: Wakeups | None = None,
) -> Job:
    """The job once finished; see `Jobs.wait_until_done`."""
    cancel_job = check_on_cancel(on_cancel)
    if raise_exception_if is not None:
        check_str(str(raise_exception_if), "raise_exception_if")
    check_callback(on_update, "on_update")
    final: Job | None = None
    with _otel.wait_span("wait_until_done", job_id=job_id):
        snapshots = watch(
            source,
            job_id,
            interval=interval,
            timeout=timeout,
            outage_budget=outage_budget,
            wakeups=wakeups,
        )
        try:
            async with contextlib.aclosing(snapshots):
                async for final in snapshots:
                    await _call(on_update, final)
        except anyio.get_cancelled_exc_class():
            if cancel_job and (final is None or not final.is_finished):
                await cancel_jobs(source, [job_id])
            raise
        assert final is not None, "watch() ends only after yielding a finished job"
        if raise_exception_if is not None and str(final.status.overview) == str(raise_exception_if):
            raise errors.JobStateError(ended_message(final), job=final)
        return final


def wait_timeout_error(
    job_id: str, timeout: float | None, last: Job | None
) -> errors.WaitTimeoutError:
    """The error of a wait on one job that outlived its `timeout`."""
    state = "never answered" if last is None else f"last seen {last.status.overview}"
    return errors.WaitTimeoutError(
        f"job {job_id} not finished after {timeout} s ({state})", job=last
    )
