"""`project.batch.jobs`: the batch job methods of the SDK reference, awaitable."""

from __future__ import annotations

import builtins
import contextlib
import inspect
import logging
import time
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from . import errors
from ._convert import unstructure
from ._http import Retry
from ._poll import TRANSIENT, poll_backoff, watch_changes
from ._resource import Collection
from ._validate import check_id, check_int, check_str
from .models import (
    DeleteResponse,
    Job,
    JobLogEntry,
    JobLogs,
    JobStatusOverview,
    LogLevel,
    PaginationResponse,
)
from .options import MAX_PAGE, JobOptions, LogsFilter, Pagination

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from ._client import AsyncClient
    from ._waiting import AsCompleted, OnProgress

__all__ = ["Jobs"]

logger = logging.getLogger("nexus_async")

OnUpdate = Callable[[Job], "Awaitable[None] | None"]

# Longest wait, when an iterator is closed, for its background task to end.
_STOP_SECONDS = 5.0


class Jobs(Collection[Job]):
    """The batch jobs of one project. Get it as `client.get_project(...).batch.jobs`."""

    def __init__(self, client: AsyncClient, project_id: str) -> None:
        super().__init__(
            client._http,
            project_id,
            segment="jobs",
            model=Job,
            prefix="batchjob_",
            id_name="job_id",
        )
        self._client = client

    def _task_group(self) -> TaskGroup | None:
        return self._client._current_task_group()

    def _ids(self, job_ids: Iterable[str]) -> builtins.list[str]:
        """`job_ids` as a list, every ID checked, or `ValidationError`."""
        if isinstance(job_ids, (str, bytes)) or not isinstance(job_ids, Iterable):
            raise errors.ValidationError(
                f"`job_ids` must be an iterable of job IDs (got a {type(job_ids).__name__})"
            )
        ids = builtins.list(job_ids)
        for job_id in ids:
            self._path(job_id)
        return ids

    async def create(self, name: str, job_options: JobOptions | Mapping[str, Any]) -> Job:
        """Create a batch job that predicts on a dataset and delivers to a webhook.

        Args:
            name: The job's name.
            job_options: A `JobOptions` or the reference SDK's dict: `dataset_id`,
                `webhook_id`, exactly one of `deployment_id` / `artifact_id` (with
                optional `deployment_metadata`), optional `start_at_time`,
                `stop_at_time` (epoch ms).

        Returns:
            The new Job.

        Raises:
            ValidationError: bad arguments; nothing was sent.

        The request is retried only if it provably never reached the server, so
        one call never creates two jobs.

        Example:
            job = await jobs.create("nightly", {"dataset_id": ..., "webhook_id": ...,
                                                "deployment_id": ...})
        """
        check_str(name, "name")
        spec = JobOptions.coerce(job_options).to_spec()
        body = {"name": name, "spec": unstructure(spec)}
        return await self._http.request("POST", self._base, into=Job, retry=Retry.UNSENT, body=body)

    async def list(
        self, pagination: Pagination | Mapping[str, Any] | None = None
    ) -> PaginationResponse[Job]:
        """One page of the project's jobs, newest first.

        Args:
            pagination: `{"limit": 1..1000 (default 1000), "page": cursor}` or a `Pagination`.

        Example:
            page = await jobs.list({"limit": 50})
            older = await jobs.list({"page": page["next_page"]})
        """
        return await self._page(pagination)

    def iter(self, *, page_size: int = MAX_PAGE) -> AsyncGenerator[Job, None]:
        """Every job of the project across all pages, newest first.

        Example:
            async for job in jobs.iter():
                ...
        """
        return self._all(page_size)

    async def get(self, job_id: str) -> Job:
        """The job with this ID."""
        return await self._fetch(job_id)

    async def cancel(self, job_id: str) -> Job:
        """Cancel a scheduled or running job by moving its stop time to now.

        Returns the job; once the API has stopped it, its overview is Failed with
        the reason "... due to requested cancellation at <ms>". Repeating a cancel
        is harmless, so it is retried like a read.
        """
        path = self._path(job_id)
        body = {"spec": {"stopAtTime": int(time.time() * 1000)}}
        return await self._http.request("PATCH", path, into=Job, retry=Retry.IDEMPOTENT, body=body)

    async def delete(self, job_id: str) -> DeleteResponse:
        """Delete a job (the API cancels it first if it is running).

        If an earlier attempt of this call was cut off after the API deleted the job,
        the retry's 404 is reported as the deletion it is.
        """
        return await self._remove(job_id)

    async def get_logs(
        self, job_id: str, logs_filter: LogsFilter | Mapping[str, Any] | None = None
    ) -> JobLogs:
        """Up to 1,000 of the job's log entries, newest first.

        Args:
            job_id: The job.
            logs_filter: `before_time` (inclusive), `after_time` (exclusive),
                `min_level`, `max_entries` (1..1000), as a dict or `LogsFilter`.

        For more than one page, use `get_all_logs`.
        """
        path = self._path(job_id, "/logs")
        params = LogsFilter.coerce(logs_filter).to_params()
        return await self._http.request(
            "GET", path, into=JobLogs, retry=Retry.IDEMPOTENT, params=params
        )

    def get_all_logs(
        self, job_id: str, logs_filter: LogsFilter | Mapping[str, Any] | None = None
    ) -> AsyncGenerator[JobLogEntry, None]:
        """Every log entry of the job matching the filter, newest first, each exactly once.

        Pages backwards with `beforeTime`. Entries that share a millisecond with the
        previous page's oldest entry are told apart by id, remembering only that one
        millisecond's ids, so memory stays bounded by a page however long the log.
        When a full page of entries shares one millisecond, paging by time cannot
        tell whether more follow in it: `LogPagingError` is raised rather than
        looping or skipping entries.

        Inside `async with AsyncClient(...)`, the next page is fetched while the
        caller consumes the current one (a task owned by the client, cancelled when
        the iterator is closed); otherwise pages are fetched inline.

        Args:
            job_id: The job.
            logs_filter: As for `get_logs`; `max_entries` is the page size.

        Example:
            async for entry in jobs.get_all_logs(job_id, {"min_level": "Error"}):
                print(entry.item, entry.reason)
        """
        self._path(job_id)
        flt = LogsFilter.coerce(logs_filter)
        pages = self._log_pages(job_id, flt)
        task_group = self._task_group()
        if task_group is None:
            return _flatten(pages)
        return _prefetched(pages, task_group)

    async def _log_pages(
        self, job_id: str, flt: LogsFilter
    ) -> AsyncGenerator[builtins.list[JobLogEntry], None]:
        """New entries page by page; see `get_all_logs` for the paging rule."""
        page_size = flt.max_entries or MAX_PAGE
        before = flt.before_time
        boundary_time: int | None = None
        boundary_ids: set[str] = set()
        while True:
            query = LogsFilter(
                before_time=before,
                after_time=flt.after_time,
                min_level=flt.min_level,
                max_entries=page_size,
            )
            entries = (await self.get_logs(job_id, query)).entries
            fresh = [
                e for e in entries if not (e.create_time == boundary_time and e.id in boundary_ids)
            ]
            if fresh:
                yield fresh
            if len(entries) < page_size:
                return
            oldest = entries[-1].create_time
            if not fresh:
                raise errors.LogPagingError(
                    f"{page_size} or more log entries of job {job_id} share the "
                    f"millisecond {oldest}; paging by time cannot get past them without "
                    "losing entries (narrow the query with min_level or before_time)",
                    job_id=job_id,
                    create_time=oldest,
                )
            if oldest != boundary_time:
                boundary_time = oldest
                boundary_ids = set()
            boundary_ids.update(e.id for e in entries if e.create_time == oldest)
            before = oldest

    async def watch(
        self,
        job_id: str,
        *,
        interval: float = 5.0,
        timeout: float | None = 36_000.0,
    ) -> AsyncGenerator[Job, None]:
        """Yield a snapshot of the job each time its status changes, ending after the terminal one.

        Polls with the client's backoff policy: fast at first, slowing to one poll per
        `interval` seconds while nothing changes, and quickening again when the
        counters move. Transient errors (connection, timeout, 429, 5xx) are ridden out.

        Args:
            job_id: The job.
            interval: Longest wait between two polls, in seconds (> 0).
            timeout: Seconds before `WaitTimeoutError` (carrying the last snapshot);
                None waits without limit.
        """
        self._path(job_id)  # checked before the first poll
        snapshots = watch_changes(
            lambda: self._fetch(job_id),
            state=lambda job: job.status,
            finished=lambda job: job.status.is_finished,
            interval=interval,
            timeout=timeout,
            timed_out=lambda last: _wait_timeout(job_id, timeout, last),
            name=job_id,
        )
        try:
            async for job in snapshots:
                yield job
        finally:
            await snapshots.aclose()

    async def wait_until_done(
        self,
        job_id: str,
        *,
        interval: float = 5.0,
        timeout: float | None = 36_000.0,
        raise_exception_if: JobStatusOverview | str | None = JobStatusOverview.FAILED,
        on_update: OnUpdate | None = None,
    ) -> Job:
        """Wait until the job is finished (overview Reached or Failed) and return it.

        A cancellable backoff poll (see `watch`); it prints nothing. Cancel it from
        an outer cancel scope or task like any other await.

        Args:
            job_id: The job.
            interval: Longest wait between two polls, in seconds.
            timeout: Seconds to wait at most; None waits without limit.
            raise_exception_if: Raise `JobStateError` if the job ends in this overview
                ("Failed" by default; None never raises).
            on_update: Called (sync or async) with every new snapshot.

        Raises:
            JobStateError: the job ended in `raise_exception_if`; `.job` is the final Job.
            WaitTimeoutError: still running at the deadline; `.job` is the last snapshot.

        Example:
            job = await jobs.wait_until_done(job.id, timeout=600)
        """
        if raise_exception_if is not None:
            check_str(str(raise_exception_if), "raise_exception_if")
        _check_callback(on_update, "on_update")
        final: Job | None = None
        async with _closing(self.watch(job_id, interval=interval, timeout=timeout)) as snapshots:
            async for final in snapshots:
                if on_update is not None:
                    result = on_update(final)
                    if inspect.isawaitable(result):
                        await result
        assert final is not None, "watch() ends only after yielding a finished job"
        if raise_exception_if is not None and str(final.status.overview) == str(raise_exception_if):
            raise errors.JobStateError(_ended_message(final), job=final)
        return final

    def as_completed(
        self,
        job_ids: Iterable[str],
        *,
        interval: float = 5.0,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        on_progress: OnProgress | None = None,
        totals: Mapping[str, int] | None = None,
    ) -> AsCompleted:
        """Yield each job's final snapshot as it finishes (Reached or Failed), in completion order.

        All waits of a project share one poller that refreshes the watched jobs
        through list pages, so a tick costs about as many requests as pages, not
        jobs. More jobs can be added while iterating with `.add(job_id)`.

        Args:
            job_ids: The jobs to wait for.
            interval: Longest wait between two polls, in seconds.
            timeout: Seconds before `WaitTimeoutError` (its `pending` holds the
                unfinished jobs); None waits without limit.
            on_update: Called (sync or async) with every new snapshot of any job.
            on_progress: Called with a `JobProgress` (counters, rate, ETA) for every
                new snapshot.
            totals: Item count per job ID, for the ETA in `on_progress`.

        Example:
            async with jobs.as_completed(ids) as finished:
                async for job in finished:
                    print(job.id, job.status.overview)
        """
        from ._waiting import AsCompleted

        _check_callback(on_update, "on_update")
        _check_callback(on_progress, "on_progress")
        task_group = self._task_group()
        return AsCompleted(
            self,
            self._ids(job_ids),
            poller=self._client._poller(self) if task_group is not None else None,
            task_group=task_group,
            interval=interval,
            timeout=timeout,
            on_update=on_update,
            on_progress=on_progress,
            totals=_check_totals(totals),
        )

    async def wait_all(
        self,
        job_ids: Iterable[str],
        *,
        interval: float = 5.0,
        timeout: float | None = 36_000.0,
        raise_exception_if: JobStatusOverview | str | None = JobStatusOverview.FAILED,
        fail_fast: bool = True,
        on_update: OnUpdate | None = None,
        on_progress: OnProgress | None = None,
        totals: Mapping[str, int] | None = None,
    ) -> builtins.list[Job]:
        """Wait until every job is finished; return their final snapshots in the order given.

        Args:
            job_ids: The jobs to wait for (duplicates are waited for once).
            interval, timeout, on_update, on_progress, totals: As for `as_completed`.
            raise_exception_if: An overview that counts as failure ("Failed" by
                default; None accepts every ending).
            fail_fast: Raise `JobStateError` at the first job ending in
                `raise_exception_if` (True), or wait for all and then raise one
                `JobStateError` whose `jobs` lists every such job and whose
                `finished` holds all final snapshots (False).

        Raises:
            JobStateError: see `fail_fast`.
            WaitTimeoutError: some jobs still running at the deadline (`pending`).

        Example:
            finals = await jobs.wait_all([a.id, b.id], fail_fast=False)
        """
        ids = builtins.list(dict.fromkeys(self._ids(job_ids)))
        bad_state = None if raise_exception_if is None else str(raise_exception_if)
        finals: dict[str, Job] = {}
        failed: builtins.list[Job] = []
        waiter = self.as_completed(
            ids,
            interval=interval,
            timeout=timeout,
            on_update=on_update,
            on_progress=on_progress,
            totals=totals,
        )
        async with waiter:
            async for job in waiter:
                finals[job.id] = job
                if bad_state is not None and str(job.status.overview) == bad_state:
                    if fail_fast:
                        raise errors.JobStateError(_ended_message(job), job=job)
                    failed.append(job)
        ordered = [finals[job_id] for job_id in ids]
        if failed:
            raise errors.JobStateError(
                f"{len(failed)} of {len(ids)} jobs ended {bad_state}; first: "
                + _ended_message(failed[0]),
                job=failed[0],
                jobs=failed,
                finished=ordered,
            )
        return ordered

    async def follow_logs(
        self,
        job_id: str,
        *,
        interval: float = 2.0,
        min_level: LogLevel | str | None = None,
        after_time: int | None = None,
    ) -> AsyncGenerator[JobLogEntry, None]:
        """Yield the job's log entries oldest first as they appear, ending once it is finished.

        Each poll pages through everything newer than the last entry yielded
        (entries sharing its millisecond are told apart by id), so every entry
        comes out exactly once; memory holds one poll's worth of new entries.
        The job's status is read before its logs, so once it is seen finished the
        final poll includes its last entries.

        Args:
            job_id: The job.
            interval: Longest wait between two polls, in seconds.
            min_level: Lowest severity to include.
            after_time: Start after this time (epoch ms, exclusive); default: the
                job's first entry.

        Example:
            async for entry in jobs.follow_logs(job.id):
                print(entry.create_time, entry.kind, entry.item)
        """
        self._path(job_id)  # checked before the first request
        backoff = poll_backoff(interval)
        base = LogsFilter(min_level=min_level, after_time=after_time)
        newest_time = base.after_time
        newest_ids: set[str] = set()  # ids yielded at `newest_time`
        step = 0
        while True:
            finished = False
            fresh: builtins.list[JobLogEntry] = []
            try:
                job = await self._fetch(job_id)
                finished = job.is_finished
                # Re-read the newest millisecond: entries may still arrive in it.
                query = attrs.evolve(
                    base, after_time=None if newest_time is None else max(0, newest_time - 1)
                )
                batch = await _collect(self._log_pages(job_id, query))
            except TRANSIENT as exc:
                logger.info("following logs of %s: %s; will poll again", job_id, exc)
                finished = False
            else:
                batch.reverse()  # oldest first
                fresh = [
                    e
                    for e in batch
                    if not (e.create_time == newest_time and e.id in newest_ids)
                    and (newest_time is None or e.create_time >= newest_time)
                ]
            for entry in fresh:
                yield entry
            if fresh:
                last_time = fresh[-1].create_time
                if last_time != newest_time:
                    newest_time, newest_ids = last_time, set()
                newest_ids.update(e.id for e in fresh if e.create_time == last_time)
                step = max(0, step - 1)
            else:
                step += 1
            if finished:
                return
            await anyio.sleep(backoff.delay(step))


