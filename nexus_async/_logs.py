"""Job logs: paging back through them (`get_all_logs`) and following them (`follow_logs`).

The API pages logs by time alone: `beforeTime` (inclusive) and `afterTime`
(exclusive), newest first. Entries sharing a millisecond straddle page
boundaries, so a walk must re-read the boundary millisecond and skip the entries
it already yielded there. `LogCursor` is that position, the one place where ties
are broken: a time bound plus the IDs already yielded at it. It walks newest
first (paging back) or oldest first (following). It is an immutable value, so a
walk can be resumed from any cursor it has produced.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

import anyio
import attrs

from . import _otel, errors
from ._poll import TRANSIENT, Outage, check_timeout, poll_backoff
from ._runtime import Runtime
from ._validate import check_id
from ._waiting import wait_timeout_error
from .models import Job, JobLogEntry, JobLogs, LogLevel
from .options import MAX_PAGE, LogsFilter

__all__ = ["LogCursor", "all_logs", "follow_logs", "log_pages"]


FetchLogs = Callable[[LogsFilter], Awaitable[JobLogs]]

# Longest wait, when an iterator is closed, for its background task to end.
_STOP_SECONDS = 5.0


@attrs.frozen
class LogCursor:
    """A position in a job's log stream, newest first or (following) oldest first.

    Everything on the far side of `time` (newer when paging back, older when
    following) has been yielded, and of the entries at `time` exactly those in
    `seen`. Build one with `newest_first()` or `oldest_first()`.

    Attributes:
        time: The boundary millisecond (epoch ms); None before the first entry.
        seen: IDs of the entries at `time` already yielded.
        forward: True when walking oldest first.
    """

    time: int | None = None
    seen: frozenset[str] = frozenset()
    forward: bool = False

    @classmethod
    def newest_first(cls, before_time: int | None = None) -> LogCursor:
        """The start of a walk back from `before_time` (inclusive; None: the newest)."""
        return cls(time=before_time)

    @classmethod
    def oldest_first(cls, after_time: int | None = None) -> LogCursor:
        """The start of a walk forward from `after_time` (exclusive; None: the oldest)."""
        return cls(time=None if after_time is None else after_time + 1, forward=True)

    def query(self, base: LogsFilter) -> LogsFilter:
        """`base` narrowed to what is still ahead of the cursor, boundary millisecond included."""
        if self.time is None:
            return base
        if self.forward:
            return attrs.evolve(base, after_time=self.time - 1 if self.time > 0 else None)
        return attrs.evolve(base, before_time=self.time)

    def advance(self, entries: Sequence[JobLogEntry]) -> tuple[list[JobLogEntry], LogCursor]:
        """The entries not yet yielded, and the cursor past them.

        Args:
            entries: An answer to `query()`, in walk order (newest first when paging
                back, oldest first when following).
        """
        fresh = [e for e in entries if self._ahead(e)]
        if not fresh:
            return fresh, self
        last = fresh[-1].create_time
        ids = frozenset(e.id for e in fresh if e.create_time == last)
        seen = self.seen | ids if last == self.time else ids
        return fresh, attrs.evolve(self, time=last, seen=seen)

    def _ahead(self, entry: JobLogEntry) -> bool:
        if self.time is None:
            return True
        if entry.create_time == self.time:
            return entry.id not in self.seen
        return (entry.create_time > self.time) == self.forward


async def log_pages(
    fetch: FetchLogs, job_id: str, flt: LogsFilter
) -> AsyncGenerator[list[JobLogEntry], None]:
    """The new entries of each page back through the log, newest first.

    Raises:
        LogPagingError: a full page shares one millisecond with entries already
            yielded, so paging by time cannot get past it without losing entries.
    """
    page_size = flt.max_entries or MAX_PAGE
    base = attrs.evolve(flt, max_entries=page_size)
    cursor = LogCursor.newest_first(flt.before_time)
    while True:
        entries = (await fetch(cursor.query(base))).entries
        fresh, cursor = cursor.advance(entries)
        _otel.log_page()
        if fresh:
            yield fresh
        if len(entries) < page_size:
            return
        if not fresh:
            oldest = entries[-1].create_time
            raise errors.LogPagingError(
                f"{page_size} or more log entries of job {job_id} share the "
                f"millisecond {oldest}; paging by time cannot get past them without "
                "losing entries (narrow the query with min_level or before_time)",
                job_id=job_id,
                create_time=oldest,
            )


def all_logs(
    fetch: FetchLogs, job_id: str, flt: LogsFilter, runtime: Runtime
) -> AsyncGenerator[JobLogEntry, None]:
    """Every entry, newest first, fetching ahead in the background when the runtime can."""
    pages = log_pages(fetch, job_id, flt)
    if runtime.in_background:
        return _prefetched(pages, runtime)
    return _flatten(pages)


async def _flatten(
    pages: AsyncGenerator[list[JobLogEntry], None],
) -> AsyncGenerator[JobLogEntry, None]:
    async with contextlib.aclosing(pages):
        async for page in pages:
            for entry in page:
                yield entry


async def _prefetched(
    pages: AsyncGenerator[list[JobLogEntry], None], runtime: Runtime
) -> AsyncGenerator[JobLogEntry, None]:
    """Yield from `pages` while a background task of the client fetches ahead.

    The producer never runs in a scope held across our `yield`; it hands pages
    (or its exception) over a one-slot stream and is cancelled when this
    generator is closed, which returns only once the producer has ended: no
    request of ours is left in flight behind the caller. If the stream ends
    without the producer having finished, the client closed under us.
    """
    runtime.check_open()  # before anything needs closing
    send, receive = anyio.create_memory_object_stream["list[JobLogEntry] | BaseException"](1)
    scope = anyio.CancelScope()
    ended = anyio.Event()
    done = False

    async def produce() -> None:
        nonlocal done
        try:
            with scope:
                async with send:
                    try:
                        async for page in pages:
                            await send.send(page)
                        done = True
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        pass
                    except Exception as exc:  # handed to the consumer, never to the task group
                        with contextlib.suppress(
                            anyio.BrokenResourceError, anyio.ClosedResourceError
                        ):
                            await send.send(exc)
                    finally:
                        with anyio.CancelScope(shield=True):
                            await pages.aclose()
        finally:
            ended.set()

    runtime.start_soon(produce)
    try:
        async with receive:
            async for item in receive:
                if isinstance(item, BaseException):
                    raise item
                for entry in item:
                    yield entry
        if not done:
            raise errors.ClientClosedError("the AsyncClient closed while reading logs")
    finally:
        scope.cancel()
        # A task cancelled before it ever ran never gets to set `ended`; the
        # client's closing ends it anyway.
        if not runtime.closed:
            with anyio.move_on_after(_STOP_SECONDS, shield=True):
                await ended.wait()


async def follow_logs(
    fetch_job: Callable[[], Awaitable[Job]],
    fetch: FetchLogs,
    job_id: str,
    *,
    interval: float,
    min_level: LogLevel | str | None,
    after_time: int | None,
    timeout: float | None,
    outage_budget: float | None,
) -> AsyncGenerator[JobLogEntry, None]:
    """Entries oldest first as they appear, ending once the job is finished; see `Jobs`."""
    check_id(job_id, "batchjob_", "job_id")  # checked before the first request
    backoff = poll_backoff(interval)
    check_timeout(timeout)
    base = LogsFilter(min_level=min_level, after_time=after_time)
    cursor = LogCursor.oldest_first(base.after_time)
    deadline = None if timeout is None else anyio.current_time() + timeout
    outage = Outage(f"the logs of {job_id}", outage_budget)
    last: Job | None = None
    step = 0
    while True:
        remaining = math.inf if deadline is None else deadline - anyio.current_time()
        if remaining <= 0:
            raise wait_timeout_error(job_id, timeout, last)
        finished = False
        fresh: list[JobLogEntry] = []
        # The cancel scope covers only the poll, never a `yield` (anyio's rule).
        with anyio.move_on_after(remaining):
            started = anyio.current_time()
            try:
                job = await fetch_job()
                pages = log_pages(fetch, job_id, cursor.query(base))
                async with contextlib.aclosing(pages):
                    batch = [entry async for page in pages for entry in page]
            except TRANSIENT as exc:
                _otel.log_resumed()
                outage.failed(exc, started)
            else:
                outage.succeeded()
                last, finished = job, job.is_finished
                batch.reverse()  # oldest first
                fresh, cursor = cursor.advance(batch)
        for entry in fresh:
            yield entry
        if finished:
            return
        step = max(0, step - 1) if fresh else step + 1
        delay = backoff.delay(step)
        if deadline is not None:
            delay = min(delay, max(0.0, deadline - anyio.current_time()))
        await anyio.sleep(delay)
