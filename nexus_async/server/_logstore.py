"""Per-job log storage that answers the logs call in O(log n + page).

Entries are ordered by ``(createTime, seq)``; ``seq`` is a process-wide counter and the
entry id is its 24-digit hex form, so ordering by id within one millisecond is ordering
by ``seq``. Each severity level has its own sorted run (times and seqs in ``array('q')``,
8 bytes each), so a ``minLevel`` filter never scans the entries it drops: a query bisects
the runs it needs and merges them from the newest end, touching only the page it returns.
A million seeded entries take about 16 MB plus one shared row tuple.

The logs route answers with ``query_json``: each entry's JSON is one ``%`` on a template
of its ``(level, row)``, encoded once and shared by every entry with that row (a seeded
log has one), so a 1,000-entry page costs about a quarter of building dicts and running
them through Starlette's ``JSONResponse`` (0.9 ms instead of 3.4 ms, query included).
"""

from __future__ import annotations

import heapq
import itertools
import json
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from typing import Any

from ._clock import now_ms

__all__ = ["LEVELS", "LogClock", "LogStore"]

LEVELS = ("Debug", "Info", "Warning", "Error")
_RANK = {name: rank for rank, name in enumerate(LEVELS)}

# (kind, item, status, timeMs, reason): shared between entries where possible.
Row = tuple[str, str, str, float, str]

# Entry templates kept at most: runner-written rows are mostly unique, so the cache is
# dropped whole when full rather than growing with the log.
_TEMPLATES_MAX = 4096
_templates: dict[tuple[str, Row], str] = {}


def _template(level: str, row: Row) -> str:
    """The JSON of an entry of ``row`` at ``level``, with ``%x`` for its seq and ``%d`` its time.

    Keys in the order ``query`` gives them; ``json.dumps`` as Starlette's ``JSONResponse``
    calls it (no NaN, UTF-8 kept as is), so the bytes equal what the dicts would give.
    """
    found = _templates.get((level, row))
    if found is None:
        if len(_templates) >= _TEMPLATES_MAX:
            _templates.clear()

        def enc(value: object) -> str:
            return json.dumps(value, ensure_ascii=False, allow_nan=False).replace("%", "%%")

        kind, item, status, time_ms, reason = row
        found = (
            ('{"id":"%024x","kind":' + enc(kind) + ',"createTime":%d,"level":' + enc(level))
            + "".join(
                f',"{key}":{enc(value)}'
                for key, value in (
                    ("item", item),
                    ("status", status),
                    ("timeMs", float(time_ms)),
                    ("reason", reason),
                )
            )
            + "}"
        )
        _templates[(level, row)] = found
    return found


class LogClock:
    """Process-wide pieces of log bookkeeping: the id sequence and the tie setting."""

    def __init__(self) -> None:
        self._next_seq = 1
        self.per_ms: int | None = None
        """When set, runner-written entries share ``createTime`` in groups of this size."""

    def reserve(self, count: int) -> int:
        """Reserve ``count`` consecutive sequence numbers; return the first."""
        first = self._next_seq
        self._next_seq += count
        return first

    def skip_past(self, seq: int) -> None:
        """Never hand out ``seq`` or anything below it (entries restored from a file)."""
        self._next_seq = max(self._next_seq, seq + 1)


class _Run:
    """The entries of one level, sorted by (time, seq)."""

    __slots__ = ("rows", "seqs", "times")

    def __init__(self) -> None:
        self.times = array("q")
        self.seqs = array("q")
        self.rows: list[Row] = []

    def __len__(self) -> int:
        return len(self.times)

    def _last_key(self) -> tuple[int, int] | None:
        return (self.times[-1], self.seqs[-1]) if self.times else None

    def add(self, time: int, seq: int, row: Row) -> None:
        last = self._last_key()
        if last is None or (time, seq) > last:
            self.times.append(time)
            self.seqs.append(seq)
            self.rows.append(row)
            return
        # Out of order (only after seeding in the future): keep the run sorted.
        index = bisect_left(self.times, time)
        while index < len(self.times) and (self.times[index], self.seqs[index]) < (time, seq):
            index += 1
        self.times.insert(index, time)
        self.seqs.insert(index, seq)
        self.rows.insert(index, row)

    def extend(self, times: array[int], seqs: array[int], rows: list[Row]) -> None:
        last = self._last_key()
        if last is None or (times[0], seqs[0]) > last:
            self.times.extend(times)
            self.seqs.extend(seqs)
            self.rows.extend(rows)
            return
        merged = sorted(
            itertools.chain(
                zip(self.times, self.seqs, self.rows, strict=True),
                zip(times, seqs, rows, strict=True),
            ),
            key=lambda entry: (entry[0], entry[1]),
        )
        self.times = array("q", (entry[0] for entry in merged))
        self.seqs = array("q", (entry[1] for entry in merged))
        self.rows = [entry[2] for entry in merged]

    def newest_first(
        self, level: str, before: int | None, after: int | None
    ) -> Iterator[tuple[int, int, str, Row]]:
        hi = len(self.times) if before is None else bisect_right(self.times, before)
        lo = 0 if after is None else bisect_right(self.times, after)
        times, seqs, rows = self.times, self.seqs, self.rows
        for index in range(hi - 1, lo - 1, -1):
            yield times[index], seqs[index], level, rows[index]