def _check_callback(value: object, name: str) -> None:
    if value is not None and not callable(value):
        raise errors.ValidationError(
            f"`{name}` must be a function or None (got a {type(value).__name__})"
        )


def _check_totals(value: Mapping[str, int] | None) -> dict[str, int] | None:
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


def _ended_message(job: Job) -> str:
    status = job.status
    reason = f" ({status.reason})" if status.reason else ""
    return f"job {job.id} ended {status.overview}: {status.message}{reason}"


async def _collect(
    pages: AsyncGenerator[builtins.list[JobLogEntry], None],
) -> builtins.list[JobLogEntry]:
    """Every entry of `pages`, in page order."""
    entries: list[JobLogEntry] = []
    try:
        async for page in pages:
            entries.extend(page)
    finally:
        await pages.aclose()
    return entries


def _wait_timeout(job_id: str, timeout: float | None, last: Job | None) -> errors.WaitTimeoutError:
    state = "never answered" if last is None else f"last seen {last.status.overview}"
    return errors.WaitTimeoutError(
        f"job {job_id} not finished after {timeout} s ({state})", job=last
    )


class _closing:
    """`async with` that closes an async generator on exit (contextlib.aclosing, 3.10+ typed)."""

    def __init__(self, gen: AsyncGenerator[Job, None]) -> None:
        self._gen = gen

    async def __aenter__(self) -> AsyncGenerator[Job, None]:
        return self._gen

    async def __aexit__(self, *exc: object) -> None:
        await self._gen.aclose()


