"""`LogCursor`, the one tie-breaking rule of log paging, and the pager built on it."""

from __future__ import annotations

import weakref
from typing import Any

import pytest

from nexus_async import (
    JobLogEntry,
    JobLogs,
    LogCursor,
    LogPagingError,
    LogsFilter,
    ResponseDecodeError,
    unstructure,
)
from nexus_async._logs import LogStream, log_pages

URL = "http://nexus.test/v1/projects/proj_1/batch/jobs/batchjob_1/logs"


def entry(create_time: int, entry_id: str) -> JobLogEntry:
    return JobLogEntry(
        kind="ItemPredicted",
        create_time=create_time,
        id=entry_id,
        level="Info",
        item="item",
        status="ok",
        time_ms=1.0,
    )


class FakeLog:
    """A server's view of a log: answers queries as the API does (newest first)."""

    def __init__(self, entries: list[JobLogEntry]) -> None:
        # Newest first; ties in an order of the server's choosing (here: by id).
        self.entries = sorted(entries, key=lambda e: (-e.create_time, e.id))
        self.queries: list[LogsFilter] = []

    async def fetch(self, flt: LogsFilter) -> Any:
        self.queries.append(flt)
        chosen = [
            e
            for e in self.entries
            if (flt.before_time is None or e.create_time <= flt.before_time)
            and (flt.after_time is None or e.create_time > flt.after_time)
        ]
        page = JobLogs(
            id="batchjob_1", object="logs", project_id="proj_1", entries=chosen[: flt.max_entries]
        )
        return unstructure(page)


async def walk(log: FakeLog, flt: LogsFilter) -> list[str]:
    pages = log_pages(log.fetch, URL, "batchjob_1", flt)
    return [e.id async for page in pages for e in page.decode()]


def test_backward_cursor_skips_what_it_yielded_at_the_boundary() -> None:
    cursor = LogCursor.newest_first()
    fresh, cursor = cursor.advance([entry(9, "a"), entry(5, "b"), entry(5, "c")])
    assert [e.id for e in fresh] == ["a", "b", "c"]
    assert cursor == LogCursor(time=5, seen=frozenset({"b", "c"}))
    assert cursor.query(LogsFilter(max_entries=3)).before_time == 5
    # The next page re-reads millisecond 5: only the entry not yet yielded is new.
    fresh, cursor = cursor.advance([entry(5, "b"), entry(5, "d"), entry(5, "c")])
    assert [e.id for e in fresh] == ["d"]
    assert cursor.seen == {"b", "c", "d"}
    fresh, cursor = cursor.advance([entry(5, "c"), entry(3, "e")])
    assert [e.id for e in fresh] == ["e"]
    assert cursor == LogCursor(time=3, seen=frozenset({"e"}))


def test_forward_cursor_is_exclusive_of_its_start_and_skips_seen_ties() -> None:
    cursor = LogCursor.oldest_first(after_time=10)
    assert cursor.query(LogsFilter()).after_time == 10  # entries at 10 are not asked for
    fresh, cursor = cursor.advance([entry(10, "old"), entry(11, "a"), entry(12, "b")])
    assert [e.id for e in fresh] == ["a", "b"]
    # Following re-reads the newest millisecond, where entries may still arrive.
    assert cursor.query(LogsFilter()).after_time == 11
    fresh, cursor = cursor.advance([entry(12, "b"), entry(12, "c"), entry(13, "d")])
    assert [e.id for e in fresh] == ["c", "d"]
    fresh, same = cursor.advance([entry(13, "d")])
    assert fresh == []
    assert same is cursor


def test_a_cursor_is_an_immutable_value() -> None:
    cursor = LogCursor.newest_first(100)
    _, later = cursor.advance([entry(50, "x")])
    assert cursor == LogCursor(time=100)
    assert later != cursor
    with pytest.raises(AttributeError):
        cursor.time = 3  # type: ignore[misc]


async def test_paging_yields_every_entry_once_across_tied_boundaries() -> None:
    entries = [entry(t, f"e{t}-{i}") for t in range(20) for i in range(t % 2 + 1)]
    log = FakeLog(entries)
    got = await walk(log, LogsFilter(max_entries=3))
    assert got == [e.id for e in log.entries]
    assert len(log.queries) > len(entries) // 3  # it really paged


