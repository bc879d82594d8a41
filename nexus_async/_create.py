"""Exactly-once creates: one call, one object, even when the answer was lost.

A create is sent only while it provably never reached the server (`Retry.UNSENT`).
When its outcome is ambiguous (no answer after the request may have been sent, or
a 500/502/504 that may follow the effect), the call looks for the object it made
instead of raising: newest-first list pages, an object of the same name and spec,
created within the attempt's window by the server's clock (this machine's clock
mapped onto the API's by what `CreateLedger` learned from `Date` headers and from
the `createDate` of objects this client made), and not already claimed by another
call of the same client. Found: it is returned. Provably absent (the pages reached
objects older than the window, and the server was done with the attempt: it
answered 500/502 or closed the connection): the create is sent again. Otherwise
(a timeout or 504 with nothing listed: the attempt may still be under way) the
original error is raised.

Cost: about one list page (`LIST_PAGE` objects) per ambiguous attempt; more only
when more than a page of objects was created during the attempt, at most
`MAX_LIST_PAGES`.

Limits: two identical creates racing from different processes (or clients) are
indistinguishable on this API, so one may return the object the other made. A
create still being processed by the server when the client gave up on it (a
timeout) is not listed yet: then the timeout is raised, the outcome unknown.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Protocol, TypeVar

import anyio

from . import errors
from ._http import HTTPCore, Retry
from .models import PaginationResponse
from .options import Pagination

__all__ = ["LIST_PAGE", "MAX_LIST_PAGES", "CreateLedger", "create_once"]

logger = logging.getLogger("nexus_async")

LIST_PAGE = 100
"""Objects per list page when looking for a create's object."""

MAX_LIST_PAGES = 10
"""List pages read at most per ambiguous attempt before giving up (raising)."""

_MAX_SENDS = 3  # a create provably absent is sent again at most this often in all
_DRIFT_MS = 250  # drift allowed between this machine's clock and the API's over one call
_CLAIM_SECONDS = 3_600.0  # claims older than this are forgotten (no call lasts that long)