async def _flatten(
    pages: AsyncGenerator[list[JobLogEntry], None],
) -> AsyncGenerator[JobLogEntry, None]:
    try:
        async for page in pages:
            for entry in page:
                yield entry
    finally:
        await pages.aclose()


async def _prefetched(
    pages: AsyncGenerator[list[JobLogEntry], None], task_group: TaskGroup
) -> AsyncGenerator[JobLogEntry, None]:
    """Yield from `pages` while a task in `task_group` fetches ahead.

    The producer runs in the client's task group, never in a scope held across
    our `yield`; it hands pages (or its exception) over a one-slot stream and is
    cancelled when this generator is closed, which returns only once the producer
    has ended: no request of ours is left in flight behind the caller.
    """
    send, receive = anyio.create_memory_object_stream["list[JobLogEntry] | BaseException"](1)
    scope = anyio.CancelScope()
    ended = anyio.Event()

    async def produce() -> None:
        try:
            with scope:
                async with send:
                    try:
                        async for page in pages:
                            await send.send(page)
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

    task_group.start_soon(produce)
    try:
        async with receive:
            async for item in receive:
                if isinstance(item, BaseException):
                    raise item
                for entry in item:
                    yield entry
    finally:
        scope.cancel()
        # A task cancelled before it ever ran never gets to set `ended`; the task
        # group's own cancellation (the client closing) ends it anyway.
        if not task_group.cancel_scope.cancel_called:
            with anyio.move_on_after(_STOP_SECONDS, shield=True):
                await ended.wait()
