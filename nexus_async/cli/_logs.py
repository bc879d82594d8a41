"""A job's whole log, oldest first, in constant memory, for `jobs logs`.

The API answers newest first (at most 1,000 entries, the newest of the range asked
for), and the SDK's `get_all_logs` pages backwards. Printing oldest first from that
would mean holding the whole log; `follow_logs` also gathers everything new in one
poll. So this pages forwards through time windows instead: a window `(lo, hi]` whose
page holds fewer than 1,000 entries is complete and is printed reversed; a full page
means the window is too wide, and it is narrowed (from how much time the full page
covered) and asked again. Windows never overlap, so ties within a millisecond need no
bookkeeping, and memory is one page. A millisecond holding 1,000 or more entries
cannot be split: `LogPagingError`, as in the SDK.

The first window starts just before the oldest entry, found by stepping back from the
newest in growing strides (a handful of one-entry requests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .. import JobLogEntry, LogPagingError, LogsFilter

if TYPE_CHECKING:
    from .. import Jobs

__all__ = ["OldestFirst"]

PAGE = 1000  # the API's largest page
_FIRST_STRIDE_MS = 1024
_STRIDE_GROWTH = 16


class OldestFirst:
    """Iterate over a job's log entries, oldest first, each exactly once.

    After the iteration, `last_time` and `last_ids` name the newest entries yielded,
    so that `follow_logs(after_time=last_time - 1)` can continue without repeats.

    Args:
        jobs: The project's jobs resource.
        job_id: The job.
        min_level: Lowest severity included, or None for all.
    """

    def __init__(self, jobs: Jobs, job_id: str, min_level: str | None) -> None:
        self._jobs = jobs
        self._job_id = job_id
        self._min_level = min_level
        self.last_time: int | None = None
        self.last_ids: set[str] = set()

    async def _page(
        self, *, after: int | None = None, before: int | None = None, size: int = PAGE
    ) -> list[JobLogEntry]:
        query = LogsFilter(
            after_time=None if after is None or after < 0 else after,
            before_time=before,
            min_level=self._min_level,
            max_entries=size,
        )
        return (await self._jobs.get_logs(self._job_id, query)).entries

    async def _floor(self, newest: int) -> int:
        """A time before every entry (exclusive bound), stepping back from `newest`."""
        stride = _FIRST_STRIDE_MS
        while newest - stride >= 0 and await self._page(before=newest - stride, size=1):
            stride *= _STRIDE_GROWTH  # at most ~10 steps back across the epoch
        return max(-1, newest - stride)

    def _yielded(self, entry: JobLogEntry) -> JobLogEntry:
        if entry.create_time != self.last_time:
            self.last_time, self.last_ids = entry.create_time, set()
        self.last_ids.add(entry.id)
        return entry

    async def __aiter__(self) -> AsyncIterator[JobLogEntry]:
        newest = await self._page(size=1)
        if not newest:
            return
        end = newest[0].create_time
        lo = await self._floor(end)
        width = end - lo
        while lo < end:
            hi = min(end, lo + width)
            entries = await self._page(after=lo, before=hi)
            if len(entries) >= PAGE:
                if hi - lo <= 1:
                    raise LogPagingError(
                        f"{PAGE} or more log entries of job {self._job_id} share the "
                        f"millisecond {hi}; they cannot be listed oldest first "
                        "(narrow the query with --min-level)",
                        job_id=self._job_id,
                        create_time=hi,
                    )
                # The full page covers its newest entries' span: aim at 80% of a page.
                covered = hi - entries[-1].create_time + 1
                width = max(1, min((hi - lo) // 2, covered * 4 // 5))
                continue
            for entry in reversed(entries):
                yield self._yielded(entry)
            lo = hi
            width = max(1, min(width * 4, width * (PAGE * 4 // 5) // max(1, len(entries))))
