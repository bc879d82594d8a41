"""`AsyncClient`: configuration, lifecycle, and the way into a project's resources."""

from __future__ import annotations

import enum
import os
from types import TracebackType

import anyio
import httpx
from anyio.abc import TaskGroup

from ._backoff import RetryPolicy
from ._datasets import Datasets
from ._http import HTTPCore
from ._jobs import Jobs
from ._validate import (
    check_http_url,
    check_id,
    check_int,
    check_secret_key,
    check_timeout,
    check_type,
)
from ._waiting import Poller
from ._webhooks import Webhooks
from .errors import ClientClosedError, ValidationError

__all__ = ["DEFAULT_BASE_URL", "AsyncClient", "Batch", "Project"]

DEFAULT_BASE_URL = "https://api.datature.io"


class _State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


class AsyncClient:
    """An asynchronous client of the Nexus API; one connection pool, shared by all projects.

    Use it as `async with AsyncClient(...) as client:` (preferred: inside it,
    `get_all_logs` prefetches pages in a task the client owns), or call
    `await client.aclose()` when done. It works on asyncio and trio.

    Args:
        secret_key: The project secret key; defaults to `$DATATURE_SECRET_KEY`.
        base_url: API root; defaults to `$DATATURE_API_BASE_URL`, then
            `https://api.datature.io`.
        timeout: Per-request timeout in seconds (or an `httpx.Timeout`): connect,
            read, write and pool wait each get this long, and the whole exchange
            (connect to last byte) the longest of them. A call, retries included,
            ends within `retry.total_time` plus one such exchange (plus any time
            queued behind `max_connections` or a 429 pause).
        retry: When and how long to retry; see `RetryPolicy`.
        max_connections: Size of the connection pool, and the most requests in flight
            at once: more queue inside the client (first come, first served)
            rather than failing with pool timeouts when thousands of coroutines
            call at the same time.
        http_client: An `httpx.AsyncClient` to send through (for custom transports,
            proxies, or tests). It is used as is and never closed by us.

    Raises:
        ValidationError: no secret key was given or found in the environment, or an
            argument is invalid (the message names it): a key that is not printable
            ASCII, a `base_url` that is not http(s) with a host, or that has a user
            name, password, query or fragment.

    Example:
        async with AsyncClient("sk_...") as client:
            jobs = client.get_project("proj_...").batch.jobs
            job = await jobs.wait_until_done("batchjob_...")
    """

    def __init__(
        self,
        secret_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 64,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        key = secret_key if secret_key is not None else os.environ.get("DATATURE_SECRET_KEY")
        if not key:
            raise ValidationError("no secret key: pass `secret_key` or set DATATURE_SECRET_KEY")
        check_secret_key(key)
        url = base_url or os.environ.get("DATATURE_API_BASE_URL") or DEFAULT_BASE_URL
        check_http_url(url, "base_url", bare=True)
        self._http = HTTPCore(
            secret_key=key,
            base_url=url,
            timeout=check_timeout(timeout),
            retry=check_type(retry, RetryPolicy, "retry", optional=True) or RetryPolicy(),
            http_client=check_type(http_client, httpx.AsyncClient, "http_client", optional=True),
            max_connections=check_int(max_connections, "max_connections", minimum=1),
            max_in_flight=max_connections,
        )
        self._state = _State.UNOPENED
        self._task_group: TaskGroup | None = None
        self._pollers: dict[str, Poller] = {}

    @property
    def base_url(self) -> str:
        """The API root requests go to."""
        return self._http.base_url

    def __repr__(self) -> str:
        return f"<AsyncClient base_url={self.base_url!r} state={self._state.name.lower()}>"

    def get_project(self, project_id: str) -> Project:
        """The project with this ID; a bare ID gets the `proj_` prefix."""
        self._check_open()
        if isinstance(project_id, str) and not project_id.startswith("proj_"):
            project_id = "proj_" + project_id
        return Project(self, check_id(project_id, "proj_", "project_id"))

    async def __aenter__(self) -> AsyncClient:
        if self._state is not _State.UNOPENED:
            raise ClientClosedError(
                "an AsyncClient can be entered once; it is "
                + ("already open" if self._state is _State.OPENED else "closed")
            )
        if self._http.owns_client:  # one passed in is the caller's to open and close
            await self._http.client.__aenter__()
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._state = _State.OPENED
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task_group, self._task_group = self._task_group, None
        try:
            if task_group is not None:
                # Background work (prefetching, shared polling) only ever serves a
                # caller's own await; nothing is lost by cancelling it. The body's
                # exception is not handed to the task group: it would come out
                # wrapped in an ExceptionGroup, and callers expect `NotFoundError`,
                # not a group. Our tasks never raise, so the group has nothing to add.
                task_group.cancel_scope.cancel()
                await task_group.__aexit__(None, None, None)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (unless it was passed in). Safe to call twice."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()
        await self._http.aclose()

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise ClientClosedError("this AsyncClient is closed; create a new one")

    def _current_task_group(self) -> TaskGroup | None:
        self._check_open()
        return self._task_group

    def _poller(self, jobs: Jobs) -> Poller:
        """The one poller of a project, shared by all its many-job waits."""
        poller = self._pollers.get(jobs._project_id)
        if poller is None:
            poller = self._pollers[jobs._project_id] = Poller(jobs)
        return poller


class Project:
    """One project's resources: `project.batch.jobs`."""

    def __init__(self, client: AsyncClient, project_id: str) -> None:
        self.project_id = project_id
        self.batch = Batch(client, project_id)

    def __repr__(self) -> str:
        return f"<Project {self.project_id!r}>"


class Batch:
    """The batch API of one project: `jobs`, `datasets` and `webhooks`."""

    def __init__(self, client: AsyncClient, project_id: str) -> None:
        self.jobs = Jobs(client, project_id)
        self.datasets = Datasets(client._http, project_id)
        self.webhooks = Webhooks(client._http, project_id)

    def __repr__(self) -> str:
        return f"<Batch jobs={self.jobs!r}>"
