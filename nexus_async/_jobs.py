"""`project.batch.jobs`: the batch job methods of the SDK reference, awaitable."""

from __future__ import annotations

import builtins
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from . import errors
from ._convert import unstructure
from ._http import HTTPCore, Retry
from ._poll import TRANSIENT, poll_backoff, watch_changes
from ._validate import check_id, check_str
from .models import (
    DeleteResponse,
    Job,
    JobLogEntry,
    JobLogs,
    JobStatusOverview,
    PaginationResponse,
)
from .options import MAX_PAGE, JobOptions, LogsFilter, Pagination

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

__all__ = ["Jobs"]

logger = logging.getLogger("nexus_async")

OnUpdate = Callable[[Job], "Awaitable[None] | None"]

# The poll loop, its cadence and the errors it rides out live in `_poll`, shared
# with datasets; the old private names stay importable from here.
_TRANSIENT = TRANSIENT
_poll_backoff = poll_backoff


class Jobs:
    """The batch jobs of one project. Get it as `client.get_project(...).batch.jobs`."""

    def __init__(
        self,
        http: HTTPCore,
        project_id: str,
        task_group: Callable[[], TaskGroup | None],
    ) -> None:
        self._http = http
        self._project_id = project_id
        self._task_group = task_group
        self._base = f"/projects/{project_id}/batch/jobs"

    def __repr__(self) -> str:
        return f"<Jobs project_id={self._project_id!r}>"

    def _path(self, job_id: str, suffix: str = "") -> str:
        return f"{self._base}/{check_id(job_id, 'batchjob_', 'job_id')}{suffix}"

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
        params = Pagination.coerce(pagination).to_params()
        return await self._http.request(
            "GET",
            self._base,
            into=PaginationResponse[Job],
            retry=Retry.IDEMPOTENT,
            params=params,
        )

    async def iter(self, *, page_size: int = MAX_PAGE) -> AsyncIterator[Job]:
        """Every job of the project across all pages, newest first.

        Example:
            async for job in jobs.iter():
                ...
        """
        pagination = Pagination(limit=page_size)
        while True:
            page = await self.list(pagination)
            for job in page.data:
                yield job
            if page.next_page is None:
                return
            pagination = Pagination(limit=page_size, page=page.next_page)

    async def get(self, job_id: str) -> Job:
        """The job with this ID."""
        return await self._http.request("GET", self._path(job_id), into=Job, retry=Retry.IDEMPOTENT)

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
        path = self._path(job_id)
        try:
            return await self._http.request(
                "DELETE", path, into=DeleteResponse, retry=Retry.IDEMPOTENT
            )
        except errors.NotFoundError as exc:
            if exc.attempts > 1:
                return DeleteResponse(id=job_id, deleted=True)
            raise

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
        When more entries share one millisecond than a page holds, paging by time
        cannot get past them: `LogPagingError` is raised rather than looping or
        skipping entries.

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
                    f"more than {page_size} log entries of job {job_id} share the "
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
        path = self._path(job_id)
        snapshots = watch_changes(
            lambda: self._http.request("GET", path, into=Job, retry=Retry.IDEMPOTENT),
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
        final: Job | None = None
        async with _closing(self.watch(job_id, interval=interval, timeout=timeout)) as snapshots:
            async for final in snapshots:
                if on_update is not None:
                    result = on_update(final)
                    if inspect.isawaitable(result):
                        await result
        assert final is not None, "watch() ends only after yielding a finished job"
        if raise_exception_if is not None and str(final.status.overview) == str(raise_exception_if):
            raise errors.JobStateError(
                f"job {job_id} ended {final.status.overview}: "
                f"{final.status.message}"
                + (f" ({final.status.reason})" if final.status.reason else ""),
                job=final,
            )
        return final


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
    cancelled when this generator is closed.
    """
    send, receive = anyio.create_memory_object_stream["list[JobLogEntry] | BaseException"](1)
    scope = anyio.CancelScope()

    async def produce() -> None:
        with scope:
            async with send:
                try:
                    async for page in pages:
                        await send.send(page)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    pass
                except Exception as exc:  # handed to the consumer, never to the task group
                    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                        await send.send(exc)
                finally:
                    with anyio.CancelScope(shield=True):
                        await pages.aclose()

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
