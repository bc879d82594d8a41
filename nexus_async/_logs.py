"""Job logs: paging back through them (`get_all_logs`) and following them (`follow_logs`).

The API pages logs by time alone: `beforeTime` (inclusive) and `afterTime`
(exclusive), newest first. Entries sharing a millisecond straddle page
boundaries, so a walk must re-read the boundary millisecond and skip the entries
it already yielded there. `LogCursor` is that position, the one place where ties
are broken: a time bound plus the IDs already yielded at it. It walks newest
first (paging back) or oldest first (following). It is an immutable value that
serializes to a short string, so a walk can be resumed from any cursor it has
produced, in another client or process.

`LogStream` is what the log methods return: an async iterator that knows the
cursor after the last entry it yielded, and attaches it (as `exc.cursor`) to any
error that ends the stream.

Inside `async with AsyncClient()`, `get_all_logs` fetches in a background task
of the client: with one request at a time (`_pipelined`), the next page's
request is written before the current page is handed to the consumer, which
decodes it meanwhile; with more (`_ParallelWalk`), disjoint time slices are paged
concurrently and merged back in order. Outside, `log_pages` runs inline.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import json
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any

import anyio
import attrs

from . import _otel, errors
from ._convert import decode_log_entry, structure
from ._http import TRACE
from ._poll import TRANSIENT, Outage, check_timeout, poll_backoff
from ._runtime import Runtime
from ._validate import check_id
from ._waiting import wait_timeout_error
from .models import Job, JobLogEntry, JobLogs, LogLevel
from .options import MAX_PAGE, LogsFilter

__all__ = [
    "LogCursor",
    "LogStream",
    "Page",
    "all_logs",
    "follow_logs",
    "log_pages",
    "resume_cursor",
]


# One answer of the logs endpoint, as parsed JSON: entries are decoded by whoever
# consumes them, so that the next request is already in flight meanwhile.
FetchLogs = Callable[[LogsFilter], Awaitable[Any]]

# Longest wait, when an iterator is closed, for its background task to end.
_STOP_SECONDS = 5.0

# Requests `get_all_logs` keeps in flight by default (inside `async with`), and at
# most. The default is bench_logs' choice (`--sweep`, concurrency 1-16, 3 rounds):
# at 50 ms per request 8 is 4.3x the reference on a uniform log, as 16 is (2: 1.9x,
# 4: 3.4x), and 3.4x on the bursty one (16: 3.8x, for 10 MB more peak RSS); at 0 ms,
# where the client's CPU is the limit, 1 to 16 are all within 10% of each other.
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 64

# How a parallel walk sizes the slices it splits off (see `_ParallelWalk`): each
# holds about this many pages at the density seen so far...
_SLICE_PAGES = 2
# ...and none is split off that would hold less than half a page.
_MIN_SLICE_PAGES = 0.5
# The weight of each earlier answer in that density, once per answer after it.
_DENSITY_DECAY = 0.9
# A slice answering this many full pages in a row, each this many times denser than
# the density seen so far, shows that the log has changed: the density restarts there.
_DENSE_RUN = 2
_DENSER = 4
# A walk with `concurrency` > 1 pages sequentially (pipelined) until the consumer has
# three times in a row waited on the network: this long with the CPU idle (seconds of
# wall time not spent on CPU), and this share of the time from the previous page to
# this one; only then does it page in parallel (`_Adaptive`). The share keeps a
# consumer near the server sequential through a few slow answers (a wait of 1 ms
# beside 3 ms of decoding, seen at 0 ms added latency), where slices would only
# cost CPU; it gives up the gain parallel slices would bring on a link of 1-3 ms.
_IDLE_WAIT = 0.0005
_IDLE_SHARE = 0.4
_IDLE_WAITS = 3
# A wait this long off the CPU, the first included, is a far server: parallel at once.
_FAR_WAIT = 0.010

# A serialized cursor: this prefix (its format version), then base64url of compact
# JSON `[direction, time, seen ids]`.
_CURSOR_PREFIX = "nxlc1."


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
        keys = Keys([e.create_time for e in entries], [e.id for e in entries])
        keep, cursor = self.advance_keys(keys)
        return [entries[i] for i in keep], cursor

    def advance_keys(self, keys: Keys) -> tuple[Sequence[int], LogCursor]:
        """`advance` on keys: the indices not yet yielded, and the cursor."""
        time, seen, forward = self.time, self.seen, self.forward
        times, ids = keys.times, keys.ids
        keep: Sequence[int] = range(len(times))
        # Unless all are past the boundary millisecond (the usual page; checked at C
        # speed), look at each.
        if time is not None and times and not (min(times) > time if forward else max(times) < time):
            keep = [
                i
                for i, t in enumerate(times)
                if (ids[i] not in seen if t == time else (t > time) == forward)
            ]
        if not keep:
            return keep, self
        last = times[keep[-1]]
        ties = times.count(last)
        if len(keep) == len(times) and times[-ties:].count(last) == ties:  # ties at the end
            at_last = frozenset(ids[-ties:])
        else:
            at_last = frozenset(ids[i] for i in keep if times[i] == last)
        return keep, attrs.evolve(self, time=last, seen=seen | at_last if last == time else at_last)

    def __str__(self) -> str:
        """The cursor as a short versioned string; `LogCursor.parse` reads it back."""
        payload = ["f" if self.forward else "b", self.time, sorted(self.seen)]
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return _CURSOR_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def parse(cls, text: str) -> LogCursor:
        """Read back a cursor written by `str(cursor)`.

        Raises:
            ValidationError: `text` is not a cursor of this format version.
        """
        if not isinstance(text, str) or not text.startswith(_CURSOR_PREFIX):
            raise errors.ValidationError(f"not a log cursor (got {text!r:.80})")
        body = text[len(_CURSOR_PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            payload: Any = json.loads(raw)
        except (binascii.Error, ValueError):
            raise errors.ValidationError(f"a malformed log cursor (got {text!r:.80})") from None
        match payload:
            case [("f" | "b") as way, (None | int()) as time, list(seen)] if (
                not isinstance(time, bool)
                and (time is None or time >= 0)
                and all(isinstance(i, str) for i in seen)
                and (time is not None or not seen)
            ):
                return cls(time=time, seen=frozenset(seen), forward=way == "f")
        raise errors.ValidationError(f"a malformed log cursor (got {text!r:.80})")


@attrs.frozen
class Keys:
    """The `(create_time, id)` keys of a page's entries, as two parallel lists.

    Two lists rather than a tuple per entry: 1,000 tuples alive per page were most
    of what the garbage collector had to look at during a log stream.
    """

    times: list[int]
    ids: list[str]


def _fresh(
    entries: list[Any], keys: Keys, keep: Sequence[int], payload: Any, url: str
) -> Page | None:
    """The page of the entries at `keep` (None: no entries)."""
    if not keep:
        return None
    if len(keep) == len(entries):
        return Page(entries, keys, payload, url)
    times, ids = keys.times, keys.ids
    fresh = Keys([times[i] for i in keep], [ids[i] for i in keep])
    return Page([entries[i] for i in keep], fresh, payload, url)


def _tie_error(page_size: int, job_id: str, oldest: int) -> errors.LogPagingError:
    """The error for a full page that is all one millisecond already partly yielded."""
    return errors.LogPagingError(
        f"{page_size} or more log entries of job {job_id} share "
        f"the millisecond {oldest}; paging by time cannot get past them "
        "without losing entries (narrow the query with min_level or before_time)",
        job_id=job_id,
        create_time=oldest,
    )


@attrs.frozen
class Page:
    """The fresh entries of one answer, still JSON, their keys, and the answer they came in."""

    raw: list[Any]
    keys: Keys  # of each of `raw`
    payload: Any
    url: str

    def decode(self) -> list[JobLogEntry]:
        """The entries as models.

        Raises:
            ResponseDecodeError: the answer does not fit `JobLogs` (the message
                names the bad paths within the whole answer).
        """
        try:
            return structure(self.raw, list[JobLogEntry])
        except errors.StructureError:
            raise _decode_error(self.payload, self.url) from None

    def entry(self, index: int) -> JobLogEntry:
        """Entry `index` as a model, whatever shape it has: see `decode`."""
        try:
            return structure(self.raw[index], JobLogEntry)
        except errors.StructureError:
            raise _decode_error(self.payload, self.url) from None


def _decode_error(payload: Any, url: str) -> errors.ResponseDecodeError:
    """The error for an answer that does not fit `JobLogs`, as the HTTP layer words it."""
    try:
        structure(payload, JobLogs)
    except errors.StructureError as exc:
        error = errors.ResponseDecodeError(str(exc), method="GET", url=url, status=200)
        error.__cause__ = exc
        return error
    return errors.ResponseDecodeError(  # a shape the fast path does not take
        "unexpected response shape: $.entries", method="GET", url=url, status=200
    )


def _keys(payload: Any, url: str) -> tuple[list[Any], Keys]:
    """An answer's entries (JSON) and their keys, checked for type.

    Raises:
        ResponseDecodeError: the answer is not a page of log entries.
    """
    try:
        entries = payload["entries"]
        times = [e["createTime"] for e in entries]
        ids = [e["id"] for e in entries]
    except (TypeError, KeyError, IndexError):
        raise _decode_error(payload, url) from None
    # `set(map(type, ...))`: the types at C speed; a bool is not an int here.
    if type(entries) is not list or not (
        set(map(type, times)) <= {int} and set(map(type, ids)) <= {str}
    ):
        raise _decode_error(payload, url)
    _otel.log_page()
    return entries, Keys(times, ids)


def resume_cursor(value: LogCursor | str | None, *, forward: bool) -> LogCursor | None:
    """`resume_from` as a cursor of the walk's direction (a string is parsed).

    Raises:
        ValidationError: not a cursor, or one of the other direction.
    """
    if value is None:
        return None
    cursor = LogCursor.parse(value) if isinstance(value, str) else value
    if not isinstance(cursor, LogCursor):
        raise errors.ValidationError(
            f"`resume_from` must be a LogCursor or its string (got {value!r:.80})"
        )
    if cursor.forward != forward:
        raise errors.ValidationError(
            "`resume_from` is a cursor of "
            + ("`follow_logs`" if cursor.forward else "`get_all_logs`")
            + "; resume it with the method that produced it"
        )
    return cursor


class LogStream:
    """The entries of a log walk, one by one, with the cursor after the last one yielded.

    Use it as `async for entry in stream`, and close it (`aclose()`, or
    `contextlib.aclosing`) when leaving early. An error that ends the stream
    carries `cursor` (`exc.cursor`): a new stream resumed from it, in any client,
    continues exactly after the last entry this one yielded.

    Entries are decoded one at a time, as they are yielded, not a page at a time:
    a model the caller drops is freed at once, so a stream of any length leaves
    the garbage collector next to nothing to do (decoding a whole page first kept
    1,000 models alive across collections, which cost about 15% of the stream's
    CPU). An entry that does not fit `JobLogEntry` ends the stream with
    `ResponseDecodeError` after the entries of its page before it.
    """

    def __init__(
        self,
        pages: AsyncGenerator[Page | list[JobLogEntry], None],
        start: LogCursor,
        span: _otel.LogSpan | None = None,
    ) -> None:
        self._pages = pages
        self._base = start  # the cursor before the current page
        self._keys = Keys([], [])  # of the current page
        self._index = 0  # entries of the current page yielded
        self._span = span  # with OpenTelemetry: counts entries, pages and resumes
        # `async for` drives this generator itself (`__aiter__`), which costs about
        # half as much per entry as a coroutine per `__anext__` call.
        self._entries = self._walk()

    @property
    def cursor(self) -> LogCursor:
        """The position after the last entry yielded (the start, before the first)."""
        if self._index == 0:
            return self._base
        times, index = self._keys.times, self._index - 1
        last = times[index]
        start = index
        while start > 0 and times[start - 1] == last:
            start -= 1
        ids = frozenset(self._keys.ids[start : index + 1])
        if start == 0 and self._base.time == last:
            ids |= self._base.seen
        return attrs.evolve(self._base, time=last, seen=ids)

    def __aiter__(self) -> AsyncGenerator[JobLogEntry, None]:
        return self._entries

    def __anext__(self) -> Awaitable[JobLogEntry]:
        return self._entries.__anext__()

    async def aclose(self) -> None:
        """Stop the walk; any request it has in flight is cancelled before this returns."""
        self._end(None)  # the caller stopped reading: not a failure
        try:
            await self._entries.aclose()
        finally:
            await self._pages.aclose()

    async def _walk(self) -> AsyncGenerator[JobLogEntry, None]:
        while True:
            try:
                with _otel.fetching_logs(self._span):
                    page = await self._pages.__anext__()
            except StopAsyncIteration:
                self._end(None)
                return
            except BaseException as exc:
                self._fail(exc)
                raise
            self._base = self.cursor
            self._index = 0
            entries: list[Any]
            redo: Callable[[int], JobLogEntry] | None = None  # set: entries are JSON
            if isinstance(page, list):  # decoded already
                self._keys = Keys([e.create_time for e in page], [e.id for e in page])
                entries = page
            else:
                self._keys, entries, redo = page.keys, page.raw, page.entry
            span, decode = self._span, decode_log_entry
            for index, entry in enumerate(entries):
                if redo is not None:
                    try:
                        entry = decode(entry)
                    except Exception:  # unusual: the converter decodes it, or says why not
                        try:
                            entry = redo(index)
                        except errors.NexusError as exc:
                            self._fail(exc)
                            raise
                self._index = index + 1
                if span is not None:
                    span.entry()
                yield entry

    def _fail(self, error: BaseException) -> None:
        if isinstance(error, errors.NexusError):
            error.cursor = self.cursor
        self._end(error)

    def _end(self, error: BaseException | None) -> None:
        span, self._span = self._span, None
        if span is not None:
            span.end(error)


class _Pager:
    """The logic of one walk back through a log: which query is next, what is new.

    Args:
        url: The endpoint's URL, for errors.
        job_id: The job, for messages.
        flt: The walk's filter; `max_entries` is the page size.
        start: Where to begin (default: `flt.before_time`).
    """

    def __init__(
        self, url: str, job_id: str, flt: LogsFilter, start: LogCursor | None = None
    ) -> None:
        self._url = url
        self._job_id = job_id
        self._page_size = flt.max_entries or MAX_PAGE
        self._base = attrs.evolve(flt, max_entries=self._page_size)
        self.cursor = LogCursor.newest_first(flt.before_time) if start is None else start
        #: The next request's filter; None once the walk is over.
        self.query: LogsFilter | None = self.cursor.query(self._base)

    def take(self, payload: Any) -> Page | None:
        """The new entries of the answer to `query` (None: none), and the next `query`.

        Only the entries' keys are read here; decoding them is left to the consumer.

        Raises:
            LogPagingError: a full page shares one millisecond with entries already
                yielded, so paging by time cannot get past it without losing entries.
            ResponseDecodeError: an answer that is not a page of log entries.
        """
        entries, keys = _keys(payload, self._url)
        keep, self.cursor = self.cursor.advance_keys(keys)
        self.query = None
        if len(keys.times) == self._page_size:
            if not keep:
                raise _tie_error(self._page_size, self._job_id, keys.times[-1])
            self.query = self.cursor.query(self._base)
        return _fresh(entries, keys, keep, payload, self._url)


async def log_pages(
    fetch: FetchLogs, url: str, job_id: str, flt: LogsFilter, start: LogCursor | None = None
) -> AsyncGenerator[Page, None]:
    """The new entries of each page back through the log, newest first, one request at a time.

    Args:
        fetch: One answer of the job's logs endpoint for a filter, as JSON.
        url: The endpoint's URL, for errors.
        job_id: The job, for messages.
        flt: The walk's filter; `max_entries` is the page size.
        start: Where to resume (default: `flt.before_time`).

    Raises:
        LogPagingError: see `_Pager.take`.
        ResponseDecodeError: an answer that is not a page of log entries.
    """
    pager = _Pager(url, job_id, flt, start)
    while pager.query is not None:
        page = pager.take(await fetch(pager.query))
        if page is not None:
            yield page


class _Ahead:
    """One request sent ahead: `written` is set once it is on the wire (or over)."""

    def __init__(self, fetch: FetchLogs, query: LogsFilter) -> None:
        self._fetch = fetch
        self._query = query
        self.written = anyio.Event()
        self._result: Any = None
        self._error: Exception | None = None

    async def run(self) -> None:
        async def trace(event: str, info: dict[str, Any]) -> None:
            if event.endswith("send_request_body.complete"):
                self.written.set()

        TRACE.set(trace)  # this task's own context: only its requests are traced
        try:
            self._result = await self._fetch(self._query)
        except Exception as exc:  # re-raised by `result()`, never into the task group
            self._error = exc
        finally:
            self.written.set()

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._result


async def _pipelined(
    fetch: FetchLogs,
    pager: _Pager,
    emit: Callable[[Page], Awaitable[None]],
    stop: Callable[[], bool] | None = None,
    first: Any = None,
) -> None:
    """Walk with `pager`, handing each page to `emit` once the next request is written.

    So the request for page n+1 is in flight while page n is decoded and consumed.
    Once `stop()` is true it returns after a page, `pager.query` saying where the
    walk goes on. `first`, if given, is the answer to `pager.query`, already fetched.
    """
    assert pager.query is not None
    payload = await fetch(pager.query) if first is None else first
    while True:
        page = pager.take(payload)
        if pager.query is None or (stop is not None and stop()):
            if page is not None:
                await emit(page)
            return
        ahead = _Ahead(fetch, pager.query)
        refused: Exception | None = None  # raised past the group, so never wrapped in a group
        async with anyio.create_task_group() as group:
            group.start_soon(ahead.run)
            await ahead.written.wait()
            if page is not None:
                try:
                    await emit(page)
                except Exception as exc:
                    refused = exc
                    group.cancel_scope.cancel()
        if refused is not None:
            raise refused
        payload = ahead.result()


class _Adaptive:
    """`get_all_logs` with `concurrency` > 1: sequential while that is as fast, then parallel.

    Parallel slices pay for themselves only when the consumer would otherwise wait
    on the network: near the server (bench_logs at 0 ms), the client's CPU is the
    limit and slices cost 10-20% of the rate in short answers and bookkeeping. So
    the walk pages sequentially, pipelined, and measures each wait of the consumer
    (`waited`, from `_prefetched`): once it has `_IDLE_WAITS` times in a row waited
    with the CPU idle for `_IDLE_WAIT` and `_IDLE_SHARE` of the page's cycle, or
    once for `_FAR_WAIT`, the rest of the log is paged by a
    `_ParallelWalk` from the cursor reached. The first wait (the first round trip,
    connecting included) counts only as a far server's.
    """

    def __init__(
        self,
        fetch: FetchLogs,
        url: str,
        job_id: str,
        flt: LogsFilter,
        start: LogCursor,
        concurrency: int,
    ) -> None:
        self._fetch = fetch
        self._url = url
        self._job_id = job_id
        self._flt = flt
        self._concurrency = concurrency
        self._pager = _Pager(url, job_id, flt, start)
        self._waits = 0
        self._idle_run = 0  # consecutive waits spent idle

    def waited(self, idle: float, cycle: float) -> None:
        """The consumer waited for a page, `idle` seconds of it with the CPU idle.

        `cycle` is the wall time since its previous wait ended (consuming the
        previous page, then this wait).
        """
        self._waits += 1
        if idle > _FAR_WAIT:
            self._idle_run = _IDLE_WAITS
        elif self._waits > 1:
            on_network = idle > _IDLE_WAIT and idle > _IDLE_SHARE * cycle
            self._idle_run = self._idle_run + 1 if on_network else 0

    def _waiting_on_network(self) -> bool:
        return self._idle_run >= _IDLE_WAITS

    async def run(self, emit: Callable[[Page], Awaitable[None]]) -> None:
        first = self._pager.query
        assert first is not None
        started = _clocks()
        payload = await self._fetch(first)
        if _off_cpu_since(started) > _FAR_WAIT:
            # A far server, seen on the first round trip: the parallel walk starts
            # here, with that answer as its first (so it knows the log's density).
            fetch = _answering_once(self._fetch, first, payload)
            await self._parallel(fetch, self._pager.cursor).run(emit)
            return
        await _pipelined(
            self._fetch, self._pager, emit, stop=self._waiting_on_network, first=payload
        )
        if self._pager.query is not None:
            await self._parallel(self._fetch, self._pager.cursor).run(emit)

    def _parallel(self, fetch: FetchLogs, start: LogCursor) -> _ParallelWalk:
        return _ParallelWalk(fetch, self._url, self._job_id, self._flt, start, self._concurrency)


def _answering_once(fetch: FetchLogs, query: LogsFilter, payload: Any) -> FetchLogs:
    """`fetch`, except that its first call for `query` answers `payload` (already fetched)."""
    answered = False

    async def answering(asked: LogsFilter) -> Any:
        nonlocal answered
        if not answered and asked == query:
            answered = True
            return payload
        return await fetch(asked)

    return answering


def _clocks() -> tuple[float, float]:
    """Wall and CPU time now, for `_off_cpu_since`."""
    return time.perf_counter(), time.process_time()


def _off_cpu_since(started: tuple[float, float]) -> float:
    """Seconds since `_clocks()` returned `started` that this process spent off the CPU."""
    wall, cpu = started
    return time.perf_counter() - wall - (time.process_time() - cpu)


class _Slice:
    """A time slice of a parallel walk: entries in `(lower, cursor]`, paged newest first.

    `lower` is exclusive (None: the filter's own bound); it only ever rises, when
    an idle worker splits the slice. Pages wait in `pages` until the slices ahead
    of this one have been emitted; an error ends the slice at its place in order.
    """

    def __init__(self, pager_base: LogsFilter, cursor: LogCursor, lower: int | None) -> None:
        self.base = pager_base
        self.cursor = cursor
        self.lower = lower
        self.pages: collections.deque[Page] = collections.deque()
        self.busy = False  # a request of this slice is in flight
        self.done = False
        self.error: Exception | None = None
        self.dense_run = 0  # full pages in a row far denser than the walk's estimate

    def query(self) -> LogsFilter:
        return self.cursor.query(attrs.evolve(self.base, after_time=self.lower))


class _ParallelWalk:
    """Disjoint time slices of one log paged by `concurrency` workers, merged in order.

    A millisecond is never split between slices, so the one tie rule (`LogCursor`)
    applies inside each. It begins as one slice; once a full page has been
    answered, an idle worker splits the slice nearest the front that is still open
    below its request in flight, about `_SLICE_PAGES` pages' worth of milliseconds
    below that request's `before_time`, so the old slice keeps a few pages and the
    new one starts at once. Workers take the slice nearest the consumer first, and
    only while fewer than `budget` pages are buffered or in flight up to it
    (counted in output order), so memory is bounded and far slices never starve
    the front. Requests in flight grow with the full pages answered (a slow
    start), so a log of one page costs what paging it sequentially would.

    Every slice ends with one answer short of a page, so the requests beyond the
    sequential count are about one per slice, more when a slice lands in a gap.
    The span of a page is therefore estimated from the density of all answers so
    far (entries over the milliseconds they were known to cover, recent answers
    weighing more), not from the latest page alone: in a bursty log a page may
    cover 20 ms in a burst and 20 s across a gap, and slices sized by the last
    page fall into the gaps as empty answers (bench_logs' bursty log at 50 ms:
    1.5x the sequential requests and 3.0x the reference's entries/s that way,
    1.3x and 4.8x with the estimate). Slices of two pages rather than one halve
    the slices, and so the short answers, on a steady log; a slice that would
    hold less than half a page is not split off at all. A slice answering full
    pages far denser than the estimate, twice in a row, restarts the estimate
    there, so a dense stretch after a sparse one is soon cut at its own density.
    The price is paid where the density changes once and stays: in simulation,
    a log dense long ago and sparse since (or the other way round) takes 1.3x
    the sequential requests instead of 1.15-1.2x, and streams at 4.6-5.2x the
    sequential rate at 50 ms instead of 5.6-6.0x.
    """

    def __init__(
        self,
        fetch: FetchLogs,
        url: str,
        job_id: str,
        flt: LogsFilter,
        start: LogCursor,
        concurrency: int,
    ) -> None:
        self._fetch = fetch
        self._url = url
        self._job_id = job_id
        self._page_size = flt.max_entries or MAX_PAGE
        base = attrs.evolve(flt, max_entries=self._page_size)
        self._slices = [_Slice(base, start, flt.after_time)]
        self._concurrency = concurrency
        self._budget = 2 * concurrency
        # Entries answered and the milliseconds they were known to cover, each
        # answer's weight decaying by `_DENSITY_DECAY` with each answer after it.
        self._seen_entries = 0.0
        self._seen_ms = 0.0
        # Once the open-ended slice has been answered in full: no entry is older
        # than this, so no slice is split off below it.
        self._oldest = -1
        self._full = 0  # full pages answered
        self._changed = anyio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def run(self, emit: Callable[[Page], Awaitable[None]]) -> None:
        """Page the log with the workers, handing `emit` each page in output order."""
        refused: Exception | None = None  # raised past the group, never wrapped in one
        async with anyio.create_task_group() as group:
            for _ in range(self._concurrency):
                group.start_soon(self._work)
            try:
                await self._emit_all(emit)
            except Exception as exc:
                refused = exc
            group.cancel_scope.cancel()
        if refused is not None:
            raise refused

    async def _emit_all(self, emit: Callable[[Page], Awaitable[None]]) -> None:
        slices = self._slices
        while slices:
            front = slices[0]
            if front.pages:
                page = front.pages.popleft()
                self._notify()
                await emit(page)
            elif front.done:
                if front.error is not None:
                    raise front.error
                slices.pop(0)
                self._notify()
            else:
                await self._changed.wait()

    def _pick(self) -> _Slice | None:
        """The slice to request next (marked busy), or None to wait for a change."""
        # Slow start: no more requests in flight than full pages seen, so a short
        # log costs no more requests than paging it one at a time would.
        if sum(piece.busy for piece in self._slices) >= max(1, self._full):
            return None
        ahead = 0  # pages buffered or in flight up to here, in output order
        for piece in self._slices:
            ahead += len(piece.pages) + piece.busy
            if ahead >= self._budget:
                return None
            if not piece.done and not piece.busy:
                piece.busy = True
                return piece
        return self._split()

    def _observe(self, entries: int, ms: int) -> None:
        self._seen_entries = self._seen_entries * _DENSITY_DECAY + entries
        self._seen_ms = self._seen_ms * _DENSITY_DECAY + ms

    @property
    def _span(self) -> int | None:
        """Milliseconds a page of entries covers at the density seen so far (None: unknown)."""
        if self._full == 0 or self._seen_entries < 1:
            return None
        return max(1, int(self._seen_ms * self._page_size / self._seen_entries))

    def _split(self) -> _Slice | None:
        """A new slice split off the front-most busy slice still open below its request."""
        span = self._span
        if span is None:
            return None
        ahead = 0
        for index, piece in enumerate(self._slices):
            ahead += len(piece.pages) + piece.busy
            if ahead >= self._budget:
                return None
            top = piece.cursor.time
            if piece.done or top is None:
                continue
            # A little less than `_SLICE_PAGES` pages below the request in flight, so
            # that the old slice most likely ends with a full page reaching past the
            # point (its entries past the point are dropped) rather than a short one.
            point = top - _SLICE_PAGES * span + max(1, span // 16)
            floor = self._oldest if piece.lower is None else piece.lower
            if not floor + _MIN_SLICE_PAGES * span < point < top:
                continue
            new = _Slice(piece.base, LogCursor.newest_first(point), piece.lower)
            piece.lower = point
            new.busy = True
            self._slices.insert(index + 1, new)
            return new
        return None

    async def _work(self) -> None:
        while True:
            if all(piece.done for piece in self._slices):
                return
            piece = self._pick()
            if piece is None:
                await self._changed.wait()
                continue
            try:
                lower = piece.lower  # the request's own lower bound (a split may raise it)
                page = self._take(piece, await self._fetch(piece.query()), lower)
            except Exception as exc:  # the slice ends there; raised in order by the emitter
                piece.error, piece.done = exc, True
            else:
                if page is not None:
                    piece.pages.append(page)
            piece.busy = False
            self._notify()

    def _take(self, piece: _Slice, payload: Any, sent_lower: int | None) -> Page | None:
        """The new entries of `piece` in an answer, advancing its cursor; marks it done.

        Every answer feeds the density that sizes the slices split off next: a
        full page covered the milliseconds from its oldest entry to its request's
        `before_time`, an answer short of a page its whole request (with no lower
        bound, `sent_lower` None, it shows where the log begins instead).

        Raises:
            LogPagingError: as `_Pager.take`.
            ResponseDecodeError: an answer that is not a page of log entries.
        """
        entries, keys = _keys(payload, self._url)
        times = keys.times
        full = len(times) == self._page_size
        top = piece.cursor.time
        if full:
            self._full += 1
            estimate = self._span
            if estimate is not None and _DENSER * (times[0] - times[-1] + 1) < estimate:
                piece.dense_run += 1
                if piece.dense_run >= _DENSE_RUN:  # the log has changed: start afresh
                    self._seen_entries = self._seen_ms = 0.0
            else:
                piece.dense_run = 0
            self._observe(len(times), (times[0] if top is None else top) - times[-1] + 1)
        elif sent_lower is None:
            oldest = times[-1] if times else top
            self._oldest = max(self._oldest, oldest or 0)
        elif top is not None:
            self._observe(len(times), top - sent_lower)
        lower = piece.lower
        reached = False  # the answer went past the slice's (possibly raised) lower bound
        if lower is not None and times and times[-1] <= lower:
            reached = True
            cut = next(i for i, t in enumerate(times) if t <= lower)
            entries, keys = entries[:cut], Keys(times[:cut], keys.ids[:cut])
        keep, piece.cursor = piece.cursor.advance_keys(keys)
        if reached or not full:
            piece.done = True
        elif not keep:
            raise _tie_error(self._page_size, self._job_id, times[-1])
        return _fresh(entries, keys, keep, payload, self._url)


def all_logs(
    fetch: FetchLogs,
    url: str,
    job_id: str,
    flt: LogsFilter,
    runtime: Runtime,
    resume_from: LogCursor | None = None,
    concurrency: int = 1,
) -> LogStream:
    """Every entry, newest first, fetching ahead in the background when the runtime can.

    In the background, `concurrency` requests are in flight (time slices paged in
    parallel, merged in order; with 1, the next page's request is in flight while
    the caller decodes and consumes the current one); otherwise one request at a
    time, inline.
    """
    start = LogCursor.newest_first(flt.before_time) if resume_from is None else resume_from
    span = _otel.log_span("get_all_logs", job_id)
    if not runtime.in_background:
        return LogStream(log_pages(fetch, url, job_id, flt, start), start, span)
    if concurrency == 1:
        pager = _Pager(url, job_id, flt, start)
        walked = _prefetched(lambda emit: _pipelined(fetch, pager, emit), runtime)
        return LogStream(walked, start, span)
    walk = _Adaptive(fetch, url, job_id, flt, start, concurrency)
    return LogStream(_prefetched(walk.run, runtime, waited=walk.waited), start, span)


async def _prefetched(
    produce_pages: Callable[[Callable[[Page], Awaitable[None]]], Awaitable[None]],
    runtime: Runtime,
    *,
    waited: Callable[[float, float], None] | None = None,
) -> AsyncGenerator[Page, None]:
    """Yield the pages `produce_pages` emits, which runs as a background task of the client.

    `waited(idle, cycle)` is told, after each wait for a page, how much of it the
    process spent off the CPU (wall time minus CPU time: waiting on the network),
    and the wall time since the previous wait ended.

    The producer never runs in a scope held across our `yield`; it hands pages
    (or its exception) over a one-slot stream and is cancelled when this
    generator is closed, which returns only once the producer has ended: no
    request of ours is left in flight behind the caller. If the stream ends
    without the producer having finished, the client closed under us.
    """
    runtime.check_open()  # before anything needs closing
    send, receive = anyio.create_memory_object_stream["Page | BaseException"](1)
    scope = anyio.CancelScope()
    ended = anyio.Event()
    done = False

    async def produce() -> None:
        nonlocal done
        try:
            with scope:
                async with send:
                    try:
                        await produce_pages(send.send)
                        done = True
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        pass
                    except Exception as exc:  # handed to the consumer, never to the task group
                        with contextlib.suppress(
                            anyio.BrokenResourceError, anyio.ClosedResourceError
                        ):
                            await send.send(exc)
        finally:
            ended.set()

    runtime.start_soon(produce)
    try:
        async with receive:
            previous: float | None = None  # when the previous wait ended (wall clock)
            while True:
                started = _clocks()
                try:
                    item = await receive.receive()
                except anyio.EndOfStream:
                    break
                if waited is not None:
                    idle, now = _off_cpu_since(started), time.perf_counter()
                    waited(idle, now - (started[0] if previous is None else previous))
                    previous = now
                if isinstance(item, BaseException):
                    raise item
                yield item
        if not done:
            raise errors.ClientClosedError("the AsyncClient closed while reading logs")
    finally:
        scope.cancel()
        # A task cancelled before it ever ran never gets to set `ended`; the
        # client's closing ends it anyway.
        if not runtime.closed:
            with anyio.move_on_after(_STOP_SECONDS, shield=True):
                await ended.wait()


def follow_logs(
    fetch_job: Callable[[], Awaitable[Job]],
    fetch: FetchLogs,
    url: str,
    job_id: str,
    *,
    interval: float,
    min_level: LogLevel | str | None,
    after_time: int | None,
    timeout: float | None,
    outage_budget: float | None,
    resume_from: LogCursor | None = None,
) -> LogStream:
    """Entries oldest first as they appear, ending once the job is finished; see `Jobs`."""
    check_id(job_id, "batchjob_", "job_id")  # checked before the first request
    backoff = poll_backoff(interval)
    check_timeout(timeout)
    if resume_from is not None and after_time is not None:
        raise errors.ValidationError("give `after_time` or `resume_from`, not both")
    base = LogsFilter(min_level=min_level, after_time=after_time)
    start = LogCursor.oldest_first(base.after_time) if resume_from is None else resume_from

    async def batches() -> AsyncGenerator[Page | list[JobLogEntry], None]:
        cursor = start
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
                    pages = log_pages(fetch, url, job_id, cursor.query(base))
                    async with contextlib.aclosing(pages):
                        batch = [entry async for page in pages for entry in page.decode()]
                except TRANSIENT as exc:
                    _otel.log_resumed()
                    outage.failed(exc, started)
                else:
                    outage.succeeded()
                    last, finished = job, job.is_finished
                    batch.reverse()  # oldest first
                    fresh, cursor = cursor.advance(batch)
            if fresh:
                yield fresh
            if finished:
                return
            step = max(0, step - 1) if fresh else step + 1
            delay = backoff.delay(step)
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - anyio.current_time()))
            await anyio.sleep(delay)

    return LogStream(batches(), start, _otel.log_span("follow_logs", job_id))
