"""NexusCore: state + runner + admin controls, independent of how the app is served."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, TypeVar

import anyio

from .._crc32c import crc32c_b64
from ..signing import generate_secret
from ._clock import Clock, ManualClock, now_ms, use_clock
from ._errors import Invalid, NotFound
from ._faults import Fault, FaultBook, RequestLog, RequestRecord
from ._logstore import LEVELS
from ._persist import Saver, end_interrupted, open_state
from ._predictor import ForegroundPredictor
from ._runner import Runner
from ._settings import ServerSettings, resolve_settings
from ._state import (
    DEFAULT_MAX_BACKOFF_MS,
    DEFAULT_MAX_RETRIES,
    Dataset,
    Project,
    Store,
    Webhook,
    check_endpoint,
    check_item_url,
)

__all__ = ["NexusCore", "check_secret"]

P = ParamSpec("P")
SAVE_INTERVAL = 0.5  # seconds between writes of the state file
R = TypeVar("R")


def _on_clock(method: Callable[P, R]) -> Callable[P, R]:
    """Run an admin method on its server's clock (it is called from outside the server's
    tasks, e.g. by a test, so the context does not hold that clock already)."""

    @functools.wraps(method)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        core = args[0]
        assert isinstance(core, NexusCore)
        with use_clock(core.clock):
            return method(*args, **kwargs)

    return run


def check_secret(secret: str) -> str | None:
    """Why ``secret`` cannot be a webhook secret (base64 of 24..64 bytes), or None."""
    try:
        raw = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return "must be base64"
    if not 24 <= len(raw) <= 64:
        return f"must decode to 24..64 bytes (got {len(raw)}); use 32 random bytes"
    return None


class NexusCore:
    """Everything a local Nexus is, except its socket.

    ``LocalNexus`` serves one over HTTP; ``create_app()`` wraps one in an ASGI app whose
    lifespan runs it. The admin methods below are the Python side of the
    ``/_nexus/...`` HTTP controls.

    Args:
        settings: the server's options (default: all defaults).
        **overrides: fields of ``ServerSettings`` to change, e.g. ``latency=0.05``.

    Raises:
        TypeError: an override that is not a ``ServerSettings`` field.
        ValueError: a bad option value, naming the option.
    """

    def __init__(self, settings: ServerSettings | None = None, /, **overrides: Any) -> None:
        self.settings = resolve_settings(settings, overrides)
        self.store = Store()
        self._primary = self.store.add_project(self.settings.project_id, self.settings.secret_key)
        self.latency = self.settings.latency
        """Seconds added before every API answer; starts at ``settings.latency`` and may be
        changed while the server runs (a testing control, like faults)."""
        self.faults = FaultBook()
        self.request_log = RequestLog()
        predictor = self.settings.predictor
        self.runner = Runner(
            self.settings, predictor if predictor is not None else ForegroundPredictor()
        )
        self._saver: Saver | None = None

    def __repr__(self) -> str:  # never show the key
        return f"<{type(self).__name__} project_id={self.project_id!r}>"

    # ------------------------------------------------------------------------ identity

    @property
    def project_id(self) -> str:
        """The project the server starts with."""
        return self._primary.id

    @property
    def secret_key(self) -> str:
        """The key of ``project_id``."""
        return self._primary.secret_key

    @property
    def deployment_id(self) -> str:
        """The existing deployment of ``project_id`` (``deploy_...``)."""
        return self._primary.deployment_id

    def _project(self, project_id: str | None) -> Project:
        if project_id is None:
            return self._primary
        try:
            return self.store.projects[project_id]
        except KeyError:
            raise NotFound(f"unknown project {project_id!r}") from None

    def deployment_of(self, project_id: str) -> str:
        """The existing deployment a project starts with."""
        return self._project(project_id).deployment_id

    @_on_clock
    def add_project(
        self, project_id: str | None = None, secret_key: str | None = None
    ) -> tuple[str, str]:
        """Add an isolated project; return ``(project_id, secret_key)``.

        Raises:
            Invalid: the id is malformed, or the key empty or unprintable.
            Conflict: the id is taken.
        """
        project = self.store.add_project(project_id, secret_key)
        return project.id, project.secret_key

    # ------------------------------------------------------------------------ running

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the job runner for the duration of the block, on the server's clock."""
        with use_clock(self.clock):
            await self.restore_state()
            try:
                async with anyio.create_task_group() as tg:
                    await tg.start(self.runner.run)
                    if self._saver is not None:
                        tg.start_soon(self._save_every, SAVE_INTERVAL)
                    try:
                        yield
                    finally:
                        tg.cancel_scope.cancel()
            finally:
                if self._saver is not None:  # the last state, once nothing changes it
                    with anyio.CancelScope(shield=True):
                        await self._save()
                    self._saver.close()
                    self._saver = None

    # ------------------------------------------------------------------------ state file

    async def restore_state(self) -> None:
        """Open ``settings.state_file`` and load it (once; nothing without one).

        Raises:
            StateFileError: the file is not a state file of this server.
        """
        path = self.settings.state_file
        if path is None or self._saver is not None:
            return
        connection = await anyio.to_thread.run_sync(open_state, path)
        saver = Saver(connection)
        try:
            primary = await anyio.to_thread.run_sync(saver.load, self.store)
        except BaseException:
            saver.close()
            raise
        if primary is not None:  # the file's state replaced the fresh one
            self._primary = self.store.projects[primary]
            with use_clock(self.clock):
                end_interrupted(self.store)
        self._saver = saver

    async def _save(self) -> None:
        assert self._saver is not None
        rows = self._saver.collect(self.store, self._primary.id)
        await anyio.to_thread.run_sync(self._saver.write, rows)

    async def _save_every(self, seconds: float) -> None:
        while True:
            await anyio.sleep(seconds)  # real time, whatever the server's clock
            await self._save()

    # ------------------------------------------------------------------------ time

    @property
    def clock(self) -> Clock:
        """The server's clock: the real one, or a ``ManualClock`` (``clock="manual"``)."""
        return self.runner.clock

    def now_ms(self) -> int:
        """The server's time, in milliseconds since the Unix epoch."""
        return self.clock.now_ms()

    async def advance(self, seconds: float) -> None:
        """Move the manual clock ``seconds`` ahead; see ``advance_to``."""
        await self.advance_to(self.now_ms() + math.ceil(seconds * 1000.0))

    async def advance_to(self, wall_ms: int) -> None:
        """Move the manual clock to ``wall_ms``, running everything due on the way.

        Timers fire in order, each with the clock at its own time: jobs whose
        ``startAtTime`` came start, those whose ``stopAtTime`` passed end ``Failed``,
        webhook retries are made. After each step it waits (up to 30 s of real time)
        until the work that step woke is done or waiting on the clock again, so a
        retry scheduled meanwhile is made by the same call.

        Raises:
            RuntimeError: the server runs on the real clock.
            ValueError: ``wall_ms`` is before the clock's time.
        """
        clock = self.clock
        if not isinstance(clock, ManualClock):
            raise RuntimeError("advance needs a manual clock: LocalNexus(clock='manual')")
        with use_clock(clock):
            await clock.advance_to(wall_ms)

    # ------------------------------------------------------------------------ faults

    def inject_fault(
        self,
        method: str | None = "GET",
        path: str = ".*",
        status: int | None = 503,
        times: int | None = 1,
        retry_after: float | None = None,
        latency: float | None = None,
        drop: bool = False,
        after_handling: bool = False,
    ) -> Fault:
        """Make the next ``times`` matching requests misbehave.

        Args:
            method: HTTP method to match; None or ``"*"`` matches any.
            path: regular expression searched in the request path (not the query).
            status: answer with this status and ``{"message": "injected fault", "code"}``;
                None to answer normally (a pure slow-down with ``latency``).
            times: how many requests to affect; None until ``clear_faults``.
            retry_after: add a ``Retry-After`` header (seconds; fractions are written as
                decimals, a testing convenience).
            latency: sleep this long (seconds) before answering.
            drop: close the TCP connection without any response.
            after_handling: run the real handler first (the request takes effect) and then
                answer with the fault; used to show that a client does not retry a POST
                that reached the server.

        Returns:
            The registered fault. Faults match in the order they were added.

        Raises:
            Invalid: a malformed pattern or status, or a fault that does nothing.
        """
        try:
            pattern = re.compile(path)
        except re.error as exc:
            raise Invalid(f"path is not a valid regular expression: {exc}") from exc
        fault = Fault(
            method=method,
            path=pattern,
            status=None if drop else status,
            times=times,
            retry_after=retry_after,
            latency=latency,
            drop=drop,
            after_handling=after_handling,
        )
        return self.faults.add(fault)

    def clear_faults(self) -> None:
        """Forget every pending fault."""
        self.faults.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        """Every API request so far, in arrival order (a copy)."""
        return self.request_log.snapshot()

    def clear_requests(self) -> None:
        """Empty the request log."""
        self.request_log.clear()

    # ------------------------------------------------------------------------ deliveries

    def duplicate_deliveries(self, copies: int = 1) -> None:
        """Send every accepted job delivery ``copies`` more times (same ``deliveryId``),
        as a retry after a lost answer would: a receiver must drop them."""
        if copies < 0:
            raise Invalid(f"copies must be >= 0 (got {copies})")
        self.runner.scenarios.copies = copies

    def delay_deliveries(self, seconds: float) -> None:
        """Hold every job delivery ``seconds`` (of the server's clock) before sending it."""
        if not seconds >= 0:
            raise Invalid(f"seconds must be >= 0 (got {seconds})")
        self.runner.scenarios.delay = seconds

    def reorder_deliveries(self, window: float = 1.0, *, seed: int = 0) -> None:
        """Hold each job delivery a random time within ``window`` seconds (reproducible
        by ``seed``), so results arrive in another order than their items ended."""
        if not window >= 0:
            raise Invalid(f"window must be >= 0 (got {window})")
        self.runner.scenarios.reorder(window, seed)

    def drop_deliveries(self, every: int = 1) -> None:
        """Lose every ``every``-th job delivery: counted ``Delivered``, never sent (a
        receiver that is told nothing; 0 turns it off)."""
        if every < 0:
            raise Invalid(f"every must be >= 0 (got {every})")
        self.runner.scenarios.drop_every = every

    def normal_deliveries(self) -> None:
        """Turn every delivery scenario off."""
        self.runner.scenarios.reset()

    # ------------------------------------------------------------------------ seeding

    @_on_clock
    def seed_dataset(
        self, urls: Sequence[str], name: str = "seeded", *, project_id: str | None = None
    ) -> str:
        """Add an already ``Uploaded`` dataset of these item URLs; return its id.

        Raises:
            Invalid: a URL the server cannot fetch.
            NotFound: an unknown ``project_id``.
        """
        project = self._project(project_id)
        for index, url in enumerate(urls):
            problem = check_item_url(url)
            if problem is not None:
                raise Invalid(f"urls[{index}]: {problem}")
        content = "".join(
            json.dumps({"kind": "Image", "url": url}, separators=(",", ":")) + "\n" for url in urls
        ).encode()
        dataset = Dataset(
            project_id=project.id,
            name=name,
            size_bytes=len(content),
            crc32c=crc32c_b64(content),
            items=list(urls),
        )
        dataset.set_status("Uploaded", "Uploaded")
        self.store.add_dataset(project, dataset)
        return dataset.id

    @_on_clock
    def seed_webhook(
        self,
        endpoint: str,
        secret: str | None = None,
        *,
        name: str = "seeded",
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_backoff_ms: int = DEFAULT_MAX_BACKOFF_MS,
        project_id: str | None = None,
    ) -> str:
        """Add a webhook (a fresh secret when none is given); return its id.

        Raises:
            Invalid: a bad endpoint, secret or retry policy.
            NotFound: an unknown ``project_id``.
        """
        project = self._project(project_id)
        if (problem := check_endpoint(endpoint)) is not None:
            raise Invalid(f"endpoint {problem}")
        if secret is not None and (problem := check_secret(secret)) is not None:
            raise Invalid(f"secret {problem}")
        if max_retries < 0 or max_backoff_ms < 0:
            raise Invalid("max_retries and max_backoff_ms must be >= 0")
        webhook = Webhook(
            project_id=project.id,
            name=name,
            endpoint=endpoint,
            secret=secret if secret is not None else generate_secret(),
            max_retries=max_retries,
            max_backoff_ms=max_backoff_ms,
        )
        project.webhooks.add(webhook)
        return webhook.id

    @_on_clock
    def seed_logs(
        self,
        job_id: str,
        count: int,
        *,
        per_ms: int = 1,
        start_time: int | None = None,
        level: str = "Info",
    ) -> None:
        """Add ``count`` synthetic entries to a job's log, ``per_ms`` per millisecond.

        Entries are ``ItemPredicted`` / status ``Predicted``; their times start at
        ``start_time`` (default: so that the last one is now) and advance one millisecond
        every ``per_ms`` entries. A million entries take well under a second.

        Raises:
            NotFound: an unknown job.
            Invalid: a bad count, ``per_ms`` or level.
        """
        job = self.store.jobs_by_id.get(job_id)
        if job is None:
            raise NotFound(f"unknown job {job_id!r}")
        if count < 0 or per_ms < 1:
            raise Invalid("count must be >= 0 and per_ms >= 1")
        if level not in LEVELS:
            raise Invalid(f"level must be one of {', '.join(LEVELS)} (got {level!r})")
        if start_time is None:
            start_time = now_ms() - (max(count, 1) - 1) // per_ms
        row = ("ItemPredicted", "", "Predicted", 1.0, "")
        job.logs.seed(count, per_ms=per_ms, start_time=start_time, level=level, row=row)

    def log_ties(self, per_ms: int | None) -> None:
        """From now on, runner-written log entries share createTime in groups of ``per_ms``.

        ``None`` (the default state) stamps entries with the real clock (ties happen only
        when entries are written within one millisecond); ``1`` gives every entry its own
        millisecond. Forced ties move stamps ahead of the real clock when entries come
        faster than ``per_ms`` per millisecond.
        """
        if per_ms is not None and per_ms < 1:
            raise Invalid(f"per_ms must be >= 1 or None (got {per_ms})")
        self.store.log_clock.per_ms = per_ms
