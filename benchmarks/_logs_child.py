"""The child process of `bench_logs`: stream one job's whole log with one SDK.

It imports only the standard library until it knows which SDK it runs, so the peak
RSS it reports is that SDK's own; each contender's imports (httpcore's too, which
the SDK and httpx import on their first request) happen before its stream is timed.
It checks the stream as it goes, in constant memory: the API returns entries
newest first, ordered by (createTime, id) descending, so a stream that is strictly
descending holds no entry twice, and one that is strictly descending and has the
seeded count has lost none.

    python -m benchmarks._logs_child --child ours|ours1|ref|raw --base-url U --key K \\
        --project P --job J --out result.json [--concurrency N]

`--concurrency` applies to `ours` (default: the SDK's default).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence

from ._common import peak_rss_mb, reference_project

__all__ = ["StreamCheck", "main"]


class StreamCheck:
    """Counts a stream of (create_time, id) keys and what breaks strict descending order."""

    def __init__(self) -> None:
        self.entries = 0
        self.out_of_order = 0
        self._last: tuple[int, str] | None = None

    def add(self, create_time: int, entry_id: str) -> None:
        key = (create_time, entry_id)
        if self._last is not None and key >= self._last:
            self.out_of_order += 1
        self._last = key
        self.entries += 1


Stream = Callable[[StreamCheck], None]


def _warm_imports() -> None:
    """Import httpcore, which httpx and the SDK import only on their first request.

    The reference's imports all happen before its stream is timed; so do ours, so
    that the time is the stream's (imports are what bench_import measures).
    """
    import httpcore  # noqa: F401


def _ours(args: argparse.Namespace, concurrency: int | None = None) -> Stream:
    import anyio

    from nexus_async import AsyncClient

    _warm_imports()

    def stream(check: StreamCheck) -> None:
        async def go() -> None:
            # Inside `async with`, get_all_logs fetches ahead (`concurrency` requests).
            async with AsyncClient(args.key, base_url=args.base_url) as client:
                jobs = client.get_project(args.project).batch.jobs
                logs = (
                    jobs.get_all_logs(args.job)
                    if concurrency is None
                    else jobs.get_all_logs(args.job, concurrency=concurrency)
                )
                async for entry in logs:
                    check.add(entry.create_time, entry.id)

        anyio.run(go)

    return stream


def _ours_sequential(args: argparse.Namespace) -> Stream:
    return _ours(args, concurrency=1)


def _raw(args: argparse.Namespace) -> Stream:
    """The limit: raw httpx pages + json.loads, paging by `beforeTime`, no models."""
    import anyio
    import httpx

    _warm_imports()
    url = f"{args.base_url}/projects/{args.project}/batch/jobs/{args.job}/logs"

    def stream(check: StreamCheck) -> None:
        async def go() -> None:
            headers = {"Secret-Key": args.key}
            async with httpx.AsyncClient(headers=headers, timeout=60.0) as client:
                before: int | None = None
                seen: set[str] = set()  # ids at the `before` millisecond already yielded
                while True:
                    params = {"maxEntries": "1000"}
                    if before is not None:
                        params["beforeTime"] = str(before)
                    response = (await client.get(url, params=params)).raise_for_status()
                    entries = json.loads(response.content)["entries"]
                    for entry in entries:
                        if entry["createTime"] != before or entry["id"] not in seen:
                            check.add(entry["createTime"], entry["id"])
                    if len(entries) < 1000:
                        return
                    oldest = entries[-1]["createTime"]
                    if oldest != before:
                        before, seen = oldest, set()
                    seen.update(e["id"] for e in entries if e["createTime"] == oldest)

        anyio.run(go)

    return stream


def _reference(args: argparse.Namespace) -> Stream:
    jobs = reference_project(args.base_url, args.key, args.project).batch.jobs

    def stream(check: StreamCheck) -> None:
        for entry in jobs.get_all_log_entries(args.job):
            check.add(entry.create_time, entry.id)

    return stream


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=["ours", "ours1", "ref", "raw"], required=True)
    for name in ("--base-url", "--key", "--project", "--job", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--concurrency", type=int, default=None)
    args = parser.parse_args(argv)
    if args.child == "ours":
        stream = _ours(args, args.concurrency)
    else:
        streams = {"ours1": _ours_sequential, "ref": _reference, "raw": _raw}
        stream = streams[args.child](args)  # imports it
    check = StreamCheck()
    error = None
    baseline = peak_rss_mb()
    started = time.perf_counter()
    try:
        stream(check)
    except Exception as exc:  # reported, not raised: e.g. LogPagingError on huge ties
        error = f"{type(exc).__name__}: {str(exc)[:160]}"
    result = {
        "entries": check.entries,
        "out_of_order": check.out_of_order,
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": peak_rss_mb(),
        "baseline_rss_mb": baseline,
        "error": error,
    }
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main(sys.argv[1:])