class LogStore:
    """The log entries of one job."""

    def __init__(self, clock: LogClock) -> None:
        self._clock = clock
        self._runs = {level: _Run() for level in LEVELS}
        self._last_time = 0
        self._group_left = 0

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs.values())

    def _next_time(self) -> int:
        """createTime for a runner-written entry: never before the previous one."""
        per_ms = self._clock.per_ms
        if per_ms is None:
            self._last_time = max(now_ms(), self._last_time)
        elif self._group_left > 0:
            self._group_left -= 1
        else:  # open a new group in a later millisecond
            self._last_time = max(now_ms(), self._last_time + 1)
            self._group_left = per_ms - 1
        return self._last_time

    def add(
        self,
        kind: str,
        level: str,
        *,
        item: str = "",
        status: str = "",
        time_ms: float = 0.0,
        reason: str = "",
    ) -> None:
        """Append one entry stamped with the store's clock."""
        seq = self._clock.reserve(1)
        self._runs[level].add(self._next_time(), seq, (kind, item, status, float(time_ms), reason))

    def seed(
        self,
        count: int,
        *,
        per_ms: int,
        start_time: int,
        level: str,
        row: Row,
    ) -> None:
        """Add ``count`` synthetic entries, ``per_ms`` sharing each millisecond."""
        if count <= 0:
            return
        first = self._clock.reserve(count)
        seqs = array("q", range(first, first + count))
        if per_ms == 1:
            times = array("q", range(start_time, start_time + count))
        else:
            times = array("q", (start_time + i // per_ms for i in range(count)))
        self._runs[level].extend(times, seqs, [row] * count)

    def entries_after(self, seq: int) -> list[tuple[int, int, str, Row]]:
        """``(createTime, seq, level, row)`` of every entry whose seq is above ``seq``."""
        return [
            (time, entry_seq, level, row)
            for level, run in self._runs.items()
            for time, entry_seq, row in zip(run.times, run.seqs, run.rows, strict=True)
            if entry_seq > seq
        ]

    def restore(self, entries: list[tuple[int, int, str, Row]]) -> None:
        """Put back entries saved by ``entries_after``, with their times and ids."""
        for time, seq, level, row in sorted(entries, key=lambda entry: (entry[0], entry[1])):
            self._runs[level].add(time, seq, row)
            self._clock.skip_past(seq)
            self._last_time = max(self._last_time, time)

    def _merged(
        self, before: int | None, after: int | None, min_level: str, limit: int
    ) -> Iterator[tuple[int, int, str, Row]]:
        rank = _RANK[min_level]
        streams = [
            run.newest_first(level, before, after)
            for level, run in self._runs.items()
            if _RANK[level] >= rank and len(run)
        ]
        if len(streams) == 1:  # the common case: no merge to pay for
            return itertools.islice(streams[0], limit)
        merged = heapq.merge(*streams, key=lambda entry: (entry[0], entry[1]), reverse=True)
        return itertools.islice(merged, limit)

    def query(
        self,
        *,
        before: int | None,
        after: int | None,
        min_level: str,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Entries with ``after < createTime <= before`` at ``min_level`` or above.

        Newest first by (createTime, id), at most ``limit`` of them.
        """
        return [
            {
                "id": f"{seq:024x}",
                "kind": row[0],
                "createTime": time,
                "level": level,
                "item": row[1],
                "status": row[2],
                "timeMs": row[3],
                "reason": row[4],
            }
            for time, seq, level, row in self._merged(before, after, min_level, limit)
        ]

    def query_json(
        self,
        *,
        before: int | None,
        after: int | None,
        min_level: str,
        limit: int,
    ) -> bytes:
        """``query``'s entries as the UTF-8 JSON array the logs route sends."""
        parts = []
        last: tuple[str, Row] | None = None
        template = ""
        for time, seq, level, row in self._merged(before, after, min_level, limit):
            if last is None or last[1] is not row or last[0] != level:
                last, template = (level, row), _template(level, row)
            parts.append(template % (seq, time))
        return ("[" + ",".join(parts) + "]").encode()