class _Created(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def create_date(self) -> int: ...


T = TypeVar("T", bound=_Created)


class CreateLedger:
    """One client's claims, creates on the wire, and its estimate of the API's clock.

    A recovering call first waits until no identical create of this client still
    awaits its answer (so that it does not claim an object about to be answered to
    the call that made it), then looks up in turn with the other identical
    recovering calls, in the order their attempts failed. Each takes the oldest
    unclaimed candidate of its window: taking windows by their end and each the
    earliest point it can is how every call gets one object when one exists per call.

    The API's clock is `local + offset`; `offset` is kept as bounds narrowed by
    every observation: a created object's `create_date` (ms) against when its
    request was sent and answered (both bounds), and each list's `Date` (a lower
    bound only: whole seconds, written some time before the answer was read).
    Until a create of this client succeeded, windows have no upper end.
    """

    def __init__(self) -> None:
        self._claimed: OrderedDict[str, float] = OrderedDict()  # id -> time.monotonic()
        self._on_wire: dict[str, int] = {}  # request body -> identical POSTs awaiting answers
        self._changed: anyio.Event | None = None
        self._turns: dict[str, anyio.Lock] = {}  # request body -> lookups one at a time
        self._waiting: dict[str, int] = {}  # request body -> calls holding or awaiting its turn
        self.offset: tuple[float, float] | None = None  # API ms minus anyio ms: (low, high)

    def claim(self, resource_id: str) -> bool:
        """Claim an object for one call; False if another call already has it."""
        now = time.monotonic()
        while self._claimed and next(iter(self._claimed.values())) < now - _CLAIM_SECONDS:
            self._claimed.popitem(last=False)
        if resource_id in self._claimed:
            return False
        self._claimed[resource_id] = now
        return True

    def observe(self, low: float, high: float) -> None:
        """Narrow the clock offset's bounds; a contradiction (drift) starts them afresh."""
        if self.offset is not None:
            old_low, old_high = self.offset
            if max(low, old_low) <= min(high, old_high):
                low, high = max(low, old_low), min(high, old_high)
        self.offset = (low, high)

    @contextmanager
    def sending(self, key: str) -> Iterator[None]:
        """Count one POST of this body as on the wire while the block runs."""
        self._on_wire[key] = self._on_wire.get(key, 0) + 1
        try:
            yield
        finally:
            left = self._on_wire[key] - 1
            if left:
                self._on_wire[key] = left
            else:
                del self._on_wire[key]
            if self._changed is not None:
                self._changed.set()
                self._changed = None

    @asynccontextmanager
    async def turn(self, key: str, timeout: float) -> AsyncIterator[None]:
        """This body's lookup turn (first come first served), once its POSTs are answered.

        Waiting for the POSTs is bounded by `timeout`; the lookups after it run anyway.
        """
        lock = self._turns.setdefault(key, anyio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                with anyio.move_on_after(timeout):
                    while key in self._on_wire:
                        if self._changed is None:
                            self._changed = anyio.Event()
                        await self._changed.wait()
                yield
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key], self._turns[key]


def _ambiguous(exc: errors.APIError) -> bool:
    """Whether the failed create may exist on the server."""
    if isinstance(exc, errors.ResponseDecodeError) and exc.status is not None:
        return 200 <= exc.status < 300  # made, but its answer unreadable
    return exc.may_have_taken_effect


def _may_still_run(exc: errors.APIError) -> bool:
    """Whether the server may still be working on the attempt: someone gave up waiting.

    After a timeout (ours, or a gateway's 504) a create not listed yet may appear
    later, so its absence proves nothing. After a 500/502 or a closed connection,
    the server is done with it.
    """
    return isinstance(exc, errors.RequestTimeoutError) or exc.status == 504


class _Unknown(Exception):
    """The lookup could not tell whether the object exists."""


async def create_once(
    http: HTTPCore,
    ledger: CreateLedger,
    path: str,
    body: dict[str, Any],
    *,
    into: type[T],
    matches: Callable[[T], bool],
    recover: bool,
    redact: tuple[str, ...] = (),
) -> T:
    """POST `body` to `path` once in effect: see the module docstring.

    Args:
        http: The client's HTTP layer.
        ledger: The client's claims.
        path: The collection's path.
        body: The create request's body.
        into: The created object's model.
        matches: Whether a listed object has the name and spec of `body`.
        recover: False: raise on an ambiguous outcome, as a plain `Retry.UNSENT` create.
        redact: Secrets in `body`, kept out of error messages.
    """
    key = json.dumps(body, sort_keys=True)
    last: errors.APIError | None = None
    for _ in range(_MAX_SENDS):
        started = anyio.current_time()
        try:
            with ledger.sending(key):
                made = await http.request(
                    "POST", path, into=into, retry=Retry.UNSENT, body=body, redact=redact
                )
        except errors.APIError as exc:
            failed = anyio.current_time()
            if not recover or not _ambiguous(exc):
                raise
            try:
                async with ledger.turn(key, timeout=http.retry.total_time):
                    found = await _look_for(http, ledger, path, into, matches, (started, failed))
            except _Unknown as unknown:
                logger.warning("create %s: outcome unknown (%s); raising %s", path, unknown, exc)
                raise exc from None
            if found is not None:
                logger.info(
                    "create %s: found %s made by the failed attempt (%s)", path, found.id, exc
                )
                return found
            if _may_still_run(exc):
                logger.warning("create %s: not listed, but may still be under way: %s", path, exc)
                raise exc
            logger.info("create %s: provably not made (%s); sending it again", path, exc)
            last = exc
            continue
        answered = anyio.current_time()
        ledger.observe(made.create_date - answered * 1000, made.create_date - started * 1000)
        if not ledger.claim(made.id):
            logger.warning("create %s: %s was claimed by another call's recovery", path, made.id)
        return made
    assert last is not None
    raise last


async def _look_for(
    http: HTTPCore,
    ledger: CreateLedger,
    path: str,
    into: type[T],
    matches: Callable[[T], bool],
    attempt: tuple[float, float],
) -> T | None:
    """The oldest unclaimed matching object created during `attempt`, None if provably none.

    `attempt` is when it began and failed, by anyio's clock; the window is mapped
    onto the API's clock with the ledger's offset bounds, widened by drift. Of
    several candidates (identical creates of this client that failed too) the
    oldest is taken; see `CreateLedger`.

    Raises:
        _Unknown: the list failed, gave no server clock, or ran past `MAX_LIST_PAGES`.
    """
    pagination = Pagination(limit=LIST_PAGE)
    window: tuple[float, float] | None = None
    candidates: list[T] = []
    for _ in range(MAX_LIST_PAGES):
        try:
            page: PaginationResponse[T] = await http.request(
                "GET",
                path,
                into=PaginationResponse[into],  # type: ignore[valid-type]
                retry=Retry.IDEMPOTENT,
                params=pagination.to_params(),
            )
        except errors.APIError as exc:
            raise _Unknown(f"listing failed: {exc}") from exc
        if window is None:
            now_ms, now = http.server_time_ms(), anyio.current_time() * 1000
            if now_ms is not None:
                # `Date` was cut down to the second, and written some unknown time
                # before its answer was read: a lower bound only.
                ledger.observe(now_ms - now, math.inf)
            if ledger.offset is None:
                raise _Unknown("the API's clock is unknown (no Date header)")
            low, high = ledger.offset
            began, ended = attempt
            window = (began * 1000 + low - _DRIFT_MS, ended * 1000 + high + _DRIFT_MS)
        lower, upper = window
        for item in page.data:
            if item.create_date < lower:
                return _oldest(candidates, ledger)  # newest first: the rest is older still
            if item.create_date <= upper and matches(item):
                candidates.append(item)
        if page.next_page is None:
            return _oldest(candidates, ledger)
        pagination = Pagination(limit=LIST_PAGE, page=page.next_page)
    raise _Unknown(f"more than {MAX_LIST_PAGES} pages were created during the attempt")


def _oldest(candidates: list[T], ledger: CreateLedger) -> T | None:
    """Claim the oldest candidate no other call has (they are listed newest first)."""
    for item in reversed(candidates):
        if ledger.claim(item.id):
            return item
    return None


def same(sent: Any, got: Any) -> bool:
    """Whether `got` (an object's unstructured JSON) has every value `sent` set.

    The API may add fields and defaults to what it was sent; a value left out
    (None) in `sent` matches anything.
    """
    if sent is None:
        return True
    if isinstance(sent, dict):
        return isinstance(got, dict) and all(same(v, got.get(k)) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(got, list) and len(got) == len(sent) and all(map(same, sent, got))
    return bool(sent == got)
