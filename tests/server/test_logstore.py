"""The per-job log store: ordering, filters, ties, and speed at a million entries."""

from __future__ import annotations

import time

import pytest

from nexus_async.server._logstore import LEVELS, LogClock, LogStore


def store() -> LogStore:
    return LogStore(LogClock())


def keys(entries: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(e["createTime"], e["id"]) for e in entries]


def test_newest_first_by_time_then_id() -> None:
    logs = store()
    logs.seed(6, per_ms=3, start_time=100, level="Info", row=("K", "", "S", 1.0, ""))
    entries = logs.query(before=None, after=None, min_level="Debug", limit=100)
    assert [e["createTime"] for e in entries] == [101, 101, 101, 100, 100, 100]
    assert keys(entries) == sorted(keys(entries), reverse=True)
    assert len({e["id"] for e in entries}) == 6


def test_before_is_inclusive_and_after_exclusive() -> None:
    logs = store()
    logs.seed(10, per_ms=1, start_time=100, level="Info", row=("K", "", "S", 1.0, ""))
    times = [
        e["createTime"] for e in logs.query(before=105, after=102, min_level="Debug", limit=100)
    ]
    assert times == [105, 104, 103]
    assert logs.query(before=99, after=None, min_level="Debug", limit=100) == []
    assert logs.query(before=None, after=109, min_level="Debug", limit=100) == []
    assert len(logs.query(before=None, after=None, min_level="Debug", limit=4)) == 4


def test_min_level_merges_only_the_levels_asked_for() -> None:
    logs = store()
    row = ("K", "", "S", 1.0, "")
    logs.seed(5, per_ms=1, start_time=100, level="Debug", row=row)
    logs.seed(5, per_ms=1, start_time=100, level="Info", row=row)
    logs.seed(5, per_ms=1, start_time=102, level="Warning", row=row)
    logs.seed(5, per_ms=1, start_time=101, level="Error", row=row)
    warn = logs.query(before=None, after=None, min_level="Warning", limit=100)
    assert {e["level"] for e in warn} == {"Warning", "Error"}
    assert len(warn) == 10
    assert keys(warn) == sorted(keys(warn), reverse=True)
    assert len(logs.query(before=None, after=None, min_level="Debug", limit=100)) == 20


def test_seeding_into_the_past_keeps_order() -> None:
    logs = store()
    row = ("K", "", "S", 1.0, "")
    logs.seed(5, per_ms=1, start_time=200, level="Info", row=row)
    logs.seed(5, per_ms=1, start_time=100, level="Info", row=row)
    logs.add("Late", "Info")  # stamped now: after all of them
    entries = logs.query(before=None, after=None, min_level="Debug", limit=100)
    assert entries[0]["kind"] == "Late"
    assert [e["createTime"] for e in entries[1:]] == [
        204,
        203,
        202,
        201,
        200,
        104,
        103,
        102,
        101,
        100,
    ]


def test_runner_entries_out_of_order_are_inserted_in_place() -> None:
    logs = store()
    far_future = 10**13
    logs.seed(3, per_ms=1, start_time=far_future, level="Info", row=("Seed", "", "S", 1.0, ""))
    logs.add("Now", "Info")
    entries = logs.query(before=None, after=None, min_level="Debug", limit=100)
    assert [e["kind"] for e in entries] == ["Seed", "Seed", "Seed", "Now"]


@pytest.mark.parametrize("per_ms", [2, 5])
def test_tie_groups_for_runner_entries(per_ms: int) -> None:
    clock = LogClock()
    clock.per_ms = per_ms
    logs = LogStore(clock)
    for _ in range(per_ms * 3 + 1):
        logs.add("K", "Info")
    times = [
        e["createTime"] for e in logs.query(before=None, after=None, min_level="Debug", limit=100)
    ]
    groups = [times.count(t) for t in sorted(set(times))]
    assert groups == [per_ms, per_ms, per_ms, 1]


def test_unique_milliseconds_with_one_per_ms_and_natural_otherwise() -> None:
    clock = LogClock()
    logs = LogStore(clock)
    clock.per_ms = 1
    for _ in range(50):
        logs.add("K", "Info")
    times = [
        e["createTime"] for e in logs.query(before=None, after=None, min_level="Debug", limit=100)
    ]
    assert len(set(times)) == 50
    clock.per_ms = None
    for _ in range(50):
        logs.add("K", "Info")
    times = [
        e["createTime"] for e in logs.query(before=None, after=None, min_level="Debug", limit=200)
    ]
    assert times == sorted(times, reverse=True)  # never goes backwards


def test_entry_fields() -> None:
    logs = store()
    logs.add(
        "ItemFailed", "Error", item="http://x/1.png", status="FailedGather", time_ms=3, reason="404"
    )
    [entry] = logs.query(before=None, after=None, min_level="Debug", limit=1)
    assert entry["kind"] == "ItemFailed"
    assert entry["level"] == "Error"
    assert entry["item"] == "http://x/1.png"
    assert entry["status"] == "FailedGather"
    assert entry["timeMs"] == 3.0
    assert isinstance(entry["timeMs"], float)
    assert entry["reason"] == "404"
    assert len(str(entry["id"])) == 24


def test_a_million_entries_seed_and_query_fast() -> None:
    logs = store()
    row = ("K", "", "S", 1.0, "")
    started = time.perf_counter()
    logs.seed(1_000_000, per_ms=7, start_time=1_000_000, level="Info", row=row)
    logs.seed(10, per_ms=1, start_time=1_000_000, level="Error", row=row)
    seeded = time.perf_counter() - started
    assert len(logs) == 1_000_010
    started = time.perf_counter()
    for before in range(1_000_000, 1_000_000 + 142_857, 997):
        page = logs.query(before=before, after=None, min_level="Debug", limit=1000)
        assert page[0]["createTime"] == before
    errors = logs.query(before=None, after=None, min_level="Error", limit=1000)
    per_query = (time.perf_counter() - started) / 145
    assert len(errors) == 10
    assert seeded < 5.0, seeded
    assert per_query < 0.05, per_query


@pytest.mark.parametrize("min_level", ["Debug", "Warning"])
def test_the_encoded_page_equals_the_dicts_through_json(min_level: str) -> None:
    from starlette.responses import JSONResponse

    logs = store()
    rows = [
        ("K", "", "S", 1.0, ""),
        ('Qu"ote', "http://x/é 100%.png", "50%d", 2.5, "back\\slash\nnew line %s"),
        ("K", "ünï", "", 1e-7, "\u2028"),
    ]
    for index, row in enumerate(rows):
        logs.seed(40, per_ms=3, start_time=100 + index * 7, level="Info", row=row)
        logs.seed(15, per_ms=1, start_time=101 + index * 5, level=LEVELS[index + 1], row=row)
    logs.add("Runner %x", "Error", item="i%d", status="Ok", time_ms=3, reason="r")
    for before, after, limit in [(None, None, 1000), (130, 104, 1000), (None, None, 17)]:
        entries = logs.query(before=before, after=after, min_level=min_level, limit=limit)
        encoded = logs.query_json(before=before, after=after, min_level=min_level, limit=limit)
        assert encoded == JSONResponse(entries).body
