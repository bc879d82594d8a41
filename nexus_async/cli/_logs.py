"""A job's whole log, oldest first, in constant memory, for `jobs logs`.

The API answers newest first (at most 1,000 entries: the newest of the range asked
for), and the SDK's `get_all_logs` pages backwards; printing oldest first from that
would mean holding the whole log, and `follow_logs` gathers everything new in one
poll. So the log is read twice, backwards and then forwards:

1. Page backwards (`beforeTime`, inclusive) and keep only each full page's oldest
   time. A full page holds every entry newer than its oldest one, so the times cut
   the log into windows `(older, newer]` of fewer than 1,000 entries each.
2. Ask for each window (`afterTime` exclusive, `beforeTime` inclusive), oldest
   first, and print its entries reversed. Windows do not overlap, so entries sharing
   a millisecond need no bookkeeping.

Memory is one page plus one number per 1,000 entries (8 KB for a million); requests
are about two per 1,000 entries. A full page within one millisecond cannot be cut
into windows: `LogPagingError`, as in the SDK.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .. import JobLogEntry, LogPagingError, LogsFilter

if TYPE_CHECKING:
    from .. import Jobs

__all__ = ["OldestFirst"]

PAGE = 1000  # the API's largest page


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
        self, *, after: int | None = None, before: int | None = None
    ) -> list[JobLogEntry]:
        query = LogsFilter(
            after_time=after, before_time=before, min_level=self._min_level, max_entries=PAGE
        )
        return (await self._jobs.get_logs(self._job_id, query)).entries

    def _tied(self, create_time: int) -> LogPagingError:
        return LogPagingError(
            f"{PAGE} or more log entries of job {self._job_id} share the millisecond "
            f"{create_time}; they cannot be listed oldest first (narrow the query with "
            "--min-level)",
            job_id=self._job_id,
            create_time=create_time,
        )

    async def _cuts(self) -> tuple[list[int], list[JobLogEntry]]:
        """Pass 1: window bounds, newest first, and the oldest window's page."""
        cuts: list[int] = []
        before: int | None = None
        while True:
            page = await self._page(before=before)
            if len(page) < PAGE:
                return cuts, page  # everything up to `before`: the oldest window
            oldest = page[-1].create_time
            if oldest == page[0].create_time:
                raise self._tied(oldest)
            if before is None:
                cuts.append(page[0].create_time)  # the newest entry: the last bound
            cuts.append(oldest)
            before = oldest

    def _yielded(self, entry: JobLogEntry) -> JobLogEntry:
        if entry.create_time != self.last_time:
            self.last_time, self.last_ids = entry.create_time, set()
        self.last_ids.add(entry.id)
        return entry

    async def __aiter__(self) -> AsyncIterator[JobLogEntry]:
        cuts, oldest_window = await self._cuts()
        for entry in reversed(oldest_window):
            yield self._yielded(entry)
        for lower, upper in itertools.pairwise(reversed(cuts)):
            page = await self._page(after=lower, before=upper)
            if len(page) >= PAGE:  # only more entries written at `upper` since pass 1
                raise self._tied(upper)
            for entry in reversed(page):
                yield self._yielded(entry)