async def test_a_full_page_in_one_millisecond_raises_log_paging_error() -> None:
    log = FakeLog([entry(7, f"tie{i}") for i in range(4)] + [entry(3, "older")])
    with pytest.raises(LogPagingError) as info:
        await walk(log, LogsFilter(max_entries=3))
    assert info.value.create_time == 7


async def test_a_thousand_and_one_entries_in_one_millisecond_raise() -> None:
    log = FakeLog([entry(7, f"tie{i:04}") for i in range(1001)])
    with pytest.raises(LogPagingError):
        await walk(log, LogsFilter())


@pytest.mark.parametrize(
    "broken",
    [
        {"entries": "nope"},
        [],
        {"entries": [{"createTime": "5", "id": "a"}]},
        {"entries": [{"id": "a"}]},
    ],
)
async def test_an_answer_that_is_not_a_page_is_a_decode_error_naming_its_path(
    broken: Any,
) -> None:
    async def fetch(flt: LogsFilter) -> Any:
        return broken

    with pytest.raises(ResponseDecodeError) as info:
        async for _ in log_pages(fetch, URL, "batchjob_1", LogsFilter()):
            pass
    assert info.value.url == URL
    assert "unexpected response shape" in str(info.value)


async def test_a_bad_field_beyond_the_keys_fails_when_its_page_is_decoded() -> None:
    good = unstructure(entry(5, "a"))
    bad = {**unstructure(entry(4, "b")), "timeMs": "slow"}

    async def fetch(flt: LogsFilter) -> Any:
        return {"id": "batchjob_1", "object": "logs", "projectId": "p", "entries": [good, bad]}

    pages = log_pages(fetch, URL, "batchjob_1", LogsFilter())
    page = await pages.__anext__()
    with pytest.raises(ResponseDecodeError) as info:
        page.decode()
    assert "$.entries[1].time_ms" in str(info.value)  # the path in the whole answer
    await pages.aclose()


def stream_of(log: FakeLog, flt: LogsFilter) -> LogStream:
    start = LogCursor.newest_first(flt.before_time)
    return LogStream(log_pages(log.fetch, URL, "batchjob_1", flt), start)


async def test_a_stream_decodes_each_entry_as_it_is_yielded() -> None:
    # A model the caller drops is freed at once: the stream does not hold its page's
    # models (a page decoded ahead would keep all 1,000 alive for the collector).
    log = FakeLog([entry(100 - i, f"e{i:03}") for i in range(50)])
    stream = stream_of(log, LogsFilter())
    first = await stream.__anext__()
    dropped = weakref.ref(first)
    del first
    second = await stream.__anext__()
    assert dropped() is None
    assert second.id == "e001"
    assert [e.id async for e in stream] == [f"e{i:03}" for i in range(2, 50)]


async def test_a_bad_entry_ends_the_stream_after_the_entries_before_it() -> None:
    good = unstructure(entry(5, "a"))
    bad = {**unstructure(entry(4, "b")), "timeMs": "slow"}

    async def fetch(flt: LogsFilter) -> Any:
        return {"id": "batchjob_1", "object": "logs", "projectId": "p", "entries": [good, bad]}

    stream = LogStream(log_pages(fetch, URL, "batchjob_1", LogsFilter()), LogCursor())
    got = []
    with pytest.raises(ResponseDecodeError) as info:
        async for e in stream:
            got.append(e.id)
    assert got == ["a"]
    assert "$.entries[1].time_ms" in str(info.value)  # the path in the whole answer
    # Resuming from the error's cursor starts with the bad entry, nothing lost.
    assert info.value.cursor == LogCursor(time=5, seen=frozenset({"a"}))


async def test_an_entry_the_hot_path_leaves_is_decoded_by_the_converter() -> None:
    # An int `timeMs` and no `reason`: valid, and unusual for the hand-written hook.
    raw = {**unstructure(entry(5, "a")), "timeMs": 3, "level": "Verbose"}
    del raw["reason"]

    async def fetch(flt: LogsFilter) -> Any:
        return {"id": "batchjob_1", "object": "logs", "projectId": "p", "entries": [raw]}

    stream = LogStream(log_pages(fetch, URL, "batchjob_1", LogsFilter()), LogCursor())
    [got] = [e async for e in stream]
    assert got == JobLogEntry("ItemPredicted", 5, "a", "Verbose", "item", "ok", 3.0, "")
    assert type(got.time_ms) is float
