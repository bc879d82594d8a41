"""`project.batch.jobs`: the batch job methods of the SDK reference, awaitable."""

from __future__ import annotations

import builtins
from collections.abc import AsyncGenerator, Iterable, Mapping
from typing import Any

from . import _logs, _waiting
from ._convert import unstructure
from ._create import create_once, same
from ._http import HTTPCore, Retry
from ._logs import LogCursor, LogStream
from ._resource import Collection
from ._runtime import Runtime
from ._validate import check_int, check_str
from ._waiting import AsCompleted, OnJob, OnProgress
from .models import (
    DeleteResponse,
    Job,
    JobLogs,
    JobStatusOverview,
    LogLevel,
    PaginationResponse,
)
from .options import MAX_PAGE, JobOptions, LogsFilter, Pagination

__all__ = ["Jobs"]


class Jobs(Collection[Job]):
    """The batch jobs of one project. Get it as `client.get_project(...).batch.jobs`."""

    def __init__(self, http: HTTPCore, project_id: str, runtime: Runtime) -> None:
        super().__init__(
            http,
            project_id,
            runtime,
            segment="jobs",
            model=Job,
            prefix="batchjob_",
            id_name="job_id",
        )

    def _shared_poller(self) -> _waiting.Poller | None:
        return self._runtime.poller(self._project_id, self, outage_budget=self._outage_budget)

    async def create(
        self, name: str, job_options: JobOptions | Mapping[str, Any], *, recover: bool = True
    ) -> Job:
        """Create a batch job that predicts on a dataset and delivers to a webhook.

        Args:
            name: The job's name.
            job_options: A `JobOptions` or the reference SDK's dict: `dataset_id`,
                `webhook_id`, exactly one of `deployment_id` / `artifact_id` (with
                optional `deployment_metadata`), optional `start_at_time`,
                `stop_at_time` (epoch ms).
            recover: When the outcome is ambiguous (the answer was lost, or a
                500/502/504 after the request may have been carried out), look for
                the job this call made and return it, sending again only when it
                provably does not exist (True, the default). False raises instead.

        Returns:
            The new Job.

        Raises:
            ValidationError: bad arguments; nothing was sent.
            APIError: the create failed, or (with `recover`) its outcome stayed
                unknown: the lookup failed or could not rule the job out.

        One call makes at most one job. The request is resent only if it provably
        never reached the server, or after a lookup proved that the failed attempt
        made no job. The lookup reads newest-first list pages for a job of this
        name and spec created during the attempt (by the API's clock) that no other
        call of this client has claimed: about one page of 100 jobs per ambiguous
        attempt. Limit: two identical creates racing from different processes are
        indistinguishable on this API, so one may return the other's job; use
        distinct names where that matters.

        Example:
            job = await jobs.create("nightly", {"dataset_id": ..., "webhook_id": ...,
                                                "deployment_id": ...})
        """
        check_str(name, "name")
        spec = JobOptions.coerce(job_options).to_spec()
        body = {"name": name, "spec": unstructure(spec)}
        return await create_once(
            self._http,
            self._runtime.creates,
            self._base,
            body,
            into=Job,
            matches=lambda job: job.name == name and same(body["spec"], unstructure(job.spec)),
            recover=recover,
        )

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

        "Now" is the API's clock (from the `Date` of its last answer, or of a GET of
        the job when none came yet), not this machine's, which may be off by
        minutes. Returns the job; once the API has stopped it, its overview is
        Failed with the reason "... due to requested cancellation at <ms>".
        Repeating a cancel is harmless, so it is retried like a read.
        """
        self._path(job_id)  # checked first
        now = self._http.server_time_ms()
        if now is None:
            job = await self._fetch(job_id)
            # Without a `Date` header, the job's own latest timestamp is still the
            # API's clock, and not after its now.
            now = self._http.server_time_ms() or job.update_date
        body = {"spec": {"stopAtTime": now}}
        return await self._about(job_id, "PATCH", into=Job, body=body)

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
        self,
        job_id: str,
        logs_filter: LogsFilter | Mapping[str, Any] | None = None,
        *,
        resume_from: LogCursor | str | None = None,
        concurrency: int = _logs.DEFAULT_CONCURRENCY,
    ) -> LogStream:
        """Every log entry of the job matching the filter, newest first, each exactly once.

        Pages backwards with `beforeTime`. Entries that share a millisecond with the
        previous page's oldest entry are told apart by id, remembering only that one
        millisecond's ids, so memory stays bounded by a page however long the log.
        When a full page of entries shares one millisecond, paging by time cannot
        tell whether more follow in it: `LogPagingError` is raised rather than
        looping or skipping entries.

        Inside `async with AsyncClient(...)`, pages are fetched ahead by tasks owned
        by the client (cancelled when the iterator is closed): one request at a
        time, the next one in flight while the caller decodes and consumes the
        current page, and, once the caller is seen waiting on the network, up to
        `concurrency` requests in flight, on disjoint time slices merged back in
        order (a millisecond is never split between slices), with a bounded
        buffer. `concurrency=1` never goes parallel. Outside `async with`, pages
        are fetched inline, one at a time.

        The stream's `cursor` is the position after the last entry yielded; an
        error that ends the stream carries it too (`exc.cursor`, after the client's
        retry policy gave up). Passing it (or `str(cursor)`) as `resume_from`, with
        the same filter, continues exactly after that entry, in any client.

        Args:
            job_id: The job.
            logs_filter: As for `get_logs`; `max_entries` is the page size.
            resume_from: A cursor of an earlier `get_all_logs` stream to continue.
            concurrency: Requests in flight inside `async with`, 1..64; the default
                (8) is where the log benchmark stops gaining at 20-50 ms latency.

        Raises:
            ValidationError: a bad argument (before any request).
            LogPagingError: a page or more of entries share one millisecond.

        Example:
            async for entry in jobs.get_all_logs(job_id, {"min_level": "Error"}):
                print(entry.item, entry.reason)
        """
        self._path(job_id)
        flt = LogsFilter.coerce(logs_filter)
        start = _logs.resume_cursor(resume_from, forward=False)
        check_int(concurrency, "concurrency", minimum=1, maximum=_logs.MAX_CONCURRENCY)
        return _logs.all_logs(
            self._logs_json(job_id),
            self._logs_url(job_id),
            job_id,
            flt,
            self._runtime,
            start,
            concurrency,
        )

    def _logs_json(self, job_id: str) -> _logs.FetchLogs:
        """A fetch of one logs answer as JSON, its entries left for the stream to decode."""
        path = self._path(job_id, "/logs")

        async def fetch(flt: LogsFilter) -> Any:
            params = flt.to_params()
            return await self._http.request(
                "GET", path, into=dict, retry=Retry.IDEMPOTENT, params=params
            )

        return fetch

    def _logs_url(self, job_id: str) -> str:
        return self._http.base_url + self._path(job_id, "/logs")

    def watch(
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
        return _waiting.watch(
            self,
            job_id,
            interval=interval,
            timeout=timeout,
            outage_budget=self._outage_budget,
            wakeups=self._runtime.wakeups,
        )

    async def wait_until_done(
        self,
        job_id: str,
        *,
        interval: float = 5.0,
        timeout: float | None = 36_000.0,
        raise_exception_if: JobStatusOverview | str | None = JobStatusOverview.FAILED,
        on_update: OnJob | None = None,
        on_cancel: str = "leave",
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
            on_cancel: What cancelling the awaiting task does to the job: "leave" it
                running (the default) or "cancel" it too, before the cancellation
                propagates (shielded, at most 5 s; a failure is logged, not raised).

        Raises:
            ValidationError: a bad argument, `on_cancel` other than "leave"/"cancel".
            JobStateError: the job ended in `raise_exception_if`; `.job` is the final Job.
            WaitTimeoutError: still running at the deadline; `.job` is the last snapshot.

        Example:
            job = await jobs.wait_until_done(job.id, timeout=600)
        """
        return await _waiting.wait_until_done(
            self,
            job_id,
            interval=interval,
            timeout=timeout,
            raise_exception_if=raise_exception_if,
            on_update=on_update,
            outage_budget=self._outage_budget,
            on_cancel=on_cancel,
            wakeups=self._runtime.wakeups,
        )

    def as_completed(
        self,
        job_ids: Iterable[str],
        *,
        interval: float = 5.0,
        timeout: float | None = None,
        on_update: OnJob | None = None,
        on_progress: OnProgress | None = None,
        totals: Mapping[str, int] | None = None,
        on_cancel: str = "leave",
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
            on_cancel: "leave" (default) or "cancel": whether cancelling the task
                that iterates cancels the jobs not finished yet (shielded, at most
                5 s, failures logged), as for `wait_until_done`.

        Example:
            async with jobs.as_completed(ids) as finished:
                async for job in finished:
                    print(job.id, job.status.overview)
        """
        return _waiting.as_completed(
            self,
            job_ids,
            poller=self._shared_poller(),
            interval=interval,
            timeout=timeout,
            on_update=on_update,
            on_progress=on_progress,
            totals=totals,
            outage_budget=self._outage_budget,
            on_cancel=on_cancel,
        )

    async def wait_all(
        self,
        job_ids: Iterable[str],
        *,
        interval: float = 5.0,
        timeout: float | None = 36_000.0,
        raise_exception_if: JobStatusOverview | str | None = JobStatusOverview.FAILED,
        fail_fast: bool = True,
        on_update: OnJob | None = None,
        on_progress: OnProgress | None = None,
        totals: Mapping[str, int] | None = None,
        on_cancel: str = "leave",
    ) -> builtins.list[Job]:
        """Wait until every job is finished; return their final snapshots in the order given.

        Args:
            job_ids: The jobs to wait for (duplicates are waited for once).
            interval, timeout, on_update, on_progress, totals, on_cancel: As for
                `as_completed` ("cancel" cancels exactly the jobs not finished yet).
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
        return await _waiting.wait_all(
            self,
            job_ids,
            poller=self._shared_poller(),
            interval=interval,
            timeout=timeout,
            raise_exception_if=raise_exception_if,
            fail_fast=fail_fast,
            on_update=on_update,
            on_progress=on_progress,
            totals=totals,
            outage_budget=self._outage_budget,
            on_cancel=on_cancel,
        )

    def follow_logs(
        self,
        job_id: str,
        *,
        interval: float = 2.0,
        min_level: LogLevel | str | None = None,
        after_time: int | None = None,
        timeout: float | None = 36_000.0,
        resume_from: LogCursor | str | None = None,
    ) -> LogStream:
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
            timeout: Seconds before `WaitTimeoutError` (carrying the last snapshot of
                the job); None follows without limit.
            resume_from: The `cursor` of an earlier `follow_logs` stream (or its
                string), to continue exactly after its last entry; not with
                `after_time`.

        Raises:
            WaitTimeoutError: the job is still running at the deadline.
            TransportError: the API was unreachable for the client's retry budget.

        Example:
            async for entry in jobs.follow_logs(job.id):
                print(entry.create_time, entry.kind, entry.item)
        """
        return _logs.follow_logs(
            lambda: self._fetch(job_id),
            self._logs_json(job_id),
            self._logs_url(job_id),
            job_id,
            interval=interval,
            min_level=min_level,
            after_time=after_time,
            timeout=timeout,
            outage_budget=self._outage_budget,
            resume_from=_logs.resume_cursor(resume_from, forward=True),
        )
