"""`AsyncClient`: configuration, lifecycle, and the way into a project's resources."""

from __future__ import annotations

import functools
import logging
import os
import sys
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from ._backoff import RetryPolicy
from ._http import HTTPCore
from ._jobs import Jobs
from ._runtime import Diagnostics, Runtime
from ._validate import (
    check_http_url,
    check_id,
    check_int,
    check_secret_key,
    check_timeout,
    check_type,
)
from ._waiting import Wakeups
from .errors import ValidationError

if TYPE_CHECKING:
    from ._datasets import Datasets
    from ._webhooks import Webhooks

__all__ = ["DEFAULT_BASE_URL", "AsyncClient", "Batch", "Project"]

DEFAULT_BASE_URL = "https://api.datature.io"
_LOG_LEVELS = {"info": logging.INFO, "debug": logging.DEBUG}
_log_switch_read = False


def _apply_log_switch() -> None:
    """`NEXUS_LOG=info|debug`: a stderr handler on the `nexus_async` logger at that level.

    Read once, when the first client is made, so that setting the variable is all a
    script needs (as `OPENAI_LOG` is for openai) and a process without it pays one
    dictionary look-up. Other values are ignored.
    """
    global _log_switch_read
    if _log_switch_read:
        return
    _log_switch_read = True
    level = _LOG_LEVELS.get(os.environ.get("NEXUS_LOG", "").strip().lower())
    if level is None:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("nexus_async")
    logger.addHandler(handler)
    logger.setLevel(level)


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

    _parent: AsyncClient | None = None  # set on the views `with_options` makes

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
        _apply_log_switch()
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
        self._runtime = Runtime()

    @property
    def base_url(self) -> str:
        """The API root requests go to."""
        return self._http.base_url

    def __repr__(self) -> str:
        return f"<AsyncClient base_url={self.base_url!r} state={self._runtime.state}>"

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncClient:
        """A view of this client with another timeout or retry policy, for some calls.

        The view sends through this client's connection pool, under its connection
        limit, 429 pauses and lifecycle (closing this client ends the view's calls
        too); it is one small object, so making one per call costs nothing lasting.
        Options not given keep this client's.

        Args:
            timeout: As for `AsyncClient`.
            retry: As for `AsyncClient`.

        Raises:
            ValidationError: an invalid option, naming it.

        Example:
            job = await client.with_options(timeout=5).get_project(pid).batch.jobs.get(jid)
        """
        http = self._http.with_options(
            timeout=None if timeout is None else check_timeout(timeout),
            retry=check_type(retry, RetryPolicy, "retry", optional=True),
        )
        view = object.__new__(AsyncClient)
        view._http = http
        view._runtime = self._runtime
        view._parent = self if self._parent is None else self._parent
        return view

    def get_project(self, project_id: str) -> Project:
        """The project with this ID; a bare ID gets the `proj_` prefix."""
        self._runtime.check_open()
        if isinstance(project_id, str) and not project_id.startswith("proj_"):
            project_id = "proj_" + project_id
        return Project(self._http, self._runtime, check_id(project_id, "proj_", "project_id"))

    @property
    def wakeups(self) -> Wakeups:
        """What connected receivers notify of deliveries; see `DeliveryReceiver.connect`."""
        return self._runtime.wakeups

    def diagnostics(self) -> Diagnostics:
        """A snapshot of what the client has going on: background tasks, pollers, requests.

        For tests and debugging: e.g. that no poller outlives its waiters.
        """
        return self._runtime.diagnostics(self._http.stats())

    async def __aenter__(self) -> AsyncClient:
        self._check_not_view("entered")
        self._http.bind_loop()
        self._runtime.check_unopened()
        if self._http.owns_client:  # one passed in is the caller's to open and close
            await self._http.client.__aenter__()
        await self._runtime.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            # Background work (prefetching, shared polling) only ever serves a
            # caller's own await; nothing is lost by cancelling it.
            await self._runtime.exit()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the client: stop its background work and its connection pool.

        The pool is closed unless it was passed in. Safe to call twice, and inside
        `async with`, whose block then goes on: later calls raise `ClientClosedError`,
        and iterators still running raise it too.
        """
        self._check_not_view("closed")
        self._http.check_loop()
        if self._runtime.closed and self._http.closed:
            return
        self._runtime.close()
        await self._http.aclose()

    def _check_not_view(self, what: str) -> None:
        if self._parent is not None:
            raise ValidationError(
                f"a with_options() view is not {what} on its own: it shares its parent "
                "client's lifecycle; open and close that client instead"
            )


class Project:
    """One project's resources: `project.batch.jobs`."""

    def __init__(self, http: HTTPCore, runtime: Runtime, project_id: str) -> None:
        self.project_id = project_id
        self.batch = Batch(http, runtime, project_id)

    def __repr__(self) -> str:
        return f"<Project {self.project_id!r}>"


class Batch:
    """The batch API of one project: `jobs`, `datasets` and `webhooks`.

    `datasets` and `webhooks` are made on first use, and their modules imported
    then: most programs only run jobs, and need not pay for loading the rest.
    """

    def __init__(self, http: HTTPCore, runtime: Runtime, project_id: str) -> None:
        self._http, self._runtime, self._project_id = http, runtime, project_id
        self.jobs = Jobs(http, project_id, runtime)

    @functools.cached_property
    def datasets(self) -> Datasets:
        """The project's datasets."""
        from ._datasets import Datasets

        return Datasets(self._http, self._project_id, self._runtime)

    @functools.cached_property
    def webhooks(self) -> Webhooks:
        """The project's webhooks."""
        from ._webhooks import Webhooks

        return Webhooks(self._http, self._project_id, self._runtime)

    def __repr__(self) -> str:
        return f"<Batch jobs={self.jobs!r}>"
